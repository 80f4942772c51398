/*
 * notify.h - the service manager's readiness and watchdog protocol (sd_notify(3),
 * systemd.service(5) Type=notify, WatchdogSec=) without libsystemd: datagrams of
 * "KEY=VALUE\n..." lines to the AF_UNIX socket named by NOTIFY_SOCKET.
 * Everything here is a no-op when the daemon was not started that way. Must never
 * block the event loop or send anything but state lines (no query data).
 */
#ifndef DOTPROXY_NOTIFY_H
#define DOTPROXY_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

struct loop;

/*
 * Read NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, take them out of the
 * environment, and connect a datagram socket to the notify socket (call it
 * before privileges are dropped). Returns 0 (also when NOTIFY_SOCKET is unset),
 * or -1 with one line in @err naming the variable and what is wrong with it.
 */
int notify_init(char *err, size_t errlen);

/* Whether NOTIFY_SOCKET was set and its socket is connected. */
bool notify_enabled(void);

/*
 * Send @state ("READY=1", "STATUS=...", several lines joined by '\n') in one
 * datagram, without waiting. Returns 0 (nothing to do when not enabled) or a
 * negative errno.
 */
int notify_send(const char *state);

/* READY=1, with STATUS=@status when @status is not NULL. Returns as notify_send(). */
int notify_ready(const char *status);

/*
 * RELOADING=1 and MONOTONIC_USEC=<now on CLOCK_MONOTONIC>: call before a
 * configuration reload (SIGHUP), and notify_ready() after it, whether it was
 * applied or rejected (systemd shows "reloading" until READY=1 comes).
 */
int notify_reloading(void);

/* STOPPING=1: the daemon is shutting down. */
int notify_stopping(void);

/* The watchdog interval the manager set for this process (WatchdogSec=), in µs; 0: none. */
uint64_t notify_watchdog_usec(void);

/*
 * Arm a timer on @l that sends WATCHDOG=1 every notify_watchdog_usec() / 2, from
 * inside the loop, so a loop that stops turning stops the keep-alives. Does
 * nothing without a watchdog or when the timer already runs. Returns 0 or a
 * negative errno.
 */
int notify_watchdog_start(struct loop *l);

/* Cancel the watchdog timer (before @l is freed) and close the socket. */
void notify_close(struct loop *l);

/* --- the parts of the protocol, for the unit tests ------------------------------------- */

/*
 * NOTIFY_SOCKET @s ("/path" or "@abstract") into @sa and its length. Returns 0,
 * or -EINVAL (empty, relative, "@" alone) or -ENAMETOOLONG.
 */
int notify_parse_socket(const char *s, struct sockaddr_un *sa, socklen_t *salen);

/*
 * WATCHDOG_USEC @usec (decimal, > 0) and WATCHDOG_PID @pid (NULL, or decimal)
 * for process @self: *out is the interval, or 0 when the watchdog is meant for
 * another process. Returns 0 or -EINVAL.
 */
int notify_parse_watchdog(const char *usec, const char *pid, pid_t self, uint64_t *out);

/* How often to send WATCHDOG=1 for interval @usec, in loop milliseconds (>= 1). */
uint64_t notify_keepalive_ms(uint64_t usec);

/* "RELOADING=1\nMONOTONIC_USEC=@usec" into @buf. Returns its length, or -ENOSPC. */
int notify_format_reloading(char *buf, size_t len, uint64_t usec);

/* "READY=1[\nSTATUS=@status]" into @buf (a newline in @status ends it). Returns as above. */
int notify_format_ready(char *buf, size_t len, const char *status);

#endif

/*
 * notify.c - readiness, reload, stop and watchdog messages to the service
 * manager (the sd_notify protocol, spoken directly: one AF_UNIX datagram of
 * "KEY=VALUE" lines per message). Owns the notify socket and the watchdog
 * timer; never blocks (a full socket loses one message, which is logged) and
 * never sends anything but the daemon's state.
 */
#define _GNU_SOURCE
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"

static struct {
	int fd;			/* connected to NOTIFY_SOCKET; -1: not under a manager */
	uint64_t wd_usec;	/* WATCHDOG_USEC meant for this process; 0: no watchdog */
	struct loop_timer wd_timer;
	bool wd_failing;	/* the last keep-alive failed (logged once until one works) */
} nt = { .fd = -1 };

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

int notify_parse_socket(const char *s, struct sockaddr_un *sa, socklen_t *salen)
{
	size_t n = s ? strlen(s) : 0;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (n == 0 || (s[0] != '/' && s[0] != '@') || (s[0] == '@' && n == 1))
		return -EINVAL;
	if (s[0] == '@') {
		/* Linux abstract namespace: a leading NUL, the name not NUL-terminated */
		if (n > sizeof(sa->sun_path))
			return -ENAMETOOLONG;
		memcpy(sa->sun_path + 1, s + 1, n - 1);
		*salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
		return 0;
	}
	if (n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, s, n);
	*salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

int notify_parse_watchdog(const char *usec, const char *pid, pid_t self, uint64_t *out)
{
	uint64_t u, p;

	*out = 0;
	if (parse_u64(usec, &u) < 0 || u == 0)
		return -EINVAL;
	if (pid) {
		if (parse_u64(pid, &p) < 0 || p == 0)
			return -EINVAL;
		if (p != (uint64_t)self)
			return 0;	/* meant for another process (e.g. our parent) */
	}
	*out = u;
	return 0;
}

uint64_t notify_keepalive_ms(uint64_t usec)
{
	/* half the interval, as sd_watchdog_enabled(3) advises */
	uint64_t ms = usec / 2000;

	return ms ? ms : 1;
}

int notify_format_reloading(char *buf, size_t len, uint64_t usec)
{
	int n = snprintf(buf, len, "RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)usec);

	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

int notify_format_ready(char *buf, size_t len, const char *status)
{
	int n;

	if (status)
		n = snprintf(buf, len, "READY=1\nSTATUS=%.*s", (int)strcspn(status, "\n"), status);
	else
		n = snprintf(buf, len, "READY=1");
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

int notify_init(char *err, size_t errlen)
{
	const char *sock = getenv("NOTIFY_SOCKET");
	const char *wd = getenv("WATCHDOG_USEC");
	struct sockaddr_un sa;
	socklen_t salen;
	int rc;

	if (wd) {
		rc = notify_parse_watchdog(wd, getenv("WATCHDOG_PID"), getpid(), &nt.wd_usec);
		if (rc < 0) {
			snprintf(err, errlen, "WATCHDOG_USEC \"%s\" / WATCHDOG_PID \"%s\": not a positive number",
				 wd, getenv("WATCHDOG_PID") ? getenv("WATCHDOG_PID") : "");
			return -1;
		}
	}
	if (!sock) {
		nt.wd_usec = 0;		/* a watchdog with nowhere to send keep-alives */
		goto out_unset;
	}
	rc = notify_parse_socket(sock, &sa, &salen);
	if (rc < 0) {
		snprintf(err, errlen, "NOTIFY_SOCKET \"%s\": %s", sock,
			 rc == -ENAMETOOLONG ? "too long for a unix socket address" :
			 "must be an absolute path or @abstract name");
		return -1;
	}
	nt.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (nt.fd < 0) {
		snprintf(err, errlen, "NOTIFY_SOCKET: socket: %s", strerror(errno));
		return -1;
	}
	/* connected now, while we may still reach the path: sends need no lookup later */
	if (connect(nt.fd, (struct sockaddr *)&sa, salen) < 0) {
		snprintf(err, errlen, "NOTIFY_SOCKET \"%s\": %s", sock, strerror(errno));
		close(nt.fd);
		nt.fd = -1;
		return -1;
	}
out_unset:
	/* nothing we might start inherits them */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	return 0;
}

bool notify_enabled(void)
{
	return nt.fd >= 0;
}

int notify_send(const char *state)
{
	if (nt.fd < 0)
		return 0;
	if (send(nt.fd, state, strlen(state), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

int notify_ready(const char *status)
{
	char buf[512];
	int rc = notify_format_ready(buf, sizeof(buf), status);

	return rc < 0 ? rc : notify_send(buf);
}

int notify_reloading(void)
{
	struct timespec ts;
	char buf[64];
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	rc = notify_format_reloading(buf, sizeof(buf),
				     (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
	return rc < 0 ? rc : notify_send(buf);
}

int notify_stopping(void)
{
	return notify_send("STOPPING=1");
}

uint64_t notify_watchdog_usec(void)
{
	return nt.wd_usec;
}

static void on_watchdog(struct loop *l, void *arg)
{
	int rc = notify_send("WATCHDOG=1");

	(void)arg;
	if (rc < 0 && !nt.wd_failing) {
		errno = -rc;
		log_warn("watchdog keep-alive to the service manager");
	}
	nt.wd_failing = rc < 0;
	if (loop_timer_set(l, &nt.wd_timer, notify_keepalive_ms(nt.wd_usec)) < 0)
		log_warnx("watchdog keep-alive: cannot re-arm its timer");
}

int notify_watchdog_start(struct loop *l)
{
	if (nt.fd < 0 || !nt.wd_usec || loop_timer_armed(&nt.wd_timer))
		return 0;	/* none, or already running (READY=1 again after a reload) */
	loop_timer_init(&nt.wd_timer, on_watchdog, NULL);
	/* the first one now: the manager counts the interval from the start */
	notify_send("WATCHDOG=1");
	return loop_timer_set(l, &nt.wd_timer, notify_keepalive_ms(nt.wd_usec));
}

void notify_close(struct loop *l)
{
	if (l && loop_timer_armed(&nt.wd_timer))
		loop_timer_cancel(l, &nt.wd_timer);
	if (nt.fd >= 0)
		close(nt.fd);
	nt.fd = -1;
	nt.wd_usec = 0;
}

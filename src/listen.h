/*
 * listen.h - the socket front-ends: UDP and TCP listeners for TPROXY
 * (transparent, answering from the original destination) and REDIRECT
 * (plain listeners, also usable as a local stub resolver).
 */
#ifndef DOTPROXY_LISTEN_H
#define DOTPROXY_LISTEN_H

#include <stddef.h>

#include "config.h"
#include "loop.h"
#include "metrics.h"
#include "query.h"

struct udp_frontend;
struct tcp_frontend;

/* Open the UDP sockets @cfg asks for. Returns NULL with one line in @err. */
struct udp_frontend *udp_frontend_new(struct loop *l, const struct config *cfg, struct qtable *qt,
				      struct metrics *m, char *err, size_t errlen);
void udp_frontend_free(struct loop *l, struct udp_frontend *u);

/* Open the TCP listeners @cfg asks for. Returns NULL with one line in @err. */
struct tcp_frontend *tcp_frontend_new(struct loop *l, const struct config *cfg, struct qtable *qt,
				      struct metrics *m, char *err, size_t errlen);
void tcp_frontend_free(struct loop *l, struct tcp_frontend *t);

/* An open listening socket and the address it is bound to. */
struct listen_sock {
	int fd;
	union sockaddr_any addr;
};

/*
 * Open @type (SOCK_DGRAM or SOCK_STREAM) sockets on every address @cfg asks
 * for (--listen, or IPv4 and IPv6 wildcards on --port; IPv6 skipped where the
 * host has none), transparent in tproxy mode. Returns how many were written
 * to @out (CFG_MAX_LISTEN), or -1 with one line in @err and none left open.
 */
int listen_open(const struct config *cfg, int type, struct listen_sock *out, char *err, size_t errlen);

/* Close @n sockets of @socks. */
void listen_close(struct listen_sock *socks, int n);

#endif

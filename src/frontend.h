/*
 * frontend.h - what every interception front-end (TPROXY/REDIRECT UDP and
 * TCP listeners, NFQUEUE) shares with the query table: packets become
 * queries through query_receive(), answers come back through ->reply().
 */
#ifndef DOTPROXY_FRONTEND_H
#define DOTPROXY_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

/* Bytes of per-query front-end context the query table keeps for the reply. */
#define FRONTEND_CTX_SIZE 96

struct frontend;

struct frontend_ops {
	const char *name;
	enum metric_transport transport;
	/*
	 * Send @msg (final: client ID restored, truncated to fit) to the client
	 * described by @ctx, a copy of what was given to query_receive().
	 */
	void (*reply)(struct frontend *fe, const void *ctx, const uint8_t *msg, size_t len);
};

/* Front-ends embed this as their first member. */
struct frontend {
	const struct frontend_ops *ops;
};

#endif

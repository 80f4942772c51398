/*
 * ratelimit.h - per-client token buckets (--ratelimit QPS): each client
 * address may send QPS queries a second on average, in bursts of up to
 * RL_BURST_S seconds' worth. Bounded memory: a fixed table, the least
 * recently seen client evicted. Times are caller-supplied milliseconds.
 */
#ifndef DOTPROXY_RATELIMIT_H
#define DOTPROXY_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "sock.h"

#define RL_BURST_S	2	/* bucket depth, in seconds of the rate */
#define RL_CLIENTS	4096	/* clients tracked at once */

struct ratelimit;

/* @qps 0: no limit (ratelimit_allow always true). NULL on allocation failure. */
struct ratelimit *ratelimit_new(unsigned qps);
void ratelimit_free(struct ratelimit *r);

/* Whether client @addr (address only; the port is ignored) may send a query at @now_ms. */
bool ratelimit_allow(struct ratelimit *r, const union sockaddr_any *addr, uint64_t now_ms);

#endif

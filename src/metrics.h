/*
 * metrics.h - counters of one worker, and the HTTP endpoint that serves them
 * as Prometheus text (/metrics) and health (/health). The endpoint never
 * blocks the loop and never shows query names.
 */
#ifndef DOTPROXY_METRICS_H
#define DOTPROXY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "sock.h"

enum metric_transport { MT_UDP, MT_TCP, MT_COUNT };
enum metric_rcode { MR_NOERROR, MR_SERVFAIL, MR_FORMERR, MR_REFUSED, MR_NXDOMAIN, MR_OTHER, MR_COUNT };

struct metrics {
	uint64_t queries[MT_COUNT];	/* queries received from clients */
	uint64_t answers[MR_COUNT];	/* answers sent to clients, by rcode */
	uint64_t malformed;		/* client packets dropped or answered FORMERR/NOTIMP */
	uint64_t truncated;		/* UDP answers sent with TC set */
	uint64_t handshakes;		/* completed TLS handshakes, resumed included */
	uint64_t resumed;		/* ... of which resumed a session */
	uint64_t tls_failures;		/* connect, handshake or verification failures */
	uint64_t upstream_queries;	/* queries written to upstreams (retries included) */
	uint64_t upstream_bad_answers;	/* answers dropped: unknown ID, wrong question */
	uint64_t timeouts;		/* queries answered SERVFAIL at their deadline */
	uint64_t hedged;		/* queries re-sent because their connection went silent */
	uint64_t cache_hits;		/* queries answered from the cache */
	uint64_t cache_misses;		/* ... not found there */
	uint64_t stale_answers;		/* RFC 8767: expired answers served when no upstream answered */
	uint64_t prefetches;		/* popular entries refreshed before they expire */
	uint64_t deduplicated;		/* queries answered with their twin's upstream answer */
	uint64_t ratelimited;		/* queries refused by --ratelimit */
	uint64_t refused_inflight;	/* queries refused: --max-inflight reached */
	uint64_t refused_tcp;		/* TCP clients refused: --max-tcp-clients reached */
	uint64_t send_errors;		/* answers the kernel would not send */
	uint64_t inflight;		/* gauge: queries waiting for upstream */
};

/* Growable text buffer for rendering. */
struct strbuf {
	char *buf;
	size_t len, cap;
	int err;		/* sticky -ENOMEM */
};

void strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void metrics_count_rcode(struct metrics *m, int rcode);

/* Append one counter with its HELP and TYPE lines. */
void metrics_counter(struct strbuf *sb, const char *name, const char *help, uint64_t v);

/* Append the counters of @m in Prometheus text format. */
void metrics_render(const struct metrics *m, struct strbuf *sb);

/* Renders the whole /metrics page; returns whether the daemon is healthy. */
typedef int (*metrics_page_cb)(void *arg, struct strbuf *sb);

struct metrics_http;

/* Listen on @addr. Returns NULL with errno set. */
struct metrics_http *metrics_http_start(struct loop *l, const union sockaddr_any *addr,
					metrics_page_cb page, void *arg);
void metrics_http_stop(struct loop *l, struct metrics_http *h);

#endif

/*
 * metrics.h - counters of one worker, and the HTTP endpoint that serves them
 * as Prometheus text (/metrics) and health (/health). The endpoint never
 * blocks the loop and never shows query names.
 */
#ifndef DOTPROXY_METRICS_H
#define DOTPROXY_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "sock.h"

enum metric_transport { MT_UDP, MT_TCP, MT_COUNT };
enum metric_rcode { MR_NOERROR, MR_SERVFAIL, MR_FORMERR, MR_REFUSED, MR_NXDOMAIN, MR_OTHER, MR_COUNT };
/* How a client's packets reach the daemon: the "frontend" label. */
enum metric_frontend { MF_TPROXY, MF_REDIRECT, MF_NFQUEUE, MF_COUNT };
/* The client's address family (IPv4-mapped IPv6 counts as IPv4): the "family" label. */
enum metric_family { MFAM_IPV4, MFAM_IPV6, MFAM_COUNT };

/*
 * Queries and answers of one front-end and transport, by the client's
 * address family. The front-end that owns it counts here: one array
 * increment per query and per answer.
 */
struct metrics_path {
	bool used;				/* the daemon runs this front-end: its series are shown */
	uint64_t queries[MFAM_COUNT];		/* messages received, malformed ones included */
	uint64_t answers[MFAM_COUNT][MR_COUNT];	/* answers handed to the front-end to send */
};

/*
 * Upstream answer times as a Prometheus histogram: counts per bucket (not
 * cumulative; the page makes them so) and their sum. Bucket bounds are whole
 * milliseconds, the resolution of the loop's clock.
 */
#define METRICS_LAT_BUCKETS 12
extern const unsigned metrics_lat_bounds_ms[METRICS_LAT_BUCKETS];	/* 1 2 5 ... 5000 */

struct metrics_hist {
	uint64_t n[METRICS_LAT_BUCKETS + 1];	/* the last one: above the largest bound */
	uint64_t sum_ms;
};

struct metrics {
	/* by front-end, transport, family (and rcode): what /metrics shows */
	struct metrics_path path[MF_COUNT][MT_COUNT];
	/* the same, summed by transport and by rcode (query.c counts them): for the log and tests */
	uint64_t queries[MT_COUNT];	/* queries received from clients */
	uint64_t answers[MR_COUNT];	/* answers sent to clients, by rcode */
	uint64_t malformed;		/* client packets dropped or answered FORMERR/NOTIMP */
	uint64_t truncated;		/* UDP answers sent with TC set */
	/* but tls_failures, totals of what /metrics shows per upstream (pool_render): for the log and tests */
	uint64_t handshakes;		/* completed TLS handshakes, resumed included */
	uint64_t resumed;		/* ... of which resumed a session */
	uint64_t tls_failures;		/* connect, handshake or verification failures */
	uint64_t upstream_queries;	/* queries written to upstreams (retries included) */
	uint64_t upstream_bad_answers;	/* answers dropped: unknown ID, wrong question */
	uint64_t timeouts;		/* queries answered SERVFAIL at their deadline */
	uint64_t no_upstream;		/* queries failed at once: no upstream usable */
	uint64_t tries_exhausted;	/* queries failed: sent QUERY_MAX_TRIES times, each lost */
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

/* RFC 1035 4.1.1 RCODE (0..15; extended ones are "other") to its label. */
static inline enum metric_rcode metrics_rcode(int rcode)
{
	static const unsigned char map[6] = { MR_NOERROR, MR_FORMERR, MR_SERVFAIL, MR_NXDOMAIN,
					      MR_OTHER, MR_REFUSED };

	return rcode >= 0 && rcode <= 5 ? (enum metric_rcode)map[rcode] : MR_OTHER;
}

/* The family label of client address @a. */
static inline enum metric_family metrics_family(const union sockaddr_any *a)
{
	return a->sa.sa_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&a->sin6.sin6_addr) ? MFAM_IPV6
										 : MFAM_IPV4;
}

/* Count one answer @msg (@len octets) to a client of family @fam on path @p. */
static inline void metrics_path_answer(struct metrics_path *p, enum metric_family fam,
				       const uint8_t *msg, size_t len)
{
	p->answers[fam][len >= 4 ? metrics_rcode(msg[3] & 0x0f) : MR_OTHER]++;	/* RFC 1035 4.1.1 */
}

/* Count one answer time of @ms milliseconds. */
static inline void metrics_hist_observe(struct metrics_hist *h, uint64_t ms)
{
	unsigned i = 0;

	while (i < METRICS_LAT_BUCKETS && ms > metrics_lat_bounds_ms[i])
		i++;
	h->n[i]++;
	h->sum_ms += ms;
}

/* Growable text buffer for rendering. */
struct strbuf {
	char *buf;
	size_t len, cap;
	int err;		/* sticky -ENOMEM */
};

void strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Count one answer with @rcode in the per-rcode totals. */
void metrics_count_rcode(struct metrics *m, int rcode);

/* Append one counter with its HELP and TYPE lines. */
void metrics_counter(struct strbuf *sb, const char *name, const char *help, uint64_t v);

/*
 * Append histogram @name's HELP and TYPE lines (once per page), then one
 * histogram per call of metrics_histogram() with the same @name: its
 * _bucket{@labels,le} series, cumulative, ending with le="+Inf", then _sum
 * (seconds) and _count. @labels is 'key="value"' text (no quote or backslash
 * in the values: upstream labels are addresses and host names).
 */
void metrics_histogram_head(struct strbuf *sb, const char *name, const char *help);
void metrics_histogram(struct strbuf *sb, const char *name, const char *labels,
		       const struct metrics_hist *h);

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

/*
 * upstream.h - the DoT upstream pool (RFC 7858, RFC 8310 strict, RFC 7766):
 * persistent, pipelined TLS connections driven by the worker's loop, with
 * answers matched out of order by the rewritten ID. Never falls back to
 * plaintext: a query that cannot go over verified TLS gets SERVFAIL.
 */
#ifndef DOTPROXY_UPSTREAM_H
#define DOTPROXY_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "loop.h"
#include "metrics.h"
#include "query.h"

struct pool;

/*
 * Create the pool for @cfg's upstreams (loads the CA store: a bad --ca-file
 * fails here, before anything else is set up). Returns NULL with @err set.
 */
struct pool *pool_new(struct loop *l, const struct config *cfg, struct qtable *qt,
		      struct metrics *m, char *err, size_t errlen);
void pool_free(struct pool *p);

/*
 * Take the upstreams and pool settings of @cfg (SIGHUP). An upstream still
 * configured the same keeps its connections and what is in flight on them;
 * new ones are added; removed ones take no new query, answer what they were
 * sent and close. CA and client certificate files are read again, for new
 * connections. Returns -1 with @err set and nothing changed.
 */
int pool_reconfigure(struct pool *p, const struct config *cfg, char *err, size_t errlen);

/* Queue @q (Q_FREE, not on any list) on an upstream connection, or fail it with SERVFAIL. */
void pool_send(struct pool *p, struct query *q);

/* Take @q off the connection it is queued or in flight on. */
void pool_unlink(struct query *q);

/*
 * @q reached its deadline: take it off its connection, and drop that
 * connection if nothing at all came back on it for a whole deadline
 * (half-open: a NAT or firewall lost it), so the queries after it reconnect
 * instead of waiting too. The upstream is backed off only if that
 * connection never answered anything.
 */
void pool_deadline(struct query *q);

/*
 * Half of @q's deadline has passed. If its connection is still not up, @q is
 * sent elsewhere meanwhile; if nothing at all came back on its connection
 * since @q was written, that connection is closed and its queries re-sent on
 * another connection or upstream. Either way the upstream counts as slow for
 * the fastest policy. Asked once per query; @q may be answered or failed (and
 * freed) before this returns.
 */
void pool_hedge(struct query *q);

/* The label ("IP@PORT#NAME") of the upstream @c belongs to, for the query log and self-test. */
const char *pool_conn_label(const struct upconn *c);

/* Append per-upstream metrics; returns 1 if some upstream is usable. */
int pool_render(const struct pool *p, struct strbuf *sb);

#endif

/*
 * query.c - the in-flight query table: checks client messages, answers what
 * it can from the cache, joins a query to its twin already in flight, owns
 * each query until it is answered, failed or timed out, and restores the
 * client's ID before the front-end replies. Never logs a query name above
 * debug, except in the query log (--query-log, off by default).
 */
#include "query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "dns.h"
#include "edns.h"
#include "log.h"
#include "ratelimit.h"
#include "selftest.h"
#include "upstream.h"
#include "version.h"

void qlist_push(struct qlist *l, struct query *q)
{
	q->next = NULL;
	q->prev = l->tail;
	if (l->tail)
		l->tail->next = q;
	else
		l->head = q;
	l->tail = q;
	l->n++;
}

void qlist_remove(struct qlist *l, struct query *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		l->head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	else
		l->tail = q->prev;
	q->prev = q->next = NULL;
	l->n--;
}

static void promote(struct query *q);

static void on_deadline(struct loop *l, void *arg)
{
	struct query *q = arg;

	if (!q->hedged) {
		q->hedged = true;
		if (loop_timer_set(l, &q->deadline, q->qt->timeout_ms - q->qt->timeout_ms / 2) == 0) {
			pool_hedge(q);	/* may answer or fail q: its timer then goes with it */
			return;
		}
	}
	q->qt->m->timeouts++;
	pool_deadline(q);
	promote(q);	/* its twins have time left: one of them asks again */
	query_fail(q, DNS_RCODE_SERVFAIL);
}

static void internal_reply(struct frontend *fe, const void *ctx, const uint8_t *msg, size_t len)
{
	(void)fe;
	(void)ctx;
	(void)msg;
	(void)len;	/* a prefetch: query_answer() has put the answer in the cache */
}

static const struct frontend_ops internal_ops = {
	.name = "prefetch",
	.transport = MT_UDP,
	.reply = internal_reply,
};

int qtable_init(struct qtable *qt, unsigned nslots, unsigned timeout_ms, struct loop *l,
		struct pool *pool, struct metrics *m)
{
	memset(qt, 0, sizeof(*qt));
	qt->slots = calloc(nslots, sizeof(*qt->slots));
	qt->twins = calloc(nslots, sizeof(*qt->twins));
	qt->scratch = malloc(DNS_MAX_MSG);
	if (!qt->slots || !qt->twins || !qt->scratch) {
		free(qt->slots);
		free(qt->twins);
		free(qt->scratch);
		return -1;
	}
	qt->internal.ops = &internal_ops;
	qt->nslots = nslots;
	while ((1u << qt->slot_bits) < nslots)
		qt->slot_bits++;
	qt->loop = l;
	qt->pool = pool;
	qt->m = m;
	qt->timeout_ms = timeout_ms;
	return 0;
}

void qtable_destroy(struct qtable *qt)
{
	for (unsigned i = 0; i < qt->fresh; i++)
		if (qt->slots[i].msg != qt->slots[i].inline_msg)
			free(qt->slots[i].msg);
	free(qt->slots);
	free(qt->twins);
	free(qt->scratch);
	qt->slots = NULL;
	qt->twins = NULL;
	qt->scratch = NULL;
}

void qtable_options(struct qtable *qt, struct cache *cache, unsigned stale_s, struct ratelimit *rl)
{
	qt->cache = cache;
	qt->stale_s = cache ? stale_s : 0;
	qt->rl = rl;
}

struct query *qtable_lookup(struct qtable *qt, uint16_t id, const struct upconn *conn)
{
	unsigned slot = id & ((1u << qt->slot_bits) - 1);
	struct query *q;

	if (slot >= qt->fresh)
		return NULL;	/* never used */
	q = &qt->slots[slot];
	if (q->state != Q_SENT || q->upstream_id != id || q->conn != conn)
		return NULL;	/* late answer to a freed or re-sent query */
	return q;
}

/* ---- the query log and self-test markers: every answer to a client ends in reply_client() ---- */

void qtable_report_options(struct qtable *qt, bool query_log, const char *sock_mode)
{
	qt->query_log = query_log;
	qt->sock_mode = sock_mode;
}

/* What @fe's queries came through: nfqueue, or the socket front-ends' mode. */
static const char *frontend_name(const struct qtable *qt, const struct frontend *fe)
{
	if (strcmp(fe->ops->name, "nfqueue") == 0 || !qt->sock_mode)
		return fe->ops->name;
	return qt->sock_mode;
}

static const char *family_name(const union sockaddr_any *a)
{
	if (a->sa.sa_family == AF_UNSPEC)
		return "unknown";
	return metrics_family(a) == MFAM_IPV6 ? "ipv6" : "ipv4";	/* as the metrics label it */
}

/* Query log: the answer about to be sent comes from @source (@upstream), for @client since @start. */
static void qlog_origin(struct qtable *qt, const union sockaddr_any *client, uint64_t start,
			const char *source, const char *upstream)
{
	if (client)
		qt->org.client = *client;
	else
		qt->org.client.sa.sa_family = AF_UNSPEC;
	qt->org.start_ms = start;
	qt->org.source = source;
	qt->org.upstream = upstream;
}

/* @q was taken for the message being received: what the query log and markers keep of it. */
static void note_client(struct query *q)
{
	struct qtable *qt = q->qt;

	q->selftest = qt->rx_marker && q->fe != &qt->internal;
	if (qt->query_log || q->selftest) {
		q->recv_ms = loop_now(qt->loop);
		if (qt->rx_client)
			q->client = *qt->rx_client;
		else
			q->client.sa.sa_family = AF_UNSPEC;
	}
}

/* Wire-format name @n (@len octets) as text, "." for the root; odd bytes as \DDD. */
static void name_text(const uint8_t *n, int len, char *out, size_t cap)
{
	size_t o = 0;
	int i = 0;

	while (i < len && n[i] && o + 6 < cap) {
		int l = n[i++];

		for (int j = 0; j < l && i < len && o + 6 < cap; j++, i++) {
			uint8_t c = n[i];

			if (c > ' ' && c < 0x7f && c != '.' && c != '\\' && c != '"')
				out[o++] = (char)c;
			else
				o += (size_t)snprintf(out + o, cap - o, "\\%03u", c);
		}
		out[o++] = '.';
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
}

static const char *qtype_text(uint16_t t, char *buf, size_t len)
{
	static const struct { uint16_t t; const char *n; } names[] = {
		{ 1, "A" }, { 2, "NS" }, { 5, "CNAME" }, { 6, "SOA" }, { 12, "PTR" }, { 15, "MX" },
		{ 16, "TXT" }, { 28, "AAAA" }, { 33, "SRV" }, { 35, "NAPTR" }, { 43, "DS" }, { 46, "RRSIG" },
		{ 48, "DNSKEY" }, { 64, "SVCB" }, { 65, "HTTPS" }, { 255, "ANY" },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].t == t)
			return names[i].n;
	snprintf(buf, len, "TYPE%u", t);
	return buf;
}

/* One query log line for answer @ans (@len octets) just sent through @fe. */
static void qlog_write(struct qtable *qt, const struct frontend *fe, const uint8_t *ans, size_t len)
{
	uint8_t name[DNS_MAX_NAME];
	char qname[DNS_MAX_NAME * 4 + 2], client[SOCK_ADDRSTRLEN], tbuf[16], rbuf[16], ms[24], size[16];
	const char *qtype = "none";
	struct dns_header h;
	struct wire w;
	int n = -1;

	wire_init(&w, ans, len);
	dns_read_header(&w, &h);
	if (wire_ok(&w) && h.qd)
		n = dns_read_name(&w, name);
	if (n > 0) {
		uint16_t t = wire_u16(&w);

		if (wire_ok(&w))
			qtype = qtype_text(t, tbuf, sizeof(tbuf));
		name_text(name, n, qname, sizeof(qname));
	} else {
		snprintf(qname, sizeof(qname), "none");
	}
	if (qt->org.client.sa.sa_family == AF_UNSPEC)
		snprintf(client, sizeof(client), "unknown");
	else
		sock_ntop(&qt->org.client, client, sizeof(client));
	snprintf(ms, sizeof(ms), "%llu", (unsigned long long)(loop_now(qt->loop) - qt->org.start_ms));
	snprintf(size, sizeof(size), "%zu", len);
	log_kv(LOG_LVL_INFO, "query", "client", client, "frontend", frontend_name(qt, fe),
	       "transport", fe->ops->transport == MT_TCP ? "tcp" : "udp", "qname", qname, "qtype", qtype,
	       "rcode", len >= DNS_HDR_LEN ? dns_rcode_text(dns_rcode(ans), rbuf, sizeof(rbuf)) : "none",
	       "source", qt->org.source, "upstream", qt->org.upstream, "ms", ms, "size", size, (char *)NULL);
}

/* Send @ans to the client of @ctx through @fe; the query log sees every answer here. */
static void reply_client(struct qtable *qt, struct frontend *fe, const void *ctx, const uint8_t *ans, size_t len)
{
	fe->ops->reply(fe, ctx, ans, len);
	if (qt->query_log && fe != &qt->internal)
		qlog_write(qt, fe, ans, len);
}

/*
 * Replace marker @q's upstream answer @ans with dotproxy's TXT answer, built
 * in the table's scratch buffer (markers have no followers to use it).
 * Returns its length, 0 if it cannot be built.
 */
static size_t marker_answer(struct query *q, uint8_t **ans, size_t len)
{
	struct qtable *qt = q->qt;
	struct selftest_info si = {
		.version = DOTPROXY_VERSION,
		.upstream = qt->ans_label ? qt->ans_label : "unknown",
		.frontend = frontend_name(qt, q->fe),
		.transport = q->fe->ops->transport == MT_TCP ? "tcp" : "udp",
		.family = family_name(&q->client),
		.upstream_rcode = len >= DNS_HDR_LEN ? dns_rcode(*ans) : -1,
	};
	size_t n = selftest_answer(q->msg, q->len, q->had_edns, &si, qt->scratch, DNS_MAX_MSG);

	if (n)
		*ans = qt->scratch;
	return n;
}

/* Answer the client of @msg (@ctx, via @fe) with @rcode, and count it. */
static void reply_error(struct qtable *qt, struct frontend *fe, const void *ctx,
			const uint8_t *msg, size_t len, int rcode)
{
	uint8_t out[DNS_HDR_LEN + DNS_MAX_NAME + 4];

	len = dns_make_error(msg, len, rcode, out, sizeof(out));
	if (fe != &qt->internal)
		metrics_count_rcode(qt->m, rcode);
	reply_client(qt, fe, ctx, out, len);
}

/*
 * Send answer @ans (mutable, ID already the client's) to a client that takes
 * @max octets: truncated (TC) when larger, SERVFAIL when even that cannot be
 * built. Counted unless it is a prefetch.
 */
static void deliver(struct qtable *qt, struct frontend *fe, const void *ctx, const uint8_t *query,
		    size_t qlen, uint16_t max, uint8_t *ans, size_t len)
{
	uint8_t tc[DNS_UDP_MIN];	/* header + question + OPT always fit */

	dns_copy_question_case(ans, len, query, qlen);
	if (len > max) {
		len = dns_truncate(ans, len, tc, sizeof(tc) < max ? sizeof(tc) : max);
		if (len == 0) {
			reply_error(qt, fe, ctx, query, qlen, DNS_RCODE_SERVFAIL);
			return;
		}
		qt->m->truncated++;
		ans = tc;
	}
	if (fe != &qt->internal)
		metrics_count_rcode(qt->m, dns_rcode(ans));
	reply_client(qt, fe, ctx, ans, len);
}

/* ---- twins: one upstream query for the same question asked again while in flight ---- */

static struct query **twin_bucket(struct qtable *qt, uint32_t hash)
{
	return &qt->twins[hash % qt->nslots];
}

/* The leader in flight with @k's question, or NULL. */
static struct query *twin_find(struct qtable *qt, const struct cache_key *k)
{
	for (struct query *l = *twin_bucket(qt, k->hash); l; l = l->twin_next)
		if (l->key.hash == k->hash && cache_key_equal(&l->key, k))
			return l;
	return NULL;
}

static void twin_add(struct query *q)
{
	struct query **b = twin_bucket(q->qt, q->key.hash);

	q->twin_next = *b;
	*b = q;
	q->twin = true;
}

static void twin_remove(struct query *q)
{
	struct query **pp = twin_bucket(q->qt, q->key.hash);

	while (*pp && *pp != q)
		pp = &(*pp)->twin_next;
	if (*pp)
		*pp = q->twin_next;
	q->twin_next = NULL;
	q->twin = false;
}

/* A stale answer for @q's client, if serve-stale allows one; true if it was sent. */
static bool serve_stale(struct query *q)
{
	struct qtable *qt = q->qt;
	size_t n;

	if (!qt->stale_s || q->fe == &qt->internal || !q->keyed ||
	    cache_get(qt->cache, &q->key, q->msg, q->len, loop_now(qt->loop), true, qt->scratch, DNS_MAX_MSG,
		      &n, NULL) != CACHE_STALE)
		return false;
	dns_set_id(qt->scratch, q->client_id);
	qt->m->stale_answers++;
	if (qt->query_log)
		qt->org.source = "stale";
	deliver(qt, q->fe, q->ctx, q->msg, q->len, q->max_answer, qt->scratch, n);
	return true;
}

/*
 * The head of the free list, NULL if every slot is in use. Slots are made
 * ready the first time they are needed, so memory is touched only as load
 * grows; freed ones are used again first, while they are still in cache.
 */
static struct query *free_head(struct qtable *qt)
{
	if (!qt->free && qt->fresh < qt->nslots) {
		struct query *q = &qt->slots[qt->fresh];

		q->qt = qt;
		q->upstream_id = (uint16_t)qt->fresh;
		q->msg = q->inline_msg;
		loop_timer_init(&q->deadline, on_deadline, q);
		q->next = NULL;
		qt->free = q;
		qt->fresh++;
	}
	return qt->free;
}

/* Take a slot off the free list for @msg; NULL (and REFUSED or SERVFAIL sent) if none. */
static struct query *slot_take(struct qtable *qt, struct frontend *fe, const void *ctx, size_t ctxlen,
			       const uint8_t *msg, size_t len)
{
	struct query *q = free_head(qt);

	if (!q) {
		qt->m->refused_inflight++;
		reply_error(qt, fe, ctx, msg, len, DNS_RCODE_REFUSED);
		return NULL;
	}
	if (len > QUERY_INLINE) {
		uint8_t *big = malloc(len);

		if (!big) {
			reply_error(qt, fe, ctx, msg, len, DNS_RCODE_SERVFAIL);
			return NULL;
		}
		q->msg = big;
	}
	qt->free = q->next;
	q->next = NULL;
	memcpy(q->msg, msg, len);
	if (ctxlen)
		memcpy(q->ctx, ctx, ctxlen);
	q->len = (uint16_t)len;
	q->client_id = dns_id(msg);
	q->fe = fe;
	q->tries = 0;
	q->tried = 0;
	q->hedged = false;
	q->followers = q->leader = q->fnext = q->twin_next = NULL;
	q->twin = false;
	qt->m->inflight++;
	return q;
}

/*
 * Start @msg (checked, with its key @k) as a query: a follower of its twin in
 * flight, or a leader sent upstream. Returns 0; a reply always comes.
 */
static int query_start(struct qtable *qt, struct frontend *fe, const void *ctx, size_t ctxlen,
		       const uint8_t *msg, size_t len, size_t max_answer, const struct dns_query_info *qi,
		       const struct cache_key *k)
{
	struct query *leader = k ? twin_find(qt, k) : NULL;
	struct query *q = slot_take(qt, fe, ctx, ctxlen, msg, len);

	if (!q)
		return 0;
	q->max_answer = (uint16_t)max_answer;
	q->had_edns = qi->has_edns;
	q->keyed = k != NULL;
	if (k)
		q->key = *k;
	note_client(q);
	if (loop_timer_set(qt->loop, &q->deadline, leader ? qt->timeout_ms : qt->timeout_ms / 2) < 0) {
		query_fail(q, DNS_RCODE_SERVFAIL);
		return 0;
	}
	if (leader) {
		/* the same question is on its way: its answer serves this one too */
		q->state = Q_FOLLOWER;
		q->hedged = true;	/* a follower has no connection of its own */
		q->leader = leader;
		q->fnext = leader->followers;
		leader->followers = q;
		qt->m->deduplicated++;
		return 0;
	}
	if (k)
		twin_add(q);
	if (log_debug_enabled())
		log_debug("query id %u type %u via %s", q->client_id, qi->qtype, fe->ops->name);
	pool_send(qt->pool, q);
	return 0;
}

/* Refresh @msg's cache entry in the background: a query whose answer only goes to the cache. */
static void prefetch(struct qtable *qt, const uint8_t *msg, size_t len, const struct dns_query_info *qi,
		     const struct cache_key *k)
{
	if (!free_head(qt) || twin_find(qt, k))
		return;		/* no room, or already on its way */
	qt->m->prefetches++;
	query_start(qt, &qt->internal, NULL, 0, msg, len, DNS_MAX_MSG, qi, k);
}

int query_receive(struct qtable *qt, struct frontend *fe, const void *ctx, size_t ctxlen,
		  const uint8_t *msg, size_t len, size_t max_answer, const union sockaddr_any *client)
{
	struct dns_query_info qi;
	struct cache_key k;
	bool cacheable;
	int rc;

	qt->m->queries[fe->ops->transport]++;
	qt->rx_client = client;
	if (qt->query_log)
		qlog_origin(qt, client, loop_now(qt->loop), "local", NULL);
	rc = dns_check_query(msg, len, &qi);
	if (rc == DNS_QUERY_DROP) {
		qt->m->malformed++;
		return -1;
	}
	if (rc == DNS_QUERY_OK && len > QUERY_MAX_LEN)
		rc = DNS_RCODE_FORMERR;
	if (rc != DNS_QUERY_OK) {
		qt->m->malformed++;
		reply_error(qt, fe, ctx, msg, len, rc);
		return 0;
	}
	if (client && !ratelimit_allow(qt->rl, client, loop_now(qt->loop))) {
		qt->m->ratelimited++;
		reply_error(qt, fe, ctx, msg, len, DNS_RCODE_REFUSED);
		return 0;
	}
	if (fe->ops->transport == MT_UDP && qi.udp_size < max_answer)
		max_answer = qi.udp_size;	/* RFC 6891 6.2.5: what the client takes */
	if (max_answer > DNS_MAX_MSG)
		max_answer = DNS_MAX_MSG;
	/* self-test markers go upstream every time: never cached, never a twin */
	qt->rx_marker = qi.qtype == DNS_TYPE_TXT && selftest_is_marker(msg, len);
	cacheable = !qt->rx_marker && cache_key_make(msg, len, &k) == 0;
	if (cacheable && qt->cache) {
		bool refresh = false;
		size_t n;

		if (cache_get(qt->cache, &k, msg, len, loop_now(qt->loop), false, qt->scratch, DNS_MAX_MSG,
			      &n, &refresh) == CACHE_HIT) {
			qt->m->cache_hits++;
			if (qt->query_log)
				qt->org.source = "cache";
			/* before the reply: replying may end the client (TCP) and @msg with it */
			if (refresh)
				prefetch(qt, msg, len, &qi, &k);
			deliver(qt, fe, ctx, msg, len, (uint16_t)max_answer, qt->scratch, n);
			return 0;
		}
		qt->m->cache_misses++;
	}
	return query_start(qt, fe, ctx, ctxlen, msg, len, max_answer, &qi, cacheable ? &k : NULL);
}

/*
 * End @q: its client gets @ans (a copy it may change) or, if @ans is NULL,
 * @rcode (a stale answer instead of SERVFAIL when serve-stale has one).
 */
static void finish(struct query *q, uint8_t *ans, size_t len, int rcode)
{
	if (q->qt->query_log)
		qlog_origin(q->qt, &q->client, q->recv_ms, ans ? "upstream" : "local", ans ? q->qt->ans_label : NULL);
	if (ans && q->selftest) {
		len = marker_answer(q, &ans, len);
		if (!len) {
			ans = NULL;
			rcode = DNS_RCODE_SERVFAIL;
		}
	}
	if (ans) {
		dns_set_id(ans, q->client_id);
		deliver(q->qt, q->fe, q->ctx, q->msg, q->len, q->max_answer, ans, len);
	} else if (rcode != DNS_RCODE_SERVFAIL || !serve_stale(q)) {
		reply_error(q->qt, q->fe, q->ctx, q->msg, q->len, rcode);
	}
	query_free(q);
}

/* End @q's twins as @q ends: with a copy of @ans each, or @rcode. */
static void finish_followers(struct query *q, const uint8_t *ans, size_t len, int rcode)
{
	struct query *f;

	while ((f = q->followers)) {
		q->followers = f->fnext;
		f->leader = NULL;
		if (ans)
			memcpy(q->qt->scratch, ans, len);
		finish(f, ans ? q->qt->scratch : NULL, len, rcode);
	}
}

/* @q failed at its deadline: its oldest twin, with time left, asks upstream in its place. */
static void promote(struct query *q)
{
	struct query *f = q->followers, *r;

	if (!f)
		return;
	q->followers = NULL;
	f->leader = NULL;
	f->state = Q_FREE;
	f->followers = f->fnext;
	f->fnext = NULL;
	for (r = f->followers; r; r = r->fnext)
		r->leader = f;
	if (q->twin) {
		twin_remove(q);
		twin_add(f);
	}
	pool_send(q->qt->pool, f);
}

void query_answer(struct query *q, uint8_t *ans, size_t len)
{
	struct qtable *qt = q->qt;
	size_t n;

	/* what goes to clients and the cache: no padding, no keepalive, OPT only if asked */
	n = edns_clean_answer(ans, len, !q->had_edns);
	if (n)
		len = n;
	if (qt->cache && q->keyed)
		cache_put(qt->cache, &q->key, ans, len, loop_now(qt->loop));
	if (qt->query_log || q->selftest)
		qt->ans_label = pool_conn_label(q->conn);
	finish_followers(q, ans, len, 0);
	finish(q, ans, len, 0);
}

void query_fail(struct query *q, int rcode)
{
	finish_followers(q, NULL, 0, rcode);
	finish(q, NULL, 0, rcode);
}

void query_free(struct query *q)
{
	struct qtable *qt = q->qt;
	unsigned slot_mask = (1u << qt->slot_bits) - 1;

	if (q->state == Q_FOLLOWER) {
		/* off its leader's list (it timed out first) */
		if (q->leader) {
			struct query **pp = &q->leader->followers;

			while (*pp && *pp != q)
				pp = &(*pp)->fnext;
			if (*pp)
				*pp = q->fnext;
		}
		q->leader = q->fnext = NULL;
	} else {
		pool_unlink(q);
		if (q->twin)
			twin_remove(q);
		finish_followers(q, NULL, 0, DNS_RCODE_SERVFAIL);	/* none left, normally */
	}
	loop_timer_cancel(qt->loop, &q->deadline);
	if (q->msg != q->inline_msg) {
		free(q->msg);
		q->msg = q->inline_msg;
	}
	/* next generation of this slot: late answers to this one won't match */
	q->upstream_id = (uint16_t)(((q->upstream_id & ~slot_mask) + (slot_mask + 1)) | (q->upstream_id & slot_mask));
	q->state = Q_FREE;
	q->fe = NULL;
	q->keyed = false;
	q->selftest = false;
	q->next = qt->free;
	qt->free = q;
	qt->m->inflight--;
}

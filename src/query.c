/*
 * query.c - the in-flight query table: checks client messages, owns each
 * query until it is answered, failed or timed out, and restores the client's
 * ID before the front-end replies. Never logs a query name above debug.
 */
#include "query.h"

#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "log.h"
#include "upstream.h"

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

static void on_deadline(struct loop *l, void *arg)
{
	struct query *q = arg;

	(void)l;
	q->qt->m->timeouts++;
	pool_deadline(q);
	query_fail(q, DNS_RCODE_SERVFAIL);
}

int qtable_init(struct qtable *qt, unsigned nslots, unsigned timeout_ms, struct loop *l,
		struct pool *pool, struct metrics *m)
{
	memset(qt, 0, sizeof(*qt));
	qt->slots = calloc(nslots, sizeof(*qt->slots));
	if (!qt->slots)
		return -1;
	qt->nslots = nslots;
	while ((1u << qt->slot_bits) < nslots)
		qt->slot_bits++;
	qt->loop = l;
	qt->pool = pool;
	qt->m = m;
	qt->timeout_ms = timeout_ms;
	/* free list in slot order, so the first queries use the first slots */
	for (unsigned i = nslots; i-- > 0;) {
		struct query *q = &qt->slots[i];

		q->qt = qt;
		q->upstream_id = (uint16_t)i;
		q->msg = q->inline_msg;
		loop_timer_init(&q->deadline, on_deadline, q);
		q->next = qt->free;
		qt->free = q;
	}
	return 0;
}

void qtable_destroy(struct qtable *qt)
{
	for (unsigned i = 0; i < qt->nslots; i++)
		if (qt->slots[i].msg != qt->slots[i].inline_msg)
			free(qt->slots[i].msg);
	free(qt->slots);
	qt->slots = NULL;
}

struct query *qtable_lookup(struct qtable *qt, uint16_t id, const struct upconn *conn)
{
	unsigned slot = id & ((1u << qt->slot_bits) - 1);
	struct query *q;

	if (slot >= qt->nslots)
		return NULL;
	q = &qt->slots[slot];
	if (q->state != Q_SENT || q->upstream_id != id || q->conn != conn)
		return NULL;	/* late answer to a freed or re-sent query */
	return q;
}

/* Send @msg, an answer to the client of @q, through its front-end, and count it. */
static void reply(struct query *q, uint8_t *msg, size_t len)
{
	metrics_count_rcode(q->qt->m, dns_rcode(msg));
	q->fe->ops->reply(q->fe, q->ctx, msg, len);
}

/* Answer the client of @msg (@ctx, via @fe) with @rcode, and count it. */
static void reply_error(struct qtable *qt, struct frontend *fe, const void *ctx,
			const uint8_t *msg, size_t len, int rcode)
{
	uint8_t out[DNS_HDR_LEN + DNS_MAX_NAME + 4];

	len = dns_make_error(msg, len, rcode, out, sizeof(out));
	metrics_count_rcode(qt->m, rcode);
	fe->ops->reply(fe, ctx, out, len);
}

int query_receive(struct qtable *qt, struct frontend *fe, const void *ctx, size_t ctxlen,
		  const uint8_t *msg, size_t len, size_t max_answer)
{
	struct dns_query_info qi;
	struct query *q;
	int rc;

	qt->m->queries[fe->ops->transport]++;
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
	q = qt->free;
	if (!q) {
		qt->m->refused_inflight++;
		reply_error(qt, fe, ctx, msg, len, DNS_RCODE_REFUSED);
		return 0;
	}
	if (len > QUERY_INLINE) {
		uint8_t *big = malloc(len);

		if (!big) {
			reply_error(qt, fe, ctx, msg, len, DNS_RCODE_SERVFAIL);
			return 0;
		}
		q->msg = big;
	}
	qt->free = q->next;
	q->next = NULL;
	memcpy(q->msg, msg, len);
	memcpy(q->ctx, ctx, ctxlen);
	q->len = (uint16_t)len;
	q->client_id = dns_id(msg);
	if (fe->ops->transport == MT_UDP && qi.udp_size < max_answer)
		max_answer = qi.udp_size;	/* RFC 6891 6.2.5: what the client takes */
	q->max_answer = (uint16_t)(max_answer < DNS_MAX_MSG ? max_answer : DNS_MAX_MSG);
	q->fe = fe;
	q->tries = 0;
	q->tried = 0;
	qt->m->inflight++;
	if (loop_timer_set(qt->loop, &q->deadline, qt->timeout_ms) < 0) {
		query_fail(q, DNS_RCODE_SERVFAIL);
		return 0;
	}
	if (log_debug_enabled())
		log_debug("query id %u type %u via %s", q->client_id, qi.qtype, fe->ops->name);
	pool_send(qt->pool, q);
	return 0;
}

void query_answer(struct query *q, uint8_t *ans, size_t len)
{
	uint8_t tc[DNS_UDP_MIN];	/* header + question + OPT always fit */

	dns_set_id(ans, q->client_id);
	if (len > q->max_answer) {
		size_t n = dns_truncate(ans, len, tc, sizeof(tc) < q->max_answer ? sizeof(tc) : q->max_answer);

		if (n == 0) {
			query_fail(q, DNS_RCODE_SERVFAIL);
			return;
		}
		q->qt->m->truncated++;
		reply(q, tc, n);
	} else {
		reply(q, ans, len);
	}
	query_free(q);
}

void query_fail(struct query *q, int rcode)
{
	reply_error(q->qt, q->fe, q->ctx, q->msg, q->len, rcode);
	query_free(q);
}

void query_free(struct query *q)
{
	struct qtable *qt = q->qt;
	unsigned slot_mask = (1u << qt->slot_bits) - 1;

	pool_unlink(q);
	loop_timer_cancel(qt->loop, &q->deadline);
	if (q->msg != q->inline_msg) {
		free(q->msg);
		q->msg = q->inline_msg;
	}
	/* next generation of this slot: late answers to this one won't match */
	q->upstream_id = (uint16_t)(((q->upstream_id & ~slot_mask) + (slot_mask + 1)) | (q->upstream_id & slot_mask));
	q->state = Q_FREE;
	q->fe = NULL;
	q->next = qt->free;
	qt->free = q;
	qt->m->inflight--;
}

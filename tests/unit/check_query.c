/*
 * check_query.c - the in-flight query table: ID rewriting and matching,
 * out-of-order and late answers, truncation for UDP clients, malformed
 * input, the in-flight cap and the per-query deadline. The upstream pool is
 * replaced by a stand-in that records what would be sent.
 */
#define _GNU_SOURCE
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "cache.h"
#include "dns.h"
#include "loop.h"
#include "query.h"
#include "ratelimit.h"
#include "selftest.h"
#include "upstream.h"
#include "unit.h"

/* ---- stand-ins for the pool: queries "sent" are kept in a list ---- */

static struct upconn *const FAKE_CONN = (struct upconn *)0x1000;
static struct upconn *const OTHER_CONN = (struct upconn *)0x2000;
static struct qlist sent;

static bool all_down;	/* the stand-in pool has no usable upstream */

void pool_send(struct pool *p, struct query *q)
{
	(void)p;
	if (all_down) {
		query_fail(q, DNS_RCODE_SERVFAIL);
		return;
	}
	q->tries++;
	q->conn = FAKE_CONN;
	q->state = Q_SENT;
	qlist_push(&sent, q);
}

void pool_unlink(struct query *q)
{
	if (q->conn)
		qlist_remove(&sent, q);
	q->conn = NULL;
}

void pool_deadline(struct query *q)
{
	pool_unlink(q);
}

static int hedges;

const char *pool_conn_label(const struct upconn *c)
{
	(void)c;
	return "test-upstream";
}

void pool_hedge(struct query *q)
{
	(void)q;
	hedges++;
}

/* ---- a front-end that records replies ---- */

struct reply {
	int client;
	uint8_t msg[4096];
	size_t len;
};

static struct reply replies[64];
static int nreplies;

static void rec_reply(struct frontend *fe, const void *ctx, const uint8_t *msg, size_t len)
{
	(void)fe;
	ck_assert_int_lt(nreplies, 64);
	ck_assert_uint_le(len, sizeof(replies[0].msg));
	memcpy(&replies[nreplies].client, ctx, sizeof(int));
	memcpy(replies[nreplies].msg, msg, len);
	replies[nreplies].len = len;
	nreplies++;
}

static const struct frontend_ops rec_ops = { .name = "test", .transport = MT_UDP, .reply = rec_reply };
static struct frontend rec_fe = { .ops = &rec_ops };

static struct loop *lp;
static struct metrics m;
static struct qtable qt;

static void setup_n(unsigned slots, unsigned timeout)
{
	all_down = false;
	memset(&sent, 0, sizeof(sent));
	memset(&m, 0, sizeof(m));
	nreplies = 0;
	lp = loop_new();
	ck_assert_ptr_nonnull(lp);
	ck_assert_int_eq(qtable_init(&qt, slots, timeout, lp, NULL, &m), 0);
}

static void setup(void) { setup_n(8, 3000); }

static void teardown(void)
{
	while (sent.head)
		query_free(sent.head);
	qtable_destroy(&qt);
	loop_free(lp);
}

/* ---- message builders ---- */

/* A query for @name (dotted, no trailing dot) type A; with @edns an OPT advertising @udp. */
static size_t make_query(uint8_t *buf, uint16_t id, const char *name, int edns, uint16_t udp)
{
	size_t n = 12;
	const char *p = name;

	memset(buf, 0, 12);
	wire_put_u16(buf, id);
	buf[2] = 0x01;			/* RD */
	wire_put_u16(buf + 4, 1);
	wire_put_u16(buf + 10, edns ? 1 : 0);
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);

		buf[n++] = (uint8_t)l;
		memcpy(buf + n, p, l);
		n += l;
		p += l + (dot ? 1 : 0);
	}
	buf[n++] = 0;
	wire_put_u16(buf + n, 1);
	wire_put_u16(buf + n + 2, 1);
	n += 4;
	if (edns) {
		buf[n] = 0;
		wire_put_u16(buf + n + 1, DNS_TYPE_OPT);
		wire_put_u16(buf + n + 3, udp);
		memset(buf + n + 5, 0, 6);
		n += 11;
	}
	return n;
}

/* The answer to @query (as sent upstream) with @nrr A records of 16 bytes each. */
static size_t make_answer(uint8_t *buf, const uint8_t *query, size_t qend, int nrr)
{
	size_t n = qend;

	memcpy(buf, query, qend);
	buf[2] |= 0x80;			/* QR */
	buf[3] = 0x80;			/* RA, NOERROR */
	wire_put_u16(buf + 6, (uint16_t)nrr);
	wire_put_u16(buf + 10, 0);
	for (int i = 0; i < nrr; i++) {
		static const uint8_t rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 203, 0, 113, 10 };

		memcpy(buf + n, rr, sizeof(rr));
		n += sizeof(rr);
	}
	return n;
}

/* What the stand-in pool would have put on the wire for @q: its message with the upstream ID. */
static size_t wire_of(const struct query *q, uint8_t *buf)
{
	memcpy(buf, q->msg, q->len);
	dns_set_id(buf, q->upstream_id);
	return q->len;
}

static void receive(int client, const uint8_t *msg, size_t len)
{
	query_receive(&qt, &rec_fe, &client, sizeof(client), msg, len, QUERY_UDP_MAX, NULL);
}

START_TEST(colliding_client_ids_get_distinct_upstream_ids)
{
	uint8_t q[512], q2[512];
	size_t n = make_query(q, 0x1234, "www.dotproxy.test", 0, 0);
	size_t n2 = make_query(q2, 0x1234, "mail.dotproxy.test", 0, 0);

	receive(1, q, n);
	receive(2, q2, n2);
	ck_assert_uint_eq(sent.n, 2);
	ck_assert_uint_ne(sent.head->upstream_id, sent.tail->upstream_id);
	ck_assert_uint_eq(m.inflight, 2);
}
END_TEST

START_TEST(answers_out_of_order_reach_their_clients_with_their_ids)
{
	uint8_t q1[512], q2[512], w[512], a[1024];
	size_t n1 = make_query(q1, 0x1111, "a.dotproxy.test", 0, 0);
	size_t n2 = make_query(q2, 0x2222, "b.dotproxy.test", 0, 0);
	struct query *first, *second;
	size_t wl, al;

	receive(1, q1, n1);
	receive(2, q2, n2);
	first = sent.head;
	second = sent.tail;
	/* the second query's answer arrives first */
	wl = wire_of(second, w);
	al = make_answer(a, w, wl, 1);
	ck_assert_ptr_eq(qtable_lookup(&qt, dns_id(a), FAKE_CONN), second);
	query_answer(second, a, al);
	wl = wire_of(first, w);
	al = make_answer(a, w, wl, 1);
	ck_assert_ptr_eq(qtable_lookup(&qt, dns_id(a), FAKE_CONN), first);
	query_answer(first, a, al);

	ck_assert_int_eq(nreplies, 2);
	ck_assert_int_eq(replies[0].client, 2);
	ck_assert_uint_eq(dns_id(replies[0].msg), 0x2222);
	ck_assert_int_eq(replies[1].client, 1);
	ck_assert_uint_eq(dns_id(replies[1].msg), 0x1111);
	ck_assert_uint_eq(m.answers[MR_NOERROR], 2);
	ck_assert_uint_eq(m.inflight, 0);
}
END_TEST

START_TEST(late_answer_to_a_freed_slot_is_not_matched)
{
	uint8_t q[512];
	size_t n = make_query(q, 7, "www.dotproxy.test", 0, 0);
	uint16_t old_id;
	struct query *again;

	receive(1, q, n);
	old_id = sent.head->upstream_id;
	query_fail(sent.head, DNS_RCODE_SERVFAIL);	/* as a deadline would */
	ck_assert_ptr_null(qtable_lookup(&qt, old_id, FAKE_CONN));
	/* the slot is reused by the next query, under a new ID */
	receive(2, q, n);
	again = sent.head;
	ck_assert_uint_ne(again->upstream_id, old_id);
	ck_assert_ptr_null(qtable_lookup(&qt, old_id, FAKE_CONN));
	ck_assert_ptr_eq(qtable_lookup(&qt, again->upstream_id, FAKE_CONN), again);
}
END_TEST

START_TEST(answer_on_another_connection_is_not_matched)
{
	uint8_t q[512];

	receive(1, q, make_query(q, 7, "www.dotproxy.test", 0, 0));
	ck_assert_ptr_null(qtable_lookup(&qt, sent.head->upstream_id, OTHER_CONN));
	ck_assert_ptr_null(qtable_lookup(&qt, (uint16_t)(sent.head->upstream_id ^ 0x8000), FAKE_CONN));
}
END_TEST

START_TEST(large_answer_is_truncated_for_a_512_byte_client)
{
	uint8_t q[512], w[512], a[4096];
	size_t n = make_query(q, 0xbeef, "big.dotproxy.test", 0, 0);
	size_t wl, al;

	receive(1, q, n);
	wl = wire_of(sent.head, w);
	al = make_answer(a, w, wl, 40);		/* 40 * 16 + question > 512 */
	ck_assert_uint_gt(al, 512);
	query_answer(sent.head, a, al);
	ck_assert_int_eq(nreplies, 1);
	ck_assert_uint_le(replies[0].len, 512);
	ck_assert(replies[0].msg[2] & 0x02);			/* TC */
	ck_assert_uint_eq(wire_get_u16(replies[0].msg + 6), 0);	/* no partial answer */
	ck_assert_uint_eq(dns_id(replies[0].msg), 0xbeef);
	ck_assert_uint_eq(m.truncated, 1);
}
END_TEST

START_TEST(edns_client_gets_the_whole_answer)
{
	uint8_t q[512], w[512], a[4096];
	size_t n = make_query(q, 0xbeef, "big.dotproxy.test", 1, 4096);
	size_t wl, al;

	receive(1, q, n);
	wl = wire_of(sent.head, w);
	al = make_answer(a, w, wl, 40);
	query_answer(sent.head, a, al);
	ck_assert_int_eq(nreplies, 1);
	ck_assert_uint_eq(replies[0].len, al);
	ck_assert(!(replies[0].msg[2] & 0x02));
	ck_assert_uint_eq(m.truncated, 0);
}
END_TEST

START_TEST(transport_limit_below_the_edns_size_truncates)
{
	uint8_t q[512], w[512], a[4096];
	size_t n = make_query(q, 0xbeef, "big.dotproxy.test", 1, 4096);
	int client = 1;
	size_t wl, al;

	/* e.g. an answer packet that must fit the interface MTU */
	query_receive(&qt, &rec_fe, &client, sizeof(client), q, n, 600, NULL);
	wl = wire_of(sent.head, w);
	al = make_answer(a, w, wl, 40);
	ck_assert_uint_gt(al, 600);
	query_answer(sent.head, a, al);
	ck_assert_int_eq(nreplies, 1);
	ck_assert_uint_le(replies[0].len, 600);
	ck_assert(replies[0].msg[2] & 0x02);
	ck_assert_uint_eq(m.truncated, 1);
}
END_TEST

START_TEST(malformed_query_gets_formerr_and_is_counted)
{
	uint8_t q[512];
	size_t n = make_query(q, 0x4242, "www.dotproxy.test", 0, 0);

	q[n++] = 0xff;		/* trailing junk */
	receive(1, q, n);
	ck_assert_uint_eq(sent.n, 0);
	ck_assert_int_eq(nreplies, 1);
	ck_assert_int_eq(dns_rcode(replies[0].msg), DNS_RCODE_FORMERR);
	ck_assert_uint_eq(dns_id(replies[0].msg), 0x4242);
	ck_assert_uint_eq(m.malformed, 1);
	ck_assert_uint_eq(m.inflight, 0);
}
END_TEST

START_TEST(response_or_runt_is_dropped_silently)
{
	uint8_t q[512];
	size_t n = make_query(q, 1, "www.dotproxy.test", 0, 0);

	q[2] |= 0x80;		/* QR: a response sent to us */
	receive(1, q, n);
	receive(1, q, 5);
	ck_assert_int_eq(nreplies, 0);
	ck_assert_uint_eq(sent.n, 0);
	ck_assert_uint_eq(m.malformed, 2);
}
END_TEST

START_TEST(past_the_inflight_cap_queries_are_refused)
{
	uint8_t q[512];
	size_t n = 0;

	for (int i = 0; i < 8; i++) {
		char name[32];

		snprintf(name, sizeof(name), "q%d.dotproxy.test", i);	/* distinct: no twins */
		n = make_query(q, 9, name, 0, 0);
		receive(i, q, n);
	}
	ck_assert_uint_eq(sent.n, 8);
	receive(99, q, n);
	ck_assert_uint_eq(sent.n, 8);
	ck_assert_int_eq(nreplies, 1);
	ck_assert_int_eq(replies[0].client, 99);
	ck_assert_int_eq(dns_rcode(replies[0].msg), DNS_RCODE_REFUSED);
	ck_assert_uint_eq(m.refused_inflight, 1);
	/* a freed slot is usable again */
	query_fail(sent.head, DNS_RCODE_SERVFAIL);
	n = make_query(q, 9, "q100.dotproxy.test", 0, 0);
	receive(100, q, n);
	ck_assert_uint_eq(sent.n, 8);
}
END_TEST

static void stop_loop(struct loop *l, void *arg)
{
	(void)arg;
	loop_stop(l);
}

START_TEST(deadline_answers_servfail)
{
	uint8_t q[512];
	size_t n = make_query(q, 0x5151, "slow.dotproxy.test", 0, 0);
	struct loop_timer stop;

	teardown();
	setup_n(8, 100);
	hedges = 0;
	receive(3, q, n);
	loop_timer_init(&stop, stop_loop, NULL);
	loop_timer_set(lp, &stop, 300);
	ck_assert_int_eq(loop_run(lp), 0);
	ck_assert_int_eq(nreplies, 1);
	ck_assert_int_eq(replies[0].client, 3);
	ck_assert_int_eq(dns_rcode(replies[0].msg), DNS_RCODE_SERVFAIL);
	ck_assert_uint_eq(dns_id(replies[0].msg), 0x5151);
	ck_assert_uint_eq(m.timeouts, 1);
	ck_assert_uint_eq(sent.n, 0);
	ck_assert_int_eq(hedges, 1);	/* asked once, half-way */
}
END_TEST

START_TEST(twins_in_flight_go_upstream_once)
{
	uint8_t q1[512], q2[512], q3[512], w[512], a[1024];
	size_t n1 = make_query(q1, 0x0101, "www.dotproxy.test", 0, 0);
	size_t n2 = make_query(q2, 0x0202, "WWW.DotProxy.test", 0, 0);	/* the same question */
	size_t n3 = make_query(q3, 0x0303, "www.dotproxy.test", 1, 1232);	/* EDNS: not the same */
	size_t wl, al;

	receive(1, q1, n1);
	receive(2, q2, n2);
	receive(3, q3, n3);
	ck_assert_uint_eq(sent.n, 2);		/* q2 waits for q1's answer */
	ck_assert_uint_eq(m.deduplicated, 1);
	ck_assert_uint_eq(m.inflight, 3);
	wl = wire_of(sent.head, w);
	al = make_answer(a, w, wl, 1);
	query_answer(sent.head, a, al);
	ck_assert_int_eq(nreplies, 2);
	/* each with its own ID and its own letter case in the question */
	for (int i = 0; i < 2; i++) {
		const struct reply *r = &replies[i];
		const uint8_t *own = r->client == 1 ? q1 : q2;

		ck_assert_uint_eq(dns_id(r->msg), r->client == 1 ? 0x0101 : 0x0202);
		ck_assert_mem_eq(r->msg + DNS_HDR_LEN, own + DNS_HDR_LEN, n1 - DNS_HDR_LEN);
		ck_assert_int_eq(dns_rcode(r->msg), DNS_RCODE_NOERROR);
		ck_assert_uint_eq(wire_get_u16(r->msg + 6), 1);
	}
	ck_assert_uint_eq(m.inflight, 1);	/* q3 still waits */
}
END_TEST

START_TEST(twin_gets_servfail_with_its_leader)
{
	uint8_t q[512];
	size_t n = make_query(q, 0x0404, "www.dotproxy.test", 0, 0);

	receive(1, q, n);
	receive(2, q, n);
	ck_assert_uint_eq(sent.n, 1);
	query_fail(sent.head, DNS_RCODE_SERVFAIL);
	ck_assert_int_eq(nreplies, 2);
	ck_assert_int_eq(dns_rcode(replies[0].msg), DNS_RCODE_SERVFAIL);
	ck_assert_int_eq(dns_rcode(replies[1].msg), DNS_RCODE_SERVFAIL);
	ck_assert_uint_eq(m.inflight, 0);
	/* the next one is a leader again */
	receive(3, q, n);
	ck_assert_uint_eq(sent.n, 1);
	ck_assert_uint_eq(m.deduplicated, 1);
}
END_TEST

/* An answer to @wire with one A record whose TTL is @ttl seconds. */
static size_t answer_ttl(uint8_t *a, const uint8_t *wire, size_t wl, uint32_t ttl)
{
	size_t al = make_answer(a, wire, wl, 1);

	wire_put_u16(a + al - 10, (uint16_t)(ttl >> 16));	/* the RR's TTL: 10 octets from its end */
	wire_put_u16(a + al - 8, (uint16_t)ttl);
	return al;
}

START_TEST(cached_answer_needs_no_upstream)
{
	uint8_t q[512], w[512], a[1024];
	size_t n = make_query(q, 0x0505, "www.dotproxy.test", 0, 0), wl, al;
	struct cache *c = cache_new(16, 0, 0);

	ck_assert_ptr_nonnull(c);
	qtable_options(&qt, c, 0, NULL);
	receive(1, q, n);
	wl = wire_of(sent.head, w);
	al = answer_ttl(a, w, wl, 300);
	query_answer(sent.head, a, al);
	dns_set_id(q, 0x0606);
	receive(2, q, n);
	ck_assert_uint_eq(sent.n, 0);		/* nothing went upstream */
	ck_assert_int_eq(nreplies, 2);
	ck_assert_uint_eq(dns_id(replies[1].msg), 0x0606);
	ck_assert_int_eq(dns_rcode(replies[1].msg), DNS_RCODE_NOERROR);
	ck_assert_uint_eq(replies[1].len, al);
	ck_assert_uint_eq(m.cache_hits, 1);
	ck_assert_uint_eq(m.cache_misses, 1);
	qtable_options(&qt, NULL, 0, NULL);
	cache_free(c);
}
END_TEST

/* Self-test markers: never cached, never twins, answered with dotproxy's TXT whatever the upstream said. */
START_TEST(marker_goes_upstream_every_time_and_gets_dotproxys_txt)
{
	static const char nonce[] = "0123456789abcdef0123456789abcdef";
	uint8_t q[512], w[512], a[1024];
	size_t n = make_query(q, 0x0808, "0123456789ABCDEF0123456789abcdef.self-test.dotproxy.invalid", 0, 0), wl, al;
	struct cache *c = cache_new(16, 0, 0);
	struct selftest_result r;

	ck_assert_ptr_nonnull(c);
	qtable_options(&qt, c, 0, NULL);
	qtable_report_options(&qt, false, "tproxy");
	wire_put_u16(q + n - 4, DNS_TYPE_TXT);
	receive(1, q, n);
	receive(2, q, n);
	ck_assert_uint_eq(sent.n, 2);		/* the same marker twice: two upstream queries */
	ck_assert_uint_eq(m.deduplicated, 0);
	for (int i = 0; i < 2; i++) {
		wl = wire_of(sent.head, w);
		al = make_answer(a, w, wl, 0);
		a[3] = 0x80 | DNS_RCODE_NXDOMAIN;
		query_answer(sent.head, a, al);
	}
	ck_assert_int_eq(nreplies, 2);
	for (int i = 0; i < 2; i++) {
		ck_assert_uint_eq(dns_id(replies[i].msg), 0x0808);
		ck_assert_int_eq(dns_rcode(replies[i].msg), DNS_RCODE_NOERROR);
		ck_assert_int_eq(selftest_classify(replies[i].msg, replies[i].len, q, n, nonce, &r), 0);
		ck_assert_int_eq(r.verdict, ST_PRIVATE);
		ck_assert_str_eq(r.upstream, "test-upstream");
		ck_assert_ptr_nonnull(memmem(replies[i].msg, replies[i].len, "upstream-rcode=NXDOMAIN", 23));
		ck_assert_ptr_nonnull(memmem(replies[i].msg, replies[i].len, "frontend=tproxy transport=udp", 29));
	}
	/* and again: not from the cache */
	receive(3, q, n);
	ck_assert_uint_eq(sent.n, 1);
	ck_assert_uint_eq(m.cache_hits, 0);
	/* with no upstream: SERVFAIL, as for any query */
	query_fail(sent.head, DNS_RCODE_SERVFAIL);
	ck_assert_int_eq(dns_rcode(replies[2].msg), DNS_RCODE_SERVFAIL);
	qtable_options(&qt, NULL, 0, NULL);
	cache_free(c);
}
END_TEST

static void stop_loop(struct loop *l, void *arg);

START_TEST(expired_answer_is_served_stale_when_upstreams_fail)
{
	uint8_t q[512], w[512], a[1024];
	size_t n = make_query(q, 0x0707, "www.dotproxy.test", 0, 0), wl, al;
	struct cache *c = cache_new(16, 0, 60);
	struct loop_timer stop;

	ck_assert_ptr_nonnull(c);
	qtable_options(&qt, c, 60, NULL);
	receive(1, q, n);
	wl = wire_of(sent.head, w);
	al = answer_ttl(a, w, wl, 1);		/* 1 s */
	query_answer(sent.head, a, al);
	loop_timer_init(&stop, stop_loop, NULL);
	loop_timer_set(lp, &stop, 1100);	/* let it expire */
	ck_assert_int_eq(loop_run(lp), 0);
	all_down = true;
	receive(2, q, n);
	ck_assert_int_eq(nreplies, 2);
	ck_assert_int_eq(dns_rcode(replies[1].msg), DNS_RCODE_NOERROR);
	ck_assert_uint_eq(wire_get_u16(replies[1].msg + 6), 1);
	/* RFC 8767 4: a stale answer's TTL is 30 s */
	ck_assert_uint_eq(((uint32_t)wire_get_u16(replies[1].msg + al - 10) << 16 |
			   wire_get_u16(replies[1].msg + al - 8)), 30);
	ck_assert_uint_eq(m.stale_answers, 1);
	/* without serve-stale the same gets SERVFAIL */
	qtable_options(&qt, c, 0, NULL);
	receive(3, q, n);
	ck_assert_int_eq(dns_rcode(replies[2].msg), DNS_RCODE_SERVFAIL);
	qtable_options(&qt, NULL, 0, NULL);
	cache_free(c);
}
END_TEST

START_TEST(rate_limited_client_is_refused_and_others_are_not)
{
	struct ratelimit *rl = ratelimit_new(1);	/* 1 a second, bursts of 2 */
	union sockaddr_any a1 = { .sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc0000202) } };
	union sockaddr_any a2 = { .sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc0000203) } };
	uint8_t q[512];
	int client = 1;

	ck_assert_ptr_nonnull(rl);
	qtable_options(&qt, NULL, 0, rl);
	for (int i = 0; i < 3; i++) {
		char name[32];

		snprintf(name, sizeof(name), "r%d.dotproxy.test", i);
		query_receive(&qt, &rec_fe, &client, sizeof(client), q, make_query(q, 1, name, 0, 0),
			      QUERY_UDP_MAX, &a1);
	}
	ck_assert_uint_eq(sent.n, 2);
	ck_assert_int_eq(nreplies, 1);
	ck_assert_int_eq(dns_rcode(replies[0].msg), DNS_RCODE_REFUSED);
	ck_assert_uint_eq(m.ratelimited, 1);
	client = 2;
	query_receive(&qt, &rec_fe, &client, sizeof(client), q, make_query(q, 1, "x.dotproxy.test", 0, 0),
		      QUERY_UDP_MAX, &a2);
	ck_assert_uint_eq(sent.n, 3);
	qtable_options(&qt, NULL, 0, NULL);
	ratelimit_free(rl);
}
END_TEST

START_TEST(large_query_is_kept_whole)
{
	uint8_t q[2048], w[2048];
	size_t n = make_query(q, 1, "www.dotproxy.test", 1, 1232);

	/* grow the OPT record with an option to go past the inline buffer */
	wire_put_u16(q + n - 2, 1000);
	memset(q + n, 0, 1000);
	wire_put_u16(q + n, 65001);
	wire_put_u16(q + n + 2, 996);
	n += 1000;
	receive(1, q, n);
	ck_assert_uint_eq(sent.n, 1);
	ck_assert_uint_eq(wire_of(sent.head, w), n);
	ck_assert_mem_eq(w + 2, q + 2, n - 2);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("query");
	TCase *tc = tcase_create("table");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, colliding_client_ids_get_distinct_upstream_ids);
	tcase_add_test(tc, answers_out_of_order_reach_their_clients_with_their_ids);
	tcase_add_test(tc, late_answer_to_a_freed_slot_is_not_matched);
	tcase_add_test(tc, answer_on_another_connection_is_not_matched);
	tcase_add_test(tc, large_answer_is_truncated_for_a_512_byte_client);
	tcase_add_test(tc, edns_client_gets_the_whole_answer);
	tcase_add_test(tc, transport_limit_below_the_edns_size_truncates);
	tcase_add_test(tc, malformed_query_gets_formerr_and_is_counted);
	tcase_add_test(tc, response_or_runt_is_dropped_silently);
	tcase_add_test(tc, past_the_inflight_cap_queries_are_refused);
	tcase_add_test(tc, deadline_answers_servfail);
	tcase_add_test(tc, large_query_is_kept_whole);
	tcase_add_test(tc, twins_in_flight_go_upstream_once);
	tcase_add_test(tc, twin_gets_servfail_with_its_leader);
	tcase_add_test(tc, cached_answer_needs_no_upstream);
	tcase_add_test(tc, marker_goes_upstream_every_time_and_gets_dotproxys_txt);
	tcase_add_test(tc, expired_answer_is_served_stale_when_upstreams_fail);
	tcase_add_test(tc, rate_limited_client_is_refused_and_others_are_not);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

/*
 * check_cache.c - unit tests for src/cache.c.
 * Every query and answer is built by hand from the RFC 1035 / RFC 6891 /
 * RFC 2308 wire layouts; the builder notes where each TTL field lands, and
 * every expected TTL, offset and lifetime is worked out here from those
 * layouts, never by calling cache.c. Messages go to the cache in heap copies
 * of their exact length, so ASan sees any read past the end. The clock is
 * the tests' own: T0 plus whole seconds.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "unit.h"

/* RFC 1035 4.1.1 header flag bits, spelled out here rather than taken from cache.c */
#define F_QR		0x8000
#define F_AA		0x0400
#define F_TC		0x0200
#define F_RD		0x0100
#define F_RA		0x0080
#define F_AD		0x0020
#define F_CD		0x0010
#define R_NOERROR	0
#define R_SERVFAIL	2
#define R_NXDOMAIN	3
#define R_REFUSED	5

#define T_A		1
#define T_NS		2
#define T_CNAME		5
#define T_SOA		6
#define T_TXT		16
#define T_AAAA		28
#define T_OPT		41
#define C_IN		1
#define C_CH		3

#define DO_BIT		0x00008000u	/* RFC 3225: in the OPT TTL */

#define T0		1000000u	/* an arbitrary start of the monotonic clock, ms */
#define SEC(s)		((uint64_t)(s) * 1000)

/* ---- the shared message builder, remembering where TTLs are ---- */

#define DNSMSG_FIELDS							\
	size_t ttl_at[16];	/* offsets of the TTL fields of non-OPT records, in order */ \
	unsigned nttl;							\
	size_t opt_ttl_at;	/* offset of the OPT record's TTL field, 0 if none */
#define DNSMSG_ON_TTL(m, type) record_ttl(m, type)
struct msg;
static void record_ttl(struct msg *m, uint16_t type);
#include "dnsmsg.h"

static void record_ttl(struct msg *m, uint16_t type)
{
	if (type == T_OPT) {
		m->opt_ttl_at = m->n;
	} else {
		ck_assert_uint_lt(m->nttl, 16);
		m->ttl_at[m->nttl++] = m->n;
	}
}

/* An A record owned by a pointer to the question name (offset 12). */
static void put_a(struct msg *m, uint32_t ttl, uint8_t last)
{
	const uint8_t ip[4] = { 192, 0, 2, last };

	put_ptr(m, 12);
	put_rr_tail(m, T_A, C_IN, ttl, ip, sizeof(ip));
}

/* An NS record for example.com (at offset 16 in www.example.com's question). */
static void put_ns(struct msg *m, uint32_t ttl)
{
	static const uint8_t rdata[] = { 3, 'n', 's', '1', 0xc0, 16 };

	put_ptr(m, 16);
	put_rr_tail(m, T_NS, C_IN, ttl, rdata, sizeof(rdata));
}

/* RFC 1035 3.3.13: an SOA for example.com with its names compressed to offset 16. */
static void put_soa(struct msg *m, uint32_t ttl, uint32_t minimum)
{
	struct msg rd = { .n = 0 };

	put8(&rd, 2);
	put_bytes(&rd, "ns", 2);
	put_ptr(&rd, 16);
	put8(&rd, 10);
	put_bytes(&rd, "hostmaster", 10);
	put_ptr(&rd, 16);
	put32(&rd, 2024010101);		/* SERIAL */
	put32(&rd, 7200);		/* REFRESH */
	put32(&rd, 3600);		/* RETRY */
	put32(&rd, 1209600);		/* EXPIRE */
	put32(&rd, minimum);		/* MINIMUM */
	put_ptr(m, 16);
	put_rr_tail(m, T_SOA, C_IN, ttl, rd.b, (uint16_t)rd.n);
}

/* RFC 6891 6.1.2: root owner, CLASS = payload size, TTL = ext-rcode/version/DO/Z. */
static void put_opt(struct msg *m, uint32_t ttl)
{
	put8(m, 0);
	put_rr_tail(m, T_OPT, 1232, ttl, NULL, 0);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* A client query for @name/@type: id, flags, and an OPT if @edns (TTL @opt_ttl). */
static void query(struct msg *m, uint16_t id, uint16_t flags, const char *name, uint16_t type, bool edns,
		  uint32_t opt_ttl)
{
	put_hdr(m, id, flags, 1, 0, 0, edns ? 1 : 0);
	put_question(m, name, type, C_IN);
	if (edns)
		put_opt(m, opt_ttl);
}

/* The answer to www.example.com A: two A records with @ttl. */
static void answer_a(struct msg *m, uint32_t ttl)
{
	put_hdr(m, 0x1234, F_QR | F_RD | F_RA, 1, 2, 0, 0);
	put_question(m, "www.example.com", T_A, C_IN);
	put_a(m, ttl, 1);
	put_a(m, ttl, 2);
}

/* A negative answer for www.example.com A with an SOA in authority. */
static void answer_neg(struct msg *m, int rcode, uint32_t soa_ttl, uint32_t minimum)
{
	put_hdr(m, 0x1234, (uint16_t)(F_QR | F_RD | F_RA | rcode), 1, 0, 1, 0);
	put_question(m, "www.example.com", T_A, C_IN);
	put_soa(m, soa_ttl, minimum);
}

static uint8_t *dup(const struct msg *m)
{
	uint8_t *p = malloc(m->n);

	ck_assert_ptr_nonnull(p);
	memcpy(p, m->b, m->n);
	return p;
}

static void make_key(const struct msg *q, struct cache_key *k)
{
	uint8_t *p = dup(q);

	ck_assert_int_eq(cache_key_make(p, q->n, k), 0);
	free(p);
}

static bool put(struct cache *c, const struct msg *q, const struct msg *a, uint64_t now)
{
	struct cache_key k;
	uint8_t *p = dup(a);
	bool ok;

	make_key(q, &k);
	ok = cache_put(c, &k, p, a->n, now);
	free(p);
	return ok;
}

/* Ask for @q at @now into @out (65535 octets); sets *@len. */
static enum cache_result get(struct cache *c, const struct msg *q, uint64_t now, bool stale, uint8_t *out,
			     size_t *len, bool *prefetch)
{
	struct cache_key k;
	uint8_t *p = dup(q);
	enum cache_result r;

	make_key(q, &k);
	r = cache_get(c, &k, p, q->n, now, stale, out, 65535, len, prefetch);
	free(p);
	return r;
}

static uint8_t out[65535];

/* ---- keys ---- */

START_TEST(key_lowercases_name)
{
	static const uint8_t want[] = "\3www\7example\3com";
	struct msg q;
	struct cache_key k;

	query(&q, 1, F_RD, "WwW.ExAmPlE.CoM", T_AAAA, false, 0);
	make_key(&q, &k);
	ck_assert_uint_eq(k.name_len, 17);
	ck_assert_mem_eq(k.name, want, 17);
	ck_assert_uint_eq(k.qtype, T_AAAA);
	ck_assert_uint_eq(k.qclass, C_IN);
	ck_assert_uint_eq(k.flags, CACHE_K_RD);
}
END_TEST

START_TEST(key_case_insensitive_equal)
{
	struct msg q1, q2, q3;
	struct cache_key k1, k2, k3;

	query(&q1, 1, F_RD, "www.example.com", T_A, false, 0);
	query(&q2, 2, F_RD, "WWW.EXAMPLE.COM", T_A, false, 0);
	query(&q3, 1, F_RD, "www.example.com", T_AAAA, false, 0);
	make_key(&q1, &k1);
	make_key(&q2, &k2);
	make_key(&q3, &k3);
	ck_assert(cache_key_equal(&k1, &k2));
	ck_assert_uint_eq(k1.hash, k2.hash);
	ck_assert(!cache_key_equal(&k1, &k3));
	/* RD=0 may get another answer (a referral): another entry */
	query(&q2, 2, 0, "www.example.com", T_A, false, 0);
	make_key(&q2, &k2);
	ck_assert(!cache_key_equal(&k1, &k2));
}
END_TEST

START_TEST(key_flags)
{
	struct msg q;
	struct cache_key k;

	query(&q, 1, F_RD, "www.example.com", T_A, true, 0);
	make_key(&q, &k);
	ck_assert_uint_eq(k.flags, CACHE_K_EDNS | CACHE_K_RD);
	query(&q, 1, F_RD, "www.example.com", T_A, true, DO_BIT);
	make_key(&q, &k);
	ck_assert_uint_eq(k.flags, CACHE_K_EDNS | CACHE_K_DO | CACHE_K_RD);
	/* version 1 and Z bits set but not DO: still only EDNS */
	query(&q, 1, F_RD, "www.example.com", T_A, true, 0x00017fffu);
	make_key(&q, &k);
	ck_assert_uint_eq(k.flags, CACHE_K_EDNS | CACHE_K_RD);
	query(&q, 1, F_RD | F_CD, "www.example.com", T_A, false, 0);
	make_key(&q, &k);
	ck_assert_uint_eq(k.flags, CACHE_K_CD | CACHE_K_RD);
	query(&q, 1, 0, "www.example.com", T_A, false, 0);
	make_key(&q, &k);
	ck_assert_uint_eq(k.flags, 0);
}
END_TEST

START_TEST(key_rejects_malformed)
{
	struct msg q;
	struct cache_key k;

	query(&q, 1, F_RD, "www.example.com", T_A, false, 0);
	ck_assert_int_eq(cache_key_make(q.b, 11, &k), -1);		/* no header */
	ck_assert_int_eq(cache_key_make(q.b, q.n - 1, &k), -1);	/* class cut */
	q.b[5] = 0;							/* QDCOUNT 0 */
	ck_assert_int_eq(cache_key_make(q.b, q.n, &k), -1);
	q.b[5] = 2;							/* QDCOUNT 2 */
	ck_assert_int_eq(cache_key_make(q.b, q.n, &k), -1);
	query(&q, 1, F_RD, "www.example.com", T_A, true, 0);
	ck_assert_int_eq(cache_key_make(q.b, q.n - 1, &k), -1);	/* OPT cut */
}
END_TEST

START_TEST(flags_distinguish_entries)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg plain, edns, edns_do, cd, a;
	size_t len;

	query(&plain, 1, F_RD, "www.example.com", T_A, false, 0);
	query(&edns, 1, F_RD, "www.example.com", T_A, true, 0);
	query(&edns_do, 1, F_RD, "www.example.com", T_A, true, DO_BIT);
	query(&cd, 1, F_RD | F_CD, "www.example.com", T_A, false, 0);
	answer_a(&a, 300);
	ck_assert(put(c, &edns, &a, T0));
	ck_assert_int_eq(get(c, &plain, T0, false, out, &len, NULL), CACHE_MISS);
	ck_assert_int_eq(get(c, &edns_do, T0, false, out, &len, NULL), CACHE_MISS);
	ck_assert_int_eq(get(c, &cd, T0, false, out, &len, NULL), CACHE_MISS);
	ck_assert_int_eq(get(c, &edns, T0, false, out, &len, NULL), CACHE_HIT);
	cache_free(c);
}
END_TEST

/* ---- no cache ---- */

START_TEST(zero_entries_is_no_cache)
{
	struct cache_stats st;
	struct msg q, a;
	struct cache_key k;
	size_t len = 99;
	bool pf = true;

	ck_assert_ptr_null(cache_new(0, 0, 60));
	query(&q, 1, F_RD, "www.example.com", T_A, false, 0);
	answer_a(&a, 300);
	make_key(&q, &k);
	ck_assert(!cache_put(NULL, &k, a.b, a.n, T0));
	ck_assert_int_eq(cache_get(NULL, &k, q.b, q.n, T0, true, out, sizeof(out), &len, &pf), CACHE_MISS);
	ck_assert_uint_eq(len, 0);
	ck_assert(!pf);
	memset(&st, 0xff, sizeof(st));
	cache_get_stats(NULL, &st);
	ck_assert_uint_eq(st.hits + st.misses + st.inserts + st.entries + st.bytes, 0);
	cache_free(NULL);
}
END_TEST

/* ---- hits ---- */

START_TEST(hit_is_the_stored_answer)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;
	size_t len;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	answer_a(&a, 300);
	ck_assert(put(c, &q, &a, T0));
	ck_assert_int_eq(get(c, &q, T0, false, out, &len, NULL), CACHE_HIT);
	ck_assert_uint_eq(len, a.n);
	ck_assert_mem_eq(out, a.b, a.n);	/* same ID, no time passed: octet for octet */
	cache_free(c);
}
END_TEST

START_TEST(hit_takes_query_id_and_case)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q1, q2, a;
	size_t len;

	query(&q1, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	query(&q2, 0xbeef, F_RD, "WwW.eXaMpLe.CoM", T_A, false, 0);
	answer_a(&a, 300);
	ck_assert(put(c, &q1, &a, T0));
	ck_assert_int_eq(get(c, &q2, T0, false, out, &len, NULL), CACHE_HIT);
	ck_assert_uint_eq(len, a.n);
	ck_assert_uint_eq(get16(out), 0xbeef);
	ck_assert_mem_eq(out + 12, q2.b + 12, 17 + 4);		/* the question as asked */
	ck_assert_mem_eq(out + 2, a.b + 2, 10);			/* the rest of the header */
	ck_assert_mem_eq(out + 33, a.b + 33, a.n - 33);		/* and the records */
	cache_free(c);
}
END_TEST

START_TEST(hit_rd_from_query_ad_only_if_asked)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q_ad, q_plain, a;
	size_t len;

	query(&q_ad, 1, F_RD | F_AD, "www.example.com", T_A, false, 0);
	query(&q_plain, 2, F_RD, "www.example.com", T_A, false, 0);
	answer_a(&a, 300);
	a.b[3] |= F_AD;		/* the upstream validated it */
	ck_assert(put(c, &q_ad, &a, T0));
	ck_assert_int_eq(get(c, &q_ad, T0, false, out, &len, NULL), CACHE_HIT);
	ck_assert_uint_eq(get16(out + 2), F_QR | F_RD | F_RA | F_AD);
	/* RFC 6840 5.8: no AD for a query without AD or DO */
	ck_assert_int_eq(get(c, &q_plain, T0, false, out, &len, NULL), CACHE_HIT);
	ck_assert_uint_eq(get16(out + 2), F_QR | F_RD | F_RA);
	/* RD is part of the key: an RD=0 query is another question */
	query(&q_plain, 2, 0, "www.example.com", T_A, false, 0);
	ck_assert_int_eq(get(c, &q_plain, T0, false, out, &len, NULL), CACHE_MISS);
	cache_free(c);
}
END_TEST

START_TEST(ttl_ages_on_hits)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;
	size_t len;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	answer_a(&a, 300);
	ck_assert_uint_eq(a.ttl_at[0], 39);	/* 12 + 21 question + pointer, type, class */
	ck_assert_uint_eq(a.ttl_at[1], 55);	/* + 16 octets of the first A */
	ck_assert(put(c, &q, &a, T0));
	ck_assert_int_eq(get(c, &q, T0 + SEC(100) + 999, false, out, &len, NULL), CACHE_HIT);
	ck_assert_uint_eq(get32(out + 39), 200);	/* 100 whole seconds gone */
	ck_assert_uint_eq(get32(out + 55), 200);
	ck_assert_int_eq(get(c, &q, T0 + SEC(299) + 999, false, out, &len, NULL), CACHE_HIT);
	ck_assert_uint_eq(get32(out + 39), 1);
	ck_assert_int_eq(get(c, &q, T0 + SEC(300), false, out, &len, NULL), CACHE_MISS);
	cache_free(c);
}
END_TEST

START_TEST(ttl_min_across_sections)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;
	size_t len;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	put_hdr(&a, 0x1234, F_QR | F_RD | F_RA, 1, 1, 1, 1);
	put_question(&a, "www.example.com", T_A, C_IN);
	put_a(&a, 3600, 1);		/* answer */
	put_ns(&a, 7200);		/* authority */
	put_a(&a, 120, 9);		/* additional: the smallest */
	ck_assert(put(c, &q, &a, T0));
	ck_assert_int_eq(get(c, &q, T0 + SEC(20), false, out, &len, NULL), CACHE_HIT);
	/* no record is served past the entry's life: 120 - 20 for each */
	ck_assert_uint_eq(get32(out + a.ttl_at[0]), 100);
	ck_assert_uint_eq(get32(out + a.ttl_at[1]), 100);
	ck_assert_uint_eq(get32(out + a.ttl_at[2]), 100);
	ck_assert_int_eq(get(c, &q, T0 + SEC(120) - 1, false, out, &len, NULL), CACHE_HIT);
	ck_assert_int_eq(get(c, &q, T0 + SEC(120), false, out, &len, NULL), CACHE_MISS);
	cache_free(c);
}
END_TEST

START_TEST(ttl_capped)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;
	size_t len;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	answer_a(&a, 7 * 86400);
	ck_assert(put(c, &q, &a, T0));
	ck_assert_int_eq(get(c, &q, T0, false, out, &len, NULL), CACHE_HIT);
	ck_assert_uint_eq(get32(out + a.ttl_at[0]), 86400);
	ck_assert_int_eq(get(c, &q, T0 + SEC(86400), false, out, &len, NULL), CACHE_MISS);
	cache_free(c);
}
END_TEST

START_TEST(ttl_with_high_bit_is_zero)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;

	/* RFC 2181 8: a TTL with the most significant bit set is read as 0 */
	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	answer_a(&a, 300);
	a.b[a.ttl_at[1]] = 0x80;
	ck_assert(!put(c, &q, &a, T0));
	cache_free(c);
}
END_TEST

START_TEST(opt_ttl_untouched_and_not_counted)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;
	size_t len;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, true, DO_BIT);
	put_hdr(&a, 0x1234, F_QR | F_RD | F_RA, 1, 1, 0, 1);
	put_question(&a, "www.example.com", T_A, C_IN);
	put_a(&a, 40000, 1);
	put_opt(&a, DO_BIT);		/* as a TTL it would be 32768 */
	ck_assert(put(c, &q, &a, T0));
	ck_assert_int_eq(get(c, &q, T0 + SEC(39000), false, out, &len, NULL), CACHE_HIT);
	ck_assert_uint_eq(get32(out + a.ttl_at[0]), 1000);
	ck_assert_uint_eq(get32(out + a.opt_ttl_at), DO_BIT);
	cache_free(c);
}
END_TEST

START_TEST(opt_extended_rcode_not_cached)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;

	/* RFC 6891 6.1.3: upper rcode bits 1, header 0: BADVERS (16), not NOERROR */
	query(&q, 0x1234, F_RD, "www.example.com", T_A, true, 0);
	put_hdr(&a, 0x1234, F_QR | F_RD | F_RA, 1, 1, 0, 1);
	put_question(&a, "www.example.com", T_A, C_IN);
	put_a(&a, 300, 1);
	put_opt(&a, 0x01000000u);
	ck_assert(!put(c, &q, &a, T0));
	cache_free(c);
}
END_TEST

/* ---- negative answers, RFC 2308 ---- */

START_TEST(nxdomain_soa_minimum)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;
	size_t len;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	answer_neg(&a, R_NXDOMAIN, 900, 300);	/* min(900, 300) = 300 */
	ck_assert(put(c, &q, &a, T0));
	ck_assert_int_eq(get(c, &q, T0 + SEC(100), false, out, &len, NULL), CACHE_HIT);
	ck_assert_uint_eq(out[3] & 0x0f, R_NXDOMAIN);
	ck_assert_uint_eq(get32(out + a.ttl_at[0]), 200);	/* the SOA carries the negative TTL */
	ck_assert_int_eq(get(c, &q, T0 + SEC(300) - 1, false, out, &len, NULL), CACHE_HIT);
	ck_assert_int_eq(get(c, &q, T0 + SEC(300), false, out, &len, NULL), CACHE_MISS);
	cache_free(c);
}
END_TEST

START_TEST(nxdomain_soa_ttl)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;
	size_t len;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	answer_neg(&a, R_NXDOMAIN, 60, 3600);	/* min(60, 3600) = 60 */
	ck_assert(put(c, &q, &a, T0));
	ck_assert_int_eq(get(c, &q, T0 + SEC(60) - 1, false, out, &len, NULL), CACHE_HIT);
	ck_assert_uint_eq(get32(out + a.ttl_at[0]), 1);
	ck_assert_int_eq(get(c, &q, T0 + SEC(60), false, out, &len, NULL), CACHE_MISS);
	cache_free(c);
}
END_TEST

START_TEST(nodata_soa_minimum)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;
	size_t len;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	answer_neg(&a, R_NOERROR, 3600, 120);	/* NOERROR, ANCOUNT 0: NODATA, 120 */
	ck_assert(put(c, &q, &a, T0));
	ck_assert_int_eq(get(c, &q, T0, false, out, &len, NULL), CACHE_HIT);
	ck_assert_uint_eq(get32(out + a.ttl_at[0]), 120);
	ck_assert_int_eq(get(c, &q, T0 + SEC(120), false, out, &len, NULL), CACHE_MISS);
	cache_free(c);
}
END_TEST

START_TEST(nodata_after_cname)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;
	size_t len;

	/* RFC 2308 2.2: a CNAME to a name without the type, SOA in authority: negative */
	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	put_hdr(&a, 0x1234, F_QR | F_RD | F_RA, 1, 1, 1, 0);
	put_question(&a, "www.example.com", T_A, C_IN);
	put_ptr(&a, 12);
	put_rr_tail(&a, T_CNAME, C_IN, 3600, "\3cdn\300\20", 6);	/* cdn.example.com */
	put_soa(&a, 900, 60);
	ck_assert(put(c, &q, &a, T0));
	ck_assert_int_eq(get(c, &q, T0 + SEC(10), false, out, &len, NULL), CACHE_HIT);
	ck_assert_uint_eq(get32(out + a.ttl_at[0]), 50);	/* min(900, 60) - 10 */
	ck_assert_uint_eq(get32(out + a.ttl_at[1]), 50);
	ck_assert_int_eq(get(c, &q, T0 + SEC(60), false, out, &len, NULL), CACHE_MISS);
	cache_free(c);
}
END_TEST

START_TEST(negative_ttl_capped)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;
	size_t len;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	answer_neg(&a, R_NXDOMAIN, 86400, 86400);
	ck_assert(put(c, &q, &a, T0));
	ck_assert_int_eq(get(c, &q, T0, false, out, &len, NULL), CACHE_HIT);
	ck_assert_uint_eq(get32(out + a.ttl_at[0]), 10800);	/* RFC 2308 5: 3 hours */
	ck_assert_int_eq(get(c, &q, T0 + SEC(10800), false, out, &len, NULL), CACHE_MISS);
	cache_free(c);
}
END_TEST

START_TEST(negative_without_soa_not_cached)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;
	struct cache_stats st;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	put_hdr(&a, 0x1234, F_QR | F_RD | F_RA | R_NXDOMAIN, 1, 0, 0, 0);
	put_question(&a, "www.example.com", T_A, C_IN);
	ck_assert(!put(c, &q, &a, T0));
	put_hdr(&a, 0x1234, F_QR | F_RD | F_RA, 1, 0, 1, 0);	/* NODATA with only an NS */
	put_question(&a, "www.example.com", T_A, C_IN);
	put_ns(&a, 300);
	ck_assert(!put(c, &q, &a, T0));
	/* an SOA in the additional section is not the negative answer's SOA */
	put_hdr(&a, 0x1234, F_QR | F_RD | F_RA | R_NXDOMAIN, 1, 0, 0, 1);
	put_question(&a, "www.example.com", T_A, C_IN);
	put_soa(&a, 300, 300);
	ck_assert(!put(c, &q, &a, T0));
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.entries, 0);
	cache_free(c);
}
END_TEST

/* ---- not stored ---- */

START_TEST(tc_servfail_refused_ttl0_not_cached)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	answer_a(&a, 300);
	a.b[2] |= F_TC >> 8;
	ck_assert(!put(c, &q, &a, T0));
	answer_neg(&a, R_SERVFAIL, 300, 300);
	ck_assert(!put(c, &q, &a, T0));
	answer_neg(&a, R_REFUSED, 300, 300);
	ck_assert(!put(c, &q, &a, T0));
	answer_a(&a, 300);
	memset(a.b + a.ttl_at[1], 0, 4);	/* second A: TTL 0 */
	ck_assert(!put(c, &q, &a, T0));
	answer_neg(&a, R_NXDOMAIN, 300, 0);	/* SOA MINIMUM 0 */
	ck_assert(!put(c, &q, &a, T0));
	cache_free(c);
}
END_TEST

START_TEST(other_question_not_stored)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	put_hdr(&a, 0x1234, F_QR | F_RD | F_RA, 1, 0, 0, 0);	/* another name */
	put_question(&a, "www.example.org", T_A, C_IN);
	ck_assert(!put(c, &q, &a, T0));
	answer_a(&a, 300);
	a.b[30] = T_AAAA;					/* another type */
	ck_assert(!put(c, &q, &a, T0));
	answer_a(&a, 300);
	a.b[32] = C_CH;						/* another class */
	ck_assert(!put(c, &q, &a, T0));
	put_hdr(&a, 0x1234, F_QR | F_RD | F_RA, 2, 0, 0, 0);	/* two questions */
	put_question(&a, "www.example.com", T_A, C_IN);
	put_question(&a, "www.example.com", T_A, C_IN);
	ck_assert(!put(c, &q, &a, T0));
	answer_a(&a, 300);					/* cut in the last record */
	a.n -= 2;
	ck_assert(!put(c, &q, &a, T0));
	answer_a(&a, 300);					/* trailing octets */
	put16(&a, 0xdead);
	ck_assert(!put(c, &q, &a, T0));
	cache_free(c);
}
END_TEST

START_TEST(mismatching_query_never_served)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, other, a;
	struct cache_key k;
	size_t len = 99;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	query(&other, 0x4321, F_RD, "www.example.net", T_A, false, 0);
	answer_a(&a, 300);
	ck_assert(put(c, &q, &a, T0));
	make_key(&q, &k);
	/* the key of one question with the bytes of another: a caller's mistake, not a hit */
	ck_assert_int_eq(cache_get(c, &k, other.b, other.n, T0, true, out, sizeof(out), &len, NULL),
			 CACHE_MISS);
	ck_assert_uint_eq(len, 0);
	/* the same name written with a pointer into the header is not the stored question */
	put_hdr(&other, 0x4321, F_RD, 1, 0, 0, 0);
	put_ptr(&other, 0);
	put16(&other, T_A);
	put16(&other, C_IN);
	ck_assert_int_eq(cache_get(c, &k, other.b, other.n, T0, true, out, sizeof(out), &len, NULL),
			 CACHE_MISS);
	/* too small a buffer: no partial answer */
	ck_assert_int_eq(cache_get(c, &k, q.b, q.n, T0, true, out, a.n - 1, &len, NULL), CACHE_MISS);
	ck_assert_int_eq(cache_get(c, &k, q.b, q.n, T0, true, out, a.n, &len, NULL), CACHE_HIT);
	cache_free(c);
}
END_TEST

/* ---- expiry and serve-stale, RFC 8767 ---- */

START_TEST(expired_is_a_miss_and_dropped)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;
	struct cache_stats st;
	size_t len;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	answer_a(&a, 60);
	ck_assert(put(c, &q, &a, T0));
	ck_assert_int_eq(get(c, &q, T0 + SEC(61), true, out, &len, NULL), CACHE_MISS);
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.entries, 0);
	ck_assert_uint_eq(st.bytes, 0);
	cache_free(c);
}
END_TEST

START_TEST(serve_stale_window)
{
	struct cache *c = cache_new(16, 0, 120);
	struct msg q, a;
	struct cache_stats st;
	size_t len;
	bool pf = true;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, true, 0);
	put_hdr(&a, 0x1234, F_QR | F_RD | F_RA, 1, 2, 0, 1);
	put_question(&a, "www.example.com", T_A, C_IN);
	put_a(&a, 60, 1);
	put_a(&a, 3600, 2);
	put_opt(&a, 0);
	ck_assert(put(c, &q, &a, T0));
	/* expired 10 s ago: not without permission, and it stays for later */
	ck_assert_int_eq(get(c, &q, T0 + SEC(70), false, out, &len, NULL), CACHE_MISS);
	ck_assert_int_eq(get(c, &q, T0 + SEC(70), true, out, &len, &pf), CACHE_STALE);
	ck_assert(!pf);
	ck_assert_uint_eq(len, a.n);
	ck_assert_uint_eq(get32(out + a.ttl_at[0]), 30);
	ck_assert_uint_eq(get32(out + a.ttl_at[1]), 30);
	ck_assert_uint_eq(get32(out + a.opt_ttl_at), 0);
	/* 60 s fresh + 120 s stale: the last stale millisecond, then gone */
	ck_assert_int_eq(get(c, &q, T0 + SEC(180) - 1, true, out, &len, NULL), CACHE_STALE);
	ck_assert_int_eq(get(c, &q, T0 + SEC(180), true, out, &len, NULL), CACHE_MISS);
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.entries, 0);
	ck_assert_uint_eq(st.stale_hits, 2);
	cache_free(c);
}
END_TEST

/* ---- LRU ---- */

static void name_query(struct msg *q, const char *name)
{
	query(q, 0x1234, F_RD, name, T_TXT, false, 0);
}

/* An answer to name_query(@name): one TXT record with TTL 300. */
static void name_answer(struct msg *a, const char *name)
{
	static const uint8_t txt[] = { 2, 'h', 'i' };

	put_hdr(a, 0x1234, F_QR | F_RD | F_RA, 1, 1, 0, 0);
	put_question(a, name, T_TXT, C_IN);
	put_ptr(a, 12);
	put_rr_tail(a, T_TXT, C_IN, 300, txt, sizeof(txt));
}

static bool put_name_entry(struct cache *c, const char *name)
{
	struct msg q, a;

	name_query(&q, name);
	name_answer(&a, name);
	return put(c, &q, &a, T0);
}

static enum cache_result get_name(struct cache *c, const char *name)
{
	struct msg q;
	size_t len;

	name_query(&q, name);
	return get(c, &q, T0 + SEC(1), false, out, &len, NULL);
}

START_TEST(lru_evicts_least_recently_used)
{
	struct cache *c = cache_new(3, 0, 0);
	struct cache_stats st;

	ck_assert(put_name_entry(c, "a.example"));
	ck_assert(put_name_entry(c, "b.example"));
	ck_assert(put_name_entry(c, "c.example"));
	ck_assert(put_name_entry(c, "d.example"));	/* a goes */
	ck_assert_int_eq(get_name(c, "a.example"), CACHE_MISS);
	ck_assert_int_eq(get_name(c, "b.example"), CACHE_HIT);	/* order now c, d, b */
	ck_assert(put_name_entry(c, "e.example"));	/* c goes, not b */
	ck_assert_int_eq(get_name(c, "c.example"), CACHE_MISS);
	ck_assert_int_eq(get_name(c, "b.example"), CACHE_HIT);
	ck_assert_int_eq(get_name(c, "d.example"), CACHE_HIT);
	ck_assert_int_eq(get_name(c, "e.example"), CACHE_HIT);
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.entries, 3);
	ck_assert_uint_eq(st.evictions, 2);
	cache_free(c);
}
END_TEST

START_TEST(byte_budget_evicts_too)
{
	struct cache *probe = cache_new(16, 0, 0), *c;
	struct cache_stats st;
	size_t one;

	/* what one entry takes, measured; then a budget of two and a half of them */
	ck_assert(put_name_entry(probe, "a.example"));
	cache_get_stats(probe, &st);
	one = st.bytes;
	cache_free(probe);
	ck_assert_uint_gt(one, 0);
	c = cache_new(100, one * 5 / 2, 0);
	ck_assert(put_name_entry(c, "a.example"));
	ck_assert(put_name_entry(c, "b.example"));
	ck_assert(put_name_entry(c, "c.example"));	/* a goes: three do not fit */
	ck_assert_int_eq(get_name(c, "a.example"), CACHE_MISS);
	ck_assert_int_eq(get_name(c, "b.example"), CACHE_HIT);
	ck_assert_int_eq(get_name(c, "c.example"), CACHE_HIT);
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.entries, 2);
	ck_assert_uint_le(st.bytes, one * 5 / 2);
	ck_assert_uint_eq(st.evictions, 1);
	cache_free(c);
	/* an answer bigger than the whole budget is not kept, and evicts nothing */
	c = cache_new(100, one / 2, 0);
	ck_assert(!put_name_entry(c, "a.example"));
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.entries, 0);
	cache_free(c);
}
END_TEST

START_TEST(put_same_key_replaces)
{
	struct cache *c = cache_new(2, 0, 0);
	struct cache_stats st;
	struct msg q, a;
	size_t len;

	ck_assert(put_name_entry(c, "a.example"));
	ck_assert(put_name_entry(c, "b.example"));
	query(&q, 0x1234, F_RD, "A.EXAMPLE", T_TXT, false, 0);
	name_answer(&a, "a.example");
	ck_assert(put(c, &q, &a, T0 + SEC(200)));	/* a again, stored later: b is now oldest */
	ck_assert_int_eq(get(c, &q, T0 + SEC(400), false, out, &len, NULL), CACHE_HIT);
	ck_assert_uint_eq(get32(out + a.ttl_at[0]), 100);
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.entries, 2);
	ck_assert_uint_eq(st.inserts, 3);
	ck_assert_uint_eq(st.evictions, 0);
	ck_assert(put_name_entry(c, "c.example"));
	ck_assert_int_eq(get_name(c, "b.example"), CACHE_MISS);
	cache_free(c);
}
END_TEST

/* ---- prefetch ---- */

START_TEST(prefetch_when_popular_and_near_expiry)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;
	size_t len;
	bool pf;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	answer_a(&a, 100);		/* the last 10% starts at 90 s */
	ck_assert(put(c, &q, &a, T0));
	ck_assert_int_eq(get(c, &q, T0 + SEC(1), false, out, &len, &pf), CACHE_HIT);
	ck_assert(!pf);
	ck_assert_int_eq(get(c, &q, T0 + SEC(2), false, out, &len, &pf), CACHE_HIT);
	ck_assert(!pf);
	ck_assert_int_eq(get(c, &q, T0 + SEC(90) - 1, false, out, &len, &pf), CACHE_HIT);
	ck_assert(!pf);			/* third hit, but 10.001 s left */
	ck_assert_int_eq(get(c, &q, T0 + SEC(90), false, out, &len, &pf), CACHE_HIT);
	ck_assert(pf);			/* fourth hit, 10 s left */
	ck_assert_int_eq(get(c, &q, T0 + SEC(95), false, out, &len, &pf), CACHE_HIT);
	ck_assert(pf);			/* until a refresh replaces it */
	ck_assert_int_eq(get(c, &q, T0 + SEC(96), false, out, &len, NULL), CACHE_HIT);
	ck_assert(put(c, &q, &a, T0 + SEC(96)));
	ck_assert_int_eq(get(c, &q, T0 + SEC(97), false, out, &len, &pf), CACHE_HIT);
	ck_assert(!pf);			/* the refreshed answer: one hit, 99 s left */
	cache_free(c);
}
END_TEST

START_TEST(prefetch_needs_hits)
{
	struct cache *c = cache_new(16, 0, 0);
	struct msg q, a;
	size_t len;
	bool pf;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	answer_a(&a, 100);
	ck_assert(put(c, &q, &a, T0));
	ck_assert_int_eq(get(c, &q, T0 + SEC(95), false, out, &len, &pf), CACHE_HIT);
	ck_assert(!pf);			/* first hit */
	ck_assert_int_eq(get(c, &q, T0 + SEC(96), false, out, &len, &pf), CACHE_HIT);
	ck_assert(!pf);			/* second */
	ck_assert_int_eq(get(c, &q, T0 + SEC(97), false, out, &len, &pf), CACHE_HIT);
	ck_assert(pf);			/* third: CACHE_PREFETCH_HITS */
	cache_free(c);
}
END_TEST

/* ---- stats ---- */

START_TEST(stats_count)
{
	struct cache *c = cache_new(16, 0, 60);
	struct cache_stats st;
	struct msg q, a, q2;
	size_t len;

	query(&q, 0x1234, F_RD, "www.example.com", T_A, false, 0);
	query(&q2, 0x1234, F_RD, "www.example.org", T_A, false, 0);
	answer_a(&a, 10);
	ck_assert(put(c, &q, &a, T0));
	ck_assert_int_eq(get(c, &q, T0, false, out, &len, NULL), CACHE_HIT);
	ck_assert_int_eq(get(c, &q, T0 + SEC(5), false, out, &len, NULL), CACHE_HIT);
	ck_assert_int_eq(get(c, &q2, T0, false, out, &len, NULL), CACHE_MISS);
	ck_assert_int_eq(get(c, &q, T0 + SEC(20), false, out, &len, NULL), CACHE_MISS);
	ck_assert_int_eq(get(c, &q, T0 + SEC(20), true, out, &len, NULL), CACHE_STALE);
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.hits, 2);
	ck_assert_uint_eq(st.stale_hits, 1);
	ck_assert_uint_eq(st.misses, 2);
	ck_assert_uint_eq(st.inserts, 1);
	ck_assert_uint_eq(st.evictions, 0);
	ck_assert_uint_eq(st.entries, 1);
	ck_assert_uint_ge(st.bytes, a.n);	/* the message and what keeps it */
	ck_assert_uint_lt(st.bytes, a.n + 1024);
	cache_free(c);
}
END_TEST

static Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *tc;

	tc = tcase_create("key");
	tcase_add_test(tc, key_lowercases_name);
	tcase_add_test(tc, key_case_insensitive_equal);
	tcase_add_test(tc, key_flags);
	tcase_add_test(tc, key_rejects_malformed);
	tcase_add_test(tc, flags_distinguish_entries);
	tcase_add_test(tc, zero_entries_is_no_cache);
	suite_add_tcase(s, tc);

	tc = tcase_create("hit");
	tcase_add_test(tc, hit_is_the_stored_answer);
	tcase_add_test(tc, hit_takes_query_id_and_case);
	tcase_add_test(tc, hit_rd_from_query_ad_only_if_asked);
	tcase_add_test(tc, ttl_ages_on_hits);
	tcase_add_test(tc, ttl_min_across_sections);
	tcase_add_test(tc, ttl_capped);
	tcase_add_test(tc, ttl_with_high_bit_is_zero);
	tcase_add_test(tc, opt_ttl_untouched_and_not_counted);
	tcase_add_test(tc, opt_extended_rcode_not_cached);
	suite_add_tcase(s, tc);

	tc = tcase_create("negative");
	tcase_add_test(tc, nxdomain_soa_minimum);
	tcase_add_test(tc, nxdomain_soa_ttl);
	tcase_add_test(tc, nodata_soa_minimum);
	tcase_add_test(tc, nodata_after_cname);
	tcase_add_test(tc, negative_ttl_capped);
	tcase_add_test(tc, negative_without_soa_not_cached);
	suite_add_tcase(s, tc);

	tc = tcase_create("refused");
	tcase_add_test(tc, tc_servfail_refused_ttl0_not_cached);
	tcase_add_test(tc, other_question_not_stored);
	tcase_add_test(tc, mismatching_query_never_served);
	suite_add_tcase(s, tc);

	tc = tcase_create("expiry");
	tcase_add_test(tc, expired_is_a_miss_and_dropped);
	tcase_add_test(tc, serve_stale_window);
	tcase_add_test(tc, lru_evicts_least_recently_used);
	tcase_add_test(tc, put_same_key_replaces);
	tcase_add_test(tc, byte_budget_evicts_too);
	tcase_add_test(tc, prefetch_when_popular_and_near_expiry);
	tcase_add_test(tc, prefetch_needs_hits);
	tcase_add_test(tc, stats_count);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return unit_run(cache_suite());
}

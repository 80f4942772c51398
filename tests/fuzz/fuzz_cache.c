/*
 * fuzz_cache.c - libFuzzer target for src/cache.c: keys made from client
 * queries, upstream answers stored under them, and answers served back,
 * in a four-entry cache on a clock that moves with the input.
 *
 * Input: a sequence of steps, each
 *   op (1 octet) | qlen (2, big-endian) | query | alen (2) | answer
 * where lengths are cut to what is left. op bit 0: allow stale; bit 1: serve
 * into a small buffer; bit 2: ask with the answer's own question instead of
 * the query (so fuzzed answers match their question); bit 3: ask again with
 * the query's letters in another case; bits 4-7: seconds to move the clock,
 * squared. Every piece goes to the cache in a heap copy of its exact length,
 * so ASan sees any read or write past the end.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "dns.h"

#define MAX_ENTRIES	4
#define STALE_S		30

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	const uint8_t *p;
	size_t left;
};

static size_t take_len(struct input *in)
{
	size_t n;

	if (in->left < 2) {
		in->left = 0;
		return 0;
	}
	n = (size_t)in->p[0] << 8 | in->p[1];
	in->p += 2;
	in->left -= 2;
	return n < in->left ? n : in->left;
}

static uint8_t *take(struct input *in, size_t n)
{
	uint8_t *b = malloc(n ? n : 1);

	if (!b)
		__builtin_trap();
	memcpy(b, in->p, n);
	in->p += n;
	in->left -= n;
	return b;
}

/* A query with the header and question of @ans (QR clear, no records), or NULL. */
static uint8_t *query_of(const uint8_t *ans, size_t alen, size_t *qlen)
{
	struct wire w;
	uint8_t *q;

	wire_init(&w, ans, alen);
	wire_skip(&w, DNS_HDR_LEN);
	dns_read_name(&w, NULL);
	wire_skip(&w, 4);
	if (!wire_ok(&w))
		return NULL;
	q = malloc(w.pos);
	if (!q)
		__builtin_trap();
	memcpy(q, ans, w.pos);
	q[2] &= 0x7f;			/* QR */
	wire_put_u16(q + 4, 1);
	memset(q + 6, 0, 6);
	*qlen = w.pos;
	return q;
}

/* Flip the case of every letter after the header (a name's labels and beyond). */
static void flip_case(uint8_t *q, size_t len)
{
	for (size_t i = DNS_HDR_LEN; i < len; i++)
		if ((q[i] | 0x20) >= 'a' && (q[i] | 0x20) <= 'z')
			q[i] ^= 0x20;
}

/* Ask for @q; check what comes back belongs to @q and fits. */
static void ask(struct cache *c, const uint8_t *q, size_t qlen, uint64_t now, uint8_t op, unsigned *asked)
{
	struct cache_key k;
	size_t cap = (op & 2) ? 12 + (size_t)(op >> 4) * 8 : DNS_MAX_MSG;
	uint8_t *out;
	size_t len = 1;
	bool prefetch = true;
	enum cache_result r;

	if (cache_key_make(q, qlen, &k) < 0)
		return;
	out = malloc(cap);
	if (!out)
		__builtin_trap();
	r = cache_get(c, &k, q, qlen, now, op & 1, out, cap, &len, &prefetch);
	(*asked)++;
	if (r == CACHE_MISS) {
		if (len != 0 || prefetch)
			__builtin_trap();
	} else {
		size_t qend = DNS_HDR_LEN + k.name_len + 4;

		/* fits, carries the query's ID and its question octet for octet */
		if (len > cap || len < qend || qlen < qend || dns_id(out) != dns_id(q) ||
		    memcmp(out + DNS_HDR_LEN, q + DNS_HDR_LEN, qend - DNS_HDR_LEN) != 0 ||
		    wire_get_u16(out + 4) != 1 || !(out[2] & 0x80) || (out[2] & 0x02))
			__builtin_trap();
		if (r == CACHE_STALE && (prefetch || !(op & 1)))
			__builtin_trap();
		/* only answers that may be cached are served */
		if (dns_rcode(out) != DNS_RCODE_NOERROR && dns_rcode(out) != DNS_RCODE_NXDOMAIN)
			__builtin_trap();
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cache *c = cache_new(MAX_ENTRIES, 0, STALE_S);
	struct input in = { data, size };
	struct cache_stats st;
	uint64_t now = 1000;
	unsigned asked = 0;

	if (!c)
		__builtin_trap();
	while (in.left > 0) {
		uint8_t op = *in.p++;
		size_t qlen, alen;
		uint8_t *q, *a;
		struct cache_key k;

		in.left--;
		qlen = take_len(&in);
		q = take(&in, qlen);
		alen = take_len(&in);
		a = take(&in, alen);
		now += (uint64_t)(op >> 4) * (op >> 4) * 1000 + (op & 0x0f) * 37;

		if (op & 4) {
			size_t n;
			uint8_t *q2 = query_of(a, alen, &n);

			if (q2) {
				free(q);
				q = q2;
				qlen = n;
			}
		}
		if (cache_key_make(q, qlen, &k) == 0)
			cache_put(c, &k, a, alen, now);
		ask(c, q, qlen, now, op, &asked);
		if (op & 8) {
			flip_case(q, qlen);
			ask(c, q, qlen, now, op, &asked);
		}
		free(q);
		free(a);

		cache_get_stats(c, &st);
		if (st.entries > MAX_ENTRIES || (st.entries == 0) != (st.bytes == 0) ||
		    st.hits + st.stale_hits + st.misses != asked || st.entries > st.inserts)
			__builtin_trap();
	}
	cache_free(c);
	return 0;
}

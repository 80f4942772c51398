/*
 * cache.c - the answer cache: a chained hash table of answers keyed by
 * question and EDNS/DO/CD, threaded on a doubly linked LRU list. Every
 * stored answer was walked with the wire cursor when it was put, and the
 * offsets of its TTL fields kept, so a hit rewrites fixed fields only.
 * Never logs (names are private), never serves an answer to a question it
 * does not match, and allocates nothing but the table and its entries.
 */
#include "cache.h"

#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "siphash.h"
#include "wire.h"

/* RFC 1035 4.1.1 header bits */
#define HDR_QR		0x8000
#define HDR_OPCODE(f)	(((f) >> 11) & 0x0f)
#define HDR_TC		0x0200
#define HDR_RD		0x0100
#define HDR_AD		0x0020		/* RFC 4035 3.2.3 */
#define HDR_CD		0x0010		/* RFC 4035 3.2.2 */
#define HDR_RCODE(f)	((f) & 0x0f)

#define TYPE_SOA	6		/* RFC 1035 3.3.13 */
#define OPT_DO		0x00008000u	/* RFC 3225 3: DO, in the OPT TTL field */
#define OPT_EXT_RCODE(t) ((t) >> 24)	/* RFC 6891 6.1.3: upper 8 bits of the rcode */
#define TTL_MAX_VALID	0x7fffffffu	/* RFC 2181 8: larger TTLs are read as 0 */
#define MAX_BUCKETS	(1u << 20)	/* a table of at most 8 MiB of pointers */

struct entry {
	struct cache_key key;
	struct entry *hnext;		/* next in the hash chain */
	struct entry *newer, *older;	/* LRU neighbours */
	uint64_t stored_ms;		/* when it was put */
	uint32_t ttl;			/* seconds it is fresh; every stored TTL is <= this */
	uint32_t hits;
	uint16_t len;			/* octets in the message */
	uint16_t nttl;			/* records whose TTL a hit rewrites (OPT excluded) */
	uint16_t ttl_off[];		/* offsets of their TTL fields; then the message */
};

struct cache {
	struct entry **buckets;
	uint32_t mask;			/* buckets - 1, a power of two minus one */
	struct entry *newest, *oldest;
	unsigned max_entries;
	size_t max_bytes;		/* entries' allocations, at most */
	uint64_t stale_ms;		/* RFC 8767: how long expired answers are kept */
	struct cache_stats st;
};

/* ---- the key's hash, keyed once per process (before any worker starts) ---- */

static struct siphash_key sip_key;
static bool sip_keyed;

static uint32_t key_hash(const struct cache_key *k)
{
	uint8_t buf[DNS_MAX_NAME + 5];
	uint64_t h;

	if (!sip_keyed) {
		siphash_key_new(&sip_key);
		sip_keyed = true;
	}
	memcpy(buf, k->name, k->name_len);
	wire_put_u16(buf + k->name_len, k->qtype);
	wire_put_u16(buf + k->name_len + 2, k->qclass);
	buf[k->name_len + 4] = k->flags;
	h = siphash(&sip_key, buf, (size_t)k->name_len + 5);
	return (uint32_t)(h ^ h >> 32);
}

/* ---- keys ---- */

int cache_key_make(const uint8_t *query, size_t len, struct cache_key *k)
{
	struct dns_header h;
	struct wire w;
	int n;

	memset(k, 0, sizeof(*k));
	wire_init(&w, query, len);
	dns_read_header(&w, &h);
	if (!wire_ok(&w) || h.qd != 1)
		return -1;
	n = dns_read_name(&w, k->name);
	k->qtype = wire_u16(&w);
	k->qclass = wire_u16(&w);
	if (n < 0 || !wire_ok(&w))
		return -1;
	k->name_len = (uint8_t)n;
	for (uint32_t i = 0; i < (uint32_t)h.an + h.ns && wire_ok(&w); i++)
		dns_skip_rr(&w);
	for (uint16_t i = 0; i < h.ar && wire_ok(&w); i++) {
		size_t start = w.pos;

		if (dns_read_name(&w, NULL) == 1 && wire_u16(&w) == DNS_TYPE_OPT) {
			uint32_t ttl;

			wire_skip(&w, 2);		/* payload size */
			ttl = wire_u32(&w);
			k->flags |= CACHE_K_EDNS;
			if (ttl & OPT_DO)
				k->flags |= CACHE_K_DO;
		}
		wire_seek(&w, start);
		dns_skip_rr(&w);
	}
	if (!wire_ok(&w))
		return -1;
	if (h.flags & HDR_CD)
		k->flags |= CACHE_K_CD;
	if (h.flags & HDR_RD)
		k->flags |= CACHE_K_RD;
	k->hash = key_hash(k);
	return 0;
}

bool cache_key_equal(const struct cache_key *a, const struct cache_key *b)
{
	return a->name_len == b->name_len && a->qtype == b->qtype && a->qclass == b->qclass &&
	       a->flags == b->flags && memcmp(a->name, b->name, a->name_len) == 0;
}

/* ---- the table and the LRU list ---- */

/*
 * With @max_entries 0 there is no cache: NULL, which every cache_ function
 * takes as a cache that stores nothing. NULL otherwise means out of memory.
 */
struct cache *cache_new(unsigned max_entries, size_t max_bytes, unsigned stale_s)
{
	struct cache *c;
	uint32_t n = 1;

	if (max_entries == 0)
		return NULL;
	while (n < max_entries && n < MAX_BUCKETS)
		n <<= 1;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->buckets = calloc(n, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return NULL;
	}
	c->mask = n - 1;
	c->max_entries = max_entries;
	c->max_bytes = max_bytes ? max_bytes : SIZE_MAX;
	c->stale_ms = (uint64_t)stale_s * 1000;
	return c;
}

static uint8_t *entry_msg(struct entry *e)
{
	return (uint8_t *)(e->ttl_off + e->nttl);
}

static size_t entry_size(uint16_t nttl, size_t len)
{
	return sizeof(struct entry) + (size_t)nttl * sizeof(uint16_t) + len;
}

static struct entry *lookup(const struct cache *c, const struct cache_key *k)
{
	struct entry *e;

	for (e = c->buckets[k->hash & c->mask]; e; e = e->hnext)
		if (e->key.hash == k->hash && cache_key_equal(&e->key, k))
			return e;
	return NULL;
}

static void lru_unlink(struct cache *c, struct entry *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void lru_push(struct cache *c, struct entry *e)
{
	e->newer = NULL;
	e->older = c->newest;
	if (c->newest)
		c->newest->newer = e;
	else
		c->oldest = e;
	c->newest = e;
}

/* Unlink @e from its chain and the LRU list and free it. */
static void entry_drop(struct cache *c, struct entry *e)
{
	struct entry **pp = &c->buckets[e->key.hash & c->mask];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(c, e);
	c->st.entries--;
	c->st.bytes -= entry_size(e->nttl, e->len);
	free(e);
}

void cache_free(struct cache *c)
{
	struct entry *e, *next;

	if (!c)
		return;
	for (e = c->newest; e; e = next) {
		next = e->older;
		free(e);
	}
	free(c->buckets);
	free(c);
}

/* ---- storing ---- */

/* What one walk over an answer found. */
struct scan {
	uint32_t min_ttl;	/* smallest TTL of any record but OPT */
	uint32_t neg_ttl;	/* RFC 2308 5: min(SOA TTL, SOA MINIMUM) of the first SOA in authority */
	bool has_soa;
	uint16_t nttl;		/* records but OPT */
	uint8_t ext_rcode;	/* RFC 6891 6.1.3: from the OPT record */
};

static void put_u32(uint8_t *p, uint32_t v)
{
	wire_put_u16(p, (uint16_t)(v >> 16));
	wire_put_u16(p + 2, (uint16_t)v);
}

static uint32_t valid_ttl(uint32_t ttl)
{
	return ttl > TTL_MAX_VALID ? 0 : ttl;
}

/*
 * Walk every record of answer @msg after its question (which ends at @qend):
 * fill @s, and if @off is not NULL the offsets of the TTL fields of every
 * record but OPT. Returns 0, or -1 if the answer does not parse to its last
 * octet.
 */
static int scan_records(const uint8_t *msg, size_t len, size_t qend, struct scan *s, uint16_t *off)
{
	uint32_t an = wire_get_u16(msg + 6), ns = wire_get_u16(msg + 8), ar = wire_get_u16(msg + 10);
	struct wire w;

	memset(s, 0, sizeof(*s));
	s->min_ttl = UINT32_MAX;
	wire_init(&w, msg, len);
	wire_seek(&w, qend);
	for (uint32_t i = 0; i < an + ns + ar && wire_ok(&w); i++) {
		uint16_t type, rdlen;
		size_t ttl_at, rdata;
		uint32_t ttl;

		dns_read_name(&w, NULL);
		type = wire_u16(&w);
		wire_skip(&w, 2);			/* class */
		ttl_at = w.pos;
		ttl = wire_u32(&w);
		rdlen = wire_u16(&w);
		rdata = w.pos;
		if (!wire_ok(&w))
			break;
		if (type == DNS_TYPE_OPT) {
			s->ext_rcode = (uint8_t)OPT_EXT_RCODE(ttl);
			wire_skip(&w, rdlen);
			continue;
		}
		ttl = valid_ttl(ttl);
		if (ttl < s->min_ttl)
			s->min_ttl = ttl;
		if (off)
			off[s->nttl] = (uint16_t)ttl_at;
		s->nttl++;
		if (type == TYPE_SOA && i >= an && i < an + ns && !s->has_soa) {
			uint32_t minimum;

			/* RFC 1035 3.3.13: MNAME, RNAME, SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM */
			dns_read_name(&w, NULL);
			dns_read_name(&w, NULL);
			wire_skip(&w, 16);
			minimum = valid_ttl(wire_u32(&w));
			if (!wire_ok(&w) || w.pos != rdata + rdlen)
				return -1;
			s->has_soa = true;
			s->neg_ttl = ttl < minimum ? ttl : minimum;
			continue;
		}
		wire_skip(&w, rdlen);
	}
	if (!wire_ok(&w) || wire_left(&w) != 0)	/* cut short, or trailing octets */
		return -1;
	return 0;
}

/*
 * Check that @ans (@len octets) answers the question of @k with the name
 * written out at offset 12 (no pointer), so a query's name can be copied
 * over it. Returns the offset past the question, or 0.
 */
static size_t question_matches(const uint8_t *msg, size_t len, const struct cache_key *k)
{
	uint8_t name[DNS_MAX_NAME];
	struct wire w;
	uint16_t qtype, qclass;
	int n;

	wire_init(&w, msg, len);
	wire_skip(&w, 4);
	if (wire_u16(&w) != 1)			/* QDCOUNT */
		return 0;
	wire_skip(&w, 6);
	n = dns_read_name(&w, name);
	qtype = wire_u16(&w);
	qclass = wire_u16(&w);
	if (!wire_ok(&w) || n != k->name_len || w.pos != DNS_HDR_LEN + (size_t)n + 4 ||
	    qtype != k->qtype || qclass != k->qclass || memcmp(name, k->name, (size_t)n) != 0)
		return 0;
	return w.pos;
}

bool cache_put(struct cache *c, const struct cache_key *k, const uint8_t *ans, size_t len, uint64_t now_ms)
{
	struct scan s;
	struct entry *e, *old;
	uint16_t flags;
	uint32_t ttl;
	size_t qend, size;
	uint8_t *msg;
	int rcode;

	if (!c || len < DNS_HDR_LEN || len > DNS_MAX_MSG)
		return false;
	flags = wire_get_u16(ans + 2);
	if (!(flags & HDR_QR) || (flags & HDR_TC) || HDR_OPCODE(flags) != 0)
		return false;
	qend = question_matches(ans, len, k);
	if (!qend || scan_records(ans, len, qend, &s, NULL) < 0 || s.ext_rcode != 0)
		return false;
	rcode = HDR_RCODE(flags);
	if (rcode != DNS_RCODE_NOERROR && rcode != DNS_RCODE_NXDOMAIN)
		return false;
	/*
	 * RFC 2308 2: negative is NXDOMAIN, or NOERROR without the data: no
	 * answer records, or only a CNAME chain with an SOA in authority (2.2).
	 */
	if (rcode == DNS_RCODE_NXDOMAIN || wire_get_u16(ans + 6) == 0 || s.has_soa) {
		if (!s.has_soa)
			return false;
		/* RFC 2308 5: the SOA's min(TTL, MINIMUM), and no longer than any record lives */
		ttl = s.neg_ttl < s.min_ttl ? s.neg_ttl : s.min_ttl;
		if (ttl > CACHE_NEG_MAX_TTL)
			ttl = CACHE_NEG_MAX_TTL;
	} else {
		ttl = s.min_ttl > CACHE_MAX_TTL ? CACHE_MAX_TTL : s.min_ttl;
	}
	if (ttl == 0)
		return false;

	size = entry_size(s.nttl, len);
	e = malloc(size);
	if (!e)
		return false;
	memset(e, 0, sizeof(*e));
	e->key = *k;
	e->key.hash = key_hash(k);	/* the key's own, not the caller's */
	e->stored_ms = now_ms;
	e->ttl = ttl;
	e->len = (uint16_t)len;
	e->nttl = s.nttl;
	msg = entry_msg(e);
	memcpy(msg, ans, len);
	scan_records(msg, len, qend, &s, e->ttl_off);	/* the same octets: the same walk */
	/* no record outlives the entry: a hit serves at most what is left of it */
	for (uint16_t i = 0; i < e->nttl; i++) {
		struct wire w;
		uint32_t t;

		wire_init(&w, msg, len);
		wire_seek(&w, e->ttl_off[i]);
		t = valid_ttl(wire_u32(&w));
		if (t > ttl)
			t = ttl;
		put_u32(msg + e->ttl_off[i], t);
	}

	if (size > c->max_bytes) {
		free(e);	/* bigger than the whole budget: evicts nothing */
		return false;
	}
	old = lookup(c, &e->key);
	if (old)
		entry_drop(c, old);
	/* room by count and by bytes: the least recently used go first */
	while (c->oldest && (c->st.entries >= c->max_entries || c->st.bytes + size > c->max_bytes)) {
		entry_drop(c, c->oldest);
		c->st.evictions++;
	}
	e->hnext = c->buckets[e->key.hash & c->mask];
	c->buckets[e->key.hash & c->mask] = e;
	lru_push(c, e);
	c->st.entries++;
	c->st.bytes += size;
	c->st.inserts++;
	return true;
}

/* ---- serving ---- */

/*
 * True if @query (@qlen octets) asks exactly @k's question with its name
 * written out at offset 12, as the stored answer has it.
 */
static bool query_matches(const uint8_t *query, size_t qlen, const struct cache_key *k)
{
	return question_matches(query, qlen, k) != 0;
}

enum cache_result cache_get(struct cache *c, const struct cache_key *k, const uint8_t *query, size_t qlen,
			    uint64_t now_ms, bool allow_stale, uint8_t *out, size_t cap, size_t *len,
			    bool *prefetch)
{
	struct entry *e;
	uint64_t age_ms, ttl_ms;
	uint32_t age_s;
	uint16_t qflags, flags;
	bool stale;

	*len = 0;
	if (prefetch)
		*prefetch = false;
	if (!c)
		return CACHE_MISS;
	e = lookup(c, k);
	if (!e)
		goto miss;
	age_ms = now_ms > e->stored_ms ? now_ms - e->stored_ms : 0;
	ttl_ms = (uint64_t)e->ttl * 1000;
	stale = age_ms >= ttl_ms;
	if (stale && age_ms - ttl_ms >= c->stale_ms) {	/* past serve-stale too: gone */
		entry_drop(c, e);
		goto miss;
	}
	if ((stale && !allow_stale) || e->len > cap || !query_matches(query, qlen, k))
		goto miss;

	memcpy(out, entry_msg(e), e->len);
	memcpy(out, query, 2);					/* ID */
	memcpy(out + DNS_HDR_LEN, query + DNS_HDR_LEN, k->name_len);	/* its letter case */
	/* RFC 1035 4.1.1: RD is copied from the query; RFC 6840 5.8: AD only if asked for */
	qflags = wire_get_u16(query + 2);
	flags = (uint16_t)((wire_get_u16(out + 2) & ~HDR_RD) | (qflags & HDR_RD));
	if (!(qflags & HDR_AD) && !(k->flags & CACHE_K_DO))
		flags &= (uint16_t)~HDR_AD;
	wire_put_u16(out + 2, flags);
	age_s = (uint32_t)(age_ms / 1000);
	for (uint16_t i = 0; i < e->nttl; i++) {
		struct wire w;
		uint32_t t;

		wire_init(&w, entry_msg(e), e->len);
		wire_seek(&w, e->ttl_off[i]);
		t = wire_u32(&w);
		if (stale)
			t = CACHE_STALE_TTL;	/* RFC 8767 4 */
		else
			t = t > age_s ? t - age_s : 0;
		put_u32(out + e->ttl_off[i], t);
	}
	*len = e->len;

	lru_unlink(c, e);
	lru_push(c, e);
	if (e->hits < UINT32_MAX)
		e->hits++;
	if (stale) {
		c->st.stale_hits++;
		return CACHE_STALE;
	}
	c->st.hits++;
	/* popular (this hit counted) and in the last CACHE_PREFETCH_PCT of its life */
	if (prefetch && e->hits >= CACHE_PREFETCH_HITS && (ttl_ms - age_ms) * 100 <= ttl_ms * CACHE_PREFETCH_PCT)
		*prefetch = true;
	return CACHE_HIT;
miss:
	c->st.misses++;
	return CACHE_MISS;
}

void cache_get_stats(const struct cache *c, struct cache_stats *st)
{
	if (!c) {
		memset(st, 0, sizeof(*st));
		return;
	}
	*st = c->st;
}

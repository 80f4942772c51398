/*
 * cache.h - the answer cache: upstream answers kept by question (name
 * case-insensitively, type, class) and by what changes the answer (EDNS
 * present, DO, CD), with TTLs aged on every hit, negative answers per
 * RFC 2308, a bounded number of entries with LRU eviction, and expired
 * entries kept for serve-stale (RFC 8767). Never serves an answer to a
 * question it does not match. Times are caller-supplied monotonic
 * milliseconds, so tests drive the clock.
 */
#ifndef DOTPROXY_CACHE_H
#define DOTPROXY_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CACHE_STALE_TTL		30	/* RFC 8767 4: TTL of a stale answer, seconds */
#define CACHE_MAX_TTL		86400	/* longer TTLs are capped to this, seconds */
#define CACHE_NEG_MAX_TTL	10800	/* RFC 2308 5: cap on negative TTLs, seconds */
#define CACHE_PREFETCH_PCT	10	/* a hit in the last 10% of the TTL asks for a refresh */
#define CACHE_PREFETCH_HITS	3	/* ... of an entry hit at least this often */

struct cache;

/* The key of a query: lower-cased wire name, type, class, EDNS/DO/CD/RD. */
struct cache_key {
	uint8_t name[255];
	uint8_t name_len;
	uint16_t qtype, qclass;
	uint8_t flags;			/* CACHE_K_* */
	uint32_t hash;
};
#define CACHE_K_EDNS	0x01	/* the query had an OPT record */
#define CACHE_K_DO	0x02	/* RFC 3225: DNSSEC OK */
#define CACHE_K_CD	0x04	/* RFC 4035 3.2.2: checking disabled */
#define CACHE_K_RD	0x08	/* RFC 1035 4.1.1: recursion desired (an RD=0 answer may differ) */

/* Fill @k from a query that dns_check_query() accepted. Returns 0 or -1. */
int cache_key_make(const uint8_t *query, size_t len, struct cache_key *k);

/* Same key (name, type, class, flags). */
bool cache_key_equal(const struct cache_key *a, const struct cache_key *b);

/*
 * A cache of at most @max_entries answers taking at most @max_bytes of memory
 * (0: no byte limit), keeping expired ones @stale_s seconds. @max_entries 0
 * means no cache: NULL, which every function here takes as an empty cache
 * (NULL with @max_entries > 0: out of memory).
 */
struct cache *cache_new(unsigned max_entries, size_t max_bytes, unsigned stale_s);
void cache_free(struct cache *c);

/*
 * Store upstream answer @ans (@len octets, already matched to the query of
 * @k) at time @now_ms. Only NOERROR and NXDOMAIN answers with TC clear are
 * kept; the TTL is the smallest of its records (OPT excluded), or for a
 * negative answer (NXDOMAIN, or NOERROR without answer records) the SOA's
 * min(TTL, MINIMUM) from the authority section (not cached without one).
 * A TTL of 0 is not cached. Returns true if stored.
 */
bool cache_put(struct cache *c, const struct cache_key *k, const uint8_t *ans, size_t len, uint64_t now_ms);

enum cache_result { CACHE_MISS, CACHE_HIT, CACHE_STALE };

/*
 * Answer @query (@qlen octets, key @k) from the cache at @now_ms into @out
 * (@cap octets): the stored answer with the query's ID and question (its
 * letter case) and every TTL (OPT excluded) lowered by the time stored; a
 * stale entry (expired less than stale_s ago) only if @allow_stale, with
 * TTLs of CACHE_STALE_TTL. Sets *@len. *@prefetch (may be NULL) is set when
 * a fresh hit is in its last CACHE_PREFETCH_PCT of TTL and the entry has had
 * CACHE_PREFETCH_HITS hits: the caller should refresh it. An entry is moved to
 * the front of the LRU on every hit.
 */
enum cache_result cache_get(struct cache *c, const struct cache_key *k, const uint8_t *query, size_t qlen,
			    uint64_t now_ms, bool allow_stale, uint8_t *out, size_t cap, size_t *len,
			    bool *prefetch);

/* Counters for metrics. */
struct cache_stats {
	uint64_t hits, stale_hits, misses, inserts, evictions;
	unsigned entries;
	size_t bytes;			/* what the entries' allocations take */
};
void cache_get_stats(const struct cache *c, struct cache_stats *st);

#endif

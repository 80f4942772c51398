/*
 * ratelimit.c - per-client token buckets. A fixed table of RL_CLIENTS
 * buckets, found through a keyed hash (so clients cannot pick addresses
 * that collide) and recycled least recently seen first; nothing a client
 * sends can make it grow. Tokens are counted in thousandths, in integers.
 *
 * Keys: an IPv4 address, or an IPv6 address in full (an IPv4-mapped one
 * counts as its IPv4 address). Not by /64: a proxy on a gateway sees a
 * whole LAN from one /64, so a /64 bucket would make every host on it
 * share one limit. A host that rotates through its /64 gets a bucket per
 * address; the table stays bounded.
 *
 * Eviction: a flood from more than RL_CLIENTS distinct (e.g. spoofed)
 * addresses recycles every bucket, and a client whose bucket was recycled
 * starts again with a full one. That is accepted: memory stays bounded and
 * the limit fails open, never closed.
 */
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include "siphash.h"

#define MILLI		1000u		/* thousandths of a token per token */
#define NONE		UINT32_MAX	/* end of a hash chain or the LRU list */
#define BUCKETS		RL_CLIENTS	/* hash chains; a power of two */

_Static_assert((BUCKETS & (BUCKETS - 1)) == 0, "RL_CLIENTS must be a power of two");

struct rl_key {
	uint8_t family;		/* 4 or 6 */
	uint8_t addr[16];	/* IPv4 in the first 4 octets, the rest zero */
};

struct rl_entry {
	struct rl_key key;
	uint64_t milli;		/* tokens, in thousandths */
	uint64_t last_ms;	/* when milli was last brought up to date */
	uint32_t hnext;		/* next entry in the same hash chain */
	uint32_t prev, next;	/* LRU list: head is the most recently seen */
};

struct ratelimit {
	uint64_t rate;		/* thousandths of a token per ms: the QPS */
	uint64_t depth;		/* bucket size in thousandths: QPS * RL_BURST_S */
	uint64_t full_ms;	/* ms in which an empty bucket fills up */
	struct siphash_key key;	/* so outsiders cannot aim at one chain */
	uint32_t used;		/* entries handed out so far */
	uint32_t head, tail;	/* LRU list */
	uint32_t chain[BUCKETS];
	struct rl_entry e[];
};

/* ---- table ---- */

static bool key_make(const union sockaddr_any *a, struct rl_key *k)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(k, 0, sizeof(*k));
	if (a->sa.sa_family == AF_INET) {
		k->family = 4;
		memcpy(k->addr, &a->sin.sin_addr, 4);
	} else if (a->sa.sa_family == AF_INET6) {
		const uint8_t *b = a->sin6.sin6_addr.s6_addr;

		if (memcmp(b, v4mapped, sizeof(v4mapped)) == 0) {
			k->family = 4;
			memcpy(k->addr, b + 12, 4);
		} else {
			k->family = 6;
			memcpy(k->addr, b, 16);
		}
	} else {
		return false;
	}
	return true;
}

static uint32_t key_hash(const struct ratelimit *r, const struct rl_key *k)
{
	return (uint32_t)siphash(&r->key, k, sizeof(*k)) & (BUCKETS - 1);
}

static void lru_unlink(struct ratelimit *r, uint32_t i)
{
	struct rl_entry *e = &r->e[i];

	if (e->prev != NONE)
		r->e[e->prev].next = e->next;
	else
		r->head = e->next;
	if (e->next != NONE)
		r->e[e->next].prev = e->prev;
	else
		r->tail = e->prev;
}

static void lru_push(struct ratelimit *r, uint32_t i)
{
	struct rl_entry *e = &r->e[i];

	e->prev = NONE;
	e->next = r->head;
	if (r->head != NONE)
		r->e[r->head].prev = i;
	else
		r->tail = i;
	r->head = i;
}

static void chain_remove(struct ratelimit *r, uint32_t i)
{
	uint32_t *pp = &r->chain[key_hash(r, &r->e[i].key)];

	while (*pp != NONE && *pp != i)
		pp = &r->e[*pp].hnext;
	if (*pp == i)
		*pp = r->e[i].hnext;
}

/* The entry for @k, made (full bucket) if there was none, most recently seen. */
static struct rl_entry *entry_get(struct ratelimit *r, const struct rl_key *k, uint64_t now_ms)
{
	uint32_t h = key_hash(r, k);
	uint32_t i;

	for (i = r->chain[h]; i != NONE; i = r->e[i].hnext) {
		if (memcmp(&r->e[i].key, k, sizeof(*k)) == 0) {
			lru_unlink(r, i);
			lru_push(r, i);
			return &r->e[i];
		}
	}
	if (r->used < RL_CLIENTS) {
		i = r->used++;
	} else {
		i = r->tail;
		lru_unlink(r, i);
		chain_remove(r, i);
	}
	r->e[i].key = *k;
	r->e[i].milli = r->depth;
	r->e[i].last_ms = now_ms;
	r->e[i].hnext = r->chain[h];
	r->chain[h] = i;
	lru_push(r, i);
	return &r->e[i];
}

struct ratelimit *ratelimit_new(unsigned qps)
{
	struct ratelimit *r;

	if (qps == 0)
		return calloc(1, sizeof(*r));	/* rate 0: allows everything */
	r = calloc(1, sizeof(*r) + RL_CLIENTS * sizeof(r->e[0]));
	if (!r)
		return NULL;
	r->rate = qps;
	r->depth = (uint64_t)qps * RL_BURST_S * MILLI;
	if (r->depth < MILLI)
		r->depth = MILLI;
	r->full_ms = (r->depth + r->rate - 1) / r->rate;
	siphash_key_new(&r->key);
	r->head = r->tail = NONE;
	for (uint32_t i = 0; i < BUCKETS; i++)
		r->chain[i] = NONE;
	return r;
}

void ratelimit_free(struct ratelimit *r)
{
	free(r);
}

bool ratelimit_allow(struct ratelimit *r, const union sockaddr_any *addr, uint64_t now_ms)
{
	struct rl_entry *e;
	struct rl_key k;

	if (!r || r->rate == 0 || !key_make(addr, &k))
		return true;
	e = entry_get(r, &k, now_ms);
	if (now_ms > e->last_ms) {	/* a clock that goes back refills nothing */
		uint64_t elapsed = now_ms - e->last_ms;

		if (elapsed >= r->full_ms)
			e->milli = r->depth;
		else if ((e->milli += elapsed * r->rate) > r->depth)
			e->milli = r->depth;
		e->last_ms = now_ms;
	}
	if (e->milli < MILLI)
		return false;
	e->milli -= MILLI;
	return true;
}

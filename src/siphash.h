/*
 * siphash.h - SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed hash, so
 * that outsiders cannot choose inputs that all land in one chain of a table
 * (names in the cache, addresses in the rate limiter).
 */
#ifndef DOTPROXY_SIPHASH_H
#define DOTPROXY_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

struct siphash_key {
	uint64_t k0, k1;
};

/* A fresh random key (getrandom; the clock if the kernel has no entropy yet). */
void siphash_key_new(struct siphash_key *key);

uint64_t siphash(const struct siphash_key *key, const void *in, size_t len);

#endif

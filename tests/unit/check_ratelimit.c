/*
 * check_ratelimit.c - unit tests for src/ratelimit.c: bursts, refill driven
 * by a test clock, one bucket per client address, bounded memory under a
 * flood of distinct addresses. Includes the module to look at its table.
 * Expected counts come from the rate and RL_BURST_S, worked out here.
 */
#include <arpa/inet.h>
#include <check.h>
#include <limits.h>
#include <string.h>

#include "../../src/ratelimit.c"
#include "unit.h"

static union sockaddr_any v4(const char *ip, uint16_t port)
{
	union sockaddr_any a;

	memset(&a, 0, sizeof(a));
	a.sin.sin_family = AF_INET;
	a.sin.sin_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET, ip, &a.sin.sin_addr), 1);
	return a;
}

static union sockaddr_any v6(const char *ip, uint16_t port)
{
	union sockaddr_any a;

	memset(&a, 0, sizeof(a));
	a.sin6.sin6_family = AF_INET6;
	a.sin6.sin6_port = htons(port);
	ck_assert_int_eq(inet_pton(AF_INET6, ip, &a.sin6.sin6_addr), 1);
	return a;
}

/* 10.x.y.z for client number @i. */
static union sockaddr_any nth(uint32_t i)
{
	union sockaddr_any a;

	memset(&a, 0, sizeof(a));
	a.sin.sin_family = AF_INET;
	a.sin.sin_addr.s_addr = htonl(0x0a000000u | i);
	return a;
}

static bool allow_nth(struct ratelimit *r, uint32_t i, uint64_t now)
{
	union sockaddr_any a = nth(i);

	return ratelimit_allow(r, &a, now);
}

/* How many queries @a gets through at @now before the first refusal (at most @max). */
static unsigned allowed(struct ratelimit *r, const union sockaddr_any *a, uint64_t now, unsigned max)
{
	unsigned n = 0;

	while (n < max && ratelimit_allow(r, a, now))
		n++;
	return n;
}

START_TEST(burst_then_refused)
{
	struct ratelimit *r = ratelimit_new(5);
	union sockaddr_any a = v4("192.0.2.1", 5353);

	ck_assert_ptr_nonnull(r);
	/* 5 qps, 2 s of burst: 10 at once, then none */
	ck_assert_uint_eq(allowed(r, &a, 1000, 100), 5 * RL_BURST_S);
	ck_assert(!ratelimit_allow(r, &a, 1000));
	ratelimit_free(r);
}
END_TEST

START_TEST(refill_follows_the_clock)
{
	struct ratelimit *r = ratelimit_new(5);
	union sockaddr_any a = v4("192.0.2.1", 5353);

	ck_assert_uint_eq(allowed(r, &a, 0, 100), 10);
	/* one token every 200 ms: not after 199, yes after 200 */
	ck_assert(!ratelimit_allow(r, &a, 199));
	ck_assert(ratelimit_allow(r, &a, 200));
	ck_assert(!ratelimit_allow(r, &a, 200));
	/* a second: five more */
	ck_assert_uint_eq(allowed(r, &a, 1200, 100), 5);
	/* the fractions add up: 3 x 70 ms is one token and 10 ms over */
	ck_assert(!ratelimit_allow(r, &a, 1270));
	ck_assert(!ratelimit_allow(r, &a, 1340));
	ck_assert(ratelimit_allow(r, &a, 1410));
	ratelimit_free(r);
}
END_TEST

START_TEST(refill_stops_at_burst)
{
	struct ratelimit *r = ratelimit_new(3);
	union sockaddr_any a = v4("192.0.2.1", 1);

	ck_assert_uint_eq(allowed(r, &a, 0, 100), 6);
	/* an hour idle still gives only 3 x 2 */
	ck_assert_uint_eq(allowed(r, &a, 3600 * 1000, 100), 6);
	/* a clock that goes back gives nothing and breaks nothing */
	ck_assert(!ratelimit_allow(r, &a, 1000));
	ck_assert(!ratelimit_allow(r, &a, 3600 * 1000));
	ck_assert(ratelimit_allow(r, &a, 3600 * 1000 + 334));
	ratelimit_free(r);
}
END_TEST

START_TEST(one_qps_bursts_two)
{
	struct ratelimit *r = ratelimit_new(1);
	union sockaddr_any a = v4("192.0.2.1", 1);

	ck_assert_uint_eq(allowed(r, &a, 0, 100), 2);
	ck_assert(!ratelimit_allow(r, &a, 999));
	ck_assert(ratelimit_allow(r, &a, 1000));
	ratelimit_free(r);
}
END_TEST

START_TEST(clients_are_independent)
{
	struct ratelimit *r = ratelimit_new(2);
	union sockaddr_any a = v4("192.0.2.1", 1), b = v4("192.0.2.2", 1);

	ck_assert_uint_eq(allowed(r, &a, 0, 100), 4);
	ck_assert_uint_eq(allowed(r, &b, 0, 100), 4);
	ck_assert(!ratelimit_allow(r, &a, 0));
	ratelimit_free(r);
}
END_TEST

START_TEST(port_is_ignored)
{
	struct ratelimit *r = ratelimit_new(2);
	union sockaddr_any a = v4("192.0.2.1", 1000);
	union sockaddr_any a2 = v4("192.0.2.1", 2000);
	union sockaddr_any c = v6("2001:db8::1", 1000);
	union sockaddr_any c2 = v6("2001:db8::1", 2000);

	ck_assert_uint_eq(allowed(r, &a, 0, 2), 2);
	ck_assert_uint_eq(allowed(r, &a2, 0, 100), 2);		/* the same bucket */
	ck_assert_uint_eq(allowed(r, &c, 0, 3), 3);
	ck_assert_uint_eq(allowed(r, &c2, 0, 100), 1);
	ratelimit_free(r);
}
END_TEST

START_TEST(ipv4_and_ipv6_buckets)
{
	struct ratelimit *r = ratelimit_new(1);
	union sockaddr_any a = v4("192.0.2.1", 1);
	union sockaddr_any mapped = v6("::ffff:192.0.2.1", 1);
	union sockaddr_any six = v6("2001:db8::1", 1);
	union sockaddr_any same64 = v6("2001:db8::2", 1);
	union sockaddr_any zero4 = v4("0.0.0.0", 1);
	union sockaddr_any zero6 = v6("::", 1);

	ck_assert_uint_eq(allowed(r, &a, 0, 100), 2);
	/* an IPv4-mapped address is that IPv4 client */
	ck_assert(!ratelimit_allow(r, &mapped, 0));
	/* an IPv6 client is its own, and so is its neighbour in the same /64 */
	ck_assert_uint_eq(allowed(r, &six, 0, 100), 2);
	ck_assert_uint_eq(allowed(r, &same64, 0, 100), 2);
	/* 0.0.0.0 and :: are different keys */
	ck_assert_uint_eq(allowed(r, &zero4, 0, 100), 2);
	ck_assert_uint_eq(allowed(r, &zero6, 0, 100), 2);
	ratelimit_free(r);
}
END_TEST

/* Count the entries reachable through the hash chains, checking each is in the right one. */
static uint32_t chained(const struct ratelimit *r)
{
	uint32_t n = 0;

	for (uint32_t h = 0; h < BUCKETS; h++)
		for (uint32_t i = r->chain[h]; i != NONE; i = r->e[i].hnext) {
			ck_assert_uint_eq(key_hash(r, &r->e[i].key), h);
			ck_assert_uint_le(++n, RL_CLIENTS);
		}
	return n;
}

START_TEST(flood_of_addresses_stays_bounded)
{
	struct ratelimit *r = ratelimit_new(1);
	union sockaddr_any victim = v4("192.0.2.1", 1);

	ck_assert_uint_eq(allowed(r, &victim, 0, 100), 2);
	/* RL_CLIENTS - 1 others fill the table: the victim is still tracked */
	for (uint32_t i = 0; i < RL_CLIENTS - 1; i++)
		ck_assert(allow_nth(r, i, 1));
	ck_assert_uint_eq(r->used, RL_CLIENTS);
	ck_assert(!ratelimit_allow(r, &victim, 2));
	/* 3 x RL_CLIENTS more: never more entries than the table */
	for (uint32_t i = RL_CLIENTS; i < 4 * RL_CLIENTS; i++)
		ck_assert(allow_nth(r, i, 3));
	ck_assert_uint_eq(r->used, RL_CLIENTS);
	ck_assert_uint_eq(chained(r), RL_CLIENTS);
	/* the victim was recycled (least recently seen) and starts again full: fails open */
	ck_assert_uint_eq(allowed(r, &victim, 4, 100), 2);
	ratelimit_free(r);
}
END_TEST

START_TEST(recently_seen_client_not_evicted)
{
	struct ratelimit *r = ratelimit_new(1);
	union sockaddr_any busy = v4("192.0.2.1", 1);

	ck_assert_uint_eq(allowed(r, &busy, 0, 100), 2);
	/* the busy client keeps asking while twice the table of others pass */
	for (uint32_t i = 0; i < 2 * RL_CLIENTS; i++) {
		ck_assert(allow_nth(r, i, 1));
		if (i % (RL_CLIENTS / 2) == 0)
			ck_assert(!ratelimit_allow(r, &busy, 1));
	}
	ck_assert(!ratelimit_allow(r, &busy, 1));
	ratelimit_free(r);
}
END_TEST

START_TEST(zero_qps_and_null_allow_everything)
{
	struct ratelimit *r = ratelimit_new(0);
	union sockaddr_any a = v4("192.0.2.1", 1);

	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(allowed(r, &a, 0, 100000), 100000);
	ratelimit_free(r);
	ck_assert(ratelimit_allow(NULL, &a, 0));
	ratelimit_free(NULL);
}
END_TEST

START_TEST(huge_qps_no_overflow)
{
	struct ratelimit *r = ratelimit_new(UINT_MAX);
	union sockaddr_any a = v4("192.0.2.1", 1);

	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(allowed(r, &a, 0, 100000), 100000);
	ck_assert_uint_eq(allowed(r, &a, UINT64_MAX, 100000), 100000);
	ratelimit_free(r);
}
END_TEST

START_TEST(unknown_family_allowed)
{
	struct ratelimit *r = ratelimit_new(1);
	union sockaddr_any a;

	memset(&a, 0, sizeof(a));
	a.sa.sa_family = AF_UNIX;
	ck_assert_uint_eq(allowed(r, &a, 0, 10), 10);
	ck_assert_uint_eq(r->used, 0);
	ratelimit_free(r);
}
END_TEST

static Suite *ratelimit_suite(void)
{
	Suite *s = suite_create("ratelimit");
	TCase *tc;

	tc = tcase_create("buckets");
	tcase_add_test(tc, burst_then_refused);
	tcase_add_test(tc, refill_follows_the_clock);
	tcase_add_test(tc, refill_stops_at_burst);
	tcase_add_test(tc, one_qps_bursts_two);
	tcase_add_test(tc, huge_qps_no_overflow);
	tcase_add_test(tc, zero_qps_and_null_allow_everything);
	suite_add_tcase(s, tc);

	tc = tcase_create("clients");
	tcase_add_test(tc, clients_are_independent);
	tcase_add_test(tc, port_is_ignored);
	tcase_add_test(tc, ipv4_and_ipv6_buckets);
	tcase_add_test(tc, unknown_family_allowed);
	tcase_add_test(tc, flood_of_addresses_stays_bounded);
	tcase_add_test(tc, recently_seen_client_not_evicted);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(ratelimit_suite());
}

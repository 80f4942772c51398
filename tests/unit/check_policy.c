/*
 * check_policy.c - how the pool chooses an upstream and backs a failed one
 * off, without a network: src/upstream.c is included so its choosing and
 * backoff functions run on hand-made pools, and the loop's clock is read
 * from the timers it arms (an injected "now" is the loop's own, tick by tick).
 */
#include "../../src/upstream.c"

#include <check.h>

#include "unit.h"

static struct loop *lp;
static struct pool *p;
static struct qtable qt;
static struct metrics m;
static struct upstream_cfg cfgs[CFG_MAX_UPSTREAMS];

/* A pool of @n upstreams with the given policy; no connection is ever opened here. */
static void make(unsigned n, enum cfg_policy policy)
{
	lp = loop_new();
	ck_assert_ptr_nonnull(lp);
	p = calloc(1, sizeof(*p));
	ck_assert_ptr_nonnull(p);
	p->loop = lp;
	p->qt = &qt;
	p->m = &m;
	p->policy = policy;
	p->max_conns = 2;
	qt.timeout_ms = 3000;
	for (unsigned i = 0; i < n; i++) {
		snprintf(cfgs[i].label, sizeof(cfgs[i].label), "192.0.2.%u@853#up%u.test", i + 1, i);
		upstream_init(p, i, &cfgs[i], NULL);
		p->order[i] = i;
	}
	p->nactive = n;
	memset(&m, 0, sizeof(m));
	log_set_level(LOG_LVL_ERR);	/* failures here are on purpose */
}

static void unmake(void)
{
	for (unsigned i = 0; i < p->n; i++)
		loop_timer_cancel(lp, &p->ups[i].probe);
	free(p);
	loop_free(lp);
}

static unsigned choose(uint32_t tried)
{
	struct query q = { .tried = tried };
	struct upstream *u = pick(p, &q);

	ck_assert_ptr_nonnull(u);
	return u->idx;
}

START_TEST(ordered_takes_the_first_usable)
{
	make(3, POLICY_ORDERED);
	ck_assert_uint_eq(choose(0), 0);
	ck_assert_uint_eq(choose(0), 0);
	p->ups[0].down = true;
	ck_assert_uint_eq(choose(0), 1);
	ck_assert_uint_eq(choose(1u << 1), 2);		/* not where it failed */
	p->ups[2].down = true;
	ck_assert_uint_eq(choose(1u << 1), 1);		/* ... unless nothing else is left */
	p->ups[1].down = true;
	{
		struct query q = { 0 };

		ck_assert_ptr_null(pick(p, &q));	/* all down: SERVFAIL, no waiting */
	}
	unmake();
}
END_TEST

START_TEST(round_robin_takes_each_in_turn)
{
	unsigned seen[3] = { 0 };

	make(3, POLICY_ROUND_ROBIN);
	for (int i = 0; i < 30; i++)
		seen[choose(0)]++;
	ck_assert_uint_eq(seen[0], 10);
	ck_assert_uint_eq(seen[1], 10);
	ck_assert_uint_eq(seen[2], 10);
	p->ups[1].down = true;
	seen[0] = seen[1] = seen[2] = 0;
	for (int i = 0; i < 30; i++)
		seen[choose(0)]++;
	ck_assert_uint_eq(seen[1], 0);
	ck_assert_uint_eq(seen[0], 15);
	ck_assert_uint_eq(seen[2], 15);
	unmake();
}
END_TEST

START_TEST(fastest_takes_the_lowest_estimate_and_explores)
{
	unsigned seen[3] = { 0 };

	make(3, POLICY_FASTEST);
	/* unmeasured ones first: that measures them */
	p->ups[0].srtt8 = 40 * 8;
	p->ups[1].srtt8 = 0;
	p->ups[2].srtt8 = 10 * 8;
	ck_assert_uint_eq(choose(0), 1);
	p->ups[1].srtt8 = 30 * 8;
	for (int i = 0; i < 320; i++)
		seen[choose(0)]++;
	/* one choice in 32 explores (at random among the usable); the rest take the fastest */
	ck_assert_uint_ge(seen[2], 320 - 10);
	ck_assert_uint_eq(seen[0] + seen[1] + seen[2], 320);
	ck_assert_uint_le(seen[0] + seen[1], 10);
	/* not where it failed, even if fastest */
	ck_assert_uint_ne(choose(1u << 2), 2);
	unmake();
}
END_TEST

START_TEST(answer_times_are_smoothed)
{
	make(1, POLICY_FASTEST);
	/* what conn_answer does with each answer's time: gain 1/8 (RFC 6298 2.3) */
	struct upstream *u = &p->ups[0];
	uint64_t rtts[] = { 80, 80, 80, 8, 8, 8, 8, 8, 8, 8, 8 };

	for (size_t i = 0; i < sizeof(rtts) / sizeof(rtts[0]); i++)
		u->srtt8 = u->srtt8 ? u->srtt8 - (u->srtt8 >> 3) + rtts[i] : (rtts[i] << 3) + 1;
	/* from 80 ms towards 8: (80 - 8) * (7/8)^8 + 8 = 32.2 */
	ck_assert_uint_ge(u->srtt8 / 8, 30);
	ck_assert_uint_le(u->srtt8 / 8, 34);
	/* a query left waiting half its deadline makes it slow for now */
	upstream_slow(u);
	ck_assert_uint_eq(u->srtt8, 1500 * 8);
	unmake();
}
END_TEST

/* Fail upstream @u's connection @j as conn_fail would; returns the probe's delay. */
static uint64_t fail_conn(struct upstream *u, unsigned j)
{
	conn_close(&u->conns[j], true, NULL);
	ck_assert(u->down);
	ck_assert(loop_timer_armed(&u->probe));
	return u->probe.when - loop_now(lp);
}

START_TEST(backoff_doubles_to_five_seconds_with_jitter)
{
	static const unsigned want[] = { 250, 500, 1000, 2000, 4000, 5000, 5000 };
	struct upstream *u;

	make(1, POLICY_ORDERED);
	u = &p->ups[0];
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		uint64_t d;

		/* the probe's own connection failing, each time */
		u->conns[0].probing = i > 0;
		d = fail_conn(u, 0);
		ck_assert_uint_eq(u->backoff_ms, want[i]);
		ck_assert_uint_ge(d, want[i] - want[i] / 4);		/* +-25% */
		ck_assert_uint_le(d, want[i] + want[i] / 4);
	}
	ck_assert_uint_eq(u->failures, 7);
	unmake();
}
END_TEST

START_TEST(other_connections_failing_while_down_do_not_grow_the_backoff)
{
	struct upstream *u;
	uint64_t when;

	make(1, POLICY_ORDERED);
	u = &p->ups[0];
	fail_conn(u, 0);
	when = u->probe.when;
	/* its other connection fails too (an upstream restart): still the first backoff */
	conn_close(&u->conns[1], true, NULL);
	ck_assert_uint_eq(u->backoff_ms, 250);
	ck_assert_uint_eq(u->probe.when, when);
	ck_assert_uint_eq(u->failures, 2);
	/* an answer (here: the probe's) brings it back and cancels the next probe */
	upstream_alive(u);
	ck_assert(!u->down);
	ck_assert_uint_eq(u->backoff_ms, 0);
	ck_assert(!loop_timer_armed(&u->probe));
	unmake();
}
END_TEST

START_TEST(connections_fill_before_another_opens)
{
	struct upstream *u;
	struct upconn *c;

	make(1, POLICY_ORDERED);
	u = &p->ups[0];
	c = pick_conn(u, NULL);
	ck_assert_ptr_eq(c, &u->conns[0]);
	c->state = C_READY;
	c->sent.n = CONN_BUSY - 1;
	ck_assert_ptr_eq(pick_conn(u, NULL), &u->conns[0]);
	c->sent.n = CONN_BUSY;			/* busy: the next one */
	ck_assert_ptr_eq(pick_conn(u, NULL), &u->conns[1]);
	u->conns[1].state = C_READY;
	u->conns[1].sent.n = CONN_BUSY + 5;	/* both busy, --max-conns 2: the least loaded */
	ck_assert_ptr_eq(pick_conn(u, NULL), &u->conns[0]);
	/* a silent (suspect) or probing connection takes nothing new */
	c->suspect = true;
	ck_assert_ptr_eq(pick_conn(u, NULL), &u->conns[1]);
	u->conns[1].probing = true;
	ck_assert_ptr_null(pick_conn(u, NULL));
	/* and neither does the one a query is moving away from */
	c->suspect = false;
	u->conns[1].probing = false;
	ck_assert_ptr_eq(pick_conn(u, &u->conns[0]), &u->conns[1]);
	c->sent.n = u->conns[1].sent.n = 0;
	c->state = u->conns[1].state = C_CLOSED;
	unmake();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("policy");
	TCase *tc = tcase_create("choosing");

	tcase_add_test(tc, ordered_takes_the_first_usable);
	tcase_add_test(tc, round_robin_takes_each_in_turn);
	tcase_add_test(tc, fastest_takes_the_lowest_estimate_and_explores);
	tcase_add_test(tc, answer_times_are_smoothed);
	tcase_add_test(tc, connections_fill_before_another_opens);
	suite_add_tcase(s, tc);
	tc = tcase_create("backoff");
	tcase_add_test(tc, backoff_doubles_to_five_seconds_with_jitter);
	tcase_add_test(tc, other_connections_failing_while_down_do_not_grow_the_backoff);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

/*
 * check_loop.c - unit tests for src/loop.c: timer order, cancel and re-arm,
 * deferred callbacks, loop_stop, and fd callbacks. Timers use real
 * milliseconds; every test stays well under a second and has a guard timer
 * so a broken loop fails the test instead of hanging it.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "unit.h"

#define GUARD_MS 3000	/* a test that reaches this has failed */

/* What fired, in order. */
struct log {
	int ids[512];
	int n;
};

struct tmr {
	struct loop_timer t;
	int id;
	int fired;
	struct log *log;
};

static void on_timer(struct loop *l, void *arg)
{
	struct tmr *x = arg;

	ck_assert_msg(!loop_timer_armed(&x->t), "timer %d still armed in its callback", x->id);
	ck_assert_msg(loop_now(l) >= x->t.when, "timer %d fired %llu ms early", x->id,
		      (unsigned long long)(x->t.when - loop_now(l)));
	ck_assert_int_lt(x->log->n, 512);
	x->log->ids[x->log->n++] = x->id;
	x->fired++;
}

static void stop_cb(struct loop *l, void *arg)
{
	bool *flag = arg;

	if (flag)
		*flag = true;
	loop_stop(l);
}

/* Run @l with a guard; fail the test if the guard is what stopped it. */
static void run_guarded(struct loop *l)
{
	struct loop_timer guard;
	bool guard_fired = false;

	loop_timer_init(&guard, stop_cb, &guard_fired);
	ck_assert_int_eq(loop_timer_set(l, &guard, GUARD_MS), 0);
	ck_assert_int_eq(loop_run(l), 0);
	ck_assert_msg(!guard_fired, "the loop ran into the %d ms guard", GUARD_MS);
	loop_timer_cancel(l, &guard);
}

/* Arm @stop to end the loop @ms from now. */
static void stop_after(struct loop *l, struct loop_timer *stop, uint64_t ms)
{
	loop_timer_init(stop, stop_cb, NULL);
	ck_assert_int_eq(loop_timer_set(l, stop, ms), 0);
}

static void shuffle(int *v, int n, unsigned seed)
{
	srand(seed);
	for (int i = n - 1; i > 0; i--) {
		int j = rand() % (i + 1), t = v[i];

		v[i] = v[j];
		v[j] = t;
	}
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- timers ---- */

#define NTIMERS 200	/* more than one heap allocation's worth */

START_TEST(timers_fire_in_time_order)
{
	static struct tmr t[NTIMERS];
	struct loop_timer stop;
	struct log log = { .n = 0 };
	struct loop *l = loop_new();
	int order[NTIMERS];

	ck_assert_ptr_nonnull(l);
	for (int i = 0; i < NTIMERS; i++)
		order[i] = i;
	shuffle(order, NTIMERS, (unsigned)_i + 1);
	/* timer i fires i ms from now; armed in a random order */
	for (int k = 0; k < NTIMERS; k++) {
		struct tmr *x = &t[order[k]];

		x->id = order[k];
		x->fired = 0;
		x->log = &log;
		loop_timer_init(&x->t, on_timer, x);
		ck_assert_int_eq(loop_timer_set(l, &x->t, (uint64_t)x->id), 0);
		ck_assert(loop_timer_armed(&x->t));
	}
	stop_after(l, &stop, NTIMERS + 20);
	run_guarded(l);

	ck_assert_int_eq(log.n, NTIMERS);
	for (int i = 0; i < NTIMERS; i++) {
		ck_assert_msg(log.ids[i] == i, "position %d: timer %d fired", i, log.ids[i]);
		ck_assert_int_eq(t[i].fired, 1);
		ck_assert(!loop_timer_armed(&t[i].t));
	}
	loop_free(l);
}
END_TEST

START_TEST(timers_with_equal_deadlines_all_fire)
{
	struct tmr t[10];
	struct loop_timer stop;
	struct log log = { .n = 0 };
	struct loop *l = loop_new();

	for (int i = 0; i < 10; i++) {
		t[i] = (struct tmr){ .id = i, .log = &log };
		loop_timer_init(&t[i].t, on_timer, &t[i]);
		ck_assert_int_eq(loop_timer_set(l, &t[i].t, 5), 0);
	}
	stop_after(l, &stop, 30);
	run_guarded(l);
	ck_assert_int_eq(log.n, 10);
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(t[i].fired, 1);
	loop_free(l);
}
END_TEST

START_TEST(timer_cancel_removes)
{
	static struct tmr t[NTIMERS];
	struct loop_timer stop;
	struct log log = { .n = 0 };
	struct loop *l = loop_new();
	int order[NTIMERS], expect = 0;

	for (int i = 0; i < NTIMERS; i++)
		order[i] = i;
	shuffle(order, NTIMERS, (unsigned)_i + 7);
	for (int k = 0; k < NTIMERS; k++) {
		struct tmr *x = &t[order[k]];

		*x = (struct tmr){ .id = order[k], .log = &log };
		loop_timer_init(&x->t, on_timer, x);
		ck_assert_int_eq(loop_timer_set(l, &x->t, (uint64_t)x->id), 0);
	}
	/*
	 * Cancel every third timer (they sit all over the heap, most in the
	 * middle), the one due first (the heap's root) and the one due last.
	 */
	for (int i = 0; i < NTIMERS; i++) {
		if (i % 3 == 1 || i == 0 || i == NTIMERS - 1) {
			loop_timer_cancel(l, &t[i].t);
			ck_assert(!loop_timer_armed(&t[i].t));
			loop_timer_cancel(l, &t[i].t);	/* twice is harmless */
		}
	}
	stop_after(l, &stop, NTIMERS + 20);
	run_guarded(l);

	for (int i = 0; i < NTIMERS; i++) {
		bool cancelled = i % 3 == 1 || i == 0 || i == NTIMERS - 1;

		ck_assert_msg(t[i].fired == (cancelled ? 0 : 1), "timer %d fired %d times", i,
			      t[i].fired);
		if (!cancelled) {
			ck_assert_int_lt(expect, log.n);
			ck_assert_msg(log.ids[expect] == i, "position %d: timer %d fired, wanted %d",
				      expect, log.ids[expect], i);
			expect++;
		}
	}
	ck_assert_int_eq(log.n, expect);
	loop_free(l);
}
END_TEST

START_TEST(timer_cancel_idle_is_harmless)
{
	struct loop *l = loop_new();
	struct loop_timer idle, stop;
	struct tmr other = { .id = 1 };
	struct log log = { .n = 0 };

	other.log = &log;
	loop_timer_init(&idle, on_timer, NULL);
	loop_timer_cancel(l, &idle);		/* never armed */
	loop_timer_init(&other.t, on_timer, &other);
	ck_assert_int_eq(loop_timer_set(l, &other.t, 5), 0);
	loop_timer_cancel(l, &idle);		/* must not disturb the armed one */
	ck_assert(loop_timer_armed(&other.t));
	stop_after(l, &stop, 30);
	run_guarded(l);
	ck_assert_int_eq(other.fired, 1);
	loop_free(l);
}
END_TEST

/* A timer whose callback cancels another. */
struct canceller {
	struct loop_timer t;
	struct loop_timer *victim;
};

static void cancel_cb(struct loop *l, void *arg)
{
	struct canceller *c = arg;

	loop_timer_cancel(l, c->victim);
}

START_TEST(timer_cancel_from_callback)
{
	struct loop *l = loop_new();
	struct canceller c;
	struct tmr victim = { .id = 1 }, after = { .id = 2 };
	struct log log = { .n = 0 };
	struct loop_timer stop;

	victim.log = after.log = &log;
	loop_timer_init(&victim.t, on_timer, &victim);
	loop_timer_init(&after.t, on_timer, &after);
	loop_timer_init(&c.t, cancel_cb, &c);
	c.victim = &victim.t;
	ck_assert_int_eq(loop_timer_set(l, &c.t, 5), 0);
	ck_assert_int_eq(loop_timer_set(l, &victim.t, 20), 0);
	ck_assert_int_eq(loop_timer_set(l, &after.t, 30), 0);
	stop_after(l, &stop, 50);
	run_guarded(l);
	ck_assert_int_eq(victim.fired, 0);
	ck_assert_int_eq(after.fired, 1);
	loop_free(l);
}
END_TEST

START_TEST(timer_rearm_moves)
{
	struct loop *l = loop_new();
	struct tmr a = { .id = 'A' }, b = { .id = 'B' }, c = { .id = 'C' }, d = { .id = 'D' };
	struct log log = { .n = 0 };
	struct loop_timer stop;

	a.log = b.log = c.log = d.log = &log;
	loop_timer_init(&a.t, on_timer, &a);
	loop_timer_init(&b.t, on_timer, &b);
	loop_timer_init(&c.t, on_timer, &c);
	loop_timer_init(&d.t, on_timer, &d);
	ck_assert_int_eq(loop_timer_set(l, &a.t, 60), 0);
	ck_assert_int_eq(loop_timer_set(l, &b.t, 30), 0);
	ck_assert_int_eq(loop_timer_set(l, &c.t, 15), 0);
	ck_assert_int_eq(loop_timer_set(l, &d.t, 40), 0);
	ck_assert_int_eq(loop_timer_set(l, &a.t, 10), 0);	/* earlier: now first */
	ck_assert_int_eq(loop_timer_set(l, &c.t, 50), 0);	/* later: now after D */
	stop_after(l, &stop, 80);
	run_guarded(l);

	ck_assert_int_eq(log.n, 4);
	ck_assert_int_eq(log.ids[0], 'A');
	ck_assert_int_eq(log.ids[1], 'B');
	ck_assert_int_eq(log.ids[2], 'D');
	ck_assert_int_eq(log.ids[3], 'C');
	ck_assert_int_eq(a.fired, 1);
	ck_assert_int_eq(c.fired, 1);
	loop_free(l);
}
END_TEST

/* Re-arms itself until it has fired @left times. */
struct repeater {
	struct loop_timer t;
	int left, fired;
};

static void repeat_cb(struct loop *l, void *arg)
{
	struct repeater *r = arg;

	r->fired++;
	if (--r->left > 0)
		ck_assert_int_eq(loop_timer_set(l, &r->t, 3), 0);
}

START_TEST(timer_rearm_from_own_callback)
{
	struct loop *l = loop_new();
	struct repeater r = { .left = 4 };
	struct loop_timer stop;

	loop_timer_init(&r.t, repeat_cb, &r);
	ck_assert_int_eq(loop_timer_set(l, &r.t, 3), 0);
	stop_after(l, &stop, 60);
	run_guarded(l);
	ck_assert_int_eq(r.fired, 4);
	ck_assert(!loop_timer_armed(&r.t));
	loop_free(l);
}
END_TEST

/* Random arm, re-arm and cancel; what is left must fire in deadline order. */
START_TEST(timers_random_operations_keep_order)
{
	enum { N = 64 };
	static struct tmr t[N];
	uint64_t due[N];	/* 0: not armed; else its delay + 1 */
	struct loop *l = loop_new();
	struct log log = { .n = 0 };
	struct loop_timer stop;
	int armed = 0, prev = -1;

	srand(12345);
	for (int i = 0; i < N; i++) {
		t[i] = (struct tmr){ .id = i, .log = &log };
		loop_timer_init(&t[i].t, on_timer, &t[i]);
		due[i] = 0;
	}
	for (int op = 0; op < 2000; op++) {
		int i = rand() % N;

		if (rand() % 3 == 0) {
			loop_timer_cancel(l, &t[i].t);
			due[i] = 0;
		} else {
			uint64_t ms = (uint64_t)(rand() % 300);

			ck_assert_int_eq(loop_timer_set(l, &t[i].t, ms), 0);
			due[i] = ms + 1;
		}
		ck_assert(loop_timer_armed(&t[i].t) == (due[i] != 0));
	}
	for (int i = 0; i < N; i++)
		armed += due[i] != 0;
	stop_after(l, &stop, 450);
	run_guarded(l);

	ck_assert_int_eq(log.n, armed);
	for (int k = 0; k < log.n; k++) {
		int i = log.ids[k];

		ck_assert_msg(due[i] != 0, "cancelled timer %d fired", i);
		ck_assert_int_eq(t[i].fired, 1);
		if (prev >= 0)
			ck_assert_msg(t[prev].t.when <= t[i].t.when,
				      "timer %d (due %llu) fired after timer %d (due %llu)", i,
				      (unsigned long long)t[i].t.when, prev,
				      (unsigned long long)t[prev].t.when);
		prev = i;
	}
	loop_free(l);
}
END_TEST

/* ---- loop_stop ---- */

START_TEST(loop_stop_from_timer_ends_run)
{
	struct loop *l = loop_new();
	struct tmr far = { .id = 1 };
	struct log log = { .n = 0 };
	struct loop_timer stop;
	uint64_t start;

	far.log = &log;
	loop_timer_init(&far.t, on_timer, &far);
	ck_assert_int_eq(loop_timer_set(l, &far.t, 60000), 0);
	stop_after(l, &stop, 10);
	start = wall_ms();
	ck_assert_int_eq(loop_run(l), 0);
	ck_assert_uint_lt(wall_ms() - start, 1000);
	ck_assert_uint_ge(wall_ms() - start, 9);
	ck_assert_int_eq(far.fired, 0);
	ck_assert(loop_timer_armed(&far.t));
	/* a stopped loop runs again */
	stop_after(l, &stop, 10);
	start = wall_ms();
	ck_assert_int_eq(loop_run(l), 0);
	ck_assert_uint_ge(wall_ms() - start, 9);
	loop_free(l);
}
END_TEST

/* ---- deferred callbacks ---- */

struct deferred {
	struct loop_defer d;
	int runs;
	int order;	/* value of *clock when it ran */
	int *clock;
};

static void defer_cb(struct loop *l, void *arg)
{
	struct deferred *x = arg;

	(void)l;
	x->runs++;
	if (x->clock)
		x->order = ++*x->clock;
}

START_TEST(defer_runs_once_when_queued_twice)
{
	struct loop *l = loop_new();
	struct deferred x = { .runs = 0 };
	struct loop_timer stop;

	loop_defer_init(&x.d, defer_cb, &x);
	loop_defer(l, &x.d);
	loop_defer(l, &x.d);
	stop_after(l, &stop, 20);
	run_guarded(l);
	ck_assert_int_eq(x.runs, 1);
	loop_free(l);
}
END_TEST

/* Cancelled callbacks don't run, whatever their place on the queue; the rest run in order. */
START_TEST(defer_cancel_takes_it_off_the_queue)
{
	struct loop *l = loop_new();
	int clock = 0;
	struct deferred x[4];
	struct loop_timer stop;

	for (int i = 0; i < 4; i++) {
		x[i] = (struct deferred){ .clock = &clock };
		loop_defer_init(&x[i].d, defer_cb, &x[i]);
		loop_defer(l, &x[i].d);
	}
	loop_defer_cancel(l, &x[0].d);	/* the head */
	loop_defer_cancel(l, &x[3].d);	/* the tail: a later one must still be queued after x[2] */
	loop_defer_cancel(l, &x[3].d);	/* not queued: harmless */
	loop_defer(l, &x[3].d);
	loop_defer_cancel(l, &x[1].d);	/* the middle */
	stop_after(l, &stop, 20);
	run_guarded(l);
	ck_assert_int_eq(x[0].runs, 0);
	ck_assert_int_eq(x[1].runs, 0);
	ck_assert_int_eq(x[2].runs, 1);
	ck_assert_int_eq(x[3].runs, 1);
	ck_assert_int_lt(x[2].order, x[3].order);
	loop_free(l);
}
END_TEST

/* A timer that queues a deferred callback twice. */
struct queuer {
	struct loop_timer t;
	struct deferred *x;
	int clock_at_timer;
	int *clock;
};

static void queue_twice_cb(struct loop *l, void *arg)
{
	struct queuer *q = arg;

	loop_defer(l, &q->x->d);
	loop_defer(l, &q->x->d);
	q->clock_at_timer = ++*q->clock;
}

START_TEST(defer_queued_from_timer_runs_once_after_it)
{
	struct loop *l = loop_new();
	int clock = 0;
	struct deferred x = { .clock = &clock };
	struct queuer q = { .x = &x, .clock = &clock };
	struct loop_timer stop;

	loop_defer_init(&x.d, defer_cb, &x);
	loop_timer_init(&q.t, queue_twice_cb, &q);
	ck_assert_int_eq(loop_timer_set(l, &q.t, 5), 0);
	stop_after(l, &stop, 40);
	run_guarded(l);
	ck_assert_int_eq(x.runs, 1);
	ck_assert_int_gt(x.order, q.clock_at_timer);
	loop_free(l);
}
END_TEST

static void requeue_cb(struct loop *l, void *arg)
{
	struct deferred *x = arg;

	/* queued again from its own callback: runs again, once per queueing */
	if (++x->runs < 3)
		loop_defer(l, &x->d);
}

START_TEST(defer_can_be_queued_again_after_running)
{
	struct loop *l = loop_new();
	struct deferred x = { .runs = 0 };
	struct loop_timer stop;

	loop_defer_init(&x.d, requeue_cb, &x);
	loop_defer(l, &x.d);
	stop_after(l, &stop, 20);
	run_guarded(l);
	ck_assert_int_eq(x.runs, 3);
	loop_free(l);
}
END_TEST

START_TEST(defer_each_of_many_runs_once)
{
	struct loop *l = loop_new();
	struct deferred x[5];
	struct loop_timer stop;

	for (int i = 0; i < 5; i++) {
		x[i] = (struct deferred){ .runs = 0 };
		loop_defer_init(&x[i].d, defer_cb, &x[i]);
	}
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < 5; i++)
			loop_defer(l, &x[i].d);
	stop_after(l, &stop, 20);
	run_guarded(l);
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(x[i].runs, 1);
	loop_free(l);
}
END_TEST

/* ---- fd callbacks ---- */

struct io_ctx {
	struct loop_io io;
	int fd;
	uint32_t events;
	int calls;
	bool stop;
	char got;
};

static void io_cb(struct loop *l, int fd, void *arg, uint32_t events)
{
	struct io_ctx *c = arg;

	ck_assert_int_eq(fd, c->fd);
	c->calls++;
	c->events |= events;
	if (events & EPOLLIN) {
		uint64_t v;

		if (read(fd, &v, sizeof(v)) > 0)
			c->got = (char)v;
	}
	if (c->stop)
		loop_stop(l);
}

START_TEST(io_pipe_gets_epollin)
{
	struct loop *l = loop_new();
	struct io_ctx c = { .stop = true };
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	c.fd = p[0];
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(loop_io_add(l, &c.io, p[0], EPOLLIN, io_cb, &c), 0);
	run_guarded(l);
	ck_assert_int_eq(c.calls, 1);
	ck_assert(c.events & EPOLLIN);
	ck_assert_int_eq(c.got, 'x');
	loop_io_del(l, &c.io);
	close(p[0]);
	close(p[1]);
	loop_free(l);
}
END_TEST

/* A timer that writes to an eventfd. */
struct poker {
	struct loop_timer t;
	int fd;
};

static void poke_cb(struct loop *l, void *arg)
{
	struct poker *p = arg;
	uint64_t one = 1;

	(void)l;
	ck_assert_int_eq(write(p->fd, &one, sizeof(one)), sizeof(one));
}

START_TEST(io_eventfd_wakes_a_waiting_loop)
{
	struct loop *l = loop_new();
	struct io_ctx c = { .stop = true };
	struct poker pk;
	uint64_t start;

	c.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ck_assert_int_ge(c.fd, 0);
	pk.fd = c.fd;
	loop_timer_init(&pk.t, poke_cb, &pk);
	ck_assert_int_eq(loop_timer_set(l, &pk.t, 20), 0);
	ck_assert_int_eq(loop_io_add(l, &c.io, c.fd, EPOLLIN, io_cb, &c), 0);
	start = wall_ms();
	run_guarded(l);
	ck_assert_uint_ge(wall_ms() - start, 19);
	ck_assert_int_eq(c.calls, 1);
	ck_assert(c.events & EPOLLIN);
	ck_assert_int_eq(c.got, 1);
	close(c.fd);
	loop_free(l);
}
END_TEST

START_TEST(io_set_switches_interest)
{
	struct loop *l = loop_new();
	struct io_ctx c = { .stop = true };
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	c.fd = p[1];
	/* the write end never becomes readable; once it asks for EPOLLOUT it is called */
	ck_assert_int_eq(loop_io_add(l, &c.io, p[1], EPOLLIN, io_cb, &c), 0);
	ck_assert_int_eq(loop_io_set(l, &c.io, EPOLLOUT), 0);
	ck_assert_uint_eq(c.io.events, EPOLLOUT);
	run_guarded(l);
	ck_assert_int_eq(c.calls, 1);
	ck_assert(c.events & EPOLLOUT);
	ck_assert(!(c.events & EPOLLIN));
	close(p[0]);
	close(p[1]);
	loop_free(l);
}
END_TEST

START_TEST(io_del_stops_callbacks)
{
	struct loop *l = loop_new();
	struct io_ctx c = { .stop = false };
	struct loop_timer stop;
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	c.fd = p[0];
	ck_assert_int_eq(write(p[1], "x", 1), 1);
	ck_assert_int_eq(loop_io_add(l, &c.io, p[0], EPOLLIN, io_cb, &c), 0);
	loop_io_del(l, &c.io);
	stop_after(l, &stop, 30);
	run_guarded(l);
	ck_assert_int_eq(c.calls, 0);

	/* deleted means gone from epoll too: the same fd can be added again */
	ck_assert_int_eq(loop_io_add(l, &c.io, p[0], EPOLLIN, io_cb, &c), 0);
	loop_io_del(l, &c.io);
	close(p[0]);
	close(p[1]);
	loop_free(l);
}
END_TEST

/* Two readable pipes; whichever is called first deletes the other. */
struct pair {
	struct io_ctx c[2];
	int calls;
	struct loop_timer stop;
};

static void delete_other_cb(struct loop *l, int fd, void *arg, uint32_t events)
{
	struct pair *pr = arg;
	int me = fd == pr->c[0].fd ? 0 : 1;

	(void)events;
	pr->calls++;
	pr->c[me].calls++;
	loop_io_del(l, &pr->c[1 - me].io);
	loop_io_del(l, &pr->c[me].io);
}

START_TEST(io_deleted_earlier_in_batch_not_called)
{
	struct loop *l = loop_new();
	struct pair pr = { .calls = 0 };
	int p[2][2];

	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(pipe(p[i]), 0);
		ck_assert_int_eq(write(p[i][1], "x", 1), 1);
		pr.c[i].fd = p[i][0];
	}
	/* both are ready before the loop waits: one epoll_wait returns both */
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(loop_io_add(l, &pr.c[i].io, p[i][0], EPOLLIN, delete_other_cb, &pr), 0);
	stop_after(l, &pr.stop, 30);
	run_guarded(l);
	ck_assert_int_eq(pr.calls, 1);
	for (int i = 0; i < 2; i++) {
		close(p[i][0]);
		close(p[i][1]);
	}
	loop_free(l);
}
END_TEST

static uint64_t cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

START_TEST(loop_sleeps_while_waiting)
{
	struct loop *l = loop_new();
	struct loop_timer stop;
	uint64_t wall, cpu;

	stop_after(l, &stop, 200);
	wall = wall_ms();
	cpu = cpu_ms();
	run_guarded(l);
	ck_assert_uint_ge(wall_ms() - wall, 199);
	ck_assert_msg(cpu_ms() - cpu < 100, "waiting 200 ms took %llu ms of CPU",
		      (unsigned long long)(cpu_ms() - cpu));
	loop_free(l);
}
END_TEST

START_TEST(io_add_bad_fd_fails)
{
	struct loop *l = loop_new();
	struct io_ctx c = { .fd = -1 };

	ck_assert_int_lt(loop_io_add(l, &c.io, 1000000, EPOLLIN, io_cb, &c), 0);
	loop_free(l);
}
END_TEST

static Suite *loop_suite(void)
{
	Suite *s = suite_create("loop");
	TCase *tc;

	tc = tcase_create("timers");
	tcase_add_loop_test(tc, timers_fire_in_time_order, 0, 3);
	tcase_add_test(tc, timers_with_equal_deadlines_all_fire);
	tcase_add_loop_test(tc, timer_cancel_removes, 0, 3);
	tcase_add_test(tc, timer_cancel_idle_is_harmless);
	tcase_add_test(tc, timer_cancel_from_callback);
	tcase_add_test(tc, timer_rearm_moves);
	tcase_add_test(tc, timer_rearm_from_own_callback);
	tcase_add_test(tc, timers_random_operations_keep_order);
	tcase_add_test(tc, loop_stop_from_timer_ends_run);
	tcase_add_test(tc, loop_sleeps_while_waiting);
	suite_add_tcase(s, tc);

	tc = tcase_create("defer");
	tcase_add_test(tc, defer_runs_once_when_queued_twice);
	tcase_add_test(tc, defer_queued_from_timer_runs_once_after_it);
	tcase_add_test(tc, defer_can_be_queued_again_after_running);
	tcase_add_test(tc, defer_each_of_many_runs_once);
	tcase_add_test(tc, defer_cancel_takes_it_off_the_queue);
	suite_add_tcase(s, tc);

	tc = tcase_create("io");
	tcase_add_test(tc, io_pipe_gets_epollin);
	tcase_add_test(tc, io_eventfd_wakes_a_waiting_loop);
	tcase_add_test(tc, io_set_switches_interest);
	tcase_add_test(tc, io_del_stops_callbacks);
	tcase_add_test(tc, io_deleted_earlier_in_batch_not_called);
	tcase_add_test(tc, io_add_bad_fd_fails);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return unit_run(loop_suite());
}

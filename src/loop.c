/*
 * loop.c - epoll event loop with a binary min-heap of timers and a list of
 * deferred callbacks that run after every batch of events (where writes are
 * flushed, so that many queries share one system call).
 */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 128

struct loop {
	int epfd;
	bool stop;
	uint64_t now;
	struct loop_timer **heap;	/* heap[0] fires first */
	unsigned nheap, capheap;
	struct loop_defer *defer_head, **defer_tail;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	l->now = mono_ms();
	l->defer_tail = &l->defer_head;
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l->heap);
	free(l);
}

uint64_t loop_now(const struct loop *l) { return l->now; }

/* Owners never free a loop_io while the loop runs; a deleted one has fd -1. */
static void io_dispatch(struct loop *l, struct loop_io *io, uint32_t ev)
{
	if (io->fd >= 0)
		io->cb(l, io->fd, io->arg, ev);
}

int loop_io_add(struct loop *l, struct loop_io *io, int fd, uint32_t events, loop_io_cb cb, void *arg)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	io->fd = fd;
	io->events = events;
	io->cb = cb;
	io->arg = arg;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

int loop_io_set(struct loop *l, struct loop_io *io, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	if (io->events == events)
		return 0;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
		return -errno;
	io->events = events;
	return 0;
}

void loop_io_del(struct loop *l, struct loop_io *io)
{
	if (io->fd >= 0)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	io->fd = -1;
}

/* ---- timers: min-heap on when ---- */

static void heap_place(struct loop *l, unsigned i, struct loop_timer *t)
{
	l->heap[i] = t;
	t->heap_idx = i + 1;
}

static void heap_up(struct loop *l, unsigned i)
{
	struct loop_timer *t = l->heap[i];

	while (i > 0) {
		unsigned p = (i - 1) / 2;

		if (l->heap[p]->when <= t->when)
			break;
		heap_place(l, i, l->heap[p]);
		i = p;
	}
	heap_place(l, i, t);
}

static void heap_down(struct loop *l, unsigned i)
{
	struct loop_timer *t = l->heap[i];

	for (;;) {
		unsigned c = 2 * i + 1;

		if (c >= l->nheap)
			break;
		if (c + 1 < l->nheap && l->heap[c + 1]->when < l->heap[c]->when)
			c++;
		if (t->when <= l->heap[c]->when)
			break;
		heap_place(l, i, l->heap[c]);
		i = c;
	}
	heap_place(l, i, t);
}

void loop_timer_init(struct loop_timer *t, loop_cb cb, void *arg)
{
	t->when = 0;
	t->heap_idx = 0;
	t->cb = cb;
	t->arg = arg;
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	unsigned i;
	struct loop_timer *last;

	if (!t->heap_idx)
		return;
	i = t->heap_idx - 1;
	t->heap_idx = 0;
	last = l->heap[--l->nheap];
	if (i == l->nheap)
		return;
	heap_place(l, i, last);
	heap_up(l, i);
	heap_down(l, last->heap_idx - 1);
}

int loop_timer_set(struct loop *l, struct loop_timer *t, uint64_t ms)
{
	loop_timer_cancel(l, t);
	if (l->nheap == l->capheap) {
		unsigned cap = l->capheap ? l->capheap * 2 : 64;
		struct loop_timer **h = realloc(l->heap, cap * sizeof(*h));

		if (!h)
			return -ENOMEM;
		l->heap = h;
		l->capheap = cap;
	}
	t->when = l->now + ms;
	l->heap[l->nheap] = t;
	t->heap_idx = ++l->nheap;
	heap_up(l, l->nheap - 1);
	return 0;
}

static void run_timers(struct loop *l)
{
	while (l->nheap && l->heap[0]->when <= l->now) {
		struct loop_timer *t = l->heap[0];

		loop_timer_cancel(l, t);
		t->cb(l, t->arg);
	}
}

/* ---- deferred callbacks ---- */

void loop_defer_init(struct loop_defer *d, loop_cb cb, void *arg)
{
	d->next = NULL;
	d->queued = false;
	d->cb = cb;
	d->arg = arg;
}

void loop_defer(struct loop *l, struct loop_defer *d)
{
	if (d->queued)
		return;
	d->queued = true;
	d->next = NULL;
	*l->defer_tail = d;
	l->defer_tail = &d->next;
}

void loop_defer_cancel(struct loop *l, struct loop_defer *d)
{
	struct loop_defer **pp;

	if (!d->queued)
		return;
	for (pp = &l->defer_head; *pp != d; pp = &(*pp)->next)
		;
	*pp = d->next;
	if (!*pp)
		l->defer_tail = pp;
	d->queued = false;
	d->next = NULL;
}

static void run_deferred(struct loop *l)
{
	while (l->defer_head) {
		struct loop_defer *d = l->defer_head;

		l->defer_head = d->next;
		if (!l->defer_head)
			l->defer_tail = &l->defer_head;
		d->queued = false;
		d->cb(l, d->arg);
	}
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[LOOP_MAX_EVENTS];

	while (!l->stop) {
		int timeout = -1, n;

		run_deferred(l);
		if (l->nheap) {
			uint64_t when = l->heap[0]->when;
			timeout = when <= l->now ? 0 : (int)(when - l->now);
		}
		n = epoll_wait(l->epfd, evs, LOOP_MAX_EVENTS, timeout);
		if (n < 0 && errno != EINTR)
			return -errno;
		l->now = mono_ms();
		for (int i = 0; i < n; i++)
			io_dispatch(l, evs[i].data.ptr, evs[i].events);
		run_deferred(l);
		run_timers(l);
	}
	l->stop = false;	/* a later loop_run runs again */
	return 0;
}

void loop_stop(struct loop *l) { l->stop = true; }

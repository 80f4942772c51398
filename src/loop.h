/*
 * loop.h - the daemon's event loop: epoll, timers and deferred callbacks.
 * One loop per worker; nothing registered here may block.
 */
#ifndef DOTPROXY_LOOP_H
#define DOTPROXY_LOOP_H

#include <stdbool.h>
#include <stdint.h>

struct loop;

/* Called with the epoll events (EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP) of @fd. */
typedef void (*loop_io_cb)(struct loop *l, int fd, void *arg, uint32_t events);
typedef void (*loop_cb)(struct loop *l, void *arg);

/* An fd's registration; embed it in the owner. */
struct loop_io {
	int fd;
	uint32_t events;	/* current epoll interest */
	loop_io_cb cb;
	void *arg;
};

/* A one-shot timer; embed it in the owner. Zero-initialised means idle. */
struct loop_timer {
	uint64_t when;		/* monotonic ms */
	unsigned heap_idx;	/* 0: not armed; else 1 + position in the heap */
	loop_cb cb;
	void *arg;
};

/* A callback run once after the current batch of events; embed it in the owner. */
struct loop_defer {
	struct loop_defer *next;
	bool queued;
	loop_cb cb;
	void *arg;
};

/* Returns NULL with errno set on failure. */
struct loop *loop_new(void);
void loop_free(struct loop *l);

/* Current monotonic time in ms, cached per loop iteration. */
uint64_t loop_now(const struct loop *l);

int loop_io_add(struct loop *l, struct loop_io *io, int fd, uint32_t events, loop_io_cb cb, void *arg);
int loop_io_set(struct loop *l, struct loop_io *io, uint32_t events);
void loop_io_del(struct loop *l, struct loop_io *io);

void loop_timer_init(struct loop_timer *t, loop_cb cb, void *arg);
/* Arm (or re-arm) @t to fire @ms from now. Returns 0 or -ENOMEM. */
int loop_timer_set(struct loop *l, struct loop_timer *t, uint64_t ms);
void loop_timer_cancel(struct loop *l, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t) { return t->heap_idx != 0; }

void loop_defer_init(struct loop_defer *d, loop_cb cb, void *arg);
void loop_defer(struct loop *l, struct loop_defer *d);
/* Take @d off the queue if it is on it (before its owner goes away). */
void loop_defer_cancel(struct loop *l, struct loop_defer *d);

/* Run until loop_stop(). Returns 0, or a negative errno if epoll fails. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif

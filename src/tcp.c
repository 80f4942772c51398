/*
 * tcp.c - the TCP front-end (RFC 7766): accepts clients on TPROXY or plain
 * listeners (an accepted TPROXY socket is already bound to the original
 * destination, so answers come from it), reads length-prefixed queries,
 * possibly pipelined, and writes each answer as it arrives. Client slots
 * are preallocated; a slot's generation makes answers to a client that left
 * harmless.
 */
#define _GNU_SOURCE
#include "listen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns.h"
#include "log.h"

#define TCP_RBUF_MIN	2048		/* grows to one whole message when needed */
#define TCP_WBUF_MAX	(256 * 1024)	/* a client reading slower than this is dropped */
#define TCP_IDLE_MS	10000		/* RFC 7766 6.2.3: close idle clients */
#define TCP_MAX_PENDING	64		/* a client's queries in flight; past it reading pauses */

struct tcp_client {
	struct tcp_frontend *t;
	uint32_t gen;			/* bumped when the slot is freed */
	bool used;
	union sockaddr_any peer;	/* the client, for the rate limit */
	struct loop_io io;
	struct loop_timer idle;
	uint8_t *rbuf;
	size_t rlen, rcap;
	uint8_t *wbuf;
	size_t wlen, woff, wcap;
	unsigned pending;		/* queries handed over whose reply has not come */
	bool blocked;			/* reading paused at TCP_MAX_PENDING */
	bool eof;			/* the client half-closed: answer what it sent, then close */
	struct loop_defer resume;	/* parse again once below TCP_MAX_PENDING */
};

struct tcp_ctx {
	struct tcp_client *c;
	uint32_t gen;
	enum metric_family fam;		/* the client's, for metrics even once it has gone */
};
_Static_assert(sizeof(struct tcp_ctx) <= FRONTEND_CTX_SIZE, "tcp_ctx too large");

struct tcp_listener {
	struct tcp_frontend *t;
	struct loop_io io;
};

struct tcp_frontend {
	struct frontend fe;
	struct loop *loop;
	struct qtable *qt;
	struct metrics *m;
	struct metrics_path *mp;	/* its queries and answers */
	unsigned idle_ms;
	int nlisteners;
	struct tcp_listener listeners[CFG_MAX_LISTEN];
	unsigned nclients, maxclients;
	struct tcp_client *clients;
};

static void client_close(struct tcp_client *c)
{
	struct tcp_frontend *t = c->t;
	int fd = c->io.fd;

	loop_io_del(t->loop, &c->io);
	close(fd);
	loop_timer_cancel(t->loop, &c->idle);
	free(c->rbuf);
	free(c->wbuf);
	c->rbuf = c->wbuf = NULL;
	c->rlen = c->rcap = c->wlen = c->woff = c->wcap = 0;
	c->pending = 0;
	c->blocked = c->eof = false;
	c->used = false;
	c->gen++;
	t->nclients--;
}

/* Read while the client may send and is under its cap; write while something is buffered. */
static int client_interest(struct tcp_client *c)
{
	uint32_t ev = (c->eof || c->blocked ? 0 : EPOLLIN) | (c->wlen ? EPOLLOUT : 0);

	if (loop_io_set(c->t->loop, &c->io, ev) < 0) {
		client_close(c);
		return -1;
	}
	return 0;
}

/* Write what is buffered. Returns 0, or -1 if the client was closed. */
static int client_flush(struct tcp_client *c)
{
	while (c->woff < c->wlen) {
		ssize_t n = send(c->io.fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			client_close(c);
			return -1;
		}
		c->woff += (size_t)n;
	}
	if (c->woff == c->wlen)
		c->woff = c->wlen = 0;
	/* a half-closed client goes once everything it asked is answered and written */
	if (c->eof && !c->pending && !c->wlen) {
		client_close(c);
		return -1;
	}
	return client_interest(c);
}

static void tcp_reply(struct frontend *fe, const void *ctxp, const uint8_t *msg, size_t len)
{
	const struct tcp_ctx *ctx = ctxp;
	struct tcp_client *c = ctx->c;

	metrics_path_answer(((struct tcp_frontend *)fe)->mp, ctx->fam, msg, len);
	if (!c->used || c->gen != ctx->gen)
		return;		/* the client has gone */
	c->pending--;
	if (c->blocked)
		loop_defer(c->t->loop, &c->resume);
	if (c->wlen + 2 + len > c->wcap) {
		size_t cap = c->wcap ? c->wcap : 4096;
		uint8_t *nb;

		while (cap < c->wlen + 2 + len)
			cap *= 2;
		if (cap > TCP_WBUF_MAX || !(nb = realloc(c->wbuf, cap))) {
			c->t->m->send_errors++;
			client_close(c);
			return;
		}
		c->wbuf = nb;
		c->wcap = cap;
	}
	wire_put_u16(c->wbuf + c->wlen, (uint16_t)len);
	memcpy(c->wbuf + c->wlen + 2, msg, len);
	c->wlen += 2 + len;
	client_flush(c);
}

/* Hand every complete message in the read buffer to the query table. */
static void client_parse(struct tcp_client *c)
{
	struct tcp_frontend *t = c->t;
	struct tcp_ctx ctx = { .c = c, .gen = c->gen, .fam = metrics_family(&c->peer) };
	size_t off = 0;

	c->blocked = false;
	while (c->rlen - off >= 2) {
		size_t mlen = wire_get_u16(c->rbuf + off);

		if (c->rlen - off - 2 < mlen)
			break;
		if (c->pending >= TCP_MAX_PENDING) {
			c->blocked = true;	/* one client may not take every query slot */
			break;
		}
		c->pending++;		/* before: the reply may come at once */
		t->mp->queries[ctx.fam]++;
		if (query_receive(t->qt, &t->fe, &ctx, sizeof(ctx), c->rbuf + off + 2, mlen, DNS_MAX_MSG,
				  &c->peer) < 0)
			c->pending--;	/* dropped: no reply will come */
		if (!c->used || c->gen != ctx.gen)
			return;		/* closed while answering (write error) */
		off += 2 + mlen;
	}
	memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
	/* make room for the whole of the next message */
	if (c->rlen >= 2) {
		size_t need = 2 + (size_t)wire_get_u16(c->rbuf);

		if (need > c->rcap) {
			uint8_t *nb = realloc(c->rbuf, need);

			if (!nb) {
				client_close(c);
				return;
			}
			c->rbuf = nb;
			c->rcap = need;
		}
	}
}

static void client_io(struct loop *l, int fd, void *arg, uint32_t events)
{
	struct tcp_client *c = arg;

	if (events & (EPOLLERR | EPOLLHUP)) {	/* gone both ways: nothing can be delivered */
		client_close(c);
		return;
	}
	if ((events & EPOLLOUT) && client_flush(c) < 0)
		return;
	if (!(events & EPOLLIN) || c->eof || c->blocked)
		return;
	for (int round = 0; round < 16 && !c->blocked; round++) {
		ssize_t n = recv(fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		if (n < 0) {
			client_close(c);
			return;
		}
		if (n == 0) {
			/* half-close (RFC 7766 6.2.4 allows it): answer what was asked, then close */
			c->eof = true;
			break;
		}
		c->rlen += (size_t)n;
		loop_timer_set(l, &c->idle, c->t->idle_ms);
		client_parse(c);
		if (!c->used)
			return;
	}
	if (c->eof && !c->pending && !c->wlen)
		client_close(c);
	else
		client_interest(c);
}

static void client_resume(struct loop *l, void *arg)
{
	struct tcp_client *c = arg;

	(void)l;
	if (!c->used || !c->blocked)
		return;
	client_parse(c);
	if (c->used)
		client_interest(c);
}

static void client_idle(struct loop *l, void *arg)
{
	struct tcp_client *c = arg;

	if (c->pending) {	/* waiting on us, not idle: every query ends by its deadline */
		loop_timer_set(l, &c->idle, c->t->idle_ms);
		return;
	}
	client_close(c);
}

static void tcp_accept(struct loop *l, int lfd, void *arg, uint32_t events)
{
	struct tcp_frontend *t = ((struct tcp_listener *)arg)->t;

	(void)events;
	for (int round = 0; round < 64; round++) {
		struct tcp_client *c = NULL;
		union sockaddr_any peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(lfd, &peer.sa, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (t->nclients < t->maxclients)
			for (unsigned i = 0; i < t->maxclients; i++)
				if (!t->clients[i].used) {
					c = &t->clients[i];
					break;
				}
		if (!c || !(c->rbuf = malloc(TCP_RBUF_MIN))) {
			t->m->refused_tcp++;
			close(fd);
			continue;
		}
		c->rcap = TCP_RBUF_MIN;
		c->peer = peer;
		if (loop_io_add(l, &c->io, fd, EPOLLIN, client_io, c) < 0) {
			free(c->rbuf);
			c->rbuf = NULL;
			close(fd);
			continue;
		}
		c->used = true;
		t->nclients++;
		loop_timer_set(l, &c->idle, t->idle_ms);
	}
}

static const struct frontend_ops tcp_ops = {
	.name = "tcp",
	.transport = MT_TCP,
	.reply = tcp_reply,
};

struct tcp_frontend *tcp_frontend_new(struct loop *l, const struct config *cfg, struct qtable *qt,
				      struct metrics *m, char *err, size_t errlen)
{
	struct listen_sock socks[CFG_MAX_LISTEN];
	struct tcp_frontend *t = calloc(1, sizeof(*t));
	int n;

	if (!t || !(t->clients = calloc(cfg->max_tcp_clients, sizeof(*t->clients)))) {
		free(t);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->fe.ops = &tcp_ops;
	t->loop = l;
	t->qt = qt;
	t->m = m;
	t->maxclients = cfg->max_tcp_clients;
	/* TCP is intercepted by TPROXY in nfqueue mode too */
	t->mp = &m->path[cfg->mode == MODE_REDIRECT ? MF_REDIRECT : MF_TPROXY][MT_TCP];
	t->mp->used = true;
	/* idle clients go, but never before their slowest query could be answered */
	t->idle_ms = TCP_IDLE_MS > 2 * cfg->timeout_ms ? TCP_IDLE_MS : 2 * cfg->timeout_ms;
	for (unsigned i = 0; i < t->maxclients; i++) {
		t->clients[i].t = t;
		t->clients[i].io.fd = -1;
		loop_timer_init(&t->clients[i].idle, client_idle, &t->clients[i]);
		loop_defer_init(&t->clients[i].resume, client_resume, &t->clients[i]);
	}
	n = listen_open(cfg, SOCK_STREAM, socks, err, errlen);
	if (n < 0) {
		tcp_frontend_free(l, t);
		return NULL;
	}
	for (int i = 0; i < n; i++) {
		t->listeners[t->nlisteners].t = t;
		if (loop_io_add(l, &t->listeners[t->nlisteners].io, socks[i].fd, EPOLLIN, tcp_accept,
				&t->listeners[t->nlisteners]) < 0) {
			snprintf(err, errlen, "epoll: %s", strerror(errno));
			listen_close(socks + i, n - i);
			tcp_frontend_free(l, t);
			return NULL;
		}
		t->nlisteners++;
	}
	return t;
}

void tcp_frontend_free(struct loop *l, struct tcp_frontend *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->maxclients; i++)
		if (t->clients[i].used)
			client_close(&t->clients[i]);
	for (int i = 0; i < t->nlisteners; i++) {
		int fd = t->listeners[i].io.fd;

		loop_io_del(l, &t->listeners[i].io);
		close(fd);
	}
	free(t->clients);
	free(t);
}

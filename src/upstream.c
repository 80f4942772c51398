/*
 * upstream.c - the DoT upstream pool. Each upstream has a persistent TLS
 * connection on which queries are pipelined (RFC 7766 6.2.1.1) in batches:
 * every query queued during one loop iteration goes out in one SSL_write.
 * Answers are matched by the rewritten ID and checked against the question.
 * A connection that fails moves its queries to another upstream (or the
 * same one, reconnected) until QUERY_MAX_TRIES; never to plaintext.
 * pool_reconfigure() swaps in new settings (SIGHUP) and keeps every
 * connection of an upstream that is still configured the same.
 */
#define _GNU_SOURCE
#include "upstream.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns.h"
#include "edns.h"
#include "log.h"
#include "tls.h"

#define UP_BUF		(2 + DNS_MAX_MSG)	/* RFC 7858 3.3: two-octet length + message */
#define BACKOFF_MIN_MS	250
#define BACKOFF_MAX_MS	5000	/* a restarted upstream is tried again within seconds */
#define CONN_BUSY	64	/* queries on a connection before another one is opened */
#define EXPLORE_EVERY	32	/* fastest: one choice in this many goes to another upstream */
#define KEEPIDLE_S	15	/* TCP keepalive on idle upstream connections: probe after, */
#define KEEPINTVL_S	5	/* ... every, */
#define KEEPCNT		3	/* ... and give up after this many unanswered */
#define PROBE_ID	0x5052	/* ID of the probe query; only ever on a probe connection */
#define LEARNED_IDLE_MS	600000	/* a learned idle timeout is trusted this long, then learned again */
/* what padding may add to a query: an OPT (11), two option headers (8), up to a block less one */
#define PAD_ROOM	(11 + 8 + EDNS_PAD_BLOCK - 1)

/* The probe: ". IN NS", RD set. Any answer to it shows the upstream is back. */
static const uint8_t PROBE_QUERY[] = {
	PROBE_ID >> 8, PROBE_ID & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
	0, 0, 2, 0, 1,
};

enum conn_state { C_CLOSED, C_CONNECTING, C_HANDSHAKE, C_READY };

struct upconn {
	struct upstream *up;
	enum conn_state state;
	struct loop_io io;
	SSL *ssl;
	struct qlist sendq;		/* queued, not yet written */
	struct qlist sent;		/* written, waiting for the answer */
	uint8_t *wbuf;			/* framed queries being written */
	size_t wlen, woff;
	uint8_t *rbuf;			/* framed answers being read */
	size_t rlen;
	bool read_wants_write;		/* SSL_read asked for EPOLLOUT */
	bool write_wants_read;		/* SSL_write asked for EPOLLIN */
	struct tls_spki_set spki;	/* SPKIs of the chain verified for this connection */
	bool verified;			/* passed tls_check_peer: its sessions may be kept */
	bool fatal;			/* a TLS or socket error: no close_notify */
	unsigned answers;		/* answers accepted since it became ready */
	bool probing;			/* a down upstream's probe: sends PROBE_QUERY, nothing else */
	bool suspect;			/* a query left it for silence: no new ones until it speaks */
	struct loop_timer timer;	/* connect+handshake deadline, or idle close */
	unsigned idle_ms;		/* idle close after; the server's RFC 7828 keepalive may lower it */
	uint64_t last_use;		/* when it last had a query to send or an answer */
	uint64_t last_rx;		/* when answer bytes last arrived, or it was opened */
	struct loop_defer kick;		/* open or flush after this loop iteration */
	unsigned fresh;			/* queued before it was ready and not written yet (metrics) */
};

struct upstream {
	const struct upstream_cfg *cfg;	/* &conf */
	struct upstream_cfg conf;	/* its own copy: configs come and go on reload */
	bool used;			/* the slot holds an upstream, active or retired */
	bool retired;			/* gone from the config: answers what it was sent, then closes */
	struct pool *pool;
	unsigned idx;
	SSL_CTX *ctx;			/* the pool's, or its own with --upstream-ca */
	SSL_SESSION *session;		/* for resumption; only from a verified connection */
	struct tls_spki_set session_spki; /* the chain that session was verified with */
	struct upconn conns[CFG_MAX_CONNS];
	bool down;			/* failed: no queries until a background probe connects */
	unsigned backoff_ms;		/* the probe comes after about this long */
	struct loop_timer probe;
	uint64_t srtt8;			/* EWMA of answer times in ms, times 8; 0: none yet */
	unsigned idle_learned_ms;	/* the server closed idle connections after this long; 0: never */
	uint64_t idle_learned_at;	/* when */
	uint64_t answers, failures;	/* for metrics */
	/* metrics: TLS, connections, queries written on a new or an open connection, answer times */
	uint64_t handshakes, resumed, connects, queries_new, queries_reused;
	struct metrics_hist answer_ms;
};

struct pool {
	struct loop *loop;
	SSL_CTX *ctx;
	struct qtable *qt;
	struct metrics *m;
	uint32_t mark;
	unsigned idle_ms;
	unsigned connect_ms;
	enum cfg_policy policy;
	unsigned max_conns;
	unsigned rr;			/* round-robin position */
	unsigned choices;		/* fastest: counts choices, for exploring */
	unsigned n;			/* slots used so far, active and retired */
	unsigned order[CFG_MAX_UPSTREAMS];	/* the configured upstreams' slots, in config order */
	unsigned nactive;
	struct upstream ups[CFG_MAX_UPSTREAMS];
};

static void conn_close(struct upconn *c, bool mark_down, const char *why);
static void conn_flush(struct upconn *c);
static void conn_fail(struct upconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- sessions ---- */

/* Keep @sess (a reference we own) for @c's upstream, or drop the one kept if NULL. */
static void keep_session(struct upstream *u, SSL_SESSION *sess, const struct tls_spki_set *spki)
{
	if (u->session)
		SSL_SESSION_free(u->session);
	u->session = sess;
	if (sess)
		u->session_spki = *spki;
	else
		u->session_spki.n = 0;
}

/*
 * OpenSSL hands over a new session (TLS 1.2: during the handshake; TLS 1.3:
 * tickets after it). Kept only from a connection that passed the checks.
 */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct upconn *c = SSL_get_app_data(ssl);

	if (!c || !c->verified)
		return 0;
	keep_session(c->up, sess, &c->spki);
	return 1;
}

/* ---- choosing an upstream and a connection ---- */

/*
 * Where @q goes, among usable upstreams (not down) it has not been sent to;
 * else among usable ones it was sent to (its connection closed, the upstream
 * did not fail). NULL when every upstream is down: it gets SERVFAIL (or a
 * stale answer) at once rather than waiting for one to come back.
 */
static struct upstream *pick(struct pool *p, const struct query *q)
{
	unsigned cand[CFG_MAX_UPSTREAMS], n = 0, best;

	for (int pass = 0; pass < 2 && !n; pass++)
		for (unsigned k = 0; k < p->nactive; k++) {
			unsigned i = p->order[k];

			if (!p->ups[i].down && (pass || !(q->tried & (1u << i))))
				cand[n++] = i;
		}
	if (!n)
		return NULL;
	switch (p->policy) {
	case POLICY_ORDERED:
		return &p->ups[cand[0]];
	case POLICY_ROUND_ROBIN:
		return &p->ups[cand[p->rr++ % n]];
	case POLICY_FASTEST:
	default:
		/* now and then another one, so every estimate stays fresh */
		if (n > 1 && ++p->choices % EXPLORE_EVERY == 0)
			return &p->ups[cand[(unsigned)random() % n]];
		best = cand[0];
		for (unsigned i = 1; i < n; i++)	/* unmeasured (0) first: that measures it */
			if (p->ups[cand[i]].srtt8 < p->ups[best].srtt8)
				best = cand[i];
		return &p->ups[best];
	}
}

static unsigned conn_load(const struct upconn *c) { return c->sent.n + c->sendq.n; }

/*
 * The least loaded open connection of @u, or a new one when all are busy (up
 * to --max-conns); never @avoid (NULL if that leaves nothing) nor a probe.
 */
static struct upconn *pick_conn(struct upstream *u, const struct upconn *avoid)
{
	struct upconn *best = NULL, *closed = NULL;

	for (unsigned i = 0; i < u->pool->max_conns; i++) {
		struct upconn *c = &u->conns[i];

		if (c == avoid || c->probing || c->suspect)
			continue;
		if (c->state == C_CLOSED && !conn_load(c)) {	/* (queued on: it is being opened) */
			if (!closed)
				closed = c;
		} else if (!best || conn_load(c) < conn_load(best)) {
			best = c;
		}
	}
	if (best && (conn_load(best) < CONN_BUSY || !closed))
		return best;
	return closed;
}

/* Queue @q on a connection other than @avoid; false if there is none. */
static bool send_avoiding(struct pool *p, struct query *q, const struct upconn *avoid)
{
	struct upstream *u = pick(p, q);
	struct upconn *c = u ? pick_conn(u, avoid) : NULL;

	if (!c)
		return false;
	q->tries++;
	q->conn = c;
	q->state = Q_WAITING;
	qlist_push(&c->sendq, q);
	c->last_use = loop_now(p->loop);
	if (c->state == C_READY)
		loop_timer_cancel(p->loop, &c->timer);	/* not idle any more */
	loop_defer(p->loop, &c->kick);
	return true;
}

void pool_send(struct pool *p, struct query *q)
{
	if (q->tries >= QUERY_MAX_TRIES)
		p->m->tries_exhausted++;
	else if (!send_avoiding(p, q, NULL))
		p->m->no_upstream++;
	else
		return;
	query_fail(q, DNS_RCODE_SERVFAIL);
}

void pool_unlink(struct query *q)
{
	struct upconn *c = q->conn;

	if (!c)
		return;
	if (q->state == Q_SENT)
		qlist_remove(&c->sent, q);
	else
		qlist_remove(&c->sendq, q);
	q->conn = NULL;
	q->state = Q_FREE;
	/* idle now; a suspect connection, or a retired upstream's, goes at once */
	if (c->state == C_READY && !c->sent.n && !c->sendq.n)
		loop_timer_set(c->up->pool->loop, &c->timer, c->suspect || c->up->retired ? 0 : c->idle_ms);
}

void pool_deadline(struct query *q)
{
	struct upconn *c = q->conn;
	bool silent = c && q->state == Q_SENT && c->state == C_READY &&
		      loop_now(c->up->pool->loop) - c->last_rx >= c->up->pool->qt->timeout_ms;

	bool never = silent && !c->answers;

	pool_unlink(q);
	if (never)	/* a connection that never answered anything: the upstream is broken */
		conn_fail(c, "no answer on a new connection for a whole query deadline");
	else if (silent)	/* it worked before: lost on the way (NAT, firewall), reconnect */
		conn_close(c, false, NULL);
}

/* @u kept a query waiting half its deadline: "fastest" should not pick it first for now. */
static void upstream_slow(struct upstream *u)
{
	uint64_t half8 = (uint64_t)u->pool->qt->timeout_ms / 2 * 8;

	if (u->srtt8 < half8)
		u->srtt8 = half8;	/* answers (and exploring) bring it down again */
}

void pool_hedge(struct query *q)
{
	struct upconn *c = q->conn;
	struct pool *p;
	bool was_sent;

	if (!c || q->tries >= QUERY_MAX_TRIES)
		return;
	/* on a working connection: written and something came back since, or simply queued */
	if (c->state == C_READY && (q->state != Q_SENT || c->last_rx > q->sent_ms))
		return;
	p = c->up->pool;
	upstream_slow(c->up);
	/* elsewhere, leaving the connection be (it may just be slow); no new query goes to it
	 * until it says something, and it closes once its last query has left */
	was_sent = q->state == Q_SENT;
	qlist_remove(was_sent ? &c->sent : &c->sendq, q);
	q->conn = NULL;
	q->state = Q_FREE;
	q->tried |= 1u << c->up->idx;
	if (send_avoiding(p, q, c)) {
		c->suspect = c->state == C_READY;
		p->m->hedged++;
		if (c->state == C_READY && !c->sent.n && !c->sendq.n)
			loop_timer_set(p->loop, &c->timer, 0);
		return;
	}
	/* nowhere else to go: it stays, and its deadline decides */
	q->conn = c;
	q->state = was_sent ? Q_SENT : Q_WAITING;
	qlist_push(was_sent ? &c->sent : &c->sendq, q);
}

/* ---- connection ---- */

/*
 * The upstream itself failed (connect, TLS, certificate): count it, back the
 * upstream off and close. Said once at warning level when a usable upstream
 * fails, then at debug level while it keeps failing, so an outage under load
 * does not flood the log.
 */
static void conn_fail(struct upconn *c, const char *fmt, ...)
{
	struct upstream *u = c->up;
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	u->pool->m->tls_failures++;
	keep_session(u, NULL, NULL);	/* a failed upstream is verified afresh next time */
	if (u->backoff_ms == 0)
		log_warnx("upstream %s: %s (its queries go elsewhere or get SERVFAIL until it works)",
			  u->cfg->label, msg);
	else
		log_debug("upstream %s: %s", u->cfg->label, msg);
	conn_close(c, true, NULL);
}

static void conn_want(struct upconn *c, uint32_t ev)
{
	if (loop_io_set(c->up->pool->loop, &c->io, ev) < 0)
		conn_close(c, false, "epoll");
}

static void conn_ready(struct upconn *c)
{
	struct upstream *u = c->up;
	struct pool *p = u->pool;
	char err[200];

	if (tls_check_peer(c->ssl, u->cfg, &c->spki, err, sizeof(err)) < 0) {
		conn_fail(c, "%s", err);
		return;
	}
	c->verified = true;
	{
		/* TLS 1.2 offered its session before we had checked it: keep it now */
		SSL_SESSION *s = SSL_get1_session(c->ssl);

		if (s && SSL_SESSION_is_resumable(s))
			keep_session(u, s, &c->spki);
		else if (s)
			SSL_SESSION_free(s);
	}
	p->m->handshakes++;
	u->handshakes++;
	if (SSL_session_reused(c->ssl)) {
		p->m->resumed++;
		u->resumed++;
	}
	c->fresh = c->sendq.n;	/* these waited for this connection to open */
	log_debug("upstream %s: TLS ready (%s%s)", u->cfg->label, SSL_get_version(c->ssl),
		  SSL_session_reused(c->ssl) ? ", resumed" : "");
	c->state = C_READY;
	loop_timer_cancel(p->loop, &c->timer);
	conn_want(c, EPOLLIN);
	if (c->state != C_READY)
		return;
	if (c->probing) {
		/* only an answer shows the upstream is back; the probe must come within the deadline */
		uint8_t frame[2 + sizeof(PROBE_QUERY)];

		wire_put_u16(frame, sizeof(PROBE_QUERY));
		memcpy(frame + 2, PROBE_QUERY, sizeof(PROBE_QUERY));
		memcpy(c->wbuf, frame, sizeof(frame));
		c->wlen = sizeof(frame);
		c->woff = 0;
		loop_timer_set(p->loop, &c->timer, p->connect_ms);
	}
	conn_flush(c);
}

/* An answer came from @u: if it was down, it is usable again. */
static void upstream_alive(struct upstream *u)
{
	if (!u->down || u->retired)	/* a retired one stays out of pick() */
		return;
	log_info("upstream %s: usable again", u->cfg->label);
	u->down = false;
	u->backoff_ms = 0;
	loop_timer_cancel(u->pool->loop, &u->probe);
	/* a probe still on its way is an ordinary idle connection now */
	for (unsigned i = 0; i < u->pool->max_conns; i++) {
		struct upconn *c = &u->conns[i];

		if (c->probing) {
			c->probing = false;
			if (c->state == C_READY && !c->sent.n && !c->sendq.n)
				loop_timer_set(u->pool->loop, &c->timer, c->idle_ms);
		}
	}
}

static void conn_handshake(struct upconn *c)
{
	int r, e;

	tls_clear_errors();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		conn_ready(c);
		return;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		conn_want(c, EPOLLIN);
	} else if (e == SSL_ERROR_WANT_WRITE) {
		conn_want(c, EPOLLOUT);
	} else {
		long vr = SSL_get_verify_result(c->ssl);

		if (vr != X509_V_OK)
			conn_fail(c, "certificate not accepted: %s", X509_verify_cert_error_string(vr));
		else
			conn_fail(c, "TLS handshake failed: %s",
				  e == SSL_ERROR_SSL ? tls_error_string() : "connection closed");
	}
}

/* Move queued queries into the write buffer, framed, with their upstream IDs. */
static void conn_fill(struct upconn *c)
{
	struct metrics *m = c->up->pool->m;

	/* room for the query padded to its next block */
	while (c->sendq.head && c->wlen + 2 + c->sendq.head->len + PAD_ROOM <= UP_BUF) {
		struct query *q = c->sendq.head;
		uint8_t *p = c->wbuf + c->wlen;
		size_t n;

		qlist_remove(&c->sendq, q);
		memcpy(p + 2, q->msg, q->len);
		dns_set_id(p + 2, q->upstream_id);
		/* RFC 8467 4.1: padded to 128-octet blocks; RFC 7828: ask for the server's idle timeout */
		n = edns_prepare_query(p + 2, q->len, UP_BUF - c->wlen - 2);
		if (!n)
			n = q->len;	/* signed (TSIG) or unparseable: as the client sent it */
		wire_put_u16(p, (uint16_t)n);
		c->wlen += 2 + n;
		q->state = Q_SENT;
		q->sent_ms = loop_now(c->up->pool->loop);
		qlist_push(&c->sent, q);
		m->upstream_queries++;
		if (c->fresh > c->sendq.n + 1)
			c->fresh = c->sendq.n + 1;	/* some that waited left before being written */
		if (c->fresh) {
			c->fresh--;
			c->up->queries_new++;
		} else {
			c->up->queries_reused++;
		}
	}
}

static void conn_flush(struct upconn *c)
{
	c->write_wants_read = false;
	for (;;) {
		int r, e;

		if (c->woff == c->wlen) {
			c->woff = c->wlen = 0;
			conn_fill(c);
			if (!c->wlen)
				break;
		}
		tls_clear_errors();
		r = SSL_write(c->ssl, c->wbuf + c->woff, (int)(c->wlen - c->woff));
		if (r > 0) {
			c->woff += (size_t)r;
			continue;
		}
		e = SSL_get_error(c->ssl, r);
		if (e == SSL_ERROR_WANT_WRITE) {
			conn_want(c, EPOLLIN | EPOLLOUT);
			return;
		}
		if (e == SSL_ERROR_WANT_READ) {
			c->write_wants_read = true;
			conn_want(c, EPOLLIN);
			return;
		}
		c->fatal = true;
		conn_close(c, false, "write failed");
		return;
	}
	conn_want(c, c->read_wants_write ? EPOLLIN | EPOLLOUT : EPOLLIN);
	/* ready with nothing to do (its queries timed out during the handshake): idle from now */
	if (c->state == C_READY && !c->sent.n && !c->probing && !loop_timer_armed(&c->timer))
		loop_timer_set(c->up->pool->loop, &c->timer, c->idle_ms);
}

/* Handle one answer frame. Returns 0, or -1 if the connection must go. */
static int conn_answer(struct upconn *c, uint8_t *msg, size_t len)
{
	struct upstream *u = c->up;
	struct query *q;

	if (len < DNS_HDR_LEN)
		return -1;
	if (c->probing) {
		if (dns_id(msg) != PROBE_ID || !dns_answer_matches(msg, len, PROBE_QUERY, sizeof(PROBE_QUERY))) {
			u->pool->m->upstream_bad_answers++;
			return 0;
		}
		if (dns_rcode(msg) != DNS_RCODE_NOERROR && dns_rcode(msg) != DNS_RCODE_NXDOMAIN) {
			conn_fail(c, "probe answered with rcode %d", dns_rcode(msg));
			return 0;
		}
		c->probing = false;
		c->answers++;
		upstream_alive(u);
		loop_timer_set(u->pool->loop, &c->timer, c->idle_ms);	/* an idle connection now */
		return 0;
	}
	q = qtable_lookup(u->pool->qt, dns_id(msg), c);
	if (!q || !dns_answer_matches(msg, len, q->msg, q->len)) {
		u->pool->m->upstream_bad_answers++;
		return 0;
	}
	{
		/* RFC 7828 3.3.2: the server says how long it keeps an idle connection */
		int ka = edns_keepalive(msg, len);

		if (ka >= 0 && (unsigned)ka * 100 < c->idle_ms)
			c->idle_ms = (unsigned)ka * 100;
	}
	u->answers++;
	c->answers++;
	upstream_alive(u);
	{
		/* RFC 6298-style smoothing, gain 1/8; a quick SERVFAIL or REFUSED is no speed */
		uint64_t now = loop_now(u->pool->loop), rtt = now - q->sent_ms;
		int rc = dns_rcode(msg);

		if (rc != DNS_RCODE_SERVFAIL && rc != DNS_RCODE_REFUSED)
			u->srtt8 = u->srtt8 ? u->srtt8 - (u->srtt8 >> 3) + rtt : (rtt << 3) + 1;
		metrics_hist_observe(&u->answer_ms, rtt);
		c->last_use = now;
	}
	query_answer(q, msg, len);
	return 0;
}

static void conn_read(struct upconn *c)
{
	c->read_wants_write = false;
	for (;;) {
		size_t off = 0;
		int r, e;

		tls_clear_errors();
		r = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(UP_BUF - c->rlen));
		if (r <= 0) {
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ)
				break;
			if (e == SSL_ERROR_WANT_WRITE) {
				c->read_wants_write = true;
				conn_want(c, EPOLLIN | EPOLLOUT);
				return;
			}
			/* the server closed (idle timeout, restart) or the connection broke */
			c->fatal = e != SSL_ERROR_ZERO_RETURN;
			if (!c->fatal && !c->probing && c->answers && !c->sent.n && !c->sendq.n) {
				/* the server closed it cleanly while idle: next time close first */
				uint64_t now = loop_now(c->up->pool->loop), idle = now - c->last_use;

				if (idle > 0 && idle < c->up->pool->idle_ms) {
					c->up->idle_learned_ms = (unsigned)(idle - idle / 5);
					c->up->idle_learned_at = now;
				}
			}
			conn_close(c, false, c->fatal ? "read failed" : NULL);
			return;
		}
		c->rlen += (size_t)r;
		c->last_rx = loop_now(c->up->pool->loop);
		c->suspect = false;
		while (c->rlen - off >= 2) {
			size_t flen = wire_get_u16(c->rbuf + off);

			if (c->rlen - off - 2 < flen)
				break;
			if (conn_answer(c, c->rbuf + off + 2, flen) < 0) {
				conn_fail(c, "malformed frame from upstream");
				return;
			}
			off += 2 + flen;
		}
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
		/* the socket is level-triggered: with nothing buffered, the next read is
		 * the loop's to ask for, not a read() that would only say EAGAIN */
		if (!SSL_has_pending(c->ssl))
			break;
	}
	if (c->write_wants_read)
		conn_flush(c);
}

static void conn_io(struct loop *l, int fd, void *arg, uint32_t ev)
{
	struct upconn *c = arg;

	(void)l;
	switch (c->state) {
	case C_CONNECTING: {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			conn_fail(c, "connect: %s", strerror(err));
			return;
		}
		c->verified = false;
		c->spki = c->up->session_spki;	/* what a resumed handshake is checked against */
		c->ssl = tls_new(c->up->ctx, c->up->cfg, fd, c->up->session);
		c->answers = 0;
		c->fatal = false;
		if (!c->ssl) {
			conn_fail(c, "cannot create TLS session: %s", tls_error_string());
			return;
		}
		SSL_set_app_data(c->ssl, c);
		c->state = C_HANDSHAKE;
		conn_handshake(c);
		return;
	}
	case C_HANDSHAKE:
		conn_handshake(c);
		return;
	case C_READY:
		if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP) || c->read_wants_write)
			conn_read(c);
		if (c->state == C_READY && (ev & EPOLLOUT) && !c->read_wants_write)
			conn_flush(c);
		return;
	case C_CLOSED:
		return;
	}
}

static void conn_timer(struct loop *l, void *arg)
{
	struct upconn *c = arg;

	(void)l;
	if (c->state == C_READY && c->probing) {
		conn_fail(c, "no answer to a probe query within %u ms", c->up->pool->connect_ms);
		return;
	}
	if (c->state == C_READY) {
		if (!c->sent.n && !c->sendq.n)
			conn_close(c, false, NULL);	/* idle */
		return;
	}
	conn_fail(c, "no TLS connection within %u ms", c->up->pool->connect_ms);
}

static void conn_open(struct upconn *c)
{
	struct upstream *u = c->up;
	struct pool *p = u->pool;
	int fd, one = 1;

	if (!c->wbuf)
		c->wbuf = malloc(UP_BUF);
	if (!c->rbuf)
		c->rbuf = malloc(UP_BUF);
	if (!c->wbuf || !c->rbuf) {
		conn_close(c, false, "out of memory");
		return;
	}
	fd = socket(u->cfg->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		conn_fail(c, "socket: %s", strerror(errno));
		return;
	}
	/* the interception rules skip packets with our mark: never catch ourselves */
	if (p->mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &p->mark, sizeof(p->mark)) < 0)
		log_debug("upstream %s: SO_MARK: %s", u->cfg->label, strerror(errno));
	/* queries are written in batches already: don't let Nagle hold them */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	{
		/* a half-open connection is found by the kernel too: written data unacknowledged
		 * for a query deadline, or an idle one whose keepalive probes go unanswered */
		unsigned uto = p->connect_ms;
		int idle = KEEPIDLE_S, intvl = KEEPINTVL_S, cnt = KEEPCNT;

		setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof(uto));
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	}
	/* what the server was seen to allow, for a while; then ours again, to learn afresh */
	if (u->idle_learned_ms && loop_now(p->loop) - u->idle_learned_at > LEARNED_IDLE_MS)
		u->idle_learned_ms = 0;
	c->idle_ms = u->idle_learned_ms && u->idle_learned_ms < p->idle_ms ? u->idle_learned_ms : p->idle_ms;
	c->last_use = loop_now(p->loop);
	c->state = C_CONNECTING;
	u->connects++;
	c->last_rx = loop_now(p->loop);	/* a handshake is no answer: silence counts from here */
	c->rlen = c->wlen = c->woff = 0;
	c->read_wants_write = c->write_wants_read = false;
	if (loop_io_add(p->loop, &c->io, fd, EPOLLOUT, conn_io, c) < 0) {
		close(fd);
		c->io.fd = -1;
		conn_close(c, false, "epoll");
		return;
	}
	if (connect(fd, &u->cfg->addr.sa, sock_len(&u->cfg->addr)) < 0 && errno != EINPROGRESS) {
		conn_fail(c, "connect: %s", strerror(errno));
		return;
	}
	loop_timer_set(p->loop, &c->timer, p->connect_ms);
}

/* A down upstream's background probe: a connection with no query on it. */
static void upstream_probe(struct loop *l, void *arg)
{
	struct upstream *u = arg;

	(void)l;
	for (unsigned i = 0; i < u->pool->max_conns; i++) {
		if (u->conns[i].state == C_CLOSED) {
			/* an answer to its query makes the upstream usable, a failure backs it off again */
			u->conns[i].probing = true;
			conn_open(&u->conns[i]);
			return;
		}
	}
	loop_timer_set(u->pool->loop, &u->probe, u->backoff_ms);	/* all busy opening */
}

static void conn_kick(struct loop *l, void *arg)
{
	struct upconn *c = arg;

	(void)l;
	if (c->state == C_CLOSED && c->sendq.n)
		conn_open(c);
	else if (c->state == C_READY && c->sendq.n && !c->write_wants_read)
		conn_flush(c);
}

/*
 * Tear @c down. @mark_down: the upstream itself failed (connect, TLS,
 * certificate) and is backed off. Its queries go to pool_send() again.
 */
static void conn_close(struct upconn *c, bool mark_down, const char *why)
{
	struct upstream *u = c->up;
	struct pool *p = u->pool;
	bool was_ready = c->state == C_READY;
	struct qlist moved = { 0 };
	struct query *q;

	/* a probe that did not get its answer: still down, probed again later */
	if (!mark_down && c->probing) {
		conn_fail(c, "%s before the probe was answered", why ? why : "connection closed");
		return;
	}
	/* written queries and not one answer: the upstream is broken, not just closing */
	if (!mark_down && was_ready && c->sent.n && !c->answers) {
		conn_fail(c, "%s with %u queries written and none answered",
			  why ? why : "connection closed or silent", c->sent.n);
		return;
	}
	if (why)
		log_warnx("upstream %s: closing connection: %s", u->cfg->label, why);
	loop_timer_cancel(p->loop, &c->timer);
	if (c->ssl) {
		if (was_ready && !c->fatal) {
			tls_clear_errors();
			SSL_shutdown(c->ssl);	/* close_notify, best effort; never after a fatal error */
		}
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->io.fd >= 0) {
		int fd = c->io.fd;

		loop_io_del(p->loop, &c->io);
		close(fd);
	}
	c->state = C_CLOSED;
	c->suspect = false;
	c->wlen = c->woff = c->rlen = 0;
	free(c->wbuf);
	free(c->rbuf);
	c->wbuf = c->rbuf = NULL;
	/* the upstream goes down, or its probe failed: (longer) backoff; other connections
	 * failing while it is down change nothing; a retired one is never probed */
	if (mark_down && u->retired) {
		u->failures++;
	} else if (mark_down && (!u->down || c->probing)) {
		u->failures++;
		u->down = true;
		u->backoff_ms = u->backoff_ms ? u->backoff_ms * 2 : BACKOFF_MIN_MS;
		if (u->backoff_ms > BACKOFF_MAX_MS)
			u->backoff_ms = BACKOFF_MAX_MS;
		/* tried again in the background, with +-25% jitter so upstreams that failed
		 * together are not retried in step; no client query waits on that */
		loop_timer_set(p->loop, &u->probe, u->backoff_ms - u->backoff_ms / 4 +
			       (uint64_t)random() % (u->backoff_ms / 2 + 1));
	} else if (mark_down) {
		u->failures++;
	}
	c->probing = false;
	/* take every query off this connection before sending any again */
	while ((q = c->sent.head) || (q = c->sendq.head)) {
		qlist_remove(q->state == Q_SENT ? &c->sent : &c->sendq, q);
		q->conn = NULL;
		q->state = Q_FREE;
		qlist_push(&moved, q);
	}
	/* another upstream first; this one again only if it is still usable */
	while ((q = moved.head)) {
		qlist_remove(&moved, q);
		q->tried |= 1u << u->idx;
		pool_send(p, q);
	}
}

/* ---- the pool ---- */

/* The same upstream: address, port, name, pins and CA. Its connections stay on reload. */
static bool same_upstream(const struct upstream_cfg *a, const struct upstream_cfg *b)
{
	return strcmp(a->label, b->label) == 0 && a->npins == b->npins &&
	       memcmp(a->pins, b->pins, sizeof(a->pins[0]) * (size_t)a->npins) == 0 &&
	       strcmp(a->ca_file, b->ca_file) == 0;
}

/* Nothing open on it and no query: its slot can take another upstream. */
static bool upstream_drained(const struct upstream *u)
{
	for (unsigned j = 0; j < CFG_MAX_CONNS; j++)
		if (u->conns[j].state != C_CLOSED || u->conns[j].sent.n || u->conns[j].sendq.n)
			return false;
	return true;
}

/* One TLS context: @ca ("" for the system store) and the client certificate, if any. */
static SSL_CTX *make_ctx(const struct config *cfg, const char *ca, char *err, size_t errlen)
{
	SSL_CTX *ctx = tls_ctx_new(*ca ? ca : NULL, on_new_session, err, errlen);

	if (ctx && cfg->client_cert[0] &&
	    tls_ctx_client_cert(ctx, cfg->client_cert, cfg->client_key, err, errlen) < 0) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/*
 * The contexts @cfg needs: @ctx for upstreams without their own CA, own[i]
 * for upstream i with one (NULL otherwise). All or nothing.
 */
static int make_contexts(const struct config *cfg, SSL_CTX **ctx, SSL_CTX *own[CFG_MAX_UPSTREAMS],
			 char *err, size_t errlen)
{
	*ctx = make_ctx(cfg, cfg->ca_file, err, errlen);
	if (!*ctx)
		return -1;
	for (int i = 0; i < cfg->nupstreams; i++) {
		char e[400];

		own[i] = NULL;
		if (!cfg->upstreams[i].ca_file[0])
			continue;
		own[i] = make_ctx(cfg, cfg->upstreams[i].ca_file, e, sizeof(e));
		if (!own[i]) {
			/* tls.c names --ca-file: this one came from --upstream-ca */
			snprintf(err, errlen, "--upstream-ca%s (for %s)",
				 strncmp(e, "--ca-file", 9) == 0 ? e + 9 : e, cfg->upstreams[i].label);
			while (i--)
				if (own[i])
					SSL_CTX_free(own[i]);
			SSL_CTX_free(*ctx);
			return -1;
		}
	}
	return 0;
}

/* Free what slot @u holds (all its connections are closed) and mark it unused. */
static void upstream_release(struct pool *p, struct upstream *u)
{
	loop_timer_cancel(p->loop, &u->probe);
	for (unsigned j = 0; j < CFG_MAX_CONNS; j++) {
		conn_close(&u->conns[j], false, NULL);
		loop_defer_cancel(p->loop, &u->conns[j].kick);
	}
	keep_session(u, NULL, NULL);
	if (u->ctx && u->ctx != p->ctx)
		SSL_CTX_free(u->ctx);
	u->ctx = NULL;
	u->used = false;
}

static void upstream_init(struct pool *p, unsigned slot, const struct upstream_cfg *ucfg, SSL_CTX *ctx)
{
	struct upstream *u = &p->ups[slot];

	memset(u, 0, sizeof(*u));
	u->conf = *ucfg;
	u->cfg = &u->conf;
	u->pool = p;
	u->idx = slot;
	u->ctx = ctx;
	u->used = true;
	loop_timer_init(&u->probe, upstream_probe, u);
	for (unsigned j = 0; j < CFG_MAX_CONNS; j++) {
		struct upconn *c = &u->conns[j];

		c->up = u;
		c->io.fd = -1;
		loop_timer_init(&c->timer, conn_timer, c);
		loop_defer_init(&c->kick, conn_kick, c);
	}
	if (slot >= p->n)
		p->n = slot + 1;
}

/*
 * @u left the config: no new queries; what it has not written yet goes to
 * @moved for the others, what it has written is answered on its connections,
 * which close once empty.
 */
static void upstream_retire(struct pool *p, struct upstream *u, struct qlist *moved)
{
	struct query *q;

	u->retired = true;
	u->down = true;
	loop_timer_cancel(p->loop, &u->probe);
	for (unsigned j = 0; j < CFG_MAX_CONNS; j++) {
		struct upconn *c = &u->conns[j];

		while ((q = c->sendq.head)) {
			qlist_remove(&c->sendq, q);
			q->conn = NULL;
			q->state = Q_FREE;
			q->tried |= 1u << u->idx;
			qlist_push(moved, q);
		}
		c->probing = false;
		if (!c->sent.n)
			conn_close(c, false, NULL);
		else
			c->suspect = true;
	}
}

int pool_reconfigure(struct pool *p, const struct config *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx, *own[CFG_MAX_UPSTREAMS];
	int match[CFG_MAX_UPSTREAMS];
	bool keep[CFG_MAX_UPSTREAMS] = { false };
	unsigned need = 0, room = 0, kept = 0, gone = 0;
	struct qlist moved = { 0 };
	struct query *q;

	if (make_contexts(cfg, &ctx, own, err, errlen) < 0)
		return -1;
	for (int i = 0; i < cfg->nupstreams; i++) {
		match[i] = -1;
		for (unsigned k = 0; k < p->nactive && match[i] < 0; k++) {
			unsigned s = p->order[k];

			if (!keep[s] && same_upstream(p->ups[s].cfg, &cfg->upstreams[i])) {
				match[i] = (int)s;
				keep[s] = true;
			}
		}
		need += match[i] < 0;
	}
	/* slots for the new ones: free, retired and drained, or about to be retired with
	 * nothing written on them; the others must finish their queries first */
	for (unsigned s = 0; s < CFG_MAX_UPSTREAMS; s++) {
		const struct upstream *u = &p->ups[s];
		bool unwritten = true;

		for (unsigned j = 0; j < CFG_MAX_CONNS; j++)
			unwritten &= !u->conns[j].sent.n;
		room += !u->used || (u->retired && upstream_drained(u)) || (!u->retired && !keep[s] && unwritten);
	}
	if (room < need) {
		snprintf(err, errlen, "%u upstreams that were removed are still answering queries: try again in a few seconds",
			 need - (room < need ? room : need));
		for (int i = 0; i < cfg->nupstreams; i++)
			if (own[i])
				SSL_CTX_free(own[i]);
		SSL_CTX_free(ctx);
		return -1;
	}
	/* from here on nothing fails */
	for (unsigned k = 0; k < p->nactive; k++)
		if (!keep[p->order[k]]) {
			upstream_retire(p, &p->ups[p->order[k]], &moved);
			gone++;
		}
	for (int i = 0; i < cfg->nupstreams; i++) {
		struct upstream *u;

		if (match[i] >= 0) {
			/* the same upstream: its connections stay; new ones use the new
			 * context (CA files are read again), verified afresh */
			u = &p->ups[match[i]];
			if (u->ctx != p->ctx)
				SSL_CTX_free(u->ctx);
			u->ctx = own[i] ? own[i] : ctx;
			keep_session(u, NULL, NULL);
			kept++;
		} else {
			unsigned s = 0;

			while (p->ups[s].used && !(p->ups[s].retired && upstream_drained(&p->ups[s])))
				s++;
			if (p->ups[s].used)
				upstream_release(p, &p->ups[s]);
			upstream_init(p, s, &cfg->upstreams[i], own[i] ? own[i] : ctx);
			match[i] = (int)s;
		}
		p->order[i] = (unsigned)match[i];
	}
	p->nactive = (unsigned)cfg->nupstreams;
	for (unsigned s = 0; s < p->n; s++)	/* retired ones on the old shared context */
		if (p->ups[s].used && p->ups[s].retired && p->ups[s].ctx == p->ctx)
			SSL_CTX_up_ref(p->ups[s].ctx);
	if (p->ctx)
		SSL_CTX_free(p->ctx);
	p->ctx = ctx;
	p->idle_ms = cfg->idle_timeout_ms;
	p->connect_ms = cfg->timeout_ms;
	p->policy = cfg->policy;
	p->max_conns = cfg->max_conns ? cfg->max_conns : 1;
	p->mark = cfg->mark;
	if (kept + gone)
		log_info("upstreams: %u kept with their connections, %u added, %u removed", kept,
			 (unsigned)cfg->nupstreams - kept, gone);
	while ((q = moved.head)) {
		qlist_remove(&moved, q);
		pool_send(p, q);
	}
	return 0;
}

struct pool *pool_new(struct loop *l, const struct config *cfg, struct qtable *qt,
		      struct metrics *m, char *err, size_t errlen)
{
	struct pool *p = calloc(1, sizeof(*p));

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->loop = l;
	p->qt = qt;
	p->m = m;
	if (pool_reconfigure(p, cfg, err, errlen) < 0) {
		free(p);
		return NULL;
	}
	return p;
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->n; i++) {
		struct upstream *u = &p->ups[i];

		if (!u->used)
			continue;
		loop_timer_cancel(p->loop, &u->probe);
		for (unsigned j = 0; j < CFG_MAX_CONNS; j++) {
			struct upconn *c = &u->conns[j];

			c->probing = false;	/* closing is no failure now */
			/* no query may be moved any more: fail them where they are */
			while (c->sent.head)
				query_fail(c->sent.head, DNS_RCODE_SERVFAIL);
			while (c->sendq.head)
				query_fail(c->sendq.head, DNS_RCODE_SERVFAIL);
			conn_close(c, false, NULL);
		}
		upstream_release(p, u);
	}
	SSL_CTX_free(p->ctx);
	free(p);
}

/* i: the slot of each configured upstream, in config order */
#define FOR_ACTIVE(p, i)	for (unsigned k_ = 0, i; k_ < (p)->nactive && (i = (p)->order[k_], 1); k_++)
/* One counter family with a series per upstream: the field at @off of struct upstream. */
static void render_counter(const struct pool *p, struct strbuf *sb, const char *name, const char *help,
			   size_t off)
{
	strbuf_printf(sb, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	FOR_ACTIVE(p, i)
		strbuf_printf(sb, "%s{upstream=\"%s\"} %llu\n", name, p->ups[i].cfg->label,
			      (unsigned long long)*(const uint64_t *)((const char *)&p->ups[i] + off));
}

/* Queries, connections, TLS and answer times of each upstream. */
static void render_per_upstream(const struct pool *p, struct strbuf *sb)
{
	char labels[sizeof(p->ups[0].cfg->label) + 16];

	strbuf_printf(sb, "# HELP dotproxy_upstream_queries_total Queries written to each upstream, retries "
			  "included: on a connection opened for them, after its TCP and TLS handshakes (new), "
			  "or on one already open (reused).\n"
			  "# TYPE dotproxy_upstream_queries_total counter\n");
	FOR_ACTIVE(p, i)
		strbuf_printf(sb, "dotproxy_upstream_queries_total{upstream=\"%s\",connection=\"new\"} %llu\n"
				  "dotproxy_upstream_queries_total{upstream=\"%s\",connection=\"reused\"} %llu\n",
			      p->ups[i].cfg->label, (unsigned long long)p->ups[i].queries_new,
			      p->ups[i].cfg->label, (unsigned long long)p->ups[i].queries_reused);
	render_counter(p, sb, "dotproxy_upstream_connects_total",
		       "TCP connections opened to each upstream, background probes included.",
		       offsetof(struct upstream, connects));
	render_counter(p, sb, "dotproxy_tls_handshakes_total",
		       "Completed TLS handshakes with each upstream, resumed included.",
		       offsetof(struct upstream, handshakes));
	render_counter(p, sb, "dotproxy_tls_resumed_total", "TLS handshakes with each upstream that resumed a session.",
		       offsetof(struct upstream, resumed));
	metrics_histogram_head(sb, "dotproxy_upstream_answer_duration_seconds",
			       "Time from writing a query to an upstream to its answer, per upstream "
			       "(to the millisecond).");
	FOR_ACTIVE(p, i) {
		snprintf(labels, sizeof(labels), "upstream=\"%s\"", p->ups[i].cfg->label);
		metrics_histogram(sb, "dotproxy_upstream_answer_duration_seconds", labels, &p->ups[i].answer_ms);
	}
}

const char *pool_conn_label(const struct upconn *c)
{
	return c ? c->up->cfg->label : "unknown";
}

int pool_render(const struct pool *p, struct strbuf *sb)
{
	int healthy = 0;

	strbuf_printf(sb, "# HELP dotproxy_upstream_up 1 unless the upstream failed and has not worked since.\n"
			  "# TYPE dotproxy_upstream_up gauge\n");
	for (unsigned k = 0; k < p->nactive; k++) {
		unsigned i = p->order[k];
		/* down from a failure until a connection to it works again */
		int up = !p->ups[i].down;

		healthy |= up;
		strbuf_printf(sb, "dotproxy_upstream_up{upstream=\"%s\"} %d\n", p->ups[i].cfg->label, up);
	}
	strbuf_printf(sb, "# HELP dotproxy_upstream_answers_total Answers accepted from each upstream.\n"
			  "# TYPE dotproxy_upstream_answers_total counter\n");
	FOR_ACTIVE(p, i)
		strbuf_printf(sb, "dotproxy_upstream_answers_total{upstream=\"%s\"} %llu\n",
			      p->ups[i].cfg->label, (unsigned long long)p->ups[i].answers);
	strbuf_printf(sb, "# HELP dotproxy_upstream_failures_total Connect, TLS or certificate failures of each upstream.\n"
			  "# TYPE dotproxy_upstream_failures_total counter\n");
	FOR_ACTIVE(p, i)
		strbuf_printf(sb, "dotproxy_upstream_failures_total{upstream=\"%s\"} %llu\n",
			      p->ups[i].cfg->label, (unsigned long long)p->ups[i].failures);
	strbuf_printf(sb, "# HELP dotproxy_upstream_rtt_ms Smoothed answer time of each upstream (0: not measured yet).\n"
			  "# TYPE dotproxy_upstream_rtt_ms gauge\n");
	FOR_ACTIVE(p, i)
		strbuf_printf(sb, "dotproxy_upstream_rtt_ms{upstream=\"%s\"} %.1f\n", p->ups[i].cfg->label,
			      (double)p->ups[i].srtt8 / 8);
	strbuf_printf(sb, "# HELP dotproxy_upstream_connections Open TLS connections to each upstream.\n"
			  "# TYPE dotproxy_upstream_connections gauge\n");
	FOR_ACTIVE(p, i) {
		unsigned open = 0;

		for (unsigned j = 0; j < p->max_conns; j++)
			open += p->ups[i].conns[j].state == C_READY;
		strbuf_printf(sb, "dotproxy_upstream_connections{upstream=\"%s\"} %u\n", p->ups[i].cfg->label, open);
	}
	render_per_upstream(p, sb);
	return healthy;
}

/*
 * check_upstream.c - the DoT pool (upstream.c) with the real query table,
 * against a real TLS server: a child process on 127.0.0.1 with a
 * certificate from a CA made here, speaking RFC 7858 framing and
 * misbehaving as each test asks (answers out of order or in pieces,
 * answers another question, sends a runt frame, closes mid-batch, never
 * answers, never finishes the handshake, is not there, lets the connection
 * idle). A front-end records what each client would get.
 * Every loop run has a guard timer; the server child is killed and reaped
 * by the test and dies with it (PR_SET_PDEATHSIG, alarm) if the test dies.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "testcert.h"
#include "dns.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "query.h"
#include "sock.h"
#include "upstream.h"
#include "unit.h"

#define AUTH_NAME	"dot.dotproxy.test"
#define MAX_REPLIES	512

/* ---- certificates: a CA and a server certificate for AUTH_NAME ---- */

static EVP_PKEY *ca_key, *srv_key;
static X509 *ca_cert, *srv_cert;
static char ca_path[64];

/* ---- the server child ---- */

/* How the server behaves. Arrival indexes count queries over all connections. */
struct plan {
	int reverse;		/* hold this many queries, then answer them last first */
	int bad_name;		/* arrival index answered with another name (-1: none) */
	int bad_type;		/* arrival index answered with another type (-1: none) */
	int stray;		/* arrival index also answered under an ID never given out (-1: none) */
	int close_after;	/* first connection: after this many queries ... */
	int answer_first;	/* ... answered this many of them, close (0: never) */
	bool close_notify;	/* ... with a TLS close_notify (else just the TCP close) */
	bool silent;		/* never answer */
	int answer_only;	/* answer only the queries with arrival index below this (0: all) */
	int answer_from;	/* answer only the queries with arrival index at least this (0: all) */
	bool runt;		/* first connection: answer the first query with a 3-octet frame */
	int split;		/* write answers this many octets per TLS record (0: all at once) */
	bool tls12;		/* TLS 1.2 at most */
	bool no_accept;		/* listen, but never accept: no TLS handshake */
	bool concurrent;	/* serve each connection in its own process, all at once */
	int mute_first_after;	/* first connection: answer this many, then nothing (0: off) */
	int delay_ms;		/* wait this long before writing answers (0: none) */
};

/* What the server saw; shared memory, written by the child only. */
struct stats {
	int conns;		/* handshakes completed */
	int resumed;		/* ... of which resumed a session */
	int queries;		/* query frames received */
	int reads;		/* SSL_read calls that returned data */
	int eofs;		/* connections the client ended */
	int clean_closes;	/* ... with a close_notify */
	int padded;		/* queries whose length is a multiple of 128 (RFC 8467 4.1) */
};

enum how { ANSWER_OK, ANSWER_BAD_NAME, ANSWER_BAD_TYPE, ANSWER_STRAY };

static struct stats *st;
static pid_t srv_pid = -1;

static void bump(int *v) { __atomic_add_fetch(v, 1, __ATOMIC_SEQ_CST); }
static int peek(int *v) { return __atomic_load_n(v, __ATOMIC_SEQ_CST); }

/* Offset just past the (uncompressed) question of @q, or 0. */
static size_t question_end(const uint8_t *q, size_t len)
{
	size_t off = DNS_HDR_LEN;

	while (off < len && q[off]) {
		if (q[off] & 0xc0)
			return 0;
		off += 1 + (size_t)q[off];
	}
	return off + 5 <= len ? off + 5 : 0;
}

/* The number in a first label "q<digits>". */
static unsigned label_number(const uint8_t *q)
{
	unsigned k = 0;

	for (size_t i = 1; i < q[12]; i++)
		k = k * 10 + (unsigned)(q[13 + i] - '0');
	return k;
}

/*
 * Frame an answer to @q into @out: header and question copied, QR and RA
 * set, one A record 10.0.K/256.K%256 for the query named "qK...".
 * Returns the frame length, or 0 if @q does not parse.
 */
static size_t frame_answer(const uint8_t *q, size_t qlen, uint8_t *out, enum how how)
{
	static const uint8_t rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4, 10, 0 };
	size_t qe = question_end(q, qlen);
	uint8_t *a = out + 2;
	unsigned k;

	if (qe == DNS_HDR_LEN + 5) {		/* the root: the pool's probe; an empty answer */
		memcpy(a, q, qe);
		a[2] |= 0x80;
		a[3] = 0x80;
		memset(a + 6, 0, 6);
		wire_put_u16(out, (uint16_t)qe);
		return 2 + qe;
	}
	if (!qe || q[12] < 2 || q[13] != 'q')
		return 0;
	k = label_number(q);
	memcpy(a, q, qe);
	a[2] |= 0x80;				/* QR */
	a[3] = 0x80;				/* RA, NOERROR */
	wire_put_u16(a + 6, 1);
	wire_put_u16(a + 8, 0);
	wire_put_u16(a + 10, 0);
	if (how == ANSWER_BAD_NAME)
		a[13] = 'x';			/* "qK.dotproxy.test" -> "xK.dotproxy.test" */
	else if (how == ANSWER_BAD_TYPE)
		wire_put_u16(a + qe - 4, 28);	/* AAAA instead of A */
	else if (how == ANSWER_STRAY)
		wire_put_u16(a, (uint16_t)(wire_get_u16(a) ^ 0x8000));	/* another generation */
	memcpy(a + qe, rr, sizeof(rr));
	a[qe + sizeof(rr)] = (uint8_t)(k >> 8);
	a[qe + sizeof(rr) + 1] = (uint8_t)k;
	if (how == ANSWER_STRAY)
		a[qe + sizeof(rr) + 1] ^= 0xff;	/* and another address: it must not reach a client */
	wire_put_u16(out, (uint16_t)(qe + sizeof(rr) + 2));
	return 2 + qe + sizeof(rr) + 2;
}

/* Serve one connection per @pl. Returns when the client ends it or the plan closes it. */
static void serve_conn(SSL *s, int conn, const struct plan *pl)
{
	static uint8_t in[70000], out[1 << 17], held[256][320];
	static size_t heldlen[256];
	size_t inlen = 0;
	int nheld = 0, conn_queries = 0;

	for (;;) {
		size_t off = 0, olen = 0;
		bool close_now = false;
		int r = SSL_read(s, in + inlen, (int)(sizeof(in) - inlen));

		if (r <= 0) {
			if (SSL_get_error(s, r) == SSL_ERROR_ZERO_RETURN)
				bump(&st->clean_closes);
			bump(&st->eofs);
			return;
		}
		bump(&st->reads);
		inlen += (size_t)r;
		while (inlen - off >= 2 && inlen - off - 2 >= wire_get_u16(in + off)) {
			const uint8_t *q = in + off + 2;
			size_t qlen = wire_get_u16(in + off);
			int idx = __atomic_fetch_add(&st->queries, 1, __ATOMIC_SEQ_CST);

			off += 2 + qlen;
			conn_queries++;
			if (qlen % 128 == 0)
				bump(&st->padded);
			if (olen > sizeof(out) - 2 * 400)
				_exit(3);	/* the test sends nothing that large */
			if (pl->silent || (pl->answer_only && idx >= pl->answer_only) || idx < pl->answer_from ||
			    (conn == 0 && pl->mute_first_after && conn_queries > pl->mute_first_after))
				continue;
			if (conn == 0 && pl->runt) {
				memcpy(out + olen, "\0\3abc", 5);
				olen += 5;
				continue;
			}
			if (conn == 0 && pl->close_after) {
				if (conn_queries <= pl->answer_first)
					olen += frame_answer(q, qlen, out + olen, ANSWER_OK);
				if (conn_queries == pl->close_after)
					close_now = true;
				continue;
			}
			if (pl->reverse) {
				if (qlen > sizeof(held[0]) || nheld == 256)
					_exit(3);
				memcpy(held[nheld], q, qlen);
				heldlen[nheld++] = qlen;
				if (nheld == pl->reverse)
					while (nheld > 0) {
						nheld--;
						olen += frame_answer(held[nheld], heldlen[nheld], out + olen, ANSWER_OK);
					}
				continue;
			}
			if (idx == pl->stray)
				olen += frame_answer(q, qlen, out + olen, ANSWER_STRAY);
			olen += frame_answer(q, qlen, out + olen,
					     idx == pl->bad_name ? ANSWER_BAD_NAME :
					     idx == pl->bad_type ? ANSWER_BAD_TYPE : ANSWER_OK);
		}
		memmove(in, in + off, inlen - off);
		inlen -= off;
		if (pl->delay_ms && olen)
			usleep((useconds_t)pl->delay_ms * 1000);
		for (size_t w = 0, step = pl->split ? (size_t)pl->split : olen; w < olen; w += step) {
			int n = (int)(olen - w < step ? olen - w : step);

			if (SSL_write(s, out + w, n) != n)
				return;
			if (pl->split)
				usleep(1000);
		}
		if (close_now) {
			if (pl->close_notify)
				SSL_shutdown(s);
			return;
		}
	}
}

static void server_main(int lfd, const struct plan *pl)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	struct timeval tv = { .tv_sec = 10 };

	if (!ctx || SSL_CTX_use_certificate(ctx, srv_cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, srv_key) != 1 || SSL_CTX_add1_chain_cert(ctx, ca_cert) != 1)
		_exit(2);
	if (pl->tls12)
		SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
	while (pl->no_accept)
		pause();
	for (int conn = 0; conn < 16; conn++) {
		int fd = accept(lfd, NULL, NULL);
		SSL *s;

		if (fd < 0)
			_exit(0);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (pl->concurrent) {
			pid_t pid = fork();

			if (pid < 0)
				_exit(2);
			if (pid > 0) {
				close(fd);
				continue;
			}
			prctl(PR_SET_PDEATHSIG, SIGKILL);	/* goes with the server */
		}
		s = SSL_new(ctx);
		SSL_set_fd(s, fd);
		if (SSL_accept(s) == 1) {
			if (SSL_session_reused(s))
				bump(&st->resumed);
			bump(&st->conns);
			serve_conn(s, conn, pl);
		}
		SSL_free(s);
		close(fd);
		if (pl->concurrent)
			_exit(0);
	}
	_exit(0);
}

/* Start the server child with @pl on an ephemeral port of 127.0.0.1 or ::1; returns the port. */
static int start_server_af(const struct plan *pl, int af)
{
	union sockaddr_any sa;
	socklen_t sl;
	pid_t parent = getpid();
	int lfd = socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sa.sa_family = (sa_family_t)af;
	if (af == AF_INET6)
		sa.sin6.sin6_addr = in6addr_loopback;
	else
		sa.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sl = sock_len(&sa);
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(bind(lfd, &sa.sa, sl), 0);
	ck_assert_int_eq(listen(lfd, 64), 0);
	ck_assert_int_eq(getsockname(lfd, &sa.sa, &sl), 0);
	srv_pid = fork();
	ck_assert_int_ge(srv_pid, 0);
	if (srv_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		alarm(15);
		server_main(lfd, pl);
	}
	close(lfd);
	return sock_port(&sa);
}

static int start_server(const struct plan *pl) { return start_server_af(pl, AF_INET); }

static void stop_server(void)
{
	if (srv_pid > 0) {
		kill(srv_pid, SIGKILL);
		waitpid(srv_pid, NULL, 0);
		srv_pid = -1;
	}
}

/* Wait (at most @max_ms) for the server to count @want in *@v; returns what it counted. */
static int wait_stat(int *v, int want, int max_ms)
{
	for (int i = 0; i < max_ms / 5 && peek(v) < want; i++)
		usleep(5000);
	return peek(v);
}

static void plan_init(struct plan *pl)
{
	memset(pl, 0, sizeof(*pl));
	pl->bad_name = pl->bad_type = pl->stray = -1;
}

/* ---- a front-end that records replies ---- */

struct reply {
	int client;
	uint64_t at;		/* loop time it was sent */
	uint8_t msg[512];
	size_t len;
};

static struct reply *replies;
static int nreplies, want_replies;
static bool running;

static struct config cfg;
static struct loop *lp;
static struct metrics m;
static struct qtable qt;
static struct pool *pool;

static void rec_reply(struct frontend *fe, const void *ctx, const uint8_t *msg, size_t len)
{
	(void)fe;
	ck_assert_int_lt(nreplies, MAX_REPLIES);
	ck_assert_uint_le(len, sizeof(replies[0].msg));
	memcpy(&replies[nreplies].client, ctx, sizeof(int));
	memcpy(replies[nreplies].msg, msg, len);
	replies[nreplies].len = len;
	replies[nreplies].at = loop_now(lp);
	nreplies++;
	if (running && nreplies >= want_replies)
		loop_stop(lp);
}

static const struct frontend_ops rec_ops = { .name = "test", .transport = MT_TCP, .reply = rec_reply };
static struct frontend rec_fe = { .ops = &rec_ops };

static void on_stop(struct loop *l, void *arg)
{
	(void)arg;
	loop_stop(l);
}

/* Run the loop until @want replies in all, or @max_ms. */
static void run_until(int want, unsigned max_ms)
{
	struct loop_timer guard;

	if (nreplies >= want)
		return;		/* already there (a reply can come before the loop runs) */
	want_replies = want;
	loop_timer_init(&guard, on_stop, NULL);
	ck_assert_int_eq(loop_timer_set(lp, &guard, max_ms), 0);
	running = true;
	ck_assert_int_eq(loop_run(lp), 0);
	running = false;
	loop_timer_cancel(lp, &guard);
}

/* Run the loop for @ms, whatever arrives. */
static void run_for(unsigned ms) { run_until(MAX_REPLIES + 1, ms); }

/* A query "q<k>.dotproxy.test" type A with ID @id. */
static size_t make_query(uint8_t *buf, uint16_t id, int k)
{
	char label[16];
	size_t n = DNS_HDR_LEN, l = (size_t)snprintf(label, sizeof(label), "q%d", k);

	memset(buf, 0, DNS_HDR_LEN);
	wire_put_u16(buf, id);
	buf[2] = 0x01;			/* RD */
	wire_put_u16(buf + 4, 1);
	buf[n++] = (uint8_t)l;
	memcpy(buf + n, label, l);
	n += l;
	memcpy(buf + n, "\x08" "dotproxy" "\x04" "test", 15);
	n += 15;
	wire_put_u16(buf + n, 1);
	wire_put_u16(buf + n + 2, 1);
	return n + 4;
}

static void send_query(int k, uint16_t id)
{
	uint8_t q[64];
	size_t n = make_query(q, id, k);

	query_receive(&qt, &rec_fe, &k, sizeof(k), q, n, 65535, NULL);
}

/* The one reply client @k got. */
static const struct reply *reply_of(int k)
{
	const struct reply *r = NULL;

	for (int i = 0; i < nreplies; i++)
		if (replies[i].client == k) {
			ck_assert_msg(r == NULL, "client %d got two replies", k);
			r = &replies[i];
		}
	ck_assert_msg(r != NULL, "client %d got no reply", k);
	return r;
}

/* @r is the server's answer to client @k's query with ID @id. */
static void check_answer(const struct reply *r, int k, uint16_t id)
{
	uint8_t q[64];
	size_t n = make_query(q, id, k);

	ck_assert_uint_eq(dns_id(r->msg), id);
	ck_assert(r->msg[2] & 0x80);
	ck_assert_int_eq(dns_rcode(r->msg), DNS_RCODE_NOERROR);
	ck_assert_uint_eq(r->len, n + 16);
	ck_assert_uint_eq(wire_get_u16(r->msg + 6), 1);
	ck_assert_mem_eq(r->msg + 4, q + 4, 2);			/* QDCOUNT */
	ck_assert_mem_eq(r->msg + DNS_HDR_LEN, q + DNS_HDR_LEN, n - DNS_HDR_LEN);
	ck_assert_uint_eq(r->msg[n + 12], 10);
	ck_assert_uint_eq(r->msg[n + 13], 0);
	ck_assert_uint_eq(r->msg[n + 14], (unsigned)(k >> 8) & 0xff);
	ck_assert_uint_eq(r->msg[n + 15], (unsigned)k & 0xff);
}

/* @r is SERVFAIL for client @k's query with ID @id, its question echoed. */
static void check_servfail(const struct reply *r, int k, uint16_t id)
{
	uint8_t q[64];
	size_t n = make_query(q, id, k);

	ck_assert_uint_eq(dns_id(r->msg), id);
	ck_assert(r->msg[2] & 0x80);
	ck_assert_int_eq(dns_rcode(r->msg), DNS_RCODE_SERVFAIL);
	ck_assert_uint_eq(wire_get_u16(r->msg + 6), 0);
	ck_assert_uint_ge(r->len, n);
	ck_assert_mem_eq(r->msg + DNS_HDR_LEN, q + DNS_HDR_LEN, n - DNS_HDR_LEN);
}

/* ---- the pool under test ---- */

static unsigned test_max_conns = 1;		/* --max-conns of the next pool */
static bool test_own_ca;			/* the test CA as --upstream-ca of upstream 0, none global */
static enum cfg_policy test_policy = POLICY_ORDERED;	/* --policy of the next pool */

static void make_pool_spec(const char *const *specs, int nspecs, unsigned timeout_ms,
			   unsigned idle_ms, unsigned nslots)
{
	char err[256];
	FILE *f;
	int fd;

	memset(&cfg, 0, sizeof(cfg));
	cfg.max_conns = test_max_conns;
	cfg.policy = test_policy;
	for (int i = 0; i < nspecs; i++)
		ck_assert_msg(config_parse_upstream(specs[i], &cfg.upstreams[i], err, sizeof(err)) == 0,
			      "%s: %s", specs[i], err);
	cfg.nupstreams = nspecs;
	/* --ca-file: read once by pool_new, so gone again before anything can fail */
	strcpy(ca_path, "/tmp/check_upstream_ca.XXXXXX");
	fd = mkstemp(ca_path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	PEM_write_X509(f, ca_cert);
	fclose(f);
	strcpy(cfg.ca_file, ca_path);
	if (test_own_ca) {
		cfg.ca_file[0] = '\0';		/* the system store, which does not know the test CA */
		strcpy(cfg.upstreams[0].ca_file, ca_path);
	}
	cfg.mark = 0;
	cfg.timeout_ms = timeout_ms;
	cfg.idle_timeout_ms = idle_ms;
	cfg.max_inflight = nslots;
	pool = pool_new(lp, &cfg, &qt, &m, err, sizeof(err));
	unlink(ca_path);
	ck_assert_msg(pool != NULL, "%s", err);
	ck_assert_int_eq(qtable_init(&qt, nslots, timeout_ms, lp, pool, &m), 0);
}

static void make_pool(int port, const char *name, unsigned timeout_ms, unsigned idle_ms, unsigned nslots)
{
	char spec[128];
	const char *specs[1] = { spec };

	snprintf(spec, sizeof(spec), "127.0.0.1@%d#%s", port, name);
	make_pool_spec(specs, 1, timeout_ms, idle_ms, nslots);
}

/* One loop iteration, so that loop time is now and not when the fixture began. */
static void tick(void) { run_for(0); }

/* The pool's metrics page, rendered; its health in *@healthy. */
static char *render(int *healthy)
{
	struct strbuf sb = { 0 };

	*healthy = pool_render(pool, &sb);
	ck_assert_int_eq(sb.err, 0);
	ck_assert_ptr_nonnull(sb.buf);
	return sb.buf;
}

/* @page has the sample @metric{upstream="127.0.0.1@PORT#AUTH_NAME"} @v. */
static void assert_sample(const char *page, const char *metric, int port, unsigned long long v)
{
	char line[256];

	snprintf(line, sizeof(line), "%s{upstream=\"127.0.0.1@%d#%s\"} %llu\n", metric, port, AUTH_NAME, v);
	ck_assert_msg(strstr(page, line) != NULL, "missing \"%s\" in:\n%s", line, page);
}

static void setup(void)
{
	test_own_ca = false;
	test_max_conns = 1;
	test_policy = POLICY_ORDERED;
	signal(SIGPIPE, SIG_IGN);	/* as the daemon does: writes to a closed peer are errors */
	log_set_level(LOG_LVL_ERR);	/* the failures here are on purpose: no warnings */
	ca_key = EVP_EC_gen("P-256");
	srv_key = EVP_EC_gen("P-256");
	ck_assert_ptr_nonnull(ca_key);
	ck_assert_ptr_nonnull(srv_key);
	ca_cert = testcert_make(ca_key, "dotproxy test CA", NULL, ca_key, 1);
	srv_cert = testcert_make(srv_key, AUTH_NAME, ca_cert, ca_key, 0);
	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(st, MAP_FAILED);
	memset(st, 0, sizeof(*st));
	replies = calloc(MAX_REPLIES, sizeof(*replies));
	ck_assert_ptr_nonnull(replies);
	nreplies = 0;
	memset(&m, 0, sizeof(m));
	pool = NULL;
	lp = loop_new();
	ck_assert_ptr_nonnull(lp);
}

static void teardown(void)
{
	stop_server();
	if (pool) {
		pool_free(pool);	/* fails what is left: recorded, not checked */
		qtable_destroy(&qt);
	}
	pool = NULL;
	loop_free(lp);
	free(replies);
	munmap(st, sizeof(*st));
	X509_free(ca_cert);
	X509_free(srv_cert);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(srv_key);
}

/* ---- tests ---- */

START_TEST(answers_out_of_order_reach_their_clients)
{
	struct plan pl;
	int port;

	plan_init(&pl);
	pl.reverse = 8;
	port = start_server(&pl);
	make_pool(port, AUTH_NAME, 3000, 30000, 16);
	tick();
	for (int k = 0; k < 8; k++)
		send_query(k, 0x4242);		/* every client chose the same ID */
	run_until(8, 3000);
	ck_assert_int_eq(nreplies, 8);
	for (int i = 0; i < 8; i++) {
		/* the server answered last first: the replies come back that way */
		ck_assert_int_eq(replies[i].client, 7 - i);
		check_answer(&replies[i], 7 - i, 0x4242);
	}
	ck_assert_int_eq(peek(&st->queries), 8);
	ck_assert_uint_eq(m.handshakes, 1);
	ck_assert_uint_eq(m.upstream_queries, 8);
	ck_assert_uint_eq(m.upstream_bad_answers, 0);
	ck_assert_uint_eq(m.answers[MR_NOERROR], 8);
	ck_assert_uint_eq(m.inflight, 0);
}
END_TEST

START_TEST(answer_to_another_question_is_dropped)
{
	struct plan pl;
	uint64_t t0;
	int port;

	plan_init(&pl);
	pl.bad_name = 1;	/* q1 answered for "x1.dotproxy.test" */
	pl.bad_type = 3;	/* q3 answered for AAAA */
	pl.stray = 4;		/* q4 answered, and once more under an unknown ID */
	port = start_server(&pl);
	make_pool(port, AUTH_NAME, 600, 30000, 16);
	tick();
	t0 = loop_now(lp);
	for (int k = 0; k < 6; k++)
		send_query(k, (uint16_t)(0x1000 + k));
	run_until(6, 2000);
	ck_assert_int_eq(nreplies, 6);
	for (int k = 0; k < 6; k++) {
		const struct reply *r = reply_of(k);

		if (k == 1 || k == 3) {
			check_servfail(r, k, (uint16_t)(0x1000 + k));
			ck_assert_uint_ge(r->at - t0, 600);	/* at the deadline, not before */
			ck_assert_uint_lt(r->at - t0, 1600);
		} else {
			check_answer(r, k, (uint16_t)(0x1000 + k));
			ck_assert_uint_lt(r->at - t0, 600);
		}
	}
	ck_assert_uint_eq(m.upstream_bad_answers, 3);
	ck_assert_uint_eq(m.timeouts, 2);
	ck_assert_uint_eq(m.answers[MR_SERVFAIL], 2);
	ck_assert_uint_eq(m.answers[MR_NOERROR], 4);
	ck_assert_uint_eq(m.handshakes, 1);
	ck_assert_int_eq(peek(&st->queries), 6);
	ck_assert_uint_eq(m.inflight, 0);
}
END_TEST

/* The server answers 2 of 4 queries and closes: the other 2 go out again on a new connection. */
static void close_mid_batch(bool close_notify)
{
	struct plan pl;
	int port;

	plan_init(&pl);
	pl.close_after = 4;
	pl.answer_first = 2;
	pl.close_notify = close_notify;
	port = start_server(&pl);
	make_pool(port, AUTH_NAME, 3000, 30000, 16);
	tick();
	for (int k = 0; k < 4; k++)
		send_query(k, (uint16_t)(0x2000 + k));
	run_until(4, 3000);
	ck_assert_int_eq(nreplies, 4);
	for (int k = 0; k < 4; k++)
		check_answer(reply_of(k), k, (uint16_t)(0x2000 + k));
	ck_assert_uint_eq(m.handshakes, 2);
	ck_assert_uint_eq(m.upstream_queries, 6);
	ck_assert_uint_eq(m.timeouts, 0);
	ck_assert_uint_eq(m.answers[MR_NOERROR], 4);
	ck_assert_int_eq(peek(&st->conns), 2);
	ck_assert_int_eq(peek(&st->queries), 6);
	ck_assert_uint_eq(m.inflight, 0);
}

START_TEST(server_close_notify_mid_batch_resends_the_rest)
{
	close_mid_batch(true);
}
END_TEST

START_TEST(server_tcp_close_mid_batch_resends_the_rest)
{
	close_mid_batch(false);
}
END_TEST

START_TEST(server_that_never_answers_gives_servfail_at_the_deadline)
{
	struct plan pl;
	uint64_t t0;
	int port, healthy;

	plan_init(&pl);
	pl.silent = true;
	port = start_server(&pl);
	make_pool(port, AUTH_NAME, 300, 30000, 16);
	tick();
	t0 = loop_now(lp);
	send_query(0, 0x3000);
	send_query(1, 0x3001);
	run_until(2, 2000);
	ck_assert_int_eq(nreplies, 2);
	/* half-way there is nowhere else to send them (one upstream, one connection): at the
	 * deadline the connection has been silent throughout, never answering: down */
	for (int k = 0; k < 2; k++) {
		const struct reply *r = reply_of(k);

		check_servfail(r, k, (uint16_t)(0x3000 + k));
		ck_assert_uint_ge(r->at - t0, 300);
		ck_assert_uint_lt(r->at - t0, 1300);
	}
	ck_assert_int_eq(wait_stat(&st->queries, 2, 1000), 2);	/* they were sent */
	ck_assert_uint_eq(m.hedged, 0);
	ck_assert_uint_ge(m.timeouts, 1);
	ck_assert_uint_eq(m.answers[MR_SERVFAIL], 2);
	ck_assert_uint_eq(m.tls_failures, 1);
	ck_assert_uint_eq(m.inflight, 0);
	free(render(&healthy));
	ck_assert_int_eq(healthy, 0);
}
END_TEST

START_TEST(silent_connection_is_dropped_after_a_whole_deadline)
{
	struct plan pl;
	uint64_t t1;
	int port;

	plan_init(&pl);
	pl.answer_only = 1;	/* the first query is answered, then nothing ever comes back */
	port = start_server(&pl);
	make_pool(port, AUTH_NAME, 300, 30000, 16);
	tick();
	send_query(0, 0x3100);
	run_until(1, 2000);
	ck_assert_int_eq(nreplies, 1);
	check_answer(reply_of(0), 0, 0x3100);
	/* sent after the last bytes arrived: at its deadline the connection was silent a whole
	 * deadline; it answered before, so it is lost on the way, not a broken upstream */
	t1 = loop_now(lp);
	send_query(1, 0x3101);
	run_until(2, 2000);
	ck_assert_int_eq(nreplies, 2);
	check_servfail(reply_of(1), 1, 0x3101);
	ck_assert_uint_ge(replies[1].at - t1, 300);
	ck_assert_int_eq(wait_stat(&st->clean_closes, 1, 1000), 1);
	ck_assert_uint_eq(m.tls_failures, 0);
	/* the next query opens a new connection, which never answers: now it is down */
	send_query(2, 0x3102);
	run_until(3, 2000);
	ck_assert_int_eq(nreplies, 3);
	check_servfail(reply_of(2), 2, 0x3102);
	ck_assert_uint_eq(m.handshakes, 2);
	ck_assert_uint_eq(m.tls_failures, 1);
	/* so the one after fails at once: no client query goes to a down upstream */
	t1 = loop_now(lp);
	send_query(3, 0x3103);
	run_until(4, 2000);
	ck_assert_int_eq(nreplies, 4);
	check_servfail(reply_of(3), 3, 0x3103);
	ck_assert_uint_lt(replies[3].at - t1, 100);
	ck_assert_int_eq(peek(&st->queries), 3);
}
END_TEST

START_TEST(query_on_a_silent_connection_is_resent_half_way)
{
	struct plan pl;
	uint64_t t1;
	int port, healthy;

	plan_init(&pl);
	pl.concurrent = true;
	pl.mute_first_after = 1;	/* the first connection answers once, then never again */
	port = start_server(&pl);
	test_max_conns = 2;
	make_pool(port, AUTH_NAME, 600, 30000, 16);
	tick();
	send_query(0, 0x3300);
	run_until(1, 2000);
	check_answer(reply_of(0), 0, 0x3300);
	/* half-way (300 ms) its connection has said nothing: it goes out on a second one */
	t1 = loop_now(lp);
	send_query(1, 0x3301);
	run_until(2, 2000);
	check_answer(reply_of(1), 1, 0x3301);
	ck_assert_uint_ge(replies[1].at - t1, 300);
	ck_assert_uint_lt(replies[1].at - t1, 600);
	ck_assert_uint_eq(m.hedged, 1);
	ck_assert_uint_eq(m.handshakes, 2);
	/* slow is not broken: no failure, and it is still usable */
	ck_assert_uint_eq(m.tls_failures, 0);
	free(render(&healthy));
	ck_assert_int_eq(healthy, 1);
	/* the silent one takes no new query: the next one is answered at once */
	t1 = loop_now(lp);
	send_query(2, 0x3302);
	run_until(3, 2000);
	check_answer(reply_of(2), 2, 0x3302);
	ck_assert_uint_lt(replies[2].at - t1, 200);
}
END_TEST

START_TEST(down_upstream_is_probed_in_the_background)
{
	struct plan pl;
	int port, healthy;
	char *page;

	plan_init(&pl);
	pl.answer_from = 1;	/* the first query is never answered; every later one is */
	port = start_server(&pl);
	make_pool(port, AUTH_NAME, 300, 30000, 16);
	tick();
	send_query(0, 0x3200);
	run_until(1, 2000);
	check_servfail(reply_of(0), 0, 0x3200);
	free(render(&healthy));
	ck_assert_int_eq(healthy, 0);
	/* no client query: the probe (". NS") goes out by itself, and its answer brings it back */
	for (int i = 0; i < 40 && !healthy; i++) {
		run_for(50);
		free(render(&healthy));
	}
	ck_assert_int_eq(healthy, 1);
	ck_assert_int_eq(peek(&st->queries), 2);	/* query 0 and the probe */
	ck_assert_uint_eq(m.handshakes, 2);
	/* the probe's connection carries the next client query */
	send_query(1, 0x3201);
	run_until(2, 2000);
	check_answer(reply_of(1), 1, 0x3201);
	ck_assert_uint_eq(m.handshakes, 2);
	page = render(&healthy);
	assert_sample(page, "dotproxy_upstream_up", port, 1);
	assert_sample(page, "dotproxy_upstream_failures_total", port, 1);
	free(page);
}
END_TEST

START_TEST(refused_connection_gives_servfail_quickly_and_marks_it_down)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port, healthy;
	uint64_t t0;
	char *page;

	/* a port bound but not listening: connections to it are refused, and nobody else gets it */
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	port = ntohs(sin.sin_port);
	make_pool(port, AUTH_NAME, 3000, 30000, 16);
	tick();
	t0 = loop_now(lp);
	for (int k = 0; k < 3; k++)
		send_query(k, (uint16_t)(0x4000 + k));
	run_until(3, 3000);
	ck_assert_int_eq(nreplies, 3);
	for (int k = 0; k < 3; k++) {
		const struct reply *r = reply_of(k);

		check_servfail(r, k, (uint16_t)(0x4000 + k));
		ck_assert_uint_lt(r->at - t0, 500);	/* the deadline is 3000 */
	}
	ck_assert_uint_eq(m.timeouts, 0);
	ck_assert_uint_eq(m.handshakes, 0);
	ck_assert_uint_eq(m.tls_failures, 1);
	ck_assert_uint_eq(m.answers[MR_SERVFAIL], 3);
	ck_assert_uint_eq(m.inflight, 0);
	page = render(&healthy);
	ck_assert_int_eq(healthy, 0);
	assert_sample(page, "dotproxy_upstream_up", port, 0);
	assert_sample(page, "dotproxy_upstream_failures_total", port, 1);
	assert_sample(page, "dotproxy_upstream_answers_total", port, 0);
	free(page);
	close(fd);
}
END_TEST

START_TEST(refused_upstream_fails_over_to_the_next)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), dead, port, healthy;
	char s0[128], s1[128];
	const char *specs[2] = { s0, s1 };
	struct plan pl;
	char *page;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	dead = ntohs(sin.sin_port);
	plan_init(&pl);
	port = start_server(&pl);
	snprintf(s0, sizeof(s0), "127.0.0.1@%d#%s", dead, AUTH_NAME);
	snprintf(s1, sizeof(s1), "127.0.0.1@%d#%s", port, AUTH_NAME);
	make_pool_spec(specs, 2, 3000, 30000, 16);
	tick();
	send_query(0, 0x4100);
	send_query(1, 0x4101);
	run_until(2, 3000);
	ck_assert_int_eq(nreplies, 2);
	check_answer(reply_of(0), 0, 0x4100);
	check_answer(reply_of(1), 1, 0x4101);
	ck_assert_uint_eq(m.tls_failures, 1);
	ck_assert_uint_eq(m.handshakes, 1);
	page = render(&healthy);
	ck_assert_int_eq(healthy, 1);
	assert_sample(page, "dotproxy_upstream_up", dead, 0);
	assert_sample(page, "dotproxy_upstream_up", port, 1);
	assert_sample(page, "dotproxy_upstream_answers_total", port, 2);
	assert_sample(page, "dotproxy_upstream_failures_total", dead, 1);
	free(page);
	close(fd);
}
END_TEST

/* The value of the @nth (0-based) sample of @name in @page, or -1. */
static long nth_sample(const char *page, const char *name, int nth)
{
	size_t len = strlen(name);

	for (const char *p = page; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		const char *sp;

		if (strncmp(p, name, len) != 0 || (p[len] != '{' && p[len] != ' '))
			continue;
		if (nth-- > 0)
			continue;
		sp = strchr(p, ' ');
		return sp ? strtol(sp + 1, NULL, 10) : -1;
	}
	return -1;
}

/* ---- reload (pool_reconfigure) ---- */

/* A CA file of our own, which the test removes. */
static void write_ca(char *path)
{
	FILE *f;
	int fd;

	strcpy(path, "/tmp/check_upstream_ca2.XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	PEM_write_X509(f, ca_cert);
	fclose(f);
}

/*
 * cfg with the single upstream 127.0.0.1@@port; with @own_ca as its
 * --upstream-ca ("": the global --ca-file @ca). Another CA path makes it
 * another upstream to the pool, though it is the same server.
 */
static void reload_cfg(int port, const char *ca, const char *own_ca)
{
	char spec[128], err[256];

	snprintf(spec, sizeof(spec), "127.0.0.1@%d#%s", port, AUTH_NAME);
	ck_assert_int_eq(config_parse_upstream(spec, &cfg.upstreams[0], err, sizeof(err)), 0);
	strcpy(cfg.upstreams[0].ca_file, own_ca);
	strcpy(cfg.ca_file, ca);
	cfg.nupstreams = 1;
}

START_TEST(reload_keeps_the_connection_of_an_upstream_that_stays)
{
	char ca[64], err[256];
	struct plan pl;
	int port;

	plan_init(&pl);
	pl.delay_ms = 300;
	port = start_server(&pl);
	make_pool(port, AUTH_NAME, 3000, 30000, 16);
	tick();
	send_query(0, 0x5100);
	run_for(100);			/* written; the server takes 300 ms to answer */
	ck_assert_int_eq(peek(&st->queries), 1);
	write_ca(ca);
	reload_cfg(port, ca, "");	/* the same upstream, its CA file read again */
	cfg.policy = POLICY_ROUND_ROBIN;
	ck_assert_msg(pool_reconfigure(pool, &cfg, err, sizeof(err)) == 0, "%s", err);
	unlink(ca);
	send_query(1, 0x5101);
	run_until(2, 3000);
	ck_assert_int_eq(nreplies, 2);
	check_answer(reply_of(0), 0, 0x5100);
	check_answer(reply_of(1), 1, 0x5101);
	/* both on the one connection the reload kept */
	ck_assert_int_eq(peek(&st->conns), 1);
	ck_assert_uint_eq(m.handshakes, 1);
	ck_assert_int_eq(peek(&st->eofs), 0);
}
END_TEST

START_TEST(reload_lets_a_removed_upstream_answer_then_closes_it)
{
	char ca[64], err[256], *page;
	struct plan pl;
	int port, healthy;

	plan_init(&pl);
	pl.delay_ms = 300;
	pl.concurrent = true;
	port = start_server(&pl);
	make_pool(port, AUTH_NAME, 3000, 30000, 16);
	tick();
	send_query(0, 0x5200);
	run_for(100);
	ck_assert_int_eq(peek(&st->queries), 1);
	/* another upstream (its own CA) replaces it; the old one has a query in flight */
	write_ca(ca);
	reload_cfg(port, "", ca);
	ck_assert_msg(pool_reconfigure(pool, &cfg, err, sizeof(err)) == 0, "%s", err);
	unlink(ca);
	send_query(1, 0x5201);
	run_until(2, 3000);
	ck_assert_int_eq(nreplies, 2);
	check_answer(reply_of(0), 0, 0x5200);	/* answered where it was sent */
	check_answer(reply_of(1), 1, 0x5201);	/* on the new upstream's connection */
	ck_assert_int_eq(peek(&st->conns), 2);
	ck_assert_int_eq(peek(&st->queries), 2);
	/* the removed one closes once its last answer is in */
	run_for(200);
	ck_assert_int_eq(wait_stat(&st->eofs, 1, 2000), 1);
	page = render(&healthy);
	ck_assert_int_eq(healthy, 1);
	ck_assert_int_eq(nth_sample(page, "dotproxy_upstream_up", 1), -1);	/* only the new one */
	free(page);
}
END_TEST

START_TEST(reload_with_an_unreadable_ca_changes_nothing)
{
	char err[256];
	struct plan pl;
	int port;

	plan_init(&pl);
	port = start_server(&pl);
	make_pool(port, AUTH_NAME, 3000, 30000, 16);
	tick();
	send_query(0, 0x5300);
	run_until(1, 3000);
	reload_cfg(port, "/nonexistent/ca.pem", "");
	ck_assert_int_eq(pool_reconfigure(pool, &cfg, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "/nonexistent/ca.pem") != NULL, "%s", err);
	/* still the old upstream, on its old connection */
	send_query(1, 0x5301);
	run_until(2, 3000);
	check_answer(reply_of(1), 1, 0x5301);
	ck_assert_int_eq(peek(&st->conns), 1);
}
END_TEST

START_TEST(upstream_that_closes_without_answering_fails_over)
{
	char spec[128];
	const char *specs[2] = { spec, spec };
	struct plan pl;
	int port, healthy;
	char *page;

	plan_init(&pl);
	pl.close_after = 1;	/* the first connection (upstream 0's) takes a query and closes */
	pl.close_notify = true;
	port = start_server(&pl);
	/* the same server twice: upstream 0 gets its first connection, upstream 1 the next */
	snprintf(spec, sizeof(spec), "127.0.0.1@%d#%s", port, AUTH_NAME);
	make_pool_spec(specs, 2, 3000, 30000, 16);
	tick();
	send_query(0, 0x4200);
	run_until(1, 3000);
	ck_assert_int_eq(nreplies, 1);
	check_answer(reply_of(0), 0, 0x4200);
	/* and the next one goes straight to upstream 1: upstream 0 is backed off */
	send_query(1, 0x4201);
	run_until(2, 3000);
	check_answer(reply_of(1), 1, 0x4201);
	ck_assert_uint_eq(m.handshakes, 2);
	ck_assert_uint_eq(m.upstream_queries, 3);
	ck_assert_int_eq(peek(&st->conns), 2);
	page = render(&healthy);
	ck_assert_int_eq(healthy, 1);
	ck_assert_int_eq(nth_sample(page, "dotproxy_upstream_up", 0), 0);
	ck_assert_int_eq(nth_sample(page, "dotproxy_upstream_up", 1), 1);
	ck_assert_int_eq(nth_sample(page, "dotproxy_upstream_answers_total", 0), 0);
	ck_assert_int_eq(nth_sample(page, "dotproxy_upstream_answers_total", 1), 2);
	ck_assert_int_eq(nth_sample(page, "dotproxy_upstream_failures_total", 0), 1);
	free(page);
}
END_TEST

START_TEST(unverified_server_never_sees_a_query)
{
	struct plan pl;
	int port;

	plan_init(&pl);
	port = start_server(&pl);
	/* the certificate is for AUTH_NAME, not this name */
	make_pool(port, "wrong.dotproxy.test", 3000, 30000, 16);
	tick();
	send_query(0, 0x4200);
	run_until(1, 3000);
	ck_assert_int_eq(nreplies, 1);
	check_servfail(reply_of(0), 0, 0x4200);
	ck_assert_uint_eq(m.handshakes, 0);
	ck_assert_uint_eq(m.tls_failures, 1);
	ck_assert_uint_eq(m.upstream_queries, 0);
	ck_assert_uint_eq(m.timeouts, 0);
	usleep(50 * 1000);
	ck_assert_int_eq(peek(&st->queries), 0);
}
END_TEST

START_TEST(upstream_with_its_own_ca_is_verified_with_it)
{
	struct plan pl;
	int port;

	plan_init(&pl);
	port = start_server(&pl);
	test_own_ca = true;
	make_pool(port, AUTH_NAME, 3000, 30000, 16);
	tick();
	send_query(0, 0x4300);
	run_until(1, 3000);
	check_answer(reply_of(0), 0, 0x4300);
	ck_assert_uint_eq(m.handshakes, 1);
	ck_assert_uint_eq(m.tls_failures, 0);
}
END_TEST

START_TEST(without_its_ca_the_same_server_is_refused)
{
	struct plan pl;
	char spec[128];
	const char *specs[1] = { spec };
	int port;

	plan_init(&pl);
	port = start_server(&pl);
	snprintf(spec, sizeof(spec), "127.0.0.1@%d#%s", port, AUTH_NAME);
	make_pool_spec(specs, 1, 3000, 30000, 16);
	/* the same pool but with only the system store: a new pool, no CA of its own */
	pool_free(pool);
	qtable_destroy(&qt);
	cfg.ca_file[0] = '\0';
	{
		char err[256];

		pool = pool_new(lp, &cfg, &qt, &m, err, sizeof(err));
		ck_assert_ptr_nonnull(pool);
		ck_assert_int_eq(qtable_init(&qt, 16, 3000, lp, pool, &m), 0);
	}
	tick();
	send_query(0, 0x4301);
	run_until(1, 3000);
	check_servfail(reply_of(0), 0, 0x4301);
	ck_assert_uint_eq(m.tls_failures, 1);
	ck_assert_int_eq(peek(&st->queries), 0);
}
END_TEST

START_TEST(unreadable_upstream_ca_fails_the_pool)
{
	char err[256];

	memset(&cfg, 0, sizeof(cfg));
	ck_assert_int_eq(config_parse_upstream("192.0.2.1#dot.example", &cfg.upstreams[0], err, sizeof(err)), 0);
	strcpy(cfg.upstreams[0].ca_file, "/nonexistent/ca.pem");
	cfg.nupstreams = 1;
	cfg.timeout_ms = 3000;
	ck_assert_ptr_null(pool_new(lp, &cfg, &qt, &m, err, sizeof(err)));
	ck_assert_msg(strncmp(err, "--upstream-ca \"/nonexistent/ca.pem\"", 35) == 0, "%s", err);
	ck_assert_ptr_nonnull(strstr(err, "192.0.2.1@853#dot.example"));
}
END_TEST

START_TEST(idle_connection_is_closed_and_the_next_query_resumes)
{
	struct plan pl;
	int port;

	plan_init(&pl);
	port = start_server(&pl);
	make_pool(port, AUTH_NAME, 3000, 250, 16);
	tick();
	send_query(0, 0x5000);
	run_until(1, 3000);
	ck_assert_int_eq(nreplies, 1);
	check_answer(reply_of(0), 0, 0x5000);
	/* not idle long enough yet */
	run_for(50);
	usleep(20 * 1000);
	ck_assert_int_eq(peek(&st->eofs), 0);
	/* idle past --idle-timeout: the pool closes it, cleanly */
	run_for(600);
	ck_assert_int_eq(wait_stat(&st->clean_closes, 1, 1000), 1);
	ck_assert_int_eq(peek(&st->eofs), 1);
	send_query(1, 0x5001);
	run_until(2, 3000);
	ck_assert_int_eq(nreplies, 2);
	check_answer(reply_of(1), 1, 0x5001);
	ck_assert_uint_eq(m.handshakes, 2);
	ck_assert_uint_eq(m.resumed, 1);
	ck_assert_int_eq(peek(&st->conns), 2);
	ck_assert_int_eq(peek(&st->resumed), 1);
}
END_TEST

START_TEST(answers_split_across_many_records_are_reassembled)
{
	struct plan pl;
	int port;

	plan_init(&pl);
	pl.split = 5;		/* length prefixes and messages cut anywhere */
	port = start_server(&pl);
	make_pool(port, AUTH_NAME, 3000, 30000, 16);
	tick();
	for (int k = 0; k < 3; k++)
		send_query(k, (uint16_t)(0x6000 + k));
	run_until(3, 3000);
	ck_assert_int_eq(nreplies, 3);
	for (int k = 0; k < 3; k++)
		check_answer(reply_of(k), k, (uint16_t)(0x6000 + k));
	ck_assert_uint_eq(m.handshakes, 1);
	ck_assert_uint_eq(m.upstream_queries, 3);
	ck_assert_uint_eq(m.upstream_bad_answers, 0);
}
END_TEST

START_TEST(runt_frame_on_a_fresh_connection_backs_the_upstream_off)
{
	struct plan pl;
	uint64_t t0;
	int port;

	plan_init(&pl);
	pl.runt = true;		/* only on the first connection */
	port = start_server(&pl);
	make_pool(port, AUTH_NAME, 3000, 30000, 16);
	tick();
	/* a connection whose first answer is garbage: the upstream is broken, not just closing */
	t0 = loop_now(lp);
	send_query(0, 0x6100);
	run_until(1, 3000);
	ck_assert_int_eq(nreplies, 1);
	check_servfail(reply_of(0), 0, 0x6100);
	ck_assert_uint_lt(replies[0].at - t0, 1000);	/* well before the 3000 ms deadline */
	ck_assert_uint_eq(m.handshakes, 1);
	ck_assert_uint_eq(m.upstream_queries, 1);
	ck_assert_uint_eq(m.tls_failures, 1);
	/* after the backoff the upstream is tried again and answers */
	run_for(400);
	send_query(1, 0x6101);
	run_until(2, 3000);
	ck_assert_int_eq(nreplies, 2);
	check_answer(reply_of(1), 1, 0x6101);
	ck_assert_uint_eq(m.handshakes, 2);
	ck_assert_int_eq(peek(&st->conns), 2);
}
END_TEST

START_TEST(server_closing_an_idle_connection_is_no_failure)
{
	struct plan pl;
	int port, healthy;
	char *page;

	plan_init(&pl);
	pl.close_after = 1;	/* answer the first query, then close with close_notify */
	pl.answer_first = 1;
	pl.close_notify = true;
	port = start_server(&pl);
	make_pool(port, AUTH_NAME, 3000, 30000, 16);
	tick();
	send_query(0, 0x6200);
	run_until(1, 3000);
	ck_assert_int_eq(nreplies, 1);
	check_answer(reply_of(0), 0, 0x6200);
	run_for(100);		/* the close arrives */
	ck_assert_int_eq(peek(&st->eofs), 0);
	send_query(1, 0x6201);
	run_until(2, 3000);
	ck_assert_int_eq(nreplies, 2);
	check_answer(reply_of(1), 1, 0x6201);
	ck_assert_uint_eq(m.handshakes, 2);
	ck_assert_uint_eq(m.upstream_queries, 2);	/* nothing was lost, nothing resent */
	ck_assert_uint_eq(m.tls_failures, 0);
	page = render(&healthy);
	ck_assert_int_eq(healthy, 1);
	assert_sample(page, "dotproxy_upstream_failures_total", port, 0);
	free(page);
}
END_TEST

START_TEST(handshake_that_never_completes_fails_the_upstream)
{
	struct plan pl;
	uint64_t t0;
	int port, healthy;
	char *page;

	plan_init(&pl);
	pl.no_accept = true;	/* TCP connects (the kernel accepts), TLS never answers */
	port = start_server(&pl);
	make_pool(port, AUTH_NAME, 300, 30000, 16);
	tick();
	t0 = loop_now(lp);
	send_query(0, 0x6300);
	run_until(1, 2000);
	ck_assert_int_eq(nreplies, 1);
	check_servfail(reply_of(0), 0, 0x6300);
	ck_assert_uint_ge(replies[0].at - t0, 300);
	run_for(150);
	ck_assert_uint_eq(m.handshakes, 0);
	ck_assert_uint_eq(m.tls_failures, 1);
	page = render(&healthy);
	ck_assert_int_eq(healthy, 0);
	assert_sample(page, "dotproxy_upstream_up", port, 0);
	assert_sample(page, "dotproxy_upstream_failures_total", port, 1);
	free(page);
}
END_TEST

START_TEST(tls12_connection_resumes_after_idle_close)
{
	struct plan pl;
	int port;

	plan_init(&pl);
	pl.tls12 = true;
	port = start_server(&pl);
	make_pool(port, AUTH_NAME, 3000, 100, 16);
	tick();
	send_query(0, 0x6400);
	run_until(1, 3000);
	ck_assert_int_eq(nreplies, 1);
	run_for(300);
	ck_assert_int_eq(wait_stat(&st->clean_closes, 1, 1000), 1);
	send_query(1, 0x6401);
	run_until(2, 3000);
	ck_assert_int_eq(nreplies, 2);
	check_answer(reply_of(0), 0, 0x6400);
	check_answer(reply_of(1), 1, 0x6401);
	ck_assert_uint_eq(m.handshakes, 2);
	ck_assert_uint_eq(m.resumed, 1);
	ck_assert_int_eq(peek(&st->resumed), 1);
}
END_TEST

START_TEST(ipv6_upstream_is_reached)
{
	struct plan pl;
	char spec[128];
	const char *specs[1] = { spec };
	int port;

	plan_init(&pl);
	port = start_server_af(&pl, AF_INET6);
	snprintf(spec, sizeof(spec), "::1@%d#%s", port, AUTH_NAME);
	make_pool_spec(specs, 1, 3000, 30000, 16);
	tick();
	send_query(0, 0x6500);
	run_until(1, 3000);
	ck_assert_int_eq(nreplies, 1);
	check_answer(reply_of(0), 0, 0x6500);
	ck_assert_uint_eq(m.handshakes, 1);
}
END_TEST

struct batch {
	int first, n;
};

static void send_batch(struct loop *l, void *arg)
{
	const struct batch *b = arg;

	(void)l;
	for (int k = b->first; k < b->first + b->n; k++)
		send_query(k, (uint16_t)k);
}

START_TEST(load_opens_more_connections_up_to_the_cap)
{
	struct plan pl;
	int port, healthy;
	char *page;

	plan_init(&pl);
	pl.concurrent = true;
	port = start_server(&pl);
	test_max_conns = 3;
	make_pool(port, AUTH_NAME, 5000, 30000, 512);
	tick();
	/* 64 queries fill a connection: 300 at once need all 3, and no more */
	for (int k = 0; k < 300; k++)
		send_query(k, (uint16_t)k);
	run_until(300, 4000);
	ck_assert_int_eq(nreplies, 300);
	for (int k = 0; k < 300; k++)
		check_answer(reply_of(k), k, (uint16_t)k);
	ck_assert_uint_eq(m.handshakes, 3);
	ck_assert_int_eq(peek(&st->conns), 3);
	page = render(&healthy);
	assert_sample(page, "dotproxy_upstream_connections", port, 3);
	free(page);
	/* one at a time needs one */
	send_query(300, 300);
	run_until(301, 2000);
	check_answer(reply_of(300), 300, 300);
	ck_assert_uint_eq(m.handshakes, 3);
}
END_TEST

START_TEST(queries_of_one_iteration_share_a_handshake_and_a_write)
{
	struct batch second = { 200, 200 };
	struct loop_timer t;
	int port, reads, healthy;
	char *page;
	struct plan pl;

	plan_init(&pl);
	port = start_server(&pl);
	make_pool(port, AUTH_NAME, 5000, 30000, 512);
	tick();
	/* 200 queries before the connection exists */
	for (int k = 0; k < 200; k++)
		send_query(k, (uint16_t)k);
	run_until(200, 4000);
	ck_assert_int_eq(nreplies, 200);
	for (int k = 0; k < 200; k++)
		check_answer(reply_of(k), k, (uint16_t)k);
	ck_assert_uint_eq(m.handshakes, 1);
	ck_assert_uint_eq(m.upstream_queries, 200);
	ck_assert_int_eq(peek(&st->queries), 200);
	reads = peek(&st->reads);
	/* one write: 200 queries padded to 128 octets fill two 16 KiB TLS records */
	ck_assert_int_eq(reads, 2);
	ck_assert_int_eq(peek(&st->padded), 200);
	/* 200 more from one callback, on the ready connection */
	loop_timer_init(&t, send_batch, &second);
	ck_assert_int_eq(loop_timer_set(lp, &t, 0), 0);
	run_until(400, 4000);
	ck_assert_int_eq(nreplies, 400);
	for (int k = 200; k < 400; k++)
		check_answer(reply_of(k), k, (uint16_t)k);
	ck_assert_uint_eq(m.handshakes, 1);
	ck_assert_int_eq(peek(&st->conns), 1);
	ck_assert_int_eq(peek(&st->queries), 400);
	ck_assert_int_eq(peek(&st->reads) - reads, 2);
	ck_assert_uint_eq(m.answers[MR_NOERROR], 400);
	ck_assert_uint_eq(m.inflight, 0);
	page = render(&healthy);
	ck_assert_int_eq(healthy, 1);
	assert_sample(page, "dotproxy_upstream_up", port, 1);
	assert_sample(page, "dotproxy_upstream_answers_total", port, 400);
	assert_sample(page, "dotproxy_upstream_failures_total", port, 0);
	ck_assert_ptr_nonnull(strstr(page, "# TYPE dotproxy_upstream_up gauge\n"));
	ck_assert_ptr_nonnull(strstr(page, "# TYPE dotproxy_upstream_answers_total counter\n"));
	ck_assert_ptr_nonnull(strstr(page, "# TYPE dotproxy_upstream_failures_total counter\n"));
	free(page);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("upstream");
	TCase *tc = tcase_create("pool");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 15);
	tcase_add_test(tc, answers_out_of_order_reach_their_clients);
	tcase_add_test(tc, answer_to_another_question_is_dropped);
	tcase_add_test(tc, server_close_notify_mid_batch_resends_the_rest);
	tcase_add_test(tc, server_tcp_close_mid_batch_resends_the_rest);
	tcase_add_test(tc, server_that_never_answers_gives_servfail_at_the_deadline);
	tcase_add_test(tc, silent_connection_is_dropped_after_a_whole_deadline);
	tcase_add_test(tc, query_on_a_silent_connection_is_resent_half_way);
	tcase_add_test(tc, down_upstream_is_probed_in_the_background);
	tcase_add_test(tc, refused_connection_gives_servfail_quickly_and_marks_it_down);
	tcase_add_test(tc, refused_upstream_fails_over_to_the_next);
	tcase_add_test(tc, upstream_that_closes_without_answering_fails_over);
	tcase_add_test(tc, unverified_server_never_sees_a_query);
	tcase_add_test(tc, reload_keeps_the_connection_of_an_upstream_that_stays);
	tcase_add_test(tc, reload_lets_a_removed_upstream_answer_then_closes_it);
	tcase_add_test(tc, reload_with_an_unreadable_ca_changes_nothing);
	tcase_add_test(tc, upstream_with_its_own_ca_is_verified_with_it);
	tcase_add_test(tc, without_its_ca_the_same_server_is_refused);
	tcase_add_test(tc, unreadable_upstream_ca_fails_the_pool);
	tcase_add_test(tc, idle_connection_is_closed_and_the_next_query_resumes);
	tcase_add_test(tc, queries_of_one_iteration_share_a_handshake_and_a_write);
	tcase_add_test(tc, load_opens_more_connections_up_to_the_cap);
	tcase_add_test(tc, answers_split_across_many_records_are_reassembled);
	tcase_add_test(tc, runt_frame_on_a_fresh_connection_backs_the_upstream_off);
	tcase_add_test(tc, server_closing_an_idle_connection_is_no_failure);
	tcase_add_test(tc, handshake_that_never_completes_fails_the_upstream);
	tcase_add_test(tc, tls12_connection_resumes_after_idle_close);
	tcase_add_test(tc, ipv6_upstream_is_reached);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

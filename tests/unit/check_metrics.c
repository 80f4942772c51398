/*
 * check_metrics.c - the counters as Prometheus text (every metric of the
 * README's table with its HELP and TYPE, values from the struct), the rcode
 * mapping, the growable text buffer, and the HTTP endpoint over loopback:
 * /metrics, /health, 404, 405, the idle-client timeout and the client cap.
 * Every loop run is bounded by a stop timer; clients are non-blocking.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "metrics.h"
#include "sock.h"
#include "unit.h"

/* ---- parsing the Prometheus text ---- */

#define MAX_FAMILIES	64
#define MAX_SERIES	128

struct family {
	char name[96];
	char type[16];
	bool help;
};

struct series {
	char key[160];		/* name{labels} */
	char value[32];
};

struct page {
	struct family fam[MAX_FAMILIES];
	int nfam;
	struct series ser[MAX_SERIES];
	int nser;
};

static struct family *family_of(struct page *p, const char *name, size_t len)
{
	for (int i = 0; i < p->nfam; i++)
		if (strlen(p->fam[i].name) == len && !strncmp(p->fam[i].name, name, len))
			return &p->fam[i];
	return NULL;
}

/*
 * Parse @text: every sample's family must have had its HELP and TYPE lines
 * before it, each only once, and no series may repeat.
 */
static void parse_page(const char *text, struct page *p)
{
	const char *line = text;

	memset(p, 0, sizeof(*p));
	ck_assert_msg(*text && text[strlen(text) - 1] == '\n', "page does not end in a newline");
	while (*line) {
		const char *eol = strchr(line, '\n');
		size_t len = (size_t)(eol - line);

		ck_assert_ptr_nonnull(eol);
		ck_assert_msg(len > 0, "empty line in the page");
		if (!strncmp(line, "# HELP ", 7) || !strncmp(line, "# TYPE ", 7)) {
			const char *name = line + 7, *sp = memchr(name, ' ', (size_t)(eol - name));
			struct family *f;

			ck_assert_msg(sp && sp + 1 < eol, "bad comment line: %.*s", (int)len, line);
			f = family_of(p, name, (size_t)(sp - name));
			if (!f) {
				ck_assert_int_lt(p->nfam, MAX_FAMILIES);
				f = &p->fam[p->nfam++];
				ck_assert_uint_lt((size_t)(sp - name), sizeof(f->name));
				memcpy(f->name, name, (size_t)(sp - name));
			}
			if (line[2] == 'H') {
				ck_assert_msg(!f->help, "two HELP lines for %s", f->name);
				f->help = true;
			} else {
				ck_assert_msg(!f->type[0], "two TYPE lines for %s", f->name);
				ck_assert_msg(f->help, "TYPE before HELP for %s", f->name);
				ck_assert_uint_lt((size_t)(eol - sp - 1), sizeof(f->type));
				memcpy(f->type, sp + 1, (size_t)(eol - sp - 1));
			}
		} else {
			const char *sp = line + len;
			size_t nlen = strcspn(line, "{ ");
			struct family *f = family_of(p, line, nlen);
			struct series *s;

			while (sp > line && sp[-1] != ' ')
				sp--;
			ck_assert_msg(sp > line + 1, "sample without a value: %.*s", (int)len, line);
			ck_assert_msg(f && f->help && f->type[0], "sample before its HELP and TYPE: %.*s", (int)len, line);
			for (int i = 0; i < p->nser; i++)
				ck_assert_msg(strlen(p->ser[i].key) != (size_t)(sp - 1 - line) ||
					      strncmp(p->ser[i].key, line, (size_t)(sp - 1 - line)),
					      "series twice: %.*s", (int)len, line);
			ck_assert_int_lt(p->nser, MAX_SERIES);
			s = &p->ser[p->nser++];
			ck_assert_uint_lt((size_t)(sp - 1 - line), sizeof(s->key));
			ck_assert_uint_lt((size_t)(eol - sp), sizeof(s->value));
			memcpy(s->key, line, (size_t)(sp - 1 - line));
			memcpy(s->value, sp, (size_t)(eol - sp));
		}
		line = eol + 1;
	}
}

static const struct series *series_of(const struct page *p, const char *key)
{
	for (int i = 0; i < p->nser; i++)
		if (!strcmp(p->ser[i].key, key))
			return &p->ser[i];
	return NULL;
}

/* The series @key exists, with value @v, in a family of type @type. */
static void expect(struct page *p, const char *key, const char *type, unsigned long long v)
{
	const struct series *s = series_of(p, key);
	struct family *f = family_of(p, key, strcspn(key, "{"));
	char want[32];

	ck_assert_msg(s != NULL, "no series %s", key);
	ck_assert_msg(f != NULL, "no family for %s", key);
	ck_assert_str_eq(f->type, type);
	snprintf(want, sizeof(want), "%llu", v);
	ck_assert_msg(!strcmp(s->value, want), "%s is %s, want %s", key, s->value, want);
}

static char *render(const struct metrics *m)
{
	struct strbuf sb = { 0 };

	metrics_render(m, &sb);
	ck_assert_int_eq(sb.err, 0);
	ck_assert_ptr_nonnull(sb.buf);
	ck_assert_uint_eq(strlen(sb.buf), sb.len);
	return sb.buf;
}

/* Every field a distinct number; some past 32 bits. */
static void distinct(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
	m->queries[MT_UDP] = 101;
	m->queries[MT_TCP] = 102;
	m->answers[MR_NOERROR] = 201;
	m->answers[MR_SERVFAIL] = 202;
	m->answers[MR_FORMERR] = 203;
	m->answers[MR_REFUSED] = 204;
	m->answers[MR_NXDOMAIN] = 205;
	m->answers[MR_OTHER] = 206;
	m->malformed = 301;
	m->truncated = 302;
	m->handshakes = 303;
	m->resumed = 304;
	m->tls_failures = 305;
	m->upstream_queries = 12345678901234ULL;
	m->upstream_bad_answers = 307;
	m->timeouts = 308;
	m->refused_inflight = 309;
	m->refused_tcp = 310;
	m->send_errors = 18446744073709551615ULL;
	m->inflight = 312;
	m->hedged = 313;
	m->cache_hits = 314;
	m->cache_misses = 315;
	m->stale_answers = 316;
	m->prefetches = 317;
	m->deduplicated = 318;
	m->ratelimited = 319;
}

START_TEST(render_has_every_metric_with_its_value)
{
	struct metrics m;
	struct page *p = calloc(1, sizeof(*p));
	char *text;
	int refused = 0;

	ck_assert_ptr_nonnull(p);
	distinct(&m);
	text = render(&m);
	parse_page(text, p);
	/* the README's table */
	expect(p, "dotproxy_queries_total{transport=\"udp\"}", "counter", 101);
	expect(p, "dotproxy_queries_total{transport=\"tcp\"}", "counter", 102);
	expect(p, "dotproxy_answers_total{rcode=\"NOERROR\"}", "counter", 201);
	expect(p, "dotproxy_answers_total{rcode=\"SERVFAIL\"}", "counter", 202);
	expect(p, "dotproxy_answers_total{rcode=\"FORMERR\"}", "counter", 203);
	expect(p, "dotproxy_answers_total{rcode=\"REFUSED\"}", "counter", 204);
	expect(p, "dotproxy_answers_total{rcode=\"NXDOMAIN\"}", "counter", 205);
	expect(p, "dotproxy_answers_total{rcode=\"other\"}", "counter", 206);
	expect(p, "dotproxy_malformed_total", "counter", 301);
	expect(p, "dotproxy_truncated_total", "counter", 302);
	expect(p, "dotproxy_tls_handshakes_total", "counter", 303);
	expect(p, "dotproxy_tls_resumed_total", "counter", 304);
	expect(p, "dotproxy_tls_failures_total", "counter", 305);
	expect(p, "dotproxy_upstream_queries_total", "counter", 12345678901234ULL);
	expect(p, "dotproxy_upstream_bad_answers_total", "counter", 307);
	expect(p, "dotproxy_timeouts_total", "counter", 308);
	expect(p, "dotproxy_send_errors_total", "counter", 18446744073709551615ULL);
	expect(p, "dotproxy_inflight", "gauge", 312);
	expect(p, "dotproxy_hedged_total", "counter", 313);
	expect(p, "dotproxy_cache_hits_total", "counter", 314);
	expect(p, "dotproxy_cache_misses_total", "counter", 315);
	expect(p, "dotproxy_stale_answers_total", "counter", 316);
	expect(p, "dotproxy_prefetches_total", "counter", 317);
	expect(p, "dotproxy_deduplicated_total", "counter", 318);
	expect(p, "dotproxy_ratelimited_total", "counter", 319);
	/* refused{reason}: one series per cap, whatever the label spells */
	for (int i = 0; i < p->nser; i++) {
		const char *k = p->ser[i].key;

		if (strncmp(k, "dotproxy_refused_total{reason=\"", 31))
			continue;
		refused++;
		if (strstr(k, "inflight"))
			ck_assert_str_eq(p->ser[i].value, "309");
		else if (strstr(k, "tcp"))
			ck_assert_str_eq(p->ser[i].value, "310");
		else
			ck_abort_msg("unknown refusal reason: %s", k);
	}
	ck_assert_int_eq(refused, 2);
	ck_assert_str_eq(family_of(p, "dotproxy_refused_total", 22)->type, "counter");
	/* nothing else but the build info: 25 series above, 2 refused, 1 build_info */
	ck_assert_int_eq(p->nser, 25 + 2 + 1);
	ck_assert_ptr_nonnull(family_of(p, "dotproxy_build_info", 19));
	free(text);
	free(p);
}
END_TEST

START_TEST(render_of_zero_counters_says_zero)
{
	struct metrics m;
	struct page *p = calloc(1, sizeof(*p));
	char *text;

	ck_assert_ptr_nonnull(p);
	memset(&m, 0, sizeof(m));
	text = render(&m);
	parse_page(text, p);
	for (int i = 0; i < p->nser; i++)
		if (strncmp(p->ser[i].key, "dotproxy_build_info", 19))
			ck_assert_msg(!strcmp(p->ser[i].value, "0"), "%s is %s", p->ser[i].key, p->ser[i].value);
	free(text);
	free(p);
}
END_TEST

START_TEST(rcodes_are_counted_under_their_names)
{
	struct metrics m;
	struct page *p = calloc(1, sizeof(*p));
	/* rcode -> times counted: 0..5 by RFC 1035 4.1.1, then extended and bogus ones */
	static const int rcodes[][2] = { { 0, 1 }, { 1, 2 }, { 2, 3 }, { 3, 4 }, { 4, 5 }, { 5, 6 },
					 { 9, 7 }, { 15, 8 }, { -1, 9 }, { 23, 10 } };
	char *text;

	ck_assert_ptr_nonnull(p);
	memset(&m, 0, sizeof(m));
	for (size_t i = 0; i < sizeof(rcodes) / sizeof(rcodes[0]); i++)
		for (int n = 0; n < rcodes[i][1]; n++)
			metrics_count_rcode(&m, rcodes[i][0]);
	ck_assert_uint_eq(m.answers[MR_NOERROR], 1);
	ck_assert_uint_eq(m.answers[MR_FORMERR], 2);
	ck_assert_uint_eq(m.answers[MR_SERVFAIL], 3);
	ck_assert_uint_eq(m.answers[MR_NXDOMAIN], 4);
	ck_assert_uint_eq(m.answers[MR_REFUSED], 6);
	ck_assert_uint_eq(m.answers[MR_OTHER], 5 + 7 + 8 + 9 + 10);	/* NOTIMP and the rest */
	/* and the page names them by what they mean */
	text = render(&m);
	parse_page(text, p);
	expect(p, "dotproxy_answers_total{rcode=\"NOERROR\"}", "counter", 1);
	expect(p, "dotproxy_answers_total{rcode=\"FORMERR\"}", "counter", 2);
	expect(p, "dotproxy_answers_total{rcode=\"SERVFAIL\"}", "counter", 3);
	expect(p, "dotproxy_answers_total{rcode=\"NXDOMAIN\"}", "counter", 4);
	expect(p, "dotproxy_answers_total{rcode=\"REFUSED\"}", "counter", 6);
	expect(p, "dotproxy_answers_total{rcode=\"other\"}", "counter", 39);
	free(text);
	free(p);
}
END_TEST

START_TEST(strbuf_grows_past_its_first_block)
{
	struct strbuf sb = { 0 };
	char want[32];

	for (int i = 0; i < 1000; i++)
		strbuf_printf(&sb, "line %04d\n", i);	/* 10 bytes each: 10000 in all */
	ck_assert_int_eq(sb.err, 0);
	ck_assert_uint_eq(sb.len, 10000);
	ck_assert_uint_gt(sb.cap, sb.len);
	ck_assert_int_eq(sb.buf[sb.len], '\0');
	for (int i = 0; i < 1000; i++) {
		snprintf(want, sizeof(want), "line %04d\n", i);
		ck_assert_mem_eq(sb.buf + 10 * i, want, 10);
	}
	free(sb.buf);
}
END_TEST

START_TEST(strbuf_takes_one_piece_larger_than_a_doubling)
{
	struct strbuf sb = { 0 };
	char *big = malloc(20001);

	ck_assert_ptr_nonnull(big);
	for (int i = 0; i < 20000; i++)
		big[i] = (char)('a' + i % 26);
	big[20000] = '\0';
	strbuf_printf(&sb, "%s", "");			/* empty: still a valid string */
	ck_assert_int_eq(sb.err, 0);
	ck_assert_uint_eq(sb.len, 0);
	ck_assert_ptr_nonnull(sb.buf);
	ck_assert_int_eq(sb.buf[0], '\0');
	strbuf_printf(&sb, "<%d>", 42);
	strbuf_printf(&sb, "%s|%s", big, big);		/* 40001 bytes at once: past 4096 * 2 * 2 */
	ck_assert_int_eq(sb.err, 0);
	ck_assert_uint_eq(sb.len, 4 + 40001);
	ck_assert_mem_eq(sb.buf, "<42>", 4);
	ck_assert_mem_eq(sb.buf + 4, big, 20000);
	ck_assert_int_eq(sb.buf[4 + 20000], '|');
	ck_assert_mem_eq(sb.buf + 4 + 20001, big, 20000);
	ck_assert_int_eq(sb.buf[sb.len], '\0');
	free(sb.buf);
	free(big);
}
END_TEST

/* ---- the HTTP endpoint ---- */

static struct loop *lp;
static struct metrics_http *http;

/* What the page callback renders, and what it rendered last. */
static struct {
	struct metrics m;
	int healthy;
	size_t filler;		/* extra bytes, to make the page large */
	int calls;
	char *last;
	size_t last_len;
} pg;

static int page_cb(void *arg, struct strbuf *sb)
{
	size_t start = sb->len;

	ck_assert_ptr_eq(arg, &pg);
	pg.calls++;
	metrics_render(&pg.m, sb);
	strbuf_printf(sb, "# page %d\n", pg.calls);
	for (size_t i = 0; i < pg.filler / 64; i++)
		strbuf_printf(sb, "# filler %054zu\n", i);
	ck_assert_int_eq(sb->err, 0);
	free(pg.last);
	pg.last_len = sb->len - start;
	pg.last = malloc(pg.last_len + 1);
	ck_assert_ptr_nonnull(pg.last);
	memcpy(pg.last, sb->buf + start, pg.last_len);
	return pg.healthy;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_stop(struct loop *l, void *arg)
{
	(void)arg;
	loop_stop(l);
}

/* Run the loop for @ms. */
static void run_for(unsigned ms)
{
	struct loop_timer t;

	loop_timer_init(&t, on_stop, NULL);
	ck_assert_int_eq(loop_timer_set(lp, &t, ms), 0);
	ck_assert_int_eq(loop_run(lp), 0);
	loop_timer_cancel(lp, &t);
}

static union sockaddr_any http_addr;

/* A free loopback port: bind port 0, read it, close. */
static uint16_t free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static void setup(void)
{
	memset(&pg, 0, sizeof(pg));
	pg.healthy = 1;
	distinct(&pg.m);
	lp = loop_new();
	ck_assert_ptr_nonnull(lp);
	/* another process may take the port between close and bind: try a few */
	for (int i = 0; i < 5 && !http; i++) {
		memset(&http_addr, 0, sizeof(http_addr));
		http_addr.sin.sin_family = AF_INET;
		http_addr.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		http_addr.sin.sin_port = htons(free_port());
		http = metrics_http_start(lp, &http_addr, page_cb, &pg);
		ck_assert_msg(http || errno == EADDRINUSE, "metrics_http_start: %s", strerror(errno));
	}
	ck_assert_ptr_nonnull(http);
}

static void teardown(void)
{
	metrics_http_stop(lp, http);
	http = NULL;
	loop_free(lp);
	free(pg.last);
	pg.last = NULL;
}

/* A non-blocking client, connected. */
static int client(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), err = 0;
	socklen_t el = sizeof(err);
	struct pollfd pfd;

	ck_assert_int_ge(fd, 0);
	if (connect(fd, &http_addr.sa, sock_len(&http_addr)) < 0) {
		ck_assert_int_eq(errno, EINPROGRESS);
		pfd.fd = fd;
		pfd.events = POLLOUT;
		ck_assert_int_eq(poll(&pfd, 1, 1000), 1);
		ck_assert_int_eq(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el), 0);
		ck_assert_int_eq(err, 0);
	}
	return fd;
}

static void send_str(int fd, const char *s)
{
	ck_assert_int_eq(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

struct response {
	char *buf;
	size_t len;
	bool eof;		/* the server closed */
	int status;
	const char *body;
	size_t body_len;
	long content_length;	/* -1: none */
};

/* Read what is there without blocking; note EOF. */
static void drain(int fd, struct response *r)
{
	for (;;) {
		char tmp[65536];
		ssize_t n = recv(fd, tmp, sizeof(tmp), MSG_DONTWAIT);

		if (n > 0) {
			char *nb = realloc(r->buf, r->len + (size_t)n + 1);

			ck_assert_ptr_nonnull(nb);
			r->buf = nb;
			memcpy(r->buf + r->len, tmp, (size_t)n);
			r->len += (size_t)n;
			r->buf[r->len] = '\0';
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			r->eof = true;
		return;
	}
}

/* Run the loop in slices, reading @fd, until the server closes it or @max_ms pass. */
static void exchange(int fd, struct response *r, unsigned max_ms)
{
	uint64_t end = now_ms() + max_ms;

	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	while (!r->eof && now_ms() < end) {
		run_for(2);
		drain(fd, r);
	}
}

/* Split @r into status, Content-Length and body. */
static void parse_response(struct response *r)
{
	const char *hdr_end, *cl;

	ck_assert_msg(r->eof, "the server did not close the connection");
	ck_assert_ptr_nonnull(r->buf);
	ck_assert_msg(!strncmp(r->buf, "HTTP/1.", 7) && r->buf[8] == ' ', "bad status line: %.40s", r->buf);
	r->status = atoi(r->buf + 9);
	hdr_end = strstr(r->buf, "\r\n\r\n");
	ck_assert_ptr_nonnull(hdr_end);
	r->body = hdr_end + 4;
	r->body_len = r->len - (size_t)(r->body - r->buf);
	cl = strstr(r->buf, "\r\nContent-Length: ");
	if (cl && cl < hdr_end)
		r->content_length = atol(cl + 18);
}

/* One request on a new connection; the parsed response. */
static void request(const char *req, struct response *r)
{
	int fd = client();

	send_str(fd, req);
	exchange(fd, r, 2000);
	close(fd);
	parse_response(r);
}

static void free_response(struct response *r)
{
	free(r->buf);
	r->buf = NULL;
}

START_TEST(get_metrics_serves_the_page)
{
	struct response r;

	request("GET /metrics HTTP/1.0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_int_eq(pg.calls, 1);
	ck_assert_ptr_nonnull(strstr(r.buf, "\r\nContent-Type: text/plain; version=0.0.4"));
	ck_assert_int_eq(r.content_length, (long)r.body_len);
	ck_assert_uint_eq(r.body_len, pg.last_len);
	ck_assert_mem_eq(r.body, pg.last, pg.last_len);
	/* and it is the page of our counters */
	ck_assert_ptr_nonnull(strstr(r.body, "\ndotproxy_upstream_queries_total 12345678901234\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "\n# page 1\n"));
	free_response(&r);
}
END_TEST

START_TEST(large_page_arrives_whole)
{
	struct response r;
	int fd = client();

	/* more than the send buffer TCP sizes for a loopback connection (~2 MiB): many send() calls */
	pg.filler = 8 << 20;
	send_str(fd, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
	exchange(fd, &r, 2000);
	close(fd);
	parse_response(&r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_gt(pg.last_len, (size_t)(8 << 20) - 64);
	ck_assert_int_eq(r.content_length, (long)r.body_len);
	ck_assert_uint_eq(r.body_len, pg.last_len);
	ck_assert_mem_eq(r.body, pg.last, pg.last_len);
	free_response(&r);
}
END_TEST

START_TEST(request_in_pieces_is_served)
{
	struct response r;
	int fd = client();

	send_str(fd, "GET /met");
	run_for(30);
	send_str(fd, "rics?x=1 HTTP/1.0\r\n\r\n");
	exchange(fd, &r, 2000);
	close(fd);
	parse_response(&r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, pg.last_len);
	ck_assert_mem_eq(r.body, pg.last, pg.last_len);
	free_response(&r);
}
END_TEST

START_TEST(head_gives_the_length_without_the_body)
{
	struct response r;

	request("HEAD /metrics HTTP/1.0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, 0);
	ck_assert_int_eq(r.content_length, (long)pg.last_len);
	free_response(&r);
}
END_TEST

START_TEST(health_follows_the_callback)
{
	struct response r;

	pg.healthy = 1;
	request("GET /health HTTP/1.0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(r.body_len >= 2 && r.body_len <= 3 && !strncmp(r.body, "ok", 2), "body: %s", r.body);
	ck_assert_int_eq(r.content_length, (long)r.body_len);
	ck_assert_int_eq(pg.calls, 1);
	free_response(&r);
	pg.healthy = 0;
	request("GET /health HTTP/1.0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 503);
	ck_assert_int_eq(r.content_length, (long)r.body_len);
	ck_assert_ptr_null(strstr(r.body, "dotproxy_"));	/* not the metrics page */
	ck_assert_int_eq(pg.calls, 2);
	free_response(&r);
}
END_TEST

START_TEST(unknown_path_is_404_and_other_methods_405)
{
	struct response r;

	request("GET /nope HTTP/1.0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 404);
	ck_assert_int_eq(r.content_length, (long)r.body_len);
	free_response(&r);
	request("GET /metricsx HTTP/1.0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 404);
	free_response(&r);
	request("POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 405);
	ck_assert_int_eq(r.content_length, (long)r.body_len);
	free_response(&r);
	ck_assert_int_eq(pg.calls, 0);		/* none of these rendered the page */
}
END_TEST

START_TEST(silent_client_is_closed_after_two_seconds)
{
	struct response r = { 0 };
	int fd = client();
	uint64_t t0 = now_ms(), closed_at = 0;

	/* still open well before the timeout */
	while (now_ms() - t0 < 1500) {
		run_for(50);
		drain(fd, &r);
		ck_assert_msg(!r.eof, "closed after %llu ms", (unsigned long long)(now_ms() - t0));
	}
	while (!r.eof && now_ms() - t0 < 3000) {
		run_for(20);
		drain(fd, &r);
	}
	closed_at = now_ms() - t0;
	ck_assert_msg(r.eof, "still open after %llu ms", (unsigned long long)closed_at);
	ck_assert_uint_ge(closed_at, 1900);
	ck_assert_uint_le(closed_at, 2600);
	ck_assert_uint_eq(r.len, 0);		/* closed, nothing said */
	ck_assert_int_eq(pg.calls, 0);
	close(fd);
}
END_TEST

START_TEST(clients_past_the_cap_are_closed_and_served_later)
{
	int idle[8], extra[4];
	struct response r;

	for (int i = 0; i < 8; i++)
		idle[i] = client();
	run_for(50);			/* all 8 accepted, none has asked anything */
	for (int i = 0; i < 4; i++) {
		extra[i] = client();
		send_str(extra[i], "GET /metrics HTTP/1.0\r\n\r\n");
	}
	for (int i = 0; i < 4; i++) {
		exchange(extra[i], &r, 1000);
		ck_assert_msg(r.eof, "client %d past the cap was left open", i);
		ck_assert_uint_eq(r.len, 0);
		free(r.buf);
		close(extra[i]);
	}
	ck_assert_int_eq(pg.calls, 0);
	/* the 8 go away: their places are free again */
	for (int i = 0; i < 8; i++)
		close(idle[i]);
	run_for(50);
	request("GET /metrics HTTP/1.0\r\n\r\n", &r);
	ck_assert_int_eq(r.status, 200);
	ck_assert_uint_eq(r.body_len, pg.last_len);
	free_response(&r);
}
END_TEST

START_TEST(twelve_requests_at_once_eight_served_four_closed)
{
	int fd[12], served = 0, closed = 0;
	struct response r[12];
	uint64_t end;
	bool done = false;

	for (int i = 0; i < 12; i++) {
		fd[i] = client();
		send_str(fd[i], "GET /metrics HTTP/1.0\r\n\r\n");
		memset(&r[i], 0, sizeof(r[i]));
	}
	end = now_ms() + 2000;
	while (!done && now_ms() < end) {
		run_for(10);
		done = true;
		for (int i = 0; i < 12; i++) {
			drain(fd[i], &r[i]);
			done = done && r[i].eof;
		}
	}
	for (int i = 0; i < 12; i++) {
		ck_assert_msg(r[i].eof, "client %d left open", i);
		if (r[i].len == 0) {
			closed++;
		} else {
			r[i].content_length = -1;
			parse_response(&r[i]);
			ck_assert_int_eq(r[i].status, 200);
			ck_assert_int_eq(r[i].content_length, (long)r[i].body_len);
			served++;
		}
		free(r[i].buf);
		close(fd[i]);
	}
	ck_assert_int_eq(served, 8);
	ck_assert_int_eq(closed, 4);
	ck_assert_int_eq(pg.calls, 8);
}
END_TEST

START_TEST(stop_closes_clients_in_progress)
{
	struct response r = { 0 };
	int fd = client();

	run_for(30);
	metrics_http_stop(lp, http);
	http = NULL;
	drain(fd, &r);
	for (int i = 0; i < 50 && !r.eof; i++) {
		usleep(2000);
		drain(fd, &r);
	}
	ck_assert(r.eof);
	ck_assert_uint_eq(r.len, 0);
	close(fd);
	/* and the port is free again */
	http = metrics_http_start(lp, &http_addr, page_cb, &pg);
	ck_assert_msg(http != NULL, "restart: %s", strerror(errno));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *text = tcase_create("text");
	TCase *web = tcase_create("http");

	tcase_add_test(text, render_has_every_metric_with_its_value);
	tcase_add_test(text, render_of_zero_counters_says_zero);
	tcase_add_test(text, rcodes_are_counted_under_their_names);
	tcase_add_test(text, strbuf_grows_past_its_first_block);
	tcase_add_test(text, strbuf_takes_one_piece_larger_than_a_doubling);
	suite_add_tcase(s, text);
	tcase_add_checked_fixture(web, setup, teardown);
	tcase_set_timeout(web, 10);
	tcase_add_test(web, get_metrics_serves_the_page);
	tcase_add_test(web, large_page_arrives_whole);
	tcase_add_test(web, request_in_pieces_is_served);
	tcase_add_test(web, head_gives_the_length_without_the_body);
	tcase_add_test(web, health_follows_the_callback);
	tcase_add_test(web, unknown_path_is_404_and_other_methods_405);
	tcase_add_test(web, silent_client_is_closed_after_two_seconds);
	tcase_add_test(web, clients_past_the_cap_are_closed_and_served_later);
	tcase_add_test(web, twelve_requests_at_once_eight_served_four_closed);
	tcase_add_test(web, stop_closes_clients_in_progress);
	suite_add_tcase(s, web);
	return unit_run(s);
}

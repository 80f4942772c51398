/*
 * metrics.c - counters rendered as Prometheus text, and a small non-blocking
 * HTTP/1.0 endpoint: GET /metrics and GET /health, one request per connection.
 */
#define _GNU_SOURCE
#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "version.h"

#define HTTP_CLIENTS	8
#define HTTP_REQ_MAX	2048
#define HTTP_TIMEOUT_MS	2000

void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
	for (;;) {
		size_t room = sb->cap - sb->len;
		va_list ap;
		int n;

		if (sb->err)
			return;
		va_start(ap, fmt);
		n = vsnprintf(sb->buf ? sb->buf + sb->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			sb->err = -EINVAL;
			return;
		}
		if ((size_t)n < room) {
			sb->len += (size_t)n;
			return;
		}
		{
			size_t cap = sb->cap ? sb->cap * 2 : 4096;
			char *nb;

			while (cap - sb->len <= (size_t)n)
				cap *= 2;
			nb = realloc(sb->buf, cap);
			if (!nb) {
				sb->err = -ENOMEM;
				return;
			}
			sb->buf = nb;
			sb->cap = cap;
		}
	}
}

const unsigned metrics_lat_bounds_ms[METRICS_LAT_BUCKETS] = {
	1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000,
};

void metrics_count_rcode(struct metrics *m, int rcode)
{
	m->answers[metrics_rcode(rcode)]++;
}

void metrics_counter(struct strbuf *sb, const char *name, const char *help, uint64_t v)
{
	strbuf_printf(sb, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
		      (unsigned long long)v);
}

void metrics_histogram_head(struct strbuf *sb, const char *name, const char *help)
{
	strbuf_printf(sb, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
}

void metrics_histogram(struct strbuf *sb, const char *name, const char *labels,
		       const struct metrics_hist *h)
{
	uint64_t cum = 0;

	for (int i = 0; i < METRICS_LAT_BUCKETS; i++) {
		cum += h->n[i];
		strbuf_printf(sb, "%s_bucket{%s,le=\"%u.%03u\"} %llu\n", name, labels,
			      metrics_lat_bounds_ms[i] / 1000, metrics_lat_bounds_ms[i] % 1000,
			      (unsigned long long)cum);
	}
	cum += h->n[METRICS_LAT_BUCKETS];
	strbuf_printf(sb, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
	strbuf_printf(sb, "%s_sum{%s} %llu.%03u\n", name, labels, (unsigned long long)(h->sum_ms / 1000),
		      (unsigned)(h->sum_ms % 1000));
	strbuf_printf(sb, "%s_count{%s} %llu\n", name, labels, (unsigned long long)cum);
}

static const char *const frontends[MF_COUNT] = { "tproxy", "redirect", "nfqueue" };
static const char *const transports[MT_COUNT] = { "udp", "tcp" };
static const char *const families[MFAM_COUNT] = { "ipv4", "ipv6" };
static const char *const rcodes[MR_COUNT] = { "NOERROR", "SERVFAIL", "FORMERR", "REFUSED",
					       "NXDOMAIN", "other" };

/* dotproxy_queries_total and dotproxy_answers_total, a series per path the daemon runs. */
static void render_paths(const struct metrics *m, struct strbuf *sb)
{
	strbuf_printf(sb, "# HELP dotproxy_queries_total Queries received from clients, by front-end, "
			  "transport and the client's address family.\n"
			  "# TYPE dotproxy_queries_total counter\n");
	for (int f = 0; f < MF_COUNT; f++)
		for (int t = 0; t < MT_COUNT; t++)
			for (int a = 0; m->path[f][t].used && a < MFAM_COUNT; a++)
				strbuf_printf(sb, "dotproxy_queries_total{frontend=\"%s\",transport=\"%s\","
						  "family=\"%s\"} %llu\n", frontends[f], transports[t], families[a],
					      (unsigned long long)m->path[f][t].queries[a]);
	strbuf_printf(sb, "# HELP dotproxy_answers_total Answers sent to clients, by front-end, transport, "
			  "the client's address family and rcode.\n"
			  "# TYPE dotproxy_answers_total counter\n");
	for (int f = 0; f < MF_COUNT; f++)
		for (int t = 0; t < MT_COUNT; t++)
			for (int a = 0; m->path[f][t].used && a < MFAM_COUNT; a++)
				for (int r = 0; r < MR_COUNT; r++)
					strbuf_printf(sb, "dotproxy_answers_total{frontend=\"%s\",transport=\"%s\","
							  "family=\"%s\",rcode=\"%s\"} %llu\n", frontends[f],
						      transports[t], families[a], rcodes[r],
						      (unsigned long long)m->path[f][t].answers[a][r]);
}

void metrics_render(const struct metrics *m, struct strbuf *sb)
{
	strbuf_printf(sb, "# HELP dotproxy_build_info Version of the running daemon.\n"
			  "# TYPE dotproxy_build_info gauge\ndotproxy_build_info{version=\"%s\"} 1\n",
		      DOTPROXY_VERSION);
	render_paths(m, sb);
	metrics_counter(sb, "dotproxy_malformed_total", "Client packets dropped or answered FORMERR/NOTIMP.", m->malformed);
	metrics_counter(sb, "dotproxy_truncated_total", "UDP answers sent truncated (TC) so the client retries over TCP.", m->truncated);
	metrics_counter(sb, "dotproxy_tls_failures_total", "Upstream connect, TLS handshake or certificate failures "
			"(per upstream: dotproxy_upstream_failures_total).", m->tls_failures);
	metrics_counter(sb, "dotproxy_upstream_bad_answers_total", "Upstream answers dropped: unknown ID or a different question.", m->upstream_bad_answers);
	metrics_counter(sb, "dotproxy_timeouts_total", "Queries answered SERVFAIL at their deadline.", m->timeouts);
	metrics_counter(sb, "dotproxy_no_upstream_total",
			"Queries failed at once because no upstream was usable (all down): answered SERVFAIL, "
			"or stale with --serve-stale.", m->no_upstream);
	metrics_counter(sb, "dotproxy_tries_exhausted_total",
			"Queries failed when their last allowed send was lost with its connection: answered SERVFAIL, "
			"or stale with --serve-stale.", m->tries_exhausted);
	metrics_counter(sb, "dotproxy_hedged_total", "Queries re-sent elsewhere because their connection went silent.", m->hedged);
	metrics_counter(sb, "dotproxy_cache_hits_total", "Queries answered from the cache.", m->cache_hits);
	metrics_counter(sb, "dotproxy_cache_misses_total", "Cacheable queries not found in the cache.", m->cache_misses);
	metrics_counter(sb, "dotproxy_stale_answers_total", "Expired answers served because no upstream answered (RFC 8767).", m->stale_answers);
	metrics_counter(sb, "dotproxy_prefetches_total", "Popular cache entries refreshed before they expired.", m->prefetches);
	metrics_counter(sb, "dotproxy_deduplicated_total", "Queries answered with the upstream answer of the same question already in flight.", m->deduplicated);
	metrics_counter(sb, "dotproxy_ratelimited_total", "Queries refused by --ratelimit.", m->ratelimited);
	strbuf_printf(sb, "# HELP dotproxy_refused_total Queries or clients refused at a cap.\n"
			  "# TYPE dotproxy_refused_total counter\n"
			  "dotproxy_refused_total{reason=\"inflight\"} %llu\n"
			  "dotproxy_refused_total{reason=\"tcp_clients\"} %llu\n",
		      (unsigned long long)m->refused_inflight, (unsigned long long)m->refused_tcp);
	metrics_counter(sb, "dotproxy_send_errors_total", "Answers that could not be sent to the client.", m->send_errors);
	strbuf_printf(sb, "# HELP dotproxy_inflight Queries waiting for an upstream answer.\n"
			  "# TYPE dotproxy_inflight gauge\ndotproxy_inflight %llu\n",
		      (unsigned long long)m->inflight);
}

/* ---- HTTP ---- */

struct http_client {
	struct metrics_http *h;
	struct loop_io io;
	struct loop_timer timer;
	bool used;
	char req[HTTP_REQ_MAX];
	size_t rlen;
	struct strbuf out;
	size_t woff;
};

struct metrics_http {
	struct loop *loop;
	struct loop_io io;
	metrics_page_cb page;
	void *arg;
	struct http_client clients[HTTP_CLIENTS];
};

static void http_close(struct http_client *c)
{
	int fd = c->io.fd;

	loop_io_del(c->h->loop, &c->io);
	close(fd);
	loop_timer_cancel(c->h->loop, &c->timer);
	free(c->out.buf);
	memset(&c->out, 0, sizeof(c->out));
	c->used = false;
}

static void http_respond(struct http_client *c)
{
	struct strbuf body = { 0 };
	const char *status = "200 OK";
	const char *ctype = "text/plain; version=0.0.4; charset=utf-8";
	bool head = strncmp(c->req, "HEAD ", 5) == 0;
	int healthy;

	if (strncmp(c->req, "GET ", 4) != 0 && !head) {
		status = "405 Method Not Allowed";
		strbuf_printf(&body, "method not allowed\n");
	} else if (!strncmp(c->req + (head ? 5 : 4), "/metrics ", 9) || !strncmp(c->req + (head ? 5 : 4), "/metrics?", 9)) {
		c->h->page(c->h->arg, &body);
	} else if (!strncmp(c->req + (head ? 5 : 4), "/health ", 8)) {
		struct strbuf scratch = { 0 };

		healthy = c->h->page(c->h->arg, &scratch);
		free(scratch.buf);
		if (healthy) {
			strbuf_printf(&body, "ok\n");
		} else {
			status = "503 Service Unavailable";
			strbuf_printf(&body, "no upstream usable\n");
		}
	} else {
		status = "404 Not Found";
		strbuf_printf(&body, "not found: try /metrics or /health\n");
	}
	strbuf_printf(&c->out, "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		      status, ctype, body.len);
	if (!head && body.len)
		strbuf_printf(&c->out, "%.*s", (int)body.len, body.buf);
	free(body.buf);
	if (c->out.err) {
		http_close(c);
		return;
	}
	loop_io_set(c->h->loop, &c->io, EPOLLOUT);
}

static void http_io(struct loop *l, int fd, void *arg, uint32_t events)
{
	struct http_client *c = arg;

	(void)l;
	if (c->out.len) {
		ssize_t n = send(fd, c->out.buf + c->woff, c->out.len - c->woff, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n > 0)
			c->woff += (size_t)n;
		if (n <= 0 || c->woff == c->out.len)
			http_close(c);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		ssize_t n = recv(fd, c->req + c->rlen, sizeof(c->req) - 1 - c->rlen, MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			http_close(c);
			return;
		}
		c->rlen += (size_t)n;
		c->req[c->rlen] = '\0';
		/* the request line is all we need */
		if (strstr(c->req, "\r\n") || strchr(c->req, '\n') || c->rlen == sizeof(c->req) - 1)
			http_respond(c);
	}
}

static void http_timeout(struct loop *l, void *arg)
{
	(void)l;
	http_close(arg);
}

static void http_accept(struct loop *l, int lfd, void *arg, uint32_t events)
{
	struct metrics_http *h = arg;

	(void)events;
	for (;;) {
		struct http_client *c = NULL;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		for (int i = 0; i < HTTP_CLIENTS; i++)
			if (!h->clients[i].used) {
				c = &h->clients[i];
				break;
			}
		if (!c || loop_io_add(l, &c->io, fd, EPOLLIN, http_io, c) < 0) {
			close(fd);	/* busy: scrapers retry */
			continue;
		}
		c->used = true;
		c->rlen = 0;
		c->woff = 0;
		loop_timer_set(l, &c->timer, HTTP_TIMEOUT_MS);
	}
}

struct metrics_http *metrics_http_start(struct loop *l, const union sockaddr_any *addr,
					metrics_page_cb page, void *arg)
{
	struct metrics_http *h = calloc(1, sizeof(*h));
	int fd, err;

	if (!h)
		return NULL;
	fd = sock_listen(addr, SOCK_STREAM, false);
	if (fd < 0) {
		free(h);
		errno = -fd;
		return NULL;
	}
	h->loop = l;
	h->page = page;
	h->arg = arg;
	for (int i = 0; i < HTTP_CLIENTS; i++) {
		h->clients[i].h = h;
		h->clients[i].io.fd = -1;
		loop_timer_init(&h->clients[i].timer, http_timeout, &h->clients[i]);
	}
	if (loop_io_add(l, &h->io, fd, EPOLLIN, http_accept, h) < 0) {
		err = errno;
		close(fd);
		free(h);
		errno = err;
		return NULL;
	}
	return h;
}

void metrics_http_stop(struct loop *l, struct metrics_http *h)
{
	int fd;

	if (!h)
		return;
	for (int i = 0; i < HTTP_CLIENTS; i++)
		if (h->clients[i].used)
			http_close(&h->clients[i]);
	fd = h->io.fd;
	loop_io_del(l, &h->io);
	close(fd);
	free(h);
}

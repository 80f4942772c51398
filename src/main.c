/*
 * main.c - dotproxy: answers intercepted DNS queries with answers fetched
 * over verified DNS-over-TLS. Parses flags, sets up one worker (loop, query
 * table, upstream pool, front-ends, metrics) and runs it. Every setup error
 * is one line and an exit before the loop starts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "config.h"
#include "listen.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "nfq.h"
#include "notify.h"
#include "query.h"
#include "ratelimit.h"
#include "upstream.h"
#include "version.h"

/* Everything one event loop owns; more workers are more of these. */
struct worker {
	struct loop *loop;
	struct metrics m;
	struct qtable qt;
	struct cache *cache;
	struct ratelimit *rl;
	struct pool *pool;
	struct udp_frontend *udp;
	struct nfq_frontend *nfq;
	struct tcp_frontend *tcp;
	struct metrics_http *http;
	struct loop_io sigio;
};

static int render_page(void *arg, struct strbuf *sb)
{
	struct worker *w = arg;

	metrics_render(&w->m, sb);
	nfq_render(w->nfq, sb);
	return pool_render(w->pool, sb);
}

static void on_signal(struct loop *l, int fd, void *arg, uint32_t events)
{
	struct signalfd_siginfo si;

	(void)arg;
	(void)events;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		log_info("signal %u: stopping", si.ssi_signo);
		loop_stop(l);
	}
}

static int setup_signals(struct worker *w)
{
	sigset_t set;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	return loop_io_add(w->loop, &w->sigio, fd, EPOLLIN, on_signal, w);
}

/*
 * Tell the service manager (Type=notify) that every socket is open and queries
 * are answered from now on, and start the watchdog keep-alives. Around a SIGHUP
 * reload: notify_reloading() before it, notify_ready() after it (notify.h).
 */
static void notify_service_ready(const struct config *cfg, struct loop *l)
{
	char status[128];
	int rc;

	snprintf(status, sizeof(status), "%s mode on port %u, %d upstream%s", config_mode_name(cfg->mode),
		 cfg->port, cfg->nupstreams, cfg->nupstreams == 1 ? "" : "s");
	rc = notify_ready(status);
	if (rc == 0)
		rc = notify_watchdog_start(l);
	if (rc < 0) {
		errno = -rc;
		log_warn("cannot notify the service manager");
	}
}

int main(int argc, char **argv)
{
	static struct config cfg;
	struct worker w;
	char err[512];
	int rc;

	setvbuf(stderr, NULL, _IOLBF, 0);
	rc = config_parse_args(&cfg, argc, argv, err, sizeof(err));
	if (rc == CFG_PARSE_EXIT)
		return 0;
	if (rc < 0) {
		fprintf(stderr, "dotproxy: %s\n", err);
		return 2;
	}
	log_set_level(cfg.verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());	/* backoff jitter only */
	if (notify_init(err, sizeof(err)) < 0)	/* the service manager's socket, while we may */
		fatalx("%s", err);

	memset(&w, 0, sizeof(w));
	w.loop = loop_new();
	if (!w.loop)
		fatal("cannot create the event loop");
	w.pool = pool_new(w.loop, &cfg, &w.qt, &w.m, err, sizeof(err));
	if (!w.pool)
		fatalx("%s", err);
	if (qtable_init(&w.qt, cfg.max_inflight, cfg.timeout_ms, w.loop, w.pool, &w.m) < 0)
		fatalx("out of memory for %u in-flight queries", cfg.max_inflight);
	w.cache = cache_new(cfg.cache_size, cfg.cache_bytes, cfg.serve_stale_s);
	w.rl = cfg.ratelimit ? ratelimit_new(cfg.ratelimit) : NULL;
	if ((cfg.cache_size && !w.cache) || (cfg.ratelimit && !w.rl))
		fatalx("out of memory for the cache or the rate limit");
	qtable_options(&w.qt, w.cache, cfg.serve_stale_s, w.rl);
	/* UDP from the netfilter queue or from sockets; TCP always from sockets */
	if (cfg.mode == MODE_NFQUEUE) {
		w.nfq = nfq_frontend_new(w.loop, &cfg, &w.qt, &w.m, err, sizeof(err));
		if (!w.nfq)
			fatalx("%s", err);
	} else {
		w.udp = udp_frontend_new(w.loop, &cfg, &w.qt, &w.m, err, sizeof(err));
		if (!w.udp)
			fatalx("%s", err);
	}
	w.tcp = tcp_frontend_new(w.loop, &cfg, &w.qt, &w.m, err, sizeof(err));
	if (!w.tcp)
		fatalx("%s", err);
	if (cfg.has_metrics) {
		char a[SOCK_ADDRSTRLEN];

		w.http = metrics_http_start(w.loop, &cfg.metrics, render_page, &w);
		if (!w.http)
			fatal("--metrics %s: cannot listen", sock_ntop(&cfg.metrics, a, sizeof(a)));
	}
	rc = setup_signals(&w);
	if (rc < 0) {
		errno = -rc;
		fatal("cannot set up signal handling");
	}
	if (cfg.mode == MODE_NFQUEUE)
		log_info("dotproxy %s: nfqueue mode on queue %u (%s when full), TCP on port %u, %d upstream%s",
			 DOTPROXY_VERSION, cfg.queue, cfg.fail_open ? "fail-open" : "fail-closed", cfg.port,
			 cfg.nupstreams, cfg.nupstreams == 1 ? "" : "s");
	else
		log_info("dotproxy %s: %s mode on port %u, %d upstream%s", DOTPROXY_VERSION,
			 config_mode_name(cfg.mode), cfg.port, cfg.nupstreams, cfg.nupstreams == 1 ? "" : "s");
	for (int i = 0; i < cfg.nupstreams; i++)
		log_info("upstream %s%s", cfg.upstreams[i].label, cfg.upstreams[i].npins ? " (pinned)" : "");

	notify_service_ready(&cfg, w.loop);
	rc = loop_run(w.loop);
	if (rc < 0) {
		errno = -rc;
		log_warn("event loop failed");
	}
	notify_stopping();
	metrics_http_stop(w.loop, w.http);
	pool_free(w.pool);	/* fails what is in flight: front-ends still answer */
	tcp_frontend_free(w.loop, w.tcp);
	udp_frontend_free(w.loop, w.udp);
	nfq_frontend_free(w.loop, w.nfq);
	qtable_destroy(&w.qt);
	cache_free(w.cache);
	ratelimit_free(w.rl);
	close(w.sigio.fd);
	notify_close(w.loop);
	loop_free(w.loop);
	return rc < 0 ? 1 : 0;
}

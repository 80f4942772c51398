/*
 * main.c - dotproxy: answers intercepted DNS queries with answers fetched
 * over verified DNS-over-TLS. Reads the settings, sets up one worker (loop,
 * query table, upstream pool, front-ends, metrics) and runs it. Every setup
 * error is one line and an exit before the loop starts. SIGHUP reads the
 * settings again and swaps them in, SIGUSR1 writes the statistics to the log.
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
#include "privs.h"
#include "query.h"
#include "ratelimit.h"
#include "selftest.h"
#include "upstream.h"
#include "version.h"

extern char **environ;

/* Everything one event loop owns; more workers are more of these. */
struct worker {
	struct config *cfg;
	int argc;			/* for reading the settings again */
	char **argv;
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

/* The query log as @c says; sockets' queries are named by the mode (nfqueue's TCP comes by TPROXY). */
static void report_options(struct qtable *qt, const struct config *c)
{
	qtable_report_options(qt, c->query_log, c->mode == MODE_NFQUEUE ? "tproxy" : config_mode_name(c->mode));
}

/* The cache and the rate limit @c asks for; false when out of memory. */
static bool make_options(const struct config *c, struct cache **cache, struct ratelimit **rl)
{
	*cache = cache_new(c->cache_size, c->cache_bytes, c->serve_stale_s);
	*rl = c->ratelimit ? ratelimit_new(c->ratelimit) : NULL;
	if ((c->cache_size && !*cache) || (c->ratelimit && !*rl)) {
		cache_free(*cache);
		ratelimit_free(*rl);
		return false;
	}
	return true;
}

/*
 * SIGHUP: read the settings again from the same flags, environment and file,
 * and swap them in. All or nothing: a bad new config is logged and the old one
 * keeps running. Queries in flight and connections to upstreams that stay are
 * kept; what needs the sockets opened again (the mode, ports, the queue, the
 * user) keeps its old value until a restart, and says so.
 */
static void reload(struct worker *w)
{
	static struct config next;
	struct cfg_report r;
	struct cache *cache = w->cache;
	struct ratelimit *rl = w->rl;
	char changed[256], err[512];
	bool new_cache, new_rl;

	log_info("SIGHUP: reading the settings again");
	if (config_load(&next, w->argc, w->argv, environ, &r) != 0) {
		for (int i = 0; i < r.n && i < CFG_MAX_ERRORS; i++)
			log_warnx("reload rejected, the old settings stay: %s", r.msg[i]);
		return;
	}
	config_restart_only(w->cfg, &next, changed, sizeof(changed));
	if (changed[0])
		log_warnx("reload: %s changed: the old value%s stay%s until a restart", changed,
			  strchr(changed, ',') ? "s" : "", strchr(changed, ',') ? "" : "s");
	config_keep_restart_only(w->cfg, &next);
	/* a cache of another size or stale window starts empty; the rate limit afresh */
	new_cache = next.cache_size != w->cfg->cache_size || next.cache_bytes != w->cfg->cache_bytes ||
		    next.serve_stale_s != w->cfg->serve_stale_s;
	new_rl = next.ratelimit != w->cfg->ratelimit;
	if (new_cache || new_rl) {
		struct cache *c2;
		struct ratelimit *rl2;

		if (!make_options(&next, &c2, &rl2)) {
			log_warnx("reload rejected, the old settings stay: out of memory for the cache or the rate limit");
			return;
		}
		if (new_cache)
			cache = c2;
		else
			cache_free(c2);
		if (new_rl)
			rl = rl2;
		else
			ratelimit_free(rl2);
	}
	if (pool_reconfigure(w->pool, &next, err, sizeof(err)) < 0) {
		log_warnx("reload rejected, the old settings stay: %s", err);
		if (cache != w->cache)
			cache_free(cache);
		if (rl != w->rl)
			ratelimit_free(rl);
		return;
	}
	qtable_options(&w->qt, cache, next.serve_stale_s, rl);
	w->qt.timeout_ms = next.timeout_ms;
	if (cache != w->cache) {
		cache_free(w->cache);
		w->cache = cache;
	}
	if (rl != w->rl) {
		ratelimit_free(w->rl);
		w->rl = rl;
	}
	if (log_setup(next.log_target, next.log_level, next.log_format, err, sizeof(err)) < 0)
		log_warnx("reload: %s: the log stays as it was", err);
	report_options(&w->qt, &next);
	*w->cfg = next;
	log_info("reload done: %d upstream%s%s", next.nupstreams, next.nupstreams == 1 ? "" : "s",
		 new_cache ? ", the cache emptied for its new size" : "");
}

/* SIGUSR1: every sample of the metrics page to the log, at info level. */
static void dump_stats(struct worker *w)
{
	struct strbuf sb = { 0 };
	char *line, *next;

	render_page(w, &sb);
	if (sb.err) {
		log_warnx("SIGUSR1: out of memory for the statistics");
		free(sb.buf);
		return;
	}
	log_info("SIGUSR1: statistics follow");
	for (line = sb.buf; line && line < sb.buf + sb.len; line = next) {
		next = memchr(line, '\n', (size_t)(sb.buf + sb.len - line));
		if (next)
			*next++ = '\0';
		if (*line && *line != '#')
			log_info("stats: %s", line);
	}
	free(sb.buf);
}

static void on_signal(struct loop *l, int fd, void *arg, uint32_t events)
{
	struct signalfd_siginfo si;
	struct worker *w = arg;

	(void)events;
	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGHUP:
			/* systemd waits for READY=1 again, whether the reload took or not */
			notify_reloading();
			reload(w);
			notify_ready(NULL);
			break;
		case SIGUSR1:
			dump_stats(w);
			break;
		default:
			log_info("signal %u: stopping", si.ssi_signo);
			loop_stop(l);
		}
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
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
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

/* Every error line of @r on stderr, after @prefix. */
static void print_report(const struct cfg_report *r, const char *prefix)
{
	for (int i = 0; i < r->n && i < CFG_MAX_ERRORS; i++)
		fprintf(stderr, "%s%s\n", prefix, r->msg[i]);
	if (r->n > CFG_MAX_ERRORS)
		fprintf(stderr, "%s... and %d more errors\n", prefix, r->n - CFG_MAX_ERRORS);
}

int main(int argc, char **argv)
{
	static struct config cfg;
	static struct cfg_report rep;
	struct worker w;
	char err[512];
	int rc;

	setvbuf(stderr, NULL, _IOLBF, 0);
	/* client mode: no config, no privileges, nothing of the daemon set up */
	if (argc > 1 && strcmp(argv[1], "--self-test") == 0)
		return selftest_main(argc - 2, argv + 2);
	rc = config_load(&cfg, argc, argv, environ, &rep);
	if (rc == CFG_PARSE_EXIT)
		return 0;
	if (rc == CFG_PARSE_CHECK) {
		/* --check-config FILE: the file alone, every error on its own line */
		char path[CFG_PATH_MAX];

		memcpy(path, cfg.check_config, sizeof(path));
		if (config_check_file(&cfg, path, &rep) == 0) {
			printf("%s: ok\n", path);
			return 0;
		}
		print_report(&rep, "");
		return 1;
	}
	if (rc < 0) {
		print_report(&rep, "dotproxy: ");
		return 2;
	}
	/* before any socket and before privileges go: syslog's socket is opened here */
	if (log_setup(cfg.log_target, cfg.log_level, cfg.log_format, err, sizeof(err)) < 0) {
		fprintf(stderr, "dotproxy: %s\n", err);
		return 2;
	}
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());	/* backoff jitter only */
	if (notify_init(err, sizeof(err)) < 0)	/* the service manager's socket, while we may */
		fatalx("%s", err);

	memset(&w, 0, sizeof(w));
	w.cfg = &cfg;
	w.argc = argc;
	w.argv = argv;
	w.loop = loop_new();
	if (!w.loop)
		fatal("cannot create the event loop");
	w.pool = pool_new(w.loop, &cfg, &w.qt, &w.m, err, sizeof(err));
	if (!w.pool)
		fatalx("%s", err);
	if (qtable_init(&w.qt, cfg.max_inflight, cfg.timeout_ms, w.loop, w.pool, &w.m) < 0)
		fatalx("out of memory for %u in-flight queries", cfg.max_inflight);
	if (!make_options(&cfg, &w.cache, &w.rl))
		fatalx("out of memory for the cache or the rate limit");
	qtable_options(&w.qt, w.cache, cfg.serve_stale_s, w.rl);
	report_options(&w.qt, &cfg);
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
	/* every socket is open: from here on only what the loop needs (privs.h) */
	if (privs_drop(&cfg, err, sizeof(err)) < 0)
		fatalx("%s", err);
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

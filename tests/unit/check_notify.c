/*
 * check_notify.c - unit tests for src/notify.c: NOTIFY_SOCKET and WATCHDOG_*
 * parsing, the message texts, and real datagrams to a socket the test binds
 * (a path and an abstract name), including the watchdog keep-alives sent
 * from a running loop.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "notify.h"
#include "unit.h"

START_TEST(parse_path)
{
	struct sockaddr_un sa;
	socklen_t len;

	ck_assert_int_eq(notify_parse_socket("/run/systemd/notify", &sa, &len), 0);
	ck_assert_int_eq(sa.sun_family, AF_UNIX);
	ck_assert_str_eq(sa.sun_path, "/run/systemd/notify");
	ck_assert_uint_eq(len, offsetof(struct sockaddr_un, sun_path) + strlen("/run/systemd/notify") + 1);
}
END_TEST

START_TEST(parse_abstract)
{
	struct sockaddr_un sa;
	socklen_t len;

	ck_assert_int_eq(notify_parse_socket("@dotproxy/notify", &sa, &len), 0);
	ck_assert_int_eq(sa.sun_path[0], '\0');
	ck_assert_int_eq(memcmp(sa.sun_path + 1, "dotproxy/notify", 15), 0);
	/* the name's length is the address's: no NUL after it */
	ck_assert_uint_eq(len, offsetof(struct sockaddr_un, sun_path) + 1 + 15);
}
END_TEST

START_TEST(parse_bad)
{
	struct sockaddr_un sa;
	socklen_t len;
	char longp[sizeof(sa.sun_path) + 2];

	ck_assert_int_eq(notify_parse_socket("", &sa, &len), -EINVAL);
	ck_assert_int_eq(notify_parse_socket(NULL, &sa, &len), -EINVAL);
	ck_assert_int_eq(notify_parse_socket("run/notify", &sa, &len), -EINVAL);
	ck_assert_int_eq(notify_parse_socket("@", &sa, &len), -EINVAL);
	memset(longp, 'a', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	ck_assert_int_eq(notify_parse_socket(longp, &sa, &len), -ENAMETOOLONG);
	longp[0] = '@';
	ck_assert_int_eq(notify_parse_socket(longp, &sa, &len), -ENAMETOOLONG);
	/* the longest that fit: a path with its NUL, an abstract name without */
	longp[sizeof(sa.sun_path)] = '\0';
	ck_assert_int_eq(notify_parse_socket(longp, &sa, &len), 0);
	ck_assert_uint_eq(len, sizeof(sa));
	longp[0] = '/';
	ck_assert_int_eq(notify_parse_socket(longp, &sa, &len), -ENAMETOOLONG);
	longp[sizeof(sa.sun_path) - 1] = '\0';
	ck_assert_int_eq(notify_parse_socket(longp, &sa, &len), 0);
}
END_TEST

START_TEST(parse_watchdog)
{
	uint64_t us = 99;

	ck_assert_int_eq(notify_parse_watchdog("20000000", NULL, 42, &us), 0);
	ck_assert_uint_eq(us, 20000000);
	ck_assert_int_eq(notify_parse_watchdog("400000", "42", 42, &us), 0);
	ck_assert_uint_eq(us, 400000);
	/* for another process: no watchdog here, and no error */
	ck_assert_int_eq(notify_parse_watchdog("400000", "41", 42, &us), 0);
	ck_assert_uint_eq(us, 0);
	ck_assert_int_eq(notify_parse_watchdog("0", NULL, 42, &us), -EINVAL);
	ck_assert_int_eq(notify_parse_watchdog("", NULL, 42, &us), -EINVAL);
	ck_assert_int_eq(notify_parse_watchdog("-5", NULL, 42, &us), -EINVAL);
	ck_assert_int_eq(notify_parse_watchdog("12s", NULL, 42, &us), -EINVAL);
	ck_assert_int_eq(notify_parse_watchdog("99999999999999999999999", NULL, 42, &us), -EINVAL);
	ck_assert_int_eq(notify_parse_watchdog("400000", "x", 42, &us), -EINVAL);
	ck_assert_int_eq(notify_parse_watchdog("400000", "", 42, &us), -EINVAL);
}
END_TEST

START_TEST(keepalive_interval)
{
	ck_assert_uint_eq(notify_keepalive_ms(20000000), 10000);	/* WatchdogSec=20 */
	ck_assert_uint_eq(notify_keepalive_ms(400000), 200);
	ck_assert_uint_eq(notify_keepalive_ms(1500), 1);	/* never 0: a timer that spins */
	ck_assert_uint_eq(notify_keepalive_ms(1), 1);
}
END_TEST

START_TEST(format)
{
	char buf[64];

	ck_assert_int_eq(notify_format_reloading(buf, sizeof(buf), 123456789012ULL), 39);
	ck_assert_str_eq(buf, "RELOADING=1\nMONOTONIC_USEC=123456789012");
	ck_assert_int_eq(notify_format_reloading(buf, 20, 1), -ENOSPC);
	ck_assert_int_eq(notify_format_ready(buf, sizeof(buf), NULL), 7);
	ck_assert_str_eq(buf, "READY=1");
	ck_assert_int_gt(notify_format_ready(buf, sizeof(buf), "tproxy mode on port 5353"), 0);
	ck_assert_str_eq(buf, "READY=1\nSTATUS=tproxy mode on port 5353");
	/* a status cannot add lines (keys) of its own */
	ck_assert_int_gt(notify_format_ready(buf, sizeof(buf), "ok\nREADY=0"), 0);
	ck_assert_str_eq(buf, "READY=1\nSTATUS=ok");
	ck_assert_int_eq(notify_format_ready(buf, 10, "a status longer than ten"), -ENOSPC);
}
END_TEST

/* A datagram socket bound where NOTIFY_SOCKET will point, as the manager's. */
struct manager {
	int fd;
	char name[108];		/* NOTIFY_SOCKET's value */
	char dir[64];
};

static void manager_open(struct manager *m, bool abstract)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	struct timeval tv = { .tv_sec = 2 };

	m->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(m->fd, 0);
	m->dir[0] = '\0';
	if (abstract) {
		snprintf(m->name, sizeof(m->name), "@dotproxy-check-notify-%d", (int)getpid());
	} else {
		snprintf(m->dir, sizeof(m->dir), "/tmp/check_notify.XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(m->dir));
		snprintf(m->name, sizeof(m->name), "%s/notify", m->dir);
	}
	ck_assert_int_eq(notify_parse_socket(m->name, &sa, &len), 0);
	ck_assert_int_eq(bind(m->fd, (struct sockaddr *)&sa, len), 0);
	ck_assert_int_eq(setsockopt(m->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
}

static void manager_close(struct manager *m)
{
	close(m->fd);
	if (m->dir[0]) {
		unlink(m->name);
		rmdir(m->dir);
	}
}

/* The next datagram, NUL-terminated; fails the test after 2 s without one. */
static const char *manager_recv(struct manager *m, char *buf, size_t len)
{
	ssize_t n = recv(m->fd, buf, len - 1, 0);

	ck_assert_msg(n >= 0, "no datagram from notify: %s", strerror(errno));
	buf[n] = '\0';
	return buf;
}

static bool manager_quiet(struct manager *m)
{
	char buf[64];

	return recv(m->fd, buf, sizeof(buf), MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

static void roundtrip(bool abstract)
{
	struct manager m;
	char buf[256], err[256] = "";
	unsigned long long usec;

	manager_open(&m, abstract);
	setenv("NOTIFY_SOCKET", m.name, 1);
	unsetenv("WATCHDOG_USEC");
	ck_assert_msg(notify_init(err, sizeof(err)) == 0, "notify_init: %s", err);
	ck_assert(notify_enabled());
	ck_assert_ptr_null(getenv("NOTIFY_SOCKET"));	/* not passed on */
	ck_assert_uint_eq(notify_watchdog_usec(), 0);

	ck_assert_int_eq(notify_ready("redirect mode on port 5353, 1 upstream"), 0);
	ck_assert_str_eq(manager_recv(&m, buf, sizeof(buf)), "READY=1\nSTATUS=redirect mode on port 5353, 1 upstream");
	ck_assert_int_eq(notify_reloading(), 0);
	manager_recv(&m, buf, sizeof(buf));
	ck_assert_msg(sscanf(buf, "RELOADING=1\nMONOTONIC_USEC=%llu", &usec) == 1, "got \"%s\"", buf);
	{
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ck_assert_uint_le(usec, (unsigned long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
		ck_assert_uint_gt(usec + 1000000, (unsigned long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	}
	ck_assert_int_eq(notify_stopping(), 0);
	ck_assert_str_eq(manager_recv(&m, buf, sizeof(buf)), "STOPPING=1");
	notify_close(NULL);
	ck_assert(!notify_enabled());
	ck_assert_int_eq(notify_send("READY=1"), 0);	/* closed: a no-op */
	ck_assert(manager_quiet(&m));
	manager_close(&m);
}

START_TEST(send_path)
{
	roundtrip(false);
}
END_TEST

START_TEST(send_abstract)
{
	roundtrip(true);
}
END_TEST

START_TEST(not_under_a_manager)
{
	char err[256] = "";

	unsetenv("NOTIFY_SOCKET");
	setenv("WATCHDOG_USEC", "1000000", 1);
	ck_assert_int_eq(notify_init(err, sizeof(err)), 0);
	ck_assert(!notify_enabled());
	ck_assert_uint_eq(notify_watchdog_usec(), 0);	/* nowhere to send keep-alives */
	ck_assert_int_eq(notify_ready(NULL), 0);
	ck_assert_int_eq(notify_watchdog_start(NULL), 0);
}
END_TEST

START_TEST(bad_environment)
{
	char err[256] = "";

	setenv("NOTIFY_SOCKET", "relative/notify", 1);
	unsetenv("WATCHDOG_USEC");
	ck_assert_int_eq(notify_init(err, sizeof(err)), -1);
	ck_assert_str_eq(err, "NOTIFY_SOCKET \"relative/notify\": must be an absolute path or @abstract name");
	ck_assert(!notify_enabled());

	setenv("NOTIFY_SOCKET", "/nonexistent/dotproxy/notify", 1);
	ck_assert_int_eq(notify_init(err, sizeof(err)), -1);
	ck_assert_str_eq(err, "NOTIFY_SOCKET \"/nonexistent/dotproxy/notify\": No such file or directory");
	ck_assert(!notify_enabled());

	setenv("WATCHDOG_USEC", "soon", 1);
	ck_assert_int_eq(notify_init(err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "WATCHDOG_USEC \"soon\"") == err, "err: %s", err);
	unsetenv("WATCHDOG_USEC");
	unsetenv("NOTIFY_SOCKET");
}
END_TEST

static void stop_cb(struct loop *l, void *arg)
{
	(void)arg;
	loop_stop(l);
}

/* WATCHDOG=1 now and then every interval / 2 while the loop runs, none after notify_close(). */
START_TEST(watchdog_keepalives)
{
	struct manager m;
	struct loop *l = loop_new();
	struct loop_timer stop;
	char buf[64], err[256] = "", pid[16];
	int n = 0;

	ck_assert_ptr_nonnull(l);
	manager_open(&m, false);
	setenv("NOTIFY_SOCKET", m.name, 1);
	setenv("WATCHDOG_USEC", "100000", 1);	/* keep-alives every 50 ms */
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	ck_assert_msg(notify_init(err, sizeof(err)) == 0, "notify_init: %s", err);
	ck_assert_uint_eq(notify_watchdog_usec(), 100000);
	ck_assert_ptr_null(getenv("WATCHDOG_USEC"));
	ck_assert_int_eq(notify_watchdog_start(l), 0);
	ck_assert_int_eq(notify_watchdog_start(l), 0);	/* again (after a reload): one timer */
	loop_timer_init(&stop, stop_cb, NULL);
	ck_assert_int_eq(loop_timer_set(l, &stop, 520), 0);
	ck_assert_int_eq(loop_run(l), 0);
	for (;;) {
		ssize_t len = recv(m.fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

		if (len < 0)
			break;
		buf[len] = '\0';
		ck_assert_str_eq(buf, "WATCHDOG=1");
		ck_assert_int_lt(++n, 100);
	}
	/* one at the start and one every 50 ms for 520 ms: 11, give or take a slow machine */
	ck_assert_msg(n >= 8 && n <= 12, "%d keep-alives in 520 ms at 50 ms", n);
	notify_close(l);
	ck_assert_int_eq(loop_timer_set(l, &stop, 150), 0);
	ck_assert_int_eq(loop_run(l), 0);
	ck_assert(manager_quiet(&m));
	loop_free(l);
	manager_close(&m);
}
END_TEST

/* A watchdog for another process (WATCHDOG_PID): no keep-alives from us. */
START_TEST(watchdog_other_pid)
{
	struct manager m;
	struct loop *l = loop_new();
	struct loop_timer stop;
	char err[256] = "", pid[16];

	manager_open(&m, false);
	setenv("NOTIFY_SOCKET", m.name, 1);
	setenv("WATCHDOG_USEC", "100000", 1);
	snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1);
	ck_assert_msg(notify_init(err, sizeof(err)) == 0, "notify_init: %s", err);
	ck_assert(notify_enabled());
	ck_assert_uint_eq(notify_watchdog_usec(), 0);
	ck_assert_int_eq(notify_watchdog_start(l), 0);
	loop_timer_init(&stop, stop_cb, NULL);
	ck_assert_int_eq(loop_timer_set(l, &stop, 200), 0);
	ck_assert_int_eq(loop_run(l), 0);
	ck_assert(manager_quiet(&m));
	notify_close(l);
	loop_free(l);
	manager_close(&m);
}
END_TEST

static Suite *notify_suite(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, parse_path);
	tcase_add_test(tc, parse_abstract);
	tcase_add_test(tc, parse_bad);
	tcase_add_test(tc, parse_watchdog);
	tcase_add_test(tc, keepalive_interval);
	tcase_add_test(tc, format);
	tcase_add_test(tc, send_path);
	tcase_add_test(tc, send_abstract);
	tcase_add_test(tc, not_under_a_manager);
	tcase_add_test(tc, bad_environment);
	tcase_add_test(tc, watchdog_keepalives);
	tcase_add_test(tc, watchdog_other_pid);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(notify_suite());
}

/*
 * check_log.c - src/log.c: logfmt quoting and escaping, level filtering,
 * the text and logfmt line shapes, key/value fields in both, and what
 * really reaches stderr (captured through a pipe).
 */
#include <check.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "unit.h"

/* ---- a sink that keeps the last lines ---- */
static char lines[8][LOG_LINE_MAX];
static enum log_level levels[8];
static int nlines;

static void sink(enum log_level lvl, const char *line, void *arg)
{
	(void)arg;
	if (nlines < 8) {
		levels[nlines] = lvl;
		snprintf(lines[nlines], sizeof(lines[0]), "%s", line);
	}
	nlines++;
}

static void setup(enum log_level lvl, enum log_format fmt)
{
	char err[128];

	ck_assert_int_eq(log_setup(LOG_TO_STDERR, lvl, fmt, err, sizeof(err)), 0);
	nlines = 0;
	log_set_sink(sink, NULL);
}

static void teardown(void)
{
	log_set_sink(NULL, NULL);
}

/* log_append_kv(key, value) alone. */
static const char *kv(const char *k, const char *v)
{
	static char buf[256];

	buf[0] = '\0';
	log_append_kv(buf, 0, sizeof(buf), k, v);
	return buf;
}

START_TEST(quoting)
{
	ck_assert_str_eq(kv("k", "plain-value_1.2:3"), "k=plain-value_1.2:3");
	ck_assert_str_eq(kv("k", ""), "k=\"\"");
	ck_assert_str_eq(kv("msg", "two words"), "msg=\"two words\"");
	ck_assert_str_eq(kv("k", "a=b"), "k=\"a=b\"");
	ck_assert_str_eq(kv("k", "say \"hi\""), "k=\"say \\\"hi\\\"\"");
	ck_assert_str_eq(kv("k", "back\\slash"), "k=\"back\\\\slash\"");
	ck_assert_str_eq(kv("k", "line\nbreak\r\ttab"), "k=\"line\\nbreak\\r\\ttab\"");
	ck_assert_str_eq(kv("k", "bell\x07" "del\x7f"), "k=\"bell\\x07del\\x7f\"");
	ck_assert_str_eq(kv("k", "\xc3\xa9"), "k=\"\\xc3\\xa9\"");	/* no raw bytes outside ASCII */
}
END_TEST

START_TEST(quoting_is_bounded)
{
	char small[16], big[200];
	size_t n;

	memset(big, '"', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	n = log_append_kv(small, 0, sizeof(small), "key", big);
	ck_assert_uint_lt(n, sizeof(small));
	ck_assert_uint_eq(strlen(small), n);
	ck_assert_int_eq(small[n - 1], '"');	/* still a closed quote */
	/* appending to a full buffer changes nothing past it */
	n = log_append_kv(small, n, sizeof(small), "more", "x");
	ck_assert_uint_lt(n, sizeof(small));
}
END_TEST

START_TEST(levels_filter)
{
	setup(LOG_LVL_INFO, LOG_FMT_TEXT);
	log_debug("hidden %d", 1);
	ck_assert_int_eq(nlines, 0);
	ck_assert(!log_debug_enabled());
	log_info("shown");
	log_warnx("warned");
	log_kv(LOG_LVL_DEBUG, "hidden kv", "k", "v", (char *)NULL);
	ck_assert_int_eq(nlines, 2);
	ck_assert_int_eq(levels[0], LOG_LVL_INFO);
	ck_assert_int_eq(levels[1], LOG_LVL_WARN);

	setup(LOG_LVL_WARN, LOG_FMT_TEXT);
	log_info("hidden");
	log_kv(LOG_LVL_INFO, "query", "qname", "example.com.", (char *)NULL);
	ck_assert_int_eq(nlines, 0);
	log_warnx("warned");
	ck_assert_int_eq(nlines, 1);

	setup(LOG_LVL_ERR, LOG_FMT_TEXT);
	log_warnx("hidden");
	ck_assert_int_eq(nlines, 0);
	ck_assert(log_enabled(LOG_LVL_ERR) && !log_enabled(LOG_LVL_WARN));

	setup(LOG_LVL_DEBUG, LOG_FMT_TEXT);
	log_debug("shown %s", "now");
	ck_assert_int_eq(nlines, 1);
	ck_assert_str_eq(lines[0], "dotproxy: debug: shown now");
	teardown();
}
END_TEST

START_TEST(text_lines)
{
	setup(LOG_LVL_INFO, LOG_FMT_TEXT);
	log_info("upstream %s", "x");
	errno = ENOENT;
	log_warn("cannot open %s", "/nope");
	log_kv(LOG_LVL_INFO, "query", "client", "192.0.2.2:53", "qname", "a b.", "upstream", (char *)NULL,
	       "ms", "3", (char *)NULL);
	ck_assert_int_eq(nlines, 3);
	ck_assert_str_eq(lines[0], "dotproxy: upstream x");
	ck_assert_str_eq(lines[1], "dotproxy: warning: cannot open /nope: No such file or directory");
	/* a NULL value leaves its key out */
	ck_assert_str_eq(lines[2], "dotproxy: query client=192.0.2.2:53 qname=\"a b.\" ms=3");
	teardown();
}
END_TEST

START_TEST(logfmt_lines)
{
	regex_t re;

	setup(LOG_LVL_INFO, LOG_FMT_LOGFMT);
	log_info("dotproxy %s: tproxy mode", "0.1.0");
	errno = EACCES;
	log_warn("cannot bind");
	log_kv(LOG_LVL_INFO, "query", "qname", "we\"ird\n.", "rcode", "NOERROR", (char *)NULL);
	ck_assert_int_eq(nlines, 3);
	ck_assert_int_eq(regcomp(&re, "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
				      "level=info msg=\"dotproxy 0\\.1\\.0: tproxy mode\"$", REG_EXTENDED | REG_NOSUB), 0);
	ck_assert_msg(regexec(&re, lines[0], 0, NULL, 0) == 0, "%s", lines[0]);
	regfree(&re);
	ck_assert_ptr_nonnull(strstr(lines[1], " level=warn msg=\"cannot bind\" error=\"Permission denied\""));
	ck_assert_ptr_nonnull(strstr(lines[2], " level=info msg=query qname=\"we\\\"ird\\n.\" rcode=NOERROR"));
	ck_assert_ptr_null(strchr(lines[2], '\n'));
	teardown();
}
END_TEST

START_TEST(to_stderr)
{
	char err[128], buf[512];
	int p[2], saved;
	ssize_t n;

	/* the real path: no sink, lines on fd 2 */
	ck_assert_int_eq(pipe(p), 0);
	saved = dup(2);
	ck_assert_int_eq(dup2(p[1], 2), 2);
	ck_assert_int_eq(log_setup(LOG_TO_STDERR, LOG_LVL_INFO, LOG_FMT_TEXT, err, sizeof(err)), 0);
	log_info("first");
	log_debug("not this");
	/* again, as on SIGHUP: now logfmt at debug */
	ck_assert_int_eq(log_setup(LOG_TO_STDERR, LOG_LVL_DEBUG, LOG_FMT_LOGFMT, err, sizeof(err)), 0);
	log_debug("second");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(p[1]);
	n = read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_msg(strncmp(buf, "dotproxy: first\nts=", 19) == 0, "%s", buf);
	ck_assert_ptr_nonnull(strstr(buf, " level=debug msg=second\n"));
	ck_assert_ptr_null(strstr(buf, "not this"));
	ck_assert_int_eq(log_setup(LOG_TO_STDERR, LOG_LVL_INFO, LOG_FMT_TEXT, err, sizeof(err)), 0);
}
END_TEST

START_TEST(parse_values)
{
	enum log_target t;
	enum log_level l;
	enum log_format f;

	ck_assert_int_eq(log_parse_target("syslog", &t), 0);
	ck_assert_int_eq(t, LOG_TO_SYSLOG);
	ck_assert_int_eq(log_parse_target("stderr", &t), 0);
	ck_assert_int_eq(t, LOG_TO_STDERR);
	ck_assert_int_eq(log_parse_target("file", &t), -1);
	ck_assert_int_eq(log_parse_level("warn", &l), 0);
	ck_assert_int_eq(l, LOG_LVL_WARN);
	ck_assert_int_eq(log_parse_level("error", &l), 0);
	ck_assert_int_eq(l, LOG_LVL_ERR);
	ck_assert_int_eq(log_parse_level("DEBUG", &l), -1);
	ck_assert_int_eq(log_parse_level("warning", &l), -1);
	ck_assert_int_eq(log_parse_format("logfmt", &f), 0);
	ck_assert_int_eq(f, LOG_FMT_LOGFMT);
	ck_assert_int_eq(log_parse_format("json", &f), -1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");

	tcase_add_test(tc, quoting);
	tcase_add_test(tc, quoting_is_bounded);
	tcase_add_test(tc, levels_filter);
	tcase_add_test(tc, text_lines);
	tcase_add_test(tc, logfmt_lines);
	tcase_add_test(tc, to_stderr);
	tcase_add_test(tc, parse_values);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

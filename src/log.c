/*
 * log.c - where log lines go (stderr or syslog), at which level, in which
 * format (text or logfmt). Owns the level, the target and the syslog
 * connection; never decides what is logged.
 */
#define _GNU_SOURCE
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#define SYSLOG_PATH	"/dev/log"	/* where glibc's syslog() sends */

static enum log_level cur_level = LOG_LVL_INFO;
static enum log_target cur_target = LOG_TO_STDERR;
static enum log_format cur_format = LOG_FMT_TEXT;
static bool syslog_open;
static void (*test_sink)(enum log_level lvl, const char *line, void *arg);
static void *test_sink_arg;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const int level_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

int log_parse_target(const char *s, enum log_target *out)
{
	if (strcmp(s, "stderr") == 0)
		*out = LOG_TO_STDERR;
	else if (strcmp(s, "syslog") == 0)
		*out = LOG_TO_SYSLOG;
	else
		return -1;
	return 0;
}

int log_parse_level(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int log_parse_format(const char *s, enum log_format *out)
{
	if (strcmp(s, "text") == 0)
		*out = LOG_FMT_TEXT;
	else if (strcmp(s, "logfmt") == 0)
		*out = LOG_FMT_LOGFMT;
	else
		return -1;
	return 0;
}

int log_setup(enum log_target target, enum log_level level, enum log_format format,
	      char *err, size_t errlen)
{
	if (target == LOG_TO_SYSLOG && !syslog_open) {
		struct stat st;

		/* glibc's syslog() drops lines silently when nothing listens: say so now */
		int rc = stat(SYSLOG_PATH, &st);

		if (rc < 0 || !S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "--log syslog: %s: %s (is a syslog daemon running?)", SYSLOG_PATH,
				 rc < 0 ? strerror(errno) : "not a socket");
			return -1;
		}
		openlog("dotproxy", LOG_NDELAY | LOG_PID, LOG_DAEMON);
		syslog_open = true;
	} else if (target == LOG_TO_STDERR && syslog_open) {
		closelog();
		syslog_open = false;
	}
	cur_target = target;
	cur_level = level;
	cur_format = format;
	return 0;
}

void log_set_level(enum log_level lvl) { cur_level = lvl; }
bool log_enabled(enum log_level lvl) { return lvl <= cur_level; }
bool log_debug_enabled(void) { return cur_level >= LOG_LVL_DEBUG; }

void log_set_sink(void (*sink)(enum log_level lvl, const char *line, void *arg), void *arg)
{
	test_sink = sink;
	test_sink_arg = arg;
}

/* Append @s to @buf as far as it fits (always NUL-terminated). */
static size_t append(char *buf, size_t len, size_t cap, const char *s)
{
	while (*s && len + 1 < cap)
		buf[len++] = *s++;
	buf[len] = '\0';
	return len;
}

static bool needs_quotes(const char *v)
{
	if (!*v)
		return true;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '=' || *p == '"' || *p == '\\')
			return true;
	return false;
}

/* Append @v, quoted and escaped if it needs it. */
static size_t append_value(char *buf, size_t len, size_t cap, const char *v)
{
	static const char hex[] = "0123456789abcdef";

	if (!needs_quotes(v))
		return append(buf, len, cap, v);
	len = append(buf, len, cap, "\"");
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		char e[5] = { 0 };

		switch (*p) {
		case '"': e[0] = '\\'; e[1] = '"'; break;
		case '\\': e[0] = '\\'; e[1] = '\\'; break;
		case '\n': e[0] = '\\'; e[1] = 'n'; break;
		case '\r': e[0] = '\\'; e[1] = 'r'; break;
		case '\t': e[0] = '\\'; e[1] = 't'; break;
		default:
			if (*p < ' ' || *p >= 0x7f) {
				e[0] = '\\';
				e[1] = 'x';
				e[2] = hex[*p >> 4];
				e[3] = hex[*p & 15];
			} else {
				e[0] = (char)*p;
			}
		}
		if (len + strlen(e) + 2 > cap)
			break;	/* room for the closing quote */
		len = append(buf, len, cap, e);
	}
	if (len + 1 < cap)
		len = append(buf, len, cap, "\"");
	else if (len > 0)
		buf[len - 1] = '"';
	return len;
}

size_t log_append_kv(char *buf, size_t len, size_t cap, const char *key, const char *value)
{
	if (cap == 0)
		return 0;
	if (len >= cap)
		len = cap - 1;
	len = append(buf, len, cap, key);
	len = append(buf, len, cap, "=");
	return append_value(buf, len, cap, value);
}

/* Append " k=v" for each pair in @ap (key, value, ..., NULL). */
static size_t append_fields(char *buf, size_t len, size_t cap, va_list ap)
{
	const char *k;

	while ((k = va_arg(ap, const char *))) {
		const char *v = va_arg(ap, const char *);

		if (!v)
			continue;
		len = append(buf, len, cap, " ");
		len = log_append_kv(buf, len, cap, k, v);
	}
	return len;
}

/* Write one finished line: to the test sink, syslog or stderr. */
static void emit(enum log_level lvl, const char *line)
{
	if (test_sink)
		test_sink(lvl, line, test_sink_arg);
	else if (cur_target == LOG_TO_SYSLOG && syslog_open)
		syslog(level_prio[lvl], "%s", line);
	else
		fprintf(stderr, "%s\n", line);
}

/*
 * Build and write one line at @lvl: @msg, strerror(@err) if @err, then the
 * fields in @ap (may be NULL).
 */
static void write_line(enum log_level lvl, const char *msg, int err, va_list *ap)
{
	static const char *const text_tag[] = { "", "warning: ", "", "debug: " };
	char line[LOG_LINE_MAX];
	size_t len = 0;

	line[0] = '\0';
	if (cur_format == LOG_FMT_LOGFMT) {
		struct timespec ts;
		struct tm tm;
		char tsbuf[96];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		snprintf(tsbuf, sizeof(tsbuf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
		len = log_append_kv(line, len, sizeof(line), "ts", tsbuf);
		len = append(line, len, sizeof(line), " ");
		len = log_append_kv(line, len, sizeof(line), "level", level_names[lvl]);
		len = append(line, len, sizeof(line), " ");
		len = log_append_kv(line, len, sizeof(line), "msg", msg);
		if (err) {
			len = append(line, len, sizeof(line), " ");
			len = log_append_kv(line, len, sizeof(line), "error", strerror(err));
		}
	} else {
		/* syslog names the program itself */
		if (test_sink || cur_target != LOG_TO_SYSLOG)
			len = append(line, len, sizeof(line), "dotproxy: ");
		len = append(line, len, sizeof(line), text_tag[lvl]);
		len = append(line, len, sizeof(line), msg);
		if (err) {
			len = append(line, len, sizeof(line), ": ");
			len = append(line, len, sizeof(line), strerror(err));
		}
	}
	if (ap)
		append_fields(line, len, sizeof(line), *ap);
	emit(lvl, line);
}

static void vlog(enum log_level lvl, int err, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void vlog(enum log_level lvl, int err, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX];

	if (lvl > cur_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	write_line(lvl, msg, err, NULL);
}

void log_kv(enum log_level lvl, const char *msg, ...)
{
	va_list ap;

	if (lvl > cur_level)
		return;
	va_start(ap, msg);
	write_line(lvl, msg, 0, &ap);
	va_end(ap);
}

#define LOGFN(name, lvl, with_errno)                              \
	void name(const char *fmt, ...)                           \
	{                                                         \
		int e = with_errno ? errno : 0;                   \
		va_list ap;                                       \
		va_start(ap, fmt);                                \
		vlog(lvl, e, fmt, ap);                            \
		va_end(ap);                                       \
	}

LOGFN(log_warn, LOG_LVL_WARN, 1)
LOGFN(log_warnx, LOG_LVL_WARN, 0)
LOGFN(log_info, LOG_LVL_INFO, 0)
LOGFN(log_debug, LOG_LVL_DEBUG, 0)

void fatal(const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERR, e, fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

/*
 * log.c - logging to stderr. Owns the log level; never decides what is logged.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum log_level cur_level = LOG_LVL_INFO;

void log_set_level(enum log_level lvl) { cur_level = lvl; }
bool log_debug_enabled(void) { return cur_level >= LOG_LVL_DEBUG; }

static void vlog(enum log_level lvl, const char *tag, int err, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static void vlog(enum log_level lvl, const char *tag, int err, const char *fmt, va_list ap)
{
	char buf[1024];

	if (lvl > cur_level)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (err)
		fprintf(stderr, "dotproxy: %s%s: %s\n", tag, buf, strerror(err));
	else
		fprintf(stderr, "dotproxy: %s%s\n", tag, buf);
}

#define LOGFN(name, lvl, tag, with_errno)                         \
	void name(const char *fmt, ...)                           \
	{                                                         \
		int e = with_errno ? errno : 0;                   \
		va_list ap;                                       \
		va_start(ap, fmt);                                \
		vlog(lvl, tag, e, fmt, ap);                       \
		va_end(ap);                                       \
	}

LOGFN(log_warn, LOG_LVL_WARN, "warning: ", 1)
LOGFN(log_warnx, LOG_LVL_WARN, "warning: ", 0)
LOGFN(log_info, LOG_LVL_INFO, "", 0)
LOGFN(log_debug, LOG_LVL_DEBUG, "debug: ", 0)

void fatal(const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERR, "", e, fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERR, "", 0, fmt, ap);
	va_end(ap);
	exit(1);
}

/*
 * log.h - log lines to stderr or syslog, filtered by level, as text
 * ("dotproxy: message k=v") or logfmt (ts=... level=... msg="..." k=v).
 * Never pass query names to anything but log_debug and the query log
 * (--query-log, off by default): this is a privacy tool.
 */
#ifndef DOTPROXY_LOG_H
#define DOTPROXY_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };
enum log_target { LOG_TO_STDERR, LOG_TO_SYSLOG };
enum log_format { LOG_FMT_TEXT, LOG_FMT_LOGFMT };

#define LOG_LINE_MAX	2048	/* longer lines are cut */

/*
 * Send lines to @target at @level and above, in @format. Opens the syslog
 * socket at once (before privileges are dropped), so a missing /dev/log is
 * an error here. Safe to call again (SIGHUP): an open syslog connection is
 * kept, or closed when the target becomes stderr. Returns 0, or -1 with one
 * line in @err.
 */
int log_setup(enum log_target target, enum log_level level, enum log_format format,
	      char *err, size_t errlen);

/* Parse a --log, --log-level or --log-format value. Return 0 or -1. */
int log_parse_target(const char *s, enum log_target *out);
int log_parse_level(const char *s, enum log_level *out);
int log_parse_format(const char *s, enum log_format *out);

void log_set_level(enum log_level lvl);
bool log_enabled(enum log_level lvl);
bool log_debug_enabled(void);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log "MSG" at error level and exit(1); fatal() appends strerror(errno). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * One line at @lvl: @msg, then key/value pairs (const char *key, const char
 * *value, ..., NULL). Text renders them as " k=v" after the message, logfmt
 * as fields; values are quoted and escaped where needed, a NULL value is
 * left out with its key.
 */
void log_kv(enum log_level lvl, const char *msg, ...) __attribute__((sentinel));

/*
 * Append "key=value" to @buf (@len used of @cap), quoting @value when it is
 * empty or holds a space, '=', '"' or a byte outside printable ASCII, with
 * \" \\ \n \r \t and \xHH escapes. Returns the new length (cut at @cap - 1).
 */
size_t log_append_kv(char *buf, size_t len, size_t cap, const char *key, const char *value);

/* Tests only: hand every line (without newline) to @sink instead of writing it; NULL undoes. */
void log_set_sink(void (*sink)(enum log_level lvl, const char *line, void *arg), void *arg);

#endif

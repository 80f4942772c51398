/*
 * config.c - a config file, DOTPROXY_* environment variables and command-line
 * flags into struct config, through one table of settings: a setting has the
 * same name and the same checks in all three. Every error is one line naming
 * where the setting came from (FILE:LINE, the variable or the flag) and what
 * is wrong with it; nothing is changed on the system here.
 */
#include "config.h"

#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "version.h"

static const char *const default_upstreams[] = {
	"1.1.1.1@853#cloudflare-dns.com",
	"9.9.9.9@853#dns.quad9.net",
};

static int errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

void config_usage(void)
{
	printf(
"usage: dotproxy [options]\n"
"Answer intercepted DNS queries over verified DNS-over-TLS.\n"
"\n"
"  --mode tproxy|redirect|nfqueue\n"
"                           tproxy: transparent UDP+TCP listeners for TPROXY rules (root);\n"
"                           redirect: plain UDP+TCP listener for nat REDIRECT/DNAT rules\n"
"                           or use as a local stub resolver; nfqueue: UDP from a netfilter\n"
"                           queue, answered by raw packets, TCP by TPROXY (default: tproxy)\n"
"  --port N                 local port the rules send packets to (default: 5353)\n"
"  --queue N                nfqueue mode: queue number 0-65535 (default: 0)\n"
"  --queue-len N            nfqueue mode: packets the kernel may hold for the daemon;\n"
"                           past it the kernel drops them (default: 1024)\n"
"  --fail-open              nfqueue mode: what the queue (--queue-len) or the daemon's socket\n"
"                           has no room for, the kernel lets through in plaintext instead\n"
"                           of dropping it\n"
"  --listen ADDR[@PORT]     redirect mode: listen on ADDR only (repeatable, IPv4 or IPv6,\n"
"                           e.g. 127.0.0.1@53, ::1@53, [::1]@53); default every address\n"
"  --upstream IP[@PORT]#AUTHNAME[^sha256/BASE64]\n"
"                           DoT upstream (repeatable; port 853 by default), its TLS\n"
"                           authentication name and optional SPKI pins (RFC 7858 4.2).\n"
"                           Default: 1.1.1.1@853#cloudflare-dns.com 9.9.9.9@853#dns.quad9.net\n"
"  --pin sha256/BASE64      SPKI pin for the --upstream just before it\n"
"  --upstream-ca PATH       CA certificates for the --upstream just before it only\n"
"  --ca-file PATH           CA certificates to verify upstreams with, instead of the\n"
"                           system store\n"
"  --metrics ADDR:PORT      serve Prometheus text on /metrics and health on /health\n"
"                           (e.g. 127.0.0.1:9153 or [::1]:9153)\n"
"  --mark N                 SO_MARK on the daemon's own sockets, which the rules never\n"
"                           intercept (default: 0x444)\n"
"  --timeout MS             answer SERVFAIL when no upstream answered within MS (default 3000)\n"
"  --idle-timeout MS        close upstream connections idle for MS (default 30000)\n"
"  --max-inflight N         queries waiting for upstream at once; past it REFUSED\n"
"                           (default 4096, at most 32768)\n"
"  --max-tcp-clients N      TCP client connections at once (default 256)\n"
"  --policy fastest|round-robin|ordered\n"
"                           which upstream a query goes to: the fastest by measured answer\n"
"                           time (others probed now and then), each in turn, or the first\n"
"                           usable one (default: fastest)\n"
"  --max-conns N            TLS connections per upstream, opened as load needs (default 4)\n"
"  --cache-size N|NM        answers kept in the cache, or mebibytes it may take (e.g. 64M);\n"
"                           0: no cache (default 10000 answers, in at most 32 MiB)\n"
"  --serve-stale SECONDS    when no upstream answers, serve answers expired up to SECONDS\n"
"                           ago, with a 30 s TTL (RFC 8767; default 0: never)\n"
"  --ratelimit QPS          queries a second per client address, in bursts of 2 s worth;\n"
"                           past it REFUSED (default 0: no limit)\n"
"  --client-cert PATH       TLS client certificate (PEM chain) to show upstreams that ask\n"
"  --client-key PATH        ... and its private key: readable by no one but root and the\n"
"                           daemon's group (refused when others may read it)\n"
"  --user NAME              run as NAME once the sockets are open, with only the\n"
"                           capabilities the mode needs (default: dotproxy if that user\n"
"                           exists, else nobody)\n"
"  --log stderr|syslog      where log lines go (default: stderr)\n"
"  --log-level error|warn|info|debug\n"
"                           (default: info; debug names queries: not for production)\n"
"  --log-format text|logfmt (default: text)\n"
"  --query-log              a log line per answered query, with the client's address and\n"
"                           the name asked: off by default, for privacy\n"
"  --config FILE            read settings from FILE: one \"key = value\" per line, the keys\n"
"                           are these flags' names (default: " CFG_DEFAULT_FILE "\n"
"                           if it exists). Every flag also has a variable: DOTPROXY_ and\n"
"                           its name in capitals with _ for -, e.g. DOTPROXY_UPSTREAM\n"
"                           (several values separated by spaces). Flags win over the\n"
"                           environment, which wins over the file\n"
"  --check-config FILE      check FILE, print one line per error, exit 1 if any\n"
"  --self-test [ADDR...]    client mode, as any user, no config: check that DNS from this\n"
"                           machine to ADDR (default: /etc/resolv.conf's nameservers) is\n"
"                           intercepted and answered over verified DoT; must come first\n"
"  -v, --verbose            debug logging, as --log-level debug\n"
"  -h, --help               this text\n"
"  -V, --version            print the version\n");
}

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	int base = 10;

	if (!*s || *s == '-' || *s == '+')
		return -1;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {	/* decimal or 0x hex, never octal */
		base = 16;
		s += 2;
		if (!*s)
			return -1;
	}
	errno = 0;
	v = strtoul(s, &end, base);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int config_parse_pin(const char *s, uint8_t pin[CFG_PIN_LEN], char *err, size_t errlen)
{
	unsigned char out[64];
	size_t len;
	int n;

	if (strncmp(s, "sha256/", 7) != 0)
		return errf(err, errlen, "pin \"%s\": must be sha256/BASE64", s);
	s += 7;
	len = strlen(s);
	if (len != 44)	/* base64 of 32 octets */
		return errf(err, errlen, "pin \"sha256/%s\": not the base64 of 32 octets", s);
	n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
	if (n != 33 || s[43] != '=' || s[42] == '=')	/* 32 octets + 1 from the padding */
		return errf(err, errlen, "pin \"sha256/%s\": not the base64 of 32 octets", s);
	memcpy(pin, out, CFG_PIN_LEN);
	return 0;
}

int config_parse_upstream(const char *spec, struct upstream_cfg *u, char *err, size_t errlen)
{
	char buf[512], addr[128];
	char *hash, *caret;
	size_t nlen;
	char ebuf[200];

	memset(u, 0, sizeof(*u));
	if (strlen(spec) >= sizeof(buf))
		return errf(err, errlen, "--upstream \"%.40s...\": too long", spec);
	strcpy(buf, spec);
	hash = strchr(buf, '#');
	if (!hash)
		return errf(err, errlen, "--upstream \"%s\": missing #AUTHNAME (RFC 8310 strict needs one)", spec);
	*hash++ = '\0';
	caret = strchr(hash, '^');
	if (caret)
		*caret++ = '\0';
	nlen = strlen(hash);
	if (nlen == 0)
		return errf(err, errlen, "--upstream \"%s\": missing auth name", spec);
	if (nlen > 253)
		return errf(err, errlen, "--upstream \"%s\": auth name too long", spec);
	for (size_t i = 0; i < nlen; i++) {
		char ch = hash[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '-' || ch == '.' || ch == '_'))
			return errf(err, errlen, "--upstream \"%s\": bad character in auth name", spec);
	}
	strcpy(u->name, hash);
	if (strlen(buf) >= sizeof(addr) || sock_parse(buf, '@', 853, &u->addr) < 0)
		return errf(err, errlen, "--upstream \"%s\": \"%s\" is not IP[@PORT]", spec, buf);
	while (caret) {
		char *next = strchr(caret, '^');

		if (next)
			*next++ = '\0';
		if (u->npins == CFG_MAX_PINS)
			return errf(err, errlen, "--upstream \"%s\": more than %d pins", spec, CFG_MAX_PINS);
		if (config_parse_pin(caret, u->pins[u->npins], ebuf, sizeof(ebuf)) < 0)
			return errf(err, errlen, "--upstream \"%s\": %s", spec, ebuf);
		u->npins++;
		caret = next;
	}
	{
		char a[SOCK_ADDRSTRLEN];
		const char *ip;
		char *colon;

		sock_ntop(&u->addr, a, sizeof(a));
		/* "IP:PORT" or "[IP]:PORT" into IP@PORT#NAME */
		colon = strrchr(a, ':');
		*colon = '\0';
		ip = a;
		if (a[0] == '[') {
			ip = a + 1;
			colon[-1] = '\0';
		}
		snprintf(u->label, sizeof(u->label), "%s@%s#%s", ip, colon + 1, u->name);
	}
	return 0;
}

/* ---- the settings: one table for flags, the environment and the file ---- */

enum layer { L_FILE, L_ENV, L_ARGS, L_COUNT };

enum setting_id {
	S_MODE, S_PORT, S_LISTEN, S_UPSTREAM, S_PIN, S_UPSTREAM_CA, S_CA_FILE, S_CLIENT_CERT,
	S_CLIENT_KEY, S_METRICS, S_MARK, S_TIMEOUT, S_IDLE, S_MAX_INFLIGHT, S_MAX_TCP, S_QUEUE,
	S_QUEUE_LEN, S_FAIL_OPEN, S_POLICY, S_MAX_CONNS, S_CACHE_SIZE, S_SERVE_STALE, S_RATELIMIT,
	S_USER, S_LOG, S_LOG_LEVEL, S_LOG_FORMAT, S_QUERY_LOG, S_VERBOSE, S_CONFIG, S_CHECK_CONFIG,
	S_SELF_TEST, S_HELP, S_VERSION, S_COUNT,
};

#define F_FLAG		0x01	/* no value as a flag; yes/no in the file and the environment */
#define F_REPEAT	0x02	/* each occurrence adds */
#define F_RESTART	0x04	/* a running daemon keeps the old value until restarted */
#define F_ARGS_ONLY	0x08	/* only a command-line flag */
#define F_NO_FILE	0x10	/* not in a config file */

/* Where a restart-only setting lives in struct config, to compare and keep it on reload. */
struct field {
	size_t off, len;
};

#define FIELD(m)	{ offsetof(struct config, m), sizeof(((struct config *)0)->m) }

struct setting {
	const char *key;	/* the flag's long name and the file's key */
	int flags;
	enum setting_id group;	/* settings taken together from one layer */
	char shortopt;
	struct field f[2];	/* F_RESTART: its fields */
};

static const struct setting settings[S_COUNT] = {
	[S_MODE] = { .key = "mode", .flags = F_RESTART, .group = S_MODE, .f = { FIELD(mode) } },
	[S_PORT] = { .key = "port", .flags = F_RESTART, .group = S_PORT, .f = { FIELD(port) } },
	[S_LISTEN] = { .key = "listen", .flags = F_REPEAT | F_RESTART, .group = S_LISTEN, .f = { FIELD(listen), FIELD(nlisten) } },
	/* an upstream's pins and CA follow it: the three come from one layer */
	[S_UPSTREAM] = { .key = "upstream", .flags = F_REPEAT, .group = S_UPSTREAM },
	[S_PIN] = { .key = "pin", .flags = F_REPEAT, .group = S_UPSTREAM },
	[S_UPSTREAM_CA] = { .key = "upstream-ca", .flags = F_REPEAT, .group = S_UPSTREAM },
	[S_CA_FILE] = { .key = "ca-file", .flags = 0, .group = S_CA_FILE },
	[S_CLIENT_CERT] = { .key = "client-cert", .flags = 0, .group = S_CLIENT_CERT },
	[S_CLIENT_KEY] = { .key = "client-key", .flags = 0, .group = S_CLIENT_KEY },
	[S_METRICS] = { .key = "metrics", .flags = F_RESTART, .group = S_METRICS, .f = { FIELD(metrics), FIELD(has_metrics) } },
	[S_MARK] = { .key = "mark", .flags = F_RESTART, .group = S_MARK, .f = { FIELD(mark) } },
	[S_TIMEOUT] = { .key = "timeout", .flags = 0, .group = S_TIMEOUT },
	[S_IDLE] = { .key = "idle-timeout", .flags = 0, .group = S_IDLE },
	[S_MAX_INFLIGHT] = { .key = "max-inflight", .flags = F_RESTART, .group = S_MAX_INFLIGHT, .f = { FIELD(max_inflight) } },
	[S_MAX_TCP] = { .key = "max-tcp-clients", .flags = F_RESTART, .group = S_MAX_TCP, .f = { FIELD(max_tcp_clients) } },
	[S_QUEUE] = { .key = "queue", .flags = F_RESTART, .group = S_QUEUE, .f = { FIELD(queue) } },
	[S_QUEUE_LEN] = { .key = "queue-len", .flags = F_RESTART, .group = S_QUEUE_LEN, .f = { FIELD(queue_len) } },
	[S_FAIL_OPEN] = { .key = "fail-open", .flags = F_FLAG | F_RESTART, .group = S_FAIL_OPEN, .f = { FIELD(fail_open) } },
	[S_POLICY] = { .key = "policy", .flags = 0, .group = S_POLICY },
	[S_MAX_CONNS] = { .key = "max-conns", .flags = 0, .group = S_MAX_CONNS },
	[S_CACHE_SIZE] = { .key = "cache-size", .flags = 0, .group = S_CACHE_SIZE },
	[S_SERVE_STALE] = { .key = "serve-stale", .flags = 0, .group = S_SERVE_STALE },
	[S_RATELIMIT] = { .key = "ratelimit", .flags = 0, .group = S_RATELIMIT },
	[S_USER] = { .key = "user", .flags = F_RESTART, .group = S_USER, .f = { FIELD(user) } },
	[S_LOG] = { .key = "log", .flags = 0, .group = S_LOG },
	/* -v is --log-level debug: the two are one setting */
	[S_LOG_LEVEL] = { .key = "log-level", .flags = 0, .group = S_LOG_LEVEL },
	[S_LOG_FORMAT] = { .key = "log-format", .flags = 0, .group = S_LOG_FORMAT },
	[S_QUERY_LOG] = { .key = "query-log", .flags = F_FLAG, .group = S_QUERY_LOG },
	[S_VERBOSE] = { .key = "verbose", .flags = F_FLAG, .group = S_LOG_LEVEL, .shortopt = 'v' },
	[S_CONFIG] = { .key = "config", .flags = F_NO_FILE, .group = S_CONFIG },
	[S_CHECK_CONFIG] = { .key = "check-config", .flags = F_ARGS_ONLY, .group = S_CHECK_CONFIG },
	[S_SELF_TEST] = { .key = "self-test", .flags = F_FLAG | F_ARGS_ONLY, .group = S_SELF_TEST },
	[S_HELP] = { .key = "help", .flags = F_FLAG | F_ARGS_ONLY, .group = S_HELP, .shortopt = 'h' },
	[S_VERSION] = { .key = "version", .flags = F_FLAG | F_ARGS_ONLY, .group = S_VERSION, .shortopt = 'V' },
};

/* One occurrence of a setting: its value and where it was found. */
struct entry {
	enum setting_id id;
	enum layer layer;
	int line;		/* in the file; 0 elsewhere */
	char *val;		/* owned; NULL for a flag given without a value */
};

struct parse {
	struct config *c;
	struct cfg_report *r;
	const char *file;		/* for FILE:LINE */
	struct entry *e;
	size_t n, cap;
	/* the entry that last set each setting, for errors found after all are read */
	const struct entry *last[S_COUNT];
	char listen_specs[CFG_MAX_LISTEN][128];
	bool upstream_given;		/* upstreams came from some layer: no defaults */
};

const char *config_mode_name(enum cfg_mode mode)
{
	switch (mode) {
	case MODE_REDIRECT:
		return "redirect";
	case MODE_NFQUEUE:
		return "nfqueue";
	default:
		return "tproxy";
	}
}

static void report(struct cfg_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(struct cfg_report *r, const char *fmt, ...)
{
	va_list ap;

	if (r->n < CFG_MAX_ERRORS) {
		va_start(ap, fmt);
		vsnprintf(r->msg[r->n], sizeof(r->msg[0]), fmt, ap);
		va_end(ap);
	}
	r->n++;
}

/* How a setting is named where @e was found: --port, DOTPROXY_PORT or port. */
static const char *name_in(enum setting_id id, enum layer layer, char *buf, size_t len)
{
	const char *k = settings[id].key;

	if (layer == L_ARGS) {
		snprintf(buf, len, "--%s", k);
	} else if (layer == L_ENV) {
		size_t i = (size_t)snprintf(buf, len, "DOTPROXY_");

		for (; *k && i + 1 < len; k++)
			buf[i++] = *k == '-' ? '_' : (char)toupper((unsigned char)*k);
		buf[i] = '\0';
	} else {
		snprintf(buf, len, "%s", k);
	}
	return buf;
}

/* Record an error about @e: "FILE:LINE: " before it when it came from the file. */
static void report_at(struct parse *p, const struct entry *e, const char *msg)
{
	if (e && e->layer == L_FILE)
		report(p->r, "%s:%d: %s", p->file, e->line, msg);
	else
		report(p->r, "%s", msg);
}

static int parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" }, *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return *out = true, 0;
		if (strcasecmp(v, no[i]) == 0)
			return *out = false, 0;
	}
	return -1;
}

static int set_path(char *dst, const char *v, const char *name, char *err, size_t errlen)
{
	if (!*v)
		return errf(err, errlen, "%s: empty path", name);
	if (strlen(v) >= CFG_PATH_MAX)
		return errf(err, errlen, "%s \"%.40s...\": path too long", name, v);
	strcpy(dst, v);
	return 0;
}

/*
 * Apply one value of setting @id to the config. @name is how the user wrote
 * it (--mode, DOTPROXY_MODE, mode), @v its value ("yes"/"no" for a flag).
 * Returns 0, CFG_PARSE_EXIT, or -1 with @err set.
 */
static int apply(struct parse *p, const struct entry *en, char *err, size_t errlen)
{
	struct config *c = p->c;
	enum setting_id id = en->id;
	char nbuf[64], obuf[64];
	const char *name = name_in(id, en->layer, nbuf, sizeof(nbuf));
	const char *v = en->val ? en->val : "yes";
	char ebuf[400];
	unsigned long n;
	bool b = false;

	if ((settings[id].flags & F_FLAG) && parse_bool(v, &b) < 0)
		return errf(err, errlen, "%s \"%s\": must be yes or no", name, v);
	switch (id) {
	case S_MODE:
		if (strcmp(v, "tproxy") == 0)
			c->mode = MODE_TPROXY;
		else if (strcmp(v, "redirect") == 0)
			c->mode = MODE_REDIRECT;
		else if (strcmp(v, "nfqueue") == 0)
			c->mode = MODE_NFQUEUE;
		else
			return errf(err, errlen, "%s \"%s\": must be tproxy, redirect or nfqueue", name, v);
		break;
	case S_PORT:
		if (parse_uint(v, 1, 65535, &n) < 0)
			return errf(err, errlen, "%s \"%s\": must be a port number 1-65535", name, v);
		c->port = (uint16_t)n;
		break;
	case S_LISTEN:
		if (c->nlisten == CFG_MAX_LISTEN)
			return errf(err, errlen, "%s: at most %d addresses", name, CFG_MAX_LISTEN);
		if (strlen(v) >= sizeof(p->listen_specs[0]))
			return errf(err, errlen, "%s \"%.40s...\": too long", name, v);
		/* parsed once all are read, when the port is known */
		strcpy(p->listen_specs[c->nlisten++], v);
		break;
	case S_UPSTREAM:
		if (c->nupstreams == CFG_MAX_UPSTREAMS)
			return errf(err, errlen, "%s: at most %d upstreams", name, CFG_MAX_UPSTREAMS);
		if (config_parse_upstream(v, &c->upstreams[c->nupstreams], ebuf, sizeof(ebuf)) < 0)
			/* its messages say --upstream: name it as the user wrote it */
			return errf(err, errlen, "%s%s", name, ebuf + (strncmp(ebuf, "--upstream", 10) ? 0 : 10));
		c->nupstreams++;
		break;
	case S_PIN: {
		struct upstream_cfg *u;

		if (c->nupstreams == 0)
			return errf(err, errlen, "%s \"%s\": must follow the %s it pins", name, v,
				    name_in(S_UPSTREAM, en->layer, obuf, sizeof(obuf)));
		u = &c->upstreams[c->nupstreams - 1];
		if (u->npins == CFG_MAX_PINS)
			return errf(err, errlen, "%s: at most %d pins per upstream", name, CFG_MAX_PINS);
		if (config_parse_pin(v, u->pins[u->npins], ebuf, sizeof(ebuf)) < 0)
			return errf(err, errlen, "%s: %s", name, ebuf);
		u->npins++;
		break;
	}
	case S_UPSTREAM_CA:
		if (c->nupstreams == 0)
			return errf(err, errlen, "%s \"%s\": must follow the %s it is for", name, v,
				    name_in(S_UPSTREAM, en->layer, obuf, sizeof(obuf)));
		return set_path(c->upstreams[c->nupstreams - 1].ca_file, v, name, err, errlen);
	case S_CA_FILE:
		return set_path(c->ca_file, v, name, err, errlen);
	case S_CLIENT_CERT:
		return set_path(c->client_cert, v, name, err, errlen);
	case S_CLIENT_KEY:
		return set_path(c->client_key, v, name, err, errlen);
	case S_METRICS:
		if (sock_parse(v, ':', 0, &c->metrics) < 0 || sock_port(&c->metrics) == 0)
			return errf(err, errlen, "%s \"%s\": must be ADDR:PORT (e.g. 127.0.0.1:9153 or [::1]:9153)", name, v);
		c->has_metrics = true;
		break;
	case S_MARK:
		if (parse_uint(v, 1, 0xffffffffUL, &n) < 0)
			return errf(err, errlen, "%s \"%s\": must be a number 1-0xffffffff", name, v);
		c->mark = (uint32_t)n;
		break;
	case S_TIMEOUT:
		if (parse_uint(v, 100, 60000, &n) < 0)
			return errf(err, errlen, "%s \"%s\": must be 100-60000 ms", name, v);
		c->timeout_ms = (unsigned)n;
		break;
	case S_IDLE:
		if (parse_uint(v, 100, 3600000, &n) < 0)
			return errf(err, errlen, "%s \"%s\": must be 100-3600000 ms", name, v);
		c->idle_timeout_ms = (unsigned)n;
		break;
	case S_MAX_INFLIGHT:
		if (parse_uint(v, 1, 32768, &n) < 0)
			return errf(err, errlen, "%s \"%s\": must be 1-32768", name, v);
		c->max_inflight = (unsigned)n;
		break;
	case S_MAX_TCP:
		if (parse_uint(v, 1, 65536, &n) < 0)
			return errf(err, errlen, "%s \"%s\": must be 1-65536", name, v);
		c->max_tcp_clients = (unsigned)n;
		break;
	case S_QUEUE:
		if (parse_uint(v, 0, 65535, &n) < 0)
			return errf(err, errlen, "%s \"%s\": must be a queue number 0-65535", name, v);
		c->queue = (uint16_t)n;
		break;
	case S_QUEUE_LEN:
		if (parse_uint(v, 1, 1048576, &n) < 0)
			return errf(err, errlen, "%s \"%s\": must be 1-1048576", name, v);
		c->queue_len = (unsigned)n;
		break;
	case S_FAIL_OPEN:
		c->fail_open = b;
		break;
	case S_POLICY:
		if (strcmp(v, "fastest") == 0)
			c->policy = POLICY_FASTEST;
		else if (strcmp(v, "round-robin") == 0)
			c->policy = POLICY_ROUND_ROBIN;
		else if (strcmp(v, "ordered") == 0)
			c->policy = POLICY_ORDERED;
		else
			return errf(err, errlen, "%s \"%s\": must be fastest, round-robin or ordered", name, v);
		break;
	case S_MAX_CONNS:
		if (parse_uint(v, 1, CFG_MAX_CONNS, &n) < 0)
			return errf(err, errlen, "%s \"%s\": must be 1-%d", name, v, CFG_MAX_CONNS);
		c->max_conns = (unsigned)n;
		break;
	case S_CACHE_SIZE: {
		/* N answers, or NM mebibytes (then as many answers as fit) */
		char num[32];
		size_t l = strlen(v);
		bool mib = l > 1 && (v[l - 1] == 'M' || v[l - 1] == 'm');

		if (l >= sizeof(num))
			return errf(err, errlen, "%s \"%.20s...\": too long", name, v);
		memcpy(num, v, l + 1);
		if (mib)
			num[l - 1] = '\0';
		if (parse_uint(num, 0, mib ? 65536 : 10000000, &n) < 0)
			return errf(err, errlen, "%s \"%s\": must be 0-10000000 answers or 0M-65536M", name, v);
		if (mib) {
			c->cache_bytes = (size_t)n << 20;
			c->cache_size = n ? 10000000 : 0;
		} else {
			c->cache_size = (unsigned)n;
			c->cache_bytes = CFG_CACHE_BYTES;
		}
		break;
	}
	case S_SERVE_STALE:
		if (parse_uint(v, 0, 604800, &n) < 0)
			return errf(err, errlen, "%s \"%s\": must be 0-604800 seconds", name, v);
		c->serve_stale_s = (unsigned)n;
		break;
	case S_RATELIMIT:
		if (parse_uint(v, 0, 1000000, &n) < 0)
			return errf(err, errlen, "%s \"%s\": must be 0-1000000 queries a second", name, v);
		c->ratelimit = (unsigned)n;
		break;
	case S_USER: {
		size_t l = strlen(v);

		if (!l || l >= sizeof(c->user) || strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != l)
			return errf(err, errlen, "%s \"%.40s\": must be a user name of 1-%zu characters (letters, digits, . _ -)",
				    name, v, sizeof(c->user) - 1);
		strcpy(c->user, v);
		break;
	}
	case S_LOG:
		if (log_parse_target(v, &c->log_target) < 0)
			return errf(err, errlen, "%s \"%s\": must be stderr or syslog", name, v);
		break;
	case S_LOG_LEVEL:
		if (log_parse_level(v, &c->log_level) < 0)
			return errf(err, errlen, "%s \"%s\": must be error, warn, info or debug", name, v);
		c->verbose = c->log_level == LOG_LVL_DEBUG;
		break;
	case S_LOG_FORMAT:
		if (log_parse_format(v, &c->log_format) < 0)
			return errf(err, errlen, "%s \"%s\": must be text or logfmt", name, v);
		break;
	case S_QUERY_LOG:
		c->query_log = b;
		break;
	case S_VERBOSE:
		c->verbose = b;
		c->log_level = b ? LOG_LVL_DEBUG : LOG_LVL_INFO;
		break;
	case S_CONFIG:	/* config_load() read it already; config_file names what was read */
		break;
	case S_CHECK_CONFIG:
		return set_path(c->check_config, v, name, err, errlen);
	case S_SELF_TEST:	/* main.c takes it when it comes first */
		return errf(err, errlen, "%s: must come first (dotproxy --self-test [ADDR...])", name);
	case S_HELP:
		config_usage();
		return CFG_PARSE_EXIT;
	case S_VERSION:
		printf("dotproxy %s\n", DOTPROXY_VERSION);
		return CFG_PARSE_EXIT;
	case S_COUNT:
		break;
	}
	return 0;
}

static void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->mode = MODE_TPROXY;
	c->port = 5353;
	c->mark = 0x444;
	c->timeout_ms = 3000;
	c->idle_timeout_ms = 30000;
	c->max_inflight = 4096;
	c->max_tcp_clients = 256;
	c->queue_len = 1024;
	c->policy = POLICY_FASTEST;
	c->max_conns = 4;
	c->cache_size = 10000;
	c->cache_bytes = CFG_CACHE_BYTES;
	c->log_level = LOG_LVL_INFO;
}

static int add_entry(struct parse *p, enum setting_id id, enum layer layer, int line, const char *val)
{
	struct entry *e;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 32;
		struct entry *ne = realloc(p->e, cap * sizeof(*ne));

		if (!ne)
			return -1;
		p->e = ne;
		p->cap = cap;
	}
	e = &p->e[p->n];
	e->val = val ? strdup(val) : NULL;
	if (val && !e->val)
		return -1;
	e->id = id;
	e->layer = layer;
	e->line = line;
	p->n++;
	return 0;
}

static void parse_free(struct parse *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->e[i].val);
	free(p->e);
}

static enum setting_id setting_find(const char *key)
{
	for (int i = 0; i < S_COUNT; i++)
		if (strcmp(settings[i].key, key) == 0)
			return (enum setting_id)i;
	return S_COUNT;
}

/* ---- the command line ---- */

static int args_collect(struct parse *p, int argc, char **argv)
{
	struct option opts[S_COUNT + 1];
	char shorts[16] = ":";
	char err[600];
	int opt, idx;

	memset(opts, 0, sizeof(opts));
	for (int i = 0; i < S_COUNT; i++) {
		opts[i].name = settings[i].key;
		opts[i].has_arg = settings[i].flags & F_FLAG ? no_argument : required_argument;
		opts[i].val = 256 + i;
		if (settings[i].shortopt) {
			size_t l = strlen(shorts);

			shorts[l] = settings[i].shortopt;
			shorts[l + 1] = '\0';
		}
	}
	opterr = 0;
	optind = 0;	/* glibc: 0 resets fully, also a half-parsed short-option cluster */
	while ((opt = getopt_long(argc, argv, shorts, opts, &idx)) != -1) {
		char shortname[3] = { '-', (char)optopt, '\0' };
		/* a short option (possibly inside a cluster) by optopt, a long one by its argv word */
		const char *name = optopt > 0 && optopt < 256 ? shortname :
				   optind > 1 && optind <= argc ? argv[optind - 1] : "?";
		enum setting_id id = S_COUNT;

		if (opt >= 256 && opt < 256 + S_COUNT)
			id = (enum setting_id)(opt - 256);
		for (int i = 0; i < S_COUNT && id == S_COUNT; i++)
			if (settings[i].shortopt && settings[i].shortopt == opt)
				id = (enum setting_id)i;
		if (opt == ':') {
			snprintf(err, sizeof(err), "%s: needs a value", name);
			report(p->r, "%s", err);
			return -1;
		}
		if (id == S_COUNT) {
			report(p->r, "%s: unknown option (see --help)", name);
			return -1;
		}
		if (add_entry(p, id, L_ARGS, 0, settings[id].flags & F_FLAG ? NULL : optarg) < 0) {
			report(p->r, "out of memory");
			return -1;
		}
	}
	if (optind < argc) {
		report(p->r, "\"%s\": unexpected argument (see --help)", argv[optind]);
		return -1;
	}
	return 0;
}

/* ---- the environment ---- */

static int env_collect(struct parse *p, char *const *envp)
{
	for (; envp && *envp; envp++) {
		const char *eq = strchr(*envp, '=');

		if (strncmp(*envp, "DOTPROXY_", 9) != 0 || !eq)
			continue;
		for (int i = 0; i < S_COUNT; i++) {
			char nbuf[64];
			const char *val = eq + 1;

			if (settings[i].flags & F_ARGS_ONLY)
				continue;
			name_in((enum setting_id)i, L_ENV, nbuf, sizeof(nbuf));
			if (strlen(nbuf) != (size_t)(eq - *envp) || strncmp(nbuf, *envp, strlen(nbuf)) != 0)
				continue;
			/* several values, separated by white space; an empty variable is not set */
			while (*val) {
				char word[1024];
				size_t l;

				val += strspn(val, " \t\n");
				l = strcspn(val, " \t\n");
				if (!l)
					break;
				if (!(settings[i].flags & F_REPEAT) && val[l + strspn(val + l, " \t\n")]) {
					report(p->r, "%s: one value only", nbuf);
					return -1;
				}
				if (l >= sizeof(word)) {
					report(p->r, "%s: value too long", nbuf);
					return -1;
				}
				memcpy(word, val, l);
				word[l] = '\0';
				if (add_entry(p, (enum setting_id)i, L_ENV, 0, word) < 0) {
					report(p->r, "out of memory");
					return -1;
				}
				val += l;
			}
		}
	}
	return 0;
}

/* ---- the file ---- */

/*
 * One line of the file: "key = value", a "# comment" or nothing. A value may
 * be "double quoted" (\" and \\ inside); unquoted, it ends at white space
 * followed by #, or at the end of the line. Returns 0 (entry added or
 * nothing there) or -1 (error reported, reading goes on).
 */
static int file_line(struct parse *p, char *s, int lineno)
{
	char *key, *val, *end;
	enum setting_id id;

	for (char *q = s; *q; q++)
		if ((unsigned char)*q < 0x20 && *q != '\t') {
			report(p->r, "%s:%d: a control character in the line", p->file, lineno);
			return -1;
		}
	s += strspn(s, " \t");
	if (!*s || *s == '#')
		return 0;
	key = s;
	s += strcspn(s, " \t=");
	end = s;
	s += strspn(s, " \t");
	if (*s != '=') {
		*end = '\0';
		report(p->r, "%s:%d: \"%.60s\": expected KEY = VALUE", p->file, lineno, key);
		return -1;
	}
	*end = '\0';
	s++;
	s += strspn(s, " \t");
	id = setting_find(key);
	if (id == S_COUNT) {
		report(p->r, "%s:%d: \"%.60s\": unknown key (the keys are the long flags' names, see --help)",
		       p->file, lineno, key);
		return -1;
	}
	if (settings[id].flags & (F_ARGS_ONLY | F_NO_FILE)) {
		report(p->r, "%s:%d: %s: only on the command line", p->file, lineno, key);
		return -1;
	}
	if (*s == '"') {
		char *w = ++s;

		val = w;
		for (;; s++) {
			if (!*s) {
				report(p->r, "%s:%d: %s: the quoted value does not end", p->file, lineno, key);
				return -1;
			}
			if (*s == '"')
				break;
			if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
				s++;
			*w++ = *s;
		}
		s++;
		*w = '\0';
		s += strspn(s, " \t");
		if (*s && *s != '#') {
			report(p->r, "%s:%d: %s: something after the quoted value", p->file, lineno, key);
			return -1;
		}
	} else {
		/* to the end of the line, less a comment: white space, then # */
		val = s;
		for (; *s; s++)
			if ((*s == ' ' || *s == '\t') && s[strspn(s, " \t")] == '#')
				break;
		*s = '\0';
		while (s > val && (s[-1] == ' ' || s[-1] == '\t'))
			*--s = '\0';
		if (strpbrk(val, " \t")) {
			report(p->r, "%s:%d: %s: a value with spaces needs \"double quotes\"", p->file, lineno, key);
			return -1;
		}
	}
	if (!*val) {
		report(p->r, "%s:%d: %s: needs a value", p->file, lineno, key);
		return -1;
	}
	if (add_entry(p, id, L_FILE, lineno, val) < 0) {
		report(p->r, "out of memory");
		return -1;
	}
	return 0;
}

/* Read @path into entries. @must: a missing file is an error (named, not the default). */
static int file_collect(struct parse *p, const char *path, bool must)
{
	char line[4096];
	int lineno = 0, before = p->r->n;
	FILE *f = fopen(path, "re");

	p->file = path;
	if (!f) {
		if (!must && errno == ENOENT)
			return 0;
		report(p->r, "%s: %s", path, strerror(errno));
		return -1;
	}
	strcpy(p->c->config_file, path);	/* set_path checked its length */
	while (fgets(line, sizeof(line), f)) {
		size_t l = strlen(line);

		lineno++;
		if (l && line[l - 1] == '\n')
			line[--l] = '\0';
		else if (!feof(f)) {
			int ch;

			report(p->r, "%s:%d: line longer than %zu characters", path, lineno, sizeof(line) - 2);
			while ((ch = fgetc(f)) != EOF && ch != '\n')
				;
			continue;
		}
		if (l && line[l - 1] == '\r')
			line[--l] = '\0';
		file_line(p, line, lineno);
	}
	if (ferror(f))
		report(p->r, "%s: read error", path);
	fclose(f);
	return p->r->n > before ? -1 : 0;
}

/* ---- putting the layers together ---- */

/* Apply the entries, each setting from the highest layer that has it; then cross-checks. */
static int resolve(struct parse *p)
{
	enum layer top[S_COUNT];
	struct config *c = p->c;
	char err[600], nbuf[64];
	int before = p->r->n;

	for (int i = 0; i < S_COUNT; i++)
		top[i] = L_FILE;
	for (size_t i = 0; i < p->n; i++)
		if (p->e[i].layer > top[settings[p->e[i].id].group])
			top[settings[p->e[i].id].group] = p->e[i].layer;
	for (int layer = L_FILE; layer < L_COUNT; layer++) {
		for (size_t i = 0; i < p->n; i++) {
			const struct entry *e = &p->e[i];
			int rc;

			if (e->layer != (enum layer)layer || top[settings[e->id].group] != e->layer)
				continue;
			rc = apply(p, e, err, sizeof(err));
			if (rc == CFG_PARSE_EXIT)
				return rc;
			if (rc < 0) {
				report_at(p, e, err);
				continue;
			}
			p->last[e->id] = e;
		}
	}
	if (c->check_config[0])
		return p->r->n > before ? -1 : CFG_PARSE_CHECK;
	if (p->last[S_LISTEN] && c->mode != MODE_REDIRECT) {
		snprintf(err, sizeof(err), "%s: only with mode redirect (%s listens where the rules send)",
			 name_in(S_LISTEN, p->last[S_LISTEN]->layer, nbuf, sizeof(nbuf)), config_mode_name(c->mode));
		report_at(p, p->last[S_LISTEN], err);
	}
	if (c->mode != MODE_NFQUEUE) {
		static const enum setting_id nfq_only[] = { S_QUEUE, S_QUEUE_LEN, S_FAIL_OPEN };

		for (size_t i = 0; i < sizeof(nfq_only) / sizeof(nfq_only[0]); i++) {
			const struct entry *e = p->last[nfq_only[i]];

			if (!e)
				continue;
			snprintf(err, sizeof(err), "%s: only with mode nfqueue", name_in(e->id, e->layer, nbuf, sizeof(nbuf)));
			report_at(p, e, err);
		}
	}
	if (c->serve_stale_s && !c->cache_size) {
		const struct entry *e = p->last[S_SERVE_STALE];

		snprintf(err, sizeof(err), "%s: needs the cache (cache-size above 0)",
			 name_in(S_SERVE_STALE, e ? e->layer : L_ARGS, nbuf, sizeof(nbuf)));
		report_at(p, e, err);
	}
	if ((c->client_cert[0] != 0) != (c->client_key[0] != 0)) {
		const struct entry *e = p->last[c->client_cert[0] ? S_CLIENT_CERT : S_CLIENT_KEY];

		snprintf(err, sizeof(err), "%s: needs %s too", name_in(e->id, e->layer, nbuf, sizeof(nbuf)),
			 c->client_cert[0] ? "a client key" : "a client certificate");
		report_at(p, e, err);
	}
	for (int i = 0; i < c->nlisten; i++)
		if (sock_parse(p->listen_specs[i], '@', c->port, &c->listen[i]) < 0) {
			const struct entry *e = NULL;
			int k = 0;

			for (size_t j = 0; j < p->n; j++)	/* the i-th listen applied */
				if (p->e[j].id == S_LISTEN && top[S_LISTEN] == p->e[j].layer && k++ == i)
					e = &p->e[j];
			snprintf(err, sizeof(err), "%s \"%s\": must be ADDR[@PORT]",
				 name_in(S_LISTEN, e ? e->layer : L_ARGS, nbuf, sizeof(nbuf)), p->listen_specs[i]);
			report_at(p, e, err);
		}
	if (c->nupstreams == 0) {
		for (size_t i = 0; i < sizeof(default_upstreams) / sizeof(default_upstreams[0]); i++)
			if (config_parse_upstream(default_upstreams[i], &c->upstreams[c->nupstreams++], err, sizeof(err)) < 0)
				report(p->r, "%s", err);
	}
	return p->r->n > before ? -1 : 0;
}

int config_parse_args(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
	struct cfg_report r = { 0 };
	struct parse p = { .c = c, .r = &r };
	int rc;

	config_defaults(c);
	rc = args_collect(&p, argc, argv);
	if (rc == 0)
		rc = resolve(&p);
	parse_free(&p);
	if (rc < 0)
		snprintf(err, errlen, "%s", r.n ? r.msg[0] : "invalid settings");
	return rc;
}

int config_load(struct config *c, int argc, char **argv, char *const *envp, struct cfg_report *r)
{
	static const enum setting_id early[] = { S_HELP, S_VERSION, S_CHECK_CONFIG };
	struct parse p = { .c = c, .r = r };
	const char *file = NULL;
	enum layer layer = L_FILE;
	bool named = false;
	int rc;

	memset(r, 0, sizeof(*r));
	config_defaults(c);
	if (args_collect(&p, argc, argv) < 0 || env_collect(&p, envp) < 0) {
		parse_free(&p);
		return -1;
	}
	/* --help, --version, --check-config: nothing else matters */
	for (size_t k = 0; k < sizeof(early) / sizeof(early[0]); k++)
		for (size_t i = 0; i < p.n; i++) {
			char err[600];

			if (p.e[i].id != early[k] || p.e[i].layer != L_ARGS)
				continue;
			rc = apply(&p, &p.e[i], err, sizeof(err));
			parse_free(&p);
			if (rc < 0)
				report(r, "%s", err);
			return rc < 0 ? rc : early[k] == S_CHECK_CONFIG ? CFG_PARSE_CHECK : rc;
		}
	/* which file: --config, else DOTPROXY_CONFIG, else the default if it is there */
	for (size_t i = 0; i < p.n; i++)
		if (p.e[i].id == S_CONFIG && (!named || p.e[i].layer >= layer)) {
			file = p.e[i].val;
			layer = p.e[i].layer;
			named = true;
		}
	if (!file)
		file = CFG_DEFAULT_FILE;
	if (strlen(file) >= CFG_PATH_MAX) {
		report(r, "config file \"%.40s...\": path too long", file);
		parse_free(&p);
		return -1;
	}
	/* an empty name or "none": no file, not even the default */
	if (*file && strcmp(file, "none") != 0)
		file_collect(&p, file, named);
	rc = resolve(&p);
	if (rc == 0)
		config_check_files(c, r);
	parse_free(&p);
	return r->n ? -1 : rc;
}

int config_check_file(struct config *c, const char *path, struct cfg_report *r)
{
	struct parse p = { .c = c, .r = r };

	memset(r, 0, sizeof(*r));
	config_defaults(c);
	file_collect(&p, path, true);
	if (resolve(&p) == 0)
		config_check_files(c, r);
	parse_free(&p);
	return r->n ? -1 : 0;
}

/* ---- secrets ---- */

void config_check_files(const struct config *c, struct cfg_report *r)
{
	struct stat st;

	if (c->config_file[0] && stat(c->config_file, &st) == 0) {
		if (st.st_mode & S_IWOTH)
			report(r, "%s: others may write it, and it decides where DNS goes: chmod o-w %s",
			       c->config_file, c->config_file);
		if (c->client_key[0] && (st.st_mode & S_IROTH))
			report(r, "%s: names a private key and others may read it: chmod o-r %s",
			       c->config_file, c->config_file);
	}
	if (c->client_key[0]) {
		if (stat(c->client_key, &st) < 0)
			report(r, "client-key \"%s\": %s", c->client_key, strerror(errno));
		else if (!S_ISREG(st.st_mode))
			report(r, "client-key \"%s\": not a regular file", c->client_key);
		else if (st.st_mode & (S_IROTH | S_IWOTH))
			report(r, "client-key \"%s\": others may read or write this private key: chmod o-rw %s",
			       c->client_key, c->client_key);
	}
	if (c->client_cert[0]) {
		/* opened as the TLS setup will open it (no access(2): not in the seccomp list) */
		FILE *f = fopen(c->client_cert, "re");

		if (!f)
			report(r, "client-cert \"%s\": %s", c->client_cert, strerror(errno));
		else
			fclose(f);
	}
}

/* ---- reload ---- */

void config_restart_only(const struct config *old, const struct config *c, char *out, size_t outlen)
{
	size_t len = 0;

	out[0] = '\0';
	for (int i = 0; i < S_COUNT; i++)
		for (int k = 0; k < 2 && (settings[i].flags & F_RESTART); k++) {
			const struct field *f = &settings[i].f[k];

			if (f->len && memcmp((const char *)old + f->off, (const char *)c + f->off, f->len) != 0) {
				if (len < outlen)
					len += (size_t)snprintf(out + len, outlen - len, "%s%s", len ? ", " : "",
								settings[i].key);
				break;
			}
		}
}

void config_keep_restart_only(const struct config *old, struct config *c)
{
	for (int i = 0; i < S_COUNT; i++)
		for (int k = 0; k < 2 && (settings[i].flags & F_RESTART); k++) {
			const struct field *f = &settings[i].f[k];

			memcpy((char *)c + f->off, (const char *)old + f->off, f->len);
		}
}

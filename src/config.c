/*
 * config.c - command-line flags into struct config. Every error is one line
 * naming the flag and the value; nothing is changed on the system here.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
"  --user NAME              run as NAME once every socket is open, with only the\n"
"                           capabilities the mode needs (default: dotproxy if that user\n"
"                           exists, else nobody)\n"
"  -v, --verbose            debug logging (names queries: not for production)\n"
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

enum {
	OPT_MODE = 256, OPT_PORT, OPT_LISTEN, OPT_UPSTREAM, OPT_PIN, OPT_CA_FILE, OPT_METRICS,
	OPT_MARK, OPT_TIMEOUT, OPT_IDLE, OPT_MAX_INFLIGHT, OPT_MAX_TCP, OPT_QUEUE, OPT_QUEUE_LEN,
	OPT_FAIL_OPEN, OPT_UPSTREAM_CA, OPT_POLICY, OPT_MAX_CONNS, OPT_CACHE_SIZE, OPT_SERVE_STALE, OPT_RATELIMIT,
	OPT_USER,
};

static const struct option long_opts[] = {
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "port", required_argument, NULL, OPT_PORT },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "upstream", required_argument, NULL, OPT_UPSTREAM },
	{ "pin", required_argument, NULL, OPT_PIN },
	{ "upstream-ca", required_argument, NULL, OPT_UPSTREAM_CA },
	{ "ca-file", required_argument, NULL, OPT_CA_FILE },
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ "mark", required_argument, NULL, OPT_MARK },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE },
	{ "max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT },
	{ "max-tcp-clients", required_argument, NULL, OPT_MAX_TCP },
	{ "queue", required_argument, NULL, OPT_QUEUE },
	{ "queue-len", required_argument, NULL, OPT_QUEUE_LEN },
	{ "fail-open", no_argument, NULL, OPT_FAIL_OPEN },
	{ "policy", required_argument, NULL, OPT_POLICY },
	{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
	{ "cache-size", required_argument, NULL, OPT_CACHE_SIZE },
	{ "serve-stale", required_argument, NULL, OPT_SERVE_STALE },
	{ "ratelimit", required_argument, NULL, OPT_RATELIMIT },
	{ "user", required_argument, NULL, OPT_USER },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
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

int config_parse_args(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
	const char *nfq_flag = NULL;	/* an nfqueue-only flag given, for the error */
	char listen_specs[CFG_MAX_LISTEN][128];
	char ebuf[400];
	unsigned long v;
	int opt;

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

	opterr = 0;
	optind = 0;	/* glibc: 0 resets fully, also a half-parsed short-option cluster */
	while ((opt = getopt_long(argc, argv, ":vhV", long_opts, NULL)) != -1) {
		char shortname[3] = { '-', (char)optopt, '\0' };
		/* a short option (possibly inside a cluster) by optopt, a long one by its argv word */
		const char *name = optopt > 0 && optopt < 256 ? shortname :
				   optind > 1 && optind <= argc ? argv[optind - 1] : "?";

		switch (opt) {
		case OPT_MODE:
			if (strcmp(optarg, "tproxy") == 0)
				c->mode = MODE_TPROXY;
			else if (strcmp(optarg, "redirect") == 0)
				c->mode = MODE_REDIRECT;
			else if (strcmp(optarg, "nfqueue") == 0)
				c->mode = MODE_NFQUEUE;
			else
				return errf(err, errlen, "--mode \"%s\": must be tproxy, redirect or nfqueue", optarg);
			break;
		case OPT_PORT:
			if (parse_uint(optarg, 1, 65535, &v) < 0)
				return errf(err, errlen, "--port \"%s\": must be a port number 1-65535", optarg);
			c->port = (uint16_t)v;
			break;
		case OPT_LISTEN:
			if (c->nlisten == CFG_MAX_LISTEN)
				return errf(err, errlen, "--listen: at most %d addresses", CFG_MAX_LISTEN);
			if (strlen(optarg) >= sizeof(listen_specs[0]))
				return errf(err, errlen, "--listen \"%.40s...\": too long", optarg);
			/* parsed after all flags, once --port is known */
			strcpy(listen_specs[c->nlisten++], optarg);
			break;
		case OPT_UPSTREAM:
			if (c->nupstreams == CFG_MAX_UPSTREAMS)
				return errf(err, errlen, "--upstream: at most %d upstreams", CFG_MAX_UPSTREAMS);
			if (config_parse_upstream(optarg, &c->upstreams[c->nupstreams], err, errlen) < 0)
				return -1;
			c->nupstreams++;
			break;
		case OPT_PIN: {
			struct upstream_cfg *u;

			if (c->nupstreams == 0)
				return errf(err, errlen, "--pin \"%s\": must follow the --upstream it pins", optarg);
			u = &c->upstreams[c->nupstreams - 1];
			if (u->npins == CFG_MAX_PINS)
				return errf(err, errlen, "--pin: at most %d pins per upstream", CFG_MAX_PINS);
			if (config_parse_pin(optarg, u->pins[u->npins], ebuf, sizeof(ebuf)) < 0)
				return errf(err, errlen, "--pin: %s", ebuf);
			u->npins++;
			break;
		}
		case OPT_UPSTREAM_CA:
			if (c->nupstreams == 0)
				return errf(err, errlen, "--upstream-ca \"%s\": must follow the --upstream it is for", optarg);
			if (!*optarg)
				return errf(err, errlen, "--upstream-ca: empty path");
			c->upstreams[c->nupstreams - 1].ca_file = optarg;
			break;
		case OPT_CA_FILE:
			if (!*optarg)
				return errf(err, errlen, "--ca-file: empty path");
			c->ca_file = optarg;
			break;
		case OPT_METRICS:
			if (sock_parse(optarg, ':', 0, &c->metrics) < 0 || sock_port(&c->metrics) == 0)
				return errf(err, errlen, "--metrics \"%s\": must be ADDR:PORT (e.g. 127.0.0.1:9153 or [::1]:9153)", optarg);
			c->has_metrics = true;
			break;
		case OPT_MARK:
			if (parse_uint(optarg, 1, 0xffffffffUL, &v) < 0)
				return errf(err, errlen, "--mark \"%s\": must be a number 1-0xffffffff", optarg);
			c->mark = (uint32_t)v;
			break;
		case OPT_TIMEOUT:
			if (parse_uint(optarg, 100, 60000, &v) < 0)
				return errf(err, errlen, "--timeout \"%s\": must be 100-60000 ms", optarg);
			c->timeout_ms = (unsigned)v;
			break;
		case OPT_IDLE:
			if (parse_uint(optarg, 100, 3600000, &v) < 0)
				return errf(err, errlen, "--idle-timeout \"%s\": must be 100-3600000 ms", optarg);
			c->idle_timeout_ms = (unsigned)v;
			break;
		case OPT_MAX_INFLIGHT:
			if (parse_uint(optarg, 1, 32768, &v) < 0)
				return errf(err, errlen, "--max-inflight \"%s\": must be 1-32768", optarg);
			c->max_inflight = (unsigned)v;
			break;
		case OPT_MAX_TCP:
			if (parse_uint(optarg, 1, 65536, &v) < 0)
				return errf(err, errlen, "--max-tcp-clients \"%s\": must be 1-65536", optarg);
			c->max_tcp_clients = (unsigned)v;
			break;
		case OPT_QUEUE:
			if (parse_uint(optarg, 0, 65535, &v) < 0)
				return errf(err, errlen, "--queue \"%s\": must be a queue number 0-65535", optarg);
			c->queue = (uint16_t)v;
			nfq_flag = "--queue";
			break;
		case OPT_QUEUE_LEN:
			if (parse_uint(optarg, 1, 1048576, &v) < 0)
				return errf(err, errlen, "--queue-len \"%s\": must be 1-1048576", optarg);
			c->queue_len = (unsigned)v;
			nfq_flag = "--queue-len";
			break;
		case OPT_FAIL_OPEN:
			c->fail_open = true;
			nfq_flag = "--fail-open";
			break;
		case OPT_POLICY:
			if (strcmp(optarg, "fastest") == 0)
				c->policy = POLICY_FASTEST;
			else if (strcmp(optarg, "round-robin") == 0)
				c->policy = POLICY_ROUND_ROBIN;
			else if (strcmp(optarg, "ordered") == 0)
				c->policy = POLICY_ORDERED;
			else
				return errf(err, errlen, "--policy \"%s\": must be fastest, round-robin or ordered", optarg);
			break;
		case OPT_MAX_CONNS:
			if (parse_uint(optarg, 1, CFG_MAX_CONNS, &v) < 0)
				return errf(err, errlen, "--max-conns \"%s\": must be 1-%d", optarg, CFG_MAX_CONNS);
			c->max_conns = (unsigned)v;
			break;
		case OPT_CACHE_SIZE: {
			/* N answers, or NM mebibytes (then as many answers as fit) */
			char num[32];
			size_t l = strlen(optarg);
			bool mib = l > 1 && (optarg[l - 1] == 'M' || optarg[l - 1] == 'm');

			if (l >= sizeof(num))
				return errf(err, errlen, "--cache-size \"%.20s...\": too long", optarg);
			memcpy(num, optarg, l + 1);
			if (mib)
				num[l - 1] = '\0';
			if (parse_uint(num, 0, mib ? 65536 : 10000000, &v) < 0)
				return errf(err, errlen, "--cache-size \"%s\": must be 0-10000000 answers or 0M-65536M", optarg);
			if (mib) {
				c->cache_bytes = (size_t)v << 20;
				c->cache_size = v ? 10000000 : 0;
			} else {
				c->cache_size = (unsigned)v;
				c->cache_bytes = CFG_CACHE_BYTES;
			}
			break;
		}
		case OPT_SERVE_STALE:
			if (parse_uint(optarg, 0, 604800, &v) < 0)
				return errf(err, errlen, "--serve-stale \"%s\": must be 0-604800 seconds", optarg);
			c->serve_stale_s = (unsigned)v;
			break;
		case OPT_RATELIMIT:
			if (parse_uint(optarg, 0, 1000000, &v) < 0)
				return errf(err, errlen, "--ratelimit \"%s\": must be 0-1000000 queries a second", optarg);
			c->ratelimit = (unsigned)v;
			break;
		case OPT_USER:
			if (!*optarg || strlen(optarg) >= sizeof(c->user))
				return errf(err, errlen, "--user \"%.80s\": must be a user name of 1-%zu characters",
					    optarg, sizeof(c->user) - 1);
			strcpy(c->user, optarg);
			break;
		case 'v':
			c->verbose = true;
			break;
		case 'h':
			config_usage();
			return CFG_PARSE_EXIT;
		case 'V':
			printf("dotproxy %s\n", DOTPROXY_VERSION);
			return CFG_PARSE_EXIT;
		case ':':
			return errf(err, errlen, "%s: needs a value", name);
		default:
			return errf(err, errlen, "%s: unknown option (see --help)", name);
		}
	}
	if (optind < argc)
		return errf(err, errlen, "\"%s\": unexpected argument (see --help)", argv[optind]);
	if (c->nlisten && c->mode != MODE_REDIRECT)
		return errf(err, errlen, "--listen: only with --mode redirect (%s listens where the rules send)",
			    config_mode_name(c->mode));
	if (nfq_flag && c->mode != MODE_NFQUEUE)
		return errf(err, errlen, "%s: only with --mode nfqueue", nfq_flag);
	if (c->serve_stale_s && !c->cache_size)
		return errf(err, errlen, "--serve-stale: needs the cache (--cache-size above 0)");
	for (int i = 0; i < c->nlisten; i++)
		if (sock_parse(listen_specs[i], '@', c->port, &c->listen[i]) < 0)
			return errf(err, errlen, "--listen \"%s\": must be ADDR[@PORT]", listen_specs[i]);
	if (c->nupstreams == 0) {
		for (size_t i = 0; i < sizeof(default_upstreams) / sizeof(default_upstreams[0]); i++)
			if (config_parse_upstream(default_upstreams[i], &c->upstreams[c->nupstreams++], err, errlen) < 0)
				return -1;
	}
	return 0;
}

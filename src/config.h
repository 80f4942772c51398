/*
 * config.h - the daemon's settings, from command-line flags. Parsing only:
 * nothing here opens a socket or changes the system.
 */
#ifndef DOTPROXY_CONFIG_H
#define DOTPROXY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sock.h"

#define CFG_MAX_UPSTREAMS	16
#define CFG_MAX_PINS		8
#define CFG_MAX_LISTEN		16
#define CFG_PIN_LEN		32	/* RFC 7858 4.2: SHA-256 of the SubjectPublicKeyInfo */

#define CFG_MAX_CONNS		16	/* connections per upstream */
#define CFG_CACHE_BYTES		((size_t)32 << 20)	/* the cache's memory when counted in answers */

enum cfg_mode { MODE_TPROXY, MODE_REDIRECT, MODE_NFQUEUE };

/* Which upstream a query goes to. */
enum cfg_policy {
	POLICY_FASTEST,		/* lowest answer-time estimate, others probed now and then */
	POLICY_ROUND_ROBIN,	/* each in turn */
	POLICY_ORDERED,		/* the first usable one */
};

struct upstream_cfg {
	union sockaddr_any addr;
	char name[256];			/* RFC 8310 authentication domain name */
	const char *ca_file;		/* --upstream-ca: its own CA certificates; NULL: --ca-file's */
	uint8_t pins[CFG_MAX_PINS][CFG_PIN_LEN];
	int npins;
	char label[SOCK_ADDRSTRLEN + 256 + 8];	/* "IP@PORT#NAME", for logs and metrics */
};

struct config {
	enum cfg_mode mode;
	uint16_t port;			/* where the rules send intercepted packets */
	union sockaddr_any listen[CFG_MAX_LISTEN];
	int nlisten;			/* 0: every address on port */
	struct upstream_cfg upstreams[CFG_MAX_UPSTREAMS];
	int nupstreams;
	const char *ca_file;		/* NULL: the system store */
	union sockaddr_any metrics;
	bool has_metrics;
	uint32_t mark;			/* SO_MARK of the daemon's own sockets */
	unsigned timeout_ms;		/* per-query deadline */
	unsigned idle_timeout_ms;	/* idle upstream connections are closed after */
	unsigned max_inflight;
	unsigned max_tcp_clients;
	enum cfg_policy policy;
	unsigned max_conns;		/* connections per upstream, opened as load needs them */
	unsigned cache_size;		/* answers cached; 0: no cache */
	size_t cache_bytes;		/* memory the cache may take */
	unsigned serve_stale_s;		/* RFC 8767: serve expired answers this long when upstreams fail */
	unsigned ratelimit;		/* queries per second per client; 0: no limit */
	uint16_t queue;			/* nfqueue mode: netfilter queue number */
	unsigned queue_len;		/* ... packets the kernel holds for us before it drops */
	bool fail_open;			/* ... the kernel accepts what overflows the queue */
	char user[64];			/* run as this user after setup; "": dotproxy, else nobody */
	bool verbose;
};

/* "tproxy", "redirect" or "nfqueue". */
const char *config_mode_name(enum cfg_mode mode);

#define CFG_PARSE_EXIT	1	/* --help or --version printed: exit 0 */

/*
 * Fill @c from argv. Returns 0, CFG_PARSE_EXIT, or -1 with one line in @err
 * naming the flag and what is wrong with it.
 */
int config_parse_args(struct config *c, int argc, char **argv, char *err, size_t errlen);

/* Parse "IP[@PORT]#AUTHNAME[^sha256/BASE64...]". Returns 0 or -1 with @err set. */
int config_parse_upstream(const char *spec, struct upstream_cfg *u, char *err, size_t errlen);

/* Parse "sha256/BASE64" into @pin. Returns 0 or -1 with @err set. */
int config_parse_pin(const char *s, uint8_t pin[CFG_PIN_LEN], char *err, size_t errlen);

void config_usage(void);

#endif

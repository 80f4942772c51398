/*
 * config.h - the daemon's settings, from three layers: a config file, DOTPROXY_*
 * environment variables and command-line flags (flags win, then the
 * environment, then the file). Parsing and checking files' permissions only:
 * nothing here opens a socket or changes the system.
 */
#ifndef DOTPROXY_CONFIG_H
#define DOTPROXY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "log.h"
#include "sock.h"

#define CFG_MAX_UPSTREAMS	16
#define CFG_MAX_PINS		8
#define CFG_MAX_LISTEN		16
#define CFG_PIN_LEN		32	/* RFC 7858 4.2: SHA-256 of the SubjectPublicKeyInfo */
#define CFG_PATH_MAX		512
#define CFG_DEFAULT_FILE	"/etc/dotproxy/dotproxy.conf"
#define CFG_MAX_ERRORS		32	/* lines a report keeps */

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
	char ca_file[CFG_PATH_MAX];	/* --upstream-ca: its own CA certificates; "": --ca-file's */
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
	char ca_file[CFG_PATH_MAX];	/* "": the system store */
	char client_cert[CFG_PATH_MAX];	/* TLS client certificate for upstreams; "": none */
	char client_key[CFG_PATH_MAX];	/* ... and its private key */
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
	char user[64];			/* drop to it after setup; "": dotproxy if it exists, else nobody */
	enum log_level log_level;	/* --log-level; -v makes it debug */
	bool verbose;			/* -v: log_level debug */
	enum log_target log_target;	/* --log */
	enum log_format log_format;	/* --log-format */
	bool query_log;			/* a line per answered query: names clients and names */
	char config_file[CFG_PATH_MAX];	/* the file the settings came from; "": none */
	char check_config[CFG_PATH_MAX];/* --check-config FILE: validate it and exit */
};

/* Error lines of a parse, each naming where the setting came from. */
struct cfg_report {
	int n;				/* errors found; more than CFG_MAX_ERRORS are counted only */
	char msg[CFG_MAX_ERRORS][480];
};

/* "tproxy", "redirect" or "nfqueue". */
const char *config_mode_name(enum cfg_mode mode);

#define CFG_PARSE_EXIT	1	/* --help or --version printed: exit 0 */
#define CFG_PARSE_CHECK	2	/* --check-config FILE given: c->check_config names it */

/*
 * Fill @c from argv only. Returns 0, CFG_PARSE_EXIT, CFG_PARSE_CHECK, or -1
 * with one line in @err naming the flag and what is wrong with it.
 */
int config_parse_args(struct config *c, int argc, char **argv, char *err, size_t errlen);

/*
 * Fill @c from the three layers: the file (--config or DOTPROXY_CONFIG, else
 * CFG_DEFAULT_FILE if it exists), @envp (NULL: none) and argv. A setting given
 * in a higher layer replaces it from the lower ones (an upstream with its pins
 * and CA counts as one setting). Then checks the files it names
 * (config_check_files). Returns 0, CFG_PARSE_EXIT, CFG_PARSE_CHECK, or -1 with
 * every error in @r, one line each, e.g. "/etc/dotproxy/dotproxy.conf:7:
 * policy \"x\": must be ...", "DOTPROXY_PORT \"0\": ..." or "--port ...".
 */
int config_load(struct config *c, int argc, char **argv, char *const *envp, struct cfg_report *r);

/* Validate the config file @path alone, as a start with only it would: every error in @r. */
int config_check_file(struct config *c, const char *path, struct cfg_report *r);

/*
 * Refuse what would leak a secret: a config file others may write, a private
 * key others may read, or a config file others may read that names a private
 * key. Also a key without its certificate or the other way round. Adds to @r.
 */
void config_check_files(const struct config *c, struct cfg_report *r);

/*
 * The settings a running daemon cannot change (sockets, queue, user): names
 * of those that differ between @old and @new, comma-separated, in @out ("" if
 * none). On reload they keep their old values until a restart.
 */
void config_restart_only(const struct config *old, const struct config *c, char *out, size_t outlen);
void config_keep_restart_only(const struct config *old, struct config *c);

/* Parse "IP[@PORT]#AUTHNAME[^sha256/BASE64...]". Returns 0 or -1 with @err set. */
int config_parse_upstream(const char *spec, struct upstream_cfg *u, char *err, size_t errlen);

/* Parse "sha256/BASE64" into @pin. Returns 0 or -1 with @err set. */
int config_parse_pin(const char *s, uint8_t pin[CFG_PIN_LEN], char *err, size_t errlen);

void config_usage(void);

#endif

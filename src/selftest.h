/*
 * selftest.h - "is my DNS private right now?". A marker query, TXT for
 * <nonce>.self-test.dotproxy.invalid. (RFC 6761 6.4: .invalid never
 * resolves anywhere real), goes over DoT like any other query; when an
 * upstream answers it, the daemon answers the client with one TXT record
 * saying so (daemon side). `dotproxy --self-test [ADDR...]` sends markers
 * in plaintext to ADDR over UDP and TCP and reads what comes back (client
 * side). Parsers here read outside bytes only through the wire cursor.
 */
#ifndef DOTPROXY_SELFTEST_H
#define DOTPROXY_SELFTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SELFTEST_SUFFIX		"self-test.dotproxy.invalid"
#define SELFTEST_NONCE_MIN	16	/* hex digits: 64 bits, nobody guesses it */
#define SELFTEST_NONCE_MAX	63	/* RFC 1035 2.3.4: one label */
#define SELFTEST_NONCE_LEN	32	/* what the client sends: 128 bits */
#define SELFTEST_TXT_MAX	1024	/* the TXT text the daemon composes */
#define DNS_TYPE_TXT		16	/* RFC 1035 3.3.14 */
#define DNS_CLASS_IN		1

/*
 * The nonce of marker name @name (uncompressed wire format, as
 * dns_read_name() writes it, @nlen octets with the root): the first label,
 * 16-63 hex digits, then exactly self-test.dotproxy.invalid (any letter
 * case). Copies it lower-cased and NUL-terminated into @nonce
 * (SELFTEST_NONCE_MAX + 1) if not NULL. Returns its length, or -1 if @name
 * is not a marker.
 */
int selftest_marker_nonce(const uint8_t *name, size_t nlen, char *nonce);

/* True if query @msg asks one question, TXT class IN for a marker name. */
bool selftest_is_marker(const uint8_t *msg, size_t len);

/* What the daemon says about how it answered a marker. */
struct selftest_info {
	const char *version;	/* dotproxy's */
	const char *upstream;	/* label of the upstream that answered */
	const char *frontend;	/* tproxy, redirect, nfqueue */
	const char *transport;	/* udp, tcp */
	const char *family;	/* ipv4, ipv6 */
	int upstream_rcode;	/* what the upstream answered the marker with */
};

/*
 * Compose the TXT text for @si and @nonce into @out (@cap): space-separated
 * key=value words, "dotproxy=VERSION upstream=LABEL tls=verified ...
 * nonce=NONCE". Returns its length (0 if it does not fit).
 */
size_t selftest_txt(const struct selftest_info *si, const char *nonce, char *out, size_t cap);

/*
 * Build the daemon's answer to marker query @query into @out: the query's
 * ID and RD, QR and RA set, NOERROR, its question, one TXT record (TTL 0)
 * with selftest_txt() in strings of up to 255 octets, and an empty OPT if
 * @with_opt. Returns the length, or 0 if @query is not a marker or it does
 * not fit in @cap.
 */
size_t selftest_answer(const uint8_t *query, size_t qlen, bool with_opt, const struct selftest_info *si,
		       uint8_t *out, size_t cap);

/* Build the client's marker query for @nonce with @id (RD set, no EDNS). Returns the length or 0. */
size_t selftest_query(const char *nonce, uint16_t id, uint8_t *out, size_t cap);

enum selftest_verdict {
	ST_PRIVATE,		/* dotproxy's TXT for this nonce, tls=verified */
	ST_PLAIN,		/* any other answer: the server itself answered in plaintext */
	ST_SERVFAIL,		/* SERVFAIL: intercepted with no upstream answering, or the server failed */
	ST_NO_ANSWER,		/* nothing within the time: DNS blocked or the server is down */
	ST_NO_ROUTE,		/* no route for that family: not tested */
};

struct selftest_result {
	enum selftest_verdict verdict;
	int rcode;		/* of the answer, -1 if none */
	char upstream[320];	/* ST_PRIVATE: the upstream dotproxy named */
};

/*
 * Classify @ans, received for marker query @query (nonce @nonce). Returns 0
 * with @r filled, or -1 if @ans is no answer to @query at all (another ID or
 * question: keep waiting).
 */
int selftest_classify(const uint8_t *ans, size_t alen, const uint8_t *query, size_t qlen,
		      const char *nonce, struct selftest_result *r);

/*
 * `dotproxy --self-test [ADDR...]`: @argc/@argv are the words after the
 * flag. Prints one line per target and transport and a verdict. Returns the
 * exit status: 0 if every tested path is private, 1 if not, 2 on bad input.
 */
int selftest_main(int argc, char **argv);

#endif

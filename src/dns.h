/*
 * dns.h - DNS wire format (RFC 1035, RFC 6891): checking client queries,
 * checking upstream answers against their query, building error and
 * truncated responses. Parses in place over the caller's memory; never
 * allocates and never logs.
 */
#ifndef DOTPROXY_DNS_H
#define DOTPROXY_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define DNS_HDR_LEN	12	/* RFC 1035 4.1.1 */
#define DNS_MAX_NAME	255	/* RFC 1035 2.3.4: octets in a name */
#define DNS_MAX_LABEL	63	/* RFC 1035 2.3.4: octets in a label */
#define DNS_MAX_MSG	65535	/* RFC 1035 4.2.2: two-octet length prefix */
#define DNS_UDP_MIN	512	/* RFC 1035 4.2.1: what any UDP client takes */
#define DNS_MAX_HOPS	127	/* compression pointers followed in one name: one per label at most */

#define DNS_TYPE_OPT	41	/* RFC 6891 6.1.1 */

enum dns_rcode {
	DNS_RCODE_NOERROR = 0,
	DNS_RCODE_FORMERR = 1,
	DNS_RCODE_SERVFAIL = 2,
	DNS_RCODE_NXDOMAIN = 3,
	DNS_RCODE_NOTIMP = 4,
	DNS_RCODE_REFUSED = 5,
};

/* RFC 1035 4.1.1: the fixed header, as read by dns_read_header(). */
struct dns_header {
	uint16_t id, flags;
	uint16_t qd, an, ns, ar;	/* section counts */
};

/* Read the header at @w's start (sets the sticky error if the message is shorter). */
static inline void dns_read_header(struct wire *w, struct dns_header *h)
{
	h->id = wire_u16(w);
	h->flags = wire_u16(w);
	h->qd = wire_u16(w);
	h->an = wire_u16(w);
	h->ns = wire_u16(w);
	h->ar = wire_u16(w);
}

/* dns_check_query() verdicts besides an rcode. */
#define DNS_QUERY_OK	0
#define DNS_QUERY_DROP	(-1)	/* too short for a header, or QR set: no answer at all */

/* What a checked query tells the proxy. */
struct dns_query_info {
	uint16_t qtype;
	uint16_t qclass;
	size_t question_end;	/* offset just past the question section */
	bool has_edns;
	uint16_t udp_size;	/* what the client takes over UDP, >= 512 */
};

/*
 * Check a client query. Returns DNS_QUERY_OK (and fills @qi), DNS_QUERY_DROP,
 * or the rcode to answer with (FORMERR, NOTIMP).
 */
int dns_check_query(const uint8_t *msg, size_t len, struct dns_query_info *qi);

/*
 * Read the (possibly compressed) name at @w's position, advancing past it.
 * Pointers may only go backwards (at most DNS_MAX_HOPS of them), labels <= 63,
 * names <= 255 octets.
 * If @out is not NULL it receives the uncompressed, lower-cased name.
 * Returns the uncompressed length, or -1 (and sets the sticky error).
 */
int dns_read_name(struct wire *w, uint8_t *out);

/* Skip one resource record (name, fixed fields, rdata). */
void dns_skip_rr(struct wire *w);

/*
 * True if @ans is a well-formed-enough response to @query: QR set and the
 * same question (name compared case-insensitively, type and class).
 */
bool dns_answer_matches(const uint8_t *ans, size_t alen, const uint8_t *query, size_t qlen);

/*
 * Build a response with @rcode to @query into @out. The question is echoed
 * when it parses. Returns the length, or 0 if @query is shorter than a
 * header or @cap cannot hold one.
 */
size_t dns_make_error(const uint8_t *query, size_t qlen, int rcode, uint8_t *out, size_t cap);

/*
 * Build a truncated copy of @ans (TC set, header and question only, plus an
 * empty OPT if @ans had one) into @out, at most @max octets.
 * Returns the length, or 0 if @ans cannot be parsed that far or it does not fit.
 */
size_t dns_truncate(const uint8_t *ans, size_t alen, uint8_t *out, size_t max);

/*
 * Give answer @ans the letter case of @query's question name (DNS 0x20
 * clients check it), when both write the same name out at offset 12.
 */
void dns_copy_question_case(uint8_t *ans, size_t alen, const uint8_t *query, size_t qlen);

static inline uint16_t dns_id(const uint8_t *msg) { return wire_get_u16(msg); }
static inline void dns_set_id(uint8_t *msg, uint16_t id) { wire_put_u16(msg, id); }
static inline int dns_rcode(const uint8_t *msg) { return msg[3] & 0x0f; }

/* "NOERROR", "FORMERR", ... "REFUSED" for rcodes 0-5; NULL for others. */
const char *dns_rcode_name(int rcode);
/* dns_rcode_name(), or "RCODE<n>" written in @buf for the others. */
const char *dns_rcode_text(int rcode, char *buf, size_t len);

#endif

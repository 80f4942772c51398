/*
 * edns.h - EDNS(0) options the proxy adds to upstream queries and takes out
 * of answers: padding (RFC 7830, RFC 8467) and TCP keepalive (RFC 7828).
 * Works on whole messages in the caller's buffer; never allocates.
 */
#ifndef DOTPROXY_EDNS_H
#define DOTPROXY_EDNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EDNS_OPT_ECS		8	/* RFC 7871 6: client subnet */
#define EDNS_OPT_COOKIE		10	/* RFC 7873 4 */
#define EDNS_OPT_KEEPALIVE	11	/* RFC 7828 3.1 */
#define EDNS_OPT_PADDING	12	/* RFC 7830 4 */
#define EDNS_PAD_BLOCK		128	/* RFC 8467 4.1: pad queries to a multiple of 128 octets */
#define EDNS_UDP_SIZE		1232	/* the OPT payload size we advertise when we add an OPT */

/*
 * Prepare query @msg (@len octets, in a buffer of @cap octets) for an
 * encrypted upstream: add an empty edns-tcp-keepalive option and a Padding
 * option so the whole message is a multiple of EDNS_PAD_BLOCK octets
 * (RFC 8467 4.1). Adds an OPT record (UDP size EDNS_UDP_SIZE) if the query
 * has none; drops any keepalive, padding, client-subnet or cookie options
 * already there (a client's subnet and cookies are its own).
 * Returns the new length, or 0 (and @msg is left as it was) if the message
 * cannot be parsed, is signed (TSIG, SIG(0)) or does not fit in @cap (the
 * caller then sends it unchanged).
 */
size_t edns_prepare_query(uint8_t *msg, size_t len, size_t cap);

/*
 * Clean answer @msg (@len octets) for a client: remove Padding, client-subnet,
 * cookie and
 * edns-tcp-keepalive options from its OPT record; if @drop_opt, remove the
 * OPT record itself (the client's query had none). A signed answer (TSIG,
 * SIG(0)) is left as it is. Returns the new length (<= @len), or 0 if the
 * message cannot be parsed.
 */
size_t edns_clean_answer(uint8_t *msg, size_t len, bool drop_opt);

/*
 * The edns-tcp-keepalive timeout in answer @msg, in units of 100 ms
 * (RFC 7828 3.2), or -1 if it carries none (or an empty one).
 */
int edns_keepalive(const uint8_t *msg, size_t len);

#endif

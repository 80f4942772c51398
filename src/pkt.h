/*
 * pkt.h - IPv4/IPv6 + UDP packets as a netfilter queue hands them over:
 * parse a queued packet down to its UDP payload, and build the answer
 * packet (IP header, UDP header, checksums) that goes back out a raw socket.
 * Pure functions over caller memory; never trusts a length it has not
 * checked against the bytes it was given.
 */
#ifndef DOTPROXY_PKT_H
#define DOTPROXY_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sock.h"

#define PKT_IP4_HDR	20	/* RFC 791 3.1: header without options */
#define PKT_IP6_HDR	40	/* RFC 8200 3 */
#define PKT_UDP_HDR	8	/* RFC 768 */
#define PKT_TTL		64	/* TTL / hop limit of built packets */
#define PKT_MAX_EXT	8	/* IPv6 extension headers walked before giving up */

enum pkt_result {
	PKT_OK = 0,
	PKT_MALFORMED,	/* bad version or lengths, bad checksum, unusable address */
	PKT_FRAGMENT,	/* an IPv4 fragment or an IPv6 Fragment header: not reassembled here */
	PKT_NOT_UDP,	/* another protocol, or an IPv6 extension header we do not walk */
};

/* A parsed UDP datagram; payload points into the caller's buffer. */
struct pkt_udp {
	union sockaddr_any src;		/* source address and port */
	union sockaddr_any dst;		/* destination address and port */
	const uint8_t *payload;
	size_t len;			/* payload bytes (UDP length - 8) */
};

/*
 * Parse @len bytes at @buf, a whole IPv4 or IPv6 packet, into @out.
 * IPv4 options and IPv6 Hop-by-Hop, Routing and Destination Options headers
 * are skipped. The IPv4 header checksum is always checked; the UDP checksum
 * when @verify_udp_csum (a zero UDP checksum is accepted for IPv4 only).
 * Multicast, broadcast or unspecified source or destination is PKT_MALFORMED.
 */
enum pkt_result pkt_parse_udp(const uint8_t *buf, size_t len, bool verify_udp_csum,
			      struct pkt_udp *out);

/* Bytes pkt_build_udp() puts before the payload for @family (AF_INET, AF_INET6). */
size_t pkt_hdr_len(int family);

/*
 * Build an IPv4 or IPv6 + UDP packet from @src to @dst (same family, ports
 * included) carrying @len bytes of @payload, with every checksum filled in,
 * DF clear and TTL PKT_TTL. Returns its length, or 0 if the families differ
 * or it does not fit in @cap or in 65535 bytes.
 */
size_t pkt_build_udp(uint8_t *out, size_t cap, const union sockaddr_any *src,
		     const union sockaddr_any *dst, const uint8_t *payload, size_t len);

#endif

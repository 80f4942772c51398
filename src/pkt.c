/*
 * pkt.c - IPv4/IPv6 + UDP packets for the netfilter queue front-end: parse
 * a queued packet through the wire cursor, build answer packets with their
 * checksums. Never reads outside the bytes it is given.
 */
#include "pkt.h"

#include <string.h>

#include "wire.h"

#define IPPROTO_UDP_	17
#define IP6_HOPOPTS	0	/* RFC 8200 4.3 */
#define IP6_ROUTING	43	/* RFC 8200 4.4 */
#define IP6_FRAGMENT	44	/* RFC 8200 4.5 */
#define IP6_DSTOPTS	60	/* RFC 8200 4.6 */
#define IP4_MF		0x2000	/* RFC 791 3.1: more fragments */
#define IP4_OFFSET	0x1fff	/* fragment offset, in 8-byte units */

/* RFC 1071 one's-complement sum of @len bytes at @p, added to @sum. */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	while (len > 1) {
		sum += (uint32_t)(p[0] << 8 | p[1]);
		p += 2;
		len -= 2;
	}
	if (len)
		sum += (uint32_t)(p[0] << 8);
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* Sum of the RFC 768 / RFC 8200 8.1 pseudo-header for a UDP datagram of @udplen bytes. */
static uint32_t pseudo_sum(const union sockaddr_any *src, const union sockaddr_any *dst, size_t udplen)
{
	uint32_t sum = IPPROTO_UDP_ + (uint32_t)(udplen & 0xffff) + (uint32_t)(udplen >> 16);

	if (src->sa.sa_family == AF_INET6) {
		sum = csum_add(sum, src->sin6.sin6_addr.s6_addr, 16);
		sum = csum_add(sum, dst->sin6.sin6_addr.s6_addr, 16);
	} else {
		sum = csum_add(sum, (const uint8_t *)&src->sin.sin_addr, 4);
		sum = csum_add(sum, (const uint8_t *)&dst->sin.sin_addr, 4);
	}
	return sum;
}

/* Whether @a can be the source or destination of a unicast exchange. */
static bool unicast(const union sockaddr_any *a)
{
	if (a->sa.sa_family == AF_INET6) {
		const struct in6_addr *x = &a->sin6.sin6_addr;

		return !IN6_IS_ADDR_MULTICAST(x) && !IN6_IS_ADDR_UNSPECIFIED(x);
	}
	uint32_t v = ntohl(a->sin.sin_addr.s_addr);

	return v != 0 && v != 0xffffffffu && (v >> 28) != 0xe;
}

/* IPv4: on return @w covers the IP payload, @addr family/addresses filled. */
static enum pkt_result parse_ip4(struct wire *w, struct pkt_udp *out)
{
	const uint8_t *hdr = w->buf;
	uint8_t vihl = wire_u8(w);
	size_t hlen = (size_t)(vihl & 0x0f) * 4;
	uint16_t total, frag;
	uint8_t proto;

	wire_skip(w, 1);		/* DSCP/ECN */
	total = wire_u16(w);
	wire_skip(w, 2);		/* identification */
	frag = wire_u16(w);
	wire_skip(w, 1);		/* TTL */
	proto = wire_u8(w);
	wire_skip(w, 2);		/* header checksum: verified over the whole header below */
	out->src.sin.sin_family = AF_INET;
	out->dst.sin.sin_family = AF_INET;
	wire_copy(w, &out->src.sin.sin_addr, 4);
	wire_copy(w, &out->dst.sin.sin_addr, 4);
	if (!wire_ok(w) || hlen < PKT_IP4_HDR || total < hlen || total > w->len)
		return PKT_MALFORMED;
	w->len = total;			/* bytes past the total length are not the packet's */
	wire_seek(w, hlen);		/* options */
	if (!wire_ok(w) || csum_fold(csum_add(0, hdr, hlen)) != 0)
		return PKT_MALFORMED;
	if (frag & (IP4_MF | IP4_OFFSET))
		return PKT_FRAGMENT;
	return proto == IPPROTO_UDP_ ? PKT_OK : PKT_NOT_UDP;
}

static enum pkt_result parse_ip6(struct wire *w, struct pkt_udp *out)
{
	uint16_t plen;
	uint8_t next;

	wire_skip(w, 4);		/* version, traffic class, flow label */
	plen = wire_u16(w);
	next = wire_u8(w);
	wire_skip(w, 1);		/* hop limit */
	out->src.sin6.sin6_family = AF_INET6;
	out->dst.sin6.sin6_family = AF_INET6;
	wire_copy(w, &out->src.sin6.sin6_addr, 16);
	wire_copy(w, &out->dst.sin6.sin6_addr, 16);
	/* payload length 0 is a jumbogram (RFC 2675): never a DNS query */
	if (!wire_ok(w) || plen == 0 || plen > w->len - PKT_IP6_HDR)
		return PKT_MALFORMED;
	w->len = PKT_IP6_HDR + (size_t)plen;
	for (int i = 0; i <= PKT_MAX_EXT; i++) {
		switch (next) {
		case IPPROTO_UDP_:
			return PKT_OK;
		case IP6_FRAGMENT:
			return PKT_FRAGMENT;
		case IP6_HOPOPTS:
			if (i != 0)	/* RFC 8200 4.3: only right after the IPv6 header */
				return PKT_MALFORMED;
			/* fall through */
		case IP6_ROUTING:
		case IP6_DSTOPTS: {
			size_t start = w->pos, extlen;
			uint8_t type = next;

			next = wire_u8(w);
			extlen = 8 + (size_t)wire_u8(w) * 8;
			wire_skip(w, 1);	/* routing type; for options, their first bytes */
			/* RFC 8200 4.4: segments left > 0: not yet at its final destination */
			if (wire_u8(w) != 0 && type == IP6_ROUTING && wire_ok(w))
				return PKT_NOT_UDP;
			wire_seek(w, start + extlen);
			if (!wire_ok(w))
				return PKT_MALFORMED;
			break;
		}
		default:
			return PKT_NOT_UDP;
		}
	}
	return PKT_NOT_UDP;		/* too many extension headers */
}

enum pkt_result pkt_parse_udp(const uint8_t *buf, size_t len, bool verify_udp_csum, struct pkt_udp *out)
{
	struct wire w;
	enum pkt_result rc;
	size_t udp_start;
	uint16_t sport, dport, ulen, csum;

	memset(out, 0, sizeof(*out));
	wire_init(&w, buf, len);
	if (len < 1)
		return PKT_MALFORMED;
	switch (buf[0] >> 4) {
	case 4:
		rc = parse_ip4(&w, out);
		break;
	case 6:
		rc = parse_ip6(&w, out);
		break;
	default:
		return PKT_MALFORMED;
	}
	if (rc != PKT_OK)
		return rc;
	udp_start = w.pos;
	sport = wire_u16(&w);
	dport = wire_u16(&w);
	ulen = wire_u16(&w);
	csum = wire_u16(&w);
	/* RFC 768: the length covers header and data; what follows it is padding */
	if (!wire_ok(&w) || ulen < PKT_UDP_HDR || ulen > w.len - udp_start)
		return PKT_MALFORMED;
	if (out->src.sa.sa_family == AF_INET6) {
		out->src.sin6.sin6_port = htons(sport);
		out->dst.sin6.sin6_port = htons(dport);
	} else {
		out->src.sin.sin_port = htons(sport);
		out->dst.sin.sin_port = htons(dport);
	}
	if (!unicast(&out->src) || !unicast(&out->dst))
		return PKT_MALFORMED;
	if (verify_udp_csum) {
		/* RFC 768: 0 is "no checksum" (IPv4 only: RFC 8200 8.1 makes it mandatory) */
		if (csum == 0 ? out->src.sa.sa_family == AF_INET6
			      : csum_fold(csum_add(pseudo_sum(&out->src, &out->dst, ulen), buf + udp_start, ulen)) != 0)
			return PKT_MALFORMED;
	}
	out->payload = buf + udp_start + PKT_UDP_HDR;
	out->len = ulen - PKT_UDP_HDR;
	return PKT_OK;
}

size_t pkt_hdr_len(int family)
{
	return (family == AF_INET6 ? PKT_IP6_HDR : PKT_IP4_HDR) + PKT_UDP_HDR;
}

size_t pkt_build_udp(uint8_t *out, size_t cap, const union sockaddr_any *src,
		     const union sockaddr_any *dst, const uint8_t *payload, size_t len)
{
	int family = src->sa.sa_family;
	size_t hlen = pkt_hdr_len(family) - PKT_UDP_HDR;
	size_t ulen = PKT_UDP_HDR + len, total = hlen + ulen;
	uint8_t *udp;
	uint16_t csum;

	if (family != dst->sa.sa_family || (family != AF_INET && family != AF_INET6) ||
	    total > 0xffff || total > cap)
		return 0;
	udp = out + hlen;
	if (family == AF_INET6) {
		memset(out, 0, hlen);
		out[0] = 0x60;				/* version 6 */
		wire_put_u16(out + 4, (uint16_t)ulen);	/* payload length */
		out[6] = IPPROTO_UDP_;
		out[7] = PKT_TTL;
		memcpy(out + 8, src->sin6.sin6_addr.s6_addr, 16);
		memcpy(out + 24, dst->sin6.sin6_addr.s6_addr, 16);
	} else {
		memset(out, 0, hlen);
		out[0] = 0x45;				/* version 4, 5 words; ID 0: the kernel picks one */
		wire_put_u16(out + 2, (uint16_t)total);
		out[8] = PKT_TTL;
		out[9] = IPPROTO_UDP_;
		memcpy(out + 12, &src->sin.sin_addr, 4);
		memcpy(out + 16, &dst->sin.sin_addr, 4);
		wire_put_u16(out + 10, csum_fold(csum_add(0, out, hlen)));
	}
	wire_put_u16(udp, sock_port(src));
	wire_put_u16(udp + 2, sock_port(dst));
	wire_put_u16(udp + 4, (uint16_t)ulen);
	wire_put_u16(udp + 6, 0);
	memmove(udp + PKT_UDP_HDR, payload, len);
	csum = csum_fold(csum_add(pseudo_sum(src, dst, ulen), udp, ulen));
	/* RFC 768: a computed 0 is sent as all ones */
	wire_put_u16(udp + 6, csum ? csum : 0xffff);
	return total;
}

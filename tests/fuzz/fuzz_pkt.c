/*
 * fuzz_pkt.c - libFuzzer target for src/pkt.c: whole IPv4/IPv6 packets as
 * the netfilter queue hands them over, and the answer packets built back
 * from whatever parsed. Run with `make fuzz`.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pkt.h"

#define MAX_PKT 65535	/* RFC 791 total length / what pkt_build_udp() may make */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static const uint8_t *addr_of(const union sockaddr_any *a, size_t *len)
{
	if (a->sa.sa_family == AF_INET6) {
		*len = 16;
		return a->sin6.sin6_addr.s6_addr;
	}
	*len = 4;
	return (const uint8_t *)&a->sin.sin_addr;
}

static uint16_t port_of(const union sockaddr_any *a)
{
	return ntohs(a->sa.sa_family == AF_INET6 ? a->sin6.sin6_port : a->sin.sin_port);
}

static int same_addr(const union sockaddr_any *a, const union sockaddr_any *b)
{
	size_t alen, blen;
	const uint8_t *ap = addr_of(a, &alen), *bp = addr_of(b, &blen);

	return a->sa.sa_family == b->sa.sa_family && alen == blen && !memcmp(ap, bp, alen) &&
	       port_of(a) == port_of(b);
}

/* What a PKT_OK parse of @data must look like. */
static void check_parsed(const uint8_t *data, size_t size, const struct pkt_udp *u)
{
	int family = u->src.sa.sa_family;
	size_t off, alen;

	if ((family != AF_INET && family != AF_INET6) || u->dst.sa.sa_family != family)
		__builtin_trap();
	if (u->payload < data || (size_t)(u->payload - data) > size)
		__builtin_trap();
	off = (size_t)(u->payload - data);
	if (off < pkt_hdr_len(family) || u->len > size - off)
		__builtin_trap();
	/* the UDP header just before the payload: ports and length agree */
	if (get16(data + off - 8) != port_of(&u->src) || get16(data + off - 6) != port_of(&u->dst) ||
	    get16(data + off - 4) != u->len + 8)
		__builtin_trap();
	/*
	 * The version nibble picked the family, the addresses come from the IP
	 * header, and the datagram ends within the IPv4 total length or the
	 * IPv6 payload length: what follows is not the packet's.
	 */
	if (family == AF_INET) {
		if (data[0] >> 4 != 4 || memcmp(addr_of(&u->src, &alen), data + 12, 4) ||
		    memcmp(addr_of(&u->dst, &alen), data + 16, 4) || off + u->len > get16(data + 2))
			__builtin_trap();
	} else {
		if (data[0] >> 4 != 6 || memcmp(addr_of(&u->src, &alen), data + 8, 16) ||
		    memcmp(addr_of(&u->dst, &alen), data + 24, 16) ||
		    off + u->len > 40 + (size_t)get16(data + 4))
			__builtin_trap();
	}
}

/* Answer @u (dst -> src) and parse the answer back with its checksum verified. */
static void check_answer(const struct pkt_udp *u)
{
	static uint8_t out[MAX_PKT + 64];
	size_t hdr = pkt_hdr_len(u->src.sa.sa_family);
	size_t want = hdr + u->len <= MAX_PKT ? hdr + u->len : 0;
	struct pkt_udp back;
	size_t n;

	n = pkt_build_udp(out, sizeof(out), &u->dst, &u->src, u->payload, u->len);
	if (n != want)
		__builtin_trap();
	if (!n)
		return;
	if (pkt_parse_udp(out, n, true, &back) != PKT_OK)
		__builtin_trap();
	if (!same_addr(&back.src, &u->dst) || !same_addr(&back.dst, &u->src) ||
	    back.payload != out + hdr || back.len != u->len || memcmp(back.payload, u->payload, u->len))
		__builtin_trap();

	/* one octet short of room: nothing, and nothing written past the cap */
	memset(out + n - 1, 0xa5, 64);
	if (pkt_build_udp(out, n - 1, &u->dst, &u->src, u->payload, u->len) != 0)
		__builtin_trap();
	for (size_t i = n - 1; i < n - 1 + 64; i++)
		if (out[i] != 0xa5)
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pkt_udp loose, strict;
	enum pkt_result rl, rs;

	rl = pkt_parse_udp(data, size, false, &loose);
	rs = pkt_parse_udp(data, size, true, &strict);
	if (rl > PKT_NOT_UDP || rs > PKT_NOT_UDP)
		__builtin_trap();
	/* verifying the checksum can only turn an OK into PKT_MALFORMED */
	if (rs == PKT_OK && rl != PKT_OK)
		__builtin_trap();
	if (rl == PKT_OK && rs != PKT_OK && rs != PKT_MALFORMED)
		__builtin_trap();
	if (rl != PKT_OK)
		return 0;
	check_parsed(data, size, &loose);
	if (rs == PKT_OK) {
		check_parsed(data, size, &strict);
		if (strict.payload != loose.payload || strict.len != loose.len ||
		    !same_addr(&strict.src, &loose.src) || !same_addr(&strict.dst, &loose.dst))
			__builtin_trap();
	}
	check_answer(&loose);
	return 0;
}

/*
 * check_pkt.c - unit tests for src/pkt.c.
 * Every packet is built by hand from the RFC 791 / RFC 8200 / RFC 768 layouts,
 * and every checksum is computed here with a plain RFC 1071 sum over a
 * separately assembled pseudo-header, never by calling pkt.c. Packets are
 * handed to the parser in heap copies of their exact length, so ASan sees
 * any read past the end.
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "pkt.h"
#include "unit.h"

/* RFC 791 / IANA protocol numbers, spelled out here rather than taken from pkt.c */
#define P_HOPOPT	0
#define P_ICMP		1
#define P_TCP		6
#define P_UDP		17
#define P_ROUTING	43
#define P_FRAGMENT	44
#define P_ESP		50
#define P_AH		51
#define P_ICMPV6	58
#define P_NONE		59
#define P_DSTOPTS	60

#define IP4_DF		0x4000	/* RFC 791 3.1 flags and fragment offset */
#define IP4_MF		0x2000

static const uint8_t SRC4[4] = { 192, 0, 2, 10 };
static const uint8_t DST4[4] = { 198, 51, 100, 53 };
static const uint8_t SRC6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x10 };
static const uint8_t DST6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x53, [15] = 0x53 };
#define SPORT	40000
#define DPORT	53

/* A DNS query for www.example.com A: 33 octets, an odd length on purpose. */
static const uint8_t QUERY[] = "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
			       "\3www\7example\3com\0\x00\x01\x00\x01";
#define QLEN (sizeof(QUERY) - 1)

/* ---- an independent RFC 1071 checksum ---- */

/* 16-bit big-endian words of @p added to @acc, an odd last octet padded with zero. */
static uint64_t sum16(uint64_t acc, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		acc += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		acc += (uint32_t)p[len - 1] << 8;
	return acc;
}

static uint16_t fold(uint64_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return (uint16_t)acc;
}

/*
 * The folded sum of the RFC 768 (IPv4) or RFC 8200 8.1 (IPv6) pseudo-header
 * and the @udplen octets of the datagram at @udp, its checksum field as zero.
 */
static uint16_t udp_sum(int family, const uint8_t *src, const uint8_t *dst, const uint8_t *udp,
			size_t udplen)
{
	uint8_t ph[40] = { 0 };
	size_t phlen;

	if (family == AF_INET) {
		memcpy(ph, src, 4);
		memcpy(ph + 4, dst, 4);
		ph[9] = P_UDP;
		ph[10] = (uint8_t)(udplen >> 8);
		ph[11] = (uint8_t)udplen;
		phlen = 12;
	} else {
		memcpy(ph, src, 16);
		memcpy(ph + 16, dst, 16);
		ph[34] = (uint8_t)(udplen >> 8);	/* 32-bit upper-layer length */
		ph[35] = (uint8_t)udplen;
		ph[39] = P_UDP;
		phlen = 40;
	}
	return fold(sum16(sum16(sum16(0, ph, phlen), udp, 6), udp + 8, udplen - 8));
}

/* RFC 768: the checksum to send; a computed zero goes out as all ones. */
static uint16_t udp_csum(int family, const uint8_t *src, const uint8_t *dst, const uint8_t *udp,
			 size_t udplen)
{
	uint16_t c = (uint16_t)~udp_sum(family, src, dst, udp, udplen);

	return c ? c : 0xffff;
}

/* ---- a tiny packet builder ---- */

struct pkt {
	uint8_t b[2048];
	size_t n;
	size_t udp;	/* offset of the UDP header */
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void set16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_bytes(struct pkt *p, const void *src, size_t len)
{
	ck_assert_uint_le(p->n + len, sizeof(p->b));
	memcpy(p->b + p->n, src, len);
	p->n += len;
}

static void put16(struct pkt *p, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	put_bytes(p, b, 2);
}

static void put_udp(struct pkt *p, const uint8_t *payload, size_t len)
{
	p->udp = p->n;
	put16(p, SPORT);
	put16(p, DPORT);
	put16(p, (uint16_t)(PKT_UDP_HDR + len));
	put16(p, 0);
	put_bytes(p, payload, len);
}

/* RFC 791 3.1: the header checksum over IHL*4 octets. */
static void seal_ip4_hdr(struct pkt *p)
{
	size_t ihl = (size_t)(p->b[0] & 0x0f) * 4;

	set16(p->b + 10, 0);
	set16(p->b + 10, (uint16_t)~fold(sum16(0, p->b, ihl)));
}

/* Both checksums of an IPv4 packet, from its own addresses and UDP length. */
static void seal4(struct pkt *p)
{
	uint8_t *u = p->b + p->udp;

	set16(u + 6, udp_csum(AF_INET, p->b + 12, p->b + 16, u, get16(u + 4)));
	seal_ip4_hdr(p);
}

static void seal6(struct pkt *p)
{
	uint8_t *u = p->b + p->udp;

	set16(u + 6, udp_csum(AF_INET6, p->b + 8, p->b + 24, u, get16(u + 4)));
}

/* IPv4 from SRC4:SPORT to DST4:DPORT with @optlen octets of NOP options. */
static void udp4(struct pkt *p, size_t optlen, const uint8_t *payload, size_t len)
{
	uint8_t nops[40];
	size_t ihl = PKT_IP4_HDR + optlen;

	ck_assert_uint_eq(optlen % 4, 0);
	ck_assert_uint_le(optlen, sizeof(nops));
	memset(nops, 0x01, sizeof(nops));		/* RFC 791: No Operation */
	p->n = 0;
	put16(p, (uint16_t)(0x4000 | (ihl / 4) << 8));	/* version 4, IHL, TOS 0 */
	put16(p, (uint16_t)(ihl + PKT_UDP_HDR + len));	/* total length */
	put16(p, 0xbeef);				/* identification */
	put16(p, 0);					/* flags, fragment offset */
	put16(p, 0x4000 | P_UDP);			/* TTL 64, protocol */
	put16(p, 0);					/* header checksum */
	put_bytes(p, SRC4, 4);
	put_bytes(p, DST4, 4);
	put_bytes(p, nops, optlen);
	put_udp(p, payload, len);
	seal4(p);
}

/* IPv6 from SRC6:SPORT to DST6:DPORT; @ext holds extension headers, the first of type @nh. */
static void udp6(struct pkt *p, uint8_t nh, const uint8_t *ext, size_t extlen,
		 const uint8_t *payload, size_t len)
{
	p->n = 0;
	put16(p, 0x6000);				/* version 6, traffic class, flow label */
	put16(p, 0);
	put16(p, (uint16_t)(extlen + PKT_UDP_HDR + len));	/* payload length */
	put16(p, (uint16_t)(nh << 8 | 64));		/* next header, hop limit */
	put_bytes(p, SRC6, 16);
	put_bytes(p, DST6, 16);
	if (extlen)
		put_bytes(p, ext, extlen);
	put_udp(p, payload, len);
	seal6(p);
}

static void v4_query(struct pkt *p)
{
	udp4(p, 0, QUERY, QLEN);
}

static void v6_query(struct pkt *p)
{
	udp6(p, P_UDP, NULL, 0, QUERY, QLEN);
}

/* Hop-by-Hop (PadN, 8 octets), Destination Options (PadN, 16), then a Segment
 * Routing header (RFC 8754, Segments Left 0, one segment: 24), then UDP. */
static size_t ext_chain(uint8_t *ext)
{
	static const uint8_t hbh[8] = { P_DSTOPTS, 0, 1, 4 };
	static const uint8_t dopt[16] = { P_ROUTING, 1, 1, 12 };
	static const uint8_t srh[8] = { P_UDP, 2, 4, 0, 0 };

	memcpy(ext, hbh, 8);
	memcpy(ext + 8, dopt, 16);
	memcpy(ext + 24, srh, 8);
	memcpy(ext + 32, DST6, 16);
	return 48;
}

/* ---- running the parser ---- */

static uint8_t *copy_of(const uint8_t *b, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(c);
	if (n)
		memcpy(c, b, n);
	return c;
}

static enum pkt_result parse(const uint8_t *b, size_t n, bool verify)
{
	struct pkt_udp u;
	uint8_t *c = copy_of(b, n);
	enum pkt_result r = pkt_parse_udp(c, n, verify, &u);

	free(c);
	return r;
}

/* @n octets at @b give @want whether or not the UDP checksum is verified. */
#define expect(b, n, want) do {						\
	ck_assert_int_eq(parse((b), (n), false), (want));		\
	ck_assert_int_eq(parse((b), (n), true), (want));		\
} while (0)

static void check_addr(const union sockaddr_any *a, int family, const uint8_t *ip, uint16_t port)
{
	ck_assert_int_eq(a->sa.sa_family, family);
	if (family == AF_INET) {
		ck_assert_mem_eq(&a->sin.sin_addr, ip, 4);
		ck_assert_uint_eq(ntohs(a->sin.sin_port), port);
	} else {
		ck_assert_mem_eq(&a->sin6.sin6_addr, ip, 16);
		ck_assert_uint_eq(ntohs(a->sin6.sin6_port), port);
	}
}

/* @p parses (checksum verified) to SRC:SPORT -> DST:DPORT with @len payload octets at @off. */
static void expect_udp(const struct pkt *p, size_t n, int family, size_t off, size_t len)
{
	struct pkt_udp u;
	uint8_t *c = copy_of(p->b, n);

	memset(&u, 0xa5, sizeof(u));
	ck_assert_int_eq(pkt_parse_udp(c, n, true, &u), PKT_OK);
	check_addr(&u.src, family, family == AF_INET ? SRC4 : SRC6, SPORT);
	check_addr(&u.dst, family, family == AF_INET ? DST4 : DST6, DPORT);
	ck_assert_ptr_eq(u.payload, c + off);
	ck_assert_uint_eq(u.len, len);
	ck_assert_mem_eq(u.payload, p->b + off, len);
	free(c);
}

/* Every cut of @p inside its declared length is rejected. */
static void expect_cuts_rejected(const struct pkt *p)
{
	for (size_t n = 0; n < p->n; n++) {
		ck_assert_int_ne(parse(p->b, n, false), PKT_OK);
		ck_assert_int_ne(parse(p->b, n, true), PKT_OK);
	}
}

/* Set the last two payload octets of @pl so that the UDP checksum computes to zero. */
static void zero_sum_payload(int family, uint8_t *pl, size_t len)
{
	struct pkt p;
	uint16_t s;

	ck_assert_uint_eq(len % 2, 0);
	pl[len - 2] = pl[len - 1] = 0;
	if (family == AF_INET)
		udp4(&p, 0, pl, len);
	else
		udp6(&p, P_UDP, NULL, 0, pl, len);
	s = udp_sum(family, family == AF_INET ? SRC4 : SRC6, family == AF_INET ? DST4 : DST6,
		    p.b + p.udp, PKT_UDP_HDR + len);
	set16(pl + len - 2, (uint16_t)(0xffff - s));	/* the sum becomes 0xffff, its complement 0 */
}

/* ---- IPv4 parsing ---- */

START_TEST(v4_udp)
{
	struct pkt p;

	v4_query(&p);
	ck_assert_uint_eq(p.n, 20 + 8 + QLEN);
	expect_udp(&p, p.n, AF_INET, 28, QLEN);
	ck_assert_int_eq(parse(p.b, p.n, false), PKT_OK);

	set16(p.b + 6, IP4_DF);			/* Don't Fragment is not a fragment */
	seal_ip4_hdr(&p);
	expect_udp(&p, p.n, AF_INET, 28, QLEN);
}
END_TEST

START_TEST(v4_options_skipped)
{
	struct pkt p;

	for (size_t ihl = 6; ihl <= 15; ihl++) {
		udp4(&p, (ihl - 5) * 4, QUERY, QLEN);
		expect_udp(&p, p.n, AF_INET, ihl * 4 + 8, QLEN);
	}
}
END_TEST

START_TEST(v4_runts)
{
	struct pkt p;

	v4_query(&p);
	expect(p.b, 0, PKT_MALFORMED);
	expect(p.b, 1, PKT_MALFORMED);
	expect(p.b, 19, PKT_MALFORMED);
}
END_TEST

START_TEST(bad_version)
{
	static const uint8_t versions[] = { 0, 1, 5, 7, 15 };
	struct pkt p4, p6;

	for (size_t i = 0; i < sizeof(versions); i++) {
		v4_query(&p4);
		p4.b[0] = (uint8_t)(versions[i] << 4 | 5);
		seal_ip4_hdr(&p4);
		expect(p4.b, p4.n, PKT_MALFORMED);

		v6_query(&p6);
		p6.b[0] = (uint8_t)(versions[i] << 4);
		expect(p6.b, p6.n, PKT_MALFORMED);
	}
}
END_TEST

START_TEST(v4_ihl_below_5)
{
	struct pkt p, q;

	/*
	 * The first IHL*4 octets of a header, then a whole UDP datagram (no
	 * checksum), the total length and header checksum right for that IHL:
	 * taken at its word, IHL 3 or 4 would make a datagram that parses.
	 */
	for (uint8_t ihl = 0; ihl < 5; ihl++) {
		v4_query(&p);
		q.n = 0;
		put_bytes(&q, p.b, ihl * 4u);
		put_bytes(&q, p.b + p.udp, 8 + QLEN);
		set16(q.b + ihl * 4 + 6, 0);
		q.b[0] = 0x40 | ihl;
		if (ihl >= 3) {
			set16(q.b + 2, (uint16_t)q.n);
			set16(q.b + 10, 0);
			set16(q.b + 10, (uint16_t)~fold(sum16(0, q.b, ihl * 4u)));
		}
		expect(q.b, q.n, PKT_MALFORMED);
	}
}
END_TEST

START_TEST(v4_ihl_beyond_total_length)
{
	struct pkt p;

	udp4(&p, 40, QUERY, 10);		/* IHL 15: a 60-octet header, 78 in all */
	set16(p.b + 2, 56);
	seal_ip4_hdr(&p);
	expect(p.b, p.n, PKT_MALFORMED);
}
END_TEST

START_TEST(v4_total_length_beyond_bytes)
{
	struct pkt p;

	v4_query(&p);
	set16(p.b + 2, (uint16_t)(p.n + 1));
	seal_ip4_hdr(&p);
	expect(p.b, p.n, PKT_MALFORMED);
	set16(p.b + 2, 0xffff);
	seal_ip4_hdr(&p);
	expect(p.b, p.n, PKT_MALFORMED);
}
END_TEST

START_TEST(v4_total_length_below_headers)
{
	struct pkt p;

	/* below the IP header, then too short for the UDP header */
	for (uint16_t tot = 0; tot < 28; tot++) {
		v4_query(&p);
		set16(p.b + 2, tot);
		seal_ip4_hdr(&p);
		expect(p.b, p.n, PKT_MALFORMED);
	}
}
END_TEST

START_TEST(v4_trailing_bytes_ignored)
{
	struct pkt p;

	v4_query(&p);
	memset(p.b + p.n, 0xaa, 6);		/* link-layer padding, not in the checksum */
	expect_udp(&p, p.n + 6, AF_INET, 28, QLEN);
}
END_TEST

START_TEST(v4_udp_length_below_8)
{
	struct pkt p;

	for (uint16_t ulen = 0; ulen < 8; ulen++) {
		v4_query(&p);
		set16(p.b + p.udp + 4, ulen);
		set16(p.b + p.udp + 6, 0);	/* no checksum: only the length is wrong */
		expect(p.b, p.n, PKT_MALFORMED);
	}
}
END_TEST

START_TEST(v4_udp_length_beyond_ip_payload)
{
	struct pkt p;

	v4_query(&p);
	memset(p.b + p.n, 0, 8);		/* the bytes it claims are there, past total length */
	set16(p.b + p.udp + 4, (uint16_t)(8 + QLEN + 1));
	set16(p.b + p.udp + 6, 0);
	expect(p.b, p.n + 8, PKT_MALFORMED);
}
END_TEST

START_TEST(v4_bad_header_checksum)
{
	struct pkt p;

	v4_query(&p);
	p.b[11] ^= 0x01;
	expect(p.b, p.n, PKT_MALFORMED);

	v4_query(&p);
	p.b[8] = 63;				/* a TTL changed after the checksum */
	expect(p.b, p.n, PKT_MALFORMED);
}
END_TEST

START_TEST(v4_bad_udp_checksum)
{
	struct pkt p;

	v4_query(&p);
	p.b[p.n - 1] ^= 0x01;			/* a payload octet */
	ck_assert_int_eq(parse(p.b, p.n, true), PKT_MALFORMED);
	ck_assert_int_eq(parse(p.b, p.n, false), PKT_OK);

	v4_query(&p);
	p.b[p.udp] ^= 0x80;			/* the source port */
	ck_assert_int_eq(parse(p.b, p.n, true), PKT_MALFORMED);
	ck_assert_int_eq(parse(p.b, p.n, false), PKT_OK);
}
END_TEST

START_TEST(v4_zero_udp_checksum_accepted)
{
	struct pkt p;

	v4_query(&p);
	set16(p.b + p.udp + 6, 0);		/* RFC 768: no checksum */
	expect_udp(&p, p.n, AF_INET, 28, QLEN);
}
END_TEST

START_TEST(all_ones_checksum_accepted)
{
	uint8_t pl[34];
	struct pkt p;

	/* RFC 768: a computed zero is sent as 0xffff, and must verify */
	memcpy(pl, QUERY, QLEN);
	zero_sum_payload(AF_INET, pl, sizeof(pl));
	udp4(&p, 0, pl, sizeof(pl));
	ck_assert_uint_eq(get16(p.b + p.udp + 6), 0xffff);
	expect_udp(&p, p.n, AF_INET, 28, sizeof(pl));

	zero_sum_payload(AF_INET6, pl, sizeof(pl));
	udp6(&p, P_UDP, NULL, 0, pl, sizeof(pl));
	ck_assert_uint_eq(get16(p.b + p.udp + 6), 0xffff);
	expect_udp(&p, p.n, AF_INET6, 48, sizeof(pl));
}
END_TEST

START_TEST(v4_fragments)
{
	static const uint16_t frags[] = {
		IP4_MF,				/* first fragment */
		IP4_MF | 185,			/* one in the middle, at 1480 */
		185,				/* the last one */
		IP4_DF | 185,
	};
	struct pkt p;

	for (size_t i = 0; i < sizeof(frags) / sizeof(frags[0]); i++) {
		v4_query(&p);
		if (frags[i] == IP4_MF)		/* its UDP length covers the whole datagram */
			set16(p.b + p.udp + 4, 8 + QLEN + 1480);
		set16(p.b + 6, frags[i]);
		seal_ip4_hdr(&p);
		expect(p.b, p.n, PKT_FRAGMENT);
	}
}
END_TEST

START_TEST(v4_not_udp)
{
	static const uint8_t protos[] = { P_ICMP, P_TCP, P_ESP, P_AH, 0 };
	struct pkt p;

	for (size_t i = 0; i < sizeof(protos); i++) {
		v4_query(&p);
		p.b[9] = protos[i];
		seal_ip4_hdr(&p);
		expect(p.b, p.n, PKT_NOT_UDP);
	}
}
END_TEST

START_TEST(v4_unusable_addresses)
{
	static const uint8_t bad[][4] = {
		{ 224, 0, 0, 1 }, { 239, 255, 255, 255 }, { 255, 255, 255, 255 }, { 0, 0, 0, 0 },
	};
	static const uint8_t unicast[4] = { 223, 255, 255, 254 };
	struct pkt p;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (size_t at = 12; at <= 16; at += 4) {	/* source, then destination */
			v4_query(&p);
			memcpy(p.b + at, bad[i], 4);
			seal4(&p);
			expect(p.b, p.n, PKT_MALFORMED);
		}
	}
	v4_query(&p);				/* just below 224/4 is unicast */
	memcpy(p.b + 16, unicast, 4);
	seal4(&p);
	ck_assert_int_eq(parse(p.b, p.n, true), PKT_OK);
}
END_TEST

START_TEST(v4_cuts_rejected)
{
	struct pkt p;

	udp4(&p, 4, QUERY, QLEN);
	expect_cuts_rejected(&p);
}
END_TEST

/* ---- IPv6 parsing ---- */

START_TEST(v6_udp)
{
	struct pkt p;

	v6_query(&p);
	ck_assert_uint_eq(p.n, 40 + 8 + QLEN);
	expect_udp(&p, p.n, AF_INET6, 48, QLEN);
	ck_assert_int_eq(parse(p.b, p.n, false), PKT_OK);
	expect(p.b, 39, PKT_MALFORMED);
	expect(p.b, 47, PKT_MALFORMED);
}
END_TEST

START_TEST(v6_extension_headers_skipped)
{
	uint8_t ext[64];
	size_t extlen = ext_chain(ext);
	struct pkt p;

	udp6(&p, P_HOPOPT, ext, extlen, QUERY, QLEN);
	expect_udp(&p, p.n, AF_INET6, 40 + extlen + 8, QLEN);
}
END_TEST

START_TEST(v6_routing_header_with_segments_left)
{
	uint8_t ext[64];
	size_t extlen = ext_chain(ext);
	struct pkt p;

	/* RFC 8200 4.4: Segments Left 1: the destination is only a waypoint, not who was asked */
	ext[24 + 3] = 1;
	udp6(&p, P_HOPOPT, ext, extlen, QUERY, QLEN);
	expect(p.b, p.n, PKT_NOT_UDP);
}
END_TEST

/* @count 8-octet extension headers (Hop-by-Hop, then Destination Options) before UDP. */
static void ext_run(struct pkt *p, size_t count)
{
	uint8_t ext[8 * 16] = { 0 };

	ck_assert_uint_le(count, 16);
	for (size_t i = 0; i < count; i++) {
		ext[i * 8] = i + 1 < count ? P_DSTOPTS : P_UDP;
		ext[i * 8 + 2] = 1;		/* PadN over the remaining 4 octets */
		ext[i * 8 + 3] = 4;
	}
	udp6(p, P_HOPOPT, ext, count * 8, QUERY, QLEN);
}

START_TEST(v6_extension_header_limit)
{
	struct pkt p;

	ext_run(&p, PKT_MAX_EXT);
	expect_udp(&p, p.n, AF_INET6, 40 + PKT_MAX_EXT * 8 + 8, QLEN);
	ext_run(&p, PKT_MAX_EXT + 1);
	ck_assert_int_ne(parse(p.b, p.n, false), PKT_OK);
	ck_assert_int_ne(parse(p.b, p.n, true), PKT_OK);
}
END_TEST

START_TEST(v6_fragment_header)
{
	static const uint8_t first[8] = { P_UDP, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef };
	static const uint8_t later[8] = { P_UDP, 0, 0x05, 0xc8, 0xde, 0xad, 0xbe, 0xef };
	static const uint8_t atomic[8] = { P_UDP, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef };	/* RFC 6946 */
	uint8_t ext[16] = { P_FRAGMENT, 0, 1, 4 };
	struct pkt p;

	udp6(&p, P_FRAGMENT, first, 8, QUERY, QLEN);
	expect(p.b, p.n, PKT_FRAGMENT);
	udp6(&p, P_FRAGMENT, later, 8, QUERY, QLEN);
	expect(p.b, p.n, PKT_FRAGMENT);
	udp6(&p, P_FRAGMENT, atomic, 8, QUERY, QLEN);
	expect(p.b, p.n, PKT_FRAGMENT);

	memcpy(ext + 8, first, 8);		/* behind a Hop-by-Hop header */
	udp6(&p, P_HOPOPT, ext, 16, QUERY, QLEN);
	expect(p.b, p.n, PKT_FRAGMENT);
}
END_TEST

START_TEST(v6_not_udp)
{
	static const uint8_t protos[] = { P_TCP, P_ICMPV6, P_ESP, P_AH, P_NONE, P_ICMP };
	uint8_t ext[8] = { P_NONE, 0, 1, 4 };
	struct pkt p;

	for (size_t i = 0; i < sizeof(protos); i++) {
		v6_query(&p);
		p.b[6] = protos[i];
		expect(p.b, p.n, PKT_NOT_UDP);
	}
	udp6(&p, P_DSTOPTS, ext, 8, QUERY, QLEN);	/* No Next Header after an extension */
	expect(p.b, p.n, PKT_NOT_UDP);
}
END_TEST

START_TEST(v6_extension_header_past_end)
{
	uint8_t ext[24] = { P_UDP, 0, 1, 4 };
	struct pkt p;

	udp6(&p, P_DSTOPTS, ext, 8, QUERY, QLEN);
	p.b[41] = 255;				/* 2048 octets in a 89-octet packet */
	expect(p.b, p.n, PKT_MALFORMED);

	udp6(&p, P_DSTOPTS, ext, 8, QUERY, QLEN);
	p.b[41] = 1;				/* 16 octets, but the payload length says 8 */
	set16(p.b + 4, 8);
	expect(p.b, p.n, PKT_MALFORMED);

	udp6(&p, P_DSTOPTS, ext, 8, QUERY, QLEN);
	set16(p.b + 4, 1);			/* not even its first two octets */
	expect(p.b, 41, PKT_MALFORMED);
}
END_TEST

START_TEST(v6_jumbogram)
{
	/* RFC 2675: payload length 0 and a Jumbo Payload option in Hop-by-Hop */
	uint8_t hbh[8] = { P_UDP, 0, 0xc2, 4, 0, 0, 0, 8 + 8 + QLEN };
	struct pkt p;

	udp6(&p, P_HOPOPT, hbh, 8, QUERY, QLEN);
	set16(p.b + 4, 0);
	expect(p.b, p.n, PKT_MALFORMED);
}
END_TEST

START_TEST(v6_payload_length_beyond_bytes)
{
	struct pkt p;

	v6_query(&p);
	set16(p.b + 4, (uint16_t)(p.n - 40 + 1));
	expect(p.b, p.n, PKT_MALFORMED);
	set16(p.b + 4, 0xffff);
	expect(p.b, p.n, PKT_MALFORMED);
}
END_TEST

START_TEST(v6_trailing_bytes_ignored)
{
	struct pkt p;

	v6_query(&p);
	memset(p.b + p.n, 0xaa, 6);
	expect_udp(&p, p.n + 6, AF_INET6, 48, QLEN);
}
END_TEST

START_TEST(v6_udp_length_mismatch)
{
	struct pkt p;

	for (uint16_t ulen = 0; ulen < 8; ulen++) {
		v6_query(&p);
		set16(p.b + p.udp + 4, ulen);
		expect(p.b, p.n, PKT_MALFORMED);
	}
	v6_query(&p);
	memset(p.b + p.n, 0, 8);
	set16(p.b + p.udp + 4, (uint16_t)(8 + QLEN + 1));
	seal6(&p);				/* right for the length it claims */
	expect(p.b, p.n + 8, PKT_MALFORMED);
}
END_TEST

START_TEST(v6_bad_udp_checksum)
{
	struct pkt p;

	v6_query(&p);
	p.b[p.n - 1] ^= 0x01;
	ck_assert_int_eq(parse(p.b, p.n, true), PKT_MALFORMED);
	ck_assert_int_eq(parse(p.b, p.n, false), PKT_OK);

	v6_query(&p);
	p.b[39] ^= 0x01;			/* the destination, in the pseudo-header */
	ck_assert_int_eq(parse(p.b, p.n, true), PKT_MALFORMED);
	ck_assert_int_eq(parse(p.b, p.n, false), PKT_OK);
}
END_TEST

START_TEST(v6_zero_udp_checksum_rejected)
{
	struct pkt p;

	v6_query(&p);
	set16(p.b + p.udp + 6, 0);		/* RFC 8200 8.1: mandatory over IPv6 */
	ck_assert_int_eq(parse(p.b, p.n, true), PKT_MALFORMED);
}
END_TEST

START_TEST(v6_unusable_addresses)
{
	static const uint8_t bad[][16] = {
		{ 0xff, 0x02, [15] = 0x01 }, { 0xff, 0x0e, [14] = 0x12, 0x34 }, { 0 },
	};
	struct pkt p;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (size_t at = 8; at <= 24; at += 16) {
			v6_query(&p);
			memcpy(p.b + at, bad[i], 16);
			seal6(&p);
			expect(p.b, p.n, PKT_MALFORMED);
		}
	}
}
END_TEST

START_TEST(v6_cuts_rejected)
{
	uint8_t ext[64];
	size_t extlen = ext_chain(ext);
	struct pkt p;

	udp6(&p, P_HOPOPT, ext, extlen, QUERY, QLEN);
	expect_cuts_rejected(&p);
}
END_TEST

/* ---- building ---- */

static void sa4(union sockaddr_any *a, const uint8_t *ip, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->sin.sin_family = AF_INET;
	memcpy(&a->sin.sin_addr, ip, 4);
	a->sin.sin_port = htons(port);
}

static void sa6(union sockaddr_any *a, const uint8_t *ip, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->sin6.sin6_family = AF_INET6;
	memcpy(&a->sin6.sin6_addr, ip, 16);
	a->sin6.sin6_port = htons(port);
}

/* The answer direction: from DST:DPORT back to SRC:SPORT. */
static void answer_addrs(int family, union sockaddr_any *from, union sockaddr_any *to)
{
	if (family == AF_INET) {
		sa4(from, DST4, DPORT);
		sa4(to, SRC4, SPORT);
	} else {
		sa6(from, DST6, DPORT);
		sa6(to, SRC6, SPORT);
	}
}

static const int FAMILIES[] = { AF_INET, AF_INET6 };

static void pattern(uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(i * 7 + 3);
}

/* The answer's UDP header and payload at @u: DPORT -> SPORT, length, RFC 768 checksum. */
static void check_udp(const uint8_t *u, int family, const uint8_t *src, const uint8_t *dst,
		      const uint8_t *payload, size_t len)
{
	ck_assert_uint_eq(get16(u), DPORT);
	ck_assert_uint_eq(get16(u + 2), SPORT);
	ck_assert_uint_eq(get16(u + 4), 8 + len);
	ck_assert_uint_eq(get16(u + 6), udp_csum(family, src, dst, u, 8 + len));
	ck_assert_uint_eq(fold(sum16(0, u + 6, 2) + udp_sum(family, src, dst, u, 8 + len)), 0xffff);
	ck_assert_mem_eq(u + 8, payload, len);
}

START_TEST(build_hdr_len)
{
	ck_assert_uint_eq(pkt_hdr_len(AF_INET), 20 + 8);
	ck_assert_uint_eq(pkt_hdr_len(AF_INET6), 40 + 8);
}
END_TEST

START_TEST(build_v4_fields)
{
	union sockaddr_any from, to;
	uint8_t pl[48], out[256], hdr[20];

	pattern(pl, sizeof(pl));
	answer_addrs(AF_INET, &from, &to);
	ck_assert_uint_eq(pkt_build_udp(out, sizeof(out), &from, &to, pl, sizeof(pl)), 28 + 48);
	ck_assert_uint_eq(out[0], 0x45);			/* version 4, IHL 5 */
	ck_assert_uint_eq(get16(out + 2), 28 + 48);		/* total length */
	ck_assert_uint_eq(get16(out + 6), 0);			/* DF, MF clear, offset 0 */
	ck_assert_uint_eq(out[8], PKT_TTL);
	ck_assert_uint_eq(out[8], 64);
	ck_assert_uint_eq(out[9], P_UDP);
	ck_assert_mem_eq(out + 12, DST4, 4);
	ck_assert_mem_eq(out + 16, SRC4, 4);
	ck_assert_uint_eq(fold(sum16(0, out, 20)), 0xffff);	/* the header verifies */
	memcpy(hdr, out, 20);
	hdr[10] = hdr[11] = 0;
	ck_assert_uint_eq(get16(out + 10), (uint16_t)~fold(sum16(0, hdr, 20)));
	check_udp(out + 20, AF_INET, DST4, SRC4, pl, sizeof(pl));
}
END_TEST

START_TEST(build_v6_fields)
{
	union sockaddr_any from, to;
	uint8_t pl[48], out[256];

	pattern(pl, sizeof(pl));
	answer_addrs(AF_INET6, &from, &to);
	ck_assert_uint_eq(pkt_build_udp(out, sizeof(out), &from, &to, pl, sizeof(pl)), 48 + 48);
	ck_assert_uint_eq(out[0] >> 4, 6);
	ck_assert_uint_eq(get16(out + 4), 8 + 48);		/* payload length */
	ck_assert_uint_eq(out[6], P_UDP);			/* next header */
	ck_assert_uint_eq(out[7], 64);				/* hop limit */
	ck_assert_mem_eq(out + 8, DST6, 16);
	ck_assert_mem_eq(out + 24, SRC6, 16);
	check_udp(out + 40, AF_INET6, DST6, SRC6, pl, sizeof(pl));
}
END_TEST

/* Build the answer for @family with @len octets of @pl in exactly @cap octets of heap and parse it back. */
static void build_and_parse(int family, const uint8_t *pl, size_t len, size_t cap)
{
	const uint8_t *from_ip = family == AF_INET ? DST4 : DST6;
	const uint8_t *to_ip = family == AF_INET ? SRC4 : SRC6;
	size_t hdr = family == AF_INET ? 28 : 48;
	union sockaddr_any from, to;
	uint8_t *out = malloc(cap);
	struct pkt_udp u;

	ck_assert_ptr_nonnull(out);
	answer_addrs(family, &from, &to);
	ck_assert_uint_eq(pkt_build_udp(out, cap, &from, &to, pl, len), hdr + len);
	ck_assert_int_eq(pkt_parse_udp(out, hdr + len, true, &u), PKT_OK);
	check_addr(&u.src, family, from_ip, DPORT);
	check_addr(&u.dst, family, to_ip, SPORT);
	ck_assert_ptr_eq(u.payload, out + hdr);
	ck_assert_uint_eq(u.len, len);
	ck_assert_mem_eq(u.payload, pl, len);
	free(out);
}

START_TEST(build_parses_back)
{
	build_and_parse(AF_INET, QUERY, QLEN, 512);
	build_and_parse(AF_INET6, QUERY, QLEN, 512);
}
END_TEST

START_TEST(build_odd_payload)
{
	union sockaddr_any from, to;
	uint8_t out[128];

	/* RFC 1071: the odd last octet is summed as if padded with a zero */
	for (size_t i = 0; i < 2; i++) {
		int family = FAMILIES[i];
		size_t hdr = family == AF_INET ? 28 : 48;

		answer_addrs(family, &from, &to);
		ck_assert_uint_eq(pkt_build_udp(out, sizeof(out), &from, &to, QUERY, QLEN), hdr + QLEN);
		check_udp(out + hdr - 8, family, family == AF_INET ? DST4 : DST6,
			  family == AF_INET ? SRC4 : SRC6, QUERY, QLEN);
		ck_assert_uint_eq(pkt_build_udp(out, sizeof(out), &from, &to, QUERY, 1), hdr + 1);
		check_udp(out + hdr - 8, family, family == AF_INET ? DST4 : DST6,
			  family == AF_INET ? SRC4 : SRC6, QUERY, 1);
	}
}
END_TEST

START_TEST(build_zero_checksum_sent_as_ones)
{
	union sockaddr_any from, to;
	uint8_t pl[34], out[128];

	/* zero_sum_payload() tunes for SRC -> DST; the builder sends that way here */
	memcpy(pl, QUERY, QLEN);
	zero_sum_payload(AF_INET, pl, sizeof(pl));
	sa4(&from, SRC4, SPORT);
	sa4(&to, DST4, DPORT);
	ck_assert_uint_eq(pkt_build_udp(out, sizeof(out), &from, &to, pl, sizeof(pl)), 28 + 34);
	ck_assert_uint_eq(get16(out + 20 + 6), 0xffff);

	zero_sum_payload(AF_INET6, pl, sizeof(pl));
	sa6(&from, SRC6, SPORT);
	sa6(&to, DST6, DPORT);
	ck_assert_uint_eq(pkt_build_udp(out, sizeof(out), &from, &to, pl, sizeof(pl)), 48 + 34);
	ck_assert_uint_eq(get16(out + 40 + 6), 0xffff);
}
END_TEST

START_TEST(build_family_mismatch)
{
	union sockaddr_any a4, a6;
	uint8_t out[256];

	sa4(&a4, SRC4, SPORT);
	sa6(&a6, DST6, DPORT);
	ck_assert_uint_eq(pkt_build_udp(out, sizeof(out), &a4, &a6, QUERY, QLEN), 0);
	ck_assert_uint_eq(pkt_build_udp(out, sizeof(out), &a6, &a4, QUERY, QLEN), 0);
}
END_TEST

START_TEST(build_cap)
{
	union sockaddr_any from, to;

	for (size_t i = 0; i < 2; i++) {
		int family = FAMILIES[i];
		size_t hdr = family == AF_INET ? 28 : 48;
		uint8_t *out = malloc(hdr + QLEN - 1);

		ck_assert_ptr_nonnull(out);
		build_and_parse(family, QUERY, QLEN, hdr + QLEN);	/* exactly enough */
		answer_addrs(family, &from, &to);
		ck_assert_uint_eq(pkt_build_udp(out, hdr + QLEN - 1, &from, &to, QUERY, QLEN), 0);
		ck_assert_uint_eq(pkt_build_udp(out, hdr - 1, &from, &to, QUERY, 0), 0);
		free(out);
	}
}
END_TEST

START_TEST(build_65535_limit)
{
	size_t big = 65536;
	uint8_t *pl = malloc(big), *out = malloc(big + 64);
	union sockaddr_any from, to;

	ck_assert_ptr_nonnull(pl);
	ck_assert_ptr_nonnull(out);
	pattern(pl, big);
	build_and_parse(AF_INET, pl, 65535 - 28, 65535);	/* total length 0xffff */
	build_and_parse(AF_INET6, pl, 65535 - 48, 65535);
	answer_addrs(AF_INET, &from, &to);
	ck_assert_uint_eq(pkt_build_udp(out, big + 64, &from, &to, pl, 65535 - 28 + 1), 0);
	answer_addrs(AF_INET6, &from, &to);
	ck_assert_uint_eq(pkt_build_udp(out, big + 64, &from, &to, pl, 65535 - 48 + 1), 0);
	free(out);
	free(pl);
}
END_TEST

static Suite *pkt_suite(void)
{
	Suite *s = suite_create("pkt");
	TCase *tc;

	tc = tcase_create("parse_v4");
	tcase_add_test(tc, v4_udp);
	tcase_add_test(tc, v4_options_skipped);
	tcase_add_test(tc, v4_runts);
	tcase_add_test(tc, bad_version);
	tcase_add_test(tc, v4_ihl_below_5);
	tcase_add_test(tc, v4_ihl_beyond_total_length);
	tcase_add_test(tc, v4_total_length_beyond_bytes);
	tcase_add_test(tc, v4_total_length_below_headers);
	tcase_add_test(tc, v4_trailing_bytes_ignored);
	tcase_add_test(tc, v4_udp_length_below_8);
	tcase_add_test(tc, v4_udp_length_beyond_ip_payload);
	tcase_add_test(tc, v4_bad_header_checksum);
	tcase_add_test(tc, v4_bad_udp_checksum);
	tcase_add_test(tc, v4_zero_udp_checksum_accepted);
	tcase_add_test(tc, all_ones_checksum_accepted);
	tcase_add_test(tc, v4_fragments);
	tcase_add_test(tc, v4_not_udp);
	tcase_add_test(tc, v4_unusable_addresses);
	tcase_add_test(tc, v4_cuts_rejected);
	suite_add_tcase(s, tc);

	tc = tcase_create("parse_v6");
	tcase_add_test(tc, v6_udp);
	tcase_add_test(tc, v6_extension_headers_skipped);
	tcase_add_test(tc, v6_routing_header_with_segments_left);
	tcase_add_test(tc, v6_extension_header_limit);
	tcase_add_test(tc, v6_fragment_header);
	tcase_add_test(tc, v6_not_udp);
	tcase_add_test(tc, v6_extension_header_past_end);
	tcase_add_test(tc, v6_jumbogram);
	tcase_add_test(tc, v6_payload_length_beyond_bytes);
	tcase_add_test(tc, v6_trailing_bytes_ignored);
	tcase_add_test(tc, v6_udp_length_mismatch);
	tcase_add_test(tc, v6_bad_udp_checksum);
	tcase_add_test(tc, v6_zero_udp_checksum_rejected);
	tcase_add_test(tc, v6_unusable_addresses);
	tcase_add_test(tc, v6_cuts_rejected);
	suite_add_tcase(s, tc);

	tc = tcase_create("build");
	tcase_add_test(tc, build_hdr_len);
	tcase_add_test(tc, build_v4_fields);
	tcase_add_test(tc, build_v6_fields);
	tcase_add_test(tc, build_parses_back);
	tcase_add_test(tc, build_odd_payload);
	tcase_add_test(tc, build_zero_checksum_sent_as_ones);
	tcase_add_test(tc, build_family_mismatch);
	tcase_add_test(tc, build_cap);
	tcase_add_test(tc, build_65535_limit);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return unit_run(pkt_suite());
}

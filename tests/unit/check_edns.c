/*
 * check_edns.c - unit tests for src/edns.c: padding and keepalive added to
 * upstream queries, taken out of answers, the keepalive timeout read back.
 * Messages are built by hand from RFC 1035 / RFC 6891 layouts; expected
 * lengths and offsets are worked out here from RFC 8467 4.1 (pad to a
 * multiple of 128), never by running edns.c.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "edns.h"
#include "unit.h"

#define F_QR		0x8000
#define F_RD		0x0100
#define F_RA		0x0080

#define T_A		1
#define T_NS		2
#define T_SOA		6
#define T_AAAA		28
#define T_OPT		41
#define T_SIG		24
#define T_TSIG		250
#define C_IN		1
#define C_ANY		255

#define O_NSID		3	/* RFC 5001: an option that passes untouched */
#define O_EXPIRE	9	/* RFC 7314: another */
#define O_ECS		8	/* RFC 7871: client subnet, dropped both ways */
#define O_COOKIE	10	/* RFC 7873: dropped both ways */
#define O_KEEPALIVE	11	/* RFC 7828 */
#define O_PADDING	12	/* RFC 7830 */
#define O_EDE		15	/* RFC 8914 */

#define DO_BIT		0x00008000u	/* RFC 3225: in the OPT TTL */
#define BLOCK		128		/* RFC 8467 4.1 */
#define OPT_HDR		11		/* root, type, class, ttl, rdlength */

/* ---- the shared message builder, with room past 65535 to test the size limit ---- */

#define DNSMSG_CAP 70000
#include "dnsmsg.h"

static void put_zeros(struct msg *m, size_t len)
{
	ck_assert_uint_le(m->n + len, sizeof(m->b));
	memset(m->b + m->n, 0, len);
	m->n += len;
}

/* RFC 6891 6.1.2 OPT fixed part; the caller writes @rdlen octets of options after it. */
static void put_opt_hdr(struct msg *m, uint16_t udp, uint32_t ttl, uint16_t rdlen)
{
	put8(m, 0);
	put16(m, T_OPT);
	put16(m, udp);
	put32(m, ttl);
	put16(m, rdlen);
}

/* An option: code, length, @len octets of @fill. */
static void put_option(struct msg *m, uint16_t code, uint16_t len, uint8_t fill)
{
	put16(m, code);
	put16(m, len);
	for (uint16_t i = 0; i < len; i++)
		put8(m, fill);
}

static void put_a_ptr(struct msg *m, uint16_t owner, uint8_t last_octet)
{
	const uint8_t ip[4] = { 192, 0, 2, last_octet };

	put_ptr(m, owner);
	put_rr_tail(m, T_A, C_IN, 300, ip, sizeof(ip));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static size_t round_up(size_t n)
{
	return (n + BLOCK - 1) / BLOCK * BLOCK;
}

/* www.example.com A IN, RD: 33 octets. */
static void std_query(struct msg *m, uint16_t arcount)
{
	put_hdr(m, 0x1234, F_RD, 1, 0, 0, arcount);
	put_question(m, "www.example.com", T_A, C_IN);
}

#define STD_QEND 33	/* 12 + \3www\7example\3com\0 (17) + type, class */

/* A question name of @n octets on the wire (n >= 1): labels of up to 63, then the root. */
static void put_name_len(struct msg *m, size_t n)
{
	size_t left = n - 1;

	while (left > 0) {
		size_t label = left - 1 > 63 ? 63 : left - 1;

		if (label == 0)		/* one octet left cannot be a label */
			ck_abort_msg("bad name length");
		put8(m, (uint8_t)label);
		for (size_t i = 0; i < label; i++)
			put8(m, 'a');
		left -= label + 1;
	}
	put8(m, 0);
}

/*
 * Check that @p (@len octets from where the OPT RDATA begins, @rdlen long)
 * ends with an empty keepalive option followed by a zero Padding option,
 * after @kept octets of other options. Returns the padding length.
 */
static size_t expect_tail_options(const uint8_t *p, size_t rdlen, size_t kept)
{
	size_t pad;

	ck_assert_uint_ge(rdlen, kept + 8);
	ck_assert_uint_eq(get16(p + kept), O_KEEPALIVE);
	ck_assert_uint_eq(get16(p + kept + 2), 0);
	ck_assert_uint_eq(get16(p + kept + 4), O_PADDING);
	pad = get16(p + kept + 6);
	ck_assert_uint_eq(kept + 8 + pad, rdlen);
	for (size_t i = 0; i < pad; i++)
		ck_assert_uint_eq(p[kept + 8 + i], 0);
	return pad;
}

static void expect_parses_with_edns(const uint8_t *msg, size_t len, uint16_t udp)
{
	struct dns_query_info qi;

	ck_assert_int_eq(dns_check_query(msg, len, &qi), DNS_QUERY_OK);
	ck_assert(qi.has_edns);
	ck_assert_uint_eq(qi.udp_size, udp);
}

/* ---- edns_prepare_query ---- */

START_TEST(prepare_adds_opt_to_plain_query)
{
	struct msg m;
	size_t n;

	std_query(&m, 0);
	/* 33 + OPT 11 + keepalive 4 + padding header 4 = 52: pad 76 to reach 128 */
	n = edns_prepare_query(m.b, m.n, sizeof(m.b));
	ck_assert_uint_eq(n, 128);
	ck_assert_uint_eq(get16(m.b + 10), 1);		/* ARCOUNT */
	ck_assert_uint_eq(m.b[STD_QEND], 0);		/* root owner */
	ck_assert_uint_eq(get16(m.b + STD_QEND + 1), T_OPT);
	ck_assert_uint_eq(get16(m.b + STD_QEND + 3), EDNS_UDP_SIZE);
	ck_assert_uint_eq(get32(m.b + STD_QEND + 5), 0);
	ck_assert_uint_eq(get16(m.b + STD_QEND + 9), 8 + 76);
	ck_assert_uint_eq(expect_tail_options(m.b + STD_QEND + OPT_HDR, 84, 0), 76);
	expect_parses_with_edns(m.b, n, EDNS_UDP_SIZE);
}
END_TEST

/* Question names of every wire length from 1 to 255: 12 + name + 4 + 19 rounded up. */
START_TEST(prepare_pads_every_size_to_block)
{
	for (size_t nl = 1; nl <= 255; nl++) {
		struct msg m;
		size_t want, n;

		if (nl >= 2 && (nl - 1) % 64 == 1)
			continue;	/* a lone octet cannot be a label in put_name_len */
		put_hdr(&m, 7, F_RD, 1, 0, 0, 0);
		put_name_len(&m, nl);
		put16(&m, T_A);
		put16(&m, C_IN);
		ck_assert_uint_eq(m.n, 16 + nl);
		want = round_up(16 + nl + OPT_HDR + 8);
		n = edns_prepare_query(m.b, m.n, sizeof(m.b));
		ck_assert_uint_eq(n, want);
		ck_assert_uint_eq(n % BLOCK, 0);
		ck_assert_uint_eq(get16(m.b + 16 + nl + 9), want - (16 + nl + OPT_HDR));
		expect_parses_with_edns(m.b, n, EDNS_UDP_SIZE);
	}
}
END_TEST

START_TEST(prepare_exact_block_gets_empty_padding)
{
	struct msg m;
	size_t n;

	/* 12 + 93 + 4 = 109; + 19 = 128 exactly: a padding option of length 0 */
	put_hdr(&m, 7, F_RD, 1, 0, 0, 0);
	put_name_len(&m, 93);
	put16(&m, T_A);
	put16(&m, C_IN);
	ck_assert_uint_eq(m.n, 109);
	n = edns_prepare_query(m.b, m.n, sizeof(m.b));
	ck_assert_uint_eq(n, 128);
	ck_assert_uint_eq(get16(m.b + 109 + 9), 8);
	ck_assert_uint_eq(expect_tail_options(m.b + 109 + OPT_HDR, 8, 0), 0);

	/* one octet more: the next block, 127 octets of padding */
	put_hdr(&m, 7, F_RD, 1, 0, 0, 0);
	put_name_len(&m, 94);
	put16(&m, T_A);
	put16(&m, C_IN);
	n = edns_prepare_query(m.b, m.n, sizeof(m.b));
	ck_assert_uint_eq(n, 256);
	ck_assert_uint_eq(expect_tail_options(m.b + 110 + OPT_HDR, get16(m.b + 110 + 9), 0), 127);
}
END_TEST

START_TEST(prepare_keeps_udp_size_and_do_bit)
{
	struct msg m;
	size_t n;

	std_query(&m, 1);
	put_opt_hdr(&m, 4096, DO_BIT, 0);
	ck_assert_uint_eq(m.n, 44);
	/* 44 + 8 = 52: pad 76 */
	n = edns_prepare_query(m.b, m.n, sizeof(m.b));
	ck_assert_uint_eq(n, 128);
	ck_assert_uint_eq(get16(m.b + 10), 1);		/* no second OPT */
	ck_assert_uint_eq(get16(m.b + STD_QEND + 3), 4096);
	ck_assert_uint_eq(get32(m.b + STD_QEND + 5), DO_BIT);
	ck_assert_uint_eq(get16(m.b + STD_QEND + 9), 84);
	ck_assert_uint_eq(expect_tail_options(m.b + STD_QEND + OPT_HDR, 84, 0), 76);
	expect_parses_with_edns(m.b, n, 4096);
}
END_TEST

START_TEST(prepare_replaces_padding_keeps_other_options)
{
	struct msg m;
	const uint8_t *rd = m.b + STD_QEND + OPT_HDR;
	size_t n;

	/* NSID (4+8), padding (4+16), EXPIRE (4+7), keepalive with a value (4+2) */
	std_query(&m, 1);
	put_opt_hdr(&m, 1232, DO_BIT, 12 + 20 + 11 + 6);
	put_option(&m, O_NSID, 8, 0xc0);
	put_option(&m, O_PADDING, 16, 0);
	put_option(&m, O_EXPIRE, 7, 0xec);
	put_option(&m, O_KEEPALIVE, 2, 0x05);
	ck_assert_uint_eq(m.n, 44 + 49);
	/* kept: NSID and EXPIRE, 23 octets; 44 + 23 + 8 = 75: pad 53 */
	n = edns_prepare_query(m.b, m.n, sizeof(m.b));
	ck_assert_uint_eq(n, 128);
	ck_assert_uint_eq(get16(m.b + STD_QEND + 9), 23 + 8 + 53);
	ck_assert_uint_eq(get16(rd), O_NSID);
	ck_assert_uint_eq(get16(rd + 2), 8);
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(rd[4 + i], 0xc0);
	ck_assert_uint_eq(get16(rd + 12), O_EXPIRE);
	ck_assert_uint_eq(get16(rd + 14), 7);
	for (int i = 0; i < 7; i++)
		ck_assert_uint_eq(rd[16 + i], 0xec);
	ck_assert_uint_eq(expect_tail_options(rd, 84, 23), 53);
	ck_assert_uint_eq(get32(m.b + STD_QEND + 5), DO_BIT);
	expect_parses_with_edns(m.b, n, 1232);
}
END_TEST

START_TEST(prepare_already_padded_query_is_stable)
{
	struct msg m;
	uint8_t first[256];
	size_t n;

	std_query(&m, 0);
	n = edns_prepare_query(m.b, m.n, sizeof(m.b));
	ck_assert_uint_eq(n, 128);
	memcpy(first, m.b, n);
	/* doing it again replaces our own options with the same ones */
	ck_assert_uint_eq(edns_prepare_query(m.b, n, sizeof(m.b)), 128);
	ck_assert_mem_eq(m.b, first, 128);
}
END_TEST

START_TEST(prepare_cap_too_small_leaves_message)
{
	struct msg m;
	uint8_t before[64];

	std_query(&m, 0);
	memcpy(before, m.b, m.n);
	ck_assert_uint_eq(edns_prepare_query(m.b, m.n, 127), 0);
	ck_assert_mem_eq(m.b, before, STD_QEND);
	ck_assert_uint_eq(edns_prepare_query(m.b, m.n, 128), 128);	/* exactly enough */
}
END_TEST

START_TEST(prepare_never_beyond_65535)
{
	struct msg m;
	static const uint8_t big[65000];
	size_t len;

	/* a TXT-ish additional record of 65000 octets: 33 + 2+10+65000 = 65045 + 19 -> 65152 */
	std_query(&m, 1);
	put_ptr(&m, 12);
	put_rr_tail(&m, 16, C_IN, 0, big, sizeof(big));
	len = m.n;
	ck_assert_uint_eq(edns_prepare_query(m.b, len, sizeof(m.b)), 65152);

	/* 400 octets more: the next multiple of 128 is past 65535 */
	std_query(&m, 1);
	put_ptr(&m, 12);
	put_rr_tail(&m, 16, C_IN, 0, big, sizeof(big));
	m.b[STD_QEND + 2 + 8] = 0xff;		/* rdlength 65000 -> 65400 */
	m.b[STD_QEND + 2 + 9] = 0x78;
	put_zeros(&m, 400);
	ck_assert_uint_eq(get16(m.b + STD_QEND + 10), 65400);
	ck_assert_uint_eq(edns_prepare_query(m.b, m.n, sizeof(m.b)), 0);
}
END_TEST

START_TEST(prepare_signed_query_untouched)
{
	static const uint8_t tsig_rdata[] = "\x0bhmac-sha256\0" "\0\0\0\0\0\0" "\x01\x2c" "\0\0" "\x12\x34" "\0\0" "\0\0";
	struct msg m;
	uint8_t before[256];
	size_t len;

	/* TSIG after an OPT (RFC 8945 4.1: last) */
	std_query(&m, 2);
	put_opt_hdr(&m, 1232, 0, 0);
	put_name(&m, "key.example");
	put_rr_tail(&m, T_TSIG, C_ANY, 0, tsig_rdata, sizeof(tsig_rdata) - 1);
	len = m.n;
	memcpy(before, m.b, len);
	ck_assert_uint_eq(edns_prepare_query(m.b, len, sizeof(m.b)), 0);
	ck_assert_mem_eq(m.b, before, len);

	/* SIG(0): a SIG record owned by the root, last in additional (RFC 2931 3) */
	std_query(&m, 1);
	put8(&m, 0);
	put_rr_tail(&m, T_SIG, C_ANY, 0, tsig_rdata, sizeof(tsig_rdata) - 1);
	ck_assert_uint_eq(edns_prepare_query(m.b, m.n, sizeof(m.b)), 0);
}
END_TEST

START_TEST(prepare_malformed_returns_0)
{
	struct msg m;

	/* cut in the question */
	std_query(&m, 0);
	ck_assert_uint_eq(edns_prepare_query(m.b, STD_QEND - 1, sizeof(m.b)), 0);
	/* shorter than a header */
	ck_assert_uint_eq(edns_prepare_query(m.b, 11, sizeof(m.b)), 0);
	/* trailing junk */
	std_query(&m, 0);
	put16(&m, 0xdead);
	ck_assert_uint_eq(edns_prepare_query(m.b, m.n, sizeof(m.b)), 0);
	/* ARCOUNT promises a record that is not there */
	std_query(&m, 1);
	ck_assert_uint_eq(edns_prepare_query(m.b, m.n, sizeof(m.b)), 0);
	/* an option that runs past the RDATA */
	std_query(&m, 1);
	put_opt_hdr(&m, 1232, 0, 6);
	put16(&m, O_NSID);
	put16(&m, 8);
	put16(&m, 0);
	ck_assert_uint_eq(edns_prepare_query(m.b, m.n, sizeof(m.b)), 0);
	/* two OPT records (RFC 6891 6.1.1) */
	std_query(&m, 2);
	put_opt_hdr(&m, 1232, 0, 0);
	put_opt_hdr(&m, 4096, 0, 0);
	ck_assert_uint_eq(edns_prepare_query(m.b, m.n, sizeof(m.b)), 0);
	/* an OPT in the answer section */
	put_hdr(&m, 1, F_RD, 1, 1, 0, 0);
	put_question(&m, "www.example.com", T_A, C_IN);
	put_opt_hdr(&m, 1232, 0, 0);
	ck_assert_uint_eq(edns_prepare_query(m.b, m.n, sizeof(m.b)), 0);
	/* an OPT not owned by the root (RFC 6891 6.1.2) */
	std_query(&m, 1);
	put_ptr(&m, 12);
	put_rr_tail(&m, T_OPT, 1232, 0, NULL, 0);
	ck_assert_uint_eq(edns_prepare_query(m.b, m.n, sizeof(m.b)), 0);
	/* a question name pointing at itself */
	put_hdr(&m, 1, F_RD, 1, 0, 0, 0);
	put_ptr(&m, 12);
	put16(&m, T_A);
	put16(&m, C_IN);
	ck_assert_uint_eq(edns_prepare_query(m.b, m.n, sizeof(m.b)), 0);
}
END_TEST

/*
 * Additional records after the OPT move with it; a compression pointer to
 * octets after the OPT must move too, one to octets before it must not.
 */
START_TEST(prepare_moves_records_after_opt)
{
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	struct msg m;
	size_t n;

	std_query(&m, 4);
	put_a_ptr(&m, 12, 1);				/* 33..49 */
	put_opt_hdr(&m, 1232, DO_BIT, 12);		/* 49..72 */
	put_option(&m, O_NSID, 8, 0xc0);
	ck_assert_uint_eq(m.n, 72);
	put8(&m, 3);					/* ns1.example.com, at 72 */
	put_bytes(&m, "ns1", 3);
	put_ptr(&m, 16);
	put_rr_tail(&m, T_A, C_IN, 60, "\xc0\x00\x02\x35", 4);	/* 72..92 */
	put_ptr(&m, 72);
	put_rr_tail(&m, T_AAAA, C_IN, 60, v6, sizeof(v6));	/* 92..120 */
	ck_assert_uint_eq(m.n, 120);
	/* RDATA 12 -> 12 + 8 + pad; 120 + 8 = 128: pad 0, what follows moves by 8 */
	n = edns_prepare_query(m.b, m.n, sizeof(m.b));
	ck_assert_uint_eq(n, 128);
	ck_assert_uint_eq(get16(m.b + 49 + 9), 20);
	ck_assert_uint_eq(expect_tail_options(m.b + 60, 20, 12), 0);
	ck_assert_uint_eq(m.b[80], 3);
	ck_assert_uint_eq(get16(m.b + 84), 0xc000 | 16);	/* before the OPT: unchanged */
	ck_assert_uint_eq(get16(m.b + 100), 0xc000 | 80);	/* after it: moved by 8 */
	ck_assert_uint_eq(get16(m.b + 102), T_AAAA);
	ck_assert_mem_eq(m.b + 112, v6, 16);
	expect_parses_with_edns(m.b, n, 1232);
}
END_TEST

START_TEST(prepare_pointer_into_opt_refused)
{
	struct msg m;

	std_query(&m, 2);
	put_opt_hdr(&m, 1232, 0, 8);			/* 33..52, RDATA at 44 */
	put_option(&m, O_NSID, 4, 0);
	put_ptr(&m, 46);				/* into the OPT RDATA */
	put_rr_tail(&m, T_A, C_IN, 60, "\xc0\x00\x02\x01", 4);
	ck_assert_uint_eq(edns_prepare_query(m.b, m.n, sizeof(m.b)), 0);
}
END_TEST

START_TEST(prepare_appends_opt_after_other_additional)
{
	struct msg m;
	size_t n;

	/* an A record in additional, no OPT: 49 + 19 = 68, pad 60 */
	std_query(&m, 1);
	put_a_ptr(&m, 12, 9);
	ck_assert_uint_eq(m.n, 49);
	n = edns_prepare_query(m.b, m.n, sizeof(m.b));
	ck_assert_uint_eq(n, 128);
	ck_assert_uint_eq(get16(m.b + 10), 2);
	ck_assert_uint_eq(get16(m.b + 33), 0xc000 | 12);	/* the A record stays first */
	ck_assert_uint_eq(m.b[48], 9);
	ck_assert_uint_eq(m.b[49], 0);
	ck_assert_uint_eq(get16(m.b + 50), T_OPT);
	ck_assert_uint_eq(expect_tail_options(m.b + 49 + OPT_HDR, get16(m.b + 49 + 9), 0), 60);
	expect_parses_with_edns(m.b, n, EDNS_UDP_SIZE);
}
END_TEST

/* A name that reads the header would read a different ARCOUNT: refused. */
START_TEST(prepare_name_into_header_refused)
{
	struct msg m;
	struct dns_query_info qi;

	/* the question name points at QDCOUNT's first octet, 0: the root, to a reader */
	put_hdr(&m, 1, F_RD, 1, 0, 0, 0);
	put_ptr(&m, 4);
	put16(&m, T_NS);
	put16(&m, C_IN);
	ck_assert_int_eq(dns_check_query(m.b, m.n, &qi), DNS_QUERY_OK);
	ck_assert_uint_eq(edns_prepare_query(m.b, m.n, sizeof(m.b)), 0);
}
END_TEST

/* ---- edns_clean_answer ---- */

/* The answer to std_query() with one A record; @ar records follow in additional. */
static void std_answer(struct msg *m, uint16_t ar)
{
	put_hdr(m, 0x1234, F_QR | F_RD | F_RA, 1, 1, 0, ar);
	put_question(m, "www.example.com", T_A, C_IN);
	put_a_ptr(m, 12, 1);				/* 33..49 */
}

#define STD_AEND 49

START_TEST(clean_removes_only_keepalive_and_padding)
{
	struct msg m, want;
	size_t n;

	/* NSID (4+16), keepalive (4+2), EDE (4+6), padding (4+40) */
	std_answer(&m, 1);
	put_opt_hdr(&m, 1232, 0x01008000, 20 + 6 + 10 + 44);
	put_option(&m, O_NSID, 16, 0xc0);
	put_option(&m, O_KEEPALIVE, 2, 0x01);
	put_option(&m, O_EDE, 6, 0xed);
	put_option(&m, O_PADDING, 40, 0);
	std_answer(&want, 1);
	put_opt_hdr(&want, 1232, 0x01008000, 20 + 10);
	put_option(&want, O_NSID, 16, 0xc0);
	put_option(&want, O_EDE, 6, 0xed);
	n = edns_clean_answer(m.b, m.n, false);
	ck_assert_uint_eq(n, m.n - 6 - 44);
	ck_assert_uint_eq(n, want.n);
	ck_assert_mem_eq(m.b, want.b, n);
}
END_TEST

START_TEST(clean_without_those_options_unchanged)
{
	struct msg m;
	uint8_t before[128];
	size_t len;

	std_answer(&m, 1);
	put_opt_hdr(&m, 1232, DO_BIT, 20);
	put_option(&m, O_NSID, 16, 0xc0);
	len = m.n;
	memcpy(before, m.b, len);
	ck_assert_uint_eq(edns_clean_answer(m.b, len, false), len);
	ck_assert_mem_eq(m.b, before, len);
	/* and no OPT at all, with or without drop_opt */
	std_answer(&m, 0);
	len = m.n;
	memcpy(before, m.b, len);
	ck_assert_uint_eq(edns_clean_answer(m.b, len, false), len);
	ck_assert_uint_eq(edns_clean_answer(m.b, len, true), len);
	ck_assert_mem_eq(m.b, before, len);
}
END_TEST

START_TEST(clean_drop_opt_fixes_arcount)
{
	struct msg m, want;
	size_t n;

	std_answer(&m, 1);
	put_opt_hdr(&m, 1232, DO_BIT, 12 + 4);
	put_option(&m, O_PADDING, 8, 0);
	put_option(&m, O_EDE, 0, 0);
	std_answer(&want, 0);
	n = edns_clean_answer(m.b, m.n, true);
	ck_assert_uint_eq(n, STD_AEND);
	ck_assert_uint_eq(get16(m.b + 10), 0);
	ck_assert_mem_eq(m.b, want.b, n);
}
END_TEST

/*
 * Glue before and after the OPT: records after it move back, and their
 * pointers (in owner names and in NS RDATA) to octets after the OPT with them.
 */
static void glue_answer(struct msg *m, uint16_t padlen)
{
	std_answer(m, 5);
	put8(m, 3);					/* ns1.example.com at 49 */
	put_bytes(m, "ns1", 3);
	put_ptr(m, 16);
	put_rr_tail(m, T_A, C_IN, 60, "\xc0\x00\x02\x35", 4);	/* 49..69 */
	put_opt_hdr(m, 1232, DO_BIT, (uint16_t)(4 + padlen));	/* 69.. */
	put_option(m, O_PADDING, padlen, 0);
}

static void glue_answer_tail(struct msg *m, uint16_t at)
{
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 2 };

	put8(m, 3);					/* ns2.example.com at @at */
	put_bytes(m, "ns2", 3);
	put_ptr(m, 16);
	put_rr_tail(m, T_AAAA, C_IN, 60, v6, sizeof(v6));	/* 32 octets */
	put_ptr(m, at);					/* ns2 again */
	put_rr_tail(m, T_A, C_IN, 60, "\xc0\x00\x02\x36", 4);	/* 16 */
	put_ptr(m, 49);					/* ns1, before the OPT */
	put16(m, T_NS);
	put16(m, C_IN);
	put32(m, 60);
	put16(m, 2);
	put_ptr(m, at);					/* NS RDATA: ns2 */
}

START_TEST(clean_moves_records_after_opt)
{
	struct msg m, want;
	size_t n;

	/* OPT with 8 octets of padding: 69 + 11 + 12 = 92 */
	glue_answer(&m, 8);
	ck_assert_uint_eq(m.n, 92);
	glue_answer_tail(&m, 92);
	/* drop_opt: the OPT's 23 octets go, ns2 is then at 69 */
	memcpy(want.b, m.b, 69);
	want.n = 69;
	glue_answer_tail(&want, 69);
	want.b[11] = 4;				/* ARCOUNT 5 -> 4 */
	n = edns_clean_answer(m.b, m.n, true);
	ck_assert_uint_eq(n, m.n - 23);
	ck_assert_uint_eq(n, want.n);
	ck_assert_mem_eq(m.b, want.b, n);

	/* keep the OPT: its 12 octets of RDATA go, ns2 is then at 80 */
	glue_answer(&m, 8);
	glue_answer_tail(&m, 92);
	memcpy(want.b, m.b, 80);
	want.n = 80;
	want.b[69 + 9] = 0;			/* RDLENGTH 0 */
	want.b[69 + 10] = 0;
	glue_answer_tail(&want, 80);
	n = edns_clean_answer(m.b, m.n, false);
	ck_assert_uint_eq(n, want.n);
	ck_assert_mem_eq(m.b, want.b, n);
}
END_TEST

START_TEST(clean_malformed_returns_0)
{
	struct msg m;

	/* an option that runs past the RDATA */
	std_answer(&m, 1);
	put_opt_hdr(&m, 1232, 0, 4);
	put16(&m, O_PADDING);
	put16(&m, 1);
	ck_assert_uint_eq(edns_clean_answer(m.b, m.n, false), 0);
	ck_assert_uint_eq(edns_clean_answer(m.b, m.n, true), 0);
	/* cut inside the OPT */
	std_answer(&m, 1);
	put_opt_hdr(&m, 1232, 0, 8);
	put_option(&m, O_PADDING, 4, 0);
	ck_assert_uint_eq(edns_clean_answer(m.b, m.n - 1, false), 0);
	/* OPT owned by something else than the root */
	std_answer(&m, 1);
	put_ptr(&m, 12);
	put_rr_tail(&m, T_OPT, 1232, 0, "\0\x0c\0\0", 4);
	ck_assert_uint_eq(edns_clean_answer(m.b, m.n, true), 0);
	ck_assert_uint_eq(edns_clean_answer(m.b, 5, true), 0);
}
END_TEST

START_TEST(clean_signed_answer_unchanged)
{
	static const uint8_t tsig_rdata[] = "\x0bhmac-sha256\0" "\0\0\0\0\0\0" "\x01\x2c" "\0\0" "\x12\x34" "\0\0" "\0\0";
	struct msg m;
	uint8_t before[256];
	size_t len;

	std_answer(&m, 2);
	put_opt_hdr(&m, 1232, 0, 8);
	put_option(&m, O_PADDING, 4, 0);
	put_name(&m, "key.example");
	put_rr_tail(&m, T_TSIG, C_ANY, 0, tsig_rdata, sizeof(tsig_rdata) - 1);
	len = m.n;
	memcpy(before, m.b, len);
	ck_assert_uint_eq(edns_clean_answer(m.b, len, true), len);
	ck_assert_mem_eq(m.b, before, len);
}
END_TEST

/* ---- edns_keepalive ---- */

START_TEST(keepalive_timeout_read)
{
	struct msg m;

	/* after a NSID, 1200 units of 100 ms (RFC 7828 3.2) */
	std_answer(&m, 1);
	put_opt_hdr(&m, 1232, 0, 20 + 6);
	put_option(&m, O_NSID, 16, 0xc0);
	put16(&m, O_KEEPALIVE);
	put16(&m, 2);
	put16(&m, 1200);
	ck_assert_int_eq(edns_keepalive(m.b, m.n), 1200);
	m.b[m.n - 2] = 0xff;
	m.b[m.n - 1] = 0xff;
	ck_assert_int_eq(edns_keepalive(m.b, m.n), 65535);
}
END_TEST

START_TEST(keepalive_absent_or_empty)
{
	struct msg m;

	std_answer(&m, 0);
	ck_assert_int_eq(edns_keepalive(m.b, m.n), -1);
	std_answer(&m, 1);
	put_opt_hdr(&m, 1232, 0, 8);
	put_option(&m, O_PADDING, 4, 0);
	ck_assert_int_eq(edns_keepalive(m.b, m.n), -1);
	std_answer(&m, 1);
	put_opt_hdr(&m, 1232, 0, 4);
	put_option(&m, O_KEEPALIVE, 0, 0);		/* empty: no timeout */
	ck_assert_int_eq(edns_keepalive(m.b, m.n), -1);
}
END_TEST

START_TEST(keepalive_truncated_option)
{
	struct msg m;

	/* TIMEOUT promised but the RDATA ends after one octet */
	std_answer(&m, 1);
	put_opt_hdr(&m, 1232, 0, 5);
	put16(&m, O_KEEPALIVE);
	put16(&m, 2);
	put8(&m, 0x04);
	ck_assert_int_eq(edns_keepalive(m.b, m.n), -1);
	/* a one-octet option */
	std_answer(&m, 1);
	put_opt_hdr(&m, 1232, 0, 5);
	put_option(&m, O_KEEPALIVE, 1, 0x04);
	ck_assert_int_eq(edns_keepalive(m.b, m.n), -1);
	/* a good option in a message cut short */
	std_answer(&m, 1);
	put_opt_hdr(&m, 1232, 0, 6);
	put_option(&m, O_KEEPALIVE, 2, 0x04);
	ck_assert_int_eq(edns_keepalive(m.b, m.n), 0x0404);
	ck_assert_int_eq(edns_keepalive(m.b, m.n - 1), -1);
}
END_TEST

START_TEST(subnet_and_cookies_are_dropped_both_ways)
{
	struct msg m;
	size_t n;

	/* a query with a client cookie, a client subnet and an NSID request (33 + 11 + 27) */
	put_hdr(&m, 1, 0x0100, 1, 0, 0, 1);
	put_question(&m, "www.example.com", T_A, C_IN);
	put_opt_hdr(&m, 1232, 0, 4 + 8 + 4 + 7 + 4);
	put_option(&m, O_COOKIE, 8, 0xc0);
	put_option(&m, O_ECS, 7, 0xec);
	put_option(&m, O_NSID, 0, 0);
	n = edns_prepare_query(m.b, m.n, sizeof(m.b));
	ck_assert_uint_eq(n, 128);
	/* neither the cookie nor the subnet goes upstream: NSID, keepalive, padding */
	ck_assert_uint_eq(get16(m.b + 42), 128 - 44);		/* RDLENGTH */
	ck_assert_uint_eq(get16(m.b + 44), O_NSID);
	ck_assert_uint_eq(get16(m.b + 48), O_KEEPALIVE);
	ck_assert_uint_eq(get16(m.b + 52), O_PADDING);
	ck_assert_uint_eq(get16(m.b + 54), 128 - 56);
	/* an answer carrying them (33 + 11 + 44): shared between clients, so they go */
	put_hdr(&m, 1, 0x8180, 1, 0, 0, 1);
	put_question(&m, "www.example.com", T_A, C_IN);
	put_opt_hdr(&m, 1232, 0, 4 + 24 + 4 + 8 + 4 + 2);
	put_option(&m, O_COOKIE, 24, 0xc0);
	put_option(&m, O_ECS, 8, 0xec);
	put_option(&m, O_EDE, 2, 0);
	n = edns_clean_answer(m.b, m.n, false);
	ck_assert_uint_eq(n, 33 + 11 + 6);
	ck_assert_uint_eq(get16(m.b + 42), 6);
	ck_assert_uint_eq(get16(m.b + 44), O_EDE);
}
END_TEST

static Suite *edns_suite(void)
{
	Suite *s = suite_create("edns");
	TCase *tc;

	tc = tcase_create("prepare_query");
	tcase_add_test(tc, prepare_adds_opt_to_plain_query);
	tcase_add_test(tc, prepare_pads_every_size_to_block);
	tcase_add_test(tc, prepare_exact_block_gets_empty_padding);
	tcase_add_test(tc, prepare_keeps_udp_size_and_do_bit);
	tcase_add_test(tc, prepare_replaces_padding_keeps_other_options);
	tcase_add_test(tc, prepare_already_padded_query_is_stable);
	tcase_add_test(tc, prepare_cap_too_small_leaves_message);
	tcase_add_test(tc, prepare_never_beyond_65535);
	tcase_add_test(tc, prepare_signed_query_untouched);
	tcase_add_test(tc, prepare_malformed_returns_0);
	tcase_add_test(tc, prepare_moves_records_after_opt);
	tcase_add_test(tc, prepare_pointer_into_opt_refused);
	tcase_add_test(tc, prepare_appends_opt_after_other_additional);
	tcase_add_test(tc, prepare_name_into_header_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("clean_answer");
	tcase_add_test(tc, clean_removes_only_keepalive_and_padding);
	tcase_add_test(tc, clean_without_those_options_unchanged);
	tcase_add_test(tc, clean_drop_opt_fixes_arcount);
	tcase_add_test(tc, clean_moves_records_after_opt);
	tcase_add_test(tc, clean_malformed_returns_0);
	tcase_add_test(tc, clean_signed_answer_unchanged);
	tcase_add_test(tc, subnet_and_cookies_are_dropped_both_ways);
	suite_add_tcase(s, tc);

	tc = tcase_create("keepalive");
	tcase_add_test(tc, keepalive_timeout_read);
	tcase_add_test(tc, keepalive_absent_or_empty);
	tcase_add_test(tc, keepalive_truncated_option);
	suite_add_tcase(s, tc);
	return s;
}


int main(void)
{
	return unit_run(edns_suite());
}

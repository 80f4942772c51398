/*
 * check_dns.c - unit tests for src/dns.c and the cursor in src/wire.h.
 * Every message is built by hand from RFC 1035 / RFC 6891 wire layouts, and
 * every expected value comes from those layouts, never from running dns.c.
 */
#include <check.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "dnsmsg.h"
#include "unit.h"

/* RFC 1035 4.1.1 header flag bits, spelled out here rather than taken from dns.c */
#define F_QR		0x8000
#define F_OPCODE(n)	((uint16_t)((n) << 11))
#define F_AA		0x0400
#define F_TC		0x0200
#define F_RD		0x0100
#define F_RA		0x0080
#define F_AD		0x0020
#define F_CD		0x0010

#define T_A		1
#define T_NS		2
#define T_TXT		16
#define T_AAAA		28
#define T_OPT		41
#define T_TSIG		250
#define C_IN		1
#define C_CH		3
#define C_ANY		255

/* ---- a tiny message builder ---- */

/* An A record owned by a pointer to @owner (usually 12, the question name). */
static void put_a_ptr(struct msg *m, uint16_t owner, uint8_t last_octet)
{
	const uint8_t ip[4] = { 192, 0, 2, last_octet };

	put_ptr(m, owner);
	put_rr_tail(m, T_A, C_IN, 300, ip, sizeof(ip));
}

/* RFC 6891 6.1.2: root owner, type 41, CLASS = payload size, TTL = ext-rcode/version/flags. */
static void put_opt(struct msg *m, uint16_t udp, uint32_t ttl, const void *rdata, uint16_t rdlen)
{
	put8(m, 0);
	put_rr_tail(m, T_OPT, udp, ttl, rdata, rdlen);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The usual client query: id 0x1234, RD, www.example.com A IN. 33 octets. */
static void std_query(struct msg *m)
{
	put_hdr(m, 0x1234, F_RD, 1, 0, 0, 0);
	put_question(m, "www.example.com", T_A, C_IN);
}

#define STD_QEND (12 + 17 + 4)	/* header, \3www\7example\3com\0, type, class */

/* The answer to std_query(): two A records owned by a pointer to the question. */
static void std_answer(struct msg *m, const char *qname)
{
	put_hdr(m, 0x1234, F_QR | F_RD | F_RA, 1, 2, 0, 0);
	put_question(m, qname, T_A, C_IN);
	put_a_ptr(m, 12, 1);
	put_a_ptr(m, 12, 2);
}

/* ---- dns_read_name ---- */

static int read_name_at(const uint8_t *buf, size_t len, size_t off, uint8_t *out, struct wire *w)
{
	wire_init(w, buf, len);
	wire_seek(w, off);
	ck_assert(wire_ok(w));
	return dns_read_name(w, out);
}

START_TEST(read_name_plain)
{
	static const uint8_t name[] = "\3www\7example\3com";	/* + the terminating NUL = root */
	uint8_t out[DNS_MAX_NAME];
	struct wire w;

	ck_assert_int_eq(read_name_at(name, sizeof(name), 0, out, &w), 17);
	ck_assert(wire_ok(&w));
	ck_assert_uint_eq(w.pos, 17);
	ck_assert_mem_eq(out, name, 17);
}
END_TEST

START_TEST(read_name_root)
{
	static const uint8_t buf[] = { 0x00, 0xaa };
	uint8_t out[DNS_MAX_NAME] = { 0xee };
	struct wire w;

	ck_assert_int_eq(read_name_at(buf, sizeof(buf), 0, out, &w), 1);
	ck_assert_uint_eq(w.pos, 1);
	ck_assert_uint_eq(out[0], 0);
}
END_TEST

START_TEST(read_name_without_out)
{
	static const uint8_t name[] = "\3www\7example\3com";
	struct wire w;

	ck_assert_int_eq(read_name_at(name, sizeof(name), 0, NULL, &w), 17);
	ck_assert_uint_eq(w.pos, 17);
}
END_TEST

START_TEST(read_name_lowercases_into_out_only)
{
	static const uint8_t name[] = "\3WwW\7ExAmPlE\3COM";
	static const uint8_t lower[] = "\3www\7example\3com";
	/* '@' (0x40) and '[' (0x5b) border 'A'..'Z' and must not change */
	static const uint8_t edge[] = "\4@AZ[";
	static const uint8_t edge_lower[] = "\4@az[";
	uint8_t out[DNS_MAX_NAME], copy[sizeof(name)];
	struct wire w;

	memcpy(copy, name, sizeof(name));
	ck_assert_int_eq(read_name_at(copy, sizeof(copy), 0, out, &w), 17);
	ck_assert_mem_eq(out, lower, 17);
	ck_assert_mem_eq(copy, name, sizeof(name));	/* the message is untouched */

	ck_assert_int_eq(read_name_at(edge, sizeof(edge), 0, out, &w), 6);
	ck_assert_mem_eq(out, edge_lower, 6);
}
END_TEST

START_TEST(read_name_pointer_backwards)
{
	struct msg m = { .n = 0 };
	static const uint8_t want[] = "\4mail\3www\7example\3com";
	uint8_t out[DNS_MAX_NAME];
	struct wire w;

	put_name(&m, "example.com");		/* offset 0, 13 octets */
	put8(&m, 3);				/* offset 13: www -> 0 */
	put_bytes(&m, "www", 3);
	put_ptr(&m, 0);
	put8(&m, 4);				/* offset 19: mail -> 13 -> 0 */
	put_bytes(&m, "mail", 4);
	put_ptr(&m, 13);
	put8(&m, 0xaa);				/* something after the name */

	ck_assert_int_eq(read_name_at(m.b, m.n, 13, out, &w), 17);
	ck_assert_uint_eq(w.pos, 19);		/* resumes after the first pointer */
	ck_assert_mem_eq(out, want + 5, 17);

	ck_assert_int_eq(read_name_at(m.b, m.n, 19, out, &w), 22);
	ck_assert(wire_ok(&w));
	ck_assert_uint_eq(w.pos, 26);
	ck_assert_mem_eq(out, want, 22);
}
END_TEST

START_TEST(read_name_pointer_only)
{
	struct msg m = { .n = 0 };
	uint8_t out[DNS_MAX_NAME];
	struct wire w;

	put_name(&m, "a.b");			/* offset 0: \1a\1b\0 */
	put_ptr(&m, 2);				/* offset 5: -> "b" */
	ck_assert_int_eq(read_name_at(m.b, m.n, 5, out, &w), 3);
	ck_assert_uint_eq(w.pos, 7);
	ck_assert_mem_eq(out, "\1b\0", 3);
}
END_TEST

/* A name at offset 0, then @hops pointers each to the one before: the last is read. */
static int read_chain(int hops, struct wire *w)
{
	static struct msg m;
	uint8_t out[DNS_MAX_NAME];

	m.n = 0;
	put_name(&m, "a");			/* offset 0: \1a\0 */
	put_ptr(&m, 0);				/* offset 3 */
	for (int i = 1; i < hops; i++)
		put_ptr(&m, (uint16_t)(3 + 2 * (i - 1)));
	return read_name_at(m.b, m.n, m.n - 2, out, w);
}

START_TEST(read_name_pointer_chain_is_capped)
{
	struct wire w;

	/* RFC 1035 4.1.4 allows pointers to pointers; 127 (one per possible label) are read */
	ck_assert_int_eq(read_chain(127, &w), 3);
	/* one more is refused: chains read again for every name cost quadratic time */
	ck_assert_int_eq(read_chain(128, &w), -1);
	ck_assert(!wire_ok(&w));
}
END_TEST

START_TEST(question_case_is_copied_only_onto_the_same_name)
{
	struct msg q = { .n = 0 }, a = { .n = 0 }, b = { .n = 0 };

	put_hdr(&q, 1, F_RD, 1, 0, 0, 0);
	put_name(&q, "WwW.ExAmple");
	put16(&q, T_A);
	put16(&q, C_IN);
	put_hdr(&a, 1, F_QR | F_RD, 1, 0, 0, 0);
	put_name(&a, "www.example");
	put16(&a, T_A);
	put16(&a, C_IN);
	dns_copy_question_case(a.b, a.n, q.b, q.n);
	ck_assert_mem_eq(a.b + DNS_HDR_LEN, "\3WwW\7ExAmple\0", 13);
	/* another name of the same shape is left alone */
	put_hdr(&b, 1, F_QR | F_RD, 1, 0, 0, 0);
	put_name(&b, "www.exampla");
	put16(&b, T_A);
	put16(&b, C_IN);
	dns_copy_question_case(b.b, b.n, q.b, q.n);
	ck_assert_mem_eq(b.b + DNS_HDR_LEN, "\3www\7exampla\0", 13);
	/* and a cut answer is not written past its end */
	dns_copy_question_case(a.b, DNS_HDR_LEN + 5, q.b, q.n);
}
END_TEST

START_TEST(read_name_forward_pointer_rejected)
{
	struct msg m = { .n = 0 };
	struct wire w;

	put16(&m, 0);				/* offset 0: filler */
	put_ptr(&m, 4);				/* offset 2: -> 4, forwards */
	put_name(&m, "a");			/* offset 4: a valid name */
	ck_assert_int_eq(read_name_at(m.b, m.n, 2, NULL, &w), -1);
	ck_assert(!wire_ok(&w));
}
END_TEST

START_TEST(read_name_self_pointer_rejected)
{
	struct msg m = { .n = 0 };
	struct wire w;

	put16(&m, 0);
	put_ptr(&m, 2);				/* offset 2: -> 2 */
	ck_assert_int_eq(read_name_at(m.b, m.n, 2, NULL, &w), -1);
	ck_assert(!wire_ok(&w));
}
END_TEST

START_TEST(read_name_pointer_to_own_start_rejected)
{
	struct msg m = { .n = 0 };
	struct wire w;

	put8(&m, 1);				/* offset 0: \1a -> 0 */
	put8(&m, 'a');
	put_ptr(&m, 0);
	ck_assert_int_eq(read_name_at(m.b, m.n, 0, NULL, &w), -1);
	ck_assert(!wire_ok(&w));
}
END_TEST

START_TEST(read_name_pointer_loop_rejected)
{
	struct msg m = { .n = 0 };
	struct wire w;

	put8(&m, 1);				/* offset 0: \1a -> 4 */
	put8(&m, 'a');
	put_ptr(&m, 4);
	put8(&m, 1);				/* offset 4: \1b -> 0 */
	put8(&m, 'b');
	put_ptr(&m, 0);
	/* from 4: b, back to 0, a, then forward to 4 again: a loop */
	ck_assert_int_eq(read_name_at(m.b, m.n, 4, NULL, &w), -1);
	ck_assert(!wire_ok(&w));
	ck_assert_int_eq(read_name_at(m.b, m.n, 0, NULL, &w), -1);
	ck_assert(!wire_ok(&w));
}
END_TEST

START_TEST(read_name_pointer_only_loop_rejected)
{
	struct msg m = { .n = 0 };
	struct wire w;

	put_ptr(&m, 2);				/* offset 0: -> 2 */
	put_ptr(&m, 0);				/* offset 2: -> 0 */
	put_ptr(&m, 2);				/* offset 4: -> 2, backwards, into the loop */
	ck_assert_int_eq(read_name_at(m.b, m.n, 4, NULL, &w), -1);
	ck_assert(!wire_ok(&w));
}
END_TEST

START_TEST(read_name_pointer_beyond_message_rejected)
{
	static const uint8_t far[] = { 0x00, 0x00, 0x00, 0x00, 0xff, 0xff };	/* -> 0x3fff */
	static const uint8_t cut[] = { 0x01, 'a', 0xc0 };			/* half a pointer */
	struct wire w;

	ck_assert_int_eq(read_name_at(far, sizeof(far), 4, NULL, &w), -1);
	ck_assert(!wire_ok(&w));
	ck_assert_int_eq(read_name_at(cut, sizeof(cut), 0, NULL, &w), -1);
	ck_assert(!wire_ok(&w));
}
END_TEST

START_TEST(read_name_label_63_ok)
{
	struct msg m = { .n = 0 };
	uint8_t out[DNS_MAX_NAME];
	struct wire w;

	put8(&m, 63);
	for (int i = 0; i < 63; i++)
		put8(&m, 'x');
	put8(&m, 0);
	ck_assert_int_eq(read_name_at(m.b, m.n, 0, out, &w), 65);
	ck_assert_mem_eq(out, m.b, 65);
}
END_TEST

START_TEST(read_name_label_64_rejected)
{
	struct msg m = { .n = 0 };
	struct wire w;

	put8(&m, 64);				/* 0x40: the obsolete extended label type */
	for (int i = 0; i < 64; i++)
		put8(&m, 'x');
	put8(&m, 0);
	ck_assert_int_eq(read_name_at(m.b, m.n, 0, NULL, &w), -1);
	ck_assert(!wire_ok(&w));
}
END_TEST

START_TEST(read_name_label_type_0x80_rejected)
{
	static const uint8_t buf[] = { 0x80, 0x01, 'a', 0x00 };
	struct wire w;

	ck_assert_int_eq(read_name_at(buf, sizeof(buf), 0, NULL, &w), -1);
	ck_assert(!wire_ok(&w));
}
END_TEST

/* Labels of 63, 63, 63 and @last octets, then the root: 193 + @last + 1 + 1 octets. */
static void put_long_name(struct msg *m, int last)
{
	for (int l = 0; l < 3; l++) {
		put8(m, 63);
		for (int i = 0; i < 63; i++)
			put8(m, (uint8_t)('a' + l));
	}
	put8(m, (uint8_t)last);
	for (int i = 0; i < last; i++)
		put8(m, 'd');
	put8(m, 0);
}

START_TEST(read_name_255_ok)
{
	struct msg m = { .n = 0 };
	uint8_t out[DNS_MAX_NAME + 16];
	struct wire w;

	memset(out, 0xee, sizeof(out));
	put_long_name(&m, 61);			/* 3 * 64 + 62 + 1 = 255 */
	ck_assert_uint_eq(m.n, 255);
	ck_assert_int_eq(read_name_at(m.b, m.n, 0, out, &w), 255);
	ck_assert_uint_eq(w.pos, 255);
	ck_assert_mem_eq(out, m.b, 255);
	ck_assert_uint_eq(out[255], 0xee);	/* nothing written past 255 */
}
END_TEST

START_TEST(read_name_256_rejected)
{
	struct msg m = { .n = 0 };
	uint8_t out[DNS_MAX_NAME + 16];
	struct wire w;

	memset(out, 0xee, sizeof(out));
	put_long_name(&m, 62);			/* 3 * 64 + 63 + 1 = 256 */
	ck_assert_uint_eq(m.n, 256);
	ck_assert_int_eq(read_name_at(m.b, m.n, 0, out, &w), -1);
	ck_assert(!wire_ok(&w));
	ck_assert_uint_eq(out[255], 0xee);
}
END_TEST

START_TEST(read_name_length_counts_through_pointers)
{
	struct msg m = { .n = 0 };
	struct wire w;
	size_t at;

	/* 250 octets at offset 0: 63, 63, 63, 56-octet labels and the root */
	for (int l = 0; l < 3; l++) {
		put8(&m, 63);
		for (int i = 0; i < 63; i++)
			put8(&m, 'a');
	}
	put8(&m, 56);
	for (int i = 0; i < 56; i++)
		put8(&m, 'b');
	put8(&m, 0);
	ck_assert_uint_eq(m.n, 250);

	at = m.n;				/* \4abcd -> 0: 5 + 250 = 255, fine */
	put8(&m, 4);
	put_bytes(&m, "abcd", 4);
	put_ptr(&m, 0);
	ck_assert_int_eq(read_name_at(m.b, m.n, at, NULL, &w), 255);

	at = m.n;				/* \5abcde -> 0: 6 + 250 = 256, too long */
	put8(&m, 5);
	put_bytes(&m, "abcde", 5);
	put_ptr(&m, 0);
	ck_assert_int_eq(read_name_at(m.b, m.n, at, NULL, &w), -1);
	ck_assert(!wire_ok(&w));
}
END_TEST

START_TEST(read_name_truncated_rejected)
{
	static const uint8_t short_label[] = { 0x05, 'a', 'b' };
	static const uint8_t no_root[] = { 0x01, 'a' };
	uint8_t out[DNS_MAX_NAME];
	struct wire w;

	ck_assert_int_eq(read_name_at(short_label, sizeof(short_label), 0, out, &w), -1);
	ck_assert(!wire_ok(&w));
	ck_assert_int_eq(read_name_at(short_label, sizeof(short_label), 0, NULL, &w), -1);
	ck_assert(!wire_ok(&w));
	ck_assert_int_eq(read_name_at(no_root, sizeof(no_root), 0, NULL, &w), -1);
	ck_assert(!wire_ok(&w));
	/* at the very end of the message: nothing to read */
	ck_assert_int_eq(read_name_at(no_root, sizeof(no_root), 2, NULL, &w), -1);
	ck_assert(!wire_ok(&w));
}
END_TEST

START_TEST(read_name_error_is_sticky)
{
	struct msg m = { .n = 0 };
	struct wire w;

	put16(&m, 0);
	put_ptr(&m, 2);				/* offset 2: a self pointer */
	put_name(&m, "ok.example");		/* offset 4: fine on its own */

	ck_assert_int_eq(read_name_at(m.b, m.n, 2, NULL, &w), -1);
	/* the next read of a good name on the same cursor still fails */
	w.pos = 4;
	ck_assert_int_eq(dns_read_name(&w, NULL), -1);
	ck_assert(!wire_ok(&w));
	ck_assert_uint_eq(wire_u16(&w), 0);
	ck_assert_uint_eq(wire_left(&w), 0);

	/* a cursor already in error refuses too */
	wire_init(&w, m.b, m.n);
	wire_seek(&w, 4);
	w.err = true;
	ck_assert_int_eq(dns_read_name(&w, NULL), -1);
}
END_TEST

/* ---- the wire cursor itself ---- */

START_TEST(wire_reads_big_endian_and_stops_at_end)
{
	static const uint8_t buf[] = { 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde };
	struct wire w;

	wire_init(&w, buf, sizeof(buf));
	ck_assert_uint_eq(wire_u8(&w), 0x12);
	ck_assert_uint_eq(wire_u16(&w), 0x3456);
	ck_assert_uint_eq(wire_u32(&w), 0x789abcde);
	ck_assert(wire_ok(&w));
	ck_assert_uint_eq(wire_left(&w), 0);
	ck_assert_uint_eq(wire_u8(&w), 0);
	ck_assert(!wire_ok(&w));

	wire_init(&w, buf, sizeof(buf));
	wire_skip(&w, 6);
	ck_assert_uint_eq(wire_u16(&w), 0);	/* one octet left: not enough */
	ck_assert(!wire_ok(&w));
	wire_seek(&w, 0);			/* a seek does not clear the error */
	ck_assert(!wire_ok(&w));

	wire_init(&w, buf, sizeof(buf));
	wire_seek(&w, sizeof(buf));		/* the end itself is a position */
	ck_assert(wire_ok(&w));
	wire_seek(&w, sizeof(buf) + 1);
	ck_assert(!wire_ok(&w));
}
END_TEST

/* ---- dns_check_query ---- */

START_TEST(query_valid)
{
	struct dns_query_info qi;
	struct msg m;

	std_query(&m);
	ck_assert_uint_eq(m.n, STD_QEND);
	ck_assert_int_eq(dns_check_query(m.b, m.n, &qi), DNS_QUERY_OK);
	ck_assert_uint_eq(qi.qtype, T_A);
	ck_assert_uint_eq(qi.qclass, C_IN);
	ck_assert_uint_eq(qi.question_end, STD_QEND);
	ck_assert(!qi.has_edns);
	ck_assert_uint_eq(qi.udp_size, 512);
}
END_TEST

START_TEST(query_valid_root_ns)
{
	struct dns_query_info qi;
	struct msg m;

	put_hdr(&m, 7, 0, 1, 0, 0, 0);
	put_question(&m, ".", T_NS, C_IN);
	ck_assert_int_eq(dns_check_query(m.b, m.n, &qi), DNS_QUERY_OK);
	ck_assert_uint_eq(qi.qtype, T_NS);
	ck_assert_uint_eq(qi.question_end, 12 + 1 + 4);
}
END_TEST

START_TEST(query_short_dropped)
{
	struct dns_query_info qi;
	struct msg m;

	std_query(&m);
	ck_assert_int_eq(dns_check_query(m.b, 11, &qi), DNS_QUERY_DROP);
	ck_assert_int_eq(dns_check_query(m.b, 0, &qi), DNS_QUERY_DROP);
}
END_TEST

START_TEST(query_with_qr_dropped)
{
	struct dns_query_info qi;
	struct msg m;

	put_hdr(&m, 0x1234, F_QR | F_RD, 1, 0, 0, 0);
	put_question(&m, "www.example.com", T_A, C_IN);
	ck_assert_int_eq(dns_check_query(m.b, m.n, &qi), DNS_QUERY_DROP);
}
END_TEST

START_TEST(query_opcode_notimp)
{
	/* RFC 1035 4.1.1: 1 IQUERY, 2 STATUS; RFC 1996 NOTIFY 4; RFC 2136 UPDATE 5 */
	static const int opcodes[] = { 1, 2, 4, 5, 15 };
	struct dns_query_info qi;
	struct msg m;

	for (size_t i = 0; i < sizeof(opcodes) / sizeof(opcodes[0]); i++) {
		put_hdr(&m, 0x1234, (uint16_t)(F_OPCODE(opcodes[i]) | F_RD), 1, 0, 0, 0);
		put_question(&m, "www.example.com", T_A, C_IN);
		ck_assert_int_eq(dns_check_query(m.b, m.n, &qi), DNS_RCODE_NOTIMP);
	}
}
END_TEST

START_TEST(query_counts_formerr)
{
	/* qd, an, ns */
	static const uint16_t counts[][3] = { { 0, 0, 0 }, { 2, 0, 0 }, { 1, 1, 0 }, { 1, 0, 1 } };
	struct dns_query_info qi;
	struct msg m;

	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		put_hdr(&m, 0x1234, F_RD, counts[i][0], counts[i][1], counts[i][2], 0);
		put_question(&m, "www.example.com", T_A, C_IN);
		if (counts[i][0] == 2)
			put_question(&m, "www.example.com", T_AAAA, C_IN);
		ck_assert_msg(dns_check_query(m.b, m.n, &qi) == DNS_RCODE_FORMERR,
			      "qd %u an %u ns %u", counts[i][0], counts[i][1], counts[i][2]);
	}
}
END_TEST

START_TEST(query_two_questions_formerr_even_if_rest_parses)
{
	struct dns_query_info qi;
	struct msg m;

	/* qdcount 2, arcount 1, but the bytes are one question and one OPT */
	std_query(&m);
	m.b[5] = 2;
	m.b[11] = 1;
	put_opt(&m, 1232, 0, NULL, 0);
	ck_assert_int_eq(dns_check_query(m.b, m.n, &qi), DNS_RCODE_FORMERR);
}
END_TEST

START_TEST(query_truncated_question_formerr)
{
	struct dns_query_info qi;
	struct msg m;

	std_query(&m);
	ck_assert_int_eq(dns_check_query(m.b, 12, &qi), DNS_RCODE_FORMERR);	/* header only */
	ck_assert_int_eq(dns_check_query(m.b, 20, &qi), DNS_RCODE_FORMERR);	/* inside the name */
	ck_assert_int_eq(dns_check_query(m.b, 29, &qi), DNS_RCODE_FORMERR);	/* no type */
	ck_assert_int_eq(dns_check_query(m.b, m.n - 1, &qi), DNS_RCODE_FORMERR);	/* half a class */
}
END_TEST

START_TEST(query_trailing_junk_formerr)
{
	struct dns_query_info qi;
	struct msg m;

	std_query(&m);
	put8(&m, 0);
	ck_assert_int_eq(dns_check_query(m.b, m.n, &qi), DNS_RCODE_FORMERR);
}
END_TEST

START_TEST(query_bad_name_formerr)
{
	struct dns_query_info qi;
	struct msg m;

	put_hdr(&m, 0x1234, F_RD, 1, 0, 0, 0);
	put_ptr(&m, 12);			/* the question name points at itself */
	put16(&m, T_A);
	put16(&m, C_IN);
	ck_assert_int_eq(dns_check_query(m.b, m.n, &qi), DNS_RCODE_FORMERR);
}
END_TEST

START_TEST(query_edns)
{
	/* RFC 7873 COOKIE option: code 10, 8-octet client cookie */
	static const uint8_t cookie[] = { 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8 };
	struct dns_query_info qi;
	struct msg m;

	put_hdr(&m, 0x1234, F_RD, 1, 0, 0, 1);
	put_question(&m, "www.example.com", T_AAAA, C_IN);
	put_opt(&m, 1232, 0x00008000, cookie, sizeof(cookie));	/* DO bit */
	ck_assert_int_eq(dns_check_query(m.b, m.n, &qi), DNS_QUERY_OK);
	ck_assert(qi.has_edns);
	ck_assert_uint_eq(qi.udp_size, 1232);
	ck_assert_uint_eq(qi.qtype, T_AAAA);
	ck_assert_uint_eq(qi.question_end, STD_QEND);
}
END_TEST

START_TEST(query_edns_udp_size_floor)
{
	static const uint16_t sizes[][2] = { { 0, 512 }, { 100, 512 }, { 511, 512 }, { 512, 512 },
					     { 513, 513 }, { 4096, 4096 }, { 65535, 65535 } };
	struct dns_query_info qi;
	struct msg m;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		std_query(&m);
		m.b[11] = 1;			/* arcount */
		put_opt(&m, sizes[i][0], 0, NULL, 0);
		ck_assert_int_eq(dns_check_query(m.b, m.n, &qi), DNS_QUERY_OK);
		ck_assert(qi.has_edns);
		ck_assert_msg(qi.udp_size == sizes[i][1], "OPT payload %u gave %u", sizes[i][0],
			      qi.udp_size);
	}
}
END_TEST

START_TEST(query_two_opt_formerr)
{
	struct dns_query_info qi;
	struct msg m;

	std_query(&m);
	m.b[11] = 2;
	put_opt(&m, 1232, 0, NULL, 0);
	put_opt(&m, 4096, 0, NULL, 0);
	ck_assert_int_eq(dns_check_query(m.b, m.n, &qi), DNS_RCODE_FORMERR);
}
END_TEST

START_TEST(query_tsig_like_additional_skipped)
{
	static const uint8_t rdata[] = { 11, 'h', 'm', 'a', 'c', '-', 's', 'h', 'a', '2', '5', '6', 0,
					 0, 0, 0x5f, 0x5e, 0x10, 0x00, 1, 44, 0, 0 };
	struct dns_query_info qi;
	struct msg m;

	std_query(&m);
	m.b[11] = 1;
	put_name(&m, "key.example");
	put_rr_tail(&m, T_TSIG, C_ANY, 0, rdata, sizeof(rdata));
	ck_assert_int_eq(dns_check_query(m.b, m.n, &qi), DNS_QUERY_OK);
	ck_assert(!qi.has_edns);
	ck_assert_uint_eq(qi.udp_size, 512);
	ck_assert_uint_eq(qi.question_end, STD_QEND);

	/* with an OPT before it, the OPT still counts */
	std_query(&m);
	m.b[11] = 2;
	put_opt(&m, 1400, 0, NULL, 0);
	put_name(&m, "key.example");
	put_rr_tail(&m, T_TSIG, C_ANY, 0, rdata, sizeof(rdata));
	ck_assert_int_eq(dns_check_query(m.b, m.n, &qi), DNS_QUERY_OK);
	ck_assert(qi.has_edns);
	ck_assert_uint_eq(qi.udp_size, 1400);
}
END_TEST

START_TEST(query_root_owned_non_opt_is_not_edns)
{
	static const uint8_t ip[4] = { 192, 0, 2, 1 };
	struct dns_query_info qi;
	struct msg m;

	std_query(&m);
	m.b[11] = 1;
	put8(&m, 0);				/* root owner, but type A */
	put_rr_tail(&m, T_A, 4096, 0, ip, sizeof(ip));
	ck_assert_int_eq(dns_check_query(m.b, m.n, &qi), DNS_QUERY_OK);
	ck_assert(!qi.has_edns);
	ck_assert_uint_eq(qi.udp_size, 512);
}
END_TEST

START_TEST(query_opt_type_with_non_root_owner_is_not_edns)
{
	struct dns_query_info qi;
	struct msg m;
	int rc;

	/* RFC 6891 6.1.2: the OPT owner MUST be the root; this one is not an OPT */
	std_query(&m);
	m.b[11] = 1;
	put_name(&m, "example");
	put_rr_tail(&m, T_OPT, 4096, 0, NULL, 0);
	rc = dns_check_query(m.b, m.n, &qi);
	ck_assert_msg(rc == DNS_RCODE_FORMERR || (rc == DNS_QUERY_OK && !qi.has_edns),
		      "rc %d has_edns %d udp_size %u", rc, qi.has_edns, qi.udp_size);
}
END_TEST

START_TEST(query_opt_truncated_rdata_formerr)
{
	struct dns_query_info qi;
	struct msg m;

	std_query(&m);
	m.b[11] = 1;
	put8(&m, 0);
	put16(&m, T_OPT);
	put16(&m, 1232);
	put32(&m, 0);
	put16(&m, 10);				/* rdlen 10, only 4 follow */
	put32(&m, 0x000a0000);
	ck_assert_int_eq(dns_check_query(m.b, m.n, &qi), DNS_RCODE_FORMERR);
}
END_TEST

START_TEST(query_missing_additional_formerr)
{
	struct dns_query_info qi;
	struct msg m;

	std_query(&m);
	m.b[11] = 1;				/* arcount 1, nothing there */
	ck_assert_int_eq(dns_check_query(m.b, m.n, &qi), DNS_RCODE_FORMERR);

	std_query(&m);
	m.b[11] = 1;
	put8(&m, 0);
	put16(&m, T_OPT);			/* OPT cut inside its fixed fields */
	put16(&m, 1232);
	ck_assert_int_eq(dns_check_query(m.b, m.n, &qi), DNS_RCODE_FORMERR);
}
END_TEST

/* ---- dns_answer_matches ---- */

START_TEST(answer_matches_same_question)
{
	struct msg q, a;

	std_query(&q);
	std_answer(&a, "www.example.com");
	ck_assert(dns_answer_matches(a.b, a.n, q.b, q.n));
}
END_TEST

START_TEST(answer_matches_a_compressed_question_name)
{
	struct msg q, a;

	/* query for the root, NS; the answer names it by a pointer to a zero octet in its
	 * header (offset 4: QDCOUNT's high octet): the same name, two octets on the wire */
	put_hdr(&q, 0x1234, F_RD, 1, 0, 0, 0);
	put_question(&q, ".", T_NS, C_IN);
	put_hdr(&a, 0x1234, F_QR | F_RD | F_RA, 1, 0, 0, 0);
	put_ptr(&a, 4);
	put16(&a, T_NS);
	put16(&a, C_IN);
	ck_assert_uint_eq(a.n, q.n + 1);
	ck_assert(dns_answer_matches(a.b, a.n, q.b, q.n));
	/* and a two-octet wire name that reads differently is still told apart */
	put_hdr(&q, 0x1234, F_RD, 1, 0, 0, 0);
	put_question(&q, "a", T_NS, C_IN);
	ck_assert_uint_eq(q.n, a.n + 1);
	ck_assert(!dns_answer_matches(a.b, a.n, q.b, q.n));
}
END_TEST

START_TEST(answer_matches_case_insensitively)
{
	struct msg q, a;

	std_query(&q);
	std_answer(&a, "WWW.Example.COM");
	ck_assert(dns_answer_matches(a.b, a.n, q.b, q.n));

	put_hdr(&q, 0x1234, F_RD, 1, 0, 0, 0);	/* 0x20-randomised query, lower-case answer */
	put_question(&q, "wWw.eXaMpLe.CoM", T_A, C_IN);
	std_answer(&a, "www.example.com");
	ck_assert(dns_answer_matches(a.b, a.n, q.b, q.n));
}
END_TEST

START_TEST(answer_other_name_rejected)
{
	static const char *const names[] = { "www.example.org", "ww.example.com", "wwx.example.com",
					     "www.example.com.au", "example.com", "." };
	struct msg q, a;

	std_query(&q);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		std_answer(&a, names[i]);
		ck_assert_msg(!dns_answer_matches(a.b, a.n, q.b, q.n), "answer for %s matched",
			      names[i]);
	}
}
END_TEST

START_TEST(answer_other_type_or_class_rejected)
{
	struct msg q, a;

	std_query(&q);
	put_hdr(&a, 0x1234, F_QR | F_RD | F_RA, 1, 0, 0, 0);
	put_question(&a, "www.example.com", T_AAAA, C_IN);
	ck_assert(!dns_answer_matches(a.b, a.n, q.b, q.n));

	put_hdr(&a, 0x1234, F_QR | F_RD | F_RA, 1, 0, 0, 0);
	put_question(&a, "www.example.com", T_A, C_CH);
	ck_assert(!dns_answer_matches(a.b, a.n, q.b, q.n));
}
END_TEST

START_TEST(answer_without_qr_rejected)
{
	struct msg q, a;

	std_query(&q);
	std_answer(&a, "www.example.com");
	a.b[2] &= 0x7f;				/* clear QR */
	ck_assert(!dns_answer_matches(a.b, a.n, q.b, q.n));
	/* the query compared to itself is not an answer either */
	ck_assert(!dns_answer_matches(q.b, q.n, q.b, q.n));
}
END_TEST

START_TEST(answer_qdcount_not_one_rejected)
{
	struct msg q, a;

	std_query(&q);
	std_answer(&a, "www.example.com");
	a.b[5] = 0;
	ck_assert(!dns_answer_matches(a.b, a.n, q.b, q.n));
	a.b[5] = 2;
	ck_assert(!dns_answer_matches(a.b, a.n, q.b, q.n));
	a.b[4] = 1;				/* 257 */
	a.b[5] = 1;
	ck_assert(!dns_answer_matches(a.b, a.n, q.b, q.n));
}
END_TEST

START_TEST(answer_garbage_rejected)
{
	struct msg q, a;
	uint8_t junk[64];

	std_query(&q);
	std_answer(&a, "www.example.com");
	ck_assert(!dns_answer_matches(a.b, 11, q.b, q.n));		/* shorter than a header */
	ck_assert(!dns_answer_matches(a.b, STD_QEND - 1, q.b, q.n));	/* half a class */
	ck_assert(!dns_answer_matches(a.b, 20, q.b, q.n));		/* inside the name */
	ck_assert(!dns_answer_matches(a.b, a.n, q.b, 11));
	ck_assert(!dns_answer_matches(a.b, a.n, q.b, 20));

	/* a broken question never matches, not even one broken the same way */
	memcpy(a.b, q.b, q.n);
	a.b[2] |= 0x80;
	ck_assert(!dns_answer_matches(a.b, 20, q.b, 20));
	ck_assert(!dns_answer_matches(a.b, STD_QEND - 2, q.b, STD_QEND - 2));

	/* QR and qdcount 1, then a question name that points at itself */
	put_hdr(&a, 0x1234, F_QR, 1, 0, 0, 0);
	put_ptr(&a, 12);
	put16(&a, T_A);
	put16(&a, C_IN);
	ck_assert(!dns_answer_matches(a.b, a.n, q.b, q.n));

	/* noise with QR and qdcount 1 in the header */
	srand(1);
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)rand();
		junk[2] |= 0x80;
		junk[4] = 0;
		junk[5] = 1;
		junk[12] = 0xc0 | (junk[12] & 0x3f);	/* a pointer, which can only go into the header */
		junk[13] |= 0x0c;			/* ... and lands at 12 or later: rejected */
		ck_assert(!dns_answer_matches(junk, sizeof(junk), q.b, q.n));
	}
}
END_TEST

/* ---- dns_make_error ---- */

START_TEST(make_error_echoes_query)
{
	uint8_t out[512];
	struct msg q;
	size_t n;

	put_hdr(&q, 0xbeef, F_RD | F_CD, 1, 0, 0, 0);
	put_question(&q, "www.example.com", T_A, C_IN);
	memset(out, 0xee, sizeof(out));
	n = dns_make_error(q.b, q.n, DNS_RCODE_SERVFAIL, out, sizeof(out));
	ck_assert_uint_eq(n, STD_QEND);
	ck_assert_uint_eq(get16(out), 0xbeef);
	/* QR | RD | RA | CD | SERVFAIL: 0x8000 | 0x0100 | 0x0080 | 0x0010 | 2 */
	ck_assert_uint_eq(get16(out + 2), 0x8192);
	ck_assert_uint_eq(get16(out + 4), 1);
	ck_assert_uint_eq(get16(out + 6), 0);
	ck_assert_uint_eq(get16(out + 8), 0);
	ck_assert_uint_eq(get16(out + 10), 0);
	ck_assert_mem_eq(out + 12, q.b + 12, STD_QEND - 12);
}
END_TEST

START_TEST(make_error_refuses_a_runt)
{
	uint8_t out[512];
	struct msg q;

	put_hdr(&q, 0xbeef, F_RD, 1, 0, 0, 0);
	ck_assert_uint_eq(dns_make_error(q.b, 11, DNS_RCODE_FORMERR, out, sizeof(out)), 0);
	ck_assert_uint_eq(dns_make_error(q.b, 3, DNS_RCODE_FORMERR, out, sizeof(out)), 0);
	ck_assert_uint_eq(dns_make_error(q.b, 12, DNS_RCODE_FORMERR, out, 11), 0);
}
END_TEST

START_TEST(make_error_rd_clear_stays_clear)
{
	uint8_t out[512];
	struct msg q;

	put_hdr(&q, 0x0001, 0, 1, 0, 0, 0);
	put_question(&q, "www.example.com", T_A, C_IN);
	ck_assert_uint_eq(dns_make_error(q.b, q.n, DNS_RCODE_REFUSED, out, sizeof(out)), STD_QEND);
	ck_assert_uint_eq(get16(out + 2), 0x8085);	/* QR | RA | REFUSED */
}
END_TEST

START_TEST(make_error_keeps_opcode)
{
	uint8_t out[512];
	struct msg q;

	put_hdr(&q, 0x4242, F_OPCODE(2) | F_RD, 1, 0, 0, 0);	/* STATUS */
	put_question(&q, "www.example.com", T_A, C_IN);
	ck_assert_uint_eq(dns_make_error(q.b, q.n, DNS_RCODE_NOTIMP, out, sizeof(out)), STD_QEND);
	ck_assert_uint_eq(get16(out), 0x4242);
	/* QR | opcode 2 | RD | RA | NOTIMP: 0x8000 | 0x1000 | 0x0100 | 0x0080 | 4 */
	ck_assert_uint_eq(get16(out + 2), 0x9184);
	ck_assert_uint_eq(dns_rcode(out), DNS_RCODE_NOTIMP);
}
END_TEST

START_TEST(make_error_drops_answer_only_bits)
{
	uint8_t out[512];
	struct msg q;

	/* a client setting AA, TC and AD gets none of them back */
	put_hdr(&q, 0x0002, F_AA | F_TC | F_RD | F_AD, 1, 0, 0, 0);
	put_question(&q, "www.example.com", T_A, C_IN);
	ck_assert_uint_eq(dns_make_error(q.b, q.n, DNS_RCODE_FORMERR, out, sizeof(out)), STD_QEND);
	ck_assert_uint_eq(get16(out + 2), 0x8181);	/* QR | RD | RA | FORMERR */
}
END_TEST

START_TEST(make_error_leaves_out_additional)
{
	uint8_t out[512];
	struct msg q;

	std_query(&q);
	q.b[11] = 1;
	put_opt(&q, 1232, 0, NULL, 0);
	ck_assert_uint_eq(dns_make_error(q.b, q.n, DNS_RCODE_SERVFAIL, out, sizeof(out)), STD_QEND);
	ck_assert_uint_eq(get16(out + 10), 0);
}
END_TEST

START_TEST(make_error_unparsable_question)
{
	uint8_t out[512];
	struct msg q;
	size_t n;

	/* qdcount 1, the name cut short */
	std_query(&q);
	n = dns_make_error(q.b, 20, DNS_RCODE_FORMERR, out, sizeof(out));
	ck_assert_uint_eq(n, 12);
	ck_assert_uint_eq(get16(out), 0x1234);
	ck_assert_uint_eq(get16(out + 2), 0x8181);
	ck_assert_uint_eq(get16(out + 4), 0);

	/* qdcount 1, type and class missing */
	ck_assert_uint_eq(dns_make_error(q.b, 29, DNS_RCODE_FORMERR, out, sizeof(out)), 12);
	ck_assert_uint_eq(get16(out + 4), 0);

	/* qdcount 0 and 2 */
	put_hdr(&q, 0x1234, F_RD, 0, 0, 0, 0);
	ck_assert_uint_eq(dns_make_error(q.b, q.n, DNS_RCODE_FORMERR, out, sizeof(out)), 12);
	ck_assert_uint_eq(get16(out + 4), 0);
	put_hdr(&q, 0x1234, F_RD, 2, 0, 0, 0);
	put_question(&q, "a.example", T_A, C_IN);
	put_question(&q, "b.example", T_A, C_IN);
	ck_assert_uint_eq(dns_make_error(q.b, q.n, DNS_RCODE_FORMERR, out, sizeof(out)), 12);
	ck_assert_uint_eq(get16(out + 4), 0);
	ck_assert_uint_eq(get16(out + 6) | get16(out + 8) | get16(out + 10), 0);
}
END_TEST

START_TEST(make_error_question_too_big_for_cap)
{
	uint8_t out[STD_QEND];
	struct msg q;

	std_query(&q);
	ck_assert_uint_eq(dns_make_error(q.b, q.n, DNS_RCODE_SERVFAIL, out, 12), 12);
	ck_assert_uint_eq(get16(out + 4), 0);
	ck_assert_uint_eq(dns_make_error(q.b, q.n, DNS_RCODE_SERVFAIL, out, STD_QEND), STD_QEND);
	ck_assert_uint_eq(get16(out + 4), 1);
}
END_TEST

/* ---- dns_truncate ---- */

/* An answer to std_query() with @an A records, one NS in authority, a glue A, and an OPT if @opt. */
static void big_answer(struct msg *m, int an, bool opt, uint16_t rcode)
{
	static const uint8_t padding[] = { 0, 12, 0, 4, 0, 0, 0, 0 };	/* RFC 7830 option */
	size_t ns_at;

	put_hdr(m, 0x1234, (uint16_t)(F_QR | F_RD | F_RA | rcode), 1, (uint16_t)an, 1,
		(uint16_t)(opt ? 2 : 1));
	put_question(m, "www.example.com", T_A, C_IN);
	for (int i = 0; i < an; i++)
		put_a_ptr(m, 12, (uint8_t)i);
	/* authority: example.com NS ns.example.com, names compressed */
	put_ptr(m, 16);
	put16(m, T_NS);
	put16(m, C_IN);
	put32(m, 3600);
	put16(m, 5);
	ns_at = m->n;
	put8(m, 2);
	put_bytes(m, "ns", 2);
	put_ptr(m, 16);
	/* additional: glue for ns.example.com, then the OPT */
	put_ptr(m, (uint16_t)ns_at);
	{
		static const uint8_t ip[4] = { 192, 0, 2, 53 };

		put_rr_tail(m, T_A, C_IN, 3600, ip, sizeof(ip));
	}
	if (opt)	/* payload 1232, ext-rcode 1, version 0, DO */
		put_opt(m, 1232, 0x01008000, padding, sizeof(padding));
}

START_TEST(truncate_keeps_header_question_and_opt)
{
	static const uint8_t want_opt[11] = { 0, 0, 41, 0x04, 0xd0, 0x01, 0x00, 0x80, 0x00, 0, 0 };
	uint8_t out[600];
	struct msg a;
	size_t n;

	big_answer(&a, 100, true, DNS_RCODE_NOERROR);
	ck_assert_uint_gt(a.n, 1500);
	memset(out, 0xee, sizeof(out));
	n = dns_truncate(a.b, a.n, out, 512);
	ck_assert_uint_eq(n, STD_QEND + 11);
	ck_assert_uint_eq(get16(out), 0x1234);
	ck_assert_uint_eq(get16(out + 2), F_QR | F_TC | F_RD | F_RA);
	ck_assert_uint_eq(get16(out + 4), 1);
	ck_assert_uint_eq(get16(out + 6), 0);
	ck_assert_uint_eq(get16(out + 8), 0);
	ck_assert_uint_eq(get16(out + 10), 1);
	ck_assert_mem_eq(out + 12, a.b + 12, STD_QEND - 12);
	ck_assert_mem_eq(out + STD_QEND, want_opt, sizeof(want_opt));
	ck_assert_uint_eq(out[n], 0xee);
}
END_TEST

START_TEST(truncate_without_opt)
{
	uint8_t out[600];
	struct msg a;
	size_t n;

	big_answer(&a, 100, false, DNS_RCODE_NOERROR);
	n = dns_truncate(a.b, a.n, out, 512);
	ck_assert_uint_eq(n, STD_QEND);
	ck_assert_uint_eq(get16(out + 2), F_QR | F_TC | F_RD | F_RA);
	ck_assert_uint_eq(get16(out + 6), 0);
	ck_assert_uint_eq(get16(out + 8), 0);
	ck_assert_uint_eq(get16(out + 10), 0);
	ck_assert_mem_eq(out + 12, a.b + 12, STD_QEND - 12);
}
END_TEST

START_TEST(truncate_keeps_rcode)
{
	uint8_t out[600];
	struct msg a;

	big_answer(&a, 3, false, DNS_RCODE_NXDOMAIN);
	ck_assert_uint_eq(dns_truncate(a.b, a.n, out, 512), STD_QEND);
	ck_assert_uint_eq(get16(out + 2), F_QR | F_TC | F_RD | F_RA | DNS_RCODE_NXDOMAIN);
}
END_TEST

START_TEST(truncate_opt_only_from_additional)
{
	uint8_t out[600];
	struct msg a;

	/* a root-owned type-41 record in the answer section is not the OPT */
	put_hdr(&a, 0x1234, F_QR | F_RD | F_RA, 1, 1, 0, 0);
	put_question(&a, "www.example.com", T_A, C_IN);
	put_opt(&a, 4096, 0x00008000, NULL, 0);
	ck_assert_uint_eq(dns_truncate(a.b, a.n, out, 512), STD_QEND);
	ck_assert_uint_eq(get16(out + 10), 0);
}
END_TEST

START_TEST(truncate_fits_max)
{
	uint8_t out[600];
	struct msg a;

	big_answer(&a, 100, true, DNS_RCODE_NOERROR);
	ck_assert_uint_eq(dns_truncate(a.b, a.n, out, STD_QEND + 11), STD_QEND + 11);
	ck_assert_uint_eq(dns_truncate(a.b, a.n, out, STD_QEND + 10), 0);
	ck_assert_uint_eq(dns_truncate(a.b, a.n, out, 12), 0);

	big_answer(&a, 100, false, DNS_RCODE_NOERROR);
	ck_assert_uint_eq(dns_truncate(a.b, a.n, out, STD_QEND), STD_QEND);
	ck_assert_uint_eq(dns_truncate(a.b, a.n, out, STD_QEND - 1), 0);
}
END_TEST

START_TEST(truncate_long_question_stays_under_max)
{
	uint8_t out[600];
	struct msg a;
	size_t n;

	/* a 255-octet question name: 12 + 255 + 4 + 11 = 282 */
	put_hdr(&a, 0x1234, F_QR | F_RD | F_RA, 1, 0, 0, 1);
	put_long_name(&a, 61);
	put16(&a, T_TXT);
	put16(&a, C_IN);
	put_opt(&a, 4096, 0, NULL, 0);
	n = dns_truncate(a.b, a.n, out, 512);
	ck_assert_uint_eq(n, 282);
	ck_assert_uint_le(n, 512);
	ck_assert_uint_eq(dns_truncate(a.b, a.n, out, 281), 0);
}
END_TEST

START_TEST(truncate_cut_name_returns_0)
{
	uint8_t out[600];
	struct msg a;

	big_answer(&a, 3, true, DNS_RCODE_NOERROR);
	ck_assert_uint_eq(dns_truncate(a.b, 20, out, 512), 0);
}
END_TEST

START_TEST(truncate_cut_type_class_returns_0)
{
	uint8_t out[600];
	struct msg a;

	big_answer(&a, 3, true, DNS_RCODE_NOERROR);
	ck_assert_uint_eq(dns_truncate(a.b, STD_QEND - 2, out, 512), 0);
}
END_TEST

START_TEST(truncate_self_pointer_question_returns_0)
{
	uint8_t out[600];
	struct msg a;

	put_hdr(&a, 0x1234, F_QR, 1, 0, 0, 0);
	put_ptr(&a, 12);
	put16(&a, T_A);
	put16(&a, C_IN);
	ck_assert_uint_eq(dns_truncate(a.b, a.n, out, 512), 0);
}
END_TEST

START_TEST(truncate_two_questions_returns_0)
{
	uint8_t out[600];
	struct msg a;

	put_hdr(&a, 0x1234, F_QR, 2, 0, 0, 0);
	put_question(&a, "a.example", T_A, C_IN);
	put_question(&a, "b.example", T_A, C_IN);
	ck_assert_uint_eq(dns_truncate(a.b, a.n, out, 512), 0);
}
END_TEST

START_TEST(truncate_short_answer_returns_0)
{
	uint8_t out[600];
	struct msg a;

	big_answer(&a, 3, true, DNS_RCODE_NOERROR);
	for (size_t len = 0; len < 12; len++)
		ck_assert_msg(dns_truncate(a.b, len, out, 512) == 0, "a %zu-octet answer gave %zu",
			      len, dns_truncate(a.b, len, out, 512));
}
END_TEST

/* ---- dns_skip_rr ---- */

START_TEST(skip_rr_steps_over_one_record)
{
	struct msg a;
	struct wire w;

	big_answer(&a, 2, true, DNS_RCODE_NOERROR);
	wire_init(&w, a.b, a.n);
	wire_seek(&w, STD_QEND);
	dns_skip_rr(&w);			/* pointer owner: 2 + 10 + 4 */
	ck_assert(wire_ok(&w));
	ck_assert_uint_eq(w.pos, STD_QEND + 16);
	dns_skip_rr(&w);
	dns_skip_rr(&w);			/* NS: 2 + 10 + 5 */
	ck_assert_uint_eq(w.pos, STD_QEND + 32 + 17);
	dns_skip_rr(&w);			/* glue */
	dns_skip_rr(&w);			/* OPT: 1 + 10 + 8 */
	ck_assert(wire_ok(&w));
	ck_assert_uint_eq(w.pos, a.n);
	dns_skip_rr(&w);			/* nothing left */
	ck_assert(!wire_ok(&w));
}
END_TEST

static Suite *dns_suite(void)
{
	Suite *s = suite_create("dns");
	TCase *tc;

	tc = tcase_create("read_name");
	tcase_add_test(tc, read_name_plain);
	tcase_add_test(tc, read_name_root);
	tcase_add_test(tc, read_name_without_out);
	tcase_add_test(tc, read_name_lowercases_into_out_only);
	tcase_add_test(tc, read_name_pointer_backwards);
	tcase_add_test(tc, read_name_pointer_only);
	tcase_add_test(tc, read_name_pointer_chain_is_capped);
	tcase_add_test(tc, question_case_is_copied_only_onto_the_same_name);
	tcase_add_test(tc, read_name_forward_pointer_rejected);
	tcase_add_test(tc, read_name_self_pointer_rejected);
	tcase_add_test(tc, read_name_pointer_to_own_start_rejected);
	tcase_add_test(tc, read_name_pointer_loop_rejected);
	tcase_add_test(tc, read_name_pointer_only_loop_rejected);
	tcase_add_test(tc, read_name_pointer_beyond_message_rejected);
	tcase_add_test(tc, read_name_label_63_ok);
	tcase_add_test(tc, read_name_label_64_rejected);
	tcase_add_test(tc, read_name_label_type_0x80_rejected);
	tcase_add_test(tc, read_name_255_ok);
	tcase_add_test(tc, read_name_256_rejected);
	tcase_add_test(tc, read_name_length_counts_through_pointers);
	tcase_add_test(tc, read_name_truncated_rejected);
	tcase_add_test(tc, read_name_error_is_sticky);
	tcase_add_test(tc, wire_reads_big_endian_and_stops_at_end);
	suite_add_tcase(s, tc);

	tc = tcase_create("check_query");
	tcase_add_test(tc, query_valid);
	tcase_add_test(tc, query_valid_root_ns);
	tcase_add_test(tc, query_short_dropped);
	tcase_add_test(tc, query_with_qr_dropped);
	tcase_add_test(tc, query_opcode_notimp);
	tcase_add_test(tc, query_counts_formerr);
	tcase_add_test(tc, query_two_questions_formerr_even_if_rest_parses);
	tcase_add_test(tc, query_truncated_question_formerr);
	tcase_add_test(tc, query_trailing_junk_formerr);
	tcase_add_test(tc, query_bad_name_formerr);
	tcase_add_test(tc, query_edns);
	tcase_add_test(tc, query_edns_udp_size_floor);
	tcase_add_test(tc, query_two_opt_formerr);
	tcase_add_test(tc, query_tsig_like_additional_skipped);
	tcase_add_test(tc, query_root_owned_non_opt_is_not_edns);
	tcase_add_test(tc, query_opt_type_with_non_root_owner_is_not_edns);
	tcase_add_test(tc, query_opt_truncated_rdata_formerr);
	tcase_add_test(tc, query_missing_additional_formerr);
	suite_add_tcase(s, tc);

	tc = tcase_create("answer_matches");
	tcase_add_test(tc, answer_matches_same_question);
	tcase_add_test(tc, answer_matches_a_compressed_question_name);
	tcase_add_test(tc, answer_matches_case_insensitively);
	tcase_add_test(tc, answer_other_name_rejected);
	tcase_add_test(tc, answer_other_type_or_class_rejected);
	tcase_add_test(tc, answer_without_qr_rejected);
	tcase_add_test(tc, answer_qdcount_not_one_rejected);
	tcase_add_test(tc, answer_garbage_rejected);
	suite_add_tcase(s, tc);

	tc = tcase_create("make_error");
	tcase_add_test(tc, make_error_echoes_query);
	tcase_add_test(tc, make_error_refuses_a_runt);
	tcase_add_test(tc, make_error_rd_clear_stays_clear);
	tcase_add_test(tc, make_error_keeps_opcode);
	tcase_add_test(tc, make_error_drops_answer_only_bits);
	tcase_add_test(tc, make_error_leaves_out_additional);
	tcase_add_test(tc, make_error_unparsable_question);
	tcase_add_test(tc, make_error_question_too_big_for_cap);
	suite_add_tcase(s, tc);

	tc = tcase_create("truncate");
	tcase_add_test(tc, truncate_keeps_header_question_and_opt);
	tcase_add_test(tc, truncate_without_opt);
	tcase_add_test(tc, truncate_keeps_rcode);
	tcase_add_test(tc, truncate_opt_only_from_additional);
	tcase_add_test(tc, truncate_fits_max);
	tcase_add_test(tc, truncate_long_question_stays_under_max);
	tcase_add_test(tc, truncate_cut_name_returns_0);
	tcase_add_test(tc, truncate_cut_type_class_returns_0);
	tcase_add_test(tc, truncate_self_pointer_question_returns_0);
	tcase_add_test(tc, truncate_two_questions_returns_0);
	tcase_add_test(tc, truncate_short_answer_returns_0);
	tcase_add_test(tc, skip_rr_steps_over_one_record);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return unit_run(dns_suite());
}

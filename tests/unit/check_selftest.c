/*
 * check_selftest.c - src/selftest.c: which names are markers, the TXT the
 * daemon composes and the answer it builds, the client's marker query, and
 * how the client classifies what comes back (dotproxy's TXT for its nonce,
 * a plaintext answer, SERVFAIL, someone else's answer).
 */
#define _GNU_SOURCE
#include <check.h>
#include <string.h>

#include "dns.h"
#include "dnsmsg.h"
#include "selftest.h"
#include "unit.h"

#define NONCE "0123456789abcdef0123456789abcdef"

static const struct selftest_info info = {
	.version = "9.9.9",
	.upstream = "198.51.100.2@853#dot.dotproxy.test",
	.frontend = "tproxy",
	.transport = "udp",
	.family = "ipv4",
	.upstream_rcode = DNS_RCODE_NXDOMAIN,
};

/* @text ("a.b.") into uncompressed wire format; returns its length. */
static size_t wire_name(const char *text, uint8_t *out)
{
	size_t o = 0;

	while (*text) {
		const char *dot = strchr(text, '.');
		size_t l = dot ? (size_t)(dot - text) : strlen(text);

		out[o++] = (uint8_t)l;
		memcpy(out + o, text, l);
		o += l;
		text += l + (dot ? 1 : 0);
	}
	out[o++] = 0;
	return o;
}

static int nonce_of(const char *text, char *nonce)
{
	uint8_t w[300];

	return selftest_marker_nonce(w, wire_name(text, w), nonce);
}

START_TEST(marker_names)
{
	char nonce[SELFTEST_NONCE_MAX + 1];

	ck_assert_int_eq(nonce_of(NONCE ".self-test.dotproxy.invalid.", nonce), 32);
	ck_assert_str_eq(nonce, NONCE);
	ck_assert_int_eq(nonce_of("0123456789abcdef.self-test.dotproxy.invalid.", nonce), 16);
	/* names ignore case (RFC 4343): a resolver on the way may mix it (DNS 0x20); the nonce comes lower-cased */
	ck_assert_int_eq(nonce_of("0123456789ABCDEF.Self-Test.DOTPROXY.invalid.", nonce), 16);
	ck_assert_str_eq(nonce, "0123456789abcdef");

	/* not markers */
	ck_assert_int_eq(nonce_of("0123456789abcde.self-test.dotproxy.invalid.", NULL), -1);	/* 15: too short */
	ck_assert_int_eq(nonce_of("0123456789abcdeg.self-test.dotproxy.invalid.", NULL), -1);	/* not hex */
	ck_assert_int_eq(nonce_of(NONCE ".self-test.dotproxy.test.", NULL), -1);		/* wrong suffix */
	ck_assert_int_eq(nonce_of(NONCE ".self-test.dotproxy.invalid.example.", NULL), -1);
	ck_assert_int_eq(nonce_of(NONCE ".selftest.dotproxy.invalid.", NULL), -1);
	ck_assert_int_eq(nonce_of(NONCE ".self_test.dotproxy.invalid.", NULL), -1);
	ck_assert_int_eq(nonce_of("x." NONCE ".self-test.dotproxy.invalid.", NULL), -1);	/* one label only */
	ck_assert_int_eq(nonce_of("self-test.dotproxy.invalid.", NULL), -1);
	ck_assert_int_eq(nonce_of(".", NULL), -1);
	ck_assert_int_eq(selftest_marker_nonce((const uint8_t *)"", 0, NULL), -1);
	/* 64 hex digits cannot be one label */
	ck_assert_int_eq(nonce_of(NONCE NONCE ".self-test.dotproxy.invalid.", NULL), -1);
}
END_TEST

START_TEST(marker_queries)
{
	uint8_t q[512];
	struct msg m;
	size_t n = selftest_query(NONCE, 0x1234, q, sizeof(q));

	ck_assert_uint_gt(n, 0);
	ck_assert_uint_eq(dns_id(q), 0x1234);
	ck_assert(selftest_is_marker(q, n));
	ck_assert(!selftest_is_marker(q, n - 1));	/* cut short */
	ck_assert_uint_eq(selftest_query("0123", 1, q, sizeof(q)), 0);	/* too short a nonce */
	ck_assert_uint_eq(selftest_query(NONCE, 1, q, 20), 0);		/* no room */

	/* written field by field: TXT IN is a marker; A, CHAOS, two questions or a response are not */
	put_hdr(&m, 7, 0x0100, 1, 0, 0, 0);
	put_question(&m, NONCE ".Self-Test.dotproxy.INVALID", DNS_TYPE_TXT, DNS_CLASS_IN);
	ck_assert(selftest_is_marker(m.b, m.n));
	put_hdr(&m, 7, 0x0100, 1, 0, 0, 0);
	put_question(&m, NONCE ".self-test.dotproxy.invalid", 1, DNS_CLASS_IN);
	ck_assert(!selftest_is_marker(m.b, m.n));
	put_hdr(&m, 7, 0x0100, 1, 0, 0, 0);
	put_question(&m, NONCE ".self-test.dotproxy.invalid", DNS_TYPE_TXT, 3);
	ck_assert(!selftest_is_marker(m.b, m.n));
	put_hdr(&m, 7, 0x8100, 1, 0, 0, 0);
	put_question(&m, NONCE ".self-test.dotproxy.invalid", DNS_TYPE_TXT, DNS_CLASS_IN);
	ck_assert(!selftest_is_marker(m.b, m.n));
	put_hdr(&m, 7, 0x0100, 2, 0, 0, 0);
	put_question(&m, NONCE ".self-test.dotproxy.invalid", DNS_TYPE_TXT, DNS_CLASS_IN);
	put_question(&m, NONCE ".self-test.dotproxy.invalid", DNS_TYPE_TXT, DNS_CLASS_IN);
	ck_assert(!selftest_is_marker(m.b, m.n));
	/* a compression pointer as the whole name, to a marker name earlier in the message */
	put_hdr(&m, 7, 0x0100, 1, 0, 0, 0);
	put_ptr(&m, 12);
	put16(&m, DNS_TYPE_TXT);
	put16(&m, DNS_CLASS_IN);
	ck_assert(!selftest_is_marker(m.b, m.n));
}
END_TEST

START_TEST(txt_text)
{
	char txt[SELFTEST_TXT_MAX];
	struct selftest_info i = info;

	ck_assert_uint_gt(selftest_txt(&info, NONCE, txt, sizeof(txt)), 0);
	ck_assert_str_eq(txt, "dotproxy=9.9.9 upstream=198.51.100.2@853#dot.dotproxy.test tls=verified "
			      "frontend=tproxy transport=udp family=ipv4 upstream-rcode=NXDOMAIN nonce=" NONCE);
	i.upstream_rcode = 9;
	selftest_txt(&i, NONCE, txt, sizeof(txt));
	ck_assert_ptr_nonnull(strstr(txt, " upstream-rcode=RCODE9 "));
	ck_assert_uint_eq(selftest_txt(&info, NONCE, txt, 40), 0);	/* does not fit */
}
END_TEST

/* The daemon's answer to a client's marker query, classified by the client. */
START_TEST(answer_round_trip)
{
	uint8_t q[512], a[2048];
	struct selftest_result r;
	size_t qn = selftest_query(NONCE, 0xbeef, q, sizeof(q));
	size_t an = selftest_answer(q, qn, false, &info, a, sizeof(a));

	ck_assert_uint_gt(an, 0);
	ck_assert_uint_eq(dns_id(a), 0xbeef);
	ck_assert_int_eq(dns_rcode(a), DNS_RCODE_NOERROR);
	ck_assert(a[2] & 0x80);		/* QR */
	ck_assert(a[2] & 0x01);		/* RD copied */
	ck_assert(dns_answer_matches(a, an, q, qn));
	ck_assert_int_eq(selftest_classify(a, an, q, qn, NONCE, &r), 0);
	ck_assert_int_eq(r.verdict, ST_PRIVATE);
	ck_assert_str_eq(r.upstream, "198.51.100.2@853#dot.dotproxy.test");

	/* with an OPT when the client sent one */
	ck_assert_uint_eq(selftest_answer(q, qn, true, &info, a, sizeof(a)), an + 11);
	ck_assert_uint_eq(wire_get_u16(a + 10), 1);
	ck_assert_int_eq(selftest_classify(a, an + 11, q, qn, NONCE, &r), 0);
	ck_assert_int_eq(r.verdict, ST_PRIVATE);

	/* no room, or not a marker: nothing built */
	ck_assert_uint_eq(selftest_answer(q, qn, false, &info, a, an - 1), 0);
	q[DNS_HDR_LEN + 1] = 'x';
	ck_assert_uint_eq(selftest_answer(q, qn, false, &info, a, sizeof(a)), 0);
}
END_TEST

/* A long upstream label makes the TXT longer than one 255-octet string. */
START_TEST(answer_long_txt)
{
	char label[300];
	uint8_t q[512], a[2048];
	struct selftest_info i = info;
	struct selftest_result r;
	size_t qn = selftest_query(NONCE, 1, q, sizeof(q)), an;

	memset(label, 'u', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	i.upstream = label;
	an = selftest_answer(q, qn, false, &i, a, sizeof(a));
	ck_assert_uint_gt(an, 0);
	ck_assert_int_eq(selftest_classify(a, an, q, qn, NONCE, &r), 0);
	ck_assert_int_eq(r.verdict, ST_PRIVATE);
	ck_assert_uint_eq(strlen(r.upstream), sizeof(label) - 1);
}
END_TEST

START_TEST(classify_others)
{
	uint8_t q[512], a[2048];
	struct selftest_result r;
	size_t qn = selftest_query(NONCE, 0x4242, q, sizeof(q)), an;
	struct selftest_info i = info;

	/* the plaintext server's NXDOMAIN */
	an = dns_make_error(q, qn, DNS_RCODE_NXDOMAIN, a, sizeof(a));
	ck_assert_int_eq(selftest_classify(a, an, q, qn, NONCE, &r), 0);
	ck_assert_int_eq(r.verdict, ST_PLAIN);
	ck_assert_int_eq(r.rcode, DNS_RCODE_NXDOMAIN);
	/* SERVFAIL */
	an = dns_make_error(q, qn, DNS_RCODE_SERVFAIL, a, sizeof(a));
	ck_assert_int_eq(selftest_classify(a, an, q, qn, NONCE, &r), 0);
	ck_assert_int_eq(r.verdict, ST_SERVFAIL);
	/* dotproxy's TXT, but for another nonce (a replay): not private */
	an = selftest_answer(q, qn, false, &info, a, sizeof(a));
	ck_assert_int_eq(selftest_classify(a, an, q, qn, "fedcba9876543210fedcba9876543210", &r), 0);
	ck_assert_int_eq(r.verdict, ST_PLAIN);
	/* a TXT that says tls is something else: not private */
	{
		char *p;

		an = selftest_answer(q, qn, false, &i, a, sizeof(a));
		p = memmem(a, an, "tls=verified", 12);
		ck_assert_ptr_nonnull(p);
		memcpy(p, "tls=plaintx", 11);
		ck_assert_int_eq(selftest_classify(a, an, q, qn, NONCE, &r), 0);
		ck_assert_int_eq(r.verdict, ST_PLAIN);
	}
	/* another ID, or cut short: not an answer to this query at all */
	an = selftest_answer(q, qn, false, &info, a, sizeof(a));
	a[0] ^= 1;
	ck_assert_int_eq(selftest_classify(a, an, q, qn, NONCE, &r), -1);
	a[0] ^= 1;
	ck_assert_int_eq(selftest_classify(a, 11, q, qn, NONCE, &r), -1);
	/* cut inside the TXT: an answer, but not a private one */
	ck_assert_int_eq(selftest_classify(a, an - 5, q, qn, NONCE, &r), 0);
	ck_assert_int_eq(r.verdict, ST_PLAIN);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("selftest");
	TCase *tc = tcase_create("selftest");

	tcase_add_test(tc, marker_names);
	tcase_add_test(tc, marker_queries);
	tcase_add_test(tc, txt_text);
	tcase_add_test(tc, answer_round_trip);
	tcase_add_test(tc, answer_long_txt);
	tcase_add_test(tc, classify_others);
	suite_add_tcase(s, tc);
	return unit_run(s);
}

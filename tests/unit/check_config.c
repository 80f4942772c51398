/*
 * check_config.c - unit tests for src/config.c (flags, upstream specs, pins)
 * and the address parsing in src/sock.c. Expected addresses are written out
 * as octets, pins as the bytes that were base64-encoded by hand.
 */
#include <arpa/inet.h>
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "sock.h"
#include "unit.h"

/* Octets 0x00..0x1f, and their base64 (RFC 4648 4) */
#define PIN_SEQ_B64	"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
/* 32 octets of 0xff */
#define PIN_FF_B64	"//////////////////////////////////////////8="
/* 31 and 33 octets: also 44 characters, but not 32 octets */
#define B64_31		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg=="
#define B64_33		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g"
/* 48 octets */
#define B64_48		"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v"

static void pin_seq(uint8_t p[CFG_PIN_LEN])
{
	for (int i = 0; i < CFG_PIN_LEN; i++)
		p[i] = (uint8_t)i;
}

static void assert_v4(const union sockaddr_any *a, uint8_t a0, uint8_t a1, uint8_t a2, uint8_t a3,
		      uint16_t port)
{
	const uint8_t want[4] = { a0, a1, a2, a3 };

	ck_assert_int_eq(a->sa.sa_family, AF_INET);
	ck_assert_mem_eq(&a->sin.sin_addr, want, 4);
	ck_assert_uint_eq(ntohs(a->sin.sin_port), port);
}

static void assert_v6(const union sockaddr_any *a, const uint8_t want[16], uint16_t port)
{
	ck_assert_int_eq(a->sa.sa_family, AF_INET6);
	ck_assert_mem_eq(&a->sin6.sin6_addr, want, 16);
	ck_assert_uint_eq(ntohs(a->sin6.sin6_port), port);
}

static const uint8_t V6_LOOPBACK[16] = { [15] = 1 };
/* 2606:4700:4700::1111 */
static const uint8_t V6_CF[16] = { 0x26, 0x06, 0x47, 0x00, 0x47, 0x00, [14] = 0x11, [15] = 0x11 };
/* 2001:db8::53 */
static const uint8_t V6_DOC53[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x53 };

/* An error is one non-empty line, naming @what. */
static void assert_err_line(const char *err, const char *what)
{
	ck_assert_msg(err[0] != '\0', "empty error message");
	ck_assert_msg(strchr(err, '\n') == NULL, "error is not one line: \"%s\"", err);
	ck_assert_msg(strstr(err, what) != NULL, "error \"%s\" does not name \"%s\"", err, what);
}

/* ---- config_parse_upstream ---- */

static int upstream(const char *spec, struct upstream_cfg *u, char *err, size_t errlen)
{
	memset(err, 0, errlen);
	return config_parse_upstream(spec, u, err, errlen);
}

START_TEST(upstream_ipv4_default_port)
{
	struct upstream_cfg u;
	char err[256];

	ck_assert_int_eq(upstream("192.0.2.1#dot.example.net", &u, err, sizeof(err)), 0);
	assert_v4(&u.addr, 192, 0, 2, 1, 853);
	ck_assert_str_eq(u.name, "dot.example.net");
	ck_assert_int_eq(u.npins, 0);
	ck_assert_str_eq(u.label, "192.0.2.1@853#dot.example.net");
}
END_TEST

START_TEST(upstream_ipv4_with_port)
{
	struct upstream_cfg u;
	char err[256];

	ck_assert_int_eq(upstream("198.51.100.9@8853#dns.example.org", &u, err, sizeof(err)), 0);
	assert_v4(&u.addr, 198, 51, 100, 9, 8853);
	ck_assert_str_eq(u.name, "dns.example.org");
	ck_assert_str_eq(u.label, "198.51.100.9@8853#dns.example.org");
}
END_TEST

START_TEST(upstream_ipv6_bare)
{
	struct upstream_cfg u;
	char err[256];

	ck_assert_int_eq(upstream("2606:4700:4700::1111@853#dot.example.net", &u, err, sizeof(err)), 0);
	assert_v6(&u.addr, V6_CF, 853);
	ck_assert_str_eq(u.name, "dot.example.net");
	ck_assert_str_eq(u.label, "2606:4700:4700::1111@853#dot.example.net");

	ck_assert_int_eq(upstream("2001:db8::53#dot.example", &u, err, sizeof(err)), 0);
	assert_v6(&u.addr, V6_DOC53, 853);
	ck_assert_str_eq(u.label, "2001:db8::53@853#dot.example");
}
END_TEST

START_TEST(upstream_ipv6_bracketed)
{
	struct upstream_cfg u;
	char err[256];

	ck_assert_int_eq(upstream("[::1]@853#localhost", &u, err, sizeof(err)), 0);
	assert_v6(&u.addr, V6_LOOPBACK, 853);
	ck_assert_str_eq(u.label, "::1@853#localhost");

	ck_assert_int_eq(upstream("[2001:db8::53]@8853#dot.example", &u, err, sizeof(err)), 0);
	assert_v6(&u.addr, V6_DOC53, 8853);
	ck_assert_str_eq(u.label, "2001:db8::53@8853#dot.example");
}
END_TEST

START_TEST(upstream_ipv6_bracketed_default_port)
{
	struct upstream_cfg u;
	char err[256];

	ck_assert_int_eq(upstream("[::1]#localhost", &u, err, sizeof(err)), 0);
	assert_v6(&u.addr, V6_LOOPBACK, 853);
	ck_assert_str_eq(u.label, "::1@853#localhost");
}
END_TEST

START_TEST(upstream_name_characters)
{
	struct upstream_cfg u;
	char err[256];

	ck_assert_int_eq(upstream("192.0.2.1#Dot_1-a.Example.TEST", &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.name, "Dot_1-a.Example.TEST");
}
END_TEST

START_TEST(upstream_missing_hash)
{
	struct upstream_cfg u;
	char err[256];

	ck_assert_int_eq(upstream("192.0.2.1", &u, err, sizeof(err)), -1);
	assert_err_line(err, "--upstream");
	ck_assert_int_eq(upstream("192.0.2.1@853", &u, err, sizeof(err)), -1);
	assert_err_line(err, "192.0.2.1@853");
}
END_TEST

START_TEST(upstream_empty_name)
{
	static const char *const specs[] = { "192.0.2.1#", "192.0.2.1@853#", "192.0.2.1#^sha256/" PIN_SEQ_B64 };
	struct upstream_cfg u;
	char err[256];

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		ck_assert_msg(upstream(specs[i], &u, err, sizeof(err)) == -1, "%s accepted", specs[i]);
		assert_err_line(err, "--upstream");
	}
}
END_TEST

START_TEST(upstream_bad_name_char)
{
	static const char *const specs[] = { "192.0.2.1#bad name", "192.0.2.1#exa$mple.com", "192.0.2.1#a/b",
					     "192.0.2.1#a@b", "192.0.2.1#a#b", "192.0.2.1#\xc3\xa9.example" };
	struct upstream_cfg u;
	char err[256];

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		ck_assert_msg(upstream(specs[i], &u, err, sizeof(err)) == -1, "%s accepted", specs[i]);
		assert_err_line(err, "--upstream");
	}
}
END_TEST

START_TEST(upstream_name_length)
{
	char spec[300], name[260];
	struct upstream_cfg u;
	char err[512];

	memset(name, 'a', 253);			/* RFC 1035: 253 characters in text form */
	name[253] = '\0';
	snprintf(spec, sizeof(spec), "192.0.2.1#%s", name);
	ck_assert_int_eq(upstream(spec, &u, err, sizeof(err)), 0);
	ck_assert_str_eq(u.name, name);

	name[253] = 'a';
	name[254] = '\0';
	snprintf(spec, sizeof(spec), "192.0.2.1#%s", name);
	ck_assert_int_eq(upstream(spec, &u, err, sizeof(err)), -1);
	assert_err_line(err, "--upstream");
}
END_TEST

START_TEST(upstream_bad_ip)
{
	static const char *const specs[] = { "1.1.1#x", "256.1.1.1#x", "dns.example#x", "#x", "@853#x",
					     "[::1#x", "::1]@853#x", "[::1]853#x", "[192.0.2.1.1]#x",
					     "2001:db8::g#x", " 192.0.2.1#x" };
	struct upstream_cfg u;
	char err[256];

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		ck_assert_msg(upstream(specs[i], &u, err, sizeof(err)) == -1, "%s accepted", specs[i]);
		assert_err_line(err, "--upstream");
	}
}
END_TEST

START_TEST(upstream_bad_port)
{
	static const char *const specs[] = { "192.0.2.1@0#x", "192.0.2.1@65536#x", "192.0.2.1@dns#x",
					     "192.0.2.1@#x", "192.0.2.1@85a#x", "192.0.2.1@-1#x",
					     "[::1]@0#x", "[::1]@99999#x" };
	struct upstream_cfg u;
	char err[256];

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		ck_assert_msg(upstream(specs[i], &u, err, sizeof(err)) == -1, "%s accepted", specs[i]);
		assert_err_line(err, "--upstream");
	}
	ck_assert_int_eq(upstream("192.0.2.1@65535#x", &u, err, sizeof(err)), 0);
	ck_assert_uint_eq(sock_port(&u.addr), 65535);
	ck_assert_int_eq(upstream("192.0.2.1@1#x", &u, err, sizeof(err)), 0);
	ck_assert_uint_eq(sock_port(&u.addr), 1);
}
END_TEST

START_TEST(upstream_one_pin)
{
	struct upstream_cfg u;
	uint8_t want[CFG_PIN_LEN];
	char err[256];

	pin_seq(want);
	ck_assert_int_eq(upstream("192.0.2.1@853#dot.example.net^sha256/" PIN_SEQ_B64, &u, err,
				  sizeof(err)), 0);
	ck_assert_int_eq(u.npins, 1);
	ck_assert_mem_eq(u.pins[0], want, CFG_PIN_LEN);
	ck_assert_str_eq(u.name, "dot.example.net");
	ck_assert_str_eq(u.label, "192.0.2.1@853#dot.example.net");
}
END_TEST

START_TEST(upstream_two_pins)
{
	struct upstream_cfg u;
	uint8_t seq[CFG_PIN_LEN], ff[CFG_PIN_LEN];
	char err[256];

	pin_seq(seq);
	memset(ff, 0xff, sizeof(ff));
	ck_assert_int_eq(upstream("[::1]@853#localhost^sha256/" PIN_FF_B64 "^sha256/" PIN_SEQ_B64, &u,
				  err, sizeof(err)), 0);
	ck_assert_int_eq(u.npins, 2);
	ck_assert_mem_eq(u.pins[0], ff, CFG_PIN_LEN);
	ck_assert_mem_eq(u.pins[1], seq, CFG_PIN_LEN);
	assert_v6(&u.addr, V6_LOOPBACK, 853);
}
END_TEST

START_TEST(upstream_bad_pins)
{
	static const char *const specs[] = {
		"192.0.2.1#x^sha256/" B64_31,		/* 44 characters, 31 octets */
		"192.0.2.1#x^sha256/" B64_33,		/* 44 characters, 33 octets */
		"192.0.2.1#x^sha256/" B64_48,
		"192.0.2.1#x^sha256/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",	/* no padding */
		"192.0.2.1#x^sha256/AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd*h8=",	/* not base64 */
		"192.0.2.1#x^sha1/" PIN_SEQ_B64,
		"192.0.2.1#x^SHA256/" PIN_SEQ_B64,
		"192.0.2.1#x^sha256:" PIN_SEQ_B64,
		"192.0.2.1#x^" PIN_SEQ_B64,
		"192.0.2.1#x^",
		"192.0.2.1#x^sha256/" PIN_SEQ_B64 "^",
	};
	struct upstream_cfg u;
	char err[512];

	for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		ck_assert_msg(upstream(specs[i], &u, err, sizeof(err)) == -1, "%s accepted", specs[i]);
		assert_err_line(err, "--upstream");
	}
}
END_TEST

START_TEST(upstream_pin_count_limit)
{
	char spec[1024];
	struct upstream_cfg u;
	uint8_t want[CFG_PIN_LEN];
	char err[512];
	size_t n;

	pin_seq(want);
	n = (size_t)snprintf(spec, sizeof(spec), "192.0.2.1#x");
	for (int i = 0; i < CFG_MAX_PINS; i++)
		n += (size_t)snprintf(spec + n, sizeof(spec) - n, "^sha256/%s", PIN_SEQ_B64);
	ck_assert_uint_lt(n, 512);		/* the whole spec must stay under the length cap */
	ck_assert_int_eq(upstream(spec, &u, err, sizeof(err)), 0);
	ck_assert_int_eq(u.npins, CFG_MAX_PINS);
	ck_assert_mem_eq(u.pins[CFG_MAX_PINS - 1], want, CFG_PIN_LEN);

	snprintf(spec + n, sizeof(spec) - n, "^sha256/%s", PIN_SEQ_B64);
	ck_assert_int_eq(upstream(spec, &u, err, sizeof(err)), -1);
	assert_err_line(err, "--upstream");
}
END_TEST

START_TEST(upstream_too_long)
{
	char spec[700];
	struct upstream_cfg u;
	char err[256];

	memset(spec, 'a', sizeof(spec) - 1);
	spec[sizeof(spec) - 1] = '\0';
	memcpy(spec, "192.0.2.1#", 10);
	ck_assert_int_eq(upstream(spec, &u, err, sizeof(err)), -1);
	assert_err_line(err, "--upstream");
}
END_TEST

/* ---- config_parse_pin ---- */

START_TEST(pin_valid)
{
	uint8_t pin[CFG_PIN_LEN], want[CFG_PIN_LEN];
	char err[256];

	pin_seq(want);
	ck_assert_int_eq(config_parse_pin("sha256/" PIN_SEQ_B64, pin, err, sizeof(err)), 0);
	ck_assert_mem_eq(pin, want, CFG_PIN_LEN);

	memset(want, 0xff, sizeof(want));
	ck_assert_int_eq(config_parse_pin("sha256/" PIN_FF_B64, pin, err, sizeof(err)), 0);
	ck_assert_mem_eq(pin, want, CFG_PIN_LEN);
}
END_TEST

START_TEST(pin_invalid)
{
	static const char *const pins[] = { "sha256/" B64_31, "sha256/" B64_33, "sha256/" B64_48,
					    "sha256/", "sha256", "", "sha512/" PIN_SEQ_B64,
					    PIN_SEQ_B64, "sha256/" PIN_SEQ_B64 "=",
					    "sha256/!AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" };
	uint8_t pin[CFG_PIN_LEN];
	char err[256];

	for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
		err[0] = '\0';
		ck_assert_msg(config_parse_pin(pins[i], pin, err, sizeof(err)) == -1, "\"%s\" accepted",
			      pins[i]);
		assert_err_line(err, "pin");
	}
}
END_TEST

/* ---- config_parse_args ---- */

#define MAX_ARGS 32

struct args {
	char *v[MAX_ARGS + 1];
	int c;
	char err[512];
};

/* Parse "dotproxy" followed by the NULL-terminated flags. */
static int parse(struct config *c, struct args *a, ...)
{
	va_list ap;
	char *s;

	a->c = 0;
	a->v[a->c++] = (char *)"dotproxy";
	va_start(ap, a);
	while ((s = va_arg(ap, char *)) != NULL) {
		ck_assert_int_lt(a->c, MAX_ARGS);
		a->v[a->c++] = s;
	}
	va_end(ap);
	a->v[a->c] = NULL;
	memset(a->err, 0, sizeof(a->err));
	return config_parse_args(c, a->c, a->v, a->err, sizeof(a->err));
}

/* The parse must fail with one line naming @what. */
#define PARSE_FAILS(what, ...)                                                   \
	do {                                                                     \
		struct config c_;                                                \
		struct args a_;                                                  \
		ck_assert_int_eq(parse(&c_, &a_, __VA_ARGS__, (char *)NULL), -1); \
		assert_err_line(a_.err, what);                                   \
	} while (0)

START_TEST(args_defaults)
{
	struct config c;
	struct args a;

	ck_assert_int_eq(parse(&c, &a, (char *)NULL), 0);
	ck_assert_int_eq(c.mode, MODE_TPROXY);
	ck_assert_uint_eq(c.port, 5353);
	ck_assert_int_eq(c.nlisten, 0);
	ck_assert_int_eq(c.nupstreams, 2);
	ck_assert_str_eq(c.upstreams[0].label, "1.1.1.1@853#cloudflare-dns.com");
	ck_assert_str_eq(c.upstreams[1].label, "9.9.9.9@853#dns.quad9.net");
	assert_v4(&c.upstreams[0].addr, 1, 1, 1, 1, 853);
	assert_v4(&c.upstreams[1].addr, 9, 9, 9, 9, 853);
	ck_assert_str_eq(c.upstreams[0].name, "cloudflare-dns.com");
	ck_assert_str_eq(c.upstreams[1].name, "dns.quad9.net");
	ck_assert_int_eq(c.upstreams[0].npins, 0);
	ck_assert_uint_eq(c.mark, 0x444);
	ck_assert_uint_eq(c.timeout_ms, 3000);
	ck_assert_uint_eq(c.idle_timeout_ms, 30000);
	ck_assert_str_eq(c.ca_file, "");
	ck_assert(!c.has_metrics);
	ck_assert(!c.verbose);
}
END_TEST

START_TEST(args_every_flag)
{
	struct config c;
	struct args a;

	ck_assert_int_eq(parse(&c, &a, "--mode", "redirect", "--port", "5300", "--listen", "127.0.0.1",
			       "--upstream", "192.0.2.53@8853#dot.example", "--ca-file", "/tmp/ca.pem",
			       "--metrics", "127.0.0.1:9153", "--mark", "0x10", "--timeout", "500",
			       "--idle-timeout", "1000", "--max-inflight", "100", "--max-tcp-clients",
			       "10", "--verbose", (char *)NULL), 0);
	ck_assert_int_eq(c.mode, MODE_REDIRECT);
	ck_assert_uint_eq(c.port, 5300);
	ck_assert_int_eq(c.nlisten, 1);
	assert_v4(&c.listen[0], 127, 0, 0, 1, 5300);
	ck_assert_int_eq(c.nupstreams, 1);	/* an --upstream replaces the defaults */
	assert_v4(&c.upstreams[0].addr, 192, 0, 2, 53, 8853);
	ck_assert_str_eq(c.upstreams[0].label, "192.0.2.53@8853#dot.example");
	ck_assert_str_eq(c.ca_file, "/tmp/ca.pem");
	ck_assert(c.has_metrics);
	assert_v4(&c.metrics, 127, 0, 0, 1, 9153);
	ck_assert_uint_eq(c.mark, 0x10);
	ck_assert_uint_eq(c.timeout_ms, 500);
	ck_assert_uint_eq(c.idle_timeout_ms, 1000);
	ck_assert_uint_eq(c.max_inflight, 100);
	ck_assert_uint_eq(c.max_tcp_clients, 10);
	ck_assert(c.verbose);
}
END_TEST

START_TEST(args_mode_tproxy_explicit)
{
	struct config c;
	struct args a;

	ck_assert_int_eq(parse(&c, &a, "--mode", "redirect", "--mode", "tproxy", (char *)NULL), 0);
	ck_assert_int_eq(c.mode, MODE_TPROXY);
}
END_TEST

START_TEST(args_equals_form_and_short_verbose)
{
	struct config c;
	struct args a;

	ck_assert_int_eq(parse(&c, &a, "--port=53", "-v", (char *)NULL), 0);
	ck_assert_uint_eq(c.port, 53);
	ck_assert(c.verbose);
}
END_TEST

START_TEST(args_mark_hex_and_decimal)
{
	struct config c;
	struct args a;

	ck_assert_int_eq(parse(&c, &a, "--mark", "0x10", (char *)NULL), 0);
	ck_assert_uint_eq(c.mark, 16);
	ck_assert_int_eq(parse(&c, &a, "--mark", "16", (char *)NULL), 0);
	ck_assert_uint_eq(c.mark, 16);
	ck_assert_int_eq(parse(&c, &a, "--mark", "0xffffffff", (char *)NULL), 0);
	ck_assert_uint_eq(c.mark, 0xffffffffu);
	/* a leading zero is decimal, never octal */
	ck_assert_int_eq(parse(&c, &a, "--mark", "010", (char *)NULL), 0);
	ck_assert_uint_eq(c.mark, 10);
	ck_assert_int_eq(parse(&c, &a, "--mark", "0x", (char *)NULL), -1);
}
END_TEST

START_TEST(args_two_upstreams_in_order)
{
	struct config c;
	struct args a;

	ck_assert_int_eq(parse(&c, &a, "--upstream", "192.0.2.1#a.example", "--upstream",
			       "[2001:db8::53]@8853#b.example", (char *)NULL), 0);
	ck_assert_int_eq(c.nupstreams, 2);
	ck_assert_str_eq(c.upstreams[0].label, "192.0.2.1@853#a.example");
	ck_assert_str_eq(c.upstreams[1].label, "2001:db8::53@8853#b.example");
	assert_v6(&c.upstreams[1].addr, V6_DOC53, 8853);
}
END_TEST

START_TEST(args_pin_attaches_to_previous_upstream)
{
	uint8_t seq[CFG_PIN_LEN], ff[CFG_PIN_LEN];
	struct config c;
	struct args a;

	pin_seq(seq);
	memset(ff, 0xff, sizeof(ff));
	ck_assert_int_eq(parse(&c, &a, "--upstream", "192.0.2.1#a.example", "--upstream",
			       "192.0.2.2#b.example^sha256/" PIN_FF_B64, "--pin", "sha256/" PIN_SEQ_B64,
			       (char *)NULL), 0);
	ck_assert_int_eq(c.upstreams[0].npins, 0);
	ck_assert_int_eq(c.upstreams[1].npins, 2);
	ck_assert_mem_eq(c.upstreams[1].pins[0], ff, CFG_PIN_LEN);
	ck_assert_mem_eq(c.upstreams[1].pins[1], seq, CFG_PIN_LEN);
}
END_TEST

START_TEST(args_pin_before_upstream_fails)
{
	PARSE_FAILS("--pin", "--pin", "sha256/" PIN_SEQ_B64, "--upstream", "192.0.2.1#a.example");
	PARSE_FAILS("--pin", "--pin", "sha256/" PIN_SEQ_B64);
}
END_TEST

START_TEST(args_bad_pin_fails)
{
	PARSE_FAILS("--pin", "--upstream", "192.0.2.1#a.example", "--pin", "sha256/" B64_31);
}
END_TEST

START_TEST(args_listen_with_port_default)
{
	struct config c;
	struct args a;

	ck_assert_int_eq(parse(&c, &a, "--mode", "redirect", "--listen", "[::1]@53", "--listen",
			       "::1@54", "--listen", "127.0.0.1", "--listen", "::1", (char *)NULL), 0);
	ck_assert_int_eq(c.nlisten, 4);
	assert_v6(&c.listen[0], V6_LOOPBACK, 53);
	assert_v6(&c.listen[1], V6_LOOPBACK, 54);
	assert_v4(&c.listen[2], 127, 0, 0, 1, 5353);
	assert_v6(&c.listen[3], V6_LOOPBACK, 5353);
}
END_TEST

START_TEST(args_listen_takes_port_given_after_it)
{
	struct config c;
	struct args a;

	ck_assert_int_eq(parse(&c, &a, "--listen", "127.0.0.1", "--port", "5300", "--mode", "redirect",
			       (char *)NULL), 0);
	assert_v4(&c.listen[0], 127, 0, 0, 1, 5300);
}
END_TEST

START_TEST(args_listen_needs_redirect_mode)
{
	PARSE_FAILS("--listen", "--listen", "127.0.0.1");
	PARSE_FAILS("--listen", "--mode", "tproxy", "--listen", "127.0.0.1@53");
}
END_TEST

START_TEST(args_bad_listen_fails)
{
	PARSE_FAILS("--listen", "--mode", "redirect", "--listen", "localhost");
	PARSE_FAILS("--listen", "--mode", "redirect", "--listen", "127.0.0.1@0");
	PARSE_FAILS("--listen", "--mode", "redirect", "--listen", "[::1");
}
END_TEST

START_TEST(args_listen_count_limit)
{
	char *v[2 + 2 * (CFG_MAX_LISTEN + 1) + 1];
	char err[512] = "";
	struct config c;
	int n = 0;

	v[n++] = (char *)"dotproxy";
	v[n++] = (char *)"--mode=redirect";
	for (int i = 0; i < CFG_MAX_LISTEN; i++) {
		v[n++] = (char *)"--listen";
		v[n++] = (char *)"127.0.0.1";
	}
	v[n] = NULL;
	ck_assert_int_eq(config_parse_args(&c, n, v, err, sizeof(err)), 0);
	ck_assert_int_eq(c.nlisten, CFG_MAX_LISTEN);

	v[n++] = (char *)"--listen";
	v[n++] = (char *)"127.0.0.1";
	v[n] = NULL;
	ck_assert_int_eq(config_parse_args(&c, n, v, err, sizeof(err)), -1);
	assert_err_line(err, "--listen");
}
END_TEST

START_TEST(args_metrics)
{
	struct config c;
	struct args a;

	ck_assert_int_eq(parse(&c, &a, "--metrics", "127.0.0.1:9153", (char *)NULL), 0);
	ck_assert(c.has_metrics);
	assert_v4(&c.metrics, 127, 0, 0, 1, 9153);

	ck_assert_int_eq(parse(&c, &a, "--metrics", "[::1]:9153", (char *)NULL), 0);
	ck_assert(c.has_metrics);
	assert_v6(&c.metrics, V6_LOOPBACK, 9153);
}
END_TEST

START_TEST(args_bad_metrics_fails)
{
	PARSE_FAILS("--metrics", "--metrics", "127.0.0.1");
	PARSE_FAILS("--metrics", "--metrics", "[::1]");
	PARSE_FAILS("--metrics", "--metrics", "127.0.0.1:0");
	PARSE_FAILS("--metrics", "--metrics", "127.0.0.1:");
	PARSE_FAILS("--metrics", "--metrics", "localhost:9153");
	PARSE_FAILS("--metrics", "--metrics", "::1:9153");	/* v6 needs brackets to carry a port */
}
END_TEST

START_TEST(args_nfqueue_mode_and_its_flags)
{
	struct config c;
	struct args a;

	ck_assert_int_eq(parse(&c, &a, "--mode", "nfqueue", (char *)NULL), 0);
	ck_assert_int_eq(c.mode, MODE_NFQUEUE);
	ck_assert_uint_eq(c.queue, 0);
	ck_assert_uint_eq(c.queue_len, 1024);
	ck_assert(!c.fail_open);
	/* the flags may come before --mode */
	ck_assert_int_eq(parse(&c, &a, "--queue", "65535", "--queue-len", "0x10", "--fail-open", "--mode",
			       "nfqueue", (char *)NULL), 0);
	ck_assert_uint_eq(c.queue, 65535);
	ck_assert_uint_eq(c.queue_len, 16);
	ck_assert(c.fail_open);
	ck_assert_str_eq(config_mode_name(c.mode), "nfqueue");
}
END_TEST

START_TEST(args_nfqueue_flags_need_nfqueue_mode)
{
	PARSE_FAILS("--queue", "--queue", "1");
	PARSE_FAILS("--queue-len", "--mode", "tproxy", "--queue-len", "10");
	PARSE_FAILS("--fail-open", "--mode", "redirect", "--fail-open");
	PARSE_FAILS("--listen", "--mode", "nfqueue", "--listen", "127.0.0.1");
}
END_TEST

START_TEST(args_bad_queue_numbers_fail)
{
	PARSE_FAILS("--queue", "--mode", "nfqueue", "--queue", "65536");
	PARSE_FAILS("--queue", "--mode", "nfqueue", "--queue", "-1");
	PARSE_FAILS("--queue", "--mode", "nfqueue", "--queue", "q");
	PARSE_FAILS("--queue-len", "--mode", "nfqueue", "--queue-len", "0");
	PARSE_FAILS("--queue-len", "--mode", "nfqueue", "--queue-len", "1048577");
}
END_TEST

START_TEST(args_upstream_pool_and_cache_flags)
{
	struct config c;
	struct args a;

	ck_assert_int_eq(parse(&c, &a, (char *)NULL), 0);
	ck_assert_int_eq(c.policy, POLICY_FASTEST);
	ck_assert_uint_eq(c.max_conns, 4);
	ck_assert_uint_eq(c.cache_size, 10000);
	ck_assert_uint_eq(c.serve_stale_s, 0);
	ck_assert_uint_eq(c.ratelimit, 0);
	ck_assert_int_eq(parse(&c, &a, "--policy", "round-robin", "--max-conns", "16", "--cache-size", "0",
			       "--ratelimit", "50", (char *)NULL), 0);
	ck_assert_int_eq(c.policy, POLICY_ROUND_ROBIN);
	ck_assert_uint_eq(c.max_conns, 16);
	ck_assert_uint_eq(c.cache_size, 0);
	ck_assert_uint_eq(c.ratelimit, 50);
	ck_assert_int_eq(parse(&c, &a, "--policy", "ordered", "--serve-stale", "86400", (char *)NULL), 0);
	ck_assert_int_eq(c.policy, POLICY_ORDERED);
	ck_assert_uint_eq(c.serve_stale_s, 86400);
}
END_TEST

START_TEST(args_bad_pool_and_cache_flags_fail)
{
	PARSE_FAILS("--policy", "--policy", "random");
	PARSE_FAILS("--max-conns", "--max-conns", "0");
	PARSE_FAILS("--max-conns", "--max-conns", "17");
	PARSE_FAILS("--cache-size", "--cache-size", "-1");
	PARSE_FAILS("--serve-stale", "--serve-stale", "604801");
	PARSE_FAILS("--ratelimit", "--ratelimit", "fast");
	/* stale answers come from the cache */
	PARSE_FAILS("--serve-stale", "--cache-size", "0", "--serve-stale", "60");
}
END_TEST

START_TEST(args_upstream_ca_attaches_to_previous_upstream)
{
	struct config c;
	struct args a;

	ck_assert_int_eq(parse(&c, &a, "--upstream", "192.0.2.1#a.example", "--upstream", "192.0.2.2#b.example",
			       "--upstream-ca", "/etc/b-ca.pem", "--ca-file", "/etc/all.pem", (char *)NULL), 0);
	ck_assert_str_eq(c.upstreams[0].ca_file, "");
	ck_assert_str_eq(c.upstreams[1].ca_file, "/etc/b-ca.pem");
	ck_assert_str_eq(c.ca_file, "/etc/all.pem");
	PARSE_FAILS("--upstream-ca", "--upstream-ca", "/etc/x.pem", "--upstream", "192.0.2.1#a.example");
	PARSE_FAILS("--upstream-ca", "--upstream", "192.0.2.1#a.example", "--upstream-ca", "");
}
END_TEST

START_TEST(args_bad_mode_fails)
{
	PARSE_FAILS("--mode", "--mode", "nat");
	PARSE_FAILS("--mode", "--mode", "");
	PARSE_FAILS("--mode", "--mode", "TPROXY");
}
END_TEST

START_TEST(args_bad_port_fails)
{
	PARSE_FAILS("--port", "--port", "0");
	PARSE_FAILS("--port", "--port", "70000");
	PARSE_FAILS("--port", "--port", "65536");
	PARSE_FAILS("--port", "--port", "abc");
	PARSE_FAILS("--port", "--port", "53x");
	PARSE_FAILS("--port", "--port", "-1");
	PARSE_FAILS("--port", "--port", "");
}
END_TEST

START_TEST(args_port_bounds_accepted)
{
	struct config c;
	struct args a;

	ck_assert_int_eq(parse(&c, &a, "--port", "1", (char *)NULL), 0);
	ck_assert_uint_eq(c.port, 1);
	ck_assert_int_eq(parse(&c, &a, "--port", "65535", (char *)NULL), 0);
	ck_assert_uint_eq(c.port, 65535);
}
END_TEST

START_TEST(args_bad_numbers_fail)
{
	PARSE_FAILS("--mark", "--mark", "abc");
	PARSE_FAILS("--mark", "--mark", "0x");
	PARSE_FAILS("--mark", "--mark", "-5");
	PARSE_FAILS("--mark", "--mark", "0x100000000");
	PARSE_FAILS("--timeout", "--timeout", "soon");
	PARSE_FAILS("--timeout", "--timeout", "0");
	PARSE_FAILS("--idle-timeout", "--idle-timeout", "x");
	PARSE_FAILS("--max-inflight", "--max-inflight", "0");
	PARSE_FAILS("--max-tcp-clients", "--max-tcp-clients", "-1");
}
END_TEST

START_TEST(args_bad_upstream_fails)
{
	PARSE_FAILS("--upstream", "--upstream", "192.0.2.1");
	PARSE_FAILS("--upstream", "--upstream", "192.0.2.1@0#x");
	PARSE_FAILS("--upstream", "--upstream", "192.0.2.1#ok.example", "--upstream", "nothing#x");
}
END_TEST

START_TEST(args_empty_ca_file_fails)
{
	PARSE_FAILS("--ca-file", "--ca-file", "");
}
END_TEST

START_TEST(args_unknown_flag_fails)
{
	PARSE_FAILS("--bogus", "--bogus");
	PARSE_FAILS("--bogus", "--port", "53", "--bogus", "x");
	PARSE_FAILS("-x", "-x");
}
END_TEST

START_TEST(args_unknown_short_flag_in_cluster_named)
{
	/* "-xv": the error must name -x, not "?" */
	PARSE_FAILS("-x", "-xv");
}
END_TEST

START_TEST(args_missing_value_fails)
{
	PARSE_FAILS("--port", "--port");
	PARSE_FAILS("--upstream", "-v", "--upstream");
	PARSE_FAILS("--metrics", "--metrics");
}
END_TEST

START_TEST(args_stray_argument_fails)
{
	PARSE_FAILS("extra", "extra");
	PARSE_FAILS("extra", "--port", "53", "extra");
	PARSE_FAILS("extra", "extra", "--port", "53");
}
END_TEST

START_TEST(args_reparse_starts_over)
{
	struct config c;
	struct args a;

	/* a second parse in the same process sees only its own argv */
	ck_assert_int_eq(parse(&c, &a, "--port", "53", "-v", (char *)NULL), 0);
	ck_assert_int_eq(parse(&c, &a, "--mark", "7", (char *)NULL), 0);
	ck_assert_uint_eq(c.port, 5353);
	ck_assert_uint_eq(c.mark, 7);
	ck_assert(!c.verbose);
	ck_assert_int_eq(parse(&c, &a, "--bogus", (char *)NULL), -1);
	ck_assert_int_eq(parse(&c, &a, (char *)NULL), 0);
	ck_assert_uint_eq(c.mark, 0x444);
}
END_TEST

START_TEST(args_reparse_after_error_inside_cluster)
{
	struct config c;
	struct args a;

	/* getopt stopped inside "-xv"; the next parse must not resume there */
	ck_assert_int_eq(parse(&c, &a, "-xv", (char *)NULL), -1);
	ck_assert_int_eq(parse(&c, &a, "--port", "53", (char *)NULL), 0);
	ck_assert_uint_eq(c.port, 53);
	ck_assert(!c.verbose);
}
END_TEST

/* Run a parse with stdout going to a file; return what was printed. */
static int parse_capturing(const char *flag, char *buf, size_t len)
{
	struct config c;
	struct args a;
	FILE *f = tmpfile();
	int saved, rc;
	size_t n;

	ck_assert_ptr_nonnull(f);
	fflush(stdout);
	saved = dup(STDOUT_FILENO);
	dup2(fileno(f), STDOUT_FILENO);
	rc = parse(&c, &a, flag, (char *)NULL);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	rewind(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return rc;
}

START_TEST(args_help_and_version_exit)
{
	char out[8192];

	ck_assert_int_eq(parse_capturing("--help", out, sizeof(out)), CFG_PARSE_EXIT);
	ck_assert_ptr_nonnull(strstr(out, "--upstream"));
	ck_assert_ptr_nonnull(strstr(out, "--mode"));
	ck_assert_int_eq(parse_capturing("-h", out, sizeof(out)), CFG_PARSE_EXIT);
	ck_assert_ptr_nonnull(strstr(out, "--listen"));
	ck_assert_int_eq(parse_capturing("--version", out, sizeof(out)), CFG_PARSE_EXIT);
	ck_assert_int_eq(strncmp(out, "dotproxy ", 9), 0);
	ck_assert_int_eq(parse_capturing("-V", out, sizeof(out)), CFG_PARSE_EXIT);
	ck_assert_int_eq(strncmp(out, "dotproxy ", 9), 0);
}
END_TEST

/* ---- sock_parse / sock_ntop ---- */

static const char *ntop(const union sockaddr_any *a, char *buf)
{
	return sock_ntop(a, buf, SOCK_ADDRSTRLEN);
}

START_TEST(sock_parse_ipv4)
{
	union sockaddr_any a;
	char buf[SOCK_ADDRSTRLEN];

	ck_assert_int_eq(sock_parse("192.0.2.1", ':', 53, &a), 0);
	assert_v4(&a, 192, 0, 2, 1, 53);
	ck_assert_str_eq(ntop(&a, buf), "192.0.2.1:53");
	ck_assert_uint_eq(sock_len(&a), sizeof(struct sockaddr_in));

	ck_assert_int_eq(sock_parse("192.0.2.1:853", ':', 53, &a), 0);
	assert_v4(&a, 192, 0, 2, 1, 853);
	ck_assert_str_eq(ntop(&a, buf), "192.0.2.1:853");

	ck_assert_int_eq(sock_parse("192.0.2.1@853", '@', 53, &a), 0);
	ck_assert_uint_eq(sock_port(&a), 853);
}
END_TEST

START_TEST(sock_parse_ipv6)
{
	union sockaddr_any a;
	char buf[SOCK_ADDRSTRLEN];

	ck_assert_int_eq(sock_parse("[2001:db8::53]:853", ':', 53, &a), 0);
	assert_v6(&a, V6_DOC53, 853);
	ck_assert_str_eq(ntop(&a, buf), "[2001:db8::53]:853");
	ck_assert_uint_eq(sock_len(&a), sizeof(struct sockaddr_in6));

	ck_assert_int_eq(sock_parse("2001:db8::53", ':', 53, &a), 0);	/* no brackets: no port */
	assert_v6(&a, V6_DOC53, 53);

	ck_assert_int_eq(sock_parse("2001:db8::53@853", '@', 53, &a), 0);
	assert_v6(&a, V6_DOC53, 853);

	ck_assert_int_eq(sock_parse("[::1]", '@', 5353, &a), 0);
	assert_v6(&a, V6_LOOPBACK, 5353);

	/* RFC 5952 text form out, whatever form went in */
	ck_assert_int_eq(sock_parse("[2001:0DB8:0000:0000::0053]:53", ':', 0, &a), 0);
	ck_assert_str_eq(ntop(&a, buf), "[2001:db8::53]:53");
}
END_TEST

START_TEST(sock_parse_rejects)
{
	static const struct { const char *s; char sep; } bad[] = {
		{ "", ':' }, { "[::1", ':' }, { "[::1]x", ':' }, { "[::1]:", ':' }, { "[]:53", ':' },
		{ "1.2.3.4:", ':' }, { "1.2.3.4:0", ':' }, { "1.2.3.4:65536", ':' },
		{ "1.2.3.4:53x", ':' }, { "host.example:53", ':' },
		{ "1.2.3.4@53", ':' }, { "1.2.3.4:53", '@' }, { ":53", ':' },
	};
	union sockaddr_any a;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(sock_parse(bad[i].s, bad[i].sep, 53, &a) < 0, "\"%s\" (sep '%c') accepted",
			      bad[i].s, bad[i].sep);
}
END_TEST

START_TEST(sock_round_trip)
{
	static const char *const addrs[] = { "192.0.2.1:53", "0.0.0.0:5353", "255.255.255.255:65535",
					     "[2001:db8::53]:853", "[::]:1", "[::1]:9153",
					     "[::ffff:192.0.2.1]:53", "[2001:db8:1:2:3:4:5:6]:443" };
	union sockaddr_any a, b;
	char buf[SOCK_ADDRSTRLEN];

	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		ck_assert_msg(sock_parse(addrs[i], ':', 1, &a) == 0, "%s", addrs[i]);
		ck_assert_str_eq(ntop(&a, buf), addrs[i]);
		ck_assert_int_eq(sock_parse(buf, ':', 1, &b), 0);
		ck_assert(sock_equal(&a, &b));
	}
}
END_TEST

START_TEST(sock_equal_compares_family_address_port)
{
	union sockaddr_any a, b;

	ck_assert_int_eq(sock_parse("192.0.2.1:53", ':', 0, &a), 0);
	ck_assert_int_eq(sock_parse("192.0.2.1:54", ':', 0, &b), 0);
	ck_assert(!sock_equal(&a, &b));
	ck_assert_int_eq(sock_parse("192.0.2.2:53", ':', 0, &b), 0);
	ck_assert(!sock_equal(&a, &b));
	ck_assert_int_eq(sock_parse("[::ffff:192.0.2.1]:53", ':', 0, &b), 0);
	ck_assert(!sock_equal(&a, &b));
	ck_assert_int_eq(sock_parse("0.0.0.0:53", ':', 0, &a), 0);	/* both all-zero: family decides */
	ck_assert_int_eq(sock_parse("[::]:53", ':', 0, &b), 0);
	ck_assert(!sock_equal(&a, &b));
	ck_assert(!sock_equal(&b, &a));
	ck_assert_int_eq(sock_parse("[2001:db8::1]:53", ':', 0, &a), 0);
	ck_assert_int_eq(sock_parse("[2001:db8::2]:53", ':', 0, &b), 0);
	ck_assert(!sock_equal(&a, &b));
}
END_TEST

START_TEST(sock_ntop_unknown_family)
{
	union sockaddr_any a;
	char buf[SOCK_ADDRSTRLEN];

	memset(&a, 0, sizeof(a));
	ck_assert_str_eq(ntop(&a, buf), "?");
}
END_TEST

/* ---- the config file, the environment, and the three together ---- */

static char tmp_path[64];

/* Write @text to a new file with @mode; its path in tmp_path. */
static const char *write_file(const char *text, mode_t mode)
{
	int fd;

	strcpy(tmp_path, "/tmp/check_config.XXXXXX");
	fd = mkstemp(tmp_path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	ck_assert_int_eq(fchmod(fd, mode), 0);
	close(fd);
	return tmp_path;
}

/* config_load with --config @file, @env (NULL-terminated) and the flags after. */
static int load(struct config *c, struct cfg_report *r, const char *file, char **env, ...)
{
	char *argv[MAX_ARGS];
	int argc = 0;
	va_list ap;
	char *s;

	argv[argc++] = (char *)"dotproxy";
	argv[argc++] = (char *)"--config";
	argv[argc++] = (char *)file;
	va_start(ap, env);
	while ((s = va_arg(ap, char *)) != NULL)
		argv[argc++] = s;
	va_end(ap);
	argv[argc] = NULL;
	return config_load(c, argc, argv, env, r);
}

/* Report line @i is one line starting with @prefix and naming @what. */
static void assert_report(const struct cfg_report *r, int i, const char *prefix, const char *what)
{
	ck_assert_int_gt(r->n, i);
	assert_err_line(r->msg[i], what);
	ck_assert_msg(strncmp(r->msg[i], prefix, strlen(prefix)) == 0, "\"%s\" does not start with \"%s\"",
		      r->msg[i], prefix);
}

START_TEST(file_every_kind_of_line)
{
	static struct config c;
	struct cfg_report r;
	const char *path = write_file(
		"# dotproxy settings\n"
		"\n"
		"mode = redirect\n"
		"  port=5400   # after a value\n"
		"listen = 127.0.0.1@53\n"
		"upstream = 192.0.2.1@853#dot.example\n"
		"pin = sha256/" PIN_SEQ_B64 "\n"
		"upstream = 2001:db8::53#dot6.example^sha256/" PIN_FF_B64 "\r\n"
		"ca-file = \"/etc/ssl/my \\\"CA\\\".pem\"\n"
		"max-conns = 2\n"
		"query-log = yes\n"
		"log-level = warn\n"
		"user = dnsuser\n", 0600);
	uint8_t seq[CFG_PIN_LEN], ff[CFG_PIN_LEN];

	pin_seq(seq);
	memset(ff, 0xff, sizeof(ff));
	ck_assert_int_eq(load(&c, &r, path, NULL, NULL), 0);
	ck_assert_int_eq(r.n, 0);
	ck_assert_int_eq(c.mode, MODE_REDIRECT);
	ck_assert_uint_eq(c.port, 5400);
	ck_assert_int_eq(c.nlisten, 1);
	assert_v4(&c.listen[0], 127, 0, 0, 1, 53);
	ck_assert_int_eq(c.nupstreams, 2);
	ck_assert_str_eq(c.upstreams[0].name, "dot.example");
	ck_assert_int_eq(c.upstreams[0].npins, 1);
	ck_assert_mem_eq(c.upstreams[0].pins[0], seq, CFG_PIN_LEN);
	assert_v6(&c.upstreams[1].addr, V6_DOC53, 853);
	ck_assert_mem_eq(c.upstreams[1].pins[0], ff, CFG_PIN_LEN);
	ck_assert_str_eq(c.ca_file, "/etc/ssl/my \"CA\".pem");
	ck_assert_uint_eq(c.max_conns, 2);
	ck_assert(c.query_log);
	ck_assert_int_eq(c.log_level, LOG_LVL_WARN);
	ck_assert_str_eq(c.user, "dnsuser");
	ck_assert_str_eq(c.config_file, path);
	unlink(path);
}
END_TEST

START_TEST(file_errors_each_name_their_line)
{
	static struct config c;
	struct cfg_report r;
	char pre[100];
	const char *path = write_file(
		"mode = redirect\n"
		"colour = blue\n"
		"port = 0\n"
		"timeout\n"
		"ca-file = \"/unterminated\n"
		"cache-size = 10 20\n"
		"policy = fastest\n"
		"check-config = /etc/x\n", 0600);

	ck_assert_int_eq(config_check_file(&c, path, &r), -1);
	ck_assert_int_eq(r.n, 6);
	snprintf(pre, sizeof(pre), "%s:2: ", path);
	assert_report(&r, 0, pre, "colour");
	snprintf(pre, sizeof(pre), "%s:4: ", path);
	assert_report(&r, 1, pre, "KEY = VALUE");
	snprintf(pre, sizeof(pre), "%s:5: ", path);
	assert_report(&r, 2, pre, "does not end");
	snprintf(pre, sizeof(pre), "%s:6: ", path);
	assert_report(&r, 3, pre, "double quotes");
	snprintf(pre, sizeof(pre), "%s:8: ", path);
	assert_report(&r, 4, pre, "check-config");
	/* the values are checked once every line is read */
	snprintf(pre, sizeof(pre), "%s:3: ", path);
	assert_report(&r, 5, pre, "port \"0\"");
	unlink(path);
}
END_TEST

START_TEST(file_cross_checks_name_the_line_of_the_setting)
{
	static struct config c;
	struct cfg_report r;
	char pre[100];
	const char *path = write_file("listen = 127.0.0.1\n\nqueue = 3\n", 0600);

	ck_assert_int_eq(config_check_file(&c, path, &r), -1);
	ck_assert_int_eq(r.n, 2);
	snprintf(pre, sizeof(pre), "%s:1: ", path);
	assert_report(&r, 0, pre, "only with mode redirect");
	snprintf(pre, sizeof(pre), "%s:3: ", path);
	assert_report(&r, 1, pre, "only with mode nfqueue");
	unlink(path);
}
END_TEST

START_TEST(flags_beat_the_environment_which_beats_the_file)
{
	static struct config c;
	struct cfg_report r;
	char *env[] = {
		"HOME=/root",
		"DOTPROXY_PORT=2000",
		"DOTPROXY_UPSTREAM=192.0.2.2#b.example  192.0.2.3#c.example",
		"DOTPROXY_TIMEOUT=", /* empty: not set */
		NULL,
	};
	const char *path = write_file("port = 1000\ntimeout = 700\nupstream = 192.0.2.1#a.example\n"
				      "pin = sha256/" PIN_SEQ_B64 "\npolicy = ordered\n", 0600);

	ck_assert_int_eq(load(&c, &r, path, env, "--port", "3000", NULL), 0);
	ck_assert_uint_eq(c.port, 3000);		/* the flag */
	ck_assert_uint_eq(c.timeout_ms, 700);		/* the file: the variable is empty */
	ck_assert_int_eq(c.policy, POLICY_ORDERED);	/* the file alone */
	/* the environment's upstreams replace the file's, with the file's pin */
	ck_assert_int_eq(c.nupstreams, 2);
	ck_assert_str_eq(c.upstreams[0].name, "b.example");
	ck_assert_str_eq(c.upstreams[1].name, "c.example");
	ck_assert_int_eq(c.upstreams[0].npins, 0);
	ck_assert_int_eq(load(&c, &r, path, env, NULL), 0);
	ck_assert_uint_eq(c.port, 2000);
	ck_assert_int_eq(load(&c, &r, path, NULL, "--upstream", "192.0.2.9#z.example", NULL), 0);
	ck_assert_int_eq(c.nupstreams, 1);
	ck_assert_str_eq(c.upstreams[0].name, "z.example");
	ck_assert_int_eq(c.upstreams[0].npins, 0);
	ck_assert_uint_eq(c.port, 1000);
	unlink(path);
}
END_TEST

START_TEST(environment_errors_name_the_variable)
{
	static struct config c;
	struct cfg_report r;
	char *bad_bool[] = { "DOTPROXY_FAIL_OPEN=maybe", "DOTPROXY_MODE=nfqueue", NULL };
	char *two[] = { "DOTPROXY_MODE=redirect tproxy", NULL };
	char *bad_port[] = { "DOTPROXY_PORT=http", NULL };

	ck_assert_int_eq(load(&c, &r, "none", bad_bool, NULL), -1);
	assert_report(&r, 0, "DOTPROXY_FAIL_OPEN", "yes or no");
	ck_assert_int_eq(load(&c, &r, "none", two, NULL), -1);
	assert_report(&r, 0, "DOTPROXY_MODE", "one value");
	ck_assert_int_eq(load(&c, &r, "none", bad_port, NULL), -1);
	assert_report(&r, 0, "DOTPROXY_PORT \"http\"", "1-65535");
}
END_TEST

START_TEST(a_named_config_file_must_exist)
{
	static struct config c;
	struct cfg_report r;
	char *env[] = { "DOTPROXY_CONFIG=/nonexistent/dotproxy.conf", NULL };
	char *argv[] = { "dotproxy", NULL };

	ck_assert_int_eq(load(&c, &r, "/nonexistent/x.conf", NULL, NULL), -1);
	assert_report(&r, 0, "/nonexistent/x.conf: ", "No such file");
	ck_assert_int_eq(config_load(&c, 1, argv, env, &r), -1);
	assert_report(&r, 0, "/nonexistent/dotproxy.conf: ", "No such file");
	/* "none": no file at all, the defaults */
	ck_assert_int_eq(load(&c, &r, "none", NULL, NULL), 0);
	ck_assert_str_eq(c.config_file, "");
}
END_TEST

START_TEST(secrets_others_may_read_are_refused)
{
	static struct config c;
	struct cfg_report r;
	char key[64], conf[64], text[256];

	strcpy(key, write_file("not really a key\n", 0644));
	snprintf(text, sizeof(text), "client-cert = /etc/hostname\nclient-key = %s\n", key);
	strcpy(conf, write_file(text, 0640));
	/* the key others may read */
	ck_assert_int_eq(config_check_file(&c, conf, &r), -1);
	ck_assert_int_eq(r.n, 1);
	assert_report(&r, 0, "client-key \"", "others may read");
	/* the key is private now; the config naming it is not */
	ck_assert_int_eq(chmod(key, 0640), 0);
	ck_assert_int_eq(config_check_file(&c, conf, &r), 0);
	ck_assert_int_eq(chmod(conf, 0644), 0);
	ck_assert_int_eq(config_check_file(&c, conf, &r), -1);
	assert_report(&r, 0, conf, "names a private key");
	/* a config others may write, key or none */
	strcpy(conf, write_file("port = 53\n", 0666));
	ck_assert_int_eq(chmod(conf, 0666), 0);
	ck_assert_int_eq(config_check_file(&c, conf, &r), -1);
	assert_report(&r, 0, conf, "others may write");
	unlink(conf);
	/* half a client certificate */
	snprintf(text, sizeof(text), "client-key = %s\n", key);
	strcpy(conf, write_file(text, 0600));
	ck_assert_int_eq(config_check_file(&c, conf, &r), -1);
	assert_report(&r, 0, conf, "client certificate");
	unlink(conf);
	unlink(key);
}
END_TEST

START_TEST(reload_names_what_needs_a_restart)
{
	static struct config a, b;
	struct args x;
	char out[256];

	ck_assert_int_eq(parse(&a, &x, "--port", "5300", "--timeout", "1000", (char *)NULL), 0);
	ck_assert_int_eq(parse(&b, &x, "--port", "5301", "--timeout", "2000", "--user", "nobody",
			       "--metrics", "127.0.0.1:9153", (char *)NULL), 0);
	config_restart_only(&a, &b, out, sizeof(out));
	ck_assert_str_eq(out, "port, metrics, user");
	config_keep_restart_only(&a, &b);
	config_restart_only(&a, &b, out, sizeof(out));
	ck_assert_str_eq(out, "");
	ck_assert_uint_eq(b.port, 5300);
	ck_assert(!b.has_metrics);
	ck_assert_str_eq(b.user, "");
	ck_assert_uint_eq(b.timeout_ms, 2000);	/* live: stays new */
}
END_TEST

START_TEST(check_config_flag_asks_for_a_check)
{
	static struct config c;
	struct cfg_report r;
	char *argv[] = { "dotproxy", "--check-config", "/etc/x.conf", "--port", "0", NULL };
	char *env[] = { "DOTPROXY_PORT=0", NULL };

	ck_assert_int_eq(config_load(&c, 5, argv, env, &r), CFG_PARSE_CHECK);
	ck_assert_str_eq(c.check_config, "/etc/x.conf");
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("upstream");
	tcase_add_test(tc, upstream_ipv4_default_port);
	tcase_add_test(tc, upstream_ipv4_with_port);
	tcase_add_test(tc, upstream_ipv6_bare);
	tcase_add_test(tc, upstream_ipv6_bracketed);
	tcase_add_test(tc, upstream_ipv6_bracketed_default_port);
	tcase_add_test(tc, upstream_name_characters);
	tcase_add_test(tc, upstream_missing_hash);
	tcase_add_test(tc, upstream_empty_name);
	tcase_add_test(tc, upstream_bad_name_char);
	tcase_add_test(tc, upstream_name_length);
	tcase_add_test(tc, upstream_bad_ip);
	tcase_add_test(tc, upstream_bad_port);
	tcase_add_test(tc, upstream_one_pin);
	tcase_add_test(tc, upstream_two_pins);
	tcase_add_test(tc, upstream_bad_pins);
	tcase_add_test(tc, upstream_pin_count_limit);
	tcase_add_test(tc, upstream_too_long);
	tcase_add_test(tc, pin_valid);
	tcase_add_test(tc, pin_invalid);
	suite_add_tcase(s, tc);

	tc = tcase_create("args");
	tcase_add_test(tc, args_defaults);
	tcase_add_test(tc, args_every_flag);
	tcase_add_test(tc, args_mode_tproxy_explicit);
	tcase_add_test(tc, args_equals_form_and_short_verbose);
	tcase_add_test(tc, args_mark_hex_and_decimal);
	tcase_add_test(tc, args_two_upstreams_in_order);
	tcase_add_test(tc, args_pin_attaches_to_previous_upstream);
	tcase_add_test(tc, args_pin_before_upstream_fails);
	tcase_add_test(tc, args_bad_pin_fails);
	tcase_add_test(tc, args_listen_with_port_default);
	tcase_add_test(tc, args_listen_takes_port_given_after_it);
	tcase_add_test(tc, args_listen_needs_redirect_mode);
	tcase_add_test(tc, args_bad_listen_fails);
	tcase_add_test(tc, args_listen_count_limit);
	tcase_add_test(tc, args_metrics);
	tcase_add_test(tc, args_bad_metrics_fails);
	tcase_add_test(tc, args_bad_mode_fails);
	tcase_add_test(tc, args_upstream_ca_attaches_to_previous_upstream);
	tcase_add_test(tc, args_upstream_pool_and_cache_flags);
	tcase_add_test(tc, args_bad_pool_and_cache_flags_fail);
	tcase_add_test(tc, args_nfqueue_mode_and_its_flags);
	tcase_add_test(tc, args_nfqueue_flags_need_nfqueue_mode);
	tcase_add_test(tc, args_bad_queue_numbers_fail);
	tcase_add_test(tc, args_bad_port_fails);
	tcase_add_test(tc, args_port_bounds_accepted);
	tcase_add_test(tc, args_bad_numbers_fail);
	tcase_add_test(tc, args_bad_upstream_fails);
	tcase_add_test(tc, args_empty_ca_file_fails);
	tcase_add_test(tc, args_unknown_flag_fails);
	tcase_add_test(tc, args_unknown_short_flag_in_cluster_named);
	tcase_add_test(tc, args_missing_value_fails);
	tcase_add_test(tc, args_stray_argument_fails);
	tcase_add_test(tc, args_reparse_starts_over);
	tcase_add_test(tc, args_reparse_after_error_inside_cluster);
	tcase_add_test(tc, args_help_and_version_exit);
	suite_add_tcase(s, tc);

	tc = tcase_create("file");
	tcase_add_test(tc, file_every_kind_of_line);
	tcase_add_test(tc, file_errors_each_name_their_line);
	tcase_add_test(tc, file_cross_checks_name_the_line_of_the_setting);
	tcase_add_test(tc, flags_beat_the_environment_which_beats_the_file);
	tcase_add_test(tc, environment_errors_name_the_variable);
	tcase_add_test(tc, a_named_config_file_must_exist);
	tcase_add_test(tc, secrets_others_may_read_are_refused);
	tcase_add_test(tc, reload_names_what_needs_a_restart);
	tcase_add_test(tc, check_config_flag_asks_for_a_check);
	suite_add_tcase(s, tc);

	tc = tcase_create("sock");
	tcase_add_test(tc, sock_parse_ipv4);
	tcase_add_test(tc, sock_parse_ipv6);
	tcase_add_test(tc, sock_parse_rejects);
	tcase_add_test(tc, sock_round_trip);
	tcase_add_test(tc, sock_equal_compares_family_address_port);
	tcase_add_test(tc, sock_ntop_unknown_family);
	suite_add_tcase(s, tc);

	return s;
}

int main(void)
{
	return unit_run(config_suite());
}

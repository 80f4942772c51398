/*
 * selftest.c - the self-test marker: recognising it and composing the
 * daemon's TXT answer (daemon side), and `dotproxy --self-test`, which
 * sends markers in plaintext from this machine and reports whether they
 * were intercepted and answered over verified DoT (client side). The
 * client side runs as any user with no config, sends with no SO_MARK (its
 * queries must look like any other program's), and never touches the
 * daemon's state.
 */
#define _GNU_SOURCE
#include "selftest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dns.h"
#include "wire.h"

#define DNS_QR		0x8000	/* RFC 1035 4.1.1 header flags */
#define DNS_RD		0x0100
#define DNS_RA		0x0080
#define ST_TIMEOUT_MS	2000	/* per query */
#define ST_MAX_TARGETS	16
#define ST_OPT_SIZE	1232	/* the UDP size our OPT offers (DNS flag day 2020) */

/* "self-test.dotproxy.invalid." in wire format, after the nonce label */
static const uint8_t suffix_wire[] = "\x09self-test\x08" "dotproxy\x07invalid";	/* + the root's 0 */
#define SUFFIX_WIRE_LEN	sizeof(suffix_wire)	/* with the terminating 0: the root label */

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int selftest_marker_nonce(const uint8_t *name, size_t nlen, char *nonce)
{
	size_t l;

	if (nlen < 1)
		return -1;
	l = name[0];
	if (l < SELFTEST_NONCE_MIN || l > SELFTEST_NONCE_MAX || nlen != 1 + l + SUFFIX_WIRE_LEN)
		return -1;
	for (size_t i = 0; i < l; i++)
		if (hexval(name[1 + i]) < 0)
			return -1;
	for (size_t i = 0; i < SUFFIX_WIRE_LEN; i++) {
		uint8_t a = name[1 + l + i], b = suffix_wire[i];

		/* length octets and the root compare as they are, letters in any case */
		if (a != b && !((b >= 'a' && b <= 'z') && (a | 0x20) == b))
			return -1;
	}
	if (nonce) {
		for (size_t i = 0; i < l; i++)
			nonce[i] = (char)(name[1 + i] | (name[1 + i] >= 'A' ? 0x20 : 0));
		nonce[l] = '\0';
	}
	return (int)l;
}

/*
 * Read @msg's header and its one question; the name (lower-cased) into
 * @name. Returns the name's length, or -1.
 */
static int read_question(const uint8_t *msg, size_t len, struct dns_header *h, uint8_t name[DNS_MAX_NAME],
			 uint16_t *qtype, uint16_t *qclass, size_t *end)
{
	struct wire w;
	int n;

	wire_init(&w, msg, len);
	dns_read_header(&w, h);
	if (!wire_ok(&w) || h->qd != 1)
		return -1;
	n = dns_read_name(&w, name);
	*qtype = wire_u16(&w);
	*qclass = wire_u16(&w);
	if (n < 0 || !wire_ok(&w))
		return -1;
	*end = w.pos;
	return n;
}

bool selftest_is_marker(const uint8_t *msg, size_t len)
{
	uint8_t name[DNS_MAX_NAME];
	struct dns_header h;
	uint16_t qtype, qclass;
	size_t end;
	int n = read_question(msg, len, &h, name, &qtype, &qclass, &end);

	return n > 0 && !(h.flags & DNS_QR) && qtype == DNS_TYPE_TXT && qclass == DNS_CLASS_IN &&
	       selftest_marker_nonce(name, (size_t)n, NULL) > 0;
}

size_t selftest_txt(const struct selftest_info *si, const char *nonce, char *out, size_t cap)
{
	char rcbuf[16];
	const char *rc = dns_rcode_text(si->upstream_rcode, rcbuf, sizeof(rcbuf));
	int n;

	/* the pool sends only over TLS connections it verified (RFC 8310 strict): tls=verified */
	n = snprintf(out, cap, "dotproxy=%s upstream=%s tls=verified frontend=%s transport=%s family=%s "
		     "upstream-rcode=%s nonce=%s", si->version, si->upstream, si->frontend, si->transport,
		     si->family, rc, nonce);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	return (size_t)n;
}

size_t selftest_answer(const uint8_t *query, size_t qlen, bool with_opt, const struct selftest_info *si,
		       uint8_t *out, size_t cap)
{
	uint8_t name[DNS_MAX_NAME];
	char nonce[SELFTEST_NONCE_MAX + 1], txt[SELFTEST_TXT_MAX];
	struct dns_header h;
	uint16_t qtype, qclass;
	size_t end, tlen, rdlen, need, pos;
	int n;

	n = read_question(query, qlen, &h, name, &qtype, &qclass, &end);
	if (n <= 0 || qtype != DNS_TYPE_TXT || qclass != DNS_CLASS_IN ||
	    selftest_marker_nonce(name, (size_t)n, nonce) < 0)
		return 0;
	tlen = selftest_txt(si, nonce, txt, sizeof(txt));
	if (!tlen)
		return 0;
	rdlen = tlen + (tlen + 254) / 255;	/* a length octet per string of up to 255 */
	need = DNS_HDR_LEN + (size_t)n + 4 + 12 + rdlen + (with_opt ? 11 : 0);
	if (need > cap)
		return 0;
	wire_put_u16(out, h.id);
	wire_put_u16(out + 2, (uint16_t)(DNS_QR | (h.flags & DNS_RD) | DNS_RA));	/* NOERROR */
	wire_put_u16(out + 4, 1);
	wire_put_u16(out + 6, 1);
	wire_put_u16(out + 8, 0);
	wire_put_u16(out + 10, with_opt ? 1 : 0);
	pos = DNS_HDR_LEN;
	memcpy(out + pos, name, (size_t)n);
	pos += (size_t)n;
	wire_put_u16(out + pos, DNS_TYPE_TXT);
	wire_put_u16(out + pos + 2, DNS_CLASS_IN);
	pos += 4;
	/* the answer: a pointer to the question's name, TXT IN, TTL 0 (never to be cached) */
	wire_put_u16(out + pos, 0xc000 | DNS_HDR_LEN);
	wire_put_u16(out + pos + 2, DNS_TYPE_TXT);
	wire_put_u16(out + pos + 4, DNS_CLASS_IN);
	memset(out + pos + 6, 0, 4);
	wire_put_u16(out + pos + 10, (uint16_t)rdlen);
	pos += 12;
	for (size_t off = 0; off < tlen; off += 255) {
		size_t l = tlen - off < 255 ? tlen - off : 255;

		out[pos++] = (uint8_t)l;
		memcpy(out + pos, txt + off, l);
		pos += l;
	}
	if (with_opt) {
		/* RFC 6891 6.1.2: root name, OPT, UDP size, no extended rcode, no options */
		out[pos] = 0;
		wire_put_u16(out + pos + 1, DNS_TYPE_OPT);
		wire_put_u16(out + pos + 3, ST_OPT_SIZE);
		memset(out + pos + 5, 0, 6);
		pos += 11;
	}
	return pos;
}

size_t selftest_query(const char *nonce, uint16_t id, uint8_t *out, size_t cap)
{
	size_t l = strlen(nonce), need = DNS_HDR_LEN + 1 + l + SUFFIX_WIRE_LEN + 4;

	if (l < SELFTEST_NONCE_MIN || l > SELFTEST_NONCE_MAX || need > cap)
		return 0;
	memset(out, 0, DNS_HDR_LEN);
	wire_put_u16(out, id);
	wire_put_u16(out + 2, DNS_RD);
	wire_put_u16(out + 4, 1);
	out[DNS_HDR_LEN] = (uint8_t)l;
	memcpy(out + DNS_HDR_LEN + 1, nonce, l);
	memcpy(out + DNS_HDR_LEN + 1 + l, suffix_wire, SUFFIX_WIRE_LEN);
	wire_put_u16(out + need - 4, DNS_TYPE_TXT);
	wire_put_u16(out + need - 2, DNS_CLASS_IN);
	return need;
}

/* The value of word "@key=..." in space-separated @txt into @out (@cap), or false. */
static bool txt_word(const char *txt, const char *key, char *out, size_t cap)
{
	size_t kl = strlen(key);

	for (const char *p = txt; *p;) {
		const char *e = strchr(p, ' ');
		size_t wl = e ? (size_t)(e - p) : strlen(p);

		if (wl > kl && strncmp(p, key, kl) == 0 && p[kl] == '=') {
			size_t vl = wl - kl - 1;

			if (vl >= cap)
				return false;
			memcpy(out, p + kl + 1, vl);
			out[vl] = '\0';
			return true;
		}
		p += wl;
		while (*p == ' ')
			p++;
	}
	return false;
}

/* True if TXT text @txt is dotproxy's, for @nonce, over verified TLS; its upstream into @r. */
static bool txt_private(const char *txt, const char *nonce, struct selftest_result *r)
{
	char v[SELFTEST_NONCE_MAX + 1];

	if (!txt_word(txt, "dotproxy", v, sizeof(v)) || !txt_word(txt, "nonce", v, sizeof(v)) ||
	    strcasecmp(v, nonce) != 0 || !txt_word(txt, "tls", v, sizeof(v)) || strcmp(v, "verified") != 0)
		return false;
	if (!txt_word(txt, "upstream", r->upstream, sizeof(r->upstream)))
		snprintf(r->upstream, sizeof(r->upstream), "an unnamed upstream");
	return true;
}

int selftest_classify(const uint8_t *ans, size_t alen, const uint8_t *query, size_t qlen,
		      const char *nonce, struct selftest_result *r)
{
	struct dns_header h;
	struct wire w;

	if (alen < DNS_HDR_LEN || qlen < DNS_HDR_LEN || dns_id(ans) != dns_id(query) ||
	    !dns_answer_matches(ans, alen, query, qlen))
		return -1;
	memset(r, 0, sizeof(*r));
	r->rcode = dns_rcode(ans);
	r->verdict = r->rcode == DNS_RCODE_SERVFAIL ? ST_SERVFAIL : ST_PLAIN;
	if (r->rcode != DNS_RCODE_NOERROR)
		return 0;
	wire_init(&w, ans, alen);
	dns_read_header(&w, &h);
	for (unsigned i = 0; i < h.qd && wire_ok(&w); i++) {
		dns_read_name(&w, NULL);
		wire_skip(&w, 4);
	}
	for (unsigned i = 0; i < h.an && wire_ok(&w); i++) {
		char txt[SELFTEST_TXT_MAX];
		size_t tl = 0, end;
		uint16_t type, rdlen;

		dns_read_name(&w, NULL);
		type = wire_u16(&w);
		wire_skip(&w, 6);	/* class, TTL */
		rdlen = wire_u16(&w);
		if (!wire_ok(&w) || rdlen > wire_left(&w))
			break;
		end = w.pos + rdlen;
		if (type != DNS_TYPE_TXT) {
			wire_skip(&w, rdlen);
			continue;
		}
		/* RFC 1035 3.3.14: one or more <character-string>s, read as one text */
		while (w.pos < end && wire_ok(&w)) {
			uint8_t l = wire_u8(&w);

			if (l > end - w.pos || tl + l >= sizeof(txt)) {
				wire_seek(&w, end);
				break;
			}
			wire_copy(&w, txt + tl, l);
			tl += l;
		}
		txt[tl] = '\0';
		if (strlen(txt) == tl && txt_private(txt, nonce, r)) {
			r->verdict = ST_PRIVATE;
			return 0;
		}
	}
	return 0;
}

/* ---- client side: sending markers ---------------------------------------------------------- */

struct target {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char name[INET6_ADDRSTRLEN + 16];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait for @events on @fd until @deadline; true if they came. */
static bool wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		uint64_t t = now_ms();
		int rc;

		if (t >= deadline)
			return false;
		rc = poll(&p, 1, (int)(deadline - t));
		if (rc > 0)
			return true;
		if (rc < 0 && errno != EINTR)
			return false;
	}
}

static bool no_route(int err)
{
	return err == ENETUNREACH || err == EHOSTUNREACH || err == EADDRNOTAVAIL || err == EAFNOSUPPORT;
}

/* One marker over UDP to @t; fills @r. */
static void test_udp(const struct target *t, const uint8_t *q, size_t qlen, const char *nonce,
		     struct selftest_result *r)
{
	uint8_t buf[DNS_MAX_MSG];
	uint64_t deadline = now_ms() + ST_TIMEOUT_MS;
	int fd = socket(t->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	r->verdict = ST_NO_ANSWER;
	r->rcode = -1;
	if (fd < 0) {
		if (no_route(errno))
			r->verdict = ST_NO_ROUTE;
		return;
	}
	/* connected: only the address asked can answer */
	if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) < 0 ||
	    send(fd, q, qlen, 0) != (ssize_t)qlen) {
		if (no_route(errno))
			r->verdict = ST_NO_ROUTE;
		goto out_close;
	}
	while (wait_fd(fd, POLLIN, deadline)) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			break;	/* e.g. ECONNREFUSED: nothing listens */
		}
		if (selftest_classify(buf, (size_t)n, q, qlen, nonce, r) == 0)
			break;
	}
out_close:
	close(fd);
}

/* One marker over TCP to @t; fills @r. */
static void test_tcp(const struct target *t, const uint8_t *q, size_t qlen, const char *nonce,
		     struct selftest_result *r)
{
	uint8_t out[2 + 512], buf[2 + DNS_MAX_MSG];
	uint64_t deadline = now_ms() + ST_TIMEOUT_MS;
	size_t got = 0, off = 0;
	socklen_t elen = sizeof(int);
	int fd, e = 0;

	r->verdict = ST_NO_ANSWER;
	r->rcode = -1;
	if (qlen > sizeof(out) - 2)
		return;
	fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		if (no_route(errno))
			r->verdict = ST_NO_ROUTE;
		return;
	}
	if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) < 0 && errno != EINPROGRESS) {
		if (no_route(errno))
			r->verdict = ST_NO_ROUTE;
		goto out_close;
	}
	if (!wait_fd(fd, POLLOUT, deadline) || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0 || e) {
		if (no_route(e))
			r->verdict = ST_NO_ROUTE;
		goto out_close;
	}
	/* RFC 1035 4.2.2: a two-octet length, then the message */
	wire_put_u16(out, (uint16_t)qlen);
	memcpy(out + 2, q, qlen);
	while (off < qlen + 2) {
		ssize_t n;

		if (!wait_fd(fd, POLLOUT, deadline))
			goto out_close;
		n = send(fd, out + off, qlen + 2 - off, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			goto out_close;
		if (n > 0)
			off += (size_t)n;
	}
	for (;;) {
		ssize_t n;
		size_t mlen;

		if (got >= 2) {
			mlen = wire_get_u16(buf);
			if (got >= 2 + mlen) {
				if (selftest_classify(buf + 2, mlen, q, qlen, nonce, r) == 0)
					break;
				memmove(buf, buf + 2 + mlen, got - 2 - mlen);	/* not ours: the next one */
				got -= 2 + mlen;
				continue;
			}
		}
		if (!wait_fd(fd, POLLIN, deadline))
			break;
		n = recv(fd, buf + got, sizeof(buf) - got, 0);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			break;
		}
		got += (size_t)n;
	}
out_close:
	close(fd);
}

/* Parse @s (an IPv4 or IPv6 address, a scope allowed) into @t for port 53. */
static int target_parse(const char *s, struct target *t)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_DGRAM };
	struct addrinfo *ai;

	if (getaddrinfo(s, "53", &hints, &ai) != 0)
		return -1;
	memcpy(&t->addr, ai->ai_addr, ai->ai_addrlen);
	t->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	snprintf(t->name, sizeof(t->name), "%s", s);
	return 0;
}

/* Targets from /etc/resolv.conf, then the public defaults for a family with none. */
static int targets_default(struct target *t, int max)
{
	static const char *const fallback[] = { "9.9.9.9", "2620:fe::fe" };	/* Quad9 */
	bool have4 = false, have6 = false;
	char line[512];
	int n = 0;
	FILE *f = fopen("/etc/resolv.conf", "re");

	while (f && fgets(line, sizeof(line), f) && n < max) {
		char word[16], addr[128];

		if (sscanf(line, "%15s %127s", word, addr) != 2 || strcmp(word, "nameserver") != 0)
			continue;
		if (target_parse(addr, &t[n]) < 0)
			continue;
		if (t[n].addr.ss_family == AF_INET)
			have4 = true;
		else
			have6 = true;
		n++;
	}
	if (f)
		fclose(f);
	if (!have4 && n < max && target_parse(fallback[0], &t[n]) == 0)
		n++;
	if (!have6 && n < max && target_parse(fallback[1], &t[n]) == 0)
		n++;
	return n;
}

static int new_nonce(char nonce[SELFTEST_NONCE_LEN + 1], uint16_t *id)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t r[SELFTEST_NONCE_LEN / 2 + 2];

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -1;
	for (int i = 0; i < SELFTEST_NONCE_LEN / 2; i++) {
		nonce[2 * i] = hex[r[i] >> 4];
		nonce[2 * i + 1] = hex[r[i] & 15];
	}
	nonce[SELFTEST_NONCE_LEN] = '\0';
	*id = (uint16_t)(r[SELFTEST_NONCE_LEN / 2] << 8 | r[SELFTEST_NONCE_LEN / 2 + 1]);
	return 0;
}

static void print_result(const struct target *t, const char *fam, const char *proto,
			 const struct selftest_result *r)
{
	printf("%s %s %s: ", fam, proto, t->name);
	switch (r->verdict) {
	case ST_PRIVATE:
		printf("private: answered over verified DoT by %s\n", r->upstream);
		break;
	case ST_PLAIN:
		printf("NOT private: answered in plaintext by the server itself (%s)\n",
		       dns_rcode_name(r->rcode) ? dns_rcode_name(r->rcode) : "unknown rcode");
		break;
	case ST_SERVFAIL:
		printf("NOT private: SERVFAIL (intercepted, but no upstream answered; or the server itself failed)\n");
		break;
	case ST_NO_ANSWER:
		printf("no answer (DNS blocked or server down)\n");
		break;
	case ST_NO_ROUTE:
		printf("skipped: no %s route\n", fam);
		break;
	}
}

/* Per family and transport: what was seen over every target. */
enum path_state { PATH_UNTESTED, PATH_PRIVATE, PATH_NO_ANSWER, PATH_NOT_PRIVATE };	/* worst last */

int selftest_main(int argc, char **argv)
{
	static const char *const fams[] = { "IPv4", "IPv6" }, *const protos[] = { "UDP", "TCP" };
	struct target targets[ST_MAX_TARGETS];
	enum path_state paths[2][2] = { { PATH_UNTESTED } };
	int n = 0;
	bool any = false;
	enum path_state worst = PATH_UNTESTED;

	if (argc > ST_MAX_TARGETS) {
		fprintf(stderr, "dotproxy: --self-test: at most %d addresses\n", ST_MAX_TARGETS);
		return 2;
	}
	for (int i = 0; i < argc; i++) {
		if (target_parse(argv[i], &targets[n]) < 0) {
			fprintf(stderr, "dotproxy: --self-test \"%s\": not an IPv4 or IPv6 address\n", argv[i]);
			return 2;
		}
		n++;
	}
	if (n == 0)
		n = targets_default(targets, ST_MAX_TARGETS);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("dotproxy self-test: a TXT query for <random>.%s. to each server, over UDP and TCP,\n"
	       "in plaintext as any program would send it; private only if dotproxy answers it over verified DoT\n",
	       SELFTEST_SUFFIX);
	for (int i = 0; i < n; i++) {
		int f = targets[i].addr.ss_family == AF_INET6;

		for (int p = 0; p < 2; p++) {
			struct selftest_result r;
			uint8_t q[512];
			char nonce[SELFTEST_NONCE_LEN + 1];
			uint16_t id;
			size_t qlen;

			if (new_nonce(nonce, &id) < 0) {
				fprintf(stderr, "dotproxy: --self-test: getrandom: %s\n", strerror(errno));
				return 2;
			}
			qlen = selftest_query(nonce, id, q, sizeof(q));
			if (p == 0)
				test_udp(&targets[i], q, qlen, nonce, &r);
			else
				test_tcp(&targets[i], q, qlen, nonce, &r);
			if (r.verdict == ST_NO_ROUTE) {
				print_result(&targets[i], fams[f], "UDP+TCP", &r);
				break;	/* not tested: neither transport */
			}
			print_result(&targets[i], fams[f], protos[p], &r);
			any = true;
			{
				enum path_state s = r.verdict == ST_PRIVATE ? PATH_PRIVATE :
						    r.verdict == ST_NO_ANSWER ? PATH_NO_ANSWER : PATH_NOT_PRIVATE;

				if (s > paths[f][p])
					paths[f][p] = s;
				if (s > worst)
					worst = s;
			}
		}
	}
	for (int f = 0; f < 2; f++) {
		static const char *const state[] = { "not tested", "private", "no answer", "NOT private" };

		printf("%s: UDP %s, TCP %s\n", fams[f], state[paths[f][0]], state[paths[f][1]]);
	}
	if (!any) {
		printf("verdict: unknown: no server could be tested\n");
		return 1;
	}
	if (worst == PATH_NOT_PRIVATE) {
		printf("verdict: NOT private: some DNS from this machine is not answered over verified DoT\n");
		return 1;
	}
	if (worst == PATH_NO_ANSWER) {
		printf("verdict: unknown: some queries got no answer at all\n");
		return 1;
	}
	printf("verdict: private: every tested path was answered over verified DoT%s\n",
	       paths[0][0] == PATH_UNTESTED || paths[1][0] == PATH_UNTESTED ? " (one family not tested)" : "");
	return 0;
}

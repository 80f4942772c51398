/*
 * dnsmsg.h - the DNS message builder the suites share: every message a test
 * feeds the code is written here field by field from the RFC 1035 layout,
 * never by the code under test. A suite may set, before including it:
 *   DNSMSG_CAP          octets a message may take (default 4096)
 *   DNSMSG_FIELDS       more members of struct msg
 *   DNSMSG_ON_TTL(m, type)  run just before a record's TTL is written
 */
#ifndef DOTPROXY_TEST_DNSMSG_H
#define DOTPROXY_TEST_DNSMSG_H

#include <check.h>
#include <stdint.h>
#include <string.h>

#ifndef DNSMSG_CAP
#define DNSMSG_CAP 4096
#endif
#ifndef DNSMSG_FIELDS
#define DNSMSG_FIELDS
#endif
#ifndef DNSMSG_ON_TTL
#define DNSMSG_ON_TTL(m, type) ((void)(m), (void)(type))
#endif

struct msg {
	uint8_t b[DNSMSG_CAP];
	size_t n;
	DNSMSG_FIELDS
};

static inline void put8(struct msg *m, uint8_t v)
{
	ck_assert_uint_lt(m->n, sizeof(m->b));
	m->b[m->n++] = v;
}

static inline void put16(struct msg *m, uint16_t v)
{
	put8(m, (uint8_t)(v >> 8));
	put8(m, (uint8_t)v);
}

static inline void put32(struct msg *m, uint32_t v)
{
	put16(m, (uint16_t)(v >> 16));
	put16(m, (uint16_t)v);
}

static inline void put_bytes(struct msg *m, const void *p, size_t len)
{
	ck_assert_uint_le(m->n + len, sizeof(m->b));
	if (len)
		memcpy(m->b + m->n, p, len);
	m->n += len;
}

/* "www.example.com" as labels plus the root; "" or "." is the root alone. */
static inline void put_name(struct msg *m, const char *dotted)
{
	const char *p = dotted;

	while (*p && strcmp(p, ".") != 0) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);

		put8(m, (uint8_t)len);
		put_bytes(m, p, len);
		p += len;
		if (*p == '.')
			p++;
	}
	put8(m, 0);
}

/* A compression pointer to offset @off (RFC 1035 4.1.4). */
static inline void put_ptr(struct msg *m, uint16_t off)
{
	put16(m, (uint16_t)(0xc000 | off));
}

/* A header (RFC 1035 4.1.1); starts the message afresh. */
static inline void put_hdr(struct msg *m, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an,
			   uint16_t ns, uint16_t ar)
{
	/* everything after the octets: the length and the suite's own fields */
	memset((char *)m + sizeof(m->b), 0, sizeof(*m) - sizeof(m->b));
	put16(m, id);
	put16(m, flags);
	put16(m, qd);
	put16(m, an);
	put16(m, ns);
	put16(m, ar);
}

static inline void put_question(struct msg *m, const char *name, uint16_t type, uint16_t class)
{
	put_name(m, name);
	put16(m, type);
	put16(m, class);
}

/* RFC 1035 4.1.3: the fixed fields and rdata after an owner already written. */
static inline void put_rr_tail(struct msg *m, uint16_t type, uint16_t class, uint32_t ttl,
			       const void *rdata, uint16_t rdlen)
{
	put16(m, type);
	put16(m, class);
	DNSMSG_ON_TTL(m, type);
	put32(m, ttl);
	put16(m, rdlen);
	put_bytes(m, rdata, rdlen);
}

#endif

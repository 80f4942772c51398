/*
 * dns.c - DNS wire format. Every byte is read through struct wire; nothing
 * here trusts a count, a length or a pointer from the packet.
 */
#include "dns.h"

#include <stdio.h>
#include <string.h>

/* RFC 1035 4.1.1 header bits */
#define DNS_QR		0x8000
#define DNS_OPCODE(f)	(((f) >> 11) & 0x0f)
#define DNS_TC		0x0200
#define DNS_RD		0x0100
#define DNS_RA		0x0080
#define DNS_CD		0x0010

int dns_read_name(struct wire *w, uint8_t *out)
{
	size_t pos = w->pos;		/* where we read labels now */
	size_t end = 0;			/* where the cursor resumes, once a pointer is taken */
	size_t limit = w->pos;		/* pointers must point strictly before this */
	size_t n = 0;			/* uncompressed octets so far, root included */
	unsigned hops = 0;		/* pointers followed */
	bool jumped = false;

	if (w->err)
		return -1;
	for (;;) {
		uint8_t c;

		if (pos >= w->len)
			goto bad;
		c = w->buf[pos];
		if ((c & 0xc0) == 0xc0) {
			size_t ptr;

			if (pos + 1 >= w->len)
				goto bad;
			ptr = (size_t)(c & 0x3f) << 8 | w->buf[pos + 1];
			if (ptr >= limit)	/* only backwards: no loops */
				goto bad;
			/* a name has at most 127 labels: more pointers than that is a CPU trap
			 * (chains of pointers to pointers, read once for every name) */
			if (++hops > DNS_MAX_HOPS)
				goto bad;
			if (!jumped)
				end = pos + 2;
			jumped = true;
			limit = ptr;
			pos = ptr;
			continue;
		}
		if (c & 0xc0)		/* 0x40, 0x80: obsolete label types */
			goto bad;
		if (n + 1 + c > DNS_MAX_NAME)
			goto bad;
		if (pos + 1 + c > w->len)
			goto bad;
		if (out) {
			out[n] = c;
			for (size_t i = 0; i < c; i++) {
				uint8_t ch = w->buf[pos + 1 + i];
				out[n + 1 + i] = (ch >= 'A' && ch <= 'Z') ? (uint8_t)(ch + 32) : ch;
			}
		}
		n += 1 + (size_t)c;
		pos += 1 + (size_t)c;
		if (c == 0)
			break;
	}
	w->pos = jumped ? end : pos;
	return (int)n;
bad:
	w->err = true;
	return -1;
}

void dns_skip_rr(struct wire *w)
{
	uint16_t rdlen;

	dns_read_name(w, NULL);
	wire_skip(w, 8);	/* type, class, ttl */
	rdlen = wire_u16(w);
	wire_skip(w, rdlen);
}

int dns_check_query(const uint8_t *msg, size_t len, struct dns_query_info *qi)
{
	struct dns_header h;
	struct wire w;

	memset(qi, 0, sizeof(*qi));
	if (len < DNS_HDR_LEN)
		return DNS_QUERY_DROP;
	wire_init(&w, msg, len);
	dns_read_header(&w, &h);
	if (h.flags & DNS_QR)
		return DNS_QUERY_DROP;
	if (DNS_OPCODE(h.flags) != 0)
		return DNS_RCODE_NOTIMP;
	if (h.qd != 1 || h.an != 0 || h.ns != 0)
		return DNS_RCODE_FORMERR;
	dns_read_name(&w, NULL);
	qi->qtype = wire_u16(&w);
	qi->qclass = wire_u16(&w);
	qi->question_end = w.pos;
	qi->udp_size = DNS_UDP_MIN;
	for (uint16_t i = 0; i < h.ar && wire_ok(&w); i++) {
		size_t start = w.pos;
		uint16_t type, class;

		if (dns_read_name(&w, NULL) != 1) {	/* OPT owner is the root */
			wire_seek(&w, start);
			dns_skip_rr(&w);
			continue;
		}
		type = wire_u16(&w);
		class = wire_u16(&w);
		if (type != DNS_TYPE_OPT) {
			wire_seek(&w, start);
			dns_skip_rr(&w);
			continue;
		}
		if (qi->has_edns)		/* RFC 6891 6.1.1: at most one OPT */
			return DNS_RCODE_FORMERR;
		qi->has_edns = true;
		qi->udp_size = class < DNS_UDP_MIN ? DNS_UDP_MIN : class;
		wire_skip(&w, 4);
		wire_skip(&w, wire_u16(&w));
	}
	if (!wire_ok(&w) || wire_left(&w) != 0)	/* malformed or trailing junk */
		return DNS_RCODE_FORMERR;
	return DNS_QUERY_OK;
}

/*
 * Read the question at offset 12: lower-cased name into @name, type and
 * class into @tc. Returns the name's uncompressed length, or -1.
 */
static int read_question(const uint8_t *msg, size_t len, uint8_t *name, uint32_t *tc)
{
	struct wire w;
	int n;

	wire_init(&w, msg, len);
	wire_skip(&w, DNS_HDR_LEN);
	n = dns_read_name(&w, name);
	*tc = wire_u32(&w);
	return wire_ok(&w) ? n : -1;
}

bool dns_answer_matches(const uint8_t *ans, size_t alen, const uint8_t *query, size_t qlen)
{
	uint8_t an[DNS_MAX_NAME], qn[DNS_MAX_NAME];
	uint32_t atc, qtc;
	struct wire w;
	int ae, qe;

	if (alen < DNS_HDR_LEN || qlen < DNS_HDR_LEN)
		return false;
	wire_init(&w, ans, alen);
	wire_skip(&w, 2);
	if (!(wire_u16(&w) & DNS_QR))
		return false;
	if (wire_u16(&w) != 1)
		return false;
	/* compare the names as read (compressed or not), not their wire form */
	ae = read_question(ans, alen, an, &atc);
	qe = read_question(query, qlen, qn, &qtc);
	if (ae < 0 || qe < 0 || ae != qe || atc != qtc)
		return false;
	return memcmp(an, qn, (size_t)qe) == 0;
}

size_t dns_make_error(const uint8_t *query, size_t qlen, int rcode, uint8_t *out, size_t cap)
{
	uint16_t flags;
	size_t n = DNS_HDR_LEN;
	struct wire w;

	if (qlen < DNS_HDR_LEN || cap < DNS_HDR_LEN)
		return 0;
	flags = wire_get_u16(query + 2);
	memset(out, 0, DNS_HDR_LEN);
	memcpy(out, query, 2);
	/* QR, the client's opcode and RD and CD, RA, the rcode */
	wire_put_u16(out + 2, (uint16_t)(DNS_QR | (flags & (0x7800 | DNS_RD | DNS_CD)) | DNS_RA |
					 (rcode & 0x0f)));
	wire_init(&w, query, qlen);
	wire_skip(&w, DNS_HDR_LEN);
	if (wire_get_u16(query + 4) == 1) {
		dns_read_name(&w, NULL);
		wire_skip(&w, 4);
		if (wire_ok(&w) && w.pos <= cap) {
			memcpy(out + DNS_HDR_LEN, query + DNS_HDR_LEN, w.pos - DNS_HDR_LEN);
			wire_put_u16(out + 4, 1);
			n = w.pos;
		}
	}
	return n;
}

size_t dns_truncate(const uint8_t *ans, size_t alen, uint8_t *out, size_t max)
{
	/* RFC 6891 6.1.2: OPT owner, type, payload size, ext-rcode/version/flags, rdlen */
	static const size_t opt_len = 11;
	uint32_t opt_ttl = 0;
	uint16_t opt_class = 0;
	bool has_opt = false;
	struct dns_header h;
	struct wire w;
	size_t qend;

	wire_init(&w, ans, alen);
	dns_read_header(&w, &h);
	if (h.qd > 1)
		return 0;
	if (h.qd == 1) {
		dns_read_name(&w, NULL);
		wire_skip(&w, 4);
	}
	if (!wire_ok(&w))	/* shorter than a header, or the question is broken */
		return 0;
	qend = w.pos;
	/* find the OPT record to keep the extended rcode and DO bit */
	for (uint32_t i = 0; i < (uint32_t)h.an + h.ns + h.ar && wire_ok(&w); i++) {
		size_t start = w.pos;

		if (dns_read_name(&w, NULL) == 1 && wire_u16(&w) == DNS_TYPE_OPT && i >= (uint32_t)h.an + h.ns) {
			opt_class = wire_u16(&w);
			opt_ttl = wire_u32(&w);
			has_opt = true;
			break;
		}
		wire_seek(&w, start);
		dns_skip_rr(&w);
	}
	if (qend > alen || qend + (has_opt ? opt_len : 0) > max)
		return 0;
	memcpy(out, ans, qend);
	out[2] |= DNS_TC >> 8;
	wire_put_u16(out + 6, 0);
	wire_put_u16(out + 8, 0);
	wire_put_u16(out + 10, has_opt ? 1 : 0);
	if (has_opt) {
		uint8_t *p = out + qend;

		p[0] = 0;
		wire_put_u16(p + 1, DNS_TYPE_OPT);
		wire_put_u16(p + 3, opt_class);
		wire_put_u16(p + 5, (uint16_t)(opt_ttl >> 16));
		wire_put_u16(p + 7, (uint16_t)opt_ttl);
		wire_put_u16(p + 9, 0);
		return qend + opt_len;
	}
	return qend;
}

void dns_copy_question_case(uint8_t *ans, size_t alen, const uint8_t *query, size_t qlen)
{
	size_t off = DNS_HDR_LEN;

	/* the query's name, uncompressed, walked label by label in both */
	for (;;) {
		uint8_t c;

		if (off >= qlen || off >= alen)
			return;
		c = query[off];
		if (c & 0xc0 || c != ans[off] || off + 1 + c > qlen || off + 1 + c > alen)
			return;
		if (c == 0)
			break;
		for (size_t i = off + 1; i <= off + c; i++) {
			uint8_t a = ans[i], b = query[i];

			if ((a >= 'A' && a <= 'Z' ? a + 32 : a) != (b >= 'A' && b <= 'Z' ? b + 32 : b))
				return;
		}
		off += 1 + (size_t)c;
	}
	memcpy(ans + DNS_HDR_LEN, query + DNS_HDR_LEN, off - DNS_HDR_LEN);
}

const char *dns_rcode_name(int rcode)
{
	static const char *const names[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED" };

	if (rcode >= 0 && rcode < (int)(sizeof(names) / sizeof(names[0])))
		return names[rcode];
	return NULL;
}

const char *dns_rcode_text(int rcode, char *buf, size_t len)
{
	if (dns_rcode_name(rcode))
		return dns_rcode_name(rcode);
	snprintf(buf, len, "RCODE%d", rcode);
	return buf;
}

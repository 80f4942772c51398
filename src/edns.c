/*
 * edns.c - the EDNS(0) options the proxy adds to upstream queries (padding,
 * RFC 7830 / RFC 8467; edns-tcp-keepalive, RFC 7828) and takes out of
 * answers. Every byte of the message is located through struct wire before
 * anything is written; a function that gives up leaves the message as it
 * was. Never allocates, never logs, never touches a signed (TSIG, SIG(0))
 * query.
 */
#include "edns.h"

#include <string.h>

#include "dns.h"
#include "wire.h"

#define TYPE_SIG	24	/* RFC 2931 3: SIG(0), root owner, last in additional */
#define TYPE_TSIG	250	/* RFC 8945 4.1: last in additional */
#define OPT_FIXED	11	/* RFC 6891 6.1.2: root owner, type, class, ttl, rdlength */
#define OPTION_HDR	4	/* RFC 6891 6.1.2: OPTION-CODE, OPTION-LENGTH */
#define PTR_MAX		0x3fff	/* RFC 1035 4.1.4: 14-bit offsets */
#define MAX_HOPS	127	/* pointers in one name: a 255-octet name has 127 labels */

/* Where the one OPT record is, and what the walk of the message found. */
struct layout {
	size_t opt;		/* offset of the OPT owner, if has_opt */
	size_t rdlen_at;	/* offset of its RDLENGTH */
	size_t rdata;		/* offset of its RDATA */
	size_t rdata_end;	/* offset just past its RDATA */
	uint16_t arcount;
	bool has_opt;
	bool signed_msg;	/* a TSIG or SIG(0) record is present */
};

/*
 * Walk header, question and records of @msg. The message must end exactly
 * after its last record. An OPT (type 41) must have the root as owner, be
 * in the additional section and be the only one (RFC 6891 6.1.1).
 * Returns false if the message is malformed.
 */
static bool scan(const uint8_t *msg, size_t len, struct layout *lo)
{
	struct dns_header h;
	struct wire w;
	uint32_t nrr;

	memset(lo, 0, sizeof(*lo));
	if (len > DNS_MAX_MSG)
		return false;
	wire_init(&w, msg, len);
	dns_read_header(&w, &h);
	lo->arcount = h.ar;
	for (uint16_t i = 0; i < h.qd && wire_ok(&w); i++) {
		dns_read_name(&w, NULL);
		wire_skip(&w, 4);
	}
	nrr = (uint32_t)h.an + h.ns + h.ar;
	for (uint32_t i = 0; i < nrr && wire_ok(&w); i++) {
		bool additional = i >= (uint32_t)h.an + h.ns;
		size_t start = w.pos;
		int owner = dns_read_name(&w, NULL);
		uint16_t type = wire_u16(&w);
		uint16_t rdlen;

		wire_skip(&w, 6);	/* class, ttl */
		if (type == DNS_TYPE_OPT) {
			if (owner != 1 || !additional || lo->has_opt)
				return false;
			lo->has_opt = true;
			lo->opt = start;
			lo->rdlen_at = w.pos;
		}
		if (type == TYPE_TSIG || (type == TYPE_SIG && additional && owner == 1))
			lo->signed_msg = true;
		rdlen = wire_u16(&w);
		if (type == DNS_TYPE_OPT) {
			lo->rdata = w.pos;
			lo->rdata_end = w.pos + rdlen;
		}
		wire_skip(&w, rdlen);
	}
	return wire_ok(&w) && wire_left(&w) == 0;
}

static bool option_dropped(uint16_t code)
{
	/* ours (keepalive, padding), and what is about one client and must not reach
	 * another through a shared answer, nor leave for the upstream: its subnet and
	 * its cookies */
	return code == EDNS_OPT_KEEPALIVE || code == EDNS_OPT_PADDING || code == EDNS_OPT_ECS ||
	       code == EDNS_OPT_COOKIE;
}

/*
 * Octets the OPT RDATA keeps once keepalive and padding options are taken
 * out, or -1 if an option runs past the RDATA. If @out (the same buffer as
 * @msg) is not NULL, also moves the kept options together at the start of
 * the RDATA, in their order.
 */
static long compact_options(const uint8_t *msg, const struct layout *lo, uint8_t *out)
{
	struct wire w;
	size_t kept = 0;

	wire_init(&w, msg, lo->rdata_end);
	wire_seek(&w, lo->rdata);
	while (wire_ok(&w) && wire_left(&w) > 0) {
		size_t at = w.pos;
		uint16_t code = wire_u16(&w);
		uint16_t olen = wire_u16(&w);

		wire_skip(&w, olen);
		if (!wire_ok(&w))
			break;
		if (option_dropped(code))
			continue;
		if (out && lo->rdata + kept != at)
			memmove(out + lo->rdata + kept, out + at, OPTION_HDR + (size_t)olen);
		kept += OPTION_HDR + (size_t)olen;
	}
	return wire_ok(&w) ? (long)kept : -1;
}

/* RFC 1035 3.3 and RFC 3597 4: where the names in a well-known RDATA are. */
static void rdata_names(uint16_t type, size_t *skip, int *names)
{
	*skip = 0;
	*names = 0;
	switch (type) {
	case 2: case 3: case 4: case 5: case 7: case 8: case 9: case 12:	/* NS .. PTR */
	case 39:							/* DNAME */
		*names = 1;
		break;
	case 6: case 14: case 17:	/* SOA, MINFO, RP: two names first */
		*names = 2;
		break;
	case 15: case 18: case 21: case 36:	/* MX, AFSDB, RT, KX: preference, name */
		*skip = 2;
		*names = 1;
		break;
	case 26:			/* PX: preference, two names */
		*skip = 2;
		*names = 2;
		break;
	case 33:			/* SRV: priority, weight, port, name */
		*skip = 6;
		*names = 1;
		break;
	default:
		break;
	}
}

/*
 * An edit of the message: the octets [from, to) change or go, those from
 * @to on move by @delta. Every name a reader may decompress (questions,
 * owners, names in well-known RDATA) must read the same octets afterwards:
 * none in [from, to) or the header, and every compression pointer it
 * meets after @to is one that gets rewritten (marked).
 */
struct edit {
	size_t from, to;
	long delta;
	uint8_t marks[DNS_MAX_MSG / 8 + 1];	/* pointers at these offsets are rewritten */
};

enum pass { MARK, CHECK, APPLY };

static bool touches(const struct edit *e, size_t at, size_t n)
{
	return at < DNS_HDR_LEN || (at < e->to && at + n > e->from);
}

static bool marked(const struct edit *e, size_t at)
{
	return e->marks[at / 8] & (1u << (at % 8));
}

/*
 * Step over the labels of the name at @w's position (in place, no pointer
 * followed). Returns the offset of the pointer that ends it, or SIZE_MAX if
 * it ends with the root label; sets @w's error on a bad label.
 */
static size_t name_own(struct wire *w)
{
	for (;;) {
		size_t at = w->pos;
		uint8_t c = wire_u8(w);

		if (!wire_ok(w) || c == 0)
			return SIZE_MAX;
		if ((c & 0xc0) == 0xc0) {
			wire_skip(w, 1);
			return at;
		}
		if (c & 0xc0)
			w->err = true;
		wire_skip(w, c);
	}
}

/*
 * Whether the name at @start reads the same octets once @e is made:
 * decompressed as a reader would (RFC 1035 4.1.4, pointers only backwards,
 * at most MAX_HOPS of them, <= 255 octets), it must not touch [from, to) or
 * the header, and must meet only marked pointers after @to.
 */
static bool chain_ok(const uint8_t *msg, size_t len, size_t start, const struct edit *e)
{
	struct wire w;
	size_t limit = start, n = 0;
	int hops = 0;

	wire_init(&w, msg, len);
	wire_seek(&w, start);
	for (;;) {
		size_t at = w.pos, ptr;
		uint8_t c = wire_u8(&w);

		if (!wire_ok(&w) || touches(e, at, 1))
			return false;
		if (c == 0)
			return true;
		if ((c & 0xc0) == 0) {
			n += 1 + (size_t)c;
			wire_skip(&w, c);
			if (!wire_ok(&w) || n > DNS_MAX_NAME || touches(e, at + 1, c))
				return false;
			continue;
		}
		if ((c & 0xc0) != 0xc0)
			return false;
		ptr = (size_t)(c & 0x3f) << 8 | wire_u8(&w);
		if (!wire_ok(&w) || touches(e, at + 1, 1) || ptr >= limit || ++hops > MAX_HOPS)
			return false;
		if (at >= e->to && (!marked(e, at) || (ptr >= e->to && (long)ptr + e->delta > PTR_MAX)))
			return false;
		limit = ptr;
		wire_seek(&w, ptr);
	}
}

/*
 * One name at @w's position in @msg (@len octets), for @pass; a CHECK that
 * fails sets @w's error.
 */
static void visit_name(struct wire *w, const uint8_t *msg, size_t len, uint8_t *out, struct edit *e,
		       enum pass pass)
{
	size_t start = w->pos;
	size_t p = name_own(w);

	if (!wire_ok(w))
		return;
	if (pass == CHECK) {
		if (!chain_ok(msg, len, start, e))
			w->err = true;
		return;
	}
	if (start < e->to || p == SIZE_MAX)
		return;
	if (pass == MARK) {
		e->marks[p / 8] |= (uint8_t)(1u << (p % 8));
	} else {
		size_t ptr = wire_get_u16(out + p) & PTR_MAX;

		if (ptr >= e->to)
			wire_put_u16(out + p, (uint16_t)(0xc000 | ((long)ptr + e->delta)));
	}
}

/*
 * Visit every name in @msg a reader may decompress, the OPT record aside.
 * Returns false if one is malformed or (CHECK) would read other octets
 * after @e. APPLY writes the moved pointers into @out, before the move.
 */
static bool walk_names(const uint8_t *msg, size_t len, const struct layout *lo, struct edit *e,
		       enum pass pass, uint8_t *out)
{
	struct dns_header h;
	struct wire w;
	uint32_t nrr;

	wire_init(&w, msg, len);
	dns_read_header(&w, &h);
	nrr = (uint32_t)h.an + h.ns + h.ar;
	for (uint16_t i = 0; i < h.qd && wire_ok(&w); i++) {
		visit_name(&w, msg, len, out, e, pass);
		wire_skip(&w, 4);
	}
	for (uint32_t i = 0; i < nrr && wire_ok(&w); i++) {
		struct wire rd;
		uint16_t type, rdlen;
		size_t skip;
		int names;

		if (lo->has_opt && w.pos == lo->opt) {
			dns_skip_rr(&w);
			continue;
		}
		visit_name(&w, msg, len, out, e, pass);
		type = wire_u16(&w);
		wire_skip(&w, 6);
		rdlen = wire_u16(&w);
		if (!wire_need(&w, rdlen))
			break;
		rdata_names(type, &skip, &names);
		wire_init(&rd, msg, w.pos + rdlen);	/* a name's own labels stay in its RDATA */
		wire_seek(&rd, w.pos);
		wire_skip(&rd, skip);
		for (int n = 0; n < names && rdlen > 0; n++)
			visit_name(&rd, msg, len, out, e, pass);
		if (!wire_ok(&rd))
			return false;
		wire_skip(&w, rdlen);
	}
	return wire_ok(&w);
}

/*
 * Whether @msg can take edit [@from, @to) with what follows moved by
 * @delta and every name still reading the same; fills in @e for
 * edit_apply(). Writes nothing.
 */
static bool edit_check(const uint8_t *msg, size_t len, const struct layout *lo, struct edit *e,
		       size_t from, size_t to, long delta)
{
	e->from = from;
	e->to = to;
	e->delta = delta;
	/* only pointers after @to are marked or asked about; at the very end there are none */
	if (to < len) {
		memset(e->marks + to / 8, 0, len / 8 - to / 8 + 1);
		if (!walk_names(msg, len, lo, e, MARK, NULL))
			return false;
	}
	return walk_names(msg, len, lo, e, CHECK, NULL);
}

/* Rewrite the pointers edit_check() marked, then move the octets from @to on. */
static void edit_apply(uint8_t *msg, size_t len, const struct layout *lo, struct edit *e)
{
	walk_names(msg, len, lo, e, APPLY, msg);
	memmove(msg + (long)e->to + e->delta, msg + e->to, len - e->to);
}

/*
 * Give the OPT RDATA the options it keeps followed by room for @add more
 * octets (left as they were), moving the records after it and keeping
 * every name right. Nothing is written if it cannot be done.
 * Returns false if a name would change.
 */
static bool resize_rdata(uint8_t *msg, size_t len, const struct layout *lo, size_t kept, size_t add)
{
	struct edit e;
	size_t rdlen = kept + add;

	/* the OPT's root owner stays; its RDLENGTH and RDATA change */
	if (!edit_check(msg, len, lo, &e, lo->opt + 1, lo->rdata_end,
			(long)rdlen - (long)(lo->rdata_end - lo->rdata)))
		return false;
	/* kept options only move towards the start, over octets already read */
	compact_options(msg, lo, msg);
	edit_apply(msg, len, lo, &e);
	wire_put_u16(msg + lo->rdlen_at, (uint16_t)rdlen);
	return true;
}

/* The keepalive option (empty, RFC 7828 3.1) and a zero Padding option of @pad octets at @p. */
static void put_options(uint8_t *p, size_t pad)
{
	wire_put_u16(p, EDNS_OPT_KEEPALIVE);
	wire_put_u16(p + 2, 0);
	wire_put_u16(p + 4, EDNS_OPT_PADDING);
	wire_put_u16(p + 6, (uint16_t)pad);
	memset(p + 2 * OPTION_HDR, 0, pad);
}

/* @n rounded up to a whole number of padding blocks. */
static size_t pad_to_block(size_t n)
{
	return (n + EDNS_PAD_BLOCK - 1) / EDNS_PAD_BLOCK * EDNS_PAD_BLOCK;
}

size_t edns_prepare_query(uint8_t *msg, size_t len, size_t cap)
{
	struct layout lo;
	size_t kept, base, total, pad;
	long k;

	if (!scan(msg, len, &lo) || lo.signed_msg)
		return 0;
	if (!lo.has_opt) {
		uint8_t *p = msg + len;
		struct edit e;

		/* only ARCOUNT changes: no name may read the header */
		if (lo.arcount == UINT16_MAX || !edit_check(msg, len, &lo, &e, len, len, 0))
			return 0;
		/* a new OPT at the end: fixed part, keepalive, padding header, padding */
		base = len + OPT_FIXED + 2 * OPTION_HDR;
		total = pad_to_block(base);
		if (total > cap || total > DNS_MAX_MSG)
			return 0;
		pad = total - base;
		p[0] = 0;				/* root owner */
		wire_put_u16(p + 1, DNS_TYPE_OPT);
		wire_put_u16(p + 3, EDNS_UDP_SIZE);	/* class: payload size */
		wire_put_u16(p + 5, 0);			/* ttl: ext-rcode 0, version 0, flags 0 */
		wire_put_u16(p + 7, 0);
		wire_put_u16(p + 9, (uint16_t)(2 * OPTION_HDR + pad));
		put_options(p + OPT_FIXED, pad);
		wire_put_u16(msg + 10, (uint16_t)(lo.arcount + 1));
		return total;
	}
	k = compact_options(msg, &lo, NULL);
	if (k < 0)
		return 0;
	kept = (size_t)k;
	/* the old RDATA replaced by the kept options, keepalive and the padding header */
	base = len - (lo.rdata_end - lo.rdata) + kept + 2 * OPTION_HDR;
	total = pad_to_block(base);
	if (total > cap || total > DNS_MAX_MSG)
		return 0;
	pad = total - base;
	if (!resize_rdata(msg, len, &lo, kept, 2 * OPTION_HDR + pad))
		return 0;
	put_options(msg + lo.rdata + kept, pad);
	return total;
}

size_t edns_clean_answer(uint8_t *msg, size_t len, bool drop_opt)
{
	struct layout lo;
	struct edit e;
	size_t opt_len;
	long k;

	if (!scan(msg, len, &lo))
		return 0;
	if (!lo.has_opt || lo.signed_msg)	/* a signature covers the OPT as it is */
		return len;
	k = compact_options(msg, &lo, NULL);
	if (k < 0)
		return 0;
	if (!drop_opt) {
		if ((size_t)k == lo.rdata_end - lo.rdata)
			return len;		/* nothing to take out */
		if (!resize_rdata(msg, len, &lo, (size_t)k, 0))
			return 0;
		return len - (lo.rdata_end - lo.rdata - (size_t)k);
	}
	opt_len = lo.rdata_end - lo.opt;
	if (!edit_check(msg, len, &lo, &e, lo.opt, lo.rdata_end, -(long)opt_len))
		return 0;
	edit_apply(msg, len, &lo, &e);
	wire_put_u16(msg + 10, (uint16_t)(lo.arcount - 1));
	return len - opt_len;
}

int edns_keepalive(const uint8_t *msg, size_t len)
{
	struct layout lo;
	struct wire w;

	if (!scan(msg, len, &lo) || !lo.has_opt)
		return -1;
	wire_init(&w, msg, lo.rdata_end);
	wire_seek(&w, lo.rdata);
	while (wire_ok(&w) && wire_left(&w) > 0) {
		uint16_t code = wire_u16(&w);
		uint16_t olen = wire_u16(&w);

		if (code == EDNS_OPT_KEEPALIVE && olen == 2) {
			uint16_t timeout = wire_u16(&w);

			return wire_ok(&w) ? timeout : -1;
		}
		wire_skip(&w, olen);
	}
	return -1;
}

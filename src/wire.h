/*
 * wire.h - the one bounds-checked cursor over untrusted bytes.
 * Reads past the end set a sticky error and return zeros; callers read,
 * read, read, then check wire_ok() once. Never index a raw packet elsewhere.
 */
#ifndef DOTPROXY_WIRE_H
#define DOTPROXY_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct wire {
	const uint8_t *buf;	/* start of the message */
	size_t len;		/* bytes in the message */
	size_t pos;		/* read position */
	bool err;		/* sticky: set by any out-of-bounds access */
};

static inline void wire_init(struct wire *w, const uint8_t *buf, size_t len)
{
	w->buf = buf;
	w->len = len;
	w->pos = 0;
	w->err = false;
}

static inline bool wire_ok(const struct wire *w) { return !w->err; }

static inline size_t wire_left(const struct wire *w)
{
	return w->err ? 0 : w->len - w->pos;
}

static inline bool wire_need(struct wire *w, size_t n)
{
	if (w->err || n > w->len - w->pos) {
		w->err = true;
		return false;
	}
	return true;
}

static inline uint8_t wire_u8(struct wire *w)
{
	if (!wire_need(w, 1))
		return 0;
	return w->buf[w->pos++];
}

static inline uint16_t wire_u16(struct wire *w)
{
	uint16_t v;

	if (!wire_need(w, 2))
		return 0;
	v = (uint16_t)(w->buf[w->pos] << 8 | w->buf[w->pos + 1]);
	w->pos += 2;
	return v;
}

static inline uint32_t wire_u32(struct wire *w)
{
	uint32_t v;

	if (!wire_need(w, 4))
		return 0;
	v = (uint32_t)w->buf[w->pos] << 24 | (uint32_t)w->buf[w->pos + 1] << 16 |
	    (uint32_t)w->buf[w->pos + 2] << 8 | w->buf[w->pos + 3];
	w->pos += 4;
	return v;
}

static inline void wire_skip(struct wire *w, size_t n)
{
	if (wire_need(w, n))
		w->pos += n;
}

/* Copy @n bytes to @dst (zeros on error). */
static inline void wire_copy(struct wire *w, void *dst, size_t n)
{
	if (wire_need(w, n)) {
		memcpy(dst, w->buf + w->pos, n);
		w->pos += n;
	} else {
		memset(dst, 0, n);
	}
}

/* Move to absolute offset @off (only within the message). */
static inline void wire_seek(struct wire *w, size_t off)
{
	if (w->err || off > w->len)
		w->err = true;
	else
		w->pos = off;
}

static inline void wire_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint16_t wire_get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

#endif

/*
 * fuzz_nfq.c - libFuzzer target for what the NFQUEUE front-end reads from
 * the kernel: a received netlink datagram (one or more messages, walked by
 * libmnl as the daemon does), each packet message read by nfq_parse_packet()
 * and its payload by pkt_parse_udp(). Run with `make fuzz`.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nfq.h"
#include "pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct span {
	const uint8_t *start, *end;
};

static void on_packet(const struct nfq_packet *p, void *arg)
{
	const struct span *in = arg;
	struct pkt_udp u;

	if (!p->data)		/* only the ID could be read */
		return;
	/* everything read lies inside the datagram */
	if (p->data < in->start || p->data + p->len > in->end)
		__builtin_trap();
	for (int verify = 0; verify < 2; verify++) {
		if (pkt_parse_udp(p->data, p->len, verify, &u) != PKT_OK)
			continue;
		if (u.payload < p->data || u.payload + u.len > p->data + p->len)
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* an exact-size heap copy (aligned, as the daemon's buffers are): ASan sees any overread */
	uint8_t *buf = malloc(size ? size : 1);
	struct span in;
	struct nfq_walk w = { .packet = on_packet, .arg = &in };

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	in.start = buf;
	in.end = buf + size;
	nfq_walk(&w, buf, size);
	free(buf);
	return 0;
}

/*
 * dgram.c - datagrams held for one loop iteration and sent with sendmmsg():
 * one system call per run of the same socket instead of one per answer, and
 * fewer wake-ups of the clients that read them. A datagram the kernel refuses
 * is counted and the rest still go.
 */
#define _GNU_SOURCE
#include "dgram.h"

#include <string.h>

static void on_flush(struct loop *l, void *arg)
{
	(void)l;
	dgram_flush(arg);
}

void dgram_init(struct dgram_batch *b, struct loop *l, uint64_t *errors)
{
	b->loop = l;
	b->errors = errors;
	b->n = 0;
	loop_defer_init(&b->flush, on_flush, b);
}

void dgram_flush(struct dgram_batch *b)
{
	unsigned i = 0;

	loop_defer_cancel(b->loop, &b->flush);

	while (i < b->n) {
		unsigned run = 1;
		int r;

		while (i + run < b->n && b->fd[i + run] == b->fd[i])
			run++;
		r = sendmmsg(b->fd[i], b->msgs + i, run, MSG_DONTWAIT);
		if (r <= 0) {
			(*b->errors)++;	/* the first of the run failed: skip it, send the others */
			i++;
		} else {
			i += (unsigned)r;	/* a short count: the next call says why or sends on */
		}
	}
	b->n = 0;
}

void dgram_send(struct dgram_batch *b, int fd, const union sockaddr_any *to, const void *cmsg,
		size_t cmsglen, const uint8_t *data, size_t len)
{
	struct msghdr *mh;
	unsigned k;

	if (cmsglen > sizeof(b->cmsg[0].buf)) {
		(*b->errors)++;
		return;
	}
	if (len > DGRAM_ROOM) {
		/* rare (a large answer over UDP): on its own, now */
		struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
		struct msghdr one = {
			.msg_name = (void *)to,
			.msg_namelen = to ? sock_len(to) : 0,
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = cmsglen ? (void *)cmsg : NULL,
			.msg_controllen = cmsglen,
		};

		if (sendmsg(fd, &one, MSG_DONTWAIT) < 0)
			(*b->errors)++;
		return;
	}
	if (b->n == DGRAM_BATCH)
		dgram_flush(b);
	k = b->n++;
	memcpy(b->data[k], data, len);
	b->fd[k] = fd;
	b->iov[k].iov_base = b->data[k];
	b->iov[k].iov_len = len;
	mh = &b->msgs[k].msg_hdr;
	memset(mh, 0, sizeof(*mh));
	if (to) {
		memcpy(&b->to[k], to, sock_len(to));
		mh->msg_name = &b->to[k];
		mh->msg_namelen = sock_len(to);
	}
	mh->msg_iov = &b->iov[k];
	mh->msg_iovlen = 1;
	if (cmsglen) {
		memcpy(b->cmsg[k].buf, cmsg, cmsglen);
		mh->msg_control = b->cmsg[k].buf;
		mh->msg_controllen = cmsglen;
	}
	loop_defer(b->loop, &b->flush);
}

/*
 * dgram.h - answers sent in batches: every datagram a front-end sends during
 * one loop iteration goes out with as few sendmmsg() calls as there are runs
 * of the same socket, when the iteration's events are done. Copies each
 * datagram (it may be built in a buffer that is reused at once); never
 * allocates after dgram_init().
 */
#ifndef DOTPROXY_DGRAM_H
#define DOTPROXY_DGRAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "loop.h"
#include "sock.h"

#define DGRAM_BATCH	64	/* datagrams held before a send */
#define DGRAM_ROOM	1536	/* bytes held per datagram (a 1500-byte packet); a larger one goes out alone */

struct dgram_batch {
	struct loop *loop;
	struct loop_defer flush;
	uint64_t *errors;		/* datagrams the kernel would not send */
	unsigned n;			/* held */
	int fd[DGRAM_BATCH];
	struct mmsghdr msgs[DGRAM_BATCH];
	struct iovec iov[DGRAM_BATCH];
	union sockaddr_any to[DGRAM_BATCH];
	union {
		struct cmsghdr align;
		uint8_t buf[SOCK_PKTINFO_SPACE];
	} cmsg[DGRAM_BATCH];
	uint8_t data[DGRAM_BATCH][DGRAM_ROOM];
};

/* Set up @b to send after each iteration of @l; count failures in *@errors. */
void dgram_init(struct dgram_batch *b, struct loop *l, uint64_t *errors);

/*
 * Send @len bytes of @data on @fd to @to (NULL: the socket's peer; for raw
 * IPv6 sockets the caller zeroes the port) with control message @cmsg
 * (@cmsglen bytes, at most SOCK_PKTINFO_SPACE; 0: none), once the current
 * iteration's events are handled.
 */
void dgram_send(struct dgram_batch *b, int fd, const union sockaddr_any *to, const void *cmsg,
		size_t cmsglen, const uint8_t *data, size_t len);

/* Send what is held now (also before its sockets close). */
void dgram_flush(struct dgram_batch *b);

#endif

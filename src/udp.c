/*
 * udp.c - the UDP front-end. Reads datagrams in batches, hands each to the
 * query table, and sends answers from the address (and port) the client
 * asked: in redirect mode through the listener with IP(V6)_PKTINFO (conntrack
 * undoes the NAT); in tproxy mode through a transparent socket bound to the
 * original destination, kept in a small cache. Never allocates per query.
 */
#define _GNU_SOURCE
#include "listen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dgram.h"
#include "dns.h"
#include "log.h"

#define UDP_BATCH	32	/* datagrams per recvmmsg */
#define UDP_BUF		4096	/* a larger query is dropped (MSG_TRUNC) */
#define TSOCK_CACHE	16	/* original destinations with an open reply socket */

struct udp_ctx {
	union sockaddr_any peer;	/* the client */
	union sockaddr_any local;	/* what it asked: original destination address and port */
	int ifindex;			/* where it came in */
	int fd;				/* the listener it came in on */
	uint16_t lport;			/* the listener's port */
};
_Static_assert(sizeof(struct udp_ctx) <= FRONTEND_CTX_SIZE, "udp_ctx too large");

struct tsock {
	union sockaddr_any local;
	int fd;				/* -1: empty */
	uint64_t used;			/* for LRU eviction */
};

struct udp_sock {
	struct udp_frontend *u;
	struct loop_io io;
	uint16_t port;			/* bound port */
};

struct udp_frontend {
	struct frontend fe;
	struct loop *loop;
	struct qtable *qt;
	struct metrics *m;
	struct metrics_path *mp;	/* its queries and answers */
	bool transparent;
	uint32_t mark;
	int nsocks;
	struct udp_sock socks[CFG_MAX_LISTEN];
	struct tsock tsocks[TSOCK_CACHE];
	uint64_t tsock_clock;
	struct dgram_batch out;		/* answers, sent after each loop iteration */
	/* recvmmsg batch */
	struct mmsghdr msgs[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	union sockaddr_any peers[UDP_BATCH];
	uint8_t cmsg[UDP_BATCH][256];
	uint8_t bufs[UDP_BATCH][UDP_BUF];
};

/* A socket bound to @local (not ours) for answering as it: TPROXY replies. */
static int tsock_get(struct udp_frontend *u, const union sockaddr_any *local)
{
	struct tsock *victim = &u->tsocks[0];
	int one = 1, fd, v6 = local->sa.sa_family == AF_INET6;

	for (int i = 0; i < TSOCK_CACHE; i++) {
		struct tsock *t = &u->tsocks[i];

		if (t->fd >= 0 && sock_equal(&t->local, local)) {
			t->used = ++u->tsock_clock;
			return t->fd;
		}
		if (t->fd < 0 || t->used < victim->used)
			victim = t;
		if (t->fd < 0)
			break;
	}
	fd = socket(local->sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (v6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))
		: setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one))) < 0 ||
	    (u->mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &u->mark, sizeof(u->mark)) < 0) ||
	    bind(fd, &local->sa, sock_len(local)) < 0) {
		log_warn("cannot answer as the original destination");
		close(fd);
		return -1;
	}
	if (victim->fd >= 0) {
		dgram_flush(&u->out);	/* answers held for it go before it closes */
		close(victim->fd);
	}
	victim->fd = fd;
	victim->local = *local;
	victim->used = ++u->tsock_clock;
	return fd;
}

static void udp_reply(struct frontend *fe, const void *ctxp, const uint8_t *msg, size_t len)
{
	struct udp_frontend *u = (struct udp_frontend *)fe;
	const struct udp_ctx *ctx = ctxp;
	union {
		struct cmsghdr align;
		uint8_t buf[SOCK_PKTINFO_SPACE];
	} cbuf;
	size_t cmsglen = 0;
	int fd = ctx->fd;

	metrics_path_answer(u->mp, metrics_family(&ctx->peer), msg, len);
	if (u->transparent && sock_port(&ctx->local) != ctx->lport) {
		/* intercepted: answer from the address and port the client asked */
		fd = tsock_get(u, &ctx->local);
		if (fd < 0) {
			u->m->send_errors++;
			return;
		}
	} else {
		/* sent to us: answer from the address it reached us on (a link-local one on its link) */
		bool ll = ctx->local.sa.sa_family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(&ctx->local.sin6.sin6_addr);

		cmsglen = sock_pktinfo(cbuf.buf, ctx->local.sa.sa_family, &ctx->local, ll ? ctx->ifindex : 0);
	}
	dgram_send(&u->out, fd, &ctx->peer, cbuf.buf, cmsglen, msg, len);
}

/* Fill @ctx->local and ifindex from the control messages of a received datagram. */
static void read_cmsgs(struct msghdr *mh, struct udp_ctx *ctx)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_ORIGDSTADDR &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(struct sockaddr_in))) {
			memcpy(&ctx->local.sin, CMSG_DATA(cm), sizeof(struct sockaddr_in));
		} else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_ORIGDSTADDR &&
			   cm->cmsg_len >= CMSG_LEN(sizeof(struct sockaddr_in6))) {
			memcpy(&ctx->local.sin6, CMSG_DATA(cm), sizeof(struct sockaddr_in6));
		} else if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO &&
			   cm->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
			struct in_pktinfo pi;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			ctx->ifindex = pi.ipi_ifindex;
			if (ctx->local.sa.sa_family != AF_INET) {
				ctx->local.sin.sin_family = AF_INET;
				ctx->local.sin.sin_addr = pi.ipi_addr;
				ctx->local.sin.sin_port = htons(ctx->lport);
			}
		} else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO &&
			   cm->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
			struct in6_pktinfo pi;

			memcpy(&pi, CMSG_DATA(cm), sizeof(pi));
			ctx->ifindex = (int)pi.ipi6_ifindex;
			if (ctx->local.sa.sa_family != AF_INET6) {
				ctx->local.sin6.sin6_family = AF_INET6;
				ctx->local.sin6.sin6_addr = pi.ipi6_addr;
				ctx->local.sin6.sin6_port = htons(ctx->lport);
			}
		}
	}
}

static void udp_readable(struct loop *l, int fd, void *arg, uint32_t events)
{
	struct udp_sock *s = arg;
	struct udp_frontend *u = s->u;

	(void)l;
	(void)events;
	/* a few batches, then let the other sockets have their turn */
	for (int round = 0; round < 8; round++) {
		int n;

		for (int i = 0; i < UDP_BATCH; i++) {
			struct msghdr *mh = &u->msgs[i].msg_hdr;

			u->iov[i].iov_base = u->bufs[i];
			u->iov[i].iov_len = UDP_BUF;
			mh->msg_name = &u->peers[i];
			mh->msg_namelen = sizeof(u->peers[i]);
			mh->msg_iov = &u->iov[i];
			mh->msg_iovlen = 1;
			mh->msg_control = u->cmsg[i];
			mh->msg_controllen = sizeof(u->cmsg[i]);
			mh->msg_flags = 0;
		}
		n = recvmmsg(fd, u->msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			struct msghdr *mh = &u->msgs[i].msg_hdr;
			struct udp_ctx ctx;

			if (mh->msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
				u->m->queries[MT_UDP]++;
				u->mp->queries[metrics_family(&u->peers[i])]++;
				u->m->malformed++;
				continue;
			}
			memset(&ctx, 0, sizeof(ctx));
			ctx.peer = u->peers[i];
			ctx.fd = fd;
			ctx.lport = s->port;
			read_cmsgs(mh, &ctx);
			if (!ctx.local.sa.sa_family) {
				u->m->send_errors++;	/* no way to answer from the right address */
				continue;
			}
			u->mp->queries[metrics_family(&ctx.peer)]++;
			query_receive(u->qt, &u->fe, &ctx, sizeof(ctx), u->bufs[i], u->msgs[i].msg_len,
				      QUERY_UDP_MAX, &ctx.peer);
		}
		if (n < UDP_BATCH)
			return;
	}
}

static const struct frontend_ops udp_ops = {
	.name = "udp",
	.transport = MT_UDP,
	.reply = udp_reply,
};

struct udp_frontend *udp_frontend_new(struct loop *l, const struct config *cfg, struct qtable *qt,
				      struct metrics *m, char *err, size_t errlen)
{
	struct listen_sock socks[CFG_MAX_LISTEN];
	struct udp_frontend *u = calloc(1, sizeof(*u));
	int n;

	if (!u) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n = listen_open(cfg, SOCK_DGRAM, socks, err, errlen);
	if (n < 0) {
		free(u);
		return NULL;
	}
	u->fe.ops = &udp_ops;
	u->loop = l;
	u->qt = qt;
	u->m = m;
	u->transparent = cfg->mode == MODE_TPROXY;
	u->mp = &m->path[u->transparent ? MF_TPROXY : MF_REDIRECT][MT_UDP];
	u->mp->used = true;
	u->mark = cfg->mark;
	dgram_init(&u->out, l, &m->send_errors);
	for (int i = 0; i < TSOCK_CACHE; i++)
		u->tsocks[i].fd = -1;
	for (int i = 0; i < n; i++) {
		u->socks[u->nsocks].u = u;
		u->socks[u->nsocks].port = sock_port(&socks[i].addr);
		if (loop_io_add(l, &u->socks[u->nsocks].io, socks[i].fd, EPOLLIN, udp_readable,
				&u->socks[u->nsocks]) < 0) {
			snprintf(err, errlen, "epoll: %s", strerror(errno));
			listen_close(socks + i, n - i);
			udp_frontend_free(l, u);
			return NULL;
		}
		u->nsocks++;
	}
	return u;
}

void udp_frontend_free(struct loop *l, struct udp_frontend *u)
{
	if (!u)
		return;
	if (u->out.loop)
		dgram_flush(&u->out);	/* what is answered goes out before the sockets close */
	for (int i = 0; i < u->nsocks; i++) {
		int fd = u->socks[i].io.fd;

		loop_io_del(l, &u->socks[i].io);
		close(fd);
	}
	for (int i = 0; i < TSOCK_CACHE; i++)
		if (u->tsocks[i].fd >= 0)
			close(u->tsocks[i].fd);
	free(u);
}

/*
 * nfq.c - the NFQUEUE front-end. The queue's netlink socket sits in the
 * daemon's epoll loop; packets are read in batches, every one of them gets
 * verdict DROP in one NFQNL_MSG_VERDICT_BATCH per batch, and UDP DNS queries
 * go to the query table. Answers are built by pkt.c and sent through raw
 * sockets that carry the daemon's SO_MARK (so the rules never queue them)
 * out of the interface the query came in on. Anything that is not a
 * parseable query is dropped and counted, never passed on in plaintext.
 */
#define _GNU_SOURCE
#include "nfq.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dgram.h"
#include "dns.h"
#include "log.h"
#include "pkt.h"

#define NFQ_BATCH	16	/* packets per recvmmsg */
/* Copy range: a query of QUERY_MAX_LEN behind IPv6, UDP and a few extension headers. */
#define NFQ_COPY	(QUERY_MAX_LEN + PKT_IP6_HDR + PKT_UDP_HDR + 256)
#define NFQ_BUF		(NFQ_COPY + 512)	/* + netlink header and attributes */
#define NFQ_RCVBUF_MIN	(4 << 20)	/* socket buffer: at least this ... */
#define NFQ_RCVBUF_PER	2048		/* ... or this per --queue-len packet, up to ... */
#define NFQ_RCVBUF_MAX	(256 << 20)
#define NFQ_RETRY_MS	10		/* a refused verdict is sent again after */
#define NFQ_MTU_CACHE	16	/* interfaces whose MTU we remember */
#define NFQ_MTU_TTL	10	/* seconds an MTU is trusted */
#define NFQ_MTU_DEFAULT	1500
#define NFQ_UIDS	32	/* distinct UIDs counted by name; the rest are "other" */

/* Why a queued packet was dropped without an answer. */
enum nfq_drop { ND_MALFORMED, ND_FRAGMENT, ND_NOT_UDP, ND_OVERSIZE, ND_COUNT };
static const char *const drop_names[ND_COUNT] = { "malformed", "fragment", "not_udp", "oversize" };

struct nfq_ctx {
	union sockaddr_any client;	/* the query's source: where the answer goes */
	union sockaddr_any server;	/* its destination: where the answer comes from */
	int ifindex;			/* where it came in, where the answer goes out; 0: from this host */
	int scope;			/* the link of a link-local client (host scope: its outgoing one) */
};
_Static_assert(sizeof(struct nfq_ctx) <= FRONTEND_CTX_SIZE, "nfq_ctx too large");

struct mtu_entry {
	int ifindex;			/* 0: empty */
	unsigned mtu4, mtu6;		/* the device's MTU, and IPv6's own (RA or sysctl) */
	time_t expires;
};

struct uid_count {
	uint32_t uid;
	uint64_t n;
};

struct nfq_frontend {
	struct frontend fe;
	struct loop *loop;
	struct qtable *qt;
	struct metrics *m;
	struct metrics_path *mp;	/* its queries and answers */
	struct mnl_socket *nl;
	struct loop_io io;
	uint16_t queue;
	bool fail_open;
	int raw4, raw6;			/* answer sockets (IPPROTO_RAW: we write the IP header) */
	struct nfq_batch batch;
	struct loop_timer retry;	/* resends a refused verdict */
	uint32_t last_id;		/* highest packet ID read, to see the ones never delivered */
	bool have_id;
	uint32_t nl_seq;		/* sequence number of our config requests */
	bool bound;			/* the queue is ours */
	struct mtu_entry mtus[NFQ_MTU_CACHE];
	int stats;			/* NFQ_STATS, opened before privileges are dropped */
	/* counters */
	uint64_t packets;		/* packets read from the queue */
	uint64_t drops[ND_COUNT];
	uint64_t enobufs;		/* times the socket overflowed: packets lost in the kernel */
	uint64_t lost;			/* packets queued for us but never delivered (IDs skipped) */
	uint64_t verdict_errors;	/* verdict messages the kernel refused */
	uint64_t uid_none, uid_other;	/* queries without a local sender; beyond NFQ_UIDS */
	struct uid_count uids[NFQ_UIDS];
	int nuids;
	/* recvmmsg batch and the answer packet */
	struct mmsghdr msgs[NFQ_BATCH];
	struct iovec iov[NFQ_BATCH];
	_Alignas(8) uint8_t bufs[NFQ_BATCH][NFQ_BUF];	/* netlink messages are 4-byte aligned */
	struct dgram_batch answers;	/* answers, sent after each loop iteration */
	uint8_t out[65535];
};

/* ------------------------------------------------------------ messages */

/*
 * Keep the attributes we read in @data (a table NFQA_MAX + 1 long), each
 * checked for its size; unknown (newer) types are skipped.
 */
static int packet_attr(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	uint16_t type = mnl_attr_get_type(a);

	if (mnl_attr_type_valid(a, NFQA_MAX) < 0)
		return MNL_CB_OK;
	switch (type) {
	case NFQA_PACKET_HDR:
		if (mnl_attr_validate2(a, MNL_TYPE_UNSPEC, sizeof(struct nfqnl_msg_packet_hdr)) < 0)
			return MNL_CB_ERROR;
		break;
	case NFQA_MARK:
	case NFQA_IFINDEX_INDEV:
	case NFQA_IFINDEX_OUTDEV:
	case NFQA_CAP_LEN:
	case NFQA_SKB_INFO:
	case NFQA_UID:
	case NFQA_GID:
		if (mnl_attr_validate(a, MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		break;
	default:
		break;
	}
	tb[type] = a;
	return MNL_CB_OK;
}

int nfq_parse_packet(const struct nlmsghdr *nlh, struct nfq_packet *p)
{
	const struct nlattr *attr[NFQA_MAX + 1] = { 0 };
	const struct nfqnl_msg_packet_hdr *ph;
	size_t off = MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct nfgenmsg));

	memset(p, 0, sizeof(*p));
	/*
	 * The kernel does not pad the payload attribute, so nlmsg_len may end
	 * mid-word: walk exactly nlmsg_len bytes (nfq_nlmsg_parse() would walk
	 * to the next word boundary, past what was received).
	 */
	int rc;

	if (nlh->nlmsg_len < off || NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_QUEUE ||
	    NFNL_MSG_TYPE(nlh->nlmsg_type) != NFQNL_MSG_PACKET)
		return -EINVAL;
	/* the kernel puts the packet header first: a bad later attribute still leaves the ID */
	rc = mnl_attr_parse_payload((const uint8_t *)nlh + off, nlh->nlmsg_len - off, packet_attr, attr);
	if (!attr[NFQA_PACKET_HDR])
		return -EINVAL;
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	p->id = ntohl(ph->packet_id);
	if (rc < 0 || !attr[NFQA_PAYLOAD])
		return -EBADMSG;
	p->hw_protocol = ntohs(ph->hw_protocol);
	p->data = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
	p->len = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
	if (attr[NFQA_CAP_LEN])
		p->truncated = ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])) > p->len;
	if (attr[NFQA_SKB_INFO])
		p->csum_not_ready = ntohl(mnl_attr_get_u32(attr[NFQA_SKB_INFO])) & NFQA_SKB_CSUMNOTREADY;
	if (attr[NFQA_IFINDEX_INDEV])
		p->indev = ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_INDEV]));
	if (attr[NFQA_IFINDEX_OUTDEV])
		p->outdev = ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_OUTDEV]));
	if (attr[NFQA_UID] && attr[NFQA_GID]) {
		p->has_uid = true;
		p->uid = ntohl(mnl_attr_get_u32(attr[NFQA_UID]));
		p->gid = ntohl(mnl_attr_get_u32(attr[NFQA_GID]));
	}
	return 0;
}

void nfq_walk(struct nfq_walk *w, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	/* our own walk: libmnl's trusts nlmsg_len as a signed int */
	while (len > 0) {
		const struct nlmsghdr *nlh = (const struct nlmsghdr *)p;
		struct nfq_packet pk;
		size_t step;
		int rc;

		if (len < sizeof(*nlh) || nlh->nlmsg_len < sizeof(*nlh) || nlh->nlmsg_len > len) {
			w->malformed++;
			return;
		}
		/* the last message may end unpadded */
		step = MNL_ALIGN((size_t)nlh->nlmsg_len);
		if (step > len)
			step = len;
		rc = nfq_parse_packet(nlh, &pk);
		if (rc == 0 || rc == -EBADMSG) {
			w->packet(&pk, w->arg);
		} else if (nlh->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);

			if (nlh->nlmsg_len < sizeof(*nlh) + sizeof(*e) || e->error != 0)
				w->errors++;
		} else if (nlh->nlmsg_type != NLMSG_NOOP && nlh->nlmsg_type != NLMSG_DONE) {
			w->malformed++;
		}
		p += step;
		len -= step;
	}
}

void nfq_batch_add(struct nfq_batch *b, uint32_t id)
{
	/* the kernel's IDs grow by one per queued packet and wrap */
	if (!b->pending || (int32_t)(id - b->last_id) > 0)
		b->last_id = id;
	b->pending = true;
}

size_t nfq_batch_build(const struct nfq_batch *b, uint16_t queue, void *buf)
{
	struct nlmsghdr *nlh;

	if (!b->pending)
		return 0;
	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT_BATCH, queue);
	nfq_nlmsg_verdict_put(nlh, (int)b->last_id, NF_DROP);
	return nlh->nlmsg_len;
}

void nfq_batch_done(struct nfq_batch *b)
{
	b->pending = false;
}

/* ---------------------------------------------------------------- answers */

/* IPv6's MTU of interface @name (it may be below the device's), or @dflt. */
static unsigned ipv6_mtu(const char *name, unsigned dflt)
{
	char path[64 + IF_NAMESIZE];
	unsigned v = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/mtu", name);
	fp = fopen(path, "re");
	if (!fp)
		return dflt;
	if (fscanf(fp, "%u", &v) != 1 || v == 0)
		v = dflt;
	fclose(fp);
	return v;
}

/*
 * Largest UDP payload that one packet out of @ifindex carries (0: to this
 * host). Raw packets are never fragmented by the kernel: an answer larger
 * than this is truncated (TC) and the client retries over TCP.
 */
static size_t answer_room(struct nfq_frontend *f, int ifindex, int family)
{
	struct mtu_entry *e = &f->mtus[(unsigned)ifindex % NFQ_MTU_CACHE];
	time_t now = time(NULL);
	size_t mtu = 0xffff, hdr = pkt_hdr_len(family);

	if (ifindex > 0) {
		if (e->ifindex != ifindex || now >= e->expires) {
			int fd = f->raw4 >= 0 ? f->raw4 : f->raw6;
			struct ifreq ifr;

			memset(&ifr, 0, sizeof(ifr));
			ifr.ifr_ifindex = ifindex;
			e->ifindex = ifindex;
			e->expires = now + NFQ_MTU_TTL;
			e->mtu4 = e->mtu6 = NFQ_MTU_DEFAULT;
			if (ioctl(fd, SIOCGIFNAME, &ifr) == 0) {
				if (ioctl(fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0)
					e->mtu4 = (unsigned)ifr.ifr_mtu;
				e->mtu6 = ipv6_mtu(ifr.ifr_name, e->mtu4);
			}
		}
		mtu = family == AF_INET6 ? e->mtu6 : e->mtu4;
	}
	if (mtu > 0xffff)
		mtu = 0xffff;	/* the largest IP packet pkt_build_udp() makes */
	return mtu > hdr + DNS_UDP_MIN ? mtu - hdr : DNS_UDP_MIN;
}

static void nfq_reply(struct frontend *fe, const void *ctxp, const uint8_t *msg, size_t len)
{
	struct nfq_frontend *f = (struct nfq_frontend *)fe;
	const struct nfq_ctx *ctx = ctxp;
	bool v6 = ctx->client.sa.sa_family == AF_INET6;
	union sockaddr_any to = ctx->client;
	union {
		struct cmsghdr align;
		uint8_t buf[SOCK_PKTINFO_SPACE];
	} cbuf;
	int fd = v6 ? f->raw6 : f->raw4, oif = ctx->ifindex;

	metrics_path_answer(f->mp, metrics_family(&ctx->client), msg, len);
	len = pkt_build_udp(f->out, sizeof(f->out), &ctx->server, &ctx->client, msg, len);
	if (len == 0 || fd < 0) {
		f->m->send_errors++;
		return;
	}
	if (v6) {
		to.sin6.sin6_port = 0;	/* raw IPv6: the port field is the protocol, or 0 */
		if (IN6_IS_ADDR_LINKLOCAL(&to.sin6.sin6_addr)) {
			to.sin6.sin6_scope_id = (uint32_t)ctx->scope;
			oif = ctx->scope;
		}
	} else {
		to.sin.sin_port = 0;
	}
	/* out of the interface the query came in on (the source is in the packet) */
	dgram_send(&f->answers, fd, &to, cbuf.buf,
		   oif > 0 ? sock_pktinfo(cbuf.buf, ctx->client.sa.sa_family, NULL, oif) : 0, f->out, len);
}

/* ---------------------------------------------------------------- queries */

static void count_uid(struct nfq_frontend *f, const struct nfq_packet *p)
{
	if (!p->has_uid) {
		f->uid_none++;
		return;
	}
	for (int i = 0; i < f->nuids; i++) {
		if (f->uids[i].uid == p->uid) {
			f->uids[i].n++;
			return;
		}
	}
	if (f->nuids == NFQ_UIDS) {
		f->uid_other++;
		return;
	}
	f->uids[f->nuids].uid = p->uid;
	f->uids[f->nuids++].n = 1;
}

/* Whether @a is a loopback address: never the source of a packet from outside. */
static bool loopback(const union sockaddr_any *a)
{
	if (a->sa.sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&a->sin6.sin6_addr) ||
		       (IN6_IS_ADDR_V4MAPPED(&a->sin6.sin6_addr) && a->sin6.sin6_addr.s6_addr[12] == 127);
	return (ntohl(a->sin.sin_addr.s_addr) >> 24) == 127;
}

/* Decide the fate of one queued packet: it is dropped either way; a query is answered. */
static void handle_packet(struct nfq_frontend *f, const struct nfq_packet *p)
{
	struct pkt_udp u;
	struct nfq_ctx ctx;
	enum pkt_result rc;

	f->packets++;
	if (!p->data) {
		f->drops[ND_MALFORMED]++;
		return;
	}
	if (p->truncated) {
		f->drops[ND_OVERSIZE]++;
		return;
	}
	rc = pkt_parse_udp(p->data, p->len, !p->csum_not_ready, &u);
	/* from outside with a loopback source: a martian the kernel would drop after us */
	if (rc == PKT_OK && p->indev && loopback(&u.src))
		rc = PKT_MALFORMED;
	if (rc != PKT_OK) {
		f->drops[rc == PKT_FRAGMENT ? ND_FRAGMENT : rc == PKT_NOT_UDP ? ND_NOT_UDP : ND_MALFORMED]++;
		return;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.client = u.src;
	ctx.server = u.dst;
	ctx.ifindex = (int)p->indev;
	ctx.scope = (int)(p->indev ? p->indev : p->outdev);
	f->mp->queries[metrics_family(&ctx.client)]++;
	if (query_receive(f->qt, &f->fe, &ctx, sizeof(ctx), u.payload, u.len,
			  answer_room(f, ctx.ifindex, u.src.sa.sa_family), &ctx.client) < 0)
		return;		/* not a query: dropped and counted there */
	count_uid(f, p);
	if (p->has_uid && log_debug_enabled())
		log_debug("nfq: query from uid %" PRIu32 " gid %" PRIu32, p->uid, p->gid);
}

static void on_packet(const struct nfq_packet *p, void *arg)
{
	struct nfq_frontend *f = arg;

	/* IDs grow by one per queued packet: a gap is packets the socket had no room for */
	if (f->have_id && (int32_t)(p->id - f->last_id) > 1)
		f->lost += p->id - f->last_id - 1;
	if (!f->have_id || (int32_t)(p->id - f->last_id) > 0)
		f->last_id = p->id;
	f->have_id = true;
	nfq_batch_add(&f->batch, p->id);
	handle_packet(f, p);
}

static void send_verdicts(struct nfq_frontend *f)
{
	uint8_t buf[NFQ_VERDICT_BUF];
	size_t n = nfq_batch_build(&f->batch, f->queue, buf);

	if (!n)
		return;
	if (mnl_socket_sendto(f->nl, buf, n) < 0) {
		/* the packets stay queued: the next batch's verdict covers them, or the retry */
		f->verdict_errors++;
		if (!loop_timer_armed(&f->retry))
			(void)loop_timer_set(f->loop, &f->retry, NFQ_RETRY_MS);
		return;
	}
	nfq_batch_done(&f->batch);
}

static void on_retry(struct loop *l, void *arg)
{
	(void)l;
	send_verdicts(arg);
}

static void nfq_readable(struct loop *l, int fd, void *arg, uint32_t events)
{
	struct nfq_frontend *f = arg;
	struct nfq_walk walk = { .packet = on_packet, .arg = f };
	struct sockaddr_nl from[NFQ_BATCH];

	(void)l;
	(void)events;
	for (int round = 0; round < 8; round++) {
		int n;

		for (int i = 0; i < NFQ_BATCH; i++) {
			f->iov[i].iov_base = f->bufs[i];
			f->iov[i].iov_len = NFQ_BUF;
			memset(&f->msgs[i].msg_hdr, 0, sizeof(f->msgs[i].msg_hdr));
			f->msgs[i].msg_hdr.msg_name = &from[i];
			f->msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
			f->msgs[i].msg_hdr.msg_iov = &f->iov[i];
			f->msgs[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(fd, f->msgs, NFQ_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0 && errno == ENOBUFS) {
			/* the kernel could not hand us some packets: dropped there (with
			 * --fail-open, let through); the gap in their IDs counts them */
			f->enobufs++;
			continue;
		}
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++) {
			/* only the kernel (port 0) speaks for the queue */
			if (from[i].nl_pid != 0)
				continue;
			if (f->msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
				f->packets++;	/* cannot happen with our copy range; counted if it does */
				f->drops[ND_OVERSIZE]++;
				continue;
			}
			nfq_walk(&walk, f->bufs[i], f->msgs[i].msg_len);
		}
		send_verdicts(f);
		if (n < NFQ_BATCH)
			break;
	}
	f->verdict_errors += walk.errors;
	f->drops[ND_MALFORMED] += walk.malformed;
}

/* ------------------------------------------------------------------ setup */

static const struct frontend_ops nfq_ops = {
	.name = "nfqueue",
	.transport = MT_UDP,
	.reply = nfq_reply,
};

/*
 * The kernel's own view of @queue from /proc/net/netfilter/nfnetlink_queue:
 * "queue portid waiting copy_mode copy_range queue_dropped user_dropped id 1".
 */
struct queue_stats {
	unsigned long long portid, waiting, full, user;
};

#define NFQ_STATS	"/proc/net/netfilter/nfnetlink_queue"

/*
 * @fd: the file kept open (read again from its start), or -1 to open it now:
 * it is root's only (0440), and the daemon drops root once set up.
 */
static bool kernel_stats(int fd, uint16_t queue, struct queue_stats *st)
{
	unsigned long long q, mode, range, id;
	char buf[4096], *line, *nl;
	size_t have = 0;
	bool found = false;
	int own = -1;

	if (fd < 0)
		fd = own = open(NFQ_STATS, O_RDONLY | O_CLOEXEC);
	else if (lseek(fd, 0, SEEK_SET) < 0)
		return false;
	if (fd < 0)
		return false;
	while (!found && have < sizeof(buf) - 1) {
		ssize_t n = read(fd, buf + have, sizeof(buf) - 1 - have);

		if (n <= 0)
			break;
		have += (size_t)n;
		buf[have] = '\0';
		for (line = buf; !found && (nl = strchr(line, '\n')); line = nl + 1) {
			*nl = '\0';
			found = sscanf(line, "%llu %llu %llu %llu %llu %llu %llu %llu", &q, &st->portid,
				       &st->waiting, &mode, &range, &st->full, &st->user, &id) == 8 && q == queue;
		}
		have -= (size_t)(line - buf);	/* a line not read whole yet */
		memmove(buf, line, have);
	}
	if (own >= 0)
		close(own);
	return found;
}

/*
 * Send one config message and wait for the kernel's acknowledgement; packets
 * the kernel queues meanwhile are handled as usual. Returns 0 or -errno.
 */
static int config_request(struct nfq_frontend *f, struct nlmsghdr *nlh)
{
	struct nfq_walk walk = { .packet = on_packet, .arg = f };
	uint32_t seq = ++f->nl_seq;

	nlh->nlmsg_flags |= NLM_F_ACK;
	nlh->nlmsg_seq = seq;
	if (mnl_socket_sendto(f->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(f->nl, f->bufs[0], NFQ_BUF);
		const uint8_t *p = f->bufs[0];

		if (n < 0 && errno == ENOBUFS) {
			f->enobufs++;	/* packets lost while binding: counted as at run time */
			continue;
		}
		if (n < 0)
			return -errno;
		/* the acknowledgement, or packets to handle before it */
		for (size_t left = (size_t)n; left >= sizeof(struct nlmsghdr);) {
			const struct nlmsghdr *m = (const struct nlmsghdr *)p;
			size_t step = MNL_ALIGN((size_t)m->nlmsg_len);

			if (m->nlmsg_len < sizeof(*m) || m->nlmsg_len > left)
				break;
			if (m->nlmsg_type == NLMSG_ERROR && m->nlmsg_seq == seq &&
			    m->nlmsg_len >= sizeof(*m) + sizeof(struct nlmsgerr)) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(m);

				send_verdicts(f);
				return e->error;
			}
			nfq_walk(&walk, p, m->nlmsg_len);
			if (step >= left)
				break;
			p += step;
			left -= step;
		}
		send_verdicts(f);
	}
}

static int open_raw(int family, uint32_t mark)
{
	int fd = socket(family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);

	if (fd < 0)
		return -errno;
	if (mark && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/* Undo nfq_frontend_new(), whatever part of it was done. */
static void destroy(struct nfq_frontend *f)
{
	if (f->io.fd >= 0)
		loop_io_del(f->loop, &f->io);
	loop_timer_cancel(f->loop, &f->retry);
	if (f->bound) {
		uint8_t buf[256];
		struct nlmsghdr *nlh;

		send_verdicts(f);
		/* what is still queued is dropped by the kernel when the queue goes */
		nlh = nfq_nlmsg_put((char *)buf, NFQNL_MSG_CONFIG, f->queue);
		nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_UNBIND);
		(void)mnl_socket_sendto(f->nl, nlh, nlh->nlmsg_len);
	}
	if (f->answers.loop)
		dgram_flush(&f->answers);	/* what is answered goes out before the sockets close */
	if (f->nl)
		mnl_socket_close(f->nl);
	if (f->raw4 >= 0)
		close(f->raw4);
	if (f->raw6 >= 0)
		close(f->raw6);
	if (f->stats >= 0)
		close(f->stats);
	free(f);
}

struct nfq_frontend *nfq_frontend_new(struct loop *l, const struct config *cfg, struct qtable *qt,
				      struct metrics *m, char *err, size_t errlen)
{
	uint8_t buf[256];
	struct nlmsghdr *nlh;
	struct nfq_frontend *f = calloc(1, sizeof(*f));
	uint32_t flags;
	int rc, rcvbuf;

	if (!f) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	f->fe.ops = &nfq_ops;
	f->loop = l;
	f->qt = qt;
	f->m = m;
	f->mp = &m->path[MF_NFQUEUE][MT_UDP];
	f->mp->used = true;
	f->queue = cfg->queue;
	f->fail_open = cfg->fail_open;
	f->raw4 = f->raw6 = f->stats = -1;
	f->io.fd = -1;
	loop_timer_init(&f->retry, on_retry, f);
	dgram_init(&f->answers, l, &m->send_errors);

	f->raw4 = open_raw(AF_INET, cfg->mark);
	if (f->raw4 < 0) {
		snprintf(err, errlen, "--mode nfqueue: raw IPv4 socket for answers: %s", strerror(-f->raw4));
		goto out_free;
	}
	f->raw6 = open_raw(AF_INET6, cfg->mark);
	if (f->raw6 == -EAFNOSUPPORT) {
		log_warnx("IPv6 is not available: answering IPv4 queries only");
	} else if (f->raw6 < 0) {
		snprintf(err, errlen, "--mode nfqueue: raw IPv6 socket for answers: %s", strerror(-f->raw6));
		goto out_free;
	}

	f->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!f->nl || mnl_socket_bind(f->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, errlen, "--mode nfqueue: netlink socket: %s", strerror(errno));
		goto out_free;
	}
	/* a burst as long as the queue waits in the socket rather than overflowing it (ENOBUFS) */
	rcvbuf = cfg->queue_len > NFQ_RCVBUF_MAX / NFQ_RCVBUF_PER ? NFQ_RCVBUF_MAX :
		 (int)cfg->queue_len * NFQ_RCVBUF_PER < NFQ_RCVBUF_MIN ? NFQ_RCVBUF_MIN :
		 (int)cfg->queue_len * NFQ_RCVBUF_PER;
	if (setsockopt(mnl_socket_get_fd(f->nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		(void)setsockopt(mnl_socket_get_fd(f->nl), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	/*
	 * One message binds and configures: the kernel checks the flags first, and
	 * no packet is queued to us before the copy range and flags are in place.
	 * Whole queries only; UID/GID of local senders; what overflows the queue.
	 */
	nlh = nfq_nlmsg_put((char *)buf, NFQNL_MSG_CONFIG, f->queue);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, NFQ_COPY);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, cfg->queue_len);
	flags = NFQA_CFG_F_UID_GID | (cfg->fail_open ? NFQA_CFG_F_FAIL_OPEN : 0);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_UID_GID | NFQA_CFG_F_FAIL_OPEN));
	rc = config_request(f, nlh);
	if (rc < 0) {
		struct queue_stats st;

		/* the kernel says EPERM both for a queue someone else reads and for no privilege */
		if (rc == -EPERM && kernel_stats(-1, f->queue, &st) && st.portid != 0)
			snprintf(err, errlen, "--queue %u: another program reads this netfilter queue "
				 "(netlink port %llu)", f->queue, st.portid);
		else
			snprintf(err, errlen, "--queue %u: cannot bind the netfilter queue: %s%s", f->queue,
				 strerror(-rc), rc == -EPERM ? " (needs root or CAP_NET_ADMIN)" : "");
		goto out_free;	/* closing our socket unbinds whatever it bound */
	}
	f->bound = true;
	f->stats = open(NFQ_STATS, O_RDONLY | O_CLOEXEC);	/* -1: the metrics leave them out */
	if (sock_nonblock(mnl_socket_get_fd(f->nl)) < 0 ||
	    loop_io_add(l, &f->io, mnl_socket_get_fd(f->nl), EPOLLIN, nfq_readable, f) < 0) {
		snprintf(err, errlen, "--mode nfqueue: epoll: %s", strerror(errno));
		goto out_free;
	}
	return f;

out_free:
	destroy(f);
	return NULL;
}

void nfq_frontend_free(struct loop *l, struct nfq_frontend *f)
{
	(void)l;
	if (f)
		destroy(f);
}

/* ---------------------------------------------------------------- metrics */

void nfq_render(const struct nfq_frontend *f, struct strbuf *sb)
{
	struct queue_stats st;

	if (!f)
		return;
	metrics_counter(sb, "dotproxy_nfq_packets_total", "Packets read from the netfilter queue.", f->packets);
	strbuf_printf(sb, "# HELP dotproxy_nfq_dropped_total Queued packets dropped unanswered, by reason.\n"
			  "# TYPE dotproxy_nfq_dropped_total counter\n");
	for (int i = 0; i < ND_COUNT; i++)
		strbuf_printf(sb, "dotproxy_nfq_dropped_total{reason=\"%s\"} %llu\n", drop_names[i],
			      (unsigned long long)f->drops[i]);
	metrics_counter(sb, "dotproxy_nfq_enobufs_total", "Times the queue socket overflowed.", f->enobufs);
	metrics_counter(sb, "dotproxy_nfq_lost_total",
			"Packets queued for the daemon that never reached it (socket full): dropped by the kernel, "
			"or let through in plaintext with --fail-open.", f->lost);
	metrics_counter(sb, "dotproxy_nfq_verdict_errors_total", "Verdict messages the kernel refused.",
			f->verdict_errors);
	strbuf_printf(sb, "# HELP dotproxy_nfq_queries_total Queries from the queue by the local sender's UID "
			  "(\"none\": forwarded, \"other\": past %d UIDs).\n"
			  "# TYPE dotproxy_nfq_queries_total counter\n", NFQ_UIDS);
	for (int i = 0; i < f->nuids; i++)
		strbuf_printf(sb, "dotproxy_nfq_queries_total{uid=\"%" PRIu32 "\"} %llu\n", f->uids[i].uid,
			      (unsigned long long)f->uids[i].n);
	strbuf_printf(sb, "dotproxy_nfq_queries_total{uid=\"none\"} %llu\n"
			  "dotproxy_nfq_queries_total{uid=\"other\"} %llu\n",
		      (unsigned long long)f->uid_none, (unsigned long long)f->uid_other);
	strbuf_printf(sb, "# HELP dotproxy_nfq_fail_open 1 if the kernel lets queries through when the queue is full.\n"
			  "# TYPE dotproxy_nfq_fail_open gauge\ndotproxy_nfq_fail_open %d\n", f->fail_open);
	/*
	 * What the kernel let through unanswered: with NFQA_CFG_F_FAIL_OPEN a packet
	 * that cannot be delivered to our socket still takes a packet ID, so the
	 * gaps count it; one that finds the queue full takes none and no counter
	 * of the kernel's sees it. Without the flag nothing is let through.
	 */
	metrics_counter(sb, "dotproxy_nfq_fail_open_passed_total",
			"With --fail-open: packets the kernel let through unanswered (in plaintext) because the "
			"daemon's socket was full. Those let through because the queue was full are counted "
			"nowhere. Always 0 without --fail-open.", f->fail_open ? f->lost : 0);
	if (kernel_stats(f->stats, f->queue, &st)) {
		strbuf_printf(sb, "# HELP dotproxy_nfq_kernel_waiting Packets in the kernel's queue now.\n"
				  "# TYPE dotproxy_nfq_kernel_waiting gauge\ndotproxy_nfq_kernel_waiting %llu\n", st.waiting);
		strbuf_printf(sb, "# HELP dotproxy_nfq_kernel_dropped_total Packets the kernel dropped: queue full "
				  "(without --fail-open), or not deliverable to the daemon.\n"
				  "# TYPE dotproxy_nfq_kernel_dropped_total counter\n"
				  "dotproxy_nfq_kernel_dropped_total{reason=\"queue_full\"} %llu\n"
				  "dotproxy_nfq_kernel_dropped_total{reason=\"socket_full\"} %llu\n", st.full, st.user);
	}
}

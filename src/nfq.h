/*
 * nfq.h - the NFQUEUE front-end: UDP queries read from a netfilter queue
 * (libmnl + libnetfilter_queue), every queued packet given verdict DROP, each
 * answer injected as a raw IPv4/IPv6 + UDP packet from the address the
 * client asked. Never lets a queued packet through: fail-open is the rules'
 * and the kernel's business (--queue-bypass, NFQA_CFG_F_FAIL_OPEN).
 */
#ifndef DOTPROXY_NFQ_H
#define DOTPROXY_NFQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"
#include "metrics.h"
#include "query.h"

struct nlmsghdr;
struct nfq_frontend;

/* Bind queue cfg->queue and open the raw answer sockets. NULL with one line in @err. */
struct nfq_frontend *nfq_frontend_new(struct loop *l, const struct config *cfg, struct qtable *qt,
				      struct metrics *m, char *err, size_t errlen);
/* Unbind the queue and close everything it opened. */
void nfq_frontend_free(struct loop *l, struct nfq_frontend *f);

/* Append the queue's metrics (ours and the kernel's) in Prometheus text. */
void nfq_render(const struct nfq_frontend *f, struct strbuf *sb);

/* One queued packet as the kernel described it; pointers into the message. */
struct nfq_packet {
	uint32_t id;			/* for the verdict */
	uint16_t hw_protocol;		/* ETH_P_IP, ETH_P_IPV6 (0 if not given) */
	const uint8_t *data;		/* the packet from its IP header on */
	size_t len;
	bool truncated;			/* the packet was longer than the copy range */
	bool csum_not_ready;		/* NFQA_SKB_CSUMNOTREADY: checksums not filled in yet */
	uint32_t indev;			/* interface it came in on; 0: sent by this host */
	uint32_t outdev;		/* interface it was leaving by (host scope), or 0 */
	bool has_uid;			/* NFQA_CFG_F_UID_GID: the local sender's credentials */
	uint32_t uid, gid;
};

/*
 * Read an NFQNL_MSG_PACKET message whose nlmsg_len bytes lie within what was
 * received (nfq_walk() checks) into @p; attributes are read within nlmsg_len.
 * Returns 0; -EBADMSG when the packet ID was read but the rest is unusable
 * (an attribute of the wrong size, no payload: p->id is set, p->data NULL);
 * -EINVAL for any other message or one without a packet header.
 */
int nfq_parse_packet(const struct nlmsghdr *nlh, struct nfq_packet *p);

/* What nfq_walk() found in one received datagram. */
struct nfq_walk {
	/* each packet message whose ID could be read; p->data is NULL if nothing else could */
	void (*packet)(const struct nfq_packet *p, void *arg);
	void *arg;
	uint64_t errors;	/* NLMSG_ERROR messages: a verdict the kernel refused */
	uint64_t malformed;	/* messages that are neither, or do not fit the datagram */
};

/*
 * Walk the netlink messages in @len bytes at @buf (4-byte aligned), checking
 * each length against what is left, and hand every packet message to
 * w->packet. Stops at the first message that does not fit.
 */
void nfq_walk(struct nfq_walk *w, const void *buf, size_t len);

/* Highest packet ID seen since the last verdict (RFC 1982-style wrap). */
struct nfq_batch {
	uint32_t last_id;
	bool pending;
};

void nfq_batch_add(struct nfq_batch *b, uint32_t id);

/*
 * Build the NFQNL_MSG_VERDICT_BATCH message that drops every packet of
 * @queue up to b->last_id into @buf (at least NFQ_VERDICT_BUF bytes).
 * Returns its length, 0 if nothing is pending. The batch stays pending
 * until nfq_batch_done(): a verdict the kernel did not take is sent again.
 */
#define NFQ_VERDICT_BUF 64
size_t nfq_batch_build(const struct nfq_batch *b, uint16_t queue, void *buf);
void nfq_batch_done(struct nfq_batch *b);

#endif

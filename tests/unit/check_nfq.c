/*
 * check_nfq.c - unit tests for the netlink side of src/nfq.c: reading the
 * kernel's NFQNL_MSG_PACKET messages (built here by hand from the layout in
 * linux/netfilter/nfnetlink_queue.h) and the batched DROP verdict (parsed
 * back here attribute by attribute).
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <string.h>

#include "nfq.h"
#include "unit.h"

#define ETH_P_IP_	0x0800
#define ETH_P_IPV6_	0x86dd

static uint8_t buf[8192];
static const uint8_t payload[] = { 0x45, 0, 0, 28, 1, 2, 3, 4, 5, 6, 7, 8 };

/* A packet message as the kernel sends it: nlmsghdr, nfgenmsg, then attributes. */
static struct nlmsghdr *packet_msg(uint16_t type, uint16_t queue)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *g;

	nlh->nlmsg_type = type;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->nfgen_family = AF_UNSPEC;
	g->version = NFNETLINK_V0;
	g->res_id = htons(queue);
	return nlh;
}

static struct nlmsghdr *good_msg(uint32_t id)
{
	struct nlmsghdr *nlh = packet_msg(NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET, 0);
	struct nfqnl_msg_packet_hdr ph = { .packet_id = htonl(id), .hw_protocol = htons(ETH_P_IP_), .hook = 0 };

	mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof(ph), &ph);
	mnl_attr_put_u32(nlh, NFQA_IFINDEX_INDEV, htonl(7));
	mnl_attr_put_u32(nlh, NFQA_IFINDEX_OUTDEV, htonl(8));
	mnl_attr_put(nlh, NFQA_PAYLOAD, sizeof(payload), payload);
	return nlh;
}

START_TEST(packet_message_is_read)
{
	struct nlmsghdr *nlh = good_msg(0xdeadbeef);
	struct nfq_packet p;

	ck_assert_int_eq(nfq_parse_packet(nlh, &p), 0);
	ck_assert_uint_eq(p.id, 0xdeadbeef);
	ck_assert_uint_eq(p.hw_protocol, ETH_P_IP_);
	ck_assert_uint_eq(p.indev, 7);
	ck_assert_uint_eq(p.outdev, 8);
	ck_assert_uint_eq(p.len, sizeof(payload));
	ck_assert_mem_eq(p.data, payload, sizeof(payload));
	/* the payload is read in place, inside the message */
	ck_assert(p.data >= (const uint8_t *)nlh);
	ck_assert(p.data + p.len <= (const uint8_t *)nlh + nlh->nlmsg_len);
	ck_assert(!p.truncated);
	ck_assert(!p.has_uid);
	ck_assert(!p.csum_not_ready);
}
END_TEST

START_TEST(uid_gid_cap_len_and_skb_info_are_read)
{
	struct nlmsghdr *nlh = good_msg(1);
	struct nfq_packet p;

	mnl_attr_put_u32(nlh, NFQA_UID, htonl(1000));
	mnl_attr_put_u32(nlh, NFQA_GID, htonl(100));
	mnl_attr_put_u32(nlh, NFQA_CAP_LEN, htonl(sizeof(payload) + 1));	/* packet longer than its copy */
	mnl_attr_put_u32(nlh, NFQA_SKB_INFO, htonl(NFQA_SKB_CSUMNOTREADY));
	ck_assert_int_eq(nfq_parse_packet(nlh, &p), 0);
	ck_assert(p.has_uid);
	ck_assert_uint_eq(p.uid, 1000);
	ck_assert_uint_eq(p.gid, 100);
	ck_assert(p.truncated);
	ck_assert(p.csum_not_ready);
}
END_TEST

START_TEST(cap_len_equal_to_the_copy_is_not_truncated)
{
	struct nlmsghdr *nlh = good_msg(1);
	struct nfq_packet p;

	mnl_attr_put_u32(nlh, NFQA_CAP_LEN, htonl(sizeof(payload)));
	ck_assert_int_eq(nfq_parse_packet(nlh, &p), 0);
	ck_assert(!p.truncated);
}
END_TEST

START_TEST(unknown_attributes_are_skipped)
{
	struct nlmsghdr *nlh = packet_msg(NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET, 0);
	struct nfqnl_msg_packet_hdr ph = { .packet_id = htonl(5) };
	struct nfq_packet p;

	mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof(ph), &ph);
	mnl_attr_put_u32(nlh, NFQA_MAX + 5, 0x12345678);	/* a newer kernel's attribute */
	mnl_attr_put(nlh, NFQA_PAYLOAD, sizeof(payload), payload);
	ck_assert_int_eq(nfq_parse_packet(nlh, &p), 0);
	ck_assert_uint_eq(p.id, 5);
}
END_TEST

START_TEST(message_without_header_or_payload_is_refused)
{
	struct nlmsghdr *nlh = packet_msg(NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET, 0);
	struct nfqnl_msg_packet_hdr ph = { .packet_id = htonl(5) };
	struct nfq_packet p;

	mnl_attr_put(nlh, NFQA_PAYLOAD, sizeof(payload), payload);
	ck_assert_int_eq(nfq_parse_packet(nlh, &p), -EINVAL);	/* no packet header: no ID */

	nlh = packet_msg(NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET, 0);
	mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof(ph), &ph);
	ck_assert_int_eq(nfq_parse_packet(nlh, &p), -EBADMSG);	/* no payload, but an ID */
	ck_assert_uint_eq(p.id, 5);
}
END_TEST

START_TEST(attributes_of_the_wrong_size_are_refused)
{
	struct nlmsghdr *nlh = packet_msg(NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET, 0);
	uint8_t shortph[3] = { 0, 0, 1 };
	struct nfq_packet p;

	mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof(shortph), shortph);	/* 7 bytes expected */
	mnl_attr_put(nlh, NFQA_PAYLOAD, sizeof(payload), payload);
	ck_assert_int_lt(nfq_parse_packet(nlh, &p), 0);

	nlh = good_msg(9);
	mnl_attr_put(nlh, NFQA_UID, 2, "ab");				/* a u32 of 2 bytes */
	ck_assert_int_eq(nfq_parse_packet(nlh, &p), -EBADMSG);
	ck_assert_uint_eq(p.id, 9);		/* so its verdict can still be given */
	ck_assert_ptr_null(p.data);
}
END_TEST

START_TEST(other_message_types_are_refused)
{
	struct nlmsghdr *nlh = good_msg(1);
	struct nfq_packet p;

	nlh->nlmsg_type = NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_VERDICT;
	ck_assert_int_lt(nfq_parse_packet(nlh, &p), 0);
	nlh->nlmsg_type = NFNL_SUBSYS_ULOG << 8 | NFQNL_MSG_PACKET;
	ck_assert_int_lt(nfq_parse_packet(nlh, &p), 0);
	nlh->nlmsg_type = NLMSG_ERROR;
	ck_assert_int_lt(nfq_parse_packet(nlh, &p), 0);
}
END_TEST

START_TEST(message_too_short_for_its_headers_is_refused)
{
	struct nlmsghdr *nlh = good_msg(1);
	struct nfq_packet p;

	nlh->nlmsg_len = MNL_NLMSG_HDRLEN + 2;	/* not even the nfgenmsg */
	ck_assert_int_lt(nfq_parse_packet(nlh, &p), 0);
}
END_TEST

/* ---- walking a received datagram ---- */

static int walked;
static uint32_t walked_ids[4];
static bool walked_data[4];

static void count_packet(const struct nfq_packet *p, void *arg)
{
	(void)arg;
	if (walked < 4) {
		walked_ids[walked] = p->id;
		walked_data[walked] = p->data != NULL;
	}
	walked++;
}

START_TEST(walk_reads_every_message_of_a_datagram)
{
	static uint8_t dgram[8192];
	struct nfq_walk w = { .packet = count_packet };
	size_t n = 0;

	walked = 0;
	for (uint32_t id = 1; id <= 3; id++) {
		struct nlmsghdr *nlh = good_msg(id);

		memcpy(dgram + n, nlh, nlh->nlmsg_len);
		n += MNL_ALIGN(nlh->nlmsg_len);
	}
	nfq_walk(&w, dgram, n);
	ck_assert_int_eq(walked, 3);
	ck_assert_uint_eq(walked_ids[0], 1);
	ck_assert_uint_eq(walked_ids[2], 3);
	ck_assert_uint_eq(w.malformed, 0);
	ck_assert_uint_eq(w.errors, 0);
}
END_TEST

START_TEST(walk_reads_an_unpadded_last_message)
{
	/* the kernel ends a packet message right after its payload: nlmsg_len % 4 != 0 */
	static const uint8_t odd[] = { 0x45, 0, 0, 21, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17 };
	struct nfq_walk w = { .packet = count_packet };
	struct nlmsghdr *nlh = packet_msg(NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_PACKET, 0);
	struct nfqnl_msg_packet_hdr ph = { .packet_id = htonl(77) };
	uint8_t *exact;
	size_t n;

	mnl_attr_put(nlh, NFQA_PACKET_HDR, sizeof(ph), &ph);
	mnl_attr_put(nlh, NFQA_PAYLOAD, sizeof(odd), odd);
	nlh->nlmsg_len -= 3;				/* unpadded: 21 payload bytes */
	n = nlh->nlmsg_len;
	ck_assert_uint_ne(n % 4, 0);
	exact = malloc(n);				/* nothing readable past the datagram */
	ck_assert_ptr_nonnull(exact);
	memcpy(exact, buf, n);
	walked = 0;
	nfq_walk(&w, exact, n);
	ck_assert_int_eq(walked, 1);
	ck_assert_uint_eq(walked_ids[0], 77);
	ck_assert_uint_eq(w.malformed, 0);

	ck_assert(walked_data[0]);

	/* a payload attribute claiming more than the message holds is not read; the ID still is */
	((struct nlattr *)(exact + n - sizeof(odd) - 4))->nla_len += 4;
	walked = 0;
	nfq_walk(&w, exact, n);
	ck_assert_int_eq(walked, 1);
	ck_assert_uint_eq(walked_ids[0], 77);
	ck_assert(!walked_data[0]);
	free(exact);
}
END_TEST

START_TEST(walk_stops_at_a_length_past_the_datagram)
{
	struct nfq_walk w = { .packet = count_packet };
	struct nlmsghdr *nlh = good_msg(1);
	size_t n = nlh->nlmsg_len;

	walked = 0;
	nlh->nlmsg_len = 0x80000000u;		/* negative as an int */
	nfq_walk(&w, buf, n);
	ck_assert_int_eq(walked, 0);
	ck_assert_uint_eq(w.malformed, 1);

	nlh->nlmsg_len = (uint32_t)n + 4;	/* one word more than received */
	nfq_walk(&w, buf, n);
	ck_assert_int_eq(walked, 0);

	nlh->nlmsg_len = 8;			/* shorter than its own header */
	nfq_walk(&w, buf, n);
	ck_assert_int_eq(walked, 0);
	ck_assert_uint_eq(w.malformed, 3);
}
END_TEST

START_TEST(walk_counts_error_messages)
{
	struct nfq_walk w = { .packet = count_packet };
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct nlmsgerr *e;

	walked = 0;
	nlh->nlmsg_type = NLMSG_ERROR;
	e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
	e->error = -ENOENT;			/* a verdict for a packet the kernel no longer has */
	nfq_walk(&w, buf, nlh->nlmsg_len);
	ck_assert_uint_eq(w.errors, 1);
	e->error = 0;				/* an acknowledgement is not an error */
	nfq_walk(&w, buf, nlh->nlmsg_len);
	ck_assert_uint_eq(w.errors, 1);
	ck_assert_int_eq(walked, 0);
	ck_assert_uint_eq(w.malformed, 0);
}
END_TEST

/* ---- verdicts ---- */

struct verdict {
	uint16_t type, queue;
	uint32_t verdict, id;
	int nattrs;
};

static int verdict_attr(const struct nlattr *a, void *data)
{
	struct verdict *v = data;

	v->nattrs++;
	if (mnl_attr_get_type(a) == NFQA_VERDICT_HDR &&
	    mnl_attr_get_payload_len(a) == sizeof(struct nfqnl_msg_verdict_hdr)) {
		const struct nfqnl_msg_verdict_hdr *vh = mnl_attr_get_payload(a);

		v->verdict = ntohl(vh->verdict);
		v->id = ntohl(vh->id);
	}
	return MNL_CB_OK;
}

static struct verdict read_verdict(const uint8_t *msg, size_t len)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)msg;
	const struct nfgenmsg *g = mnl_nlmsg_get_payload(nlh);
	struct verdict v = { 0 };

	ck_assert(mnl_nlmsg_ok(nlh, (int)len));
	ck_assert_uint_eq(nlh->nlmsg_len, len);
	ck_assert(nlh->nlmsg_flags & NLM_F_REQUEST);
	v.type = nlh->nlmsg_type;
	v.queue = ntohs(g->res_id);
	v.verdict = 0xffffffff;
	ck_assert_int_ge(mnl_attr_parse(nlh, sizeof(*g), verdict_attr, &v), 0);
	return v;
}

START_TEST(empty_batch_sends_nothing)
{
	struct nfq_batch b = { 0 };
	uint8_t out[NFQ_VERDICT_BUF];

	ck_assert_uint_eq(nfq_batch_build(&b, 0, out), 0);
}
END_TEST

START_TEST(batch_drops_up_to_the_highest_id)
{
	struct nfq_batch b = { 0 };
	uint8_t out[NFQ_VERDICT_BUF];
	struct verdict v;
	size_t n;

	nfq_batch_add(&b, 10);
	nfq_batch_add(&b, 12);
	nfq_batch_add(&b, 11);		/* IDs need not come in order within a batch */
	n = nfq_batch_build(&b, 300, out);
	ck_assert_uint_gt(n, 0);
	/* until it is known sent, the same verdict is built again */
	ck_assert_uint_eq(nfq_batch_build(&b, 300, out), n);
	ck_assert_uint_le(n, NFQ_VERDICT_BUF);
	v = read_verdict(out, n);
	ck_assert_uint_eq(v.type, NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_VERDICT_BATCH);
	ck_assert_uint_eq(v.queue, 300);
	ck_assert_uint_eq(v.verdict, NF_DROP);
	ck_assert_uint_eq(v.id, 12);
	ck_assert_int_eq(v.nattrs, 1);	/* no mark, no packet rewrite */
	/* sent: the next build has nothing to say, until more packets come */
	nfq_batch_done(&b);
	ck_assert_uint_eq(nfq_batch_build(&b, 300, out), 0);
	nfq_batch_add(&b, 13);
	ck_assert_uint_eq(read_verdict(out, nfq_batch_build(&b, 300, out)).id, 13);
}
END_TEST

START_TEST(batch_follows_ids_across_the_wrap)
{
	struct nfq_batch b = { 0 };
	uint8_t out[NFQ_VERDICT_BUF];
	size_t n;

	nfq_batch_add(&b, 0xfffffffe);
	nfq_batch_add(&b, 0xffffffff);
	nfq_batch_add(&b, 0);
	nfq_batch_add(&b, 1);
	nfq_batch_add(&b, 0xffffffff);	/* older than 1 after the wrap */
	n = nfq_batch_build(&b, 0, out);
	ck_assert_uint_eq(read_verdict(out, n).id, 1);
}
END_TEST

START_TEST(queue_number_zero_and_max)
{
	struct nfq_batch b = { 0 };
	uint8_t out[NFQ_VERDICT_BUF];
	size_t n;

	nfq_batch_add(&b, 3);
	n = nfq_batch_build(&b, 65535, out);
	ck_assert_uint_eq(read_verdict(out, n).queue, 65535);
	nfq_batch_done(&b);
	nfq_batch_add(&b, 4);
	n = nfq_batch_build(&b, 0, out);
	ck_assert_uint_eq(read_verdict(out, n).queue, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("nfq");
	TCase *msg = tcase_create("messages");
	TCase *verdict = tcase_create("verdicts");

	tcase_add_test(msg, packet_message_is_read);
	tcase_add_test(msg, uid_gid_cap_len_and_skb_info_are_read);
	tcase_add_test(msg, cap_len_equal_to_the_copy_is_not_truncated);
	tcase_add_test(msg, unknown_attributes_are_skipped);
	tcase_add_test(msg, message_without_header_or_payload_is_refused);
	tcase_add_test(msg, attributes_of_the_wrong_size_are_refused);
	tcase_add_test(msg, other_message_types_are_refused);
	tcase_add_test(msg, message_too_short_for_its_headers_is_refused);
	tcase_add_test(msg, walk_reads_every_message_of_a_datagram);
	tcase_add_test(msg, walk_reads_an_unpadded_last_message);
	tcase_add_test(msg, walk_stops_at_a_length_past_the_datagram);
	tcase_add_test(msg, walk_counts_error_messages);
	suite_add_tcase(s, msg);
	tcase_add_test(verdict, empty_batch_sends_nothing);
	tcase_add_test(verdict, batch_drops_up_to_the_highest_id);
	tcase_add_test(verdict, batch_follows_ids_across_the_wrap);
	tcase_add_test(verdict, queue_number_zero_and_max);
	suite_add_tcase(s, verdict);
	return unit_run(s);
}

/*
 * check_dgram.c - unit tests for src/dgram.c over real UDP sockets on
 * loopback: datagrams wait for the end of the loop iteration, then all
 * arrive intact and in order; a full batch goes at once; a large datagram
 * goes alone; a refused one is counted and the others still go; the source
 * address control message is kept per datagram.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dgram.h"
#include "loop.h"
#include "unit.h"

/* A bound, non-blocking receiver on 127.0.0.1 (its address in @addr). */
static int receiver(union sockaddr_any *addr)
{
	socklen_t alen = sizeof(addr->sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0), one = 1;

	ck_assert_int_ge(fd, 0);
	memset(addr, 0, sizeof(*addr));
	addr->sin.sin_family = AF_INET;
	addr->sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, &addr->sa, sizeof(addr->sin)), 0);
	ck_assert_int_eq(getsockname(fd, &addr->sa, &alen), 0);
	ck_assert_int_eq(setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)), 0);
	return fd;
}

static int sender(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	ck_assert_int_ge(fd, 0);
	return fd;
}

/* Receive one datagram into @buf; its length, -1 if none waits. Its source address in @from. */
static ssize_t recv_one(int fd, uint8_t *buf, size_t cap, struct sockaddr_in *from)
{
	socklen_t flen = sizeof(*from);

	return recvfrom(fd, buf, cap, MSG_DONTWAIT, (struct sockaddr *)from, &flen);
}

static void fill(uint8_t *p, size_t n, int seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 31 + i);
}

static void stop_cb(struct loop *l, void *arg)
{
	(void)arg;
	loop_stop(l);
}

/* One loop iteration (a timer ends it): deferred work runs. */
static void one_iteration(struct loop *l)
{
	struct loop_timer t;

	loop_timer_init(&t, stop_cb, NULL);
	ck_assert_int_eq(loop_timer_set(l, &t, 1), 0);
	ck_assert_int_eq(loop_run(l), 0);
}

START_TEST(held_until_the_iteration_ends_then_all_arrive_in_order)
{
	static struct dgram_batch b;
	struct loop *l = loop_new();
	union sockaddr_any a1, a2;
	int r1 = receiver(&a1), r2 = receiver(&a2), s = sender();
	uint64_t errors = 0;
	uint8_t data[600], got[2048];
	struct sockaddr_in from;
	/* to r1, r1, r2, r1: three runs of the same socket-and-destination pattern */
	const int dest[] = { 1, 1, 2, 1 };
	const size_t len[] = { 12, 600, 1, 97 };

	dgram_init(&b, l, &errors);
	for (int i = 0; i < 4; i++) {
		fill(data, len[i], i);
		dgram_send(&b, s, dest[i] == 1 ? &a1 : &a2, NULL, 0, data, len[i]);
		memset(data, 0xee, sizeof(data));	/* the caller's buffer is reused at once */
	}
	ck_assert_int_eq(recv_one(r1, got, sizeof(got), &from), -1);
	ck_assert_int_eq(errno, EAGAIN);
	one_iteration(l);
	for (int i = 0; i < 4; i++) {
		ssize_t n = recv_one(dest[i] == 1 ? r1 : r2, got, sizeof(got), &from);

		ck_assert_int_eq(n, (ssize_t)len[i]);
		fill(data, len[i], i);
		ck_assert_mem_eq(got, data, len[i]);
	}
	ck_assert_int_eq(recv_one(r1, got, sizeof(got), &from), -1);
	ck_assert_int_eq(recv_one(r2, got, sizeof(got), &from), -1);
	ck_assert_uint_eq(errors, 0);
	close(r1);
	close(r2);
	close(s);
	loop_free(l);
}
END_TEST

START_TEST(a_full_batch_goes_at_once_and_nothing_is_lost)
{
	static struct dgram_batch b;
	struct loop *l = loop_new();
	union sockaddr_any a;
	int r = receiver(&a), s = sender(), rcv = 1 << 20;
	uint64_t errors = 0;
	uint8_t data[64], got[128];
	struct sockaddr_in from;
	int n = DGRAM_BATCH * 2 + 5, seen = 0;

	setsockopt(r, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	dgram_init(&b, l, &errors);
	for (int i = 0; i < n; i++) {
		fill(data, sizeof(data), i);
		dgram_send(&b, s, &a, NULL, 0, data, sizeof(data));
	}
	/* two full batches went during the sends; the last 5 wait for the iteration */
	for (; recv_one(r, got, sizeof(got), &from) == (ssize_t)sizeof(data); seen++) {
		fill(data, sizeof(data), seen);
		ck_assert_mem_eq(got, data, sizeof(data));
	}
	ck_assert_int_eq(seen, DGRAM_BATCH * 2);
	one_iteration(l);
	for (; recv_one(r, got, sizeof(got), &from) == (ssize_t)sizeof(data); seen++) {
		fill(data, sizeof(data), seen);
		ck_assert_mem_eq(got, data, sizeof(data));
	}
	ck_assert_int_eq(seen, n);
	ck_assert_uint_eq(errors, 0);
	close(r);
	close(s);
	loop_free(l);
}
END_TEST

START_TEST(a_large_datagram_goes_alone_and_at_once)
{
	static struct dgram_batch b;
	static uint8_t data[9000], got[9000];
	struct loop *l = loop_new();
	union sockaddr_any a;
	int r = receiver(&a), s = sender();
	uint64_t errors = 0;
	struct sockaddr_in from;

	dgram_init(&b, l, &errors);
	fill(data, 40, 1);
	dgram_send(&b, s, &a, NULL, 0, data, 40);
	fill(data, sizeof(data), 2);
	dgram_send(&b, s, &a, NULL, 0, data, DGRAM_ROOM + 1);
	ck_assert_int_eq(recv_one(r, got, sizeof(got), &from), DGRAM_ROOM + 1);
	ck_assert_mem_eq(got, data, DGRAM_ROOM + 1);
	one_iteration(l);
	fill(data, 40, 1);
	ck_assert_int_eq(recv_one(r, got, sizeof(got), &from), 40);
	ck_assert_mem_eq(got, data, 40);
	ck_assert_uint_eq(errors, 0);
	close(r);
	close(s);
	loop_free(l);
}
END_TEST

START_TEST(a_refused_datagram_is_counted_and_the_others_go)
{
	static struct dgram_batch b;
	struct loop *l = loop_new();
	union sockaddr_any a, v6;
	int r = receiver(&a), s = sender(), notsock[2];
	uint64_t errors = 0;
	uint8_t data[32], got[64];
	struct sockaddr_in from;

	ck_assert_int_eq(pipe(notsock), 0);
	memset(&v6, 0, sizeof(v6));
	v6.sin6.sin6_family = AF_INET6;	/* an IPv6 destination for an IPv4 socket */
	v6.sin6.sin6_port = htons(9);
	dgram_init(&b, l, &errors);
	for (int i = 0; i < 6; i++) {
		fill(data, sizeof(data), i);
		if (i == 0)
			dgram_send(&b, s, &v6, NULL, 0, data, sizeof(data));	/* first of a run */
		else if (i == 3)
			dgram_send(&b, notsock[1], &a, NULL, 0, data, sizeof(data));	/* not a socket */
		else
			dgram_send(&b, s, &a, NULL, 0, data, sizeof(data));
	}
	dgram_send(&b, s, &a, NULL, SOCK_PKTINFO_SPACE + 1, data, sizeof(data));	/* no room: refused */
	ck_assert_uint_eq(errors, 1);
	one_iteration(l);
	ck_assert_uint_eq(errors, 3);
	for (int i = 1; i < 6; i++) {
		if (i == 3)
			continue;
		fill(data, sizeof(data), i);
		ck_assert_int_eq(recv_one(r, got, sizeof(got), &from), (ssize_t)sizeof(data));
		ck_assert_mem_eq(got, data, sizeof(data));
	}
	ck_assert_int_eq(recv_one(r, got, sizeof(got), &from), -1);
	close(notsock[0]);
	close(notsock[1]);
	close(r);
	close(s);
	loop_free(l);
}
END_TEST

START_TEST(each_datagram_keeps_its_own_source_address)
{
	static struct dgram_batch b;
	struct loop *l = loop_new();
	union sockaddr_any a, src;
	union {
		struct cmsghdr align;
		uint8_t buf[SOCK_PKTINFO_SPACE];
	} cbuf;
	int r = receiver(&a), s = sender();
	uint64_t errors = 0;
	uint8_t data[8] = { 0 }, got[64];
	struct sockaddr_in from;
	size_t clen;

	dgram_init(&b, l, &errors);
	memset(&src, 0, sizeof(src));
	src.sin.sin_family = AF_INET;
	for (int i = 0; i < 3; i++) {
		/* 127.0.0.2, 127.0.0.3, 127.0.0.4: loopback answers for all of 127/8 */
		src.sin.sin_addr.s_addr = htonl(0x7f000002 + (uint32_t)i);
		clen = sock_pktinfo(cbuf.buf, AF_INET, &src, 0);
		dgram_send(&b, s, &a, cbuf.buf, clen, data, sizeof(data));
		memset(cbuf.buf, 0, sizeof(cbuf.buf));	/* must not matter: it was copied */
	}
	one_iteration(l);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(recv_one(r, got, sizeof(got), &from), (ssize_t)sizeof(data));
		ck_assert_uint_eq(ntohl(from.sin_addr.s_addr), 0x7f000002 + (uint32_t)i);
	}
	ck_assert_uint_eq(errors, 0);
	close(r);
	close(s);
	loop_free(l);
}
END_TEST

START_TEST(flush_before_close_leaves_nothing_queued)
{
	static struct dgram_batch b;
	struct loop *l = loop_new();
	union sockaddr_any a;
	int r = receiver(&a), s = sender();
	uint64_t errors = 0;
	uint8_t data[8] = { 1 }, got[64];
	struct sockaddr_in from;

	dgram_init(&b, l, &errors);
	dgram_send(&b, s, &a, NULL, 0, data, sizeof(data));
	dgram_flush(&b);	/* as a front-end does before closing its sockets */
	close(s);
	ck_assert_int_eq(recv_one(r, got, sizeof(got), &from), (ssize_t)sizeof(data));
	one_iteration(l);	/* the flush is no longer queued: nothing is sent on the closed fd */
	ck_assert_uint_eq(errors, 0);
	close(r);
	loop_free(l);
}
END_TEST

static Suite *dgram_suite(void)
{
	Suite *s = suite_create("dgram");
	TCase *tc = tcase_create("batch");

	tcase_add_test(tc, held_until_the_iteration_ends_then_all_arrive_in_order);
	tcase_add_test(tc, a_full_batch_goes_at_once_and_nothing_is_lost);
	tcase_add_test(tc, a_large_datagram_goes_alone_and_at_once);
	tcase_add_test(tc, a_refused_datagram_is_counted_and_the_others_go);
	tcase_add_test(tc, each_datagram_keeps_its_own_source_address);
	tcase_add_test(tc, flush_before_close_leaves_nothing_queued);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(dgram_suite());
}

/*
 * query.h - the in-flight query table. One struct query owns everything of
 * a query between a front-end and an upstream: its bytes, its deadline, its
 * place on an upstream connection; query_free() is its single destructor.
 * Slots are preallocated: nothing is allocated per query on the hot path.
 */
#ifndef DOTPROXY_QUERY_H
#define DOTPROXY_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "frontend.h"
#include "loop.h"
#include "metrics.h"
#include "sock.h"

#define QUERY_INLINE	512	/* queries up to this size need no allocation */
#define QUERY_MAX_LEN	4096	/* larger queries get FORMERR: bounds what a client can pin */
#define QUERY_UDP_MAX	65507	/* largest UDP payload (IPv4): bigger EDNS sizes are clamped */
#define QUERY_MAX_TRIES	3	/* sends to upstreams before SERVFAIL */

struct upconn;
struct pool;
struct ratelimit;

/* Q_FOLLOWER: the same question as an earlier query in flight, answered with it. */
enum query_state { Q_FREE, Q_WAITING, Q_SENT, Q_FOLLOWER };

struct query {
	enum query_state state;
	uint16_t upstream_id;		/* RFC 1035 4.1.1 ID as sent upstream: slot | generation */
	uint16_t client_id;		/* ID the client chose */
	uint16_t len;			/* bytes in msg */
	uint16_t max_answer;		/* largest answer the client takes (UDP size or 65535) */
	uint8_t tries;			/* times sent upstream */
	bool hedged;			/* its half-deadline check is done */
	uint64_t sent_ms;		/* when it was last written upstream */
	uint32_t tried;			/* bit per upstream index it failed on */
	bool had_edns;			/* the client sent an OPT: its answer keeps one */
	bool keyed;			/* key holds its question (it has one a cache can take) */
	bool twin;			/* a leader on the twins table */
	struct query *twin_next;	/* leaders with the same hash bucket */
	struct query *followers;	/* leader: queries waiting for the same answer */
	struct query *leader;		/* follower: whose answer it waits for */
	struct query *fnext;		/* on the leader's follower list */
	struct frontend *fe;
	struct upconn *conn;		/* connection it waits on, when not Q_FREE */
	struct query *prev, *next;	/* on conn's send queue or sent list; free list */
	struct loop_timer deadline;
	struct qtable *qt;
	uint8_t *msg;			/* inline_msg or heap for large ones */
	struct cache_key key;		/* made once at receive: for twins, the cache, serve-stale */
	bool selftest;			/* a self-test marker: answered with dotproxy's TXT */
	uint64_t recv_ms;		/* query log, markers: when it came */
	union sockaddr_any client;	/* ... who sent it (AF_UNSPEC: unknown) */
	_Alignas(max_align_t) uint8_t ctx[FRONTEND_CTX_SIZE];
	uint8_t inline_msg[QUERY_INLINE];
};

/* A doubly-linked list of queries; count kept for metrics and idle checks. */
struct qlist {
	struct query *head, *tail;
	unsigned n;
};

void qlist_push(struct qlist *l, struct query *q);
void qlist_remove(struct qlist *l, struct query *q);

struct qtable {
	struct query *slots;
	struct query *free;		/* free list */
	unsigned nslots;
	unsigned fresh;			/* slots [fresh, nslots) never used yet (untouched memory) */
	unsigned slot_bits;		/* low bits of the upstream ID */
	struct loop *loop;
	struct pool *pool;
	struct metrics *m;
	unsigned timeout_ms;
	struct cache *cache;		/* NULL: no cache */
	unsigned stale_s;		/* serve-stale window; 0: never */
	struct ratelimit *rl;		/* NULL: no limit */
	struct query **twins;		/* leaders in flight by key hash: nslots buckets */
	struct frontend internal;	/* prefetches: answers go to the cache only */
	uint8_t *scratch;		/* one answer, copied for each follower */
	/* the query log and self-test markers (qtable_report_options) */
	bool query_log;			/* a log line per answer to a client */
	const char *sock_mode;		/* what socket front-ends are called: tproxy, redirect */
	const union sockaddr_any *rx_client;	/* while receiving: the sender */
	bool rx_marker;			/* ... its message is a self-test marker */
	struct {			/* where the answer being sent comes from */
		union sockaddr_any client;
		uint64_t start_ms;
		const char *source;	/* cache, upstream, stale, local */
		const char *upstream;	/* its label, for source upstream */
	} org;
	const char *ans_label;		/* upstream of the answer being delivered */
};

int qtable_init(struct qtable *qt, unsigned nslots, unsigned timeout_ms, struct loop *l,
		struct pool *pool, struct metrics *m);
void qtable_destroy(struct qtable *qt);

/* Use @cache (serving stale answers for @stale_s seconds) and rate limit @rl; NULL: none. */
void qtable_options(struct qtable *qt, struct cache *cache, unsigned stale_s, struct ratelimit *rl);

/*
 * @query_log: log a line for every answer to a client (names clients and
 * names). @sock_mode: what the socket front-ends' queries came through
 * ("tproxy", "redirect"), for the log and the self-test's TXT.
 */
void qtable_report_options(struct qtable *qt, bool query_log, const char *sock_mode);

/*
 * A front-end hands over one client message. @ctx (@ctxlen <= FRONTEND_CTX_SIZE)
 * is copied and given back to fe->ops->reply(). @max_answer is the largest
 * answer the transport takes; over UDP the query's EDNS size lowers it.
 * Malformed queries are answered or dropped here and counted. @client (the
 * sender's address, for the rate limit; NULL: not limited).
 * Returns 0 if exactly one reply comes (it may already have come), -1 if none
 * will (the message was dropped).
 */
int query_receive(struct qtable *qt, struct frontend *fe, const void *ctx, size_t ctxlen,
		  const uint8_t *msg, size_t len, size_t max_answer, const union sockaddr_any *client);

/* The query waiting for upstream ID @id on @conn, or NULL. */
struct query *qtable_lookup(struct qtable *qt, uint16_t id, const struct upconn *conn);

/* Deliver upstream answer @ans (mutable, @len bytes) to @q's client and free @q. */
void query_answer(struct query *q, uint8_t *ans, size_t len);

/* Answer @q's client with @rcode (SERVFAIL, REFUSED) and free @q. */
void query_fail(struct query *q, int rcode);

/* Free @q: off its connection, deadline cancelled, slot back on the free list. */
void query_free(struct query *q);

#endif

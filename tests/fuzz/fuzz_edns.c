/*
 * fuzz_edns.c - libFuzzer target for src/edns.c: the input as a client
 * query padded for the upstream, and as an upstream answer cleaned for the
 * client. Traps when a result breaks what edns.h promises: a padded query
 * is a multiple of EDNS_PAD_BLOCK within its buffer and still a valid query,
 * a refusal leaves the message as it was, cleaning only shrinks and is
 * idempotent. Run with `make fuzz`.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dns.h"
#include "edns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ROOM (DNS_MAX_MSG + EDNS_PAD_BLOCK)

static void check_prepare(const uint8_t *data, size_t size)
{
	static uint8_t buf[ROOM], again[ROOM];
	struct dns_query_info qi;
	bool was_ok;
	size_t cap, n, m;

	if (size > DNS_MAX_MSG)
		return;
	/* room from none to a few blocks, picked by the last octet */
	cap = size + (size ? (size_t)data[size - 1] * 2 : 0);
	if (cap > sizeof(buf))
		cap = sizeof(buf);
	memcpy(buf, data, size);
	was_ok = dns_check_query(data, size, &qi) == DNS_QUERY_OK;
	n = edns_prepare_query(buf, size, cap);
	if (n == 0) {
		if (memcmp(buf, data, size) != 0)	/* refused: left as it was */
			__builtin_trap();
		return;
	}
	if (n % EDNS_PAD_BLOCK || n > cap || n > DNS_MAX_MSG || n < DNS_HDR_LEN)
		__builtin_trap();
	if (was_ok && (dns_check_query(buf, n, &qi) != DNS_QUERY_OK || !qi.has_edns))
		__builtin_trap();
	/* our keepalive option is empty */
	if (edns_keepalive(buf, n) != -1)
		__builtin_trap();
	/* preparing again changes nothing */
	memcpy(again, buf, n);
	if (edns_prepare_query(again, n, cap) != n || memcmp(again, buf, n) != 0)
		__builtin_trap();
	/* cleaning takes out exactly what was added; preparing that gives it back */
	m = edns_clean_answer(again, n, false);
	if (m == 0 || m > n - 2 * 4)
		__builtin_trap();
	if (edns_prepare_query(again, m, cap) != n || memcmp(again, buf, n) != 0)
		__builtin_trap();
}

static void check_clean(const uint8_t *data, size_t size, bool drop_opt)
{
	static uint8_t buf[ROOM];
	struct dns_query_info qi;
	bool was_ok;
	size_t n;

	if (size > sizeof(buf))
		return;
	memcpy(buf, data, size);
	was_ok = dns_check_query(data, size, &qi) == DNS_QUERY_OK;
	n = edns_clean_answer(buf, size, drop_opt);
	if (n == 0) {
		if (memcmp(buf, data, size) != 0)
			__builtin_trap();
		return;
	}
	if (n > size || n < DNS_HDR_LEN)
		__builtin_trap();
	/* the result parses, and has nothing left to clean */
	if (edns_clean_answer(buf, n, false) != n)
		__builtin_trap();
	if (n != size && edns_keepalive(buf, n) != -1)
		__builtin_trap();
	if (was_ok && dns_check_query(buf, n, &qi) != DNS_QUERY_OK)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int ka;

	check_prepare(data, size);
	check_clean(data, size, false);
	check_clean(data, size, true);
	ka = edns_keepalive(data, size);
	if (ka < -1 || ka > 65535)
		__builtin_trap();
	return 0;
}

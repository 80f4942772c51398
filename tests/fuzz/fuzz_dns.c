/*
 * fuzz_dns.c - libFuzzer target for everything in src/dns.c that reads
 * outside bytes: client queries, upstream answers, and the responses built
 * from them. Run with `make fuzz`.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[DNS_MAX_MSG];
	struct dns_query_info qi;
	struct wire w;
	size_t half = size / 2;
	int rc;

	/* as a client query, and what the proxy would answer it with */
	rc = dns_check_query(data, size, &qi);
	if (rc == DNS_QUERY_OK && qi.question_end > size)
		__builtin_trap();
	if (rc != DNS_QUERY_DROP) {
		size_t n = dns_make_error(data, size, DNS_RCODE_FORMERR, out, sizeof(out));
		if (n < DNS_HDR_LEN || n > size)
			__builtin_trap();
	}
	/* as an upstream answer, to itself and to the other half as the query */
	dns_answer_matches(data, size, data, size);
	dns_answer_matches(data, half, data + half, size - half);
	if (size >= DNS_HDR_LEN) {
		size_t max = DNS_UDP_MIN + (size % 512);
		size_t n = dns_truncate(data, size, out, max);
		/* nothing, or a header with TC set that fits, with no records but an OPT */
		if (n > max || (n && (n < DNS_HDR_LEN || !(out[2] & 0x02) || wire_get_u16(out + 6) ||
				      wire_get_u16(out + 8) || wire_get_u16(out + 10) > 1)))
			__builtin_trap();
	}
	/* as a name anywhere in the message */
	for (size_t off = 0; off < size && off < 64; off++) {
		wire_init(&w, data, size);
		wire_seek(&w, off);
		if (dns_read_name(&w, out) > DNS_MAX_NAME)
			__builtin_trap();
	}
	return 0;
}

/*
 * fuzz_selftest.c - libFuzzer target for src/selftest.c's parsers of outside
 * bytes: the marker name and query (daemon side, every client's TXT query
 * meets it) and the answers the --self-test client classifies. Run with
 * `make fuzz`.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dns.h"
#include "selftest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct selftest_info info = {
	.version = "0", .upstream = "192.0.2.1@853#dot.example", .frontend = "tproxy",
	.transport = "udp", .family = "ipv4", .upstream_rcode = 3,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[4096];
	static const char nonce[] = "00112233445566778899aabbccddeeff";
	char got[SELFTEST_NONCE_MAX + 1];
	struct selftest_result r;
	uint8_t q[512];
	size_t qn, n;
	int l;

	/* as a name in wire format: a marker's nonce is 16-63 hex digits, lower-cased */
	l = selftest_marker_nonce(data, size, got);
	if (l >= 0) {
		if (l < SELFTEST_NONCE_MIN || l > SELFTEST_NONCE_MAX || strlen(got) != (size_t)l)
			__builtin_trap();
		for (int i = 0; i < l; i++)
			if (!((got[i] >= '0' && got[i] <= '9') || (got[i] >= 'a' && got[i] <= 'f')))
				__builtin_trap();
	}
	/* as a client query: a marker gets dotproxy's answer, which the client must call private */
	if (selftest_is_marker(data, size)) {
		n = selftest_answer(data, size, size & 1, &info, out, sizeof(out));
		if (n < DNS_HDR_LEN || n > sizeof(out) || dns_id(out) != dns_id(data))
			__builtin_trap();
	}
	/* as an answer to the client's own marker query */
	qn = selftest_query(nonce, size >= 2 ? dns_id(data) : 0, q, sizeof(q));
	if (selftest_classify(data, size, q, qn, nonce, &r) == 0 &&
	    (r.verdict > ST_NO_ROUTE || (r.verdict == ST_PRIVATE && r.rcode != DNS_RCODE_NOERROR)))
		__builtin_trap();
	return 0;
}

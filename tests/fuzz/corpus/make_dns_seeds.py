#!/usr/bin/env python3
"""Write the seed corpus for tests/fuzz/fuzz_dns.c into tests/fuzz/corpus/dns/.

Each seed is one DNS message in UDP wire format (RFC 1035 4.1, no TCP length
prefix), built by hand here. The fuzz target reads the whole input as a client
query and as an upstream answer, the two halves as an answer/query pair, and
names at the first 64 offsets, so seeds cover each of those paths.
Run: python3 tests/fuzz/corpus/make_dns_seeds.py
"""
import struct

from seedwire import hdr, name, opt, ptr, question, rr, write_corpus


QR, AA, TC, RD, RA, AD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0020, 0x0010
A, NS, CNAME, SOA, TXT, AAAA, OPT, TSIG = 1, 2, 5, 6, 16, 28, 41, 250
IN, ANY = 1, 255














def a(last):
    return bytes([192, 0, 2, last])


SEEDS = {}

# --- client queries ---
SEEDS["query_a.bin"] = hdr(0x1234, RD) + question("www.example.com")
SEEDS["query_aaaa_edns_do.bin"] = (hdr(0x2345, RD | AD, ar=1) + question("www.dotproxy.test", AAAA)
                                   + opt(1232, 0x00008000))
# RFC 7873 client cookie and RFC 7830 padding options
SEEDS["query_edns_cookie_padding.bin"] = (
    hdr(0x3456, RD, ar=1) + question("dotproxy.test", TXT)
    + opt(4096, 0, struct.pack("!HH", 10, 8) + bytes(range(8)) + struct.pack("!HH", 12, 16) + bytes(16)))
SEEDS["query_mixed_case.bin"] = hdr(0x0003, RD | CD) + question("wWw.DoTpRoXy.TeSt", A)
SEEDS["query_tsig_additional.bin"] = (
    hdr(0x0004, 0, ar=1) + question("example.com", SOA)
    + rr(name("key.example"), TSIG, ANY, 0, name("hmac-sha256") + bytes(6) + struct.pack("!HH", 300, 0)
         + struct.pack("!HHH", 0x0004, 0, 0)))
# malformed on purpose: answered with NOTIMP / FORMERR, or dropped
SEEDS["query_opcode_notify.bin"] = hdr(0x0005, 4 << 11 | AA) + question("example.com", SOA)
SEEDS["query_two_questions.bin"] = hdr(0x0006, RD, qd=2) + question("a.example") + question("b.example")
SEEDS["query_two_opt.bin"] = hdr(0x0007, RD, ar=2) + question("www.example.com") + opt(1232) + opt(4096)
SEEDS["query_trailing_junk.bin"] = hdr(0x0008, RD) + question("www.example.com") + b"\xde\xad"
SEEDS["query_short_header.bin"] = hdr(0x0009, RD)[:11]
SEEDS["query_pointer_loop.bin"] = hdr(0x000A, RD) + ptr(14) + ptr(12) + struct.pack("!HH", A, IN)
SEEDS["query_label_0x40.bin"] = hdr(0x000B, RD) + b"\x40" + b"x" * 64 + b"\0" + struct.pack("!HH", A, IN)
# a 255-octet name: labels of 63, 63, 63 and 61 octets plus the root
SEEDS["query_name_255.bin"] = (hdr(0x000C, RD) + b"".join(bytes([63]) + bytes([c]) * 63 for c in b"abc")
                               + bytes([61]) + b"d" * 61 + b"\0" + struct.pack("!HH", TXT, IN))

# --- upstream answers ---
SEEDS["answer_a_compressed.bin"] = (
    hdr(0x1234, QR | RD | RA, an=3) + question("www.example.com")
    + b"".join(rr(ptr(12), A, IN, 300, a(i)) for i in (1, 2, 3)))
# CNAME chain with pointers inside rdata: www -> cdn.example.com (example.com at offset 16)
_q = hdr(0x4567, QR | RD | RA | AD, an=2, ar=1) + question("www.example.com")
_cname = rr(ptr(12), CNAME, IN, 60, b"\x03cdn" + ptr(16))
SEEDS["answer_cname_chain.bin"] = _q + _cname + rr(ptr(len(_q) + 12), A, IN, 60, a(7)) + opt(1232, 0x00008000)
# NXDOMAIN with an SOA in authority, its two names compressed
SEEDS["answer_nxdomain_soa.bin"] = (
    hdr(0x5678, QR | RD | RA | 3, ns=1) + question("nope.example.com")
    + rr(ptr(17), SOA, IN, 900, b"\x02ns" + ptr(17) + b"\x0ahostmaster" + ptr(17)
         + struct.pack("!5I", 2024010101, 7200, 3600, 1209600, 300)))
# extended rcode 1 in the OPT TTL (RFC 6891 6.1.3), DO set
SEEDS["answer_servfail_ext_rcode.bin"] = (hdr(0x6789, QR | RD | RA | 2, ar=1) + question("www.example.com")
                                          + opt(4096, 0x01008000))
# more than 1500 octets of TXT (what big.dotproxy.test serves) with an OPT: must be truncated for UDP
_txt = bytes([255]) + b"t" * 255
SEEDS["answer_big_txt.bin"] = (hdr(0x789A, QR | AA | RD | RA, an=8, ar=1) + question("big.dotproxy.test", TXT)
                               + b"".join(rr(ptr(12), TXT, IN, 300, _txt) for _ in range(8)) + opt(1232))
SEEDS["answer_cut_in_record.bin"] = SEEDS["answer_a_compressed.bin"][:-3]

# --- pairs for dns_answer_matches(first half, second half) ---
# an answer and its query of the same length: a NODATA answer carries only the question
SEEDS["pair_nodata_answer_then_query.bin"] = (hdr(0x1111, QR | RD | RA) + question("WWW.example.com", AAAA)
                                              + hdr(0x1111, RD) + question("www.example.com", AAAA))


def main():
    write_corpus("dns", SEEDS)


if __name__ == "__main__":
    main()

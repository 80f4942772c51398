#!/usr/bin/env python3
"""Write the seed corpus for tests/fuzz/fuzz_edns.c into tests/fuzz/corpus/edns/.

Each seed is one DNS message in UDP wire format (RFC 1035 4.1, no TCP length
prefix), built by hand here. The fuzz target pads the input as an upstream
query (edns_prepare_query, RFC 7830 / RFC 8467), cleans it as an answer with
and without its OPT (edns_clean_answer) and reads its keepalive timeout
(edns_keepalive, RFC 7828), so seeds cover OPT records with and without
options, records after the OPT whose compression pointers must move, signed
messages, and malformed OPTs.
Run: python3 tests/fuzz/corpus/make_edns_seeds.py
"""
import struct

from seedwire import hdr, name, opt, option, ptr, question, rr, write_corpus


QR, AA, TC, RD, RA, AD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0020, 0x0010
A, NS, SOA, TXT, AAAA, SRV, OPT, SIG, TSIG = 1, 2, 6, 16, 28, 33, 41, 24, 250
IN, ANY = 1, 255
ECS, COOKIE, KEEPALIVE, PADDING, EDE = 8, 10, 11, 12, 15
DO = 0x00008000
















def a(last):
    return bytes([192, 0, 2, last])


TSIG_RDATA = name("hmac-sha256") + bytes(6) + struct.pack("!HH", 300, 0) + struct.pack("!HHH", 0x1234, 0, 0)

SEEDS = {}
Q = hdr(0x1234, RD) + question("www.example.com")            # 33 octets


def QE(ar):
    """Q with @ar additional records to follow."""
    return hdr(0x1234, RD, ar=ar) + question("www.example.com")



# --- client queries for edns_prepare_query ---
SEEDS["query_plain.bin"] = Q
SEEDS["query_opt_do_4096.bin"] = QE(1) + opt(4096, DO)
SEEDS["query_opt_cookie_padding_keepalive.bin"] = QE(1) + opt(1232, DO, option(COOKIE, bytes(range(8)))
                                                             + option(PADDING, bytes(16))
                                                             + option(ECS, b"\x00\x01\x18\x00\xc0\x00\x02")
                                                             + option(KEEPALIVE, b"\x00\x05"))
# 109 octets: with OPT, keepalive and a padding header exactly one block
SEEDS["query_exact_block.bin"] = (hdr(7, RD) + bytes([63]) + b"a" * 63 + bytes([27]) + b"b" * 27 + b"\0"
                                  + struct.pack("!HH", A, IN))
# already padded by us: 128 octets
_p = QE(1) + opt(1232, 0, option(KEEPALIVE) + option(PADDING, bytes(128 - 33 - 11 - 8)))
SEEDS["query_already_padded.bin"] = _p
# records after the OPT: ns1 points before it, the AAAA's owner points at ns1 after it
_q = QE(4) + rr(ptr(12), A, IN, 300, a(1))                   # 33..49
_o = opt(1232, DO, option(COOKIE, bytes(8)))                  # 49..72
_ns1 = rr(b"\x03ns1" + ptr(16), A, IN, 60, a(53))             # 72..92
SEEDS["query_records_after_opt.bin"] = _q + _o + _ns1 + rr(ptr(72), AAAA, IN, 60, bytes(15) + b"\1")
SEEDS["query_pointer_into_opt.bin"] = (QE(2) + opt(1232, 0, option(COOKIE, bytes(4)))
                                       + rr(ptr(46), A, IN, 60, a(1)))
SEEDS["query_tsig.bin"] = QE(2) + opt() + rr(name("key.example"), TSIG, ANY, 0, TSIG_RDATA)
SEEDS["query_sig0.bin"] = QE(1) + rr(b"\0", SIG, ANY, 0, bytes(18) + name("example.com") + bytes(16))
SEEDS["query_two_opt.bin"] = QE(2) + opt() + opt(4096)
SEEDS["query_opt_in_answer.bin"] = hdr(0x1234, RD, an=1) + question("www.example.com") + opt()
SEEDS["query_opt_not_root.bin"] = QE(1) + rr(ptr(12), OPT, 1232, 0, b"")
SEEDS["query_option_overrun.bin"] = QE(1) + rr(b"\0", OPT, 1232, 0, struct.pack("!HH", COOKIE, 8) + bytes(2))
SEEDS["query_trailing_junk.bin"] = QE(1) + opt() + b"\xde\xad"

# --- upstream answers for edns_clean_answer and edns_keepalive ---


def _ans_hdr(ar):
    """The answer to Q with one A record; @ar additional records follow."""
    return hdr(0x1234, QR | RD | RA, an=1, ar=ar) + question("www.example.com") + rr(ptr(12), A, IN, 300, a(1))


_ans = _ans_hdr(1)
SEEDS["answer_keepalive_1200.bin"] = _ans + opt(1232, 0, option(COOKIE, bytes(16)) + option(KEEPALIVE, struct.pack("!H", 1200)))
SEEDS["answer_keepalive_empty.bin"] = _ans + opt(1232, 0, option(KEEPALIVE))
SEEDS["answer_keepalive_cut.bin"] = _ans + rr(b"\0", OPT, 1232, 0, struct.pack("!HH", KEEPALIVE, 2) + b"\x04")
SEEDS["answer_padding_ede.bin"] = _ans + opt(1232, 0x01008000, option(COOKIE, bytes(16)) + option(KEEPALIVE, b"\x00\x10")
                                              + option(EDE, b"\x00\x12stale") + option(PADDING, bytes(40)))
# glue on both sides of the OPT; NS and SRV RDATA names pointing at a record after it
_g = _ans_hdr(6) + rr(b"\x03ns1" + ptr(16), A, IN, 60, a(53))    # 49..69
_g += opt(1232, DO, option(PADDING, bytes(8)))                   # 69..92
_g += rr(b"\x03ns2" + ptr(16), AAAA, IN, 60, bytes(15) + b"\2")  # 92..124
_g += rr(ptr(92), A, IN, 60, a(54))
_g += rr(ptr(49), NS, IN, 60, ptr(92))
_g += rr(ptr(16), SRV, IN, 60, struct.pack("!HHH", 0, 5, 853) + ptr(92))
SEEDS["answer_glue_after_opt.bin"] = _g
SEEDS["answer_tsig.bin"] = (_ans_hdr(2) + opt(1232, 0, option(PADDING, bytes(4)))
                            + rr(name("key.example"), TSIG, ANY, 0, TSIG_RDATA))
SEEDS["answer_no_opt.bin"] = _ans_hdr(0)


def main():
    write_corpus("edns", SEEDS)


if __name__ == "__main__":
    main()

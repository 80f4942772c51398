#!/usr/bin/env python3
"""Write the seed corpus for tests/fuzz/fuzz_cache.c into tests/fuzz/corpus/cache/.

Each seed is a sequence of steps, each
    op (1 octet) | qlen (2, big-endian) | query | alen (2) | answer
with DNS messages in UDP wire format (RFC 1035 4.1), built by hand here.
A step moves the clock by (op >> 4)^2 seconds (plus (op & 15) * 37 ms), puts
the answer under the query's key, then asks for the query. op bit 0 allows
stale answers, bit 1 serves into a small buffer, bit 2 asks with the answer's
own question, bit 3 asks again with the letters' case flipped.
Run: python3 tests/fuzz/corpus/make_cache_seeds.py
"""
import struct

from seedwire import hdr, opt, ptr, question, rr, write_corpus


QR, AA, TC, RD, RA, AD, CD = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0020, 0x0010
A, NS, CNAME, SOA, TXT, AAAA, OPT = 1, 2, 5, 6, 16, 28, 41
IN = 1
NOERROR, SERVFAIL, NXDOMAIN = 0, 2, 3
STALE, SMALL, OWNQ, FLIP = 1, 2, 4, 8














def soa(zone_off, ttl, minimum):
    """RFC 1035 3.3.13, names compressed to the zone at @zone_off."""
    rdata = b"\x02ns" + ptr(zone_off) + b"\x0ahostmaster" + ptr(zone_off) + struct.pack(
        "!5I", 2024010101, 7200, 3600, 1209600, minimum)
    return rr(ptr(zone_off), SOA, IN, ttl, rdata)


def query(qname, qtype=A, flags=RD, id_=0x1234, do=None):
    if do is None:
        return hdr(id_, flags) + question(qname, qtype)
    return hdr(id_, flags, ar=1) + question(qname, qtype) + opt(1232, 0x8000 if do else 0)


def answer_a(qname, ttl=300, flags=QR | RD | RA, n=2, edns=False):
    return (hdr(0x1234, flags, an=n, ar=1 if edns else 0) + question(qname)
            + b"".join(rr(ptr(12), A, IN, ttl, bytes([192, 0, 2, i])) for i in range(n))
            + (opt(1232) if edns else b""))


def step(op, q, a=b""):
    return bytes([op]) + struct.pack("!H", len(q)) + q + struct.pack("!H", len(a)) + a


def clock(seconds):
    """The op's high nibble for about @seconds (it moves the clock by nibble squared)."""
    n = 0
    while (n + 1) * (n + 1) <= seconds and n < 15:
        n += 1
    return n << 4


W = "www.example.com"
SEEDS = {}

# put then hit, then the same question later (TTLs aged), then past its TTL
SEEDS["hit_then_aged.bin"] = (step(0, query(W), answer_a(W, 300))
                              + step(clock(100), query(W, id_=0xbeef)) + step(clock(225), query(W)))
# a question in another case, and asked again with every letter flipped
SEEDS["case_flip.bin"] = step(FLIP, query("WwW.ExAmPlE.CoM", id_=0x4242), answer_a(W))
# min TTL across sections: answer 3600, authority NS 7200, additional A 60
_q = hdr(0x1234, QR | RD | RA, an=1, ns=1, ar=1) + question(W)
SEEDS["min_ttl_sections.bin"] = step(0, query(W), _q + rr(ptr(12), A, IN, 3600, bytes([192, 0, 2, 1]))
                                     + rr(ptr(16), NS, IN, 7200, b"\x03ns1" + ptr(16))
                                     + rr(ptr(12), A, IN, 60, bytes([192, 0, 2, 9]))) + step(clock(64), query(W))
# EDNS with DO: the OPT record's TTL is not a TTL
SEEDS["edns_do.bin"] = step(0, query(W, do=True), answer_a(W, 40000, edns=True)) + step(clock(225), query(W, do=True))
# RFC 2308 negative answers: NXDOMAIN and NODATA with an SOA, and one without
_nx = hdr(0x1234, QR | RD | RA | NXDOMAIN, ns=1) + question("nope.example.com") + soa(17, 900, 300)
SEEDS["nxdomain_soa.bin"] = step(0, query("nope.example.com"), _nx) + step(clock(200), query("nope.example.com"))
_nd = hdr(0x1234, QR | RD | RA, ns=1) + question(W, AAAA) + soa(16, 60, 3600)
SEEDS["nodata_soa.bin"] = step(0, query(W, AAAA), _nd) + step(clock(49), query(W, AAAA))
SEEDS["nxdomain_no_soa.bin"] = step(0, query(W), hdr(0x1234, QR | RD | RA | NXDOMAIN) + question(W))
# not cached: TC, SERVFAIL, TTL 0
SEEDS["not_cached.bin"] = (step(0, query(W), answer_a(W, flags=QR | RD | RA | TC))
                           + step(0, query(W), hdr(0x1234, QR | RD | RA | SERVFAIL) + question(W))
                           + step(0, query(W), answer_a(W, 0)))
# serve-stale: TTL 5, asked 9 s later with and without permission, then past the stale window
SEEDS["serve_stale.bin"] = (step(0, query(W), answer_a(W, 5)) + step(clock(9), query(W))
                            + step(STALE, query(W)) + step(clock(36) | STALE, query(W)))
# LRU: six names in a four-entry cache, the first touched again
_names = ["a.example", "b.example", "c.example", "d.example", "e.example", "f.example"]
SEEDS["lru.bin"] = (b"".join(step(0, query(n), answer_a(n)) for n in _names[:4]) + step(0, query("a.example"))
                    + b"".join(step(0, query(n), answer_a(n)) for n in _names[4:])
                    + b"".join(step(0, query(n)) for n in _names))
# prefetch: TTL 100, three hits, then one in the last 10%
SEEDS["prefetch.bin"] = (step(0, query(W), answer_a(W, 100)) + step(0, query(W)) + step(0, query(W))
                         + step(clock(81), query(W)) + step(clock(9), query(W)))
# a buffer too small for the answer
SEEDS["small_cap.bin"] = step(SMALL, query(W), answer_a(W, 300, n=8))
# the query comes from the answer's own question (fuzzed answers then match)
SEEDS["own_question.bin"] = step(OWNQ, b"", answer_a("x.dotproxy.test", 60, edns=True))
# a CNAME chain with pointers in rdata
_q = hdr(0x4567, QR | RD | RA | AD, an=2) + question(W)
_cname = rr(ptr(12), CNAME, IN, 60, b"\x03cdn" + ptr(16))
SEEDS["cname_chain.bin"] = step(OWNQ, b"", _q + _cname + rr(ptr(len(_q) + 12), A, IN, 30, bytes([192, 0, 2, 7])))


def main():
    write_corpus("cache", SEEDS)


if __name__ == "__main__":
    main()

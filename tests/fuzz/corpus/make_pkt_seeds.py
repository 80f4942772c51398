#!/usr/bin/env python3
"""Write the seed corpus for tests/fuzz/fuzz_pkt.c into tests/fuzz/corpus/pkt/.

Each seed is one whole IPv4 or IPv6 packet as NFQUEUE hands it over (RFC 791,
RFC 8200, RFC 768), built by hand here with its checksums computed here. The
target parses it with and without UDP checksum verification and, when it
parses, builds the answer and parses that back, so seeds cover the valid
paths (options, extension headers) and each way of being refused.
Run: python3 tests/fuzz/corpus/make_pkt_seeds.py
"""
import struct

from seedwire import csum, write_corpus


HOPOPT, ICMP, TCP, UDP, ROUTING, FRAGMENT, ESP, ICMPV6, NONE, DSTOPTS = 0, 1, 6, 17, 43, 44, 50, 58, 59, 60
DF, MF = 0x4000, 0x2000

SRC4, DST4 = bytes([192, 0, 2, 10]), bytes([198, 51, 100, 53])
SRC6 = bytes.fromhex("20010db8000000000000000000000010")
DST6 = bytes.fromhex("20010db8005300000000000000000053")




def dns_query(name="www.example.com", qtype=1, qid=0x1234):
    q = struct.pack("!6H", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack("!HH", qtype, 1)


def udp(src, dst, payload, sport=40000, dport=53, checksum=True):
    """RFC 768 header; the pseudo-header is RFC 768 for 4-octet addresses, RFC 8200 8.1 for 16."""
    ulen = 8 + len(payload)
    hdr = struct.pack("!4H", sport, dport, ulen, 0)
    if not checksum:
        return hdr + payload
    if len(src) == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, UDP, ulen)
    else:
        pseudo = src + dst + struct.pack("!I3xB", ulen, UDP)
    c = csum(pseudo + hdr + payload) or 0xFFFF
    return hdr[:6] + struct.pack("!H", c) + payload


def ip4(body, proto=UDP, src=SRC4, dst=DST4, options=b"", frag=0, ttl=64, ident=0xBEEF):
    ihl = 5 + len(options) // 4
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(body), ident, frag, ttl, proto, 0,
                      src, dst) + options
    return hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:] + body


def ip6(body, nh=UDP, src=SRC6, dst=DST6, plen=None):
    return struct.pack("!IHBB16s16s", 6 << 28, len(body) if plen is None else plen, nh, 64, src, dst) + body


def ext(nh, body):
    """An RFC 8200 extension header: next header, length in 8-octet units past the first 8."""
    assert (len(body) + 2) % 8 == 0
    return bytes([nh, (len(body) + 2) // 8 - 1]) + body


def padn(n):
    """RFC 8200 4.2: a PadN option filling @n octets."""
    return bytes([1, n - 2]) + bytes(n - 2)


def udp4(payload, src=SRC4, dst=DST4, **kw):
    return ip4(udp(src, dst, payload), src=src, dst=dst, **kw)


def udp6(payload, exts=b"", nh=UDP, src=SRC6, dst=DST6):
    return ip6(exts + udp(src, dst, payload), nh=nh, src=src, dst=dst)


Q = dns_query()
SEEDS = {}

# --- IPv4 ---
SEEDS["v4_query.bin"] = udp4(Q)
SEEDS["v4_query_aaaa_df.bin"] = udp4(dns_query("dotproxy.test", 28), frag=DF)
# RFC 2113 Router Alert (4 octets), then IHL 15: 40 octets of options
SEEDS["v4_router_alert.bin"] = udp4(Q, options=bytes([0x94, 4, 0, 0]))
SEEDS["v4_ihl15.bin"] = udp4(Q, options=bytes([1] * 39 + [0]))
SEEDS["v4_answer_from_53.bin"] = ip4(udp(DST4, SRC4, Q[:2] + b"\x81\x80" + Q[4:], 53, 40000), src=DST4, dst=SRC4)
SEEDS["v4_no_udp_checksum.bin"] = ip4(udp(SRC4, DST4, Q, checksum=False))
SEEDS["v4_ethernet_padding.bin"] = udp4(b"\0" * 2) + bytes(16)
SEEDS["v4_first_fragment.bin"] = (lambda p: p[:20 + 4] + struct.pack("!H", 8 + len(Q) + 1480) + p[26:])(
    udp4(Q, frag=MF))
SEEDS["v4_later_fragment.bin"] = ip4(Q, proto=UDP, frag=185)
SEEDS["v4_tcp_syn.bin"] = ip4(struct.pack("!HHIIBBHHH", 40000, 853, 1, 0, 5 << 4, 0x02, 65535, 0, 0), proto=TCP)
SEEDS["v4_icmp_echo.bin"] = ip4(struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"ping", proto=ICMP)
SEEDS["v4_bad_header_checksum.bin"] = (lambda p: p[:10] + b"\0\1" + p[12:])(udp4(Q))
SEEDS["v4_broadcast.bin"] = udp4(Q, dst=bytes([255] * 4))
SEEDS["v4_truncated.bin"] = udp4(Q)[:40]

# --- IPv6 ---
SEEDS["v6_query.bin"] = udp6(Q)
SEEDS["v6_query_aaaa.bin"] = udp6(dns_query("dotproxy.test", 28, 0x4242))
# Hop-by-Hop, Destination Options, then an RFC 8754 Segment Routing header with Segments Left 0
_srh = ext(UDP, bytes([4, 0, 0, 0, 0, 0]) + DST6)
SEEDS["v6_hbh_dstopts_srh.bin"] = udp6(Q, ext(DSTOPTS, padn(6)) + ext(ROUTING, padn(14)) + _srh, nh=HOPOPT)
SEEDS["v6_fragment.bin"] = ip6(struct.pack("!BBHI", UDP, 0, 1, 0xDEADBEEF) + udp(SRC6, DST6, Q), nh=FRAGMENT)
SEEDS["v6_no_next_header.bin"] = ip6(ext(NONE, padn(6)), nh=DSTOPTS)
SEEDS["v6_tcp.bin"] = ip6(struct.pack("!HHIIBBHHH", 40000, 853, 1, 0, 5 << 4, 0x02, 65535, 0, 0), nh=TCP)
SEEDS["v6_esp.bin"] = ip6(struct.pack("!II", 0x100, 1) + bytes(24), nh=ESP)
# RFC 2675 jumbogram: payload length 0 and a Jumbo Payload option
SEEDS["v6_jumbogram.bin"] = ip6(ext(UDP, bytes([0xC2, 4]) + struct.pack("!I", 8 + len(Q))) + udp(SRC6, DST6, Q),
                                nh=HOPOPT, plen=0)
SEEDS["v6_ext_past_end.bin"] = ip6(bytes([UDP, 255]) + padn(6) + udp(SRC6, DST6, Q), nh=DSTOPTS)
SEEDS["v6_no_udp_checksum.bin"] = ip6(udp(SRC6, DST6, Q, checksum=False))
_mdns = bytes.fromhex("ff0200000000000000000000000000fb")
SEEDS["v6_mdns_multicast.bin"] = ip6(udp(SRC6, _mdns, Q, 5353, 5353), dst=_mdns)
SEEDS["v6_truncated.bin"] = udp6(Q)[:60]


def main():
    write_corpus("pkt", SEEDS)


if __name__ == "__main__":
    main()

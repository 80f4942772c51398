#!/usr/bin/env python3
"""Write the seed corpus for tests/fuzz/fuzz_nfq.c into tests/fuzz/corpus/nfq/.

Each seed is one netlink datagram as the kernel's netfilter queue sends it:
nlmsghdr (16 bytes, host order), nfgenmsg (4), then NFQA_* attributes (RFC 3549
TLVs, 4-byte aligned), laid out from linux/netfilter/nfnetlink_queue.h.
Run: python3 tests/fuzz/corpus/make_nfq_seeds.py
"""
import struct

from seedwire import csum, write_corpus


NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT = 0, 1
(NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_MARK, NFQA_TIMESTAMP, NFQA_IFINDEX_INDEV,
 NFQA_IFINDEX_OUTDEV) = 1, 2, 3, 4, 5, 6
NFQA_HWADDR, NFQA_PAYLOAD, NFQA_CAP_LEN, NFQA_SKB_INFO, NFQA_UID, NFQA_GID = 9, 10, 13, 14, 16, 17


def attr(t, payload):
    a = struct.pack("=HH", 4 + len(payload), t) + payload
    return a + b"\0" * (-len(a) % 4)


def u32(t, v):
    return attr(t, struct.pack("!I", v))


def msg(attrs, mtype=(NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET, queue=0):
    body = struct.pack("!BBH", 0, 0, queue) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), mtype, 0, 0, 0) + body




def dns_query(name=b"www.dotproxy.test"):
    q = struct.pack("!6H", 0x1234, 0x0100, 1, 0, 0, 0)
    for label in name.split(b"."):
        q += bytes([len(label)]) + label
    return q + b"\0" + struct.pack("!HH", 1, 1)


def ip4_udp(payload, src=b"\xc0\x00\x02\x02", dst=b"\xc6\x33\x64\x35", sport=40000, dport=53, frag=0):
    ulen = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, ulen)
    udp = struct.pack("!4H", sport, dport, ulen, 0) + payload
    udp = udp[:6] + struct.pack("!H", csum(pseudo + udp) or 0xFFFF) + udp[8:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 1, frag, 64, 17, 0, src, dst)
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + udp


def ip6_udp(payload, src=bytes.fromhex("20010db8000100000000000000000002"),
            dst=bytes.fromhex("20010db8000200000000000000000053"), ext=b"", first=17):
    ulen = 8 + len(payload)
    pseudo = src + dst + struct.pack("!I3xB", ulen, 17)
    udp = struct.pack("!4H", 40000, 53, ulen, 0) + payload
    udp = udp[:6] + struct.pack("!H", csum(pseudo + udp) or 0xFFFF) + udp[8:]
    return struct.pack("!IHBB16s16s", 0x60000000, len(ext) + ulen, first, 64, src, dst) + ext + udp


def pkt_hdr(pid, proto=0x0800):
    return attr(NFQA_PACKET_HDR, struct.pack("!IHB", pid, proto, 0))


def main():
    q = dns_query()
    v4 = ip4_udp(q)
    v6 = ip6_udp(q)
    seeds = {
        "v4_forwarded": msg([pkt_hdr(1), u32(NFQA_IFINDEX_INDEV, 2), u32(NFQA_SKB_INFO, 0), attr(NFQA_PAYLOAD, v4)]),
        "v4_local_uid": msg([pkt_hdr(2), u32(NFQA_IFINDEX_OUTDEV, 3), u32(NFQA_UID, 1000), u32(NFQA_GID, 1000),
                             attr(NFQA_PAYLOAD, v4)]),
        "v6_forwarded": msg([pkt_hdr(3, 0x86DD), u32(NFQA_IFINDEX_INDEV, 2), attr(NFQA_PAYLOAD, v6)]),
        "v6_dstopts": msg([pkt_hdr(4, 0x86DD), attr(NFQA_PAYLOAD, ip6_udp(q, ext=bytes([17, 0]) + b"\x01\x04\0\0\0\0", first=60))]),
        "v4_truncated_copy": msg([pkt_hdr(5), u32(NFQA_CAP_LEN, 5000), attr(NFQA_PAYLOAD, v4)]),
        "v4_fragment": msg([pkt_hdr(6), attr(NFQA_PAYLOAD, ip4_udp(q, frag=0x2000))]),
        "csum_not_ready": msg([pkt_hdr(7), u32(NFQA_SKB_INFO, 1), attr(NFQA_PAYLOAD, v4)]),
        "two_messages": msg([pkt_hdr(8), attr(NFQA_PAYLOAD, v4)]) + msg([pkt_hdr(9), attr(NFQA_PAYLOAD, v6)]),
        "verdict_type": msg([attr(NFQA_VERDICT_HDR, struct.pack("!II", 1, 8))],
                            mtype=(NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_VERDICT),
        "no_payload": msg([pkt_hdr(10), u32(NFQA_MARK, 0x444)]),
        "short_pkt_hdr": msg([attr(NFQA_PACKET_HDR, b"\0\0\0"), attr(NFQA_PAYLOAD, v4)]),
        "error_msg": struct.pack("=IHHII", 36, 2, 0, 1, 0) + struct.pack("=i", -2) + struct.pack("=IHHII", 16, 0, 0, 0, 0),
    }
    write_corpus("nfq", seeds)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Write the seed corpus for tests/fuzz/fuzz_selftest.c into tests/fuzz/corpus/selftest/.

The target reads each input as a marker name in wire format, as a client query
(a marker or not) and as an answer to the client's marker query for nonce
00112233445566778899aabbccddeeff (its ID is taken from the input's first two
octets), so seeds cover each: bare names, marker queries in odd case and with
wrong suffixes or short nonces, and answers (dotproxy's TXT, a plaintext
NXDOMAIN, SERVFAIL, a TXT for another nonce).
Run: python3 tests/fuzz/corpus/make_selftest_seeds.py
"""
import struct

from seedwire import hdr, name, opt, ptr, question, rr, write_corpus

QR, RD, RA = 0x8000, 0x0100, 0x0080
TXT = 16
NONCE = "00112233445566778899aabbccddeeff"
MARKER = NONCE + ".self-test.dotproxy.invalid"


def txt(text):
    """RFC 1035 3.3.14: character-strings of up to 255 octets."""
    data = text.encode()
    out = b""
    for i in range(0, len(data), 255):
        out += bytes([len(data[i:i + 255])]) + data[i:i + 255]
    return out


DOTPROXY_TXT = ("dotproxy=0.1.0 upstream=198.51.100.2@853#dot.dotproxy.test tls=verified frontend=tproxy "
                "transport=udp family=ipv4 upstream-rcode=NXDOMAIN nonce=" + NONCE)

SEEDS = {
    "name_marker.bin": name(MARKER),
    "name_marker_upper.bin": name(MARKER.upper()),
    "name_short_nonce.bin": name("0123456789abcde.self-test.dotproxy.invalid"),
    "name_wrong_suffix.bin": name(NONCE + ".self-test.dotproxy.test"),
    "query_marker.bin": hdr(0x4242, RD) + question(MARKER, TXT),
    "query_marker_edns.bin": hdr(0x4243, RD, ar=1) + question(MARKER, TXT) + opt(),
    "query_marker_mixed_case.bin": hdr(0x4244, RD) + question("0123456789ABCDEF.Self-Test.DotProxy.Invalid", TXT),
    "query_marker_type_a.bin": hdr(0x4245, RD) + question(MARKER, 1),
    "query_marker_pointer.bin": hdr(0x4246, RD) + ptr(12) + struct.pack("!HH", TXT, 1),
    "answer_dotproxy.bin": hdr(0x4242, QR | RD | RA, an=1) + question(MARKER, TXT)
    + rr(ptr(12), TXT, 1, 0, txt(DOTPROXY_TXT)),
    "answer_long_txt.bin": hdr(0x4242, QR | RD | RA, an=1) + question(MARKER, TXT)
    + rr(ptr(12), TXT, 1, 0, txt(DOTPROXY_TXT.replace("upstream=", "upstream=" + "u" * 300))),
    "answer_other_nonce.bin": hdr(0x4242, QR | RD | RA, an=1) + question(MARKER, TXT)
    + rr(ptr(12), TXT, 1, 0, txt(DOTPROXY_TXT.replace(NONCE, "f" * 32))),
    "answer_nxdomain.bin": hdr(0x4242, QR | RD | RA | 3) + question(MARKER, TXT),
    "answer_servfail.bin": hdr(0x4242, QR | RD | RA | 2) + question(MARKER, TXT),
}

if __name__ == "__main__":
    write_corpus("selftest", SEEDS)

"""What the seed generators share: DNS wire format (RFC 1035, RFC 6891), the
Internet checksum (RFC 1071), and writing a corpus directory.

Imported by make_*_seeds.py, which sit beside it; run those, not this.
"""
import os
import struct

OPT = 41
IN = 1


def hdr(id_, flags, qd=1, an=0, ns=0, ar=0):
    """RFC 1035 4.1.1 header."""
    return struct.pack("!6H", id_, flags, qd, an, ns, ar)


def name(dotted):
    """Uncompressed labels plus the root; "" or "." is the root alone."""
    out = b""
    for label in dotted.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def ptr(off):
    """RFC 1035 4.1.4 compression pointer."""
    return struct.pack("!H", 0xC000 | off)


def question(dotted, qtype=1, qclass=IN):
    return name(dotted) + struct.pack("!HH", qtype, qclass)


def rr(owner, rtype, rclass, ttl, rdata):
    return owner + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def option(code, data=b""):
    """RFC 6891 6.1.2: OPTION-CODE, OPTION-LENGTH, OPTION-DATA."""
    return struct.pack("!HH", code, len(data)) + data


def opt(udp=1232, ttl=0, options=b""):
    """RFC 6891 6.1.2: root owner, CLASS = payload size, TTL = ext-rcode/version/DO."""
    return rr(b"\0", OPT, udp, ttl, options)


def csum(data):
    """RFC 1071: one's complement of the one's complement sum, odd octet padded."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def write_corpus(subdir, seeds):
    """Write {file name: bytes} into corpus/@subdir, listing what was written."""
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), subdir)
    os.makedirs(out, exist_ok=True)
    for fname, data in sorted(seeds.items()):
        with open(os.path.join(out, fname), "wb") as f:
            f.write(data)
        print(f"{fname:40s} {len(data):5d}")

#!/usr/bin/env python3
"""tests/lab/dnstap.py: a dnstap collector for the e2e tests (standard library only).

  dnstap.py SOCKET SECONDS

Listens on the unix socket SOCKET for an Unbound with `dnstap-enable: yes` and
`dnstap-socket-path: SOCKET` (bidirectional Frame Streams: READY/ACCEPT/START ... STOP/FINISH),
and prints one line per client message the server logged, as the server saw it on the wire:

  CLIENT_QUERY len=128 qname=www.dotproxy.test. edns=1 pad=1 keepalive=1
  CLIENT_RESPONSE len=468 qname=www.dotproxy.test. edns=1 pad=1 keepalive=0

len is the DNS message's length (without the 2-octet TCP length), pad and keepalive say whether
its OPT record carries an RFC 7830 Padding option (code 12) and an RFC 7828 edns-tcp-keepalive
option (code 11). Serves one server connection after another (the server may be restarted);
exits after SECONDS.
"""
import os
import select
import socket
import struct
import sys
import time

CONTENT_TYPE = b"protobuf:dnstap.Dnstap"
ACCEPT, START, STOP, READY, FINISH = 1, 2, 3, 4, 5
FIELD_CONTENT_TYPE = 1
# dnstap.proto Message.Type
MSG_TYPES = {1: "AUTH_QUERY", 2: "AUTH_RESPONSE", 3: "RESOLVER_QUERY", 4: "RESOLVER_RESPONSE",
             5: "CLIENT_QUERY", 6: "CLIENT_RESPONSE", 7: "FORWARDER_QUERY", 8: "FORWARDER_RESPONSE"}


def control_frame(ctype, with_content_type):
    body = struct.pack("!I", ctype)
    if with_content_type:
        body += struct.pack("!II", FIELD_CONTENT_TYPE, len(CONTENT_TYPE)) + CONTENT_TYPE
    return struct.pack("!II", 0, len(body)) + body


def varint(buf, off):
    val = shift = 0
    while True:
        if off >= len(buf) or shift > 63:
            raise ValueError("bad varint")
        b = buf[off]
        off += 1
        val |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return val, off


def protobuf_fields(buf):
    """{field number: [values]}: varints as int, length-delimited as bytes; others skipped."""
    out, off = {}, 0
    while off < len(buf):
        key, off = varint(buf, off)
        num, wire = key >> 3, key & 7
        if wire == 0:
            val, off = varint(buf, off)
        elif wire == 2:
            n, off = varint(buf, off)
            val, off = buf[off:off + n], off + n
        elif wire == 1:
            val, off = buf[off:off + 8], off + 8
        elif wire == 5:
            val, off = buf[off:off + 4], off + 4
        else:
            raise ValueError("wire type %d" % wire)
        out.setdefault(num, []).append(val)
    return out


def skip_name(msg, off):
    """Offset after the name at off; returns (text, offset) of its labels up to a pointer."""
    labels = []
    for _ in range(128):
        n = msg[off]
        if n & 0xC0 == 0xC0:
            return ".".join(labels) + ".", off + 2
        if n == 0:
            return ".".join(labels) + ".", off + 1
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n
    raise ValueError("name too long")


def describe(msg):
    """(qname, has OPT, has Padding, has keepalive) of a DNS message."""
    _id, _fl, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    off, qname = 12, "-"
    for _ in range(qd):
        qname, off = skip_name(msg, off)
        off += 4
    edns = pad = ka = False
    for i in range(an + ns + ar):
        _n, off = skip_name(msg, off)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        off += rdlen
        if rtype == 41 and i >= an + ns:
            edns = True
            o = 0
            while o + 4 <= len(rdata):
                code, olen = struct.unpack("!HH", rdata[o:o + 4])
                pad |= code == 12
                ka |= code == 11
                o += 4 + olen
    return qname, edns, pad, ka


def handle(data):
    top = protobuf_fields(data)
    for m in top.get(14, []):
        f = protobuf_fields(m)
        mtype = MSG_TYPES.get(f.get(1, [0])[0], "TYPE%d" % f.get(1, [0])[0])
        dns = (f.get(10) or f.get(14) or [b""])[0]
        try:
            qname, edns, pad, ka = describe(dns)
            print("%s len=%d qname=%s edns=%d pad=%d keepalive=%d" % (mtype, len(dns), qname, edns, pad, ka),
                  flush=True)
        except (ValueError, IndexError, struct.error) as e:
            print("%s len=%d unparsed=%s" % (mtype, len(dns), e), flush=True)


def serve(conn, deadline):
    buf = b""

    def need(n):
        nonlocal buf
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError()
            r, _, _ = select.select([conn], [], [], left)
            if not r:
                raise TimeoutError()
            chunk = conn.recv(65536)
            if not chunk:
                raise EOFError()
            buf += chunk
        out, buf = buf[:n], buf[n:]
        return out

    while True:
        n = struct.unpack("!I", need(4))[0]
        if n:
            handle(need(n))
            continue
        clen = struct.unpack("!I", need(4))[0]
        ctype = struct.unpack("!I", need(clen)[:4])[0]
        if ctype == READY:
            conn.sendall(control_frame(ACCEPT, True))
        elif ctype == STOP:
            conn.sendall(control_frame(FINISH, False))
            return


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, deadline = argv[1], time.monotonic() + float(argv[2])
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)
    print("listening %s" % path, flush=True)
    while time.monotonic() < deadline:
        r, _, _ = select.select([srv], [], [], max(0, deadline - time.monotonic()))
        if not r:
            break
        conn, _ = srv.accept()
        try:
            serve(conn, deadline)
        except (EOFError, TimeoutError, OSError, ValueError):
            pass
        conn.close()
    os.unlink(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

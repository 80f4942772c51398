#!/usr/bin/env python3
"""tests/lab/dnsclient.py: raw DNS clients for the e2e tests (standard library only).

What dig cannot show or will not send:
  src SERVER NAME TYPE        one UDP query from an *unconnected* socket; prints the address the
                              answer really came from (recvfrom), the rcode and the answers
  pipeline SERVER N [halfclose]
                              N queries written at once on one TCP connection (RFC 7766 6.2.1.1),
                              optionally followed by shutdown(SHUT_WR); prints how many answers
                              came back matched to their query
  oversize SERVER             one well-formed TCP query of more than 4096 octets (a big EDNS
                              option); prints the rcode that came back, or none
  sameid SERVER N             N UDP clients send queries with the same message ID at the same time;
                              prints how many got the answer to their own question
  garbage SERVER SEED N       malformed UDP and TCP input: prints one line per crafted case with what
                              came back (none or an rcode), then N random packets
  hold SERVER SECS            keep TCP connections open with half-sent messages for SECS seconds
  padded SERVER SIZE          one UDP query of SIZE octets (RFC 7830 padding): past the MTU it
                              leaves in IP fragments; prints the rcode and answers that came back
  badsum SERVER               one UDP/IPv4 query with a wrong UDP checksum, through a raw socket
                              (root); prints what came back (nothing should)
  burst SERVER N [SOURCE]     N UDP queries for www A sent at once from one socket (bound to the
                              address SOURCE if given), then up to 3 s for the answers; prints how
                              many came back with each rcode, and how many did not

Every wait is bounded; SERVER is an IPv4 or IPv6 address, the port is 53 unless PORT is set.
"""
import os
import random
import select
import socket
import struct
import sys
import time

PORT = int(os.environ.get("PORT", "53"))
TYPES = {"A": 1, "NS": 2, "SOA": 6, "TXT": 16, "AAAA": 28}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def wire_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def query(qid, name, qtype, flags=0x0100, edns=True):
    """A query message; flags 0x0100 = RD."""
    msg = struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 1 if edns else 0)
    msg += wire_name(name) + struct.pack("!HH", TYPES[qtype], 1)
    if edns:
        msg += b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)
    return msg


def read_name(msg, off):
    """Name at off (with compression, bounded); returns (name, offset after it)."""
    labels, jumped, end, hops = [], False, off, 0
    while True:
        if off >= len(msg) or hops > 64:
            raise ValueError("bad name")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg):
                raise ValueError("bad pointer")
            if not jumped:
                end = off + 2
            off = ((n & 0x3F) << 8) | msg[off + 1]
            jumped, hops = True, hops + 1
            continue
        if n == 0:
            return ".".join(labels) + ".", (end if jumped else off + 1)
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n


def parse(msg):
    """(id, flags, question (name, type) or None, [answer rdata as text])."""
    qid, flags, qd, an, _ns, _ar = struct.unpack("!HHHHHH", msg[:12])
    off, question, answers = 12, None, []
    if qd:
        qname, off = read_name(msg, off)
        qtype = struct.unpack("!H", msg[off:off + 2])[0]
        question = (qname.lower(), qtype)
        off += 4
    for _ in range(an):
        _n, off = read_name(msg, off)
        rtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", msg[off:off + 10])
        off += 10
        rdata = msg[off:off + rdlen]
        off += rdlen
        if rtype == 1:
            answers.append(socket.inet_ntop(socket.AF_INET, rdata))
        elif rtype == 28:
            answers.append(socket.inet_ntop(socket.AF_INET6, rdata))
        elif rtype == 16:
            i, parts = 0, []
            while i < len(rdata):
                parts.append(rdata[i + 1:i + 1 + rdata[i]].decode())
                i += 1 + rdata[i]
            answers.append("".join(parts))
    return qid, flags, question, answers


def rcode_name(flags):
    return RCODES.get(flags & 0xF, "RCODE%d" % (flags & 0xF))


def cmd_src(server, name, qtype):
    s = socket.socket(family(server), socket.SOCK_DGRAM)
    s.settimeout(3)
    qid = random.randrange(65536)
    s.sendto(query(qid, name, qtype), (server, PORT))
    try:
        data, peer = s.recvfrom(65535)
    except socket.timeout:
        print("from=none")
        return 1
    rid, flags, _q, answers = parse(data)
    print("from=%s port=%d id_match=%d rcode=%s answers=%s"
          % (peer[0], peer[1], rid == qid, rcode_name(flags), ",".join(sorted(answers)) or "none"))
    return 0


def recv_exact(sock, n, deadline):
    buf = b""
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        sock.settimeout(left)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def cmd_pipeline(server, n, halfclose=False):
    """N different questions in one write; each answer must carry its query's ID and question."""
    names = [("www.dotproxy.test", "A"), ("www.dotproxy.test", "AAAA"), ("mid.dotproxy.test", "TXT")]
    sent = {}
    blob = b""
    for i in range(n):
        qid = (0x1000 + i * 7) & 0xFFFF
        name, qtype = names[i % len(names)]
        sent[qid] = (name + ".", TYPES[qtype])
        msg = query(qid, name, qtype)
        blob += struct.pack("!H", len(msg)) + msg
    s = socket.create_connection((server, PORT), timeout=3)
    s.sendall(blob)
    if halfclose:
        s.shutdown(socket.SHUT_WR)   # done asking; the answers must still come
    deadline = time.monotonic() + 10
    matched = mismatched = 0
    order = []
    try:
        for _ in range(n):
            ln = struct.unpack("!H", recv_exact(s, 2, deadline))[0]
            rid, flags, q, _a = parse(recv_exact(s, ln, deadline))
            order.append(rid)
            if sent.pop(rid, None) == q and rcode_name(flags) == "NOERROR":
                matched += 1
            else:
                mismatched += 1
    except (socket.timeout, ConnectionError, OSError) as e:
        print("error=%s" % type(e).__name__)
    print("answered=%d/%d mismatched=%d" % (matched, n, mismatched))
    return 0


def cmd_oversize(server):
    """A query made big by an EDNS option (RFC 6891 6.1.2): 12 + question + OPT > 4096."""
    opt_data = struct.pack("!HH", 65001, 4200) + b"\0" * 4200
    msg = bytearray(query(0x5151, "www.dotproxy.test", "A", edns=False))
    msg[10:12] = struct.pack("!H", 1)
    msg += b"\0" + struct.pack("!HHIH", 41, 1232, 0, len(opt_data)) + opt_data
    s = socket.create_connection((server, PORT), timeout=3)
    s.sendall(struct.pack("!H", len(msg)) + bytes(msg))
    deadline = time.monotonic() + 5
    try:
        ln = struct.unpack("!H", recv_exact(s, 2, deadline))[0]
        rid, flags, _q, _a = parse(recv_exact(s, ln, deadline))
        print("size=%d id=%s rcode=%s" % (len(msg), "ok" if rid == 0x5151 else "wrong", rcode_name(flags)))
    except (socket.timeout, ConnectionError, OSError) as e:
        print("size=%d rcode=none (%s)" % (len(msg), type(e).__name__))
    return 0


def cmd_sameid(server, n):
    """N sockets, one shared message ID, different questions, all in flight together."""
    qs = [("www.dotproxy.test", "A"), ("www.dotproxy.test", "AAAA"),
          ("mid.dotproxy.test", "TXT"), ("nx%d.dotproxy.test", "A")]
    socks = []
    for i in range(n):
        name, qtype = qs[i % len(qs)]
        if "%d" in name:
            name = name % i
        s = socket.socket(family(server), socket.SOCK_DGRAM)
        s.setblocking(False)
        s.sendto(query(0x4242, name, qtype), (server, PORT))
        socks.append((s, (name + ".", TYPES[qtype])))
    want = {s.fileno(): q for s, q in socks}
    by_fd = {s.fileno(): s for s, _ in socks}
    good = bad = 0
    deadline = time.monotonic() + 5
    while want and time.monotonic() < deadline:
        r, _, _ = select.select(list(by_fd[f] for f in want), [], [], max(0, deadline - time.monotonic()))
        for s in r:
            data = s.recv(65535)
            rid, _flags, q, _a = parse(data)
            if rid == 0x4242 and q == want[s.fileno()]:
                good += 1
            else:
                bad += 1
            del want[s.fileno()]
    print("own_answer=%d/%d wrong=%d unanswered=%d" % (good, n, bad, len(want)))
    return 0


def crafted():
    """(case name, packet) pairs: each malformed; the IDs are distinct and known."""
    good = query(0x5001, "www.dotproxy.test", "A", edns=False)
    q = lambda qid, qd=1, flags=0x0100, ar=0: struct.pack("!HHHHHH", qid, flags, qd, 0, 0, ar)
    tail = struct.pack("!HH", 1, 1)
    cases = [
        ("qr-set", struct.pack("!H", 0x5002) + struct.pack("!H", 0x8100) + good[4:]),
        ("compression-self-loop", q(0x5003) + b"\xc0\x0c" + tail),
        ("compression-two-step-loop", q(0x5004) + b"\x01a\xc0\x0c" + tail),
        ("compression-forward-pointer", q(0x5005) + b"\xc0\x20" + tail + b"\0" * 20),
        ("pointer-past-end", q(0x5006) + b"\xc3\xff" + tail),
        ("label-type-0x40", q(0x5007) + b"\x41" + b"a" * 65 + b"\0" + tail),
        ("name-over-255", q(0x5008) + (b"\x3f" + b"a" * 63) * 5 + b"\0" + tail),
        ("question-cut", q(0x5009) + b"\x03www\x08dotproxy"),
        ("no-question", q(0x500A, qd=0)),
        ("two-questions", q(0x500B, qd=2) + wire_name("www.dotproxy.test") + tail
         + wire_name("www.dotproxy.test") + tail),
        ("trailing-junk", struct.pack("!H", 0x500C) + good[2:] + b"\xde\xad\xbe\xef" * 5),
        ("opt-rdlen-past-end", q(0x500D, ar=1) + wire_name("www.dotproxy.test") + tail
         + b"\0" + struct.pack("!HHIH", 41, 1232, 0, 100)),
    ]
    return cases


def wait_reply(sock, secs):
    r, _, _ = select.select([sock], [], [], secs)
    if not r:
        return None
    return sock.recv(65535)


def cmd_garbage(server, seed, nrandom):
    rng = random.Random(seed)
    fam = family(server)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.connect((server, PORT))
    # 1. packets shorter than a DNS header (RFC 1035 4.1.1: 12 octets): must be dropped
    short_replies = 0
    for n in range(0, 12):
        s.send(bytes(rng.randrange(256) for _ in range(n)))
        if wait_reply(s, 0.05) is not None:
            short_replies += 1
    print("short sent=12 replies=%d" % short_replies)
    # 2. crafted malformed queries: no reply, or FORMERR carrying the query's ID
    for name, pkt in crafted():
        qid = struct.unpack("!H", pkt[:2])[0]
        s.send(pkt)
        data = wait_reply(s, 0.2)
        while data is not None and len(data) >= 12 and struct.unpack("!H", data[:2])[0] != qid:
            data = wait_reply(s, 0.2)  # a late answer to something earlier
        if data is None:
            seen = "none"
        elif len(data) < 12:
            seen = "short-reply"
        else:
            seen = rcode_name(struct.unpack("!H", data[2:4])[0])
        print("case %s reply=%s" % (name, seen))
    # 3. random bytes of random lengths (paced so the kernel drops none)
    replies = 0
    for _ in range(nrandom):
        s.send(bytes(rng.randrange(256) for _ in range(rng.randrange(12, 600))))
        time.sleep(0.002)
        while wait_reply(s, 0) is not None:
            replies += 1
    print("random sent=%d replies=%d" % (nrandom, replies))
    # 4. TCP: bad lengths, garbage, a message cut off by a close
    tcp = [b"\x00\x00", b"\x00\x05" + bytes(5), b"\xff\xff" + bytes(rng.randrange(256) for _ in range(100)),
           bytes(rng.randrange(256) for _ in range(2000)), b"\x00\x0c" + crafted()[1][1][:12]]
    closed = 0
    for blob in tcp:
        try:
            c = socket.create_connection((server, PORT), timeout=2)
            c.sendall(blob)
            c.settimeout(0.5)
            try:
                c.recv(65535)
            except socket.timeout:
                pass
            c.close()
            closed += 1
        except OSError as e:
            print("tcp error=%s" % e)
    print("tcp sent=%d" % closed)
    return 0


def cmd_hold(server, secs):
    """Half-sent TCP messages that a server must not wait on for everyone else."""
    conns = []
    msg = query(0x6001, "www.dotproxy.test", "A")
    for blob in (b"\x00", struct.pack("!H", len(msg)) + msg[:5], struct.pack("!H", 300)):
        c = socket.create_connection((server, PORT), timeout=2)
        c.sendall(blob)
        conns.append(c)
    print("holding=%d" % len(conns), flush=True)
    time.sleep(secs)
    for c in conns:
        c.close()
    return 0


def cmd_padded(server, size):
    """www A with an EDNS Padding option (RFC 7830, code 12) making the message SIZE octets."""
    base = bytearray(query(0x7070, "www.dotproxy.test", "A", edns=False))
    base[10:12] = struct.pack("!H", 1)
    pad = size - len(base) - 11 - 4
    msg = bytes(base) + b"\0" + struct.pack("!HHIH", 41, 1232, 0, 4 + pad) + struct.pack("!HH", 12, pad) + b"\0" * pad
    s = socket.socket(family(server), socket.SOCK_DGRAM)
    s.sendto(msg, (server, PORT))
    data = wait_reply(s, 3)
    if data is None:
        print("size=%d rcode=none" % len(msg))
        return 0
    rid, flags, _q, answers = parse(data)
    print("size=%d id=%s rcode=%s answers=%s" % (len(msg), "ok" if rid == 0x7070 else "wrong",
                                                 rcode_name(flags), ",".join(answers)))
    return 0


def inet_sum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def cmd_badsum(server):
    """A well-formed query whose UDP checksum is off by one: a receiver must drop it."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.connect((server, PORT))
    src, sport = probe.getsockname()      # our address toward SERVER, and a port we listen on
    payload = query(0x7171, "www.dotproxy.test", "A")
    ulen = 8 + len(payload)
    saddr, daddr = socket.inet_aton(src), socket.inet_aton(server)
    udp = struct.pack("!4H", sport, PORT, ulen, 0) + payload
    good = ~inet_sum(saddr + daddr + struct.pack("!BBH", 0, 17, ulen) + udp) & 0xFFFF
    bad = (good + 1) & 0xFFFF or 1
    udp = udp[:6] + struct.pack("!H", bad) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 0x7171, 0, 64, 17, 0, saddr, daddr)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    raw.sendto(ip + udp, (server, 0))
    data = wait_reply(probe, 2)
    print("badsum sent=1 replies=%d" % (0 if data is None else 1))
    return 0


def cmd_burst(server, n, source=None):
    """N queries as fast as the socket takes them (a rate limit's test): rcodes counted by ID."""
    s = socket.socket(family(server), socket.SOCK_DGRAM)
    if source:
        s.bind((source, 0))
    ids = set()
    for i in range(n):
        qid = (0x2000 + i) & 0xFFFF
        ids.add(qid)
        s.sendto(query(qid, "www.dotproxy.test", "A"), (server, PORT))
    counts = {}
    deadline = time.monotonic() + 3
    while ids and time.monotonic() < deadline:
        data = wait_reply(s, max(0, deadline - time.monotonic()))
        if data is None:
            break
        rid, flags, _q, _a = parse(data)
        if rid in ids:
            ids.discard(rid)
            counts[rcode_name(flags)] = counts.get(rcode_name(flags), 0) + 1
    print("sent=%d %s none=%d" % (n, " ".join("%s=%d" % kv for kv in sorted(counts.items())), len(ids)))
    return 0


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, server = argv[1], argv[2]
    if cmd == "src":
        return cmd_src(server, argv[3], argv[4])
    if cmd == "pipeline":
        return cmd_pipeline(server, int(argv[3]), len(argv) > 4 and argv[4] == "halfclose")
    if cmd == "oversize":
        return cmd_oversize(server)
    if cmd == "sameid":
        return cmd_sameid(server, int(argv[3]))
    if cmd == "garbage":
        return cmd_garbage(server, int(argv[3]), int(argv[4]))
    if cmd == "hold":
        return cmd_hold(server, float(argv[3]))
    if cmd == "padded":
        return cmd_padded(server, int(argv[3]))
    if cmd == "badsum":
        return cmd_badsum(server)
    if cmd == "burst":
        return cmd_burst(server, int(argv[3]), argv[4] if len(argv) > 4 else None)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

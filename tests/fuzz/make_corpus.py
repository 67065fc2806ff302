#!/usr/bin/env python3
"""make_corpus.py: writes the seed corpora of tests/fuzz/ (corpus/<target>/).

Run from anywhere; rewrites the seeds it knows and leaves other files (found
by libFuzzer and kept on purpose) alone. The input formats are described at
the top of each target's .cpp file.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))


# ---- dns_reply_fuzz -------------------------------------------------------
# mode: bits 0-2 the call (0 getaddrinfo AF_UNSPEC, 1 AF_INET, 2 AF_INET6,
# 3 AF_INET6+AI_V4MAPPED, 4 +AI_ALL, 5 gethostbyname2_r AF_INET, 6 AF_INET6,
# 7 gethostbyaddr_r 10.1.2.3), bit 3 AI_CANONNAME, bits 4-7 the buffer size.

A, CNAME, PTR, AAAA = 1, 5, 12, 28
QNAME = b"\xc0\x0c"  # a pointer to the question's name


def name(text):
    out = b""
    for label in text.split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def rr(owner, rtype, rdata, ttl=300):
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


def reply(mode, records, rcode=0, ns=(), ar=(), flags1=0x05):
    head = bytes([mode, flags1, 0x80 | rcode]) + struct.pack(">HHH", len(records), len(ns), len(ar))
    return head + b"".join(records) + b"".join(ns) + b"".join(ar)


def ip4(text):
    return bytes(int(x) for x in text.split("."))


def ip6(last):
    return bytes([0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [last])


dns = "dns_reply_fuzz"
one_a = [rr(QNAME, A, ip4("10.0.0.1"))]
three_a = [rr(QNAME, A, ip4("10.0.0.%d" % i)) for i in (1, 2, 3)]
both = [rr(QNAME, A, ip4("10.0.0.1")), rr(QNAME, AAAA, ip6(1)), rr(QNAME, AAAA, ip6(2))]
chain = [rr(QNAME, CNAME, name("one.fuzz.test")), rr(name("one.fuzz.test"), CNAME, name("two.fuzz.test")),
         rr(name("two.fuzz.test"), A, ip4("10.9.9.9")), rr(name("two.fuzz.test"), AAAA, ip6(9))]
write(dns, "gai-unspec-a", reply(0x00, one_a))
write(dns, "gai-inet-three-a", reply(0x01, three_a))
write(dns, "gai-inet6-aaaa", reply(0x02, both))
write(dns, "gai-v4mapped", reply(0x03, one_a))
write(dns, "gai-v4mapped-all", reply(0x04, both))
write(dns, "gai-canon-chain", reply(0x08, chain))
write(dns, "gai-canon-inet6-chain", reply(0x0a, chain))
write(dns, "ghbn-inet-chain", reply(0xf5, chain))
write(dns, "ghbn-inet-small-buffer", reply(0x05, three_a))
write(dns, "ghbn-inet6", reply(0x36, both))
write(dns, "ghba-ptr", bytes([0xf7, 0x05, 0x80]) + struct.pack(">HHH", 2, 0, 0) +
      rr(QNAME, PTR, name("host.fuzz.test")) + rr(QNAME, PTR, name("alias.fuzz.test")))
write(dns, "ghba-ptr-small-buffer", bytes([0x17, 0x05, 0x80]) + struct.pack(">HHH", 1, 0, 0) +
      rr(QNAME, PTR, name("a-rather-long-host-name.fuzz.test")))
write(dns, "nxdomain", reply(0x00, [], rcode=3))
write(dns, "servfail", reply(0x05, [], rcode=2))
write(dns, "nodata-with-soa", reply(0x01, [], ns=[rr(name("fuzz.test"), 6, name("ns.fuzz.test") + name("root.fuzz.test") +
                                                   struct.pack(">IIIII", 1, 2, 3, 4, 5))]))
write(dns, "rdlength-past-end", reply(0x00, [QNAME + struct.pack(">HHIH", A, 1, 300, 200) + ip4("10.0.0.1")]))
write(dns, "a-with-short-rdata", reply(0x01, [rr(QNAME, A, b"\x0a\x00")]))
write(dns, "compression-loop", reply(0x08, [b"\xc0\x1b" + struct.pack(">HHIH", CNAME, 1, 300, 2) + b"\xc0\x1b"]))
write(dns, "cname-to-itself", reply(0x08, [rr(QNAME, CNAME, name("fuzz.test")), rr(QNAME, A, ip4("10.0.0.7"))]))
write(dns, "counts-too-large", bytes([0x00, 0x05, 0x80, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00]) + b"".join(one_a))

# ---- fd_table_fuzz ----------------------------------------------------------
# Two-byte steps (op, arg); slots a = arg & 7, b = (arg >> 3) & 7 (b != a).
SOCKETPAIR, PIPE, CLOSE, DUP, DUP2, WRITE, READER, POLL, KILL, YIELD, NONBLOCK, READ_NB, SHUT, CLOSE_BEHIND = range(14)


def ab(a, b, high=0):
    return a | (b << 3) | (high << 6)


fd = "fd_table_fuzz"
write(fd, "reader-gets-data", [SOCKETPAIR, ab(0, 1), READER, ab(0, 0), WRITE, ab(1, 0, 3), YIELD, 0])
write(fd, "close-wakes-reader", [SOCKETPAIR, ab(0, 1), READER, ab(0, 0), CLOSE, ab(0, 0), YIELD, 0])
write(fd, "close-behind-moss", [PIPE, ab(2, 3), READER, ab(2, 0), CLOSE_BEHIND, ab(2, 0), PIPE, ab(4, 5)])
write(fd, "dup2-over-waiter", [SOCKETPAIR, ab(0, 1), PIPE, ab(2, 3), READER, ab(2, 0), DUP2, ab(0, 2), WRITE, ab(1, 0, 1)])
write(fd, "number-reuse", [SOCKETPAIR, ab(0, 1), CLOSE, ab(0, 0), PIPE, ab(2, 3), DUP, ab(2, 0), READER, ab(0, 0),
                           WRITE, ab(3, 0), YIELD, 0])
write(fd, "nonblocking-reads", [PIPE, ab(0, 1), NONBLOCK, ab(0, 0), READ_NB, ab(0, 0), WRITE, ab(1, 0),
                                READ_NB, ab(0, 0), NONBLOCK, ab(0, 0), READER, ab(0, 0), WRITE, ab(1, 0)])
write(fd, "shutdown-wakes", [SOCKETPAIR, ab(0, 1), READER, ab(0, 0), READER, ab(0, 0), SHUT, ab(1, 0), YIELD, 0])
write(fd, "polls-and-kills", [SOCKETPAIR, ab(0, 1), POLL, ab(0, 1, 2), READER, ab(1, 0), KILL, 0, POLL, ab(1, 0, 0),
                              WRITE, ab(0, 0), YIELD, 0, KILL, 1])
write(fd, "dup-chain", [PIPE, ab(0, 1), DUP, ab(1, 2), DUP, ab(2, 3), CLOSE, ab(1, 0), READER, ab(0, 0), CLOSE, ab(2, 0),
                        CLOSE, ab(3, 0), YIELD, 0])

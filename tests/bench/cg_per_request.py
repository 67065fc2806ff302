#!/usr/bin/env python3
# cg_per_request: a server's user-space instructions and simulated cache
# misses per request at N keep-alive connections, under Valgrind's
# cachegrind. Unlike CPU time these counts do not depend on the machine's
# load, so a change to the park/resume path can be judged on a busy machine.
#
#   cg_per_request.py [--conns N] [--rounds A B] [--ll BYTES] [--keep DIR]
#                     NAME=ARGV... [NAME=ARGV ...]
#
# Each server is given as NAME=COMMAND (split like a shell line; the command must
# print its port on its first stdout line, as "port N" or as moss-httpd's
# "http://127.0.0.1:N/"; a launcher such as mossrun may exec it). For each, two runs under cachegrind (LL as given,
# 8 MiB 16-way by default): the client opens N connections (in chunks, one
# request on each as it opens), then makes A (resp. B) rounds, a round
# being one GET /hello on every connection in turn, all sent before any
# answer is read (so the server sees them in batches, as under wrk at c=N).
# The difference of the two runs' totals divided by (B - A) * N is the cost
# of one request with the other N - 1 connections parked: start-up,
# accepting and teardown cancel out. Printed per server: instructions (Ir),
# D1 and LL misses (reads + writes + instruction fetches) per request.
# With --keep DIR the cachegrind files stay there; `cg_diff A B` of a pair
# and `cg_annotate` of the result give the per-function difference.
import argparse
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402
from benchlib import raise_nofile  # noqa: E402

REQUEST = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def read_answer(s, buf):
    """Reads one HTTP response from s (buf: bytes left over); returns the rest."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            m = re.search(rb"(?i)content-length:\s*(\d+)", buf[:end])
            if not m:
                sys.exit("cg_per_request: a response without Content-Length")
            total = end + 4 + int(m.group(1))
            if len(buf) >= total:
                return buf[total:]
        chunk = s.recv(65536)
        if not chunk:
            sys.exit("cg_per_request: the server closed a connection")
        buf += chunk


def exchange(socks, bufs, idx):
    for i in idx:
        socks[i].sendall(REQUEST)
    for i in idx:
        bufs[i] = read_answer(socks[i], bufs[i])


def drive(port, conns, rounds):
    socks, bufs = [], []
    chunk = 500
    for start in range(0, conns, chunk):
        new = range(start, min(conns, start + chunk))
        for _ in new:
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
            bufs.append(b"")
        exchange(socks, bufs, new)  # every connection accepted and answered once
    everyone = range(conns)
    for _ in range(rounds):
        exchange(socks, bufs, everyone)
    return socks  # closed after the server is stopped: teardown is not measured


def summary(path):
    events, totals = None, None
    with open(path) as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("summary:"):
                totals = [int(x) for x in line.split()[1:]]
    return dict(zip(events, totals))


def run_one(argv, conns, rounds, ll, out):
    # --trace-children: a launcher (mossrun) execs the server; each process
    # writes its own file (%p), and the server's is the one with the most
    # instructions.
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=yes", f"--LL={ll},64", "--trace-children=yes",
           f"--cachegrind-out-file={out}.%p"] + argv
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            preexec_fn=raise_nofile)
    try:
        line = proc.stdout.readline()
        m = re.search(benchlib.ANY_PORT_RE, line)
        if not m:
            sys.exit(f"cg_per_request: {argv[0]} did not report a port: {line!r}")
        socks = drive(int(m.group(1)), conns, rounds)
    finally:
        proc.terminate()
        proc.wait(120)
    for s in socks:
        s.close()
    files = glob.glob(f"{glob.escape(out)}.*")
    best = max(files, key=lambda f: summary(f).get("Ir", 0))
    os.replace(best, out)
    for f in files:
        if f != best:
            os.remove(f)
    return summary(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("servers", nargs="+", help="NAME=COMMAND (split like a shell line)")
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--rounds", type=int, nargs=2, default=[1, 4], metavar=("A", "B"))
    ap.add_argument("--ll", default="2097152,1024", help="LL cache: BYTES,WAYS (64 B lines)")
    ap.add_argument("--keep", help="keep the cachegrind files in this directory")
    args = ap.parse_args()
    raise_nofile()
    if shutil.which("valgrind") is None:
        print("cg_per_request: valgrind is needed; skipping")
        return 77
    a, b = args.rounds
    if b <= a:
        sys.exit("cg_per_request: --rounds A B needs B > A")
    where = args.keep or tempfile.mkdtemp(prefix="cg_per_request.")
    os.makedirs(where, exist_ok=True)
    reqs = (b - a) * args.conns
    print(f"per request at {args.conns} connections ({b} - {a} rounds), LL {args.ll} B:")
    print(f"{'server':<16} {'Ir':>9} {'D1 miss':>9} {'LL miss':>9} {'LLd miss':>9}")
    try:
        servers = [benchlib.server_spec(spec) for spec in args.servers]
    except ValueError as e:
        ap.error(str(e))
    for name, argv in servers:
        lo = run_one(argv, args.conns, a, args.ll, os.path.join(where, f"{name}.{a}.cg"))
        hi = run_one(argv, args.conns, b, args.ll, os.path.join(where, f"{name}.{b}.cg"))
        d = {k: (hi[k] - lo[k]) / reqs for k in hi}
        d1 = d["D1mr"] + d["D1mw"] + d["I1mr"]
        ll = d["DLmr"] + d["DLmw"] + d["ILmr"]
        print(f"{name:<16} {d['Ir']:>9.0f} {d1:>9.1f} {ll:>9.2f} {d['DLmr'] + d['DLmw']:>9.2f}", flush=True)
    if not args.keep:
        shutil.rmtree(where, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

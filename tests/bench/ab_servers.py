#!/usr/bin/env python3
# ab_servers: HTTP "hello" servers side by side under wrk, for judging a
# change by wall-clock CPU (what cachegrind cannot show: prefetches, TLB,
# the kernel). Each server is NAME=COMMAND (split like a shell line; the
# command prints its port first, as "port N" or as moss-httpd's
# "http://127.0.0.1:N/"). Rounds are interleaved, server on core 0 and wrk
# on core 1; each server's CPU per request and req/s are divided by the
# first server's in the same round, and the median of those ratios is
# printed (a VM's speed drifts over minutes; one round runs its servers
# seconds apart). Typical use: the epoll baseline first, then snapshots of
# a server built before and after a change:
#
#   ab_servers.py "epoll=build/tests/bench/epoll_hello 0" \
#                 "before=/tmp/old/tests/bench/blocking_hello 0" \
#                 "after=build/tests/bench/blocking_hello 0" --conns 10000
import argparse
import os
import shutil
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="HTTP hello servers side by side under wrk (ratios to the first)")
    ap.add_argument("servers", nargs="+", help="NAME=COMMAND; the first is the baseline")
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--duration", type=int, default=6, help="seconds of wrk per run")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    try:
        servers = [benchlib.server_spec(spec) for spec in args.servers]
    except ValueError as e:
        ap.error(str(e))
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        sys.exit("ab_servers: wrk and taskset are needed")
    benchlib.raise_nofile()
    rounds = []
    for r in range(args.rounds):
        row = {}
        for name, argv in servers:
            try:
                m = benchlib.measure(argv, args.conns, args.duration, "0", "1", port_re=benchlib.ANY_PORT_RE)
            except benchlib.ServerError as e:
                sys.exit(f"ab_servers: {e}")
            row[name] = m
            print(f"round {r + 1}: {name:<16} {m['rps']:>9.0f} req/s {m['ns']:>7.0f} ns CPU/req "
                  f"VmHWM {m['hwm'] / 1024:6.1f} MiB {m['problems'] or ''}", flush=True)
        rounds.append(row)
    base = servers[0][0]
    print(f"c{args.conns}, {args.rounds} rounds: medians of the rounds' ratios to {base}")
    for name, _ in servers:
        cpu = [r[name]["ns"] / r[base]["ns"] for r in rounds]
        rps = [r[name]["rps"] / r[base]["rps"] for r in rounds]
        print(f"  {name:<16} CPU/req {statistics.median(cpu):.3f}x ({' '.join(f'{x:.3f}' for x in cpu)})"
              f"  req/s {statistics.median(rps):.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
# httpd_bench: moss-httpd's /hello against a hand-written epoll server
# (epoll_hello), both driven by wrk in the same run.
#
#   httpd_bench.py MOSS_HTTPD EPOLL_HELLO [--duration S] [--rounds N]
#
# Pinned runs: the server on core 0, wrk (-t1) on core 1, at 100 and 1,000
# connections. Reported per run: requests/s, and the server's CPU time per
# request (utime + stime from /proc/<pid>/stat, read before and after the
# wrk run, over the requests wrk counted), then moss/epoll ratios. Then
# moss-httpd --workers 2 vs --workers 1, unpinned (the machine has 2 cores,
# so wrk competes with the second worker: read it as a scaling check, not a
# scaling figure). With --rounds N each run is repeated, interleaved, and
# the best round is kept, which filters out noise from other load.
import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / TICK


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class server:
    def __init__(self, argv, port_re, cpus=None):
        if cpus is not None:
            argv = ["taskset", "-c", cpus] + argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     preexec_fn=raise_nofile, text=True)
        line = self.proc.stdout.readline()
        m = re.search(port_re, line)
        if not m:
            self.stop()
            sys.exit(f"httpd_bench: {argv[0]} did not report a port: {line!r}")
        self.port = int(m.group(1))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wrk(port, conns, duration, cpus, threads=1):
    argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", f"http://127.0.0.1:{port}/hello"]
    if cpus is not None:
        argv = ["taskset", "-c", cpus] + argv
    out = subprocess.run(argv, capture_output=True, text=True, preexec_fn=raise_nofile, check=True).stdout
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    problems = (errors.group(1) if errors else "") + (f" non-2xx {non2xx.group(1)}" if non2xx else "")
    return reqs, rps, problems.strip()


def measure(srv, conns, duration, wrk_cpus):
    before = cpu_seconds(srv.proc.pid)
    reqs, rps, problems = wrk(srv.port, conns, duration, wrk_cpus)
    cpu = cpu_seconds(srv.proc.pid) - before
    return {"rps": rps, "ns_per_req": cpu / max(reqs, 1) * 1e9, "cpu": cpu, "reqs": reqs, "problems": problems}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("moss_httpd")
    ap.add_argument("epoll_hello")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        print("httpd_bench: wrk and taskset are needed; skipping")
        return 77
    two_cores = os.cpu_count() >= 2
    srv_cpus, wrk_cpus = ("0", "1") if two_cores else (None, None)
    root = tempfile.mkdtemp(prefix="httpd_bench.")
    moss_re = r"127\.0\.0\.1:(\d+)/"
    runs = {}
    try:
        for rnd in range(args.rounds):
            for conns in (100, 1000):
                for name, argv, port_re in (
                    ("moss-httpd", [args.moss_httpd, "--port", "0", root], moss_re),
                    ("epoll_hello", [args.epoll_hello, "0"], r"port (\d+)"),
                ):
                    srv = server(argv, port_re, srv_cpus)
                    try:
                        r = measure(srv, conns, args.duration, wrk_cpus)
                    finally:
                        srv.stop()
                    key = (name, conns)
                    if key not in runs or r["rps"] > runs[key]["rps"]:
                        runs[key] = r
            for workers in (1, 2):
                srv = server([args.moss_httpd, "--port", "0", "--workers", str(workers), root], moss_re)
                try:
                    r = measure(srv, 100, args.duration, None)
                finally:
                    srv.stop()
                key = (f"moss-httpd --workers {workers} (unpinned)", 100)
                if key not in runs or r["rps"] > runs[key]["rps"]:
                    runs[key] = r
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"wrk -t1 -d{args.duration}s /hello; server on core 0, wrk on core 1; best of {args.rounds}")
    print(f"{'server':<40} {'conns':>5} {'req/s':>10} {'CPU ns/req':>11}  problems")
    for (name, conns), r in runs.items():
        print(f"{name:<40} {conns:>5} {r['rps']:>10.0f} {r['ns_per_req']:>11.0f}  {r['problems'] or '-'}")
    for conns in (100, 1000):
        m, e = runs[("moss-httpd", conns)], runs[("epoll_hello", conns)]
        print(f"c{conns}: moss/epoll req/s {m['rps'] / e['rps']:.2f}, CPU per request {m['ns_per_req'] / e['ns_per_req']:.2f}x")
    w1 = runs[("moss-httpd --workers 1 (unpinned)", 100)]
    w2 = runs[("moss-httpd --workers 2 (unpinned)", 100)]
    print(f"workers 2 vs 1 (c100, unpinned): req/s {w2['rps'] / w1['rps']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

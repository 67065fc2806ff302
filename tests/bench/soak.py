#!/usr/bin/env python3
# soak: issue 12's bounded soak. moss-echo and moss-httpd each take a few
# minutes of 10,000 client loops churning connections: most finish their
# exchange and close, some reset mid-transfer (SO_LINGER 0), some go silent
# and are either reset later or reaped by the server's idle timer. Then the
# server must be back where it started:
#
#   - open fds (/proc/PID/fd) back to the count before the churn;
#   - moss's own count of unfinished tasks and armed timers (read from the
#     dump MOSS_DUMP_SIGNAL prints on stderr) back to the count before;
#   - resident memory settling: pools and malloc's free lists keep what the
#     peak of open connections took, so RSS may rise after the first round,
#     but each round by less than the one before (a leak adds the same
#     amount every round).
#
#   soak.py MOSS_ECHO MOSS_HTTPD [--seconds S] [--clients N] [--rounds R] [--only echo|httpd]
#
# Every exchange is checked: an echo that differs from what was sent, or an
# HTTP answer that is not "200 ... hello", counts as an error and fails the
# run. Exit status 0 when every check holds.
import argparse
import asyncio
import os
import random
import re
import signal
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402  (raise_nofile, server)

DUMP_SIGNAL = signal.SIGUSR2


class server(benchlib.server):
    def __init__(self, name, argv):
        self.name = name
        self.err = tempfile.NamedTemporaryFile(prefix=f"soak-{name}-", suffix=".err", delete=False)
        env = dict(os.environ, MOSS_DUMP_SIGNAL="SIGUSR2")
        try:
            super().__init__(argv, r"(\d+\.\d+\.\d+\.\d+):(\d+)", env=env, stderr=self.err)
        except benchlib.ServerError as e:
            if os.path.exists(self.err.name):  # stop() removed it if the server started
                os.unlink(self.err.name)
            raise SystemExit(f"soak: {name} did not say where it listens: {e}")

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def counters(self):
        # The dump's hub line: "hub of thread T: N unfinished tasks, M timers armed, ..."
        with open(self.err.name) as f:
            before = len(f.read())
        self.proc.send_signal(DUMP_SIGNAL)
        for _ in range(100):
            time.sleep(0.05)
            with open(self.err.name) as f:
                text = f.read()[before:]
            m = re.search(r"hub of thread \d+: (\d+) unfinished tasks?, (\d+) timers? armed", text)
            if m and text.endswith("\n"):
                return int(m.group(1)), int(m.group(2))
        raise SystemExit(f"soak: {self.name} printed no dump on {DUMP_SIGNAL.name}")

    def stop(self):
        super().stop(sig_timeout=15)  # SIGTERM, SIGKILL after 15 s
        os.unlink(self.err.name)


def abort(writer):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def echo_once(port, rng, stats):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    roll = rng.random()
    payload = rng.randbytes(rng.randint(1, 8192))
    if roll < 0.05:  # silent for a while, then reset
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        abort(w)
        stats["reset"] += 1
        return
    w.write(payload)
    await w.drain()
    if roll < 0.25:  # reset mid-transfer, the echo still on its way
        abort(w)
        stats["reset"] += 1
        return
    got = await r.readexactly(len(payload))
    if got != payload:
        stats["errors"] += 1
    w.close()
    await w.wait_closed()
    stats["done"] += 1


HTTP_GET = b"GET /hello HTTP/1.1\r\nHost: soak\r\n\r\n"
HTTP_CLOSE = b"GET /hello HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n"


async def http_answer(r):
    head = await r.readuntil(b"\r\n\r\n")
    m = re.search(rb"[Cc]ontent-[Ll]ength: *(\d+)", head)
    body = await r.readexactly(int(m.group(1))) if m else b""
    return head.startswith(b"HTTP/1.1 200") and body.startswith(b"hello")


async def http_once(port, rng, stats):
    r, w = await asyncio.open_connection("127.0.0.1", port)
    roll = rng.random()
    if roll < 0.02:  # half a request head, then silence: the head timer reaps it
        w.write(b"GET /hel")
        await w.drain()
        await r.read()  # the server's 408 (or nothing) and its close
        stats["reaped"] += 1
        w.close()
        return
    if roll < 0.2:  # reset mid-request
        w.write(HTTP_GET[: rng.randint(1, len(HTTP_GET) - 1)])
        await w.drain()
        abort(w)
        stats["reset"] += 1
        return
    for _ in range(rng.randint(1, 5)):  # keep-alive requests
        w.write(HTTP_GET)
        if not await http_answer(r):
            stats["errors"] += 1
    w.write(HTTP_CLOSE)
    if not await http_answer(r):
        stats["errors"] += 1
    w.close()
    await w.wait_closed()
    stats["done"] += 1


async def churn(once, port, clients, seconds, seed):
    stats = {"done": 0, "reset": 0, "reaped": 0, "errors": 0, "failures": 0}
    deadline = time.monotonic() + seconds

    async def loop(i):
        rng = random.Random(seed * 100003 + i)
        while time.monotonic() < deadline:
            try:
                await once(port, rng, stats)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
                stats["failures"] += 1
                if stats["failures"] <= 3:
                    print(f"  client: {type(e).__name__}: {e}", file=sys.stderr)
                await asyncio.sleep(0.05)

    await asyncio.gather(*(loop(i) for i in range(clients)))
    return stats


def soak(name, argv, once, clients, seconds, rounds):
    srv = server(name, argv)
    try:
        time.sleep(0.5)
        fds0, (tasks0, timers0), rss0 = srv.fds(), srv.counters(), srv.rss_kib()
        print(f"{name}: before: {fds0} fds, {tasks0} tasks, {timers0} timers, RSS {rss0 / 1024:.1f} MiB")
        ok = True
        rss = []
        for k in range(rounds):
            t0 = time.monotonic()
            stats = asyncio.run(churn(once, srv.port, clients, seconds, k))
            took = time.monotonic() - t0
            time.sleep(3)  # the server closes what the clients reset
            fds, (tasks, timers), r = srv.fds(), srv.counters(), srv.rss_kib()
            rss.append(r)
            churned = stats["done"] + stats["reset"] + stats["reaped"]
            print(f"{name}: round {k + 1}: {churned} connections in {took:.0f} s ({churned / took:.0f}/s): "
                  f"{stats['done']} complete, {stats['reset']} reset by the client, {stats['reaped']} reaped by "
                  f"the server, {stats['errors']} wrong answers, {stats['failures']} failed calls; after: {fds} fds, "
                  f"{tasks} tasks, {timers} timers, RSS {r / 1024:.1f} MiB")
            if stats["errors"] or stats["failures"] > churned // 1000:
                print(f"{name}: FAIL: wrong answers or failed calls")
                ok = False
            if fds != fds0 or tasks != tasks0 or timers != timers0:
                print(f"{name}: FAIL: not back to the counts before the churn")
                ok = False
        # Pools (stacks, task objects, moss-httpd's request buffers) and
        # malloc's free lists keep what the peak of open connections took, and
        # a later round may peak higher: RSS may still rise after round 1, but
        # by less each round. A leak grows it by the same amount every round.
        growth = [b - a for a, b in zip(rss, rss[1:])]
        if len(growth) >= 2 and growth[-1] > 2048 and growth[-1] >= growth[-2]:
            print(f"{name}: FAIL: RSS keeps growing: " + ", ".join(f"{g / 1024:+.1f}" for g in growth) + " MiB a round")
            ok = False
        if srv.proc.poll() is not None:
            print(f"{name}: FAIL: the server exited ({srv.proc.returncode})")
            ok = False
        return ok
    finally:
        srv.stop()


def main():
    ap = argparse.ArgumentParser(description="churn moss-echo and moss-httpd, then check they are back to baseline")
    ap.add_argument("moss_echo")
    ap.add_argument("moss_httpd")
    ap.add_argument("--seconds", type=float, default=60, help="length of a churn round (default 60)")
    ap.add_argument("--clients", type=int, default=10000, help="concurrent client loops (default 10000)")
    ap.add_argument("--rounds", type=int, default=3, help="churn rounds per server (default 3)")
    ap.add_argument("--only", choices=("echo", "httpd"), help="soak one server only")
    args = ap.parse_args()
    benchlib.raise_nofile()
    ok = True
    if args.only != "httpd":
        ok &= soak("moss-echo", [args.moss_echo, "--port", "0"], echo_once, args.clients, args.seconds, args.rounds)
    if args.only != "echo":
        ok &= soak("moss-httpd", [args.moss_httpd, "--port", "0", "--idle-timeout", "10", "--head-timeout", "2"],
                   http_once, args.clients, args.seconds, args.rounds)
    print("soak: " + ("every check held" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

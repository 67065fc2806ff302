#!/usr/bin/env python3
"""suite.py: issue 14's benchmark suite. Runs moss's benchmark programs and
their peers (tests/bench/peers/) in one go and writes, under results/<date>/
(or --out DIR), results.md (every figure next to its ratio to a named
baseline measured in the same run, with the date, the machine and the
command) and PNG plots. `bash scripts/dev.sh suite [--quick]` installs what
it needs, builds build-rel and runs this.

Sections (--only picks some):
  micro   switch round trip (moss switch_to, bare fcontext, Boost.Context
          fiber, greenlet, Go channel ping-pong), yield round trip (moss,
          Boost.Fiber, gevent), spawn+join (moss, Boost.Fiber, Go, greenlet,
          gevent), event and queue round trips, hooked vs raw read
          (core_bench, sync_bench, io_bench, peers/micro.go,
          peers/greenlet_micro.py)
  parked  memory per parked task at 10k/100k/1M (parked_bench: moss and
          Boost.Fiber up to 100k; peers/micro.go; gevent up to 100k)
  http    wrk -t1 against HTTP/1.1 keep-alive "hello" servers at 100 / 1,000 /
          10,000 connections, server on core 0 and wrk on core 1: epoll_hello
          (the baseline), moss-httpd, blocking_hello (plain blocking code
          linked with libmoss_patch), thread_hello natively and under mossrun,
          asio_hello, peers/hello.go (GOMAXPROCS=1), peers/gevent_hello.py;
          req/s, server CPU us per request, p99 latency, peak RSS
  dns     10,000 names at concurrency 1 / 100 / 1,000 against a DNS server on
          loopback: moss vs raw c-ares vs a getaddrinfo thread pool (dns_bench)

A peer whose toolchain is absent (go, gevent, Boost's Asio) is skipped with a
line saying so; a program that fails is reported and the suite goes on.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402

SECTIONS = ("micro", "parked", "http", "dns")
EPOLL = "epoll (baseline)"  # the HTTP baseline's label
INF = float("inf")


def plain_name(bench):
    """A Google Benchmark JSON entry's run name without the options it
    appends: "parked/moss/10000", not ".../iterations:1/manual_time"."""
    return re.sub(r"/(iterations|repeats|min_time|manual_time|real_time|process_time|threads)\b[^/]*", "",
                  bench.get("run_name", bench["name"]))


def log(msg):
    print(f"suite: {msg}", flush=True)


class suite:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.out = os.path.abspath(args.out)
        self.logs = os.path.join(self.out, "logs")
        os.makedirs(self.logs, exist_ok=True)
        self.skipped = []  # one line each: what was not measured and why
        self.figures = {}  # micro and parked figures by name
        self.http = {}  # (server, conns) -> list of per-round results
        self.http_servers = []
        self.dns = {}  # (way, delay, concurrency) -> lookups/s
        self.go_built = {}
        self.started = time.time()
        self.load_start = os.getloadavg()

    def skip(self, what):
        self.skipped.append(what)
        log(f"skipped: {what}")

    def exe(self, rel):
        path = os.path.join(self.build, rel)
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None

    def run(self, name, argv, env=None, timeout=1800):
        """Runs argv, keeps its output in logs/NAME.txt; its stdout, or None
        (with a skipped line) when it fails."""
        log(f"{name}: {' '.join(argv)}")
        path = os.path.join(self.logs, f"{name}.txt")
        try:
            p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                               preexec_fn=benchlib.raise_nofile)
        except (OSError, subprocess.TimeoutExpired) as e:
            self.skip(f"{name}: {e}")
            return None
        with open(path, "w") as f:
            f.write(f"$ {' '.join(argv)}\n{p.stdout}\n--- stderr ---\n{p.stderr}")
        if p.returncode != 0:
            text = (p.stderr.strip() + "\n" + p.stdout.strip()).strip().splitlines()
            said = [ln for ln in text if re.search(r"error|fail|cannot|not ", ln, re.I)] or text[-1:] or [""]
            self.skip(f"{name}: exited with {p.returncode} ({said[-1].strip()[:160]}; logs/{name}.txt)")
            return p.stdout if p.stdout.strip() else None
        return p.stdout

    # --- Google Benchmark programs ------------------------------------------

    def gbench(self, name, rel, extra, time_key="cpu_time"):
        """Runs a Google Benchmark program with JSON output; returns
        {run_name: {"ns": fastest repetition, "counters": {...}}}."""
        exe = self.exe(rel)
        if exe is None:
            self.skip(f"{name}: {rel} is not built in {self.build}")
            return {}
        out_json = os.path.join(self.logs, f"{name}.json")
        argv = [exe, f"--benchmark_out={out_json}", "--benchmark_out_format=json"] + extra
        if os.path.exists(out_json):  # from an earlier run into the same --out
            os.unlink(out_json)
        if self.run(name, argv) is None and not os.path.exists(out_json):
            return {}
        try:
            with open(out_json) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            self.skip(f"{name}: no JSON results ({e})")
            return {}
        scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}
        res = {}
        errors = {}
        for b in data.get("benchmarks", []):
            if b.get("error_occurred"):
                key = (plain_name(b), b.get("error_message", "an error"))
                errors[key] = errors.get(key, 0) + 1
                continue
            kind = b.get("run_type", "iteration")
            if kind == "aggregate" and b.get("aggregate_name") != "min":
                continue
            run_name = plain_name(b)
            ns = b[time_key] * scale[b.get("time_unit", "ns")]
            r = res.setdefault(run_name, {"ns": INF, "counters": {}})
            r["ns"] = min(r["ns"], ns)
            r["counters"] = {k: v for k, v in b.items() if isinstance(v, (int, float)) and k not in (
                "cpu_time", "real_time", "iterations", "repetitions", "repetition_index", "threads",
                "family_index", "per_family_instance_index")}
        for (run_name, message), n in errors.items():
            self.skip(f"{name}: {run_name}: {message} in {n} repetition(s); "
                      + ("its figure is the fastest of the others" if run_name in res else "no figure"))
        return res

    def reps_args(self, reps):
        a = [f"--benchmark_repetitions={reps}", "--benchmark_enable_random_interleaving=true",
             "--benchmark_report_aggregates_only=true"]
        if self.args.quick:
            a.append("--benchmark_min_time=0.1")
        return a

    # --- peers ----------------------------------------------------------------

    def go_peer(self, name):
        """Builds peers/NAME.go into the build tree (once a run); the
        executable, or None."""
        if name in self.go_built:
            return self.go_built[name]
        self.go_built[name] = None
        go = shutil.which("go")
        if go is None:
            return None
        out_dir = os.path.join(self.build, "tests", "bench", "peers")
        os.makedirs(out_dir, exist_ok=True)
        exe = os.path.join(out_dir, f"{name}_go")
        src = os.path.join(HERE, "peers", f"{name}.go")
        if self.run(f"go-build-{name}", [go, "build", "-o", exe, src], timeout=600) is None:
            return None
        self.go_built[name] = exe
        return exe

    def python_with(self, module):
        """An interpreter that can import module: this one, else Debian's."""
        for py in dict.fromkeys([sys.executable, "/usr/bin/python3"]):
            if os.path.exists(py) and subprocess.run([py, "-c", f"import {module}"], capture_output=True).returncode == 0:
                return py
        return None

    @staticmethod
    def json_lines(text):
        out = {}
        for line in (text or "").splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    d = json.loads(line)
                    out[d.pop("name")] = d
                except (ValueError, KeyError):
                    log(f"not a figure line: {line[:120]!r}")
        return out

    # --- sections -------------------------------------------------------------

    def micro(self):
        reps = 3 if self.args.quick else 5
        core = self.gbench("core_bench", "tests/bench/core_bench", self.reps_args(reps) + [
            "--benchmark_filter=^(switch_round_trip/(moss|boost_fiber|raw_fcontext)|yield_round_trip/.*|spawn_join/.*)$"])
        for k, v in core.items():
            self.figures[k] = v["ns"]
        # sync_bench's summary compares in wall-clock time (the thread queue's
        # cost is latency across cores): so does this table.
        sync = self.gbench("sync_bench", "tests/bench/sync_bench", self.reps_args(reps) + [
            "--benchmark_filter=^(queue_round_trip|event_round_trip)/.*$"], time_key="real_time")
        for k, v in sync.items():
            self.figures[k] = v["ns"]
        io = self.gbench("io_bench", "tests/bench/io_bench", self.reps_args(reps) + [
            "--benchmark_filter=^(io_read/(moss|raw_syscall)|plain_thread/.*)$"])
        for k, v in io.items():
            self.figures[k] = v["ns"]
        go = self.go_peer("micro")
        if go is None:
            self.skip("Go micro peer (peers/micro.go): no Go toolchain (Debian: golang-go)")
        else:
            out = self.run("go-micro", ["taskset", "-c", "0", go, "time", str(reps)],
                           env=dict(os.environ, GOMAXPROCS="1"))
            for k, v in self.json_lines(out).items():
                self.figures[k] = v["ns"]
        py = self.python_with("greenlet")
        if py is None:
            self.skip("greenlet/gevent micro peer (peers/greenlet_micro.py): no greenlet (Debian: python3-greenlet)")
        else:
            out = self.run("greenlet-micro", ["taskset", "-c", "0", py, os.path.join(HERE, "peers", "greenlet_micro.py"),
                                              "time", str(reps)])
            for k, v in self.json_lines(out).items():
                self.figures[k] = v["ns"]

    def parked(self):
        counts = [10_000, 100_000] if self.args.quick else [10_000, 100_000, 1_000_000]
        res = self.gbench("parked_bench", "tests/bench/parked_bench", [f"--tasks={','.join(map(str, counts))}"])
        for k, v in res.items():
            if "rss_per_task_B" in v["counters"]:
                self.figures[k] = v["counters"]["rss_per_task_B"]
        if not any(k.startswith("parked/boost_fiber/") and k.endswith(f"/{n}") for k in res for n in counts if n > 100_000):
            for n in counts:
                if n > 100_000:
                    self.skip(f"Boost.Fiber parked at {n:,}: parked_bench runs it up to 100,000 fibers")
        go = self.go_peer("micro")
        if go is None:
            self.skip("Go parked goroutines (peers/micro.go): no Go toolchain (Debian: golang-go)")
        else:
            for n in counts:
                out = self.run(f"go-parked-{n}", [go, "parked", str(n)], env=dict(os.environ, GOMAXPROCS="1"))
                for k, v in self.json_lines(out).items():
                    self.figures[k] = v["bytes_per_task"]
        py = self.python_with("gevent")
        if py is None:
            self.skip("gevent parked greenlets (peers/greenlet_micro.py): no gevent (Debian: python3-gevent)")
        else:
            for n in counts:
                if n > 100_000:
                    self.skip(f"gevent parked at {n:,}: not run (about 8 KiB a greenlet, 8 GiB at 1M on a shared machine)")
                    continue
                out = self.run(f"gevent-parked-{n}", [py, os.path.join(HERE, "peers", "greenlet_micro.py"), "parked", str(n)])
                for k, v in self.json_lines(out).items():
                    self.figures[k] = v["bytes_per_task"]

    def http_server_list(self):
        b = "tests/bench/"
        servers = []

        def add(label, argv, port_re=benchlib.PORT_RE, env=None, why_missing=None):
            if argv is None:
                self.skip(f"HTTP {label}: {why_missing}")
            else:
                servers.append((label, argv, port_re, env))

        epoll = self.exe(b + "epoll_hello")
        add(EPOLL, [epoll, "0"] if epoll else None, why_missing="epoll_hello is not built")
        httpd = self.exe("samples/httpd/moss-httpd")
        self.httpd_root = tempfile.mkdtemp(prefix="suite-httpd.")  # moss-httpd serves /hello, no files
        add("moss-httpd", [httpd, "--port", "0", self.httpd_root] if httpd else None, r"127\.0\.0\.1:(\d+)/",
            why_missing="samples/httpd/moss-httpd is not built")
        blocking = self.exe(b + "blocking_hello")
        add("blocking + libmoss_patch", [blocking, "0"] if blocking else None, why_missing="blocking_hello is not built")
        thread = self.exe(b + "thread_hello")
        mossrun = self.exe("patch/mossrun")
        add("threads under mossrun", [mossrun, thread, "0"] if thread and mossrun else None,
            why_missing="thread_hello or patch/mossrun is not built")
        add("threads native", [thread, "0"] if thread else None, why_missing="thread_hello is not built")
        asio = self.exe(b + "asio_hello")
        add("Asio coroutines", [asio, "0"] if asio else None,
            why_missing="asio_hello is not built (the build found no boost/asio.hpp)")
        go = self.go_peer("hello")
        add("Go goroutines", [go, "0"] if go else None, env=dict(os.environ, GOMAXPROCS="1"),
            why_missing="no Go toolchain (Debian: golang-go)")
        py = self.python_with("gevent")
        add("gevent", [py, os.path.join(HERE, "peers", "gevent_hello.py"), "0"] if py else None,
            why_missing="no gevent (Debian: python3-gevent)")
        return servers

    def http_section(self):
        if shutil.which("wrk") is None or shutil.which("taskset") is None:
            self.skip("HTTP: wrk and taskset are needed")
            return
        servers = self.http_server_list()
        self.http_servers = [s[0] for s in servers]
        srv_cpus, wrk_cpus = ("0", "1") if os.cpu_count() >= 2 else (None, None)
        try:
            self.http_rounds(servers, srv_cpus, wrk_cpus)
        finally:
            shutil.rmtree(self.httpd_root, ignore_errors=True)

    def http_rounds(self, servers, srv_cpus, wrk_cpus):
        for rnd in range(self.args.rounds):
            for conns in self.args.conns:
                duration = self.args.duration if conns < 10000 else 2 * self.args.duration
                for label, argv, port_re, env in servers:
                    try:
                        r = benchlib.measure(argv, conns, duration, srv_cpus, wrk_cpus, port_re=port_re, env=env)
                    except benchlib.ServerError as e:
                        log(f"HTTP {label}: did not start: {e}")
                        r = {"rps": 0.0, "ns": INF, "p99_ms": None, "hwm": 0, "threads": 0,
                             "problems": f"did not start: {e}"}
                    self.http.setdefault((label, conns), []).append(r)
                    p99 = f"{r['p99_ms']:.2f} ms" if r["p99_ms"] is not None else "-"
                    log(f"HTTP round {rnd + 1}/{self.args.rounds} c{conns} {label}: {r['rps']:.0f} req/s, "
                        f"{r['ns'] / 1000:.2f} us CPU/req, p99 {p99}, VmHWM {r['hwm'] / 1024:.1f} MiB"
                        + (f", {r['problems']}" if r["problems"] else ""))

    def dns_section(self):
        reps = 2 if self.args.quick else 5
        runs = [("0", "1,100,1000")]
        if not self.args.quick:
            runs.append(("2", "100,1000"))  # at concurrency 1, 10,000 answers 2 ms late take 20 s a run
        for delay, conc in runs:
            res = self.gbench(f"dns_bench-{delay}ms", "tests/bench/dns_bench", [
                f"--delays={delay}", f"--concurrency={conc}", f"--benchmark_repetitions={reps}",
                "--benchmark_enable_random_interleaving=true"], time_key="real_time")
            for k, v in res.items():
                m = re.match(r"(\w+)_lookups/(\d+)/(\d+)$", k)
                if m and v["ns"] > 0:
                    self.dns[(m.group(1), int(m.group(2)), int(m.group(3)))] = 10_000 / (v["ns"] / 1e9)

    # --- report ---------------------------------------------------------------

    def http_summary(self):
        """(server, conns) -> best rps, least ns, median p99 and VmHWM, worst
        thread count, problems, and the medians of the per-round ratios to
        the baseline."""
        base = EPOLL if EPOLL in self.http_servers else None  # without it, no ratios
        out = {}
        for (label, conns), rs in self.http.items():
            p99s = [r["p99_ms"] for r in rs if r["p99_ms"] is not None]
            s = {"rps": max(r["rps"] for r in rs), "ns": min(r["ns"] for r in rs),
                 "p99": statistics.median(p99s) if p99s else None,
                 "hwm": statistics.median(r["hwm"] for r in rs) / 1024,
                 "threads": max(r["threads"] for r in rs),
                 "problems": "; ".join(sorted({r["problems"] for r in rs if r["problems"]}))}
            b = self.http.get((base, conns))
            if b and label != base:
                rps = [r["rps"] / e["rps"] for r, e in zip(rs, b) if e["rps"] > 0]
                cpu = [r["ns"] / e["ns"] for r, e in zip(rs, b) if e["ns"] not in (0, INF) and r["ns"] != INF]
                s["rps_x"] = statistics.median(rps) if rps else None
                s["cpu_x"] = statistics.median(cpu) if cpu else None
            out[(label, conns)] = s
        return out

    def machine(self):
        model = "unknown CPU"
        try:
            with open("/proc/cpuinfo") as f:
                m = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
                model = m.group(1).strip() if m else model
        except OSError:
            pass
        return f"{model}, {os.cpu_count()} CPUs (nproc), Linux {platform.release()}"

    def write(self, plots):
        a = self.args
        when = datetime.datetime.fromtimestamp(self.started, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        lines = [f"# moss benchmark suite, {when}", "",
                 f"- machine: {self.machine()}",
                 f"- command: `{self.args.command}`",
                 f"- build: `{os.path.relpath(self.build, ROOT)}` (release); took {(time.time() - self.started) / 60:.0f} min; "
                 f"load average at start {self.load_start[0]:.1f}, at end {os.getloadavg()[0]:.1f}",
                 "- every ratio compares two figures measured in this run; absolute figures move with the machine's load",
                 ""]
        f = self.figures

        def ns(v):
            return "-" if v is None else (f"{v:,.0f} ns" if v >= 100 else f"{v:.1f} ns")

        def ratio(v, b):
            return "-" if v is None or b in (None, 0) or v == INF else f"{v / b:.2f}×"

        groups = [
            ("Switch round trip (there and back)", "switch_round_trip/moss", [
                ("moss `greenlet::switch_to`", "switch_round_trip/moss"),
                ("bare Boost.Context `jump_fcontext`", "switch_round_trip/raw_fcontext"),
                ("Boost.Context `fiber::resume`", "switch_round_trip/boost_fiber"),
                ("greenlet `switch`", "switch_round_trip/greenlet"),
                ("Go channel ping-pong (GOMAXPROCS=1)", "switch_round_trip/go_channel")]),
            ("Yield round trip (two tasks through the scheduler)", "yield_round_trip/moss", [
                ("moss `yield`", "yield_round_trip/moss"),
                ("Boost.Fiber `this_fiber::yield`", "yield_round_trip/boost_fiber"),
                ("gevent `sleep(0)`", "yield_round_trip/gevent")]),
            ("Spawn + join of an empty task", "spawn_join/moss", [
                ("moss `spawn().join()`", "spawn_join/moss"),
                ("Boost.Fiber `fiber` + `join`", "spawn_join/boost_fiber"),
                ("Boost.Fiber, pooled stacks", "spawn_join/boost_fiber_pooled"),
                ("Go `go f()` + WaitGroup", "spawn_join/go"),
                ("greenlet `greenlet(f).switch()`", "spawn_join/greenlet"),
                ("gevent `spawn(f).join()`", "spawn_join/gevent")]),
            ("Event set → wake round trip (wall clock for moss)", "event_round_trip/moss", [
                ("moss `event`", "event_round_trip/moss"),
                ("gevent `Event`", "event_round_trip/gevent")]),
            ("Queue put → get round trip (wall clock for moss, Boost.Fiber, threads)", "queue_round_trip/moss", [
                ("moss `queue`", "queue_round_trip/moss"),
                ("Boost.Fiber `buffered_channel`", "queue_round_trip/boost_fiber"),
                ("mutex + condvar queue, two threads", "queue_round_trip/threads"),
                ("Go unbuffered channels (GOMAXPROCS=1)", "switch_round_trip/go_channel"),
                ("gevent `Queue`", "queue_round_trip/gevent")]),
            ("1-byte read of a ready socket, in a task", "io_read/raw_syscall", [
                ("raw `read` system call", "io_read/raw_syscall"),
                ("`moss::io::read` (the hooked path)", "io_read/moss")]),
            ("1-byte read of a ready socket, from a plain thread", "plain_thread/raw_syscall", [
                ("raw `read` system call", "plain_thread/raw_syscall"),
                ("`moss::io::read` (the pass-through)", "plain_thread/moss")]),
        ]
        if any(k in f for _, _, rows in groups for _, k in rows):
            lines += ["## Micro", "",
                      "Fastest repetition, CPU time per operation unless marked (moss, Boost: Google Benchmark; Go and "
                      "Python peers: their own loops, CPU time, fastest of the same number of runs). Ratio: to the "
                      "first row of each group.", ""]
            for title, base, rows in groups:
                present = [(lbl, k) for lbl, k in rows if k in f]
                if not present:
                    continue
                lines += [f"**{title}**", "", "| implementation | time | ratio |", "|---|---:|---:|"]
                for lbl, k in present:
                    lines.append(f"| {lbl} | {ns(f[k])} | {ratio(f[k], f.get(base))} |")
                lines.append("")
        parked = sorted({int(k.rsplit("/", 1)[1]) for k in f if k.startswith("parked/")})
        if parked:
            who = [("moss", "moss"), ("Boost.Fiber", "boost_fiber"), ("Go", "go"), ("gevent", "gevent")]
            lines += ["## Memory per parked task", "",
                      "Peak RSS (VmHWM) above the baseline, divided by the tasks, all parked on one wake-up; "
                      "each count in a fresh process. Ratio: to moss.", "",
                      "| tasks | " + " | ".join(w for w, _ in who) + " |", "|---:|" + "---:|" * len(who)]
            for n in parked:
                cells = []
                for _, key in who:
                    v, m = f.get(f"parked/{key}/{n}"), f.get(f"parked/moss/{n}")
                    cells.append("-" if v is None else f"{v:,.0f} B" + ("" if key == "moss" else f" ({ratio(v, m)})"))
                lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
            lines.append("")
        hs = self.http_summary()
        if hs:
            a_ = self.args
            lines += ["## HTTP/1.1 hello under wrk", "",
                      f"`wrk -t1 --latency -d{a_.duration}s` (10,000 connections: {2 * a_.duration}s), keep-alive, "
                      f"server on core 0, wrk on core 1; {a_.rounds} interleaved round(s). Best req/s and CPU per "
                      "request over the rounds, median p99 and VmHWM; the ratios to epoll are the medians of each "
                      "round's ratio (the servers of a round run seconds apart).", "",
                      "| connections | server | req/s | ×epoll | CPU µs/req | ×epoll | p99 | peak RSS | OS threads | problems |",
                      "|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
            for conns in self.args.conns:
                for label in self.http_servers:
                    s = hs.get((label, conns))
                    if s is None:
                        continue
                    cpu = "-" if s["ns"] == INF else f"{s['ns'] / 1000:.2f}"
                    rx = "" if "rps_x" not in s else ("-" if s["rps_x"] is None else f"{s['rps_x']:.2f}×")
                    cx = "" if "cpu_x" not in s else ("-" if s["cpu_x"] is None else f"{s['cpu_x']:.2f}×")
                    p99 = "-" if s["p99"] is None else f"{s['p99']:.2f} ms"
                    lines.append(f"| {conns:,} | {label} | {s['rps']:,.0f} | {rx} | {cpu} | {cx} | {p99} | "
                                 f"{s['hwm']:.1f} MiB | {s['threads']} | {s['problems'] or ''} |")
            lines.append("")
        if self.dns:
            lines += ["## DNS: 10,000 lookups against a server on loopback", "",
                      "Lookups per second, fastest repetition (wall clock); the server is a thread of dns_bench. "
                      "The pool has min(concurrency, 10) threads. Ratio: moss to the other.", "",
                      "| server delay | concurrency | moss | raw c-ares loop | moss ÷ c-ares | getaddrinfo pool | moss ÷ pool |",
                      "|---:|---:|---:|---:|---:|---:|---:|"]
            for delay, conc in sorted({(d, c) for _, d, c in self.dns}):
                m = self.dns.get(("moss", delay, conc))
                r = self.dns.get(("raw_cares", delay, conc))
                p = self.dns.get(("thread_pool", delay, conc))

                def rate(v):
                    return "-" if v is None else f"{v:,.0f}/s"
                lines.append(f"| {delay} ms | {conc:,} | {rate(m)} | {rate(r)} | {ratio(m, r)} | {rate(p)} | {ratio(m, p)} |")
            lines.append("")
        if plots:
            lines += ["## Plots", ""] + [f"![{t}]({os.path.basename(p)})" for p, t in plots] + [""]
        if self.skipped:
            lines += ["## Not measured", ""] + [f"- {s}" for s in self.skipped] + [""]
        lines += ["Raw outputs and every HTTP round: `logs/` next to this file (not published).", ""]
        path = os.path.join(self.out, "results.md")
        with open(path, "w") as fh:
            fh.write("\n".join(lines))
        return path

    def plot(self):
        """The PNGs, as (path, title); none (with a line) without matplotlib."""
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            self.skip("plots: no matplotlib (Debian: python3-matplotlib)")
            return []
        plt.rcParams.update({"font.size": 8, "figure.dpi": 80})
        made = []

        def save(fig, name, title):
            path = os.path.join(self.out, name)
            fig.tight_layout()
            fig.savefig(path, dpi=80)
            plt.close(fig)
            made.append((path, title))

        def grouped_bars(ax, groups, series, values, fmt):
            width = 0.8 / max(len(series), 1)
            for i, s in enumerate(series):
                xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
                ys = [values.get((s, g), 0) for g in groups]
                ax.bar(xs, ys, width, label=s)
            ax.set_xticks(range(len(groups)))
            ax.set_xticklabels([fmt(g) for g in groups])
            ax.legend(fontsize=7, ncol=2)

        hs = self.http_summary()
        if hs:
            fig, ax = plt.subplots(figsize=(7, 4))
            for label in self.http_servers:
                pts = [(c, hs[(label, c)]["rps"]) for c in self.args.conns if (label, c) in hs]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
            ax.set_xscale("log")
            ax.set_xticks(self.args.conns)
            ax.set_xticklabels([f"{c:,}" for c in self.args.conns])
            ax.set_xlabel("connections (log)")
            ax.set_ylabel("requests/s (best round)")
            ax.set_title("HTTP hello: requests/s vs connections (server on one core)")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=7, ncol=2)
            save(fig, "http_rps.png", "requests/s vs connections")

            fig, ax = plt.subplots(figsize=(7, 4))
            vals = {(label, c): s["ns"] / 1000 for (label, c), s in hs.items() if s["ns"] != INF}
            grouped_bars(ax, self.args.conns, self.http_servers, vals, lambda c: f"{c:,} connections")
            ax.set_ylabel("server CPU µs per request (best round)")
            ax.set_title("HTTP hello: server CPU per request")
            ax.grid(True, axis="y", alpha=0.3)
            save(fig, "http_cpu.png", "server CPU µs per request")

        f = self.figures
        parked = sorted({int(k.rsplit("/", 1)[1]) for k in f if k.startswith("parked/")})
        if parked:
            who = [("moss", "moss"), ("Boost.Fiber", "boost_fiber"), ("Go", "go"), ("gevent", "gevent")]
            vals = {(w, n): f[f"parked/{k}/{n}"] / 1024 for w, k in who for n in parked if f"parked/{k}/{n}" in f}
            series = [w for w, _ in who if any((w, n) in vals for n in parked)]
            fig, ax = plt.subplots(figsize=(7, 3.6))
            grouped_bars(ax, parked, series, vals, lambda n: f"{n:,} tasks")
            ax.set_ylabel("KiB of peak RSS per parked task")
            ax.set_title("Memory per parked task")
            ax.grid(True, axis="y", alpha=0.3)
            save(fig, "parked_memory.png", "memory per parked task")

        bars = [("moss switch_to", "switch_round_trip/moss"), ("bare fcontext jump", "switch_round_trip/raw_fcontext"),
                ("Boost.Context fiber", "switch_round_trip/boost_fiber"), ("greenlet switch", "switch_round_trip/greenlet"),
                ("Go channel ping-pong", "switch_round_trip/go_channel"), ("moss yield (hub)", "yield_round_trip/moss"),
                ("Boost.Fiber yield", "yield_round_trip/boost_fiber"), ("gevent sleep(0)", "yield_round_trip/gevent")]
        bars = [(lbl, f[k]) for lbl, k in bars if k in f]
        if bars:
            fig, ax = plt.subplots(figsize=(7, 3.6))
            ys = range(len(bars))
            ax.barh(ys, [v for _, v in bars], color=["C0" if "moss" in lbl else "C7" for lbl, _ in bars])
            ax.set_yticks(list(ys))
            ax.set_yticklabels([lbl for lbl, _ in bars])
            ax.invert_yaxis()
            ax.set_xscale("log")
            for y, (_, v) in zip(ys, bars):
                ax.text(v, y, f" {v:.1f} ns" if v < 100 else f" {v:,.0f} ns", va="center", fontsize=7)
            ax.set_xlabel("ns per round trip (CPU, fastest repetition; log)")
            ax.set_title("Switch and yield round trips")
            ax.set_xlim(right=max(v for _, v in bars) * 6)
            save(fig, "micro_switch.png", "switch and yield round trips")
        return made

    def publish(self, results, plots):
        dest = os.path.join(ROOT, "docs", "bench")
        os.makedirs(dest, exist_ok=True)
        for old in os.listdir(dest):
            if old.endswith(".png") or old == "results.md":
                os.unlink(os.path.join(dest, old))
        with open(results) as fh:
            text = fh.read().replace("Raw outputs and every HTTP round: `logs/` next to this file (not published).\n", "")
        with open(os.path.join(dest, "results.md"), "w") as fh:
            fh.write(text)
        for p, _ in plots:
            shutil.copy(p, dest)
        readme = os.path.join(ROOT, "README.md")
        with open(readme) as fh:
            text = fh.read()
        begin, end = "<!-- suite:begin -->", "<!-- suite:end -->"
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            tail = rest.split(end, 1)[1]
            with open(readme, "w") as fh:
                fh.write(head + begin + "\n" + self.readme_block(plots) + end + tail)
            log("README.md's suite section rewritten")
        else:
            self.skip(f"README.md has no {begin} ... {end} section to rewrite")
        log(f"published to {os.path.relpath(dest, ROOT)}/")

    def readme_block(self, plots):
        """README's Performance excerpt: when, where, how; the plots; the HTTP
        ratios to epoll; a link to the whole table."""
        when = datetime.datetime.fromtimestamp(self.started, datetime.timezone.utc).strftime("%Y-%m-%d")
        start, end = self.load_start[0], os.getloadavg()[0]
        loads = f"load average {start:.1f} at the start, {end:.1f} at the end, on {os.cpu_count()} CPUs"
        shared = (f"other work shared the machine during the run ({loads}), so the ratios, each measured side "
                  "by side in this run, are the trustworthy part, not the absolute figures"
                  if max(start, end) > 1.0 else loads)
        lines = [f"Measured {when} on {self.machine()} by `{self.args.command}`; {shared}. "
                 "The whole table (micro, parked memory, HTTP, DNS, what was skipped) is "
                 "`docs/bench/results.md`.", ""]  # not a Markdown link: Doxygen, which builds README, cannot resolve it
        lines += [f"![{t}](docs/bench/{os.path.basename(p)})" for p, t in plots]
        hs = self.http_summary()
        if hs and EPOLL in self.http_servers and len(self.http_servers) > 1:
            conns = self.args.conns
            lines += ["", "HTTP hello under wrk, ratios to the epoll server in the same rounds "
                      "(req/s ×epoll / server CPU per request ×epoll):", "",
                      "| server | " + " | ".join(f"{c:,} connections" for c in conns) + " |",
                      "|---|" + "---:|" * len(conns)]
            for label in [x for x in self.http_servers if x != EPOLL]:
                cells = []
                for c in conns:
                    st = hs.get((label, c))
                    if st is None or st.get("rps_x") is None:
                        cells.append("no request served" if st is not None and st["rps"] == 0 else "-")
                        continue
                    cpu = "-" if st.get("cpu_x") is None else f"{st['cpu_x']:.2f}×"
                    cells.append(f"{st['rps_x']:.2f}× / {cpu}")
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def main():
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    ap = argparse.ArgumentParser(description="Run moss's benchmark suite with its peers; write a Markdown table and "
                                             "PNG plots.", epilog="Normally run as: bash scripts/dev.sh suite [--quick]")
    ap.add_argument("--build", default=os.path.join(ROOT, "build-rel"),
                    help="a release build tree with the benchmarks built (default: build-rel)")
    ap.add_argument("--out", default=None, help=f"where results go (default: results/{today})")
    ap.add_argument("--quick", action="store_true",
                    help="fewer repetitions, one short HTTP round, 10k and 100k parked tasks only (about 4 minutes)")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    ap.add_argument("--rounds", type=int, default=None, help="HTTP rounds (default 3; --quick 1)")
    ap.add_argument("--duration", type=int, default=None, help="seconds of wrk a run, twice at 10,000 connections "
                                                                "(default 3; --quick 2)")
    ap.add_argument("--conns", type=int, nargs="+", default=[100, 1000, 10000], help="HTTP connection counts")
    ap.add_argument("--publish", action="store_true", help="also copy results.md and the PNGs to docs/bench/")
    ap.add_argument("--command", default=None, help=argparse.SUPPRESS)  # what the report names as the command
    args = ap.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    bad = [s for s in only if s not in SECTIONS]
    if bad:
        ap.error(f"--only: unknown section {bad[0]!r} (sections: {', '.join(SECTIONS)})")
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.duration is None:
        args.duration = 2 if args.quick else 3
    if args.rounds < 1 or args.duration < 1 or any(c < 1 for c in args.conns):
        ap.error("--rounds, --duration and --conns must be positive")
    if args.out is None:
        args.out = os.path.join(ROOT, "results", today)
    if args.command is None:
        args.command = "python3 tests/bench/suite.py " + " ".join(sys.argv[1:])
    if not os.path.isdir(args.build):
        sys.exit(f"suite: no build tree at {args.build} (meson setup {args.build} --buildtype=release)")
    benchlib.raise_nofile()
    s = suite(args)
    log(f"results go to {s.out}")
    for name, fn in (("micro", s.micro), ("parked", s.parked), ("http", s.http_section), ("dns", s.dns_section)):
        if name in only:
            t0 = time.monotonic()
            fn()
            log(f"{name} done in {time.monotonic() - t0:.0f} s")
    plots = s.plot()
    results = s.write(plots)
    with open(os.path.join(s.logs, "figures.json"), "w") as fh:  # every figure, each HTTP round, for a later look
        json.dump({"micro_and_parked": s.figures,
                   "http_rounds": [{"server": k[0], "conns": k[1], "rounds": v} for k, v in s.http.items()],
                   "dns_lookups_per_s": [{"way": k[0], "delay_ms": k[1], "concurrency": k[2], "rate": v}
                                         for k, v in s.dns.items()]}, fh, indent=1, default=str)
    if args.publish:
        s.publish(results, plots)
    log(f"wrote {results}" + (f" and {len(plots)} plots" if plots else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

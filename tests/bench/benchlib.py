# benchlib: what the Python benchmark scripts share (httpd_bench.py,
# preload_bench.py, soak.py and the suite driver, suite.py):
#
#   raise_nofile()          the soft RLIMIT_NOFILE up to min(hard, 65536), for
#                           10,000 connections (also a preexec_fn for servers)
#   cpu_seconds(pid)        utime + stime of all a process's threads
#   status_field(pid, key)  an integer field of /proc/PID/status (kB for Vm*)
#   server(argv, ...)       start a server, read the line where it says its
#                           port; ServerError when it does not
#   parse_wrk(text)         requests, req/s, p99 latency and problems from
#                           wrk's output (run with --latency)
#   wrk(port, conns, ...)   run wrk -t1 against http://127.0.0.1:PORT/hello
#   measure(argv, conns, ...)  one server under one wrk run: req/s, server CPU
#                           per request, p99, peak RSS (VmHWM), most threads
#   server_spec(spec)       NAME=COMMAND from a command line: (name, argv);
#                           ANY_PORT_RE finds the port such a server prints
#                           (cg_per_request.py, ab_servers.py)
import os
import re
import resource
import select
import shlex
import subprocess
import threading

TICK = os.sysconf("SC_CLK_TCK")
PORT_RE = r"port (\d+)"  # what epoll_hello and the other hello servers print
ANY_PORT_RE = r"(?:port |127\.0\.0\.1:)(\d+)"  # those, or moss-httpd's "http://127.0.0.1:N/"


def server_spec(spec):
    """NAME=COMMAND as (name, argv), the command split like a shell line;
    ValueError naming the argument when either part is missing."""
    name, sep, command = spec.partition("=")
    argv = shlex.split(command) if sep else []
    if not name or not argv:
        raise ValueError(f"{spec!r}: expected NAME=COMMAND")
    return name, argv


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / TICK


def status_field(pid, name):
    """An integer field of /proc/PID/status (kB for Vm*), or 0 if gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class ServerError(Exception):
    """A server that exited, or did not say where it listens in time."""


class server:
    """A server process started from argv (under taskset -c CPUS when cpus is
    given) whose first line on stdout matches port_re; the port is the regex's
    last group. stderr goes to /dev/null unless a file is given."""

    def __init__(self, argv, port_re=PORT_RE, cpus=None, env=None, stderr=subprocess.DEVNULL, timeout=20):
        if cpus is not None:
            argv = ["taskset", "-c", cpus] + list(argv)
        self.argv = argv
        try:
            self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, env=env,
                                         preexec_fn=raise_nofile, text=True)
        except OSError as e:
            raise ServerError(f"{argv[0]}: cannot start: {e}") from None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        m = re.search(port_re, line)
        if not m:
            self.stop()
            why = f"said {line.strip()!r}" if line else (f"exited with {self.proc.returncode}" if ready
                                                         else f"said nothing in {timeout} s")
            raise ServerError(f"{' '.join(argv)}: no port reported ({why})")
        self.port = int(m.group(m.lastindex))

    @property
    def pid(self):
        return self.proc.pid

    def stop(self, sig_timeout=10):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(sig_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(value, unit):
    return float(value) * _UNITS[unit]


def parse_wrk(text):
    """wrk's report as a dict: reqs (int), rps (float), p99_ms (float, or None
    without --latency), problems (str, '' when none). ValueError if the text
    is not a wrk report."""
    reqs = re.search(r"(\d+) requests in", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not reqs or not rps:
        raise ValueError(f"not a wrk report: {text.strip()[:200]!r}")
    p99 = re.search(r"^\s*99(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
    errors = re.search(r"Socket errors: (.*)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    problems = (errors.group(1).strip() if errors else "") + (f" non-2xx {non2xx.group(1)}" if non2xx else "")
    return {"reqs": int(reqs.group(1)), "rps": float(rps.group(1)),
            "p99_ms": _ms(*p99.groups()) if p99 else None, "problems": problems.strip()}


def wrk(port, conns, duration, cpus=None, path="/hello"):
    """wrk -t1 --latency against 127.0.0.1:PORT; parse_wrk's dict. Raises
    RuntimeError when wrk fails."""
    argv = ["wrk", "-t1", "--latency", f"-c{conns}", f"-d{duration}s", f"http://127.0.0.1:{port}{path}"]
    if cpus is not None:
        argv = ["taskset", "-c", cpus] + argv
    p = subprocess.run(argv, capture_output=True, text=True, preexec_fn=raise_nofile)
    if p.returncode != 0:
        raise RuntimeError(f"wrk exited with {p.returncode}: {(p.stderr or p.stdout).strip()[:200]}")
    return parse_wrk(p.stdout)


def measure(argv, conns, duration, srv_cpus=None, wrk_cpus=None, port_re=PORT_RE, env=None):
    """Start the server, run wrk against it, stop it. Returns rps, ns (server
    CPU per request; inf when none was served), p99_ms, hwm (VmHWM at the
    end, kB), threads (most OS threads seen, sampled every 0.2 s), problems.
    ServerError when the server does not start."""
    srv = server(argv, port_re, srv_cpus, env=env)
    pid = srv.pid
    result = {}
    try:
        before = cpu_seconds(pid)

        def drive():
            try:
                result["wrk"] = wrk(srv.port, conns, duration, wrk_cpus)
            except (RuntimeError, ValueError) as e:  # reported with the figures of the others
                result["error"] = str(e)

        t = threading.Thread(target=drive)
        t.start()
        threads = 0
        while t.is_alive():
            threads = max(threads, status_field(pid, "Threads"))
            t.join(0.2)
        died = srv.proc.poll()
        cpu = cpu_seconds(pid) - before if died is None else 0.0
        hwm_kb = status_field(pid, "VmHWM")
    finally:
        srv.stop()
    if died is not None:
        result.setdefault("error", f"the server exited with {died} under load")
    if "error" in result:
        return {"rps": 0.0, "ns": float("inf"), "p99_ms": None, "threads": threads, "hwm": hwm_kb,
                "problems": result["error"]}
    w = result["wrk"]
    served = w["reqs"] > 0
    ns = cpu / w["reqs"] * 1e9 if served else float("inf")
    return {"rps": w["rps"], "ns": ns, "p99_ms": w["p99_ms"] if served else None, "threads": threads, "hwm": hwm_kb,
            "problems": w["problems"]}

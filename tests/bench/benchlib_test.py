#!/usr/bin/env python3
# benchlib_test: benchlib's parsing and server start, without wrk or the
# network: parse_wrk on wrk reports as wrk 4.1 prints them (with --latency,
# with socket errors and non-2xx answers, the p99 in each unit), and a server
# that prints no port, or exits, is a ServerError naming it.
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

REPORT = """Running 3s test @ http://127.0.0.1:41123/hello
  1 threads and 100 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms  211.44us   9.87ms   93.11%
    Req/Sec    98.12k     3.01k  102.33k    80.00%
  Latency Distribution
     50%    0.98ms
     75%    1.04ms
     90%    1.12ms
     99%    {p99}
  293012 requests in 3.00s, 30.74MB read
{extra}Requests/sec:  97654.32
Transfer/sec:     10.24MB
"""


def report(p99="1.90ms", extra=""):
    return REPORT.format(p99=p99, extra=extra)


class parse_wrk_test(unittest.TestCase):
    def test_plain(self):
        r = benchlib.parse_wrk(report())
        self.assertEqual(r["reqs"], 293012)
        self.assertAlmostEqual(r["rps"], 97654.32)
        self.assertAlmostEqual(r["p99_ms"], 1.90)
        self.assertEqual(r["problems"], "")

    def test_p99_units(self):
        for text, ms in (("812.00us", 0.812), ("1.50s", 1500.0), ("2.00m", 120000.0), ("15.3ms", 15.3)):
            self.assertAlmostEqual(benchlib.parse_wrk(report(p99=text))["p99_ms"], ms, msg=text)

    def test_p99_is_not_the_90th(self):
        text = report().replace("     99%    1.90ms\n", "")
        self.assertIsNone(benchlib.parse_wrk(text)["p99_ms"])

    def test_problems(self):
        extra = "  Socket errors: connect 0, read 12, write 0, timeout 40\n  Non-2xx or 3xx responses: 7\n"
        r = benchlib.parse_wrk(report(extra=extra))
        self.assertEqual(r["problems"], "connect 0, read 12, write 0, timeout 40 non-2xx 7")

    def test_not_a_report(self):
        with self.assertRaises(ValueError):
            benchlib.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


class server_spec_test(unittest.TestCase):
    def test_name_and_argv_split_like_a_shell_line(self):
        self.assertEqual(benchlib.server_spec("httpd=moss-httpd --port 0 '/tmp/a dir'"),
                         ("httpd", ["moss-httpd", "--port", "0", "/tmp/a dir"]))

    def test_a_missing_part_is_refused(self):
        for spec in ("moss-httpd", "=moss-httpd 0", "httpd=", "httpd=  "):
            with self.assertRaises(ValueError, msg=spec):
                benchlib.server_spec(spec)

    def test_any_port_re_reads_both_kinds_of_servers(self):
        for line, port in (("port 4242\n", "4242"), ("moss-httpd: serving /x on http://127.0.0.1:5151/ with 1 worker", "5151")):
            self.assertEqual(re.search(benchlib.ANY_PORT_RE, line).group(1), port)


class server_test(unittest.TestCase):
    def test_port_is_the_last_group(self):
        s = benchlib.server([sys.executable, "-c", "print('listening on 127.0.0.1:4242/', flush=True);"
                             "import time; time.sleep(30)"], r"(\d+\.\d+\.\d+\.\d+):(\d+)")
        try:
            self.assertEqual(s.port, 4242)
        finally:
            s.stop()
        self.assertIsNotNone(s.proc.returncode)

    def test_no_port(self):
        with self.assertRaisesRegex(benchlib.ServerError, "no port reported.*'hello'"):
            benchlib.server([sys.executable, "-c", "print('hello')"])

    def test_silent_exit(self):
        with self.assertRaisesRegex(benchlib.ServerError, "exited with 3"):
            benchlib.server([sys.executable, "-c", "import sys; sys.exit(3)"])

    def test_missing_program(self):
        with self.assertRaisesRegex(benchlib.ServerError, "cannot start"):
            benchlib.server(["/nonexistent/hello_server"])


if __name__ == "__main__":
    unittest.main()

# py_fetch: an ordinary Python script fetching pages from a pool of threads
# (concurrent.futures + urllib), run by the unmodified Debian
# /usr/bin/python3 under mossrun. Each worker resolves its host with
# getaddrinfo and reads the page with blocking sockets, in a pthread.
#
#   python3 py_fetch.py URL...
#
# Prints "threads T" (OS threads while every worker waits), then
# "ok N" (pages that came back 200 with the expected body),
# "elapsed_ms E", and each failure as "failed URL: why".
import concurrent.futures
import sys
import threading
import time
import urllib.request

urls = sys.argv[1:]
started = threading.Barrier(len(urls) + 1)


def os_threads():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def fetch(url):
    started.wait()
    with urllib.request.urlopen(url, timeout=20) as r:
        return r.status, r.read()


opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
urllib.request.install_opener(opener)
start = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(max_workers=len(urls)) as pool:
    futures = {pool.submit(fetch, u): u for u in urls}
    started.wait()  # every worker is running: count the OS threads now
    print(f"threads {os_threads()}", flush=True)
    ok = 0
    for fut in concurrent.futures.as_completed(futures):
        try:
            status, body = fut.result()
            if status == 200 and body == b"hello from the test\n":
                ok += 1
            else:
                print(f"failed {futures[fut]}: status {status}, body {body[:40]!r}")
        except Exception as e:
            print(f"failed {futures[fut]}: {e}")
print(f"ok {ok}")
print(f"elapsed_ms {(time.monotonic() - start) * 1000:.0f}")

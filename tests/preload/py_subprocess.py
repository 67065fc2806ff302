"""py_subprocess: Python's subprocess and fcntl under green threads.

    py_subprocess.py SCRATCH_FILE

popen: a child writes 4 MiB to a pipe that a thread reads while main is in
Popen.wait(); the child ends only if the reader runs meanwhile (blocked
OS thread: it never does). flock: two open files of SCRATCH_FILE, the first
locked; a thread lets go after 0.3 s while main waits in fcntl.flock on the
second. Prints "popen RC bytes N elapsed_ms E", "flock elapsed_ms E".
"""
import fcntl
import os
import subprocess
import sys
import threading
import time

start = time.monotonic()
p = subprocess.Popen(["head", "-c", str(4 << 20), "/dev/zero"], stdout=subprocess.PIPE)
got = [0]


def reader():
    while True:
        data = p.stdout.read(65536)
        if not data:
            break
        got[0] += len(data)


t = threading.Thread(target=reader)
t.start()
rc = p.wait()
t.join()
print("popen", rc, "bytes", got[0], "elapsed_ms", int((time.monotonic() - start) * 1000), flush=True)

path = sys.argv[1]
f1 = open(path, "w")
f2 = open(path, "w")
fcntl.flock(f1, fcntl.LOCK_EX)


def holder():
    time.sleep(0.3)
    fcntl.flock(f1, fcntl.LOCK_UN)


h = threading.Thread(target=holder)
h.start()
start = time.monotonic()
fcntl.flock(f2, fcntl.LOCK_EX)
print("flock elapsed_ms", int((time.monotonic() - start) * 1000), flush=True)
h.join()
f1.close()
f2.close()
os.unlink(path)

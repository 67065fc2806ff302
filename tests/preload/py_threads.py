# py_threads: an ordinary Python threading script, run by the unmodified
# Debian /usr/bin/python3 under mossrun. CPython's threads are pthreads, its
# locks sem_clockwait, its GIL a condition variable with a monotonic clock.
#
#   python3 py_threads.py [UNIT_SECONDS]   (default 0.25)
#
# 1. the seeds' sleep scenario: three threads sleep 1, 2 and 4 units: the
#    whole takes 4 units, not 7;
# 2. four threads add to a counter under a threading.Lock;
# 3. three threads wait on a threading.Condition until one notifies all;
# 4. a producer and a consumer pass 1,000 items through a queue.Queue(10).
# Prints "woke N" per sleeper, "threads T" (OS threads while they sleep),
# "elapsed_ms E", "counter C", "cond_woken W", "queue_sum S".
import queue
import sys
import threading
import time

unit = float(sys.argv[1]) if len(sys.argv) > 1 else 0.25


def os_threads():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


print_lock = threading.Lock()


def sleeper(units):
    time.sleep(units * unit)
    with print_lock:
        print(f"woke {units}", flush=True)


start = time.monotonic()
sleepers = [threading.Thread(target=sleeper, args=(u,), name=f"sleeper-{u}") for u in (1, 2, 4)]
for t in sleepers:
    t.start()
threads = os_threads()
for t in sleepers:
    t.join()
elapsed = time.monotonic() - start
print(f"threads {threads}")
print(f"elapsed_ms {elapsed * 1000:.0f}")

lock = threading.Lock()
counter = 0


def add(n):
    global counter
    for i in range(n):
        with lock:
            value = counter
            if i % 100 == 0:
                time.sleep(0.001)  # hold the lock across a switch
            counter = value + 1


adders = [threading.Thread(target=add, args=(1000,)) for _ in range(4)]
for t in adders:
    t.start()
for t in adders:
    t.join()
print(f"counter {counter}")

cond = threading.Condition()
ready = False
woken = 0


def waiter():
    global woken
    with cond:
        if cond.wait_for(lambda: ready, timeout=10):
            woken += 1


waiters = [threading.Thread(target=waiter) for _ in range(3)]
for t in waiters:
    t.start()
time.sleep(0.05)
with cond:
    ready = True
    cond.notify_all()
for t in waiters:
    t.join()
print(f"cond_woken {woken}")

q = queue.Queue(10)
total = 0


def producer():
    for i in range(1000):
        q.put(i)
    q.put(None)


def consumer():
    global total
    while (item := q.get()) is not None:
        total += item


pair = [threading.Thread(target=producer), threading.Thread(target=consumer)]
for t in pair:
    t.start()
for t in pair:
    t.join()
print(f"queue_sum {total}")

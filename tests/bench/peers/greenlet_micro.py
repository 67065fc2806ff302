#!/usr/bin/env python3
# greenlet_micro: the Python peer for the suite's micro benchmarks
# (tests/bench/suite.py), each the counterpart of one of moss's:
#
#   greenlet_micro.py time [REPS]
#       switch_round_trip/greenlet   greenlet.switch() to an echo greenlet and
#                                    back (moss: greenlet::switch_to)
#       spawn_join/greenlet          greenlet(f).switch() run to its end
#       spawn_join/gevent            gevent.spawn(f).join(), through the hub
#                                    (moss: spawn([]{}).join())
#       yield_round_trip/gevent      two greenlets each calling gevent.sleep(0)
#                                    (moss: two tasks each calling yield())
#       event_round_trip/gevent      Event set -> wait -> clear, there and back
#       queue_round_trip/gevent      Queue put -> get, there and back
#     the fastest of REPS runs (default 5), in CPU ns per iteration
#   greenlet_micro.py parked N
#       N gevent greenlets parked on one gevent Event (as parked_bench parks N
#       tasks on one wake-up): peak RSS (VmHWM) above the baseline taken before
#       spawning, per greenlet; then the event is set and all are joined
#
# Output: one JSON object per line. Needs greenlet (python3-greenlet) for
# time, gevent (python3-gevent) for the gevent figures and for parked.
import json
import sys
import time

try:
    import greenlet
except ImportError:
    sys.exit("greenlet_micro: greenlet is not installed (Debian: python3-greenlet)")
try:
    import gevent
    import gevent.event
    import gevent.queue
except ImportError:
    gevent = None


def emit(**fields):
    print(json.dumps(fields), flush=True)


def fastest(reps, iterations, run):
    """The least CPU time per iteration (ns) over reps runs of run(iterations):
    CPU time, as Google Benchmark's figures for moss, so that waiting for a
    core on a shared machine does not count."""
    run(iterations // 10)  # warm up
    best = float("inf")
    for _ in range(reps):
        start = time.process_time_ns()
        run(iterations)
        best = min(best, (time.process_time_ns() - start) / iterations)
    return best


def switch_round_trip(n):
    main = greenlet.getcurrent()

    def echo():
        while True:
            main.switch()

    g = greenlet.greenlet(echo)
    for _ in range(n):
        g.switch()
    g.throw(greenlet.GreenletExit)  # ends it here, not at collection


def spawn_join_greenlet(n):
    def nothing():
        pass

    for _ in range(n):
        greenlet.greenlet(nothing).switch()


def spawn_join_gevent(n):
    def nothing():
        pass

    for _ in range(n):
        gevent.spawn(nothing).join()


def yield_round_trip(n):
    stop = False

    def partner():
        while not stop:
            gevent.sleep(0)

    p = gevent.spawn(partner)
    gevent.sleep(0)
    for _ in range(n):
        gevent.sleep(0)
    stop = True
    p.join()


def event_round_trip(n):
    ping, pong = gevent.event.Event(), gevent.event.Event()
    stop = False

    def other():
        while True:
            ping.wait()
            ping.clear()
            if stop:
                return
            pong.set()

    o = gevent.spawn(other)
    for _ in range(n):
        ping.set()
        pong.wait()
        pong.clear()
    stop = True
    ping.set()
    o.join()


def queue_round_trip(n):
    there, back = gevent.queue.Queue(), gevent.queue.Queue()

    def echo():
        while True:
            v = there.get()
            if v < 0:
                return
            back.put(v)

    e = gevent.spawn(echo)
    for i in range(n):
        there.put(i)
        back.get()
    there.put(-1)
    e.join()


def status_kib(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def parked(n):
    wake_up = gevent.event.Event()
    gevent.sleep(0)  # the hub exists before the baseline
    with open("/proc/self/clear_refs", "w") as f:  # VmHWM starts again from VmRSS
        f.write("5")
    base = status_kib("VmHWM")
    start = time.process_time_ns()
    tasks = [gevent.spawn(wake_up.wait) for _ in range(n)]
    gevent.sleep(0)  # every one of them runs until it parks
    park = time.process_time_ns() - start
    peak = status_kib("VmHWM")
    waiting = sum(1 for t in tasks if not t.dead)
    wake_up.set()
    gevent.joinall(tasks)
    if waiting != n:
        sys.exit(f"greenlet_micro: only {waiting} of {n} greenlets were parked")
    emit(name=f"parked/gevent/{n}", count=n, bytes_per_task=(peak - base) * 1024 / n, park_cpu_ns_per_task=park / n)


def main():
    args = sys.argv[1:]
    if args[:1] == ["time"] and len(args) <= 2:
        try:
            reps = int(args[1]) if len(args) > 1 else 5
            if reps < 1:
                raise ValueError
        except ValueError:
            sys.exit(f"greenlet_micro: REPS must be a positive number, not {args[1]!r}")
        emit(name="switch_round_trip/greenlet", ns=fastest(reps, 100_000, switch_round_trip))
        emit(name="spawn_join/greenlet", ns=fastest(reps, 50_000, spawn_join_greenlet))
        if gevent is None:
            print("greenlet_micro: gevent is not installed (Debian: python3-gevent); no gevent figures", file=sys.stderr)
            return
        emit(name="spawn_join/gevent", ns=fastest(reps, 20_000, spawn_join_gevent))
        emit(name="yield_round_trip/gevent", ns=fastest(reps, 50_000, yield_round_trip))
        emit(name="event_round_trip/gevent", ns=fastest(reps, 50_000, event_round_trip))
        emit(name="queue_round_trip/gevent", ns=fastest(reps, 50_000, queue_round_trip))
    elif args[:1] == ["parked"] and len(args) == 2:
        if gevent is None:
            sys.exit("greenlet_micro: gevent is not installed (Debian: python3-gevent)")
        try:
            n = int(args[1])
            if n < 1:
                raise ValueError
        except ValueError:
            sys.exit(f"greenlet_micro: N must be a positive number, not {args[1]!r}")
        parked(n)
    else:
        sys.exit("usage: greenlet_micro.py time [REPS] | greenlet_micro.py parked N")


if __name__ == "__main__":
    main()

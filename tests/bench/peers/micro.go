// micro.go: the Go peer for the suite's micro benchmarks
// (tests/bench/suite.py), each the counterpart of one of moss's:
//
//	micro time [REPS]   channel ping-pong round trip between two goroutines
//	                    (unbuffered channels; against moss's switch and queue
//	                    round trips) and spawn+join of a goroutine (go f() and
//	                    a sync.WaitGroup wait; against moss::spawn().join()):
//	                    the fastest of REPS runs (default 5), in CPU ns
//	micro parked N      N goroutines parked on one channel receive (as
//	                    parked_bench parks N tasks on one wake-up): peak RSS
//	                    (VmHWM) above the baseline taken before spawning,
//	                    per goroutine; then the channel is closed and all
//	                    are joined
//
// Output: one JSON object per line. The suite runs it with GOMAXPROCS=1, so
// every goroutine shares one OS thread, as moss's tasks share a hub.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

func emit(fields map[string]interface{}) {
	b, _ := json.Marshal(fields)
	fmt.Println(string(b))
}

// cpuNs is the process's CPU time (user + system) in ns: with GOMAXPROCS=1
// the goroutines measured share one thread; the runtime's own threads (GC,
// sysmon) add a little.
func cpuNs() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// fastest runs f(iterations) reps times and returns the least CPU time per
// iteration in ns: CPU time, as Google Benchmark's figures for moss, so that
// waiting for a core on a shared machine does not count.
func fastest(reps, iterations int, f func(n int)) float64 {
	f(iterations / 10) // warm up
	best := 0.0
	for r := 0; r < reps; r++ {
		start := cpuNs()
		f(iterations)
		ns := float64(cpuNs()-start) / float64(iterations)
		if r == 0 || ns < best {
			best = ns
		}
	}
	return best
}

func pingPong(n int) {
	ping, pong := make(chan struct{}), make(chan struct{})
	go func() {
		for range ping {
			pong <- struct{}{}
		}
	}()
	for i := 0; i < n; i++ {
		ping <- struct{}{}
		<-pong
	}
	close(ping)
}

func spawnJoin(n int) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { wg.Done() }()
		wg.Wait()
	}
}

func statusKiB(key string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		if strings.HasPrefix(line, key+":") {
			fields := strings.Fields(line[len(key)+1:])
			if len(fields) > 0 {
				v, _ := strconv.ParseInt(fields[0], 10, 64)
				return v
			}
		}
	}
	return -1
}

// resetPeak makes VmHWM start again from the current RSS (Linux >= 4.0).
func resetPeak() {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

func parked(n int) {
	gate := make(chan struct{})
	var wg sync.WaitGroup
	var ready sync.WaitGroup
	runtime.GC()
	resetPeak()
	base := statusKiB("VmHWM")
	start := cpuNs()
	wg.Add(n)
	ready.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			ready.Done()
			<-gate
			wg.Done()
		}()
	}
	ready.Wait()
	park := cpuNs() - start
	peak := statusKiB("VmHWM")
	close(gate)
	wg.Wait()
	emit(map[string]interface{}{"name": fmt.Sprintf("parked/go/%d", n), "count": n,
		"bytes_per_task": float64(peak-base) * 1024 / float64(n), "park_cpu_ns_per_task": float64(park) / float64(n)})
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: micro time [REPS] | micro parked N")
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "time":
		reps := 5
		if len(os.Args) > 2 {
			r, err := strconv.Atoi(os.Args[2])
			if err != nil || r < 1 {
				fmt.Fprintf(os.Stderr, "micro: REPS must be a positive number, not %q\n", os.Args[2])
				os.Exit(2)
			}
			reps = r
		}
		emit(map[string]interface{}{"name": "switch_round_trip/go_channel", "ns": fastest(reps, 200000, pingPong)})
		emit(map[string]interface{}{"name": "spawn_join/go", "ns": fastest(reps, 200000, spawnJoin)})
	case "parked":
		if len(os.Args) != 3 {
			usage()
		}
		n, err := strconv.Atoi(os.Args[2])
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "micro: N must be a positive number, not %q\n", os.Args[2])
			os.Exit(2)
		}
		parked(n)
	default:
		usage()
	}
}

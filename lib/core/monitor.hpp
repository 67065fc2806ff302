// monitor.hpp (internal): MOSS_MONITOR_MS, the report of a hub blocked too
// long (gevent's monitor thread).
//
// With MOSS_MONITOR_MS=N set, each hub thread gets a heartbeat that its
// switches tick, and a monitor thread looks at every heartbeat N/4 ms apart.
// A hub with unfinished tasks that has neither switched greenlets nor slept
// in its poller for N ms is blocked: a greenlet computes, or makes a call
// that blocks the whole thread. The monitor says so at once on stderr, naming the thread and the
// greenlet's id; when that greenlet switches at last, its own thread names it
// and says for how long it ran. The heartbeats are never freed (a thread's is
// reused by a later thread), so the monitor never reads freed memory.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace moss::detail {

class greenlet_impl;

struct heartbeat {
  std::atomic<std::uint64_t> switches{0};  // ticked by the owning thread
  std::atomic<std::uint64_t> running{0};   // id of the greenlet switched to last
  std::atomic<bool> sleeping{false};       // in the poller, with a timeout or none
  std::atomic<std::size_t> tasks{0};       // unfinished tasks: none, and nobody is starved
  std::atomic<bool> reported{false};       // the monitor reported this run as blocked
  std::atomic<long long> stuck_since{0};   // steady clock, ns: when the reported run began
  std::atomic<bool> in_use{false};
  std::atomic<int> tid{0};
  heartbeat* next = nullptr;               // the list of all heartbeats; never unlinked
  // Only the monitor thread touches these.
  std::uint64_t seen_switches = 0;
  long long seen_at = 0;

  // tick() records a switch to `to` (called by the owning thread).
  void tick(const greenlet_impl* from, std::uint64_t to_id) noexcept {
    switches.store(switches.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    running.store(to_id, std::memory_order_relaxed);
    if (reported.load(std::memory_order_relaxed)) [[unlikely]]
      report_end(from);
  }
  // report_end() prints, on the owning thread, how long `from` ran.
  void report_end(const greenlet_impl* from) noexcept;
};

// monitor_attach() gives the calling thread's hub a heartbeat, or null when
// MOSS_MONITOR_MS is unset or 0. The first call reads MOSS_MONITOR_MS (a
// malformed value is a moss::error) and starts the monitor thread.
heartbeat* monitor_attach();
// monitor_detach() gives a heartbeat back (the thread's hub is going away).
void monitor_detach(heartbeat* h) noexcept;
// monitor_after_fork() is for a forked child (hub.cpp's fork handler): the
// monitor thread did not come along, so it starts a new one if the monitor
// is on; `mine` (the forking thread's heartbeat, or null) now names the
// child's thread, and every other heartbeat is free (its thread is not here).
void monitor_after_fork(heartbeat* mine) noexcept;
// parse_monitor_ms() reads a MOSS_MONITOR_MS value: 0 (off) to 3600000.
int parse_monitor_ms(const char* text);

}  // namespace moss::detail

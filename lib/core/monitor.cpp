// monitor.cpp: MOSS_MONITOR_MS (see monitor.hpp).
#include "core/monitor.hpp"

#include "debug/backtrace.hpp"
#include "core/config.hpp"
#include "debug/dump.hpp"

#include "thread/native_thread.hpp"

#include "core/parse_count.hpp"
#include "core/sys.hpp"

#include <moss/detail/greenlet_impl.hpp>
#include <moss/error.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <system_error>

#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>

namespace moss::detail {

namespace {

constexpr int max_ms = 3600 * 1000;

std::atomic<heartbeat*> all{nullptr};  // every heartbeat ever made
int threshold_ms = 0;                   // MOSS_MONITOR_MS, read once

long long now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void say(const char* text, int n) noexcept {
  if (n > 0) sys::write_stderr(text, static_cast<std::size_t>(n));
}

// watch() is the monitor thread: every quarter of the threshold it looks at
// each heartbeat in use.
[[noreturn]] void watch() {
  long long threshold = static_cast<long long>(threshold_ms) * 1000000;
  timespec period{static_cast<time_t>(threshold_ms / 4 / 1000), static_cast<long>(threshold_ms / 4 % 1000) * 1000000};
  if (threshold_ms < 4) period = {0, 1000000};
  for (;;) {
    sys::call(SYS_nanosleep, sys::ptr_arg(&period), 0);
    long long now = now_ns();
    for (heartbeat* h = all.load(std::memory_order_acquire); h != nullptr; h = h->next) {
      std::uint64_t s = h->switches.load(std::memory_order_relaxed);
      if (!h->in_use.load(std::memory_order_acquire) || h->sleeping.load(std::memory_order_relaxed) ||
          h->tasks.load(std::memory_order_relaxed) == 0 || s != h->seen_switches || h->seen_at == 0) {
        h->seen_switches = s;
        h->seen_at = now;
        continue;
      }
      if (now - h->seen_at < threshold || h->reported.load(std::memory_order_relaxed)) continue;
      // Blocked, and not reported yet for this run.
      h->stuck_since.store(h->seen_at, std::memory_order_relaxed);
      h->reported.store(true, std::memory_order_release);
      char line[256];
      int n = std::snprintf(line, sizeof line,
                            "moss: monitor: the hub of thread %d has been blocked for %lld ms by greenlet %llu, "
                            "which has not switched since (MOSS_MONITOR_MS=%d)\n",
                            h->tid.load(std::memory_order_relaxed), (now - h->seen_at) / 1000000,
                            static_cast<unsigned long long>(h->running.load(std::memory_order_relaxed)),
                            threshold_ms);
      say(line, n);
      thread_backtrace(h->tid.load(std::memory_order_relaxed));  // where it is (backtrace.hpp)
    }
  }
}

// start() runs the monitor thread, with every signal blocked so that none is
// delivered to it instead of to a hub thread.
void start() {
  sigset_t all_signals, old;
  sigfillset(&all_signals);
  pthread_sigmask(SIG_SETMASK, &all_signals, &old);
  int r = start_native_thread([](void*) { watch(); }, nullptr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (r != 0) throw std::system_error(r, std::generic_category(), "moss: cannot start the monitor thread");
}

}  // namespace

int parse_monitor_ms(const char* text) {
  long ms = 0;
  if (!parse_count(text, 0, max_ms, &ms))
    throw moss::error(std::string("moss: MOSS_MONITOR_MS=\"") + text +
                      "\" is not valid; use a number of milliseconds from 1 to " + std::to_string(max_ms) +
                      ", or 0 for no monitor");
  return static_cast<int>(ms);
}

heartbeat* monitor_attach() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* text = env_value("MOSS_MONITOR_MS");
    try {
      threshold_ms = text != nullptr ? parse_monitor_ms(text) : 0;
    } catch (const moss::error& e) {
      bad_environment(e);  // exits: see config.hpp
    }
    if (threshold_ms > 0) {
      if (!backtrace_signal_install()) {
        static const char msg[] = "moss: monitor: cannot install the backtrace signal's handler; reports name no frames\n";
        say(msg, static_cast<int>(sizeof msg - 1));
      }
      start();
    }
    dump_signal_start();  // MOSS_DUMP_SIGNAL, also read when the first hub is made
  });
  if (threshold_ms == 0) return nullptr;
  heartbeat* h = nullptr;
  for (heartbeat* f = all.load(std::memory_order_acquire); f != nullptr && h == nullptr; f = f->next) {
    bool free = false;
    if (!f->in_use.load(std::memory_order_relaxed) && f->in_use.compare_exchange_strong(free, true)) h = f;
  }
  if (h == nullptr) {
    h = new heartbeat;
    h->in_use.store(true, std::memory_order_relaxed);
    h->next = all.load(std::memory_order_relaxed);
    while (!all.compare_exchange_weak(h->next, h, std::memory_order_release, std::memory_order_relaxed)) {
    }
  }
  h->reported.store(false, std::memory_order_relaxed);
  h->sleeping.store(false, std::memory_order_relaxed);
  h->tasks.store(0, std::memory_order_relaxed);
  h->tid.store(static_cast<int>(sys::call(SYS_gettid)), std::memory_order_relaxed);
  return h;
}

void monitor_after_fork(heartbeat* mine) noexcept {
  dump_after_fork();  // MOSS_DUMP_SIGNAL's thread did not come along either
  if (threshold_ms == 0) return;
  for (heartbeat* h = all.load(std::memory_order_acquire); h != nullptr; h = h->next) {
    h->seen_switches = 0;
    h->seen_at = 0;  // the new monitor thread starts counting now
    h->reported.store(false, std::memory_order_relaxed);
    if (h != mine) h->in_use.store(false, std::memory_order_release);
  }
  if (mine != nullptr) mine->tid.store(static_cast<int>(sys::call(SYS_gettid)), std::memory_order_relaxed);
  try {
    start();
  } catch (...) {
    static const char msg[] = "moss: monitor: cannot start the monitor thread in a forked child; it is not watched\n";
    say(msg, static_cast<int>(sizeof msg - 1));
  }
}

void monitor_detach(heartbeat* h) noexcept {
  if (h == nullptr) return;
  h->reported.store(false, std::memory_order_relaxed);
  h->in_use.store(false, std::memory_order_release);
}

void heartbeat::report_end(const greenlet_impl* from) noexcept {
  reported.store(false, std::memory_order_relaxed);
  long long ran = (now_ns() - stuck_since.load(std::memory_order_relaxed)) / 1000000;
  char line[512];
  int n = 0;
  try {
    n = std::snprintf(line, sizeof line, "moss: monitor: greenlet %llu \"%s\" ran for at least %lld ms without switching, blocking the hub of thread %d\n",
                      static_cast<unsigned long long>(from->id_), from->name().c_str(), ran,
                      tid.load(std::memory_order_relaxed));
  } catch (...) {  // the lazy name could not be made
    n = std::snprintf(line, sizeof line, "moss: monitor: greenlet %llu ran for at least %lld ms without switching\n",
                      static_cast<unsigned long long>(from->id_), ran);
  }
  say(line, n);
}

}  // namespace moss::detail

// green.cpp: the shared machinery of green pthreads (see green.hpp).
#include "green.hpp"
#include "hooks.hpp"

#include <moss/detail/interpose.hpp>
#include <moss/error.hpp>
#include <moss/run_info.hpp>

#include <atomic>
#include <chrono>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_map>

#include <unistd.h>

namespace moss::patch {

bool green_threads = false;

bool green_context() noexcept { return green_threads && in_greenlet(); }

green_thread* current_green() noexcept {
  detail::greenlet_impl* g = interpose::current_if_any();
  return g != nullptr ? static_cast<green_thread*>(g->user_data_) : nullptr;
}

green_thread* as_green(pthread_t t) noexcept {
  // A pthread_t of ours is the address of a green_thread. Real ones point
  // into glibc's thread descriptors; reading the magic word there is safe
  // (they are mapped and at least this large), and a live real thread's
  // descriptor never holds our magic at that offset.
  if (t == 0) return nullptr;
  auto* g = reinterpret_cast<green_thread*>(t);
  if (!green_threads) return nullptr;
  return g->magic == green_thread::live ? g : nullptr;
}

namespace {

// Never freed: at exit, waiters may still be linked (tasks are not unwound).
struct wait_table {
  std::unordered_map<const void*, detail::waiter_list> lists;
};
[[gnu::tls_model("initial-exec")]] thread_local wait_table* table = nullptr;

wait_table& this_table() {
  if (table == nullptr) table = new wait_table;
  return *table;
}

// cancel_signal ends a wait in a cancellation point (cancel()).
struct cancel_signal {};

bool is_cancel_signal(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const cancel_signal&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace

void cancel(green_thread* gt) noexcept {
  // The hooks' cancellation points cost nothing until the first cancel.
  cancel_point = &test_cancel;
  gt->cancel_pending = true;
  if (gt->cancel_enabled && gt->g != nullptr && interpose::is_parked(gt->g) && !gt->uninterruptible)
    detail::interrupt(gt->g, std::make_exception_ptr(cancel_signal{}));
}

detail::waiter_list& waiters_at(const void* addr) { return this_table().lists.try_emplace(addr).first->second; }

bool wake_one_at(const void* addr) noexcept {
  if (table == nullptr || table->lists.empty()) return false;
  auto it = table->lists.find(addr);
  if (it == table->lists.end()) return false;
  bool woke = it->second.wake_one();
  if (it->second.empty()) table->lists.erase(it);
  return woke;
}

void wake_all_at(const void* addr) noexcept {
  if (table == nullptr || table->lists.empty()) return;
  auto it = table->lists.find(addr);
  if (it == table->lists.end()) return;
  it->second.wake_all();
  table->lists.erase(it);
}

void forget_if_empty(const void* addr) noexcept {
  if (table == nullptr) return;
  auto it = table->lists.find(addr);
  if (it != table->lists.end() && it->second.empty()) table->lists.erase(it);
}

void exit_green(green_thread* gt, void* value) {
  gt->exit_value = value;
  continue_exit(gt);
}

void continue_exit(green_thread* gt) {
  if (gt->cleanup_top != nullptr) {
    auto* buf = static_cast<__pthread_unwind_buf_t*>(gt->cleanup_top);
    gt->cleanup_top = buf->__pad[0];
    // The handler's frame is an ancestor of this one, on this stack: the
    // same jump glibc's own unwinder makes. savemask was 0, so the jmp_buf
    // prefix is all longjmp reads.
    std::longjmp(reinterpret_cast<__jmp_buf_tag*>(buf->__cancel_jmp_buf), 1);
  }
  throw green_exit{gt->exit_value};
}

void forget_waits_after_fork() noexcept { table = nullptr; }  // leaked: its waiters' stacks stay in the parent

void test_cancel() {
  green_thread* me = current_green();
  if (me == nullptr || !me->cancel_pending || !me->cancel_enabled) return;
  me->cancel_pending = false;
  // An interrupted hooked call re-armed the signal (hooks.cpp): drop it, so
  // the cleanup handlers can wait again.
  interpose::drop_pending(&is_cancel_signal);
  exit_green(me, PTHREAD_CANCELED);
}

deferred_interrupt::~deferred_interrupt() {
  if (e_) interpose::rearm(std::move(e_));
}

void deferred_interrupt::keep(std::exception_ptr e) noexcept {
  if (!e_ || (interpose::is_kill(e) && !interpose::is_kill(e_))) e_ = std::move(e);
}

bool park(detail::waiter& w, detail::time_point deadline, const char* what, bool cancel_point,
          deferred_interrupt* defer) {
  green_thread* me = current_green();
  if (cancel_point) test_cancel();
  w.set_what(what);
  bool woken = false;
  if (me != nullptr) me->uninterruptible = !cancel_point;
  try {
    woken = w.wait(deadline);
  } catch (const moss::loop_exit&) {
    report_deadlock(what);
  } catch (const cancel_signal&) {
    test_cancel();
    return false;
  } catch (...) {
    if (me != nullptr) me->uninterruptible = false;
    if (defer == nullptr) throw;
    defer->keep(std::current_exception());
    return false;
  }
  if (me != nullptr) me->uninterruptible = false;
  if (cancel_point && !woken) test_cancel();
  return woken;
}

void report_deadlock(const char* what) noexcept {
  std::string text =
      "moss: all green threads are asleep - deadlock: every thread waits on a mutex, condition variable, "
      "semaphore, barrier or join that no other thread, timer or file descriptor can end\n";
  try {
    // The greenlet that found the deadlock is the one format_run_info shows
    // running; it waits too.
    std::string info = moss::format_run_info();
    std::size_t at = info.find(": running");
    if (at != std::string::npos) info.replace(at, 9, std::string(": waiting on ") + what);
    text += info;
  } catch (...) {
  }
  std::fflush(nullptr);
  interpose::write_stderr(text.data(), text.size());
  _exit(70);
}

bool deadline_from(clockid_t c, const timespec* abstime, detail::time_point* out) noexcept {
  if (abstime == nullptr || abstime->tv_nsec < 0 || abstime->tv_nsec >= 1'000'000'000) return false;
  if (c != CLOCK_REALTIME && c != CLOCK_MONOTONIC) return false;
  timespec now;
  clock_gettime(c, &now);
  using namespace std::chrono;
  auto left = seconds(abstime->tv_sec - now.tv_sec) + nanoseconds(abstime->tv_nsec - now.tv_nsec);
  if (left <= nanoseconds::zero()) *out = detail::clock::now();
  else *out = detail::deadline_after(left);
  return true;
}

int unsupported(const char* function, const char* why) noexcept {
  char line[256];
  int n = std::snprintf(line, sizeof line, "moss: %s is not supported for green threads (%s); run with MOSS_THREADS=native\n",
                        function, why);
  if (n > 0) interpose::write_stderr(line, static_cast<std::size_t>(std::min<int>(n, sizeof line - 1)));
  return ENOTSUP;
}

}  // namespace moss::patch

// run_info.cpp: format_run_info() and dump_greenlets(). Reads the hub's
// task list and each greenlet's scheduling fields; the waiter says what a
// parked greenlet waits on when its primitive recorded it
// (waiter::set_what). A hub's greenlets are only ever read on the hub's own
// thread: dump_greenlets asks every other hub to describe itself.
#include <moss/run_info.hpp>

#include "debug/backtrace.hpp"
#include "core/greenlet.hpp"
#include "core/hub.hpp"
#include "core/sys.hpp"

#include <moss/detail/task_base.hpp>
#include <moss/detail/waiter.hpp>
#include <moss/error.hpp>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include <execinfo.h>
#include <sys/syscall.h>

namespace moss {

namespace {

using detail::greenlet_impl;

const char* role_name(greenlet_impl::role r) {
  switch (r) {
    case greenlet_impl::role::root: return "main";
    case greenlet_impl::role::hub: return "hub";
    case greenlet_impl::role::raw: return "greenlet";
    case greenlet_impl::role::task: return "task";
  }
  return "?";
}

std::string state_of(const greenlet_impl* g, const detail::thread_state& t) {
  if (t.current == g) return "running";
  if (g->state_ == greenlet_impl::state::dead) return "finished";
  const auto* task = g->role_ == greenlet_impl::role::task ? static_cast<const detail::task_base*>(g) : nullptr;
  if (g->state_ == greenlet_impl::state::fresh) {
    if (task != nullptr && task->starts_later()) return "not started (spawn_later)";
    return "not started";
  }
  std::string s;
  if (g->parked_on_ != nullptr) {
    s = "waiting";
    if (const char* what = g->parked_on_->what()) {
      s += std::string(" on ") + what;
      if (const greenlet_impl* about = g->parked_on_->about()) s += " " + about->name();
    }
    if (g->scheduled_) s += " (woken, ready)";
  } else if (g->scheduled_) {
    s = "ready";
  } else if (g->role_ == greenlet_impl::role::hub) {
    s = "idle (in its loop)";
  } else {
    s = "suspended (switched away)";
  }
  if (task != nullptr && task->in_callbacks()) s += ", running its done callbacks";
  return s;
}

void describe(std::string& out, const greenlet_impl* g, const detail::thread_state& t) {
  out += "  #" + std::to_string(g->id_) + " \"" + g->name() + "\" " + role_name(g->role_) + ": " + state_of(g, t);
  if (g->role_ == greenlet_impl::role::task) {
    std::string site = static_cast<const detail::task_base*>(g)->spawn_site();
    if (!site.empty()) out += "; spawned from " + site;
  }
  out += '\n';
}

std::string count(std::size_t n, const char* noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

// frames() appends g's native backtrace: the running greenlet's from here,
// a suspended one's from its saved context.
void frames(std::string& out, const greenlet_impl* g, const detail::thread_state& t) {
  void* pcs[64];
  int n = 0;
  if (g == t.current) {
    n = backtrace(pcs, 64);
  } else if (g->state_ == greenlet_impl::state::active) {
    n = detail::saved_frames(g, pcs, 64);
  } else {
    return;  // not started, or finished: no stack
  }
  if (n == 0) out += "      (no backtrace: the saved context cannot be read on this platform)\n";
  detail::append_frames(out, pcs, n, "      ");
}

// describe_hub() is this thread's hub: `head` and counts, then the main
// greenlet, the hub, the calling greenlet if raw, and every unfinished task
// but `skip`, each followed by its backtrace when `with_frames`.
std::string describe_hub(const std::string& head, bool with_frames, const greenlet_impl* skip) {
  detail::thread_state* t = detail::this_thread_if_any();
  detail::hub_core* h = detail::hub_core::current_if_any();
  if (t == nullptr || h == nullptr) return "moss: no hub on this thread\n";
  std::size_t tasks = h->tracked_count();
  if (skip != nullptr && skip->role_ == greenlet_impl::role::task && tasks > 0) --tasks;  // the dump's own task
  std::string out = head + count(tasks, "unfinished task") + ", " + count(h->timers.size(), "timer") +
                    " armed, " + count(h->parked, "greenlet") + " waiting\n";
  auto one = [&](const greenlet_impl* g) {
    if (g == skip) return;
    describe(out, g, *t);
    if (with_frames) frames(out, g, *t);
  };
  one(t->root);
  one(h->hub_greenlet());
  if (t->current->role_ == greenlet_impl::role::raw) one(t->current);
  // The hub's list is newest first; print in spawn order.
  using list = detail::hub_core::task_list;
  for (const greenlet_impl* g = h->tasks().back(); g != nullptr; g = list::prev(*g)) one(g);
  return out;
}

std::string dump_head() {
  return "moss: hub of thread " + std::to_string(detail::sys::call(SYS_gettid)) + ": ";
}

void write_all(int fd, const std::string& text) noexcept {
  std::size_t done = 0;
  while (done < text.size()) {
    long n = detail::sys::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

// A request to another hub: its task fills `text`; the caller waits.
struct hub_report {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  std::string text;
};

}  // namespace

std::string format_run_info() { return describe_hub("moss: hub of this thread: ", false, nullptr); }

void dump_greenlets(int fd) {
  constexpr auto patience = std::chrono::seconds(2);
  write_all(fd, "moss: every greenlet of every hub of process " + std::to_string(detail::sys::call(SYS_getpid)) +
                    ", with native backtraces (newest frame first)\n");
  detail::hub_core* mine = detail::hub_core::current_if_any();
  if (mine != nullptr) write_all(fd, describe_hub(dump_head(), true, nullptr));
  for (detail::inbox* b = detail::first_inbox(); b != nullptr; b = b->next()) {
    if ((mine != nullptr && b == &mine->box()) || b->closed()) continue;
    auto report = std::make_shared<hub_report>();
    try {
      b->facade().call_threadsafe([report] {
        std::string text = describe_hub(dump_head(), true, detail::current_impl());
        std::lock_guard lock(report->m);
        report->text = std::move(text);
        report->done = true;
        report->cv.notify_all();
      });
    } catch (const moss::error&) {
      continue;  // its thread has just ended
    }
    std::unique_lock lock(report->m);
    if (report->cv.wait_for(lock, patience, [&] { return report->done; }))
      write_all(fd, report->text);
    else
      write_all(fd, "moss: a hub did not answer within 2 s: a greenlet there runs without switching, or a call blocks "
                    "its thread (MOSS_MONITOR_MS names it and shows where)\n");
  }
}

}  // namespace moss

// signal.cpp: signal_handler — from an async-signal-safe handler to a task
// on the hub.
//
// A hub with handlers owns a hub_signals: an eventfd watched by its poller
// and one slot in a fixed table that the process-wide handler reads. The
// handler touches only lock-free atomics and write(2): for each slot that
// listens for the signal it sets the signal's bit in `pending` and writes
// the slot's eventfd. The hub then takes the bits and spawns one task per
// matching handler.
//
// Invariants: everything but the slots' atomics is guarded by registry_m.
// A slot's eventfd is closed only after the slot stopped naming it and no
// handler is running (in_handler == 0), so a handler never writes to a
// closed or reused fd. A hub_signals is its hub's signals slot: it exists
// exactly while the hub has handlers (or until the hub goes), and holds one
// keepalive meanwhile.
//
// Fork: the child keeps the forking hub's handlers (dispositions are
// inherited) with an eventfd of its own, so a signal sent to the child runs
// its handlers in the child and never wakes the parent. Other threads'
// hubs do not exist there: their slots are cleared.
#include <moss/signal.hpp>

#include "core/hub.hpp"
#include "core/sys.hpp"

#include <moss/error.hpp>
#include <moss/task.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <sys/eventfd.h>

namespace moss::detail {

class hub_signals;

struct signal_registration {
  int signum;
  std::shared_ptr<signal_fn> fn;
  hub_signals* hub;     // null once the hub's thread has ended
  moss::hub* facade;
};

namespace {

constexpr int max_hubs = 64;  // hubs with handlers at the same time
constexpr int max_signal = 64;

struct slot {
  std::atomic<int> fd{-1};
  std::atomic<std::uint64_t> mask{0};     // signals its hub has handlers for
  std::atomic<std::uint64_t> pending{0};  // arrived, not yet taken by the hub
  bool used = false;                      // under registry_m
  hub_signals* owner = nullptr;           // under registry_m
};
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<std::uint64_t>::is_always_lock_free,
              "the signal handler needs lock-free atomics");

constinit slot slots[max_hubs];
constinit std::atomic<int> in_handler{0};

struct disposition {
  int handlers = 0;  // registrations for this signal, all hubs
  struct sigaction previous {};
};
constinit std::mutex registry_m;
disposition dispositions[max_signal + 1];

std::uint64_t bit(int signum) noexcept { return std::uint64_t{1} << (signum - 1); }

// A plain C++ function: a C-linkage name here would be exported, and a
// program defining its own on_signal would silently replace this one.
void on_signal(int signum) {
  int saved = errno;
  in_handler.fetch_add(1);
  std::uint64_t b = bit(signum);
  for (slot& s : slots) {
    if ((s.mask.load() & b) == 0) continue;
    s.pending.fetch_or(b);
    int fd = s.fd.load();
    if (fd >= 0) {
      std::uint64_t one = 1;
      sys::write(fd, &one, sizeof one);  // EAGAIN (counter full) still leaves it readable
    }
  }
  in_handler.fetch_sub(1);
  errno = saved;
}

std::string signal_name(int signum) {
  if (const char* abbrev = sigabbrev_np(signum)) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(signum);
}

}  // namespace

class hub_signals final : public fd_handler, public hub_slot {
 public:
  // Called with registry_m held.
  explicit hub_signals(hub_core& h) : h_(h) {
    for (int i = 0; i < max_hubs && slot_ < 0; ++i)
      if (!slots[i].used) slot_ = i;
    if (slot_ < 0)
      throw moss::error("moss: signal_handler: more than " + std::to_string(max_hubs) +
                        " hubs have signal handlers at once");
    fd_ = sys::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "moss: signal_handler: eventfd");
    if (h_.events.add(fd_, static_cast<fd_handler*>(this)) != 0) {
      int e = errno;
      sys::close(fd_);
      throw std::system_error(e, std::generic_category(), "moss: signal_handler: epoll_ctl");
    }
    slot& s = slots[slot_];
    s.used = true;
    s.owner = this;
    s.pending.store(0);
    s.mask.store(0);
    s.fd.store(fd_);
    ++h_.keepalive;  // a signal can arrive at any time
  }

  // Called with registry_m held, on the hub's thread.
  ~hub_signals() override {
    slot& s = slots[slot_];
    s.mask.store(0);
    s.fd.store(-1);
    while (in_handler.load() != 0) std::this_thread::yield();
    s.pending.store(0);
    s.used = false;
    s.owner = nullptr;
    h_.events.remove(fd_);
    sys::close(fd_);
    --h_.keepalive;
    for (signal_registration* r : regs_) r->hub = nullptr;
  }

  // Called with registry_m held.
  void add(signal_registration* r) {
    regs_.push_back(r);
    slots[slot_].mask.fetch_or(bit(r->signum));
  }
  void remove(signal_registration* r) noexcept {
    std::uint64_t mask = 0;
    for (auto it = regs_.begin(); it != regs_.end();) {
      if (*it == r) {
        it = regs_.erase(it);
        continue;
      }
      mask |= bit((*it)->signum);
      ++it;
    }
    slots[slot_].mask.store(mask);
  }
  bool empty() const noexcept { return regs_.empty(); }

  // The hub_slot contract: the hub retires it when it goes.
  void retire() noexcept override {
    std::lock_guard lock(registry_m);
    delete this;
  }
  // In a forked child: an eventfd of the child's own in the child's poller
  // (the old one is the parent's too). The handlers stay, and so does the
  // keepalive they hold.
  std::size_t after_fork() noexcept override {
    std::lock_guard lock(registry_m);
    slot& s = slots[slot_];
    s.fd.store(-1);
    sys::close(fd_);
    fd_ = sys::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd_ < 0 || h_.events.add(fd_, static_cast<fd_handler*>(this)) != 0) {
      static const char msg[] = "moss: signal_handler: cannot make the forked child's signal eventfd; handlers will not run\n";
      sys::write_stderr(msg, sizeof msg - 1);
      return 0;
    }
    s.fd.store(fd_);
    if (s.pending.load() != 0) {
      std::uint64_t one = 1;
      sys::write(fd_, &one, sizeof one);  // arrived before the rebuild: still delivered
    }
    return 0;
  }

  friend void signals_at_fork(fork_phase p) noexcept;

  // The eventfd became readable: take the signals that arrived and start a
  // task for each handler. Runs on the hub greenlet.
  void ready(std::uint32_t) noexcept override {
    std::uint64_t drain;
    sys::read(fd_, &drain, sizeof drain);  // first, so a later signal makes a new edge
    std::uint64_t arrived = slots[slot_].pending.exchange(0);
    if (arrived == 0) return;
    std::vector<std::shared_ptr<signal_fn>> to_run;
    {
      std::lock_guard lock(registry_m);
      for (signal_registration* r : regs_)
        if ((arrived & bit(r->signum)) != 0) to_run.push_back(r->fn);
    }
    for (auto& fn : to_run) {
      try {
        moss::spawn([fn] { fn->call(); });
      } catch (const std::exception& e) {
        std::fprintf(stderr, "moss: could not start a task for a signal handler: %s\n", e.what());
      }
    }
  }

 private:
  hub_core& h_;
  int slot_ = -1;
  int fd_ = -1;
  std::vector<signal_registration*> regs_;
};

void signals_at_fork(fork_phase p) noexcept {
  switch (p) {
    case fork_phase::prepare: registry_m.lock(); return;
    case fork_phase::parent: registry_m.unlock(); return;
    case fork_phase::child: break;
  }
  new (&registry_m) std::mutex;  // held by the prepare step of the parent's thread
  in_handler.store(0);           // a handler running on another thread did not come along
  hub_core* here = hub_core::current_if_any();
  hub_slot* mine = here != nullptr ? here->slot(slot_kind::signals) : nullptr;
  for (slot& s : slots) {
    if (!s.used || s.owner == nullptr || s.owner == mine) continue;
    // Another thread's hub: it does not exist here. Its registrations stay
    // counted in the dispositions (a cancel still uncounts them) but name
    // no hub any more.
    for (signal_registration* r : s.owner->regs_) r->hub = nullptr;
    s.mask.store(0);
    s.pending.store(0);
    int fd = s.fd.exchange(-1);
    if (fd >= 0) sys::close(fd);  // the child's copy; the parent's stays open
    s.used = false;
    s.owner = nullptr;
  }
}

namespace {

hub_signals* this_thread_signals() noexcept {
  hub_core* h = hub_core::current_if_any();
  return h != nullptr ? static_cast<hub_signals*>(h->slot(slot_kind::signals)) : nullptr;
}

// release_if_unused() drops this thread's hub_signals once its last handler
// is gone. Runs on the hub's thread.
void release_if_unused() noexcept {
  {
    std::lock_guard lock(registry_m);
    hub_signals* hs = this_thread_signals();
    if (hs == nullptr || !hs->empty()) return;
  }
  hub_core::current_if_any()->retire_slot(slot_kind::signals);  // retire() takes the lock
}

// The release, sent to the hub's thread when a handler is cancelled elsewhere.
struct release_node final : posted {
  void dispatch() noexcept override {
    release_if_unused();
    delete this;
  }
};

void check_signal(int signum) {
  if (signum < 1 || signum > max_signal || signum >= NSIG)
    throw moss::error("moss: signal_handler(" + std::to_string(signum) + "): no such signal");
  switch (signum) {
    case SIGKILL:
    case SIGSTOP:
      throw moss::error("moss: signal_handler(" + signal_name(signum) + "): this signal cannot be caught");
    case SIGSEGV:
    case SIGBUS:
    case SIGFPE:
    case SIGILL:
      throw moss::error("moss: signal_handler(" + signal_name(signum) +
                        "): a fault signal must be handled where it occurs, not later in a task");
    default:
      break;
  }
}

}  // namespace

// The kernel calls go through libc's sigaction(): patch/ wraps it only to
// count handlers that are running and never calls into lib/, so there is no
// recursion, and the patch layer's record of handlers stays right.
signal_registration* add_signal_handler(int signum, std::shared_ptr<signal_fn> fn) {
  check_signal(signum);
  hub_core& h = hub_core::current();
  auto r = std::make_unique<signal_registration>(signal_registration{signum, std::move(fn), nullptr, &h.facade()});
  std::unique_lock lock(registry_m);
  if (h.slot(slot_kind::signals) == nullptr) h.set_slot(slot_kind::signals, new hub_signals(h));
  auto* hs = static_cast<hub_signals*>(h.slot(slot_kind::signals));
  auto undo = [&] {
    hs->remove(r.get());
    if (!hs->empty()) return;
    lock.unlock();
    h.retire_slot(slot_kind::signals);
  };
  try {
    hs->add(r.get());
  } catch (...) {
    undo();
    throw;
  }
  disposition& d = dispositions[signum];
  if (d.handlers == 0) {
    struct sigaction act {};
    act.sa_handler = &on_signal;
    sigemptyset(&act.sa_mask);
    act.sa_flags = SA_RESTART | SA_ONSTACK;
    if (::sigaction(signum, &act, &d.previous) != 0) {
      int e = errno;
      undo();
      throw std::system_error(e, std::generic_category(), "moss: signal_handler(" + signal_name(signum) + "): sigaction");
    }
  }
  ++d.handlers;
  r->hub = hs;
  return r.release();
}

void remove_signal_handler(signal_registration* r) noexcept {
  bool release = false;
  bool mine = false;
  {
    std::lock_guard lock(registry_m);
    if (r->hub != nullptr) {
      r->hub->remove(r);
      release = r->hub->empty();
      mine = r->hub == this_thread_signals();
    }
    disposition& d = dispositions[r->signum];
    if (--d.handlers == 0) ::sigaction(r->signum, &d.previous, nullptr);
  }
  moss::hub* facade = r->facade;
  delete r;
  if (!release) return;
  if (mine) {
    release_if_unused();
  } else {
    try {
      detail::hub_access::post(*facade, std::make_unique<release_node>(), "signal_handle::cancel");
    } catch (...) {
      // The hub has stopped; its thread released everything already.
    }
  }
}

}  // namespace moss::detail

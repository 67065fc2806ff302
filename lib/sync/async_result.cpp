// async_result.cpp: the thread-safe part of async_result.
//
// Who waits, and how a completion reaches them:
//  - a greenlet on a thread with a hub parks in a waiter on that hub's
//    hub_entry. The entry's waiter list is touched only on that hub's
//    thread; a completion on another thread posts a wake_node to the hub
//    (post_to_hub), whose dispatch wakes the list there.
//  - a thread with no hub waits on the condition variable.
// Done callbacks are kept per hub too and are spawned as tasks there.
//
// Invariant: done_ changes once, under m_, and every registration (waiter
// count, callback) is made under m_ after checking done_, so a completion
// sees every waiter that could miss it.
#include <moss/async_result.hpp>

#include "core/hub.hpp"

#include <moss/detail/waiter.hpp>
#include <moss/hub.hpp>
#include <moss/task.hpp>

#include <cstdio>
#include <string>

namespace moss::detail {

struct async_state_base::hub_entry {
  explicit hub_entry(moss::hub& h) : hub(&h) {}
  moss::hub* hub;
  waiter_list waiters;     // only on hub's thread
  std::size_t parked = 0;  // greenlets in waiters, under m_
  std::vector<std::unique_ptr<result_callback>> callbacks;  // under m_
};

namespace {

void spawn_callbacks(const std::shared_ptr<async_state_base>& s, std::vector<std::unique_ptr<result_callback>>& cbs) noexcept {
  for (auto& cb : cbs) {
    try {
      moss::spawn([s, cb = std::move(cb)] { cb->call(s); });
    } catch (const std::exception& e) {
      std::fprintf(stderr, "moss: could not start a task for an async_result done callback: %s\n", e.what());
    }
  }
  cbs.clear();
}

// post_to_hub() hands n to h's thread, where the hub dispatches it; false if
// that hub has stopped (n is then deleted). The one place async_result
// crosses threads.
bool post_to_hub(moss::hub& h, std::unique_ptr<posted> n) noexcept {
  try {
    detail::hub_access::post(h, std::move(n), "async_result completion");
    return true;
  } catch (const std::exception&) {
    return false;  // the hub stopped: its waiters and callbacks are gone
  }
}

hub_core* this_hub() noexcept { return hub_core::current_if_any(); }

}  // namespace

// wake_node: a completion delivered to another hub.
struct async_state_base::wake_node final : posted {
  std::shared_ptr<async_state_base> state;
  hub_entry* entry = nullptr;
  std::vector<std::unique_ptr<result_callback>> callbacks;
  void dispatch() noexcept override {
    std::unique_ptr<wake_node> self(this);
    entry->waiters.wake_all();
    spawn_callbacks(state, callbacks);
  }
};

async_state_base::async_state_base() = default;
async_state_base::~async_state_base() = default;

void async_state_base::check_pending_locked() const {
  if (done_.load(std::memory_order_relaxed)) throw moss::error("moss: async_result was already set");
}

void async_state_base::set_error(std::exception_ptr e) {
  if (!e) throw moss::error("moss: async_result::set_exception() needs an exception, not a null exception_ptr");
  complete([&] { error_ = std::move(e); });
}

async_state_base::hub_entry& async_state_base::entry_locked(moss::hub& h) {
  for (hub_entry& e : hubs_)
    if (e.hub == &h) return e;
  return hubs_.emplace_back(h);
}

void async_state_base::finish(std::unique_lock<std::mutex>& lock) noexcept {
  done_.store(true, std::memory_order_release);
  bool notify = thread_waiters_ > 0;
  hub_core* mine = this_hub();
  hub_entry* local = nullptr;
  std::vector<std::unique_ptr<result_callback>> local_callbacks;
  std::vector<std::pair<moss::hub*, std::unique_ptr<wake_node>>> remote;
  auto self = shared_from_this();
  for (hub_entry& e : hubs_) {
    if (mine != nullptr && e.hub == &mine->facade()) {
      local = &e;
      local_callbacks = std::move(e.callbacks);
    } else if (e.parked > 0 || !e.callbacks.empty()) {
      try {
        auto n = std::make_unique<wake_node>();
        n->state = self;
        n->entry = &e;
        n->callbacks = std::move(e.callbacks);
        remote.emplace_back(e.hub, std::move(n));
      } catch (const std::bad_alloc&) {
        std::fputs("moss: out of memory delivering an async_result to another thread\n", stderr);
      }
    }
    e.callbacks.clear();
  }
  lock.unlock();
  if (notify) cv_.notify_all();
  if (local != nullptr) {
    local->waiters.wake_all();
    spawn_callbacks(self, local_callbacks);
  }
  for (auto& [h, n] : remote) post_to_hub(*h, std::move(n));
}

void async_state_base::add_callback(std::unique_ptr<result_callback> cb) {
  moss::hub& h = moss::hub::current();
  {
    std::lock_guard lock(m_);
    if (!done_.load(std::memory_order_relaxed)) {
      entry_locked(h).callbacks.push_back(std::move(cb));
      return;
    }
  }
  moss::spawn([s = shared_from_this(), cb = std::move(cb)] { cb->call(s); });
}

bool async_state_base::wait_until(time_point deadline, const char* op) {
  if (ready()) return true;
  hub_core* h = this_hub();
  if (h == nullptr) return wait_thread(deadline);
  if (h->thread().current->role_ == greenlet_impl::role::hub)
    throw moss::error(std::string("moss: ") + op +
                      " on a pending result was called on the hub greenlet; the hub must not wait — wait in a task instead");
  return wait_greenlet(deadline);
}

bool async_state_base::wait_thread(time_point deadline) {
  std::unique_lock lock(m_);
  ++thread_waiters_;
  auto done = [this] { return done_.load(std::memory_order_relaxed); };
  if (deadline == no_deadline) cv_.wait(lock, done);
  else cv_.wait_until(lock, deadline, done);
  --thread_waiters_;
  return done();
}

bool async_state_base::wait_greenlet(time_point deadline) {
  hub_core& h = hub_core::current();
  waiter w;
  w.set_what("async_result");
  hub_entry* e;
  {
    std::lock_guard lock(m_);
    if (done_.load(std::memory_order_relaxed)) return true;
    e = &entry_locked(h.facade());
    e->waiters.push_back(w);
    ++e->parked;
  }
  // Only the caller's handle left means nobody else can ever set this
  // result: let the hub report loop_exit rather than wait for it. Any other
  // handle may be on another thread, so the hub must stay up for it.
  bool others = shared_from_this().use_count() > 2;
  if (others) ++h.keepalive;
  struct leave {
    async_state_base& s;
    hub_core& h;
    hub_entry* e;
    bool others;
    ~leave() {
      if (others) --h.keepalive;
      std::lock_guard lock(s.m_);
      --e->parked;
    }
  } guard{*this, h, e, others};
  return w.wait(deadline) || ready();
}

}  // namespace moss::detail

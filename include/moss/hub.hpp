// hub.hpp: the per-thread event loop that runs spawned tasks.
//
// Each OS thread gets one hub, created on first use: a ready queue, a timer
// heap on the steady clock and an epoll poller, running on its own greenlet.
// A greenlet that waits switches to the hub (or straight to the next ready
// greenlet); the hub polls and resumes whoever became ready. The hub itself
// never blocks on behalf of a greenlet.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace moss {

namespace detail {
class hub_core;
class inbox;

// posted: a node of a hub's cross-thread queue. dispatch() runs on the hub
// greenlet when the hub takes the node, owns the node from then on and must
// not block. A node the hub never takes (it stopped first) is deleted
// instead, so a node's destructor is where its producer can learn that.
class posted {
 public:
  virtual ~posted() = default;
  virtual void dispatch() noexcept = 0;
  posted* next_ = nullptr;
};

// posted_call: a node whose dispatch() spawns a task that calls call()
// (lib/threadsafe.cpp).
class posted_call : public posted {
 public:
  void dispatch() noexcept final;
  virtual void call() = 0;
};

template <class F>
class posted_fn final : public posted_call {
 public:
  template <class G>
  explicit posted_fn(G&& f) : f_(std::forward<G>(f)) {}
  void call() override { std::invoke(std::move(f_)); }

 private:
  F f_;
};
}  // namespace detail

class hub {
 public:
  // current() is this thread's hub, created on first use. Throws moss::error
  // while the thread is exiting (its hub is gone).
  static hub& current();

  hub(const hub&) = delete;
  hub& operator=(const hub&) = delete;

  // call_threadsafe() queues f to run on this hub's thread as a task
  // (asyncio's call_soon_threadsafe). Callable from any thread; functions
  // queued by one thread start in the order they were queued. f may be
  // move-only; an exception it throws is reported like any task's. Throws
  // moss::error if the hub has stopped (its thread has exited). A reference
  // to a hub stays valid after its thread ends, so that error is all a late
  // caller gets.
  template <class F>
    requires std::is_invocable_v<std::decay_t<F>>
  void call_threadsafe(F&& f) {
    post(std::make_unique<detail::posted_fn<std::decay_t<F>>>(std::forward<F>(f)), "call_threadsafe");
  }

  // stopped() is true once the hub's thread has shut it down.
  bool stopped() const noexcept;

  // task_count() is the number of spawned tasks that have not finished.
  // Must be called on the hub's thread.
  std::size_t task_count() const noexcept;

  // core() is the hub's internals; must be called on the hub's thread while
  // the hub runs.
  detail::hub_core& core() noexcept { return *core_; }

  // post() queues a node (for the library's layers); `what` names the
  // caller in the error thrown when the hub has stopped.
  void post(std::unique_ptr<detail::posted> n, const char* what);

 private:
  friend class detail::hub_core;
  friend class detail::inbox;
  hub(detail::hub_core& core, detail::inbox& box) noexcept : core_(&core), inbox_(box) {}
  detail::hub_core* core_;  // null once stopped; read only on the hub's thread
  detail::inbox& inbox_;
};

}  // namespace moss

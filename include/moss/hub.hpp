/// @file
/// hub.hpp: the per-thread event loop that runs spawned tasks.
///
/// Each OS thread gets one hub, created on first use: a ready queue, a timer
/// heap on the steady clock and an epoll poller, running on its own greenlet.
/// A greenlet that waits switches to the hub (or straight to the next ready
/// greenlet); the hub polls and resumes whoever became ready. The hub itself
/// never blocks on behalf of a greenlet.
#pragma once

#include <moss/detail/export.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace moss {

namespace detail {
class hub_core;
class inbox;
struct hub_access;

/// posted: a node of a hub's cross-thread queue. dispatch() runs on the hub
/// greenlet when the hub takes the node, owns the node from then on and must
/// not block. A node the hub never takes (it stopped first) is deleted
/// instead, so a node's destructor is where its producer can learn that.
class MOSS_API posted {
 public:
  virtual ~posted() = default;
  virtual void dispatch() noexcept = 0;
  posted* next_ = nullptr;
};

/// posted_call: a node whose dispatch() spawns a task that calls call()
/// (lib/thread/threadsafe.cpp).
class MOSS_API posted_call : public posted {
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

class hub;

/// keepalive: held while work is promised to a hub from outside it (another
/// thread will call_threadsafe or spawn_threadsafe; a library will call back
/// through one of them). While any is held, a hub whose greenlets all wait
/// sleeps until something arrives instead of raising moss::loop_exit.
/// Obtained from hub::keep_alive() on the hub's thread; move-only; released
/// by its destructor or reset(), on any thread (from another thread the
/// release reaches the hub as a post). A hub that has stopped ignores it.
class MOSS_API keepalive {
 public:
  keepalive() noexcept = default;
  /// A moved-from keepalive holds nothing.
  keepalive(keepalive&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  /// Assignment releases what this held and takes what o held.
  keepalive& operator=(keepalive&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  keepalive(const keepalive&) = delete;
  keepalive& operator=(const keepalive&) = delete;
  ~keepalive() { reset(); }

  ///@{
  /// reset() releases the promise now.
  void reset() noexcept;
  /// A keepalive is true while it holds a promise.
  explicit operator bool() const noexcept { return h_ != nullptr; }
  ///@}

 private:
  friend class hub;
  explicit keepalive(hub* h) noexcept : h_(h) {}
  hub* h_ = nullptr;
};

/// hub: a thread's scheduler and event loop, which runs greenlets when what they wait for is ready; see hub.hpp.
class MOSS_API hub {
 public:
  /// current() is this thread's hub, created on first use. Throws moss::error
  /// while the thread is exiting (its hub is gone).
  static hub& current();

  hub(const hub&) = delete;
  hub& operator=(const hub&) = delete;

  /// call_threadsafe() queues f to run on this hub's thread as a task
  /// (asyncio's call_soon_threadsafe). Callable from any thread; functions
  /// queued by one thread start in the order they were queued. f may be
  /// move-only; an exception it throws is reported like any task's. Throws
  /// moss::error if the hub has stopped (its thread has exited). A reference
  /// to a hub stays valid after its thread ends, so that error is all a late
  /// caller gets.
  template <class F>
    requires std::is_invocable_v<std::decay_t<F>>
  void call_threadsafe(F&& f) {
    post(std::make_unique<detail::posted_fn<std::decay_t<F>>>(std::forward<F>(f)), "call_threadsafe");
  }

  /// keep_alive() promises that work will reach this hub from elsewhere (see
  /// keepalive above):
  ///
  ///   auto alive = moss::hub::current().keep_alive();
  ///   std::thread producer([&h = moss::hub::current(), &q] { ...
  ///       moss::spawn_threadsafe(h, [&q] { q.put(1); }); });
  ///   q.get();   // waits for the producer instead of raising loop_exit
  ///
  /// Must be called on the hub's own thread; throws moss::error otherwise.
  [[nodiscard("the promise ends when the keepalive is destroyed; keep it in a variable")]] keepalive keep_alive();

  /// stopped() is true once the hub's thread has shut it down.
  bool stopped() const noexcept;

  /// task_count() is the number of spawned tasks that have not finished.
  /// Must be called on the hub's thread.
  std::size_t task_count() const noexcept;

  /// core() is the hub's internals; must be called on the hub's thread while
  /// the hub runs.

  /// post() queues a node (for the library's layers); `what` names the
  /// caller in the error thrown when the hub has stopped.

 private:
  friend class detail::hub_core;
  friend class detail::inbox;
  friend struct detail::hub_access;
  friend class keepalive;
  // post() queues a node (call_threadsafe, and the library's layers through
  // detail::hub_access); `what` names the caller in the error thrown when
  // the hub has stopped.
  void post(std::unique_ptr<detail::posted> n, const char* what);
  hub(detail::hub_core& core, detail::inbox& box) noexcept : core_(&core), inbox_(box) {}
  detail::hub_core* core_;  // null once stopped; read only on the hub's thread
  detail::inbox& inbox_;
};

namespace detail {
// hub_access posts a node to a hub for the library's layers and templates
// (spawn_threadsafe); hub::post() itself is private.
struct hub_access {
  static void post(moss::hub& h, std::unique_ptr<posted> n, const char* what) { h.post(std::move(n), what); }
};
}  // namespace detail

}  // namespace moss

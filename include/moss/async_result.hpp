/// @file
/// async_result.hpp: a value or exception that arrives later, settable from
/// any thread (gevent's AsyncResult, asyncio's Future).
///
///   moss::async_result<int> r;
///   std::thread t([r] { r.set(42); });   // any thread, hub or not
///   int v = r.get();                     // a greenlet waits cooperatively;
///   t.join();                            // a thread without a hub blocks
///
/// Handles are cheap to copy and share one state. The state is guarded by a
/// mutex, so set() and get() may race from different threads. Greenlets wait
/// on their own hub's waiter list; a setter on another thread reaches that
/// hub through its cross-thread queue (lib/sync/async_result.cpp). Threads with
/// no hub wait on a condition variable.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/timer.hpp>
#include <moss/error.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace moss {

class hub;

namespace detail {

class async_state_base;

/// result_callback: a done callback, type-erased (it may be move-only).
class MOSS_API result_callback {
 public:
  virtual ~result_callback() = default;
  virtual void call(const std::shared_ptr<async_state_base>& s) = 0;
};

class MOSS_API async_state_base : public std::enable_shared_from_this<async_state_base> {
 public:
  async_state_base();
  ~async_state_base();
  async_state_base(const async_state_base&) = delete;
  async_state_base& operator=(const async_state_base&) = delete;

  bool ready() const noexcept { return done_.load(std::memory_order_acquire); }
  bool successful() const noexcept { return ready() && !error_; }
  /// error() is the stored exception; null while pending or on success.
  std::exception_ptr error() const noexcept { return ready() ? error_ : nullptr; }

  /// wait_until() waits for completion: cooperatively in a greenlet of a
  /// thread with a hub, blocking the thread otherwise. op names the caller
  /// in the error thrown on the hub greenlet. True once done.
  bool wait_until(time_point deadline, const char* op);
  void set_error(std::exception_ptr e);
  void add_callback(std::unique_ptr<result_callback> cb);

 protected:
  /// complete() stores the outcome with store() under the lock, then wakes
  /// every waiter and schedules the callbacks. Throws moss::error if the
  /// result was already set (store() is not called then).
  template <class Store>
  void complete(Store&& store) {
    std::unique_lock lock(m_);
    check_pending_locked();
    std::forward<Store>(store)();
    finish(lock);
  }

  std::exception_ptr error_;

 private:
  struct hub_entry;
  void check_pending_locked() const;
  void finish(std::unique_lock<std::mutex>& lock) noexcept;
  hub_entry& entry_locked(moss::hub& h);
  bool wait_greenlet(time_point deadline);
  bool wait_thread(time_point deadline);

  mutable std::mutex m_;
  std::condition_variable cv_;  // threads with no hub wait here
  std::atomic<bool> done_{false};
  std::size_t thread_waiters_ = 0;
  std::list<hub_entry> hubs_;  // one per hub with waiters or callbacks
};

template <class T>
class async_state final : public async_state_base {
 public:
  template <class... A>
  void set_value(A&&... a) {
    complete([&] { value_.emplace(std::forward<A>(a)...); });
  }
  std::optional<T> value_;
};

template <>
class async_state<void> final : public async_state_base {
 public:
  void set_value() {
    complete([] {});
  }
};

}  // namespace detail

/// async_result: a value (or exception) set once, from any thread, and waited for by greenlets or threads; see async_result.hpp.
template <class T = void>
class async_result {
 public:
  /// value_type is T, the type of the value.
  using value_type = T;

  /// async_result() makes a new pending result.
  async_result() : s_(std::make_shared<detail::async_state<T>>()) {}

  ///@{
  /// set() stores the value and wakes every waiter, on any thread. Throws
  /// moss::error if the result was already set.
  template <class U = T>
    requires(!std::is_void_v<T> && std::is_constructible_v<T, U &&>)
  void set(U&& v) const {
    s_->set_value(std::forward<U>(v));
  }
  void set() const
    requires std::is_void_v<T>
  {
    s_->set_value();
  }
  ///@}
  /// set_exception() stores e for get() to rethrow. e must not be null.
  void set_exception(std::exception_ptr e) const { s_->set_error(std::move(e)); }

  /// get() waits for the result and returns it or rethrows its exception.
  /// In a greenlet the hub keeps running others while it waits; on a thread
  /// without a hub it blocks the thread. Throws moss::error on the hub
  /// greenlet while the result is pending (the hub must not wait).
  /// While a greenlet waits, its hub counts the result as something that
  /// can still wake it (another thread may set it), so the hub blocks rather
  /// than raise moss::loop_exit — unless the waiter's handle is the only one
  /// left, when nobody can ever set it.
  std::add_lvalue_reference_t<T> get() const {
    if (!s_->ready()) s_->wait_until(detail::no_deadline, "async_result::get()");
    return value();
  }
  /// get(timeout) is get() that throws moss::timeout_error when timeout
  /// passes first (at once if the result is pending and timeout <= 0).
  template <class Rep, class Period>
  std::add_lvalue_reference_t<T> get(std::chrono::duration<Rep, Period> timeout) const {
    if (!s_->ready() && !s_->wait_until(detail::deadline_after(timeout), "async_result::get()"))
      throw moss::timeout_error("moss: async_result::get() timed out");
    return value();
  }

  /// wait() waits until the result is set, without rethrowing its exception.
  void wait() const {
    if (!s_->ready()) s_->wait_until(detail::no_deadline, "async_result::wait()");
  }
  /// wait(timeout) returns true if the result is set, false if timeout
  /// passed first.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const {
    return s_->ready() || s_->wait_until(detail::deadline_after(timeout), "async_result::wait()");
  }

  /// ready() is true once a value or an exception is set.
  bool ready() const noexcept { return s_->ready(); }
  /// successful() is true once a value (not an exception) is set.
  bool successful() const noexcept { return s_->successful(); }
  /// exception() is the stored exception (null while pending or on success).
  std::exception_ptr exception() const noexcept { return s_->error(); }

  /// add_done_callback() arranges for cb(result) to run once the result is
  /// set, in a task of its own on the hub of the thread calling this (its
  /// hub is created if needed) — never inside set(), even when set() runs on
  /// that hub's thread. If the result is already set, the task is spawned
  /// now. An exception from cb is reported like any task's. If that hub
  /// stops before the result is set, cb is dropped.
  template <class F>
    requires std::is_invocable_v<F&, const async_result&>
  void add_done_callback(F&& cb) const {
    s_->add_callback(std::make_unique<callback<std::decay_t<F>>>(std::forward<F>(cb)));
  }

  /// Two handles are equal when they share one result.
  friend bool operator==(const async_result& a, const async_result& b) noexcept { return a.s_ == b.s_; }

 private:
  explicit async_result(std::shared_ptr<detail::async_state<T>> s) noexcept : s_(std::move(s)) {}

  std::add_lvalue_reference_t<T> value() const {
    if (auto e = s_->error()) std::rethrow_exception(e);
    if constexpr (!std::is_void_v<T>) return *s_->value_;
  }

  template <class F>
  struct callback final : detail::result_callback {
    template <class G>
    explicit callback(G&& g) : f(std::forward<G>(g)) {}
    void call(const std::shared_ptr<detail::async_state_base>& s) override {
      const async_result self(std::static_pointer_cast<detail::async_state<T>>(s));
      std::invoke(f, self);
    }
    F f;
  };

  std::shared_ptr<detail::async_state<T>> s_;
};

}  // namespace moss

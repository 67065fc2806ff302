/// @file
/// task.hpp: spawned tasks on this thread's hub (gevent's Greenlet, asyncio's
/// Task).
///
///   auto t = moss::spawn([](int x) { moss::sleep(10ms); return x * 2; }, 21);
///   int v = t.get();   // waits; rethrows the task's exception
///
/// A task starts at the hub's next turn, runs until it waits, and finishes
/// when its function returns. The handle is cheap to copy; the task runs to
/// completion whether or not a handle is kept.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/task_base.hpp>
#include <moss/error.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace moss {

namespace detail {
struct task_access;
}

/// task_ref is a handle to a task of any result type: what all_tasks(),
/// killall() and the composition functions deal in. Every task<R> is a
/// task_ref; slicing one to a task_ref keeps the task, drops the type.
class task_ref {
 public:
  task_ref() noexcept = default;
  /// Copies are handles to the same task.
  task_ref(const task_ref& o) noexcept : s_(o.s_) {
    if (s_ != nullptr) s_->ref();
  }
  /// A moved-from handle is empty.
  task_ref(task_ref&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  /// Assignment makes this a handle to the task o names.
  task_ref& operator=(task_ref o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~task_ref() {
    if (s_ != nullptr) s_->unref();
  }
  /// For the library's layers: adopt a task (takes a reference).

  /// join() waits until the task has finished (successfully or not) and its
  /// done callbacks have run.
  void join() const { base().join(); }
  /// join(timeout) waits at most timeout; true if the task finished.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) const {
    return base().join_until(detail::deadline_after(timeout));
  }
  /// kill() raises moss::greenlet_exit in the task at its next resume so its
  /// stack unwinds, and by default waits until it has finished. A task that
  /// has not started yet just dies. Killing a finished task does nothing.
  void kill(bool block = true) const { base().kill(block); }
  /// cancel() asks the task to stop and returns at once (asyncio's
  /// Task.cancel; the same as kill(false)).
  void cancel() const { base().kill(false); }

  ///@{
  /// ready() is true once the task's result (or exception) is available.
  bool ready() const noexcept { return s_ != nullptr && s_->done(); }
  /// successful() is true once the task has returned (not raised).
  bool successful() const noexcept { return s_ != nullptr && s_->successful(); }
  /// killed() is true once the task has ended because it was killed.
  bool killed() const noexcept { return s_ != nullptr && s_->killed(); }
  ///@}
  /// cancelled() is true once the task has ended because it was killed.
  bool cancelled() const noexcept { return killed(); }
  /// exception() is what the task raised (null while running or on success).
  /// Looking at it counts as retrieving it: the failure is then not reported
  /// to the error handler (moss/error_handler.hpp).
  std::exception_ptr exception() const noexcept { return s_ != nullptr ? s_->retrieve_error() : nullptr; }

  /// name() is the task's name (shown in reports and dumps).
  const std::string& name() const { return base().name(); }
  /// set_name() names the task.
  void set_name(std::string_view name) const { base().name_ = name; }
  /// id() is unique among the process's greenlets.
  std::uint64_t id() const { return base().id_; }

  /// A handle is true when it names a task.
  explicit operator bool() const noexcept { return s_ != nullptr; }
  /// Two handles are equal when they name one task.
  friend bool operator==(const task_ref& a, const task_ref& b) noexcept { return a.s_ == b.s_; }

  /// For the library's own layers: the task's state, or null.
  detail::task_base* base_ptr() const noexcept { return s_; }

 protected:
  friend struct detail::task_access;
  /// task_ref(s) adopts a task (takes a reference); see detail::task_access.
  explicit task_ref(detail::task_base* s) noexcept : s_(s) {
    if (s_ != nullptr) s_->ref();
  }

  /// base() is the task's control block; throws moss::error on an empty handle.
  detail::task_base& base() const {
    if (s_ == nullptr) throw moss::error("moss: empty task handle");
    return *s_;
  }
  /// The task's state (a counted reference), null for an empty handle.
  detail::task_base* s_ = nullptr;
};

/// task<R>: a handle to a greenlet run by the hub that produces an R (or an exception); see task.hpp.
template <class R>
class task : public task_ref {
 public:
  /// value_type is R, the type of the result.
  using value_type = R;

  task() noexcept = default;
  /// For the library's layers: adopt a state (takes a reference).

  /// get() waits, then returns the value or rethrows the task's exception
  /// (moss::greenlet_exit if it was killed). Inside the task's own done
  /// callbacks it returns at once.
  std::add_lvalue_reference_t<R> get() const {
    auto& s = state();
    if (!s.done()) s.join();
    s.rethrow_if_failed();
    if constexpr (!std::is_void_v<R>) return *s.result_;
  }

  /// add_done_callback() arranges for cb(task) to run once the task is done
  /// (asyncio's add_done_callback). Callbacks run in the order added, on the
  /// task's own greenlet after its function has returned and before join()
  /// and wait() see it finish, so they may block. A callback added after the
  /// task finished runs soon in a task of its own, never inside this call.
  /// An exception from a callback is printed and does not stop the others;
  /// killing the task while a callback blocks drops the callbacks not yet run.
  template <class F>
    requires std::is_invocable_v<F&, const task&>
  void add_done_callback(F&& cb) const {
    state().add_callback(std::make_unique<callback<std::decay_t<F>, when::always>>(std::forward<F>(cb)));
  }
  /// link_value() is add_done_callback() for a task that succeeded: cb runs
  /// only if successful() (gevent's link_value).
  template <class F>
    requires std::is_invocable_v<F&, const task&>
  void link_value(F&& cb) const {
    state().add_callback(std::make_unique<callback<std::decay_t<F>, when::succeeded>>(std::forward<F>(cb)));
  }
  /// link_exception() runs cb only if the task failed or was killed.
  template <class F>
    requires std::is_invocable_v<F&, const task&>
  void link_exception(F&& cb) const {
    state().add_callback(std::make_unique<callback<std::decay_t<F>, when::failed>>(std::forward<F>(cb)));
  }

  /// For the library's own layers: the task's state.
  detail::task_state<R>* state_ptr() const noexcept { return static_cast<detail::task_state<R>*>(s_); }

 private:
  enum class when { always, succeeded, failed };
  template <class F, when W>
  struct callback final : detail::done_callback {
    template <class G>
    explicit callback(G&& g) : f(std::forward<G>(g)) {}
    void call(detail::task_base& t) override {
      if ((W == when::succeeded && !t.successful()) || (W == when::failed && t.successful())) return;
      const task self(static_cast<detail::task_state<R>*>(&t));
      std::invoke(f, self);
    }
    F f;
  };

  friend struct detail::task_access;
  // task(s) adopts a state (takes a reference); see detail::task_access.
  explicit task(detail::task_state<R>* s) noexcept : task_ref(s) {}

  detail::task_state<R>& state() const { return static_cast<detail::task_state<R>&>(base()); }
};

namespace detail {
// task_access makes handles from control blocks, taking a reference: for the
// library's layers and templates. Programs get their handles from spawn().
struct task_access {
  static task_ref adopt(task_base* s) noexcept { return task_ref(s); }
  template <class R>
  static task<R> adopt_task(task_state<R>* s) noexcept {
    return task<R>(s);
  }
};
}  // namespace detail

/// all_tasks() returns every task of this thread's hub that has not finished
/// (asyncio.all_tasks), newest first.
MOSS_API std::vector<task_ref> all_tasks();

/// current_task() is the task running now (asyncio.current_task, gevent's
/// getcurrent() in a Greenlet), or an empty task_ref when the caller is not a
/// task (a thread's main greenlet, a raw greenlet, the hub).
MOSS_API task_ref current_task() noexcept;

namespace detail {

template <class F, class... Args>
using spawn_result_t = std::decay_t<std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>>;

template <class F, class... Args>
task<spawn_result_t<F, Args...>> spawn_at(const spawn_options& o, time_point start, F&& f, Args&&... args) {
  using R = spawn_result_t<F, Args...>;
  auto* s = new task_fn<R, std::decay_t<F>, std::decay_t<Args>...>(std::forward<F>(f), std::forward<Args>(args)...);
  launch(s, o, start);
  return task_access::adopt_task<R>(s);
}

}  // namespace detail

/// spawn() starts f(args...) as a task on this thread's hub. Arguments are
/// copied or moved into the task, as by std::thread. Throws moss::error when
/// the thread's hub is gone, std::system_error when no stack can be mapped.
template <class F, class... Args>
  requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
auto spawn(F&& f, Args&&... args) {
  return detail::spawn_at(spawn_options{}, detail::time_point::min(), std::forward<F>(f), std::forward<Args>(args)...);
}

/// spawn(options, f, args...) sets the stack size or the name.
template <class F, class... Args>
  requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
auto spawn(const spawn_options& o, F&& f, Args&&... args) {
  return detail::spawn_at(o, detail::time_point::min(), std::forward<F>(f), std::forward<Args>(args)...);
}

/// spawn_later() starts the task after delay (gevent's spawn_later).
template <class Rep, class Period, class F, class... Args>
  requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
auto spawn_later(std::chrono::duration<Rep, Period> delay, F&& f, Args&&... args) {
  return detail::spawn_at(spawn_options{}, detail::deadline_after(delay), std::forward<F>(f), std::forward<Args>(args)...);
}

namespace detail {
class MOSS_API run_scope {
 public:
  run_scope();
  ~run_scope();
  run_scope(const run_scope&) = delete;
  run_scope& operator=(const run_scope&) = delete;
};
}  // namespace detail

/// run() runs main on this thread's main greenlet with the hub available and
/// returns its result (or rethrows). When main is done, tasks still running
/// are killed (as asyncio.run cancels them) so nothing outlives the call.
/// Must be called from the thread's main greenlet, and not nested.
template <class F>
auto run(F&& main) -> std::invoke_result_t<F> {
  detail::run_scope scope;
  return std::forward<F>(main)();
}

}  // namespace moss

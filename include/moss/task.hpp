// task.hpp: spawned tasks on this thread's hub (gevent's Greenlet, asyncio's
// Task).
//
//   auto t = moss::spawn([](int x) { moss::sleep(10ms); return x * 2; }, 21);
//   int v = t.get();   // waits; rethrows the task's exception
//
// A task starts at the hub's next turn, runs until it waits, and finishes
// when its function returns. The handle is cheap to copy; the task runs to
// completion whether or not a handle is kept.
#pragma once

#include <moss/detail/task_base.hpp>
#include <moss/error.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace moss {

template <class R>
class task {
 public:
  using value_type = R;

  task() noexcept = default;
  task(const task& o) noexcept : s_(o.s_) {
    if (s_ != nullptr) s_->ref();
  }
  task(task&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  task& operator=(task o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~task() {
    if (s_ != nullptr) s_->unref();
  }

  // join() waits until the task has finished (successfully or not).
  void join() const { state().join(); }
  // join(timeout) waits at most timeout; true if the task finished.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) const {
    return state().join_until(detail::deadline_after(timeout));
  }
  // get() waits, then returns the value or rethrows the task's exception
  // (moss::greenlet_exit if it was killed).
  std::add_lvalue_reference_t<R> get() const {
    auto& s = state();
    s.join();
    s.rethrow_if_failed();
    if constexpr (!std::is_void_v<R>) return *s.result_;
  }
  // kill() raises moss::greenlet_exit in the task at its next resume so its
  // stack unwinds, and by default waits until it has finished. A task that
  // has not started yet just dies. Killing a finished task does nothing.
  void kill(bool block = true) const { state().kill(block); }

  bool ready() const noexcept { return s_ != nullptr && s_->done(); }
  bool successful() const noexcept { return s_ != nullptr && s_->successful(); }
  bool killed() const noexcept { return s_ != nullptr && s_->killed(); }
  // exception() is what the task raised (null while running or on success).
  std::exception_ptr exception() const noexcept { return s_ != nullptr ? s_->error() : nullptr; }

  const std::string& name() const { return state().name(); }
  void set_name(std::string_view name) const { state().name_ = name; }

  explicit operator bool() const noexcept { return s_ != nullptr; }
  friend bool operator==(const task& a, const task& b) noexcept { return a.s_ == b.s_; }

  // For the library's layers: adopt a state (takes a reference).
  explicit task(detail::task_state<R>* s) noexcept : s_(s) { s_->ref(); }
  detail::task_state<R>* state_ptr() const noexcept { return s_; }

 private:
  detail::task_state<R>& state() const {
    if (s_ == nullptr) throw moss::error("moss: empty task handle");
    return *s_;
  }
  detail::task_state<R>* s_ = nullptr;
};

namespace detail {

template <class F, class... Args>
using spawn_result_t = std::decay_t<std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>>;

template <class F, class... Args>
task<spawn_result_t<F, Args...>> spawn_at(const spawn_options& o, time_point start, F&& f, Args&&... args) {
  using R = spawn_result_t<F, Args...>;
  auto* s = new task_fn<R, std::decay_t<F>, std::decay_t<Args>...>(std::forward<F>(f), std::forward<Args>(args)...);
  launch(s, o, start);
  return task<R>(s);
}

}  // namespace detail

// spawn() starts f(args...) as a task on this thread's hub. Arguments are
// copied or moved into the task, as by std::thread. Throws moss::error when
// the thread's hub is gone, std::system_error when no stack can be mapped.
template <class F, class... Args>
  requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
auto spawn(F&& f, Args&&... args) {
  return detail::spawn_at(spawn_options{}, detail::time_point::min(), std::forward<F>(f), std::forward<Args>(args)...);
}

// spawn(options, f, args...) sets the stack size or the name.
template <class F, class... Args>
  requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
auto spawn(const spawn_options& o, F&& f, Args&&... args) {
  return detail::spawn_at(o, detail::time_point::min(), std::forward<F>(f), std::forward<Args>(args)...);
}

// spawn_later() starts the task after delay (gevent's spawn_later).
template <class Rep, class Period, class F, class... Args>
  requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
auto spawn_later(std::chrono::duration<Rep, Period> delay, F&& f, Args&&... args) {
  return detail::spawn_at(spawn_options{}, detail::deadline_after(delay), std::forward<F>(f), std::forward<Args>(args)...);
}

namespace detail {
class run_scope {
 public:
  run_scope();
  ~run_scope();
  run_scope(const run_scope&) = delete;
  run_scope& operator=(const run_scope&) = delete;
};
}  // namespace detail

// run() runs main on this thread's main greenlet with the hub available and
// returns its result (or rethrows). When main is done, tasks still running
// are killed (as asyncio.run cancels them) so nothing outlives the call.
// Must be called from the thread's main greenlet, and not nested.
template <class F>
auto run(F&& main) -> std::invoke_result_t<F> {
  detail::run_scope scope;
  return std::forward<F>(main)();
}

}  // namespace moss

// detail/task_base.hpp: the non-template part of a task. A task is a
// greenlet whose parent is the hub; its body, arguments and result live in
// the same allocation (task_fn below), so spawning allocates once plus a
// pooled stack.
#pragma once

#include <moss/detail/greenlet_impl.hpp>
#include <moss/detail/timer.hpp>
#include <moss/detail/waiter.hpp>

#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace moss {

// spawn_options: per-spawn settings.
struct spawn_options {
  std::size_t stack_size = 0;  // bytes; 0 = MOSS_STACK_SIZE or 256 KiB
  std::string name;            // default "task-<id>"
};

namespace detail {

class hub_core;

class task_base : public greenlet_impl {
 public:
  task_base() noexcept : greenlet_impl(role::task) {}

  std::any run(std::any) final;
  greenlet_impl* exit_target() noexcept final;

  void join();
  bool join_until(time_point deadline);
  void kill(bool block);
  bool done() const noexcept { return done_; }
  bool successful() const noexcept { return done_ && !error_; }
  bool killed() const noexcept { return killed_; }
  std::exception_ptr error() const noexcept { return error_; }
  void rethrow_if_failed() const;

  hub_core* hub_ = nullptr;

 protected:
  // invoke() runs the user's function and stores its result.
  virtual void invoke() = 0;

 private:
  friend void launch(task_base* t, const spawn_options& o, time_point start_at);
  friend void reap_all(hub_core& h);
  void complete() noexcept;

  struct start_timer final : timer {
    task_base* task = nullptr;
    void fire() noexcept override;
  };

  bool done_ = false;
  bool killed_ = false;
  std::exception_ptr error_;
  waiter_list joiners_;
  start_timer start_;
};

// launch() registers t with this thread's hub, gives it a stack and makes it
// runnable at start_at. On failure t is deleted and the exception rethrown.
void launch(task_base* t, const spawn_options& o, time_point start_at);

template <class R>
class task_state : public task_base {
 public:
  std::optional<R> result_;
};

template <>
class task_state<void> : public task_base {};

template <class R, class F, class... Args>
class task_fn final : public task_state<R> {
 public:
  template <class G, class... A>
  explicit task_fn(G&& f, A&&... args) : call_(std::in_place, std::forward<G>(f), std::forward<A>(args)...) {}

 protected:
  void invoke() override {
    // The callable and its arguments are destroyed as soon as it returns, so
    // what they own (sockets, buffers) is released with the task's end.
    struct reset_on_exit {
      std::optional<std::tuple<F, Args...>>& c;
      ~reset_on_exit() { c.reset(); }
    } guard{call_};
    if constexpr (std::is_void_v<R>) {
      std::apply([](auto&& f, auto&&... a) { std::invoke(std::move(f), std::move(a)...); }, std::move(*call_));
    } else {
      this->result_.emplace(
          std::apply([](auto&& f, auto&&... a) -> R { return std::invoke(std::move(f), std::move(a)...); }, std::move(*call_)));
    }
  }

 private:
  std::optional<std::tuple<F, Args...>> call_;
};

}  // namespace detail
}  // namespace moss

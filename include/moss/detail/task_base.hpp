// detail/task_base.hpp: the non-template part of a task. A task is a
// greenlet whose parent is the hub; its body, arguments and result live in
// the same allocation (task_fn below), so spawning allocates once plus a
// pooled stack.
//
// A task ends in three steps: its result is stored (done(): ready() and
// get() work), its done callbacks run on its own greenlet, then it is
// finished(): joiners and done_hooks are woken and the hub forgets it.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/greenlet_impl.hpp>
#include <moss/detail/intrusive_list.hpp>
#include <moss/detail/stored_call.hpp>
#include <moss/detail/timer.hpp>
#include <moss/detail/waiter.hpp>

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace moss {

// spawn_options: per-spawn settings.
struct spawn_options {
  std::size_t stack_size = 0;  // bytes; 0 = MOSS_STACK_SIZE or 256 KiB
  std::string name;            // default "task-<id>"
};

namespace detail {

class hub_core;
class task_base;

// done_hook: a non-owning completion notice for the composition layer (wait,
// as_completed, group). task_done() runs when the task finishes, on the
// finishing greenlet (or on the killer's, for a task killed before it
// started), and must not block. The hook detaches itself when destroyed.
class MOSS_API done_hook {
 public:
  done_hook() noexcept = default;
  done_hook(const done_hook&) = delete;
  done_hook& operator=(const done_hook&) = delete;

  virtual void task_done(task_base& t) noexcept = 0;

  // attach() links the hook to t, which must not be finished.
  void attach(task_base& t) noexcept;
  void detach() noexcept;
  // next_hook() walks the hooks of the same task (task_base::first_hook()).
  done_hook* next_hook() const noexcept { return links_.next; }

 protected:
  ~done_hook() { detach(); }

 private:
  friend class task_base;
  task_base* task_ = nullptr;
  list_links<done_hook> links_;
};

// done_callback: a user callback owned by the task (add_done_callback).
class MOSS_API done_callback {
 public:
  virtual ~done_callback() = default;
  virtual void call(task_base& t) = 0;
};

// demangle() turns a type into a readable name ("main()::{lambda()#1}").
MOSS_API std::string demangle(const std::type_info& type);

// check_may_block() throws moss::error naming op when the caller is the hub
// greenlet, before op has done anything it would have to undo.
MOSS_API void check_may_block(const char* op);

class MOSS_API task_base : public greenlet_impl {
 public:
  task_base() noexcept : greenlet_impl(role::task) {}
  // ~task_base() reports a failure nobody retrieved (moss/error_handler.hpp).
  ~task_base() override;

  // Task objects come from a small per-thread cache of freed ones (by size),
  // so that spawning in a loop does not go through malloc and free. Every
  // block is aligned to a cache line, as greenlet_impl asks; tasks aligned
  // more strictly still (an alignas capture) bypass the cache. The choice is
  // made here, inline, where `a` is a constant of the task's type. The
  // global delete without the size: clang before 19 declares the sized one
  // only under -fsized-deallocation.
  static void* operator new(std::size_t size, std::align_val_t a) {
    return static_cast<std::size_t>(a) > alignof(greenlet_impl) ? ::operator new(size, a) : cached_new(size);
  }
  static void operator delete(void* p, std::size_t size, std::align_val_t a) noexcept {
    if (static_cast<std::size_t>(a) > alignof(greenlet_impl)) ::operator delete(p, a);
    else cached_delete(p, size);
  }

  std::any run(std::any) final;
  greenlet_impl* exit_target() noexcept final;

  // join() waits until the task has finished (callbacks included).
  void join();
  bool join_until(time_point deadline);
  void kill(bool block);
  // add_callback() runs cb on this task's greenlet when it is done, or soon
  // in a task of its own when it has already finished.
  void add_callback(std::unique_ptr<done_callback> cb);

  bool done() const noexcept { return done_; }
  bool finished() const noexcept { return finished_; }
  bool successful() const noexcept { return done_ && !error_; }
  bool killed() const noexcept { return killed_; }
  bool in_callbacks() const noexcept { return in_callbacks_; }
  bool starts_later() const noexcept { return start_.armed(); }
  done_hook* first_hook() const noexcept { return hooks_.front(); }
  // check_owner() throws moss::error "<who>: task "<name>" belongs to
  // another thread's hub<hint>" unless the calling thread's hub runs this
  // task: the one check every operation on a task makes.
  void check_owner(const char* who, const char* hint = "") const;
  // across_threads is the hint for waits: a task of another hub is waited
  // for through spawn_threadsafe.
  static constexpr const char* across_threads = "; use spawn_threadsafe to wait across threads";
  // error() looks at the outcome; retrieve_error() hands it to the user, so
  // a failure is not reported when the task goes.
  std::exception_ptr error() const noexcept { return error_; }
  std::exception_ptr retrieve_error() const noexcept {
    retrieved_ = true;
    return error_;
  }
  // rethrow_if_failed() rethrows the task's exception (a retrieval).
  void rethrow_if_failed() const;
  // spawn_site() names the spawned function's type, for format_run_info().
  virtual std::string spawn_site() const { return {}; }

  hub_core* hub_ = nullptr;

 protected:
  // invoke() runs the user's function and stores its result.
  virtual void invoke() = 0;

 private:
  // The per-thread cache of cache-line-aligned blocks (task.cpp).
  static void* cached_new(std::size_t size);
  static void cached_delete(void* p, std::size_t size) noexcept;

  friend class done_hook;
  friend void launch(task_base* t, const spawn_options& o, time_point start_at);
  friend void reap_all(hub_core& h);
  void run_callbacks() noexcept;
  void complete() noexcept;

  struct start_timer final : timer {
    task_base* task = nullptr;
    void fire() noexcept override;
  };

  bool done_ = false;
  bool finished_ = false;
  bool killed_ = false;
  bool in_callbacks_ = false;
  mutable bool retrieved_ = false;
  std::exception_ptr error_;
  waiter_list joiners_;
  intrusive_list<done_hook, member_links<done_hook, &done_hook::links_>> hooks_;  // newest first
  std::vector<std::unique_ptr<done_callback>> callbacks_;
  start_timer start_;
};

// launch() registers t with this thread's hub, gives it a stack and makes it
// runnable at start_at. On failure t is deleted and the exception rethrown.
MOSS_API void launch(task_base* t, const spawn_options& o, time_point start_at);

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
  explicit task_fn(G&& f, A&&... args) : call_(std::forward<G>(f), std::forward<A>(args)...) {}

  std::string spawn_site() const override { return demangle(typeid(F)); }

 protected:
  void invoke() override {
    if constexpr (std::is_void_v<R>) call_.template invoke<void>();
    else this->result_.emplace(call_.template invoke<R>());
  }

 private:
  stored_call<F, Args...> call_;
};

}  // namespace detail
}  // namespace moss

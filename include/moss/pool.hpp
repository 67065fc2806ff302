/// @file
/// pool.hpp: a group with a limit on how many members run at once (gevent's
/// Pool).
///
///   moss::pool p(10);
///   p.spawn(fetch, url);                           // waits for a free slot
///   std::vector<int> sizes = p.map(fetch, urls);   // input order
///   for (auto& page : p.imap_unordered(fetch, urls)) use(page);  // completion order
///   for (auto& page : p.imap(fetch, urls)) use(page);   // input order, as they come
///   int n = p.apply(fetch, url);                   // run in the pool, wait for the value
///   moss::task<int> t = p.apply_async(fetch, url); // run in the pool, get() later
///   p.wait_available();                            // until a slot is free
///
/// The slots are a moss::semaphore, so they are handed over in FIFO order:
/// when a member finishes, the oldest waiting spawn gets its slot, and a later
/// spawn cannot take it first.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/task_base.hpp>
#include <moss/detail/waiter.hpp>
#include <moss/group.hpp>
#include <moss/semaphore.hpp>
#include <moss/task.hpp>
#include <moss/wait.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <type_traits>
#include <utility>
#include <vector>

namespace moss {

class pool;

namespace detail {

/// lazy_range: a range, usable once in a range-for, over the values a State
/// produces one at a time: State has `current` (an optional value), `at_end`
/// and advance(), which waits for the next value or rethrows a failure.
template <class State>
class lazy_range {
 public:
  using V = typename State::value_type;

  class iterator {
   public:
    using value_type = V;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    V& operator*() const { return *s_->current; }
    V* operator->() const { return &*s_->current; }
    /// ++ waits for the next value; it rethrows the exception of a task that
    /// failed (the iteration may go on after it is caught).
    iterator& operator++() {
      s_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept { return it.s_ == nullptr || it.s_->at_end; }

   private:
    friend class lazy_range;
    explicit iterator(State* s) : s_(s) {}
    State* s_ = nullptr;
  };

  template <class... A>
  explicit lazy_range(A&&... a) : s_(std::make_unique<State>(std::forward<A>(a)...)) {}
  /// begin() waits for the first value; called again after a failure was
  /// rethrown, it goes on with the next one.
  iterator begin() {
    if (!s_->current && !s_->at_end) s_->advance();
    return iterator(s_.get());
  }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  std::unique_ptr<State> s_;
};

/// The tasks of an imap: inputs not started yet, tasks running, the value
/// being handed out.
template <class F, class Arg, class Running>
struct imap_state_base {
  using R = spawn_result_t<F, Arg>;
  using value_type = task_value_t<task<R>>;
  pool* p = nullptr;
  F f;
  std::vector<Arg> inputs;
  std::size_t next_input = 0;
  Running running;
  completion_set set;
  std::optional<value_type> current;
  bool at_end = false;

  imap_state_base(pool& pl, F fn, std::vector<Arg> in, const char* what)
      : p(&pl), f(std::move(fn)), inputs(std::move(in)), set{what} {}
  /// take() makes t's value (or exception) the current one.
  void take(task<R> t) {
    if constexpr (std::is_void_v<R>) {
      t.get();
      current.emplace();
    } else {
      current.emplace(std::move(t.get()));
    }
  }
};

/// Completion order: `running` is indexed like the completion set.
template <class F, class Arg>
struct imap_unordered_state : imap_state_base<F, Arg, std::vector<task<spawn_result_t<F, Arg>>>> {
  imap_unordered_state(pool& p, F f, std::vector<Arg> in)
      : imap_state_base<F, Arg, std::vector<task<spawn_result_t<F, Arg>>>>(p, std::move(f), std::move(in),
                                                                          "moss::pool::imap_unordered") {}
  void advance();
};

/// Input order: `running` holds what was spawned and not yet handed out.
template <class F, class Arg>
struct imap_state : imap_state_base<F, Arg, std::deque<task<spawn_result_t<F, Arg>>>> {
  imap_state(pool& p, F f, std::vector<Arg> in)
      : imap_state_base<F, Arg, std::deque<task<spawn_result_t<F, Arg>>>>(p, std::move(f), std::move(in), "moss::pool::imap") {}
  void advance();
};

}  // namespace detail

/// imap_unordered_range: the values of f(input) in the order the tasks
/// finish. Obtained from pool::imap_unordered(); usable once, in a range-for.
template <class F, class Arg>
using imap_unordered_range = detail::lazy_range<detail::imap_unordered_state<F, Arg>>;

/// imap_range: the values of f(input) in input order, each as soon as it and
/// those before it have finished. Obtained from pool::imap(); usable once, in
/// a range-for.
template <class F, class Arg>
using imap_range = detail::lazy_range<detail::imap_state<F, Arg>>;

/// pool: a group that holds at most size() tasks at once; spawn() waits for room; see pool.hpp.
class MOSS_API pool : public group {
 public:
  /// pool(size) allows size members at once; size must be at least 1.
  explicit pool(std::size_t size);
  ~pool() override;

  /// capacity() is the size given to the constructor.
  std::size_t capacity() const noexcept { return capacity_; }
  ///@{
  /// free_count() is how many tasks could be spawned now without waiting.
  std::size_t free_count() const noexcept { return slots_.value(); }
  /// full() is true when spawn() would wait.
  bool full() const noexcept { return free_count() == 0; }
  ///@}

  /// map() runs f(x) for each input, at most capacity() at a time, and
  /// returns the values in input order once all have finished. If any task
  /// failed, the first failure in input order is rethrown. A void f gives
  /// std::monostate values. If the caller is interrupted, the tasks map
  /// spawned are killed. f is copied into each task.
  template <class F, std::ranges::input_range In>
    requires std::is_invocable_v<std::decay_t<F>, std::decay_t<std::ranges::range_reference_t<In>>>
  auto map(F&& f, In&& inputs) {
    using R = detail::spawn_result_t<F, std::ranges::range_reference_t<In>>;
    std::vector<task<R>> ts;
    try {
      for (auto&& x : inputs) ts.push_back(spawn(f, std::forward<decltype(x)>(x)));
      detail::gather_wait(detail::bases_of(ts), false, "moss::pool::map");
    } catch (...) {
      try {
        killall(ts);
      } catch (...) {
      }
      throw;
    }
    std::vector<detail::task_value_t<task<R>>> r;
    r.reserve(ts.size());
    for (auto& t : ts) {
      if constexpr (std::is_void_v<R>) {
        t.get();
        r.emplace_back();
      } else {
        r.push_back(std::move(t.get()));
      }
    }
    return r;
  }

  /// imap_unordered() yields f(x) for each input as the tasks finish. Inputs
  /// are copied, then spawned while the range is iterated, keeping the pool
  /// busy; leaving the loop early leaves the tasks already spawned running.
  template <class F, std::ranges::input_range In>
    requires std::is_invocable_v<std::decay_t<F>, std::decay_t<std::ranges::range_reference_t<In>>>
  auto imap_unordered(F&& f, In&& inputs) {
    using Arg = std::decay_t<std::ranges::range_reference_t<In>>;
    std::vector<Arg> in;
    for (auto&& x : inputs) in.emplace_back(std::forward<decltype(x)>(x));
    return imap_unordered_range<std::decay_t<F>, Arg>(*this, std::forward<F>(f), std::move(in));
  }

  /// imap() is imap_unordered() yielding in input order (gevent's
  /// Pool.imap): a value waits for those before it, while later inputs keep
  /// running in the free slots.
  template <class F, std::ranges::input_range In>
    requires std::is_invocable_v<std::decay_t<F>, std::decay_t<std::ranges::range_reference_t<In>>>
  auto imap(F&& f, In&& inputs) {
    using Arg = std::decay_t<std::ranges::range_reference_t<In>>;
    std::vector<Arg> in;
    for (auto&& x : inputs) in.emplace_back(std::forward<decltype(x)>(x));
    return imap_range<std::decay_t<F>, Arg>(*this, std::forward<F>(f), std::move(in));
  }

  /// apply() runs f(args...) as a member (waiting for a slot) and waits for
  /// its value, or rethrows its exception. If the caller is interrupted while
  /// waiting, the task is killed.
  template <class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
  detail::spawn_result_t<F, Args...> apply(F&& f, Args&&... args) {
    auto t = spawn(std::forward<F>(f), std::forward<Args>(args)...);
    try {
      t.join();
    } catch (...) {
      try {
        t.kill();
      } catch (...) {
      }
      throw;
    }
    if constexpr (std::is_void_v<detail::spawn_result_t<F, Args...>>) {
      t.get();
    } else {
      return std::move(t.get());
    }
  }

  /// apply_async() runs f(args...) as a member, waiting only for a slot, and
  /// returns its task (get() for the value). The same as spawn(), named as
  /// in gevent.
  template <class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
  auto apply_async(F&& f, Args&&... args) {
    return spawn(std::forward<F>(f), std::forward<Args>(args)...);
  }

  /// wait_available() waits until a slot is free, without taking it, and
  /// returns free_count(). It queues behind spawners already waiting, so
  /// the slot it saw may go to one of them: then it returns 0.
  std::size_t wait_available() {
    wait_available_until(detail::no_deadline);
    return free_count();
  }
  /// wait_available(timeout) gives up after timeout: false if no slot was
  /// free by then.
  template <class Rep, class Period>
  bool wait_available(std::chrono::duration<Rep, Period> timeout) {
    return wait_available_until(detail::deadline_after(timeout));
  }

 protected:
  /// wait_available_until() waits for a free slot until deadline; true if there is one.
  bool wait_available_until(detail::time_point deadline);
  void acquire_slot() override;
  void release_slot() noexcept override;

 private:
  std::size_t capacity_;
  semaphore slots_;  // one permit per member
};

template <class F, class Arg>
void detail::imap_unordered_state<F, Arg>::advance() {
  this->current.reset();
  // Keep the pool busy; wait for a slot only when none of ours is running.
  while (this->next_input < this->inputs.size() && (this->p->free_count() > 0 || this->set.remaining() == 0)) {
    this->running.push_back(this->p->spawn(this->f, std::move(this->inputs[this->next_input++])));
    this->set.add(this->running.back().base_ptr());
  }
  if (this->set.remaining() == 0) {
    this->at_end = true;
    return;
  }
  std::size_t i = this->set.next(no_deadline);
  this->take(std::move(this->running[i]));
}

template <class F, class Arg>
void detail::imap_state<F, Arg>::advance() {
  this->current.reset();
  for (;;) {
    // Keep the pool busy; wait for a slot only when none of ours is running.
    while (this->next_input < this->inputs.size() && (this->p->free_count() > 0 || this->running.empty())) {
      this->running.push_back(this->p->spawn(this->f, std::move(this->inputs[this->next_input++])));
      this->set.add(this->running.back().base_ptr());
    }
    if (this->running.empty()) {
      this->at_end = true;
      return;
    }
    if (this->running.front().ready()) break;
    // The front is not done, so the set has it: wait for any of ours to
    // finish (its slot may start the next input), then look again.
    this->set.next(no_deadline);
  }
  auto t = std::move(this->running.front());
  this->running.pop_front();
  this->take(std::move(t));
}

}  // namespace moss

/// @file
/// wait.hpp: waiting for several tasks at once.
///
///   moss::joinall({a, b});                                  // gevent.joinall
///   auto [x, y] = moss::gather(a, b);                       // asyncio.gather
///   auto [done, pending] = moss::wait(tasks, moss::return_when::first_completed);
///   for (auto& t : moss::as_completed(tasks)) use(t.get()); // gevent.iwait
///   moss::killall(moss::all_tasks());
///
/// "Finished" here means what join() means: the task's result is stored and its
/// done callbacks have run. Nothing in this file cancels a task except killall
/// and a gather (or gather_settled) that is itself interrupted: killed, or
/// timed out by a moss::timeout or with_timeout around it, it kills the tasks
/// it gathers and waits for them to unwind before the exception goes on
/// (asyncio's wait_for(gather(...))). A task failing does not cancel the
/// others. Waiting for the calling task
/// itself is a moss::error (it could never finish while you wait for it).
///
/// Each function takes a range of task<R> (or task_ref) and gives back the same
/// handle type; a braced list of tasks of different types becomes task_refs.
//
// wait() and as_completed() also take events and async_results, as asyncio's
// wait takes any awaitable:
//
//   auto [done, pending] = moss::wait({&ready, &stop}, moss::return_when::first_completed);
//   for (moss::async_result<int> r : moss::as_completed(results)) use(r.get());
//
// An event (given by pointer, moss::event*) is complete once set, an
// async_result once it holds a value or an exception (which counts as a
// failure for first_exception). Each one still pending is watched by a small
// task of its own while the call waits; those tasks are gone when it returns.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/task_base.hpp>
#include <moss/detail/waiter.hpp>
#include <moss/error.hpp>
#include <moss/task.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace moss {

/// A range of task handles (task<R> or task_ref).
template <class Tasks>
concept task_range = std::ranges::input_range<Tasks> && std::derived_from<std::ranges::range_value_t<Tasks>, task_ref>;

namespace detail {

/// completion_set: the tasks added to it, handed back in the order they
/// finish. Already finished tasks come first, in the order added.
class MOSS_API completion_set {
 public:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  /// op names the operation in error messages ("moss::wait").
  explicit completion_set(const char* op) noexcept : op_(op) {}
  completion_set(const completion_set&) = delete;
  completion_set& operator=(const completion_set&) = delete;

  /// add() starts watching t and returns its index. Throws moss::error for an
  /// empty handle, the calling task itself or another thread's task.
  std::size_t add(task_base* t);
  /// next() waits for the next task to finish and returns its index, or npos
  /// if the deadline passed first. Must not be called with nothing remaining.
  std::size_t next(time_point deadline);
  /// remaining() counts tasks added but not yet returned by next().
  std::size_t remaining() const noexcept { return hooks_.size() - taken_; }
  /// has_ready() is true when next() would return without waiting.
  bool has_ready() const noexcept { return taken_ < finished_.size(); }
  std::size_t size() const noexcept { return hooks_.size(); }
  task_base* task_at(std::size_t i) const noexcept { return hooks_[i].task; }

 private:
  struct hook final : done_hook {
    completion_set* set = nullptr;
    task_base* task = nullptr;
    std::size_t index = 0;
    void task_done(task_base&) noexcept override;
  };
  const char* op_;
  std::deque<hook> hooks_;           // stable addresses
  std::vector<std::size_t> finished_;  // indices in completion order; capacity >= size
  std::size_t taken_ = 0;
  waiter* waiting_ = nullptr;
};

/// The non-template cores. Each takes the tasks' control blocks.
MOSS_API std::vector<std::size_t> joinall(const std::vector<task_base*>& ts, time_point deadline, bool raise_error);
MOSS_API std::vector<char> wait(const std::vector<task_base*>& ts, int return_when, time_point deadline);
/// gather_wait() waits until all finished, or until one failed if
/// stop_at_failure: then it rethrows that failure.
MOSS_API void gather_wait(const std::vector<task_base*>& ts, bool stop_at_failure, const char* op);
MOSS_API void killall(const std::vector<task_base*>& ts, bool block);
[[noreturn]] MOSS_API void throw_as_completed_timeout(std::size_t remaining);

// wait_item: one event or async_result as the non-template cores see it.
struct wait_item {
  std::function<bool()> ready;   // complete now?
  std::function<bool()> failed;  // completed with an exception?
  std::function<void()> wait;    // waits until complete (in a watching task)
};

// item_completions: the items handed back in the order they complete; those
// complete already come first, in input order. Once the caller has to wait,
// a task per pending item watches it; the destructor kills those still
// watching.
class MOSS_API item_completions {
 public:
  item_completions(std::vector<wait_item> items, const char* op);
  ~item_completions();
  item_completions(const item_completions&) = delete;
  item_completions& operator=(const item_completions&) = delete;

  // next() waits for the next item and returns its index, or
  // completion_set::npos if the deadline passed first. Must not be called
  // with nothing remaining. Rethrows what ended a watching task abnormally
  // (loop_exit: nothing could ever complete the item).
  std::size_t next(time_point deadline);
  std::size_t remaining() const noexcept { return items_.size() - taken_; }
  bool has_ready() const noexcept { return !ready_.empty() || set_.has_ready(); }
  bool failed(std::size_t i) const { return items_[i].failed(); }
  bool ready(std::size_t i) const { return items_[i].ready(); }
  // stop() kills the watching tasks and waits for them to unwind.
  void stop();

 private:
  void watch();

  const char* op_;
  std::vector<wait_item> items_;
  std::vector<char> initially_ready_;  // complete at the start: never watched
  bool watching_ = false;
  std::deque<std::size_t> ready_;      // complete at the start, not yet taken
  completion_set set_;
  std::vector<task_ref> watchers_;     // by completion_set index
  std::vector<std::size_t> item_of_;   // completion_set index -> item
  std::size_t taken_ = 0;
};

MOSS_API std::vector<char> wait_items(std::vector<wait_item> items, int return_when, time_point deadline);

// Events are given by pointer (anything with is_set() and wait()), results
// by handle (anything copyable with ready(), wait() and exception()), so
// this header needs neither.
template <class H>
concept flag_pointer = std::is_pointer_v<H> && requires(H h) {
  { h->is_set() } -> std::convertible_to<bool>;
  h->wait();
};
template <class H>
concept result_handle = std::copy_constructible<H> && !std::derived_from<H, task_ref> && requires(const H h) {
  { h.ready() } -> std::convertible_to<bool>;
  h.wait();
  { h.exception() } -> std::convertible_to<std::exception_ptr>;
};

template <class H>
wait_item item_of(const H& h) {
  if constexpr (flag_pointer<H>) {
    if (h == nullptr) throw moss::error("moss::wait: a null event pointer");
    return {[h] { return static_cast<bool>(h->is_set()); }, [] { return false; }, [h] { h->wait(); }};
  } else {
    return {[h] { return static_cast<bool>(h.ready()); }, [h] { return h.exception() != nullptr; }, [h] { h.wait(); }};
  }
}

template <class Items>
std::vector<wait_item> items_of(const Items& items) {
  std::vector<wait_item> r;
  for (const auto& h : items) r.push_back(item_of(h));
  return r;
}

template <class Tasks>
std::vector<task_base*> bases_of(const Tasks& tasks) {
  std::vector<task_base*> r;
  if constexpr (std::ranges::sized_range<const Tasks>) r.reserve(std::ranges::size(tasks));
  for (const task_ref& t : tasks) r.push_back(t.base_ptr());
  return r;
}

template <class Tasks>
using handle_t = std::ranges::range_value_t<Tasks>;

/// What a task contributes to gather(): its value, or std::monostate when it
/// returns nothing (or is a task_ref, whose type is unknown).
template <class T>
struct task_value {
  using type = std::monostate;
};
template <class R>
struct task_value<task<R>> {
  using type = std::conditional_t<std::is_void_v<R>, std::monostate, R>;
};
template <class T>
using task_value_t = typename task_value<T>::type;

template <class R>
task_value_t<task<R>> value_of(const task<R>& t) {
  if constexpr (std::is_void_v<R>) {
    t.get();
    return {};
  } else {
    return t.get();
  }
}
inline std::monostate value_of(const task_ref& t) {
  t.base_ptr()->rethrow_if_failed();
  return {};
}

}  // namespace detail

///@{
/// joinall() waits for every task to finish (gevent.joinall) and returns
/// them in the order they finished. With a timeout it returns those that
/// finished in time. With raise_error, the first task to fail (other than by
/// being killed) makes it rethrow that task's exception at once; the others
/// keep running. An empty range returns at once.
template <task_range Tasks>
std::vector<detail::handle_t<Tasks>> joinall(const Tasks& tasks, bool raise_error = false) {
  std::vector<detail::handle_t<Tasks>> all(std::ranges::begin(tasks), std::ranges::end(tasks));
  std::vector<detail::handle_t<Tasks>> r;
  for (std::size_t i : detail::joinall(detail::bases_of(all), detail::no_deadline, raise_error)) r.push_back(all[i]);
  return r;
}
template <task_range Tasks, class Rep, class Period>
std::vector<detail::handle_t<Tasks>> joinall(const Tasks& tasks, std::chrono::duration<Rep, Period> timeout,
                                            bool raise_error = false) {
  std::vector<detail::handle_t<Tasks>> all(std::ranges::begin(tasks), std::ranges::end(tasks));
  std::vector<detail::handle_t<Tasks>> r;
  for (std::size_t i : detail::joinall(detail::bases_of(all), detail::deadline_after(timeout), raise_error))
    r.push_back(all[i]);
  return r;
}
inline std::vector<task_ref> joinall(std::initializer_list<task_ref> tasks, bool raise_error = false) {
  return joinall(std::vector<task_ref>(tasks), raise_error);
}
template <class Rep, class Period>
std::vector<task_ref> joinall(std::initializer_list<task_ref> tasks, std::chrono::duration<Rep, Period> timeout,
                              bool raise_error = false) {
  return joinall(std::vector<task_ref>(tasks), timeout, raise_error);
}
///@}

/// return_when: when wait() returns (asyncio's constants).
enum class return_when {
  first_completed,  // as soon as any task finishes
  first_exception,  // as soon as any task fails (a kill is not a failure); else all_completed
  all_completed,    // when every task has finished
};

/// wait_result: what wait() returns: the tasks finished and those still running.
template <class T>
struct wait_result {
  /// done: the tasks finished, in input order.
  std::vector<T> done;     // finished, in input order
  /// pending: the tasks still running (not cancelled), in input order.
  std::vector<T> pending;  // still running (not cancelled), in input order
};

///@{
/// wait() waits until `when` holds or the timeout passes, and splits the
/// tasks into done and pending (asyncio.wait). Pending tasks keep running.
/// An empty range is a moss::error: nothing in it could ever complete.
template <task_range Tasks>
wait_result<detail::handle_t<Tasks>> wait(const Tasks& tasks, return_when when = return_when::all_completed) {
  return wait(tasks, when, std::chrono::nanoseconds::max());
}
template <task_range Tasks, class Rep, class Period>
wait_result<detail::handle_t<Tasks>> wait(const Tasks& tasks, return_when when, std::chrono::duration<Rep, Period> timeout) {
  std::vector<detail::handle_t<Tasks>> all(std::ranges::begin(tasks), std::ranges::end(tasks));
  std::vector<char> done = detail::wait(detail::bases_of(all), static_cast<int>(when), detail::deadline_after(timeout));
  wait_result<detail::handle_t<Tasks>> r;
  for (std::size_t i = 0; i < all.size(); ++i) (done[i] ? r.done : r.pending).push_back(std::move(all[i]));
  return r;
}
template <task_range Tasks, class Rep, class Period>
wait_result<detail::handle_t<Tasks>> wait(const Tasks& tasks, std::chrono::duration<Rep, Period> timeout) {
  return wait(tasks, return_when::all_completed, timeout);
}
inline wait_result<task_ref> wait(std::initializer_list<task_ref> tasks, return_when when = return_when::all_completed) {
  return wait(std::vector<task_ref>(tasks), when);
}
template <class Rep, class Period>
wait_result<task_ref> wait(std::initializer_list<task_ref> tasks, return_when when, std::chrono::duration<Rep, Period> timeout) {
  return wait(std::vector<task_ref>(tasks), when, timeout);
}
///@}

/// item_range: a range of events (moss::event*) or of async_results.
template <class Items>
concept item_range = std::ranges::input_range<Items> && (detail::flag_pointer<std::ranges::range_value_t<Items>> ||
                                                         detail::result_handle<std::ranges::range_value_t<Items>>);

///@{
/// wait() over events or async_results: as over tasks, "finished" meaning
/// set (an event) or holding a value or an exception (an async_result). The
/// handles come back in input order.
template <item_range Items>
wait_result<std::ranges::range_value_t<Items>> wait(const Items& items, return_when when = return_when::all_completed) {
  return wait(items, when, std::chrono::nanoseconds::max());
}
template <item_range Items, class Rep, class Period>
wait_result<std::ranges::range_value_t<Items>> wait(const Items& items, return_when when,
                                                    std::chrono::duration<Rep, Period> timeout) {
  std::vector<std::ranges::range_value_t<Items>> all(std::ranges::begin(items), std::ranges::end(items));
  std::vector<char> done = detail::wait_items(detail::items_of(all), static_cast<int>(when), detail::deadline_after(timeout));
  wait_result<std::ranges::range_value_t<Items>> r;
  for (std::size_t i = 0; i < all.size(); ++i) (done[i] ? r.done : r.pending).push_back(std::move(all[i]));
  return r;
}
template <item_range Items, class Rep, class Period>
wait_result<std::ranges::range_value_t<Items>> wait(const Items& items, std::chrono::duration<Rep, Period> timeout) {
  return wait(items, return_when::all_completed, timeout);
}
template <class E>
  requires detail::flag_pointer<E*>
wait_result<E*> wait(std::initializer_list<E*> events, return_when when = return_when::all_completed) {
  return wait(std::vector<E*>(events), when);
}
template <class E, class Rep, class Period>
  requires detail::flag_pointer<E*>
wait_result<E*> wait(std::initializer_list<E*> events, return_when when, std::chrono::duration<Rep, Period> timeout) {
  return wait(std::vector<E*>(events), when, timeout);
}
template <class E, class Rep, class Period>
  requires detail::flag_pointer<E*>
wait_result<E*> wait(std::initializer_list<E*> events, std::chrono::duration<Rep, Period> timeout) {
  return wait(std::vector<E*>(events), return_when::all_completed, timeout);
}
///@}

/// as_completed_range: an input range over tasks (or, with Order =
/// detail::item_completions, events and async_results) in the order they
/// finish. Obtained from as_completed(); usable once, in a range-for.
template <class T, class Order = detail::completion_set>
class as_completed_range {
  struct state {
    std::vector<T> items;
    std::optional<Order> order;
    detail::time_point deadline = detail::no_deadline;
    std::size_t current = detail::completion_set::npos;
    bool started = false;

    void advance() {
      started = true;
      current = detail::completion_set::npos;
      if (order->remaining() == 0) return;
      std::size_t i = order->next(deadline);
      if (i == detail::completion_set::npos) detail::throw_as_completed_timeout(order->remaining());
      current = i;
    }
  };

 public:
  /// iterator: the range-for iterator; each ++ waits for the next one to finish.
  class iterator {
   public:
    ///@{
    /// value_type, difference_type, reference: as an input iterator has them.
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using reference = const T&;
    ///@}
    iterator() = default;
    /// *it is the one that finished last.
    reference operator*() const { return s_->items[s_->current]; }
    /// it-> is the one that finished last.
    const T* operator->() const { return &s_->items[s_->current]; }
    ///@{
    /// ++ waits for the next one to finish; throws moss::timeout_error if
    /// the deadline passes first.
    iterator& operator++() {
      s_->advance();
      return *this;
    }
    void operator++(int) { ++*this; }
    /// it == end() once every one has been yielded.
    friend bool operator==(const iterator& it, std::default_sentinel_t) noexcept {
      return it.s_ == nullptr || it.s_->current == detail::completion_set::npos;
    }
    ///@}

   private:
    friend class as_completed_range;
    explicit iterator(state* s) : s_(s) {}
    state* s_ = nullptr;
  };

  /// as_completed_range(items, deadline) yields items as they finish, giving
  /// up at deadline; made by as_completed().
  as_completed_range(std::vector<T> items, detail::time_point deadline) : s_(std::make_unique<state>()) {
    s_->items = std::move(items);
    s_->deadline = deadline;
    if constexpr (std::is_same_v<Order, detail::completion_set>) {
      s_->order.emplace("moss::as_completed");
      for (const task_ref& t : s_->items) s_->order->add(t.base_ptr());
    } else {
      s_->order.emplace(detail::items_of(s_->items), "moss::as_completed");
    }
  }

  ///@{
  /// begin() waits for the first one to finish (throws moss::timeout_error
  /// if the deadline passes first).
  iterator begin() {
    if (!s_->started) s_->advance();
    return iterator(s_.get());
  }
  /// end() is the sentinel the iterator meets after the last one.
  std::default_sentinel_t end() const noexcept { return {}; }
  ///@}

 private:
  std::unique_ptr<state> s_;
};

/// item_completed_range: as_completed_range for events and async_results.
template <class H>
using item_completed_range = as_completed_range<H, detail::item_completions>;

///@{
/// as_completed() yields the tasks as they finish (gevent.iwait,
/// asyncio.as_completed). With a timeout, reaching the deadline with tasks
/// still running throws moss::timeout_error from the iterator's increment;
/// the tasks keep running.
template <task_range Tasks>
as_completed_range<detail::handle_t<Tasks>> as_completed(const Tasks& tasks) {
  return {std::vector<detail::handle_t<Tasks>>(std::ranges::begin(tasks), std::ranges::end(tasks)), detail::no_deadline};
}
template <task_range Tasks, class Rep, class Period>
as_completed_range<detail::handle_t<Tasks>> as_completed(const Tasks& tasks, std::chrono::duration<Rep, Period> timeout) {
  return {std::vector<detail::handle_t<Tasks>>(std::ranges::begin(tasks), std::ranges::end(tasks)),
          detail::deadline_after(timeout)};
}
inline as_completed_range<task_ref> as_completed(std::initializer_list<task_ref> tasks) {
  return {std::vector<task_ref>(tasks), detail::no_deadline};
}
template <class Rep, class Period>
as_completed_range<task_ref> as_completed(std::initializer_list<task_ref> tasks, std::chrono::duration<Rep, Period> timeout) {
  return {std::vector<task_ref>(tasks), detail::deadline_after(timeout)};
}
///@}

///@{
/// as_completed() over events or async_results yields them as they complete.
/// Leaving the loop early stops watching the rest.
template <item_range Items>
item_completed_range<std::ranges::range_value_t<Items>> as_completed(const Items& items) {
  return {std::vector<std::ranges::range_value_t<Items>>(std::ranges::begin(items), std::ranges::end(items)),
          detail::no_deadline};
}
template <item_range Items, class Rep, class Period>
item_completed_range<std::ranges::range_value_t<Items>> as_completed(const Items& items,
                                                                     std::chrono::duration<Rep, Period> timeout) {
  return {std::vector<std::ranges::range_value_t<Items>>(std::ranges::begin(items), std::ranges::end(items)),
          detail::deadline_after(timeout)};
}
template <class E>
  requires detail::flag_pointer<E*>
item_completed_range<E*> as_completed(std::initializer_list<E*> events) {
  return {std::vector<E*>(events), detail::no_deadline};
}
///@}

///@{
/// gather() waits for every task and returns their values in argument order
/// (asyncio.gather): a tuple for separate tasks, a vector for a range. A task
/// returning void contributes a std::monostate. The first task to fail (or be
/// killed) makes gather rethrow its exception at once; the others keep
/// running. If the caller is interrupted while gather waits, the tasks are
/// killed (see the top of this file). Values are copied out, so each task<R> must have a copyable R.
/// gather of an empty range returns an empty vector.
template <class... R>
  requires(sizeof...(R) > 0)
std::tuple<detail::task_value_t<task<R>>...> gather(const task<R>&... tasks) {
  detail::gather_wait({tasks.base_ptr()...}, true, "moss::gather");
  return std::tuple<detail::task_value_t<task<R>>...>(detail::value_of(tasks)...);
}
template <task_range Tasks>
std::vector<detail::task_value_t<detail::handle_t<Tasks>>> gather(const Tasks& tasks) {
  std::vector<detail::handle_t<Tasks>> all(std::ranges::begin(tasks), std::ranges::end(tasks));
  detail::gather_wait(detail::bases_of(all), true, "moss::gather");
  std::vector<detail::task_value_t<detail::handle_t<Tasks>>> r;
  r.reserve(all.size());
  for (const auto& t : all) r.push_back(detail::value_of(t));
  return r;
}
///@}

/// settled<V>: what gather_settled() gives for one task: its value, or the
/// exception it ended with (asyncio's return_exceptions=True, JavaScript's
/// Promise.allSettled).
template <class V>
class settled {
 public:
  /// ok() is true when the task returned a value.
  bool ok() const noexcept { return !error_; }
  /// error() is the exception the task ended with (null if ok()).
  std::exception_ptr error() const noexcept { return error_; }
  ///@{
  /// value() returns the value or rethrows the task's exception.
  V& value() {
    if (error_) std::rethrow_exception(error_);
    return *value_;
  }
  const V& value() const {
    if (error_) std::rethrow_exception(error_);
    return *value_;
  }
  ///@}

  /// of(t) is the settled outcome of the finished task t.
  template <class T>
  static settled of(const T& t) {
    settled s;
    if (std::exception_ptr e = t.exception()) s.error_ = std::move(e);
    else s.value_.emplace(detail::value_of(t));
    return s;
  }

 private:
  std::optional<V> value_;
  std::exception_ptr error_;
};

///@{
/// gather_settled() waits for every task to finish, whatever the outcome, and
/// returns a settled<value> per task in argument order. Interrupted, it kills
/// the tasks as gather does.
template <class... R>
  requires(sizeof...(R) > 0)
std::tuple<settled<detail::task_value_t<task<R>>>...> gather_settled(const task<R>&... tasks) {
  detail::gather_wait({tasks.base_ptr()...}, false, "moss::gather_settled");
  return std::tuple<settled<detail::task_value_t<task<R>>>...>(
      settled<detail::task_value_t<task<R>>>::of(tasks)...);
}
template <task_range Tasks>
std::vector<settled<detail::task_value_t<detail::handle_t<Tasks>>>> gather_settled(const Tasks& tasks) {
  using V = detail::task_value_t<detail::handle_t<Tasks>>;
  std::vector<detail::handle_t<Tasks>> all(std::ranges::begin(tasks), std::ranges::end(tasks));
  detail::gather_wait(detail::bases_of(all), false, "moss::gather_settled");
  std::vector<settled<V>> r;
  r.reserve(all.size());
  for (const auto& t : all) r.push_back(settled<V>::of(t));
  return r;
}
///@}

///@{
/// killall() kills every task (gevent.killall): all are interrupted first so
/// they unwind together, then, if block, it waits for them. The calling task,
/// if listed, is killed last (its greenlet_exit is thrown once the others
/// have finished).
template <task_range Tasks>
void killall(const Tasks& tasks, bool block = true) {
  detail::killall(detail::bases_of(tasks), block);
}
inline void killall(std::initializer_list<task_ref> tasks, bool block = true) {
  detail::killall(detail::bases_of(tasks), block);
}
///@}

}  // namespace moss

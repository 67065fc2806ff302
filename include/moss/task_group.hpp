/// @file
/// task_group.hpp: structured concurrency (asyncio's TaskGroup, trio's
/// nursery): tasks that end together, and a failure that stops the rest.
///
///   {
///     moss::task_group g;
///     auto a = g.spawn(fetch, url_a);
///     auto b = g.spawn(fetch, url_b);
///     g.join();   // both done; or the first failure, after the other was killed
///     use(a.get(), b.get());
///   }
///
/// When a member fails (an exception other than moss::greenlet_exit escapes
/// it), the group kills the other members at once, whatever its owner is
/// doing; join() waits for them to unwind and rethrows that first failure.
/// Later failures (a member whose cleanup throws) go to the error handler.
/// Nothing outlives the group: leaving its scope without join() (an exception,
/// an early return) kills the members still running and waits for them.
/// Members may spawn more members. A group belongs to the thread that made it.
#pragma once

#include <moss/detail/export.hpp>
#include <moss/detail/intrusive_list.hpp>
#include <moss/detail/task_base.hpp>
#include <moss/detail/waiter.hpp>
#include <moss/task.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <type_traits>
#include <utility>

namespace moss {

/// task_group: structured concurrency: tasks spawned in it are joined, or killed on a failure, before it goes; see task_group.hpp.
class MOSS_API task_group {
 public:
  task_group();
  /// ~task_group() kills the members still running and waits until they have
  /// finished. If the wait is interrupted (a kill), the interruption is kept
  /// and raised at the next wait.
  ~task_group();
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;

  /// spawn() starts f(args...) as a member and returns its task. Throws
  /// moss::error once the group has failed or join() has returned, and from
  /// another thread.
  template <class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
  auto spawn(F&& f, Args&&... args) {
    check_open();
    auto t = moss::spawn(std::forward<F>(f), std::forward<Args>(args)...);
    adopt(t.base_ptr());
    return t;
  }

  /// join() waits until every member has finished (members spawned meanwhile
  /// included), then rethrows the first failure, if any. If the caller is
  /// interrupted while it waits (killed, timed out), the members are killed
  /// and have unwound before the exception goes on. Afterwards the group is
  /// closed. Must not be called by a member.
  void join();

  /// join(timeout) waits at most timeout for the members; false if some are
  /// still running (they go on). Otherwise as join().
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_until(detail::deadline_after(timeout));
  }

  /// cancel() kills every member without waiting; join() then returns
  /// normally unless a member failed.
  void cancel() noexcept;

  /// size() counts the members still running.
  std::size_t size() const noexcept { return running_; }
  ///@{
  /// failed() is true once a member has failed; error() is that failure.
  bool failed() const noexcept { return static_cast<bool>(error_); }
  std::exception_ptr error() const noexcept { return error_; }
  ///@}

 private:
  struct member;
  void check_open() const;
  void adopt(detail::task_base* t);
  void member_done(member* m, detail::task_base& t) noexcept;
  void kill_all() noexcept;
  bool wait_all(detail::time_point deadline);
  bool join_until(detail::time_point deadline);

  detail::thread_state* owner_thread_;  // (declared in greenlet_impl.hpp)
  detail::intrusive_list<member> members_;  // newest first
  std::size_t running_ = 0;
  std::exception_ptr error_;
  task_ref failed_;  // the member whose failure join() rethrows
  bool closed_ = false;
  detail::waiter* joiner_ = nullptr;
};

}  // namespace moss

/// @file
/// group.hpp: a set of tasks managed together (gevent's Group).
///
///   moss::group g;
///   for (auto& url : urls) g.spawn(fetch, url);
///   g.join();              // until every member has finished
///
/// A task leaves the group by itself when it finishes, so size() counts the
/// members still running. Destroying a group forgets its members; it does not
/// kill them. A group belongs to one thread's hub.
#pragma once

#include <moss/detail/export.hpp>
#include <moss/detail/intrusive_list.hpp>
#include <moss/detail/task_base.hpp>
#include <moss/detail/waiter.hpp>
#include <moss/task.hpp>

#include <chrono>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

namespace moss {

/// group: a set of tasks watched and joined or killed together; see group.hpp.
class MOSS_API group {
 public:
  group() noexcept = default;
  virtual ~group();
  group(const group&) = delete;
  group& operator=(const group&) = delete;

  /// spawn() spawns f(args...) as a member and returns its task.
  template <class F, class... Args>
    requires std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>
  auto spawn(F&& f, Args&&... args) {
    acquire_slot();
    decltype(moss::spawn(std::forward<F>(f), std::forward<Args>(args)...)) t;
    try {
      t = moss::spawn(std::forward<F>(f), std::forward<Args>(args)...);
    } catch (...) {
      release_slot();
      throw;
    }
    insert_or_kill(t);
    return t;
  }
  /// add() makes an already spawned task a member. A finished task, or one
  /// already in the group, is not added again.
  void add(const task_ref& t);
  ///@{
  /// discard() stops tracking t without affecting it.
  void discard(const task_ref& t) noexcept;
  /// contains() is true when t is a member.
  bool contains(const task_ref& t) const noexcept;
  ///@}

  /// size() is the number of members (tasks not yet finished).
  std::size_t size() const noexcept { return size_; }
  /// empty() is size() == 0.
  bool empty() const noexcept { return size_ == 0; }
  /// tasks() lists the members, oldest first.
  std::vector<task_ref> tasks() const;

  /// join() waits until the group is empty, including members added while it
  /// waits. Must not be called by a member (it would wait for itself).
  void join() { join_until(detail::no_deadline); }
  /// join(timeout) waits at most timeout; true if the group became empty.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_until(detail::deadline_after(timeout));
  }
  /// kill() kills every member (as moss::killall); by default waits until
  /// they have finished. A member killing its own group is killed last.
  void kill(bool block = true);

 protected:
  ///@{
  /// acquire_slot() is called before a task joins the group and may wait;
  /// release_slot() when a member leaves or an acquired slot goes unused.
  virtual void acquire_slot() {}
  virtual void release_slot() noexcept {}
  ///@}

 private:
  struct member;
  bool join_until(detail::time_point deadline);
  void insert(detail::task_base* t);
  void insert_or_kill(const task_ref& t);
  void remove(member* m) noexcept;
  member* find(const detail::task_base* t) const noexcept;

  detail::intrusive_list<member> members_;  // oldest first
  std::size_t size_ = 0;
  detail::waiter_list empty_waiters_;
};

}  // namespace moss

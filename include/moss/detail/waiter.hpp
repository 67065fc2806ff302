// detail/waiter.hpp: park and unpark — what every blocking primitive is
// built on. A waiter lives on the stack of the greenlet that waits; its
// destructor unlinks it from any waiter_list and disarms its timer, so a
// wait that ends by timeout or exception leaves nothing behind.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/greenlet_impl.hpp>
#include <moss/detail/intrusive_list.hpp>
#include <moss/detail/timer.hpp>

namespace moss::detail {

class waiter_list;

class MOSS_API waiter {
 public:
  // waiter() prepares a wait for the current greenlet.
  waiter();
  ~waiter();
  waiter(const waiter&) = delete;
  waiter& operator=(const waiter&) = delete;

  // wait() suspends the current greenlet until wake() or the deadline.
  // Returns true if woken, false on timeout. Throws the greenlet's pending
  // exception (kill, timeout) instead, and moss::error when called from the
  // hub greenlet. Must be called by the greenlet that made the waiter.
  bool wait(time_point deadline = no_deadline);

  // wake() makes the waiting greenlet runnable. Returns false if it was
  // already woken or timed out (so a hand-off can go to someone else).
  bool wake() noexcept;

  // interrupt() wakes g without a result: used to deliver g->pending_.
  void interrupt() noexcept;

  // forget() is for a forked child whose hub leaves the waiting greenlet
  // behind (it never runs there): the waiter leaves its list and its
  // deadline is disarmed, and nothing can schedule it any more.
  void forget() noexcept;

  bool woken() const noexcept { return woken_; }
  greenlet_impl* greenlet() const noexcept { return g_; }

  // set_what() records what the greenlet waits on ("sleep", "join task-3"),
  // for moss::format_run_info(). The text must outlive the wait.
  void set_what(const char* what) noexcept { what_ = what; }
  // set_what(what, about) also names the greenlet waited for; its name is
  // read only when format_run_info prints (building it per wait is costly).
  void set_what(const char* what, const greenlet_impl* about) noexcept {
    what_ = what;
    about_ = about;
  }
  const char* what() const noexcept { return what_; }
  const greenlet_impl* about() const noexcept { return about_; }

 private:
  friend class waiter_list;
  struct deadline_timer final : timer {
    waiter* w = nullptr;
    void fire() noexcept override;
  };
  void unlink() noexcept;

  greenlet_impl* g_;
  bool woken_ = false;
  bool timed_out_ = false;
  bool interrupted_ = false;
  waiter_list* list_ = nullptr;
  list_links<waiter> links_;
  const char* what_ = nullptr;
  const greenlet_impl* about_ = nullptr;
  deadline_timer timer_;
};

// waiter_list: an intrusive FIFO of waiters.
class MOSS_API waiter_list {
 public:
  waiter_list() = default;
  waiter_list(const waiter_list&) = delete;
  waiter_list& operator=(const waiter_list&) = delete;
  ~waiter_list();

  void push_back(waiter& w) noexcept;
  waiter* front() const noexcept { return waiters_.front(); }
  bool empty() const noexcept { return waiters_.empty(); }
  std::size_t size() const noexcept { return size_; }
  // wake_one() wakes the first waiter; false if there was none.
  bool wake_one() noexcept;
  // wake_all() wakes every waiter and empties the list.
  void wake_all() noexcept;

 private:
  friend class waiter;
  void remove(waiter& w) noexcept;
  intrusive_list<waiter, member_links<waiter, &waiter::links_>> waiters_;
  std::size_t size_ = 0;
};

// wait_published() waits in a waiter that `slot` points to meanwhile, so
// that whoever holds the slot can wake it, and clears the slot however the
// wait ends. Returns what waiter::wait() returns; what names the wait.
bool wait_published(waiter*& slot, const char* what, time_point deadline);

// interrupt() raises e in g at its next resume, waking it if it waits.
MOSS_API void interrupt(greenlet_impl* g, std::exception_ptr e) noexcept;

}  // namespace moss::detail

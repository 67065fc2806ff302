// task_group.cpp: members are nodes of an intrusive list, each a done_hook on
// its task holding a reference to it. A member's hook runs on the finishing
// greenlet and must not block: it unlinks and frees its node, records the
// first failure and interrupts the other members (detail::interrupt, which
// only sets a pending exception and wakes), and wakes the joiner.
#include <moss/task_group.hpp>

#include "core/greenlet.hpp"

#include <moss/error.hpp>

#include <string>

namespace moss {

struct task_group::member final : detail::done_hook, detail::list_links<member> {
  task_group* group = nullptr;
  task_ref task;
  void task_done(detail::task_base& t) noexcept override { group->member_done(this, t); }
};

task_group::task_group() : owner_thread_(&detail::this_thread()) {}

task_group::~task_group() {
  if (running_ > 0) {
    kill_all();
    try {
      wait_all(detail::no_deadline);
    } catch (...) {
      // Interrupted while the members unwind (a second kill): keep the
      // interruption for the next wait rather than throw from a destructor,
      // and stop watching the members (they were told to die).
      detail::greenlet_impl* self = detail::current_impl();
      std::exception_ptr e = std::current_exception();
      bool deadlock = false;
      try {
        std::rethrow_exception(e);
      } catch (const loop_exit&) {
        deadlock = true;
      } catch (...) {
      }
      if (!deadlock && !self->pending_) self->pending_ = e;
    }
  }
  while (member* m = members_.front()) {
    members_.remove(*m);
    delete m;  // detaches its hook
  }
}

void task_group::check_open() const {
  if (detail::this_thread_if_any() != owner_thread_)
    throw moss::error("moss::task_group: the group belongs to another thread");
  if (error_) throw moss::error("moss::task_group: a member failed and the group is cancelling; it takes no new members");
  if (closed_) throw moss::error("moss::task_group: join() has returned; the group takes no new members");
}

void task_group::adopt(detail::task_base* t) {
  member* m = nullptr;
  try {
    m = new member;
  } catch (...) {
    detail::task_access::adopt(t).kill(false);  // nobody would watch it
    throw;
  }
  m->group = this;
  m->task = detail::task_access::adopt(t);
  members_.push_front(*m);
  ++running_;
  m->attach(*t);
}

void task_group::member_done(member* m, detail::task_base& t) noexcept {
  members_.remove(*m);
  --running_;
  if (t.error() && !t.killed() && !error_) {
    error_ = t.error();
    failed_ = m->task;
    kill_all();
  }
  delete m;
  if (running_ == 0 && joiner_ != nullptr) joiner_->wake();
}

void task_group::kill_all() noexcept {
  for (member* m = members_.front(); m != nullptr; m = members_.next(*m)) {
    detail::task_base* t = m->task.base_ptr();
    if (t->done()) continue;
    try {
      detail::interrupt(t, std::make_exception_ptr(greenlet_exit{}));
    } catch (...) {
    }
  }
}

void task_group::cancel() noexcept { kill_all(); }

bool task_group::wait_all(detail::time_point deadline) {
  while (running_ > 0)
    if (!detail::wait_published(joiner_, "task_group join", deadline) && running_ > 0) return false;
  return true;
}

void task_group::join() { join_until(detail::no_deadline); }

bool task_group::join_until(detail::time_point deadline) {
  if (detail::this_thread_if_any() != owner_thread_)
    throw moss::error("moss::task_group: the group belongs to another thread");
  detail::check_may_block("moss::task_group::join");
  for (member* m = members_.front(); m != nullptr; m = members_.next(*m))
    if (m->task.base_ptr()->is_current())
      throw moss::error("moss::task_group::join: called by a member, which would wait for itself");
  try {
    if (!wait_all(deadline)) return false;
  } catch (...) {
    std::exception_ptr e = std::current_exception();
    kill_all();
    try {
      wait_all(detail::no_deadline);
    } catch (...) {
      e = std::current_exception();
    }
    closed_ = true;
    std::rethrow_exception(e);
  }
  closed_ = true;
  if (failed_) failed_.base_ptr()->rethrow_if_failed();
  return true;
}

}  // namespace moss

// task.cpp: spawning, joining and killing tasks.
#include <moss/task.hpp>

#include "hub.hpp"
#include "stack.hpp"

#include <cstdio>
#include <typeinfo>

namespace moss::detail {

namespace {

void report_failure(const task_base& t, std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    std::fprintf(stderr, "moss: task \"%s\" failed: %s\n", t.name().c_str(), x.what());
  } catch (...) {
    std::fprintf(stderr, "moss: task \"%s\" failed with a non-standard exception\n", t.name().c_str());
  }
}

}  // namespace

void reap_all(hub_core& h) {
  // Kill from the newest: each kill waits, so tasks unwind one at a time.
  while (greenlet_impl* g = h.tracked()) {
    auto* t = static_cast<task_base*>(g);
    t->ref();
    try {
      t->kill(true);
    } catch (...) {
    }
    if (!t->done()) {
      // It refused to die (swallowed greenlet_exit and waits forever):
      // stop tracking it rather than loop.
      h.untrack(t);
    }
    t->unref();
  }
}

void launch(task_base* t, const spawn_options& o, time_point start_at) {
  try {
    hub_core& h = hub_core::current();
    t->owner_ = &h.thread();
    t->hub_ = &h;
    t->stack_request_ = o.stack_size;
    if (!o.name.empty()) t->name_ = o.name;
    set_parent(t, h.hub_greenlet());
    t->stack_ = stack_allocate(o.stack_size);
    h.track(t);
    if (start_at == time_point::min()) {
      h.schedule(t);
    } else {
      t->start_.task = t;
      h.timers.add(t->start_, start_at);
    }
  } catch (...) {
    delete t;
    throw;
  }
  if (hub_core::reap_tasks == nullptr) hub_core::reap_tasks = &reap_all;
}

void task_base::start_timer::fire() noexcept { task->hub_->schedule(task); }

std::any task_base::run(std::any) {
  try {
    invoke();
  } catch (const greenlet_exit&) {
    killed_ = true;
    error_ = std::current_exception();
  } catch (...) {
    error_ = std::current_exception();
    report_failure(*this, error_);
  }
  complete();
  return {};
}

greenlet_impl* task_base::exit_target() noexcept { return hub_->exit_target(); }

void task_base::complete() noexcept {
  done_ = true;
  pending_ = nullptr;
  joiners_.wake_all();
  hub_->untrack(this);  // the self-reference (or the caller's) keeps us alive
}

void task_base::rethrow_if_failed() const {
  if (error_) std::rethrow_exception(error_);
}

void task_base::join() { join_until(no_deadline); }

bool task_base::join_until(time_point deadline) {
  if (done_) return true;
  if (is_current()) throw moss::error("moss: task \"" + name() + "\" cannot join itself");
  if (owner_ != this_thread_if_any())
    throw moss::error("moss: task \"" + name() + "\" belongs to another thread's hub; use spawn_threadsafe to wait across threads");
  waiter w;
  joiners_.push_back(w);
  return w.wait(deadline) || done_;
}

void task_base::kill(bool block) {
  if (done_) return;
  if (owner_ != this_thread_if_any()) throw moss::error("moss: task \"" + name() + "\" belongs to another thread's hub");
  if (state_ == state::fresh) {
    // Never ran: no stack to unwind.
    ref();
    if (start_.armed()) hub_->timers.remove(start_);
    state_ = state::dead;
    stack_release(stack_);
    killed_ = true;
    error_ = std::make_exception_ptr(greenlet_exit{});
    complete();
    unref();
    return;
  }
  if (is_current()) throw greenlet_exit{};
  interrupt(this, std::make_exception_ptr(greenlet_exit{}));
  if (block) join();
}

run_scope::run_scope() {
  thread_state& t = this_thread();
  if (t.current != t.root) throw moss::error("moss::run must be called from the thread's main greenlet, not from a task or greenlet");
  hub_core& h = hub_core::current();
  (void)h;
}

run_scope::~run_scope() {
  hub_core* h = hub_core::current_if_any();
  if (h != nullptr && h->tracked() != nullptr) reap_all(*h);
}

}  // namespace moss::detail

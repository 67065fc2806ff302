// wait.cpp: the completion set and the non-template cores of joinall, wait,
// gather and killall.
//
// A completion set attaches one done_hook per task. A hook fires on the
// finishing task's greenlet (it must not block or allocate): it appends the
// task's index to finished_, whose capacity was reserved by add(), and wakes
// the waiting greenlet if any.
#include <moss/wait.hpp>

#include "core/greenlet.hpp"

#include <moss/error.hpp>

#include <algorithm>
#include <utility>
#include <string>

namespace moss::detail {

namespace {

bool failed_not_killed(const task_base* t) noexcept { return t->error() && !t->killed(); }

}  // namespace

std::size_t completion_set::add(task_base* t) {
  if (t == nullptr) throw moss::error(std::string(op_) + ": empty task handle");
  if (t->is_current())
    throw moss::error(std::string(op_) + ": task \"" + t->name() + "\" cannot wait for itself (it would never finish)");
  t->check_owner(op_, task_base::across_threads);
  // Hooks push_back into finished_ and must never allocate: keep room for
  // every task added, growing geometrically (reserve(n) is exact).
  if (finished_.capacity() < hooks_.size() + 1) finished_.reserve(std::max<std::size_t>(16, 2 * finished_.capacity()));
  hook& h = hooks_.emplace_back();
  h.set = this;
  h.task = t;
  h.index = hooks_.size() - 1;
  if (t->finished()) finished_.push_back(h.index);
  else h.attach(*t);
  return h.index;
}

void completion_set::hook::task_done(task_base&) noexcept {
  set->finished_.push_back(index);  // never reallocates: capacity >= hooks_.size()
  if (set->waiting_ != nullptr) set->waiting_->wake();
}

std::size_t completion_set::next(time_point deadline) {
  while (!has_ready())
    if (!wait_published(waiting_, op_, deadline) && !has_ready()) return npos;
  return finished_[taken_++];
}

std::vector<std::size_t> joinall(const std::vector<task_base*>& ts, time_point deadline, bool raise_error) {
  completion_set set("moss::joinall");
  for (task_base* t : ts) set.add(t);
  std::vector<std::size_t> order;
  order.reserve(ts.size());
  while (set.remaining() > 0) {
    std::size_t i = set.next(deadline);
    if (i == completion_set::npos) break;
    order.push_back(i);
    if (raise_error && failed_not_killed(ts[i])) ts[i]->rethrow_if_failed();
  }
  return order;
}

std::vector<char> wait(const std::vector<task_base*>& ts, int when_value, time_point deadline) {
  if (ts.empty()) throw moss::error("moss::wait: the set of tasks is empty, so nothing could ever complete");
  auto when = static_cast<return_when>(when_value);
  completion_set set("moss::wait");
  for (task_base* t : ts) set.add(t);
  std::vector<char> done(ts.size(), 0);
  while (set.remaining() > 0) {
    // Collect everything already finished before deciding, so that done
    // holds all tasks finished at the moment wait returns.
    bool stop = false;
    while (set.has_ready()) {
      std::size_t i = set.next(deadline);
      done[i] = 1;
      if (when == return_when::first_completed) stop = true;
      if (when == return_when::first_exception && failed_not_killed(ts[i])) stop = true;
    }
    if (stop || set.remaining() == 0) break;
    std::size_t i = set.next(deadline);
    if (i == completion_set::npos) break;
    done[i] = 1;
    if (when == return_when::first_completed) break;
    if (when == return_when::first_exception && failed_not_killed(ts[i])) break;
  }
  return done;
}

void gather_wait(const std::vector<task_base*>& ts, bool stop_at_failure, const char* op) {
  completion_set set(op);
  for (task_base* t : ts) set.add(t);
  while (set.remaining() > 0) {
    std::size_t i = 0;
    try {
      i = set.next(no_deadline);
    } catch (...) {
      // The gathering greenlet was interrupted (killed, timed out): the
      // gathered tasks are cancelled with it, as asyncio's are, and have
      // unwound before the exception goes on. An exception raised while
      // waiting for them (a second kill) replaces the first.
      std::exception_ptr e = std::current_exception();
      for (task_base* t : ts)
        if (!t->finished()) t->kill(false);
      try {
        for (task_base* t : ts) t->join();
      } catch (...) {
        e = std::current_exception();
      }
      std::rethrow_exception(e);
    }
    if (stop_at_failure) ts[i]->rethrow_if_failed();
  }
}

void killall(const std::vector<task_base*>& ts, bool block) {
  task_base* self = nullptr;
  for (task_base* t : ts) {
    if (t == nullptr) throw moss::error("moss::killall: empty task handle");
    t->check_owner("moss::killall");
  }
  if (block) check_may_block("moss::killall");
  for (task_base* t : ts) {
    if (t->is_current()) self = t;
    else t->kill(false);
  }
  if (block) {
    for (task_base* t : ts)
      if (t != self) t->join();
  }
  if (self != nullptr && !self->done()) throw greenlet_exit{};
}

// ---- events and async_results ----

item_completions::item_completions(std::vector<wait_item> items, const char* op)
    : op_(op), items_(std::move(items)), set_(op) {
  initially_ready_.resize(items_.size(), 0);
  for (std::size_t i = 0; i < items_.size(); ++i)
    if (items_[i].ready()) {
      ready_.push_back(i);
      initially_ready_[i] = 1;
    }
}

// watch() spawns the watching tasks, the first time the caller must wait:
// a wait that is over at once (an item already complete) spawns none.
void item_completions::watch() {
  watching_ = true;
  spawn_options o;
  o.name = std::string(op_) + " watcher";
  for (std::size_t i = 0; i < items_.size(); ++i) {
    if (initially_ready_[i]) continue;
    watchers_.push_back(moss::spawn(o, items_[i].wait));
    item_of_.push_back(i);
    set_.add(watchers_.back().base_ptr());
  }
}

item_completions::~item_completions() {
  // kill(false) never waits, and it unlinks a watcher parked on an event
  // from the event's list at once, so the event may go before the watcher
  // has unwound.
  for (const task_ref& w : watchers_)
    if (!w.ready()) w.kill(false);
}

void item_completions::stop() {
  for (const task_ref& w : watchers_)
    if (!w.ready()) w.kill(false);
  for (const task_ref& w : watchers_) w.join();
}

std::size_t item_completions::next(time_point deadline) {
  if (!ready_.empty()) {
    std::size_t i = ready_.front();
    ready_.pop_front();
    ++taken_;
    return i;
  }
  if (!watching_) watch();
  std::size_t k = set_.next(deadline);
  if (k == completion_set::npos) return k;
  // A watcher ends abnormally only when its wait was ended for it (loop_exit:
  // nothing could ever complete the item): that is the caller's error.
  watchers_[k].base_ptr()->rethrow_if_failed();
  ++taken_;
  return item_of_[k];
}

std::vector<char> wait_items(std::vector<wait_item> items, int when_value, time_point deadline) {
  if (items.empty()) throw moss::error("moss::wait: the set is empty, so nothing could ever complete");
  auto when = static_cast<return_when>(when_value);
  std::vector<char> done(items.size(), 0);
  item_completions order(std::move(items), "moss::wait");
  auto stops = [&](std::size_t i) {
    return when == return_when::first_completed || (when == return_when::first_exception && order.failed(i));
  };
  bool stop = false;
  while (order.remaining() > 0 && !stop) {
    // Take everything complete before deciding, as wait() over tasks does.
    while (order.has_ready() && order.remaining() > 0) {
      std::size_t i = order.next(deadline);
      done[i] = 1;
      stop = stop || stops(i);
    }
    if (stop || order.remaining() == 0) break;
    std::size_t i = order.next(deadline);
    if (i == completion_set::npos) break;
    done[i] = 1;
    stop = stops(i);
  }
  order.stop();
  for (std::size_t i = 0; i < done.size(); ++i)
    if (!done[i] && order.ready(i)) done[i] = 1;
  return done;
}

void throw_as_completed_timeout(std::size_t remaining) {
  throw timeout_error("moss::as_completed: the deadline passed with " + std::to_string(remaining) +
                      (remaining == 1 ? " task" : " tasks") + " still running");
}

}  // namespace moss::detail

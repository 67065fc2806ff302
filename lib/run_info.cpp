// run_info.cpp: format_run_info(). Reads the hub's task list and each
// greenlet's scheduling fields; the waiter says what a parked greenlet waits
// on when its primitive recorded it (waiter::set_what).
#include <moss/run_info.hpp>

#include "greenlet.hpp"
#include "hub.hpp"

#include <moss/detail/task_base.hpp>
#include <moss/detail/waiter.hpp>

#include <string>

namespace moss {

namespace {

using detail::greenlet_impl;

const char* role_name(greenlet_impl::role r) {
  switch (r) {
    case greenlet_impl::role::root: return "main";
    case greenlet_impl::role::hub: return "hub";
    case greenlet_impl::role::raw: return "greenlet";
    case greenlet_impl::role::task: return "task";
  }
  return "?";
}

std::string state_of(const greenlet_impl* g, const detail::thread_state& t) {
  if (t.current == g) return "running";
  if (g->state_ == greenlet_impl::state::dead) return "finished";
  const auto* task = g->role_ == greenlet_impl::role::task ? static_cast<const detail::task_base*>(g) : nullptr;
  if (g->state_ == greenlet_impl::state::fresh) {
    if (task != nullptr && task->starts_later()) return "not started (spawn_later)";
    return "not started";
  }
  std::string s;
  if (g->parked_on_ != nullptr) {
    s = "waiting";
    if (const char* what = g->parked_on_->what()) {
      s += std::string(" on ") + what;
      if (const greenlet_impl* about = g->parked_on_->about()) s += " " + about->name();
    }
    if (g->scheduled_) s += " (woken, ready)";
  } else if (g->scheduled_) {
    s = "ready";
  } else if (g->role_ == greenlet_impl::role::hub) {
    s = "idle (in its loop)";
  } else {
    s = "suspended (switched away)";
  }
  if (task != nullptr && task->in_callbacks()) s += ", running its done callbacks";
  return s;
}

void describe(std::string& out, const greenlet_impl* g, const detail::thread_state& t) {
  out += "  #" + std::to_string(g->id_) + " \"" + g->name() + "\" " + role_name(g->role_) + ": " + state_of(g, t);
  if (g->role_ == greenlet_impl::role::task) {
    std::string site = static_cast<const detail::task_base*>(g)->spawn_site();
    if (!site.empty()) out += "; spawned from " + site;
  }
  out += '\n';
}

std::string count(std::size_t n, const char* noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

}  // namespace

std::string format_run_info() {
  detail::thread_state* t = detail::this_thread_if_any();
  detail::hub_core* h = detail::hub_core::current_if_any();
  if (t == nullptr || h == nullptr) return "moss: no hub on this thread\n";
  std::string out = "moss: hub of this thread: " + count(h->tracked_count(), "unfinished task") + ", " +
                    count(h->timers.size(), "timer") + " armed, " + count(h->parked, "greenlet") + " waiting\n";
  describe(out, t->root, *t);
  describe(out, h->hub_greenlet(), *t);
  if (t->current->role_ == greenlet_impl::role::raw) describe(out, t->current, *t);
  // The hub's list is newest first; print in spawn order.
  const greenlet_impl* last = h->tracked();
  while (last != nullptr && last->hub_next_ != nullptr) last = last->hub_next_;
  for (const greenlet_impl* g = last; g != nullptr; g = g->hub_prev_) describe(out, g, *t);
  return out;
}

}  // namespace moss

// interpose.cpp: the seam an interposition layer uses (moss/detail/interpose.hpp).
// It sits above every layer of lib/ and nothing in lib/ calls it.
#include <moss/detail/interpose.hpp>

#include "core/hub.hpp"
#include "core/monitor.hpp"
#include "core/stack.hpp"
#include "core/sys.hpp"
#include "debug/dump.hpp"
#include "dns/resolver.hpp"
#include "thread/threadpool.hpp"

#include <moss/error.hpp>

#include <cstring>
#include <string>
#include <utility>

namespace moss::interpose {

bool is_kill(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const moss::greenlet_exit&) {
    return true;
  } catch (...) {
    return false;
  }
}

namespace {

// parked_greenlet() is the caller if it may park, else null.
detail::greenlet_impl* parked_greenlet(detail::thread_state*& t) noexcept {
  t = detail::this_thread_if_any();
  if (t == nullptr || t->hub == nullptr || t->current == t->hub->hub_greenlet()) return nullptr;
  return t->current;
}

}  // namespace

bool may_park() noexcept {
  detail::thread_state* t;
  return parked_greenlet(t) != nullptr;
}

bool has_hub() noexcept {
  detail::thread_state* t = detail::this_thread_if_any();
  return t != nullptr && t->hub != nullptr;
}

detail::greenlet_impl* current_if_any() noexcept {
  detail::thread_state* t = detail::this_thread_if_any();
  return t != nullptr ? t->current : nullptr;
}

bool is_parked(const detail::greenlet_impl* g) noexcept { return g->parked_on_ != nullptr; }

void rearm(std::exception_ptr e) noexcept {
  detail::greenlet_impl* g = current_if_any();
  if (g == nullptr || !e) return;
  if (!g->pending_ || (!is_kill(g->pending_) && is_kill(e))) g->pending_ = std::move(e);
}

bool drop_pending(bool (*match)(const std::exception_ptr&) noexcept) noexcept {
  detail::greenlet_impl* g = current_if_any();
  if (g == nullptr || !g->pending_ || !match(g->pending_)) return false;
  g->pending_ = nullptr;
  return true;
}

void let_others_run() noexcept {
  detail::thread_state* t;
  detail::greenlet_impl* g = parked_greenlet(t);
  if (g == nullptr) return;
  std::exception_ptr kept = std::exchange(g->pending_, nullptr);
  t->hub->schedule(g);
  t->hub->switch_out();
  g->scheduled_ = false;
  if (kept && (!g->pending_ || !is_kill(g->pending_))) g->pending_ = std::move(kept);
}

void keep_tasks_at_exit() noexcept { detail::hub_core::keep_tasks_at_exit = true; }

void write_stderr(const char* s, std::size_t n) noexcept { detail::sys::write_stderr(s, n); }

void check_setting(const char* variable, const char* text) {
  if (std::strcmp(variable, "MOSS_STACK_SIZE") == 0) detail::parse_stack_size(text);
  else if (std::strcmp(variable, "MOSS_THREADPOOL_SIZE") == 0) detail::parse_pool_size(text);
  else if (std::strcmp(variable, "MOSS_MONITOR_MS") == 0) detail::parse_monitor_ms(text);
  else if (std::strcmp(variable, "MOSS_DUMP_SIGNAL") == 0) detail::parse_dump_signal(text);
  else throw moss::error(std::string("moss: check_setting: no parser for \"") + variable + "\"");
}

void check_dns_settings() { detail::dns::settings_from_environment(); }

}  // namespace moss::interpose

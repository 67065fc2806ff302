// hooks.cpp: MOSS_HOOK, the cooperative test, the C boundary.
#include "hooks.hpp"

#include "core/hub.hpp"

#include <moss/error.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <system_error>
#include <utility>

namespace moss::patch {

unsigned enabled_families = family_all;
thread_local int signal_depth = 0;
void (*cancel_point)() = nullptr;

bool in_greenlet() noexcept {
  detail::thread_state* t = detail::this_thread_if_any();
  return t != nullptr && t->hub != nullptr && t->current != t->hub->hub_greenlet();
}

namespace {

bool is_kill(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const moss::greenlet_exit&) {
    return true;
  } catch (...) {
    return false;
  }
}

// let_others_run() puts the greenlet at the back of the ready queue and
// switches away, with its pending exception set aside so the switch does not
// raise it. A kill that arrives meanwhile wins over what was set aside;
// anything else keeps the older exception (as timeout::fire does).
void let_others_run(detail::thread_state& t) noexcept {
  detail::hub_core* h = t.hub;
  detail::greenlet_impl* g = t.current;
  if (h == nullptr || g == h->hub_greenlet()) return;
  std::exception_ptr kept = std::exchange(g->pending_, nullptr);
  h->schedule(g);
  h->switch_out();
  g->scheduled_ = false;
  if (kept && (!g->pending_ || !is_kill(g->pending_))) g->pending_ = std::move(kept);
}

}  // namespace

int interrupted(std::exception_ptr e) noexcept {
  int err = ECANCELED;
  bool rearm = true;
  try {
    std::rethrow_exception(e);
  } catch (const moss::greenlet_exit&) {
    err = ECANCELED;
  } catch (const moss::timeout_error&) {
    err = ETIMEDOUT;
  } catch (const moss::loop_exit&) {
    // About this one wait: if the greenlet again waits for what nothing can
    // wake, the hub raises loop_exit again.
    err = EDEADLK;
    rearm = false;
  } catch (const std::bad_alloc&) {
    err = ENOMEM;
    rearm = false;
  } catch (const std::system_error& x) {
    const std::error_category& c = x.code().category();
    err = (c == std::generic_category() || c == std::system_category()) && x.code().value() != 0 ? x.code().value() : EIO;
    rearm = false;
  } catch (...) {
    // Any other exception ended the wait from outside (a moss::error, an
    // exception thrown in with throw_in): the call was cancelled.
    err = ECANCELED;
  }
  detail::thread_state* t = detail::this_thread_if_any();
  if (t == nullptr) return err;
  detail::greenlet_impl* g = t->current;
  if (rearm && (!g->pending_ || (!is_kill(g->pending_) && is_kill(e)))) g->pending_ = std::move(e);
  let_others_run(*t);
  return err;
}

namespace {

// Read before main() so a bad value stops the program at once, with a
// message, instead of surfacing in the middle of some read().
[[gnu::constructor]] void read_moss_hook() {
  const char* env = std::getenv("MOSS_HOOK");
  if (env == nullptr || *env == '\0') return;
  const char* bad = nullptr;
  unsigned bad_len = 0;
  if (!parse_families(env, &enabled_families, &bad, &bad_len)) {
    std::fprintf(stderr, "moss: bad MOSS_HOOK \"%s\": unknown family \"%.*s\"; accepted: %s\n", env,
                 static_cast<int>(bad_len), bad, families_accepted);
    std::exit(2);
  }
}

}  // namespace
}  // namespace moss::patch

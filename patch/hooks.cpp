// hooks.cpp: MOSS_HOOK, the cooperative test, the C boundary.
#include "hooks.hpp"

#include <moss/detail/interpose.hpp>
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

bool in_greenlet() noexcept { return interpose::may_park(); }

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
  // Kept for the next wait in C++ code (a kill replaces anything else
  // pending), after the other greenlets have had a turn.
  if (rearm) interpose::rearm(std::move(e));
  interpose::let_others_run();
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

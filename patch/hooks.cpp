// hooks.cpp: MOSS_HOOK, the cooperative test, the C boundary.
#include "hooks.hpp"

#include "hub.hpp"

#include <moss/error.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace moss::patch {

unsigned enabled_families = family_all;
thread_local int signal_depth = 0;

bool in_greenlet() noexcept {
  detail::thread_state* t = detail::this_thread_if_any();
  return t != nullptr && t->hub != nullptr && t->current != t->hub->hub_greenlet();
}

int interrupted(std::exception_ptr e) noexcept {
  int err = ECANCELED;
  try {
    std::rethrow_exception(e);
  } catch (const moss::greenlet_exit&) {
    err = ECANCELED;
  } catch (const moss::loop_exit&) {
    err = EDEADLK;
  } catch (const moss::error&) {
    err = ETIMEDOUT;
  } catch (...) {
    err = ECANCELED;
  }
  if (detail::thread_state* t = detail::this_thread_if_any()) t->current->pending_ = std::move(e);
  return err;
}

bool parse_families(const char* text, unsigned* out, const char** bad, unsigned* bad_len) noexcept {
  static const struct {
    const char* name;
    unsigned bits;
  } names[] = {{"all", family_all},      {"socket", family_socket}, {"sleep", family_sleep},
               {"dns", family_dns},      {"poll", family_poll},     {"none", 0}};
  unsigned bits = 0;
  const char* p = text;
  for (;;) {
    const char* end = std::strchr(p, ',');
    std::size_t len = end != nullptr ? static_cast<std::size_t>(end - p) : std::strlen(p);
    bool found = false;
    for (const auto& n : names) {
      if (std::strlen(n.name) == len && std::strncmp(n.name, p, len) == 0) {
        bits |= n.bits;
        found = true;
      }
    }
    if (!found) {
      *bad = p;
      *bad_len = static_cast<unsigned>(len);
      return false;
    }
    if (end == nullptr) break;
    p = end + 1;
  }
  *out = bits;
  return true;
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
    std::fprintf(stderr, "moss: bad MOSS_HOOK \"%s\": unknown family \"%.*s\"; accepted: all, none, or a comma list of socket, sleep, dns, poll\n",
                 env, static_cast<int>(bad_len), bad);
    std::exit(2);
  }
}

}  // namespace
}  // namespace moss::patch

// active.cpp: moss_patch_active(), the C symbol <moss/patch.hpp> looks up to
// tell whether the hooks are live in this process. Exported with a C name so
// that a program finds it with dlsym whether libmoss_patch was linked or
// libmoss_preload was preloaded, and finds nothing (hooks off) otherwise.
#include "hooks.hpp"

#include <bit>

namespace moss::patch {
// Defined by green.cpp in libmoss_preload only: in libmoss_patch the weak
// reference stays null, and green pthreads are never live.
extern bool green_threads [[gnu::weak]];
}  // namespace moss::patch

// moss_patch_active() returns 1 if family (one of socket, sleep, dns, poll,
// thread), or any family when family is null, is hooked; 0 if not; -1 for a
// name that is not one family.
extern "C" [[gnu::visibility("default")]] int moss_patch_active(const char* family) noexcept {
  using namespace moss::patch;
  unsigned live = enabled_families;
  if (&green_threads == nullptr || !green_threads) live &= ~unsigned{family_thread};
  if (family == nullptr) return live != 0 ? 1 : 0;
  unsigned bits = 0;
  const char* bad = nullptr;
  unsigned bad_len = 0;
  if (!parse_families(family, &bits, &bad, &bad_len) || std::popcount(bits) != 1) return -1;
  return (live & bits) != 0 ? 1 : 0;
}

// real.hpp: the real libc functions behind our hooks.
//
// real_<name>() returns the next definition of <name> after ours in the
// lookup order (dlsym(RTLD_NEXT)), resolved on first use and cached. The slot
// is a constant-initialised atomic, so there is no static-initialisation order
// to get wrong and no guard variable; resolving twice from two threads at
// once is harmless.
#pragma once

#include <atomic>

namespace moss::patch {

// resolve() looks up the real symbol; aborts with a message if it is missing.
void* resolve(const char* name) noexcept;

}  // namespace moss::patch

#define MOSS_REAL(name, type)                                     \
  inline auto real_##name() noexcept -> type {                    \
    using fn_t = type;                                            \
    static constinit std::atomic<fn_t> slot{nullptr};             \
    fn_t f = slot.load(std::memory_order_relaxed);                \
    if (f == nullptr) [[unlikely]] {                              \
      f = reinterpret_cast<fn_t>(::moss::patch::resolve(#name));  \
      slot.store(f, std::memory_order_relaxed);                   \
    }                                                             \
    return f;                                                     \
  }

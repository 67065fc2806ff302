// detail/context_state.hpp: the saved machine context of a suspended
// greenlet, as the context layer keeps it (lib/core/context.*). Knows nothing
// of greenlets.
#pragma once

#include <cstddef>

namespace moss::detail {

// Saved machine context of a suspended greenlet (see lib/core/context.cpp).
struct context_state {
  void* fctx = nullptr;                     // while suspended: its stack pointer (moss_swap) or fcontext_t
  void (*entry)(void*) = nullptr;           // first function run on the stack
  void* entry_arg = nullptr;
  // errno and the C++ runtime's caught-exception state, saved here on the
  // Boost.Context path (moss's own switch keeps them on the suspended stack)
  int saved_errno = 0;
  void* eh_globals[2] = {nullptr, nullptr};
  const void* stack_bottom = nullptr;       // for AddressSanitizer
  std::size_t stack_size = 0;
  void* asan_fake_stack = nullptr;
  void* tsan_fiber = nullptr;
};

}  // namespace moss::detail

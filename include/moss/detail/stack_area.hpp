// detail/stack_area.hpp: a greenlet stack as the stack layer hands it out
// (lib/core/stack.*). Knows nothing of greenlets.
#pragma once

#include <moss/detail/export.hpp>

#include <cstddef>

namespace moss::detail {

// A mapped stack: [lo, lo + size) is usable, guard pages sit below lo.
struct stack_area {
  char* mapping = nullptr;
  std::size_t mapping_size = 0;
  char* lo = nullptr;
  std::size_t size = 0;
  unsigned valgrind_id = 0;
};

// stacks_in_use() counts stacks handed out and not released (all threads):
// with live_greenlets() (greenlet_impl.hpp), what leak checks compare, also
// in programs that link the shared library.
MOSS_API std::size_t stacks_in_use() noexcept;

}  // namespace moss::detail

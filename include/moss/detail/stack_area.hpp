// detail/stack_area.hpp: a greenlet stack as the stack layer hands it out
// (lib/core/stack.*). Knows nothing of greenlets.
#pragma once

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

}  // namespace moss::detail

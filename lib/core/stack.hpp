// stack.hpp: greenlet stacks.
//
// A stack is an mmap(MAP_NORESERVE) region, committed lazily by the kernel
// page by page, with 64 KiB of guard pages below it (stack.cpp: guard_size).
// The guard is installed with madvise(MADV_GUARD_INSTALL) where the kernel
// has it (Linux >= 6.13): the stack then stays a single VMA that merges with
// its neighbours, so a million guarded stacks fit in the default
// vm.max_map_count. Older kernels get an mprotect(PROT_NONE) region (two VMAs
// a stack). Chosen at run time.
//
// Released stacks of the default size are kept in a per-thread pool.
// An overflow into a guard page is reported by a SIGSEGV handler running on an
// alternate signal stack, naming the greenlet, before the process aborts.
#pragma once

#include <moss/detail/stack_area.hpp>

#include <cstddef>
#include <cstdint>

namespace moss::detail {

// stack_allocate() returns a stack with at least `size` usable bytes (0 means
// the default size). Throws moss::error when size is above 1 GiB,
// std::system_error when the kernel refuses.
stack_area stack_allocate(std::size_t size);

// stack_release() returns s to the pool or unmaps it.
void stack_release(stack_area& s) noexcept;

// default_stack_size() is MOSS_STACK_SIZE or 256 KiB; throws moss::error if
// MOSS_STACK_SIZE is malformed.
std::size_t default_stack_size();

// parse_stack_size() parses "262144", "256K", "256KiB", "1M", "1MiB"
// (case-insensitive, 16 KiB to 1 GiB). Throws moss::error naming the value
// and what is accepted.
std::size_t parse_stack_size(const char* text);

// stacks_in_use() is declared in <moss/detail/stack_area.hpp>.

// guard_mode() says how guard pages are made: "madvise" or "mprotect".
const char* guard_mode() noexcept;

// overflow_describer tells the SIGSEGV handler which greenlet owns the stack a
// fault hit: it returns the greenlet's name (or nullptr if the address is not
// in a guard page of the current greenlet's stack). Must be signal-safe.
using overflow_describer = const char* (*)(const void* fault, std::size_t* stack_size);
void set_overflow_describer(overflow_describer d) noexcept;

// stack_guard_contains() says whether addr lies in s's guard page region.
inline bool stack_guard_contains(const stack_area& s, const void* addr) noexcept {
  auto a = reinterpret_cast<std::uintptr_t>(addr);
  auto lo = reinterpret_cast<std::uintptr_t>(s.mapping);
  return s.mapping != nullptr && a >= lo && a < reinterpret_cast<std::uintptr_t>(s.lo);
}

}  // namespace moss::detail

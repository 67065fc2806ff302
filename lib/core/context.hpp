// context.hpp: machine context switching, the only layer that knows about
// Boost.Context. It also carries what must follow a greenlet rather than the
// OS thread across a switch: errno, the C++ runtime's caught-exception stack,
// and the AddressSanitizer / ThreadSanitizer fiber annotations.
#pragma once

#include <moss/detail/context_state.hpp>

namespace moss::detail {

// context_init_root() prepares c to describe the thread's own stack.
void context_init_root(context_state& c) noexcept;

// context_prepare() makes c start entry(arg) on [lo, lo + size) at its first
// switch. The stack must stay mapped until context_release().
void context_prepare(context_state& c, char* lo, std::size_t size, void (*entry)(void*), void* arg) noexcept;

// context_switch() suspends `from` (which must be running) and resumes `to`;
// it returns when some greenlet switches back to `from`.
void context_switch(context_state& from, context_state& to) noexcept;

// context_exit() is the last switch of a finished greenlet: `from` is never
// resumed, so its sanitizer state is discarded.
[[noreturn]] void context_exit(context_state& from, context_state& to) noexcept;

// context_release() frees per-context sanitizer resources.
void context_release(context_state& c) noexcept;

}  // namespace moss::detail

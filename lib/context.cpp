// context.cpp: switches on Boost.Context's fcontext (the assembly jump_fcontext
// and make_fcontext, no allocation, ~10 ns a jump).
//
// Protocol: every jump passes a pointer to a `jump` record on the jumping
// greenlet's stack. Whoever lands stores the jumper's new fcontext in
// record->from, so a suspended context is always up to date.
#include "context.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <boost/context/detail/fcontext.hpp>

#if defined(__SANITIZE_ADDRESS__)
#define MOSS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MOSS_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define MOSS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MOSS_TSAN 1
#endif
#endif

#ifdef MOSS_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef MOSS_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace __cxxabiv1 {
struct __cxa_eh_globals;
extern "C" __cxa_eh_globals* __cxa_get_globals() noexcept;
}  // namespace __cxxabiv1

namespace moss::detail {
namespace {

namespace bc = boost::context::detail;

struct jump {
  context_state* from;
  context_state* to;
};

// The C++ runtime keeps a per-thread stack of caught exceptions (two words:
// caughtExceptions, uncaughtExceptions). A greenlet suspended inside a catch
// block must get its own back, or std::rethrow / `throw;` act on another's.
inline void** eh_globals() noexcept { return reinterpret_cast<void**>(__cxxabiv1::__cxa_get_globals()); }

inline void save_thread_state(context_state& c) noexcept {
  c.saved_errno = errno;
  void** eh = eh_globals();
  c.eh_globals[0] = eh[0];
  c.eh_globals[1] = eh[1];
}

inline void restore_thread_state(const context_state& c) noexcept {
  void** eh = eh_globals();
  eh[0] = c.eh_globals[0];
  eh[1] = c.eh_globals[1];
  errno = c.saved_errno;
}

inline void sanitizer_start(context_state& from, context_state& to, bool from_dies) noexcept {
#ifdef MOSS_ASAN
  __sanitizer_start_switch_fiber(from_dies ? nullptr : &from.asan_fake_stack, to.stack_bottom, to.stack_size);
#endif
#ifdef MOSS_TSAN
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
  (void)from;
  (void)to;
  (void)from_dies;
}

// Called on the stack we just landed on; `prev` is the context we came from.
inline void sanitizer_finish(context_state& self, context_state& prev) noexcept {
#ifdef MOSS_ASAN
  const void* bottom = nullptr;
  std::size_t size = 0;
  __sanitizer_finish_switch_fiber(self.asan_fake_stack, &bottom, &size);
  if (prev.stack_bottom == nullptr) {  // the root stack learns its bounds here
    prev.stack_bottom = bottom;
    prev.stack_size = size;
  }
#endif
  (void)self;
  (void)prev;
}

inline void land(bc::transfer_t t, context_state& self) noexcept {
  auto* j = static_cast<jump*>(t.data);
  j->from->fctx = t.fctx;
  sanitizer_finish(self, *j->from);
}

void trampoline(bc::transfer_t t) noexcept {
  auto* j = static_cast<jump*>(t.data);
  context_state& self = *j->to;
  land(t, self);
  void** eh = eh_globals();
  eh[0] = nullptr;
  eh[1] = nullptr;
  errno = 0;
  self.entry(self.entry_arg);
  std::abort();  // entry() must leave with context_exit()
}

}  // namespace

void context_init_root(context_state& c) noexcept {
#ifdef MOSS_TSAN
  c.tsan_fiber = __tsan_get_current_fiber();
#endif
  (void)c;
}

void context_prepare(context_state& c, char* lo, std::size_t size, void (*entry)(void*), void* arg) noexcept {
  c.entry = entry;
  c.entry_arg = arg;
  c.stack_bottom = lo;
  c.stack_size = size;
  c.fctx = bc::make_fcontext(lo + size, size, &trampoline);
#ifdef MOSS_TSAN
  if (c.tsan_fiber == nullptr) c.tsan_fiber = __tsan_create_fiber(0);
#endif
}

void context_switch(context_state& from, context_state& to) noexcept {
  save_thread_state(from);
  jump j{&from, &to};
  sanitizer_start(from, to, false);
  bc::transfer_t t = bc::jump_fcontext(to.fctx, &j);
  land(t, from);
  restore_thread_state(from);
}

void context_exit(context_state& from, context_state& to) noexcept {
  jump j{&from, &to};
  sanitizer_start(from, to, true);
  bc::jump_fcontext(to.fctx, &j);
  std::abort();
}

void context_release(context_state& c) noexcept {
#ifdef MOSS_TSAN
  if (c.tsan_fiber != nullptr && c.entry != nullptr) __tsan_destroy_fiber(c.tsan_fiber);
#endif
  c.tsan_fiber = nullptr;
}

}  // namespace moss::detail

// context.cpp: switches on Boost.Context's fcontext (the assembly jump_fcontext
// and make_fcontext, no allocation, ~10 ns a jump).
//
// Protocol: every jump passes a pointer to a `jump` record on the jumping
// greenlet's stack. Whoever lands stores the jumper's new fcontext in
// record->from, so a suspended context is always up to date.
#include "core/context.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#ifndef MOSS_OWN_SWITCH
#include <boost/context/detail/fcontext.hpp>
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

#ifndef MOSS_OWN_SWITCH
namespace bc = boost::context::detail;
#endif

struct jump {
  context_state* from;
  context_state* to;
};

#ifndef MOSS_OWN_SWITCH
inline void save_thread_state(context_state& c) noexcept {
  context_thread_slots& t = context_here();
  c.saved_errno = *t.err;
  c.eh_globals[0] = t.eh[0];
  c.eh_globals[1] = t.eh[1];
}

inline void restore_thread_state(const context_state& c) noexcept {
  context_thread_slots& t = context_here();
  t.eh[0] = c.eh_globals[0];
  t.eh[1] = c.eh_globals[1];
  *t.err = c.saved_errno;
}
#endif

#ifdef MOSS_OWN_SWITCH
// On x86-64 we switch with our own routine rather than jump_fcontext, for
// two measured reasons (raw loops, side by side: 5.7 ns a round trip against
// 7.9 ns):
//  - jump_fcontext reloads MXCSR and the x87 control word on every jump
//    (ldmxcsr, fldcw: slow microcoded instructions). Both are callee-saved,
//    so we save them too, but reload them only when the two sides differ,
//    which in practice is never.
//  - jump_fcontext lives in libboost_context.so: every switch went through
//    the PLT.
// The routine is entered with push + jmp and leaves with an indirect jmp,
// never call/ret: a call on one stack matched by a ret on another leaves the
// CPU's return-stack predictor out of step, and every return after a switch
// mispredicts (measured: a switch_to round trip 82 ns against 42 ns).
//
// moss_swap (in context.hpp): %rdi = where to store the suspended stack
// pointer, %rsi = the stack pointer to resume; the resume address is on top
// of the stack. The saved frame, from the stored stack pointer up: MXCSR (4 bytes), x87
// control word (2 bytes, padded to 8), r15, r14, r13, r12, rbx, rbp, resume
// address. (Read back as one 8-byte word, the two narrower stores stall
// store forwarding: measured 19 ns a switch_to round trip against 11.5.)
// moss_start: where a new context's frame resumes first. context_prepare()
// leaves the function to run in r12 and its argument in rbx.
asm(R"(
  .pushsection .text
  .p2align 4
  .type moss_start,@function
moss_start:
  movq %rbx, %rdi
  call *%r12
  ud2
  .size moss_start, .-moss_start
  .popsection
)");

extern "C" [[gnu::visibility("hidden")]] char moss_start[];
#else
inline bc::transfer_t enter(bc::fcontext_t to, void* data) noexcept { return bc::jump_fcontext(to, data); }
#endif

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

#ifndef MOSS_OWN_SWITCH
inline void land(bc::transfer_t t, context_state& self) noexcept {
  auto* j = static_cast<jump*>(t.data);
  j->from->fctx = t.fctx;
  sanitizer_finish(self, *j->from);
}
#endif

// A new greenlet's first code on its own stack: it starts with no errno and
// no exception being handled, whatever the thread had.
[[noreturn]] void start_greenlet(context_state& self) noexcept {
  context_thread_slots& ts = context_here();
  ts.eh[0] = nullptr;
  ts.eh[1] = nullptr;
  *ts.err = 0;
  self.entry(self.entry_arg);
  std::abort();  // entry() must leave with context_exit()
}

#ifdef MOSS_OWN_SWITCH
void start_own(context_state* self) noexcept { start_greenlet(*self); }
#else
void trampoline(bc::transfer_t t) noexcept {
  auto* j = static_cast<jump*>(t.data);
  context_state& self = *j->to;
  land(t, self);
  start_greenlet(self);
}
#endif

}  // namespace

// The C++ runtime keeps a per-thread stack of caught exceptions (two words:
// caughtExceptions, uncaughtExceptions). A greenlet suspended inside a catch
// block must get its own back, or std::rethrow / `throw;` act on another's.
// Both live at fixed addresses for a thread's life; looking them up costs a
// call each (__errno_location, __cxa_get_globals), so each thread caches them.
[[gnu::tls_model("initial-exec")]] constinit thread_local context_thread_slots context_slots{nullptr, nullptr};

context_thread_slots& context_slots_init() noexcept {
  context_slots.err = &errno;
  context_slots.eh = reinterpret_cast<void**>(__cxxabiv1::__cxa_get_globals());
  return context_slots;
}

void context_init_root(context_state& c) noexcept {
#ifdef MOSS_TSAN
  c.tsan_fiber = __tsan_get_current_fiber();
#endif
  (void)c;
}

namespace {

// Stack colouring: every stack is mapped at a page boundary, so without an
// offset the hot top frames of all greenlets share the same few cache sets
// and evict one another when many greenlets take turns. Each new context
// starts its frames one of 32 cache lines (at most 2 KiB, or 1/128 of a small
// stack) below the top, in turn. Measured on a ring of 1,000 tasks that
// yield in turn, run against the shared library built with and without:
// 13.8–20.3 ns a switch with, 17.4–22.8 ns without in one stretch, 28.4–31.2
// against 32.0–34.7 ns in a slower one; no change at 3,000 tasks. Parked
// tasks' memory is unchanged (an offset under 2 KiB plus a parked task's
// ~800 B of frames stays in one page).
[[gnu::tls_model("initial-exec")]] constinit thread_local unsigned next_colour = 0;

std::size_t colour_offset(std::size_t size) noexcept {
  constexpr std::size_t line = 64, colours = 32;
  std::size_t step = std::min(line, size / (128 * colours) / 16 * 16);
  return (next_colour++ % colours) * step;
}

}  // namespace

void context_prepare(context_state& c, char* lo, std::size_t size, void (*entry)(void*), void* arg) noexcept {
  c.entry = entry;
  c.entry_arg = arg;
  c.stack_bottom = lo;
  c.stack_size = size;
  char* hi = lo + size - colour_offset(size);
#ifdef MOSS_OWN_SWITCH
  // The frame moss_swap resumes (see above), at the 16-byte aligned top:
  // after it, the stack pointer is that top, as moss_start's call needs.
  auto top = reinterpret_cast<std::uintptr_t>(hi) & ~std::uintptr_t{15};
  auto* frame = reinterpret_cast<std::uint64_t*>(top) - 8;
  std::uint32_t mxcsr = 0;
  std::uint16_t fpucw = 0;
  asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr), "=m"(fpucw));
  frame[0] = mxcsr | std::uint64_t{fpucw} << 32;
  frame[1] = frame[2] = frame[3] = 0;                            // r15, r14, r13
  frame[4] = reinterpret_cast<std::uint64_t>(&start_own);         // r12
  frame[5] = reinterpret_cast<std::uint64_t>(&c);                 // rbx
  frame[6] = 0;                                                   // rbp
  frame[7] = reinterpret_cast<std::uint64_t>(&moss_start[0]);     // resume address
  c.fctx = frame;
#else
  c.fctx = bc::make_fcontext(hi, static_cast<std::size_t>(hi - lo), &trampoline);
#endif
#ifdef MOSS_TSAN
  if (c.tsan_fiber == nullptr) c.tsan_fiber = __tsan_create_fiber(0);
#endif
}

#ifdef MOSS_OWN_SWITCH
// context_switch() is inline in context.hpp.

void context_exit(context_state& from, context_state& to) noexcept {
  context_swap(&from.fctx, to.fctx);
  std::abort();
}
#else
void context_switch(context_state& from, context_state& to, const context_thread_slots&) noexcept {
  save_thread_state(from);
  jump j{&from, &to};
  sanitizer_start(from, to, false);
  bc::transfer_t t = enter(to.fctx, &j);
  land(t, from);
  restore_thread_state(from);
}

void context_exit(context_state& from, context_state& to) noexcept {
  jump j{&from, &to};
  sanitizer_start(from, to, true);
  enter(to.fctx, &j);
  std::abort();
}
#endif

// 40 lines (2.5 KiB) cover a blocking read's frames in the preload and in
// moss-httpd (10,000 connections, side by side: 12 lines were enough for
// blocking_hello but not for the preload's deeper frames; 64 and 96 gained
// nothing more). Unrolled: as a loop, three instructions a line. (No test
// for a null fctx: GCC 12 then dropped the prefetches altogether.)
void context_prefetch(const context_state& c) noexcept {
  constexpr int lines = 40;
  const char* sp = static_cast<const char*>(c.fctx);
#pragma GCC unroll 40
  for (int line = 0; line < lines; ++line) __builtin_prefetch(sp + 64 * line);
}

void context_release(context_state& c) noexcept {
#ifdef MOSS_TSAN
  if (c.tsan_fiber != nullptr && c.entry != nullptr) __tsan_destroy_fiber(c.tsan_fiber);
#endif
  c.tsan_fiber = nullptr;
}

}  // namespace moss::detail

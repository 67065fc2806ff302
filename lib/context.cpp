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
// Both live at fixed addresses for a thread's life; looking them up costs a
// call each (__errno_location, __cxa_get_globals), so each thread caches them.
struct thread_slots {
  int* err;
  void** eh;
};
[[gnu::tls_model("initial-exec")]] thread_local thread_slots slots{nullptr, nullptr};

inline thread_slots& here() noexcept {
  if (slots.err == nullptr) [[unlikely]] {
    slots.err = &errno;
    slots.eh = reinterpret_cast<void**>(__cxxabiv1::__cxa_get_globals());
  }
  return slots;
}

inline void save_thread_state(context_state& c) noexcept {
  thread_slots& t = here();
  c.saved_errno = *t.err;
  c.eh_globals[0] = t.eh[0];
  c.eh_globals[1] = t.eh[1];
}

inline void restore_thread_state(const context_state& c) noexcept {
  thread_slots& t = here();
  t.eh[0] = c.eh_globals[0];
  t.eh[1] = c.eh_globals[1];
  *t.err = c.saved_errno;
}

#if defined(__x86_64__) && defined(__ELF__) && !defined(MOSS_ASAN) && !defined(MOSS_TSAN)
// enter() is Boost's jump_fcontext entered with push + jmp instead of call.
//
// Why: jump_fcontext leaves with `jmp *%r8`, not `ret`. Entered by `call`, each
// switch leaves an entry on the CPU's return-stack predictor that no `ret`
// consumes, so every return after a switch is mispredicted (measured: a
// switch_to round trip 82 ns against 8 ns for back-to-back raw jumps).
// Pushing the resume address ourselves keeps the predictor balanced. To the
// compiler this is a call: every caller-saved register is clobbered;
// callee-saved ones are preserved by jump_fcontext itself. rbx keeps our
// stack pointer across the jump, below the red zone and 16-byte aligned as at
// a call.
inline bc::transfer_t enter(bc::fcontext_t to, void* data) noexcept {
  void* fctx;
  void* vp;
  asm volatile(
      "movq %%rsp, %%rbx\n\t"
      "subq $128, %%rsp\n\t"
      "andq $-16, %%rsp\n\t"
      "leaq 1f(%%rip), %%rcx\n\t"
      "pushq %%rcx\n\t"
      "jmp jump_fcontext@PLT\n"
      "1:\n\t"
      "movq %%rbx, %%rsp\n\t"
      : "=a"(fctx), "=d"(vp), "+D"(to), "+S"(data)
      :
      : "rbx", "rcx", "r8", "r9", "r10", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
        "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "st", "st(1)",
        "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)");
  return bc::transfer_t{fctx, vp};
}
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

inline void land(bc::transfer_t t, context_state& self) noexcept {
  auto* j = static_cast<jump*>(t.data);
  j->from->fctx = t.fctx;
  sanitizer_finish(self, *j->from);
}

void trampoline(bc::transfer_t t) noexcept {
  auto* j = static_cast<jump*>(t.data);
  context_state& self = *j->to;
  land(t, self);
  thread_slots& ts = here();
  ts.eh[0] = nullptr;
  ts.eh[1] = nullptr;
  *ts.err = 0;
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

void context_release(context_state& c) noexcept {
#ifdef MOSS_TSAN
  if (c.tsan_fiber != nullptr && c.entry != nullptr) __tsan_destroy_fiber(c.tsan_fiber);
#endif
  c.tsan_fiber = nullptr;
}

}  // namespace moss::detail

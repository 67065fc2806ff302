// context.hpp: machine context switching, the only layer that knows about
// Boost.Context. It also carries what must follow a greenlet rather than the
// OS thread across a switch: errno, the C++ runtime's caught-exception stack,
// and the AddressSanitizer / ThreadSanitizer fiber annotations.
#pragma once

#include <moss/detail/context_state.hpp>

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

// Our own x86-64 switch (context.cpp) unless a sanitizer needs Boost.Context's
// annotated path; meson.build mirrors this test to decide whether Boost.Context
// is a dependency at all.
#if defined(__x86_64__) && defined(__ELF__) && !defined(MOSS_ASAN) && !defined(MOSS_TSAN)
#define MOSS_OWN_SWITCH 1
#endif

namespace moss::detail {

// context_init_root() prepares c to describe the thread's own stack.
void context_init_root(context_state& c) noexcept;

// context_prepare() makes c start entry(arg) on [lo, lo + size) at its first
// switch. The stack must stay mapped until context_release().
void context_prepare(context_state& c, char* lo, std::size_t size, void (*entry)(void*), void* arg) noexcept;

// context_prefetch() asks the caches for the top of a suspended context's
// stack, which resuming it reads first (the switch frame, then the frames it
// suspended in and the caller's locals above them), ahead of the resume. For
// a greenlet woken after a long wait: with thousands suspended, these lines
// have left the cache, and fetched one at a time as the resume reaches them
// each is a miss. c must be suspended. Out of line: called only then, and
// forty prefetches inline would crowd the switch paths.
void context_prefetch(const context_state& c) noexcept;

struct context_thread_slots;

// context_switch() suspends `from` (which must be running) and resumes `to`;
// it returns when some greenlet switches back to `from`. `here` is the
// calling thread's context_slots (context_here()), passed in by a caller that
// keeps it at hand. With our own switch it is inline (below): the caller's
// frame is the one suspended, and the switch costs no call and no return.
#ifndef MOSS_OWN_SWITCH
void context_switch(context_state& from, context_state& to, const context_thread_slots& here) noexcept;
#endif

// context_exit() is the last switch of a finished greenlet: `from` is never
// resumed, so its sanitizer state is discarded.
[[noreturn]] void context_exit(context_state& from, context_state& to) noexcept;

// context_release() frees per-context sanitizer resources.
void context_release(context_state& c) noexcept;

// Where this thread's errno and the C++ runtime's two words of caught-
// exception state live (fixed for a thread's life; see context.cpp).
struct context_thread_slots {
  int* err;
  void** eh;
};
[[gnu::tls_model("initial-exec")]] extern constinit thread_local context_thread_slots context_slots;
// context_slots_init() fills in context_slots on a thread's first switch.
context_thread_slots& context_slots_init() noexcept;

inline context_thread_slots& context_here() noexcept {
  if (context_slots.err == nullptr) [[unlikely]]
    return context_slots_init();
  return context_slots;
}

#ifdef MOSS_OWN_SWITCH
// moss_swap (the rationale and the frame layout are in context.cpp). Defined
// here, in a COMDAT group with hidden visibility, so that every shared object
// whose code switches inline (libmoss, libmoss_patch) has its own copy and
// reaches it without a PLT.
asm(R"(
  .pushsection .text.moss_swap,"axG",@progbits,moss_swap,comdat
  .p2align 4
  .weak moss_swap
  .hidden moss_swap
  .type moss_swap,@function
moss_swap:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movl (%rsp), %r8d
  movzwl 4(%rsp), %r9d
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  cmpl (%rsp), %r8d
  jne 2f
  cmpw 4(%rsp), %r9w
  jne 2f
1:
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  popq %rcx
  jmp *%rcx
2:
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  jmp 1b
  .size moss_swap, .-moss_swap
  .popsection
)");

// context_swap() suspends the caller into *save and resumes the stack pointer
// `to` (moss_swap in context.cpp). To the compiler it is a call that clobbers
// every caller-saved register; moss_swap preserves the callee-saved ones. It
// steps below the red zone first and back after (moss_swap needs no
// alignment). The routine is entered with push + jmp, never call: a call on
// one stack matched by a return on another would leave the CPU's
// return-stack predictor out of step.
inline void context_swap(void** save, void* to) noexcept {
  asm volatile(
      "leaq -128(%%rsp), %%rsp\n\t"
      "leaq 1f(%%rip), %%rcx\n\t"
      "pushq %%rcx\n\t"
      "jmp moss_swap\n"
      "1:\n\t"
      "leaq 128(%%rsp), %%rsp\n\t"
      : "+D"(save), "+S"(to)
      :
      : "rax", "rcx", "rdx", "r8", "r9", "r10", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
        "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "st",
        "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)");
}

// errno and the caught-exception stack follow the greenlet, not the thread:
// they are kept on the suspended stack, in the caller's frame, and read back
// from there (the same thread: greenlets never migrate).
inline void context_switch(context_state& from, context_state& to, const context_thread_slots& here) noexcept {
  int saved_errno = *here.err;
  void* eh[2];
  __builtin_memcpy(eh, here.eh, sizeof eh);
  context_swap(&from.fctx, to.fctx);
  __builtin_memcpy(here.eh, eh, sizeof eh);
  *here.err = saved_errno;
}
#endif

}  // namespace moss::detail

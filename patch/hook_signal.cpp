// hook_signal.cpp: knowing when we run inside a signal handler.
//
// A hook called from a signal handler must not wait on the hub (the hub's
// structures may be half-updated by the code the signal interrupted), so
// sigaction() and signal() install the user's handler behind a trampoline
// that counts signal_depth. The user sees their own handler in oldact.
//
// The table of user handlers is written only when a handler is installed.
// Installing SIG_DFL or SIG_IGN (or a query) leaves it alone: the kernel's
// action is then no longer the trampoline, so the stale entry is never
// called, and an old action is read from the kernel (the table only fills in
// the handler behind a trampoline). That matters in a vfork child, which
// shares its parent's memory: the SIG_DFL/SIG_IGN resets it makes before exec
// (gdb's, a shell's) change only its own kernel actions and leave the parent's
// handlers in place. Installing a handler in a vfork child is not supported
// (POSIX allows only exec and _exit there): it would replace the parent's
// table entry. A fork child has its own copy of the table, as of its kernel
// actions.
#include "hooks.hpp"
#include "real.hpp"

#include <atomic>
#include <cerrno>
#include <csignal>

namespace moss::patch {
namespace {

MOSS_REAL(sigaction, int (*)(int, const struct sigaction*, struct sigaction*))

using info_handler = void (*)(int, siginfo_t*, void*);

struct user_handler {
  std::atomic<void*> fn{nullptr};
  std::atomic<bool> siginfo{false};
};
user_handler handlers[NSIG];
std::atomic<unsigned> caught{0};

void trampoline(int sig, siginfo_t* info, void* uc) {
  int saved = errno;
  ++signal_depth;
  void* fn = handlers[sig].fn.load(std::memory_order_acquire);
  if (fn != nullptr) {
    if (handlers[sig].siginfo.load(std::memory_order_relaxed)) reinterpret_cast<info_handler>(fn)(sig, info, uc);
    else reinterpret_cast<void (*)(int)>(fn)(sig);
  }
  --signal_depth;
  caught.fetch_add(1, std::memory_order_release);
  errno = saved;
}

bool wrappable(int sig, const struct sigaction* act) {
  if (sig <= 0 || sig >= NSIG || act == nullptr) return false;
  if ((act->sa_flags & SA_SIGINFO) != 0) return act->sa_sigaction != nullptr;
  return act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN && act->sa_handler != SIG_ERR;
}

// Show the user's handler, not our trampoline, in what the kernel returned.
void unwrap(struct sigaction* old, void* prev_fn, bool prev_siginfo) {
  if (old == nullptr || old->sa_sigaction != &trampoline) return;
  if (prev_siginfo) {
    old->sa_sigaction = reinterpret_cast<info_handler>(prev_fn);
  } else {
    old->sa_flags &= ~SA_SIGINFO;
    old->sa_handler = reinterpret_cast<void (*)(int)>(prev_fn);
  }
}

}  // namespace

unsigned signals_caught() noexcept { return caught.load(std::memory_order_acquire); }

}  // namespace moss::patch

using namespace moss::patch;

extern "C" int sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  bool in_range = sig > 0 && sig < NSIG;
  void* prev_fn = in_range ? handlers[sig].fn.load() : nullptr;
  bool prev_siginfo = in_range && handlers[sig].siginfo.load();
  if (!wrappable(sig, act)) {
    int r = real_sigaction()(sig, act, old);
    if (r == 0) unwrap(old, prev_fn, prev_siginfo);
    return r;
  }
  struct sigaction wrapped = *act;
  bool siginfo = (act->sa_flags & SA_SIGINFO) != 0;
  void* fn = siginfo ? reinterpret_cast<void*>(act->sa_sigaction) : reinterpret_cast<void*>(act->sa_handler);
  handlers[sig].siginfo.store(siginfo);
  handlers[sig].fn.store(fn, std::memory_order_release);
  wrapped.sa_sigaction = &trampoline;
  wrapped.sa_flags |= SA_SIGINFO;
  int r = real_sigaction()(sig, &wrapped, old);
  if (r != 0) {
    handlers[sig].siginfo.store(prev_siginfo);
    handlers[sig].fn.store(prev_fn);
    return r;
  }
  unwrap(old, prev_fn, prev_siginfo);
  return r;
}

// signal() with glibc's BSD semantics: restartable, the signal blocked while
// its handler runs. Routed through our sigaction so it gets the trampoline.
extern "C" sighandler_t signal(int sig, sighandler_t handler) {
  struct sigaction act {};
  struct sigaction old {};
  act.sa_handler = handler;
  act.sa_flags = SA_RESTART;
  sigemptyset(&act.sa_mask);
  if (sig > 0 && sig < NSIG) sigaddset(&act.sa_mask, sig);
  if (sigaction(sig, &act, &old) != 0) return SIG_ERR;
  return old.sa_handler;
}

// backtrace.cpp: native backtraces of greenlets (see backtrace.hpp).
//
// The frame walk reads memory with process_vm_readv on our own process, so a
// frame pointer that leads to an unmapped page ends the walk with EFAULT
// instead of a crash; where that call is refused (a seccomp filter), only
// frames inside the greenlet's own mapped stack are read.
#include "debug/backtrace.hpp"
#include "debug/elf_symbols.hpp"

#include "core/sys.hpp"

#include <moss/detail/greenlet_impl.hpp>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cxxabi.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <execinfo.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

namespace moss::detail {

namespace {

// read_safely() copies n bytes at addr; false if they are not all mapped.
bool read_safely(std::uintptr_t addr, void* out, std::size_t n, bool stack_known) noexcept {
  static std::atomic<bool> vm_read_works{true};
  if (vm_read_works.load(std::memory_order_relaxed)) {
    iovec local{out, n};
    iovec remote{reinterpret_cast<void*>(addr), n};
    long r = sys::call(SYS_process_vm_readv, sys::call(SYS_getpid), sys::ptr_arg(&local), 1, sys::ptr_arg(&remote), 1, 0);
    if (r == static_cast<long>(n)) return true;
    if (r >= 0 || (errno != ENOSYS && errno != EPERM)) return false;  // partly or not mapped
    vm_read_works.store(false, std::memory_order_relaxed);
  }
  if (!stack_known) return false;  // no bounds to trust
  std::memcpy(out, reinterpret_cast<const void*>(addr), n);
  return true;
}

}  // namespace

int saved_frames(const greenlet_impl* g, void** pcs, int max) noexcept {
#if defined(__x86_64__)
  // The saved frame, from the saved stack pointer up (moss_swap in
  // context.cpp; Boost's jump_fcontext on x86-64 stores the same eight
  // words): MXCSR + x87 control word, r15..r12 and rbx (in either order),
  // rbp, the resume address.
  auto sp = reinterpret_cast<std::uintptr_t>(g->ctx_.fctx);
  if (sp == 0 || max <= 0) return 0;
  bool known = g->stack_.lo != nullptr;
  std::uintptr_t lo = known ? reinterpret_cast<std::uintptr_t>(g->stack_.lo) : sp;
  std::uintptr_t hi = known ? lo + g->stack_.size : UINTPTR_MAX;
  constexpr std::uintptr_t max_frame = 64 << 20;  // a frame larger than this is garbage
  if (sp < lo || sp > hi - 64 || sp % 8 != 0) return 0;
  std::uint64_t frame[8];
  if (!read_safely(sp, frame, sizeof frame, known)) return 0;
  int n = 0;
  pcs[n++] = reinterpret_cast<void*>(frame[7]);
  std::uintptr_t fp = frame[6];
  std::uintptr_t floor = sp + sizeof frame;
  while (n < max) {
    if (fp < floor || fp > hi - 16 || fp % 8 != 0 || fp - floor > max_frame) break;
    std::uint64_t link[2];  // the caller's frame pointer, the return address
    if (!read_safely(fp, link, sizeof link, known)) break;
    if (link[1] < 4096) break;  // the outermost frame (moss_start's zero)
    pcs[n++] = reinterpret_cast<void*>(link[1]);
    floor = fp + sizeof link;
    fp = link[0];
  }
  return n;
#else
  (void)g;
  (void)pcs;
  (void)max;
  return 0;
#endif
}

void append_frames(std::string& out, void* const* pcs, int n, const char* indent) {
  for (int i = 0; i < n; ++i) {
    auto pc = reinterpret_cast<std::uintptr_t>(pcs[i]);
    char line[96];
    std::snprintf(line, sizeof line, "%s#%-2d 0x%012lx ", indent, i, static_cast<unsigned long>(pc));
    out += line;
    Dl_info info{};
    // A return address may be the first byte after the function that made
    // the call (a call to a noreturn function ends it): look up the call.
    if (dladdr(reinterpret_cast<void*>(pc - (i == 0 ? 0 : 1)), &info) == 0) {
      out += "?\n";
      continue;
    }
    std::string symbol = info.dli_sname != nullptr ? info.dli_sname : std::string();
    auto start = reinterpret_cast<std::uintptr_t>(info.dli_saddr);
    if (symbol.empty()) {
      // Not exported: the file's .symtab may still name it. The main
      // program's dli_fname is argv[0], which a chdir may have broken.
      const char* file = info.dli_fname != nullptr && info.dli_fname[0] == '/' ? info.dli_fname : "/proc/self/exe";
      symbol = elf_function(file, reinterpret_cast<std::uintptr_t>(info.dli_fbase), pc - (i == 0 ? 0 : 1), &start);
    }
    if (!symbol.empty()) {
      int status = 0;
      char* plain = abi::__cxa_demangle(symbol.c_str(), nullptr, nullptr, &status);
      std::string name = status == 0 && plain != nullptr ? plain : symbol;
      std::free(plain);
      if (name.size() > 160) name = name.substr(0, 157) + "...";
      out += name;
      std::snprintf(line, sizeof line, "+0x%lx", static_cast<unsigned long>(pc - start));
      out += line;
    } else {
      std::snprintf(line, sizeof line, "?? (+0x%lx)", static_cast<unsigned long>(pc - reinterpret_cast<std::uintptr_t>(info.dli_fbase)));
      out += line;
    }
    if (info.dli_fname != nullptr && *info.dli_fname != '\0') {
      const char* base = std::strrchr(info.dli_fname, '/');
      out += " in ";
      out += base != nullptr ? base + 1 : info.dli_fname;
    }
    out += '\n';
  }
}

// ---- the backtrace signal ----------------------------------------------------

namespace {

struct sigaction previous_action {};
char cookie;                           // si_value of the signals we send
std::atomic<bool> finished{false};     // the handler has written its frames
std::atomic<bool> installed{false};

void pass_on(int sig, siginfo_t* si, void* uc) noexcept {
  if ((previous_action.sa_flags & SA_SIGINFO) != 0) {
    if (previous_action.sa_sigaction != nullptr) previous_action.sa_sigaction(sig, si, uc);
  } else if (previous_action.sa_handler == SIG_DFL) {
    // What the signal would have done without moss (end the process):
    // delivered again, with the old disposition, once this handler returns.
    ::sigaction(sig, &previous_action, nullptr);
    sys::call(SYS_tgkill, sys::call(SYS_getpid), sys::call(SYS_gettid), sig);
  } else if (previous_action.sa_handler != SIG_IGN) {
    previous_action.sa_handler(sig);
  }
}

// on_backtrace_signal() runs on the blocked thread. backtrace() was called
// once before (libgcc is loaded), so it takes no lock; backtrace_symbols_fd
// writes without allocating.
void on_backtrace_signal(int sig, siginfo_t* si, void* uc) noexcept {
  int saved = errno;
  if (si != nullptr && si->si_code == SI_QUEUE && si->si_pid == static_cast<pid_t>(sys::call(SYS_getpid)) &&
      si->si_value.sival_ptr == &cookie) {
    void* pcs[64];
    int n = backtrace(pcs, 64);
    if (n > 1) backtrace_symbols_fd(pcs + 1, n - 1, STDERR_FILENO);  // from the signal frame down
    finished.store(true, std::memory_order_release);
  } else {
    pass_on(sig, si, uc);
  }
  errno = saved;
}

}  // namespace

bool backtrace_signal_install() noexcept {
  if (installed.load(std::memory_order_relaxed)) return true;
  void* warm[2];
  backtrace(warm, 2);  // loads libgcc_s now, not in the handler
  struct sigaction act {};
  act.sa_sigaction = &on_backtrace_signal;
  sigemptyset(&act.sa_mask);
  act.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  if (::sigaction(backtrace_signal(), &act, &previous_action) != 0) return false;
  installed.store(true, std::memory_order_relaxed);
  return true;
}

namespace {

void say(const std::string& text) noexcept { sys::write_stderr(text.data(), text.size()); }

// task_file() reads /proc/self/task/<tid>/<name> into buf (NUL-terminated).
bool task_file(int tid, const char* name, char* buf, std::size_t size) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/self/task/%d/%s", tid, name);
  int fd = static_cast<int>(sys::call(SYS_openat, AT_FDCWD, sys::ptr_arg(path), O_RDONLY | O_CLOEXEC));
  if (fd < 0) return false;
  long n = sys::read(fd, buf, size - 1);
  sys::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  return true;
}

// in_kernel() says whether thread tid sleeps in the kernel (state S or D),
// and if so gives the system call, its stack pointer and its address.
bool in_kernel(int tid, long* nr, std::uintptr_t* sp, std::uintptr_t* pc) noexcept {
  char buf[512];
  if (!task_file(tid, "stat", buf, sizeof buf)) return false;
  const char* close = std::strrchr(buf, ')');  // the name may hold anything
  if (close == nullptr || (close[2] != 'S' && close[2] != 'D')) return false;
  if (!task_file(tid, "syscall", buf, sizeof buf)) return false;
  unsigned long a[6];
  unsigned long s = 0, p = 0;
  if (std::sscanf(buf, "%ld %lx %lx %lx %lx %lx %lx %lx %lx", nr, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &s, &p) != 9)
    return false;
  *sp = s;
  *pc = p;
  return *nr >= 0;
}

// called_from() says whether the code just before pc ends with a call
// instruction (e8 rel32, or ff /2 through a register or memory).
bool called_from(std::uintptr_t pc) noexcept {
  unsigned char b[7];
  if (pc < 4096 || !read_safely(pc - 7, b, sizeof b, false)) return false;
  auto indirect = [&](int at) { return b[at] == 0xff && (b[at + 1] & 0x38) == 0x10; };
  return b[2] == 0xe8 || indirect(5) || indirect(4) || indirect(1);
}

// scan() is the backtrace of a thread stopped in a system call, which has no
// frame pointer to start from: the words above its stack pointer that are
// return addresses (just after a call, inside a named function). Stale
// frames can show up; none is missed that frames are kept for.
int scan(std::uintptr_t sp, std::uintptr_t pc, void** pcs, int max) noexcept {
  int n = 0;
  pcs[n++] = reinterpret_cast<void*>(pc);
  static std::uintptr_t words[8192];  // 64 KiB of stack; only the monitor thread calls this
  std::size_t got = 0;
  for (; got < 8192; got += 8)  // small steps: the stack may end a few words up
    if (!read_safely(sp + got * 8, words + got, 8 * 8, false)) break;
  for (std::size_t i = 0; i < got && n < max; ++i) {
    Dl_info info{};
    if (words[i] < 4096 || dladdr(reinterpret_cast<void*>(words[i] - 1), &info) == 0 || info.dli_sname == nullptr)
      continue;
    if (called_from(words[i])) pcs[n++] = reinterpret_cast<void*>(words[i]);
  }
  return n;
}

}  // namespace

void thread_backtrace(int tid) noexcept {
  char line[256];
  long nr = 0;
  std::uintptr_t sp = 0, pc = 0;
  if (in_kernel(tid, &nr, &sp, &pc)) {
    // Not signalled: the handler's return would end a call like nanosleep or
    // poll with EINTR, changing what the program does.
    std::snprintf(line, sizeof line,
                  "moss: monitor: thread %d is blocked in system call %ld; its stack, scanned for return addresses "
                  "(newest first; stale frames may show):\n",
                  tid, nr);
    try {
      std::string out = line;
      void* pcs[48];
      int n = scan(sp, pc, pcs, 48);
      append_frames(out, pcs, n, "  ");
      say(out);
    } catch (...) {
    }
    return;
  }
  std::snprintf(line, sizeof line, "moss: monitor: native backtrace of thread %d, newest frame first:\n", tid);
  sys::write_stderr(line, std::strlen(line));
  const char* why = nullptr;
  struct sigaction now {};
  if (!installed.load(std::memory_order_relaxed)) {
    why = "the backtrace signal's handler is not installed";
  } else if (::sigaction(backtrace_signal(), nullptr, &now) != 0 || (now.sa_flags & SA_SIGINFO) == 0 ||
             now.sa_sigaction != &on_backtrace_signal) {
    why = "the program installed its own handler for SIGRTMAX-2, the signal moss uses for this";
  } else {
    finished.store(false, std::memory_order_relaxed);
    siginfo_t info{};
    info.si_signo = backtrace_signal();
    info.si_code = SI_QUEUE;
    info.si_pid = static_cast<pid_t>(sys::call(SYS_getpid));
    info.si_uid = static_cast<uid_t>(sys::call(SYS_getuid));
    info.si_value.sival_ptr = &cookie;
    if (sys::call(SYS_rt_tgsigqueueinfo, info.si_pid, tid, backtrace_signal(), sys::ptr_arg(&info)) != 0) {
      why = "the thread could not be signalled";
    } else {
      why = "the thread did not run the signal's handler within 1 s (is the signal blocked there?)";
      timespec step{0, 1000000};
      for (int i = 0; i < 1000 && why != nullptr; ++i) {
        if (finished.load(std::memory_order_acquire)) why = nullptr;
        else sys::call(SYS_nanosleep, sys::ptr_arg(&step), 0);
      }
    }
  }
  if (why != nullptr) {
    std::snprintf(line, sizeof line, "moss: monitor: no backtrace: %s\n", why);
    sys::write_stderr(line, std::strlen(line));
  }
}

}  // namespace moss::detail

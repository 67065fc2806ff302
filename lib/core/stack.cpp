// stack.cpp: mapping, guarding, pooling stacks; diagnosing overflows.
#include "core/stack.hpp"

#include "core/config.hpp"

#include "core/sys.hpp"
#include "core/thread_counter.hpp"

#include <moss/error.hpp>
#include <moss_config.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>
#include <new>
#include <system_error>

#include <sys/mman.h>

// gcc says __SANITIZE_ADDRESS__, clang (14) only __has_feature.
#if defined(__SANITIZE_ADDRESS__)
#define MOSS_STACK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MOSS_STACK_ASAN 1
#endif
#endif
#ifdef MOSS_STACK_ASAN
#include <sanitizer/asan_interface.h>
#endif

#if MOSS_HAVE_VALGRIND_H
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace moss::detail {
namespace {

constexpr std::size_t page_size = 4096;
// 64 KiB of guard: a frame of up to 64 KiB compiled without
// -fstack-clash-protection still lands in the guard rather than in the stack
// mapped below (with MADV_GUARD_INSTALL that is often another greenlet's).
// Guard pages cost address space only, never memory.
constexpr std::size_t guard_size = 16 * page_size;
constexpr std::size_t min_stack = 16 * 1024;
constexpr std::size_t max_stack = std::size_t{1} << 30;
constexpr std::size_t pool_limit = 1024;  // pooled stacks per thread

// Stacks handed out and not released, for leak checks (thread_counter.hpp).
struct in_use_tag {};
using in_use = thread_counter<in_use_tag>;
std::atomic<int> guard_kind{0};  // 0 unknown, 1 madvise, 2 mprotect
std::atomic<overflow_describer> describer{nullptr};

std::size_t round_up(std::size_t n) { return (n + page_size - 1) & ~(page_size - 1); }

void unmap(stack_area& s) noexcept {
#if MOSS_HAVE_VALGRIND_H
  if (s.valgrind_id != 0) VALGRIND_STACK_DEREGISTER(s.valgrind_id);
#endif
#ifdef MOSS_STACK_ASAN
  // ASan's shadow outlives the mapping (sys::munmap is no libc call it
  // sees): the redzones of frames that never returned would poison
  // whatever is mapped here next, a new stack's first frame included.
  __asan_unpoison_memory_region(s.lo, s.size);
#endif
  sys::munmap(s.mapping, s.mapping_size);
}

// Per-thread pool of default-size stacks: a LIFO array grown on demand. It
// is trivially destructible and constant-initialised, so reaching it costs no
// TLS guard; a drainer registered when the array is first made unmaps what is
// left at thread exit and closes the pool (stacks released later are unmapped).
struct stack_pool {
  stack_area* items;
  std::size_t count;
  std::size_t capacity;
  bool closed;
};
[[gnu::tls_model("initial-exec")]] constinit thread_local stack_pool pool{};

struct pool_drainer {
  ~pool_drainer() {
    pool.closed = true;
    for (std::size_t i = 0; i < pool.count; ++i) unmap(pool.items[i]);
    delete[] pool.items;
    pool.items = nullptr;
    pool.count = pool.capacity = 0;
  }
};

// pool_room() makes room for one more pooled stack; false if it cannot.
bool pool_room() noexcept {
  if (pool.count < pool.capacity) return true;
  if (pool.closed || pool.capacity == pool_limit) return false;
  std::size_t cap = pool.capacity == 0 ? 16 : std::min(pool.capacity * 2, pool_limit);
  auto* items = new (std::nothrow) stack_area[cap];
  if (items == nullptr) return false;
  if (pool.items == nullptr) {
    static thread_local pool_drainer drainer;
    (void)drainer;
  }
  std::copy(pool.items, pool.items + pool.count, items);
  delete[] pool.items;
  pool.items = items;
  pool.capacity = cap;
  return true;
}

// take_pooled() hands out the most recently pooled stack. Under
// AddressSanitizer its shadow is cleared first: the greenlet that ran on it
// died inside frames that never returned, and their redzones would otherwise
// poison the frames of the next greenlet to use it. Under Valgrind it is
// made addressable again: memcheck marked the frames its last greenlet
// popped as inaccessible, and the next one's first frame (context_prepare)
// is written there.
stack_area take_pooled() noexcept {
  stack_area s = pool.items[--pool.count];
#ifdef MOSS_STACK_ASAN
  __asan_unpoison_memory_region(s.lo, s.size);
#endif
#if MOSS_HAVE_VALGRIND_H
  (void)VALGRIND_MAKE_MEM_UNDEFINED(s.lo, s.size);
#endif
  return s;
}

// default_stack_size() once computed, so the hot paths skip its guard.
constinit std::atomic<std::size_t> default_size_cache{0};

void install_guard(char* mapping) {
  int kind = guard_kind.load(std::memory_order_relaxed);
  if (kind != 2) {
    if (sys::madvise(mapping, guard_size, MADV_GUARD_INSTALL) == 0) {
      guard_kind.store(1, std::memory_order_relaxed);
      return;
    }
    if (errno != EINVAL) throw std::system_error(errno, std::generic_category(), "moss: madvise(MADV_GUARD_INSTALL)");
    guard_kind.store(2, std::memory_order_relaxed);
  }
  if (sys::mprotect(mapping, guard_size, PROT_NONE) != 0)
    throw std::system_error(errno, std::generic_category(), "moss: mprotect(guard page)");
}

// --- overflow diagnosis --------------------------------------------------

struct sigaction previous_segv;
std::atomic<bool> handler_installed{false};

void append(char*& p, char* end, const char* s) {
  while (*s != '\0' && p < end) *p++ = *s++;
}

void append_number(char*& p, char* end, std::size_t n) {
  char digits[24];
  int i = 0;
  do {
    digits[i++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  while (i > 0 && p < end) *p++ = digits[--i];
}

void on_segv(int sig, siginfo_t* info, void* uctx) {
  overflow_describer d = describer.load(std::memory_order_relaxed);
  std::size_t size = 0;
  const char* name = d != nullptr ? d(info->si_addr, &size) : nullptr;
  if (name != nullptr) {
    char msg[512];
    char* p = msg;
    char* end = msg + sizeof msg - 1;
    append(p, end, "moss: stack overflow in greenlet \"");
    append(p, end, name);
    append(p, end, "\" (");
    append_number(p, end, size / 1024);
    append(p, end, " KiB stack); raise MOSS_STACK_SIZE or spawn with a larger stack_size\n");
    sys::write_stderr(msg, static_cast<std::size_t>(p - msg));
    signal(SIGABRT, SIG_DFL);
    abort();
  }
  // Not ours: behave as if we had never been here.
  if ((previous_segv.sa_flags & SA_SIGINFO) != 0 && previous_segv.sa_sigaction != nullptr) {
    previous_segv.sa_sigaction(sig, info, uctx);
    return;
  }
  if (previous_segv.sa_handler != SIG_DFL && previous_segv.sa_handler != SIG_IGN) {
    previous_segv.sa_handler(sig);
    return;
  }
  // Default action: reinstall it and return; the faulting instruction runs
  // again and the kernel delivers the default SIGSEGV (core dump).
  signal(SIGSEGV, SIG_DFL);
}

void install_handler() {
  if (handler_installed.exchange(true)) return;
  struct sigaction sa {};
  sa.sa_sigaction = &on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &previous_segv);
}

// The handler needs a stack of its own: the faulting one is exhausted.
// sigaltstack is per thread; installed on each thread that makes stacks.
struct alt_stack {
  void* mem = nullptr;
  std::size_t size = 64 * 1024;
  alt_stack() {
    ::stack_t current{};
    if (sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE) == 0) return;  // keep the user's
    mem = sys::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
      mem = nullptr;
      return;
    }
    ::stack_t ss{};
    ss.ss_sp = mem;
    ss.ss_size = size;
    sigaltstack(&ss, nullptr);
  }
  ~alt_stack() {
    if (mem == nullptr) return;
    ::stack_t ss{};
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, nullptr);
    sys::munmap(mem, size);
  }
};

void ensure_overflow_diagnosis() {
  static thread_local alt_stack alt;
  (void)alt;
  install_handler();
}

}  // namespace

std::size_t parse_stack_size(const char* text) {
  auto fail = [&](const char* why) -> std::size_t {
    throw moss::error(std::string("moss: bad MOSS_STACK_SIZE \"") + text + "\": " + why +
                      "; accepted: a byte count, or a number with K/KB/KiB, M/MB/MiB or G/GB/GiB (e.g. 262144, 256K, 1M), "
                      "from 16K to 1G");
  };
  const char* p = text;
  if (!std::isdigit(static_cast<unsigned char>(*p))) return fail("not a number");
  std::size_t n = 0;
  for (; std::isdigit(static_cast<unsigned char>(*p)); ++p) {
    if (n > max_stack) return fail("too large");
    n = n * 10 + static_cast<std::size_t>(*p - '0');
  }
  std::string unit(p);
  for (auto& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::size_t mult = 0;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k" || unit == "kb" || unit == "kib") mult = 1024;
  else if (unit == "m" || unit == "mb" || unit == "mib") mult = 1024 * 1024;
  else if (unit == "g" || unit == "gb" || unit == "gib") mult = 1024 * 1024 * 1024;
  else return fail("unknown unit");
  if (n > max_stack / mult) return fail("too large");
  n *= mult;
  if (n < min_stack) return fail("too small");
  if (n > max_stack) return fail("too large");
  return round_up(n);
}

std::size_t default_stack_size() {
  std::size_t cached = default_size_cache.load(std::memory_order_relaxed);
  if (cached != 0) [[likely]]
    return cached;
  static const std::size_t size = [] {
    const char* env = env_value("MOSS_STACK_SIZE");
    if (env == nullptr) return std::size_t{256 * 1024};
    try {
      return parse_stack_size(env);
    } catch (const moss::error& e) {
      bad_environment(e);  // exits: see config.hpp
    }
  }();
  default_size_cache.store(size, std::memory_order_relaxed);
  return size;
}

stack_area stack_allocate(std::size_t size) {
  // Only default-size stacks are pooled, so a pooled one means the default
  // size is known and valid.
  if (size == 0 && pool.count != 0) [[likely]] {
    in_use::add(1);
    return take_pooled();
  }
  std::size_t def = default_stack_size();
  // A request above the limit is refused rather than cut down: the caller
  // asked for that much because its code needs it.
  if (size > max_stack)
    throw moss::error("moss: a stack_size of " + std::to_string(size) + " bytes is too large (at most 1G)");
  size = size == 0 ? def : round_up(std::max(size, min_stack));
  if (size == def && pool.count != 0) {
    in_use::add(1);
    return take_pooled();
  }
  ensure_overflow_diagnosis();
  std::size_t total = size + guard_size;
  void* m = sys::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "moss: mmap of a greenlet stack");
  stack_area s;
  s.mapping = static_cast<char*>(m);
  s.mapping_size = total;
  s.lo = s.mapping + guard_size;
  s.size = size;
  try {
    install_guard(s.mapping);
  } catch (...) {
    sys::munmap(m, total);
    throw;
  }
#if MOSS_HAVE_VALGRIND_H
  // Valgrind must know the region is a stack, or every switch looks like a
  // wild stack-pointer jump.
  if (RUNNING_ON_VALGRIND) s.valgrind_id = VALGRIND_STACK_REGISTER(s.lo, s.lo + s.size);
#endif
  in_use::add(1);
  return s;
}

void stack_release(stack_area& s) noexcept {
  if (s.mapping == nullptr) return;
  in_use::add(-1);
  if (s.size == default_size_cache.load(std::memory_order_relaxed) && pool_room()) {
    pool.items[pool.count++] = s;
    s = stack_area{};
    return;
  }
  unmap(s);
  s = stack_area{};
}

std::size_t stacks_in_use() noexcept { return static_cast<std::size_t>(in_use::total()); }

const char* guard_mode() noexcept {
  switch (guard_kind.load(std::memory_order_relaxed)) {
    case 1: return "madvise";
    case 2: return "mprotect";
    default: return "unknown";
  }
}

void set_overflow_describer(overflow_describer d) noexcept { describer.store(d, std::memory_order_relaxed); }

}  // namespace moss::detail

// sys.hpp: the kernel calls lib/ makes, as raw system calls.
//
// Invariant: nothing in lib/ calls a libc symbol that patch/ may interpose
// (read, write, close, epoll_wait, ...). A linked patch layer would otherwise
// recurse into itself. syscall(2) itself is never interposed.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <ctime>

#include <sys/syscall.h>
#include <unistd.h>

struct epoll_event;

namespace moss::detail::sys {

inline long call(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) noexcept {
  return ::syscall(nr, a, b, c, d, e, f);
}

inline void* mmap(void* addr, std::size_t len, int prot, int flags, int fd, long off) noexcept {
  return reinterpret_cast<void*>(call(SYS_mmap, reinterpret_cast<long>(addr), static_cast<long>(len), prot, flags, fd, off));
}
inline int munmap(void* addr, std::size_t len) noexcept {
  return static_cast<int>(call(SYS_munmap, reinterpret_cast<long>(addr), static_cast<long>(len)));
}
inline int mprotect(void* addr, std::size_t len, int prot) noexcept {
  return static_cast<int>(call(SYS_mprotect, reinterpret_cast<long>(addr), static_cast<long>(len), prot));
}
inline int madvise(void* addr, std::size_t len, int advice) noexcept {
  return static_cast<int>(call(SYS_madvise, reinterpret_cast<long>(addr), static_cast<long>(len), advice));
}
inline long read(int fd, void* buf, std::size_t n) noexcept {
  return call(SYS_read, fd, reinterpret_cast<long>(buf), static_cast<long>(n));
}
inline long write(int fd, const void* buf, std::size_t n) noexcept {
  return call(SYS_write, fd, reinterpret_cast<long>(buf), static_cast<long>(n));
}
inline int close(int fd) noexcept { return static_cast<int>(call(SYS_close, fd)); }
inline int eventfd(unsigned initval, int flags) noexcept { return static_cast<int>(call(SYS_eventfd2, initval, flags)); }
inline int epoll_create1(int flags) noexcept { return static_cast<int>(call(SYS_epoll_create1, flags)); }
inline int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) noexcept {
  return static_cast<int>(call(SYS_epoll_ctl, epfd, op, fd, reinterpret_cast<long>(ev)));
}
// epoll_pwait2 takes a timespec, so timers keep sub-millisecond precision.
// Returns -1/ENOSYS on kernels before 5.11; the poller then falls back.
inline int epoll_pwait2(int epfd, epoll_event* evs, int max, const timespec* timeout) noexcept {
#ifdef SYS_epoll_pwait2
  return static_cast<int>(call(SYS_epoll_pwait2, epfd, reinterpret_cast<long>(evs), max,
                               reinterpret_cast<long>(timeout), 0, 8));
#else
  (void)epfd; (void)evs; (void)max; (void)timeout;
  errno = ENOSYS;
  return -1;
#endif
}
inline int epoll_wait(int epfd, epoll_event* evs, int max, int timeout_ms) noexcept {
  return static_cast<int>(call(SYS_epoll_pwait, epfd, reinterpret_cast<long>(evs), max, timeout_ms, 0, 8));
}

// write_all_stderr() writes a message with one raw write; safe in a signal handler.
inline void write_stderr(const char* s, std::size_t n) noexcept {
  while (n > 0) {
    long r = write(2, s, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return;
    s += r;
    n -= static_cast<std::size_t>(r);
  }
}

}  // namespace moss::detail::sys

// sys.hpp: the kernel calls lib/ makes, as raw system calls.
//
// Invariant: nothing in lib/ calls a libc symbol that patch/ may interpose
// (read, write, close, epoll_wait, ...). A linked patch layer would otherwise
// recurse into itself. syscall(2) is interposed only for SYS_futex made by a
// green pthread (patch/hook_futex.cpp), which lib/ never makes; on x86-64
// lib/ does not even call it (call() below).
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <ctime>

#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

struct epoll_event;
struct iovec;
struct msghdr;
struct mmsghdr;
struct pollfd;
struct sockaddr;
struct stat;

namespace moss::detail::sys {

// call() makes system call nr and returns its result, or -1 with errno set,
// as syscall(2) does. On x86-64 it is the `syscall` instruction itself: under
// libmoss_preload.so libc's syscall() is interposed (patch/hook_futex.cpp),
// and every call of lib/ would go through that hook's check first.
#if defined(__x86_64__)
inline long call(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) noexcept {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long r;
  __asm__ volatile("syscall"
                   : "=a"(r)
                   : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  if (r < 0 && r > -4096) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return r;
}
#else
inline long call(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) noexcept {
  return ::syscall(nr, a, b, c, d, e, f);
}
#endif

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

// The io layer's calls (lib/io/io.cpp, lib/io/fd_table.cpp). Raw, so a linked
// patch layer that interposes the libc names never sees them.
static_assert(sizeof(long) == 8, "moss: lib/core/sys.hpp assumes a 64-bit kernel ABI");
inline long ptr_arg(const void* p) noexcept { return reinterpret_cast<long>(p); }
inline long readv(int fd, const iovec* iov, int n) noexcept { return call(SYS_readv, fd, ptr_arg(iov), n); }
inline long writev(int fd, const iovec* iov, int n) noexcept { return call(SYS_writev, fd, ptr_arg(iov), n); }
// preadv2/pwritev2 at the current position (offset -1) with RWF_* flags.
inline long preadv2(int fd, const iovec* iov, int n, int flags) noexcept { return call(SYS_preadv2, fd, ptr_arg(iov), n, -1, 0, flags); }
inline long pwritev2(int fd, const iovec* iov, int n, int flags) noexcept { return call(SYS_pwritev2, fd, ptr_arg(iov), n, -1, 0, flags); }
inline long recvfrom(int fd, void* buf, std::size_t n, int flags, sockaddr* from, socklen_t* len) noexcept {
  return call(SYS_recvfrom, fd, ptr_arg(buf), static_cast<long>(n), flags, ptr_arg(from), ptr_arg(len));
}
inline long sendto(int fd, const void* buf, std::size_t n, int flags, const sockaddr* to, socklen_t len) noexcept {
  return call(SYS_sendto, fd, ptr_arg(buf), static_cast<long>(n), flags, ptr_arg(to), static_cast<long>(len));
}
inline long recvmsg(int fd, msghdr* m, int flags) noexcept { return call(SYS_recvmsg, fd, ptr_arg(m), flags); }
inline long sendmsg(int fd, const msghdr* m, int flags) noexcept { return call(SYS_sendmsg, fd, ptr_arg(m), flags); }
inline int recvmmsg(int fd, mmsghdr* v, unsigned n, int flags, timespec* t) noexcept {
  return static_cast<int>(call(SYS_recvmmsg, fd, ptr_arg(v), n, flags, ptr_arg(t)));
}
inline int sendmmsg(int fd, mmsghdr* v, unsigned n, int flags) noexcept { return static_cast<int>(call(SYS_sendmmsg, fd, ptr_arg(v), n, flags)); }
inline int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) noexcept {
  return static_cast<int>(call(SYS_accept4, fd, ptr_arg(addr), ptr_arg(len), flags));
}
inline int connect(int fd, const sockaddr* addr, socklen_t len) noexcept {
  return static_cast<int>(call(SYS_connect, fd, ptr_arg(addr), static_cast<long>(len)));
}
inline int socket(int domain, int type, int proto) noexcept { return static_cast<int>(call(SYS_socket, domain, type, proto)); }
inline int socketpair(int domain, int type, int proto, int sv[2]) noexcept {
  return static_cast<int>(call(SYS_socketpair, domain, type, proto, ptr_arg(sv)));
}
inline int getsockopt(int fd, int level, int name, void* val, socklen_t* len) noexcept {
  return static_cast<int>(call(SYS_getsockopt, fd, level, name, ptr_arg(val), ptr_arg(len)));
}
inline int setsockopt(int fd, int level, int name, const void* val, socklen_t len) noexcept {
  return static_cast<int>(call(SYS_setsockopt, fd, level, name, ptr_arg(val), static_cast<long>(len)));
}
inline int fcntl(int fd, int cmd, long arg = 0) noexcept { return static_cast<int>(call(SYS_fcntl, fd, cmd, arg)); }
inline int ioctl(int fd, unsigned long req, void* arg) noexcept { return static_cast<int>(call(SYS_ioctl, fd, static_cast<long>(req), ptr_arg(arg))); }
inline int fstat(int fd, struct stat* st) noexcept { return static_cast<int>(call(SYS_fstat, fd, ptr_arg(st))); }
inline int ppoll(pollfd* fds, unsigned long n, const timespec* t) noexcept {
  return static_cast<int>(call(SYS_ppoll, ptr_arg(fds), static_cast<long>(n), ptr_arg(t), 0, 8));
}
inline long sendfile(int out, int in, off_t* off, std::size_t n) noexcept {
  return call(SYS_sendfile, out, in, ptr_arg(off), static_cast<long>(n));
}
inline int pipe2(int fds[2], int flags) noexcept { return static_cast<int>(call(SYS_pipe2, ptr_arg(fds), flags)); }
inline int dup(int fd) noexcept { return static_cast<int>(call(SYS_dup, fd)); }
inline int dup3(int from, int to, int flags) noexcept { return static_cast<int>(call(SYS_dup3, from, to, flags)); }

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

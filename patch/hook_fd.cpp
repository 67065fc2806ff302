// hook_fd.cpp: calls that make, change or close fds. They never wait, but
// they keep moss's fd table true: a closed fd wakes its waiters with EBADF,
// a fd made non-blocking by the user stays non-blocking to them, socket
// timeouts are honoured. These run on every thread (a plain thread may close
// a fd a greenlet waits on), except inside a signal handler.
// Meson builds with _FILE_OFFSET_BITS=64, which renames fcntl to fcntl64
// and sendfile to sendfile64 in the headers; we define both names ourselves.
#undef _FILE_OFFSET_BITS

#include "hooks.hpp"
#include "lock_wait.hpp"
#include "real.hpp"

#include <moss/io.hpp>

#include <cerrno>
#include <cstdarg>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace moss::patch {
namespace {

MOSS_REAL(close, int (*)(int))
MOSS_REAL(dup, int (*)(int))
MOSS_REAL(dup2, int (*)(int, int))
MOSS_REAL(dup3, int (*)(int, int, int))
MOSS_REAL(socket, int (*)(int, int, int))
MOSS_REAL(socketpair, int (*)(int, int, int, int*))
MOSS_REAL(pipe, int (*)(int*))
MOSS_REAL(pipe2, int (*)(int*, int))
MOSS_REAL(fcntl, int (*)(int, int, ...))
MOSS_REAL(fcntl64, int (*)(int, int, ...))
MOSS_REAL(ioctl, int (*)(int, unsigned long, ...))
MOSS_REAL(setsockopt, int (*)(int, int, int, const void*, socklen_t))

bool tracking() noexcept { return (enabled_families & (family_socket | family_poll)) != 0 && signal_depth == 0; }

void fresh(int fd) noexcept {
  if (fd >= 0 && tracking()) moss::io::notify_close(fd);
}

// after_fcntl() records what a successful fcntl changed.
int after_fcntl(int fd, int cmd, void* arg, int r) noexcept {
  if (r < 0 || !tracking()) return r;
  if (cmd == F_SETFL) moss::io::note_nonblocking(fd, (reinterpret_cast<long>(arg) & O_NONBLOCK) != 0);
  else if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) moss::io::notify_close(r);
  return r;
}

// lock_try_cmd() is the non-blocking form of a lock wait, or 0 for any
// other command.
int lock_try_cmd(int cmd) noexcept {
  switch (cmd) {
    case F_SETLKW: return F_SETLK;
#if F_SETLKW64 != F_SETLKW
    case F_SETLKW64: return F_SETLK64;
#endif
    case F_OFD_SETLKW: return F_OFD_SETLK;
    default: return 0;
  }
}

}  // namespace
}  // namespace moss::patch

using namespace moss::patch;

extern "C" {

int close(int fd) {
  if (tracking()) moss::io::notify_close(fd);
  return real_close()(fd);
}

int dup(int fd) {
  int r = real_dup()(fd);
  fresh(r);
  return r;
}

int dup2(int oldfd, int newfd) {
  if (oldfd != newfd && tracking()) moss::io::notify_close(newfd);
  int r = real_dup2()(oldfd, newfd);
  if (oldfd != newfd) fresh(r);
  return r;
}

int dup3(int oldfd, int newfd, int flags) {
  if (oldfd != newfd && tracking()) moss::io::notify_close(newfd);
  int r = real_dup3()(oldfd, newfd, flags);
  fresh(r);
  return r;
}

int socket(int domain, int type, int protocol) {
  int r = real_socket()(domain, type, protocol);
  fresh(r);
  return r;
}

int socketpair(int domain, int type, int protocol, int sv[2]) {
  int r = real_socketpair()(domain, type, protocol, sv);
  if (r == 0) {
    fresh(sv[0]);
    fresh(sv[1]);
  }
  return r;
}

int pipe(int fds[2]) {
  int r = real_pipe()(fds);
  if (r == 0) {
    fresh(fds[0]);
    fresh(fds[1]);
  }
  return r;
}

int pipe2(int fds[2], int flags) {
  int r = real_pipe2()(fds, flags);
  if (r == 0) {
    fresh(fds[0]);
    fresh(fds[1]);
  }
  return r;
}

// fcntl's third argument is an int or a pointer depending on cmd; like
// glibc, carry it as a pointer-sized value.
int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (int try_cmd = lock_try_cmd(cmd); try_cmd != 0 && cooperative(family_sleep))
    return wait_for_lock([&] { return real_fcntl()(fd, try_cmd, arg); });
  return after_fcntl(fd, cmd, arg, real_fcntl()(fd, cmd, arg));
}

int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (int try_cmd = lock_try_cmd(cmd); try_cmd != 0 && cooperative(family_sleep))
    return wait_for_lock([&] { return real_fcntl64()(fd, try_cmd, arg); });
  return after_fcntl(fd, cmd, arg, real_fcntl64()(fd, cmd, arg));
}

int ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  int r = real_ioctl()(fd, request, arg);
  if (r == 0 && request == FIONBIO && arg != nullptr && tracking())
    moss::io::note_nonblocking(fd, *static_cast<const int*>(arg) != 0);
  return r;
}

int setsockopt(int fd, int level, int optname, const void* optval, socklen_t optlen) {
  int r = real_setsockopt()(fd, level, optname, optval, optlen);
  if (r == 0 && level == SOL_SOCKET && (optname == SO_RCVTIMEO || optname == SO_SNDTIMEO) &&
      optlen >= static_cast<socklen_t>(sizeof(timeval)) && tracking())
    moss::io::note_timeout(fd, optname, *static_cast<const timeval*>(optval));
  return r;
}

}  // extern "C"

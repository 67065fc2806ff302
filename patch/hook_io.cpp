// hook_io.cpp: data transfer and connections, mapped onto moss::io.
//
// Each hook: outside a greenlet (or with the socket family off) the real
// libc function; inside, the moss::io call of the same signature. A kill or
// timeout while parked comes back as -1 with errno set (see hooks.hpp).
// Meson builds with _FILE_OFFSET_BITS=64, which renames fcntl to fcntl64
// and sendfile to sendfile64 in the headers; we define both names ourselves.
#undef _FILE_OFFSET_BITS

#include "hooks.hpp"
#include "real.hpp"

#include <moss/io.hpp>

#include <cerrno>
#include <exception>

#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

namespace moss::patch {
namespace {

MOSS_REAL(read, ssize_t (*)(int, void*, size_t))
MOSS_REAL(write, ssize_t (*)(int, const void*, size_t))
MOSS_REAL(readv, ssize_t (*)(int, const iovec*, int))
MOSS_REAL(writev, ssize_t (*)(int, const iovec*, int))
MOSS_REAL(recv, ssize_t (*)(int, void*, size_t, int))
MOSS_REAL(send, ssize_t (*)(int, const void*, size_t, int))
MOSS_REAL(recvfrom, ssize_t (*)(int, void*, size_t, int, sockaddr*, socklen_t*))
MOSS_REAL(sendto, ssize_t (*)(int, const void*, size_t, int, const sockaddr*, socklen_t))
MOSS_REAL(recvmsg, ssize_t (*)(int, msghdr*, int))
MOSS_REAL(sendmsg, ssize_t (*)(int, const msghdr*, int))
MOSS_REAL(recvmmsg, int (*)(int, mmsghdr*, unsigned, int, timespec*))
MOSS_REAL(sendmmsg, int (*)(int, mmsghdr*, unsigned, int))
MOSS_REAL(sendfile, ssize_t (*)(int, int, off_t*, size_t))
MOSS_REAL(accept, int (*)(int, sockaddr*, socklen_t*))
MOSS_REAL(accept4, int (*)(int, sockaddr*, socklen_t*, int))
MOSS_REAL(connect, int (*)(int, const sockaddr*, socklen_t))

}  // namespace
}  // namespace moss::patch

using namespace moss::patch;

#define MOSS_IO_HOOK(real_call, io_call) \
  if (!cooperative(family_socket)) return real_call; \
  return guarded([&] { return io_call; })

extern "C" {

ssize_t read(int fd, void* buf, size_t n) { MOSS_IO_HOOK(real_read()(fd, buf, n), moss::io::read(fd, buf, n)); }
ssize_t write(int fd, const void* buf, size_t n) { MOSS_IO_HOOK(real_write()(fd, buf, n), moss::io::write(fd, buf, n)); }
ssize_t readv(int fd, const iovec* iov, int cnt) { MOSS_IO_HOOK(real_readv()(fd, iov, cnt), moss::io::readv(fd, iov, cnt)); }
ssize_t writev(int fd, const iovec* iov, int cnt) { MOSS_IO_HOOK(real_writev()(fd, iov, cnt), moss::io::writev(fd, iov, cnt)); }
ssize_t recv(int fd, void* buf, size_t n, int flags) {
  MOSS_IO_HOOK(real_recv()(fd, buf, n, flags), moss::io::recv(fd, buf, n, flags));
}
ssize_t send(int fd, const void* buf, size_t n, int flags) {
  MOSS_IO_HOOK(real_send()(fd, buf, n, flags), moss::io::send(fd, buf, n, flags));
}
ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* src, socklen_t* len) {
  MOSS_IO_HOOK(real_recvfrom()(fd, buf, n, flags, src, len), moss::io::recvfrom(fd, buf, n, flags, src, len));
}
ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* dst, socklen_t len) {
  MOSS_IO_HOOK(real_sendto()(fd, buf, n, flags, dst, len), moss::io::sendto(fd, buf, n, flags, dst, len));
}
ssize_t recvmsg(int fd, msghdr* msg, int flags) { MOSS_IO_HOOK(real_recvmsg()(fd, msg, flags), moss::io::recvmsg(fd, msg, flags)); }
ssize_t sendmsg(int fd, const msghdr* msg, int flags) { MOSS_IO_HOOK(real_sendmsg()(fd, msg, flags), moss::io::sendmsg(fd, msg, flags)); }
int recvmmsg(int fd, mmsghdr* v, unsigned n, int flags, timespec* t) {
  MOSS_IO_HOOK(real_recvmmsg()(fd, v, n, flags, t), moss::io::recvmmsg(fd, v, n, flags, t));
}
int sendmmsg(int fd, mmsghdr* v, unsigned n, int flags) { MOSS_IO_HOOK(real_sendmmsg()(fd, v, n, flags), moss::io::sendmmsg(fd, v, n, flags)); }
ssize_t sendfile(int out, int in, off_t* off, size_t n) {
  MOSS_IO_HOOK(real_sendfile()(out, in, off, n), moss::io::sendfile(out, in, off, n));
}
// On 64-bit Linux off_t is 64 bits, so sendfile64 is the same call.
ssize_t sendfile64(int out, int in, off_t* off, size_t n) {
  MOSS_IO_HOOK(real_sendfile()(out, in, off, n), moss::io::sendfile(out, in, off, n));
}
int accept(int fd, sockaddr* a, socklen_t* len) { MOSS_IO_HOOK(real_accept()(fd, a, len), moss::io::accept(fd, a, len)); }
int accept4(int fd, sockaddr* a, socklen_t* len, int flags) {
  MOSS_IO_HOOK(real_accept4()(fd, a, len, flags), moss::io::accept4(fd, a, len, flags));
}
int connect(int fd, const sockaddr* a, socklen_t len) { MOSS_IO_HOOK(real_connect()(fd, a, len), moss::io::connect(fd, a, len)); }

// The fortified variants _FORTIFY_SOURCE builds call: check, then hook.
[[noreturn]] void __chk_fail(void);
ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  if (n > buflen) __chk_fail();
  return read(fd, buf, n);
}
ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  if (n > buflen) __chk_fail();
  return recv(fd, buf, n, flags);
}
ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* src, socklen_t* len) {
  if (n > buflen) __chk_fail();
  return recvfrom(fd, buf, n, flags, src, len);
}

}  // extern "C"

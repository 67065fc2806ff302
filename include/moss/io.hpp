/// @file
/// io.hpp: cooperative I/O on plain fds, without patching (gevent.socket's
/// role).
///
///   int fd = moss::io::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
///   char buf[4096];
///   ssize_t n = moss::io::read(fd, buf, sizeof buf);   // other greenlets run meanwhile
///   moss::io::write(fd, buf, n);
///   moss::io::close(fd);
///
/// Every call has the POSIX signature and conventions (-1 and errno) of the
/// call it is named after. Made by a greenlet on a thread whose hub exists
/// (the main greenlet included), a call that would block parks the greenlet
/// instead, and the hub runs others until the fd is ready. Made anywhere
/// else (a thread without a hub, code run by the hub itself) it is the plain
/// system call. The fd's own state is respected:
///
///  - a fd the user made non-blocking (O_NONBLOCK) fails with EAGAIN as
///    usual and never parks;
///  - SO_RCVTIMEO / SO_SNDTIMEO bound the wait; when they expire the call
///    fails with EAGAIN (connect: EINPROGRESS), as the kernel would;
///  - regular files are passed straight through: they block the thread
///    (the kernel has no readiness for them);
///  - closing a fd (moss::io::close, or notify_close before a real close)
///    wakes every greenlet waiting on it with EBADF;
///  - a fd the kernel will not let the hub watch (epoll_ctl fails: out of
///    memory, or fs.epoll.max_user_watches reached) fails a call that would
///    wait with ENOMEM, rather than block every greenlet of the hub.
///
/// moss never sets O_NONBLOCK on a file description for good: socket calls
/// use MSG_DONTWAIT, pipes and other fds use RWF_NOWAIT (or, where the
/// kernel lacks it, wait for readiness and then make a call that cannot
/// block for longer than the data already there), and only connect, accept
/// and sendfile on a blocking socket set O_NONBLOCK for the duration of the
/// one system call.
///
/// A call that parks may throw what every wait throws: moss::greenlet_exit
/// when the greenlet is killed, moss::timeout_error under a moss::timeout.
///
/// Kept per fd (in the calling thread's hub): the kind (socket, pipe, file,
/// other), the user's O_NONBLOCK, the socket timeouts, a generation. moss
/// learns a fd's kind with fstat the first time it sees it, and its flags and
/// timeouts the first time a call would park, so fds made by libc or
/// inherited need no registration. Changes made after that behind moss's
/// back must be reported: note_nonblocking() after setting O_NONBLOCK by
/// fcntl or ioctl, note_timeout() after setsockopt(SO_RCVTIMEO/SO_SNDTIMEO),
/// notify_close() before closing a fd with ::close (moss::io::close does
/// it). The interposition layer (libmoss_patch) does all of this for a
/// program.
///
/// Limits: a close on one thread wakes greenlets waiting on the fd on other
/// hubs too, but asynchronously (through their cross-thread queue). A pipe
/// or tty read through the readiness path can still block the thread if
/// another process drains it between the readiness check and the read.
/// Fds numbered 2^24 and above pass through.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/timer.hpp>

#include <chrono>
#include <cstddef>

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>

namespace moss::io {

/// clock: the clock of deadlines.
using clock = std::chrono::steady_clock;

/// cooperative() is true when a call made here would park instead of
/// blocking: in a greenlet other than the hub's, on a thread with a hub.
MOSS_API bool cooperative() noexcept;

///@{
/// wait_readable() waits until fd is readable (or at end of file, hung up or
/// in error: a read would not block). Returns 0, or -1 with errno ETIMEDOUT
/// (the timeout passed), EBADF (fd is not open, or was closed while waiting).
/// A regular file is always ready. A negative timeout checks once; a huge
/// one waits forever.
MOSS_API int wait_readable(int fd);
MOSS_API int wait_readable(int fd, clock::time_point deadline);
template <class Rep, class Period>
int wait_readable(int fd, std::chrono::duration<Rep, Period> timeout) {
  return wait_readable(fd, detail::deadline_after(timeout));
}
///@}

///@{
/// wait_writable() is wait_readable() for output.
MOSS_API int wait_writable(int fd);
MOSS_API int wait_writable(int fd, clock::time_point deadline);
template <class Rep, class Period>
int wait_writable(int fd, std::chrono::duration<Rep, Period> timeout) {
  return wait_writable(fd, detail::deadline_after(timeout));
}
///@}

///@{
/// Data transfer: read(2), write(2), readv(2), writev(2), recv(2), send(2),
/// recvfrom(2), sendto(2), recvmsg(2), sendmsg(2), recvmmsg(2), sendmmsg(2),
/// sendfile(2). As in the kernel, a blocking write or send transfers everything
/// before it returns (less only on error or timeout), and recv with
/// MSG_WAITALL fills the buffer on a stream socket. MSG_DONTWAIT in flags
/// never parks. Only sendfile's out_fd is waited on.
MOSS_API ssize_t read(int fd, void* buf, std::size_t count);
MOSS_API ssize_t write(int fd, const void* buf, std::size_t count);
MOSS_API ssize_t readv(int fd, const iovec* iov, int iovcnt);
MOSS_API ssize_t writev(int fd, const iovec* iov, int iovcnt);
MOSS_API ssize_t recv(int fd, void* buf, std::size_t len, int flags);
MOSS_API ssize_t send(int fd, const void* buf, std::size_t len, int flags);
MOSS_API ssize_t recvfrom(int fd, void* buf, std::size_t len, int flags, sockaddr* src, socklen_t* addrlen);
MOSS_API ssize_t sendto(int fd, const void* buf, std::size_t len, int flags, const sockaddr* dest, socklen_t addrlen);
MOSS_API ssize_t recvmsg(int fd, msghdr* msg, int flags);
MOSS_API ssize_t sendmsg(int fd, const msghdr* msg, int flags);
MOSS_API int recvmmsg(int fd, mmsghdr* msgvec, unsigned int vlen, int flags, timespec* timeout);
MOSS_API int sendmmsg(int fd, mmsghdr* msgvec, unsigned int vlen, int flags);
MOSS_API ssize_t sendfile(int out_fd, int in_fd, off_t* offset, std::size_t count);
///@}

///@{
/// Connections: accept(2), accept4(2), connect(2). connect() with a timeout
/// gives up with ETIMEDOUT after it (the kernel may still complete the
/// attempt: close the socket); without one it waits as long as SO_SNDTIMEO
/// says (then EINPROGRESS), or forever.
MOSS_API int accept(int fd, sockaddr* addr, socklen_t* addrlen);
MOSS_API int accept4(int fd, sockaddr* addr, socklen_t* addrlen, int flags);
MOSS_API int connect(int fd, const sockaddr* addr, socklen_t addrlen);
MOSS_API int connect(int fd, const sockaddr* addr, socklen_t addrlen, clock::time_point deadline);
template <class Rep, class Period>
int connect(int fd, const sockaddr* addr, socklen_t addrlen, std::chrono::duration<Rep, Period> timeout) {
  return connect(fd, addr, addrlen, detail::deadline_after(timeout));
}
///@}

///@{
/// poll(2): parks until one of fds is ready or timeout_ms passes (negative:
/// forever). The deadline overload serves ppoll, select and epoll_wait.
/// Readiness is reported exactly as poll(2) reports it (the last check is a
/// real zero-timeout poll), but the wait itself is woken by input, output,
/// hang-up and error only: a fd polled for POLLPRI alone is seen only when
/// something else wakes the poll, or at its timeout.
MOSS_API int poll(pollfd* fds, nfds_t nfds, int timeout_ms);
MOSS_API int poll(pollfd* fds, nfds_t nfds, clock::time_point deadline);
///@}

///@{
/// Making and closing fds: socket(2), socketpair(2), pipe(2), pipe2(2),
/// dup(2), dup2(2), dup3(2), close(2). They never park; they keep what moss
/// knows about fds right (a new fd is recorded, a closed one forgotten and
/// its waiters woken with EBADF).
MOSS_API int socket(int domain, int type, int protocol);
MOSS_API int socketpair(int domain, int type, int protocol, int sv[2]);
MOSS_API int pipe(int fds[2]);
MOSS_API int pipe2(int fds[2], int flags);
MOSS_API int dup(int oldfd);
MOSS_API int dup2(int oldfd, int newfd);
MOSS_API int dup3(int oldfd, int newfd, int flags);
MOSS_API int close(int fd);
///@}

/// For code that changes fds behind moss's back (the interposition layer
/// above all). Any thread; none of them makes a system call on fd.
///
/// notify_close() must be called before fd is closed or replaced (close,
/// dup2/dup3 onto it): greenlets waiting on fd, on any hub, wake with EBADF,
/// fd leaves epoll, and a later fd with the same number starts afresh. Call
/// it too for a fd that was just created by a call moss did not see (the
/// number may be one moss still knows from before). Not async-signal-safe.
MOSS_API void notify_close(int fd) noexcept;
/// forget() drops what is known about fd, like notify_close(), for a fd
/// that was closed or replaced without it, or that was just created.
/// note_nonblocking() reports that O_NONBLOCK was set (on) or cleared on
/// fd's file description, by fcntl(F_SETFL) or ioctl(FIONBIO).
MOSS_API void note_nonblocking(int fd, bool on) noexcept;
/// note_timeout() reports setsockopt(fd, SOL_SOCKET, optname, &tv) for
/// optname SO_RCVTIMEO or SO_SNDTIMEO (others are ignored); a zero tv
/// means no timeout.
MOSS_API void note_timeout(int fd, int optname, const timeval& tv) noexcept;

}  // namespace moss::io

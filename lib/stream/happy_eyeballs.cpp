// happy_eyeballs.cpp: how connect_tcp() orders its addresses and races
// them (RFC 8305 §4 and §5).
//
// The race runs in the calling greenlet: each attempt is a socket whose
// connect the kernel carries on in the background, and one moss::io::poll
// waits for any of them to finish or for the next attempt to be due. No
// task is spawned, so nothing outlives the call: the sockets in flight
// belong to an in_flight object whose destructor closes them, whether the
// race is won, lost, or interrupted by a kill or a timeout.
#include <moss/stream.hpp>

#include <moss/io.hpp>

#include "core/sys.hpp"
#include "stream/happy_eyeballs.hpp"

#include <cerrno>
#include <system_error>

#include <poll.h>
#include <sys/ioctl.h>

namespace moss {

std::vector<dns::address> interleave_families(std::vector<dns::address> addresses) {
  if (addresses.empty()) return addresses;
  const int first = addresses.front().family;
  std::vector<dns::address> same, other;
  for (dns::address& a : addresses) (a.family == first ? same : other).push_back(std::move(a));
  std::vector<dns::address> out;
  out.reserve(addresses.size());
  for (std::size_t i = 0; i < same.size() || i < other.size(); ++i) {
    if (i < same.size()) out.push_back(same[i]);
    if (i < other.size()) out.push_back(other[i]);
  }
  return out;
}

namespace detail {

namespace {

// in_flight: the attempts whose connect is under way, as the pollfds that
// io::poll takes and the index of each one's address. It owns their
// sockets. Room for every address is reserved up front, so adding one
// never throws and never strands a socket.
class in_flight {
 public:
  explicit in_flight(std::size_t n) {
    fds_.reserve(n);
    index_.reserve(n);
  }
  in_flight(const in_flight&) = delete;
  in_flight& operator=(const in_flight&) = delete;
  ~in_flight() {
    for (const pollfd& p : fds_) io::close(p.fd);
  }

  bool empty() const noexcept { return fds_.empty(); }
  std::size_t size() const noexcept { return fds_.size(); }
  pollfd* fds() noexcept { return fds_.data(); }
  const pollfd& at(std::size_t k) const noexcept { return fds_[k]; }
  std::size_t index(std::size_t k) const noexcept { return index_[k]; }

  void add(int fd, std::size_t index) noexcept {
    fds_.push_back(pollfd{fd, POLLOUT, 0});
    index_.push_back(index);
  }
  // take() removes attempt k and hands its socket to the caller.
  int take(std::size_t k) noexcept {
    int fd = fds_[k].fd;
    fds_.erase(fds_.begin() + static_cast<std::ptrdiff_t>(k));
    index_.erase(index_.begin() + static_cast<std::ptrdiff_t>(k));
    return fd;
  }

 private:
  std::vector<pollfd> fds_;
  std::vector<std::size_t> index_;
};

// start() opens a socket for a and starts connecting it without waiting:
// O_NONBLOCK is on for the one connect call only (as moss::io does), so the
// socket handed out at the end is a plain blocking one and moss::io never
// saw it non-blocking. Returns the socket with err 0 (connected already) or
// EINPROGRESS, or -1 with err.
int start(const dns::address& a, int& err) noexcept {
  int fd = io::socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    err = errno;
    return -1;
  }
  int on = 1, off = 0;
  if (sys::ioctl(fd, FIONBIO, &on) != 0) {
    err = errno;
    io::close(fd);
    return -1;
  }
  err = sys::connect(fd, a.get(), a.length) == 0 ? 0 : errno;
  if (sys::ioctl(fd, FIONBIO, &off) != 0 && (err == 0 || err == EINPROGRESS)) err = errno;
  if (err == 0 || err == EINPROGRESS) return fd;
  io::close(fd);
  return -1;
}

// outcome() is how a finished connect ended: 0 or its error (SO_ERROR).
int outcome(int fd) noexcept {
  int err = 0;
  socklen_t len = sizeof err;
  if (sys::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

}  // namespace

race_result race_connect(const std::vector<dns::address>& addresses, std::chrono::milliseconds delay) {
  race_result r;
  r.tried.reserve(addresses.size());
  in_flight flight(addresses.size());
  std::size_t next = 0;
  io::clock::time_point next_start = io::clock::now();
  for (;;) {
    // Start attempts while one is due: the first at once, each next one
    // after the delay, or at once when an attempt has failed.
    while (next < addresses.size() && (flight.empty() || io::clock::now() >= next_start)) {
      std::size_t i = next++;
      r.tried.push_back(i);
      int err = 0;
      int fd = start(addresses[i], err);
      if (fd < 0) {
        r.err = err;
        continue;
      }
      if (err == 0) {  // connected at once; the others close with `flight`
        r.fd = fd;
        r.winner = i;
        return r;
      }
      flight.add(fd, i);
      next_start = io::clock::now() + delay;
    }
    if (flight.empty()) return r;  // every address failed
    io::clock::time_point until = next < addresses.size() ? next_start : detail::no_deadline;
    if (io::poll(flight.fds(), flight.size(), until) < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "moss::connect_tcp: waiting for the connection attempts");
    }
    for (std::size_t k = 0; k < flight.size();) {
      if (flight.at(k).revents == 0) {
        ++k;
        continue;
      }
      std::size_t i = flight.index(k);
      int fd = flight.take(k);
      int err = outcome(fd);
      if (err == 0) {
        r.fd = fd;
        r.winner = i;
        return r;
      }
      io::close(fd);
      r.err = err;
      next_start = io::clock::now();  // a failure lets the next address start now
    }
  }
}

}  // namespace detail
}  // namespace moss

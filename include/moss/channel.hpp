/// @file
/// channel.hpp: an unbuffered rendezvous between greenlets (gevent's
/// Channel, Go's unbuffered chan).
///
///   moss::channel<int> ch;
///   moss::spawn([&] { ch.send(42); });   // returns once a receiver has it
///   int v = ch.recv();                   // waits for a sender
///
/// Senders and receivers are each served in the order they came. A value
/// handed to a receiver that is killed before it runs goes to the next
/// receiver (or is kept for the next recv(): its sender has already
/// returned, so it must not be lost). After close(), send() throws
/// moss::error, blocked senders are woken with that error, and recv()
/// throws moss::channel_closed once no value is left. A channel belongs to
/// one thread's hub.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/handoff.hpp>
#include <moss/detail/timer.hpp>
#include <moss/detail/waiter.hpp>
#include <moss/error.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <utility>

namespace moss {

/// channel_closed is thrown by recv() on a closed channel with no value left.
class MOSS_API channel_closed : public error {
 public:
  channel_closed() : error("moss: recv from a closed channel") {}
  using error::error;
};

/// channel: an unbuffered channel of T: send() waits until a receiver takes the value; see channel.hpp.
template <class T>
class channel {
 public:
  /// value_type is T, the type sent.
  using value_type = T;

  channel() = default;
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;

  /// send() waits until a receiver has taken v. Throws moss::error if the
  /// channel is or gets closed first.
  void send(T v) { send_until(std::move(v), detail::no_deadline); }
  /// send(v, timeout) is send() giving up after timeout: false if nobody
  /// took v (it is dropped). A timeout <= 0 is try_send().
  template <class Rep, class Period>
  bool send(T v, std::chrono::duration<Rep, Period> timeout) {
    return send_until(std::move(v), detail::deadline_after(timeout));
  }
  /// try_send() hands v over only if a receiver is waiting now.
  bool try_send(T v) {
    check_open();
    return hand_to_receiver(v);
  }

  /// recv() waits for a sender and returns its value. Throws
  /// moss::channel_closed once the channel is closed and no value is left.
  T recv() { return *recv_until(detail::no_deadline); }
  /// recv(timeout) is recv() giving up after timeout (nullopt).
  template <class Rep, class Period>
  std::optional<T> recv(std::chrono::duration<Rep, Period> timeout) {
    return recv_until(detail::deadline_after(timeout));
  }
  /// try_recv() takes a value only if a sender is waiting now.
  std::optional<T> try_recv() { return take(); }

  ///@{
  /// close() stops further sends and wakes every blocked sender (moss::error)
  /// and receiver (moss::channel_closed). Closing twice is fine.
  void close() noexcept {
    closed_ = true;
    senders_.wake_all();
    receivers_.wake_all();
  }
  /// closed() is true once close() has been called.
  bool closed() const noexcept { return closed_; }
  ///@}

  /// senders_waiting() is the number of greenlets waiting in send().
  std::size_t senders_waiting() const noexcept { return senders_.size(); }
  /// receivers_waiting() is the number of greenlets waiting in receive().
  std::size_t receivers_waiting() const noexcept { return receivers_.size(); }

 private:
  /// A waiting sender's value sits here until a receiver takes it (then the
  /// optional is empty); a waiting receiver is handed its value here.
  struct slot_waiter : detail::waiter {
    std::optional<T> item;
  };

  void check_open() const {
    if (closed_) throw moss::error("moss: send on a closed channel");
  }

  bool hand_to_receiver(T& v) {
    auto* r = detail::wake_front<slot_waiter>(receivers_);
    if (r == nullptr) return false;
    r->item.emplace(std::move(v));
    return true;
  }

  bool send_until(T&& v, detail::time_point deadline) {
    check_open();
    if (hand_to_receiver(v)) return true;
    slot_waiter s;
    s.set_what("channel send");
    s.item.emplace(std::move(v));
    senders_.push_back(s);
    // Once woken, the value was taken (or the channel closed): a kill that
    // arrives after that is raised at the next wait, as usual.
    if (!s.wait(deadline)) return false;
    if (s.item) throw moss::error("moss: send on a closed channel");
    return true;
  }

  std::optional<T> take() {
    if (!returned_.empty()) {
      std::optional<T> v(std::move(returned_.front()));
      returned_.pop_front();
      return v;
    }
    auto* s = detail::wake_front<slot_waiter>(senders_);
    if (s == nullptr) return std::nullopt;
    std::optional<T> v(std::move(s->item));
    s->item.reset();
    return v;
  }

  std::optional<T> recv_until(detail::time_point deadline) {
    if (auto v = take()) return v;
    if (closed_) throw channel_closed();
    slot_waiter r;
    r.set_what("channel recv");
    receivers_.push_back(r);
    bool woken = detail::await_handoff(r, deadline, [&] {
      if (r.item && !hand_to_receiver(*r.item)) returned_.push_back(std::move(*r.item));
    });
    if (!woken) return std::nullopt;
    if (!r.item) throw channel_closed();
    return std::move(r.item);
  }

  /// Values whose receiver was killed before it ran; served before senders.
  std::deque<T> returned_;
  detail::waiter_list senders_;
  detail::waiter_list receivers_;
  bool closed_ = false;
};

}  // namespace moss

/// @file
/// signal.hpp: POSIX signals delivered as tasks on a hub (gevent's
/// signal_handler, asyncio's loop.add_signal_handler).
///
///   auto on_int = moss::signal_handler(SIGINT, [&] { for (auto& t : work) t.kill(false); });
///
/// The process-wide handler only records the signal and wakes the hub; f
/// then runs in a task of its own on the hub of the thread that registered
/// it, where it may do anything a task may. While a hub has handlers it
/// waits for signals rather than report loop_exit.
#pragma once

#include <moss/detail/export.hpp>

#include <csignal>  // SIGINT, SIGTERM...: what callers pass
#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

namespace moss {

namespace detail {

struct signal_registration;
struct signal_access;

/// signal_fn: a handler, called once per delivery (it may be move-only).
class MOSS_API signal_fn {
 public:
  virtual ~signal_fn() = default;
  virtual void call() = 0;
};

template <class F>
class signal_fn_of final : public signal_fn {
 public:
  template <class G>
  explicit signal_fn_of(G&& f) : f_(std::forward<G>(f)) {}
  void call() override { std::invoke(f_); }

 private:
  F f_;
};

MOSS_API signal_registration* add_signal_handler(int signum, std::shared_ptr<signal_fn> fn);
MOSS_API void remove_signal_handler(signal_registration* r) noexcept;

}  // namespace detail

/// signal_handle: a registered handler. Destroying it (or cancel()) removes
/// the handler; when the last handler for a signal goes, the disposition the
/// signal had before the first one is restored. May be cancelled from any
/// thread.
class [[nodiscard]] signal_handle {
 public:
  signal_handle() noexcept = default;
  /// A moved-from handle holds no handler.
  signal_handle(signal_handle&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  /// Assignment cancels the handler this held and takes o's.
  signal_handle& operator=(signal_handle&& o) noexcept {
    if (this != &o) {
      cancel();
      r_ = std::exchange(o.r_, nullptr);
    }
    return *this;
  }
  ~signal_handle() { cancel(); }

  ///@{
  /// cancel() removes the handler; later calls do nothing. A task already
  /// started for an earlier delivery still runs.
  void cancel() noexcept {
    if (r_ != nullptr) detail::remove_signal_handler(std::exchange(r_, nullptr));
  }
  /// active() is true until cancel().
  bool active() const noexcept { return r_ != nullptr; }
  ///@}

  /// For the library's own layers: adopt a registration.

 private:
  friend struct detail::signal_access;
  explicit signal_handle(detail::signal_registration* r) noexcept : r_(r) {}
  detail::signal_registration* r_ = nullptr;
};

namespace detail {
// signal_access wraps a registration in its handle (signal_handler()).
struct signal_access {
  static signal_handle handle(signal_registration* r) noexcept { return signal_handle(r); }
};
}  // namespace detail

/// signal_handler() arranges for f() to run in a new task on this thread's
/// hub each time signal signum arrives (deliveries that arrive together may
/// be merged, as the kernel merges them). Several handlers for one signal,
/// on one hub or several, all run. Throws moss::error for a signal that
/// cannot be handled this way (SIGKILL, SIGSTOP, and the fault signals
/// SIGSEGV, SIGBUS, SIGFPE, SIGILL, which must be handled where they occur).
template <class F>
  requires std::is_invocable_v<std::decay_t<F>&>
signal_handle signal_handler(int signum, F&& f) {
  return detail::signal_access::handle(
      detail::add_signal_handler(signum, std::make_shared<detail::signal_fn_of<std::decay_t<F>>>(std::forward<F>(f))));
}

}  // namespace moss

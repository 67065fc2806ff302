/// @file
/// error.hpp: the exceptions moss throws.
#pragma once

#include <moss/detail/export.hpp>

#include <stdexcept>
#include <string>

namespace moss {

/// error is thrown for misuse of the library: switching to a dead greenlet,
/// joining yourself, blocking from the hub, a malformed MOSS_* setting.
class MOSS_API error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// loop_exit is thrown into a waiting greenlet when nothing can ever wake it
/// (no other runnable greenlet, no timer, no watched fd, no thread job, no
/// hub::keep_alive()): waiting would hang. The hub's message names the
/// greenlet and what it waits on.
class MOSS_API loop_exit : public error {
 public:
  loop_exit() : error("moss: this operation would block forever (no other greenlet, timer or fd can wake it)") {}
  using error::error;
};

class timeout;

/// timeout_error is raised by a moss::timeout whose deadline passed while its
/// greenlet was blocked, and by with_timeout() and as_completed(). source()
/// is the moss::timeout that raised it (null for the others), so code inside
/// nested timeouts can tell whose it is: `if (e.source() == &t)`.
class MOSS_API timeout_error : public error {
 public:
  /// timeout_error(what, source): source is the moss::timeout that expired, if any.
  explicit timeout_error(const std::string& what, const timeout* source = nullptr) : error(what), source_(source) {}
  /// source() is the moss::timeout that raised this error, or null.
  const timeout* source() const noexcept { return source_; }

 private:
  const timeout* source_;
};

/// greenlet_exit is raised inside a greenlet that is being killed, so that its
/// stack unwinds and destructors run. It deliberately does not derive from
/// std::exception: `catch (const std::exception&)` in user code must not swallow
/// a kill. A greenlet_exit that escapes a greenlet is not an error.
class MOSS_API greenlet_exit {
 public:
  /// what() is "moss::greenlet_exit".
  const char* what() const noexcept { return "moss::greenlet_exit"; }
};

}  // namespace moss

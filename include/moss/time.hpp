/// @file
/// time.hpp: sleeping and yielding cooperatively.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/timer.hpp>

#include <chrono>

namespace moss {

/// yield() lets every other ready greenlet run once, then continues
/// (gevent.sleep(0)). Throws greenlet_exit if the caller was killed.
MOSS_API void yield();

namespace detail {
MOSS_API void sleep_until(time_point deadline);
}

/// sleep() suspends the calling greenlet for d while the hub runs others.
/// A zero or negative d is yield().
template <class Rep, class Period>
void sleep(std::chrono::duration<Rep, Period> d) {
  if (d <= d.zero()) {
    yield();
    return;
  }
  detail::sleep_until(detail::deadline_after(d));
}

}  // namespace moss

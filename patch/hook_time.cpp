// hook_time.cpp: sleep, usleep, nanosleep, clock_nanosleep.
#include "hooks.hpp"
#include "real.hpp"

#include <moss/detail/waiter.hpp>
#include <moss/time.hpp>

#include <cerrno>
#include <chrono>
#include <ctime>

#include <unistd.h>

namespace moss::patch {
namespace {

MOSS_REAL(nanosleep, int (*)(const timespec*, timespec*))
MOSS_REAL(clock_nanosleep, int (*)(clockid_t, int, const timespec*, timespec*))
MOSS_REAL(usleep, int (*)(useconds_t))
MOSS_REAL(sleep, unsigned (*)(unsigned))

using namespace std::chrono;

bool valid(const timespec& ts) noexcept { return ts.tv_sec >= 0 && ts.tv_nsec >= 0 && ts.tv_nsec < 1'000'000'000; }

nanoseconds to_duration(const timespec& ts) noexcept {
  // Past ~290 years nanoseconds overflow; saturate (deadline_after does too).
  if (ts.tv_sec >= 9'000'000'000) return nanoseconds::max();
  return seconds(ts.tv_sec) + nanoseconds(ts.tv_nsec);
}

// sleep_for() waits cooperatively; returns 0, or the errno of an interruption
// (and the time left in `left`).
int sleep_for(nanoseconds d, nanoseconds* left = nullptr) {
  at_cancel_point();  // a cancellation point for green pthreads (hooks.hpp)
  detail::time_point deadline = detail::deadline_after(d);
  try {
    if (d <= nanoseconds::zero()) moss::yield();
    else detail::sleep_until(deadline);
    return 0;
  } catch (...) {
    if (left != nullptr) *left = std::max(nanoseconds::zero(), duration_cast<nanoseconds>(deadline - detail::clock::now()));
    int err = interrupted(std::current_exception());
    at_cancel_point();
    return err;
  }
}

void fill(timespec* ts, nanoseconds d) noexcept {
  if (ts == nullptr) return;
  ts->tv_sec = static_cast<time_t>(d.count() / 1'000'000'000);
  ts->tv_nsec = static_cast<long>(d.count() % 1'000'000'000);
}

bool clock_supported(clockid_t c) noexcept {
  return c == CLOCK_REALTIME || c == CLOCK_MONOTONIC || c == CLOCK_BOOTTIME || c == CLOCK_TAI;
}

}  // namespace
}  // namespace moss::patch

using namespace moss::patch;

extern "C" int nanosleep(const timespec* req, timespec* rem) {
  if (!cooperative(family_sleep)) return real_nanosleep()(req, rem);
  if (req == nullptr) {
    errno = EFAULT;
    return -1;
  }
  if (!valid(*req)) {
    errno = EINVAL;
    return -1;
  }
  std::chrono::nanoseconds left{};
  if (int err = sleep_for(to_duration(*req), &left)) {
    fill(rem, left);
    errno = err;
    return -1;
  }
  return 0;
}

extern "C" int clock_nanosleep(clockid_t clock, int flags, const timespec* req, timespec* rem) {
  if (!cooperative(family_sleep) || !clock_supported(clock)) return real_clock_nanosleep()(clock, flags, req, rem);
  if (req == nullptr) return EFAULT;
  if (!valid(*req)) return EINVAL;
  std::chrono::nanoseconds d = to_duration(*req);
  if ((flags & TIMER_ABSTIME) != 0) {
    timespec now{};
    clock_gettime(clock, &now);
    d = d - to_duration(now);
    if (d <= std::chrono::nanoseconds::zero()) return 0;  // already past, as the kernel does
  }
  std::chrono::nanoseconds left{};
  if (int err = sleep_for(d, &left)) {
    if ((flags & TIMER_ABSTIME) == 0) fill(rem, left);
    return err;
  }
  return 0;
}

extern "C" int usleep(useconds_t us) {
  if (!cooperative(family_sleep)) return real_usleep()(us);
  if (int err = sleep_for(std::chrono::microseconds(us))) {
    errno = err;
    return -1;
  }
  return 0;
}

extern "C" unsigned sleep(unsigned s) {
  if (!cooperative(family_sleep)) return real_sleep()(s);
  std::chrono::nanoseconds left{};
  if (int err = sleep_for(std::chrono::seconds(s), &left)) {
    errno = err;
    return static_cast<unsigned>(std::chrono::ceil<std::chrono::seconds>(left).count());
  }
  return 0;
}

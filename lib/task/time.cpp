// time.cpp: sleep and yield.
#include <moss/time.hpp>

#include "core/hub.hpp"

#include <moss/detail/waiter.hpp>
#include <moss/error.hpp>

#include <utility>

namespace moss {

void yield() {
  detail::hub_core& h = detail::hub_core::current();
  detail::greenlet_impl* g = h.thread().current;
  if (g->role_ == detail::greenlet_impl::role::hub)
    throw moss::error("moss: a blocking call was made on the hub greenlet; code run by the hub must not wait");
  if (g->pending_) std::rethrow_exception(std::exchange(g->pending_, nullptr));
  h.schedule(g);
  h.switch_out();
  g->scheduled_ = false;
  if (g->pending_) std::rethrow_exception(std::exchange(g->pending_, nullptr));
}

namespace detail {

void sleep_until(time_point deadline) {
  waiter w;
  w.set_what("sleep");
  w.wait(deadline);
}

}  // namespace detail
}  // namespace moss

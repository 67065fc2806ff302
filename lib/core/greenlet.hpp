// greenlet.hpp (internal): per-thread greenlet state shared with the hub.
#pragma once

#include "core/context.hpp"
#include "core/monitor.hpp"

#include <moss/detail/greenlet_impl.hpp>

namespace moss::detail {

class hub_core;

// thread_state is what the greenlet layer keeps per OS thread.
struct thread_state {
  greenlet_impl* current = nullptr;  // running greenlet (never null once set)
  greenlet_impl* root = nullptr;     // the thread's own stack ("main")
  greenlet_impl* dying = nullptr;    // finished; its stack is freed by the next to run
  hub_core* hub = nullptr;           // owned by lib/core/hub.cpp
  heartbeat* beat = nullptr;         // MOSS_MONITOR_MS is on and the thread has a hub
  context_thread_slots slots{};      // the thread's errno and exception state (context_here())
  bool hub_destroyed = false;
};

// The calling thread's state; null before first use and after teardown.
// constinit: other files then read it directly, without the call to a TLS
// init function that an extern thread_local otherwise costs on every access.
[[gnu::tls_model("initial-exec")]] extern constinit thread_local thread_state* tls_state;

// make_this_thread() creates the thread's state and root greenlet.
thread_state& make_this_thread();

// this_thread() returns the calling thread's state, creating it (and the root
// greenlet) on first use. Throws moss::error during thread teardown.
inline thread_state& this_thread() {
  if (tls_state != nullptr) [[likely]]
    return *tls_state;
  return make_this_thread();
}

// this_thread_if_any() returns null before first use and after teardown.
inline thread_state* this_thread_if_any() noexcept { return tls_state; }

// start_greenlet() gives a fresh greenlet its stack and first context.
void start_greenlet(greenlet_impl* g);

// release_dying() frees the stack of the greenlet that finished last
// (t.dying), on the stack of the one that runs next.
void release_dying(thread_state& t) noexcept;

// switch_into() suspends from (the running greenlet) and runs to, starting it
// if it is fresh; returns when something switches back to from. Inline: it
// is the hub's hot path (yield, wait, a task's end).
inline void switch_into(thread_state& t, greenlet_impl* from, greenlet_impl* to) {
  if (to->state_ == greenlet_impl::state::fresh) start_greenlet(to);
  t.current = to;
  if (t.beat != nullptr) [[unlikely]]
    t.beat->tick(from, to->id_);
  context_switch(from->ctx_, to->ctx_, t.slots);
  if (t.dying != nullptr) release_dying(t);
}

// finish_greenlet() is called by a greenlet whose body has returned: control
// goes to target (started if needed), delivering value/error, never to return.
[[noreturn]] void finish_greenlet(greenlet_impl* self, greenlet_impl* target, std::any value,
                                  std::exception_ptr error) noexcept;

}  // namespace moss::detail

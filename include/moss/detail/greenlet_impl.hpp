// detail/greenlet_impl.hpp: the greenlet control block, shared by raw
// greenlets, the hub greenlet and tasks (which embed their body in the same
// allocation). Only templates need to see it; users use moss::greenlet and
// moss::task.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/context_state.hpp>
#include <moss/detail/intrusive_list.hpp>
#include <moss/detail/stack_area.hpp>

#include <any>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

namespace moss::detail {

struct thread_state;
class waiter;

// local_value: a task_local's value in one greenlet (moss/task_local.hpp).
struct local_value {
  std::uint64_t key;
  void* value;
  void (*destroy)(void*) noexcept;
};

class MOSS_API __attribute__((aligned(64))) greenlet_impl {  // a cache line: see the hot fields below
 public:
  enum class role : std::uint8_t { root, hub, raw, task };
  enum class state : std::uint8_t { fresh, active, dead };

  explicit greenlet_impl(role r) noexcept;
  greenlet_impl(const greenlet_impl&) = delete;
  greenlet_impl& operator=(const greenlet_impl&) = delete;
  virtual ~greenlet_impl();

  void ref() noexcept { ++refs_; }
  void unref() noexcept {
    if (--refs_ == 0) delete this;
  }

  // run() is the greenlet's body, called on its own stack with the value of
  // the first switch. Its result goes to exit_target().
  virtual std::any run(std::any arg) = 0;
  // exit_target() is where control goes when run() returns; by default the
  // nearest live ancestor (Python greenlet semantics).
  virtual greenlet_impl* exit_target() noexcept;
  // on_last_handle() is called when the last moss::greenlet handle goes away.
  virtual void on_last_handle() noexcept {}

  // name() is the greenlet's name, "task-7" style until set.
  const std::string& name() const;

  bool is_current() const noexcept;
  greenlet_impl* live_ancestor() const noexcept;

  // The first cache line (the class is aligned to one) holds, with the
  // vtable pointer, every field that waking a parked greenlet and resuming
  // it touch: with 10,000 connections parked, each line of a greenlet read
  // per request is a cache miss. Keep the hot fields here and the rest below.
  role role_;
  state state_ = state::fresh;
  bool in_ready_queue_ = false;   // linked into the hub's ready queue
  bool scheduled_ = false;        // the hub should resume it when popped
  unsigned refs_ = 0;
  thread_state* owner_ = nullptr;
  greenlet_impl* next_ready_ = nullptr;  // ready queue link
  waiter* parked_on_ = nullptr;          // set while parked on the hub
  std::exception_ptr pending_;           // raised at the next resume from a wait
  std::exception_ptr inbox_error_;       // exception delivered by throw_in()
  context_state ctx_;                    // its first word (the saved stack pointer) ends the line
  // Cold: read when spawned, switched to explicitly, named or ended.
  std::uint64_t id_;
  unsigned handles_ = 0;          // moss::greenlet handles (raw greenlets)
  std::size_t stack_request_ = 0; // 0 = default size
  greenlet_impl* parent_ = nullptr;      // strong reference
  list_links<greenlet_impl> hub_links_;  // the hub's list of live tasks
  std::any inbox_;                       // value delivered by switch_to()
  stack_area stack_;
  mutable std::string name_;
  local_value* locals_ = nullptr;        // task_local values, made on first use
  std::uint32_t locals_size_ = 0;
  std::uint32_t locals_capacity_ = 0;
  // user_data_ belongs to whoever runs the greenlet's body: the preload
  // layer keeps its green pthread's control block here. moss never reads it.
  void* user_data_ = nullptr;
};

// destroy_locals() destroys g's task_local values, newest first; called when
// its body has returned (on its own stack) and when the control block goes.
MOSS_API void destroy_locals(greenlet_impl* g) noexcept;

// live_greenlets() counts control blocks alive in the process (leak checks).
MOSS_API std::size_t live_greenlets() noexcept;

// current_impl() is the greenlet running on this thread (the root greenlet if
// none was started). Never null.
MOSS_API greenlet_impl* current_impl() noexcept;

// switch_with() transfers control to g, delivering value (or error). Returns
// the value delivered when control comes back to the caller, or throws the
// exception delivered. Checks for misuse (dead, other thread).
MOSS_API std::any switch_with(greenlet_impl* g, std::any value, std::exception_ptr error);

// resume() transfers control to g without a payload; used by the hub for
// greenlets parked in a waiter. g must be on this thread and not dead.
MOSS_API void resume(greenlet_impl* g);

// set_parent() checks for cycles and other threads.
MOSS_API void set_parent(greenlet_impl* g, greenlet_impl* parent);

}  // namespace moss::detail

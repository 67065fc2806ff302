// greenlet.cpp: the greenlet control block, switching, and moss::greenlet.
//
// Ownership: a started, unfinished greenlet holds a reference to itself (its
// running frames need it), dropped after its last switch by the greenlet that
// runs next, which also releases its stack. Handles and the parent link hold
// the other references.
#include "core/greenlet.hpp"

#include "core/context.hpp"
#include "core/stack.hpp"
#include "core/sys.hpp"
#include "core/thread_counter.hpp"

#include <moss/greenlet.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

// The bodies of moss::greenlet::switch_to(value) and switch_to() (at the end
// of this file).
extern "C" [[gnu::visibility("hidden")]] std::any moss_switch_to_body(const moss::greenlet* self, std::any value);
extern "C" [[gnu::visibility("hidden")]] std::any moss_switch_to_none_body(const moss::greenlet* self);

namespace moss::detail {

[[gnu::tls_model("initial-exec")]] constinit thread_local thread_state* tls_state = nullptr;

namespace {


// Leak-check count of control blocks, without a locked instruction per
// greenlet (thread_counter.hpp).
struct live_tag {};
using live_count = thread_counter<live_tag>;

// Ids are handed to each thread in blocks, for the same reason: unique in the
// process, increasing within a thread.
constexpr std::uint64_t id_block = 256;
std::atomic<std::uint64_t> next_id{0};
[[gnu::tls_model("initial-exec")]] constinit thread_local std::uint64_t id_next = 0;
[[gnu::tls_model("initial-exec")]] constinit thread_local std::uint64_t id_end = 0;

std::uint64_t new_id() noexcept {
  if (id_next == id_end) [[unlikely]] {
    id_next = next_id.fetch_add(id_block, std::memory_order_relaxed);
    id_end = id_next + id_block;
  }
  return id_next++;
}

thread_local bool tls_torn_down = false;

class root_greenlet final : public greenlet_impl {
 public:
  root_greenlet() : greenlet_impl(role::root) {
    state_ = state::active;
    name_ = "main";
    context_init_root(ctx_);
  }
  std::any run(std::any) override { return {}; }
};

// A greenlet running user code given to moss::greenlet.
class raw_greenlet final : public greenlet_impl {
 public:
  explicit raw_greenlet(greenlet::function fn) : greenlet_impl(role::raw), fn_(std::move(fn)) {}
  std::any run(std::any arg) override { return fn_(std::move(arg)); }

  // Like Python: dropping the last handle of a suspended greenlet raises
  // greenlet_exit in it so that its stack unwinds, then it returns to us.
  void on_last_handle() noexcept override {
    thread_state* t = this_thread_if_any();
    if (state_ != state::active || t == nullptr || owner_ != t || t->current == this) return;
    ref();
    try {
      set_parent(this, t->current);
      switch_with(this, {}, std::make_exception_ptr(greenlet_exit{}));
    } catch (...) {
    }
    unref();
  }

 private:
  greenlet::function fn_;
};

struct thread_holder {
  thread_state* ts = nullptr;
  ~thread_holder() {
    tls_torn_down = true;
    if (ts == nullptr) return;
    tls_state = nullptr;
    ts->root->unref();
    delete ts;
  }
};
thread_local thread_holder holder;

// Signal-safe: called by the SIGSEGV handler on the alternate stack.
const char* describe_overflow(const void* fault, std::size_t* size) {
  thread_state* t = tls_state;
  if (t == nullptr || t->current == nullptr) return nullptr;
  greenlet_impl* g = t->current;
  if (!stack_guard_contains(g->stack_, fault)) return nullptr;
  *size = g->stack_.size;
  if (!g->name_.empty()) return g->name_.c_str();
  // Unnamed: format "greenlet-<id>" without allocating.
  static thread_local char buf[40];
  const char* prefix = g->role_ == greenlet_impl::role::task ? "task-" : "greenlet-";
  std::size_t n = 0;
  while (*prefix != '\0') buf[n++] = *prefix++;
  char digits[24];
  int d = 0;
  std::uint64_t id = g->id_;
  do {
    digits[d++] = static_cast<char>('0' + id % 10);
    id /= 10;
  } while (id != 0);
  while (d > 0) buf[n++] = digits[--d];
  buf[n] = '\0';
  return buf;
}

// run_body() runs self's body; its result is returned, an exception that
// escapes it is stored in error.
std::any run_body(greenlet_impl* self, std::exception_ptr& error) noexcept {
  try {
    return self->run(std::move(self->inbox_));
  } catch (const greenlet_exit&) {
    // A kill that unwound the greenlet is a normal end.
  } catch (...) {
    error = std::current_exception();
  }
  return {};
}

void entry(void* arg) {
  auto* self = static_cast<greenlet_impl*>(arg);
  release_dying(*tls_state);
  std::exception_ptr error = std::exchange(self->inbox_error_, nullptr);
  std::any result = error ? std::any{} : run_body(self, error);
  if (self->locals_ != nullptr) destroy_locals(self);
  self->inbox_.reset();
  finish_greenlet(self, self->exit_target(), std::move(result), std::move(error));
}

// quoted() never fills in the lazy name: g may belong to another thread.
std::string quoted(const greenlet_impl* g) {
  if (!g->name_.empty()) return "\"" + g->name_ + "\"";
  return std::string(g->role_ == greenlet_impl::role::task ? "\"task-" : "\"greenlet-") + std::to_string(g->id_) + "\"";
}

// raise_delivered() throws what was delivered to self instead of a value:
// a kill (pending_) or an exception from throw_in().
[[noreturn, gnu::noinline]] void raise_delivered(greenlet_impl* self) {
  if (self->pending_) {  // killed while it was switched away
    self->inbox_.reset();
    self->inbox_error_ = nullptr;
    std::rethrow_exception(std::exchange(self->pending_, nullptr));
  }
  std::rethrow_exception(std::exchange(self->inbox_error_, nullptr));
}

// take_delivered() is what self returns from its switch once resumed.
inline std::any take_delivered(greenlet_impl* self) {
  if (self->pending_ || self->inbox_error_) [[unlikely]]
    raise_delivered(self);
  if (!self->inbox_.has_value()) return {};
  std::any r(std::move(self->inbox_));
  self->inbox_.reset();
  return r;
}

// deliver() hands value (or error) to g, switches to it, and returns what is
// delivered back to self when something switches to it again (or throws it).
// The moves are skipped when there is nothing to move (the common case of a
// switch without a value).
std::any deliver(thread_state& t, greenlet_impl* self, greenlet_impl* g, std::any&& value, std::exception_ptr&& error) {
  if (value.has_value() || g->inbox_.has_value()) g->inbox_ = std::move(value);
  if (error || g->inbox_error_) g->inbox_error_ = std::move(error);
  switch_into(t, self, g);
  return take_delivered(self);
}

}  // namespace

void release_dying(thread_state& t) noexcept {
  greenlet_impl* g = t.dying;
  if (g == nullptr) return;
  t.dying = nullptr;
  stack_release(g->stack_);
  context_release(g->ctx_);
  g->unref();  // the self-reference taken at start
}

void start_greenlet(greenlet_impl* g) {
  if (g->stack_.mapping == nullptr) g->stack_ = stack_allocate(g->stack_request_);
  context_prepare(g->ctx_, g->stack_.lo, g->stack_.size, &entry, g);
  g->state_ = greenlet_impl::state::active;
  g->ref();
}

greenlet_impl::greenlet_impl(role r) noexcept
    : role_(r), id_(new_id()) {
  live_count::add(1);
  thread_state* t = tls_state;
  owner_ = t;
}

greenlet_impl::~greenlet_impl() {
  if (locals_ != nullptr) destroy_locals(this);
  if (parent_ != nullptr) parent_->unref();
  stack_release(stack_);
  live_count::add(-1);
}

void destroy_locals(greenlet_impl* g) noexcept {
  // A destructor may touch task_locals again (even make a new value): take
  // one value out at a time and look again.
  while (g->locals_size_ > 0) {
    local_value v = g->locals_[--g->locals_size_];
    v.destroy(v.value);
  }
  std::free(g->locals_);
  g->locals_ = nullptr;
  g->locals_capacity_ = 0;
}

greenlet_impl* greenlet_impl::live_ancestor() const noexcept {
  greenlet_impl* p = parent_;
  while (p != nullptr && p->state_ == state::dead) p = p->parent_;
  return p;
}

greenlet_impl* greenlet_impl::exit_target() noexcept { return live_ancestor(); }

const std::string& greenlet_impl::name() const {
  if (name_.empty()) name_ = (role_ == role::task ? "task-" : "greenlet-") + std::to_string(id_);
  return name_;
}

bool greenlet_impl::is_current() const noexcept {
  thread_state* t = tls_state;
  return t != nullptr && t->current == this;
}

std::size_t live_greenlets() noexcept { return static_cast<std::size_t>(live_count::total()); }

thread_state& make_this_thread() {
  if (tls_torn_down) throw moss::error("moss: this thread is exiting and its hub was already destroyed; cannot spawn, switch or wait");
  auto* t = new thread_state;
  t->slots = context_here();
  tls_state = t;
  holder.ts = t;
  auto* root = new root_greenlet;
  root->owner_ = t;
  root->ref();
  t->root = root;
  t->current = root;
  set_overflow_describer(&describe_overflow);
  return *t;
}

greenlet_impl* current_impl() noexcept {
  try {
    return this_thread().current;
  } catch (...) {
    return nullptr;
  }
}

void set_parent(greenlet_impl* g, greenlet_impl* parent) {
  if (parent == nullptr) throw moss::error("moss: a greenlet's parent cannot be empty");
  if (parent->owner_ != g->owner_)
    throw moss::error("moss: a greenlet's parent must belong to the same thread");
  for (greenlet_impl* p = parent; p != nullptr; p = p->parent_)
    if (p == g) throw moss::error("moss: set_parent would make a cyclic parent chain");
  parent->ref();
  if (g->parent_ != nullptr) g->parent_->unref();
  g->parent_ = parent;
}

void finish_greenlet(greenlet_impl* self, greenlet_impl* target, std::any value, std::exception_ptr error) noexcept {
  thread_state& t = *tls_state;
  self->state_ = greenlet_impl::state::dead;
  // Tasks end with neither a value nor an error, and their target's inbox is
  // empty: skip the moves then.
  if (value.has_value() || target->inbox_.has_value()) target->inbox_ = std::move(value);
  if (error || target->inbox_error_) target->inbox_error_ = std::move(error);
  value.reset();
  error = nullptr;
  if (target->state_ == greenlet_impl::state::fresh) {
    try {
      start_greenlet(target);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "moss: cannot start greenlet \"%s\": %s\n", target->name_.c_str(), e.what());
      std::abort();
    }
  }
  t.dying = self;
  t.current = target;
  if (t.beat != nullptr) [[unlikely]]
    t.beat->tick(self, target->id_);
  context_exit(self->ctx_, target->ctx_);
}

std::any switch_with(greenlet_impl* g, std::any value, std::exception_ptr error) {
  thread_state& t = this_thread();
  greenlet_impl* self = t.current;
  if (g->owner_ != &t) throw moss::error("moss: cannot switch to greenlet " + quoted(g) + ": it belongs to another thread");
  if (g->state_ == greenlet_impl::state::dead) throw moss::error("moss: cannot switch to greenlet " + quoted(g) + ": it is dead");
  if (g->role_ == greenlet_impl::role::hub) throw moss::error("moss: cannot switch to the hub greenlet directly");
  if (g->parked_on_ != nullptr && !error)
    throw moss::error("moss: cannot switch to greenlet " + quoted(g) +
                      ": it is waiting on the hub; wake it through what it waits for");
  if (g == self) {
    if (error) std::rethrow_exception(error);
    return value;
  }
  if (g->state_ == greenlet_impl::state::fresh && error) {
    // Never started: it dies without running and the error goes to its parent.
    g->state_ = greenlet_impl::state::dead;
    greenlet_impl* up = g->live_ancestor();
    if (up == self) {
      try {
        std::rethrow_exception(error);
      } catch (const greenlet_exit&) {
        return {};
      }
    }
    return switch_with(up, {}, std::move(error));
  }
  return deliver(t, self, g, std::move(value), std::move(error));
}

void resume(greenlet_impl* g) {
  thread_state& t = *tls_state;
  switch_into(t, t.current, g);
}

}  // namespace moss::detail

namespace moss {

using detail::greenlet_impl;

greenlet::greenlet(function fn, const greenlet& parent) : impl_(new detail::raw_greenlet(std::move(fn))) {
  impl_->owner_ = &detail::this_thread();
  impl_->ref();
  ++impl_->handles_;
  try {
    detail::set_parent(impl_, parent.impl_);
  } catch (...) {
    --impl_->handles_;
    impl_->unref();
    throw;
  }
}

greenlet::greenlet(greenlet_impl* impl) noexcept : impl_(impl) {
  impl_->ref();
  ++impl_->handles_;
}

greenlet::greenlet(const greenlet& other) noexcept : greenlet(other.impl_) {}

greenlet& greenlet::operator=(const greenlet& other) noexcept {
  greenlet copy(other);
  std::swap(impl_, copy.impl_);
  return *this;
}

greenlet::~greenlet() {
  if (--impl_->handles_ == 0) impl_->on_last_handle();
  impl_->unref();
}

// switch_to() is the shell below on x86-64 with libstdc++, else a call.
#if !defined(MOSS_OWN_SWITCH) || !defined(__GLIBCXX__)
std::any greenlet::switch_to(std::any value) { return moss_switch_to_body(this, std::move(value)); }
std::any greenlet::switch_to() { return moss_switch_to_none_body(this); }
#endif

std::any greenlet::throw_in(std::exception_ptr e) {
  if (!e) throw moss::error("moss: throw_in needs an exception");
  return detail::switch_with(impl_, {}, std::move(e));
}

greenlet greenlet::parent() const {
  if (impl_->parent_ == nullptr) throw moss::error("moss: greenlet \"" + impl_->name() + "\" has no parent");
  return greenlet(impl_->parent_);
}

void greenlet::set_parent(const greenlet& p) {
  if (impl_->role_ != greenlet_impl::role::raw) throw moss::error("moss: only raw greenlets can change parent");
  detail::set_parent(impl_, p.impl_);
}

bool greenlet::started() const noexcept { return impl_->state_ != greenlet_impl::state::fresh; }
bool greenlet::dead() const noexcept { return impl_->state_ == greenlet_impl::state::dead; }
const std::string& greenlet::name() const { return impl_->name(); }
void greenlet::set_name(std::string_view name) { impl_->name_ = name; }

greenlet current() { return greenlet(detail::this_thread().current); }

}  // namespace moss

namespace moss::detail {
namespace {

// The rare cases of switch_to_body(), out of line so that the common one
// stays short. value may be null (no value).
[[gnu::noinline]] std::any switch_to_checked(greenlet_impl* g, std::any* value) {
  return switch_with(g, value != nullptr ? std::move(*value) : std::any{}, nullptr);
}
[[gnu::noinline]] void put_value(greenlet_impl* g, std::any* value) {
  if (value != nullptr) g->inbox_ = std::move(*value);
  else g->inbox_.reset();
  g->inbox_error_ = nullptr;
}
[[gnu::noinline]] std::any take_value(greenlet_impl* self) { return take_delivered(self); }

// switch_to_body() is moss::greenlet::switch_to(*value), or switch_to() when
// value is null. The common case is checked inline: a started greenlet of
// this thread that is neither the caller, the hub, nor waiting on the hub,
// and no value either way. switch_with() makes the same checks one by one
// and says what is wrong.
[[gnu::always_inline]] inline std::any switch_to_body(const moss::greenlet* self, std::any* value) {
  thread_state* t = tls_state;
  greenlet_impl* g = self->impl();
  if (t == nullptr || g->owner_ != t || g->state_ != greenlet_impl::state::active ||
      g->role_ == greenlet_impl::role::hub || g->parked_on_ != nullptr || g == t->current) [[unlikely]]
    return switch_to_checked(g, value);
  greenlet_impl* me = t->current;
  if ((value != nullptr && value->has_value()) || g->inbox_.has_value() || g->inbox_error_) [[unlikely]]
    put_value(g, value);
  t->current = g;
  if (t->beat != nullptr) [[unlikely]]
    t->beat->tick(me, g->id_);
  context_switch(me->ctx_, g->ctx_, t->slots);
  // Back here, me is read again (t->current is me now) rather than kept in a
  // callee-saved register across the switch: one fewer to save and restore.
  if (t->dying != nullptr) release_dying(*t);
  me = t->current;
  if (me->pending_ || me->inbox_error_ || me->inbox_.has_value()) [[unlikely]]
    return take_value(me);
  return {};
}

}  // namespace
}  // namespace moss::detail

extern "C" std::any moss_switch_to_body(const moss::greenlet* self, std::any value) {
  return moss::detail::switch_to_body(self, &value);
}
extern "C" std::any moss_switch_to_none_body(const moss::greenlet* self) {
  return moss::detail::switch_to_body(self, nullptr);
}

#if defined(MOSS_OWN_SWITCH) && defined(__GLIBCXX__)
// moss::greenlet::switch_to(std::any) itself (the mangled name is
// libstdc++'s; with another library the C++ definition above is used): a
// frame that calls the body and returns to its caller with an indirect jump
// instead of `ret`. The caller's call was made on one stack and the switch
// lands on another, whose caller is elsewhere: a `ret` there would be
// predicted from the return-stack buffer, filled on the other stack, and
// miss on every switch (core_bench, side by side: a round trip 34.5 ns
// with `ret`, 13.2 ns without).
// An indirect jump is predicted from the branch history instead, as a switch
// made inline (boost::context::fiber::resume) never returns at all. The
// call's entry stays in the return-stack buffer: a caller that returns soon
// after the switch pays one miss there instead, a loop that switches does not.
#define MOSS_JUMP_RETURN_SHELL(name, body)                                   \
  asm(".pushsection .text\n"                                                 \
      ".p2align 4\n"                                                         \
      ".globl " name "\n"                                                    \
      ".type " name ",@function\n" name ":\n"                                \
      ".cfi_startproc\n"                                                     \
      "endbr64\n"                                                            \
      "pushq %rbp\n"                                                         \
      ".cfi_def_cfa_offset 16\n"                                             \
      ".cfi_offset %rbp, -16\n"                                              \
      "movq %rsp, %rbp\n"                                                    \
      ".cfi_def_cfa_register %rbp\n"                                         \
      "call " body "\n"                                                      \
      "popq %rbp\n"                                                          \
      ".cfi_def_cfa %rsp, 8\n"                                               \
      "popq %rcx\n"                                                          \
      ".cfi_def_cfa_offset 0\n"                                              \
      ".cfi_register %rip, %rcx\n"                                           \
      "jmp *%rcx\n"                                                          \
      ".cfi_endproc\n"                                                       \
      ".size " name ", .-" name "\n"                                          \
      ".popsection\n")
MOSS_JUMP_RETURN_SHELL("_ZN4moss8greenlet9switch_toESt3any", "moss_switch_to_body");
MOSS_JUMP_RETURN_SHELL("_ZN4moss8greenlet9switch_toEv", "moss_switch_to_none_body");
#undef MOSS_JUMP_RETURN_SHELL
#endif

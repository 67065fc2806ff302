// task.cpp: spawning, joining and killing tasks, done callbacks and hooks.
#include <moss/task.hpp>

#include <moss/error_handler.hpp>

#include "core/hub.hpp"
#include "core/stack.hpp"

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <typeinfo>

namespace moss::detail {

namespace {

// This thread's error handler; a plain pointer so that tasks destroyed late
// in thread exit find it null (the default) rather than a destroyed object.
[[gnu::tls_model("initial-exec")]] constinit thread_local error_handler* tls_handler = nullptr;

struct handler_holder {
  ~handler_holder() {
    delete tls_handler;
    tls_handler = nullptr;
  }
};

void report_failure(const task_base& t, std::exception_ptr e) noexcept {
  task_failure f;
  try {
    f.task_name = t.name();
  } catch (...) {
  }
  f.task_id = t.id_;
  f.error = std::move(e);
  error_handler* h = tls_handler;
  if (h == nullptr || !*h) {
    print_task_failure(f);
    return;
  }
  try {
    (*h)(f);
  } catch (...) {
    std::fprintf(stderr, "moss: the error handler failed while reporting task \"%.*s\"\n",
                 static_cast<int>(f.task_name.size()), f.task_name.data());
  }
}

void report_callback_failure(const task_base& t) noexcept {
  try {
    throw;
  } catch (const std::exception& x) {
    std::fprintf(stderr, "moss: a done callback of task \"%s\" failed: %s\n", t.name().c_str(), x.what());
  } catch (...) {
    std::fprintf(stderr, "moss: a done callback of task \"%s\" failed with a non-standard exception\n",
                 t.name().c_str());
  }
}

// Runs a callback added after its task finished, in a task of its own.
struct late_callback {
  std::unique_ptr<done_callback> cb;
  task_base* t;
  late_callback(std::unique_ptr<done_callback> c, task_base* task) noexcept : cb(std::move(c)), t(task) { t->ref(); }
  late_callback(late_callback&& o) noexcept : cb(std::move(o.cb)), t(std::exchange(o.t, nullptr)) {}
  late_callback(const late_callback&) = delete;
  late_callback& operator=(const late_callback&) = delete;
  late_callback& operator=(late_callback&&) = delete;
  ~late_callback() {
    if (t != nullptr) t->unref();
  }
  void operator()() { cb->call(*t); }
};

// The per-thread cache behind task_base::operator new: freed task objects,
// one list per 64-byte size class up to 1 KiB, at most 64 per class. The
// lists are trivially destructible thread_locals (no guard on access); a
// separate drainer frees them at thread exit, after which objects freed on
// this thread go straight to the heap.
constexpr std::size_t cache_grain = 64;
constexpr std::size_t block_align = alignof(greenlet_impl);  // a cache line: see greenlet_impl
constexpr std::size_t cache_classes = 16;
constexpr unsigned cache_depth = 64;

struct free_block {
  free_block* next;
};
struct task_cache {
  free_block* head[cache_classes];
  unsigned count[cache_classes];
  bool armed;   // the drainer is registered
  bool closed;  // the thread is exiting: bypass
};
[[gnu::tls_model("initial-exec")]] constinit thread_local task_cache cache{};

struct cache_drainer {
  ~cache_drainer() {
    cache.closed = true;
    for (std::size_t c = 0; c < cache_classes; ++c) {
      while (free_block* b = cache.head[c]) {
        cache.head[c] = b->next;
        ::operator delete(b, std::align_val_t{block_align});
      }
      cache.count[c] = 0;
    }
  }
};

std::size_t cache_class(std::size_t size) noexcept { return (size - 1) / cache_grain; }

}  // namespace

void* task_base::cached_new(std::size_t size) {
  std::size_t c = cache_class(size);
  if (c < cache_classes && cache.head[c] != nullptr) {
    free_block* b = cache.head[c];
    cache.head[c] = b->next;
    --cache.count[c];
    return b;
  }
  // Blocks are allocated at the class's full size so any object of the
  // class can reuse them.
  return ::operator new(c < cache_classes ? (c + 1) * cache_grain : size, std::align_val_t{block_align});
}

void task_base::cached_delete(void* p, std::size_t size) noexcept {
  std::size_t c = cache_class(size);
  if (c < cache_classes && !cache.closed && cache.count[c] < cache_depth) {
    if (!cache.armed) [[unlikely]] {
      static thread_local cache_drainer drainer;
      (void)drainer;
      cache.armed = true;
    }
    auto* b = static_cast<free_block*>(p);
    b->next = cache.head[c];
    cache.head[c] = b;
    ++cache.count[c];
    return;
  }
  ::operator delete(p, std::align_val_t{block_align});
}

std::string demangle(const std::type_info& type) {
  int status = 0;
  char* s = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  if (s == nullptr) return type.name();
  std::string r(s);
  std::free(s);
  return r;
}

void check_may_block(const char* op) {
  thread_state* t = this_thread_if_any();
  if (t != nullptr && t->current != nullptr && t->current->role_ == greenlet_impl::role::hub)
    throw moss::error(std::string(op) + ": a blocking call was made on the hub greenlet; code run by the hub must not wait");
}

void done_hook::attach(task_base& t) noexcept {
  detach();
  task_ = &t;
  t.hooks_.push_front(*this);
}

void done_hook::detach() noexcept {
  if (task_ == nullptr) return;
  task_->hooks_.remove(*this);
  task_ = nullptr;
}

void reap_all(hub_core& h) {
  // Kill from the newest: each kill waits, so tasks unwind one at a time.
  while (greenlet_impl* g = h.tasks().front()) {
    auto* t = static_cast<task_base*>(g);
    t->ref();
    try {
      t->kill(true);
    } catch (...) {
    }
    if (!t->finished()) {
      // It refused to die (swallowed greenlet_exit and waits forever):
      // stop tracking it rather than loop.
      h.untrack(t);
    }
    t->unref();
  }
}

void launch(task_base* t, const spawn_options& o, time_point start_at) {
  try {
    hub_core& h = hub_core::current();
    t->owner_ = &h.thread();
    t->hub_ = &h;
    t->stack_request_ = o.stack_size;
    if (!o.name.empty()) t->name_ = o.name;
    // t is new, so no greenlet has it as parent: no cycle to look for.
    greenlet_impl* hub_g = h.hub_greenlet();
    hub_g->ref();
    t->parent_ = hub_g;
    t->stack_ = stack_allocate(o.stack_size);
    h.track(t);
    if (start_at == time_point::min()) {
      h.schedule(t);
    } else {
      t->start_.task = t;
      h.timers.add(t->start_, start_at);
    }
  } catch (...) {
    delete t;
    throw;
  }
  if (hub_core::reap_tasks == nullptr) hub_core::reap_tasks = &reap_all;
}

void task_base::start_timer::fire() noexcept { task->hub_->schedule(task); }

std::any task_base::run(std::any) {
  try {
    // An exception delivered before the task started (a kill of a task with
    // callbacks) is raised instead of running the function.
    if (pending_) std::rethrow_exception(std::exchange(pending_, nullptr));
    invoke();
    // A kill (or another exception) delivered but never raised — it reached
    // the function inside a hooked C call, which returned an error instead,
    // or the function returned before waiting again — ends the task now.
    if (pending_) std::rethrow_exception(std::exchange(pending_, nullptr));
  } catch (const greenlet_exit&) {
    killed_ = true;
    error_ = std::current_exception();
  } catch (...) {
    error_ = std::current_exception();  // reported when the task goes, if never retrieved
  }
  done_ = true;
  run_callbacks();
  complete();
  return {};
}

void task_base::run_callbacks() noexcept {
  if (callbacks_.empty()) return;
  pending_ = nullptr;  // a kill that arrived while the task ended has been honoured
  in_callbacks_ = true;
  // Index loop: a callback may add callbacks, which run in this same pass.
  for (std::size_t i = 0; i < callbacks_.size(); ++i) {
    std::unique_ptr<done_callback> cb = std::move(callbacks_[i]);
    try {
      cb->call(*this);
    } catch (const greenlet_exit&) {
      break;  // killed while a callback blocked: finish now
    } catch (...) {
      report_callback_failure(*this);
    }
  }
  callbacks_.clear();
  in_callbacks_ = false;
  pending_ = nullptr;
}

void task_base::add_callback(std::unique_ptr<done_callback> cb) {
  check_owner("moss::task::add_done_callback");
  if (!finished_) {
    callbacks_.push_back(std::move(cb));
    return;
  }
  spawn_options o;
  o.name = "done callback of " + name();
  detail::spawn_at(o, time_point::min(), late_callback(std::move(cb), this));
}

greenlet_impl* task_base::exit_target() noexcept { return hub_->exit_target(); }

void task_base::complete() noexcept {
  done_ = true;
  finished_ = true;
  pending_ = nullptr;
  joiners_.wake_all();
  while (done_hook* h = hooks_.front()) {
    h->detach();
    h->task_done(*this);
  }
  hub_->untrack(this);  // the self-reference (or the caller's) keeps us alive
}

void task_base::check_owner(const char* who, const char* hint) const {
  if (owner_ != this_thread_if_any()) [[unlikely]]
    throw moss::error(std::string(who) + ": task \"" + name() + "\" belongs to another thread's hub" + hint);
}

void task_base::rethrow_if_failed() const {
  if (error_) {
    retrieved_ = true;
    std::rethrow_exception(error_);
  }
}

task_base::~task_base() {
  if (error_ && !killed_ && !retrieved_) report_failure(*this, error_);
}

void task_base::join() { join_until(no_deadline); }

bool task_base::join_until(time_point deadline) {
  if (finished_) return true;
  if (is_current()) throw moss::error("moss: task \"" + name() + "\" cannot join itself");
  check_owner("moss::task::join", across_threads);
  waiter w;
  w.set_what("join", this);
  joiners_.push_back(w);
  return w.wait(deadline) || finished_;
}

void task_base::kill(bool block) {
  if (finished_) return;
  check_owner("moss::task::kill");
  if (done_) {
    // Only its done callbacks are left. From one of them, killing the task
    // is killing a finished task: nothing to do.
    if (is_current()) return;
    interrupt(this, std::make_exception_ptr(greenlet_exit{}));
    if (block) join();
    return;
  }
  if (state_ == state::fresh && !callbacks_.empty()) {
    // Its callbacks must run on its own greenlet: start it, and it raises
    // greenlet_exit before calling the function.
    if (start_.armed()) hub_->timers.remove(start_);
    pending_ = std::make_exception_ptr(greenlet_exit{});
    hub_->schedule(this);
    if (block) join();
    return;
  }
  if (state_ == state::fresh) {
    // Never ran: no stack to unwind.
    ref();
    if (start_.armed()) hub_->timers.remove(start_);
    state_ = state::dead;
    stack_release(stack_);
    killed_ = true;
    error_ = std::make_exception_ptr(greenlet_exit{});
    complete();
    unref();
    return;
  }
  if (is_current()) throw greenlet_exit{};
  interrupt(this, std::make_exception_ptr(greenlet_exit{}));
  if (block) join();
}

}  // namespace moss::detail

namespace moss {

task_ref current_task() noexcept {
  detail::thread_state* t = detail::this_thread_if_any();
  if (t == nullptr || t->current == nullptr || t->current->role_ != detail::greenlet_impl::role::task) return {};
  return detail::task_access::adopt(static_cast<detail::task_base*>(t->current));
}

error_handler set_error_handler(error_handler h) {
  static thread_local detail::handler_holder holder;
  (void)holder;
  error_handler previous;
  if (detail::tls_handler != nullptr) previous = std::move(*detail::tls_handler);
  delete std::exchange(detail::tls_handler, nullptr);
  if (h) detail::tls_handler = new error_handler(std::move(h));
  return previous;
}

void print_task_failure(const task_failure& f) noexcept {
  if (!f.error) return;
  int n = static_cast<int>(f.task_name.size());
  const char* name = f.task_name.data();
  try {
    std::rethrow_exception(f.error);
  } catch (const std::exception& x) {
    std::fprintf(stderr, "moss: task \"%.*s\" failed: %s\n", n, name, x.what());
  } catch (...) {
    std::fprintf(stderr, "moss: task \"%.*s\" failed with a non-standard exception\n", n, name);
  }
}

std::vector<task_ref> all_tasks() {
  std::vector<task_ref> r;
  detail::hub_core* h = detail::hub_core::current_if_any();
  if (h == nullptr) return r;
  r.reserve(h->tracked_count());
  for (detail::greenlet_impl* g = h->tasks().front(); g != nullptr; g = detail::hub_core::task_list::next(*g))
    r.push_back(detail::task_access::adopt(static_cast<detail::task_base*>(g)));
  return r;
}

}  // namespace moss

namespace moss::detail {

run_scope::run_scope() {
  thread_state& t = this_thread();
  if (t.current != t.root) throw moss::error("moss::run must be called from the thread's main greenlet, not from a task or greenlet");
  hub_core& h = hub_core::current();
  (void)h;
}

run_scope::~run_scope() {
  hub_core* h = hub_core::current_if_any();
  if (h != nullptr && !h->tasks().empty()) reap_all(*h);
}

}  // namespace moss::detail

/// @file
/// task_local.hpp: a variable with one value per greenlet (gevent.local,
/// Python's contextvars, thread_local for green threads).
///
///   moss::task_local<std::string> request_id;
///   moss::spawn([&] {
///     request_id.set("req-7");
///     log("start");               // log() reads *request_id: "req-7" here,
///   });                           // its own value in every other task
///
/// Each greenlet (task, raw greenlet, or a thread's main greenlet) sees its own
/// value, made on first use by the initializer (T{} by default) and destroyed
/// when the greenlet's body returns (for a thread's main greenlet: at thread
/// exit). A new task starts without values: nothing is inherited from the
/// spawner. Destroying the task_local destroys the calling greenlet's value
/// and leaves those of other greenlets, each destroyed when its greenlet ends. Values must not be
/// shared across threads any more than the greenlets are. A value's
/// destructor must not block.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/greenlet_impl.hpp>
#include <moss/error.hpp>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <new>
#include <type_traits>
#include <utility>

namespace moss {

namespace detail {

// next_local_key hands out task_local keys, one counter for the library and
// every program and shared object using it (hence exported).
MOSS_API inline std::atomic<std::uint64_t> next_local_key{1};

/// find_local() returns g's value for key, or null.
inline void* find_local(const greenlet_impl* g, std::uint64_t key) noexcept {
  for (std::uint32_t i = 0; i < g->locals_size_; ++i)
    if (g->locals_[i].key == key) return g->locals_[i].value;
  return nullptr;
}

/// add_local() records value for key in g; throws std::bad_alloc (and then
/// value is the caller's to destroy).
inline void add_local(greenlet_impl* g, std::uint64_t key, void* value, void (*destroy)(void*) noexcept) {
  if (g->locals_size_ == g->locals_capacity_) {
    std::uint32_t cap = g->locals_capacity_ == 0 ? 4 : 2 * g->locals_capacity_;
    void* p = std::realloc(g->locals_, cap * sizeof(local_value));
    if (p == nullptr) throw std::bad_alloc();
    g->locals_ = static_cast<local_value*>(p);
    g->locals_capacity_ = cap;
  }
  g->locals_[g->locals_size_++] = local_value{key, value, destroy};
}

/// take_local() removes key's entry from g and returns its value (null if none).
inline local_value take_local(greenlet_impl* g, std::uint64_t key) noexcept {
  for (std::uint32_t i = 0; i < g->locals_size_; ++i)
    if (g->locals_[i].key == key) {
      local_value v = g->locals_[i];
      for (std::uint32_t j = i + 1; j < g->locals_size_; ++j) g->locals_[j - 1] = g->locals_[j];
      --g->locals_size_;
      return v;
    }
  return local_value{0, nullptr, nullptr};
}

}  // namespace detail

/// task_local<T>: a T per greenlet, like thread_local per thread; see task_local.hpp.
template <class T>
class task_local {
 public:
  /// task_local() gives each greenlet a value-initialized T on first use.
  task_local()
    requires std::is_default_constructible_v<T>
      : init_([] { return T{}; }) {}
  /// task_local(init) makes each greenlet's first value with init().
  template <class F>
    requires std::is_invocable_r_v<T, F&>
  explicit task_local(F init) : init_(std::move(init)) {}
  task_local(const task_local&) = delete;
  task_local& operator=(const task_local&) = delete;
  ~task_local() { reset(); }

  ///@{
  /// get() is the calling greenlet's value, made now if it has none.
  T& get() {
    detail::greenlet_impl* g = detail::current_impl();
    if (void* v = detail::find_local(g, key_)) return *static_cast<T*>(v);
    return emplace_in(g, init_());
  }
  /// *local and local-> are get().
  T& operator*() { return get(); }
  T* operator->() { return &get(); }
  ///@}

  /// set() replaces the calling greenlet's value.
  template <class U>
    requires std::is_constructible_v<T, U&&>
  T& set(U&& value) {
    detail::greenlet_impl* g = detail::current_impl();
    if (void* v = detail::find_local(g, key_)) {
      T& cur = *static_cast<T*>(v);
      if constexpr (std::is_assignable_v<T&, U&&>) {
        cur = std::forward<U>(value);
        return cur;
      } else {
        reset();
      }
    }
    return emplace_in(g, std::forward<U>(value));
  }

  /// has_value() says whether the calling greenlet has made its value.
  bool has_value() const noexcept { return detail::find_local(detail::current_impl(), key_) != nullptr; }

  /// reset() destroys the calling greenlet's value; the next get() makes a
  /// new one.
  void reset() noexcept {
    detail::local_value v = detail::take_local(detail::current_impl(), key_);
    if (v.value != nullptr) v.destroy(v.value);
  }

 private:
  static void destroy(void* p) noexcept { delete static_cast<T*>(p); }

  template <class U>
  T& emplace_in(detail::greenlet_impl* g, U&& value) {
    T* p = new T(std::forward<U>(value));
    try {
      detail::add_local(g, key_, p, &destroy);
    } catch (...) {
      delete p;
      throw;
    }
    return *p;
  }

  std::function<T()> init_;
  std::uint64_t key_ = detail::next_local_key.fetch_add(1, std::memory_order_relaxed);
};

}  // namespace moss

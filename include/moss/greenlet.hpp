/// @file
/// greenlet.hpp: raw greenlets with Python greenlet semantics.
///
///   moss::greenlet eat([](std::any food) { ... return std::any(...); });
///   std::any r = eat.switch_to(std::string("apple"));
///
/// A greenlet runs its function on its own stack when first switched to. Each
/// switch_to() passes a value to the greenlet that resumes; when the function
/// returns, its value goes to the parent (by default the greenlet that created
/// it), and an exception escaping it is raised in the parent instead.
/// Greenlets never migrate between OS threads.
#pragma once

#include <moss/detail/export.hpp>

#include <moss/detail/greenlet_impl.hpp>
#include <moss/error.hpp>

#include <any>
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace moss {

class greenlet;

/// current() is the greenlet running on this thread; on a thread that never
/// started one, the thread's own (main) greenlet.
MOSS_API greenlet current();

/// greenlet: a handle to a coroutine with its own stack, switched to explicitly; see greenlet.hpp.
class MOSS_API greenlet {
 public:
  /// function: what a greenlet runs, once adapted: a value in, a value out.
  using function = std::function<std::any(std::any)>;

  ///@{
  /// greenlet(fn, parent) makes a greenlet that will run fn. fn may take a
  /// std::any (the value of the first switch) or nothing, and may return
  /// anything (wrapped in std::any) or void. parent defaults to current().
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, greenlet>)
  explicit greenlet(F&& fn) : greenlet(adapt(std::forward<F>(fn)), current()) {}
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, greenlet>)
  greenlet(F&& fn, const greenlet& parent) : greenlet(adapt(std::forward<F>(fn)), parent) {}
  greenlet(function fn, const greenlet& parent);
  ///@}

  /// Copies are handles to the same greenlet.
  greenlet(const greenlet& other) noexcept;
  /// Assignment makes this a handle to the greenlet other names.
  greenlet& operator=(const greenlet& other) noexcept;
  ~greenlet();

  ///@{
  /// switch_to() suspends the current greenlet and resumes this one, passing
  /// value (none in the second form). Returns the value passed back when
  /// someone switches to the caller. Throws moss::error if this greenlet is
  /// dead, belongs to another thread, or is waiting on the hub (resume it by
  /// waking what it waits for).
  std::any switch_to(std::any value);
  std::any switch_to();
  ///@}
  /// throw_in() resumes this greenlet by raising e at its switch point. A
  /// greenlet that never started dies at once and e goes to its parent.
  std::any throw_in(std::exception_ptr e);

  /// parent() is the greenlet that resumes when this one finishes.
  greenlet parent() const;
  /// set_parent() must not create a cycle or cross threads.
  void set_parent(const greenlet& p);

  /// started() is true once the greenlet has first been switched to.
  bool started() const noexcept;
  /// dead() is true once the greenlet has finished.
  bool dead() const noexcept;
  /// A greenlet is active (true) when it started and has not finished.
  explicit operator bool() const noexcept { return started() && !dead(); }

  /// name() is the name given with set_name() (shown in reports and dumps).
  const std::string& name() const;
  /// set_name() names the greenlet.
  void set_name(std::string_view name);

  /// Two handles are equal when they name one greenlet.
  friend bool operator==(const greenlet& a, const greenlet& b) noexcept { return a.impl_ == b.impl_; }

  ///@{
  /// For the library's own layers: wrap an existing control block.
  detail::greenlet_impl* impl() const noexcept { return impl_; }
  ///@}

 private:
  friend greenlet current();
  // greenlet(impl) wraps an existing control block (current(), parent()).
  explicit greenlet(detail::greenlet_impl* impl) noexcept;

  template <class F>
  static function adapt(F&& fn) {
    using D = std::decay_t<F>;
    if constexpr (std::is_invocable_v<D&, std::any>) {
      using R = std::invoke_result_t<D&, std::any>;
      return [f = D(std::forward<F>(fn))](std::any v) mutable -> std::any {
        if constexpr (std::is_void_v<R>) {
          f(std::move(v));
          return {};
        } else {
          return std::any(f(std::move(v)));
        }
      };
    } else {
      static_assert(std::is_invocable_v<D&>, "a greenlet function takes a std::any or nothing");
      using R = std::invoke_result_t<D&>;
      return [f = D(std::forward<F>(fn))](std::any) mutable -> std::any {
        if constexpr (std::is_void_v<R>) {
          f();
          return {};
        } else {
          return std::any(f());
        }
      };
    }
  }

  detail::greenlet_impl* impl_;
};

/// current() is the greenlet running on this thread; on a thread that never
/// started one, the thread's own (main) greenlet.

}  // namespace moss

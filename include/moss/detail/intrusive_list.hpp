// detail/intrusive_list.hpp: a doubly linked list threaded through its
// elements, for nodes that live elsewhere — on a waiting greenlet's stack,
// inside a task's allocation — so that linking and unlinking never allocate
// and never fail. The list owns nothing: an element must leave its list
// before it dies (its destructor usually sees to that), and sits in at most
// one list per set of links.
#pragma once

namespace moss::detail {

// list_links<T>: an element's two links, a member or a base of T.
template <class T>
struct list_links {
  T* prev = nullptr;
  T* next = nullptr;
};

// base_links<T>: T derives (publicly) from list_links<T>. T may still be
// incomplete where the list is declared.
template <class T>
struct base_links {
  static list_links<T>& of(T& t) noexcept { return t; }
  static const list_links<T>& of(const T& t) noexcept { return t; }
};

// member_links<T, &T::m>: the links are T's member m.
template <class T, list_links<T> T::*Member>
struct member_links {
  static list_links<T>& of(T& t) noexcept { return t.*Member; }
  static const list_links<T>& of(const T& t) noexcept { return t.*Member; }
};

template <class T, class Links = base_links<T>>
class intrusive_list {
 public:
  intrusive_list() = default;
  intrusive_list(const intrusive_list&) = delete;
  intrusive_list& operator=(const intrusive_list&) = delete;

  bool empty() const noexcept { return head_ == nullptr; }
  T* front() const noexcept { return head_; }
  T* back() const noexcept { return tail_; }
  static T* next(const T& t) noexcept { return Links::of(t).next; }
  static T* prev(const T& t) noexcept { return Links::of(t).prev; }

  // linked() tells whether t is in this list; t must be in this list or in
  // none.
  bool linked(const T& t) const noexcept { return Links::of(t).prev != nullptr || head_ == &t; }

  // push_back() and push_front() link t, which must be in no list.
  void push_back(T& t) noexcept {
    list_links<T>& l = Links::of(t);
    l.prev = tail_;
    l.next = nullptr;
    if (tail_ != nullptr) Links::of(*tail_).next = &t;
    else head_ = &t;
    tail_ = &t;
  }
  void push_front(T& t) noexcept {
    list_links<T>& l = Links::of(t);
    l.prev = nullptr;
    l.next = head_;
    if (head_ != nullptr) Links::of(*head_).prev = &t;
    else tail_ = &t;
    head_ = &t;
  }

  // remove() unlinks t, which must be in this list.
  void remove(T& t) noexcept {
    list_links<T>& l = Links::of(t);
    if (l.prev != nullptr) Links::of(*l.prev).next = l.next;
    else head_ = l.next;
    if (l.next != nullptr) Links::of(*l.next).prev = l.prev;
    else tail_ = l.prev;
    l.prev = l.next = nullptr;
  }

  // forget() empties the list without touching its elements: in a forked
  // child they belong to greenlets left behind, whose stacks never run.
  void forget() noexcept { head_ = tail_ = nullptr; }

 private:
  T* head_ = nullptr;
  T* tail_ = nullptr;
};

}  // namespace moss::detail

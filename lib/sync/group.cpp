// group.cpp: members are nodes of an intrusive list, each a done_hook on its
// task holding a reference to it. When the task finishes the hook removes
// and frees its node (on the finishing greenlet; nothing here blocks). A
// member is found from its task's hooks, so membership tests cost O(hooks
// on that task), not O(members).
#include <moss/group.hpp>

#include "core/greenlet.hpp"

#include <moss/error.hpp>
#include <moss/wait.hpp>

#include <string>

namespace moss {

struct group::member final : detail::done_hook, detail::list_links<member> {
  group* owner = nullptr;
  task_ref task;
  void task_done(detail::task_base&) noexcept override { owner->remove(this); }
};

group::~group() {
  while (member* m = members_.front()) {
    members_.remove(*m);
    delete m;  // detaches its hook; the task goes on
  }
}

void group::insert(detail::task_base* t) {
  auto* m = new member;
  m->owner = this;
  m->task = detail::task_access::adopt(t);
  members_.push_back(*m);
  ++size_;
  m->attach(*t);
}

void group::insert_or_kill(const task_ref& t) {
  try {
    insert(t.base_ptr());
  } catch (...) {
    // Out of memory for the node: a task nobody tracks must not run on.
    release_slot();
    try {
      t.kill();
    } catch (...) {
    }
    throw;
  }
}

void group::remove(member* m) noexcept {
  members_.remove(*m);
  --size_;
  delete m;
  release_slot();
  if (size_ == 0) empty_waiters_.wake_all();
}

// Through the task's own hooks (a handful), not the group's members: adding
// n tasks stays linear.
group::member* group::find(const detail::task_base* t) const noexcept {
  if (t == nullptr) return nullptr;
  for (detail::done_hook* h = t->first_hook(); h != nullptr; h = h->next_hook())
    if (auto* m = dynamic_cast<member*>(h); m != nullptr && m->owner == this) return m;
  return nullptr;
}

void group::add(const task_ref& t) {
  detail::task_base* b = t.base_ptr();
  if (b == nullptr) throw moss::error("moss::group::add: empty task handle");
  b->check_owner("moss::group::add");
  if (b->finished() || find(b) != nullptr) return;
  acquire_slot();
  if (b->finished() || find(b) != nullptr) {  // changed while we waited for a slot
    release_slot();
    return;
  }
  insert_or_kill(t);
}

void group::discard(const task_ref& t) noexcept {
  if (member* m = find(t.base_ptr())) remove(m);
}

bool group::contains(const task_ref& t) const noexcept { return find(t.base_ptr()) != nullptr; }

std::vector<task_ref> group::tasks() const {
  std::vector<task_ref> r;
  r.reserve(size_);
  for (member* m = members_.front(); m != nullptr; m = members_.next(*m)) r.push_back(m->task);
  return r;
}

bool group::join_until(detail::time_point deadline) {
  if (size_ == 0) return true;
  detail::check_may_block("moss::group::join");
  for (member* m = members_.front(); m != nullptr; m = members_.next(*m))
    if (m->task.base_ptr()->is_current())
      throw moss::error("moss::group::join: called by task \"" + m->task.name() +
                        "\", a member of the group; it would wait for itself");
  while (size_ > 0) {
    detail::waiter w;
    w.set_what("group join");
    empty_waiters_.push_back(w);
    if (!w.wait(deadline) && size_ > 0) return false;
  }
  return true;
}

void group::kill(bool block) { killall(tasks(), block); }

}  // namespace moss

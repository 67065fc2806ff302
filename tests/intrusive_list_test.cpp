// intrusive_list_test: detail::intrusive_list, the one doubly linked list
// lib/ threads through waiters, fd waits, done hooks, group members and the
// hub's tasks. Header only: built without libmoss.
#include <moss/detail/intrusive_list.hpp>

#include <gtest/gtest.h>

#include <vector>

using moss::detail::intrusive_list;
using moss::detail::list_links;
using moss::detail::member_links;

namespace {

// item: in one list through a base, in another through a member.
struct item : list_links<item> {
  explicit item(int v) : value(v) {}
  int value;
  list_links<item> other;
};

using by_base = intrusive_list<item>;
using by_member = intrusive_list<item, member_links<item, &item::other>>;

template <class List>
std::vector<int> forward(const List& l) {
  std::vector<int> out;
  for (item* p = l.front(); p != nullptr; p = List::next(*p)) out.push_back(p->value);
  return out;
}

template <class List>
std::vector<int> backward(const List& l) {
  std::vector<int> out;
  for (item* p = l.back(); p != nullptr; p = List::prev(*p)) out.push_back(p->value);
  return out;
}

TEST(IntrusiveList, PushBackKeepsOrderBothWays) {
  item a(1), b(2), c(3);
  by_base l;
  EXPECT_TRUE(l.empty());
  l.push_back(a);
  l.push_back(b);
  l.push_back(c);
  EXPECT_FALSE(l.empty());
  EXPECT_EQ(forward(l), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(backward(l), (std::vector<int>{3, 2, 1}));
}

TEST(IntrusiveList, PushFrontPutsNewestFirst) {
  item a(1), b(2), c(3);
  by_base l;
  l.push_front(a);
  l.push_front(b);
  l.push_front(c);
  EXPECT_EQ(forward(l), (std::vector<int>{3, 2, 1}));
  EXPECT_EQ(backward(l), (std::vector<int>{1, 2, 3}));
}

TEST(IntrusiveList, RemoveFromHeadMiddleAndTailRelinks) {
  item a(1), b(2), c(3), d(4);
  by_base l;
  for (item* i : {&a, &b, &c, &d}) l.push_back(*i);
  l.remove(b);
  EXPECT_EQ(forward(l), (std::vector<int>{1, 3, 4}));
  EXPECT_EQ(backward(l), (std::vector<int>{4, 3, 1}));
  l.remove(a);
  EXPECT_EQ(forward(l), (std::vector<int>{3, 4}));
  EXPECT_EQ(backward(l), (std::vector<int>{4, 3}));
  l.remove(d);
  EXPECT_EQ(forward(l), (std::vector<int>{3}));
  EXPECT_EQ(backward(l), (std::vector<int>{3}));
  l.remove(c);
  EXPECT_TRUE(l.empty());
  EXPECT_EQ(l.back(), nullptr);
  // A removed element can go in again.
  l.push_front(b);
  EXPECT_EQ(forward(l), (std::vector<int>{2}));
}

TEST(IntrusiveList, LinkedTellsMembership) {
  item a(1), b(2), lone(3);
  by_base l;
  l.push_back(a);
  l.push_back(b);
  EXPECT_TRUE(l.linked(a));  // the head: no prev
  EXPECT_TRUE(l.linked(b));
  EXPECT_FALSE(l.linked(lone));
  l.remove(a);
  EXPECT_FALSE(l.linked(a));
  EXPECT_TRUE(l.linked(b));
}

TEST(IntrusiveList, BaseAndMemberLinksAreIndependent) {
  item a(1), b(2), c(3);
  by_base first;
  by_member second;
  for (item* i : {&a, &b, &c}) first.push_back(*i);
  for (item* i : {&c, &a}) second.push_back(*i);
  EXPECT_EQ(forward(first), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(forward(second), (std::vector<int>{3, 1}));
  first.remove(a);
  EXPECT_EQ(forward(second), (std::vector<int>{3, 1}));
  EXPECT_EQ(backward(second), (std::vector<int>{1, 3}));
}

TEST(IntrusiveList, ForgetEmptiesWithoutTouchingElements) {
  item a(1), b(2);
  by_base l;
  l.push_back(a);
  l.push_back(b);
  l.forget();
  EXPECT_TRUE(l.empty());
  EXPECT_EQ(by_base::next(a), &b);  // left as it was
}

}  // namespace

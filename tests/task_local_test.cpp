// task_local_test: one value per greenlet, made on first use, destroyed with
// the greenlet.
#include <moss/moss.hpp>

#include "leak_check.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;

namespace {

struct counted {
  static inline int alive = 0;
  int v;
  explicit counted(int x = 0) : v(x) { ++alive; }
  counted(const counted& o) : v(o.v) { ++alive; }
  counted& operator=(const counted&) = default;
  ~counted() { --alive; }
};

}  // namespace

TEST_F(WithHub, EachTaskSeesItsOwnValue) {
  moss::task_local<std::string> name;
  std::vector<std::string> seen(3);
  std::vector<moss::task<void>> ts;
  for (int i = 0; i < 3; ++i)
    ts.push_back(moss::spawn([&, i] {
      name.set("task " + std::to_string(i));
      moss::sleep(std::chrono::milliseconds(5 * (3 - i)));  // interleave
      seen[i] = *name;
    }));
  for (auto& t : ts) t.join();
  EXPECT_EQ(seen, (std::vector<std::string>{"task 0", "task 1", "task 2"}));
  EXPECT_EQ(*name, "") << "the main greenlet has its own, default value";
}

TEST_F(WithHub, AValueIsMadeOnFirstUseByTheInitializerAndNotInherited) {
  int made = 0;
  moss::task_local<int> n([&] { return ++made * 10; });
  EXPECT_FALSE(n.has_value());
  EXPECT_EQ(n.get(), 10);
  EXPECT_TRUE(n.has_value());
  int in_task = 0;
  moss::spawn([&] { in_task = n.get(); }).join();
  EXPECT_EQ(in_task, 20) << "a new task makes its own value";
  EXPECT_EQ(n.get(), 10);
  EXPECT_EQ(made, 2);
  n.reset();
  EXPECT_FALSE(n.has_value());
}

TEST_F(WithHub, ValuesAreDestroyedWhenTheTaskEnds) {
  moss::task_local<counted> c;
  int alive_inside = 0;
  auto t = moss::spawn([&] {
    c.set(counted(3));
    alive_inside = counted::alive;
    moss::sleep(1ms);
  });
  t.join();
  EXPECT_EQ(alive_inside, 1);
  EXPECT_EQ(counted::alive, 0);
}

TEST_F(WithHub, ValuesOfAKilledTaskAreDestroyedToo) {
  moss::task_local<counted> c;
  auto t = moss::spawn([&] {
    c.get();
    moss::sleep(10s);
  });
  moss::yield();
  EXPECT_EQ(counted::alive, 1);
  t.kill();
  EXPECT_EQ(counted::alive, 0);
}

TEST_F(WithHub, DestroyingATaskLocalDestroysOnlyTheCallersValue) {
  moss::event go;
  auto c = std::make_unique<moss::task_local<counted>>();
  (*c)->v = 1;  // the main greenlet's value
  auto t = moss::spawn([&] {
    (*c)->v = 2;
    go.wait();
    moss::task_local<counted> other;  // a new key: does not see the old value
    EXPECT_EQ(other->v, 0);
  });
  moss::yield();
  EXPECT_EQ(counted::alive, 2);
  c.reset();
  EXPECT_EQ(counted::alive, 1) << "the task's value lives until the task ends";
  go.set();
  t.join();
  EXPECT_EQ(counted::alive, 0);
}

TEST_F(WithHub, RawGreenletsHaveTheirOwnValues) {
  moss::task_local<int> n;
  n.set(1);
  int inner = -1;
  moss::greenlet g([&](std::any) -> std::any {
    inner = n.get();
    n.set(2);
    return {};
  });
  g.switch_to();
  EXPECT_EQ(inner, 0);
  EXPECT_EQ(n.get(), 1);
}

TEST_F(WithHub, ManyTaskLocalsInOneTask) {
  std::vector<std::unique_ptr<moss::task_local<int>>> locals;
  for (int i = 0; i < 20; ++i) locals.push_back(std::make_unique<moss::task_local<int>>());
  moss::spawn([&] {
    for (int i = 0; i < 20; ++i) locals[i]->set(i);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(locals[i]->get(), i);
  }).join();
}

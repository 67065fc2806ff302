// greenlet_test: raw greenlets with Python greenlet semantics — values passed
// by switch_to, parents and where control goes when a greenlet ends,
// exceptions thrown in and escaping, misuse errors, and the unwinding of a
// suspended greenlet whose last handle is dropped.
#include <moss/greenlet.hpp>

#include "leak_check.hpp"

#include <any>
#include <future>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using moss_test::WithHub;

namespace {

// Sets a flag when destroyed: shows that a greenlet's stack was unwound.
struct set_on_destroy {
  bool* flag;
  ~set_on_destroy() { *flag = true; }
};

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const moss::error& e) {
    return e.what();
  }
  return "(no moss::error thrown)";
}

}  // namespace

TEST_F(WithHub, TheFirstSwitchPassesTheFunctionsArgument) {
  std::any seen;
  moss::greenlet g([&](std::any v) { seen = std::move(v); });
  g.switch_to(std::string("apple"));
  ASSERT_TRUE(seen.has_value());
  EXPECT_EQ(std::any_cast<std::string>(seen), "apple");
}

TEST_F(WithHub, SwitchToPassesValuesBothWays) {
  moss::greenlet main = moss::current();
  std::vector<int> got;
  moss::greenlet g([&](std::any v) {
    got.push_back(std::any_cast<int>(v));                           // 1
    got.push_back(std::any_cast<int>(main.switch_to(10)));          // 2
    got.push_back(std::any_cast<int>(main.switch_to(20)));          // 3
    return 30;
  });
  EXPECT_EQ(std::any_cast<int>(g.switch_to(1)), 10);
  EXPECT_EQ(std::any_cast<int>(g.switch_to(2)), 20);
  // The finished greenlet's return value comes back to its parent.
  EXPECT_EQ(std::any_cast<int>(g.switch_to(3)), 30);
  EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(g.dead());
}

// switch_to() without a value has its own fast path: what it delivers must be
// empty even right after values went the same way, and a value must still
// arrive after switches without one.
TEST_F(WithHub, SwitchToWithoutAValueDeliversNothingAfterValuesAndBack) {
  moss::greenlet main = moss::current();
  std::vector<std::string> got;
  auto note = [&](const std::any& v) {
    got.push_back(v.has_value() ? std::any_cast<std::string>(v) : std::string("-"));
  };
  moss::greenlet g([&](std::any v) {
    note(v);
    for (int i = 0; i < 3; ++i) {
      note(main.switch_to(std::string("up") + std::to_string(i)));
      note(main.switch_to());
    }
  });
  std::vector<std::string> back;
  auto keep = [&](const std::any& v) {
    back.push_back(v.has_value() ? std::any_cast<std::string>(v) : std::string("-"));
  };
  keep(g.switch_to());                     // starts g with nothing
  keep(g.switch_to(std::string("a")));
  keep(g.switch_to());
  keep(g.switch_to(std::string("b")));
  keep(g.switch_to(std::string("c")));
  keep(g.switch_to());
  keep(g.switch_to());                     // g finishes: its void result is empty
  EXPECT_TRUE(g.dead());
  EXPECT_EQ(got, (std::vector<std::string>{"-", "a", "-", "b", "c", "-", "-"}));
  EXPECT_EQ(back, (std::vector<std::string>{"up0", "-", "up1", "-", "up2", "-", "-"}));
}

// Switches made at different call depths on both sides, from functions that
// return between them: switch_to returns to its caller without a `ret`
// (greenlet.cpp), and every caller must still get its own value back.
namespace {
long bounce(moss::greenlet& to, int depth, long v) {
  if (depth == 0) return std::any_cast<long>(to.switch_to(v)) + 1;
  return bounce(to, depth - 1, v) + 1;  // received + depth + 1
}
}  // namespace

TEST_F(WithHub, SwitchesFromDifferentCallDepthsReturnToTheirCallers) {
  constexpr int n = 1000;
  moss::greenlet main = moss::current();
  moss::greenlet g([&](std::any first) {
    long x = std::any_cast<long>(first);
    for (int i = 0; i < n; ++i) x = bounce(main, i % 5, x);
    return x;
  });
  long v = std::any_cast<long>(g.switch_to(0L));
  for (int j = 0; j < n; ++j) v = bounce(g, j % 3, v);
  EXPECT_TRUE(g.dead());
  long expect = 0;
  for (int j = 0; j < n; ++j) expect = expect + j % 5 + 1 + j % 3 + 1;
  EXPECT_EQ(v, expect);
}

TEST_F(WithHub, AFinishedGreenletReturnsToItsParentNotToWhoeverSwitchedToIt) {
  moss::greenlet main = moss::current();
  std::any reached_parent;
  moss::greenlet parent([&] {
    reached_parent = main.switch_to(std::string("parent suspended"));
    return std::string("parent done");
  });
  moss::greenlet child([] { return std::string("from child"); });
  child.set_parent(parent);
  EXPECT_EQ(std::any_cast<std::string>(parent.switch_to()), "parent suspended");
  // main switches to child; child's result goes to parent, which then ends
  // and returns to main (its own parent).
  EXPECT_EQ(std::any_cast<std::string>(child.switch_to()), "parent done");
  ASSERT_TRUE(reached_parent.has_value());
  EXPECT_EQ(std::any_cast<std::string>(reached_parent), "from child");
  EXPECT_TRUE(child.dead());
  EXPECT_TRUE(parent.dead());
}

TEST_F(WithHub, AResultGoingToAParentThatNeverStartedStartsItWithThatValue) {
  moss::greenlet parent([](std::any v) { return std::any_cast<int>(v) * 10; });
  moss::greenlet child([] { return 5; }, parent);
  EXPECT_EQ(std::any_cast<int>(child.switch_to()), 50);
  EXPECT_TRUE(parent.dead());
}

TEST_F(WithHub, WhenTheParentIsDeadControlGoesToTheNearestLiveAncestor) {
  moss::greenlet main = moss::current();
  moss::greenlet a([] { return 1; });                // parent: main
  moss::greenlet b([] { return 2; }, a);             // parent: a
  moss::greenlet c([] { return std::string("c"); }, b);  // parent: b
  EXPECT_EQ(std::any_cast<int>(a.switch_to()), 1);
  EXPECT_EQ(std::any_cast<int>(b.switch_to()), 2);  // a is dead: b returns to main
  ASSERT_TRUE(a.dead());
  ASSERT_TRUE(b.dead());
  EXPECT_EQ(std::any_cast<std::string>(c.switch_to()), "c");  // skips b and a
  EXPECT_TRUE(c.parent() == b);  // the link itself is not rewritten
}

TEST_F(WithHub, ThrowInRaisesAtTheSwitchPointOfASuspendedGreenlet) {
  moss::greenlet main = moss::current();
  moss::greenlet g([&] {
    try {
      main.switch_to(std::string("ready"));
    } catch (const std::runtime_error& e) {
      return std::string("caught ") + e.what();
    }
    return std::string("not thrown");
  });
  EXPECT_EQ(std::any_cast<std::string>(g.switch_to()), "ready");
  auto r = g.throw_in(std::make_exception_ptr(std::runtime_error("pear")));
  EXPECT_EQ(std::any_cast<std::string>(r), "caught pear");
  EXPECT_TRUE(g.dead());
}

TEST_F(WithHub, ThrowInToANeverStartedGreenletKillsItAndRaisesInTheParent) {
  bool ran = false;
  moss::greenlet g([&] { ran = true; });
  EXPECT_THROW(g.throw_in(std::make_exception_ptr(std::runtime_error("plum"))), std::runtime_error);
  EXPECT_FALSE(ran);
  EXPECT_TRUE(g.dead());
}

TEST_F(WithHub, ThrowInToANeverStartedGreenletDeliversToItsParentGreenlet) {
  moss::greenlet main = moss::current();
  bool ran = false;
  std::string parent_caught;
  moss::greenlet parent([&] {
    try {
      main.switch_to();
    } catch (const std::runtime_error& e) {
      parent_caught = e.what();
    }
    return std::string("parent done");
  });
  parent.switch_to();
  moss::greenlet g([&] { ran = true; }, parent);
  // The error lands in parent at its switch point; parent then returns to main.
  EXPECT_EQ(std::any_cast<std::string>(g.throw_in(std::make_exception_ptr(std::runtime_error("fig")))),
            "parent done");
  EXPECT_FALSE(ran);
  EXPECT_EQ(parent_caught, "fig");
}

TEST_F(WithHub, AnExceptionEscapingAGreenletIsRaisedInTheParentAtItsSwitchPoint) {
  moss::greenlet g([]() -> int { throw std::out_of_range("escaped"); });
  try {
    g.switch_to();
    FAIL() << "switch_to() returned";
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "escaped");
  }
  EXPECT_TRUE(g.dead());
}

TEST_F(WithHub, AnExceptionEscapingAChildIsRaisedWhereTheParentGreenletSwitchedAway) {
  moss::greenlet main = moss::current();
  std::string parent_caught;
  moss::greenlet parent([&] {
    try {
      main.switch_to();
    } catch (const std::logic_error& e) {
      parent_caught = e.what();
    }
  });
  parent.switch_to();
  moss::greenlet child([] { throw std::logic_error("from child"); }, parent);
  EXPECT_NO_THROW(child.switch_to());  // parent caught it, then returned to main
  EXPECT_EQ(parent_caught, "from child");
}

TEST_F(WithHub, GreenletExitEscapingIsANormalEnd) {
  moss::greenlet g([]() -> int { throw moss::greenlet_exit{}; });
  std::any r;
  EXPECT_NO_THROW(r = g.switch_to());
  EXPECT_FALSE(r.has_value());
  EXPECT_TRUE(g.dead());

  // The same when it is thrown in and not caught.
  moss::greenlet main = moss::current();
  bool unwound = false;
  moss::greenlet h([&] {
    set_on_destroy guard{&unwound};
    main.switch_to();
  });
  h.switch_to();
  EXPECT_NO_THROW(h.throw_in(std::make_exception_ptr(moss::greenlet_exit{})));
  EXPECT_TRUE(unwound);
  EXPECT_TRUE(h.dead());
}

TEST_F(WithHub, SwitchingToADeadGreenletThrowsAClearError) {
  moss::greenlet g([] {});
  g.set_name("finished-one");
  g.switch_to();
  ASSERT_TRUE(g.dead());
  EXPECT_EQ(message_of([&] { g.switch_to(); }), "moss: cannot switch to greenlet \"finished-one\": it is dead");
  EXPECT_THROW(g.throw_in(std::make_exception_ptr(std::runtime_error("x"))), moss::error);
}

TEST_F(WithHub, SwitchingToAGreenletOfAnotherThreadThrows) {
  // The other thread keeps its greenlet (and itself) alive until we are done,
  // so the greenlet's owner is a live thread when we try.
  std::promise<moss::greenlet*> made;
  std::promise<void> done;
  std::thread other([&] {
    bool ran = false;
    moss::greenlet theirs([&] { ran = true; });
    theirs.set_name("theirs");
    made.set_value(&theirs);
    done.get_future().wait();
    EXPECT_FALSE(ran);
  });
  moss::greenlet* theirs = made.get_future().get();
  std::string switch_msg = message_of([&] { theirs->switch_to(1); });
  std::string throw_msg = message_of([&] { theirs->throw_in(std::make_exception_ptr(std::runtime_error("x"))); });
  std::string parent_msg = message_of([&] {
    moss::greenlet mine([] {});
    mine.set_parent(*theirs);
  });
  done.set_value();
  other.join();
  EXPECT_EQ(switch_msg, "moss: cannot switch to greenlet \"theirs\": it belongs to another thread");
  EXPECT_EQ(throw_msg, switch_msg);
  EXPECT_EQ(parent_msg, "moss: a greenlet's parent must belong to the same thread");
}

TEST_F(WithHub, SetParentRejectsACycle) {
  moss::greenlet a([] {});
  moss::greenlet b([] {}, a);
  moss::greenlet c([] {}, b);
  EXPECT_EQ(message_of([&] { a.set_parent(c); }), "moss: set_parent would make a cyclic parent chain");
  EXPECT_EQ(message_of([&] { a.set_parent(a); }), "moss: set_parent would make a cyclic parent chain");
  EXPECT_TRUE(a.parent() == moss::current());  // unchanged by the failed calls
  c.set_parent(a);                             // not a cycle
  EXPECT_TRUE(c.parent() == a);
}

TEST_F(WithHub, StartedDeadAndBoolFollowTheLifeOfAGreenlet) {
  moss::greenlet main = moss::current();
  bool started_inside = false, dead_inside = true, bool_inside = false;
  moss::greenlet g([&] {
    moss::greenlet self = moss::current();
    started_inside = self.started();
    dead_inside = self.dead();
    bool_inside = static_cast<bool>(self);
    main.switch_to();
  });
  EXPECT_FALSE(g.started());
  EXPECT_FALSE(g.dead());
  EXPECT_FALSE(static_cast<bool>(g));

  g.switch_to();  // running, then suspended
  EXPECT_TRUE(started_inside);
  EXPECT_FALSE(dead_inside);
  EXPECT_TRUE(bool_inside);
  EXPECT_TRUE(g.started());
  EXPECT_FALSE(g.dead());
  EXPECT_TRUE(static_cast<bool>(g));

  g.switch_to();  // finished
  EXPECT_TRUE(g.started());
  EXPECT_TRUE(g.dead());
  EXPECT_FALSE(static_cast<bool>(g));
}

TEST_F(WithHub, CurrentIsTheRunningGreenlet) {
  moss::greenlet main = moss::current();
  EXPECT_EQ(main.name(), "main");
  EXPECT_TRUE(main.started());
  EXPECT_FALSE(main.dead());
  bool inside_is_g = false, inside_is_main = true;
  moss::greenlet* self = nullptr;
  moss::greenlet g([&] {
    inside_is_g = moss::current() == *self;
    inside_is_main = moss::current() == main;
  });
  self = &g;
  g.switch_to();
  EXPECT_TRUE(inside_is_g);
  EXPECT_FALSE(inside_is_main);
  EXPECT_TRUE(moss::current() == main);
  EXPECT_TRUE(g.parent() == main);
}

TEST_F(WithHub, DroppingTheLastHandleOfASuspendedGreenletUnwindsIt) {
  bool unwound = false;
  bool after_switch = false;
  {
    moss::greenlet main = moss::current();
    moss::greenlet g([&] {
      set_on_destroy guard{&unwound};
      main.switch_to();
      after_switch = true;  // never: greenlet_exit is raised at the switch
    });
    g.switch_to();
    ASSERT_FALSE(unwound);
  }  // last handle of g dropped here
  EXPECT_TRUE(unwound);
  EXPECT_FALSE(after_switch);
  // The leak check in TearDown also shows its control block and stack went.
}

TEST_F(WithHub, DroppingTheLastHandleFromAnotherGreenletUnwindsItAndComesBackThere) {
  moss::greenlet main = moss::current();
  std::vector<std::string> steps;
  auto victim = std::make_unique<moss::greenlet>([&] {
    try {
      main.switch_to();
    } catch (const moss::greenlet_exit&) {
      steps.push_back("victim unwinds");
      throw;
    }
  });
  victim->switch_to();
  moss::greenlet dropper([&] {
    victim.reset();  // the victim's parent is main, but control comes back here
    steps.push_back("dropper continues");
    return 1;
  });
  EXPECT_EQ(std::any_cast<int>(dropper.switch_to()), 1);
  EXPECT_EQ(steps, (std::vector<std::string>{"victim unwinds", "dropper continues"}));
}

TEST_F(WithHub, SwitchingToYourselfReturnsTheValueAndThrowInNeedsAnException) {
  moss::greenlet main = moss::current();
  EXPECT_EQ(std::any_cast<int>(main.switch_to(4)), 4);
  EXPECT_THROW(main.throw_in(std::make_exception_ptr(std::runtime_error("self"))), std::runtime_error);
  EXPECT_EQ(message_of([&] { main.throw_in(nullptr); }), "moss: throw_in needs an exception");
  EXPECT_EQ(message_of([&] { main.parent(); }), "moss: greenlet \"main\" has no parent");
}

TEST_F(WithHub, AnyCallableShapeCanBeAGreenletBody) {
  bool void_ran = false;
  moss::greenlet a([&] { void_ran = true; });
  EXPECT_FALSE(a.switch_to(5).has_value());
  EXPECT_TRUE(void_ran);

  moss::greenlet b([] { return 7; });
  EXPECT_EQ(std::any_cast<int>(b.switch_to()), 7);

  moss::greenlet c([](std::any v) { return std::any(std::any_cast<int>(v) * 2); });
  std::any r = c.switch_to(21);
  ASSERT_EQ(r.type(), typeid(int));  // not an any wrapped in an any
  EXPECT_EQ(std::any_cast<int>(r), 42);

  int seen = 0;
  moss::greenlet d([&](std::any v) { seen = std::any_cast<int>(v); });
  EXPECT_FALSE(d.switch_to(9).has_value());
  EXPECT_EQ(seen, 9);

  // A plain std::function of the stored type works too.
  moss::greenlet::function fn = [](std::any v) { return v; };
  moss::greenlet e(fn);
  EXPECT_EQ(std::any_cast<std::string>(e.switch_to(std::string("echo"))), "echo");
}

// The leak-check counts are kept per thread (no locked instruction per
// greenlet) and summed: a greenlet and stack alive on another thread count,
// and stop counting once that thread has destroyed them and ended.
TEST_F(WithHub, LiveCountsIncludeOtherThreadsGreenletsAndStacks) {
  const std::size_t greenlets = moss::detail::live_greenlets();
  const std::size_t stacks = moss::detail::stacks_in_use();
  std::promise<void> made, checked;
  std::thread other([&] {
    moss::greenlet root = moss::current();
    moss::greenlet g([&root] { root.switch_to(); });
    g.switch_to();  // started: it holds a stack now
    made.set_value();
    checked.get_future().wait();
  });  // g unwinds and dies with its last handle, then the thread ends
  made.get_future().wait();
  // The other thread's root greenlet and g; g's stack.
  EXPECT_EQ(moss::detail::live_greenlets(), greenlets + 2);
  EXPECT_EQ(moss::detail::stacks_in_use(), stacks + 1);
  checked.set_value();
  other.join();
  EXPECT_EQ(moss::detail::live_greenlets(), greenlets);
  EXPECT_EQ(moss::detail::stacks_in_use(), stacks);
}

// Ids are handed to threads in blocks: still unique across threads.
TEST_F(WithHub, GreenletIdsAreUniqueAcrossThreads) {
  constexpr int threads = 4, per_thread = 600;  // more than one block each
  std::vector<std::vector<std::string>> names(threads);
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i)
    workers.emplace_back([&names, i] {
      for (int k = 0; k < per_thread; ++k) names[static_cast<std::size_t>(i)].push_back(moss::greenlet([] {}).name());
    });
  for (auto& w : workers) w.join();
  std::set<std::string> all;
  for (auto& v : names) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(threads * per_thread));
}

// timer_queue_test: the hub's timer heap on its own — firing order, ties in
// arming order, removal from anywhere, re-arming — checked against a sorted
// reference under random operations.
#include "core/timer_queue.hpp"

#include "leak_check.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <set>
#include <tuple>
#include <vector>

using moss_test::WithHub;
using namespace std::chrono_literals;
using moss::detail::time_point;
using moss::detail::timer;
using moss::detail::timer_queue;

namespace {

struct logging_timer final : timer {
  int id = 0;
  std::vector<int>* log = nullptr;
  void fire() noexcept override { log->push_back(id); }
};

// t0 is an arbitrary origin; the queue never reads the clock itself.
const time_point t0 = time_point{} + 1000h;

std::vector<logging_timer> make_timers(int n, std::vector<int>& log) {
  std::vector<logging_timer> ts(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    ts[static_cast<std::size_t>(i)].id = i;
    ts[static_cast<std::size_t>(i)].log = &log;
  }
  return ts;
}

}  // namespace

TEST_F(WithHub, TimersFireInDeadlineOrder) {
  std::vector<int> log;
  auto ts = make_timers(6, log);
  timer_queue q;
  const int offsets_ms[] = {50, 10, 40, 0, 30, 20};
  for (int i = 0; i < 6; ++i) q.add(ts[static_cast<std::size_t>(i)], t0 + std::chrono::milliseconds(offsets_ms[i]));
  EXPECT_EQ(q.size(), 6u);
  EXPECT_EQ(q.next_deadline(), t0);

  // Only what is due fires.
  EXPECT_EQ(q.fire_expired(t0 + 25ms), 3u);
  EXPECT_EQ(log, (std::vector<int>{3, 1, 5}));
  EXPECT_EQ(q.next_deadline(), t0 + 30ms);
  EXPECT_FALSE(ts[3].armed());
  EXPECT_TRUE(ts[4].armed());

  EXPECT_EQ(q.fire_expired(t0 + 1h), 3u);
  EXPECT_EQ(log, (std::vector<int>{3, 1, 5, 4, 2, 0}));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.next_deadline(), moss::detail::no_deadline);
  EXPECT_EQ(q.fire_expired(t0 + 2h), 0u);  // each fired once
}

TEST_F(WithHub, EqualDeadlinesFireInArmingOrder) {
  std::vector<int> log;
  auto ts = make_timers(40, log);
  timer_queue q;
  // Interleave two deadlines so ties are spread over the heap.
  for (int i = 0; i < 40; ++i) q.add(ts[static_cast<std::size_t>(i)], i % 2 == 0 ? t0 + 5ms : t0);
  q.fire_expired(t0 + 5ms);
  std::vector<int> expected;
  for (int i = 1; i < 40; i += 2) expected.push_back(i);
  for (int i = 0; i < 40; i += 2) expected.push_back(i);
  EXPECT_EQ(log, expected);
}

TEST_F(WithHub, ReaddingAnArmedTimerMovesIt) {
  std::vector<int> log;
  auto ts = make_timers(3, log);
  timer_queue q;
  q.add(ts[0], t0 + 10ms);
  q.add(ts[1], t0 + 20ms);
  q.add(ts[2], t0 + 30ms);
  q.add(ts[0], t0 + 40ms);  // later
  q.add(ts[2], t0 + 5ms);   // earlier
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.next_deadline(), t0 + 5ms);
  q.fire_expired(t0 + 1h);
  EXPECT_EQ(log, (std::vector<int>{2, 1, 0}));

  // Re-arming at the same deadline goes behind timers already armed there.
  log.clear();
  q.add(ts[0], t0);
  q.add(ts[1], t0);
  q.add(ts[0], t0);
  q.fire_expired(t0);
  EXPECT_EQ(log, (std::vector<int>{1, 0}));
}

TEST_F(WithHub, RemovingATimerThatIsNotArmedDoesNothing) {
  std::vector<int> log;
  auto ts = make_timers(2, log);
  timer_queue q;
  q.add(ts[0], t0);
  q.remove(ts[1]);
  q.remove(ts[0]);
  q.remove(ts[0]);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.fire_expired(t0 + 1h), 0u);
  EXPECT_TRUE(log.empty());
}

TEST_F(WithHub, RandomAddsRemovesAndFiresMatchASortedReference) {
  constexpr int n_timers = 300;
  constexpr int n_ops = 5000;
  std::vector<int> log;
  auto ts = make_timers(n_timers, log);
  timer_queue q;
  // Reference: (deadline, arming order, id); the set's order is the firing order.
  using entry = std::tuple<time_point, std::uint64_t, int>;
  std::set<entry> ref;
  std::vector<std::set<entry>::iterator> where(n_timers, ref.end());
  std::uint64_t armed_count = 0;

  std::mt19937 rng(20240611);
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  time_point now = t0;

  for (int op = 0; op < n_ops; ++op) {
    int id = pick(n_timers);
    auto& t = ts[static_cast<std::size_t>(id)];
    int kind = pick(10);
    if (kind < 6) {
      // A few dozen distinct deadlines, so ties are common.
      time_point d = now + std::chrono::milliseconds(pick(40));
      if (where[static_cast<std::size_t>(id)] != ref.end()) ref.erase(where[static_cast<std::size_t>(id)]);
      where[static_cast<std::size_t>(id)] = ref.insert({d, armed_count++, id}).first;
      q.add(t, d);
    } else if (kind < 9) {
      if (where[static_cast<std::size_t>(id)] != ref.end()) ref.erase(where[static_cast<std::size_t>(id)]);
      where[static_cast<std::size_t>(id)] = ref.end();
      q.remove(t);
    } else {
      // Time passes; everything due fires, in order.
      now += std::chrono::milliseconds(pick(5));
      log.clear();
      std::vector<int> expected;
      while (!ref.empty() && std::get<0>(*ref.begin()) <= now) {
        int fired = std::get<2>(*ref.begin());
        expected.push_back(fired);
        where[static_cast<std::size_t>(fired)] = ref.end();
        ref.erase(ref.begin());
      }
      ASSERT_EQ(q.fire_expired(now), expected.size()) << "op " << op;
      ASSERT_EQ(log, expected) << "op " << op;
    }
    ASSERT_EQ(q.size(), ref.size()) << "op " << op;
    ASSERT_EQ(q.next_deadline(), ref.empty() ? moss::detail::no_deadline : std::get<0>(*ref.begin())) << "op " << op;
    ASSERT_EQ(t.armed(), where[static_cast<std::size_t>(id)] != ref.end()) << "op " << op;
  }

  // Drain: the full remaining order matches.
  log.clear();
  std::vector<int> expected;
  for (const auto& e : ref) expected.push_back(std::get<2>(e));
  q.fire_expired(moss::detail::no_deadline);
  EXPECT_EQ(log, expected);
  EXPECT_TRUE(q.empty());
}

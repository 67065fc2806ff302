// moss-tour: what moss is for, in a few seconds. Uses the explicit API.
//
// 1. The seed articles' classic: three tasks sleep 1, 2 and 4 units; run as
//    greenlets they all finish after ~4 units, not 1 + 2 + 4 = 7.
// 2. greenlet's eat/play: two raw greenlets switch back and forth with
//    switch_to(), passing values both ways.
#include "args.hpp"

#include <moss/moss.hpp>

#include <chrono>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

constexpr auto unit = 250ms;

double since(clk::time_point t0) { return std::chrono::duration<double>(clk::now() - t0).count(); }

void sleepers() {
  std::printf("== three tasks sleep 1, 2 and 4 units (1 unit = %lld ms) ==\n", static_cast<long long>(unit.count()));
  auto t0 = clk::now();
  auto work = [t0](int units) {
    std::printf("  %.2fs  waiting %d\n", since(t0), units);
    moss::sleep(units * unit);
    std::printf("  %.2fs  done after %d\n", since(t0), units);
    return "done after " + std::to_string(units);
  };
  auto a = moss::spawn(work, 1);
  auto b = moss::spawn(work, 2);
  auto c = moss::spawn(work, 4);
  for (auto* t : {&a, &b, &c}) std::printf("  result: %s\n", t->get().c_str());
  std::printf("  total %.2fs for 7 units of sleeping (~4 units: they overlapped)\n\n", since(t0));
}

void eat_and_play() {
  std::printf("== greenlet eat/play ping-pong with switch_to ==\n");
  moss::greenlet* play_ptr = nullptr;
  moss::greenlet eat([&](std::any food) {
    for (int i = 0; i < 3; ++i) {
      std::printf("  eat  %s\n", std::any_cast<std::string>(food).c_str());
      food = play_ptr->switch_to(std::string("tired after eating ") + std::to_string(i + 1));
    }
    return std::string("full");
  });
  moss::greenlet play([&](std::any mood) {
    for (int i = 0; i < 3; ++i) {
      std::printf("  play %s\n", std::any_cast<std::string>(mood).c_str());
      mood = eat.switch_to(std::string("dish ") + std::to_string(i + 2));
    }
    return std::string("tired");
  });
  play_ptr = &play;
  std::any r = eat.switch_to(std::string("dish 1"));
  std::printf("  eat finished and returned \"%s\" to main\n", std::any_cast<std::string>(r).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const sample::args cli("moss-tour",
                         "usage: moss-tour\n\nA few seconds' demonstration of moss: tasks that sleep concurrently on one\n"
                         "thread, and two greenlets passing values with switch_to().\n");
  auto operands = cli.parse(argc, argv, {}, [](std::string_view, const char*) {});
  if (!operands.empty()) cli.fail("unexpected argument \"" + operands[0] + "\"");
  try {
    moss::run([] {
      sleepers();
      eat_and_play();
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moss-tour: %s\n", e.what());
    return 1;
  }
  return 0;
}

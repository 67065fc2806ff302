// core_bench.cpp: the costs of the core, each next to what it competes with,
// in one program so that both sides see the same machine at the same time:
//
//   switch_round_trip   moss::greenlet::switch_to there and back, against
//                       boost::context::fiber::resume() there and back (also
//                       with errno and the exception state kept, as moss
//                       keeps them) and
//                       a bare Boost.Context fcontext jump there and back (and,
//                       for context, the same jumps made two calls deep, and
//                       made through one call entered as moss enters its
//                       switch: the floor for a switch that is a call)
//   yield_round_trip    two spawned tasks each calling moss::yield(); one
//                       iteration is both of them yielding once; against two
//                       Boost.Fiber fibers each calling this_fiber::yield()
//   spawn_join          moss::spawn([]{}).join() with a pooled stack, against
//                       Boost.Fiber's fiber f([]{}); f.join(); (its default
//                       stack, and its pooled stack allocator)
//
// After Google Benchmark's table, a "summary:" line per comparison gives the
// fastest repetition of each side, the ratio and the target
// (see bench_summary.hpp).
#include "bench_summary.hpp"

#include <moss/greenlet.hpp>
#include <moss/task.hpp>
#include <moss/time.hpp>

#include <boost/context/detail/fcontext.hpp>
#include <boost/context/fiber.hpp>
#include <boost/context/pooled_fixedsize_stack.hpp>
#include <boost/fiber/all.hpp>

#include <benchmark/benchmark.h>

#include <cerrno>
#include <cstdio>
#include <cxxabi.h>
#include <memory>
#include <vector>

namespace {

namespace bc = boost::context::detail;

// --- 1. switch_to round trip --------------------------------------------

void switch_round_trip_moss(benchmark::State& state) {
  moss::greenlet main = moss::current();
  bool stop = false;
  moss::greenlet echo([&] {
    while (!stop) main.switch_to();
  });
  echo.switch_to();  // start it; it switches straight back
  for (auto _ : state) echo.switch_to();
  stop = true;
  echo.switch_to();  // it returns, and control comes back here
  if (!echo.dead()) state.SkipWithError("the echo greenlet did not finish");
}

// The whole of the echo side of a bare fcontext round trip: jump back to
// whoever jumped here, forever.
void echo_fcontext(bc::transfer_t t) {
  for (;;) t = bc::jump_fcontext(t.fctx, nullptr);
}

void switch_round_trip_raw_fcontext(benchmark::State& state) {
  constexpr std::size_t size = 64 * 1024;
  auto stack = std::make_unique<char[]>(size);
  bc::fcontext_t echo = bc::make_fcontext(stack.get() + size, size, &echo_fcontext);
  echo = bc::jump_fcontext(echo, nullptr).fctx;  // start it; it jumps straight back
  for (auto _ : state) echo = bc::jump_fcontext(echo, nullptr).fctx;
  // The echo context is abandoned mid-loop: nothing on its stack needs
  // destroying, so freeing the stack is all the clean-up it takes.
}

// boost::context::fiber, Boost.Context's own C++ API for the same thing: a
// move-only handle whose resume() returns on the other side with the handle
// of whoever resumed us. One iteration is a resume there and one back.
void switch_round_trip_boost_fiber(benchmark::State& state) {
  namespace ctx = boost::context;
  bool stop = false;
  ctx::fiber echo{[&stop](ctx::fiber&& caller) {
    while (!stop) caller = std::move(caller).resume();
    return std::move(caller);
  }};
  echo = std::move(echo).resume();  // start it; it resumes us straight back
  for (auto _ : state) echo = std::move(echo).resume();
  stop = true;
  echo = std::move(echo).resume();  // it returns: echo is now empty
  if (echo) state.SkipWithError("the echo fiber did not finish");
}

// The same fiber round trip doing the rest of what a moss switch keeps per
// greenlet: errno and the C++ runtime's two words of caught-exception state,
// saved before each resume and restored after it (their addresses looked up
// once, as moss caches them). The cost of those semantics alone.
void switch_round_trip_boost_fiber_errno_eh(benchmark::State& state) {
  namespace ctx = boost::context;
  int* const err = &errno;
  void** const eh = reinterpret_cast<void**>(abi::__cxa_get_globals());
  auto resume_keeping = [err, eh](ctx::fiber&& f) {
    const int saved_errno = *err;
    void* saved_eh[2] = {eh[0], eh[1]};
    ctx::fiber back = std::move(f).resume();
    eh[0] = saved_eh[0];
    eh[1] = saved_eh[1];
    *err = saved_errno;
    return back;
  };
  bool stop = false;
  ctx::fiber echo{[&stop, &resume_keeping](ctx::fiber&& caller) {
    while (!stop) caller = resume_keeping(std::move(caller));
    return std::move(caller);
  }};
  echo = resume_keeping(std::move(echo));
  for (auto _ : state) echo = resume_keeping(std::move(echo));
  stop = true;
  echo = std::move(echo).resume();
  if (echo) state.SkipWithError("the echo fiber did not finish");
}

// The same bare jumps, made two function calls deep on both sides as a real
// switch is (moss: switch_to -> switch_with -> context_switch). For context:
// jump_fcontext leaves by an indirect jmp, not ret, so each switch leaves
// the CPU's return-address predictor one entry out of step and every return
// made after it mispredicts. The empty asm keeps the calls from becoming
// tail jumps.
[[gnu::noinline]] bc::fcontext_t jump_inner(bc::fcontext_t to) {
  bc::fcontext_t back = bc::jump_fcontext(to, nullptr).fctx;
  asm volatile("");
  return back;
}
[[gnu::noinline]] bc::fcontext_t jump_outer(bc::fcontext_t to) {
  bc::fcontext_t back = jump_inner(to);
  asm volatile("");
  return back;
}

void echo_fcontext_nested(bc::transfer_t t) {
  for (;;) t.fctx = jump_outer(t.fctx);
}

void switch_round_trip_raw_fcontext_nested(benchmark::State& state) {
  constexpr std::size_t size = 64 * 1024;
  auto stack = std::make_unique<char[]>(size);
  bc::fcontext_t echo = bc::make_fcontext(stack.get() + size, size, &echo_fcontext_nested);
  echo = jump_outer(echo);
  for (auto _ : state) echo = jump_outer(echo);
}

// The floor for any switch that is a function call returning to its caller:
// the same bare jumps, entered with push + jmp so that no call/ret pair is
// split across stacks (as moss does), made through one function call on each
// side. Each side's call returns to a different call site, but the CPU's
// return-stack predictor holds the other side's: the return after every
// switch mispredicts. x86-64 only; elsewhere this is the plain call.
#if defined(__x86_64__)
[[gnu::noinline]] bc::fcontext_t jump_balanced(bc::fcontext_t to) {
  void* back;
  void* data = nullptr;
  asm volatile(
      "movq %%rsp, %%rbx\n\t"
      "subq $128, %%rsp\n\t"
      "andq $-16, %%rsp\n\t"
      "leaq 1f(%%rip), %%rcx\n\t"
      "pushq %%rcx\n\t"
      "jmp jump_fcontext@PLT\n"
      "1:\n\t"
      "movq %%rbx, %%rsp\n\t"
      : "=a"(back), "+D"(to), "+S"(data)
      :
      : "rbx", "rcx", "rdx", "r8", "r9", "r10", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4",
        "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "st",
        "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)");
  return back;
}
#else
[[gnu::noinline]] bc::fcontext_t jump_balanced(bc::fcontext_t to) {
  bc::fcontext_t back = bc::jump_fcontext(to, nullptr).fctx;
  asm volatile("");
  return back;
}
#endif

void echo_fcontext_balanced(bc::transfer_t t) {
  for (;;) {
    t.fctx = jump_balanced(t.fctx);
    asm volatile("");
  }
}

void switch_round_trip_raw_fcontext_one_call(benchmark::State& state) {
  constexpr std::size_t size = 64 * 1024;
  auto stack = std::make_unique<char[]>(size);
  bc::fcontext_t echo = bc::make_fcontext(stack.get() + size, size, &echo_fcontext_balanced);
  echo = jump_balanced(echo);
  for (auto _ : state) echo = jump_balanced(echo);
}

// --- 2. hub yield round trip ----------------------------------------------

void yield_round_trip_moss(benchmark::State& state) {
  moss::run([&] {
    bool stop = false;
    auto timed = moss::spawn([&] {
      for (auto _ : state) moss::yield();
      stop = true;
    });
    auto partner = moss::spawn([&] {
      while (!stop) moss::yield();
    });
    timed.join();
    partner.join();
  });
}

// The same with Boost.Fiber's default (round-robin) scheduler: the main
// fiber and a partner each yield once per iteration.
void yield_round_trip_boost_fiber(benchmark::State& state) {
  bool stop = false;
  boost::fibers::fiber partner([&] {
    while (!stop) boost::this_fiber::yield();
  });
  for (auto _ : state) boost::this_fiber::yield();
  stop = true;
  partner.join();
}

// A thousand tasks taking turns: one switch per yield, each to a task whose
// stack was touched 999 switches ago, so the figure includes the cache
// misses of many live stacks (context.cpp colours the stack tops for this).
void yield_ring_1000_moss(benchmark::State& state) {
  constexpr int tasks = 1000;
  moss::run([&] {
    bool stop = false;
    std::vector<moss::task<void>> ring;
    ring.push_back(moss::spawn([&] {
      for (auto _ : state) moss::yield();  // a full turn: 1,000 switches
      stop = true;
    }));
    for (int i = 1; i < tasks; ++i)
      ring.push_back(moss::spawn([&] {
        while (!stop) moss::yield();
      }));
    for (auto& t : ring) t.join();
  });
}

// --- 3. spawn + run + join --------------------------------------------------

void spawn_join_moss(benchmark::State& state) {
  moss::run([&] {
    moss::spawn([] {}).join();  // warm the stack pool and the hub
    for (auto _ : state) moss::spawn([] {}).join();
  });
}

void spawn_join_boost_fiber(benchmark::State& state) {
  for (auto _ : state) {
    boost::fibers::fiber f([] {});
    f.join();
  }
}

void spawn_join_boost_fiber_pooled(benchmark::State& state) {
  boost::context::pooled_fixedsize_stack pool;
  for (auto _ : state) {
    boost::fibers::fiber f(std::allocator_arg, pool, [] {});
    f.join();
  }
}

}  // namespace

int main(int argc, char** argv) {
  moss_bench::add("switch_round_trip/moss", &switch_round_trip_moss);
  moss_bench::add("switch_round_trip/boost_fiber", &switch_round_trip_boost_fiber);
  moss_bench::add("switch_round_trip/boost_fiber_errno_eh", &switch_round_trip_boost_fiber_errno_eh);
  moss_bench::add("switch_round_trip/raw_fcontext", &switch_round_trip_raw_fcontext);
  moss_bench::add("switch_round_trip/raw_fcontext_nested", &switch_round_trip_raw_fcontext_nested);
  moss_bench::add("switch_round_trip/raw_fcontext_one_call", &switch_round_trip_raw_fcontext_one_call);
  moss_bench::add("yield_round_trip/moss", &yield_round_trip_moss);
  moss_bench::add("yield_round_trip/boost_fiber", &yield_round_trip_boost_fiber);
  moss_bench::add("yield_ring_1000/moss", &yield_ring_1000_moss);
  moss_bench::add("spawn_join/moss", &spawn_join_moss);
  moss_bench::add("spawn_join/boost_fiber", &spawn_join_boost_fiber);
  moss_bench::add("spawn_join/boost_fiber_pooled", &spawn_join_boost_fiber_pooled);

  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  moss_bench::collecting_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  std::printf("\nsummary: fastest repetition, CPU time per iteration\n");
  moss_bench::print_ratio(reporter, "switch_to vs Boost fiber:", "switch_round_trip/moss",
                          "switch_round_trip/boost_fiber", 1.5);
  moss_bench::print_ratio(reporter, "switch_to vs fiber + errno/eh:", "switch_round_trip/moss",
                          "switch_round_trip/boost_fiber_errno_eh", 0);
  moss_bench::print_ratio(reporter, "switch_to vs bare fcontext:", "switch_round_trip/moss",
                          "switch_round_trip/raw_fcontext", 0);
  moss_bench::print_ratio(reporter, "Boost fiber vs bare fcontext:", "switch_round_trip/boost_fiber",
                          "switch_round_trip/raw_fcontext", 0);
  moss_bench::print_ratio(reporter, "switch_to vs nested fcontext:", "switch_round_trip/moss",
                          "switch_round_trip/raw_fcontext_nested", 0);
  moss_bench::print_ratio(reporter, "switch_to vs one-call fcontext:", "switch_round_trip/moss",
                          "switch_round_trip/raw_fcontext_one_call", 0);
  moss_bench::print_absolute(reporter, "yield round trip:", "yield_round_trip/moss", 40);
  moss_bench::print_ratio(reporter, "yield vs Boost.Fiber yield:", "yield_round_trip/moss",
                          "yield_round_trip/boost_fiber", 0);
  moss_bench::print_absolute(reporter, "yield, ring of 1,000 (a turn):", "yield_ring_1000/moss", 0);
  moss_bench::print_absolute(reporter, "spawn+join, pooled stack:", "spawn_join/moss", 100);
  moss_bench::print_ratio(reporter, "spawn+join vs Boost.Fiber:", "spawn_join/moss", "spawn_join/boost_fiber", 0);
  moss_bench::print_ratio(reporter, "spawn+join vs pooled Fiber:", "spawn_join/moss", "spawn_join/boost_fiber_pooled",
                          0);
  for (const auto& e : reporter.errors()) std::printf("error: %s\n", e.c_str());
  return reporter.errors().empty() ? 0 : 1;
}

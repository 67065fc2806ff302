// context_test: what a switch carries besides the registers — errno, the
// C++ runtime's exception state and the floating-point control modes belong
// to the greenlet, not the OS thread.
#include <moss/greenlet.hpp>

#include "leak_check.hpp"

#include <cerrno>
#include <cfenv>
#include <exception>
#include <stdexcept>
#include <string>

#include <xmmintrin.h>

using moss_test::WithHub;

namespace {

// rethrown_what() is the message of the exception `throw;` rethrows here.
std::string rethrown_what() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  }
}

}  // namespace

TEST_F(WithHub, ErrnoBelongsToTheGreenletAcrossSwitches) {
  moss::greenlet main = moss::current();
  int seen_at_start = -1, seen_after_switch = -1;
  moss::greenlet g([&] {
    seen_at_start = errno;
    errno = EDOM;
    main.switch_to();
    seen_after_switch = errno;
  });
  errno = EINTR;
  g.switch_to();
  EXPECT_EQ(errno, EINTR) << "g's errno leaked into main";
  EXPECT_EQ(seen_at_start, 0) << "a new greenlet starts with errno 0";
  errno = ERANGE;
  g.switch_to();
  EXPECT_EQ(seen_after_switch, EDOM) << "main's errno leaked into g";
  EXPECT_EQ(errno, ERANGE);
}

TEST_F(WithHub, AnExceptionBeingHandledSurvivesASwitchToAGreenletHandlingItsOwn) {
  moss::greenlet main = moss::current();
  std::string g_first, g_after_main;
  moss::greenlet g([&] {
    try {
      throw std::runtime_error("g's");
    } catch (...) {
      g_first = rethrown_what();
      main.switch_to();  // main rethrows its own while we are suspended here
      g_after_main = rethrown_what();
    }
  });
  std::string main_before, main_after, main_current;
  try {
    throw std::logic_error("main's");
  } catch (...) {
    main_before = rethrown_what();
    g.switch_to();  // g throws and catches its own, and suspends in its catch
    main_after = rethrown_what();
    try {
      std::rethrow_exception(std::current_exception());
    } catch (const std::exception& e) {
      main_current = e.what();
    }
    g.switch_to();  // g rethrows its own, then finishes
  }
  EXPECT_EQ(g_first, "g's");
  EXPECT_EQ(main_before, "main's");
  EXPECT_EQ(main_after, "main's");
  EXPECT_EQ(main_current, "main's");
  EXPECT_EQ(g_after_main, "g's");
  EXPECT_EQ(std::current_exception(), nullptr) << "main left its catch block";
}

TEST_F(WithHub, ANewGreenletStartsWithNoExceptionBeingHandled) {
  bool had_exception = true;
  moss::greenlet g([&] { had_exception = std::current_exception() != nullptr; });
  try {
    throw std::runtime_error("outer");
  } catch (...) {
    g.switch_to();
  }
  EXPECT_FALSE(had_exception);
}

TEST_F(WithHub, UncaughtExceptionsCountsOnlyTheGreenletsOwnUnwinding) {
  // g switches away from a destructor that runs while an exception unwinds
  // its stack; main is not unwinding anything, and must not think it is.
  struct switch_in_destructor {
    moss::greenlet* to;
    int* uncaught_in_g;
    ~switch_in_destructor() {
      *uncaught_in_g = std::uncaught_exceptions();
      to->switch_to();
    }
  };
  moss::greenlet main = moss::current();
  int uncaught_in_g = -1;
  std::string caught;
  moss::greenlet g([&] {
    try {
      switch_in_destructor d{&main, &uncaught_in_g};
      throw std::runtime_error("unwinding");
    } catch (const std::runtime_error& e) {
      caught = e.what();
    }
  });
  g.switch_to();
  EXPECT_EQ(uncaught_in_g, 1);
  EXPECT_EQ(std::uncaught_exceptions(), 0);
  g.switch_to();  // g finishes unwinding and catches
  EXPECT_EQ(caught, "unwinding");
  EXPECT_EQ(std::uncaught_exceptions(), 0);
}

// MXCSR (SSE) and the x87 control word are callee-saved: a greenlet that
// changes the rounding mode keeps it to itself, and gets it back when it is
// resumed. The switch reloads them only when the two sides differ.
TEST_F(WithHub, FloatingPointControlModesBelongToTheGreenlet) {
  const int mode = std::fegetround();
  const unsigned sse_mode = _MM_GET_ROUNDING_MODE();
  ASSERT_NE(mode, FE_UPWARD);
  moss::greenlet main = moss::current();
  int x87_inside = -1;
  unsigned sse_inside = 0;
  moss::greenlet g([&] {
    std::fesetround(FE_UPWARD);  // sets both the x87 and the SSE mode
    main.switch_to();
    x87_inside = std::fegetround();
    sse_inside = _MM_GET_ROUNDING_MODE();
    std::fesetround(FE_TOWARDZERO);
  });
  g.switch_to();
  EXPECT_EQ(std::fegetround(), mode);
  EXPECT_EQ(_MM_GET_ROUNDING_MODE(), sse_mode);
  g.switch_to();  // g finishes and control comes back here
  EXPECT_EQ(x87_inside, FE_UPWARD);
  EXPECT_EQ(sse_inside, static_cast<unsigned>(_MM_ROUND_UP));
  EXPECT_EQ(std::fegetround(), mode);
  EXPECT_EQ(_MM_GET_ROUNDING_MODE(), sse_mode);
  EXPECT_TRUE(g.dead());
}

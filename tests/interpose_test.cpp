// interpose_test: the seam patch/ is built on (moss/detail/interpose.hpp).
#include <moss/detail/interpose.hpp>
#include <moss/moss.hpp>

#include "leak_check.hpp"

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using moss_test::WithHub;
namespace interpose = moss::interpose;

namespace {

bool is_runtime_error(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::runtime_error&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace

TEST(Interpose, IsKillTellsAKillFromOtherExceptions) {
  EXPECT_TRUE(interpose::is_kill(std::make_exception_ptr(moss::greenlet_exit{})));
  EXPECT_FALSE(interpose::is_kill(std::make_exception_ptr(moss::timeout_error("t"))));
  EXPECT_FALSE(interpose::is_kill(std::make_exception_ptr(std::runtime_error("r"))));
}

TEST_F(WithHub, OnlyAGreenletOtherThanTheHubsMayPark) {
  EXPECT_TRUE(interpose::has_hub());
  EXPECT_TRUE(interpose::may_park());  // the thread's main greenlet
  bool in_task = false;
  moss::spawn([&] { in_task = interpose::may_park(); }).join();
  EXPECT_TRUE(in_task);
  bool plain = true;
  std::thread([&] {
    plain = !interpose::may_park() && !interpose::has_hub() && interpose::current_if_any() == nullptr;
  }).join();
  EXPECT_TRUE(plain) << "a plain thread has no hub and no greenlet, and none is made for it";
}

TEST_F(WithHub, ARearmedExceptionIsRaisedAtTheNextWait) {
  auto t = moss::spawn([] {
    interpose::rearm(std::make_exception_ptr(moss::timeout_error("late")));
    moss::sleep(1ms);
  });
  t.join();
  ASSERT_TRUE(t.exception());
  EXPECT_THROW(std::rethrow_exception(t.exception()), moss::timeout_error);
}

TEST_F(WithHub, AKillReplacesWhatIsPendingAndNothingReplacesAKill) {
  auto t = moss::spawn([] {
    moss::detail::greenlet_impl* self = interpose::current_if_any();
    interpose::rearm(std::make_exception_ptr(moss::error("first")));
    interpose::rearm(std::make_exception_ptr(moss::timeout_error("second")));
    EXPECT_FALSE(interpose::is_kill(self->pending_));
    EXPECT_TRUE(interpose::drop_pending(&is_runtime_error));
    EXPECT_FALSE(self->pending_);
    interpose::rearm(std::make_exception_ptr(moss::error("third")));
    interpose::rearm(std::make_exception_ptr(moss::greenlet_exit{}));
    EXPECT_TRUE(interpose::is_kill(self->pending_));
    interpose::rearm(std::make_exception_ptr(moss::error("fourth")));
    EXPECT_TRUE(interpose::is_kill(self->pending_));
    EXPECT_FALSE(interpose::drop_pending(&is_runtime_error)) << "a kill is not a runtime_error";
    self->pending_ = nullptr;
  });
  t.join();
  EXPECT_TRUE(t.successful());
}

TEST_F(WithHub, LetOthersRunKeepsThePendingExceptionAside) {
  int others = 0;
  auto t = moss::spawn([&] {
    interpose::rearm(std::make_exception_ptr(moss::error("pending")));
    interpose::let_others_run();  // does not raise it
    EXPECT_EQ(others, 1);
    moss::detail::greenlet_impl* self = interpose::current_if_any();
    EXPECT_TRUE(self->pending_) << "still pending after the switch";
    self->pending_ = nullptr;
  });
  auto other = moss::spawn([&] { ++others; });
  t.join();
  other.join();
  EXPECT_TRUE(t.successful());
}

TEST(Interpose, CheckSettingUsesTheLibrarysParsers) {
  EXPECT_NO_THROW(interpose::check_setting("MOSS_STACK_SIZE", "256K"));
  EXPECT_THROW(interpose::check_setting("MOSS_STACK_SIZE", "lots"), moss::error);
  EXPECT_NO_THROW(interpose::check_setting("MOSS_THREADPOOL_SIZE", "8"));
  EXPECT_THROW(interpose::check_setting("MOSS_THREADPOOL_SIZE", "0"), moss::error);
  EXPECT_THROW(interpose::check_setting("MOSS_MONITOR_MS", "-1"), moss::error);
  EXPECT_NO_THROW(interpose::check_setting("MOSS_DUMP_SIGNAL", "SIGUSR1"));
  try {
    interpose::check_setting("MOSS_NO_SUCH", "1");
    ADD_FAILURE() << "an unknown variable was accepted";
  } catch (const moss::error& e) {
    EXPECT_NE(std::string(e.what()).find("MOSS_NO_SUCH"), std::string::npos) << e.what();
  }
}

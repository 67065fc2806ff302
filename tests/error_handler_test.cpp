// error_handler_test: a failure is reported once, to the thread's handler,
// only if nobody retrieved it.
#include <moss/moss.hpp>

#include "leak_check.hpp"

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;

namespace {

// Records failures for the test's duration; restores the default after.
class WithHandler : public WithHub {
 protected:
  void SetUp() override {
    WithHub::SetUp();
    moss::set_error_handler([this](const moss::task_failure& f) {
      std::string what;
      try {
        std::rethrow_exception(f.error);
      } catch (const std::exception& e) {
        what = e.what();
      }
      reported.push_back(std::string(f.task_name) + ": " + what);
    });
  }
  void TearDown() override {
    moss::set_error_handler(nullptr);
    WithHub::TearDown();
  }
  std::vector<std::string> reported;
};

moss::spawn_options named(const char* n) { return moss::spawn_options{.name = n}; }

}  // namespace

TEST_F(WithHandler, AFailureNobodyLooksAtIsReportedWhenTheTaskGoes) {
  moss::spawn(named("lost"), [] { throw std::runtime_error("boom"); });
  moss::sleep(5ms);
  EXPECT_EQ(reported, (std::vector<std::string>{"lost: boom"}));
}

TEST_F(WithHandler, AFailureHeldByAHandleIsReportedWhenTheLastHandleGoes) {
  {
    auto t = moss::spawn(named("held"), [] { throw std::runtime_error("boom"); });
    t.join();
    EXPECT_TRUE(reported.empty()) << "still retrievable";
  }
  EXPECT_EQ(reported, (std::vector<std::string>{"held: boom"}));
}

TEST_F(WithHandler, RetrievedFailuresAreNotReported) {
  {
    auto a = moss::spawn([] { throw std::runtime_error("a"); });
    auto b = moss::spawn([]() -> int { throw std::runtime_error("b"); });
    auto c = moss::spawn([] { throw std::runtime_error("c"); });
    auto d = moss::spawn([]() -> int { throw std::runtime_error("d"); });
    EXPECT_THROW(a.get(), std::runtime_error);
    auto [sb] = moss::gather_settled(b);
    EXPECT_FALSE(sb.ok());
    c.join();
    EXPECT_NE(c.exception(), nullptr);
    EXPECT_THROW(moss::gather(d), std::runtime_error);
  }
  moss::sleep(1ms);
  EXPECT_TRUE(reported.empty()) << reported.front();
}

TEST_F(WithHandler, AKillIsNeverReported) {
  auto t = moss::spawn([] { moss::sleep(10s); });
  moss::yield();
  t.kill();
  t = {};
  EXPECT_TRUE(reported.empty());
}

TEST_F(WithHandler, ATaskGroupsRethrownFailureIsRetrieved) {
  {
    moss::task_group g;
    g.spawn([] { throw std::runtime_error("first"); });
    EXPECT_THROW(g.join(), std::runtime_error);
  }
  moss::sleep(1ms);
  EXPECT_TRUE(reported.empty());
}

TEST_F(WithHub, TheDefaultHandlerPrintsOneLine) {
  testing::internal::CaptureStderr();
  moss::spawn(named("printed"), [] { throw std::runtime_error("boom"); });
  moss::sleep(5ms);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "moss: task \"printed\" failed: boom\n");
}

TEST_F(WithHub, SetErrorHandlerReturnsThePreviousOne) {
  int calls = 0;
  EXPECT_FALSE(moss::set_error_handler([&](const moss::task_failure&) { ++calls; }));
  moss::error_handler previous = moss::set_error_handler(nullptr);
  ASSERT_TRUE(previous);
  previous(moss::task_failure{});
  EXPECT_EQ(calls, 1);
}

TEST_F(WithHub, AHandlerThatThrowsIsReportedAndDropped) {
  moss::set_error_handler([](const moss::task_failure&) { throw std::runtime_error("handler"); });
  testing::internal::CaptureStderr();
  moss::spawn(named("x"), [] { throw std::runtime_error("boom"); });
  moss::sleep(5ms);
  std::string err = testing::internal::GetCapturedStderr();
  moss::set_error_handler(nullptr);
  EXPECT_NE(err.find("the error handler failed while reporting task \"x\""), std::string::npos) << err;
}

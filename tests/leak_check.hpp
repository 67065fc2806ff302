// leak_check.hpp: the fixture every moss test uses. SetUp makes sure this
// thread's hub exists and records how many greenlets, stacks and fds are
// alive; TearDown asserts that the test left none of them behind.
#pragma once

#include <moss/detail/greenlet_impl.hpp>
#include <moss/hub.hpp>

#include "core/stack.hpp"

#include <dirent.h>

#include <gtest/gtest.h>

namespace moss_test {

inline int open_fds() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d) != nullptr) ++n;
    closedir(d);
  }
  return n;
}

class WithHub : public ::testing::Test {
 protected:
  void SetUp() override {
    moss::hub::current();
    greenlets_ = moss::detail::live_greenlets();
    stacks_ = moss::detail::stacks_in_use();
    fds_ = open_fds();
  }
  void TearDown() override {
    EXPECT_EQ(moss::detail::live_greenlets(), greenlets_) << "a greenlet leaked";
    EXPECT_EQ(moss::detail::stacks_in_use(), stacks_) << "a stack leaked";
    EXPECT_EQ(open_fds(), fds_) << "an fd leaked";
  }

 private:
  std::size_t greenlets_ = 0;
  std::size_t stacks_ = 0;
  int fds_ = 0;
};

}  // namespace moss_test

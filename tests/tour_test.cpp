// tour_test: the demo binary, run as a user would.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <string>
#include <sys/wait.h>

namespace {

struct result {
  int status;
  std::string out;
};

result run(const std::string& cmd) {
  result r{};
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace

TEST(Tour, SleepersOverlapAndGreenletsPingPong) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = run(MOSS_TOUR);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("done after 4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("play tired after eating 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("returned \"full\""), std::string::npos) << r.out;
  EXPECT_LT(took, std::chrono::milliseconds(1700));  // 7 units sequentially = 1.75 s
}

TEST(Tour, HelpAndVersionExitZero) {
  EXPECT_EQ(run(std::string(MOSS_TOUR) + " --help").status, 0);
  EXPECT_EQ(run(std::string(MOSS_TOUR) + " --version").status, 0);
}

TEST(Tour, AnUnknownArgumentIsAUsageError) {
  auto r = run(std::string(MOSS_TOUR) + " --frobnicate");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.out.find("moss-tour: unknown option \"--frobnicate\" (try --help)"), std::string::npos) << r.out;
}

TEST(Tour, AMalformedStackSizeIsReportedWithWhatIsAccepted) {
  auto r = run("MOSS_STACK_SIZE=12parsecs " + std::string(MOSS_TOUR));
  EXPECT_EQ(r.status, 2);  // a malformed MOSS_* value: lib/core/config.hpp
  EXPECT_NE(r.out.find("bad MOSS_STACK_SIZE \"12parsecs\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("256K"), std::string::npos) << r.out;
}

// cli_test: every built sample takes its arguments the same way (the shared
// parser of samples/common/args.hpp): --opt=value and --opt value, -c5, one
// wording for an unknown option, "moss-<tool>:" on every message, and the
// servers listen on 127.0.0.1 unless told otherwise.
#include "sample_process.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace sample_test;

namespace {

struct tool {
  std::string name;  // "moss-scan"
  std::string bin;
  std::string opt;   // an option with a value (long form)
  std::vector<std::string> after;  // operands the tool needs besides
};

const std::vector<tool> tools = {
    {"moss-tour", MOSS_TOUR, "", {}},
    {"moss-echo", MOSS_ECHO, "--port", {}},
    {"moss-chat", MOSS_CHAT, "--port", {}},
    {"moss-httpd", MOSS_HTTPD, "--port", {}},
    {"moss-proxy", MOSS_PROXY, "--idle-timeout", {"8080", "h:1"}},
    {"moss-scan", MOSS_SCAN, "--timeout", {"127.0.0.1", "1"}},
    {"moss-fetch", MOSS_FETCH, "--timeout", {"http://127.0.0.1:1/"}},
    {"moss-resolve", MOSS_RESOLVE, "--server", {"localhost"}},
};

std::vector<std::string> args(const tool& t, std::vector<std::string> front) {
  std::vector<std::string> a{t.bin};
  a.insert(a.end(), front.begin(), front.end());
  a.insert(a.end(), t.after.begin(), t.after.end());
  return a;
}

}  // namespace

TEST(SampleCli, AnUnknownOptionIsReportedInOneWordingByEveryTool) {
  for (const auto& t : tools) {
    for (std::string bad : {"--bogus", "--bogus=3", "-Z"}) {
      auto r = run(args(t, {bad}));
      EXPECT_EQ(r.status, 2) << t.name << " " << bad;
      std::string shown = bad.substr(0, bad.find('='));
      EXPECT_EQ(r.err, t.name + ": unknown option \"" + shown + "\" (try --help)\n") << t.name;
      EXPECT_EQ(r.out, "") << t.name;
    }
  }
}

TEST(SampleCli, HelpAndVersionAreAnsweredByEveryTool) {
  for (const auto& t : tools) {
    auto h = run({t.bin, "--help"});
    EXPECT_EQ(h.status, 0) << t.name;
    EXPECT_EQ(h.out.rfind("usage: " + t.name, 0), 0u) << t.name << ": " << h.out;
    auto short_h = run({t.bin, "-h"});
    EXPECT_EQ(short_h.out, h.out) << t.name;
    auto v = run({t.bin, "--version"});
    EXPECT_EQ(v.status, 0) << t.name;
    EXPECT_EQ(v.out, t.name + " 0.1.0\n") << t.name;
  }
}

TEST(SampleCli, AValueIsTakenAfterAnEqualsSignOrAsTheNextArgument) {
  for (const auto& t : tools) {
    if (t.opt.empty()) continue;
    std::string want = t.name + ": bad value \"nope\" for " + t.opt + ": ";
    auto joined = run(args(t, {t.opt + "=nope"}));
    auto apart = run(args(t, {t.opt, "nope"}));
    EXPECT_EQ(joined.status, 2) << t.name;
    EXPECT_EQ(joined.err.rfind(want, 0), 0u) << t.name << ": " << joined.err;
    EXPECT_EQ(apart.err, joined.err) << t.name;
    auto missing = run({t.bin, t.opt});
    EXPECT_EQ(missing.status, 2) << t.name;
    EXPECT_EQ(missing.err, t.name + ": option " + t.opt + " needs a value (try --help)\n") << t.name;
  }
}

TEST(SampleCli, AShortOptionTakesItsValueAttached) {
  for (const auto& t : tools) {
    if (t.name != "moss-scan" && t.name != "moss-fetch" && t.name != "moss-resolve") continue;
    auto attached = run(args(t, {"-c0"}));
    auto apart = run(args(t, {"-c", "0"}));
    EXPECT_EQ(attached.status, 2) << t.name;
    EXPECT_NE(attached.err.find(t.name + ": bad value \"0\" for -c: expected a number from 1 to "), std::string::npos)
        << attached.err;
    EXPECT_EQ(apart.err, attached.err) << t.name;
  }
  // And a good attached value is used: one attempt at a time still scans.
  auto ok = run({MOSS_SCAN, "-c1", "--timeout=500", "127.0.0.1", std::to_string(free_port())});
  EXPECT_EQ(ok.status, 0) << ok.err;
}

TEST(SampleCli, ServersListenOnLoopbackByDefault) {
  for (std::string bin : {MOSS_ECHO, MOSS_CHAT, MOSS_HTTPD}) {
    child c({bin, "--port=0"});
    auto line = c.line();
    ASSERT_TRUE(line.has_value()) << bin;
    EXPECT_GT(port_in(*line), 0) << bin << ": " << *line;
    EXPECT_EQ(line->rfind(bin.substr(bin.rfind('/') + 1) + ": ", 0), 0u) << *line;
  }
}

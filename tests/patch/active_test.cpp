// active_test: moss::patch::active() as a program sees it. Built twice and
// run three ways (tests/patch/meson.build); MOSS_TEST_EXPECT says which:
//   linked   linked with libmoss_patch: socket..poll live, thread not
//   none     the same program with MOSS_HOOK=none: nothing live
//   plain    linked with libmoss alone: nothing live
//   preload  the plain program under mossrun: every family live
// A plain main, not gtest: it also runs under mossrun's green pthreads.
#include <moss/error.hpp>
#include <moss/patch.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "active_test: FAILED: %s\n", what.c_str());
    ++failures;
  }
}

}  // namespace

int main() {
  const char* e = std::getenv("MOSS_TEST_EXPECT");
  std::string mode = e != nullptr ? e : "";
  bool hooks = mode == "linked" || mode == "preload";
  expect(moss::patch::active() == hooks, "active() in mode " + mode);
  for (const char* f : {"socket", "sleep", "dns", "poll"})
    expect(moss::patch::active(f) == hooks, std::string("active(\"") + f + "\") in mode " + mode);
  expect(moss::patch::active("thread") == (mode == "preload"), "active(\"thread\") in mode " + mode);
  for (const char* bad : {"sockets", "all", "none", "socket,dns", ""}) {
    try {
      (void)moss::patch::active(bad);
      expect(false, std::string("active(\"") + bad + "\") did not throw");
    } catch (const moss::error& err) {
      expect(std::string(err.what()).find(std::string("\"") + bad + "\"") != std::string::npos,
             std::string("message names the family: ") + err.what());
    }
  }
  if (failures == 0) std::printf("active_test: %s: ok\n", mode.c_str());
  return failures == 0 ? 0 : 1;
}

// mossrun_stub_preload.cpp: stands in for libmoss_preload.so in
// mossrun_cli_test, so the launcher is tested apart from the library. Loaded
// into a program, it says so in the program's environment.
#include <cstdlib>

namespace {

[[gnu::constructor]] void mark_loaded() { setenv("MOSSRUN_STUB_LOADED", "1", 1); }

}  // namespace

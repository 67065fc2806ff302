// preload.cpp: what libmoss_preload.so adds to the linked hooks — reading
// MOSS_THREADS, and the bootstrap that puts `main` on a hub.
//
// Bootstrap: __libc_start_main is interposed (the program's _start calls it
// through the PLT) and given a wrapper for main. The wrapper makes the main
// thread's hub and calls the program's main on the thread's own stack, which
// is the thread's root greenlet: a blocking accept() in main parks main and
// the hub runs the green threads. Nothing is copied or moved, and main's
// deep native stack stays as it was. When main returns, the real
// __libc_start_main calls exit() as usual; the hub then leaves the green
// threads as they are (interpose::keep_tasks_at_exit), since exit() ends
// every thread at once. A program that never reaches __libc_start_main
// (statically linked; mossrun refuses those) is not reached by the preload.
#include "green.hpp"
#include "hooks.hpp"
#include "real.hpp"

#include <moss/detail/interpose.hpp>
#include <moss/error.hpp>
#include <moss/hub.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <unistd.h>

namespace moss::patch {
namespace {

using main_fn = int (*)(int, char**, char**);
MOSS_REAL(__libc_start_main, int (*)(main_fn, int, char**, void (*)(), void (*)(), void (*)(), void*))

main_fn program_main = nullptr;

// MOSS_THREADS: green (the default) or native. Read by the constructor; the
// pthread hooks see green_threads false until then, so a thread created by
// another library's constructor that runs before ours is a native one.
[[gnu::constructor]] void read_moss_threads() {
  const char* env = std::getenv("MOSS_THREADS");
  bool green = true;
  if (env != nullptr && *env != '\0') {
    if (std::strcmp(env, "green") == 0) green = true;
    else if (std::strcmp(env, "native") == 0) green = false;
    else {
      std::fprintf(stderr, "moss: bad MOSS_THREADS \"%s\"; accepted: green (pthreads are green threads) or native (OS threads, hooked I/O)\n", env);
      std::exit(2);
    }
  }
  green_threads = green && (enabled_families & family_thread) != 0;
}

int main_on_hub(int argc, char** argv, char** envp) {
  interpose::keep_tasks_at_exit();
  try {
    moss::hub::current();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::exit(2);
  }
  return program_main(argc, argv, envp);
}

}  // namespace
}  // namespace moss::patch

using namespace moss::patch;

extern "C" int __libc_start_main(main_fn main, int argc, char** argv, void (*init)(), void (*fini)(), void (*rtld_fini)(),
                                 void* stack_end) {
  program_main = main;
  return real___libc_start_main()(&main_on_hub, argc, argv, init, fini, rtld_fini, stack_end);
}

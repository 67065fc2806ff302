// real.cpp: dlsym(RTLD_NEXT) lookups.
#include "real.hpp"

#include <moss/detail/interpose.hpp>

#include <cstdlib>
#include <cstring>

#include <dlfcn.h>

namespace moss::patch {

void* resolve(const char* name) noexcept {
  void* f = dlsym(RTLD_NEXT, name);
  if (f == nullptr) {
    const char* a = "moss: cannot find the real ";
    interpose::write_stderr(a, std::strlen(a));
    interpose::write_stderr(name, std::strlen(name));
    interpose::write_stderr("\n", 1);
    std::abort();
  }
  return f;
}

}  // namespace moss::patch

// mossrun.cpp: run an unmodified program with libmoss_preload.so preloaded.
// (First cut: sets LD_PRELOAD and execs; options come next.)
#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs("usage: mossrun program [args...]\n", stderr);
    return 2;
  }
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  std::string lib = MOSS_PRELOAD_INSTALLED;
  if (n > 0) {
    std::string dir(self, static_cast<std::size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    std::string local = dir + "/libmoss_preload.so";
    if (access(local.c_str(), R_OK) == 0) lib = local;
  }
  const char* old = std::getenv("LD_PRELOAD");
  std::string pre = old != nullptr && *old != '\0' ? std::string(old) + ":" + lib : lib;
  setenv("LD_PRELOAD", pre.c_str(), 1);
  execvp(argv[1], argv + 1);
  std::perror("mossrun");
  return 127;
}

// mossrun.cpp: run an unmodified program with libmoss_preload.so preloaded.
//
//   mossrun [options] [--] program [args...]
//
// mossrun turns its options into MOSS_* variables, checks every MOSS_* value
// the program will see with the library's own parsers (so a bad value stops
// here, exit 2, rather than inside the program), checks that the loader will
// honour LD_PRELOAD for the program (dynamically linked, neither setuid nor
// setgid, built for the library's architecture), appends libmoss_preload.so to
// LD_PRELOAD and execs the program: the process is the program from then on
// (its pid, signals and exit status).
//
// Exit status when mossrun itself stops: 127 the program was not found, 126
// it was found but cannot be run (as a shell says); 2 for everything else
// (usage, a bad value, a program LD_PRELOAD cannot reach, no library).
//
// The library is looked for beside mossrun's own executable first (a build
// tree has both in build*/patch/), then at MOSS_PRELOAD_INSTALLED, the path
// `meson install` puts it at.
#include "families.hpp"

#include <moss/detail/interpose.hpp>
#include <moss/error.hpp>
#include <moss/threadpool.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <elf.h>
#include <fcntl.h>
#include <getopt.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef MOSS_PRELOAD_INSTALLED
#error "the build defines MOSS_PRELOAD_INSTALLED (prefix/libdir/libmoss_preload.so)"
#endif
#ifndef MOSS_VERSION
#error "the build defines MOSS_VERSION"
#endif

namespace {

constexpr int exit_usage = 2;
constexpr int exit_not_runnable = 126;
constexpr int exit_not_found = 127;

constexpr const char* preload_name = "libmoss_preload.so";

// ---- settings: option -> variable --------------------------------------------

enum class check_kind { threads, hook, dns, stack_size, pool_size, monitor_ms, dump_signal };

struct setting {
  const char* option;    // long option, without "--"
  const char* variable;  // what it sets
  const char* arg;       // how --help names the value
  const char* fallback;  // the default, as --help shows it
  const char* about;
  check_kind kind;
};

constexpr setting settings[] = {
    {"threads", "MOSS_THREADS", "green|native", "green",
     "pthreads become green threads on the hub, or stay OS threads (only I/O is hooked)", check_kind::threads},
    {"hook", "MOSS_HOOK", "LIST", "all",
     "hooked families: all, none, or a comma list of socket,sleep,dns,poll,thread", check_kind::hook},
    {"resolver", "MOSS_RESOLVER", "ares|thread|block", "ares",
     "DNS: c-ares on the hub, libc's resolver on the thread pool, or libc's blocking", check_kind::dns},
    {"dns-servers", "MOSS_DNS_SERVERS", "IP[:PORT],...", "resolv.conf", "name servers for the ares resolver",
     check_kind::dns},
    {"dns-timeout-ms", "MOSS_DNS_TIMEOUT_MS", "N", "2000", "per-try DNS timeout, 1 to 3600000 ms", check_kind::dns},
    {"dns-tries", "MOSS_DNS_TRIES", "N", "2", "DNS tries, 1 to 100", check_kind::dns},
    {"stack-size", "MOSS_STACK_SIZE", "SIZE", "256K",
     "a moss greenlet's stack: bytes or K/M/G (KiB... too), 16K to 1G\n"
     "        (a green pthread's is its attribute's, 8M by default)", check_kind::stack_size},
    {"threadpool-size", "MOSS_THREADPOOL_SIZE", "N", "max(4, cores)", "threads for blocking work, 1 to 1024",
     check_kind::pool_size},
    {"monitor-ms", "MOSS_MONITOR_MS", "N", "0 (off)",
     "report a hub that has not switched for N ms (1 to 3600000)", check_kind::monitor_ms},
    {"dump-signal", "MOSS_DUMP_SIGNAL", "SIGNAL", "none",
     "on this signal (SIGUSR1, usr2, 10...) print every green thread and its backtrace", check_kind::dump_signal},
};
constexpr int n_settings = sizeof settings / sizeof settings[0];

// accepted() is the part of a library error that says what is accepted: the
// library's messages read "moss: <variable and value> ...; <what is accepted>".
std::string accepted(const char* what) {
  const char* semi = std::strstr(what, "; ");
  return semi != nullptr ? std::string(semi + 2) : std::string(what);
}

// check() returns "" when text is a good value of s, else what is accepted.
// Every MOSS_* reader of the library is called here as the program would call
// it; the two names the preload library reads are checked against their lists.
std::string check(const setting& s, const char* text) {
  try {
    switch (s.kind) {
      case check_kind::threads:
        if (std::strcmp(text, "green") == 0 || std::strcmp(text, "native") == 0) return "";
        return "accepted: green (pthreads are green threads) or native (OS threads, hooked I/O)";
      case check_kind::hook: {
        unsigned bits = 0;
        const char* bad = nullptr;
        unsigned bad_len = 0;
        if (moss::patch::parse_families(text, &bits, &bad, &bad_len)) return "";
        return "unknown family \"" + std::string(bad, bad_len) + "\"; accepted: " + moss::patch::families_accepted;
      }
      case check_kind::dns:
        // The four dns variables are read together; check_dns() does it.
        return "";
      case check_kind::stack_size:
      case check_kind::pool_size:
      case check_kind::monitor_ms:
      case check_kind::dump_signal:
        moss::interpose::check_setting(s.variable, text);
        return "";
    }
  } catch (const moss::error& e) {
    return accepted(e.what());
  }
  return "";
}

// ---- messages ------------------------------------------------------------------

[[noreturn]] void fail(int status, const std::string& line) {
  std::fprintf(stderr, "mossrun: %s\n", line.c_str());
  std::exit(status);
}

// bad_value() reports a rejected value, naming the option that set it, or the
// variable when it came from the environment mossrun was started with.
[[noreturn]] void bad_value(const setting& s, bool from_option, const char* text, const std::string& why) {
  if (from_option) fail(exit_usage, std::string("bad --") + s.option + " \"" + text + "\": " + why);
  fail(exit_usage, std::string("bad ") + s.variable + " \"" + text + "\" in the environment: " + why);
}

// check_dns() runs the dns layer's own reader over the four variables, which
// names the variable it rejects.
void check_dns(const bool* from_option) {
  try {
    moss::interpose::check_dns_settings();
  } catch (const moss::error& e) {
    for (int i = 0; i < n_settings; ++i) {
      const setting& s = settings[i];
      if (s.kind != check_kind::dns) continue;
      std::string quoted = std::string(s.variable) + "=\"";
      std::string named = std::string(s.variable) + ":";
      if (std::strstr(e.what(), quoted.c_str()) != nullptr || std::strstr(e.what(), named.c_str()) != nullptr)
        bad_value(s, from_option[i], std::getenv(s.variable), accepted(e.what()));
    }
    fail(exit_usage, e.what());
  }
}

void print_help(std::FILE* out) {
  std::fprintf(out,
               "usage: mossrun [options] [--] program [args...]\n"
               "\n"
               "Runs an unmodified, dynamically linked program with libmoss_preload.so in\n"
               "LD_PRELOAD (appended to any existing value): its blocking calls wait on moss's\n"
               "hub and its pthreads are green threads. The process is the program: same pid,\n"
               "signals and exit status.\n"
               "\n"
               "options (each sets a variable; the option wins over the environment, and a\n"
               "variable set by neither keeps the library's default):\n");
  for (const setting& s : settings) {
    std::string head = std::string("--") + s.option + " " + s.arg;
    std::fprintf(out, "  %-32s %-21s default %s\n        %s\n", head.c_str(), s.variable, s.fallback, s.about);
  }
  std::fprintf(out,
               "  %-32s this help\n"
               "  %-32s the version\n"
               "\n"
               "Under mossrun MOSS_THREADS is green unless set. Every MOSS_* value the program\n"
               "would see is checked first: a bad one stops mossrun with status 2.\n"
               "\n"
               "exit status: the program's own; 127 not found, 126 not runnable, 2 a usage\n"
               "error, a bad value, a program LD_PRELOAD cannot reach (statically linked,\n"
               "setuid/setgid, or built for another architecture), or no library. The\n"
               "library is looked for beside mossrun, then at\n"
               "%s.\n",
               "-h, --help", "--version", MOSS_PRELOAD_INSTALLED);
}

// ---- the program ---------------------------------------------------------------

bool is_regular(const std::string& path, struct stat* st) {
  return stat(path.c_str(), st) == 0 && S_ISREG(st->st_mode);
}

// resolve() finds the file a shell would run for `name`: itself when it has a
// slash, else the first executable regular file in PATH, else the first
// regular file there (which then fails with "Permission denied"). Empty when
// nothing matches.
std::string resolve(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* env = std::getenv("PATH");
  std::string path = env != nullptr ? env : "/bin:/usr/bin";
  std::string first_plain;
  std::size_t start = 0;
  for (;;) {
    std::size_t colon = path.find(':', start);
    std::string dir = path.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    struct stat st;
    if (is_regular(candidate, &st)) {
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
      if (first_plain.empty()) first_plain = candidate;
    }
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return first_plain;
}

// elf_facts: what the loader looks at in an ELF file's headers.
struct elf_facts {
  bool elf = false;          // readable, with the ELF magic and a known class
  unsigned char cls = 0;     // ELFCLASS32 or ELFCLASS64
  unsigned machine = 0;      // e_machine
  bool interp = false;       // has PT_INTERP: the dynamic loader, which honours LD_PRELOAD, runs it
};

template <class Ehdr, class Phdr>
void read_headers(int fd, elf_facts& f) {
  Ehdr eh;
  if (pread(fd, &eh, sizeof eh, 0) != static_cast<ssize_t>(sizeof eh) || eh.e_phentsize != sizeof(Phdr)) return;
  f.machine = eh.e_machine;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    Phdr ph;
    off_t at = static_cast<off_t>(eh.e_phoff + static_cast<std::uint64_t>(i) * sizeof ph);
    if (pread(fd, &ph, sizeof ph, at) != static_cast<ssize_t>(sizeof ph)) return;
    if (ph.p_type == PT_INTERP) f.interp = true;
  }
  f.elf = true;
}

// read_elf() reads path's ELF headers; .elf is false when it is not an ELF
// file (a script) or cannot be read (execute-only: the exec then decides).
elf_facts read_elf(const std::string& path) {
  elf_facts f;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return f;
  unsigned char ident[EI_NIDENT];
  if (pread(fd, ident, sizeof ident, 0) == static_cast<ssize_t>(sizeof ident) &&
      std::memcmp(ident, ELFMAG, SELFMAG) == 0) {
    f.cls = ident[EI_CLASS];
    if (f.cls == ELFCLASS64) read_headers<Elf64_Ehdr, Elf64_Phdr>(fd, f);
    else if (f.cls == ELFCLASS32) read_headers<Elf32_Ehdr, Elf32_Phdr>(fd, f);
  }
  close(fd);
  return f;
}

std::string interpreter(const std::string& path);

// check_program() stops mossrun, as a shell would, unless `path` (what `name`
// resolved to) is a file the loader will run with LD_PRELOAD honoured.
void check_program(const std::string& name, const std::string& path) {
  if (path.empty()) fail(exit_not_found, name + ": command not found");
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    int err = errno;
    fail(err == ENOENT ? exit_not_found : exit_not_runnable, name + ": " + std::strerror(err));
  }
  if (S_ISDIR(st.st_mode)) fail(exit_not_runnable, name + ": " + std::strerror(EISDIR));
  if (!S_ISREG(st.st_mode) || access(path.c_str(), X_OK) != 0) fail(exit_not_runnable, name + ": " + std::strerror(EACCES));
  if ((st.st_mode & (S_ISUID | S_ISGID)) != 0)
    fail(exit_usage, name + " is " + ((st.st_mode & S_ISUID) != 0 ? "setuid" : "setgid") +
                         "; the loader ignores LD_PRELOAD for it");
  elf_facts f = read_elf(path);
  if (f.elf && !f.interp) fail(exit_usage, name + " is statically linked; LD_PRELOAD cannot reach it");
  // A script runs in its "#!" interpreter, which must be reachable too (one
  // level: an interpreter that is itself a script is the kernel's to refuse).
  if (!f.elf) {
    std::string interp = interpreter(path);
    elf_facts i = interp.empty() ? elf_facts{} : read_elf(interp);
    if (i.elf && !i.interp)
      fail(exit_usage, name + "'s interpreter " + interp + " is statically linked; LD_PRELOAD cannot reach it");
  }
}

// check_machine() stops mossrun when the program is ELF for another class or
// machine than the library (a 32-bit program, say): the loader would skip the
// library with a warning and run the program without moss.
void check_machine(const std::string& name, const std::string& path, const std::string& lib) {
  elf_facts prog = read_elf(path), ours = read_elf(lib);
  if (!prog.elf || !ours.elf || (prog.cls == ours.cls && prog.machine == ours.machine)) return;
  auto describe = [](const elf_facts& f) {
    return std::string(f.cls == ELFCLASS32 ? "32-bit" : "64-bit") + " ELF for machine " + std::to_string(f.machine);
  };
  fail(exit_usage, name + " is " + describe(prog) + ", " + lib + " is " + describe(ours) +
                       "; the loader cannot preload it there");
}

// interpreter() is the path on a "#!" line that starts the file, or "".
std::string interpreter(const std::string& path) {
  char head[256] = {};
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  ssize_t n = pread(fd, head, sizeof head - 1, 0);
  close(fd);
  if (n < 2 || head[0] != '#' || head[1] != '!') return "";
  std::string line(head + 2, static_cast<std::size_t>(n - 2));
  std::size_t start = line.find_first_not_of(" \t");
  if (start == std::string::npos) return "";
  return line.substr(start, line.find_first_of(" \t\n", start) - start);
}

// exec_failed() explains an execv() of an existing file that failed, as bash
// does: ENOENT there means a file it needs (a "#!" interpreter, the ELF
// loader) is missing.
[[noreturn]] void exec_failed(const std::string& name, const std::string& path, int err) {
  if (err != ENOENT) fail(exit_not_runnable, name + ": " + std::strerror(err));
  std::string interp = interpreter(path);
  if (!interp.empty()) fail(exit_not_found, name + ": bad interpreter " + interp + ": " + std::strerror(err));
  fail(exit_not_found, name + ": cannot execute: required file not found");
}

// ---- the library ---------------------------------------------------------------

std::string find_library() {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  std::string beside;
  if (n > 0) {
    std::string exe(self, static_cast<std::size_t>(n));
    beside = exe.substr(0, exe.rfind('/') + 1) + preload_name;
    struct stat st;
    if (is_regular(beside, &st) && access(beside.c_str(), R_OK) == 0) return beside;
  }
  struct stat st;
  if (is_regular(MOSS_PRELOAD_INSTALLED, &st) && access(MOSS_PRELOAD_INSTALLED, R_OK) == 0)
    return MOSS_PRELOAD_INSTALLED;
  fail(exit_usage, std::string(preload_name) + " is neither beside mossrun (" +
                       (beside.empty() ? std::string("unknown: /proc/self/exe unreadable") : beside) + ") nor at " +
                       MOSS_PRELOAD_INSTALLED + "; build the moss_preload target or install moss");
}

// add_preload() appends lib to LD_PRELOAD. An entry naming another
// libmoss_preload.so (say an installed one, when a build tree's mossrun runs
// under the installed mossrun) is dropped: two copies of moss in one process
// would each keep their own hubs and hooks.
void add_preload(const std::string& lib) {
  if (lib.find_first_of(": ") != std::string::npos)
    fail(exit_usage, lib + ": LD_PRELOAD cannot hold a path with a space or a colon");
  const char* old = std::getenv("LD_PRELOAD");
  std::string entries = old != nullptr ? old : "";
  std::string value;
  std::size_t start = 0;
  while (start < entries.size()) {
    std::size_t end = entries.find_first_of(": ", start);
    if (end == std::string::npos) end = entries.size();
    std::string entry = entries.substr(start, end - start);
    start = end + 1;
    std::string base = entry.substr(entry.rfind('/') + 1);
    if (entry.empty() || base == preload_name) continue;
    value += entry + ":";
  }
  value += lib;
  if (setenv("LD_PRELOAD", value.c_str(), 1) != 0) fail(exit_usage, std::string("setenv: ") + std::strerror(errno));
}

}  // namespace

int main(int argc, char** argv) {
  constexpr int opt_help = 'h', opt_version = 1000, opt_setting = 2000;
  std::vector<option> longopts;
  for (int i = 0; i < n_settings; ++i) longopts.push_back({settings[i].option, required_argument, nullptr, opt_setting + i});
  longopts.push_back({"help", no_argument, nullptr, opt_help});
  longopts.push_back({"version", no_argument, nullptr, opt_version});
  longopts.push_back({nullptr, 0, nullptr, 0});

  bool from_option[n_settings] = {};
  const char* values[n_settings] = {};
  opterr = 0;
  // "+": the first non-option is the program; what follows it is its own.
  for (;;) {
    int c = getopt_long(argc, argv, "+:h", longopts.data(), nullptr);
    if (c == -1) break;
    if (c == opt_help) {
      print_help(stdout);
      return 0;
    }
    if (c == opt_version) {
      std::printf("mossrun (moss) %s\n", MOSS_VERSION);
      return 0;
    }
    if (c >= opt_setting && c < opt_setting + n_settings) {
      from_option[c - opt_setting] = true;
      values[c - opt_setting] = optarg;
      continue;
    }
    const char* arg = argv[optind - 1];
    if (c == ':') fail(exit_usage, std::string("option \"") + arg + "\" needs a value; try mossrun --help");
    if (optopt != 0) fail(exit_usage, std::string("unknown option \"-") + static_cast<char>(optopt) + "\"; try mossrun --help");
    fail(exit_usage, std::string("unknown option \"") + arg + "\"; try mossrun --help");
  }
  if (optind >= argc) fail(exit_usage, "no program given; usage: mossrun [options] [--] program [args...]");

  // The options go into the environment first, then every value the program
  // will see is checked, wherever it came from.
  for (int i = 0; i < n_settings; ++i) {
    if (!from_option[i]) continue;
    if (*values[i] == '\0') {
      // An empty variable means "the default" to the library: say what is meant.
      std::string why = check(settings[i], "");
      bad_value(settings[i], true, "", why.empty() ? std::string("empty; expected ") + settings[i].about : why);
    }
    setenv(settings[i].variable, values[i], 1);
  }
  const char* threads = std::getenv("MOSS_THREADS");
  if (threads == nullptr || *threads == '\0') setenv("MOSS_THREADS", "green", 1);
  for (int i = 0; i < n_settings; ++i) {
    const char* text = std::getenv(settings[i].variable);
    if (text == nullptr || *text == '\0') continue;
    std::string why = check(settings[i], text);
    if (!why.empty()) bad_value(settings[i], from_option[i], text, why);
  }
  check_dns(from_option);

  std::string name = argv[optind];
  std::string path = resolve(name);
  check_program(name, path);
  std::string lib = find_library();
  check_machine(name, path, lib);
  add_preload(lib);

  execv(path.c_str(), argv + optind);
  int err = errno;
  if (err == ENOEXEC) {
    // Executable, but neither ELF nor "#!": a shell runs it with /bin/sh.
    std::vector<char*> args;
    args.push_back(const_cast<char*>("/bin/sh"));
    args.push_back(const_cast<char*>(path.c_str()));
    for (int i = optind + 1; i < argc; ++i) args.push_back(argv[i]);
    args.push_back(nullptr);
    execv("/bin/sh", args.data());
    err = errno;
  }
  exec_failed(name, path, err);
}

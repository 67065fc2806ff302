// mossrun_cli_test: mossrun as a user runs it, in a child process: its
// options, messages and exit statuses, the environment it hands the program,
// and that the process it leaves behind is the program itself.
//
// WithStubLibrary copies mossrun into a temporary directory beside a stub
// libmoss_preload.so (mossrun_stub_preload.cpp), so those cases test the
// launcher alone; the InBuildTree cases run the real mossrun and library.
// MOSSRUN_UNDER_TEST=path makes the cases that copy mossrun copy that one
// instead of the one built beside this test.
#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

struct outcome {
  int status = 0;  // as waitpid reports it
  pid_t pid = 0;   // the child forked to run mossrun
  std::string out, err;

  bool exited_with(int code) const { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// env_change: a variable to set, or to unset when the value is nullopt.
using env_change = std::map<std::string, std::optional<std::string>>;

// run() forks, applies env in the child and execs `exe args...`, with stdout
// and stderr going to files that are read back once the child has ended.
outcome run(const std::string& exe, const std::vector<std::string>& args, const env_change& env = {}) {
  static int serial = 0;
  fs::path dir = fs::temp_directory_path();
  fs::path out_file = dir / ("mossrun_cli_out." + std::to_string(getpid()) + "." + std::to_string(serial));
  fs::path err_file = dir / ("mossrun_cli_err." + std::to_string(getpid()) + "." + std::to_string(serial++));
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    for (const auto& [name, value] : env) {
      if (value) setenv(name.c_str(), value->c_str(), 1);
      else unsetenv(name.c_str());
    }
    int o = open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0) _exit(250);
    execv(exe.c_str(), argv.data());
    _exit(251);
  }
  outcome r;
  r.pid = pid;
  EXPECT_GT(pid, 0);
  if (pid <= 0) return r;
  while (waitpid(pid, &r.status, 0) < 0 && errno == EINTR) {
  }
  r.out = slurp(out_file);
  r.err = slurp(err_file);
  fs::remove(out_file);
  fs::remove(err_file);
  return r;
}

// env_of() parses `env`'s output into a map.
std::map<std::string, std::string> env_of(const std::string& text) {
  std::map<std::string, std::string> m;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(start, nl - start);
    std::size_t eq = line.find('=');
    if (eq != std::string::npos) m[line.substr(0, eq)] = line.substr(eq + 1);
    start = nl + 1;
  }
  return m;
}

bool one_line(const std::string& s) { return !s.empty() && s.back() == '\n' && s.find('\n') == s.size() - 1; }

void write_file(const fs::path& p, const std::string& text, fs::perms mode) {
  std::ofstream(p) << text;
  fs::permissions(p, mode);
}

constexpr fs::perms rwxr_xr_x = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                fs::perms::others_read | fs::perms::others_exec;
constexpr fs::perms rw_r__r__ = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                fs::perms::others_read;

std::string mossrun_under_test() {
  const char* path = std::getenv("MOSSRUN_UNDER_TEST");
  return path != nullptr ? path : MOSSRUN;
}

// write_elf() writes the headers of an executable ELF file (enough for
// mossrun's checks, which come before any exec): one program header, PT_INTERP
// for a dynamically linked program, PT_LOAD alone for a static one.
template <class Ehdr, class Phdr>
void write_elf_headers(const fs::path& p, unsigned char cls, unsigned machine, bool interp) {
  Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = cls;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = static_cast<decltype(eh.e_machine)>(machine);
  eh.e_version = EV_CURRENT;
  eh.e_phoff = sizeof eh;
  eh.e_ehsize = sizeof eh;
  eh.e_phentsize = sizeof(Phdr);
  eh.e_phnum = 1;
  Phdr ph{};
  ph.p_type = interp ? PT_INTERP : PT_LOAD;
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&eh), sizeof eh);
  out.write(reinterpret_cast<const char*>(&ph), sizeof ph);
}

void write_elf(const fs::path& p, unsigned char cls, unsigned machine, bool interp) {
  if (cls == ELFCLASS64) write_elf_headers<Elf64_Ehdr, Elf64_Phdr>(p, cls, machine, interp);
  else write_elf_headers<Elf32_Ehdr, Elf32_Phdr>(p, cls, machine, interp);
  fs::permissions(p, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                         fs::perms::others_read | fs::perms::others_exec);
}

// ---- fixtures -----------------------------------------------------------------

// WithTempDir gives each case a fresh directory, removed afterwards.
class WithTempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mossrun_cli.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
};

// WithStubLibrary: a copy of mossrun with the stub library beside it.
class WithStubLibrary : public WithTempDir {
 protected:
  void SetUp() override {
    WithTempDir::SetUp();
    mossrun_ = (dir_ / "mossrun").string();
    lib_ = (dir_ / "libmoss_preload.so").string();
    fs::copy_file(mossrun_under_test(), mossrun_);
    fs::permissions(mossrun_, rwxr_xr_x);
    fs::copy_file(MOSSRUN_STUB_PRELOAD, lib_);
  }

  outcome mossrun(const std::vector<std::string>& args, const env_change& env = {}) { return run(mossrun_, args, env); }

  std::string mossrun_, lib_;
};

using InBuildTree = WithTempDir;

// ---- options, help, version --------------------------------------------------------

struct option_case {
  const char* option;
  const char* variable;
  const char* good;  // a value the library accepts
  const char* bad;   // one it rejects
};

const option_case options[] = {
    {"threads", "MOSS_THREADS", "native", "both"},
    {"hook", "MOSS_HOOK", "socket,thread", "socket,files"},
    {"resolver", "MOSS_RESOLVER", "thread", "dnsmasq"},
    {"dns-servers", "MOSS_DNS_SERVERS", "127.0.0.1:5353,[::1]:53", "localhost"},
    {"dns-timeout-ms", "MOSS_DNS_TIMEOUT_MS", "500", "5s"},
    {"dns-tries", "MOSS_DNS_TRIES", "3", "0"},
    {"stack-size", "MOSS_STACK_SIZE", "8M", "8K"},
    {"threadpool-size", "MOSS_THREADPOOL_SIZE", "16", "-1"},
    {"monitor-ms", "MOSS_MONITOR_MS", "250", "1e3"},
    {"dump-signal", "MOSS_DUMP_SIGNAL", "SIGUSR1", "SIGKILL"},
};

TEST_F(WithStubLibrary, HelpListsEveryOptionWithItsVariableAndDefault) {
  outcome r = mossrun({"--help"});
  EXPECT_TRUE(r.exited_with(0)) << r.err;
  EXPECT_EQ(r.err, "");
  for (const auto& o : options) {
    std::size_t at = r.out.find(std::string("--") + o.option + " ");
    ASSERT_NE(at, std::string::npos) << o.option << " missing from:\n" << r.out;
    std::string line = r.out.substr(at, r.out.find('\n', at) - at);
    EXPECT_NE(line.find(o.variable), std::string::npos) << line;
    EXPECT_NE(line.find("default "), std::string::npos) << line;
  }
  EXPECT_NE(r.out.find("--version"), std::string::npos);
  EXPECT_NE(r.out.find("default green"), std::string::npos);
}

TEST_F(WithStubLibrary, VersionNamesTheProject) {
  outcome r = mossrun({"--version"});
  EXPECT_TRUE(r.exited_with(0));
  EXPECT_EQ(r.out, std::string("mossrun (moss) ") + MOSS_VERSION + "\n");
}

TEST_F(WithStubLibrary, NoProgramIsAUsageError) {
  outcome r = mossrun({"--threads", "green"});
  EXPECT_TRUE(r.exited_with(2));
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("usage: mossrun"), std::string::npos) << r.err;
}

TEST_F(WithStubLibrary, UnknownOptionIsOneLineThatPointsToHelp) {
  outcome r = mossrun({"--thread-count", "4", "true"});
  EXPECT_TRUE(r.exited_with(2));
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("--thread-count"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("try mossrun --help"), std::string::npos) << r.err;
}

TEST_F(WithStubLibrary, OptionWithoutItsValueIsAUsageError) {
  outcome r = mossrun({"--stack-size"});
  EXPECT_TRUE(r.exited_with(2));
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("--stack-size"), std::string::npos) << r.err;
}

TEST_F(WithStubLibrary, EachOptionSetsItsVariableInBothSpellings) {
  std::vector<std::string> spaced, joined;
  for (const auto& o : options) {
    spaced.insert(spaced.end(), {std::string("--") + o.option, o.good});
    joined.push_back(std::string("--") + o.option + "=" + o.good);
  }
  for (auto* args : {&spaced, &joined}) {
    args->push_back("env");
    env_change clean;
    for (const auto& o : options) clean[o.variable] = std::nullopt;
    outcome r = mossrun(*args, clean);
    ASSERT_TRUE(r.exited_with(0)) << r.err;
    auto env = env_of(r.out);
    for (const auto& o : options) EXPECT_EQ(env[o.variable], o.good) << o.option;
  }
}

TEST_F(WithStubLibrary, OptionWinsOverTheEnvironmentWhichIsKeptOtherwise) {
  outcome r = mossrun({"--dns-tries", "5", "env"}, {{"MOSS_DNS_TRIES", "3"}, {"MOSS_STACK_SIZE", "1M"}});
  ASSERT_TRUE(r.exited_with(0)) << r.err;
  auto env = env_of(r.out);
  EXPECT_EQ(env["MOSS_DNS_TRIES"], "5");
  EXPECT_EQ(env["MOSS_STACK_SIZE"], "1M");
}

TEST_F(WithStubLibrary, ThreadsAreGreenUnlessTheEnvironmentSaysOtherwise) {
  outcome r = mossrun({"env"}, {{"MOSS_THREADS", std::nullopt}});
  ASSERT_TRUE(r.exited_with(0)) << r.err;
  EXPECT_EQ(env_of(r.out)["MOSS_THREADS"], "green");
  r = mossrun({"env"}, {{"MOSS_THREADS", "native"}});
  ASSERT_TRUE(r.exited_with(0)) << r.err;
  EXPECT_EQ(env_of(r.out)["MOSS_THREADS"], "native");
}

TEST_F(WithStubLibrary, BadValueIsNamedAndStopsBeforeTheProgram) {
  for (const auto& o : options) {
    for (bool joined : {false, true}) {
      std::vector<std::string> args;
      if (joined) args.push_back(std::string("--") + o.option + "=" + o.bad);
      else args.insert(args.end(), {std::string("--") + o.option, o.bad});
      args.insert(args.end(), {"sh", "-c", "echo ran"});
      outcome r = mossrun(args);
      EXPECT_TRUE(r.exited_with(2)) << o.option << ": " << r.err;
      EXPECT_EQ(r.out, "") << o.option;
      EXPECT_TRUE(one_line(r.err)) << r.err;
      std::string head = std::string("mossrun: bad --") + o.option + " \"" + o.bad + "\": ";
      EXPECT_EQ(r.err.substr(0, head.size()), head) << r.err;
      bool says_what_is_accepted = r.err.find("accepted: ") != std::string::npos || r.err.find(": use ") != std::string::npos;
      EXPECT_TRUE(says_what_is_accepted) << r.err;
    }
  }
}

TEST_F(WithStubLibrary, EmptyValueIsRejected) {
  outcome r = mossrun({"--dns-timeout-ms=", "true"});
  EXPECT_TRUE(r.exited_with(2));
  EXPECT_EQ(r.err.rfind("mossrun: bad --dns-timeout-ms \"\": ", 0), 0u) << r.err;
}

TEST_F(WithStubLibrary, BadValueInheritedFromTheEnvironmentIsNamedByItsVariable) {
  outcome r = mossrun({"sh", "-c", "echo ran"}, {{"MOSS_DNS_TRIES", "many"}});
  EXPECT_TRUE(r.exited_with(2));
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("mossrun: bad MOSS_DNS_TRIES \"many\" in the environment: ", 0), 0u) << r.err;
  r = mossrun({"sh", "-c", "echo ran"}, {{"MOSS_STACK_SIZE", "lots"}});
  EXPECT_TRUE(r.exited_with(2));
  EXPECT_EQ(r.err.rfind("mossrun: bad MOSS_STACK_SIZE \"lots\" in the environment: ", 0), 0u) << r.err;
}

TEST_F(WithStubLibrary, OptionsAfterTheProgramAreItsOwn) {
  outcome r = mossrun({"--", "sh", "-c", "echo \"$@\"", "sh", "--stack-size", "bogus", "--help"});
  EXPECT_TRUE(r.exited_with(0)) << r.err;
  EXPECT_EQ(r.out, "--stack-size bogus --help\n");
  r = mossrun({"--threads=native", "sh", "-c", "echo \"$@\"", "sh", "--threads", "x"});
  EXPECT_TRUE(r.exited_with(0)) << r.err;
  EXPECT_EQ(r.out, "--threads x\n");
}

// ---- LD_PRELOAD -------------------------------------------------------------------

TEST_F(WithStubLibrary, LdPreloadIsTheLibraryBesideMossrun) {
  outcome r = mossrun({"env"}, {{"LD_PRELOAD", std::nullopt}});
  ASSERT_TRUE(r.exited_with(0)) << r.err;
  auto env = env_of(r.out);
  EXPECT_EQ(env["LD_PRELOAD"], lib_);
  EXPECT_EQ(env["MOSSRUN_STUB_LOADED"], "1") << "the loader did not load the library into the program";
}

TEST_F(WithStubLibrary, LdPreloadIsAppendedToAnExistingValue) {
  std::string other = (dir_ / "libother.so").string();
  fs::copy_file(MOSSRUN_STUB_PRELOAD, other);
  outcome r = mossrun({"env"}, {{"LD_PRELOAD", other}});
  ASSERT_TRUE(r.exited_with(0)) << r.err;
  EXPECT_EQ(env_of(r.out)["LD_PRELOAD"], other + ":" + lib_);
}

TEST_F(WithStubLibrary, AnotherCopyOfTheLibraryInLdPreloadIsReplaced) {
  std::string other = (dir_ / "libother.so").string();
  fs::copy_file(MOSSRUN_STUB_PRELOAD, other);
  outcome r = mossrun({"env"}, {{"LD_PRELOAD", "/elsewhere/lib/libmoss_preload.so " + other}});
  ASSERT_TRUE(r.exited_with(0)) << r.err;
  EXPECT_EQ(env_of(r.out)["LD_PRELOAD"], other + ":" + lib_);
}

TEST_F(WithStubLibrary, MossrunUnderMossrunPreloadsOnce) {
  outcome r = mossrun({mossrun_, "env"}, {{"LD_PRELOAD", std::nullopt}});
  ASSERT_TRUE(r.exited_with(0)) << r.err;
  EXPECT_EQ(env_of(r.out)["LD_PRELOAD"], lib_);
}

TEST_F(WithTempDir, MissingLibraryIsExit2) {
  if (fs::exists(MOSS_PRELOAD_INSTALLED)) GTEST_SKIP() << "moss is installed at " << MOSS_PRELOAD_INSTALLED;
  std::string lonely = (dir_ / "mossrun").string();
  fs::copy_file(mossrun_under_test(), lonely);
  fs::permissions(lonely, rwxr_xr_x);
  outcome r = run(lonely, {"true"});
  EXPECT_TRUE(r.exited_with(2));
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("libmoss_preload.so"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(MOSS_PRELOAD_INSTALLED), std::string::npos) << r.err;
}

TEST_F(InBuildTree, FindsTheLibraryBesideItsExecutable) {
  outcome r = run(MOSSRUN, {"env"}, {{"LD_PRELOAD", std::nullopt}});
  ASSERT_TRUE(r.exited_with(0)) << r.err;
  EXPECT_EQ(env_of(r.out)["LD_PRELOAD"], (fs::path(MOSSRUN).parent_path() / "libmoss_preload.so").string());
}

// ---- the process is the program ------------------------------------------------------

TEST_F(WithStubLibrary, ExitStatusIsTheProgramsOwn) {
  EXPECT_TRUE(mossrun({"sh", "-c", "exit 7"}).exited_with(7));
  EXPECT_TRUE(mossrun({"false"}).exited_with(1));
}

TEST_F(WithStubLibrary, DeathBySignalIsTheProgramsOwn) {
  outcome r = mossrun({"sh", "-c", "kill -TERM $$"});
  ASSERT_TRUE(WIFSIGNALED(r.status)) << r.status;
  EXPECT_EQ(WTERMSIG(r.status), SIGTERM);
}

TEST_F(WithStubLibrary, PidIsTheOneForked) {
  outcome r = mossrun({"sh", "-c", "echo $$"});
  ASSERT_TRUE(r.exited_with(0)) << r.err;
  EXPECT_EQ(r.out, std::to_string(r.pid) + "\n");
}

TEST_F(InBuildTree, ExitStatusSignalAndPidAreTheProgramsUnderTheRealLibrary) {
  EXPECT_TRUE(run(MOSSRUN, {"sh", "-c", "exit 7"}).exited_with(7));
  outcome r = run(MOSSRUN, {"sh", "-c", "kill -TERM $$"});
  EXPECT_TRUE(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGTERM) << r.status << " " << r.err;
  r = run(MOSSRUN, {"sh", "-c", "echo $$"});
  EXPECT_EQ(r.out, std::to_string(r.pid) + "\n") << r.err;
}

TEST_F(WithStubLibrary, ScriptRunsAndItsInterpreterGetsThePreload) {
  fs::path script = dir_ / "script";
  write_file(script, "#!/bin/sh\necho \"$LD_PRELOAD $MOSSRUN_STUB_LOADED\"\n", rwxr_xr_x);
  outcome r = mossrun({script.string()}, {{"LD_PRELOAD", std::nullopt}});
  EXPECT_TRUE(r.exited_with(0)) << r.err;
  EXPECT_EQ(r.out, lib_ + " 1\n");
}

TEST_F(WithStubLibrary, ExecutableWithoutHashBangRunsWithSh) {
  fs::path file = dir_ / "plain-script";
  write_file(file, "echo plain \"$1\"\n", rwxr_xr_x);
  outcome r = mossrun({file.string(), "arg"});
  EXPECT_TRUE(r.exited_with(0)) << r.err;
  EXPECT_EQ(r.out, "plain arg\n");
}

// ---- like a shell: 127 and 126 -----------------------------------------------------

TEST_F(WithStubLibrary, MissingProgramIsCommandNotFound127) {
  outcome r = mossrun({"no-such-program-for-mossrun"});
  EXPECT_TRUE(r.exited_with(127));
  EXPECT_EQ(r.err, "mossrun: no-such-program-for-mossrun: command not found\n");
  std::string path = (dir_ / "absent").string();
  r = mossrun({path});
  EXPECT_TRUE(r.exited_with(127));
  EXPECT_EQ(r.err, "mossrun: " + path + ": No such file or directory\n");
}

TEST_F(WithStubLibrary, ScriptWithAMissingInterpreterIs127) {
  fs::path script = dir_ / "script";
  write_file(script, "#!/nonexistent/interp -x\necho ran\n", rwxr_xr_x);
  outcome r = mossrun({script.string()});
  EXPECT_TRUE(r.exited_with(127));
  EXPECT_EQ(r.err, "mossrun: " + script.string() + ": bad interpreter /nonexistent/interp: No such file or directory\n");
}

TEST_F(WithStubLibrary, ProgramIsSearchedInPath) {
  fs::path bin = dir_ / "bin";
  fs::create_directory(bin);
  write_file(bin / "hello-mossrun", "#!/bin/sh\necho hello from path\n", rwxr_xr_x);
  outcome r = mossrun({"hello-mossrun"}, {{"PATH", "/nonexistent:" + bin.string() + ":/usr/bin:/bin"}});
  EXPECT_TRUE(r.exited_with(0)) << r.err;
  EXPECT_EQ(r.out, "hello from path\n");
}

TEST_F(WithStubLibrary, NonExecutableFileIs126PermissionDenied) {
  fs::path file = dir_ / "plain";
  write_file(file, "echo should not run\n", rw_r__r__);
  outcome r = mossrun({file.string()});
  EXPECT_TRUE(r.exited_with(126));
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "mossrun: " + file.string() + ": Permission denied\n");
  // Found only as a non-executable file in PATH: the same, as in bash.
  r = mossrun({"plain"}, {{"PATH", dir_.string()}});
  EXPECT_TRUE(r.exited_with(126));
  EXPECT_EQ(r.err, "mossrun: plain: Permission denied\n");
  // A path through a file, as a shell says.
  r = mossrun({(file / "x").string()});
  EXPECT_TRUE(r.exited_with(126));
  EXPECT_EQ(r.err, "mossrun: " + (file / "x").string() + ": Not a directory\n");
}

TEST_F(WithStubLibrary, DirectoryIs126IsADirectory) {
  outcome r = mossrun({dir_.string()});
  EXPECT_TRUE(r.exited_with(126));
  EXPECT_EQ(r.err, "mossrun: " + dir_.string() + ": Is a directory\n");
  // A directory in PATH is not a command.
  fs::create_directory(dir_ / "subdir");
  r = mossrun({"subdir"}, {{"PATH", dir_.string()}});
  EXPECT_TRUE(r.exited_with(127));
}

// ---- programs LD_PRELOAD cannot reach -----------------------------------------------

TEST_F(WithStubLibrary, StaticallyLinkedProgramIsRefused) {
  if (!fs::exists("/usr/lib/x86_64-linux-gnu/libc.a"))
    GTEST_SKIP() << "no static libc (/usr/lib/x86_64-linux-gnu/libc.a, package libc6-dev) to link a static program";
  if (std::system("command -v cc >/dev/null") != 0) GTEST_SKIP() << "no C compiler (cc) to build a static program";
  write_file(dir_ / "tiny.c", "int main(void) { return 3; }\n", rw_r__r__);
  fs::path bin = dir_ / "bin";
  fs::create_directory(bin);
  std::string cmd = "cc -static -o " + (bin / "tiny").string() + " " + (dir_ / "tiny.c").string() + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  ASSERT_EQ(run((bin / "tiny").string(), {}).status, 3 << 8) << "the static program itself runs";
  outcome r = mossrun({(bin / "tiny").string()});
  EXPECT_TRUE(r.exited_with(2)) << r.status;
  EXPECT_EQ(r.err, "mossrun: " + (bin / "tiny").string() + " is statically linked; LD_PRELOAD cannot reach it\n");
  // Found through PATH, the file checked is the one PATH gives.
  r = mossrun({"tiny"}, {{"PATH", bin.string()}});
  EXPECT_TRUE(r.exited_with(2)) << r.status;
  EXPECT_EQ(r.err, "mossrun: tiny is statically linked; LD_PRELOAD cannot reach it\n");
}

TEST_F(WithStubLibrary, ElfWithoutAnInterpreterIsRefusedAsStatic) {
  fs::path prog = dir_ / "static-headers";
  write_elf(prog, ELFCLASS64, EM_X86_64, false);
  outcome r = mossrun({prog.string()});
  EXPECT_TRUE(r.exited_with(2)) << r.status;
  EXPECT_EQ(r.err, "mossrun: " + prog.string() + " is statically linked; LD_PRELOAD cannot reach it\n");
}

TEST_F(WithStubLibrary, AScriptWhoseInterpreterIsStaticIsRefused) {
  fs::path interp = dir_ / "static-interp";
  write_elf(interp, ELFCLASS64, EM_X86_64, false);
  fs::path script = dir_ / "script";
  write_file(script, "#!" + interp.string() + " -x\necho hi\n", rwxr_xr_x);
  outcome r = mossrun({script.string()});
  EXPECT_TRUE(r.exited_with(2)) << r.status;
  EXPECT_EQ(r.err, "mossrun: " + script.string() + "'s interpreter " + interp.string() +
                       " is statically linked; LD_PRELOAD cannot reach it\n");
  // A dynamically linked interpreter is fine (the stub library then runs).
  write_elf(interp, ELFCLASS64, EM_X86_64, true);
  r = mossrun({script.string()});
  EXPECT_EQ(r.err.find("statically linked"), std::string::npos) << r.err;
}

TEST_F(WithStubLibrary, ProgramForAnotherClassOrMachineIsRefused) {
  fs::path prog = dir_ / "foreign";
  write_elf(prog, ELFCLASS32, EM_386, true);
  outcome r = mossrun({prog.string()});
  EXPECT_TRUE(r.exited_with(2)) << r.status;
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_EQ(r.err.rfind("mossrun: " + prog.string() + " is 32-bit ELF for machine 3, ", 0), 0u) << r.err;
  write_elf(prog, ELFCLASS64, EM_AARCH64, true);
  r = mossrun({prog.string()});
  EXPECT_TRUE(r.exited_with(2)) << r.status;
  EXPECT_NE(r.err.find("the loader cannot preload it there"), std::string::npos) << r.err;
}

TEST_F(WithStubLibrary, SetuidAndSetgidProgramsAreRefused) {
  fs::path prog = dir_ / "prog";
  fs::copy_file("/bin/true", prog);
  ASSERT_EQ(chmod(prog.c_str(), 04755), 0);
  outcome r = mossrun({prog.string()});
  EXPECT_TRUE(r.exited_with(2)) << r.status;
  EXPECT_EQ(r.err, "mossrun: " + prog.string() + " is setuid; the loader ignores LD_PRELOAD for it\n");
  ASSERT_EQ(chmod(prog.c_str(), 02755), 0);
  r = mossrun({prog.string()});
  EXPECT_TRUE(r.exited_with(2)) << r.status;
  EXPECT_EQ(r.err, "mossrun: " + prog.string() + " is setgid; the loader ignores LD_PRELOAD for it\n");
  ASSERT_EQ(chmod(prog.c_str(), 0755), 0);
  EXPECT_TRUE(mossrun({prog.string()}).exited_with(0));
}

}  // namespace

// args.hpp: the command-line parser every moss sample shares, on
// getopt_long, so that all of them take options the same way:
//
//   --opt=value and --opt value, -c5 and -c 5, flags anywhere among the
//   operands (GNU permutation), "--" ends the options; -h/--help prints the
//   tool's usage on stdout and --version "moss-<tool> <version>", both exit 0.
//
// Every problem is one line on stderr, "moss-<tool>: <what> (try --help)",
// and exit status 2: the same wording in every tool for an unknown option,
// a missing value and a bad number.
#pragma once

#include <moss/version.hpp>

#include <getopt.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace sample {

// option is one option a tool accepts: its long name (without "--"), its
// one-letter name, or both; and whether it takes a value. The handler of
// parse() is told the option by its shown name: "--name" when it has one,
// else "-l".
struct option {
  const char* name;  // nullptr: short form only
  char letter;       // 0: long form only
  bool takes_value;
};

class args {
 public:
  // prog is "moss-<tool>"; usage is the --help text.
  args(const char* prog, const char* usage) : prog_(prog), usage_(usage) {}

  const char* prog() const { return prog_; }

  // fail() reports a usage error and exits with status 2.
  [[noreturn]] void fail(const std::string& what) const {
    std::fprintf(stderr, "%s: %s (try --help)\n", prog_, what.c_str());
    std::exit(2);
  }

  // number() reads all of text as a whole number within [lo, hi], or fails
  // naming the option.
  long number(std::string_view opt, const char* text, long lo, long hi) const {
    char* end = nullptr;
    errno = 0;
    long v = std::strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi)
      fail(bad_value(opt, text) + ": expected a number from " + std::to_string(lo) + " to " + std::to_string(hi));
    return v;
  }

  // real() is number() for a value that may have a fraction (seconds).
  double real(std::string_view opt, const char* text, double lo, double hi) const {
    char* end = nullptr;
    errno = 0;
    double v = std::strtod(text, &end);
    if (*text == '\0' || *end != '\0' || errno != 0 || !(v >= lo && v <= hi))
      fail(bad_value(opt, text) + ": expected a number from " + trim(lo) + " to " + trim(hi));
    return v;
  }

  // bad_value() is the start of every message about a value: `bad value
  // "x" for --opt`, for a tool's own checks to continue.
  static std::string bad_value(std::string_view opt, const char* text) {
    return "bad value \"" + std::string(text) + "\" for " + std::string(opt);
  }

  // parse() calls on_option(shown name, value or nullptr) for each option
  // in argv, in order, and returns the operands in order. --help and
  // --version are answered here.
  std::vector<std::string> parse(int argc, char** argv, std::initializer_list<option> opts,
                                 const std::function<void(std::string_view, const char*)>& on_option) const {
    std::vector<option> all(opts);
    constexpr int first_long_only = 256;
    std::string shorts = ":h";  // ':' first: a missing value is reported as ':', not printed by getopt
    std::vector<::option> longs;
    auto val_of = [&](std::size_t i) { return all[i].letter != 0 ? all[i].letter : first_long_only + static_cast<int>(i); };
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (all[i].letter != 0) {
        shorts += all[i].letter;
        if (all[i].takes_value) shorts += ':';
      }
      if (all[i].name != nullptr)
        longs.push_back({all[i].name, all[i].takes_value ? required_argument : no_argument, nullptr, val_of(i)});
    }
    const int version_val = first_long_only + static_cast<int>(all.size());
    longs.push_back({"help", no_argument, nullptr, 'h'});
    longs.push_back({"version", no_argument, nullptr, version_val});
    longs.push_back({nullptr, 0, nullptr, 0});
    auto shown = [&](int val) -> std::string {
      for (std::size_t i = 0; i < all.size(); ++i)
        if (val_of(i) == val) return all[i].name != nullptr ? "--" + std::string(all[i].name) : std::string("-") + all[i].letter;
      return val == 'h' ? "--help" : val == version_val ? "--version" : std::string("-") + static_cast<char>(val);
    };
    auto known = [&](int val) {
      for (std::size_t i = 0; i < all.size(); ++i)
        if (val_of(i) == val) return true;
      return val == 'h' || val == version_val;
    };

    opterr = 0;
    optind = 0;  // 0, not 1: glibc then also resets its permutation state
    for (;;) {
      int c = getopt_long(argc, argv, shorts.c_str(), longs.data(), nullptr);
      if (c == -1) break;
      if (c == 'h') {
        std::fputs(usage_, stdout);
        std::exit(0);
      }
      if (c == version_val) {
        std::printf("%s %s\n", prog_, MOSS_VERSION_STRING);
        std::exit(0);
      }
      if (c == ':') fail("option " + shown(optopt) + " needs a value");
      if (c == '?') {
        // optopt is 0 for an unknown long option, the option's value for
        // "--flag=x" on a flag, and the letter for an unknown short one.
        std::string given = optind > 0 ? argv[optind - 1] : "";
        std::string name = given.substr(0, given.find('='));
        if (optopt != 0 && known(optopt) && given.rfind("--", 0) == 0) fail("option " + name + " takes no value");
        if (optopt == 0) fail("unknown option \"" + name + "\"");
        fail("unknown option \"-" + std::string(1, static_cast<char>(optopt)) + "\"");
      }
      on_option(shown(c), optarg);
    }
    return std::vector<std::string>(argv + optind, argv + argc);
  }

 private:
  static std::string trim(double d) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", d);
    return b;
  }

  const char* prog_;
  const char* usage_;
};

}  // namespace sample

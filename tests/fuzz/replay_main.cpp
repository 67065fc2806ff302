// replay_main.cpp: a main() for the fuzz targets without libFuzzer, so that
// any compiler (gcc in the default test run) can run them as tests.
//
//   <target>_fuzz [--mutate N] [--seed S] FILE_OR_DIR...
//
// runs LLVMFuzzerTestOneInput on every file given (a directory: every file
// in it), then, with --mutate N, on N inputs made from those files by a
// seeded xorshift mutator (byte flips, overwrites, inserts, erases, splices
// of two inputs, truncation): a bounded, reproducible smoke of the paths next
// to the corpus. A crash or a failed check in the target aborts, which fails
// the test; the input that did it is written to <target>-crash (in the
// working directory) first, for the libFuzzer build to replay.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

using input = std::vector<std::uint8_t>;

input read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return input(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct rng {
  std::uint64_t s;
  std::uint64_t next() noexcept {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  std::size_t below(std::size_t n) noexcept { return n == 0 ? 0 : static_cast<std::size_t>(next() % n); }
};

input mutate(const std::vector<input>& corpus, rng& r) {
  input in = corpus[r.below(corpus.size())];
  int steps = 1 + static_cast<int>(r.below(4));
  for (int i = 0; i < steps; ++i) {
    switch (r.below(6)) {
      case 0:  // flip a bit
        if (!in.empty()) in[r.below(in.size())] ^= static_cast<std::uint8_t>(1u << r.below(8));
        break;
      case 1:  // overwrite a byte, often with a boundary value
        if (!in.empty()) {
          static constexpr std::uint8_t special[] = {0x00, 0x01, 0x7f, 0x80, 0xc0, 0xff, 0x3f, 0x40};
          in[r.below(in.size())] = r.below(2) ? special[r.below(sizeof special)] : static_cast<std::uint8_t>(r.next());
        }
        break;
      case 2: {  // insert a few random bytes
        std::size_t at = r.below(in.size() + 1), n = 1 + r.below(8);
        input bytes(n);
        for (auto& b : bytes) b = static_cast<std::uint8_t>(r.next());
        in.insert(in.begin() + static_cast<std::ptrdiff_t>(at), bytes.begin(), bytes.end());
        break;
      }
      case 3:  // erase a range
        if (!in.empty()) {
          std::size_t at = r.below(in.size()), n = 1 + r.below(std::min<std::size_t>(16, in.size() - at));
          in.erase(in.begin() + static_cast<std::ptrdiff_t>(at), in.begin() + static_cast<std::ptrdiff_t>(at + n));
        }
        break;
      case 4: {  // splice: this input's head, another's tail
        const input& other = corpus[r.below(corpus.size())];
        std::size_t keep = r.below(in.size() + 1), from = r.below(other.size() + 1);
        in.resize(keep);
        in.insert(in.end(), other.begin() + static_cast<std::ptrdiff_t>(from), other.end());
        break;
      }
      default:  // truncate
        in.resize(r.below(in.size() + 1));
        break;
    }
  }
  return in;
}

const char* target_name = "fuzz";

void run(const input& in) {
  // Written before the run and removed after it: what is left after a crash
  // is the input that crashed.
  std::string crash = std::string(target_name) + "-crash";
  {
    std::ofstream out(crash, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(in.data()), static_cast<std::streamsize>(in.size()));
  }
  LLVMFuzzerTestOneInput(in.data(), in.size());
  std::remove(crash.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  std::string self = std::filesystem::path(argv[0]).filename().string();
  target_name = self.c_str();
  long mutations = 0;
  std::uint64_t seed = 0x9e3779b97f4a7c15ull;
  std::vector<input> corpus;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--mutate" || a == "--seed") && i + 1 < argc) {
      char* end = nullptr;
      unsigned long long v = std::strtoull(argv[++i], &end, 10);
      if (*end != '\0') {
        std::fprintf(stderr, "%s: %s wants a number, not \"%s\"\n", target_name, a.c_str(), argv[i]);
        return 2;
      }
      if (a == "--mutate") mutations = static_cast<long>(v);
      else seed = v != 0 ? v : 1;
      continue;
    }
    std::filesystem::path p(a);
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      std::vector<std::filesystem::path> files;
      for (const auto& e : std::filesystem::directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) corpus.push_back(read_file(f));
    } else if (std::filesystem::is_regular_file(p, ec)) {
      corpus.push_back(read_file(p));
    } else {
      std::fprintf(stderr, "%s: no such file or directory: %s\n", target_name, a.c_str());
      return 2;
    }
  }
  if (corpus.empty()) {
    std::fprintf(stderr, "usage: %s [--mutate N] [--seed S] FILE_OR_DIR... (and at least one input)\n", target_name);
    return 2;
  }
  for (const input& in : corpus) run(in);
  rng r{seed};
  for (long i = 0; i < mutations; ++i) run(mutate(corpus, r));
  std::printf("%s: %zu corpus inputs and %ld mutations ran clean\n", target_name, corpus.size(), mutations);
  return 0;
}

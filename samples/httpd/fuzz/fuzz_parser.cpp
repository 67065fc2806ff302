// fuzz_parser: libFuzzer target for moss-httpd's request parser. Beyond
// "no crash, no sanitizer report", it checks the promises http_parser.hpp
// makes: a complete head lies inside the input and its views point into it,
// and a decoded path never holds a ".." segment or a NUL byte.
//
//   CXX=clang++ meson setup build-fuzz -Dtests=false
//   ninja -C build-fuzz samples/httpd/fuzz_http_parser
//   mkdir -p corpus && build-fuzz/samples/httpd/fuzz_http_parser -runs=1000000 corpus samples/httpd/fuzz/corpus
#include "../http_parser.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  httpd::request req;
  auto st = httpd::parse_request(in, req, httpd::limits{4096, 20});
  if (st == httpd::parse_status::complete) {
    if (req.head_size == 0 || req.head_size > in.size() || req.head_size > 4096) __builtin_trap();
    auto head = in.substr(0, req.head_size);
    if (!inside(req.method, head) || !inside(req.target, head) || !inside(req.host, head)) __builtin_trap();
    if (req.target.empty() || req.target.front() != '/') __builtin_trap();
  }
  // The path decoder sees both the parsed target and the raw input.
  std::string path;
  bool slash = false;
  for (std::string_view t : {st == httpd::parse_status::complete ? req.target : std::string_view{}, in}) {
    if (httpd::decode_path(t, path, slash) != httpd::path_status::ok) continue;
    if (path.empty() || path.front() != '/' || path.find('\0') != std::string::npos) __builtin_trap();
    if (path.find("/../") != std::string::npos || path.ends_with("/..") || path.find("//") != std::string::npos)
      __builtin_trap();
  }
  return 0;
}

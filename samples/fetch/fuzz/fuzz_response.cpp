// fuzz_response: libFuzzer target for moss-fetch's response parser. Beyond
// "no crash, no sanitizer report", it checks what http_response.hpp
// promises: the outcome does not depend on how the bytes are split across
// feed() calls, body_bytes() counts exactly what the sink got, and a failed
// parser says why.
#include "../http_response.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

struct run_result {
  moss_fetch::response_parser::state st;
  std::string body;
  int status;
  std::size_t headers;
  std::uint64_t counted;
  std::string error;
};

// parse() feeds in by pieces of `step` bytes (0: all at once), then, when
// `eof`, ends the connection.
run_result parse(std::string_view in, std::size_t step, bool head_request, bool eof) {
  moss_fetch::response_parser p(head_request, 1024);
  std::string body;
  auto sink = [&](std::string_view part) {
    if (part.empty()) __builtin_trap();  // the sink never gets empty pieces
    body.append(part);
  };
  if (step == 0) step = in.size() + 1;
  for (std::size_t i = 0; i < in.size(); i += step) p.feed(in.substr(i, step), sink);
  if (eof) p.finish();
  if (p.failed() && p.error().empty()) __builtin_trap();
  return {p.current(), body, p.has_head() ? p.head().status : 0, p.has_head() ? p.head().headers.size() : 0,
          p.body_bytes(), p.error()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // The first byte picks the piece size and the options; the rest is the
  // response.
  std::size_t step = data[0] & 0x1f;
  bool head_request = (data[0] & 0x20) != 0;
  bool eof = (data[0] & 0x40) != 0;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  run_result whole = parse(in, 0, head_request, eof);
  run_result split = parse(in, step == 0 ? 1 : step, head_request, eof);
  if (whole.counted != whole.body.size() || split.counted != split.body.size()) __builtin_trap();
  if (whole.st != split.st || whole.body != split.body || whole.status != split.status ||
      whole.headers != split.headers || whole.error != split.error)
    __builtin_trap();
  if (whole.status != 0 && (whole.status < 100 || whole.status > 999)) __builtin_trap();
  return 0;
}

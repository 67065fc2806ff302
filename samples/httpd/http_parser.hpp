// http_parser: moss-httpd's HTTP/1.x request-head parser, as pure functions
// of a byte range so a fuzzer can drive them without sockets or a hub.
//
// parse_request() reads one request head (request line and header fields up
// to the blank line) from the start of a buffer. It never reads past
// data.size(), never allocates, and bounds everything: a head longer than
// max_head_bytes or with more than max_fields fields is "too large" whether
// or not its end has arrived. The request's string_views point into data.
//
// decode_path() turns a request target into a normalized file path: query
// and fragment dropped, percent-escapes decoded, empty and "." segments
// removed. A ".." segment (also spelled %2e%2e, or hidden behind %2f) is
// refused rather than resolved, so no decoded path can name anything above
// the served root.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace httpd {

enum class parse_status {
  complete,    // out is filled; out.head_size bytes make up the head
  incomplete,  // no error so far; more bytes are needed
  bad,         // malformed: answer 400
  too_large,   // head or field count over the limits: answer 431
  bad_version, // well-formed but not HTTP/1.0 or 1.1: answer 505
};

struct limits {
  std::size_t max_head_bytes = 16 * 1024;
  std::size_t max_fields = 100;
};

struct request {
  std::string_view method;  // a token, e.g. "GET"
  std::string_view target;  // origin form, starting with '/' (an absolute-form target's path)
  std::string_view host;    // an absolute-form target's authority, else Host; empty when absent
  std::string_view range;   // the Range field's value; empty when absent
  int minor_version = 1;    // HTTP/1.<minor_version>
  bool keep_alive = true;   // by version default and Connection tokens
  bool has_body = false;    // Content-Length > 0 or Transfer-Encoding present
  std::uint64_t content_length = 0;
  std::size_t head_size = 0;  // bytes consumed, blank line included
};

// parse_request() parses the request head at the start of data (leading
// empty lines are skipped, as RFC 9112 section 2.2 allows).
parse_status parse_request(std::string_view data, request& out, const limits& lim = {});

enum class path_status {
  ok,
  bad,      // malformed escape, NUL byte, or a target not starting with '/'
  escapes,  // a ".." segment after decoding
};

// decode_path() writes the normalized path ("/" or "/a/b", never a trailing
// slash) to path and reports whether the target ended in '/' through
// trailing_slash (directory listings and index files care).
path_status decode_path(std::string_view target, std::string& path, bool& trailing_slash);

}  // namespace httpd

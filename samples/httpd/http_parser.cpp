// http_parser.cpp: see http_parser.hpp. Lines may end in CRLF or a bare LF
// (RFC 9112 section 2.2 lets a server accept the latter); a bare CR inside a
// line is an error, as is obsolete line folding.
#include "http_parser.hpp"

#include <algorithm>
#include <array>

namespace httpd {
namespace {

// tchar from RFC 9110 section 5.6.2, as a table: every request's method and
// field names go through it.
constexpr auto tchar_table = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = t[static_cast<std::size_t>(c - 32)] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return tchar_table[static_cast<unsigned char>(c)]; });
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
    if (x != y) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// next_line() takes one line off the front of rest (without its CRLF/LF).
// Returns false when no full line is there yet.
bool next_line(std::string_view& rest, std::string_view& line) {
  auto lf = rest.find('\n');
  if (lf == std::string_view::npos) return false;
  line = rest.substr(0, lf);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  rest.remove_prefix(lf + 1);
  return true;
}

bool has_ctl(std::string_view s, bool allow_tab) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && !(allow_tab && c == '\t')) || c == 0x7f) return true;
  }
  return false;
}

// absolute_form() turns an absolute-form target ("http://host:port/path",
// RFC 9112 section 3.2.2, what a client talking to a proxy sends) into its
// path, and its authority into out.host; false if the authority is empty.
// Other targets are left alone.
bool absolute_form(request& out) {
  std::string_view t = out.target;
  std::size_t skip = 0;
  if (t.size() >= 7 && iequals(t.substr(0, 7), "http://")) skip = 7;
  else if (t.size() >= 8 && iequals(t.substr(0, 8), "https://")) skip = 8;
  if (skip == 0) return true;
  t.remove_prefix(skip);
  auto end = t.find_first_of("/?#");
  out.host = t.substr(0, end);
  if (out.host.empty()) return false;
  out.target = end == std::string_view::npos || t[end] != '/' ? std::string_view("/") : t.substr(end);
  return true;
}

parse_status parse_request_line(std::string_view line, request& out) {
  auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return parse_status::bad;
  auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return parse_status::bad;
  out.method = line.substr(0, sp1);
  out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  auto version = line.substr(sp2 + 1);
  if (!is_token(out.method)) return parse_status::bad;
  if (!absolute_form(out)) return parse_status::bad;
  if (out.target.empty() || out.target.front() != '/' || has_ctl(out.target, false) ||
      out.target.find(' ') != std::string_view::npos)
    return parse_status::bad;
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9')
    return parse_status::bad;
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) return parse_status::bad_version;
  out.minor_version = version[7] - '0';
  out.keep_alive = out.minor_version == 1;
  return parse_status::complete;
}

// connection_tokens() applies a Connection field's comma-separated options.
void connection_tokens(std::string_view v, bool& saw_close, bool& saw_keep_alive) {
  while (!v.empty()) {
    auto comma = v.find(',');
    auto tok = trim_ows(v.substr(0, comma));
    if (iequals(tok, "close")) saw_close = true;
    if (iequals(tok, "keep-alive")) saw_keep_alive = true;
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
}

// parse_length() reads a Content-Length: digits only, no overflow.
bool parse_length(std::string_view v, std::uint64_t& n) {
  if (v.empty() || v.size() > 18) return false;
  n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

parse_status parse_request(std::string_view data, request& out, const limits& lim) {
  out = request{};
  std::string_view rest = data.substr(0, std::min(data.size(), lim.max_head_bytes));
  const bool truncated = data.size() > lim.max_head_bytes;

  // Everything below runs again on each call with more data: heads are
  // small and bounded, so re-scanning is cheaper than keeping state.
  std::string_view line;
  for (;;) {
    if (!next_line(rest, line)) return truncated ? parse_status::too_large : parse_status::incomplete;
    if (!line.empty()) break;
  }
  if (auto st = parse_request_line(line, out); st != parse_status::complete) return st;

  bool saw_close = false, saw_keep_alive = false, saw_length = false, saw_te = false, saw_host = false;
  const bool host_from_target = !out.host.empty();  // absolute form: its authority wins over Host
  std::size_t fields = 0;
  for (;;) {
    if (!next_line(rest, line)) return truncated ? parse_status::too_large : parse_status::incomplete;
    if (line.empty()) break;
    if (++fields > lim.max_fields) return parse_status::too_large;
    if (line.front() == ' ' || line.front() == '\t') return parse_status::bad;  // obs-fold
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return parse_status::bad;
    auto name = line.substr(0, colon);
    if (!is_token(name)) return parse_status::bad;
    auto value = trim_ows(line.substr(colon + 1));
    if (has_ctl(value, true)) return parse_status::bad;
    if (iequals(name, "host")) {
      if (saw_host || value.empty()) return parse_status::bad;
      saw_host = true;
      if (!host_from_target) out.host = value;
    } else if (iequals(name, "range")) {
      out.range = value;
    } else if (iequals(name, "connection")) {
      connection_tokens(value, saw_close, saw_keep_alive);
    } else if (iequals(name, "content-length")) {
      std::uint64_t n = 0;
      if (!parse_length(value, n)) return parse_status::bad;
      if (saw_length && n != out.content_length) return parse_status::bad;
      saw_length = true;
      out.content_length = n;
    } else if (iequals(name, "transfer-encoding")) {
      saw_te = true;
    }
  }
  // RFC 9112 section 3.2: a 1.1 request without Host is a 400; section 6.3:
  // both framings at once is a smuggling attempt.
  if (out.minor_version == 1 && !saw_host) return parse_status::bad;
  if (saw_te && saw_length) return parse_status::bad;
  out.has_body = saw_te || out.content_length > 0;
  if (saw_close)
    out.keep_alive = false;
  else if (saw_keep_alive)
    out.keep_alive = true;
  out.head_size = static_cast<std::size_t>(rest.data() - data.data());
  return parse_status::complete;
}

path_status decode_path(std::string_view target, std::string& path, bool& trailing_slash) {
  path.clear();
  trailing_slash = false;
  if (target.empty() || target.front() != '/') return path_status::bad;
  target = target.substr(0, target.find_first_of("?#"));

  std::string decoded;
  decoded.reserve(target.size());
  for (std::size_t i = 0; i < target.size(); ++i) {
    char c = target[i];
    if (c == '%') {
      if (i + 2 >= target.size()) return path_status::bad;
      int hi = hex_value(target[i + 1]), lo = hex_value(target[i + 2]);
      if (hi < 0 || lo < 0) return path_status::bad;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return path_status::bad;
    decoded.push_back(c);
  }
  trailing_slash = decoded.back() == '/';

  // Split on '/' after decoding, so %2f counts as a separator and
  // "%2e%2e%2f" is seen as the ".." segment it is.
  std::string_view rest = decoded;
  while (!rest.empty()) {
    auto slash = rest.find('/');
    auto seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      path.clear();
      return path_status::escapes;
    }
    path.push_back('/');
    path.append(seg);
  }
  if (path.empty()) path.push_back('/');
  return path_status::ok;
}

}  // namespace httpd

// http_response.cpp: the response parser of moss-fetch (see the header).
// Framing follows RFC 9112 section 6.3: no body for HEAD, 1xx, 204 and 304;
// Transfer-Encoding ending in chunked wins over Content-Length; otherwise
// Content-Length; otherwise the body runs until the connection closes.
#include "http_response.hpp"

#include <algorithm>
#include <cctype>
#include <limits>

namespace moss_fetch {

namespace {

constexpr std::size_t max_line = 8 * 1024;  // a chunk-size or trailer line

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

bool is_token_char(char c) {
  auto u = static_cast<unsigned char>(c);
  if (std::isalnum(u)) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// parse_decimal() reads a non-empty run of digits that fits in 62 bits.
std::optional<std::uint64_t> parse_decimal(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

// parse_hex() reads a chunk size: hex digits, up to 15 of them.
std::optional<std::uint64_t> parse_hex(std::string_view s) {
  if (s.empty() || s.size() > 15) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return std::nullopt;
    v = v * 16 + static_cast<std::uint64_t>(d);
  }
  return v;
}

// find_head_end() returns the index just past the blank line ending the
// head in s (CRLF CRLF, or bare LF LF from lenient servers), searching from
// from; npos if it is not there yet.
std::size_t find_head_end(const std::string& s, std::size_t from) {
  for (std::size_t i = s.find('\n', from); i != std::string::npos; i = s.find('\n', i + 1)) {
    if (i + 1 < s.size() && s[i + 1] == '\n') return i + 2;
    if (i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') return i + 3;
  }
  return std::string::npos;
}

}  // namespace

std::optional<std::string_view> response_head::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequal(k, name)) return std::string_view(v);
  return std::nullopt;
}

response_parser::state response_parser::fail(std::string why) {
  state_ = state::failed;
  error_ = std::move(why);
  buf_.clear();
  return state_;
}

bool response_parser::parse_head(std::string_view text) {
  head_ = response_head{};
  auto next_line = [&text]() {
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return line;
  };
  std::string_view status = next_line();
  // "HTTP/1.x SSS[ reason]"
  if (status.size() < 12 || status.substr(0, 7) != "HTTP/1." || !std::isdigit(static_cast<unsigned char>(status[7])) ||
      status[8] != ' ') {
    fail("bad status line");
    return false;
  }
  head_.minor_version = status[7] - '0';
  for (int i = 9; i < 12; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(status[static_cast<std::size_t>(i)]))) {
      fail("bad status code");
      return false;
    }
    head_.status = head_.status * 10 + (status[static_cast<std::size_t>(i)] - '0');
  }
  if (head_.status < 100) {
    fail("bad status code");
    return false;
  }
  if (status.size() > 12) {
    if (status[12] != ' ') {
      fail("bad status code");
      return false;
    }
    head_.reason = std::string(status.substr(13));
  }
  for (;;) {
    std::string_view line = next_line();
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {
      fail("folded header line");  // obsolete line folding: RFC 9112 lets a client reject it
      return false;
    }
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0 ||
        !std::all_of(line.begin(), line.begin() + static_cast<long>(colon), is_token_char)) {
      fail("bad header line");
      return false;
    }
    head_.headers.emplace_back(std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
  }
  return true;
}

void response_parser::start_body() {
  state_ = state::body;
  int s = head_.status;
  if (head_request_ || s == 204 || s == 304 || (s >= 100 && s < 200)) {
    state_ = state::done;
    return;
  }
  if (auto te = head_.header("Transfer-Encoding")) {
    // The last coding decides: chunked frames the body, anything else runs
    // until the close.
    std::string_view codings = *te;
    std::size_t comma = codings.rfind(',');
    std::string_view last = trim(comma == std::string_view::npos ? codings : codings.substr(comma + 1));
    if (iequal(last, "chunked")) {
      framing_ = framing::chunked;
      chunk_ = chunk_step::size_line;
    } else {
      framing_ = framing::until_close;
    }
    return;
  }
  std::optional<std::uint64_t> length;
  for (const auto& [k, v] : head_.headers) {
    if (!iequal(k, "Content-Length")) continue;
    // "5, 5" and repeated headers are allowed only when they all agree.
    std::string_view rest = v;
    while (true) {
      std::size_t comma = rest.find(',');
      auto n = parse_decimal(trim(rest.substr(0, comma)));
      if (!n || (length && *length != *n)) {
        fail("bad Content-Length");
        return;
      }
      length = n;
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  if (length) {
    framing_ = framing::length;
    remaining_ = *length;
    if (remaining_ == 0) state_ = state::done;
    return;
  }
  framing_ = framing::until_close;
}

std::size_t response_parser::feed_body(std::string_view data, const body_sink& sink) {
  auto deliver = [&](std::string_view part) {
    body_bytes_ += part.size();
    if (sink && !part.empty()) sink(part);
  };
  if (framing_ == framing::until_close) {
    deliver(data);
    return data.size();
  }
  if (framing_ == framing::length) {
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size()));
    deliver(data.substr(0, n));
    remaining_ -= n;
    if (remaining_ == 0) state_ = state::done;
    return n;
  }
  // Chunked: size line, data, CRLF, ..., a zero size line, trailers, blank.
  std::size_t used = 0;
  while (used < data.size() && state_ == state::body) {
    if (chunk_ == chunk_step::data) {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size() - used));
      deliver(data.substr(used, n));
      used += n;
      remaining_ -= n;
      if (remaining_ == 0) chunk_ = chunk_step::data_crlf;
      continue;
    }
    // The other steps read a whole line.
    std::size_t nl = data.find('\n', used);
    std::size_t take = (nl == std::string_view::npos ? data.size() : nl + 1) - used;
    buf_.append(data.substr(used, take));
    used += take;
    if (buf_.size() > max_line) {
      fail("chunk line too long");
      return used;
    }
    if (nl == std::string_view::npos) break;
    std::string_view line(buf_);
    line.remove_suffix(1);  // the LF
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    switch (chunk_) {
      case chunk_step::size_line: {
        std::string_view digits = trim(line.substr(0, line.find(';')));  // chunk extensions are ignored
        auto size = parse_hex(digits);
        if (!size) {
          fail("bad chunk size");
          return used;
        }
        remaining_ = *size;
        chunk_ = *size == 0 ? chunk_step::trailers : chunk_step::data;
        break;
      }
      case chunk_step::data_crlf:
        if (!line.empty()) {
          fail("missing CRLF after chunk data");
          return used;
        }
        chunk_ = chunk_step::size_line;
        break;
      case chunk_step::trailers:
        if (line.empty()) state_ = state::done;  // trailer fields are not kept
        break;
      case chunk_step::data:
        break;
    }
    buf_.clear();
  }
  return used;
}

response_parser::state response_parser::feed(std::string_view data, const body_sink& sink) {
  while (!data.empty()) {
    if (state_ == state::head) {
      std::size_t old = buf_.size();
      buf_.append(data);
      std::size_t end = find_head_end(buf_, old >= 2 ? old - 2 : 0);
      if (end == std::string::npos) {
        if (buf_.size() > max_head_) return fail("response head too long");
        return state_;
      }
      if (end > max_head_) return fail("response head too long");
      std::string text = buf_.substr(0, end);
      data.remove_prefix(end - old);
      buf_.clear();
      if (!parse_head(text)) return state_;
      if (head_.status >= 100 && head_.status < 200 && head_.status != 101) continue;  // interim: the real one follows
      start_body();
    } else if (state_ == state::body) {
      data.remove_prefix(feed_body(data, sink));
    } else {
      break;  // done or failed: the rest is not ours
    }
  }
  return state_;
}

response_parser::state response_parser::finish() {
  if (state_ == state::head)
    return fail(buf_.empty() ? "connection closed before a response" : "connection closed in the response head");
  if (state_ == state::body) {
    if (framing_ == framing::until_close) state_ = state::done;
    else return fail("connection closed before the end of the body");
  }
  return state_;
}

}  // namespace moss_fetch

// http_response.hpp: an incremental HTTP/1.x response parser for moss-fetch.
//
// Pure: no I/O, no moss, no allocation beyond the head it keeps. Feed it the
// bytes as they arrive; it reports the status line and headers once they are
// complete and passes body bytes (de-chunked) to a sink. The body ends by
// Content-Length, by the last chunk of a chunked body, or by the end of the
// connection (finish()). Interim 1xx responses are skipped. A malformed
// response puts the parser in the failed state with a one-line reason.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moss_fetch {

struct response_head {
  int minor_version = 0;  // HTTP/1.<minor>
  int status = 0;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> headers;  // in order, as sent

  // header() is the first header called name (case-insensitive), if any.
  std::optional<std::string_view> header(std::string_view name) const;
};

class response_parser {
 public:
  using body_sink = std::function<void(std::string_view)>;

  enum class state { head, body, done, failed };

  // response_parser() parses the response to a request; a response to HEAD
  // has no body whatever its headers say. max_head bounds the status line
  // and headers together.
  explicit response_parser(bool head_request = false, std::size_t max_head = 64 * 1024)
      : head_request_(head_request), max_head_(max_head) {}

  // feed() consumes data: head bytes are kept until the head is complete,
  // body bytes go to sink. Bytes after the end of the response are ignored.
  // Returns the state reached.
  state feed(std::string_view data, const body_sink& sink);
  // finish() reports the end of the connection: it completes a body that
  // runs until the close, and fails a response cut short.
  state finish();

  state current() const noexcept { return state_; }
  bool done() const noexcept { return state_ == state::done; }
  bool failed() const noexcept { return state_ == state::failed; }
  bool has_head() const noexcept { return state_ == state::body || state_ == state::done; }
  const response_head& head() const noexcept { return head_; }
  // error() is why the parser failed (empty otherwise).
  const std::string& error() const noexcept { return error_; }
  // body_bytes() is how many body bytes went to the sink.
  std::uint64_t body_bytes() const noexcept { return body_bytes_; }

 private:
  enum class framing { length, chunked, until_close, none };
  enum class chunk_step { size_line, data, data_crlf, trailers };

  state fail(std::string why);
  bool parse_head(std::string_view text);
  void start_body();
  std::size_t feed_body(std::string_view data, const body_sink& sink);

  bool head_request_;
  std::size_t max_head_;
  state state_ = state::head;
  response_head head_;
  std::string error_;
  std::string buf_;  // head bytes, or an incomplete chunk-size/trailer line
  framing framing_ = framing::none;
  std::uint64_t remaining_ = 0;  // of the body (length) or the chunk (chunked)
  chunk_step chunk_ = chunk_step::size_line;
  std::uint64_t body_bytes_ = 0;
};

}  // namespace moss_fetch

// hosts_index.cpp: reading and indexing a hosts file (hosts_index.hpp),
// with raw system calls: the file is read from inside a patched program's
// lookups, where libc's open and read may be interposed.
#include "dns/hosts_index.hpp"

#include "core/sys.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

#include <fcntl.h>
#include <sys/syscall.h>

namespace moss::detail::dns {
namespace {

// ascii_lower(): strcasecmp folds at least these.
char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

// ends_with_folded(): whether the n bytes at s end with `tail` (lower case)
// but for ASCII case.
bool ends_with_folded(const char* s, std::size_t n, std::string_view tail) noexcept {
  if (n < tail.size()) return false;
  const char* p = s + n - tail.size();
  for (std::size_t i = tail.size(); i-- > 0;)
    if (ascii_lower(p[i]) != tail[i]) return false;
  return true;
}

}  // namespace

bool hosts_index::may_list(const char* name, time_point now) {
  if (now >= next_check_) {
    next_check_ = now + std::chrono::seconds(1);
    refresh();
  }
  if (!complete_) return true;
  std::size_t n = std::strlen(name);
  // c-ares answers "localhost" and names under it itself when the file
  // does not (RFC 6761).
  std::size_t m = n > 0 && name[n - 1] == '.' ? n - 1 : n;
  if (ends_with_folded(name, m, "localhost") && (m == 9 || name[m - 10] == '.')) return true;
  // Names longer than any DNS name go the long way.
  if (n >= lengths_.size()) return true;
  if (!lengths_[n]) return false;  // most names: no token is as long
  char key[256];
  for (std::size_t i = 0; i < n; ++i) {
    // Bytes a locale's strcasecmp might fold in other ways go the long way.
    if (static_cast<unsigned char>(name[i]) >= 0x80) return true;
    key[i] = ascii_lower(name[i]);
  }
  return names_.contains(std::string_view(key, n));
}

void hosts_index::refresh() {
  int saved = errno;  // the caller's
  struct stat st {};
  if (sys::call(SYS_newfstatat, AT_FDCWD, sys::ptr_arg(path_), sys::ptr_arg(&st), 0) != 0) {
    // c-ares finds nothing in a file that is not there.
    bool absent = errno == ENOENT || errno == ENOTDIR;
    names_.clear();
    lengths_.fill(false);
    complete_ = absent;
    trusted_ = false;
  } else if (!trusted_ || !complete_ || !(identity_of(st) == seen_)) {
    load();
  }
  errno = saved;
}

void hosts_index::load() {
  complete_ = trusted_ = false;
  names_.clear();
  lengths_.fill(false);
  int fd = static_cast<int>(sys::call(SYS_openat, AT_FDCWD, sys::ptr_arg(path_), O_RDONLY | O_CLOEXEC));
  if (fd < 0) {
    // Nothing c-ares could read either.
    complete_ = errno == ENOENT || errno == ENOTDIR || errno == EACCES;
    return;
  }
  struct stat st {};
  std::string text;
  bool ok = sys::fstat(fd, &st) == 0 && static_cast<std::size_t>(st.st_size) <= max_bytes;
  if (ok) {
    text.resize(static_cast<std::size_t>(st.st_size) + 1);  // one more byte: a file that grew is read to its end
    std::size_t got = 0;
    for (;;) {
      if (got == text.size()) {
        if (text.size() >= max_bytes) {
          ok = false;
          break;
        }
        text.resize(std::min(max_bytes, text.size() * 2));
      }
      long r = sys::read(fd, text.data() + got, text.size() - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) ok = false;
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
    text.resize(got);
  }
  sys::close(fd);
  if (!ok) return;

  // Tokens end at C-locale white space (what c-ares splits on) and at NUL
  // bytes (where c-ares' strings end); a line ends at '\n' and its names at '#'.
  auto separator = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' || c == '\0';
  };
  bool comment = false;
  std::size_t start = std::string::npos;
  for (std::size_t i = 0; i <= text.size(); ++i) {
    char c = i < text.size() ? text[i] : '\n';
    bool ends = comment || c == '#' || separator(c);
    if (ends && start != std::string::npos) {
      std::string token = text.substr(start, i - start);
      for (char& t : token) t = ascii_lower(t);
      lengths_[std::min(token.size(), lengths_.size() - 1)] = true;
      names_.insert(std::move(token));
      start = std::string::npos;
    }
    if (c == '\n') comment = false;
    else if (c == '#') comment = true;
    else if (!ends && start == std::string::npos) start = i;
  }
  complete_ = true;
  seen_ = identity_of(st);
  // A change within the file system's clock tick after this read would
  // leave the same times: trust them only once they are old enough.
  auto age = std::chrono::system_clock::now().time_since_epoch() -
             (std::chrono::seconds(std::max(st.st_mtim.tv_sec, st.st_ctim.tv_sec)));
  trusted_ = age > std::chrono::seconds(2);
}

}  // namespace moss::detail::dns

// hosts_index.hpp (internal): which names a hosts file may answer, so that
// the c-ares resolver (lib/dns/ares_channel.cpp) makes c-ares read
// /etc/hosts only for those: c-ares 1.18 opens and parses the file on every
// lookup. Needs nothing but the file and a clock (tests/hosts_index_test.cpp
// runs it without c-ares or a hub).
#pragma once

#include <moss/detail/timer.hpp>

#include <array>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_set>

#include <sys/stat.h>
#include <sys/types.h>

namespace moss::detail::dns {

// hosts_index: the names a hosts file may give addresses for. Every
// whitespace-separated token of every line, up to a '#', folded to lower
// case: a superset of the names c-ares compares (with strcasecmp) against
// the name looked up, so a name the index lacks is one the file cannot
// answer. Names it has still go to c-ares, which reads the file itself.
//
// The file is checked (one stat) at most once per second per hub, and read
// again when its device, inode, size, or modification or change time
// differ; a file changed in the last two seconds is read again at the next
// check even if it looks the same, since a second change within one tick
// of the file system's clock leaves those times as they were. So a name
// added to the file is seen within about a second, and a name removed or
// readdressed at once. While the file cannot be indexed (too large, or an
// error other than its absence), every name may be listed.
class hosts_index {
 public:
  explicit hosts_index(const char* path) : path_(path) {}
  // may_list() is false only if the file certainly has no entry for name.
  bool may_list(const char* name) { return may_list(name, clock::now()); }
  // may_list(name, now) is the same with the time given (tests step it).
  bool may_list(const char* name, time_point now);

 private:
  struct identity {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    long mtime_s = 0, mtime_ns = 0, ctime_s = 0, ctime_ns = 0;
    bool operator==(const identity&) const = default;
  };
  static identity identity_of(const struct stat& st) noexcept {
    return {st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_ctim.tv_sec,
            st.st_ctim.tv_nsec};
  }
  void refresh();
  void load();

  static constexpr std::size_t max_bytes = std::size_t{64} << 20;
  const char* path_;
  time_point next_check_{};
  identity seen_{};
  bool trusted_ = false;   // seen_ describes the content names_ was built from
  bool complete_ = false;  // names_ lists every token of the file
  std::array<bool, 256> lengths_{};  // lengths_[n]: some token is n bytes long
  struct text_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view v) const noexcept { return std::hash<std::string_view>{}(v); }
  };
  std::unordered_set<std::string, text_hash, std::equal_to<>> names_;
};

}  // namespace moss::detail::dns

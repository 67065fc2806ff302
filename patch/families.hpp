// families.hpp: the hook families MOSS_HOOK names, and its parser. Inline
// and free of the hooks' state, so mossrun checks a value with the very
// table the library reads.
#pragma once

#include <cstddef>
#include <cstring>

namespace moss::patch {

enum family : unsigned {
  family_socket = 1u << 0,
  family_sleep = 1u << 1,
  family_dns = 1u << 2,
  family_poll = 1u << 3,
  family_thread = 1u << 4,  // green pthreads (libmoss_preload only)
  family_all = family_socket | family_sleep | family_dns | family_poll | family_thread,
};

// families_accepted says what MOSS_HOOK accepts, for error messages.
inline constexpr const char* families_accepted = "all, none, or a comma list of socket, sleep, dns, poll, thread";

// parse_families() parses a MOSS_HOOK value; on error returns false and
// fills `bad` with the offending name.
inline bool parse_families(const char* text, unsigned* out, const char** bad, unsigned* bad_len) noexcept {
  static constexpr struct {
    const char* name;
    unsigned bits;
  } names[] = {{"all", family_all}, {"socket", family_socket}, {"sleep", family_sleep}, {"dns", family_dns},
               {"poll", family_poll}, {"thread", family_thread}, {"none", 0}};
  unsigned bits = 0;
  const char* p = text;
  for (;;) {
    const char* end = std::strchr(p, ',');
    std::size_t len = end != nullptr ? static_cast<std::size_t>(end - p) : std::strlen(p);
    bool found = false;
    for (const auto& n : names) {
      if (std::strlen(n.name) == len && std::strncmp(n.name, p, len) == 0) {
        bits |= n.bits;
        found = true;
      }
    }
    if (!found) {
      *bad = p;
      *bad_len = static_cast<unsigned>(len);
      return false;
    }
    if (end == nullptr) break;
    p = end + 1;
  }
  *out = bits;
  return true;
}

}  // namespace moss::patch

// parse_count.hpp (internal): the whole-number reader behind the MOSS_*
// settings, so each one accepts exactly the same spelling.
#pragma once

namespace moss::detail {

// parse_count() reads a whole decimal number in [lo, hi] (digits only: no
// sign, space or suffix); false if text is not one.
inline bool parse_count(const char* text, long lo, long hi, long* out) noexcept {
  if (*text == '\0') return false;
  long v = 0;
  for (const char* p = text; *p != '\0'; ++p) {
    if (*p < '0' || *p > '9') return false;
    v = v * 10 + (*p - '0');
    if (v > hi) return false;
  }
  if (v < lo) return false;
  *out = v;
  return true;
}

}  // namespace moss::detail

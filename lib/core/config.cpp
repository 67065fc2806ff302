// config.cpp: checking the MOSS_* variables (see config.hpp).
#include "core/config.hpp"

#include "debug/dump.hpp"
#include "core/monitor.hpp"
#include "dns/resolver.hpp"
#include "core/stack.hpp"
#include "core/sys.hpp"
#include "thread/threadpool.hpp"


#include <cstdlib>
#include <cstring>
#include <mutex>

namespace moss::detail {

const char* env_value(const char* name) noexcept {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

void bad_environment(const moss::error& e) noexcept {
  const char* what = e.what();
  sys::write_stderr(what, std::strlen(what));
  sys::write_stderr("\n", 1);
  std::exit(2);
}

void check_environment() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    try {
      if (const char* v = env_value("MOSS_STACK_SIZE")) parse_stack_size(v);
      if (const char* v = env_value("MOSS_MONITOR_MS")) parse_monitor_ms(v);
      if (const char* v = env_value("MOSS_DUMP_SIGNAL")) parse_dump_signal(v);
      if (const char* v = env_value("MOSS_THREADPOOL_SIZE")) parse_pool_size(v);
      dns::settings_from_environment();  // MOSS_RESOLVER, MOSS_DNS_SERVERS, _TIMEOUT_MS, _TRIES
    } catch (const moss::error& e) {
      bad_environment(e);
    }
  });
}

}  // namespace moss::detail

// config.hpp (internal): the MOSS_* variables the library reads, and what a
// malformed one does.
//
// Every variable is checked when the process's first hub is made
// (check_environment), so a bad value stops the program at its first use of
// moss instead of surfacing later at some lookup; a reader that runs without
// a hub (a lookup or the thread pool used from a plain thread, a greenlet
// before any hub) checks its own variable when it first reads it. Either
// way a malformed value prints one line — the variable, the value and what
// is accepted — and exits with status 2, as MOSS_HOOK does (patch/hooks.cpp).
// The parsers themselves (parse_stack_size, parse_monitor_ms,
// parse_pool_size, dns::settings_from_environment) throw moss::error, for
// mossrun's checks and the programmatic APIs (moss::dns::configure,
// threadpool::set_size), which never exit.
#pragma once

#include <moss/error.hpp>

namespace moss::detail {

// env_value() is the variable's value; null when unset or empty.
const char* env_value(const char* name) noexcept;

// bad_environment() reports a malformed MOSS_* value (e.what(), one line)
// on stderr and exits with status 2.
[[noreturn]] void bad_environment(const moss::error& e) noexcept;

// check_environment() checks every MOSS_* variable of the library, once.
void check_environment() noexcept;

}  // namespace moss::detail

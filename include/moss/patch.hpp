/// @file
/// patch.hpp: whether the interposition layer is live in this process
/// (gevent's monkey.is_module_patched).
///
///   if (!moss::patch::active())
///     std::fprintf(stderr, "plain blocking calls will block the thread: link libmoss_patch or run under mossrun\n");
///   if (moss::patch::active("dns")) { /* getaddrinfo parks a greenlet instead of the thread */ }
///
/// The hooks are live when libmoss_patch is linked into the program, or
/// libmoss_preload is preloaded (mossrun), and MOSS_HOOK leaves the family on.
/// Nothing here needs either library: the answer is looked up at run time
/// (dlsym), so a program linked with libmoss alone gets false.
#pragma once

#include <moss/error.hpp>

#include <string>

#include <dlfcn.h>

namespace moss::detail {
using patch_active_fn = int (*)(const char*) noexcept;
/// find_patch_active() is libmoss_patch's moss_patch_active, or null.
inline patch_active_fn find_patch_active() noexcept {
  static const patch_active_fn f = reinterpret_cast<patch_active_fn>(dlsym(RTLD_DEFAULT, "moss_patch_active"));
  return f;
}
}  // namespace moss::detail

namespace moss::patch {

/// active() is true when the hooks are loaded and at least one family is on.
inline bool active() noexcept {
  moss::detail::patch_active_fn f = moss::detail::find_patch_active();
  return f != nullptr && f(nullptr) == 1;
}

/// active(family) is true when that family is hooked: "socket" (sockets,
/// pipes, reads and writes), "sleep", "dns", "poll" (poll, select, epoll) or
/// "thread" (green pthreads, under libmoss_preload only). Throws moss::error
/// for another name.
inline bool active(const std::string& family) {
  moss::detail::patch_active_fn f = moss::detail::find_patch_active();
  int r = f != nullptr ? f(family.c_str()) : 0;
  if (r < 0 || (f == nullptr && family != "socket" && family != "sleep" && family != "dns" && family != "poll" &&
                family != "thread"))
    throw moss::error("moss::patch::active: unknown hook family \"" + family +
                      "\"; accepted: socket, sleep, dns, poll, thread");
  return r == 1;
}

}  // namespace moss::patch

// run_info.hpp: what every greenlet of this thread's hub is doing, as text
// (gevent's format_run_info), for debugging a program that hangs or crawls.
//
//   std::fputs(moss::format_run_info().c_str(), stderr);
//
// One line per greenlet: id, name, role, state (running, ready, waiting on
// what, not started, suspended) and, for a task, where it was spawned (the
// spawned function's type, which names the enclosing function of a lambda).
#pragma once

#include <string>

namespace moss {

// format_run_info() describes the thread's main greenlet, its hub, every
// unfinished task and the calling greenlet. Raw greenlets (moss::greenlet)
// are not registered anywhere, so only the calling one is listed.
std::string format_run_info();

}  // namespace moss

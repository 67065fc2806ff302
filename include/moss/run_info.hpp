/// @file
/// run_info.hpp: what every greenlet of this thread's hub is doing, as text
/// (gevent's format_run_info), for debugging a program that hangs or crawls.
///
///   std::fputs(moss::format_run_info().c_str(), stderr);
///
/// One line per greenlet: id, name, role, state (running, ready, waiting on
/// what, not started, suspended) and, for a task, where it was spawned (the
/// spawned function's type, which names the enclosing function of a lambda).
#pragma once

#include <moss/detail/export.hpp>

#include <string>

namespace moss {

/// format_run_info() describes the thread's main greenlet, its hub, every
/// unfinished task and the calling greenlet. Raw greenlets (moss::greenlet)
/// are not registered anywhere, so only the calling one is listed.
MOSS_API std::string format_run_info();

/// dump_greenlets() writes to fd every greenlet of every hub of the process:
/// for each hub its thread, then one line per greenlet as format_run_info
/// gives it, each followed by its native (C/C++) backtrace: the calling
/// greenlet's where it stands, a suspended one's from where it switched away
/// (walked through frame pointers; frames of code built without them are
/// skipped, and function names of the program itself need -rdynamic). The
/// calling thread's hub is described at once; every other hub describes itself
/// at its next turn, in a task, while the caller waits for it (up to 2 s each:
/// a hub blocked by a greenlet that never switches is reported as not
/// answering). It must not be called from a signal handler: set
/// MOSS_DUMP_SIGNAL=SIGUSR1 (or another signal) to have moss dump on stderr
/// when that signal arrives.
MOSS_API void dump_greenlets(int fd);

}  // namespace moss

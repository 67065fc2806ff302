// dump.hpp (internal): MOSS_DUMP_SIGNAL, moss::dump_greenlets on a signal.
//
// The handler only writes a byte to a pipe (a self-pipe): it may run on any
// thread, a hub blocked by a spinning greenlet included, and must neither
// lock nor allocate. A dump thread of moss's own (every signal blocked)
// reads the pipe and calls dump_greenlets(STDERR_FILENO), which asks each hub
// for its report and waits for it; a hub that does not answer is named as
// blocked rather than waited for forever. A forked child gets a pipe and a
// dump thread of its own.
#pragma once

namespace moss::detail {

// parse_dump_signal() reads a MOSS_DUMP_SIGNAL value: a signal name with or
// without "SIG" (SIGUSR1, usr2) or its number; not SIGKILL, SIGSTOP, a fault
// signal or the monitor's backtrace signal. A malformed value is a
// moss::error saying what is accepted.
int parse_dump_signal(const char* text);

// dump_signal_start() reads MOSS_DUMP_SIGNAL once (a malformed value ends the
// program, config.hpp) and, when it is set, installs the handler and starts
// the dump thread. Called when the first hub is made.
void dump_signal_start() noexcept;

// dump_after_fork() gives a forked child its own pipe and dump thread when
// MOSS_DUMP_SIGNAL is on (called by monitor_after_fork, in the child).
void dump_after_fork() noexcept;

}  // namespace moss::detail

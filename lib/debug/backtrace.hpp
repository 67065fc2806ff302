// backtrace.hpp (internal): native (C/C++) backtraces of greenlets, for the
// monitor (MOSS_MONITOR_MS) and the dump (moss::dump_greenlets,
// MOSS_DUMP_SIGNAL).
//
// Two ways, for two kinds of greenlet:
// - a suspended greenlet's stack is walked through its frame-pointer chain,
//   starting from the frame moss_swap (or jump_fcontext, same layout) pushed
//   when it switched away. libmoss is built with frame pointers, so the walk
//   reaches out of the switch and the wait into the caller's code; a frame
//   pointer outside the greenlet's stack, not above the previous one, or
//   misaligned ends the walk, so a garbage chain is never followed;
// - a running greenlet of another OS thread (the hub the monitor finds
//   blocked) is interrupted with moss's backtrace signal, and the handler
//   unwinds there with glibc's backtrace() (DWARF unwinding, no frame
//   pointers needed) and writes the frames to stderr; one blocked inside a
//   system call is left alone and its stack scanned instead.
#pragma once

#include <string>

#include <csignal>

namespace moss::detail {

class greenlet_impl;

// saved_frames() stores in pcs up to max return addresses of g, which must
// be suspended (started, not running, not dead) and belong to the calling
// thread; the first is where it resumes. Returns how many. 0 on a platform
// whose saved context it cannot read.
int saved_frames(const greenlet_impl* g, void** pcs, int max) noexcept;

// append_frames() appends one line per address: its number, the address, the
// demangled function and offset (dladdr, then the object's .symtab for what
// it does not export: elf_symbols.hpp), and the object. Not signal-safe.
void append_frames(std::string& out, void* const* pcs, int n, const char* indent);

// The signal the monitor sends to a blocked hub thread: SIGRTMAX - 2, a
// real-time signal that no standard name aliases, below SIGRTMAX, which
// Valgrind takes.
inline int backtrace_signal() noexcept { return SIGRTMAX - 2; }

// backtrace_signal_install() loads libgcc's unwinder (so the handler never
// runs the dynamic loader) and installs the backtrace signal's handler,
// which passes signals it did not ask for on to the previous disposition.
// Called once, when the monitor starts. False if sigaction failed.
bool backtrace_signal_install() noexcept;

// thread_backtrace() writes on stderr the native backtrace of thread tid of
// this process. A thread that computes is signalled and unwinds itself (this
// waits up to a second for it); a thread asleep in a system call is not
// interrupted (the call would fail with EINTR): its stack is scanned from
// the stack pointer the kernel reports, for words that are return
// addresses. Only the monitor thread calls it.
void thread_backtrace(int tid) noexcept;

}  // namespace moss::detail

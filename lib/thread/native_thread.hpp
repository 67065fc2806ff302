// native_thread.hpp: the OS threads moss starts for itself (the thread pool,
// the monitor).
//
// They are made with libc's own pthread_create, looked up past any
// interposer: a layer that turns a program's pthreads into greenlets must
// never take moss's own threads, which have to block for real.
#pragma once

namespace moss::detail {

// start_native_thread() runs fn(arg) on a new detached OS thread. Returns 0
// or the errno value pthread_create gave.
int start_native_thread(void (*fn)(void*), void* arg) noexcept;

}  // namespace moss::detail

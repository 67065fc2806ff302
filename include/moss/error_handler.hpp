/// @file
/// error_handler.hpp: what happens to a task's failure that nobody looked at
/// (gevent's Hub.handle_error, asyncio's loop.set_exception_handler).
///
///   moss::set_error_handler([](const moss::task_failure& f) {
///     log_error(f.task_name, f.error);
///   });
///
/// A task fails when an exception other than moss::greenlet_exit escapes its
/// function. The failure is retrieved when someone is handed it: task.get(),
/// task.exception(), gather, gather_settled, joinall(..., raise_error), a
/// task_group's join(). A failure never retrieved is reported once, when the
/// last handle to the task goes (at once for a task whose handle was
/// dropped), to this thread's error handler; by default it prints
///   `moss: task "<name>" failed: <what>`
/// on stderr. A kill is never reported.
#pragma once

#include <moss/detail/export.hpp>

#include <cstdint>
#include <exception>
#include <functional>
#include <string_view>

namespace moss {

///@{
/// task_failure: a failure nobody retrieved.
struct task_failure {
  /// The name of the task that failed.
  std::string_view task_name;
  /// Its id.
  std::uint64_t task_id = 0;
  /// What it raised.
  std::exception_ptr error;
};
///@}

/// error_handler: what set_error_handler() installs.
using error_handler = std::function<void(const task_failure&)>;

/// set_error_handler() installs h for failures of tasks on this thread and
/// returns the previous handler (empty for the default). An empty h restores
/// the default. h runs wherever the task's last handle is dropped, even in
/// the middle of a switch: it must not block (it may spawn a task that does).
/// An exception escaping h is printed and dropped.
MOSS_API error_handler set_error_handler(error_handler h);

/// print_task_failure() is the default handler: one line on stderr.
MOSS_API void print_task_failure(const task_failure& f) noexcept;

}  // namespace moss

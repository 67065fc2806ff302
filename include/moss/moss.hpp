/// @file
/// moss.hpp: everything, for programs that do not mind the compile time.
#pragma once

#include <moss/version.hpp>  // first: it checks for C++20

#include <moss/async_result.hpp>
#include <moss/channel.hpp>
#include <moss/condition_variable.hpp>
#include <moss/dns.hpp>
#include <moss/error.hpp>
#include <moss/error_handler.hpp>
#include <moss/event.hpp>
#include <moss/greenlet.hpp>
#include <moss/group.hpp>
#include <moss/hub.hpp>
#include <moss/io.hpp>
#include <moss/mutex.hpp>
#include <moss/patch.hpp>
#include <moss/pool.hpp>
#include <moss/queue.hpp>
#include <moss/recursive_mutex.hpp>
#include <moss/run_info.hpp>
#include <moss/semaphore.hpp>
#include <moss/shield.hpp>
#include <moss/signal.hpp>
#include <moss/stream.hpp>
#include <moss/subprocess.hpp>
#include <moss/task.hpp>
#include <moss/task_group.hpp>
#include <moss/task_local.hpp>
#include <moss/threadpool.hpp>
#include <moss/threadsafe.hpp>
#include <moss/time.hpp>
#include <moss/timeout.hpp>
#include <moss/wait.hpp>

// moss.hpp: everything, for programs that do not mind the compile time.
#pragma once

#include <moss/async_result.hpp>
#include <moss/error.hpp>
#include <moss/event.hpp>
#include <moss/greenlet.hpp>
#include <moss/hub.hpp>
#include <moss/mutex.hpp>
#include <moss/recursive_mutex.hpp>
#include <moss/semaphore.hpp>
#include <moss/task.hpp>
#include <moss/time.hpp>

// threadpool.hpp (internal): what the rest of the library needs of the
// thread pool besides <moss/threadpool.hpp>.
#pragma once

#include <cstddef>

namespace moss::detail {

// parse_pool_size() reads a MOSS_THREADPOOL_SIZE value; throws moss::error
// saying what is accepted.
std::size_t parse_pool_size(const char* text);

}  // namespace moss::detail

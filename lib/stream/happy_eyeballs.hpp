// happy_eyeballs.hpp: the race of connect_tcp() over a list of addresses
// (RFC 8305 §5), for lib/stream/stream.cpp, which words the results.
#pragma once

#include <moss/dns.hpp>

#include <chrono>
#include <cstddef>
#include <vector>

namespace moss::detail {

// race_result: how a race ended. fd >= 0 is the winner's socket, connected
// and blocking, to addresses[winner]; fd -1 means every attempt failed,
// the last one (in time) with err. tried lists the addresses attempted,
// in the order started.
struct race_result {
  int fd = -1;
  std::size_t winner = 0;
  int err = 0;
  std::vector<std::size_t> tried;
};

// race_connect() connects to the first of addresses that accepts: it
// starts an attempt on addresses[0], then one on the next address whenever
// delay passes without a connection or an attempt fails, each running on
// while the next ones start. The first connection wins and every other
// socket is closed. It waits in the calling greenlet (one moss::io::poll
// over the attempts), so whatever interrupts the wait (a kill, a timeout)
// closes every attempt before it goes on. Throws std::system_error only if
// the wait itself fails (ENOMEM).
race_result race_connect(const std::vector<dns::address>& addresses, std::chrono::milliseconds delay);

}  // namespace moss::detail

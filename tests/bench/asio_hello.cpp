// asio_hello: the Asio peer for httpd_bench. The same keep-alive "hello"
// as epoll_hello (count request heads by their blank line, answer each with
// the same bytes), written the way Asio's C++20 examples write a server: one
// io_context on one thread, one coroutine per connection (co_spawn,
// use_awaitable) reading into a 1 KiB buffer in its frame.
//
//   asio_hello [PORT]   (0 or absent: a free port; prints "port N")
// <utility> first: Boost 1.74's awaitable.hpp uses std::exchange without it.
#include <utility>

#include <boost/asio.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr std::string_view response =
    "HTTP/1.1 200 OK\r\nServer: hello_bench\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 6\r\n\r\nhello\n";

asio::awaitable<void> serve(tcp::socket s) {
  std::string partial, out;
  char buf[1024];
  try {
    for (;;) {
      std::size_t n = co_await s.async_read_some(asio::buffer(buf), asio::use_awaitable);
      std::string_view data(buf, n);
      if (!partial.empty()) data = partial.append(data);
      out.clear();
      std::size_t pos = 0, end;
      while ((end = data.find("\r\n\r\n", pos)) != std::string_view::npos) {
        out.append(response);
        pos = end + 4;
      }
      std::string rest(data.substr(pos));
      partial = std::move(rest);
      if (!out.empty()) co_await asio::async_write(s, asio::buffer(out), asio::use_awaitable);
    }
  } catch (const std::exception&) {
    // end of file or a reset: the connection is over
  }
}

asio::awaitable<void> listen(tcp::acceptor& a) {
  for (;;) {
    tcp::socket s = co_await a.async_accept(asio::use_awaitable);
    s.set_option(tcp::no_delay(true));
    asio::co_spawn(a.get_executor(), serve(std::move(s)), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 0;
  try {
    asio::io_context io(1);
    tcp::acceptor a(io);
    tcp::endpoint ep(asio::ip::address_v4::loopback(), static_cast<unsigned short>(port));
    a.open(ep.protocol());
    a.set_option(tcp::acceptor::reuse_address(true));
    a.bind(ep);
    a.listen(4096);
    std::printf("port %d\n", a.local_endpoint().port());
    std::fflush(stdout);
    asio::signal_set stop(io, SIGINT, SIGTERM);
    stop.async_wait([&](auto, auto) { io.stop(); });
    asio::co_spawn(io, listen(a), asio::detached);
    io.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_hello: %s\n", e.what());
    return 1;
  }
  return 0;
}

// stream_test: moss::stream, listen_tcp, serve and connect_tcp on loopback
// (port 0), and stream reads over socketpairs where the test feeds the
// bytes piece by piece. connect_tcp's race over several addresses (happy
// eyeballs) meets addresses that hang: listeners whose accept queue is full,
// so that the kernel drops further SYNs.
#include <moss/error_handler.hpp>
#include <moss/event.hpp>
#include <moss/group.hpp>
#include <moss/io.hpp>
#include <moss/stream.hpp>
#include <moss/task.hpp>
#include <moss/time.hpp>
#include <moss/timeout.hpp>
#include <moss/wait.hpp>

#include "dns_server.hpp"
#include "leak_check.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;
using clk = std::chrono::steady_clock;

namespace {

// pair: two connected streams over a socketpair.
struct pair {
  moss::stream a, b;
  pair() {
    int sv[2];
    if (moss::io::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) throw std::runtime_error("socketpair");
    a = moss::stream(sv[0], "a");
    b = moss::stream(sv[1], "b");
  }
};

void echo_lines(moss::stream& s) {
  while (auto line = s.read_line(4096)) s.write_all(*line + "\n");
}

// free_port() is a loopback port nobody listens on (just released).
int free_port() {
  moss::listener l = moss::listen_tcp("127.0.0.1", 0);
  return l.port();
}

// addr() is a numeric host and a port as a moss::dns::address (no lookup).
moss::dns::address addr(const std::string& host, int port) {
  return moss::dns::resolve(host, std::to_string(port)).at(0);
}

// hanging: a listener on host whose accept queue is full. Backlog 1 holds
// two connections; once they are in, Linux drops every further SYN (it
// retransmits after 1 s, 3 s...), so a connect to it waits (loopback only).
struct hanging {
  std::string host;
  moss::listener l;
  std::vector<moss::stream> held;
  explicit hanging(std::string h) : host(std::move(h)), l(moss::listen_tcp(host, 0, 1)) {
    for (int i = 0; i < 8; ++i) {
      try {
        held.push_back(moss::connect_tcp(host, l.port(), 200ms));
      } catch (const moss::timeout_error&) {
        return;  // the queue is full
      }
    }
    throw std::runtime_error("the accept queue of " + l.address() + " never filled");
  }
  moss::dns::address address() const { return addr(host, l.port()); }
};

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_F(WithHub, ListenOnPortZeroReportsTheBoundPort) {
  moss::listener l = moss::listen_tcp("127.0.0.1", 0, 16);
  EXPECT_GT(l.port(), 0);
  EXPECT_EQ(l.address(), "127.0.0.1:" + std::to_string(l.port()));
}

TEST_F(WithHub, EchoRoundTripThroughServeAndConnect) {
  moss::listener l = moss::listen_tcp("127.0.0.1", 0);
  auto server = moss::spawn([&] { moss::serve(l, echo_lines); });
  moss::stream c = moss::connect_tcp("127.0.0.1", l.port(), 5s);
  EXPECT_EQ(c.name(), "127.0.0.1:" + std::to_string(l.port()));
  c.write_all("hello\nworld\n");
  EXPECT_EQ(c.read_line(), "hello");
  EXPECT_EQ(c.read_line(), "world");
  c.shutdown_write();
  EXPECT_EQ(c.read_line(), std::nullopt);  // the handler saw the end and closed
  EXPECT_TRUE(c.at_eof());
  server.kill();
}

TEST_F(WithHub, ConnectByNameTriesEachAddress) {
  // "localhost" gives ::1 and 127.0.0.1; the listener has only the second,
  // so whichever comes first, the connect must reach it.
  moss::listener l = moss::listen_tcp("127.0.0.1", 0);
  auto server = moss::spawn([&] { moss::serve(l, echo_lines); });
  moss::stream c = moss::connect_tcp("localhost", l.port());
  c.write_all("x\n");
  EXPECT_EQ(c.read_line(), "x");
  server.kill();
}

TEST_F(WithHub, PartialLinesAreAssembledAcrossReads) {
  pair p;
  auto writer = moss::spawn([&] {
    for (const char* piece : {"hel", "lo\nwor", "ld\r", "\n", "x"}) {
      p.a.write_all(piece);
      moss::sleep(5ms);
    }
    p.a.shutdown_write();
  });
  EXPECT_EQ(p.b.read_line(), "hello");
  EXPECT_EQ(p.b.read_line(), "world");  // "\r\n" split across two writes
  try {
    (void)p.b.read_line();
    ADD_FAILURE() << "a last line without \\n must not pass as a line";
  } catch (const moss::incomplete_read_error& e) {
    EXPECT_EQ(e.partial(), "x");
    EXPECT_EQ(e.expected(), moss::incomplete_read_error::npos);
  }
  EXPECT_EQ(p.b.read_line(), std::nullopt);
  writer.join();
}

TEST_F(WithHub, ReadUntilFindsADelimiterSplitAcrossReads) {
  pair p;
  auto writer = moss::spawn([&] {
    p.a.write_all("head");
    moss::sleep(5ms);
    p.a.write_all("er\r\n");
    moss::sleep(5ms);
    p.a.write_all("\r\nbody");
  });
  EXPECT_EQ(p.b.read_until("\r\n\r\n"), "header\r\n\r\n");
  EXPECT_EQ(p.b.read_exactly(4), "body");
  writer.join();
}

TEST_F(WithHub, ALineLongerThanTheLimitIsAnErrorThatConsumesNothing) {
  pair p;
  p.a.write_all(std::string(100, 'a'));
  try {
    (void)p.b.read_line(50);
    ADD_FAILURE() << "no limit_overrun_error";
  } catch (const moss::limit_overrun_error& e) {
    EXPECT_GE(e.buffered(), 50u);
    EXPECT_NE(std::string(e.what()).find("50"), std::string::npos) << e.what();
  }
  EXPECT_EQ(p.b.buffered(), 100u);
  p.a.write_all("tail\nnext\n");
  EXPECT_TRUE(p.b.skip_until("\n"));
  EXPECT_EQ(p.b.read_line(50), "next");
}

TEST_F(WithHub, TheLimitCountsTheDelimiter) {
  pair p;
  p.a.write_all("abcd\nabcd\n");
  EXPECT_EQ(p.b.read_until("\n", 5), "abcd\n");
  EXPECT_THROW((void)p.b.read_until("\n", 4), moss::limit_overrun_error);
  EXPECT_EQ(p.b.read_until("\n", 5), "abcd\n");
}

TEST_F(WithHub, SkipUntilFindsADelimiterSplitAcrossReadsAndReportsEof) {
  pair p;
  auto writer = moss::spawn([&] {
    p.a.write_all(std::string(40000, 'z') + "\r");
    moss::sleep(5ms);
    p.a.write_all("\nafter\r\nlost");
    p.a.shutdown_write();
  });
  EXPECT_TRUE(p.b.skip_until("\r\n"));
  EXPECT_EQ(p.b.read_line(), "after");
  EXPECT_FALSE(p.b.skip_until("\r\n"));
  EXPECT_TRUE(p.b.at_eof());
  writer.join();
}

TEST_F(WithHub, EndOfFileMidReadExactlyGivesThePartialBytes) {
  pair p;
  p.a.write_all("abc");
  p.a.shutdown_write();
  try {
    (void)p.b.read_exactly(10);
    ADD_FAILURE() << "no incomplete_read_error";
  } catch (const moss::incomplete_read_error& e) {
    EXPECT_EQ(e.partial(), "abc");
    EXPECT_EQ(e.expected(), 10u);
  }
  EXPECT_EQ(p.b.read_some(), "");
  EXPECT_EQ(p.b.read_exactly(0), "");
}

TEST_F(WithHub, ReadExactlyGathersALargeBlockFromManyWrites) {
  pair p;
  std::string big;
  for (int i = 0; i < 300000; ++i) big += static_cast<char>('a' + i % 26);
  auto writer = moss::spawn([&] {
    for (std::size_t at = 0; at < big.size(); at += 7001) p.a.write_all(big.substr(at, 7001));
  });
  EXPECT_EQ(p.b.read_exactly(big.size()), big);
  writer.join();
}

TEST_F(WithHub, ReadSomeReturnsBufferedBytesFirstAndEmptyAtEnd) {
  pair p;
  p.a.write_all("line\nrest");
  p.a.shutdown_write();
  EXPECT_EQ(p.b.read_line(), "line");
  char buf[100];
  EXPECT_EQ(p.b.read_some(buf, 2), 2u);
  EXPECT_EQ(std::string(buf, 2), "re");
  EXPECT_EQ(p.b.read_some(), "st");
  EXPECT_EQ(p.b.read_some(buf, sizeof buf), 0u);
}

TEST_F(WithHub, AMossTimeoutInterruptsAReadWithoutLosingItsBytes) {
  pair p;
  p.a.write_all("par");
  auto t0 = clk::now();
  try {
    moss::timeout t(50ms);
    (void)p.b.read_line();
    ADD_FAILURE() << "no timeout";
  } catch (const moss::timeout_error&) {
  }
  EXPECT_GE(clk::now() - t0, 50ms);
  p.a.write_all("tial\n");
  EXPECT_EQ(p.b.read_line(), "partial");
}

TEST_F(WithHub, AConnectionRefusedNamesHostAndPort) {
  int port = free_port();
  try {
    (void)moss::connect_tcp("127.0.0.1", port, 5s);
    ADD_FAILURE() << "connected to a closed port";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNREFUSED);
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(port)), std::string::npos) << e.what();
  }
}

TEST_F(WithHub, AConnectThatHangsTimesOutNamingHostAndPort) {
  // backlog 1: the accept queue fills with two connections and further SYNs
  // are dropped, so the next connect waits (loopback only).
  moss::listener l = moss::listen_tcp("127.0.0.1", 0, 1);
  std::vector<moss::stream> held;
  bool timed_out = false;
  for (int i = 0; i < 8 && !timed_out; ++i) {
    auto t0 = clk::now();
    try {
      held.push_back(moss::connect_tcp("127.0.0.1", l.port(), 200ms));
    } catch (const moss::timeout_error& e) {
      timed_out = true;
      EXPECT_GE(clk::now() - t0, 200ms);
      EXPECT_LT(clk::now() - t0, 900ms);
      EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(l.port())), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(timed_out);
}

TEST_F(WithHub, BadArgumentsAreErrorsNamingTheValue) {
  try {
    (void)moss::listen_tcp("127.0.0.1", 70000);
    ADD_FAILURE();
  } catch (const moss::error& e) {
    EXPECT_NE(std::string(e.what()).find("70000"), std::string::npos);
  }
  EXPECT_THROW((void)moss::listen_tcp("127.0.0.1", 0, 0), moss::error);
  EXPECT_THROW((void)moss::connect_tcp("127.0.0.1", 0), moss::error);
  pair p;
  EXPECT_THROW((void)p.b.read_until(""), moss::error);
  EXPECT_THROW((void)p.b.read_until("\r\n", 1), moss::error);
  moss::listener none;
  EXPECT_THROW(moss::serve(none, nullptr), moss::error);
}

TEST_F(WithHub, AListenerAddressInUseIsASystemErrorNamingIt) {
  moss::listener l = moss::listen_tcp("127.0.0.1", 0);
  try {
    (void)moss::listen_tcp("127.0.0.1", l.port());
    ADD_FAILURE();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE);
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(l.port())), std::string::npos) << e.what();
  }
}

TEST_F(WithHub, ManyClientsAreServedAtOnce) {
  moss::listener l = moss::listen_tcp("127.0.0.1", 0);
  auto server = moss::spawn([&] { moss::serve(l, echo_lines); });
  std::vector<moss::task<int>> clients;
  for (int i = 0; i < 200; ++i) {
    clients.push_back(moss::spawn([&, i] {
      moss::stream c = moss::connect_tcp("127.0.0.1", l.port(), 5s);
      int ok = 0;
      for (int k = 0; k < 5; ++k) {
        std::string msg = std::to_string(i) + "/" + std::to_string(k);
        c.write_all(msg + "\n");
        moss::yield();
        if (c.read_line() == msg) ++ok;
      }
      return ok;
    }));
  }
  for (int ok : moss::gather(clients)) EXPECT_EQ(ok, 5);
  server.kill();
}

TEST_F(WithHub, KillingTheServerClosesTheListenerAndEndsTheConnections) {
  moss::listener l = moss::listen_tcp("127.0.0.1", 0);
  int port = l.port();
  moss::event in_handler;
  bool handler_unwound = false;
  auto server = moss::spawn([&] {
    moss::serve(l, [&](moss::stream& s) {
      struct mark {
        bool* b;
        ~mark() { *b = true; }
      } m{&handler_unwound};
      in_handler.set();
      (void)s.read_line();  // never comes
    });
  });
  moss::stream c = moss::connect_tcp("127.0.0.1", port, 5s);
  ASSERT_TRUE(in_handler.wait(5s));
  server.kill();
  EXPECT_TRUE(handler_unwound);
  EXPECT_FALSE(l.is_open());
  moss::timeout bound(5s);       // a connection left open would hang here
  EXPECT_EQ(c.read_some(), "");  // the server's end was closed
  EXPECT_THROW((void)moss::connect_tcp("127.0.0.1", port, 5s), std::system_error);
}

TEST_F(WithHub, ClosingTheListenerEndsServeNormally) {
  moss::listener l = moss::listen_tcp("127.0.0.1", 0);
  auto server = moss::spawn([&] { moss::serve(l, echo_lines); });
  moss::sleep(10ms);
  l.close();
  EXPECT_TRUE(server.join(5s));
  EXPECT_TRUE(server.successful());
}

TEST_F(WithHub, WithAGroupConnectionsOutliveTheServer) {
  moss::listener l = moss::listen_tcp("127.0.0.1", 0);
  moss::group conns;
  auto server = moss::spawn([&] { moss::serve(l, echo_lines, conns); });
  moss::stream c = moss::connect_tcp("127.0.0.1", l.port(), 5s);
  c.write_all("one\n");
  EXPECT_EQ(c.read_line(), "one");
  server.kill();
  EXPECT_FALSE(l.is_open());
  EXPECT_EQ(conns.size(), 1u);
  c.write_all("two\n");  // the connection still works
  EXPECT_EQ(c.read_line(), "two");
  c.shutdown_write();
  EXPECT_TRUE(conns.join(5s));
}

TEST_F(WithHub, AHandlerExceptionGoesToTheErrorHandlerAndTheServerGoesOn) {
  std::vector<std::string> reported;
  moss::set_error_handler([&](const moss::task_failure& f) {
    try {
      std::rethrow_exception(f.error);
    } catch (const std::exception& e) {
      reported.push_back(std::string(f.task_name) + ": " + e.what());
    }
  });
  moss::listener l = moss::listen_tcp("127.0.0.1", 0);
  auto server = moss::spawn([&] {
    moss::serve(l, [](moss::stream& s) {
      auto line = s.read_line();
      if (line == "boom") throw std::runtime_error("handler failed");
      s.write_all("ok\n");
    });
  });
  moss::stream bad = moss::connect_tcp("127.0.0.1", l.port(), 5s);
  bad.write_all("boom\n");
  EXPECT_EQ(bad.read_line(), std::nullopt);  // the failed handler's stream was closed
  moss::stream good = moss::connect_tcp("127.0.0.1", l.port(), 5s);
  good.write_all("fine\n");
  EXPECT_EQ(good.read_line(), "ok");
  EXPECT_FALSE(server.ready());
  server.kill();
  moss::set_error_handler(nullptr);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_NE(reported[0].find("handler failed"), std::string::npos) << reported[0];
  EXPECT_NE(reported[0].find("connection 127.0.0.1:"), std::string::npos) << reported[0];
}

TEST_F(WithHub, WriteAllSendsMoreThanTheSocketBufferWhileThePeerReads) {
  pair p;
  std::string big(4 << 20, 'q');
  auto reader = moss::spawn([&] { return p.b.read_exactly(big.size()).size(); });
  p.a.write_all(big);
  EXPECT_EQ(reader.get(), big.size());
}

TEST_F(WithHub, AWriteToAClosedPeerIsASystemErrorNotSigpipe) {
  pair p;
  p.b.close();
  try {
    p.a.write_all("x");
    ADD_FAILURE();
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EPIPE);
    EXPECT_NE(std::string(e.what()).find("write to a"), std::string::npos) << e.what();
  }
}

TEST_F(WithHub, AStreamWorksOverAPipe) {
  int fds[2];
  ASSERT_EQ(moss::io::pipe2(fds, O_CLOEXEC), 0);
  moss::stream r(fds[0]), w(fds[1]);
  auto writer = moss::spawn([&] {
    w.write_all("a\nb\n");
    w.close();
  });
  EXPECT_EQ(r.read_line(), "a");
  EXPECT_EQ(r.read_line(), "b");
  EXPECT_EQ(r.read_line(), std::nullopt);
  writer.join();
}

// ---- happy eyeballs ----

TEST_F(WithHub, InterleaveFamiliesAlternatesFromTheFirstAddresssFamily) {
  // The port tells the addresses apart.
  auto ports = [](const std::vector<moss::dns::address>& v) {
    std::vector<std::pair<int, int>> out;
    for (const auto& a : v)
      out.emplace_back(a.family, a.family == AF_INET6
                                     ? ntohs(reinterpret_cast<const sockaddr_in6*>(a.get())->sin6_port)
                                     : ntohs(reinterpret_cast<const sockaddr_in*>(a.get())->sin_port));
    return out;
  };
  std::vector<moss::dns::address> six_first = {addr("::1", 1),      addr("2001:db8::1", 2), addr("2001:db8::2", 3),
                                               addr("127.0.0.1", 4), addr("192.0.2.1", 5)};
  EXPECT_EQ(ports(moss::interleave_families(six_first)),
            (std::vector<std::pair<int, int>>{{AF_INET6, 1}, {AF_INET, 4}, {AF_INET6, 2}, {AF_INET, 5}, {AF_INET6, 3}}));
  std::vector<moss::dns::address> four_first = {addr("127.0.0.1", 1), addr("::1", 2), addr("2001:db8::1", 3),
                                                addr("192.0.2.1", 4), addr("192.0.2.2", 5), addr("192.0.2.3", 6)};
  EXPECT_EQ(ports(moss::interleave_families(four_first)),
            (std::vector<std::pair<int, int>>{{AF_INET, 1}, {AF_INET6, 2}, {AF_INET, 4}, {AF_INET6, 3}, {AF_INET, 5},
                                              {AF_INET, 6}}));
  std::vector<moss::dns::address> one_family = {addr("192.0.2.3", 1), addr("192.0.2.1", 2)};
  EXPECT_EQ(ports(moss::interleave_families(one_family)), (std::vector<std::pair<int, int>>{{AF_INET, 1}, {AF_INET, 2}}));
  EXPECT_TRUE(moss::interleave_families({}).empty());
}

TEST_F(WithHub, AHangingAddressCostsTheAttemptDelayNotTheHang) {
  hanging h("127.0.0.2");
  moss::listener good = moss::listen_tcp("127.0.0.1", 0);
  int fds = moss_test::open_fds();
  auto t0 = clk::now();
  moss::connect_options o;  // the default attempt delay, 250 ms
  o.timeout = 5s;           // the hanging address alone would wait this out
  moss::stream c = moss::connect_tcp({h.address(), addr("127.0.0.1", good.port())}, o);
  auto took = clk::now() - t0;
  EXPECT_GE(took, 250ms) << "the second address started before the attempt delay";
  EXPECT_LT(took, 5s);
  EXPECT_EQ(c.name(), "127.0.0.1:" + std::to_string(good.port()));
  EXPECT_EQ(moss_test::open_fds(), fds + 1) << "the hanging attempt's socket was not closed";
  // The good listener's peer sees this one connection, and it works.
  moss::stream s = good.accept();
  c.write_all("x\n");
  EXPECT_EQ(s.read_line(), "x");
  EXPECT_EQ(moss::io::wait_readable(good.fd(), 100ms), -1) << "a second connection reached the listener";
}

TEST_F(WithHub, ConnectByNameRacesTheFamiliesOfItsAddresses) {
  // both.test is ::1 and 127.0.0.1 (tests/dns_server.hpp answers for it).
  // The family the resolver puts first hangs, the other answers on the
  // same port: the connect must reach the second family after the delay.
  struct restore {
    moss::dns::settings saved = moss::dns::current_settings();
    ~restore() { moss::dns::configure(saved); }
  } restore;
  std::optional<moss_test::dns_server> server;
  server.emplace();
  server->add_aaaa("both.test", "::1");
  server->add_a("both.test", "127.0.0.1");
  moss::dns::settings cfg;
  cfg.servers = server->address();
  moss::dns::configure(cfg);
  std::vector<moss::dns::address> found = moss::dns::resolve("both.test", "1");
  ASSERT_EQ(found.size(), 2u);
  std::string first = found[0].family == AF_INET6 ? "::1" : "127.0.0.1";
  std::string second = found[0].family == AF_INET6 ? "127.0.0.1" : "::1";
  std::unique_ptr<hanging> h;
  moss::listener good;
  for (int i = 0; i < 5 && !good.is_open(); ++i) {
    try {
      h = std::make_unique<hanging>(first);
    } catch (const std::system_error& e) {
      GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
    }
    try {
      good = moss::listen_tcp(second, h->l.port());
    } catch (const std::system_error& e) {
      if (second == "::1") GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
      h.reset();  // that port is taken on 127.0.0.1: another one
    }
  }
  ASSERT_TRUE(good.is_open());
  moss::connect_options o;
  o.attempt_delay = 100ms;
  o.timeout = 5s;
  auto t0 = clk::now();
  moss::stream c = moss::connect_tcp("both.test", good.port(), o);
  EXPECT_GE(clk::now() - t0, 100ms) << "the second family started before the attempt delay";
  EXPECT_EQ(c.name(), "both.test:" + std::to_string(good.port()));
  moss::stream s = good.accept();
  c.write_all("y\n");
  EXPECT_EQ(s.read_line(), "y");
  c.close();
  s.close();
  server.reset();
}

TEST_F(WithHub, ARefusedAddressHandsOverAtOnce) {
  moss::listener good = moss::listen_tcp("127.0.0.1", 0);
  moss::connect_options o;
  o.attempt_delay = 20s;  // the refusal, not the delay, must start the second attempt
  o.timeout = 30s;
  auto t0 = clk::now();
  moss::stream c = moss::connect_tcp({addr("127.0.0.1", free_port()), addr("127.0.0.1", good.port())}, o);
  EXPECT_LT(clk::now() - t0, 5s);
  EXPECT_EQ(c.name(), "127.0.0.1:" + std::to_string(good.port()));
}

TEST_F(WithHub, EveryAddressRefusedNamesEachOneAndTheLastError) {
  int p1 = free_port(), p2 = free_port();
  try {
    (void)moss::connect_tcp({addr("127.0.0.1", p1), addr("127.0.0.1", p2)});
    ADD_FAILURE() << "connected to closed ports";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ECONNREFUSED);
    EXPECT_TRUE(contains(e.what(), "127.0.0.1:" + std::to_string(p1) + ", 127.0.0.1:" + std::to_string(p2))) << e.what();
  }
}

TEST_F(WithHub, TheTimeoutClosesEveryAttempt) {
  hanging h1("127.0.0.2"), h2("127.0.0.3");
  int fds = moss_test::open_fds();
  moss::connect_options o;
  o.attempt_delay = 20ms;
  o.timeout = 300ms;
  auto t0 = clk::now();
  try {
    (void)moss::connect_tcp({h1.address(), h2.address()}, o);
    ADD_FAILURE() << "connected to a full accept queue";
  } catch (const moss::timeout_error& e) {
    EXPECT_GE(clk::now() - t0, 300ms);
    EXPECT_TRUE(contains(e.what(), "127.0.0.2:" + std::to_string(h1.l.port()) + " or 127.0.0.3:")) << e.what();
  }
  EXPECT_EQ(moss_test::open_fds(), fds);
}

TEST_F(WithHub, KillingTheCallerClosesEveryAttempt) {
  hanging h1("127.0.0.2"), h2("127.0.0.3");
  int fds = moss_test::open_fds();
  moss::connect_options o;
  o.attempt_delay = 20ms;
  auto caller = moss::spawn([&] { (void)moss::connect_tcp({h1.address(), h2.address()}, o); });
  moss::sleep(300ms);
  EXPECT_EQ(moss_test::open_fds(), fds + 2) << "both attempts should be in flight";
  caller.kill();
  EXPECT_TRUE(caller.killed());
  EXPECT_EQ(moss_test::open_fds(), fds);
}

TEST_F(WithHub, WhenTwoAttemptsConnectTheLoserIsClosed) {
  // Two attempts on one full queue both hang; the queue is then emptied and
  // the hub held still (a thread sleep, not a moss one) past their SYN
  // retransmits at about 1 s, so both handshakes complete before the race
  // looks. The peer then has two connections: one must carry the winner's
  // bytes, the other must be closed.
  hanging h("127.0.0.2");
  int fds = moss_test::open_fds();
  moss::connect_options o;
  o.attempt_delay = 20ms;
  o.timeout = 10s;
  moss::event hold;
  auto client = moss::spawn([&] {
    moss::stream c = moss::connect_tcp({h.address(), h.address()}, o);
    c.write_all("winner\n");
    hold.wait();
  });
  struct stop {
    moss::task<void>& t;
    ~stop() { t.kill(); }  // a failed assertion below must not leave it behind
  } stop{client};
  moss::sleep(200ms);
  EXPECT_EQ(moss_test::open_fds(), fds + 2) << "both attempts should be in flight";
  for (std::size_t i = 0; i < h.held.size(); ++i) (void)h.l.accept();  // room in the queue again
  std::this_thread::sleep_for(2500ms);
  moss::sleep(100ms);  // the race sees both connected, takes one
  EXPECT_EQ(moss_test::open_fds(), fds + 1) << "the loser's socket was not closed";
  int lines = 0, ended = 0;
  for (int i = 0; i < 2; ++i) {
    moss::timeout t(5s);
    moss::stream s = h.l.accept();
    std::optional<std::string> line = s.read_line();
    if (line == "winner") ++lines;
    if (!line) ++ended;
  }
  EXPECT_EQ(lines, 1);
  EXPECT_EQ(ended, 1);
  hold.set();
  client.join();
}

TEST_F(WithHub, ConnectOptionsAndAddressListsAreChecked) {
  moss::connect_options o;
  o.attempt_delay = 5ms;
  try {
    (void)moss::connect_tcp("127.0.0.1", 80, o);
    ADD_FAILURE();
  } catch (const moss::error& e) {
    EXPECT_TRUE(contains(e.what(), "attempt_delay 5 ms")) << e.what();
  }
  EXPECT_THROW((void)moss::connect_tcp(std::vector<moss::dns::address>{}), moss::error);
  moss::dns::address unix_address;
  unix_address.family = AF_UNIX;
  EXPECT_THROW((void)moss::connect_tcp({unix_address}), moss::error);
}

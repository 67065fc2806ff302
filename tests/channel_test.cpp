// channel_test: rendezvous, fairness, timeouts, killed senders and
// receivers, close.
#include <moss/channel.hpp>
#include <moss/moss.hpp>

#include "leak_check.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using moss_test::WithHub;

namespace {
std::string message_of(auto&& f) {
  try {
    f();
  } catch (const moss::error& e) {
    return e.what();
  }
  return "(no moss::error)";
}
}  // namespace

TEST_F(WithHub, SendWaitsUntilAReceiverHasTheValue) {
  moss::channel<int> ch;
  std::vector<std::string> log;
  auto sender = moss::spawn([&] {
    ch.send(1);
    log.push_back("sent");
  });
  moss::sleep(2ms);
  EXPECT_TRUE(log.empty());  // nobody received yet
  EXPECT_EQ(ch.senders_waiting(), 1u);
  EXPECT_EQ(ch.recv(), 1);
  log.push_back("received");
  sender.join();
  EXPECT_EQ(log, (std::vector<std::string>{"received", "sent"}));
}

TEST_F(WithHub, RecvWaitsUntilASenderOffers) {
  moss::channel<std::string> ch;
  auto receiver = moss::spawn([&] { return ch.recv(); });
  moss::yield();
  EXPECT_EQ(ch.receivers_waiting(), 1u);
  ch.send("hi");  // a receiver is waiting: returns at once
  EXPECT_EQ(receiver.get(), "hi");
}

TEST_F(WithHub, SendersAndReceiversAreServedInTheOrderTheyCame) {
  moss::channel<int> ch;
  std::vector<moss::task<void>> senders;
  for (int i = 0; i < 3; ++i) senders.push_back(moss::spawn([&, i] { ch.send(i); }));
  moss::yield();
  std::vector<int> got;
  for (int i = 0; i < 3; ++i) got.push_back(ch.recv());
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
  for (auto& t : senders) t.join();

  std::vector<int> by_receiver(3, -1);
  std::vector<moss::task<void>> receivers;
  for (int i = 0; i < 3; ++i) receivers.push_back(moss::spawn([&, i] { by_receiver[i] = ch.recv(); }));
  moss::yield();
  for (int i = 0; i < 3; ++i) ch.send(10 + i);
  EXPECT_FALSE(ch.try_recv());  // no barging: the values went to the waiters
  for (auto& t : receivers) t.join();
  EXPECT_EQ(by_receiver, (std::vector<int>{10, 11, 12}));
}

TEST_F(WithHub, PingPongThroughTwoChannels) {
  moss::channel<int> ping;
  moss::channel<int> pong;
  auto echo = moss::spawn([&] {
    for (int i = 0; i < 1000; ++i) pong.send(ping.recv() + 1);
  });
  int v = 0;
  for (int i = 0; i < 1000; ++i) {
    ping.send(v);
    v = pong.recv();
  }
  echo.join();
  EXPECT_EQ(v, 1000);
}

TEST_F(WithHub, TrySendAndTryRecvNeverWait) {
  moss::channel<int> ch;
  EXPECT_FALSE(ch.try_send(1));  // nobody receives
  EXPECT_EQ(ch.try_recv(), std::nullopt);
  auto receiver = moss::spawn([&] { return ch.recv(); });
  moss::yield();
  EXPECT_TRUE(ch.try_send(2));
  EXPECT_EQ(receiver.get(), 2);
  auto sender = moss::spawn([&] { ch.send(3); });
  moss::yield();
  EXPECT_EQ(ch.try_recv(), 3);
  sender.join();
}

TEST_F(WithHub, ChannelTimeoutsGiveUpAndDeadlinesAlreadyPassedReturnAtOnce) {
  moss::channel<int> ch;
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(ch.send(1, 0ms));
  EXPECT_FALSE(ch.send(1, -1s));
  EXPECT_EQ(ch.recv(0ms), std::nullopt);
  EXPECT_EQ(ch.recv(-1s), std::nullopt);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_FALSE(ch.send(1, 2ms));
  EXPECT_EQ(ch.recv(2ms), std::nullopt);
  EXPECT_EQ(ch.senders_waiting(), 0u);
  EXPECT_EQ(ch.receivers_waiting(), 0u);
}

TEST_F(WithHub, ChannelTimedCallsSucceedWhenTheOtherSideComesInTime) {
  moss::channel<int> ch;
  auto other = moss::spawn([&] {
    moss::sleep(5ms);
    ch.send(7);
    moss::sleep(5ms);
    return ch.recv();
  });
  EXPECT_EQ(ch.recv(5s), 7);
  EXPECT_TRUE(ch.send(8, 5s));
  EXPECT_EQ(other.get(), 8);
}

TEST_F(WithHub, AValueHandedToAReceiverKilledBeforeItRanGoesToTheNextReceiver) {
  moss::channel<int> ch;
  auto a = moss::spawn([&] { return ch.recv(); });
  auto b = moss::spawn([&] { return ch.recv(); });
  moss::yield();
  ch.send(1);  // handed to a; the send is complete
  a.kill();    // before a runs
  EXPECT_EQ(b.get(), 1);
}

TEST_F(WithHub, AValueHandedToAReceiverKilledBeforeItRanIsKeptForTheNextRecv) {
  moss::channel<int> ch;
  auto a = moss::spawn([&] { return ch.recv(); });
  moss::yield();
  ch.send(1);
  a.kill();
  auto late = moss::spawn([&] { ch.send(2); });
  moss::yield();
  EXPECT_EQ(ch.recv(), 1);  // the kept value first
  EXPECT_EQ(ch.recv(), 2);
  late.join();
}

TEST_F(WithHub, AKilledSenderOffersNothing) {
  moss::channel<int> ch;
  auto a = moss::spawn([&] { ch.send(1); });
  auto b = moss::spawn([&] { ch.send(2); });
  moss::yield();
  a.kill();
  EXPECT_EQ(ch.senders_waiting(), 1u);
  EXPECT_EQ(ch.recv(), 2);
  b.join();
}

TEST_F(WithHub, SendOnAClosedChannelIsAnError) {
  moss::channel<int> ch;
  ch.close();
  EXPECT_TRUE(ch.closed());
  EXPECT_EQ(message_of([&] { ch.send(1); }), "moss: send on a closed channel");
  EXPECT_THROW(ch.try_send(1), moss::error);
  EXPECT_THROW(ch.recv(), moss::channel_closed);
  EXPECT_THROW(ch.recv(1s), moss::channel_closed);
  EXPECT_EQ(ch.try_recv(), std::nullopt);
}

TEST_F(WithHub, ClosingAChannelWakesBlockedSendersAndReceivers) {
  moss::channel<int> a;
  moss::channel<int> b;
  auto sender = moss::spawn([&] { a.send(1); });
  auto receiver = moss::spawn([&] { return b.recv(); });
  moss::yield();
  a.close();
  b.close();
  EXPECT_EQ(message_of([&] { sender.get(); }), "moss: send on a closed channel");
  EXPECT_THROW(receiver.get(), moss::channel_closed);
}

TEST_F(WithHub, RecvFromAChannelNobodySendsOnIsLoopExit) {
  moss::channel<int> ch;
  EXPECT_THROW(ch.recv(), moss::loop_exit);
  EXPECT_EQ(ch.receivers_waiting(), 0u);
}

TEST_F(WithHub, ChannelsCarryMoveOnlyValues) {
  moss::channel<std::unique_ptr<int>> ch;
  auto sender = moss::spawn([&] { ch.send(std::make_unique<int>(5)); });
  EXPECT_EQ(*ch.recv(), 5);
  sender.join();
}

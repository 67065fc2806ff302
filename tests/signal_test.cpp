// signal_test: signal_handler — handlers run as tasks on the registering
// hub, keep it waiting for signals, restore the old disposition when
// cancelled (from any thread), work on several hubs, and the seed's
// "Ctrl-C cancels every task and the loop closes cleanly".
#include <moss/detail/waiter.hpp>
#include <moss/moss.hpp>
#include <moss/signal.hpp>

#include "core/hub.hpp"
#include "leak_check.hpp"

#include <atomic>
#include <csignal>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

using namespace std::chrono_literals;
using moss::detail::deadline_after;
using moss::detail::waiter;
using moss_test::WithHub;

namespace {

using handler_t = void (*)(int);

handler_t current_handler(int sig) {
  struct sigaction now {};
  sigaction(sig, nullptr, &now);
  return now.sa_handler;
}

std::atomic<int> plain_calls{0};
void plain_handler(int) { ++plain_calls; }

// send_later() sends sig to the process from another thread after delay.
std::thread send_later(int sig, std::chrono::milliseconds delay) {
  return std::thread([=] {
    std::this_thread::sleep_for(delay);
    kill(getpid(), sig);
  });
}

}  // namespace

// A program of the user's may well have a function of this name. moss's own
// signal handler must not be a C name it replaces (it was: the link took this
// one, and moss's handler never ran). Before the fix this file did not link.
std::atomic<int> user_on_signal_calls{0};
extern "C" void on_signal(int) { ++user_on_signal_calls; }

TEST_F(WithHub, AUserFunctionNamedOnSignalDoesNotReplaceMossHandler) {
  auto w = std::make_shared<waiter>();
  auto h = moss::signal_handler(SIGUSR1, [w] { w->wake(); });
  raise(SIGUSR1);
  EXPECT_TRUE(w->wait(deadline_after(10s)));
  EXPECT_EQ(user_on_signal_calls.load(), 0);
}

TEST_F(WithHub, ARaisedSignalRunsTheHandlerInATaskOnThisHub) {
  auto w = std::make_shared<waiter>();
  std::thread::id ran_on;
  bool in_task = false;
  auto h = moss::signal_handler(SIGUSR1, [&, w] {
    ran_on = std::this_thread::get_id();
    in_task = moss::detail::current_impl()->role_ == moss::detail::greenlet_impl::role::task;
    w->wake();
  });
  raise(SIGUSR1);
  EXPECT_TRUE(w->wait(deadline_after(10s)));
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_TRUE(in_task);
}

TEST_F(WithHub, AGreenletWaitingOnlyForASignalIsNotADeadlock) {
  // No timer, no fd, no other task: without the handler keeping the hub
  // up, this wait would end at once with loop_exit.
  waiter w;
  auto h = moss::signal_handler(SIGUSR1, [&] { w.wake(); });
  std::thread sender = send_later(SIGUSR1, 50ms);
  bool woken = false;
  EXPECT_NO_THROW(woken = w.wait());
  sender.join();
  EXPECT_TRUE(woken);
}

TEST_F(WithHub, EveryHandlerForASignalRunsAndEachDeliveryStartsATask) {
  int a = 0, b = 0, other = 0;
  auto ha = moss::signal_handler(SIGUSR2, [&] { ++a; });
  auto hb = moss::signal_handler(SIGUSR2, [&] { ++b; });
  auto ho = moss::signal_handler(SIGUSR1, [&] { ++other; });
  raise(SIGUSR2);
  for (int i = 0; i < 1000 && (a == 0 || b == 0); ++i) moss::sleep(1ms);
  raise(SIGUSR2);
  for (int i = 0; i < 1000 && (a < 2 || b < 2); ++i) moss::sleep(1ms);
  EXPECT_EQ(a, 2);
  EXPECT_EQ(b, 2);
  hb.cancel();
  raise(SIGUSR2);
  for (int i = 0; i < 1000 && a < 3; ++i) moss::sleep(1ms);
  moss::sleep(5ms);
  EXPECT_EQ(a, 3);
  EXPECT_EQ(b, 2) << "a cancelled handler ran";
  EXPECT_EQ(other, 0) << "a handler for another signal ran";
}

TEST_F(WithHub, CancellingTheLastHandlerRestoresThePreviousDisposition) {
  struct sigaction plain {};
  plain.sa_handler = &plain_handler;
  sigemptyset(&plain.sa_mask);
  struct sigaction before {};
  sigaction(SIGUSR2, &plain, &before);
  {
    auto h1 = moss::signal_handler(SIGUSR2, [] {});
    auto h2 = moss::signal_handler(SIGUSR2, [] {});
    EXPECT_NE(current_handler(SIGUSR2), &plain_handler);
    h1.cancel();
    EXPECT_NE(current_handler(SIGUSR2), &plain_handler) << "restored while a handler remained";
    int calls = plain_calls;
    raise(SIGUSR2);
    EXPECT_EQ(plain_calls, calls);
  }
  EXPECT_EQ(current_handler(SIGUSR2), &plain_handler);
  sigaction(SIGUSR2, &before, nullptr);
  moss::sleep(1ms);  // let the task for the raise above run
}

TEST_F(WithHub, SignalsThatCannotBeHandledInATaskAreClearErrors) {
  for (int sig : {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, 0, -3, 65, 1000}) {
    try {
      auto h = moss::signal_handler(sig, [] {});
      ADD_FAILURE() << "accepted signal " << sig;
    } catch (const moss::error& e) {
      std::string what = e.what();
      EXPECT_NE(what.find("signal_handler("), std::string::npos) << what;
    }
  }
  try {
    auto h = moss::signal_handler(SIGKILL, [] {});
  } catch (const moss::error& e) {
    EXPECT_NE(std::string(e.what()).find("SIGKILL"), std::string::npos) << e.what();
  }
}

TEST_F(WithHub, AHandlerRunsOnTheHubOfTheThreadThatRegisteredIt) {
  std::promise<void> registered;
  std::thread::id ran_on, other_id;
  std::thread other([&] {
    other_id = std::this_thread::get_id();
    moss::run([&] {
      waiter w;
      auto h = moss::signal_handler(SIGUSR1, [&] {
        ran_on = std::this_thread::get_id();
        w.wake();
      });
      registered.set_value();
      w.wait();  // kept up by the handler alone
    });
  });
  registered.get_future().wait();
  kill(getpid(), SIGUSR1);
  other.join();
  EXPECT_EQ(ran_on, other_id);
}

TEST_F(WithHub, CancellingFromAnotherThreadLetsTheHubSeeADeadlockAgain) {
  std::promise<std::pair<moss::signal_handle, moss::hub*>> handle_p;
  std::atomic<bool> got_loop_exit{false};
  waiter* w = nullptr;
  std::thread other([&] {
    moss::run([&] {
      waiter mine;
      w = &mine;
      handle_p.set_value({moss::signal_handler(SIGUSR1, [] {}), &moss::hub::current()});
      try {
        mine.wait();  // only the handler keeps the hub up
      } catch (const moss::loop_exit&) {
        got_loop_exit = true;
      }
    });
  });
  auto [h, other_hub] = handle_p.get_future().get();
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(got_loop_exit);
  h.cancel();  // from this thread: the other hub is told to let go
  for (int i = 0; i < 500 && !got_loop_exit; ++i) std::this_thread::sleep_for(10ms);
  if (!got_loop_exit) other_hub->call_threadsafe([w] { w->wake(); });  // unstick it: the test failed
  other.join();
  EXPECT_TRUE(got_loop_exit);
  EXPECT_EQ(current_handler(SIGUSR1), SIG_DFL);
}

TEST_F(WithHub, AHandleThatOutlivesItsThreadIsHarmless) {
  // The handler's hub goes away with its thread (its eventfd is closed; the
  // fixture checks for leaked fds); the signal stays caught until cancel().
  moss::signal_handle h;
  std::thread([&] { h = moss::signal_handler(SIGUSR2, [] {}); }).join();
  EXPECT_TRUE(h.active());
  raise(SIGUSR2);
  h.cancel();
  EXPECT_EQ(current_handler(SIGUSR2), SIG_DFL);
}

// The seed: tasks sleep 1, 2 and 3 s; Ctrl-C arrives; the handler cancels
// every task; the main task's wait ends and run() returns normally.
TEST_F(WithHub, CtrlCCancelsAllTasksAndTheLoopClosesCleanly) {
  auto t0 = std::chrono::steady_clock::now();
  std::thread ctrl_c = send_later(SIGINT, 50ms);
  int cancelled = moss::run([] {
    auto do_some_thing = [](int x) {
      moss::sleep(x * 1s);
      return x;
    };
    std::vector<moss::task<int>> tasks;
    for (int i = 1; i <= 3; ++i) tasks.push_back(moss::spawn(do_some_thing, i));
    auto on_ctrl_c = moss::signal_handler(SIGINT, [&] {
      for (auto& t : tasks) t.cancel();
    });
    moss::joinall(tasks);
    int n = 0;
    for (auto& t : tasks) n += t.cancelled() ? 1 : 0;
    return n;
  });
  ctrl_c.join();
  EXPECT_EQ(cancelled, 3);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 900ms);
  EXPECT_EQ(moss::hub::current().task_count(), 0u);
  EXPECT_EQ(current_handler(SIGINT), SIG_DFL);
}

// vitte::task's join and yield as the scheduler runs them (coro_promise.hpp J5,
// coro_awaits.hpp): the join runs its children one at a time and leaves the rest
// stealable; a yield with nothing else ready goes on at once.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <thread>

#include "../benchmarks/coro_kernels.hpp"
#include "test_support.hpp"
#include "vitte/coro.hpp"
#include "vitte/vitte.hpp"

namespace {

using namespace std::chrono_literals;

// Spins (holding its worker) until `flag` is set or `limit` passed; true if it was set.
bool spin_until(const std::atomic<bool>& flag, std::chrono::steady_clock::duration limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!flag.load(std::memory_order_acquire))
    if (std::chrono::steady_clock::now() > end) return false;
  return true;
}

// The join runs the newest child first. While it runs, the older one stays on the deque,
// where the second worker steals it: the newest child sees it start. (A join that took all
// its children off the deque before running the first would hold the older one back until
// the newest gave up.)
TEST(CoroJoin, ChildrenBelowTheRunningOneStayStealable) {
  vitte::Scheduler s(2);
  std::atomic<bool> older_started{false};
  bool newest_saw_it = false;
  auto older = [&]() -> vitte::task<void> {
    older_started.store(true, std::memory_order_release);
    co_return;
  };
  auto newest = [&]() -> vitte::task<void> {
    newest_saw_it = spin_until(older_started, 20s);
    co_return;
  };
  auto parent = [&]() -> vitte::task<void> {
    auto a = older();
    auto b = newest();
    co_await vitte::fork(a);
    co_await vitte::fork(b);
    co_await vitte::join();
  };
  vitte::sync_wait(s, parent());
  EXPECT_TRUE(newest_saw_it) << "the older child was not stolen while the newest ran";
}

// Every child runs exactly once and every result arrives, whether the join ran it, a thief
// stole it from the middle of the chain, or it ran after its parent migrated.
TEST(CoroJoin, EveryChildRunsOnceWhereverItRuns) {
  for (std::size_t w : {1u, 2u, 4u}) {
    vitte::Scheduler s(w);
    for (int rep = 0; rep < 20; ++rep) {
      EXPECT_EQ(vitte::sync_wait(s, bench::coskynet(0, 10'000)), std::uint64_t{49'995'000}) << w << " workers";
      EXPECT_EQ(vitte::sync_wait(s, bench::cofib(18)), 2584) << w << " workers";
    }
  }
}

// A child that fails in the middle of the chain: the join rethrows its error after every
// child ran, and the children after it in the chain still ran.
TEST(CoroJoin, AFailingLinkDoesNotBreakTheChain) {
  vitte::Scheduler s(1);
  std::atomic<int> ran{0};
  auto child = [&](bool fail) -> vitte::task<void> {
    ran.fetch_add(1);
    if (fail) throw std::runtime_error("link failed");
    co_return;
  };
  auto parent = [&]() -> vitte::task<void> {
    std::array<vitte::task<void>, 5> kids;
    for (int i = 0; i < 5; ++i) {
      kids[i] = child(i == 2);
      co_await vitte::fork(kids[i]);
    }
    co_await vitte::join();
  };
  EXPECT_THROW(vitte::sync_wait(s, parent()), std::runtime_error);
  EXPECT_EQ(ran.load(), 5);
}

// A yield with nothing else ready goes on at once: no resumption frame is queued and run.
TEST(CoroYield, WithNothingElseReadyItDoesNotQueue) {
  vitte::Scheduler s(1);
  const std::uint64_t before = s.metrics().total.executed;
  EXPECT_EQ(vitte::sync_wait(s, bench::coyield(1000)), 1000);
  const std::uint64_t ran = s.metrics().total.executed - before;
  EXPECT_LT(ran, 100u) << "each yield made a round trip through the queue";
}

// With others ready, each yield queues behind them: four coroutines yielding in turn on one
// worker interleave, none runs two rounds while another waits.
TEST(CoroYield, WithOthersReadyEachYieldQueuesBehindThem) {
  vitte::Scheduler s(1);
  std::array<int, 4> rounds{};
  int max_lead = 0;
  auto yielder = [&](int me) -> vitte::task<void> {
    for (int i = 0; i < 100; ++i) {
      ++rounds[me];
      for (int r : rounds) max_lead = std::max(max_lead, rounds[me] - r);
      co_await vitte::yield();
    }
  };
  auto parent = [&]() -> vitte::task<void> {
    std::array<vitte::task<void>, 4> kids;
    for (int i = 0; i < 4; ++i) {
      kids[i] = yielder(i);
      co_await vitte::fork(kids[i]);
    }
    co_await vitte::join();
  };
  vitte::sync_wait(s, parent());
  for (int r : rounds) EXPECT_EQ(r, 100);
  EXPECT_LE(max_lead, 1) << "a yield went on while other coroutines were ready";
  const std::uint64_t crowd = vitte::sync_wait(s, bench::coyield_crowd(1000));
  EXPECT_EQ(crowd, 1000u * bench::kCrowd);
}

}  // namespace

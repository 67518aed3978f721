// vitte::task's join and yield as the scheduler runs them (coro_promise.hpp J5,
// coro_awaits.hpp): the join runs its children one at a time and leaves the rest
// stealable; a yield with nothing else ready goes on at once.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>
#include <coroutine>

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

namespace {

// An awaitable of another library that resumes its coroutine on a thread of its own.
struct ResumeOnAThreadOfItsOwn {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const {
    std::thread([h] {
      std::this_thread::sleep_for(2ms);
      h.resume();
    }).detach();
  }
  void await_resume() const noexcept {}
};

// A chained child that ends off the workers: the chain has no deque to look at there, so
// the rest count down (found by a review: it dereferenced the missing worker).
TEST(CoroJoin, AChainedChildThatEndsOffTheWorkers) {
  vitte::Scheduler s(1);
  auto child = [](bool foreign) -> vitte::task<int> {
    if (foreign) co_await ResumeOnAThreadOfItsOwn{};
    co_return 1;
  };
  auto parent = [&]() -> vitte::task<int> {
    auto a = child(false);
    auto b = child(true);  // the newest: the join runs it first, chained
    co_await vitte::fork(a);
    co_await vitte::fork(b);
    co_await vitte::join();
    co_return a.result() + b.result();
  };
  EXPECT_EQ(vitte::sync_wait(s, parent()), 2);
}

// A yield follows the node in the coroutine's options, also when nothing else is ready
// where a thief took it (found by a review: the fast path kept it on the thief's node).
TEST(CoroYield, FollowsTheNodeOfItsOptions) {
  vitte::Options o;
  o.topology = vitte::Topology::from_synthetic("node:2 core:1 pu:1");
  o.placement = vitte::Placement::Unpinned;
  vitte::Scheduler s(o);
  std::atomic<int> stolen{0}, off_node_after_yield{0};
  auto node_now = [&] {
    return s.plan().workers[static_cast<std::size_t>(vitte::Scheduler::current_worker())].node;
  };
  auto child = [&]() -> vitte::task<void> {
    const auto end = std::chrono::steady_clock::now() + 200us;
    while (std::chrono::steady_clock::now() < end) {
    }
    if (node_now() != 1) {
      stolen.fetch_add(1);
      co_await vitte::yield();
      if (node_now() != 1) off_node_after_yield.fetch_add(1);
    }
  };
  auto parent = [&]() -> vitte::task<void> {
    std::vector<vitte::task<void>> kids;
    for (int i = 0; i < 400; ++i) {
      kids.push_back(child());
      co_await vitte::fork(kids.back());
    }
    const auto end = std::chrono::steady_clock::now() + 30ms;  // thieves take some meanwhile
    while (std::chrono::steady_clock::now() < end) {
    }
    co_await vitte::join();
  };
  vitte::sync_wait(s, parent(), vitte::TaskOptions{.node = 1});
  EXPECT_EQ(off_node_after_yield.load(), 0) << stolen.load() << " children were taken by node 0";
}

}  // namespace

// Handles that outlive their Scheduler (a ready Future, a Promise, a TaskGroup, a Timer):
// using one afterwards is refused cleanly, never by reading the freed scheduler (issue #17;
// the stress suite runs these under AddressSanitizer, which reports any such read).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "vitte/vitte.hpp"

using namespace std::chrono_literals;

TEST(Lifetime, ThenOnAReadyFutureAfterItsSchedulerIsDestroyedFailsWithBrokenPromise) {
  std::optional<vitte::Scheduler> s(std::in_place, 1);
  auto f = s->async([] { return 1; });
  f.wait();
  s.reset();
  bool ran = false;
  auto g = std::move(f).then([&](int v) {
    ran = true;
    return v + 1;
  });
  EXPECT_THROW(g.get(), vitte::BrokenPromise);
  EXPECT_FALSE(ran);
}

TEST(Lifetime, WhenAllOfReadyFuturesAfterTheirSchedulerIsDestroyedFailsWithBrokenPromise) {
  std::optional<vitte::Scheduler> s(std::in_place, 1);
  auto a = s->async([] { return 1; });
  auto b = s->async([] { return 2; });
  std::vector<vitte::Future<int>> range;
  range.push_back(s->async([] { return 3; }));
  a.wait();
  b.wait();
  range[0].wait();
  s.reset();
  auto both = vitte::when_all(std::move(a), std::move(b));
  EXPECT_THROW(both.get(), vitte::BrokenPromise);
  auto all = vitte::when_all(std::move(range));
  EXPECT_THROW(all.get(), vitte::BrokenPromise);
}

TEST(Lifetime, APromiseSetAfterItsSchedulerIsDestroyedRunsNoContinuation) {
  std::optional<vitte::Scheduler> s(std::in_place, 1);
  vitte::Promise<int> p(*s);
  bool ran = false;
  auto chain = p.get_future().then([&](int v) {
    ran = true;
    return v;
  });
  s.reset();
  p.set_value(1);
  EXPECT_THROW(chain.get(), vitte::BrokenPromise);
  EXPECT_FALSE(ran);
}

TEST(Lifetime, AHandleIsNotTakenForANewSchedulerAtTheSameAddress) {
  // The allocator often gives a new scheduler the old one's address: a stale future must
  // still be refused, not run on the newcomer.
  auto s = std::make_unique<vitte::Scheduler>(1);
  auto f = s->async([] { return 1; });
  f.wait();
  s.reset();
  auto fresh = std::make_unique<vitte::Scheduler>(1);
  std::atomic<bool> ran{false};
  auto g = std::move(f).then([&](int) { ran = true; });
  EXPECT_THROW(g.get(), vitte::BrokenPromise);
  fresh->join_all();
  EXPECT_FALSE(ran.load());
}

TEST(Lifetime, TaskGroupRunAfterItsSchedulerIsDestroyedIsAUsageError) {
  std::optional<vitte::Scheduler> s(std::in_place, 1);
  auto g = std::make_unique<vitte::TaskGroup>(*s);
  std::atomic<int> ran{0};
  g->run([&] { ran++; });
  g->wait();
  s.reset();
  try {
    g->run([&] { ran++; });
    ADD_FAILURE() << "run() after the scheduler was destroyed was accepted";
  } catch (const vitte::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("destroyed"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(g->wait()) << "nothing is pending: the scheduler ran the group's tasks before it went";
  g.reset();
  EXPECT_EQ(ran.load(), 1);
}

TEST(Lifetime, ATimerHandleAfterItsSchedulerIsDestroyed) {
  std::optional<vitte::Scheduler> s(std::in_place, 1);
  vitte::Timer t = s->after(1h, [] {});
  vitte::Timer tick = s->every(1h, [] {});
  s.reset();  // drops both
  EXPECT_EQ(t.state(), vitte::TimerState::Dropped);
  EXPECT_FALSE(t.cancel());
  EXPECT_FALSE(tick.cancel());
}

TEST(Lifetime, APromisesFutureIsWaitedForAfterItsSchedulerIsDestroyed) {
  std::optional<vitte::Scheduler> s(std::in_place, 1);
  auto p = std::make_shared<vitte::Promise<int>>(*s);
  auto f = p->get_future();
  s.reset();
  std::thread setter([p] {
    std::this_thread::sleep_for(20ms);
    p->set_value(5);
  });
  EXPECT_EQ(f.get(), 5);  // blocks as for a future of no scheduler: the dead one is not read
  setter.join();
}

TEST(Lifetime, AStaleHandleUsedOnAWorkerOfANewSchedulerAtTheSameAddress) {
  // The allocator usually hands the next scheduler the old one's address; a worker of the
  // new one must still refuse the old one's handles instead of taking their work.
  std::optional<vitte::Scheduler> s(std::in_place, 1);
  auto f = s->async([] { return 1; });
  f.wait();
  auto g = std::make_unique<vitte::TaskGroup>(*s);
  const void* old = vitte::detail::core_of(*s);
  s.reset();
  std::vector<std::unique_ptr<vitte::Scheduler>> tries;
  for (int i = 0; i < 20 && (tries.empty() || vitte::detail::core_of(*tries.back()) != old); ++i)
    tries.push_back(std::make_unique<vitte::Scheduler>(1));
  if (vitte::detail::core_of(*tries.back()) != old)
    std::printf("(no scheduler of 20 got the old address: the refusals are checked all the same)\n");
  vitte::Scheduler& fresh = *tries.back();
  std::atomic<int> ran{0};
  const int refused = fresh.async([&] {
                         int n = 0;
                         auto link = std::move(f).then([&](int) { ran++; });
                         try {
                           link.get();
                         } catch (const vitte::BrokenPromise&) {
                           ++n;
                         }
                         try {
                           g->run([&] { ran++; });
                         } catch (const vitte::UsageError&) {
                           ++n;
                         }
                         return n;
                       }).get();
  fresh.join_all();
  EXPECT_EQ(refused, 2);
  EXPECT_EQ(ran.load(), 0);
}

// fork(): a scheduler inherited by a child process fails clearly there; a new one works.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>
#include <thread>

#include "test_support.hpp"
#include "vitte/vitte.hpp"

using vitte::test::in_child;

namespace {
// 0 if call() throws the UsageError of an inherited scheduler (naming fork()); else a
// failure weight: 1 accepted, 100 another UsageError, 1000 another exception.
template <class Call>
int refused_as_inherited(Call&& call) {
  try {
    call();
    return 1;
  } catch (const vitte::UsageError& e) {
    return std::string(e.what()).find("fork()") == std::string::npos ? 100 : 0;
  } catch (...) {
    return 1000;
  }
}
}  // namespace

TEST(Fork, AnInheritedSchedulerFailsClearlyAndANewOneWorks) {
  vitte::Scheduler sched(2);
  sched.async([] {}).get();  // workers are up and have run something
  const int rc = in_child([&] {
    int failures = 0;
    auto expect_usage_error = [&](auto&& call) { failures += refused_as_inherited(call); };
    expect_usage_error([&] { sched.submit(vitte::Task([] {})); });
    expect_usage_error([&] { (void)sched.async([] { return 1; }); });
    expect_usage_error([&] { sched.join_all(); });
    expect_usage_error([&] {
      vitte::TaskGroup g(sched);
      g.run([] {});
    });
    expect_usage_error([&] { sched.shutdown(); });
    vitte::Scheduler fresh(1);
    if (fresh.async([] { return 41; }).get() + 1 != 42) failures += 10000;
    return failures;
  });  // the child's copy of `sched` is destroyed at _exit: never, and nothing hangs
  EXPECT_EQ(rc, 0) << "-1: the child hung or crashed; otherwise a count of broken promises";
  EXPECT_EQ(sched.async([] { return 5; }).get(), 5) << "the parent's scheduler is unaffected";
}

TEST(Fork, DestroyingAnInheritedSchedulerDoesNotHang) {
  auto* sched = new vitte::Scheduler(2);
  sched->async([] {}).get();
  const int rc = in_child([&] {
    delete sched;  // must neither join absent threads nor abort
    return 0;
  });
  EXPECT_EQ(rc, 0);
  delete sched;
}

TEST(Fork, ForkFromInsideATaskLeavesNoWorkerInTheChild) {
  vitte::Scheduler sched(2);
  const int rc = sched.async([&] {
                        return in_child([&] {
                          if (vitte::Scheduler::current() != nullptr) return 1;  // not a worker here
                          try {
                            sched.submit(vitte::Task([] {}));
                            return 2;  // accepted onto a dead worker's deque: lost silently
                          } catch (const vitte::UsageError&) {
                          }
                          try {
                            vitte::spawn([] {});
                            return 3;
                          } catch (const vitte::UsageError&) {
                          }
                          return 0;
                        });
                      }).get();
  EXPECT_EQ(rc, 0) << "1: still a worker; 2: submit accepted; 3: spawn accepted; -1: crash/hang";
}

// Issue #17: a child forked while the parent's timer threads were busy (the timer queue's
// lock may be held at the fork) and its calls on inherited timers and metrics. Each child
// must fail clearly, not block on that lock; in_child's limit turns a hang into a failure.
TEST(Fork, InheritedTimersAndMetricsFailClearlyAndNeverBlock) {
  using namespace std::chrono_literals;
  vitte::Scheduler sched(2);
  std::vector<vitte::Timer> ticks;
  for (int i = 0; i < 4; ++i) ticks.push_back(sched.every(1ns, [] {}));
  std::atomic<bool> stop{false};
  std::function<void()> rearm = [&] {
    if (!stop.load()) sched.after(1us, rearm);  // a stream of one-shots, each arming the next
  };
  sched.after(1us, rearm);
  vitte::Timer pending = sched.after(1h, [] {});
  const int children = static_cast<int>(vitte::test::scaled(100));
  int hung_or_wrong = 0;
  for (int i = 0; i < children; ++i) {
    const int rc = in_child(
        [&] {
          int failures = 0;
          auto expect_usage_error = [&](auto&& call) { failures += refused_as_inherited(call); };
          expect_usage_error([&] { (void)pending.cancel(); });
          expect_usage_error([&] { (void)ticks[i % 4].cancel(); });
          expect_usage_error([&] { (void)sched.metrics(); });
          expect_usage_error([&] { (void)sched.after(1ms, [] {}); });
          expect_usage_error([&] { (void)sched.make_group({.name = "g"}); });
          return failures;
        },
        std::chrono::seconds(10));
    if (rc != 0) ++hung_or_wrong;
  }
  EXPECT_EQ(hung_or_wrong, 0) << "children that hung (or crashed) or did not fail clearly, of " << children;
  stop = true;
  for (auto& t : ticks) t.cancel();
  EXPECT_TRUE(pending.cancel());
  sched.join_all();
}

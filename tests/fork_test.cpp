// fork(): a scheduler inherited by a child process fails clearly there; a new one works.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "test_support.hpp"
#include "vitte/vitte.hpp"

using vitte::test::in_child;

TEST(Fork, AnInheritedSchedulerFailsClearlyAndANewOneWorks) {
  vitte::Scheduler sched(2);
  sched.async([] {}).get();  // workers are up and have run something
  const int rc = in_child([&] {
    int failures = 0;
    auto expect_usage_error = [&](auto&& call) {
      try {
        call();
        failures += 1;
      } catch (const vitte::UsageError& e) {
        if (std::string(e.what()).find("fork()") == std::string::npos) failures += 100;
      } catch (...) {
        failures += 1000;
      }
    };
    expect_usage_error([&] { sched.submit(vitte::Task::spawn([] {})); });
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
                            sched.submit(vitte::Task::spawn([] {}));
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

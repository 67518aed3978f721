// vitte::isolate: a wait inside a region runs only the region's tasks and those it waits
// for; unrelated queued work never interleaves with a task that holds a lock.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

using namespace std::chrono_literals;

#include "test_support.hpp"
#include "vitte/vitte.hpp"

namespace {

// A lock that records whether the thread holding it ever entered it again (what would be
// a self-deadlock with std::mutex) while it waited inside a task.
struct ReentryDetector {
  std::atomic<std::thread::id> holder{};
  std::atomic<int> reentries{0};
  void enter() {
    if (holder.load() == std::this_thread::get_id()) reentries++;
  }
};

// One worker; an unrelated task U (which would take the lock) sits in the worker's deque
// under the holder's wait; the awaited task arrives from another thread through the
// injection queue, so the wait has to look past its own deque.
int run_holder(bool isolated) {
  vitte::Options o;
  o.workers = 1;
  o.placement = vitte::Placement::Unpinned;
  vitte::Scheduler sched(o);
  ReentryDetector lock;
  sched.async([&] {
         for (int i = 0; i < 8; ++i) vitte::spawn([&] { lock.enter(); });  // unrelated
         lock.holder = std::this_thread::get_id();
         auto body = [&] {
           vitte::TaskGroup g;
           std::thread outside([&] { g.run([] {}); });  // awaited, queued from outside
           g.run([] {});
           outside.join();
           g.wait();
         };
         if (isolated)
           vitte::isolate(body);
         else
           body();
         lock.holder = std::thread::id{};
       })
      .get();
  sched.join_all();
  return lock.reentries.load();
}

}  // namespace

TEST(Isolate, AWaitInsideARegionRunsNoUnrelatedTask) {
  EXPECT_EQ(run_holder(/*isolated=*/true), 0);
}

TEST(Isolate, WithoutARegionTheHazardIsReal) {
  // The control: the same program without isolate() does run unrelated work inside the
  // wait (the hazard the docs describe); if this ever stops, the test above proves nothing.
  EXPECT_GT(run_holder(/*isolated=*/false), 0);
}

TEST(Isolate, ReturnsTheValueAndRethrows) {
  vitte::Scheduler sched(2);
  EXPECT_EQ(sched.async([] { return vitte::isolate([] { return 42; }); }).get(), 42);
  EXPECT_THROW(sched.async([] { vitte::isolate([] { throw std::runtime_error("x"); }); }).get(),
               std::runtime_error);
  EXPECT_EQ(vitte::isolate([] { return 7; }), 7) << "outside a worker it just calls fn";
}

// Stress: regions with a real mutex held across nested waits, next to unrelated tasks
// that take the same mutex. Without isolation this deadlocks (or recurses on the mutex);
// with it every task runs once.
TEST(IsolateStress, MutexHeldAcrossNestedWaits) {
  vitte::Scheduler sched(2);
  std::mutex mu;
  std::atomic<int> unrelated{0}, inner{0};
  const int rounds = static_cast<int>(vitte::test::scaled(200));
  for (int r = 0; r < rounds; ++r) {
    for (int i = 0; i < 4; ++i)
      sched.submit(vitte::Task::spawn([&] {
        std::lock_guard<std::mutex> l(mu);
        unrelated++;
      }));
    sched.async([&] {
           std::lock_guard<std::mutex> l(mu);
           vitte::isolate([&] {
             vitte::TaskGroup g;
             for (int i = 0; i < 4; ++i)
               g.run([&] {
                 vitte::TaskGroup h;  // nested wait, possibly on a thief
                 h.run([&] { inner++; });
                 h.run([&] { inner++; });
                 h.wait();
               });
             g.wait();
           });
         })
        .get();
  }
  sched.join_all();
  EXPECT_EQ(unrelated.load(), rounds * 4);
  EXPECT_EQ(inner.load(), rounds * 8);
}

// What an isolated wait waits for may lie outside its region: it must still run it, with
// one worker and nobody else to help (these hung before; each runs in a child process so
// that a hang fails the test instead of stalling the suite).
namespace {
vitte::Scheduler one_worker() {
  vitte::Options o;
  o.workers = 1;
  o.placement = vitte::Placement::Unpinned;
  return vitte::Scheduler(o);
}
int child_ok(bool ok) { return ok ? 0 : 1; }
}  // namespace

TEST(Isolate, GetOfAFutureMadeOutsideTheRegion) {
  EXPECT_EQ(vitte::test::in_child([] {
              auto s = one_worker();
              const int v = s.async([&] {
                              auto fut = s.async([] { return 42; });  // queued under the region
                              return vitte::isolate([&] { return fut.get(); });
                            }).get();
              return child_ok(v == 42);
            }),
            0);
}

TEST(Isolate, GetOfAFutureSubmittedFromAnotherThread) {
  EXPECT_EQ(vitte::test::in_child([] {
              auto s = one_worker();
              std::atomic<bool> go{false};
              vitte::Future<int> ext;
              auto f = s.async([&] {
                while (!go.load()) std::this_thread::yield();
                return vitte::isolate([&] { return ext.get(); });
              });
              std::this_thread::sleep_for(20ms);
              ext = s.async([] { return 7; });  // lands in the injection queue behind nothing
              go = true;
              return child_ok(f.get() == 7);
            }),
            0);
}

TEST(Isolate, AwaitedTaskBelowForeignWorkInTheOwnDeque) {
  EXPECT_EQ(vitte::test::in_child([] {
              auto s = one_worker();
              std::atomic<int> ran{0};
              s.async([&] {
                 vitte::TaskGroup g;
                 g.run([&] { ran++; });          // awaited, made before the region
                 vitte::spawn([&] { ran++; });   // foreign, on top of it
                 vitte::isolate([&] { g.wait(); });
               }).get();
              s.join_all();
              return child_ok(ran.load() == 2);
            }),
            0);
}

TEST(Isolate, DetachedSpawnFromANestedRegionAboveTheAwaitedTask) {
  EXPECT_EQ(vitte::test::in_child([] {
              auto s = one_worker();
              std::atomic<int> ran{0};
              s.async([&] {
                 vitte::isolate([&] {
                   vitte::TaskGroup g;
                   g.run([&] { ran++; });
                   vitte::isolate([&] { vitte::spawn([&] { ran++; }); });
                   g.wait();
                 });
               }).get();
              s.join_all();
              return child_ok(ran.load() == 2);
            }),
            0);
}

// TaskGroup and parallel_for: fork-join, nesting, errors, cancellation.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>
#include <stdexcept>
#include <vector>

#include "det_kernels.hpp"
#include "test_support.hpp"
#include "vitte/vitte.hpp"

namespace {
using vitte::test::fib;
}  // namespace

TEST(TaskGroup, ForkJoinComputesFib) {
  vitte::Scheduler sched(2);
  EXPECT_EQ(sched.async([] { return fib(25); }).get(), 75025);
}

TEST(TaskGroup, UsableFromAnExternalThread) {
  vitte::Scheduler sched(2);
  std::atomic<int> sum{0};
  vitte::TaskGroup g(sched);
  for (int i = 1; i <= 100; ++i) g.run([&, i] { sum += i; });
  g.wait();
  EXPECT_EQ(sum.load(), 5050);
}

TEST(TaskGroup, DefaultConstructionOutsideAWorkerIsAUsageError) {
  EXPECT_THROW(vitte::TaskGroup g, vitte::UsageError);
}

TEST(TaskGroup, ExceptionFromANestedTaskReachesTheOuterWait) {
  vitte::Scheduler sched(2);
  std::function<void(int)> tree = [&](int depth) {
    if (depth == 0) throw std::runtime_error("leaf failed");
    vitte::TaskGroup g;
    g.run([&, depth] { tree(depth - 1); });
    g.run([&, depth] { tree(depth - 1); });
    g.wait();
  };
  vitte::TaskGroup root(sched);
  root.run([&] { tree(6); });
  try {
    root.wait();
    FAIL() << "wait() must rethrow";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "leaf failed");
  }
  EXPECT_NO_THROW(root.wait()) << "the group is reusable after reporting its error";
}

TEST(TaskGroup, AnErrorCancelsTasksThatHaveNotStarted) {
  vitte::Scheduler sched(1);
  std::atomic<int> ran{0};
  auto f = sched.async([&] {
    vitte::TaskGroup g;
    for (int i = 0; i < 1000; ++i) g.run([&] { ran++; });
    g.run([] { throw std::runtime_error("stop"); });  // LIFO: the only worker runs it first
    EXPECT_THROW(g.wait(), std::runtime_error);
  });
  f.get();
  EXPECT_LT(ran.load(), 1000);
  // Skipped tasks are counted apart from executed ones: 1000 + 1 run() calls, plus the
  // async task itself.
  const vitte::Counts c = sched.metrics().total;
  EXPECT_EQ(c.skipped, 1000u - static_cast<unsigned>(ran.load()));
  EXPECT_EQ(c.executed, static_cast<std::uint64_t>(ran.load()) + 2u);
}

TEST(TaskGroup, CancelSkipsQueuedTasks) {
  vitte::Scheduler sched(1);
  std::atomic<int> ran{0};
  sched.async([&] {
    vitte::TaskGroup g;
    for (int i = 0; i < 100; ++i) g.run([&] { ran++; });
    g.cancel();
    g.wait();
    EXPECT_TRUE(g.is_cancelled() == false);  // wait() resets the group for reuse
  }).get();
  EXPECT_EQ(ran.load(), 0);
}

// Tasks of a group add more tasks to the same group from whichever worker runs them: the
// owner counts its own spawns and completions in plain fields, other workers through the
// atomic word, and the owner may run tasks thieves spawned. Every task must still be
// waited for exactly.
TEST(TaskGroupStress, RunFromInsideItsOwnTasksMixesTheTwoLedgers) {
  vitte::Scheduler sched(4);
  const int rounds = static_cast<int>(vitte::test::scaled(200));
  for (int r = 0; r < rounds; ++r) {
    std::atomic<int> ran{0};
    sched.async([&] {
      vitte::TaskGroup g;
      std::function<void(int)> grow = [&](int depth) {
        ran++;
        if (depth == 0) return;
        g.run([&grow, depth] { grow(depth - 1); });
        g.run([&grow, depth] { grow(depth - 1); });
      };
      g.run([&] { grow(9); });
      g.wait();
      EXPECT_EQ(ran.load(), (1 << 10) - 1);
    }).get();
  }
}

TEST(TaskGroup, WaitFromAnotherThreadThanItsWorkerIsRefused) {
  vitte::Scheduler sched(2);
  sched.async([] {
    vitte::TaskGroup g;
    g.run([] {});
    bool refused = false;
    std::thread other([&] {
      try {
        g.wait();
      } catch (const vitte::UsageError&) {
        refused = true;
      }
    });
    other.join();
    EXPECT_TRUE(refused);
    g.wait();
  }).get();
}

TEST(ParallelFor, VisitsEveryIndexOnce) {
  vitte::Scheduler sched(3);
  const std::size_t n = vitte::test::scaled(200'000);
  std::vector<std::atomic<unsigned char>> seen(n);
  vitte::parallel_for(sched, 0, n, 64, [&](std::size_t i) { seen[i]++; });
  std::size_t bad = 0;
  for (auto& s : seen) bad += s.load() != 1;
  EXPECT_EQ(bad, 0u);
}

TEST(ParallelFor, RethrowsAndHandlesEmptyRanges) {
  vitte::Scheduler sched(2);
  EXPECT_NO_THROW(vitte::parallel_for(sched, 5, 5, 1, [](std::size_t) { throw 1; }));
  EXPECT_THROW(vitte::parallel_for(sched, 0, 1000, 8,
                                   [](std::size_t i) {
                                     if (i == 777) throw std::out_of_range("777");
                                   }),
               std::out_of_range);
}

// run() from another thread while the owner waits: every completer's last touch of the
// group must come before wait() returns (the group is freed right after). ASan/TSan
// catch a completer that still touches it; release builds catch corrupted counts.
TEST(TaskGroupStress, RunFromAnotherThreadWhileTheOwnerWaits) {
  for (std::size_t workers : {std::size_t{1}, std::size_t{2}, std::size_t{4}}) {
    vitte::Options o;
    o.workers = workers;
    o.placement = vitte::Placement::Unpinned;
    vitte::Scheduler sched(o);
    const std::size_t rounds = vitte::test::scaled(400);
    for (std::size_t r = 0; r < rounds; ++r) {
      auto* g = new vitte::TaskGroup(sched);
      std::atomic<int> ran{0};
      std::atomic<bool> done{false};
      std::thread producer([&] {
        for (int i = 0; i < 20; ++i) {
          g->run([&] { ran.fetch_add(1, std::memory_order_relaxed); });
          std::this_thread::yield();
        }
        done.store(true);
      });
      while (!done.load()) g->wait();
      g->wait();
      producer.join();
      EXPECT_EQ(ran.load(), 20);
      delete g;
    }
  }
}

// The first error stops the loop: a 2^30-iteration loop that throws at i = 0 must not run
// the other billion calls, and the library's own groups must not report the error the
// caller caught as "destroyed without wait()".
TEST(ParallelFor, TheFirstErrorCancelsTheRestOfTheLoop) {
  for (std::size_t workers : {std::size_t{1}, std::size_t{2}}) {
    vitte::Scheduler sched(workers);
    std::atomic<std::uint64_t> calls{0};
    const std::size_t n = std::size_t{1} << 30;
    testing::internal::CaptureStderr();
    try {
      vitte::parallel_for(sched, 0, n, 1, [&](std::size_t i) {
        calls.fetch_add(1, std::memory_order_relaxed);
        if (i == 0) throw std::runtime_error("first");
      });
      ADD_FAILURE() << "parallel_for must rethrow";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "first");
    }
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(err, "") << "an error the caller caught was also reported on stderr";
    // Each worker may finish the piece it is in (at most kStopCheck calls) and every piece
    // already split off is skipped: far below the 2^30 calls of the whole loop.
    EXPECT_LT(calls.load(), std::uint64_t{1} << 16) << "workers: " << workers;
  }
}

TEST(ParallelFor, AnErrorInALargeGrainStopsRunningPieces) {
  vitte::Scheduler sched(2);
  std::atomic<std::uint64_t> calls{0};
  EXPECT_THROW(vitte::parallel_for(sched, 0, std::size_t{1} << 26, std::size_t{1} << 25,
                                   [&](std::size_t i) {
                                     calls.fetch_add(1, std::memory_order_relaxed);
                                     if (i == 0) throw std::runtime_error("half");
                                   }),
               std::runtime_error);
  // The piece that threw stops at once; the other half, if a thief already runs it, stops
  // within kStopCheck calls of the flag instead of running its 2^25 calls.
  EXPECT_LT(calls.load(), std::uint64_t{1} << 20);
}

// Nested waits grow the worker's stack (464 bytes a level in a release build); a larger
// Options::stack_size buys depth that the default 8 MiB stack does not have.
namespace {
void nest(std::size_t depth) {
  if (depth == 0) return;
  vitte::TaskGroup g;
  g.run([depth] { nest(depth - 1); });
  g.wait();
}
}  // namespace

TEST(TaskGroupStress, DeepNestedWaitsFitAConfiguredStack) {
  vitte::Options o;
  o.workers = 1;  // every level nests on the same thread
  o.stack_size = std::size_t{64} << 20;
  vitte::Scheduler sched(o);
  const std::size_t depth = vitte::test::scaled(30'000);  // ~14 MB of stack in release
  EXPECT_NO_THROW(sched.async([depth] { nest(depth); }).get());
}

// One throwing call is one failed task in the metrics, however deep the loop was split.
TEST(ParallelFor, AnErrorIsCountedOnceNotOncePerSplitLevel) {
  vitte::Scheduler sched(2);
  EXPECT_THROW(vitte::parallel_for(sched, 0, std::size_t{1} << 20, 1,
                                   [](std::size_t i) {
                                     if (i == (std::size_t{1} << 20) - 1) throw std::runtime_error("last");
                                   }),
               std::runtime_error);
  EXPECT_EQ(sched.metrics().total.failed, 1u);
}

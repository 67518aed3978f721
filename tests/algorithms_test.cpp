// parallel_reduce / parallel_transform_reduce, parallel_invoke and per_worker<T>.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_support.hpp"
#include "vitte/vitte.hpp"

namespace {

// Values of wildly different magnitudes: their floating-point sum depends on the order.
double wild(std::size_t i) { return std::ldexp(1.0 + static_cast<double>(i % 7) * 0.1, static_cast<int>(i % 61) - 30); }

double reduce_wild(vitte::Scheduler& sched, std::size_t n, std::size_t grain) {
  return vitte::parallel_transform_reduce(sched, 0, n, grain, 0.0, wild, std::plus<>{});
}

}  // namespace

TEST(ParallelReduce, SumsLikeASerialLoop) {
  vitte::Scheduler sched(2);
  const std::size_t n = 100'000;
  const auto sum = vitte::parallel_reduce(
      sched, 0, n, 1000, std::uint64_t{0},
      [](std::size_t b, std::size_t e, std::uint64_t acc) {
        for (std::size_t i = b; i < e; ++i) acc += i;
        return acc;
      },
      std::plus<>{});
  EXPECT_EQ(sum, std::uint64_t{n} * (n - 1) / 2);
  EXPECT_EQ(vitte::parallel_transform_reduce(sched, 5, 5, 1, 42, [](std::size_t) { return 1; }, std::plus<>{}), 42)
      << "an empty range gives the identity";
}

// The split tree depends on the range and the grain only, so a floating-point sum is
// bit-identical whatever the worker count and whoever stole what.
TEST(ParallelReduce, FloatingPointSumIsBitIdenticalOnAnyWorkerCount) {
  const std::size_t n = 200'003;
  double first = 0;
  bool have = false;
  for (std::size_t workers : {1u, 2u, 3u, 4u}) {
    vitte::Scheduler sched(workers);
    for (int run = 0; run < 5; ++run) {
      for (std::size_t grain : {std::size_t{0}}) {
        const double s = reduce_wild(sched, n, grain);
        if (!have) {
          first = s;
          have = true;
        }
        EXPECT_EQ(std::memcmp(&s, &first, sizeof s), 0) << workers << " workers, run " << run << ": " << s << " vs "
                                                        << first;
      }
    }
  }
  // The check above means something: these values' sum depends on the order (another
  // grain, another tree, other bits), and it is still the sum, within rounding.
  vitte::Scheduler sched(2);
  const double other_tree = reduce_wild(sched, n, 997);
  EXPECT_NE(std::memcmp(&other_tree, &first, sizeof first), 0) << "the values do not expose the order";
  double serial = 0;
  for (std::size_t i = 0; i < n; ++i) serial += wild(i);
  EXPECT_NEAR(first, serial, std::abs(serial) * 1e-12);
}

// combine need not be commutative: partial results are joined left to right.
TEST(ParallelReduce, NonCommutativeCombineKeepsTheOrder) {
  vitte::Scheduler sched(2);
  auto cat = [](std::string a, const std::string& b) { return a + b; };
  const std::string s = vitte::parallel_transform_reduce(
      sched, 0, 500, 3, std::string(), [](std::size_t i) { return std::to_string(i) + ","; }, cat);
  std::string expect;
  for (int i = 0; i < 500; ++i) expect += std::to_string(i) + ",";
  EXPECT_EQ(s, expect);
}

TEST(ParallelReduce, FirstErrorIsRethrownFromBodyOrCombine) {
  vitte::Scheduler sched(2);
  EXPECT_THROW(vitte::parallel_transform_reduce(sched, 0, 10'000, 10, 0,
                                                [](std::size_t i) {
                                                  if (i == 7777) throw std::runtime_error("at 7777");
                                                  return 1;
                                                },
                                                std::plus<>{}),
               std::runtime_error);
  EXPECT_THROW(vitte::parallel_transform_reduce(sched, 0, 10'000, 10, 0, [](std::size_t) { return 1; },
                                                [](int a, int b) {
                                                  if (a + b > 5000) throw std::logic_error("combine");
                                                  return a + b;
                                                }),
               std::logic_error);
  // The scheduler is fine afterwards.
  EXPECT_EQ(vitte::parallel_transform_reduce(sched, 0, 1000, 10, 0, [](std::size_t) { return 1; }, std::plus<>{}),
            1000);
}

TEST(ParallelReduce, FromInsideATaskAndWithOptions) {
  vitte::Scheduler sched(2);
  auto f = sched.async([&] {
    return vitte::parallel_transform_reduce(sched, 0, 10'000, 0, 0L, [](std::size_t i) { return static_cast<long>(i); },
                                            std::plus<>{});
  });
  EXPECT_EQ(f.get(), 10'000L * 9'999 / 2);
  EXPECT_EQ(vitte::parallel_transform_reduce(sched, 0, 100, 1, 0, [](std::size_t) { return 2; }, std::plus<>{},
                                             vitte::TaskOptions{.node = 0}),
            200);
  EXPECT_THROW(vitte::parallel_transform_reduce(sched, 0, 100, 1, 0, [](std::size_t) { return 2; }, std::plus<>{},
                                                vitte::TaskOptions{.node = 99}),
               vitte::UsageError);
}

TEST(ParallelInvoke, RunsEveryCallableFromWorkersAndOtherThreads) {
  vitte::Scheduler sched(2);
  std::atomic<int> ran{0};
  vitte::parallel_invoke(sched, [&] { ran += 1; }, [&] { ran += 10; }, [&] { ran += 100; });
  EXPECT_EQ(ran.load(), 111);
  sched.async([&] { vitte::parallel_invoke(sched, [&] { ran += 1000; }, [&] { ran += 10000; }); }).get();
  EXPECT_EQ(ran.load(), 11111);
  vitte::parallel_invoke(sched, [&] { ran += 1; });
  EXPECT_EQ(ran.load(), 11112);
}

TEST(ParallelInvoke, RethrowsAnErrorFromAnyCallable) {
  vitte::Scheduler sched(2);
  std::atomic<int> ran{0};
  EXPECT_THROW(vitte::parallel_invoke(
                   sched, [&] { ++ran; }, [] { throw std::runtime_error("second"); }, [&] { ++ran; }),
               std::runtime_error);
  EXPECT_THROW(sched.async([&] { vitte::parallel_invoke(sched, [&] { ++ran; }, [] { throw std::runtime_error("last"); }); })
                   .get(),
               std::runtime_error);
  sched.join_all();
}

TEST(PerWorker, EachWorkerGetsItsOwnInstance) {
  vitte::Scheduler sched(2);
  vitte::per_worker<std::uint64_t> count(sched);
  vitte::parallel_for(sched, 0, 100'000, 64, [&](std::size_t) { ++count.local(); });
  EXPECT_GE(count.size(), 1u);
  EXPECT_LE(count.size(), sched.num_workers());
  EXPECT_EQ(count.combine(std::plus<>{}), 100'000u);
  std::uint64_t seen = 0;
  count.for_each([&](std::uint64_t& c) { seen += c; });
  EXPECT_EQ(seen, 100'000u);
  count.clear();
  EXPECT_EQ(count.size(), 0u);
  EXPECT_EQ(count.combine(std::plus<>{}), 0u);
}

TEST(PerWorker, MadeLazilyWithTheGivenFactoryAndOnlyOnWorkers) {
  vitte::Scheduler sched(2);
  std::atomic<int> made{0};
  vitte::per_worker<std::vector<int>> buf(sched, [&] {
    ++made;
    return std::vector<int>(3, 7);
  });
  EXPECT_EQ(made.load(), 0);
  EXPECT_THROW(buf.local(), vitte::UsageError) << "the program thread is not a worker";
  sched.async([&] { EXPECT_EQ(buf.local().size(), 3u); }).get();
  EXPECT_EQ(made.load(), 1);
  vitte::Scheduler other(1);
  EXPECT_THROW(other.async([&] { buf.local(); }).get(), vitte::UsageError) << "a worker of another scheduler";
}

// Many reductions at once, from several threads and from nested tasks, on few workers.
TEST(AlgorithmsStress, ConcurrentNestedReductions) {
  vitte::Scheduler sched(2);
  const int rounds = static_cast<int>(vitte::test::scaled(200));
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      for (int r = 0; r < rounds; ++r) {
        const long outer = vitte::parallel_transform_reduce(
            sched, 0, 16, 1, 0L,
            [&](std::size_t i) {
              return vitte::parallel_transform_reduce(sched, 0, 200, 7, 0L,
                                                      [i](std::size_t k) { return static_cast<long>(i + k); },
                                                      std::plus<>{});
            },
            std::plus<>{});
        // sum over i<16, k<200 of (i + k) = 200*120 + 16*19900
        if (outer != 200L * 120 + 16L * 19900) ++wrong;
        vitte::per_worker<long> pw(sched);
        vitte::parallel_invoke(sched, [&] { vitte::parallel_for(sched, 0, 300, 5, [&](std::size_t) { ++pw.local(); }); },
                               [&] { vitte::parallel_for(sched, 0, 300, 5, [&](std::size_t) { ++pw.local(); }); });
        if (pw.combine(std::plus<>{}) != 600) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

// On a topology read from another machine's file the plan names nodes this machine may not
// have: instances are made in plain memory then, not refused.
TEST(PerWorker, WorksOnATopologyOfAnotherMachine) {
  vitte::Options o;
  o.topology = vitte::Topology::from_synthetic("node:2 core:2 pu:1");
  o.workers = 4;
  vitte::Scheduler sched(std::move(o));
  ASSERT_EQ(sched.plan().workers.back().node, 1u) << "the plan must name a node this VM lacks";
  vitte::per_worker<std::uint64_t> count(sched);
  vitte::parallel_for(sched, 0, 10'000, 16, [&](std::size_t) { ++count.local(); });
  EXPECT_EQ(count.combine([](std::uint64_t a, std::uint64_t b) { return a + b; }), 10'000u);
}

// With options every callable runs under them: here a named level's counts see all three.
TEST(ParallelInvoke, RunsEveryCallableUnderItsOptions) {
  vitte::Scheduler sched(2);
  vitte::Group level = sched.make_group({.name = "invoke-level"});
  std::atomic<int> ran{0};
  vitte::parallel_invoke(sched, vitte::TaskOptions{.group = level}, [&] { ++ran; }, [&] { ++ran; }, [&] { ++ran; });
  EXPECT_EQ(ran.load(), 3);
  std::uint64_t counted = 0;
  for (const auto& g : sched.metrics().groups)
    if (g.name == "invoke-level") counted = g.tasks;
  EXPECT_EQ(counted, 3u);
  EXPECT_THROW(vitte::parallel_invoke(sched, vitte::TaskOptions{.node = 7}, [] {}), vitte::UsageError);
}

// The instances do not need the scheduler once made: the object may outlive it (the main
// job keeps one across runs on schedulers it makes and destroys).
TEST(PerWorker, OutlivesItsScheduler) {
  std::unique_ptr<vitte::per_worker<std::vector<int>>> slots;
  {
    vitte::Scheduler sched(2);
    slots = std::make_unique<vitte::per_worker<std::vector<int>>>(sched);
    vitte::parallel_for(sched, 0, 1000, 8, [&](std::size_t i) { slots->local().push_back(static_cast<int>(i)); });
  }
  std::size_t n = 0;
  slots->for_each([&](std::vector<int>& v) { n += v.size(); });
  EXPECT_EQ(n, 1000u);
  slots.reset();  // frees node-local memory without the scheduler
}

// On a worker the last callable runs inline; its error must not replace an earlier one.
TEST(ParallelInvoke, TheFirstErrorWinsOnAWorkerToo) {
  vitte::Scheduler sched(2);
  std::atomic<bool> first_thrown{false};
  std::string got;
  vitte::TaskGroup root(sched);
  root.run([&] {
    try {
      vitte::parallel_invoke(
          sched,
          [&] {
            first_thrown = true;
            throw std::runtime_error("first");
          },
          [&] {
            // The first callable's error is recorded just after it sets the flag; nothing a
            // user can see marks that moment, so this one waits far longer than it takes.
            while (!first_thrown.load()) std::this_thread::yield();
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            throw std::runtime_error("second");
          });
    } catch (const std::runtime_error& e) {
      got = e.what();
    }
  });
  root.wait();
  EXPECT_EQ(got, "first");
}

// A large result keeps its split levels' slots on the heap: a 32 KiB histogram over grain 1
// put 64 slots (2 MiB) in the top level's frame before. (The body's own by-value copies
// still cost stack per nested level: under the sanitizers' larger frames, 128 KiB did not
// fit 8 MiB; the header says so.)
TEST(ParallelReduce, ALargeResultDoesNotFillTheStack) {
  vitte::Scheduler sched(2);
  using Hist = std::array<std::uint64_t, 4096>;  // 32 KiB
  const std::size_t n = vitte::test::scaled(200'000);
  auto h = vitte::parallel_reduce(
      sched, 0, n, 1, Hist{},
      [](std::size_t b, std::size_t e, Hist acc) {
        for (std::size_t i = b; i < e; ++i) ++acc[i % acc.size()];
        return acc;
      },
      [](Hist a, const Hist& b) {
        for (std::size_t i = 0; i < a.size(); ++i) a[i] += b[i];
        return a;
      });
  std::uint64_t total = 0;
  for (auto x : h) total += x;
  EXPECT_EQ(total, n);
}

// Options are checked on empty input too, and per_worker::combine works for a T with no
// default value.
TEST(Algorithms, BadOptionsAreRefusedOnEmptyInputAndCombineNeedsNoDefault) {
  vitte::Scheduler sched(2);
  std::vector<int> none;
  const vitte::TaskOptions bad{.node = 7};
  EXPECT_THROW(vitte::parallel_for(sched, 0, 0, 1, [](std::size_t) {}, bad), vitte::UsageError);
  EXPECT_THROW(vitte::parallel_sort(sched, none.begin(), none.end(), std::less<>{}, bad), vitte::UsageError);
  EXPECT_THROW(vitte::parallel_for_each(sched, none, [](int&) {}, bad), vitte::UsageError);
  EXPECT_THROW((void)vitte::parallel_transform_reduce(sched, 0, 0, 0, 0, [](std::size_t) { return 1; },
                                                      std::plus<>{}, bad),
               vitte::UsageError);
  struct NoDefault {
    explicit NoDefault(int v) : v(v) {}
    int v;
  };
  vitte::per_worker<NoDefault> pw(sched, [] { return NoDefault(1); });
  vitte::parallel_for(sched, 0, 100, 1, [&](std::size_t) { pw.local().v += 0; });
  EXPECT_GE(pw.combine([](NoDefault a, const NoDefault& b) { return NoDefault(a.v + b.v); }).v, 1);
}

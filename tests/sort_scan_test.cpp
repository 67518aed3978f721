// parallel_for_each, parallel_sort / parallel_stable_sort and parallel_inclusive_scan /
// parallel_exclusive_scan: results against the standard library's, determinism, errors,
// cancellation, options, isolation and callers (a worker, another thread, a coroutine).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <forward_list>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "tests/sort_scan_support.hpp"
#include "tests/test_support.hpp"
#include "vitte/vitte.hpp"

using namespace vitte::test;  // NOLINT: the suites' shared inputs

// ---------------------------------------------------------------- parallel_for_each

TEST(ParallelForEach, VisitsEveryElementOnceInEveryContainer) {
  vitte::Scheduler sched(2);
  const std::size_t n = 10'007;
  std::vector<int> v(n, 1);
  vitte::parallel_for_each(sched, v.begin(), v.end(), [](int& x) { x += 1; });
  EXPECT_EQ(std::count(v.begin(), v.end(), 2), static_cast<long>(n));
  vitte::parallel_for_each(sched, v, vitte::Grain{3}, [](int& x) { x *= 5; });
  EXPECT_EQ(std::count(v.begin(), v.end(), 10), static_cast<long>(n));

  std::list<int> l(n, 0);
  vitte::parallel_for_each(sched, l, [](int& x) { ++x; });
  vitte::parallel_for_each(sched, l.begin(), l.end(), vitte::Grain{100}, [](int& x) { ++x; });
  EXPECT_EQ(std::count(l.begin(), l.end(), 2), static_cast<long>(n));

  std::map<int, int> m;
  for (int i = 0; i < 5000; ++i) m[i] = 0;
  vitte::parallel_for_each(sched, m, vitte::Grain{7}, [](std::pair<const int, int>& kv) { kv.second = kv.first * 2; });
  for (const auto& [k, x] : m) ASSERT_EQ(x, 2 * k);

  std::forward_list<int> fl(777, 4);
  std::atomic<long> sum{0};
  const auto& cfl = fl;  // a const range: elements by const reference
  vitte::parallel_for_each(sched, cfl, [&](const int& x) { sum.fetch_add(x, std::memory_order_relaxed); });
  EXPECT_EQ(sum.load(), 777 * 4);
}

TEST(ParallelForEach, EmptyAndOneElement) {
  vitte::Scheduler sched(2);
  std::vector<int> empty;
  std::list<int> lempty;
  int calls = 0;
  vitte::parallel_for_each(sched, empty, [&](int&) { ++calls; });
  vitte::parallel_for_each(sched, lempty, [&](int&) { ++calls; });
  EXPECT_EQ(calls, 0);
  std::vector<int> one{41};
  std::list<int> lone{41};
  vitte::parallel_for_each(sched, one, [](int& x) { ++x; });
  vitte::parallel_for_each(sched, lone.begin(), lone.end(), vitte::Grain{0}, [](int& x) { ++x; });
  EXPECT_EQ(one[0], 42);
  EXPECT_EQ(lone.front(), 42);
}

// The four overloads and parallel_for's integer grain never read one call two ways.
template <class... A>
concept for_each_callable = requires(A&&... a) { vitte::parallel_for_each(std::forward<A>(a)...); };
using IntFn = void (*)(int&);
static_assert(for_each_callable<vitte::Scheduler&, std::vector<int>&, IntFn>);
static_assert(for_each_callable<vitte::Scheduler&, std::vector<int>&, IntFn, vitte::TaskOptions>);
static_assert(for_each_callable<vitte::Scheduler&, std::vector<int>&, vitte::Grain, IntFn>);
static_assert(for_each_callable<vitte::Scheduler&, std::vector<int>::iterator, std::vector<int>::iterator, IntFn>);
static_assert(
    for_each_callable<vitte::Scheduler&, std::list<int>::iterator, std::list<int>::iterator, vitte::Grain, IntFn>);
static_assert(for_each_callable<vitte::Scheduler&, int*, int*, IntFn, vitte::TaskOptions>);
static_assert(!for_each_callable<vitte::Scheduler&, std::vector<int>&, int, IntFn>, "a bare integer is no grain");
static_assert(!for_each_callable<vitte::Scheduler&, std::vector<int>&, IntFn, IntFn>);

TEST(ParallelForEach, FirstErrorIsRethrownAndTheRestSkipped) {
  for (bool forward : {false, true}) {
    // One worker: nothing runs beside the piece that throws, so what the stop skips is exact.
    vitte::Scheduler one(1);
    const std::size_t n = 100'000;
    std::vector<int> v(n);
    std::list<int> l(n);
    std::atomic<std::size_t> calls{0};
    auto fn = [&](int&) {
      if (calls.fetch_add(1, std::memory_order_relaxed) == 0) throw std::runtime_error("first");
    };
    try {
      if (forward)
        vitte::parallel_for_each(one, l, fn);
      else
        vitte::parallel_for_each(one, v, fn);
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "first");
    }
    EXPECT_EQ(calls.load(), 1u) << (forward ? "list" : "vector") << ": the rest of the loop ran";
    // Two workers: rethrown, and not every element was visited.
    vitte::Scheduler two(2);
    calls = 0;
    EXPECT_THROW(forward ? vitte::parallel_for_each(two, l, fn) : vitte::parallel_for_each(two, v, fn),
                 std::runtime_error);
    EXPECT_LT(calls.load(), n);
  }
}

// The automatic grain is one rule for parallel_for, parallel_for_each and parallel_reduce:
// at most 512 leaves, whatever the length (grain 0 used to mean 1, a task per iteration).
TEST(ParallelForEach, AutomaticGrainIsTheRangeRule) {
  EXPECT_EQ(vitte::detail::auto_grain(1), 1u);
  EXPECT_EQ(vitte::detail::auto_grain(512), 1u);
  EXPECT_EQ(vitte::detail::auto_grain(513), 2u);
  EXPECT_EQ(vitte::detail::auto_grain(10'000'000), 19532u);
  vitte::Scheduler sched(2);
  const std::size_t n = 100'000;
  std::vector<std::uint8_t> seen(n, 0);
  auto executed = [&] { return sched.metrics().total.executed; };
  std::uint64_t before = executed();
  vitte::parallel_for(sched, 0, n, 0, [&](std::size_t i) { ++seen[i]; });
  // A halving tree with 512 leaves has 511 splits, each forking one task; plus the root.
  EXPECT_LE(executed() - before, 600u) << "parallel_for grain 0";
  before = executed();
  vitte::parallel_for_each(sched, seen, [](std::uint8_t& x) { ++x; });
  EXPECT_LE(executed() - before, 600u) << "parallel_for_each, automatic grain";
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 2), static_cast<long>(n));
}

// ---------------------------------------------------------------- parallel_sort

TEST(ParallelSort, MatchesStdSortOnManyShapes) {
  vitte::Scheduler sched(2);
  for (std::size_t n : {0u, 1u, 2u, 3u, 100u, 2047u, 2048u, 2049u, 50'000u, 300'001u}) {
    std::vector<std::vector<std::uint64_t>> shapes;
    shapes.push_back(random_u64(n, n));
    shapes.push_back(random_u64(n, n + 1, 3));  // few distinct keys
    shapes.push_back(std::vector<std::uint64_t>(n, 7));  // all equal
    std::vector<std::uint64_t> up(n);
    std::iota(up.begin(), up.end(), 0);
    shapes.push_back(up);
    shapes.push_back(std::vector<std::uint64_t>(up.rbegin(), up.rend()));
    std::vector<std::uint64_t> organ(n);  // organ pipe: up then down
    for (std::size_t i = 0; i < n; ++i) organ[i] = std::min(i, n - i);
    shapes.push_back(organ);
    for (std::size_t s = 0; s < shapes.size(); ++s) {
      std::vector<std::uint64_t> a = shapes[s], b = shapes[s], c = shapes[s];
      std::sort(a.begin(), a.end());
      vitte::parallel_sort(sched, b.begin(), b.end());
      ASSERT_EQ(a, b) << "n " << n << " shape " << s;
      vitte::parallel_sort(sched, c.begin(), c.end(), std::greater<>{});
      std::reverse(c.begin(), c.end());
      ASSERT_EQ(a, c) << "n " << n << " shape " << s << " descending";
    }
  }
}

TEST(ParallelSort, StringsAndStability) {
  vitte::Scheduler sched(2);
  auto s = random_strings(200'000, 5), expect = s;
  std::sort(expect.begin(), expect.end());
  vitte::parallel_sort(sched, s.begin(), s.end());
  EXPECT_EQ(s, expect);
  auto t = random_strings(200'000, 6), texpect = t;
  std::stable_sort(texpect.begin(), texpect.end());
  vitte::parallel_stable_sort(sched, t.begin(), t.end());
  EXPECT_EQ(t, texpect);
  // A comparator that takes its arguments by value: the merges must hand it lvalues (a
  // merge over move iterators would move each compared string into the parameter).
  t = random_strings(200'000, 6);
  vitte::parallel_stable_sort(sched, t.begin(), t.end(), [](std::string a, std::string b) { return a < b; });
  EXPECT_EQ(t, texpect);

  for (std::size_t n : {0u, 1u, 2u, 1000u, 2049u, 100'000u, 600'001u}) {
    for (std::uint32_t keys : {1u, 10u, 100'000u}) {
      auto r = records(n, keys, n + keys), rexpect = r;
      std::stable_sort(rexpect.begin(), rexpect.end(), by_key);
      vitte::parallel_stable_sort(sched, r.begin(), r.end(), by_key);
      ASSERT_EQ(r, rexpect) << n << " records, " << keys << " keys";
    }
  }
}

// Move-only elements: the sorts only swap and move.
TEST(ParallelSort, MoveOnlyElements) {
  vitte::Scheduler sched(2);
  const auto keys = random_u64(50'000, 21, 1000);
  auto expect = keys;
  std::stable_sort(expect.begin(), expect.end());
  auto deref = [](const std::unique_ptr<std::uint64_t>& a, const std::unique_ptr<std::uint64_t>& b) { return *a < *b; };
  for (bool stable : {false, true}) {
    std::vector<std::unique_ptr<std::uint64_t>> v;
    for (std::uint64_t k : keys) v.push_back(std::make_unique<std::uint64_t>(k));
    if (stable)
      vitte::parallel_stable_sort(sched, v.begin(), v.end(), deref);
    else
      vitte::parallel_sort(sched, v.begin(), v.end(), deref);
    for (std::size_t i = 0; i < v.size(); ++i) ASSERT_EQ(*v[i], expect[i]) << i << (stable ? " stable" : "");
  }
}

// The partition tree depends on the input alone: equal keys end in the same order on any
// worker count (an unstable sort, but a reproducible one).
TEST(ParallelSort, UnstableOrderIsTheSameOnAnyWorkerCount) {
  const auto input = records(300'000, 1000, 9);
  std::vector<Rec> first;
  for (unsigned workers : {1u, 2u, 3u, 4u}) {
    vitte::Scheduler sched(workers);
    auto r = input;
    vitte::parallel_sort(sched, r.begin(), r.end(), by_key);
    ASSERT_TRUE(std::is_sorted(r.begin(), r.end(), by_key));
    if (first.empty())
      first = r;
    else
      EXPECT_EQ(r, first) << workers << " workers";
  }
}

TEST(ParallelSort, AThrowingComparatorIsRethrownAndLeavesAPermutation) {
  for (bool stable : {false, true}) {
    vitte::Scheduler one(1);
    auto v = random_u64(200'000, 3), sorted = v;
    std::sort(sorted.begin(), sorted.end());
    std::atomic<long> calls{0}, after{0};
    std::atomic<bool> thrown{false};
    auto comp = [&](std::uint64_t a, std::uint64_t b) {
      if (thrown.load()) after.fetch_add(1);
      if (calls.fetch_add(1) == 500'000) {
        thrown = true;
        throw std::logic_error("comparator");
      }
      return a < b;
    };
    if (stable)
      EXPECT_THROW(vitte::parallel_stable_sort(one, v.begin(), v.end(), comp), std::logic_error);
    else
      EXPECT_THROW(vitte::parallel_sort(one, v.begin(), v.end(), comp), std::logic_error);
    EXPECT_EQ(after.load(), 0) << "on one worker nothing compares after the throw";
    if (!stable) {  // only swaps: still the input's elements
      std::sort(v.begin(), v.end());
      EXPECT_EQ(v, sorted);
    }
    vitte::Scheduler two(2);
    auto w = random_u64(200'000, 4);
    calls = 0;
    thrown = false;
    if (stable)
      EXPECT_THROW(vitte::parallel_stable_sort(two, w.begin(), w.end(), comp), std::logic_error);
    else
      EXPECT_THROW(vitte::parallel_sort(two, w.begin(), w.end(), comp), std::logic_error);
  }
}

// ---------------------------------------------------------------- scans

TEST(ParallelScan, MatchesStdScansAndWorksInPlace) {
  vitte::Scheduler sched(2);
  for (std::size_t n : {0u, 1u, 2u, 4095u, 4096u, 4097u, 16385u, 20481u, 100'000u, 1'000'003u}) {
    const auto x = random_u64(n, n, 1000);
    std::vector<std::uint64_t> expect(n), got(n, 99);
    std::inclusive_scan(x.begin(), x.end(), expect.begin());
    EXPECT_EQ(vitte::parallel_inclusive_scan(sched, x.begin(), x.end(), got.begin(), std::plus<>{}), got.end());
    ASSERT_EQ(got, expect) << n;
    std::exclusive_scan(x.begin(), x.end(), expect.begin(), std::uint64_t{5});
    vitte::parallel_exclusive_scan(sched, x.begin(), x.end(), got.begin(), std::uint64_t{5}, std::plus<>{});
    ASSERT_EQ(got, expect) << n << " exclusive";
    auto in_place = x;
    vitte::parallel_inclusive_scan(sched, in_place.begin(), in_place.end(), in_place.begin(), std::plus<>{});
    std::inclusive_scan(x.begin(), x.end(), expect.begin());
    ASSERT_EQ(in_place, expect) << n << " in place";
    in_place = x;
    vitte::parallel_exclusive_scan(sched, in_place.begin(), in_place.end(), in_place.begin(), std::uint64_t{0},
                                   std::plus<>{});
    std::exclusive_scan(x.begin(), x.end(), expect.begin(), std::uint64_t{0});
    ASSERT_EQ(in_place, expect) << n << " exclusive in place";
  }
}

// An associative op that is not commutative: composing affine maps x -> a x + b (mod 2^64).
TEST(ParallelScan, KeepsTheOperandOrder) {
  struct Affine {
    std::uint64_t a = 1, b = 0;
    bool operator==(const Affine&) const = default;
  };
  auto then = [](const Affine& f, const Affine& g) { return Affine{g.a * f.a, g.a * f.b + g.b}; };  // g after f
  std::mt19937_64 rng(1);
  std::vector<Affine> x(300'000);
  for (auto& f : x) f = {rng() | 1, rng()};
  std::vector<Affine> expect(x.size()), got(x.size());
  std::inclusive_scan(x.begin(), x.end(), expect.begin(), then);
  vitte::Scheduler sched(3);
  vitte::parallel_inclusive_scan(sched, x.begin(), x.end(), got.begin(), then);
  EXPECT_TRUE(got == expect);
  std::exclusive_scan(x.begin(), x.end(), expect.begin(), Affine{3, 4}, then);
  vitte::parallel_exclusive_scan(sched, x.begin(), x.end(), got.begin(), Affine{3, 4}, then);
  EXPECT_TRUE(got == expect);
}

// 8 MB of doubles: two chunks of passes on 1 and 2 workers, two on 3 (6 MiB), one on 4
// (8 MiB), so the chunking, which follows the worker count, is shown to change no bit.
TEST(ParallelScan, FloatingPointScanIsBitIdenticalOnAnyWorkerCount) {
  const std::size_t n = 1'000'003;
  std::vector<double> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = wild(i);
  std::vector<double> first, firstx;
  for (unsigned workers : {1u, 2u, 3u, 4u}) {
    vitte::Scheduler sched(workers);
    for (int run = 0; run < 3; ++run) {
      std::vector<double> out(n), outx(n);
      vitte::parallel_inclusive_scan(sched, x.begin(), x.end(), out.begin(), std::plus<>{});
      vitte::parallel_exclusive_scan(sched, x.begin(), x.end(), outx.begin(), 0.5, std::plus<>{});
      if (first.empty()) {
        first = out;
        firstx = outx;
      }
      ASSERT_EQ(std::memcmp(out.data(), first.data(), n * sizeof(double)), 0) << workers << " workers, run " << run;
      ASSERT_EQ(std::memcmp(outx.data(), firstx.data(), n * sizeof(double)), 0) << workers << " workers, run " << run;
    }
  }
  // The check above means something: a serial scan groups otherwise and gets other bits,
  // yet the same sums within rounding.
  std::vector<double> serial(n);
  std::inclusive_scan(x.begin(), x.end(), serial.begin());
  EXPECT_NE(std::memcmp(serial.data(), first.data(), n * sizeof(double)), 0) << "the values do not expose the order";
  for (std::size_t i = 0; i < n; i += 9973) EXPECT_NEAR(first[i], serial[i], std::abs(serial[i]) * 1e-12) << i;
}

TEST(ParallelScan, AThrowingOpIsRethrown) {
  vitte::Scheduler one(1), two(2);
  std::vector<int> x(500'000, 1), out(x.size());
  std::atomic<long> calls{0}, after{0};
  std::atomic<bool> thrown{false};
  auto op = [&](int a, int b) {
    if (thrown.load()) after.fetch_add(1);
    if (calls.fetch_add(1) == 20'000) {
      thrown = true;
      throw std::runtime_error("op");
    }
    return a + b;
  };
  EXPECT_THROW(vitte::parallel_inclusive_scan(one, x.begin(), x.end(), out.begin(), op), std::runtime_error);
  EXPECT_EQ(after.load(), 0) << "on one worker nothing runs after the throw";
  calls = 0;
  thrown = false;
  EXPECT_THROW(vitte::parallel_exclusive_scan(two, x.begin(), x.end(), out.begin(), 0, op), std::runtime_error);
  // And the scheduler is fine afterwards.
  vitte::parallel_inclusive_scan(two, x.begin(), x.end(), out.begin(), std::plus<>{});
  EXPECT_EQ(out.back(), 500'000);
}


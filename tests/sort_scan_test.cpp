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

#include "tests/test_support.hpp"
#include "vitte/vitte.hpp"

namespace {

std::vector<std::uint64_t> random_u64(std::size_t n, std::uint64_t seed, std::uint64_t mod = 0) {
  std::mt19937_64 rng(seed);
  std::vector<std::uint64_t> v(n);
  for (auto& x : v) x = mod == 0 ? rng() : rng() % mod;
  return v;
}

std::vector<std::string> random_strings(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::string> v(n);
  for (auto& s : v) {
    s.resize(1 + rng() % 24);
    for (char& c : s) c = static_cast<char>('a' + rng() % 4);  // a small alphabet: many shared prefixes
  }
  return v;
}

// A record sorted by key alone; seq tells equal keys apart, so that stability shows.
struct Rec {
  std::uint32_t key = 0, seq = 0;
  bool operator==(const Rec&) const = default;
};
constexpr auto by_key = [](const Rec& a, const Rec& b) { return a.key < b.key; };

std::vector<Rec> records(std::size_t n, std::uint32_t keys, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<Rec> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = {static_cast<std::uint32_t>(rng() % keys), static_cast<std::uint32_t>(i)};
  return v;
}

// Values of very different magnitudes: their floating-point sum depends on the grouping.
double wild(std::size_t i) { return std::ldexp(1.0 + static_cast<double>(i % 7) * 0.1, static_cast<int>(i % 61) - 30); }

std::uint64_t named_runs(vitte::Scheduler& s, const std::string& name) {
  std::uint64_t runs = 0;
  for (const vitte::GroupMetrics& g : s.metrics().groups)
    for (const vitte::GroupMetrics::Named& n : g.named)
      if (n.name == name) runs += n.runs;
  return runs;
}

[[noreturn]] void called_off() { throw vitte::Cancelled("told to stop"); }

}  // namespace

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

// ---------------------------------------------------------------- every algorithm

namespace {

// Each algorithm once over a fresh input, with `fn_hook` called from its callback (fn,
// comp or op): a test's way to throw or count. Returns nothing; the caller checks.
template <class Hook>
void each_algorithm(vitte::Scheduler& s, const vitte::TaskOptions& opts, const Hook& hook,
                    const std::function<void(const char*, const std::function<void()>&)>& run) {
  auto data = std::make_shared<std::vector<std::uint64_t>>(random_u64(100'000, 77));
  run("for_each", [&] { vitte::parallel_for_each(s, *data, [&](std::uint64_t& x) { hook(); ++x; }, opts); });
  run("sort", [&] {
    vitte::parallel_sort(s, data->begin(), data->end(), [&](auto a, auto b) { hook(); return a < b; }, opts);
  });
  run("stable_sort", [&] {
    vitte::parallel_stable_sort(s, data->begin(), data->end(), [&](auto a, auto b) { hook(); return a > b; }, opts);
  });
  run("scan", [&] {
    vitte::parallel_inclusive_scan(s, data->begin(), data->end(), data->begin(),
                                   [&](auto a, auto b) { hook(); return a ^ b; }, opts);
  });
  run("exclusive_scan", [&] {
    vitte::parallel_exclusive_scan(s, data->begin(), data->end(), data->begin(), std::uint64_t{1},
                                   [&](auto a, auto b) { hook(); return a + b; }, opts);
  });
}

}  // namespace

// A callback that throws vitte::Cancelled (its stop token was triggered) ends the
// algorithm with Cancelled, counted as cancelled, not failed.
TEST(SortScanAlgorithms, CancellationFromAStopTokenIsRethrownAndNotAFailure) {
  vitte::Scheduler s(2);
  std::stop_source stop;
  std::atomic<long> calls{0};
  std::stop_token token;
  auto hook = [&] {
    if (calls.fetch_add(1, std::memory_order_relaxed) == 1000) stop.request_stop();
    if (token.stop_requested()) called_off();
  };
  int cancelled = 0;
  each_algorithm(s, {}, hook, [&](const char* what, const std::function<void()>& call) {
    calls = 0;
    stop = std::stop_source();
    token = stop.get_token();
    try {
      call();
      ADD_FAILURE() << what << ": not cancelled";
    } catch (const vitte::Cancelled&) {
      ++cancelled;
    }
  });
  EXPECT_EQ(cancelled, 5);
  s.join_all();
  EXPECT_EQ(s.metrics().total.failed, 0u);
  EXPECT_GE(s.metrics().total.cancelled, 5u);
}

// Called as a task of a group that was cancelled first, the algorithm does not run.
TEST(SortScanAlgorithms, ACancelledSurroundingGroupSkipsIt) {
  vitte::Scheduler s(2);
  std::vector<std::uint64_t> v = random_u64(50'000, 1), before = v;
  vitte::TaskGroup g(s);
  g.cancel();
  g.run([&] { vitte::parallel_sort(s, v.begin(), v.end()); });
  g.wait();
  EXPECT_EQ(v, before);
}

TEST(SortScanAlgorithms, OptionsNameEveryTaskAndAreChecked) {
  vitte::Scheduler s(2);
  vitte::Group pass = s.make_group({.name = "pass"});
  std::atomic<long> calls{0};
  auto hook = [&] { calls.fetch_add(1, std::memory_order_relaxed); };
  each_algorithm(s, {.name = "algo"}, hook, [&](const char* what, const std::function<void()>& call) {
    const std::uint64_t runs = named_runs(s, "algo");
    call();
    EXPECT_GT(named_runs(s, "algo"), runs) << what << ": no run counted under the name";
  });
  each_algorithm(s, {.group = pass}, hook, [&](const char* what, const std::function<void()>& call) {
    auto tasks = [&] {
      for (const vitte::GroupMetrics& g : s.metrics().groups)
        if (g.name == "pass") return g.tasks;
      return std::uint64_t{0};
    };
    const std::uint64_t before = tasks();
    call();
    EXPECT_GT(tasks(), before) << what << ": the group saw none of the work";
  });
  // A priority at a Priority level applies; at the arena (Fifo) it would not: refused.
  vitte::Group urgent = s.make_group({.name = "urgent", .policy = vitte::Policy::Priority});
  each_algorithm(s, {.group = urgent, .priority = vitte::Priority::High}, hook,
                 [&](const char*, const std::function<void()>& call) { call(); });
  const vitte::TaskOptions refused[] = {{.node = 99}, {.priority = vitte::Priority::High}};
  for (const vitte::TaskOptions& bad : refused)
    each_algorithm(s, bad, hook, [&](const char* what, const std::function<void()>& call) {
      EXPECT_THROW(call(), vitte::UsageError) << what;
    });
  EXPECT_GT(calls.load(), 0);
}

TEST(SortScanAlgorithms, FromAWorkerAnotherThreadAndACoroutine) {
  vitte::Scheduler s(2);
  const auto input = random_u64(200'000, 8);
  auto expect = input;
  std::sort(expect.begin(), expect.end());
  std::vector<std::uint64_t> expect_scan(input.size());
  std::exclusive_scan(input.begin(), input.end(), expect_scan.begin(), std::uint64_t{0});
  auto check = [&] {
    auto v = input;
    vitte::parallel_sort(s, v.begin(), v.end());
    const bool sorted = v == expect;
    vitte::parallel_stable_sort(s, v.begin(), v.end(), std::greater<>{});
    const bool reversed = std::equal(v.begin(), v.end(), expect.rbegin());
    v = input;
    vitte::parallel_exclusive_scan(s, v.begin(), v.end(), v.begin(), std::uint64_t{0}, std::plus<>{});
    vitte::parallel_for_each(s, v, [](std::uint64_t& x) { x = ~x; });
    vitte::parallel_for_each(s, v.begin(), v.end(), vitte::Grain{10}, [](std::uint64_t& x) { x = ~x; });
    return sorted && reversed && v == expect_scan;
  };
  EXPECT_TRUE(check()) << "from the program thread";
  std::thread other([&] { EXPECT_TRUE(check()) << "from another thread"; });
  other.join();
  EXPECT_TRUE(s.async(check).get()) << "from a worker";
  auto co = [&]() -> vitte::task<bool> { co_return check(); };
  EXPECT_TRUE(vitte::sync_wait(s, co())) << "from a coroutine";
}

// Under a deterministic scheduler (deterministic.hpp) too: the same groups, other turns.
TEST(SortScanAlgorithms, RunUnderADeterministicScheduler) {
  vitte::Options o;
  o.topology = vitte::Topology::from_synthetic("node:1 core:2 pu:1");
  o.workers = 2;
  o.deterministic = vitte::DeterministicOptions{.seed = 5};
  vitte::Scheduler s(o);
  auto v = random_u64(30'000, 2), expect = v;
  std::sort(expect.begin(), expect.end());
  auto w = v;
  vitte::parallel_sort(s, v.begin(), v.end());
  EXPECT_EQ(v, expect);
  vitte::parallel_stable_sort(s, w.begin(), w.end());
  EXPECT_EQ(w, expect);
  std::vector<std::uint64_t> scan(v.size()), scan_expect(v.size());
  std::inclusive_scan(v.begin(), v.end(), scan_expect.begin());
  vitte::parallel_inclusive_scan(s, v.begin(), v.end(), scan.begin(), std::plus<>{});
  EXPECT_EQ(scan, scan_expect);
  std::list<int> l(5000, 1);
  vitte::parallel_for_each(s, l, vitte::Grain{64}, [](int& x) { x = 3; });
  EXPECT_EQ(std::count(l.begin(), l.end(), 3), 5000);
}

namespace {

// One worker; unrelated tasks wait in its deque; the algorithm runs with a group's options,
// so its own tasks queue in the node's ReadyQueue, not that deque, and its waits have to
// look past the deque. Returns how many unrelated tasks ran inside the algorithm's call.
template <class Algo>
int foreign_in_region(bool isolated, const Algo& algo) {
  vitte::Options o;
  o.workers = 1;
  o.placement = vitte::Placement::Unpinned;
  vitte::Scheduler s(o);
  vitte::Group grp = s.make_group({.name = "region"});
  std::atomic<bool> inside{false};
  std::atomic<int> foreign{0};
  s.async([&] {
     for (int i = 0; i < 8; ++i)
       vitte::spawn([&] {
         if (inside.load()) foreign.fetch_add(1);
       });
     auto body = [&] {
       inside = true;
       algo(s, vitte::TaskOptions{.group = grp});
       inside = false;
     };
     if (isolated)
       vitte::isolate(body);
     else
       body();
   }).get();
  s.join_all();
  return foreign.load();
}

}  // namespace

TEST(SortScanAlgorithms, InsideIsolateTheyRunNoForeignTask) {
  const auto input = random_u64(100'000, 12);
  std::vector<std::function<void(vitte::Scheduler&, const vitte::TaskOptions&)>> algos = {
      [&](vitte::Scheduler& s, const vitte::TaskOptions& o) {
        auto v = input;
        vitte::parallel_for_each(s, v, [](std::uint64_t& x) { ++x; }, o);
      },
      [&](vitte::Scheduler& s, const vitte::TaskOptions& o) {
        std::list<std::uint64_t> l(input.begin(), input.begin() + 5000);
        vitte::parallel_for_each(s, l, vitte::Grain{16}, [](std::uint64_t& x) { ++x; }, o);
      },
      [&](vitte::Scheduler& s, const vitte::TaskOptions& o) {
        auto v = input;
        vitte::parallel_sort(s, v.begin(), v.end(), std::less<>{}, o);
        EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
      },
      [&](vitte::Scheduler& s, const vitte::TaskOptions& o) {
        auto v = input;
        vitte::parallel_stable_sort(s, v.begin(), v.end(), std::less<>{}, o);
        EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
      },
      [&](vitte::Scheduler& s, const vitte::TaskOptions& o) {
        auto v = input;
        vitte::parallel_inclusive_scan(s, v.begin(), v.end(), v.begin(), std::plus<>{}, o);
      },
  };
  for (std::size_t a = 0; a < algos.size(); ++a) {
    EXPECT_EQ(foreign_in_region(true, algos[a]), 0) << "algorithm " << a;
    // The control: without the region the hazard is real, or the line above proves nothing.
    EXPECT_GT(foreign_in_region(false, algos[a]), 0) << "algorithm " << a;
  }
}

// ---------------------------------------------------------------- stress

// Many sorts and scans at once, from several threads and nested in each other's callbacks.
TEST(SortScanStress, ConcurrentNestedSortsAndScans) {
  vitte::Scheduler sched(2);
  const int rounds = static_cast<int>(vitte::test::scaled(40));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < rounds; ++r) {
        const std::size_t n = 1000 + static_cast<std::size_t>((t * 7919 + r * 104'729) % 60'000);
        auto v = random_u64(n, static_cast<std::uint64_t>(t * 1000 + r), r % 2 ? 50 : 0), expect = v;
        std::sort(expect.begin(), expect.end());
        if (r % 3 == 0)
          vitte::parallel_stable_sort(sched, v.begin(), v.end());
        else
          vitte::parallel_sort(sched, v.begin(), v.end());
        if (v != expect) ++wrong;
        // Nested: a for_each over a list whose elements each run a small scan.
        std::list<std::vector<std::uint64_t>> rows(8, std::vector<std::uint64_t>(20'000, 1));
        vitte::parallel_for_each(sched, rows, vitte::Grain{1}, [&](std::vector<std::uint64_t>& row) {
          vitte::parallel_inclusive_scan(sched, row.begin(), row.end(), row.begin(), std::plus<>{});
          vitte::parallel_sort(sched, row.begin(), row.end(), std::greater<>{});
        });
        for (const auto& row : rows)
          if (row.front() != 20'000 || row.back() != 1) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

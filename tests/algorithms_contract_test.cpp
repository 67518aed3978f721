// What every one of parallel_for_each, parallel_sort, parallel_stable_sort and the scans
// promises alike: cancellation, options, callers (a worker, another thread, a coroutine),
// a deterministic scheduler, isolation; and a stress run of them nested.
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

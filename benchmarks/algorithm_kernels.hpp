// Parallel-algorithm kernels (issue #21): vitte's algorithms against their oneTBB twins, one
// kernel name per algorithm, one row per runtime and worker count, every result checked.
//
//   reduce_fine      sum of 2^22 doubles, leaves of 256: vitte::parallel_reduce (grain 256)
//                    vs tbb::parallel_reduce (blocked_range grain 256, simple_partitioner);
//                    plus vitte_perworker: parallel_for over the same 256-element blocks
//                    adding into a per_worker<double>, then combine. That is the plain,
//                    non-deterministic reduction, so vitte / vitte_perworker is the price of
//                    determinism (the bar: within 1.2x).
//   reduce_auto      the same sum with each runtime's default split: vitte grain 0 (at most
//                    512 leaves), tbb blocked_range grain 1 with auto_partitioner.
//   det_reduce       vitte::parallel_reduce vs tbb::parallel_deterministic_reduce, both with
//                    grain 256 and simple splitting: the same halving tree.
//   ets              2^22 items, grain 1024, each item adds f(i) to its thread's counter:
//                    vitte::per_worker<uint64_t> vs tbb::enumerable_thread_specific<uint64_t>.
//   sort, scan       vitte::parallel_sort / parallel_inclusive_scan vs oneTBB's and std's
//                    (see their section below).
//
// Checks: a deterministic reduction must equal, bit for bit, a serial fold over the same
// halving tree (serial_tree_fold); oneTBB's plain parallel_reduce and the per-worker sums
// fold in a schedule-dependent order, so they are compared with a relative tolerance of
// 1e-9. Integer results are exact. Timing: manual, around the algorithm call alone (the
// input is made once per process, before the first row runs).
#pragma once

#include <benchmark/benchmark.h>
#include <time.h>
#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>
#include <tbb/parallel_scan.h>
#include <tbb/parallel_sort.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "runtimes.hpp"

namespace bench {

// The halving tree vitte::parallel_reduce and tbb::parallel_deterministic_reduce (with a
// blocked_range and simple_partitioner) both use: split at b + (e - b) / 2 while a piece
// has more than `grain` iterations, fold each leaf from the identity, join left to right.
template <class T, class Leaf, class Combine>
T serial_tree_fold(std::size_t b, std::size_t e, std::size_t grain, const T& identity, const Leaf& leaf,
                   const Combine& combine) {
  if (e - b <= grain) return leaf(b, e, T(identity));
  const std::size_t mid = b + (e - b) / 2;
  return combine(serial_tree_fold(b, mid, grain, identity, leaf, combine),
                 serial_tree_fold(mid, e, grain, identity, leaf, combine));
}

namespace algo {

using Clock = std::chrono::steady_clock;
inline constexpr std::size_t kN = std::size_t{1} << 22;
inline constexpr std::size_t kFine = 256;        // reduce_fine, det_reduce
inline constexpr std::size_t kEtsGrain = 1024;   // ets
// vitte's grain 0: ceil(n / 512) (parallel_reduce.hpp), so its answer is a known tree too.
inline constexpr std::size_t kAutoGrain = (kN + 511) / 512;

inline std::uint64_t splitmix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
// The ets kernel's per-item work: a few nanoseconds, so the counter update's cost shows.
inline std::uint64_t ets_item(std::size_t i) noexcept { return splitmix(i) & 0xffff; }

// The leaf every reduction runs: a left-to-right sum. Not inlined, so every variant runs
// the same machine code: inlined into the per_worker lambda, GCC kept the running sum on
// the stack (a store and a load per two adds, perf annotate), which made that variant 2x
// slower for reasons of code generation, not of the runtime.
[[gnu::noinline]] inline double fold(const double* x, std::size_t b, std::size_t e, double acc) noexcept {
  for (std::size_t i = b; i < e; ++i) acc += x[i];
  return acc;
}

// The input and the serial answers, made on first use (not at registration).
struct Input {
  std::vector<double> x;
  double fine = 0, autog = 0;  // serial_tree_fold at kFine and kAutoGrain
  std::uint64_t ets = 0;
};
inline const Input& input() {
  static const Input in = [] {
    Input r;
    r.x.resize(kN);
    for (std::size_t i = 0; i < kN; ++i) r.x[i] = static_cast<double>(splitmix(i) >> 11) * 0x1p-53;
    const double* x = r.x.data();
    auto leaf = [x](std::size_t b, std::size_t e, double acc) { return fold(x, b, e, acc); };
    r.fine = serial_tree_fold(0, kN, kFine, 0.0, leaf, std::plus<>{});
    r.autog = serial_tree_fold(0, kN, kAutoGrain, 0.0, leaf, std::plus<>{});
    for (std::size_t i = 0; i < kN; ++i) r.ets += ets_item(i);
    return r;
  }();
  return in;
}

inline std::string exact(double got, double want) {
  if (std::bit_cast<std::uint64_t>(got) == std::bit_cast<std::uint64_t>(want)) return {};
  char buf[128];
  std::snprintf(buf, sizeof buf, "not bit-identical to the serial tree fold: got %.17g, want %.17g", got, want);
  return buf;
}
inline std::string near(double got, double want) {
  if (std::fabs(got - want) <= 1e-9 * std::fabs(want)) return {};
  char buf[128];
  std::snprintf(buf, sizeof buf, "off by more than 1e-9 (relative): got %.17g, want %.17g", got, want);
  return buf;
}
inline std::string same(std::uint64_t got, std::uint64_t want) {
  return got == want ? std::string() : "got " + std::to_string(got) + ", want " + std::to_string(want);
}

// The process's CPU time (all its threads), in seconds. On a shared machine the wall time
// of a row swings with the other jobs; the CPU time it used does far less, so every row
// also reports cpu_ms, its CPU time per iteration (idle workers' spinning included).
inline double process_cpu_s() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}
inline void add_cpu_counter(benchmark::State& st, double cpu_s) {
  st.counters["cpu_ms"] = benchmark::Counter(cpu_s * 1e3, benchmark::Counter::kAvgIterations);
}

// Times run() alone; check(result) returns why it is wrong, empty when right.
template <class Run, class Check>
void timed(benchmark::State& st, std::atomic<bool>& wrong, Run run, Check check) {
  // Untimed: the input, the scheduler or arena (made on first use) and a first, checked run.
  if (const std::string why = check(run()); !why.empty()) {
    wrong = true;
    st.SkipWithError(("wrong result: " + why).c_str());
    return;
  }
  double cpu = 0;
  for (auto _ : st) {
    const auto t0 = Clock::now();
    const double c0 = process_cpu_s();
    const auto got = run();
    cpu += process_cpu_s() - c0;
    st.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
    if (const std::string why = check(got); !why.empty()) {
      wrong = true;
      st.SkipWithError(("wrong result: " + why).c_str());
      break;
    }
  }
  add_cpu_counter(st, cpu);
  st.counters["items"] = static_cast<double>(kN);
  st.counters["per_item"] = benchmark::Counter(static_cast<double>(kN), benchmark::Counter::kIsIterationInvariantRate |
                                                                          benchmark::Counter::kInvert);
}

// ---- the runs ------------------------------------------------------------------------------
inline double vitte_sum(int threads, std::size_t grain) {
  const double* x = input().x.data();
  return vitte::parallel_reduce(
      vitte_scheduler(threads), 0, kN, grain, 0.0,
      [x](std::size_t b, std::size_t e, double acc) { return fold(x, b, e, acc); }, std::plus<>{});
}

inline double vitte_perworker_sum(int threads) {
  vitte::Scheduler& s = vitte_scheduler(threads);
  const double* x = input().x.data();
  vitte::per_worker<double> acc(s);
  // Blocks of kFine, one parallel_for index each: the same leaves as parallel_reduce's.
  vitte::parallel_for(s, 0, kN / kFine, 1, [&](std::size_t blk) {
    acc.local() += fold(x, blk * kFine, (blk + 1) * kFine, 0.0);
  });
  return acc.combine(std::plus<>{});
}

template <class Partitioner>
double tbb_sum(int threads, std::size_t grain) {
  const double* x = input().x.data();
  double out = 0;
  tbb_arena(threads).execute([&] {
    out = tbb::parallel_reduce(
        tbb::blocked_range<std::size_t>(0, kN, grain), 0.0,
        [x](const tbb::blocked_range<std::size_t>& r, double acc) { return fold(x, r.begin(), r.end(), acc); },
        std::plus<>{}, Partitioner());
  });
  return out;
}

inline double tbb_det_sum(int threads) {
  const double* x = input().x.data();
  double out = 0;
  tbb_arena(threads).execute([&] {
    out = tbb::parallel_deterministic_reduce(
        tbb::blocked_range<std::size_t>(0, kN, kFine), 0.0,
        [x](const tbb::blocked_range<std::size_t>& r, double acc) { return fold(x, r.begin(), r.end(), acc); },
        std::plus<>{}, tbb::simple_partitioner());
  });
  return out;
}

inline std::uint64_t vitte_ets(int threads) {
  vitte::Scheduler& s = vitte_scheduler(threads);
  vitte::per_worker<std::uint64_t> count(s);
  vitte::parallel_for(s, 0, kN, kEtsGrain, [&](std::size_t i) { count.local() += ets_item(i); });
  return count.combine(std::plus<>{});
}

inline std::uint64_t tbb_ets(int threads) {
  std::uint64_t out = 0;
  tbb_arena(threads).execute([&] {
    tbb::enumerable_thread_specific<std::uint64_t> count(0);
    // local() per item, as vitte's parallel_for body (which sees one index) must do.
    tbb::parallel_for(
        tbb::blocked_range<std::size_t>(0, kN, kEtsGrain),
        [&](const tbb::blocked_range<std::size_t>& r) {
          for (std::size_t i = r.begin(); i < r.end(); ++i) count.local() += ets_item(i);
        },
        tbb::simple_partitioner());
    out = count.combine(std::plus<>{});
  });
  return out;
}

// ---- registration: one function per algorithm ----------------------------------------------
// Each registers KERNEL/RUNTIME/threads:N rows for every worker count (the pipeline's rows:
// pipeline_kernels.hpp).
inline void add(const std::string& name, std::function<void(benchmark::State&)> fn) {
  benchmark::RegisterBenchmark(name.c_str(), [fn](benchmark::State& st) { fn(st); })
      ->Unit(benchmark::kMillisecond)
      ->UseManualTime();
}

inline void register_reduce_kernels(const std::vector<int>& thread_counts, std::atomic<bool>& wrong) {
  std::atomic<bool>* w = &wrong;
  for (int t : thread_counts) {
    const std::string n = "/threads:" + std::to_string(t);
    add("reduce_fine/vitte" + n, [t, w](benchmark::State& st) {
      timed(st, *w, [t] { return vitte_sum(t, kFine); }, [](double g) { return exact(g, input().fine); });
    });
    add("reduce_fine/vitte_perworker" + n, [t, w](benchmark::State& st) {
      timed(st, *w, [t] { return vitte_perworker_sum(t); }, [](double g) { return near(g, input().fine); });
    });
    add("reduce_fine/tbb" + n, [t, w](benchmark::State& st) {
      timed(st, *w, [t] { return tbb_sum<tbb::simple_partitioner>(t, kFine); },
            [](double g) { return near(g, input().fine); });
    });
    add("reduce_auto/vitte" + n, [t, w](benchmark::State& st) {
      timed(st, *w, [t] { return vitte_sum(t, 0); }, [](double g) { return exact(g, input().autog); });
    });
    add("reduce_auto/tbb" + n, [t, w](benchmark::State& st) {
      timed(st, *w, [t] { return tbb_sum<tbb::auto_partitioner>(t, 1); },
            [](double g) { return near(g, input().autog); });
    });
  }
}

inline void register_det_reduce_kernels(const std::vector<int>& thread_counts, std::atomic<bool>& wrong) {
  std::atomic<bool>* w = &wrong;
  for (int t : thread_counts) {
    const std::string n = "/threads:" + std::to_string(t);
    add("det_reduce/vitte" + n, [t, w](benchmark::State& st) {
      timed(st, *w, [t] { return vitte_sum(t, kFine); }, [](double g) { return exact(g, input().fine); });
    });
    add("det_reduce/tbb" + n, [t, w](benchmark::State& st) {
      timed(st, *w, [t] { return tbb_det_sum(t); }, [](double g) { return exact(g, input().fine); });
    });
  }
}

inline void register_ets_kernels(const std::vector<int>& thread_counts, std::atomic<bool>& wrong) {
  std::atomic<bool>* w = &wrong;
  for (int t : thread_counts) {
    const std::string n = "/threads:" + std::to_string(t);
    add("ets/vitte" + n, [t, w](benchmark::State& st) {
      timed(st, *w, [t] { return vitte_ets(t); }, [](std::uint64_t g) { return same(g, input().ets); });
    });
    add("ets/tbb" + n, [t, w](benchmark::State& st) {
      timed(st, *w, [t] { return tbb_ets(t); }, [](std::uint64_t g) { return same(g, input().ets); });
    });
  }
}

// ---- sort and scan (include/vitte/parallel_sort.hpp, parallel_scan.hpp) ---------------------
//   sort   10M random uint64 (fixed seed): vitte::parallel_sort vs tbb::parallel_sort, and
//          std::sort at 1 thread; checked sorted and the same multiset (order-free checksums).
//          The unsorted copy is made before the timed region of each iteration.
//   scan   inclusive prefix sum of 2^22 uint64 (wrapping +, associative, so every grouping
//          gives the serial answer exactly): vitte::parallel_inclusive_scan vs tbb::parallel_scan
//          (auto_partitioner) and std::inclusive_scan at 1 thread; checked element by element.
inline constexpr std::size_t kSortN = 10'000'000;
struct SortInput {
  std::vector<std::uint64_t> x;
  std::uint64_t sum = 0, mixed = 0;  // a multiset's fingerprint: the order does not enter
};
inline const SortInput& sort_input() {
  static const SortInput in = [] {
    SortInput r;
    r.x.resize(kSortN);
    for (std::size_t i = 0; i < kSortN; ++i) r.x[i] = splitmix(i ^ 0x5eedull);
    for (std::uint64_t v : r.x) r.sum += v, r.mixed += splitmix(v);
    return r;
  }();
  return in;
}
inline std::string sorted_same(const std::vector<std::uint64_t>& v) {
  if (!std::is_sorted(v.begin(), v.end())) return "not sorted";
  std::uint64_t sum = 0, mixed = 0;
  for (std::uint64_t x : v) sum += x, mixed += splitmix(x);
  return sum == sort_input().sum && mixed == sort_input().mixed ? std::string() : "not the input's elements";
}

enum class SortBy { Vitte, Tbb, Std };
inline void sort_bench(benchmark::State& st, SortBy by, int threads, std::atomic<bool>* wrong) {
  const SortInput& in = sort_input();
  std::vector<std::uint64_t> v(kSortN);
  double cpu = 0;
  for (auto _ : st) {
    std::copy(in.x.begin(), in.x.end(), v.begin());  // untimed: before t0
    const auto t0 = Clock::now();
    const double c0 = process_cpu_s();
    switch (by) {
      case SortBy::Vitte: vitte::parallel_sort(vitte_scheduler(threads), v.begin(), v.end()); break;
      case SortBy::Tbb: tbb_arena(threads).execute([&] { tbb::parallel_sort(v.begin(), v.end()); }); break;
      case SortBy::Std: std::sort(v.begin(), v.end()); break;
    }
    cpu += process_cpu_s() - c0;
    st.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
    if (const std::string why = sorted_same(v); !why.empty()) {
      *wrong = true;
      st.SkipWithError(("wrong result: " + why).c_str());
      break;
    }
  }
  add_cpu_counter(st, cpu);
  st.counters["items"] = static_cast<double>(kSortN);
}

inline const std::vector<std::uint64_t>& scan_want() {
  static const std::vector<std::uint64_t> want = [] {
    const Input& in = input();
    std::vector<std::uint64_t> x(kN), out(kN);
    for (std::size_t i = 0; i < kN; ++i) x[i] = std::bit_cast<std::uint64_t>(in.x[i]);
    std::inclusive_scan(x.begin(), x.end(), out.begin());
    return out;
  }();
  return want;
}

inline void scan_bench(benchmark::State& st, SortBy by, int threads, std::atomic<bool>* wrong) {
  std::vector<std::uint64_t> x(kN), out(kN);
  for (std::size_t i = 0; i < kN; ++i) x[i] = std::bit_cast<std::uint64_t>(input().x[i]);
  const std::vector<std::uint64_t>& want = scan_want();
  double cpu = 0;
  for (auto _ : st) {
    std::fill(out.begin(), out.end(), 0);  // untimed: a stale answer cannot pass
    const auto t0 = Clock::now();
    const double c0 = process_cpu_s();
    switch (by) {
      case SortBy::Vitte:
        vitte::parallel_inclusive_scan(vitte_scheduler(threads), x.begin(), x.end(), out.begin(), std::plus<>{});
        break;
      case SortBy::Tbb:
        tbb_arena(threads).execute([&] {
          tbb::parallel_scan(
              tbb::blocked_range<std::size_t>(0, kN), std::uint64_t{0},
              [&](const tbb::blocked_range<std::size_t>& r, std::uint64_t sum, bool final) {
                for (std::size_t i = r.begin(); i < r.end(); ++i) {
                  sum += x[i];
                  if (final) out[i] = sum;
                }
                return sum;
              },
              std::plus<>{});
        });
        break;
      case SortBy::Std: std::inclusive_scan(x.begin(), x.end(), out.begin()); break;
    }
    cpu += process_cpu_s() - c0;
    st.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
    if (out != want) {
      *wrong = true;
      st.SkipWithError("wrong result: not std::inclusive_scan's prefix sums");
      break;
    }
  }
  add_cpu_counter(st, cpu);
  st.counters["items"] = static_cast<double>(kN);
}

inline void register_sort_kernels(const std::vector<int>& thread_counts, std::atomic<bool>& wrong) {
  benchmark::RegisterBenchmark("sort/std/threads:1", sort_bench, SortBy::Std, 1, &wrong)
      ->Unit(benchmark::kMillisecond)->UseManualTime();
  for (int t : thread_counts)
    for (auto [rt, by] : {std::pair{"vitte", SortBy::Vitte}, std::pair{"tbb", SortBy::Tbb}})
      benchmark::RegisterBenchmark((std::string("sort/") + rt + "/threads:" + std::to_string(t)).c_str(),
                                   sort_bench, by, t, &wrong)
          ->Unit(benchmark::kMillisecond)->UseManualTime();
}

inline void register_scan_kernels(const std::vector<int>& thread_counts, std::atomic<bool>& wrong) {
  benchmark::RegisterBenchmark("scan/std/threads:1", scan_bench, SortBy::Std, 1, &wrong)
      ->Unit(benchmark::kMillisecond)->UseManualTime();
  for (int t : thread_counts)
    for (auto [rt, by] : {std::pair{"vitte", SortBy::Vitte}, std::pair{"tbb", SortBy::Tbb}})
      benchmark::RegisterBenchmark((std::string("scan/") + rt + "/threads:" + std::to_string(t)).c_str(),
                                   scan_bench, by, t, &wrong)
          ->Unit(benchmark::kMillisecond)->UseManualTime();
}

}  // namespace algo

inline void register_algorithm_kernels(const std::vector<int>& thread_counts, std::atomic<bool>& wrong) {
  algo::register_reduce_kernels(thread_counts, wrong);
  algo::register_det_reduce_kernels(thread_counts, wrong);
  algo::register_ets_kernels(thread_counts, wrong);
  algo::register_sort_kernels(thread_counts, wrong);
  algo::register_scan_kernels(thread_counts, wrong);
}

}  // namespace bench

// One binary, three runtimes, checked results.
//
// Every benchmark is named KERNEL/RUNTIME/threads:N, so --benchmark_filter='fib35/' selects
// one kernel across runtimes and thread counts. Each iteration's result is compared with its
// known value (or a serial run); a wrong answer marks the benchmark as an error and makes the
// binary exit 1. Thread counts: 1, 2 and, where the machine has more, every power of two up
// to its core count, plus the core count itself.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "algorithm_kernels.hpp"
#include "coro_kernels.hpp"
#include "future_kernels.hpp"
#include "graph_kernels.hpp"
#include "kernels.hpp"
#include "metrics_kernels.hpp"
#include "pass_driver.hpp"
#include "pipeline_kernels.hpp"
#include "policy_kernels.hpp"
#include "runtimes.hpp"
#include "timer_kernels.hpp"

namespace {

using bench::Runtime;
std::atomic<bool> g_wrong_answer{false};

// Runs `fn` as the root task of `threads` vitte workers and returns its result.
template <class V>
auto run_on_vitte(int threads, V&& fn) {
  decltype(fn()) out{};
  vitte::TaskGroup root(bench::vitte_scheduler(threads));
  root.run([&] { out = fn(); });
  root.wait();
  return out;
}

template <class V, class T, class O>
auto run_on(Runtime r, int threads, V&& on_vitte, T&& on_tbb, O&& on_omp) {
  using R = decltype(on_vitte());
  R out{};
  switch (r) {
    case Runtime::Vitte:
      out = run_on_vitte(threads, on_vitte);
      break;
    case Runtime::Tbb:
      bench::tbb_arena(threads).execute([&] { out = on_tbb(); });
      break;
    case Runtime::Omp:
#pragma omp parallel num_threads(threads)
#pragma omp single
      out = on_omp();
      break;
  }
  return out;
}

template <class T>
void check(benchmark::State& st, T got, T want) {
  if (got != want) {
    g_wrong_answer = true;
    st.SkipWithError(("wrong result: got " + std::to_string(got) + ", want " + std::to_string(want)).c_str());
  }
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

void add_common_counters(benchmark::State& st, std::uint64_t tasks) {
  st.counters["tasks"] = static_cast<double>(tasks);
  // Seconds per task over all iterations, shown with SI prefixes (e.g. 35n).
  st.counters["per_task"] = benchmark::Counter(static_cast<double>(tasks),
                                               benchmark::Counter::kIsIterationInvariantRate |
                                                   benchmark::Counter::kInvert);
  st.counters["peak_rss_MiB"] = peak_rss_mib();
}

// What a vitte run did, as counters of its benchmark row: steals per iteration by scope and
// NUMA distance (steals_l3, steals_node, steals_remote_d<distance>), and the event counters
// per task (ctr_<event>) when VITTE_BENCH_COUNTERS=1 turned them on. Other runtimes' rows
// get none: their threads are not ours to count.
class VitteWatch {
 public:
  VitteWatch(Runtime r, int threads)
      : s_(r == Runtime::Vitte ? &bench::vitte_scheduler(threads) : nullptr),
        before_(s_ != nullptr ? s_->metrics() : vitte::MetricsSnapshot{}) {}
  void report(benchmark::State& st, std::uint64_t tasks_per_iteration) const {
    if (s_ == nullptr || st.iterations() == 0) return;
    const vitte::MetricsSnapshot d = s_->metrics() - before_;
    const auto iters = static_cast<double>(st.iterations());
    for (const vitte::StealBin& b : d.steal_bins) {
      const std::string name = b.scope == vitte::StealScope::Remote ? "steals_remote_d" + std::to_string(b.distance)
                                                                     : std::string("steals_") + vitte::to_string(b.scope);
      st.counters[name] = static_cast<double>(b.steals) / iters;
    }
    const double tasks = static_cast<double>(tasks_per_iteration) * iters;
    for (std::size_t i = 0; i < d.counter_info.events.size() && tasks > 0; ++i) {
      std::string name = "ctr_" + d.counter_info.events[i];
      for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
      st.counters[name] = static_cast<double>(d.counters[i]) / tasks;
    }
  }

 private:
  vitte::Scheduler* s_;
  vitte::MetricsSnapshot before_;
};

void fib_bench(benchmark::State& st, Runtime r, int threads, int n, long want) {
  const VitteWatch watch(r, threads);
  for (auto _ : st) {
    const long got = run_on(r, threads, [&] { return bench::fib_vitte(n); }, [&] { return bench::fib_tbb(n); },
                            [&] { return bench::fib_omp(n); });
    check(st, got, want);
  }
  add_common_counters(st, bench::fib_spawns(n));
  watch.report(st, bench::fib_spawns(n));
}

constexpr std::uint64_t kSkynetLeaves = 1'000'000, kSkynetSum = 499'999'500'000ull;
constexpr std::uint64_t kSkynetTasks = 1'111'110;  // every node but the root is a task

// The floor of the fork-join kernels: the same recursion as plain calls, no runtime, one
// thread. fib and skynet report per_task as the serial time divided by the spawns their
// parallel forms make, so that each runtime's time per spawn is read as a multiple of it
// (scripts/bench_report.py).
enum class Serial { Fib35, Skynet, NQueens12, Uts };
bench::Uts uts_params();
void serial_bench(benchmark::State& st, Serial k, std::uint64_t uts_want);

void skynet_bench(benchmark::State& st, Runtime r, int threads) {
  const VitteWatch watch(r, threads);
  for (auto _ : st) {
    const std::uint64_t got = run_on(r, threads, [&] { return bench::skynet_vitte(0, kSkynetLeaves); },
                                     [&] { return bench::skynet_tbb(0, kSkynetLeaves); },
                                     [&] { return bench::skynet_omp(0, kSkynetLeaves); });
    check(st, got, kSkynetSum);
  }
  add_common_counters(st, kSkynetTasks);
  watch.report(st, kSkynetTasks);
}

// fib and skynet on vitte with a trace recording (docs/tracing.md): every task, or one in
// `every`. Starting the trace (its buffers are allocated, not touched), stopping it and
// freeing it are outside the timed region; the first touch of the buffers' pages is inside,
// as in any real trace. The buffers hold every event, so nothing is dropped (checked).
template <class Kernel, class T>
void traced_bench(benchmark::State& st, int threads, unsigned every, std::uint64_t tasks, Kernel kernel, T want) {
  vitte::Scheduler& s = bench::vitte_scheduler(threads);
  std::uint64_t slices = 0;
  for (auto _ : st) {
    st.PauseTiming();
    s.start_trace({.events_per_worker = 2 * tasks, .sample_every = every});
    st.ResumeTiming();
    const T got = run_on_vitte(threads, kernel);
    st.PauseTiming();
    {
      const vitte::Trace t = s.stop_trace();
      if (t.dropped() != 0) {
        g_wrong_answer = true;
        st.SkipWithError(("the trace dropped " + std::to_string(t.dropped()) + " events").c_str());
      }
      slices = t.task_slices();
    }
    st.ResumeTiming();
    check(st, got, want);
  }
  add_common_counters(st, tasks);
  st.counters["task_slices"] = static_cast<double>(slices);
}

// Coroutine forms of fib and skynet (coro_kernels.hpp), on vitte only: started with
// sync_wait from the benchmark thread, as a TaskGroup root is started with run/wait.
void cofib_bench(benchmark::State& st, int threads, int n, long want) {
  vitte::Scheduler& s = bench::vitte_scheduler(threads);
  for (auto _ : st) check(st, vitte::sync_wait(s, bench::cofib(n)), want);
  add_common_counters(st, bench::fib_spawns(n));
}

void coskynet_bench(benchmark::State& st, int threads) {
  vitte::Scheduler& s = bench::vitte_scheduler(threads);
  for (auto _ : st) check(st, vitte::sync_wait(s, bench::coskynet(0, 1'000'000)), std::uint64_t{499'999'500'000ull});
  add_common_counters(st, 1'111'110);
}

void coyield_bench(benchmark::State& st, int threads) {
  vitte::Scheduler& s = bench::vitte_scheduler(threads);
  const long rounds = 1'000'000;
  for (auto _ : st) check(st, vitte::sync_wait(s, bench::coyield(rounds)), rounds);
  st.counters["per_yield"] = benchmark::Counter(static_cast<double>(rounds),
                                                benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  st.counters["peak_rss_MiB"] = peak_rss_mib();
}

void coyield_crowd_bench(benchmark::State& st, int threads) {
  vitte::Scheduler& s = bench::vitte_scheduler(threads);
  const long each = 250'000;
  const long rounds = each * bench::kCrowd;
  for (auto _ : st) check(st, vitte::sync_wait(s, bench::coyield_crowd(each)), rounds);
  st.counters["per_yield"] = benchmark::Counter(static_cast<double>(rounds),
                                                benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  st.counters["peak_rss_MiB"] = peak_rss_mib();
}

void serial_bench(benchmark::State& st, Serial k, std::uint64_t uts_want) {
  const bench::Uts u = uts_params();
  for (auto _ : st) {
    int n = k == Serial::NQueens12 ? 12 : 35;
    std::uint64_t leaves = kSkynetLeaves, root = 1;
    benchmark::DoNotOptimize(n);  // no folding of the recursion at compile time
    benchmark::DoNotOptimize(leaves);
    benchmark::DoNotOptimize(root);
    switch (k) {
      case Serial::Fib35: check(st, bench::fib_serial(n), 9227465L); break;
      case Serial::Skynet: check(st, bench::skynet_serial(0, leaves), kSkynetSum); break;
      case Serial::NQueens12: check(st, bench::nqueens_serial(n, 0, bench::Board{}), 14200L); break;
      case Serial::Uts: check(st, bench::uts_serial(u, root, true), uts_want); break;
    }
  }
  if (k == Serial::Fib35) add_common_counters(st, bench::fib_spawns(35));
  if (k == Serial::Skynet) add_common_counters(st, kSkynetTasks);
  if (k == Serial::Uts) add_common_counters(st, uts_want - 1);
}

void nqueens_bench(benchmark::State& st, Runtime r, int threads, int n, long want) {
  const VitteWatch watch(r, threads);
  for (auto _ : st) {
    bench::Board b;
    const long got = run_on(r, threads, [&] { return bench::nqueens_vitte(n, 0, b); },
                            [&] { return bench::nqueens_tbb(n, 0, b); }, [&] { return bench::nqueens_omp(n, 0, b); });
    check(st, got, want);
  }
  st.counters["peak_rss_MiB"] = peak_rss_mib();
  watch.report(st, 0);
}

bench::Uts uts_params() {
  bench::Uts u;
  u.root_children = 2000;
  u.m = 4;
  u.q = static_cast<std::uint64_t>(0.2475 * 18446744073709551616.0);  // q*m = 0.99
  return u;
}

void uts_bench(benchmark::State& st, Runtime r, int threads, std::uint64_t want) {
  const bench::Uts u = uts_params();
  const VitteWatch watch(r, threads);
  for (auto _ : st) {
    const std::uint64_t got = run_on(r, threads, [&] { return bench::uts_vitte(u, 1, true); },
                                     [&] { return bench::uts_tbb(u, 1, true); },
                                     [&] { return bench::uts_omp(u, 1, true); });
    check(st, got, want);
  }
  add_common_counters(st, want - 1);
  watch.report(st, want - 1);
}

// Latency distribution of one benchmark's iterations (microseconds) as counters: the mean
// alone (the reported Time) hides whether a runtime is slow always or only sometimes.
void add_latency_counters(benchmark::State& st, std::vector<double> us) {
  if (us.empty()) return;
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  st.counters["median_us"] = us[us.size() / 2];
  st.counters["mean_us"] = sum / static_cast<double>(us.size());
  st.counters["p99_us"] = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  st.counters["max_us"] = us.back();
}

// Wake-up latency: an idle runtime (workers asleep for 5 ms) gets one task; we time from
// the submission until the task starts running, and report the distribution (the Time
// column is the mean). The scheduler, arena or thread team is made and used once before
// the timed iterations: its construction (topology discovery, thread creation: several
// milliseconds) is not a wake-up. The submitting thread then blocks (futex) rather than
// spins, so it does not hold the CPU a woken worker may need.
//
// woken_pct (vitte): iterations in which a producer woke a parked worker for the task,
// from the scheduler's metrics; below 100 means workers were still spinning after 5 ms.
struct WakeSample {
  std::chrono::steady_clock::time_point t0, t1;
};

WakeSample wake_once(Runtime r, int threads, std::atomic<int>& started_seq, int seq) {
  WakeSample w;
  switch (r) {
    case Runtime::Vitte: {
      vitte::Scheduler& s = bench::vitte_scheduler(threads);
      w.t0 = std::chrono::steady_clock::now();
      s.submit(vitte::Task([&w] { w.t1 = std::chrono::steady_clock::now(); }));
      s.join_all();
      break;
    }
    case Runtime::Tbb: {
      tbb::task_arena& a = bench::tbb_arena(threads);
      w.t0 = std::chrono::steady_clock::now();
      a.enqueue([&w, &started_seq, seq] {
        w.t1 = std::chrono::steady_clock::now();
        started_seq.store(seq, std::memory_order_release);
        started_seq.notify_one();
      });
      for (int v = started_seq.load(std::memory_order_acquire); v != seq;
           v = started_seq.load(std::memory_order_acquire))
        started_seq.wait(v, std::memory_order_acquire);
      break;
    }
    case Runtime::Omp: {
      // The analogue for OpenMP: a parallel region starts and its last thread runs.
      w.t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
      if (omp_get_thread_num() == threads - 1) w.t1 = std::chrono::steady_clock::now();
      break;
    }
  }
  return w;
}

void wakeup_bench(benchmark::State& st, Runtime r, int threads) {
  std::vector<double> us;
  std::atomic<int> started_seq{0};  // outlives every task that notifies it
  int seq = 0;
  wake_once(r, threads, started_seq, ++seq);  // construction and first use, untimed
  std::uint64_t woken = 0;
  for (auto _ : st) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    std::uint64_t wakeups0 = 0;
    if (r == Runtime::Vitte) wakeups0 = bench::vitte_scheduler(threads).metrics().total.wakeups;
    const WakeSample w = wake_once(r, threads, started_seq, ++seq);
    if (r == Runtime::Vitte) woken += bench::vitte_scheduler(threads).metrics().total.wakeups - wakeups0;
    const double d = std::chrono::duration<double>(w.t1 - w.t0).count();
    st.SetIterationTime(d);
    us.push_back(d * 1e6);
  }
  add_latency_counters(st, us);
  if (r == Runtime::Vitte && !us.empty())
    st.counters["woken_pct"] = 100.0 * static_cast<double>(woken) / static_cast<double>(us.size());
}

// The worker counts every kernel runs at: 1, the powers of two below the machine's hardware
// threads, and that count; or the list in VITTE_BENCH_THREADS (e.g. "1,2,4,8,16", as
// scripts/scaling.sh sets it), refused with its culprit named when it is not one.
std::vector<int> thread_counts() {
  if (const char* env = std::getenv("VITTE_BENCH_THREADS"); env != nullptr && *env != '\0') {
    std::vector<int> t;
    std::string list(env);
    for (std::size_t at = 0; at <= list.size();) {
      const std::size_t comma = std::min(list.find(',', at), list.size());
      const std::string item = list.substr(at, comma - at);
      char* end = nullptr;
      const long n = std::strtol(item.c_str(), &end, 10);
      if (item.empty() || end != item.c_str() + item.size() || n < 1 || n > 4096) {
        std::fprintf(stderr, "vitte-bench: VITTE_BENCH_THREADS=\"%s\": \"%s\" is not a worker count (1..4096)\n", env,
                     item.c_str());
        std::exit(2);
      }
      t.push_back(static_cast<int>(n));
      at = comma + 1;
    }
    return t;
  }
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<int> t{1};
  for (int n = 2; n < hw; n *= 2) t.push_back(n);
  if (hw > 1) t.push_back(hw);
  return t;
}

void register_all() {
  const std::uint64_t uts_want = bench::uts_serial(uts_params(), 1, true);
  for (auto [name, k] : {std::pair{"fib35", Serial::Fib35}, std::pair{"skynet", Serial::Skynet},
                         std::pair{"nqueens12", Serial::NQueens12}, std::pair{"uts", Serial::Uts}})
    benchmark::RegisterBenchmark((std::string(name) + "/serial/threads:1").c_str(), serial_bench, k, uts_want)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
  for (Runtime r : {Runtime::Vitte, Runtime::Tbb, Runtime::Omp}) {
    const std::string rt = bench::name(r);
    for (int t : thread_counts()) {
      const std::string suffix = "/" + rt + "/threads:" + std::to_string(t);
      benchmark::RegisterBenchmark(("fib30" + suffix).c_str(), fib_bench, r, t, 30, 832040L)
          ->Unit(benchmark::kMillisecond)->UseRealTime();
      // libgomp takes seconds per fib(35) at 2 threads (its task queue is one locked list),
      // so OpenMP gets a single iteration there.
      benchmark::RegisterBenchmark(("fib35" + suffix).c_str(), fib_bench, r, t, 35, 9227465L)
          ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(r == Runtime::Omp ? 1 : 3);
      benchmark::RegisterBenchmark(("skynet" + suffix).c_str(), skynet_bench, r, t)
          ->Unit(benchmark::kMillisecond)->UseRealTime();
      if (r == Runtime::Vitte) {
        for (unsigned every : {1u, 64u}) {
          const std::string traced = "/vitte-trace" + (every == 1 ? std::string() : std::to_string(every)) +
                                     "/threads:" + std::to_string(t);
          benchmark::RegisterBenchmark(("fib30" + traced).c_str(), [t, every](benchmark::State& st) {
            traced_bench(st, t, every, bench::fib_spawns(30), [] { return bench::fib_vitte(30); }, 832040L);
          })->Unit(benchmark::kMillisecond)->UseRealTime();
          benchmark::RegisterBenchmark(("skynet" + traced).c_str(), [t, every](benchmark::State& st) {
            traced_bench(st, t, every, kSkynetTasks, [] { return bench::skynet_vitte(0, kSkynetLeaves); }, kSkynetSum);
          })->Unit(benchmark::kMillisecond)->UseRealTime();
        }
        benchmark::RegisterBenchmark(("cofib35" + suffix).c_str(), cofib_bench, t, 35, 9227465L)
            ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
        benchmark::RegisterBenchmark(("coskynet" + suffix).c_str(), coskynet_bench, t)
            ->Unit(benchmark::kMillisecond)->UseRealTime();
        benchmark::RegisterBenchmark(("coyield" + suffix).c_str(), coyield_bench, t)
            ->Unit(benchmark::kMillisecond)->UseRealTime();
        benchmark::RegisterBenchmark(("coyield_crowd" + suffix).c_str(), coyield_crowd_bench, t)
            ->Unit(benchmark::kMillisecond)->UseRealTime();
      }
      benchmark::RegisterBenchmark(("nqueens12" + suffix).c_str(), nqueens_bench, r, t, 12, 14200L)
          ->Unit(benchmark::kMillisecond)->UseRealTime();
      benchmark::RegisterBenchmark(("uts" + suffix).c_str(), uts_bench, r, t, uts_want)
          ->Unit(benchmark::kMillisecond)->UseRealTime();
      if (r != Runtime::Omp || t > 1)
        benchmark::RegisterBenchmark(("wakeup" + suffix).c_str(), wakeup_bench, r, t)
            ->Unit(benchmark::kMicrosecond)->UseManualTime()->Iterations(500);
    }
  }
  bench::register_graph_kernels(thread_counts(), g_wrong_answer);  // graph_kernels.hpp
  bench::register_timer_kernels(thread_counts(), g_wrong_answer, add_latency_counters);  // timer_kernels.hpp
  bench::register_future_kernels(thread_counts(), g_wrong_answer, peak_rss_mib);  // future_kernels.hpp
  bench::register_policy_kernels(thread_counts(), g_wrong_answer, add_latency_counters);  // policy_kernels.hpp
  bench::register_metrics_kernels(thread_counts(), g_wrong_answer);  // metrics_kernels.hpp
  bench::register_algorithm_kernels(thread_counts(), g_wrong_answer);  // algorithm_kernels.hpp
  bench::register_pass_driver(thread_counts(), g_wrong_answer, peak_rss_mib);  // pass_driver.hpp
  bench::register_pipeline_kernels(thread_counts(), g_wrong_answer);  // pipeline_kernels.hpp
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  register_all();
  benchmark::AddCustomContext("peak_rss_note", "peak_rss_MiB is the process peak so far (all runtimes)");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::fprintf(stderr, "peak RSS of the whole run: %.1f MiB\n", peak_rss_mib());
  if (g_wrong_answer) {
    std::fprintf(stderr, "vitte-bench: at least one kernel returned a wrong result\n");
    return 1;
  }
  return 0;
}

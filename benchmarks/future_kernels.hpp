// Future kernels (issue #8): continuations and gathers. vitte only: std::future has no
// continuations, and oneTBB's nearest peer of a then() chain (a flow graph of continue_node)
// is measured already by the graph kernel linear_chain/tbb.
//
//   then_chain_1M   1M then() links, each v -> v + 1, attached to a Promise not yet set;
//                   then the promise is set and the last future read (want: 1M). Timed:
//                   attaching and running (per_op: per link); attach_per_op and
//                   run_per_op split the two.
//   when_all_100k   100k Scheduler::async tasks returning i, gathered by when_all over the
//                   vector, and read (want: the sum of 0..99,999). Timed: making the
//                   futures, the gather and get() (per_op: per future).
// cpu_per_op: the process's CPU time (all threads, idle workers' spinning included) per
// link or future, which a loaded machine inflates less than wall time.
//
// Both run inside a root task, like the fork-join kernels: the futures and continuations
// are made by a worker, which then helps in get().
#pragma once

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "runtimes.hpp"

namespace bench {

inline void future_check(benchmark::State& st, std::atomic<bool>& wrong, std::uint64_t got, std::uint64_t want) {
  if (got != want) {
    wrong = true;
    st.SkipWithError(("wrong result: got " + std::to_string(got) + ", want " + std::to_string(want)).c_str());
  }
}

inline double process_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

inline benchmark::Counter per_op(double ops) {
  return benchmark::Counter(ops, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

inline void then_chain_bench(benchmark::State& st, int threads, std::atomic<bool>* wrong, double (*peak_rss)()) {
  using Clock = std::chrono::steady_clock;
  constexpr std::uint64_t kLinks = 1'000'000;
  vitte::Scheduler& s = vitte_scheduler(threads);
  double attach_s = 0, run_s = 0;
  const double cpu0 = process_cpu_seconds();
  for (auto _ : st) {
    std::uint64_t got = 0;
    Clock::time_point t0, t1, t2;
    vitte::TaskGroup root(s);
    root.run([&] {
      t0 = Clock::now();
      vitte::Promise<std::uint64_t> p(s);
      vitte::Future<std::uint64_t> f = p.get_future();
      for (std::uint64_t i = 0; i < kLinks; ++i) f = std::move(f).then([](std::uint64_t v) { return v + 1; });
      t1 = Clock::now();
      p.set_value(0);
      got = f.get();
      t2 = Clock::now();
    });
    root.wait();
    attach_s += std::chrono::duration<double>(t1 - t0).count();
    run_s += std::chrono::duration<double>(t2 - t1).count();
    st.SetIterationTime(std::chrono::duration<double>(t2 - t0).count());
    future_check(st, *wrong, got, kLinks);
  }
  const double links = static_cast<double>(kLinks) * static_cast<double>(st.iterations());
  st.counters["per_op"] = per_op(static_cast<double>(kLinks));
  if (links > 0) {
    st.counters["attach_per_op"] = attach_s / links;
    st.counters["run_per_op"] = run_s / links;
    st.counters["cpu_per_op"] = (process_cpu_seconds() - cpu0) / links;
  }
  st.counters["peak_rss_MiB"] = peak_rss();
}

inline void when_all_bench(benchmark::State& st, int threads, std::atomic<bool>* wrong, double (*peak_rss)()) {
  constexpr std::uint64_t kFutures = 100'000;
  vitte::Scheduler& s = vitte_scheduler(threads);
  const double cpu0 = process_cpu_seconds();
  for (auto _ : st) {
    std::uint64_t got = 0;
    vitte::TaskGroup root(s);
    root.run([&] {
      std::vector<vitte::Future<std::uint64_t>> fs;
      fs.reserve(kFutures);
      for (std::uint64_t i = 0; i < kFutures; ++i) fs.push_back(s.async([i] { return i; }));
      for (std::uint64_t v : vitte::when_all(std::move(fs)).get()) got += v;
    });
    root.wait();
    future_check(st, *wrong, got, kFutures * (kFutures - 1) / 2);
  }
  st.counters["per_op"] = per_op(static_cast<double>(kFutures));
  if (st.iterations() > 0)
    st.counters["cpu_per_op"] = (process_cpu_seconds() - cpu0) / (static_cast<double>(kFutures) * static_cast<double>(st.iterations()));
  st.counters["peak_rss_MiB"] = peak_rss();
}

// Registers both kernels at 1 and 2 threads (those of `thread_counts` that are <= 2).
inline void register_future_kernels(const std::vector<int>& thread_counts, std::atomic<bool>& wrong,
                                    double (*peak_rss)()) {
  for (int t : thread_counts) {
    if (t > 2) continue;
    const std::string suffix = "/vitte/threads:" + std::to_string(t);
    benchmark::RegisterBenchmark(("then_chain_1M" + suffix).c_str(), then_chain_bench, t, &wrong, peak_rss)
        ->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(3);
    benchmark::RegisterBenchmark(("when_all_100k" + suffix).c_str(), when_all_bench, t, &wrong, peak_rss)
        ->Unit(benchmark::kMillisecond)->UseRealTime();
  }
}

}  // namespace bench

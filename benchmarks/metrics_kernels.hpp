// Metrics kernels (issue #10): what observing a run costs.
//
//   skynet/vitte-counters/threads:N
//       skynet (kernels.hpp) on a scheduler that counts events (MetricsOptions::counters,
//       the default set: on a machine without a PMU, Linux's software events). Compare with
//       skynet/vitte/threads:N of the same run: the counters are read whenever a worker runs
//       out of work (and at the task boundary after a snapshot asks), never per task.
//   group_counters_{on,off}/vitte/threads:1
//       20,000 empty tasks of one group, submitted from a task as policy work
//       (TaskGroup(sched, {.group})), on a counting scheduler; `on`: the group asks for
//       counters (GroupSpec::counters: two reads of the counters around each task),
//       `off`: it does not. per_task of on minus off is the cost of group attribution.
#pragma once

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "kernels.hpp"
#include "vitte/vitte.hpp"

namespace bench {

inline vitte::Scheduler& counting_scheduler(int threads) {
  static std::map<int, std::unique_ptr<vitte::Scheduler>> pool;
  auto& s = pool[threads];
  if (!s) {
    vitte::Options o;
    o.workers = static_cast<std::size_t>(threads);
    o.metrics.counters = true;
    s = std::make_unique<vitte::Scheduler>(std::move(o));
  }
  return *s;
}

inline void skynet_counters_bench(benchmark::State& st, int threads, std::atomic<bool>* wrong) {
  vitte::Scheduler& s = counting_scheduler(threads);
  const std::uint64_t want = 499'999'500'000ull;
  for (auto _ : st) {
    std::uint64_t got = 0;
    vitte::TaskGroup root(s);
    root.run([&] { got = skynet_vitte(0, 1'000'000); });
    root.wait();
    if (got != want) {
      *wrong = true;
      st.SkipWithError("wrong result");
    }
  }
  st.counters["tasks"] = 1'111'110;
  st.counters["per_task"] = benchmark::Counter(1'111'110, benchmark::Counter::kIsIterationInvariantRate |
                                                               benchmark::Counter::kInvert);
  st.counters["events"] = static_cast<double>(s.metrics().counter_info.events.size());
}

inline void group_counters_bench(benchmark::State& st, bool on, std::atomic<bool>* wrong) {
  vitte::Scheduler& s = counting_scheduler(1);
  static vitte::Group counted = s.make_group({.name = "bench-counted", .counters = true});
  static vitte::Group plain = s.make_group({.name = "bench-plain"});
  const vitte::Group& g = on ? counted : plain;
  constexpr int kTasks = 20'000;
  for (auto _ : st) {
    std::atomic<int> ran{0};
    vitte::TaskGroup root(s);
    root.run([&] {
      vitte::TaskGroup tasks(s, vitte::TaskOptions{.group = g});
      for (int i = 0; i < kTasks; ++i) tasks.run([&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
      tasks.wait();
    });
    root.wait();
    if (ran.load() != kTasks) {
      *wrong = true;
      st.SkipWithError("tasks lost");
    }
  }
  st.counters["tasks"] = kTasks;
  st.counters["per_task"] =
      benchmark::Counter(kTasks, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  st.counters["events"] = static_cast<double>(s.metrics().counter_info.events.size());
}

inline void register_metrics_kernels(const std::vector<int>& thread_counts, std::atomic<bool>& wrong) {
  for (int t : thread_counts)
    benchmark::RegisterBenchmark(("skynet/vitte-counters/threads:" + std::to_string(t)).c_str(), skynet_counters_bench,
                                 t, &wrong)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  for (bool on : {false, true})
    benchmark::RegisterBenchmark(on ? "group_counters_on/vitte/threads:1" : "group_counters_off/vitte/threads:1",
                                 group_counters_bench, on, &wrong)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
}

}  // namespace bench

// The bounded pipeline (issue #21): vitte::run_pipeline against tbb::parallel_pipeline on
// the same three stages, at 1 and more workers, in the same binary.
//
//   pipeline_fine    1M items, ~100 ns of work in the parallel middle stage
//   pipeline_coarse  20k items, ~10 us of work in it
// Stages: a serial in-order source numbering items; a parallel stage that hashes the item
// `rounds` times; a serial in-order sink that checks each item arrives in source order and
// folds the hashes. max_in_flight (oneTBB: max_number_of_live_tokens) is 4 x workers.
// Checked: the order (every item after its predecessor) and the folded hash against a
// serial loop over the same items.
#pragma once

#include <benchmark/benchmark.h>
#include <tbb/parallel_pipeline.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "algorithm_kernels.hpp"  // process_cpu_s, add_cpu_counter, add
#include "runtimes.hpp"

namespace bench::pipe {

struct Shape {
  const char* name;
  std::uint64_t items;
  unsigned rounds;  // hash rounds in the parallel stage
};
inline constexpr Shape kFine{"pipeline_fine", 1'000'000, 24};
inline constexpr Shape kCoarse{"pipeline_coarse", 20'000, 2'400};

struct Item {
  std::uint64_t seq = 0, hash = 0;
};

inline std::uint64_t work(std::uint64_t seq, unsigned rounds) noexcept {
  std::uint64_t h = seq;
  for (unsigned r = 0; r < rounds; ++r) h = algo::splitmix(h);
  return h;
}

// The sink's state: the next sequence number it expects, and the fold.
struct Sink {
  std::uint64_t next = 0, fold = 0;
  bool in_order = true;
  void take(const Item& it) noexcept {
    in_order = in_order && it.seq == next;
    ++next;
    fold = fold * 31 + it.hash;
  }
};

inline std::uint64_t serial_fold(const Shape& s) {
  Sink k;
  for (std::uint64_t i = 0; i < s.items; ++i) k.take({i, work(i, s.rounds)});
  return k.fold;
}

inline Sink run_vitte(const Shape& s, int threads) {
  vitte::Scheduler& sched = vitte_scheduler(threads);
  Sink k;
  std::uint64_t seq = 0;
  vitte::run_pipeline(
      sched, 4 * static_cast<std::size_t>(threads),
      vitte::source([&](vitte::PipelineStop& stop) -> Item {
        if (seq == s.items) stop.done();
        return Item{seq++, 0};
      }),
      vitte::stage(vitte::StageMode::Parallel, [&](Item it) { return Item{it.seq, work(it.seq, s.rounds)}; }),
      vitte::sink(vitte::StageMode::SerialInOrder, [&](Item it) { k.take(it); }));
  return k;
}

inline Sink run_tbb(const Shape& s, int threads) {
  Sink k;
  std::uint64_t seq = 0;
  tbb_arena(threads).execute([&] {
    tbb::parallel_pipeline(
        4 * static_cast<std::size_t>(threads),
        tbb::make_filter<void, Item>(tbb::filter_mode::serial_in_order,
                                     [&](tbb::flow_control& fc) -> Item {
                                       if (seq == s.items) fc.stop();
                                       return Item{seq++, 0};
                                     }) &
            tbb::make_filter<Item, Item>(tbb::filter_mode::parallel,
                                         [&](Item it) { return Item{it.seq, work(it.seq, s.rounds)}; }) &
            tbb::make_filter<Item, void>(tbb::filter_mode::serial_in_order, [&](Item it) { k.take(it); }));
  });
  return k;
}

inline void pipeline_bench(benchmark::State& st, const Shape* s, bool vitte, int threads, std::atomic<bool>* wrong) {
  static std::uint64_t want_fine = 0, want_coarse = 0;
  std::uint64_t& want = s == &kFine ? want_fine : want_coarse;
  if (want == 0) want = serial_fold(*s);
  auto run = [&] { return vitte ? run_vitte(*s, threads) : run_tbb(*s, threads); };
  auto why = [&](const Sink& k) -> std::string {
    if (!k.in_order) return "an item reached the in-order sink out of order";
    if (k.next != s->items) return "the sink saw " + std::to_string(k.next) + " items";
    if (k.fold != want) return "the folded hash differs from the serial loop's";
    return "";
  };
  if (const std::string w = why(run()); !w.empty()) {  // untimed: the scheduler or arena, first use
    *wrong = true;
    st.SkipWithError(("wrong result: " + w).c_str());
    return;
  }
  double cpu = 0;
  for (auto _ : st) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = algo::process_cpu_s();
    const Sink k = run();
    cpu += algo::process_cpu_s() - c0;
    st.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (const std::string w = why(k); !w.empty()) {
      *wrong = true;
      st.SkipWithError(("wrong result: " + w).c_str());
      break;
    }
  }
  algo::add_cpu_counter(st, cpu);
  st.counters["items"] = static_cast<double>(s->items);
}

}  // namespace bench::pipe

namespace bench {

inline void register_pipeline_kernels(const std::vector<int>& thread_counts, std::atomic<bool>& wrong) {
  for (const pipe::Shape* s : {&pipe::kFine, &pipe::kCoarse})
    for (int t : thread_counts)
      for (bool v : {true, false})
        benchmark::RegisterBenchmark(
            (std::string(s->name) + (v ? "/vitte" : "/tbb") + "/threads:" + std::to_string(t)).c_str(),
            pipe::pipeline_bench, s, v, t, &wrong)
            ->Unit(benchmark::kMillisecond)
            ->UseManualTime();
}

}  // namespace bench

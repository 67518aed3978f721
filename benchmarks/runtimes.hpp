// The three runtimes the benchmarks compare, behind one small interface, so each kernel is
// written once per runtime in the idiom that runtime's users would write.
//
//   vitte:  a Scheduler per thread count, kernels fork with TaskGroup.
//   oneTBB: a task_arena per thread count, kernels fork with tbb::task_group.
//   OpenMP: GCC's libgomp, `parallel` + `single`, kernels fork with `task` / `taskwait`.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <map>
#include <string>
#include <memory>
#include <string>

#include <tbb/task_arena.h>

#include "vitte/vitte.hpp"

namespace bench {

enum class Runtime { Vitte, Tbb, Omp };
inline const char* name(Runtime r) {
  switch (r) {
    case Runtime::Vitte: return "vitte";
    case Runtime::Tbb: return "tbb";
    case Runtime::Omp: return "omp";
  }
  return "?";
}

// One scheduler / arena per thread count, made once and reused by every benchmark.
// VITTE_BENCH_COUNTERS=1 makes them count events (MetricsOptions::counters, the default
// set), reported per task as ctr_<event> on the vitte rows; off by default, since reading
// the counters costs the workers a little time whenever they go idle (docs/metrics.md).
inline vitte::Scheduler& vitte_scheduler(int threads) {
  static std::map<int, std::unique_ptr<vitte::Scheduler>> pool;
  auto& s = pool[threads];
  if (!s) {
    vitte::Options o;
    o.workers = static_cast<std::size_t>(threads);
    if (const char* c = std::getenv("VITTE_BENCH_COUNTERS"); c != nullptr && std::string(c) == "1")
      o.metrics.counters = true;
    s = std::make_unique<vitte::Scheduler>(std::move(o));
  }
  return *s;
}

inline tbb::task_arena& tbb_arena(int threads) {
  static std::map<int, std::unique_ptr<tbb::task_arena>> pool;
  auto& a = pool[threads];
  if (!a) {
    a = std::make_unique<tbb::task_arena>(threads);
    a->initialize();
  }
  return *a;
}

}  // namespace bench

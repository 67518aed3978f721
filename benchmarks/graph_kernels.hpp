// Task-graph kernels (issue #7): one DAG description, built as a vitte::Graph, as a oneTBB
// flow graph (continue_node) and, where natural, as OpenMP `depend` tasks.
//
//   linear_chain  1M nodes, i -> i+1 (pure hand-off latency)
//   binary_tree   2^20 nodes, i -> 2i+1, 2i+2 (fan-out)
//   wavefront     1024 x 1024 grid, each cell after its left and upper neighbour
//   random_dag    1000 layers x 1000 nodes, 1-3 distinct predecessors in the layer above
//                 (fixed seed)
//   graph_rerun   a 256 x 256 wavefront built once and run 100 times per iteration
//
// Timing: only the run (start to wait) is timed, with manual time. Graphs (vitte, oneTBB)
// are built before the timed region, a fresh one per iteration for the one-shot kernels
// (so vitte's first-run validation is timed), once per benchmark for graph_rerun. OpenMP
// has no graph object: its task creation is part of the run and therefore timed.
// Work per node: val[v] = epoch + v + 1 + 3 * (sum of its predecessors' val). The result is
// affine in the epoch, so a node that read a stale predecessor (an edge not respected, in
// any run) gives a wrong checked sum.
#pragma once

#include <benchmark/benchmark.h>
#include <omp.h>
#include <tbb/flow_graph.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "runtimes.hpp"

namespace bench {

struct Dag {
  std::uint32_t n = 0;
  std::vector<std::uint32_t> succ_off, succ;  // CSR, index order is topological
  std::vector<std::uint32_t> pred_off, pred;
  std::vector<std::uint64_t> val;
  std::uint64_t epoch = 0;
  // sum(val) = sum_a * epoch + sum_b; val[n-1] = last_a * epoch + last_b.
  std::uint64_t sum_a = 0, sum_b = 0, last_a = 0, last_b = 0;

  void work(std::uint32_t v) noexcept {
    std::uint64_t s = 0;
    for (std::uint32_t k = pred_off[v]; k < pred_off[v + 1]; ++k) s += val[pred[k]];
    val[v] = epoch + v + 1 + 3 * s;
  }
  std::uint64_t sum() const noexcept {
    std::uint64_t s = 0;
    for (std::uint64_t x : val) s += x;
    return s;
  }
  std::uint64_t want_sum() const noexcept { return sum_a * epoch + sum_b; }
  std::uint64_t want_last() const noexcept { return last_a * epoch + last_b; }
  void clear() { std::fill(val.begin(), val.end(), 0); }

  // From an edge list; computes the CSRs and the expected results serially.
  void finish(std::vector<std::pair<std::uint32_t, std::uint32_t>>& edges) {
    succ_off.assign(n + 1, 0);
    pred_off.assign(n + 1, 0);
    for (auto [a, b] : edges) {
      ++succ_off[a + 1];
      ++pred_off[b + 1];
    }
    for (std::uint32_t i = 0; i < n; ++i) {
      succ_off[i + 1] += succ_off[i];
      pred_off[i + 1] += pred_off[i];
    }
    succ.resize(edges.size());
    pred.resize(edges.size());
    std::vector<std::uint32_t> si(succ_off.begin(), succ_off.end() - 1), pi(pred_off.begin(), pred_off.end() - 1);
    for (auto [a, b] : edges) {
      succ[si[a]++] = b;
      pred[pi[b]++] = a;
    }
    val.assign(n, 0);
    std::uint64_t s[2], l[2];
    for (std::uint64_t e = 0; e < 2; ++e) {
      epoch = e;
      for (std::uint32_t v = 0; v < n; ++v) work(v);
      s[e] = sum();
      l[e] = val[n - 1];
    }
    sum_a = s[1] - s[0];
    sum_b = s[0];
    last_a = l[1] - l[0];
    last_b = l[0];
    epoch = 0;
    clear();
  }
};

inline Dag make_chain(std::uint32_t n) {
  Dag d;
  d.n = n;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> e;
  for (std::uint32_t i = 0; i + 1 < n; ++i) e.emplace_back(i, i + 1);
  d.finish(e);
  return d;
}
inline Dag make_tree(std::uint32_t n) {
  Dag d;
  d.n = n;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> e;
  for (std::uint32_t i = 1; i < n; ++i) e.emplace_back((i - 1) / 2, i);
  std::sort(e.begin(), e.end());
  d.finish(e);
  return d;
}
inline Dag make_wavefront(std::uint32_t side) {
  Dag d;
  d.n = side * side;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> e;
  for (std::uint32_t i = 0; i < side; ++i)
    for (std::uint32_t j = 0; j < side; ++j) {
      const std::uint32_t v = i * side + j;
      if (j > 0) e.emplace_back(v - 1, v);
      if (i > 0) e.emplace_back(v - side, v);
    }
  d.finish(e);
  return d;
}
inline Dag make_random_dag(std::uint32_t layers, std::uint32_t width, unsigned seed) {
  Dag d;
  d.n = layers * width;
  std::mt19937 rng(seed);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> e;
  const std::uint32_t third = width / 3;
  for (std::uint32_t l = 1; l < layers; ++l)
    for (std::uint32_t x = 0; x < width; ++x) {
      const std::uint32_t k = 1 + rng() % 3, base = rng() % width;
      // distinct predecessors: offsets 0, [1, third], [third+1, 2*third]
      const std::uint32_t off[3] = {0, 1 + static_cast<std::uint32_t>(rng() % third),
                                    third + 1 + static_cast<std::uint32_t>(rng() % third)};
      for (std::uint32_t j = 0; j < k; ++j) e.emplace_back((l - 1) * width + (base + off[j]) % width, l * width + x);
    }
  std::sort(e.begin(), e.end(), [](auto a, auto b) { return a.first != b.first ? a.first < b.first : a.second < b.second; });
  d.finish(e);
  return d;
}

// Each DAG is made on first use (not at registration: a run filtered to other kernels
// pays nothing, and their peak_rss figures stay as they were) and kept for the process.
using DagFn = Dag& (*)();
inline Dag& chain_dag() { static Dag d = make_chain(1'000'000); return d; }
inline Dag& tree_dag() { static Dag d = make_tree(1u << 20); return d; }
inline Dag& wave_dag() { static Dag d = make_wavefront(1024); return d; }
inline Dag& random_dag() { static Dag d = make_random_dag(1000, 1000, 42); return d; }
inline Dag& small_wave_dag() { static Dag d = make_wavefront(256); return d; }

// ---- builders ------------------------------------------------------------------------------
inline std::unique_ptr<vitte::Graph> build_vitte(Dag& d) {
  auto g = std::make_unique<vitte::Graph>("bench");
  std::vector<vitte::TaskRef> t;
  t.reserve(d.n);
  Dag* p = &d;
  for (std::uint32_t v = 0; v < d.n; ++v) t.push_back(g->add([p, v] { p->work(v); }));
  for (std::uint32_t v = 0; v < d.n; ++v)
    for (std::uint32_t k = d.succ_off[v]; k < d.succ_off[v + 1]; ++k) t[v].precede(t[d.succ[k]]);
  return g;
}

struct TbbDag {
  using Node = tbb::flow::continue_node<tbb::flow::continue_msg>;
  std::unique_ptr<tbb::flow::graph> g;  // made inside the arena, so it runs there
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<Node*> sources;
  void run() {
    for (Node* s : sources) s->try_put(tbb::flow::continue_msg());
    g->wait_for_all();
  }
};
inline std::unique_ptr<TbbDag> build_tbb(Dag& d) {
  auto t = std::make_unique<TbbDag>();
  t->g = std::make_unique<tbb::flow::graph>();
  t->nodes.reserve(d.n);
  Dag* p = &d;
  for (std::uint32_t v = 0; v < d.n; ++v)
    t->nodes.push_back(std::make_unique<TbbDag::Node>(*t->g, [p, v](const tbb::flow::continue_msg&) { p->work(v); }));
  for (std::uint32_t v = 0; v < d.n; ++v) {
    for (std::uint32_t k = d.succ_off[v]; k < d.succ_off[v + 1]; ++k)
      tbb::flow::make_edge(*t->nodes[v], *t->nodes[d.succ[k]]);
    if (d.pred_off[v] == d.pred_off[v + 1]) t->sources.push_back(t->nodes[v].get());
  }
  return t;
}

// OpenMP `depend` tasks for DAGs of at most two predecessors per node (chain, wavefront):
// an absent predecessor is replaced by the node's own slot (in + out on one address).
inline void run_omp_depend(Dag& d) {
  std::uint64_t* val = d.val.data();
  (void)val;  // used only in the depend clauses (GCC warns otherwise)
  Dag* p = &d;
  for (std::uint32_t v = 0; v < d.n; ++v) {
    const std::uint32_t np = d.pred_off[v + 1] - d.pred_off[v];
    const std::uint32_t a = np > 0 ? d.pred[d.pred_off[v]] : v;
    const std::uint32_t b = np > 1 ? d.pred[d.pred_off[v] + 1] : a;
#pragma omp task firstprivate(v, p) depend(in : val[a], val[b]) depend(out : val[v])
    p->work(v);
  }
#pragma omp taskwait
}

// ---- benchmarks ----------------------------------------------------------------------------
using Clock = std::chrono::steady_clock;

inline void graph_check(benchmark::State& st, std::atomic<bool>& wrong, std::uint64_t got, std::uint64_t want) {
  if (got != want) {
    wrong = true;
    st.SkipWithError(("wrong result: got " + std::to_string(got) + ", want " + std::to_string(want)).c_str());
  }
}

// One-shot kernels: a fresh graph per iteration (built untimed), one run timed.
inline void graph_once_bench(benchmark::State& st, Runtime r, int threads, DagFn get, std::atomic<bool>* wrong) {
  Dag* d = &get();
  for (auto _ : st) {
    d->clear();
    ++d->epoch;
    double secs = 0;
    switch (r) {
      case Runtime::Vitte: {
        vitte::Scheduler& s = vitte_scheduler(threads);
        auto g = build_vitte(*d);
        const auto t0 = Clock::now();
        s.run(*g).wait();
        secs = std::chrono::duration<double>(Clock::now() - t0).count();
        break;
      }
      case Runtime::Tbb: {
        tbb::task_arena& a = tbb_arena(threads);
        std::unique_ptr<TbbDag> g;
        a.execute([&] { g = build_tbb(*d); });
        const auto t0 = Clock::now();
        a.execute([&] { g->run(); });
        secs = std::chrono::duration<double>(Clock::now() - t0).count();
        a.execute([&] { g.reset(); });
        break;
      }
      case Runtime::Omp: {
        const auto t0 = Clock::now();
#pragma omp parallel num_threads(threads)
#pragma omp single
        run_omp_depend(*d);
        secs = std::chrono::duration<double>(Clock::now() - t0).count();
        break;
      }
    }
    st.SetIterationTime(secs);
    graph_check(st, *wrong, d->sum(), d->want_sum());
  }
  st.counters["tasks"] = d->n;
  st.counters["per_task"] = benchmark::Counter(static_cast<double>(d->n),
                                               benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// A graph built once (untimed) and run `runs` times per iteration (timed).
inline void graph_rerun_bench(benchmark::State& st, Runtime r, int threads, DagFn get, int runs,
                              std::atomic<bool>* wrong) {
  Dag* d = &get();
  std::unique_ptr<vitte::Graph> vg;
  std::unique_ptr<TbbDag> tg;
  tbb::task_arena* arena = nullptr;
  if (r == Runtime::Vitte) vg = build_vitte(*d);
  if (r == Runtime::Tbb) {
    arena = &tbb_arena(threads);
    arena->execute([&] { tg = build_tbb(*d); });
  }
  for (auto _ : st) {
    const auto t0 = Clock::now();
    bool ok = true;
    for (int k = 0; k < runs; ++k) {
      ++d->epoch;
      d->val[d->n - 1] = 0;
      if (r == Runtime::Vitte)
        vitte_scheduler(threads).run(*vg).wait();
      else
        arena->execute([&] { tg->run(); });
      ok = ok && d->val[d->n - 1] == d->want_last();
    }
    st.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
    graph_check(st, *wrong, ok ? d->sum() : 0, d->want_sum());
  }
  if (tg) arena->execute([&] { tg.reset(); });
  st.counters["tasks"] = static_cast<double>(d->n) * runs;
  st.counters["per_task"] = benchmark::Counter(static_cast<double>(d->n) * runs,
                                               benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

inline void register_graph_kernels(const std::vector<int>& thread_counts, std::atomic<bool>& wrong) {
  struct K {
    const char* name;
    DagFn d;
    bool omp;
  };
  const K kernels[] = {{"linear_chain", chain_dag, true}, {"binary_tree", tree_dag, false},
                       {"wavefront", wave_dag, true}, {"random_dag", random_dag, false}};
  for (Runtime r : {Runtime::Vitte, Runtime::Tbb, Runtime::Omp})
    for (int t : thread_counts) {
      const std::string suffix = std::string("/") + name(r) + "/threads:" + std::to_string(t);
      for (const K& k : kernels) {
        if (r == Runtime::Omp && !k.omp) continue;
        benchmark::RegisterBenchmark((std::string(k.name) + suffix).c_str(), graph_once_bench, r, t, k.d, &wrong)
            ->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(r == Runtime::Omp ? 1 : 3);
      }
      if (r != Runtime::Omp)
        benchmark::RegisterBenchmark(("graph_rerun" + suffix).c_str(), graph_rerun_bench, r, t, small_wave_dag, 100, &wrong)
            ->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(2);
    }
}

}  // namespace bench

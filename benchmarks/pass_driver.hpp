// A compile-pass driver (issue #21), written once per runtime in its own idiom, over the
// same work: the files of /usr/include/c++/12 (783 headers) or of VITTE_BENCH_PASS_DIR.
//
//   pass 1   per file, in parallel: read it by path (timed; the page cache is warm after the
//            first run), lex it (token hashes, #includes, "functions": outermost brace blocks
//            opened after `)`, const, noexcept, override, final or a _GLIBCXX_* macro),
//            diagnose lines over 100 columns and tabs, resolve includes by path suffix;
//   DAG      analyse(f) after analyse(g) for each g that f includes; cycles broken as
//            src/cli/pipeline.cpp does (a DFS in path order drops edges to files on its stack);
//   analyse  a nested parallel loop over the file's functions (a hash of their tokens,
//            kRounds times; "function longer than 400 tokens"), then a digest of those hashes
//            and of its includes' digests (a stale read, an edge not respected, shows);
//   totals   tokens, functions, digests, a double "weighted complexity": a deterministic
//            reduction over the files, grain kTotalsGrain;
//   output   every worker's diagnostics, combined, sorted by (file, line, message), hashed.
//
//   vitte:  parallel_for, per_worker<vector<Diag>>, vitte::Graph, nested parallel_for,
//           parallel_reduce. No with_tbb(), no slots indexed by current_worker().
//   oneTBB: parallel_for, enumerable_thread_specific<vector<Diag>>, flow::graph of
//           continue_nodes, nested parallel_for, parallel_deterministic_reduce.
//
// Checked: the result (diagnostics hash, totals, the double bit for bit) equals a serial
// run's, on every runtime, worker count and run. Hard error: analyse of `error_file` throws
// inside its function loop; the run must report it (vitte: GraphRun::wait() rethrows it and
// skips the tasks not started; oneTBB: the graph's context is cancelled, wait_for_all()
// rethrows) and must not have analysed any file that includes it, directly or not. Checked
// once per benchmark row, untimed; the timed runs inject no error.
#pragma once

#include <benchmark/benchmark.h>
#include <tbb/blocked_range.h>
#include <tbb/enumerable_thread_specific.h>
#include <tbb/flow_graph.h>
#include <tbb/parallel_for.h>
#include <tbb/parallel_reduce.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "algorithm_kernels.hpp"  // serial_tree_fold, process_cpu_s
#include "pass_workload.hpp"
#include "runtimes.hpp"

namespace bench::pass {
// ---- the serial reference -------------------------------------------------------------------
inline Result run_serial(const Corpus& c, std::vector<File>& files, std::vector<std::uint32_t>& order) {
  files.resize(c.paths.size());
  std::vector<Diag> diags;
  for (std::uint32_t i = 0; i < files.size(); ++i) lex_file(c, i, files[i], diags);
  order = break_cycles(files);
  for (std::uint32_t f : order) {
    std::vector<std::uint64_t> fh(files[f].funcs.size());
    for (std::size_t k = 0; k < fh.size(); ++k)
      if (analyse_fn(files[f], f, k, fh.data(), -1, c)) diags.push_back({f, files[f].funcs[k].line, Msg::LongFunction});
    finish_file(files, f, fh, -1, c);
  }
  auto leaf = [&](std::size_t b, std::size_t e, Totals acc) { return totals_leaf(files, b, e, acc); };
  const Totals t = serial_tree_fold(0, files.size(), kTotalsGrain, Totals{}, leaf, totals_join);
  return finish(c, files, diags, t);
}

// Which files a run analysed, and its hard error: what the error check reads.
inline Result failed(const std::vector<File>& files, const char* what) {
  Result r;
  r.error = what;
  for (const File& f : files) r.analysed += f.analysed, r.done.push_back(f.analysed);
  return r;
}

// ---- vitte ----------------------------------------------------------------------------------
inline Result run_vitte(vitte::Scheduler& s, const Corpus& c, std::int64_t error_file) {
  const std::size_t n = c.paths.size();
  std::vector<File> files(n);
  vitte::per_worker<std::vector<Diag>> diags(s);
  vitte::parallel_for(s, 0, n, 1, [&](std::size_t i) {
    lex_file(c, static_cast<std::uint32_t>(i), files[i], diags.local());
  });
  const std::vector<std::uint32_t> order = break_cycles(files);
  vitte::Graph g("analyse");
  std::vector<vitte::TaskRef> task(n);
  for (std::uint32_t f : order) {
    task[f] = g.add([&, f] {
      std::vector<std::uint64_t> fh(files[f].funcs.size());
      vitte::parallel_for(s, 0, fh.size(), kFnGrain, [&](std::size_t k) {
        if (analyse_fn(files[f], f, k, fh.data(), error_file, c))
          diags.local().push_back({f, files[f].funcs[k].line, Msg::LongFunction});
      });
      finish_file(files, f, fh, error_file, c);
    });
    for (std::uint32_t u : files[f].preds) task[u].precede(task[f]);
  }
  try {
    s.run(g).wait();  // the first error skips every task not yet started
  } catch (const HardError& e) {
    return failed(files, e.what());
  }
  const Totals t = vitte::parallel_reduce(
      s, 0, n, kTotalsGrain, Totals{},
      [&](std::size_t b, std::size_t e, Totals acc) { return totals_leaf(files, b, e, acc); }, totals_join);
  std::vector<Diag> all;
  diags.for_each([&](const std::vector<Diag>& d) { all.insert(all.end(), d.begin(), d.end()); });
  return finish(c, files, all, t);
}

// ---- oneTBB (called inside the arena) ------------------------------------------------------
inline Result run_tbb(const Corpus& c, std::int64_t error_file) {
  using Range = tbb::blocked_range<std::size_t>;
  using Node = tbb::flow::continue_node<tbb::flow::continue_msg>;
  const std::size_t n = c.paths.size();
  std::vector<File> files(n);
  tbb::enumerable_thread_specific<std::vector<Diag>> diags;
  tbb::parallel_for(Range(0, n, 1), [&](const Range& r) {
    std::vector<Diag>& d = diags.local();
    for (std::size_t i = r.begin(); i < r.end(); ++i) lex_file(c, static_cast<std::uint32_t>(i), files[i], d);
  });
  const std::vector<std::uint32_t> order = break_cycles(files);
  tbb::flow::graph g;  // its own task_group_context: a body's exception cancels the graph
  std::vector<std::unique_ptr<Node>> node(n);
  for (std::uint32_t f : order) {
    node[f] = std::make_unique<Node>(g, [&, f](const tbb::flow::continue_msg&) {
      std::vector<std::uint64_t> fh(files[f].funcs.size());
      tbb::parallel_for(Range(0, fh.size(), kFnGrain), [&](const Range& r) {
        for (std::size_t k = r.begin(); k < r.end(); ++k)
          if (analyse_fn(files[f], f, k, fh.data(), error_file, c))
            diags.local().push_back({f, files[f].funcs[k].line, Msg::LongFunction});
      });
      finish_file(files, f, fh, error_file, c);
    });
    for (std::uint32_t u : files[f].preds) tbb::flow::make_edge(*node[u], *node[f]);
  }
  for (std::uint32_t f : order)
    if (files[f].preds.empty()) node[f]->try_put(tbb::flow::continue_msg());
  try {
    g.wait_for_all();  // rethrows the body's exception after cancelling the graph's context
  } catch (const HardError& e) {
    return failed(files, e.what());
  }
  const Totals t = tbb::parallel_deterministic_reduce(
      Range(0, n, kTotalsGrain), Totals{},
      [&](const Range& r, Totals acc) { return totals_leaf(files, r.begin(), r.end(), acc); }, totals_join,
      tbb::simple_partitioner());
  std::vector<Diag> all;
  for (const std::vector<Diag>& d : diags) all.insert(all.end(), d.begin(), d.end());
  return finish(c, files, all, t);
}

// ---- setup: the tree, the serial answer, the error file ------------------------------------
struct Setup {
  Corpus c;
  Result ref;
  std::int64_t error_file = -1;
  std::vector<std::uint32_t> dependents;  // the files that include the error file, directly or not
  std::string problem;                    // why there is nothing to run, if so
};

inline const Setup& setup() {
  static const Setup s = [] {
    namespace fs = std::filesystem;
    Setup s;
    const char* env = std::getenv("VITTE_BENCH_PASS_DIR");
    s.c.root = env != nullptr && *env != '\0' ? env : "/usr/include/c++/12";
    std::error_code ec;
    for (fs::recursive_directory_iterator it(s.c.root, ec), end; !ec && it != end; it.increment(ec))
      if (it->symlink_status(ec).type() == fs::file_type::regular)
        s.c.paths.push_back(it->path().lexically_relative(s.c.root).generic_string());
    if (ec || s.c.paths.empty()) {
      s.problem = "pass_driver: '" + s.c.root + "' holds no regular files" + (ec ? " (" + ec.message() + ")" : "") +
                  "; set VITTE_BENCH_PASS_DIR to a source tree";
      return s;
    }
    std::sort(s.c.paths.begin(), s.c.paths.end());
    for (std::uint32_t i = 0; i < s.c.paths.size(); ++i) {
      const std::string& p = s.c.paths[i];
      s.c.by_path.emplace(p, i);
      // Every suffix that starts a path component; the shortest path wins, then the first.
      for (std::size_t pos = 0;;) {
        auto [it, fresh] = s.c.by_suffix.emplace(p.substr(pos), i);
        if (!fresh && s.c.paths[it->second].size() > p.size()) it->second = i;
        const std::size_t slash = p.find('/', pos);
        if (slash == std::string::npos) break;
        pos = slash + 1;
      }
    }
    std::vector<File> files;
    std::vector<std::uint32_t> order;
    s.ref = run_serial(s.c, files, order);
    // The error file: the one most files depend on, directly or not, so its error must skip
    // the most. `order` is topological (preds first), so one pass marks a file's dependents.
    std::vector<std::uint8_t> mark(files.size());
    for (std::uint32_t f = 0; f < files.size(); ++f) {
      std::fill(mark.begin(), mark.end(), 0);
      mark[f] = 1;
      std::vector<std::uint32_t> reach;
      for (std::uint32_t g : order)
        for (std::uint32_t u : files[g].preds)
          if (mark[u] != 0 && mark[g] == 0) mark[g] = 1, reach.push_back(g);
      if (s.error_file < 0 || reach.size() > s.dependents.size()) s.error_file = f, s.dependents = std::move(reach);
    }
    return s;
  }();
  return s;
}

inline Result drive(Runtime r, int threads, const Corpus& c, std::int64_t error_file) {
  Result out;
  if (r == Runtime::Vitte) {
    // As a root task, so the driver's serial parts run on a worker, as oneTBB's run on a
    // thread of its arena.
    vitte::Scheduler& s = vitte_scheduler(threads);
    vitte::TaskGroup root(s);
    root.run([&] { out = run_vitte(s, c, error_file); });
    root.wait();
  } else {
    tbb_arena(threads).execute([&] { out = run_tbb(c, error_file); });
  }
  return out;
}

inline void pass_bench(benchmark::State& st, Runtime r, int threads, std::atomic<bool>* wrong, double (*peak_rss)()) {
  const Setup& s = setup();
  auto fail = [&](const std::string& why) {
    *wrong = true;
    st.SkipWithError(why.c_str());
  };
  if (!s.problem.empty()) return fail(s.problem);
  // Once, untimed: the injected hard error is reported and nothing that depends on it ran.
  const Result e = drive(r, threads, s.c, s.error_file);
  const std::string want = "hard error in " + s.c.paths[static_cast<std::size_t>(s.error_file)];
  std::size_t ran = e.done.empty() ? 0 : e.done[static_cast<std::size_t>(s.error_file)];
  for (std::uint32_t d : s.dependents) ran += e.done.empty() ? 0 : e.done[d];
  if (e.error != want || ran != 0)
    return fail("the injected hard error: reported '" + e.error + "' (want '" + want + "'), " + std::to_string(ran) +
                " file(s) that depend on it were analysed");
  double cpu = 0;
  for (auto _ : st) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = algo::process_cpu_s();
    const Result got = drive(r, threads, s.c, -1);
    cpu += algo::process_cpu_s() - c0;
    st.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (!got.error.empty() || !got.same(s.ref)) {
      fail("wrong result: not the serial run's diagnostics and totals" + (got.error.empty() ? "" : ": " + got.error));
      break;
    }
  }
  algo::add_cpu_counter(st, cpu);
  st.counters["files"] = static_cast<double>(s.c.paths.size());
  st.counters["tokens"] = static_cast<double>(s.ref.t.tokens);
  st.counters["functions"] = static_cast<double>(s.ref.t.functions);
  st.counters["diags"] = static_cast<double>(s.ref.diags);
  st.counters["cancel_skipped"] = static_cast<double>(s.c.paths.size() - e.analysed);  // at least the dependents
  st.counters["cancel_dependents"] = static_cast<double>(s.dependents.size());
  st.counters["peak_rss_MiB"] = peak_rss();
}

}  // namespace bench::pass

namespace bench {
inline void register_pass_driver(const std::vector<int>& thread_counts, std::atomic<bool>& wrong,
                                 double (*peak_rss)()) {
  for (Runtime r : {Runtime::Vitte, Runtime::Tbb})
    for (int t : thread_counts)
      benchmark::RegisterBenchmark((std::string("pass_driver/") + name(r) + "/threads:" + std::to_string(t)).c_str(),
                                   pass::pass_bench, r, t, &wrong, peak_rss)
          ->Unit(benchmark::kMillisecond)->UseManualTime();
}
}  // namespace bench

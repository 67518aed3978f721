// The main job as a pass pipeline on one vitte::Graph.
//
// Per file i, a chain   read(i) -> lex(i) -> collect(i)   (collect parses the #include
// directives lex found and resolves them to files of the tree). Every collect precedes one
// dynamic task, `link`, which sees the whole include graph: it breaks its cycles (a DFS in
// file-path order that drops each edge to a file still on the DFS stack, i.e. back edges
// and self-includes) and adds, in its subflow, one analyse(i) per file, preceded by
// analyse(j) for every kept edge i -> j (a file's analysis waits for those of the files
// it includes). analyse(i) counts the files i reaches over *all* its include edges, cycles
// included, so the answers are those of run_job_phases().
//
// The graph is built once (per file list) and run as often as needed, on any scheduler;
// link rebuilds the subflow on every run (the includes may have changed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cli/include_graph.hpp"
#include "vitte/graph.hpp"
#include "vitte/per_worker.hpp"
#include "vitte/scheduler.hpp"

namespace vitte::cli {

// The passes, in pipeline order; a task's name is its pass, then (with name_files) a
// space and the file's path.
inline constexpr const char* kPasses[] = {"read", "lex", "collect", "link", "analyse"};
inline constexpr std::size_t kPassCount = 5;

// Per pass, from a traced run: tasks, the sum of their durations, and the wall time from
// the first task's start to the last one's end.
struct PassTime {
  std::string pass;
  std::size_t tasks = 0;
  double task_seconds = 0;
  double wall_seconds = 0;
};

class PassPipeline {
 public:
  // `files` (a list_tree() result) must outlive the pipeline and keep its size; every
  // run resets and refills it. With name_files each task's name carries its file's path
  // (for --dot), otherwise just its pass.
  PassPipeline(std::string root, std::vector<SourceFile>& files, bool name_files = false);
  PassPipeline(const PassPipeline&) = delete;
  PassPipeline& operator=(const PassPipeline&) = delete;

  // Runs the pipeline on `sched` and waits for it; `trace` times every task.
  JobResult run(Scheduler& sched, bool trace = false);
  // Runs link and its analyse subflow alone, on files whose read, lex and collect passes
  // were done elsewhere (across MPI ranks, cli/dist_job.hpp): `files` must hold their
  // results (bytes, tokens, includes, edges, skips) and zero reach. Untraced.
  JobResult run_linked(Scheduler& sched);

  // The tasks of a run over n files: 3 per file, link, and 1 analyse per file.
  static std::size_t tasks_for(std::size_t files) { return 4 * files + 1; }

  const Graph& graph() const { return graph_; }
  // The include edges the last run dropped to break cycles, as (from, to) paths.
  std::vector<std::pair<std::string, std::string>> dropped_edges() const;
  // Per-pass totals of the last run; it must have been traced.
  std::vector<PassTime> pass_times() const;
  // The last traced run's graph as DOT (the static chains and link, the analyse subflow
  // as a cluster, each task labelled with its timings), with the dropped edges as comments.
  std::string dot() const;

 private:
  void link(Subflow& sf);
  void analyse(std::uint32_t file);
  // The work space analyse needs for `sched`'s workers; the totals of a finished run.
  void prepare(Scheduler& sched);
  JobResult result(Scheduler& sched, double seconds) const;

  std::string root_;
  std::vector<SourceFile>& files_;
  bool name_files_;
  IncludeIndex index_;
  Graph graph_{"vitte-sched run"};
  Graph link_graph_{"vitte-sched run: link"};  // link alone, for run_linked()
  // Per file, between read and collect: the text and the offsets of its directives.
  std::vector<std::string> text_;
  std::vector<std::vector<std::uint32_t>> directives_;
  // link's work space, kept across runs.
  std::vector<std::uint8_t> color_;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> stack_;  // (file, next edge)
  std::vector<TaskRef> analyse_task_;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> dropped_;
  std::size_t analyse_edges_ = 0;
  // analyse's per-worker work space, made by prepare() for the run's scheduler.
  std::unique_ptr<per_worker<ReachScratch>> scratch_;
};

}  // namespace vitte::cli

// The main job across the ranks of an MPI job: `mpirun -np N vitte-sched run`.
//
// Every rank lists the same tree (a shared filesystem) and starts a vitte::dist::Cluster on
// its own scheduler; the ranks compare their file lists (count and a hash of the paths)
// and all fail, naming the rank that differs, if one does. Rank 0 then spawns the read,
// lex and collect passes into the cluster's distributed pool in chunks of consecutive
// files; a chunk runs on whichever rank steals it and sends back, per file, what the later
// passes and the answers need (bytes, tokens, skip, include directives and their resolved
// edges). Rank 0 runs link and its analyse subflow (PassPipeline::run_linked), which need
// the whole include graph, so its answers are those of a 1-rank run.
//
// Failures keep the ranks in step: each collective step ends with every rank's status, so
// either every rank goes on or every rank stops with the same error, reported once, by
// rank 0 (RanksFailure on the others).
//
// Launch detection and the per-rank report are compiled always; DistJob itself only when
// the build has vitte::dist (VITTE_HAVE_DIST in build_config.hpp; dist_job.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/include_graph.hpp"
#include "vitte/scheduler.hpp"

namespace vitte::cli {

class PassPipeline;

// How the launcher (mpirun, srun, hydra) started this process, from its environment.
struct Launch {
  int rank = -1;  // -1: not started by a launcher
  int size = 0;   // ranks in the job; 0 when the launcher does not say
  // Whether the job runs across ranks: launched, and not known to be alone. A launch of
  // one rank runs the local job, exactly as without a launcher.
  bool across() const { return rank >= 0 && size != 1; }
  // Whether this process should stay quiet about failures rank 0 reports too.
  bool secondary() const { return across() && rank > 0; }
};
Launch launch_info();

// A failure every rank meets alike (the same arguments, a collective step's status): rank
// 0 reports it and exits with its status; the other ranks print nothing and exit 0 (main.cpp
// says why), so that stdout holds one report (one JSON document with --json) and mpirun's
// status is rank 0's.
class RanksFailure : public Failure {
 public:
  using Failure::Failure;
};

// One rank's share of the measured run, gathered to rank 0.
struct RankReport {
  int rank = 0;
  std::string host;
  std::uint64_t workers = 0;
  std::uint64_t chunks = 0, files = 0, bytes = 0;  // read, lexed and collected here
  double busy_seconds = 0;                         // those chunks' run times, summed
  // From vitte::dist::ClusterStats, over the measured run only.
  std::uint64_t messages_sent = 0, bytes_sent = 0, bytes_received = 0;
  std::uint64_t steal_requests = 0, steals_won = 0;  // remote steals asked for, and won
  std::uint64_t tasks_stolen_in = 0, tasks_given = 0;
  std::uint64_t peak_rss_bytes = 0;
  template <class Archive>
  void serialize(Archive& a) {
    a(rank, host, workers, chunks, files, bytes, busy_seconds, messages_sent, bytes_sent, bytes_received,
      steal_requests, steals_won, tasks_stolen_in, tasks_given, peak_rss_bytes);
  }
};

// --json's "per_rank": one object per rank; rates over the run's `seconds` (rank 0's wall
// time of the measured run, which every rank's work falls within).
nlohmann::json ranks_json(const std::vector<RankReport>& ranks, double seconds);
// The report's per-rank lines.
std::string describe_ranks(const std::vector<RankReport>& ranks, double seconds);

class DistJob {
 public:
  // Collective. Starts the cluster on `sched` and checks that every rank listed the same
  // `files` under `root`; `listing_error` is this rank's failure to list the tree (then
  // `files` is empty), reported by rank 0 as that rank's. `files` must outlive the job.
  DistJob(Scheduler& sched, const std::string& root, std::vector<SourceFile>& files,
          const std::string& listing_error);
  ~DistJob();
  DistJob(const DistJob&) = delete;
  DistJob& operator=(const DistJob&) = delete;

  int rank() const;
  int size() const;

  // Collective: one run of the job; `pipeline` is over `files`. Rank 0's result (seconds:
  // its wall time from the first chunk spawned to the end of analyse; tasks: the chunks,
  // link and the analyse tasks); the other ranks' is empty.
  JobResult run(PassPipeline& pipeline);
  // Collective: every rank's report on the last run (on rank 0; empty elsewhere), then
  // stops the cluster, so that what rank 0 does next has the machine to itself.
  std::vector<RankReport> finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vitte::cli

// vitte-dist-bench: vitte::dist against MPI's own floor and against the MPI + oneTBB
// program a user would write instead (docs/bench/*-dist.json, scripts/dist_bench.sh).
//
// One process per rank. main() initialises MPI itself, so that the raw-MPI baselines can
// call MPI while no Cluster lives; each repetition then alternates a baseline phase (MPI
// alone owns the process) and a vitte phase (a Cluster made for it and destroyed after it),
// so both see the same drift of a shared machine. Every result is checked against a known
// answer; a wrong one makes every rank exit 1.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "tests/dist/dist_kernels.hpp"

namespace vitte {
class Scheduler;
}

namespace distbench {

struct Config {
  std::string kernel = "uts";  // uts | nqueens | pingpong | all
  int workers = 1;             // vitte workers and oneTBB threads per rank
  int reps = 5;
  bool with_static = false;    // uts: also the MPI + oneTBB static split, alternated
  bool serial = false;         // time the serial kernel once on rank 0 (context, not a bar)
  vitte::dist_kernels::UtsParams uts{64, 0.124875, 8, 300, 1};
  int frontier_per_rank = 16;  // the static split deals this many frontier nodes per rank
  int queens = 15;
  int queens_split = 3;        // rows fixed per nqueens pool task
  int iters = 2000;            // round trips per ping-pong repetition
  int warmup = 200;            // round trips before each timed loop
  int steal_tasks = 400;       // tasks of the steal probe
  int steal_task_us = 50;      // busy time of each
  bool split_cpus = true;      // each rank's workers on its own share of the node's CPUs
  std::string json_path;       // empty: the JSON object goes to stdout
};

// One measured quantity: a value per repetition (seconds or microseconds).
struct Series {
  std::string name;
  std::string unit;
  std::vector<double> per_rep;
};

// A result compared with its known value.
struct Check {
  std::string what;
  double expected = 0;
  double got = 0;
  bool ok() const { return expected == got; }
};

// What a kernel's run produced on rank 0 (other ranks return it empty).
struct Report {
  std::vector<Series> series;
  std::vector<Check> checks;
};

// vitte's counters (ClusterStats) over one kind of phase, summed over its repetitions, on
// one rank. Plain numbers, so that main() can gather them with MPI once no Cluster lives.
struct Acc {
  std::uint64_t messages_sent = 0, bytes_sent = 0, steal_requests = 0, steals_won = 0, steal_replies = 0,
                steal_reply_ns = 0, tasks_stolen_in = 0, tasks_given = 0, lifeline_pushes = 0, calls_served = 0,
                pool_tasks_run = 0;
  double comm_idle_cpu_s = 0;
};
// This rank's accumulators, by phase name, in the order phases first ran (the same on
// every rank: they all run the same sequence).
std::vector<std::pair<std::string, Acc>>& accs();

// The known answers.
long queens_known(int n);                       // solutions of n queens (n <= 16), -1 if unknown
std::uint64_t uts_known(const vitte::dist_kernels::UtsParams& p);  // the tree's node count

// Raw MPI (dist_bench_mpi.cpp). Collective over MPI_COMM_WORLD; call only while no Cluster
// lives. Results on rank 0.
double mpi_pingpong_rtt_us(int iters, int warmup, bool* echo_ok);  // mean round trip, ranks 0 and 1
struct StaticResult {
  double seconds = 0;
  std::uint64_t nodes = 0;        // total over ranks (rank 0)
  std::uint64_t max_share = 0;    // the largest rank's node count (rank 0), to show the imbalance
};
StaticResult static_uts(const vitte::dist_kernels::UtsParams& p, int threads, int frontier_per_rank);
void mpi_barrier();
std::vector<Acc> mpi_gather(const Acc& mine);  // every rank's, on rank 0
bool mpi_all_ok(bool mine);  // every rank's flag, and-ed
int mpi_rank();
int mpi_size();

// vitte::dist (dist_bench_vitte.cpp). Each makes a Cluster on `sched` for its duration.
void vitte_uts_rep(vitte::Scheduler& sched, const Config& c, Report& out, int rep);
void vitte_nqueens_rep(vitte::Scheduler& sched, const Config& c, Report& out, int rep);
void vitte_pingpong_rep(vitte::Scheduler& sched, const Config& c, Report& out, int rep);

// Output (dist_bench_main.cpp).
Series& series(Report& r, const std::string& name, const std::string& unit);
double median(std::vector<double> v);

}  // namespace distbench

// vitte-dist-bench (dist_bench.hpp): flags, the repetition loop, and the report: one JSON
// object (to --json FILE, else stdout) and a readable table (to stdout with --json, else
// stderr), both from rank 0. Run under mpirun; scripts/dist_bench.sh runs the matrix.
//
//   mpirun -np 2 --bind-to none build/benchmarks/vitte-dist-bench --kernel uts --workers 1 --reps 5 --static
//
// --kernel uts|nqueens|pingpong|all   --workers N (per rank)   --reps N   --static (uts: the
// MPI + oneTBB split too)   --serial (time the serial kernel once, rank 0)   --tiny (small
// sizes, for the smoke test)   --shared-cpus (every rank's workers see the whole node; by
// default each rank of a node gets its own share of the CPUs, see make_scheduler)   --json FILE   size flags: --uts-root --uts-seed --uts-work
// --frontier-per-rank --queens --queens-split --iters --warmup --steal-tasks --steal-task-us
#include <mpi.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <memory>
#include <string>

#include "dist_bench.hpp"
#include "vitte/dist.hpp"
#include "vitte/scheduler.hpp"
#include "vitte/topology.hpp"

namespace k = vitte::dist_kernels;

namespace distbench {

long queens_known(int n) {
  static const long known[] = {1, 1, 0, 0, 2, 10, 4, 40, 92, 352, 724, 2680, 14200, 73712, 365596, 2279184, 14772512};
  return n >= 0 && n <= 16 ? known[n] : -1;
}

std::uint64_t uts_known(const k::UtsParams& p) {
  // The tree's shape does not depend on `work` (dist_kernels.hpp), so the count of a
  // work-0 walk (milliseconds) is the answer for every `work`.
  static k::UtsParams cached_for{0, 0, 0, 0, 0};
  static std::uint64_t cached = 0;
  k::UtsParams shape = p;
  shape.work = 0;
  if (cached == 0 || shape.root_children != cached_for.root_children || shape.q != cached_for.q ||
      shape.m != cached_for.m || shape.seed != cached_for.seed) {
    cached = k::uts_serial(shape.seed, 0, shape);
    cached_for = shape;
  }
  return cached;
}

Series& series(Report& r, const std::string& name, const std::string& unit) {
  for (auto& s : r.series)
    if (s.name == name) return s;
  r.series.push_back(Series{name, unit, {}});
  return r.series.back();
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

namespace {

// Flags are read before MPI starts (the scheduler is made first, see make_scheduler).
[[noreturn]] void usage(const std::string& why) {
  int up = 0;
  MPI_Initialized(&up);
  if ((up ? mpi_rank() : std::max(0, vitte::dist::launch_rank())) == 0)
    std::fprintf(stderr, "vitte-dist-bench: %s (see the head of benchmarks/dist_bench_main.cpp)\n", why.c_str());
  if (up) MPI_Finalize();
  std::exit(2);
}

Config parse(int argc, char** argv) {
  Config c;
  bool tiny = false;
  std::vector<std::pair<std::string, std::string>> kv;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) usage("unexpected argument " + a);
    a = a.substr(2);
    if (a == "static") c.with_static = true;
    else if (a == "serial") c.serial = true;
    else if (a == "tiny") tiny = true;
    else if (a == "shared-cpus") c.split_cpus = false;
    else if (const auto eq = a.find('='); eq != std::string::npos) kv.emplace_back(a.substr(0, eq), a.substr(eq + 1));
    else if (i + 1 < argc) kv.emplace_back(a, argv[++i]);
    else usage("--" + a + " needs a value");
  }
  if (tiny) {  // the smoke test: every path, answers checked, in a second or two
    c.uts = k::UtsParams{64, 0.124875, 8, 5, 34};  // 67,369 nodes, 60 % under one root child
    c.queens = 10;
    c.queens_split = 2;
    c.iters = 200;
    c.warmup = 20;
    c.steal_tasks = 100;
    c.steal_task_us = 20;
    c.reps = 2;
  }
  for (const auto& [key, v] : kv) {
    const auto num = [&] {
      char* end = nullptr;
      const long x = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || x < 0) usage("--" + key + ": not a count: " + v);
      return x;
    };
    if (key == "kernel") c.kernel = v;
    else if (key == "workers") c.workers = static_cast<int>(num());
    else if (key == "reps") c.reps = static_cast<int>(num());
    else if (key == "uts-root") c.uts.root_children = static_cast<std::uint32_t>(num());
    else if (key == "uts-seed") c.uts.seed = static_cast<std::uint64_t>(num());
    else if (key == "uts-work") c.uts.work = static_cast<std::uint32_t>(num());
    else if (key == "frontier-per-rank") c.frontier_per_rank = static_cast<int>(num());
    else if (key == "queens") c.queens = static_cast<int>(num());
    else if (key == "queens-split") c.queens_split = static_cast<int>(num());
    else if (key == "iters") c.iters = static_cast<int>(num());
    else if (key == "warmup") c.warmup = static_cast<int>(num());
    else if (key == "steal-tasks") c.steal_tasks = static_cast<int>(num());
    else if (key == "steal-task-us") c.steal_task_us = static_cast<int>(num());
    else if (key == "json") c.json_path = v;
    else usage("unknown flag --" + key);
  }
  if (c.kernel != "uts" && c.kernel != "nqueens" && c.kernel != "pingpong" && c.kernel != "all")
    usage("--kernel: uts, nqueens, pingpong or all");
  if (c.workers < 1 || c.reps < 1 || c.iters < 1 || c.frontier_per_rank < 1) usage("--workers, --reps, --iters, --frontier-per-rank: at least 1");
  if (queens_known(c.queens) < 0 || c.queens < 1) usage("--queens: 1 to 16 (the known totals)");
  return c;
}

// The scheduler pins its workers to the first cores of the topology it sees, and every
// rank's scheduler sees the whole node: with 2 ranks x 1 worker on 2 cores both workers
// would share core 0 (measured: each ran 52 % of the time, 2 ranks no faster than one).
// So, as `mpirun --bind-to core` would, each rank of a node gets its own slice of the CPUs
// this process may use, while its scheduler is made (Topology::this_machine() honours the
// affinity mask); the mask is restored after, so that the main thread, the cluster's
// communication thread and oneTBB float over the node as they would unpinned. This runs
// before MPI starts: hwloc reads the process's binding as the union over its threads, and
// MPI_Init starts threads of its own. The node-local rank comes from the launcher's
// environment, as launch_rank() reads the global one. Returns the CPUs the workers were
// given ("" when not split).
int env_int(std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (const char* v = std::getenv(n); v != nullptr && *v != '\0') return std::atoi(v);
  return -1;
}

std::string make_scheduler(const Config& c, std::unique_ptr<vitte::Scheduler>& out) {
  const int local = env_int({"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"});
  const int locals = env_int({"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"});
  cpu_set_t all;
  CPU_ZERO(&all);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof all, &all) == 0)
    for (int i = 0; i < CPU_SETSIZE; ++i)
      if (CPU_ISSET(i, &all)) cpus.push_back(i);
  std::string given;
  const bool split =
      c.split_cpus && local >= 0 && locals > 1 && local < locals && cpus.size() >= static_cast<std::size_t>(locals);
  if (split) {
    const std::size_t share = cpus.size() / static_cast<std::size_t>(locals);
    cpu_set_t mine;
    CPU_ZERO(&mine);
    for (std::size_t i = share * static_cast<std::size_t>(local); i < share * (static_cast<std::size_t>(local) + 1); ++i) {
      CPU_SET(cpus[i], &mine);
      given += (given.empty() ? "" : ",") + std::to_string(cpus[i]);
    }
    sched_setaffinity(0, sizeof mine, &mine);
  }
  vitte::Options o;
  o.workers = static_cast<std::size_t>(c.workers);
  o.topology = vitte::Topology::this_machine();
  out = std::make_unique<vitte::Scheduler>(std::move(o));
  if (split) sched_setaffinity(0, sizeof all, &all);
  return given;
}

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

void run_serial(const Config& c, bool uts, bool queens, Report& out) {
  if (mpi_rank() == 0) {
    if (uts) {
      const double t0 = now_s();
      const auto n = k::uts_serial(c.uts.seed, 0, c.uts);
      series(out, "uts/serial", "s").per_rep.push_back(now_s() - t0);
      out.checks.push_back({"uts/serial: nodes", static_cast<double>(uts_known(c.uts)), static_cast<double>(n)});
    }
    if (queens) {
      const double t0 = now_s();
      const long n = k::queens_from(c.queens, 0, 0, 0);
      series(out, "nqueens/serial", "s").per_rep.push_back(now_s() - t0);
      out.checks.push_back({"nqueens/serial: solutions", static_cast<double>(queens_known(c.queens)), static_cast<double>(n)});
    }
  }
  mpi_barrier();
}

}  // namespace

std::string to_json(const Config& c, const Report& r, const std::vector<std::vector<Acc>>& stats, bool ok);
void print_table(const Config& c, const Report& r, bool ok, std::FILE* to);

}  // namespace distbench

int main(int argc, char** argv) {
  using namespace distbench;
  // MPI is ours, not the cluster's: the raw-MPI baselines run between clusters. The
  // cluster needs MPI_THREAD_SERIALIZED (its communication thread calls MPI).
  const Config c = parse(argc, argv);
  std::unique_ptr<vitte::Scheduler> owned;
  const std::string given = make_scheduler(c, owned);
  vitte::Scheduler& sched = *owned;
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
  if (provided < MPI_THREAD_SERIALIZED) usage("MPI gives less than MPI_THREAD_SERIALIZED");
  const bool all = c.kernel == "all";
  const bool uts = all || c.kernel == "uts", queens = all || c.kernel == "nqueens";
  const bool pingpong = (all || c.kernel == "pingpong") && mpi_size() >= 2;
  if (c.kernel == "pingpong" && !pingpong) usage("--kernel pingpong needs 2 ranks or more");
  Report out;
  try {
    if (!given.empty()) {
      // Shown per rank: which CPUs its workers got.
      std::fprintf(stderr, "vitte-dist-bench: rank %d: workers on CPU(s) %s\n", mpi_rank(), given.c_str());
    }
    if (uts && mpi_rank() == 0 && c.uts.root_children == 64 && c.uts.seed == 1 && c.uts.q == 0.124875 && c.uts.m == 8)
      out.checks.push_back({"uts kernel: the (64 children, seed 1) tree", 924025, static_cast<double>(uts_known(c.uts))});
    if (c.serial) run_serial(c, uts, queens, out);
    for (int rep = 1; rep <= c.reps; ++rep) {
      if (uts) {
        if (c.with_static) {
          const auto st = static_uts(c.uts, c.workers, c.frontier_per_rank);
          if (mpi_rank() == 0) {
            series(out, "uts/static_mpi_tbb", "s").per_rep.push_back(st.seconds);
            series(out, "uts/static_largest_share", "fraction").per_rep.push_back(static_cast<double>(st.max_share) / st.nodes);
            out.checks.push_back({"uts/static rep " + std::to_string(rep) + ": nodes", static_cast<double>(uts_known(c.uts)),
                                  static_cast<double>(st.nodes)});
          }
        }
        vitte_uts_rep(sched, c, out, rep);
      }
      if (queens) vitte_nqueens_rep(sched, c, out, rep);
      if (pingpong) {
        bool echo = true;
        const double us = mpi_pingpong_rtt_us(c.iters, c.warmup, &echo);
        if (mpi_rank() == 0) {
          series(out, "pingpong/mpi", "us").per_rep.push_back(us);
          out.checks.push_back({"pingpong/mpi echo rep " + std::to_string(rep), 1, echo ? 1.0 : 0.0});
        }
        vitte_pingpong_rep(sched, c, out, rep);
      }
    }
  } catch (const std::exception& e) {
    // Other ranks may be waiting in a collective for this one: end the job.
    std::fprintf(stderr, "vitte-dist-bench: rank %d: %s\n", mpi_rank(), e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  std::vector<std::vector<Acc>> stats;
  for (const auto& [phase, a] : accs()) stats.push_back(mpi_gather(a));
  bool mine = true;
  for (const auto& ch : out.checks) mine = mine && ch.ok();
  const bool ok = mpi_all_ok(mine);
  if (mpi_rank() == 0) {
    const std::string json = to_json(c, out, stats, ok);
    if (c.json_path.empty()) {
      print_table(c, out, ok, stderr);
      std::printf("%s\n", json.c_str());
    } else {
      print_table(c, out, ok, stdout);
      std::FILE* f = std::fopen(c.json_path.c_str(), "w");
      if (f == nullptr || std::fputs(json.c_str(), f) < 0 || std::fputc('\n', f) == EOF || std::fclose(f) != 0) {
        std::fprintf(stderr, "vitte-dist-bench: cannot write %s\n", c.json_path.c_str());
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
    }
    std::fflush(stdout);
  }
  MPI_Finalize();
  return ok ? 0 : 1;
}

// The vitte::dist side of vitte-dist-bench: each repetition makes a Cluster on the
// program's scheduler, measures, checks, adds the cluster's counters to this rank's
// accumulators, and destroys it (so the raw-MPI baseline of the next repetition may run).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <vector>

#include "dist_bench.hpp"
#include "vitte/dist.hpp"

namespace vd = vitte::dist;
namespace k = vitte::dist_kernels;

namespace distbench {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

vd::Cluster& cluster() { return *vd::Cluster::current(); }

// ---- the functions the ranks call ----

void noop() {}
int whoami() { return cluster().rank(); }

// `iters` remote round trips to rank 1 from inside a task (a worker of rank 0 waits in
// get(), the way a task that needs a remote value would); the mean in microseconds.
double rtt_in_task(int iters, int warmup) {
  for (int i = 0; i < warmup; ++i) cluster().async<&noop>(1).get();
  const double t0 = now_s();
  for (int i = 0; i < iters; ++i) cluster().async<&noop>(1).get();
  return (now_s() - t0) * 1e6 / iters;
}

std::atomic<std::uint64_t> g_uts_nodes{0};

// Explores a subtree depth-first; every 64 nodes it gives the oldest half of its stack
// back to the pool, where idle workers and ranks can take it. The oldest entries are the
// shallowest, so a thief gets the biggest subtrees. The static baseline splits its tasks
// the same way (dist_bench_mpi.cpp): only who may take them differs.
void uts_task(std::uint64_t id, int depth, k::UtsParams p) {
  const std::uint64_t count = k::uts_explore(id, depth, p, 64, [&p](std::uint64_t n, int d) {
    (void)cluster().spawn<&uts_task>(n, d, p);
  });
  g_uts_nodes.fetch_add(count, std::memory_order_relaxed);
}

long queens_task(int n, std::uint32_t cols, std::uint32_t d1, std::uint32_t d2) { return k::queens_from(n, cols, d1, d2); }

std::atomic<std::uint64_t> g_busy_runs{0};
// Busy (not sleeping) for `us`: a task that occupies its worker, as real work would.
void busy(int us) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  while (std::chrono::steady_clock::now() < end) {
  }
  g_busy_runs.fetch_add(1, std::memory_order_relaxed);
}

const vd::Functions& functions() {
  static const vd::Functions f = [] {
    vd::Functions t;
    t.add<&noop>("noop")
        .add<&whoami>("whoami")
        .add<&rtt_in_task>("rtt_in_task")
        .add<&uts_task>("uts")
        .add<&queens_task>("queens")
        .add<&busy>("busy");
    return t;
  }();
  return f;
}

// ---- counters ----

Acc& acc(const std::string& phase) {
  for (auto& [name, a] : accs())
    if (name == phase) return a;
  accs().emplace_back(phase, Acc{});
  return accs().back().second;
}

void add_delta(const std::string& phase, const vd::ClusterStats& a, const vd::ClusterStats& b) {
  Acc& x = acc(phase);
  x.messages_sent += b.messages_sent - a.messages_sent;
  x.bytes_sent += b.bytes_sent - a.bytes_sent;
  x.steal_requests += b.steal_requests - a.steal_requests;
  x.steals_won += b.steals_won - a.steals_won;
  x.steal_replies += b.steal_replies - a.steal_replies;
  x.steal_reply_ns += b.steal_reply_ns - a.steal_reply_ns;
  x.tasks_stolen_in += b.tasks_stolen_in - a.tasks_stolen_in;
  x.tasks_given += b.tasks_given - a.tasks_given;
  x.lifeline_pushes += b.lifeline_pushes - a.lifeline_pushes;
  x.calls_served += b.calls_served - a.calls_served;
  x.pool_tasks_run += b.pool_tasks_run - a.pool_tasks_run;
  x.comm_idle_cpu_s += b.comm_idle_cpu_seconds - a.comm_idle_cpu_seconds;
}

// A barrier through the cluster (MPI belongs to it while it lives).
void barrier(vd::Cluster& cl) { (void)cl.sum(0); }

// Spawns one pool task per legal placement of the first `rows` rows.
void spawn_queens(vd::Cluster& cl, int n, int rows, std::uint32_t cols, std::uint32_t d1, std::uint32_t d2,
                  std::vector<vitte::Future<long>>& out) {
  const std::uint32_t all = (1u << n) - 1;
  if (rows == 0 || cols == all) {
    out.push_back(cl.spawn<&queens_task>(n, cols, d1, d2));
    return;
  }
  std::uint32_t free = all & ~(cols | d1 | d2);
  while (free != 0) {
    const std::uint32_t bit = free & (0u - free);
    free ^= bit;
    spawn_queens(cl, n, rows - 1, cols | bit, ((d1 | bit) << 1) & all, (d2 | bit) >> 1, out);
  }
}

}  // namespace

std::vector<std::pair<std::string, Acc>>& accs() {
  static std::vector<std::pair<std::string, Acc>> a;
  return a;
}

void vitte_uts_rep(vitte::Scheduler& sched, const Config& c, Report& out, int rep) {
  vd::Cluster cl(sched, functions());
  g_uts_nodes.store(0);
  const auto s0 = cl.stats();
  barrier(cl);
  const double t0 = now_s();
  if (cl.rank() == 0) (void)cl.spawn<&uts_task>(c.uts.seed, 0, c.uts);
  cl.join_all();
  const auto total = cl.sum(g_uts_nodes.load());
  const double t1 = now_s();
  add_delta("uts", s0, cl.stats());
  if (cl.rank() == 0) {
    series(out, "uts/vitte", "s").per_rep.push_back(t1 - t0);
    out.checks.push_back({"uts/vitte rep " + std::to_string(rep) + ": nodes", static_cast<double>(uts_known(c.uts)),
                          static_cast<double>(total)});
  }
}

void vitte_nqueens_rep(vitte::Scheduler& sched, const Config& c, Report& out, int rep) {
  vd::Cluster cl(sched, functions());
  const auto s0 = cl.stats();
  barrier(cl);
  if (cl.rank() == 0) {
    const double t0 = now_s();
    std::vector<vitte::Future<long>> parts;
    spawn_queens(cl, c.queens, c.queens_split, 0, 0, 0, parts);
    long total = 0;
    for (auto& f : parts) total += f.get();
    const double t1 = now_s();
    series(out, "nqueens/vitte", "s").per_rep.push_back(t1 - t0);
    out.checks.push_back({"nqueens/vitte rep " + std::to_string(rep) + ": solutions",
                          static_cast<double>(queens_known(c.queens)), static_cast<double>(total)});
  }
  cl.join_all();
  add_delta("nqueens", s0, cl.stats());
}

void vitte_pingpong_rep(vitte::Scheduler& sched, const Config& c, Report& out, int rep) {
  vd::Cluster cl(sched, functions());
  const std::string r = " rep " + std::to_string(rep);
  // Remote calls: rank 0 alone calls, rank 1 serves (in join_all(), as any rank would).
  auto s0 = cl.stats();
  barrier(cl);
  if (cl.rank() == 0) {
    const int who = cl.async<&whoami>(1).get();
    for (int i = 0; i < c.warmup; ++i) cl.async<&noop>(1).get();
    const double t0 = now_s();
    for (int i = 0; i < c.iters; ++i) cl.async<&noop>(1).get();
    const double main_us = (now_s() - t0) * 1e6 / c.iters;
    // async() to this rank runs rtt_in_task as a plain task of this rank's scheduler.
    const double task_us = cl.async<&rtt_in_task>(0, c.iters, c.warmup).get();
    series(out, "pingpong/vitte_async", "us").per_rep.push_back(main_us);
    series(out, "pingpong/vitte_async_in_task", "us").per_rep.push_back(task_us);
    out.checks.push_back({"pingpong/vitte whoami(1)" + r, 1, static_cast<double>(who)});
  }
  cl.join_all();
  auto s1 = cl.stats();
  add_delta("pingpong_calls", s0, s1);
  const auto served = cl.sum(s1.calls_served - s0.calls_served);
  if (cl.rank() == 0)
    out.checks.push_back({"pingpong/vitte calls served" + r, 2.0 * (c.iters + c.warmup) + 1, static_cast<double>(served)});

  // Remote steals: rank 0 queues busy tasks; the other ranks, idle, steal them. The reply
  // times are the thieves' (ClusterStats: request sent to reply received, with tasks or
  // empty), summed over ranks.
  g_busy_runs.store(0);
  s0 = cl.stats();
  barrier(cl);
  if (cl.rank() == 0)
    for (int i = 0; i < c.steal_tasks; ++i) (void)cl.spawn<&busy>(c.steal_task_us);
  cl.join_all();
  s1 = cl.stats();
  add_delta("steal_probe", s0, s1);
  const auto runs = cl.sum(g_busy_runs.load());
  const auto replies = cl.sum(s1.steal_replies - s0.steal_replies);
  const auto reply_ns = cl.sum(s1.steal_reply_ns - s0.steal_reply_ns);
  const auto won = cl.sum(s1.steals_won - s0.steals_won);
  if (cl.rank() == 0) {
    out.checks.push_back({"pingpong/steal probe tasks run" + r, static_cast<double>(c.steal_tasks),
                          static_cast<double>(runs)});
    series(out, "pingpong/vitte_steal", "us").per_rep.push_back(replies ? reply_ns * 1e-3 / replies : 0.0);
    series(out, "pingpong/vitte_steal_replies", "count").per_rep.push_back(static_cast<double>(replies));
    series(out, "pingpong/vitte_steals_won", "count").per_rep.push_back(static_cast<double>(won));
  }
}

}  // namespace distbench

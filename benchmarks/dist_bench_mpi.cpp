// The raw-MPI side of vitte-dist-bench: MPI's own ping-pong floor, and the program a user
// would write without vitte::dist (MPI between ranks, oneTBB inside each, the work split
// statically at the root). Called only while no Cluster lives (main() owns MPI then).
#include <mpi.h>
#include <tbb/task_arena.h>
#include <tbb/task_group.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <vector>

#include "dist_bench.hpp"

namespace k = vitte::dist_kernels;

namespace distbench {
namespace {

double now_s() { return MPI_Wtime(); }

tbb::task_arena& arena(int threads) {
  static std::map<int, std::unique_ptr<tbb::task_arena>> arenas;
  auto& a = arenas[threads];
  if (!a) {
    a = std::make_unique<tbb::task_arena>(threads);
    a->initialize();
  }
  return *a;
}

// The same kernel as vitte's uts_task (dist_bench_vitte.cpp): depth-first with an explicit
// stack, handing the oldest half of the stack to the task group every 64 nodes, so the
// grain is the same; oneTBB's idle threads take those tasks, within this rank only.
void tbb_uts(tbb::task_group& tg, std::atomic<std::uint64_t>& nodes, std::uint64_t id, int depth,
             const k::UtsParams& p) {
  const std::uint64_t count = k::uts_explore(id, depth, p, 64, [&tg, &nodes, &p](std::uint64_t n, int d) {
    tg.run([&tg, &nodes, n, d, &p] { tbb_uts(tg, nodes, n, d, p); });
  });
  nodes.fetch_add(count, std::memory_order_relaxed);
}

}  // namespace

int mpi_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int mpi_size() {
  int s = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

void mpi_barrier() { MPI_Barrier(MPI_COMM_WORLD); }

bool mpi_all_ok(bool mine) {
  int in = mine ? 1 : 0, out = 0;
  MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
  return out != 0;
}

std::vector<Acc> mpi_gather(const Acc& mine) {
  std::vector<Acc> all(static_cast<std::size_t>(mpi_size()));
  MPI_Gather(&mine, sizeof(Acc), MPI_BYTE, all.data(), sizeof(Acc), MPI_BYTE, 0, MPI_COMM_WORLD);
  return all;
}

// Rank 0 sends 16 bytes (about the size of vitte's call message for a function without
// arguments) to rank 1, which sends 16 back; blocking MPI_Send/MPI_Recv, as a ping-pong
// test does. Rank 1 answers with the sequence number plus one, which rank 0 checks.
double mpi_pingpong_rtt_us(int iters, int warmup, bool* echo_ok) {
  const int rank = mpi_rank();
  *echo_ok = true;
  std::uint64_t msg[2] = {0, 0};
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = 0;
  for (int i = -warmup; i < iters; ++i) {
    if (i == 0) t0 = now_s();
    if (rank == 0) {
      msg[0] = static_cast<std::uint64_t>(i + warmup);
      MPI_Send(msg, 2, MPI_UINT64_T, 1, 7, MPI_COMM_WORLD);
      MPI_Recv(msg, 2, MPI_UINT64_T, 1, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      if (msg[1] != static_cast<std::uint64_t>(i + warmup) + 1) *echo_ok = false;
    } else if (rank == 1) {
      MPI_Recv(msg, 2, MPI_UINT64_T, 0, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      msg[1] = msg[0] + 1;
      MPI_Send(msg, 2, MPI_UINT64_T, 0, 7, MPI_COMM_WORLD);
    }
  }
  const double us = (now_s() - t0) * 1e6 / iters;
  MPI_Barrier(MPI_COMM_WORLD);
  return us;
}

// Every rank expands the tree breadth-first from the root, level by level, until the
// frontier holds frontier_per_rank x ranks nodes (or the tree ends); node i of the frontier
// goes to rank i mod ranks. The expanded levels are counted once, by rank 0. Each rank
// counts its share with oneTBB at `threads` threads; MPI_Reduce adds the counts.
StaticResult static_uts(const k::UtsParams& p, int threads, int frontier_per_rank) {
  const int rank = mpi_rank(), size = mpi_size();
  MPI_Barrier(MPI_COMM_WORLD);
  const double t0 = now_s();
  std::vector<std::pair<std::uint64_t, int>> level{{p.seed, 0}};
  std::uint64_t expanded = 0;
  const std::size_t want = static_cast<std::size_t>(frontier_per_rank) * static_cast<std::size_t>(size);
  while (!level.empty() && level.size() < want) {
    std::vector<std::pair<std::uint64_t, int>> next;
    for (auto [n, d] : level) {
      ++expanded;
      const std::uint64_t h = k::uts_visit(n, p.work);
      const std::uint32_t kids = k::uts_children(h, d, p);
      for (std::uint32_t i = 0; i < kids; ++i) next.emplace_back(k::uts_child(h, i), d + 1);
    }
    level = std::move(next);
  }
  std::atomic<std::uint64_t> nodes{0};
  arena(threads).execute([&] {
    tbb::task_group tg;
    for (std::size_t i = static_cast<std::size_t>(rank); i < level.size(); i += static_cast<std::size_t>(size)) {
      const std::uint64_t n = level[i].first;
      const int d = level[i].second;
      tg.run([&tg, &nodes, n, d, &p] { tbb_uts(tg, nodes, n, d, p); });
    }
    tg.wait();
  });
  std::uint64_t mine = nodes.load() + (rank == 0 ? expanded : 0);
  StaticResult r;
  MPI_Reduce(&mine, &r.nodes, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
  r.seconds = now_s() - t0;
  MPI_Reduce(&mine, &r.max_share, 1, MPI_UINT64_T, MPI_MAX, 0, MPI_COMM_WORLD);
  return r;
}

}  // namespace distbench

// The in-guest NUMA suite: runs as the init process's payload inside a QEMU guest with a
// real multi-node Linux kernel (scripts/numa-vm.sh) and asks that kernel, not our own
// bookkeeping, whether pinning and page placement happened.
//
// Output: one "PASS name" / "FAIL name: why" line per check, then "numa-guest: N passed,
// M failed". Exit status 0 only when every check passed.
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include <oneapi/tbb/parallel_for.h>

#include <set>

#include "vitte/tbb_interop.hpp"
#include "vitte/vitte.hpp"
#include "../fork_join_tree.hpp"

namespace {

using vitte::test::tree;

int passed = 0, failed = 0;

void check(bool ok, const std::string& name, const std::string& why = "") {
  if (ok) {
    ++passed;
    std::printf("PASS %s\n", name.c_str());
  } else {
    ++failed;
    std::printf("FAIL %s: %s\n", name.c_str(), why.c_str());
  }
  std::fflush(stdout);
}

std::vector<int> affinity_of_this_thread() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

// Linux node of each page of [p, p+bytes), from move_pages(2) with a NULL node list.
std::vector<int> page_nodes(void* p, std::size_t bytes) {
  const long page = sysconf(_SC_PAGESIZE);
  std::vector<void*> pages;
  for (std::size_t off = 0; off < bytes; off += static_cast<std::size_t>(page))
    pages.push_back(static_cast<char*>(p) + off);
  std::vector<int> status(pages.size(), -1);
  if (syscall(SYS_move_pages, 0, pages.size(), pages.data(), nullptr, status.data(), 0) != 0) return {};
  return status;
}

void check_pinning(const vitte::Topology& topo, const vitte::Options& base, const std::string& name) {
  std::mutex mu;
  std::vector<std::string> problems;
  std::atomic<int> started{0};
  vitte::Options o = base;
  o.on_worker_start = [&](const vitte::WorkerInfo& w) {
    const std::vector<int> aff = affinity_of_this_thread();
    const int cpu = sched_getcpu();
    std::lock_guard<std::mutex> lock(mu);
    ++started;
    if (aff != std::vector<int>{w.os_cpu} || cpu != w.os_cpu)
      problems.push_back("worker " + std::to_string(w.index) + " planned on CPU " + std::to_string(w.os_cpu) +
                         ", runs on " + std::to_string(cpu) + " with a mask of " + std::to_string(aff.size()) + " CPU(s)");
  };
  vitte::Scheduler sched(std::move(o));
  // Also from inside tasks, after the workers have run a while.
  vitte::parallel_for(sched, 0, 2000, 1, [&](std::size_t) {
    const int w = vitte::Scheduler::current_worker();
    const int planned = sched.plan().workers[static_cast<unsigned>(w)].os_cpu;
    if (sched_getcpu() != planned) {
      std::lock_guard<std::mutex> lock(mu);
      if (problems.size() < 8) problems.push_back("a task on worker " + std::to_string(w) + " ran on CPU " +
                                                  std::to_string(sched_getcpu()) + ", not " + std::to_string(planned));
    }
  });
  std::string why;
  for (const auto& p : problems) why += p + "; ";
  check(problems.empty() && started == static_cast<int>(sched.num_workers()) &&
            sched.plan().binding == vitte::Binding::Pinned,
        name, why + "binding " + vitte::to_string(sched.plan().binding));
  (void)topo;
}

}  // namespace

int main() {
  const vitte::Topology topo = vitte::Topology::this_machine();
  const unsigned nodes = static_cast<unsigned>(topo.nodes().size());
  std::printf("guest: %u NUMA nodes, %zu CPUs; distances from node 0:", nodes, topo.pus().size());
  for (unsigned n = 0; n < nodes; ++n) std::printf(" %u", topo.distance(0, n));
  std::printf(" (%s)\n", topo.distance_origin().c_str());
  check(nodes >= 2, "the kernel shows several NUMA nodes", std::to_string(nodes) + " node(s)");
  if (nodes < 2) {
    std::printf("numa-guest: %d passed, %d failed\n", passed, failed);
    return 1;
  }

  // Pinning: default plan (one worker per core), and a config naming node 1's CPUs.
  check_pinning(topo, vitte::Options{}, "every worker runs on the CPU its plan names");
  std::string node1_cpus;
  for (unsigned c : topo.nodes()[1].cores)
    for (unsigned pu : topo.cores()[c].pus)
      node1_cpus += (node1_cpus.empty() ? "" : ",") + std::to_string(topo.pus()[pu].os_index);
  vitte::Options on_node1;
  on_node1.config = vitte::Config::parse("[workers]\ncpuset = \"" + node1_cpus + "\"\nplacement = \"pin\"\n", "guest.toml");
  {
    vitte::Scheduler s(on_node1);
    bool all_node1 = s.num_workers() > 0;
    for (const auto& w : s.plan().workers) all_node1 = all_node1 && w.node == 1;
    check(all_node1, "a config naming node 1's CPUs (" + node1_cpus + ") plans workers on node 1 only");
  }
  check_pinning(topo, on_node1, "and those workers run there");

  // Memory: every page of node n's allocation lies on node n.
  for (unsigned n = 0; n < nodes; ++n) {
    const std::size_t bytes = 64 * 4096;
    void* p = vitte::allocate_on_node(bytes, n);
    std::memset(p, 1, bytes);
    const std::vector<int> where = page_nodes(p, bytes);
    const int want = static_cast<int>(topo.nodes()[n].os_index);
    int wrong = 0;
    for (int w : where) wrong += w != want;
    check(!where.empty() && wrong == 0,
          "node " + std::to_string(n) + "'s allocator places every page on node " + std::to_string(n),
          std::to_string(wrong) + " of " + std::to_string(where.size()) + " pages elsewhere (" + vitte::memory_backend() + ")");
    vitte::deallocate(p, bytes);
  }
  {
    vitte::Scheduler s;
    std::atomic<int> bad{0};
    vitte::parallel_for(s, 0, 64, 1, [&](std::size_t) {
      const std::size_t bytes = 16 * 4096;
      void* p = vitte::allocate_local(bytes);
      std::memset(p, 2, bytes);
      const unsigned node = s.plan().workers[static_cast<unsigned>(vitte::Scheduler::current_worker())].node;
      for (int w : page_nodes(p, bytes)) bad += w != static_cast<int>(topo.nodes()[node].os_index);
      vitte::deallocate(p, bytes);
    });
    check(bad == 0, "a worker's local allocations land on its own node", std::to_string(bad.load()) + " pages elsewhere");
  }

  // By default (memory.allocator = "auto") pinned workers on this multi-node machine route
  // their plain malloc/new to their node's arena: a task's new lands on its worker's node.
  {
    vitte::Scheduler s;
    check(s.malloc_routing().node_local, "by default, workers' malloc/new are node-local here",
          s.malloc_routing().reason);
    std::atomic<int> bad{0}, pages{0};
    vitte::parallel_for(s, 0, 64, 1, [&](std::size_t) {
      const std::size_t bytes = 32 * 4096;
      auto* v = new std::vector<char>(bytes, 5);  // plain new, touched by the constructor
      const unsigned node = s.plan().workers[static_cast<unsigned>(vitte::Scheduler::current_worker())].node;
      for (int w : page_nodes(v->data(), bytes)) {
        ++pages;
        bad += w != static_cast<int>(topo.nodes()[node].os_index);
      }
      delete v;
    });
    check(pages > 0 && bad == 0, "plain new in tasks lands on the worker's node",
          std::to_string(bad.load()) + " of " + std::to_string(pages.load()) + " pages elsewhere");
  }

  // Steal locality, over the steady state only (both nodes past their first tree, until the
  // first node starts its last), as in tests/locality_test.cpp. Only meaningful where a node
  // has several workers: with one worker per node every steal is remote by definition.
  {
    vitte::Scheduler s;
    bool peers = true;
    for (unsigned n = 0; n < nodes; ++n) peers = peers && s.plan().arenas[n].size() >= 2;
    if (!peers) {
      std::printf("locality with work on every node: not checked (a node has a single worker)\n");
    } else {
      // The guest's vCPUs are threads that time-share the host's cores, so a node's work
      // often sits in a descheduled vCPU for a whole host time slice and a peer rightly
      // crosses. What must hold even so: clearly better than a node-blind scheduler, whose
      // uniform victim choice would give (workers outside the node) / (all other workers)
      // remote steals. The tight bound is asserted on the host (tests/locality_test.cpp).
      //
      // The premise, work on every node, is checked rather than assumed: a worker idle for
      // its patience may take a root from another node's injection queue (by design), and
      // here a woken vCPU can wait a host time slice (milliseconds) while a running one's
      // rounds pass in microseconds. Both roots then run on one node, the other node has
      // no work of its own, and every steal of that repetition is remote, rightly (seen:
      // "11/11 remote"). Such a repetition is reported and not counted; the bound applies
      // to the others' median fraction: a few dozen steals per repetition are too few to judge
      // one by one, and a repetition whose vCPUs the host happened to deschedule can be
      // mostly remote on its own (seen on a 2-core host, 2026-12-06: 36/49 in one repetition
      // of a run whose others were 24-46 %, which summed to 51 % against the 50 % bound, while
      // five more runs summed to 19-33 %). The sum is still reported. Trees of depth 13 (4x
      // the work of 11) give each repetition hundreds of steals and the host's time slices
      // less weight: medians of 18, 29 and 21 % in three runs of the 2x2 guest (2026-12-06).
      std::size_t local_peers = s.plan().arenas[0].size() - 1;
      const double blind = 1.0 - static_cast<double>(local_peers) / static_cast<double>(s.num_workers() - 1);
      std::uint64_t remote = 0, steals = 0;
      int counted = 0;
      std::vector<double> fractions;  // of the counted repetitions that stole at all
      std::string figures;
      const int reps = 9;
      for (int rep = 0; rep < reps; ++rep) {
        const int trees = 8;
        std::atomic<unsigned> past_first{0}, at_last{0};
        vitte::MetricsSnapshot begin, end;
        std::vector<unsigned> ran_on(nodes);
        for (unsigned n = 0; n < nodes; ++n)
          s.submit(vitte::Task([&, n] {
                     ran_on[n] = s.plan().workers[static_cast<unsigned>(vitte::Scheduler::current_worker())].node;
                     for (int k = 0; k < trees; ++k) {
                       if (k == trees - 1 && at_last.fetch_add(1) == 0) end = s.metrics();
                       tree(13);
                       if (k == 0 && past_first.fetch_add(1) == nodes - 1) begin = s.metrics();
                     }
                   }), {.node = static_cast<unsigned>(n)});
        s.join_all();
        // An empty window (one node started its last tree before the other finished its
        // first) subtracts to zero steals and so adds nothing.
        const vitte::Counts c = (end - begin).total;
        figures += (figures.empty() ? "" : ", ") + std::to_string(c.steals_remote) + "/" + std::to_string(c.steals());
        std::string misplaced;
        for (unsigned n = 0; n < nodes; ++n)
          if (ran_on[n] != n)
            misplaced += (misplaced.empty() ? "" : ", ") + std::string("node ") + std::to_string(n) +
                         "'s root ran on node " + std::to_string(ran_on[n]);
        if (misplaced.empty()) {
          ++counted;
          remote += c.steals_remote;
          steals += c.steals();
          if (c.steals() > 0)
            fractions.push_back(static_cast<double>(c.steals_remote) / static_cast<double>(c.steals()));
        } else {
          figures += " (not counted: " + misplaced + ")";
        }
      }
      const double fraction = steals == 0 ? 0.0 : static_cast<double>(remote) / static_cast<double>(steals);
      std::sort(fractions.begin(), fractions.end());
      const double median = fractions.empty() ? 1.0 : fractions[fractions.size() / 2];
      char sum[200];
      std::snprintf(sum, sizeof sum,
                    "; counted %d of %d: %llu/%llu remote, %.1f%%, median %.1f%%; node-blind would be %.1f%%", counted,
                    reps, static_cast<unsigned long long>(remote), static_cast<unsigned long long>(steals),
                    100.0 * fraction, 100.0 * median, 100.0 * blind);
      const std::string why = figures + sum;
      std::printf("locality with work on every node (steady state): %s\n", why.c_str());
      check(fractions.size() >= 3 && median < 0.75 * blind, "with work on every node, steals stay mostly local", why);
    }
  }
  {
    vitte::Scheduler s;
    for (int r = 0; r < 16; ++r) s.submit(vitte::Task([] { tree(11); }), {.node = 0});
    s.join_all();
    const vitte::MetricsSnapshot m = s.metrics();
    std::uint64_t elsewhere = 0;
    for (const auto& n : m.nodes)
      if (n.node != 0) elsewhere += n.counts.executed;
    check(elsewhere > 0, "with work on node 0 only, the other nodes' workers take some",
          "no task ran outside node 0");
  }

  // oneTBB from a task on node 1: every iteration of its parallel_for runs on node 1's CPUs.
  {
    vitte::Scheduler s;
    const vitte::TbbArenaSpec spec = vitte::tbb_arena_spec(s, 1);
    std::printf("oneTBB arena of node 1: %s (%s)\n", vitte::to_string(spec.placement), spec.reason.c_str());
    std::set<int> allowed;
    for (unsigned c : topo.nodes()[1].cores)
      for (unsigned pu : topo.cores()[c].pus) allowed.insert(static_cast<int>(topo.pus()[pu].os_index));
    std::mutex mu;
    std::set<int> cpus;
    std::set<std::thread::id> threads;
    // An idle worker of node 0 may take the task from node 1's queue (by design): submit
    // again until a worker of node 1 runs it.
    bool on_node1 = false;
    for (int attempt = 0; !on_node1 && attempt < 100; ++attempt)
    s.async([&] {
       on_node1 = s.plan().workers[static_cast<unsigned>(vitte::Scheduler::current_worker())].node == 1;
       if (!on_node1) return;
       vitte::with_tbb([&] {
         tbb::parallel_for(0, 4000, [&](int) {
           volatile double x = 1;
           for (int k = 0; k < 2000; ++k) x = x * 1.0000001;
           std::lock_guard<std::mutex> lock(mu);
           cpus.insert(sched_getcpu());
           threads.insert(std::this_thread::get_id());
         });
       });
     }, {.node = 1u}).get();
    std::string where;
    bool inside = on_node1 && !cpus.empty();
    for (int c : cpus) {
      where += (where.empty() ? "" : ",") + std::to_string(c);
      inside = inside && allowed.count(c) != 0;
    }
    check(inside, "a tbb::parallel_for from a task on node 1 runs on node 1's CPUs only",
          "ran on CPUs " + where + " (" + std::to_string(threads.size()) + " threads, " + vitte::to_string(spec.placement) + ")");
    std::printf("oneTBB on node 1: CPUs %s, %zu thread(s)\n", where.c_str(), threads.size());
  }

  std::printf("numa-guest: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

// oneTBB called from vitte tasks (vitte/tbb_interop.hpp): on this machine, oneTBB's
// algorithms run on the calling worker's node; on the shipped topologies of other machines,
// the choice of each node's arena (constraints / CPUs) is checked as a pure function.
#include <gtest/gtest.h>
#include <sched.h>

#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/parallel_reduce.h>
#include <oneapi/tbb/parallel_sort.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include "interop/tbb_arenas.hpp"
#include "interop/tbb_placement.hpp"
#include "test_support.hpp"
#include "topology/hwloc_seam.hpp"
#include "vitte/error.hpp"
#include "vitte/scheduler.hpp"
#include "vitte/task_group.hpp"
#include "vitte/tbb_arena.hpp"

namespace vitte {
namespace {

std::vector<unsigned> node_cpus(const Topology& t, unsigned node) {
  std::vector<unsigned> out;
  for (unsigned c : t.nodes()[node].cores)
    for (unsigned pu : t.cores()[c].pus) out.push_back(t.pus()[pu].os_index);
  std::sort(out.begin(), out.end());
  return out;
}

// Runs a parallel_for from a task on `node` and returns the CPUs its iterations ran on
// and how many threads took part. An idle worker of another node may take the task from
// node's queue (by design); the task is submitted again until a worker of `node` runs it.
std::pair<std::set<int>, std::size_t> cpus_of_parallel_for(Scheduler& s, unsigned node) {
  std::mutex mu;
  std::set<int> cpus;
  std::set<std::thread::id> threads;
  bool on_node = false;
  for (int attempt = 0; !on_node && attempt < 1000; ++attempt) {
    cpus.clear();
    threads.clear();
    auto f = s.async([&] {
    on_node = s.plan().workers[static_cast<unsigned>(Scheduler::current_worker())].node == node;
    if (!on_node) return;
    with_tbb([&] {
      tbb::parallel_for(tbb::blocked_range<int>(0, 20000, 1), [&](const tbb::blocked_range<int>& r) {
        for (int i = r.begin(); i != r.end(); ++i) {
          volatile double x = i;
          for (int k = 0; k < 2000; ++k) x = x * 1.0000001 + 1;
          const int cpu = sched_getcpu();
          std::lock_guard<std::mutex> lock(mu);
          cpus.insert(cpu);
          threads.insert(std::this_thread::get_id());
        }
      });
    });
  }, {.node = node});
    f.get();
  }
  EXPECT_TRUE(on_node) << "no worker of node " << node << " took the task in 1000 tries";
  return {cpus, threads.size()};
}

TEST(TbbInterop, ModeOnThisMachine) {
  Scheduler s;
  const detail::TbbEnvironment& env = detail::tbb_environment();
  for (unsigned n : s.topology().nodes_with_cpus()) {
    const TbbArenaSpec spec = tbb_arena_spec(s, n);
    std::printf("node %u: %s, numa_id %d, max_concurrency %d: %s (tbbbind %s)\n", n, to_string(spec.placement),
                spec.tbb_numa_id, spec.max_concurrency, spec.reason.c_str(), env.tbbbind ? "loaded" : "absent");
    EXPECT_EQ(spec.max_concurrency, static_cast<int>(s.plan().arenas[n].size()));
    if (s.plan().binding == Binding::Pinned) {
      EXPECT_EQ(spec.placement, env.tbbbind ? TbbPlacement::NumaConstrained : TbbPlacement::Observer) << spec.reason;
    }
  }
}

TEST(TbbInterop, ParallelForRunsOnTheCallingWorkersNode) {
  Scheduler s;
  for (unsigned n : s.topology().nodes_with_cpus()) {
    const std::vector<unsigned> allowed = node_cpus(s.topology(), n);
    const auto [cpus, threads] = cpus_of_parallel_for(s, n);
    std::printf("node %u: iterations ran on %zu CPU(s), %zu thread(s)\n", n, cpus.size(), threads);
    for (int c : cpus)
      EXPECT_TRUE(c >= 0 && std::binary_search(allowed.begin(), allowed.end(), static_cast<unsigned>(c)))
          << "an iteration ran on CPU " << c << ", outside node " << n;
    EXPECT_LE(threads, s.plan().arenas[n].size()) << "the arena holds at most the node's worker count";
  }
}

// The fallback: oneTBB's worker threads entering an observed arena are bound to the CPUs
// given, and get their own mask back when they leave. (A pinned plan cannot put two workers
// on one CPU, so on a 2-CPU machine a scheduler cannot show this discriminatingly: the
// observer is tested on an arena of its own, the caller pinned like a vitte worker.)
TEST(TbbInterop, ObserverBindsOneTbbsWorkerThreadsToTheCpusGiven) {
  const Topology here = Topology::this_machine();
  if (here.pus().size() < 2) GTEST_SKIP() << "needs 2 CPUs";
  const unsigned cpu = here.pus()[0].os_index;
  std::set<int> cpus, others;
  std::set<std::thread::id> threads;
  std::mutex mu;
  auto body = [&](int) {
    volatile double x = 1;
    for (int k = 0; k < 2000; ++k) x = x * 1.0000001;
    std::lock_guard<std::mutex> lock(mu);
    cpus.insert(sched_getcpu());
    threads.insert(std::this_thread::get_id());
  };
  std::thread caller([&] {
    std::string why;
    ASSERT_TRUE(detail::hw::pin_current_thread(cpu, &why)) << why;
    tbb::task_arena a(2, 1);
    a.initialize();
    {
      auto observer = detail::bind_workers_entering(a, {cpu});
      a.execute([&] { tbb::parallel_for(0, 20000, body); });
    }
  });
  caller.join();
  std::printf("observer: iterations on %zu CPU(s) by %zu thread(s)\n", cpus.size(), threads.size());
  EXPECT_EQ(cpus, std::set<int>{static_cast<int>(cpu)});
  // Left the arena: a plain parallel_for may use every CPU of the process again.
  cpus.clear();
  threads.clear();
  tbb::parallel_for(0, 20000, body);
  std::printf("outside the arena: %zu CPU(s) by %zu thread(s)\n", cpus.size(), threads.size());
}

// A topology folded onto this machine: the arenas use the observer, on the CPUs of the
// node's workers.
TEST(TbbInterop, FoldedTopologyUsesTheObserver) {
  Options o;
  o.topology = Topology::from_synthetic("numa:2 core:1 pu:1");
  o.placement = Placement::Pin;
  Scheduler s(o);
  ASSERT_EQ(s.plan().binding, Binding::Folded);
  for (unsigned n = 0; n < 2; ++n) {
    const TbbArenaSpec spec = tbb_arena_spec(s, n);
    EXPECT_EQ(spec.placement, TbbPlacement::Observer) << spec.reason;
    EXPECT_EQ(spec.os_cpus, std::vector<unsigned>{static_cast<unsigned>(s.plan().workers[s.plan().arenas[n][0]].os_cpu)});
    const auto [cpus, threads] = cpus_of_parallel_for(s, n);
    EXPECT_EQ(cpus, std::set<int>(spec.os_cpus.begin(), spec.os_cpus.end()));
    EXPECT_EQ(threads, 1u) << "one worker on the node: the arena takes no oneTBB worker";
  }
}

TEST(TbbInterop, ReduceAndSortGiveRightResults) {
  Scheduler s;
  const long long n = 1'000'000;
  auto sum = s.async([&] {
    return with_tbb([&] {
      return tbb::parallel_reduce(
          tbb::blocked_range<long long>(0, n), 0LL,
          [](const tbb::blocked_range<long long>& r, long long acc) {
            for (long long i = r.begin(); i != r.end(); ++i) acc += i;
            return acc;
          },
          std::plus<long long>());
    });
  });
  EXPECT_EQ(sum.get(), n * (n - 1) / 2);

  std::vector<int> v(500000);
  std::mt19937 rng(7);
  for (int& x : v) x = static_cast<int>(rng());
  std::vector<int> want = v;
  std::sort(want.begin(), want.end());
  s.async([&] { with_tbb([&] { tbb::parallel_sort(v.begin(), v.end()); }); }).get();
  EXPECT_EQ(v, want);
}

TEST(TbbInterop, NestedTasksEachUseTheirNodesArena) {
  Scheduler s;
  std::atomic<long long> total{0};
  std::atomic<int> wrong_arena{0};
  s.async([&] {
     TaskGroup g;
     for (int t = 0; t < 8; ++t)
       g.run([&] {
         tbb::task_arena& mine = tbb_arena();
         const long long part = with_tbb([&] {
           if (tbb::this_task_arena::max_concurrency() != mine.max_concurrency()) ++wrong_arena;
           return tbb::parallel_reduce(
               tbb::blocked_range<int>(0, 10000), 0LL,
               [](const tbb::blocked_range<int>& r, long long acc) { return acc + (r.end() - r.begin()); },
               std::plus<long long>());
         });
         total += part;
       });
     g.wait();
   }).get();
  EXPECT_EQ(total.load(), 8 * 10000);
  EXPECT_EQ(wrong_arena.load(), 0);
}

TEST(TbbInterop, ExceptionsPropagateAndOutsideAWorkerIsAUsageError) {
  Scheduler s;
  auto f = s.async([] { with_tbb([] { tbb::parallel_for(0, 100, [](int i) { if (i == 42) throw std::runtime_error("42"); }); }); });
  EXPECT_THROW(f.get(), std::runtime_error);
  EXPECT_THROW(with_tbb([] {}), UsageError);
  EXPECT_THROW((void)tbb_arena(), UsageError);
  // From outside, a named node's arena.
  int runs = 0;
  tbb_arena(s, s.topology().nodes_with_cpus().front()).execute([&] { ++runs; });
  EXPECT_EQ(runs, 1);
  s.shutdown();  // destroys the arenas after the workers; nothing left running
  // Afterwards no arena is handed out (it crashed for an arena already used, and made a new
  // one nobody would destroy for an unused one).
  EXPECT_THROW((void)tbb_arena(s, s.topology().nodes_with_cpus().front()), UsageError);
  Scheduler fresh;
  fresh.shutdown();
  EXPECT_THROW((void)tbb_arena(fresh, fresh.topology().nodes_with_cpus().front()), UsageError);
}

// --- The arena choice on other machines' topologies (pure function) ---------------------

// The plan of `xml` as that machine would pin it: one worker per core, bound to its PU.
Plan pinned_plan_of(const Topology& t) {
  PlanOptions o;
  o.placement = Placement::Unpinned;
  Plan p = Plan::make(t, o);
  p.binding = Binding::Pinned;
  for (WorkerSlot& w : p.workers) w.os_cpu = static_cast<int>(t.pus()[w.pu].os_index);
  return p;
}

detail::TbbEnvironment env_of(const std::string& xml, const std::vector<unsigned>& cpus = {}) {
  detail::TbbEnvironment e;
  e.tbbbind = true;
  e.numa_ids = detail::hw::tbbbind_numa_ids(xml, cpus);
  for (const auto& [os, id] : e.numa_ids) e.tbb_nodes.push_back(id);
  return e;
}

TEST(TbbInteropPlacement, ShippedTopologiesAsIfPinnedGetConstraintsByLinuxNodeNumber) {
  for (const std::string& name : test::shipped_topologies()) {
    SCOPED_TRACE(name);
    const std::string& xml = name;
    const Topology t = Topology::from_xml(xml);
    const detail::TbbEnvironment env = env_of(xml);
    const Plan p = pinned_plan_of(t);
    for (unsigned n : t.nodes_with_cpus()) {
      const TbbArenaSpec s = detail::plan_tbb_arena(t, p, n, env);
      ASSERT_EQ(s.placement, TbbPlacement::NumaConstrained) << s.reason;
      // oneTBB's id names the hwloc node with the same Linux number (in the unrestricted
      // topology that is vitte's logical id too).
      EXPECT_EQ(s.tbb_numa_id, static_cast<int>(n));
      EXPECT_EQ(s.os_cpus, node_cpus(t, n));
      EXPECT_EQ(s.max_concurrency, static_cast<int>(p.arenas[n].size()));
    }
    // As shipped (a foreign topology), the plan is unpinned and so is oneTBB.
    const Plan foreign = Plan::make(t, PlanOptions{});
    for (unsigned n : t.nodes_with_cpus())
      EXPECT_EQ(detail::plan_tbb_arena(t, foreign, n, env).placement, TbbPlacement::Unpinned);
  }
}

TEST(TbbInteropPlacement, NumbersDifferWhenTheProcessIsRestricted) {
  // 16amd64: node L#0 is Linux node 1. A process bound to the CPUs of the last node sees
  // only the nodes with those CPUs; the arena of that node takes oneTBB's id of that Linux
  // node, and the other nodes' arenas (oneTBB does not list them) fall back to the observer.
  for (const std::string& name : {std::string("16amd64-4distances.xml"), std::string("64intel64-fakeKNL-SNC4-hybrid.xml")}) {
    SCOPED_TRACE(name);
    const std::string xml = test::topology_file(name);
    const Topology t = Topology::from_xml(xml);
    const unsigned last = t.nodes_with_cpus().back();
    const detail::TbbEnvironment env = env_of(xml, node_cpus(t, last));
    ASSERT_FALSE(env.numa_ids.empty());
    const Plan p = pinned_plan_of(t);
    for (unsigned n : t.nodes_with_cpus()) {
      const TbbArenaSpec s = detail::plan_tbb_arena(t, p, n, env);
      if (n == last) {
        ASSERT_EQ(s.placement, TbbPlacement::NumaConstrained) << s.reason;
        int want = -1;
        for (const auto& [os, id] : env.numa_ids)
          if (os == t.nodes()[n].os_index) want = id;
        EXPECT_EQ(s.tbb_numa_id, want);
      } else {
        EXPECT_EQ(s.placement, TbbPlacement::Observer) << s.reason;
      }
    }
  }
}

TEST(TbbInteropPlacement, MappingGoesByLinuxNodeNumberNotPosition) {
  const std::string xml = test::topology_file("16amd64-4distances.xml");
  const Topology t = Topology::from_xml(xml);
  const Plan p = pinned_plan_of(t);
  detail::TbbEnvironment env;
  env.tbbbind = true;
  // oneTBB numbering the nodes in reverse of vitte's order.
  for (const NumaNode& n : t.nodes()) {
    const int id = static_cast<int>(t.nodes().size() - 1 - n.id);
    env.numa_ids.emplace_back(n.os_index, id);
    env.tbb_nodes.push_back(id);
  }
  for (unsigned n : t.nodes_with_cpus())
    EXPECT_EQ(detail::plan_tbb_arena(t, p, n, env).tbb_numa_id, static_cast<int>(t.nodes().size() - 1 - n));
  env.tbbbind = false;
  for (unsigned n : t.nodes_with_cpus()) {
    const TbbArenaSpec s = detail::plan_tbb_arena(t, p, n, env);
    EXPECT_EQ(s.placement, TbbPlacement::Observer);
    std::vector<unsigned> want;
    for (unsigned w : p.arenas[n]) want.push_back(static_cast<unsigned>(p.workers[w].os_cpu));
    std::sort(want.begin(), want.end());
    EXPECT_EQ(s.os_cpus, want);
  }
}

}  // namespace
}  // namespace vitte

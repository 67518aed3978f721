// Steal locality on a virtual two-node machine (4 workers, 2 per node, unpinned).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <vector>
#include <cstdio>

#include "test_support.hpp"
#include "vitte/vitte.hpp"
#include "fork_join_tree.hpp"

namespace {

using vitte::test::tree;

vitte::Scheduler two_node_scheduler() {
  vitte::Options o;
  o.topology = vitte::Topology::from_synthetic("pack:2 numa:1 core:2 pu:1");
  o.workers = 4;
  return vitte::Scheduler(std::move(o));
}

// The leaves' contribution to tree(depth), computed serially.
std::uint64_t tree_leaf_sum(int depth) { return (std::uint64_t{1} << depth) * tree(0); }

}  // namespace

TEST(Locality, WithWorkOnEveryNodeRemoteStealsStayRare) {
  auto sched = two_node_scheduler();
  ASSERT_EQ(sched.plan().arenas[0].size(), 2u);
  ASSERT_EQ(sched.plan().arenas[1].size(), 2u);
  // Each node runs one task that builds fork-join trees back to back, so a node's second
  // worker lives on stealing from the first. The counters are compared over the steady
  // state only: from the moment both nodes are past their first tree (start-up, when a
  // freshly woken worker may find its node still empty) to the moment the first node
  // starts its last tree (after which a dry node rightly helps the other).
  const int depth = 13;  // ~0.1 s; not scaled down: fewer steals would prove nothing
  const int trees = 12;
  // On this 2-core machine the OS may run one node's workers far ahead of the other's, so
  // that no moment has work on both nodes (an empty window). That says nothing about the
  // scheduler, so such a run is measured again. The bound applies to the median of three
  // windows that hold enough steals to judge (one window in several can still catch the
  // OS starving one node's pair of workers).
  std::vector<double> fractions;
  int attempts = 0;
  for (; attempts < 10 && fractions.size() < 3; ++attempts) {
    std::atomic<int> past_first{0}, at_last{0};
    std::atomic<std::uint64_t> sum{0};
    vitte::MetricsSnapshot begin, end;
    for (unsigned node = 0; node < 2; ++node)
      sched.submit(vitte::Task([&] {
                     for (int k = 0; k < trees; ++k) {
                       if (k == trees - 1 && at_last.fetch_add(1) == 0) end = sched.metrics();
                       sum += tree(depth);
                       if (k == 0 && past_first.fetch_add(1) == 1) begin = sched.metrics();
                     }
                   }), {.node = static_cast<unsigned>(node)});
    sched.join_all();
    EXPECT_EQ(sum.load(), 2 * trees * ((std::uint64_t{1} << depth) - 1 + tree_leaf_sum(depth)));
    const vitte::Counts c = (end - begin).total;
    std::printf("steady state: %llu steals within a node, %llu remote (%.2f%% remote)\n",
                static_cast<unsigned long long>(c.steals_l3 + c.steals_node),
                static_cast<unsigned long long>(c.steals_remote), 100.0 * c.remote_steal_fraction());
    if (c.steals() > 40) fractions.push_back(c.remote_steal_fraction());
  }
  ASSERT_EQ(fractions.size(), 3u) << "too few runs with a window where both nodes had work";
  std::sort(fractions.begin(), fractions.end());
  // Typically 0-6% here; the slack is for the OS: on this 2-core test machine the 4 workers
  // time-share, and a node whose running worker has drained its preempted mate's deque
  // does cross after its patience.
  EXPECT_LT(fractions[1], 0.20) << "median remote fraction";
}

TEST(Locality, WorkSubmittedToOneNodeIsStolenByTheOther) {
  auto sched = two_node_scheduler();
  // Enough work (about 0.2 s on one core) that node 1's workers, once woken and past
  // their patience, find node 0's deques full.
  const int roots = static_cast<int>(vitte::test::scaled(64));
  std::atomic<std::uint64_t> sum{0};
  for (int r = 0; r < roots; ++r) sched.submit(vitte::Task([&] { sum += tree(12); }), {.node = 0});
  sched.join_all();
  const auto m = sched.metrics();
  const vitte::NodeMetrics& other = m.nodes[1];
  EXPECT_GT(other.counts.executed, 0u) << "node 1's workers took none of node 0's work";
  EXPECT_GT(other.counts.steals_remote, 0u);
  EXPECT_EQ(other.counts.injected_taken, 0u) << "nothing was submitted to node 1";
}

// ReadyQueue (src/policy/ready_queue.hpp) on its own, over a GroupTree of one node:
// each level policy's order (Fifo, Lifo, Priority, Fair shares), deadlines first in
// EDF order, the hint (R2), the size (R1), aging (R5), remote takes, take_if, the backlog
// slots of admitted entries, and a stress test that no entry is lost or taken twice.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "clock/clock.hpp"
#include "policy/group_tree.hpp"
#include "policy/ready_queue.hpp"
#include "queue/injection_queue.hpp"
#include "queue/urgent_lane.hpp"
#include "exactly_once.hpp"
#include "test_support.hpp"

using vitte::GroupSpec;
using vitte::Policy;
using vitte::Priority;
using vitte::detail::Entry;
using vitte::detail::GroupNode;
using vitte::detail::now_ns;
using vitte::detail::TaskFrame;

namespace {

constexpr std::int64_t kHour = 3'600'000'000'000;

TaskFrame* frame(std::uintptr_t i) { return reinterpret_cast<TaskFrame*>(i); }
std::uintptr_t id(TaskFrame* f) { return reinterpret_cast<std::uintptr_t>(f); }

// One node's ReadyQueue with its tree, hint lane and backlog. Aging is an hour unless
// given, so that no test depends on how fast it runs.
struct Node {
  explicit Node(Policy root, std::chrono::nanoseconds aging = std::chrono::hours(1), std::size_t bound = 0)
      : tree(vitte::detail::make_tree(1, root)), backlog(bound), q(*tree, 0, lane, backlog, aging) {}
  ~Node() {
    // Entries left queued hold their level, and the level holds them (a scheduler drains
    // its queues at shutdown): take them out, then let go of the named groups, which hold
    // the tree.
    for (Entry e; q.pop(true, &e);) e = Entry{};
    tree->release();
  }

  std::shared_ptr<GroupNode> group(const std::string& name, double weight = 1.0, Policy p = Policy::Fifo,
                                   const std::string& parent = std::string()) {
    GroupSpec s;
    s.name = name;
    s.parent = parent;
    s.weight = weight;
    s.policy = p;
    return tree->make(s);
  }
  // Queues frame `i` at level `g` (the root when null).
  void push(std::uintptr_t i, const std::shared_ptr<GroupNode>& g = nullptr, Priority p = Priority::Normal,
            std::int64_t deadline_ns = 0, std::int64_t queued_ns = 0) {
    Entry e;
    e.frame = frame(i);
    e.group = g != nullptr ? g : tree->root();
    e.priority = p;
    e.queued_ns = queued_ns != 0 ? queued_ns : now_ns();
    e.deadline_ns = deadline_ns;
    e.hinted = deadline_ns != 0 || (p == Priority::High && e.group->priority_path);  // as bind_options
    q.push(std::move(e));
  }
  // Pops by the policies, "runs" it for `ran_ns` and returns its frame's number (0: none).
  std::uintptr_t pop(bool allow_low = true, std::int64_t ran_ns = 1000) {
    Entry e;
    if (!q.pop(allow_low, &e)) return 0;
    q.finish(e, ran_ns, now_ns());
    return id(e.frame);
  }
  std::vector<std::uintptr_t> drain() {
    std::vector<std::uintptr_t> out;
    while (std::uintptr_t i = pop()) out.push_back(i);
    return out;
  }

  std::shared_ptr<vitte::detail::GroupTree> tree;
  vitte::detail::UrgentLane lane;
  vitte::detail::InjectionQueue backlog;
  vitte::detail::ReadyQueue q;
};

using Ids = std::vector<std::uintptr_t>;

}  // namespace

// Fifo root: submission order; R1: size() counts what is held, empty() when nothing is.
TEST(ReadyQueue, FifoLevelKeepsSubmissionOrderAndCountsItsSize) {
  Node n(Policy::Fifo);
  EXPECT_TRUE(n.q.empty());
  Entry none;
  EXPECT_FALSE(n.q.pop(true, &none));
  for (std::uintptr_t i = 1; i <= 5; ++i) n.push(i);
  EXPECT_EQ(n.q.size(), 5);
  EXPECT_EQ(n.pop(), 1u);
  EXPECT_EQ(n.q.size(), 4);
  EXPECT_EQ(n.drain(), (Ids{2, 3, 4, 5}));
  EXPECT_TRUE(n.q.empty());
}

// Lifo root: newest first.
TEST(ReadyQueue, LifoLevelTakesTheNewestFirst) {
  Node n(Policy::Lifo);
  for (std::uintptr_t i = 1; i <= 4; ++i) n.push(i);
  EXPECT_EQ(n.drain(), (Ids{4, 3, 2, 1}));
}

// Priority root: High, then Normal, then Low; submission order within a class.
TEST(ReadyQueue, PriorityLevelOrdersByClassThenSubmission) {
  Node n(Policy::Priority);
  n.push(1, nullptr, Priority::Low);
  n.push(2, nullptr, Priority::Normal);
  n.push(3, nullptr, Priority::High);
  n.push(4, nullptr, Priority::Normal);
  n.push(5, nullptr, Priority::High);
  n.push(6, nullptr, Priority::Low);
  EXPECT_EQ(n.drain(), (Ids{3, 5, 2, 4, 1, 6}));
}

// pop(allow_low = false) leaves Low work queued (the worker looks at its node's stealable
// work first), even when Low work is all there is.
TEST(ReadyQueue, LowWorkWaitsForAllowLow) {
  Node n(Policy::Priority);
  n.push(1, nullptr, Priority::Low);
  n.push(2, nullptr, Priority::Normal);
  EXPECT_EQ(n.pop(/*allow_low=*/false), 2u);
  EXPECT_EQ(n.pop(/*allow_low=*/false), 0u);
  EXPECT_EQ(n.q.size(), 1);
  EXPECT_EQ(n.pop(/*allow_low=*/true), 1u);
}

// Deadlines go first, earliest deadline first, equal deadlines in submission order,
// whatever the tree holds and in whatever order they arrived.
TEST(ReadyQueue, DeadlinesGoFirstInEdfOrder) {
  Node n(Policy::Fifo);
  const std::int64_t t = now_ns() + kHour;
  n.push(1);
  n.push(2, nullptr, Priority::Normal, t + 300);
  n.push(3, nullptr, Priority::Normal, t + 100);
  n.push(4, nullptr, Priority::Normal, t + 200);
  n.push(5, nullptr, Priority::Normal, t + 100);
  n.push(6);
  EXPECT_EQ(n.drain(), (Ids{3, 5, 4, 2, 1, 6}));
}

// R2: deadline entries and High entries of a priority path raise the node's hint (the
// urgent lane's word) and count as preferred; taking them lowers it again. Normal work and
// High work off a priority path do not.
TEST(ReadyQueue, PreferredEntriesRaiseAndLowerTheHint) {
  Node n(Policy::Fair);
  const auto prio = n.group("prio", 1.0, Policy::Priority);  // under a Fair root: no priority path
  n.push(1);
  n.push(2, prio, Priority::High);
  EXPECT_FALSE(n.lane.hinted());
  EXPECT_FALSE(n.q.has_preferred());
  n.push(3, nullptr, Priority::Normal, now_ns() + kHour);
  EXPECT_TRUE(n.lane.hinted());
  EXPECT_TRUE(n.q.has_preferred());
  EXPECT_EQ(n.pop(), 3u);
  EXPECT_FALSE(n.lane.hinted());
  EXPECT_FALSE(n.q.has_preferred());

  Node p(Policy::Priority);
  p.push(1, nullptr, Priority::High);
  p.push(2, nullptr, Priority::High);
  EXPECT_TRUE(p.lane.hinted());
  EXPECT_EQ(p.pop(), 1u);
  EXPECT_TRUE(p.lane.hinted()) << "one High entry is still queued";
  EXPECT_EQ(p.pop(), 2u);
  EXPECT_FALSE(p.lane.hinted());
}

// pop_preferred takes deadline work, then High work of a priority path, and nothing else.
TEST(ReadyQueue, PopPreferredTakesOnlyPreferredWork) {
  Node n(Policy::Priority);
  n.push(1, nullptr, Priority::Normal);
  n.push(2, nullptr, Priority::High);
  n.push(3, nullptr, Priority::Normal, now_ns() + kHour);
  Entry e;
  ASSERT_TRUE(n.q.pop_preferred(&e));
  EXPECT_EQ(id(e.frame), 3u);
  e = Entry{};
  ASSERT_TRUE(n.q.pop_preferred(&e));
  EXPECT_EQ(id(e.frame), 2u);
  e = Entry{};
  EXPECT_FALSE(n.q.pop_preferred(&e)) << "a Normal task is not preferred";
  EXPECT_EQ(n.q.size(), 1);
  EXPECT_FALSE(n.lane.hinted());
}

// A Fair level shares by weight: children of weights 1 and 3, both always backlogged, run
// 1:3 (each task charged its running time over its level's weight, R3).
TEST(ReadyQueue, FairLevelSharesByWeight) {
  Node n(Policy::Fair);
  const auto a = n.group("a", 1.0);
  const auto b = n.group("b", 3.0);
  for (std::uintptr_t i = 0; i < 400; ++i) {
    n.push(1000 + i, a);
    n.push(2000 + i, b);
  }
  int from_a = 0, from_b = 0;
  for (int k = 0; k < 400; ++k) {
    const std::uintptr_t i = n.pop();
    ASSERT_NE(i, 0u);
    (i < 2000 ? from_a : from_b)++;
  }
  EXPECT_NEAR(from_a, 100, 2);
  EXPECT_NEAR(from_b, 300, 2);
}

// A Fair level charges what the task really ran (finish corrects the pick-time charge):
// equal weights, but a's tasks run 3x longer, so b runs 3x as many tasks.
TEST(ReadyQueue, FairLevelChargesTheTimeRun) {
  Node n(Policy::Fair);
  const auto a = n.group("a");
  const auto b = n.group("b");
  for (std::uintptr_t i = 0; i < 400; ++i) {
    n.push(1000 + i, a);
    n.push(2000 + i, b);
  }
  int from_a = 0, from_b = 0;
  for (int k = 0; k < 400; ++k) {
    Entry e;
    ASSERT_TRUE(n.q.pop(true, &e));
    const bool is_a = id(e.frame) < 2000;
    n.q.finish(e, is_a ? 3000 : 1000, now_ns());
    (is_a ? from_a : from_b)++;
  }
  EXPECT_NEAR(from_a, 100, 3);
  EXPECT_NEAR(from_b, 300, 3);
}

// G3: a child that was idle re-enters at its parent's floor, so the time it did not use
// is no credit: it alternates with the busy child instead of running a burst of its own.
TEST(ReadyQueue, FairChildWakingUpGetsNoBurst) {
  Node n(Policy::Fair);
  const auto a = n.group("a");
  const auto b = n.group("b");
  for (std::uintptr_t i = 0; i < 50; ++i) n.push(1000 + i, a);
  for (int k = 0; k < 50; ++k) ASSERT_NE(n.pop(), 0u);
  for (std::uintptr_t i = 0; i < 20; ++i) {
    n.push(1100 + i, a);
    n.push(2000 + i, b);
  }
  int from_b = 0;
  for (int k = 0; k < 20; ++k) from_b += n.pop() >= 2000;
  EXPECT_LE(from_b, 11) << "b spent credit it earned while idle";
  EXPECT_GE(from_b, 9);
}

// A Fifo level compares its own tasks and its children's candidates by submission order;
// a Lifo child offers its newest task as its candidate.
TEST(ReadyQueue, NestedLevelsFollowEachLevelsPolicy) {
  Node n(Policy::Fifo);
  const auto fifo = n.group("fifo");
  const auto lifo = n.group("lifo", 1.0, Policy::Lifo);
  n.push(1, fifo);
  n.push(2, lifo);
  n.push(3);
  n.push(4, lifo);
  n.push(5, fifo);
  // Root picks the lowest seq among {fifo: 1, lifo: its newest, root: 3}.
  EXPECT_EQ(n.pop(), 1u);
  EXPECT_EQ(n.pop(), 3u) << "lifo's candidate is 4 (seq 3), the root's own 3 is older";
  EXPECT_EQ(n.pop(), 4u);
  EXPECT_EQ(n.drain(), (Ids{2, 5}));
}

// R5: a task older than the aging bound counts as High, one per aging interval: of two
// starving Low tasks the first goes ahead of fresh High work, the second does not.
TEST(ReadyQueue, AgingPromotesOneStarvingTaskPerInterval) {
  Node n(Policy::Priority, std::chrono::hours(1));
  const std::int64_t long_ago = now_ns() - 2 * kHour;
  n.push(1, nullptr, Priority::Low, 0, long_ago);
  n.push(2, nullptr, Priority::Low, 0, long_ago);
  n.push(3, nullptr, Priority::High);
  EXPECT_EQ(n.pop(/*allow_low=*/false), 1u) << "aged: counts as High, and is older than 3";
  EXPECT_EQ(n.pop(/*allow_low=*/false), 3u) << "the aging token is spent for an hour";
  EXPECT_EQ(n.pop(/*allow_low=*/false), 0u) << "2 is Low again until the next interval";
  EXPECT_EQ(n.pop(), 2u);
}

// Aging is a rule of Priority levels: in a Fifo level a very old task changes nothing.
TEST(ReadyQueue, AgingDoesNotReorderAFifoLevel) {
  Node n(Policy::Fifo, std::chrono::hours(1));
  n.push(1);
  n.push(2, nullptr, Priority::Normal, 0, now_ns() - 2 * kHour);
  EXPECT_EQ(n.drain(), (Ids{1, 2}));
}

// pop_remote (a worker of another node): deadline work only once half its window passed
// unstarted, tree work only when not Low; remote_visible says the same without the lock.
TEST(ReadyQueue, PopRemoteTakesWhatAnotherNodeMay) {
  Node n(Policy::Priority);
  const std::int64_t now = now_ns();
  n.push(1, nullptr, Priority::Low);
  n.push(2, nullptr, Priority::Normal, now + kHour);  // its window has just begun
  EXPECT_FALSE(n.q.remote_visible(now_ns()));
  Entry e;
  EXPECT_FALSE(n.q.pop_remote(&e));
  EXPECT_EQ(n.q.size(), 2);

  n.push(3, nullptr, Priority::Normal);
  EXPECT_TRUE(n.q.remote_visible(now_ns()));
  ASSERT_TRUE(n.q.pop_remote(&e));
  EXPECT_EQ(id(e.frame), 3u) << "tree work that is not Low; the fresh deadline stays home";
  EXPECT_FALSE(n.q.remote_visible(now_ns()));
  EXPECT_TRUE(n.q.remote_visible(now + kHour * 3 / 4)) << "past half of 2's window";

  n.push(4, nullptr, Priority::Normal, now + 2, now - 2 * kHour);  // window nearly over
  e = Entry{};
  ASSERT_TRUE(n.q.pop_remote(&e));
  EXPECT_EQ(id(e.frame), 4u);
  e = Entry{};
  EXPECT_FALSE(n.q.pop_remote(&e));
  EXPECT_EQ(n.drain(), (Ids{2, 1}));
}

// take_if finds a matching entry anywhere (deadline heap, any level, any class) and keeps
// the counts (R1, R2) as a pop would.
TEST(ReadyQueue, TakeIfFindsAMatchAnywhere) {
  Node n(Policy::Priority);
  const auto g = n.group("g");
  n.push(1);
  n.push(2, g);
  n.push(3, nullptr, Priority::High);
  n.push(4, nullptr, Priority::Normal, now_ns() + kHour);
  n.push(5, g);
  auto take = [&](std::uintptr_t want) {
    Entry e;
    if (!n.q.take_if([&](TaskFrame* f) { return id(f) == want; }, &e)) return std::uintptr_t{0};
    return id(e.frame);
  };
  EXPECT_EQ(take(5), 5u);
  EXPECT_EQ(take(4), 4u);
  EXPECT_EQ(take(3), 3u);
  EXPECT_EQ(take(99), 0u);
  EXPECT_EQ(n.q.size(), 2);
  EXPECT_FALSE(n.lane.hinted()) << "the deadline and High entries taken lowered it";
  EXPECT_EQ(n.drain(), (Ids{1, 2}));
}

// Admitted entries hold a slot of the node's bounded backlog; taking one gives it back.
TEST(ReadyQueue, TakingAnAdmittedEntryFreesItsBacklogSlot) {
  Node n(Policy::Fifo, std::chrono::hours(1), /*bound=*/1);
  ASSERT_TRUE(n.backlog.admit(false));
  Entry e;
  e.frame = frame(1);
  e.group = n.tree->root();
  e.queued_ns = now_ns();
  e.admitted = true;
  n.q.push(std::move(e));
  EXPECT_FALSE(n.backlog.admit(false)) << "the entry holds the only slot";
  EXPECT_EQ(n.pop(), 1u);
  EXPECT_TRUE(n.backlog.admit(false)) << "the pop gave the slot back";
  n.backlog.unadmit();
}

// finish() counts deadlines met and missed, and the group's tasks and CPU time.
TEST(ReadyQueue, FinishCountsDeadlinesAndGroupStatistics) {
  Node n(Policy::Fifo);
  const auto g = n.group("g");
  const std::int64_t t = now_ns() + kHour;
  n.push(1, g, Priority::Normal, t);
  n.push(2, g, Priority::Normal, t + 1);
  Entry e;
  ASSERT_TRUE(n.q.pop(true, &e));
  EXPECT_FALSE(n.q.finish(e, 500, t - 1)) << "ended before its deadline";
  e = Entry{};
  ASSERT_TRUE(n.q.pop(true, &e));
  EXPECT_TRUE(n.q.finish(e, 700, t + 2)) << "ended after its deadline";
  EXPECT_EQ(n.q.deadlines_met(), 1u);
  EXPECT_EQ(n.q.deadlines_missed(), 1u);
  EXPECT_EQ(g->tasks.load(), 2u);
  EXPECT_EQ(g->cpu_ns.load(), 1200u);
  EXPECT_EQ(g->deadlines_missed.load(), 1u);
}

// Producers push into a Priority root with a Fair child (three children of its own), a
// Priority child (High and Low work) and deadlines, while consumers pop and finish: every
// entry is taken exactly once, and afterwards the size, the hint and the preferred count
// are all back at zero (R1, R2).
TEST(ReadyQueueStress, ConcurrentPushAndPopLoseNothing) {
  const std::size_t per = vitte::test::scaled(200'000);
  const unsigned producers = 2, consumers = 2;
  const std::size_t total = per * producers;
  Node n(Policy::Priority);
  const auto a = n.group("a", 1.0, Policy::Fair);
  const auto b = n.group("b", 1.0, Policy::Priority);
  // Three children of the Fair level `a`, of other policies and weights.
  const std::string parent("a");
  const std::vector<std::shared_ptr<GroupNode>> fair_kids{n.group("a1", 1.0, Policy::Fifo, parent),
                                                          n.group("a2", 2.0, Policy::Lifo, parent),
                                                          n.group("a3", 0.5, Policy::Fair, parent)};
  vitte::test::ExactlyOnce tally(total);

  std::vector<std::thread> ts;
  for (unsigned p = 0; p < producers; ++p)
    ts.emplace_back([&, p] {
      for (std::size_t k = 1; k <= per; ++k) {
        const std::uintptr_t i = p * per + k;
        switch (k % 5) {
          case 0: n.push(i, a); break;
          case 1: n.push(i, b, Priority::High); break;
          case 2: n.push(i, b, Priority::Low); break;
          case 3: n.push(i, fair_kids[k % 3]); break;
          default: n.push(i, nullptr, Priority::Normal, now_ns() + static_cast<std::int64_t>(k % 7) * 1000); break;
        }
      }
    });
  for (unsigned c = 0; c < consumers; ++c)
    ts.emplace_back([&, c] {
      while (tally.more()) {
        Entry e;
        const bool got = c == 0 ? n.q.pop(true, &e) : (n.q.pop_preferred(&e) || n.q.pop(true, &e));
        if (!got) continue;
        n.q.finish(e, 100, now_ns());
        tally.took(id(e.frame));
      }
    });
  for (auto& t : ts) t.join();

  EXPECT_EQ(tally.taken(), total);
  EXPECT_EQ(tally.bad_ids(), 0u);
  EXPECT_EQ(tally.wrong(), 0u) << "entries lost or taken twice";
  EXPECT_TRUE(n.q.empty());
  EXPECT_EQ(n.q.size(), 0);
  EXPECT_FALSE(n.q.has_preferred());
  EXPECT_FALSE(n.lane.hinted());
}

// R4: the entry a pop() fills may still hold the last reference to an anonymous group,
// whose unlink takes the node's lock; pop() lets go of it before it locks (it once hung
// here, assigning over it under the lock).
TEST(ReadyQueue, APopIntoAnEntryHoldingTheLastRefOfAGroupDoesNotDeadlock) {
  Node n(Policy::Fifo);
  n.push(1);
  Entry out;
  out.group = n.tree->make(GroupSpec{});  // the only hold on an anonymous level
  ASSERT_TRUE(n.q.pop(true, &out));
  EXPECT_EQ(id(out.frame), 1u);
  n.q.finish(out, 1000, now_ns());
}

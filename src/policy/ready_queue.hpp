// ReadyQueue: one NUMA node's policy work (policy.hpp): the deadline heap, and the tasks
// queued in the levels of the scheduling tree, with the picks each level's policy makes.
//
// Everything is guarded by the node's lock (GroupTree::node_lock); workers take it only
// when the node's hint says preferred work waits, or when their own deque is empty.
// Invariants:
//   R1  size_ == entries held (heap + every level's own tasks on this node); written under
//       the lock, read without it (a snapshot, like InjectionQueue::empty) by a worker about
//       to sleep, after the fence that pairs with the producer's (SchedulerCore).
//   R2  the node's hint counts every entry with hinted set: deadline entries, and High
//       entries of levels on a priority path; raised after the push, lowered after the
//       pop, both under the lock (UrgentLane U1: the hint may lag, never loses work).
//   R3  a popped entry is charged charged_ns (its level's recent duration) on the way up;
//       finish() corrects the charge to the time it ran. vtimes therefore track the time
//       used, also while tasks run on several workers at once.
//   R4  no Entry (which holds its level) is destroyed under the lock: a level's
//       destructor takes the tree's locks (GroupTree::unlink).
//   R5  aging promotes at most one task per aging interval per node: a task that has waited
//       longer than `aging` counts as High only while next_aged_ns_ has passed, and taking
//       a promoted task moves next_aged_ns_ one interval on. So a backlog older than the
//       bound cannot line up ahead of fresh High work (it would all be "High" and older),
//       and yet starved work progresses at one task per interval at least.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "clock/clock.hpp"
#include "policy/group_node.hpp"

namespace vitte::detail {

class GroupTree;
class InjectionQueue;
class UrgentLane;

class ReadyQueue {
 public:
  // `hint` is the node's urgent lane, whose hint word this queue shares (R2); `backlog`
  // the node's injection queue, whose slots admitted entries hold.
  ReadyQueue(GroupTree& tree, unsigned node, UrgentLane& hint, InjectionQueue& backlog,
             std::chrono::nanoseconds aging);

  // Queues an entry; its seq is set here. The caller wakes a worker afterwards.
  void push(Entry&& e);
  // Preferred work only (the hint's: deadlines first, then High or aged tasks of a
  // priority path).
  bool pop_preferred(Entry* out);
  // The next task by the tree's policies, deadlines first. With allow_low false, a Low task
  // (one not aged) stays queued: the worker looks at stealable work of its node first.
  bool pop(bool allow_low, Entry* out);
  // For a worker of another node: deadline work whose home has let half its time pass,
  // and tree work that is not Low.
  bool pop_remote(Entry* out);
  // The first entry whose frame satisfies `match` (an isolated wait looking for its own
  // tasks), in any level.
  bool take_if(const std::function<bool(TaskFrame*)>& match, Entry* out);
  // After the task ran for `ran_ns`, finishing at `end_ns`: corrects the shares (R3) and
  // the statistics. Returns whether it missed its deadline. `ran` false: it was discarded
  // unrun (a cancelled group): only the pick-time charge is undone.
  bool finish(const Entry& e, std::int64_t ran_ns, std::int64_t end_ns, bool ran = true);

  bool empty() const noexcept { return size_.load(std::memory_order_relaxed) == 0; }  // R1
  std::int64_t size() const noexcept { return size_.load(std::memory_order_relaxed); }  // R1, a snapshot
  // Whether a worker of another node could take something now (pop_remote's rules, as a
  // lock-free snapshot): tree work that is not Low, or a deadline entry past half its
  // window. Low work that aging would promote is not counted: a sleeping worker of another
  // node is not kept awake, nor woken, for it (its own node's workers take it). A worker about to sleep counts only this of other nodes' queues, so refused
  // work does not keep it spinning.
  bool remote_visible(std::int64_t now) const noexcept {
    return takeable_.load(std::memory_order_relaxed) != 0 || now >= deadline_half_.load(std::memory_order_relaxed);
  }
  bool has_preferred() const noexcept { return preferred_.load(std::memory_order_relaxed) != 0; }
  std::uint64_t deadlines_met() const noexcept { return met_.load(std::memory_order_relaxed); }
  std::uint64_t deadlines_missed() const noexcept { return missed_.load(std::memory_order_relaxed); }

 private:
  struct Pick {
    Entry* e = nullptr;
    GroupNode* g = nullptr;  // the level whose own tasks hold it
    int cls = 0;             // which of its own[] deques
    bool back = false;       // Lifo: from the back
    int eff = 0;             // effective class (aging)
    std::int64_t now = 0;    // when it was picked
  };
  // The candidate `level` gives by its policy; skip_low: the best one that is not Low (what
  // pop(allow_low = false) and pop_remote take, so that Normal work is never hidden behind
  // a Low pick, and remote_visible's count matches what a remote worker can take).
  bool best(GroupNode* level, std::int64_t now, Pick* out, bool skip_low = false);
  int effective(const Entry& e, std::int64_t now) const noexcept;
  void charge(GroupNode* g, double ns);  // own level's own_vtime, then vtime up the tree
  Entry take(const Pick& p);       // removes the picked entry, charges it (R3)
  Entry take_deadline();
  void taken(const Entry& e);      // counts and hint after any removal (R1, R2)
  static void release(Entry* out) noexcept;
  void unadmit(bool admitted);

  GroupTree& tree_;
  const unsigned node_;
  UrgentLane& hint_;
  InjectionQueue& backlog_;
  const std::int64_t aging_ns_;
  std::mutex& mu_;
  std::vector<Entry> deadlines_;  // min-heap on (deadline_ns, seq)
  std::int64_t next_aged_ns_ = 0;  // R5: when the next aged task may be promoted
  std::uint64_t next_seq_ = 0;
  std::atomic<std::int64_t> size_{0};       // R1
  std::atomic<std::int64_t> preferred_{0};  // R2, this queue's share of the hint
  std::atomic<std::int64_t> takeable_{0};   // tree entries that are not Low (remote_visible)
  // When the earliest deadline entry has waited half its window; INT64_MAX when none.
  std::atomic<std::int64_t> deadline_half_{INT64_MAX};
  void note_deadline_head() noexcept;  // refreshes deadline_half_ (under the lock)
  std::atomic<std::uint64_t> met_{0}, missed_{0};
};

}  // namespace vitte::detail

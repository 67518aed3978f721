// TimerService: the timer queues of one scheduler, one per arena node (SchedulerCore::timers).
//
// It implements the seam of vitte/detail/timer_entry.hpp (arm_timer, cancel_timer) for
// every kind of entry: user timers (Scheduler::after/at/every, timer.hpp) and whatever
// else waits for a deadline (a sleeping coroutine). Made with the scheduler and cheap:
// a mutex, a condition variable and an empty heap per node; each node's thread starts
// with its first timer (TimerQueue).
//
// Shutdown (T4): SchedulerCore::shutdown() calls shutdown() once the external submissions
// have drained and before it waits for the detached work. Every queue is closed (arm_timer
// returns false from then on), its thread joined, and each entry still pending is fired
// with TimerEvent::Dropped on the shutting-down thread: a user timer then destroys its
// closure unrun and reports TimerState::Dropped, a sleeping coroutine resumes with an
// error. It comes before the wait for detached work because a pending one-shot timer and
// a sleeping coroutine are detached work that only this wakes. When one-shot user timers
// were dropped, one line on stderr says how many, so none is lost silently.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "timer/timer_queue.hpp"
#include "vitte/detail/timer_entry.hpp"
#include "vitte/metrics.hpp"

namespace vitte::detail {

class SchedulerCore;

class TimerService {
 public:
  explicit TimerService(SchedulerCore& core);

  // arm_timer() and cancel_timer() (timer_entry.hpp).
  bool arm(TimerEntry* e, int node);
  bool cancel(TimerEntry* e) noexcept;
  // T4, once; see above. Called from SchedulerCore::shutdown() only.
  void shutdown() noexcept;
  // Deterministic runs (manual queues): fires what is due at virtual time `now_ns`, node by
  // node; true if anything fired. The earliest deadline pending on any node.
  bool fire_due(std::int64_t now_ns) noexcept;
  bool next_due(std::int64_t* ns) const;
  // A one-shot user timer that shutdown dropped counts itself here (for the stderr line).
  void note_dropped_one_shot() noexcept;

  // The node whose queue a timer armed with `node` goes to (node < 0: the calling
  // worker's node, or the caller's home node on other threads).
  unsigned node_for(int node) noexcept;
  // Counts of node `node`'s queue (zero for a node without an arena).
  TimerCounts counts(unsigned node) const;
  // Node `node`'s queue, or null when the node has no arena (tests; its workers, which
  // keep its earliest deadline while they sleep: TimerQueue Q5).
  const TimerQueue* queue(unsigned node) const noexcept;
  TimerQueue* queue(unsigned node) noexcept;

 private:
  SchedulerCore& core_;
  std::vector<std::unique_ptr<TimerQueue>> queues_;  // by node; null: no arena
  // relaxed: counted by dropping threads during shutdown(), read by it after every
  // queue's entries were dropped on its own thread.
  std::atomic<std::uint64_t> dropped_one_shots_{0};
};

}  // namespace vitte::detail

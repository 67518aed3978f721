// TimerEntry: one pending deadline in a node's timer queue (src/timer/).
//
// Intrusive: the entry lives in whoever waits (a sleeping coroutine's awaiter, a Timer's
// shared state), so arming a timer allocates nothing in the queue beyond its heap slot.
//
// Contract with the queue (the invariants the timer module keeps):
//   T1  an entry is in at most one queue; `slot` is its index in that queue's heap, or
//       kNotQueued. Both are read and written under the queue's lock only.
//   T2  exactly one of {fire(Fired), fire(Dropped), a cancel_timer() that returned true}
//       happens to an armed entry. fire() is called without the queue's lock held, after
//       the entry left the heap; it is the queue's last access to the entry.
//   T3  entries fall due in deadline order; equal deadlines in arming order (seq).
//   T4  arm_timer() refuses (returns false, nothing armed) once the scheduler's shutdown
//       has dropped the timers; fire(Dropped) is how a shutdown tells an armed entry.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace vitte::detail {

class SchedulerCore;

enum class TimerEvent : unsigned char { Fired, Dropped };

struct TimerEntry {
  static constexpr std::size_t kNotQueued = ~std::size_t{0};

  std::chrono::steady_clock::time_point deadline{};
  // Called once, on the timer thread (Fired) or the thread running shutdown (Dropped).
  // Must be quick and must not throw: it queues work (resume_later, inject), it does not
  // run it.
  void (*fire)(TimerEntry*, TimerEvent) noexcept = nullptr;
  std::uint64_t seq = 0;              // T3, set by arm_timer
  std::size_t slot = kNotQueued;      // T1
  unsigned node = 0;                  // the arena node whose queue holds it
};

// Queues `e` on node `node`'s timer queue (node < 0: the calling worker's node, or the
// caller's home node on other threads). Returns false when the scheduler is shutting down
// and no longer takes timers (T4); then nothing was armed.
bool arm_timer(SchedulerCore* core, TimerEntry* e, int node = -1);
// Takes `e` out of its queue. True: it was pending and now never fires (T2). False: it
// already fired or was dropped (its fire() has been or is being called).
bool cancel_timer(SchedulerCore* core, TimerEntry* e) noexcept;

}  // namespace vitte::detail

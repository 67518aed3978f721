// UrgentLane: a node's queue for work whose lateness is the point (timers that fell due,
// resume.hpp's Lane::Urgent), and the hint that lets busy workers see it.
//
// Frames sit in an unbounded InjectionQueue. Beside it, `queued_` counts frames pushed and
// not yet popped, on a cache line of its own. A worker reads it between any two tasks
// (Worker::find_work), before its own deque: without that, a worker whose tasks keep
// spawning never finds its deque empty and never reaches the node's queues, and a due timer
// waits until the load ends (measured: a 1 ms timer not run after 5 s under 100 µs tasks
// that re-spawn themselves). Reading it costs an L1 hit while no timer fires: the line is
// written only when urgent work is pushed or popped.
// Invariants:
//   U1  the hint is a hint: it is raised after the push and lowered after the pop, both
//       relaxed, so it may be late either way (a worker may see it and find nothing, or
//       miss a frame pushed a moment ago). Neither loses work: every frame stays in the
//       queue until popped, and a worker whose deque runs dry, or that is about to sleep,
//       looks at the queue itself (Worker::find_queued, SchedulerCore::any_work_visible).
//   U2  every pushed frame is popped exactly once (the queue's guarantee).
//   U3  the node's ReadyQueue shares the hint for its preferred work (deadlines, High tasks
//       of a priority path: ReadyQueue R2), so a worker still reads one word between tasks;
//       raise_hint/lower_hint follow U1's rules.
#pragma once

#include <atomic>
#include <cstdint>

#include "queue/injection_queue.hpp"

namespace vitte::detail {

class UrgentLane {
 public:
  void push(TaskFrame* f) {
    q_.push(f);
    queued_.fetch_add(1, std::memory_order_relaxed);  // U1: after the push
  }
  TaskFrame* try_pop() {
    TaskFrame* f = q_.try_pop();
    if (f != nullptr) queued_.fetch_sub(1, std::memory_order_relaxed);  // U1: after the pop
    return f;
  }
  // U3: the ReadyQueue's preferred entries, counted in the same word.
  void raise_hint() noexcept { queued_.fetch_add(1, std::memory_order_relaxed); }
  void lower_hint() noexcept { queued_.fetch_sub(1, std::memory_order_relaxed); }
  // Between tasks: probably something queued here or preferred in the ReadyQueue (U1, U3).
  bool hinted() const noexcept { return queued_.load(std::memory_order_relaxed) != 0; }
  // A snapshot of the queue itself (for the sleep protocol's re-check, like InjectionQueue).
  bool empty() const { return q_.empty(); }
  std::size_t size_hint() const { return q_.size_hint(); }  // for the metrics' samples

 private:
  alignas(kCacheLine) std::atomic<std::int32_t> queued_{0};  // may dip below zero for a moment (U1)
  InjectionQueue q_;
};

}  // namespace vitte::detail

// InjectionQueue: one per arena (NUMA node), for work that arrives from outside the
// node's workers (external threads, submit(task, node), TaskGroup::run from a thread
// that is not a worker).
//
// A thin wrapper over oneTBB's concurrent_queue (an unbounded MPMC FIFO). It is header-
// only template code, so the sanitizer builds instrument its atomics like our own. Its
// pages come from std::allocator rather than oneTBB's cache-aligned allocator: that one
// recycles memory inside libtbb, where ThreadSanitizer cannot see the hand-over, while
// malloc/free are visible to it. Pages hold many items, so this is off the hot path.
// Invariants: every pushed frame is popped exactly once (the queue's guarantee); FIFO
// order per producer. Its empty() is a snapshot, used only by a worker that is about to
// sleep, after a seq_cst fence that pairs with the producer's fence (see Worker::park).
#pragma once

#include <tbb/concurrent_queue.h>

#include <memory>

#include "vitte/detail/task_frame.hpp"

namespace vitte::detail {

class InjectionQueue {
 public:
  void push(TaskFrame* f) { q_.push(f); }
  TaskFrame* try_pop() {
    TaskFrame* f = nullptr;
    return q_.try_pop(f) ? f : nullptr;
  }
  bool empty() const { return q_.empty(); }

 private:
  tbb::concurrent_queue<TaskFrame*, std::allocator<TaskFrame*>> q_;
};

}  // namespace vitte::detail

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
//
// Bounded mode (Options::max_backlog > 0): external producers first admit() a slot,
// which fails or waits while `bound` frames are queued or admitted, then push_admitted();
// the workers' own pushes (push()) are counted but never refused; try_pop() gives the slot
// back. Invariants:
//   B1  backlog_ == frames admitted or pushed and not yet popped; admit() raises it only
//       while it is below the bound (CAS), push() raises it unconditionally.
//   B2  a producer that waits has counted itself in waiting_ before it re-reads
//       backlog_ under mu_; a popper decrements backlog_ before it reads waiting_ (both
//       seq_cst), so either the producer sees the space or the popper sees the producer
//       and notifies it under mu_ (no lost wake-up).
// Without a bound none of this runs: try_pop() pays one predictable branch.
#pragma once

#include <tbb/concurrent_queue.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "vitte/detail/task_frame.hpp"

namespace vitte::detail {

class InjectionQueue {
 public:
  explicit InjectionQueue(std::size_t bound = 0) noexcept : bound_(static_cast<std::int64_t>(bound)) {}

  // A push that took no slot (work queued by the workers themselves). `queued_ns`: the
  // steady-clock time an external submission was made (its submit-to-start latency is
  // measured from it), 0 for work the workers queue.
  void push(TaskFrame* f, std::int64_t queued_ns = 0) {
    // relaxed: only admit()'s CAS compares against it, and a late view only delays it.
    if (bound_ != 0) backlog_.fetch_add(1, std::memory_order_relaxed);
    q_.push(Item{f, queued_ns});
  }
  // A push after admit() returned true.
  void push_admitted(TaskFrame* f, std::int64_t queued_ns = 0) { q_.push(Item{f, queued_ns}); }
  // Frames queued now (a hint under concurrency).
  std::size_t size_hint() const {
    const auto n = q_.unsafe_size();
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  TaskFrame* try_pop(std::int64_t* queued_ns = nullptr) {
    Item it;
    if (!q_.try_pop(it)) return nullptr;
    if (bound_ != 0) release_slot();
    if (queued_ns != nullptr) *queued_ns = it.queued_ns;
    return it.frame;
  }
  bool empty() const { return q_.empty(); }

  bool bounded() const noexcept { return bound_ != 0; }
  std::int64_t bound() const noexcept { return bound_; }
  // Bounded mode: takes a slot for one frame. Returns false when the queue is full and
  // `wait` is false; otherwise waits for a slot.
  bool admit(bool wait) {
    // relaxed: a first guess; the CAS below decides.
    std::int64_t n = backlog_.load(std::memory_order_relaxed);
    for (;;) {
      if (n >= bound_) {
        if (!wait) return false;
        wait_for_space();
        n = backlog_.load(std::memory_order_relaxed);
        continue;
      }
      // seq_cst: B2's counterpart of the popper's decrement.
      if (backlog_.compare_exchange_weak(n, n + 1, std::memory_order_seq_cst, std::memory_order_relaxed))
        return true;
    }
  }
  // A slot admitted but never used (the push failed): give it back.
  void unadmit() { release_slot(); }

 private:
  void release_slot() {
    // seq_cst, then the seq_cst load of waiting_: B2.
    backlog_.fetch_sub(1, std::memory_order_seq_cst);
    if (waiting_.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      space_.notify_one();
    }
  }
  void wait_for_space() {
    std::unique_lock<std::mutex> lock(mu_);
    waiting_.fetch_add(1, std::memory_order_seq_cst);  // B2: before the re-read
    space_.wait(lock, [&] { return backlog_.load(std::memory_order_seq_cst) < bound_; });
    waiting_.fetch_sub(1, std::memory_order_relaxed);  // only read as a hint by poppers
  }

  struct Item {
    TaskFrame* frame = nullptr;
    std::int64_t queued_ns = 0;
  };
  tbb::concurrent_queue<Item, std::allocator<Item>> q_;
  const std::int64_t bound_;
  alignas(kCacheLine) std::atomic<std::int64_t> backlog_{0};
  std::atomic<std::int32_t> waiting_{0};
  std::mutex mu_;
  std::condition_variable space_;
};

}  // namespace vitte::detail

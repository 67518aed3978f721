// WaitCounter: the join point of a group of tasks (a TaskGroup, the scheduler's detached
// tasks, a future).
//
// Roles: any thread add()s work before it is queued; the worker that finishes a task
// calls done(); at most one joiner at a time waits for the count to reach zero.
//
// State word: state_ = (pending << 1) | kWaiting.
//   kWaiting is set (by CAS, only while pending > 0) by a joiner that is about to sleep
//   on its Waiter; waiter_ is written before that CAS.
// Invariants:
//   I1  pending never underflows (done() without add() is a bug; asserted).
//   I2  the completer that takes pending from 1 to 0 while kWaiting is set is the only
//       one that touches waiter_, and it does so before it stores ack_.
//   I3  ack_ is the completer's last access to this object: a joiner that set kWaiting
//       leaves only after it has seen ack_, so the object may live on the joiner's stack.
// Errors: the first exception recorded wins (claimed by CAS on has_error_); the rest are
// counted. The joiner reads error_ after it observed pending == 0 (acquire), which
// happens after the recording task's done() (release).
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>

#include "vitte/detail/assert.hpp"
#include "vitte/detail/waiter.hpp"

namespace vitte::detail {

class WaitCounter {
 public:
  static constexpr std::uint64_t kWaiting = 1;
  static constexpr std::uint64_t kOne = 2;

  // cancel_on_error: a TaskGroup skips its tasks that have not started once one of them
  // threw; the scheduler's detached tasks are unrelated to each other and keep running.
  explicit WaitCounter(bool cancel_on_error = true) noexcept : cancel_on_error_(cancel_on_error) {}
  WaitCounter(const WaitCounter&) = delete;
  WaitCounter& operator=(const WaitCounter&) = delete;

  void add(std::uint64_t n = 1) noexcept {
    // relaxed: the new task is published by the queue push (release) that follows; a
    // joiner that must see this increment is ordered after it by that same hand-off
    // or by program order.
    state_.fetch_add(n * kOne, std::memory_order_relaxed);
  }

  void done() noexcept {
    // acq_rel: release publishes the task's effects (and a recorded error) to the
    // joiner's acquire load; acquire pairs with the joiner's CAS (release) that set
    // kWaiting, so waiter_ is visible below.
    const std::uint64_t prev = state_.fetch_sub(kOne, std::memory_order_acq_rel);
    VITTE_ASSERT(prev >= kOne, "WaitCounter::done() without a matching add()");
    if (prev == (kOne | kWaiting)) {
      Waiter* w = waiter_.load(std::memory_order_relaxed);
      w->wake();
      // release: the joiner's acquire load of ack_ pairs with this; last touch (I3).
      ack_.store(true, std::memory_order_release);
    }
  }

  bool finished() const noexcept {
    // acquire: pairs with done()'s release, so the joiner sees the tasks' effects.
    return state_.load(std::memory_order_acquire) < kOne;
  }

  std::uint64_t pending() const noexcept {
    return state_.load(std::memory_order_relaxed) / kOne;
  }

  // Joiner side. Announces `w` as the sleeper; returns false if the count already
  // reached zero (nothing to wait for, kWaiting not set).
  bool arm(Waiter* w) noexcept {
    waiter_.store(w, std::memory_order_relaxed);  // published by the CAS below
    std::uint64_t s = state_.load(std::memory_order_acquire);
    for (;;) {
      if (s < kOne) return false;
      if (s & kWaiting) return true;
      // release: publishes waiter_ to the completer's acq_rel fetch_sub.
      // acquire (on failure too): we re-read the count as the completers left it.
      if (state_.compare_exchange_weak(s, s | kWaiting, std::memory_order_acq_rel,
                                       std::memory_order_acquire))
        return true;
    }
  }

  // Joiner side, after arm() returned true and finished() became true: waits for the
  // completer to release the object (I3), then clears the waiting state for reuse.
  void disarm() noexcept {
    // acquire: pairs with the completer's release store of ack_.
    while (!ack_.load(std::memory_order_acquire)) cpu_relax();
    ack_.store(false, std::memory_order_relaxed);
    // relaxed: only the joiner clears the bit; concurrent add()s touch other bits.
    state_.fetch_and(~kWaiting, std::memory_order_relaxed);
  }

  void record_exception(std::exception_ptr e) noexcept {
    bool expected = false;
    // acq_rel: the winner alone writes error_; the joiner reads it after done().
    if (has_error_.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
      error_ = std::move(e);
    } else {
      extra_errors_.fetch_add(1, std::memory_order_relaxed);
    }
    // relaxed: a hint read by tasks that have not started yet (they are skipped).
    if (cancel_on_error_) cancelled_.store(true, std::memory_order_relaxed);
  }

  void cancel() noexcept { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const noexcept { return cancelled_.load(std::memory_order_relaxed); }

  // Joiner side, after finished(): hands over the first error (or null) and resets
  // the error state so the counter can be reused.
  std::exception_ptr take_error(std::uint64_t* others = nullptr) noexcept {
    std::exception_ptr e;
    if (has_error_.load(std::memory_order_acquire)) {
      e = std::move(error_);
      error_ = nullptr;
      if (others) *others = extra_errors_.exchange(0, std::memory_order_relaxed);
      has_error_.store(false, std::memory_order_relaxed);
    }
    cancelled_.store(false, std::memory_order_relaxed);
    return e;
  }

 private:
  std::atomic<std::uint64_t> state_{0};
  std::atomic<Waiter*> waiter_{nullptr};
  std::atomic<bool> ack_{false};
  std::atomic<bool> has_error_{false};
  std::atomic<bool> cancelled_{false};
  std::atomic<std::uint64_t> extra_errors_{0};
  std::exception_ptr error_;
  const bool cancel_on_error_;
};

}  // namespace vitte::detail

// WaitCounter: the join point of a group of tasks (a TaskGroup, the scheduler's detached
// tasks, a future).
//
// Roles: threads add work before it is queued; the thread that finishes a task reports it;
// at most one joiner at a time waits for the pending count to reach zero.
//
// Two ledgers, so that fork-join pays no atomic read-modify-write in the common case:
//   L  (plain fields, owner only): tasks the *owner* worker spawned minus tasks the owner
//      finished. A TaskGroup made on a worker has that worker as owner; other counters
//      have none and L stays 0.
//   A  (atomic, in state_): tasks other threads spawned minus tasks other threads
//      finished. A may be negative (a thief finishing a task the owner spawned).
//   pending = L + A.
// State word: state_ = (A << 1) | kWaiting, two's complement; A is state_ >> 1 (signed).
//
// Joining: the owner (or, without an owner, the single joiner) helps or spins while
// pending > 0. Before sleeping it arms: one CAS folds L into A and sets kWaiting, after
// which A alone is the pending count (>= 1) and the owner too reports through the atomic
// path until disarm(). So the completer that takes A from 1 to 0 while kWaiting is set
// knows it finished the group.
// Invariants:
//   I1  without an owner, A never goes below zero (done() without add(); asserted).
//   I2  while kWaiting is set, L == 0 and A == pending.
//   I3  the completer that takes A from 1 to 0 with kWaiting set is the only one that
//       touches waiter_, and it does so before it stores ack_.
//   I4  ack_ is that completer's last access to this object: a joiner that armed leaves
//       only after it has seen ack_, so the object may live on the joiner's stack.
//   I5  L, armed_ and the owner's view are touched by the owner thread only; other
//       threads read owner_ alone, which never changes after construction.
// Errors: the first exception recorded wins (claimed by CAS on has_error_); the rest are
// counted. The joiner reads error_ after it observed pending == 0 (acquire on state_),
// which happens after the recording task's completion (release), or on its own thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>

#include "vitte/detail/assert.hpp"
#include "vitte/detail/waiter.hpp"

namespace vitte::detail {

struct WorkerLocal;

class WaitCounter {
 public:
  static constexpr std::uint64_t kWaiting = 1;
  static constexpr std::uint64_t kOne = 2;

  // cancel_on_error: a TaskGroup skips its tasks that have not started once one of them
  // threw; the scheduler's detached tasks are unrelated to each other and keep running.
  // owner: the worker whose spawns and completions may use the plain ledger (or null).
  explicit WaitCounter(bool cancel_on_error = true, const WorkerLocal* owner = nullptr) noexcept
      : owner_(owner), cancel_on_error_(cancel_on_error) {}
  WaitCounter(const WaitCounter&) = delete;
  WaitCounter& operator=(const WaitCounter&) = delete;

  const WorkerLocal* owner() const noexcept { return owner_; }

  // A task of this counter is about to be queued by `self` (null: not a worker).
  void add(const WorkerLocal* self = nullptr) noexcept {
    if (self != nullptr && self == owner_ && !armed_) {
      ++local_spawned_;
      return;
    }
    // relaxed: the new task is published by the queue push (release) that follows; a
    // joiner that must see this increment is ordered after it by that same hand-off or by
    // program order.
    state_.fetch_add(kOne, std::memory_order_relaxed);
  }

  // A task of this counter finished on `self` (null: not a worker).
  void done(const WorkerLocal* self = nullptr) noexcept {
    if (self != nullptr && self == owner_ && !armed_) {
      ++local_done_;
      return;
    }
    // Read before the decrement: once it lands, the joiner may see the group finished and
    // free this object (only a completer that finds kWaiting set may touch it after).
    [[maybe_unused]] const bool has_owner = owner_ != nullptr;
    // acq_rel: release publishes the task's effects (and a recorded error) to the
    // joiner's acquire load; acquire pairs with the joiner's arming CAS (release), so
    // waiter_ is visible below.
    const std::uint64_t prev = state_.fetch_sub(kOne, std::memory_order_acq_rel);
    VITTE_ASSERT(has_owner || static_cast<std::int64_t>(prev) >= static_cast<std::int64_t>(kOne),
                 "I1: WaitCounter::done() without a matching add()");
    if (prev == (kOne | kWaiting)) {
      Waiter* w = waiter_.load(std::memory_order_relaxed);
      w->wake();
      // release: the joiner's acquire load of ack_ pairs with this; last touch (I4).
      ack_.store(true, std::memory_order_release);
    }
  }

  // Joiner side (the owner, when there is one).
  bool finished() const noexcept {
    // acquire: pairs with done()'s release, so the joiner sees the tasks' effects.
    const std::int64_t a = static_cast<std::int64_t>(state_.load(std::memory_order_acquire)) >> 1;
    return a + local_pending() == 0;
  }

  // Joiner side. Announces `w` as the sleeper; returns false if nothing is pending (then
  // nothing is armed).
  bool arm(Waiter* w) noexcept {
    VITTE_ASSERT(!armed_, "arm() twice without disarm()");
    waiter_.store(w, std::memory_order_relaxed);  // published by the CAS below
    const std::int64_t l = local_pending();
    std::uint64_t s = state_.load(std::memory_order_acquire);
    for (;;) {
      if ((static_cast<std::int64_t>(s) >> 1) + l == 0) return false;
      const std::uint64_t folded = (s + static_cast<std::uint64_t>(l) * kOne) | kWaiting;
      // release: publishes waiter_ to the completer's acq_rel fetch_sub.
      // acquire (on failure too): we re-read the count as the completers left it.
      if (state_.compare_exchange_weak(s, folded, std::memory_order_acq_rel, std::memory_order_acquire)) {
        local_spawned_ = local_done_ = 0;  // I2: L now lives in A
        armed_ = true;
        return true;
      }
    }
  }

  // Joiner side, after arm() returned true and finished() became true: waits for the
  // completer to release the object (I4), then clears the waiting state for reuse.
  void disarm() noexcept {
    // acquire: pairs with the completer's release store of ack_.
    while (!ack_.load(std::memory_order_acquire)) cpu_relax();
    ack_.store(false, std::memory_order_relaxed);
    // relaxed: only the joiner clears the bit; concurrent add()s touch other bits.
    state_.fetch_and(~kWaiting, std::memory_order_relaxed);
    armed_ = false;
  }

  void record_exception(std::exception_ptr e) noexcept {
    bool expected = false;
    // acq_rel: the winner alone writes error_; the joiner reads it after completion.
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
  std::int64_t local_pending() const noexcept {
    return static_cast<std::int64_t>(local_spawned_ - local_done_);
  }

  std::atomic<std::uint64_t> state_{0};
  std::atomic<Waiter*> waiter_{nullptr};
  std::atomic<bool> ack_{false};
  std::atomic<bool> has_error_{false};
  std::atomic<bool> cancelled_{false};
  std::atomic<std::uint64_t> extra_errors_{0};
  std::exception_ptr error_;
  // The owner's ledger (I5).
  const WorkerLocal* const owner_;
  std::uint64_t local_spawned_ = 0;
  std::uint64_t local_done_ = 0;
  bool armed_ = false;
  const bool cancel_on_error_;
};

}  // namespace vitte::detail

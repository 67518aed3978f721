// TimerQueue: the pending deadlines of one arena node and the thread that waits for them.
//
//   arm(e) ──► [ mutex | TimerHeap (deadline, seq) ] ◄── cancel(e)
//                         │ the earliest deadline
//                   timer thread "vitte-t/n<node>": sleeps on a condition variable until
//                   that deadline, pops every due entry, and calls fire(e, Fired) for each
//                   with the lock released (T2); fire queues the work, it does not run it.
//
// The thread starts on the first arm() of the node, so a scheduler that never uses a
// timer has no extra thread. It never spins and never polls: it waits until the earliest
// deadline, or without a timeout while the heap is empty, and arm() notifies it only when
// the new entry is due before the deadline it sleeps until. It asks for a timer slack of
// kTimerSlackNs (Linux otherwise rounds a thread's timeouts up by 50 µs) and a short time
// slice, and, when the node's workers are pinned, runs on their CPUs.
//
// Invariants (besides T1-T4 of timer_entry.hpp and H1-H3 of timer_heap.hpp):
//   Q1  everything below is guarded by mu_, except thread_, which only the arming thread
//       that starts it (under mu_) and close()'s caller (after closed_ was set under mu_,
//       so nobody starts it any more) touch.
//   Q2  sleeping_until_ is the deadline the thread's current wait ends at (time_point::max()
//       while it waits with an empty heap; time_point::min() while it is awake and will
//       look at the heap again before waiting). arm() notifies iff the new entry is due
//       before it, so a wait never outlasts the earliest deadline, and arms that change
//       nothing cost no system call.
//   Q3  once closed_ is set nothing enters the heap (arm() returns false) and the thread
//       leaves at its next look; close() takes every entry out.
//   Q4  counts_: armed = fired + cancelled + dropped + size of the heap.
//   Q5  at most one keeper: a parked worker of the node that sleeps until the earliest
//       deadline (keep()) and fires what is due itself (fire_due) when it wakes by its
//       timeout, so a timer that falls due on an idle node reaches a worker in one wake-up
//       instead of two (the thread's, then the worker's). While there is a keeper the
//       thread sleeps kKeeperBackstop past the keeper's deadline (not past an entry armed
//       since with an earlier one; keep() notifies a thread that chose an earlier wake-up
//       before the keeper came, so that the two do not race), and stays the one that
//       fires while the workers are busy; a keeper that work wakes first resigns and
//       notifies it. Either may pop an entry, under mu_, so each fires once (T2).
//   Q6  entries fire in the order they leave the heap (deadline, then arming order, T3):
//       whoever fires (the thread, a keeper, a manual run) holds fire_mu_ from a batch's pop
//       to its last fire(), so two firers never interleave. Lock order: fire_mu_, then mu_;
//       arm() and cancel() take mu_ alone, so a fire() may re-arm.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "timer/timer_heap.hpp"
#include "vitte/detail/timer_entry.hpp"
#include "vitte/metrics.hpp"

namespace vitte::detail {

class TimerQueue {
 public:
  // Timer slack requested by the timer thread (PR_SET_TIMERSLACK), in nanoseconds.
  static constexpr unsigned long kTimerSlackNs = 1;

  // `cpus`: the Linux CPUs the thread is bound to (empty: leave it unbound); see
  // TimerService for the choice.
  // `manual`: no thread; a deterministic run fires the entries itself (fire_due), on its
  // virtual clock.
  TimerQueue(unsigned node, std::vector<int> cpus, bool manual = false);
  ~TimerQueue();  // after close()
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Queues `e` (its deadline set, its node this queue's); starts the thread on first use.
  // False after close(): nothing armed. Throws std::system_error when the thread cannot
  // be started, std::bad_alloc when the heap cannot grow; then nothing was armed.
  bool arm(TimerEntry* e);
  // Takes `e` out of the heap. False when it is not there (fired or dropped already).
  bool cancel(TimerEntry* e) noexcept;
  // Q3: refuses arms from now on, stops and joins the thread, and returns the entries
  // that were pending (out of the heap, not fired; the caller fires them Dropped).
  TimerHeap::Storage close() noexcept;

  // Fires every entry due at `now` (T2, T3, Q6), without mu_ held; returns how many. Called
  // by the thread, by a keeper (Q5) and by a deterministic run on a manual queue.
  // next_due: the earliest deadline pending, if any.
  std::size_t fire_due(std::chrono::steady_clock::time_point now) noexcept;
  bool next_due(std::chrono::steady_clock::time_point* at) const;
  // Q5: makes the caller the keeper, sleeping until `*until` (the earliest deadline); false
  // when there is a keeper already, nothing is pending, the queue is manual or closed.
  bool keep(std::chrono::steady_clock::time_point* until);
  // Q5: the keeper's sleep ended; `timed_out`: by its deadline (the caller fires what is
  // due next), else by other work (the thread takes over the deadline).
  void resign(bool timed_out) noexcept;
  // How far past the earliest deadline the thread sleeps while a worker keeps it (Q5).
  static constexpr std::chrono::microseconds kKeeperBackstop{500};

  TimerCounts counts() const;
  // Entries in the heap now, and the slots its vector holds (tests check H3).
  std::size_t pending() const;
  std::size_t capacity() const;

 private:
  void start_thread();  // under mu_
  void run() noexcept;  // the timer thread's body
  void set_up_thread() noexcept;

  const unsigned node_;
  const std::vector<int> cpus_;
  std::mutex fire_mu_;  // Q6
  mutable std::mutex mu_;
  std::condition_variable wake_;
  TimerHeap heap_;
  std::uint64_t next_seq_ = 0;
  bool closed_ = false;
  bool started_ = false;
  bool keeper_ = false;  // Q5, and the deadline the keeper sleeps until
  std::chrono::steady_clock::time_point keeper_until_;
  const bool manual_;
  std::chrono::steady_clock::time_point sleeping_until_ = std::chrono::steady_clock::time_point::min();
  TimerCounts counts_;
  std::thread thread_;
};

}  // namespace vitte::detail

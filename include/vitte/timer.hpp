// Timers: run a task after a delay, at a time point, or periodically.
//
//   vitte::Timer t = sched.after(10ms, [] { poll(); });     // once, in 10 ms
//   sched.at(deadline, [] { flush(); });                    // once, at a steady_clock time
//   vitte::Timer tick = sched.every(100ms, [] { sample(); }, {.name = "sample"},
//                                   vitte::Periodic::FixedDelay);
//   tick.cancel();                                          // no run starts after this
//
// The callback runs as an ordinary task on a worker of the timer's node (TaskOptions::node,
// by default the caller's): when it falls due, the node's timer thread queues it on the
// node's urgent lane, which workers take before other queued work, or, given a group, a
// priority or a deadline (counted from the tick), as policy work at that level (policy.hpp).
// It never runs early; how late it runs depends on the machine (docs/design.md, "Timers").
//
// Accounting, errors
//   A pending one-shot timer (after, at) is detached work of the scheduler from the call
//   until its callback has finished (or it is cancelled or dropped): join_all() waits for
//   it. A periodic timer is not counted while it waits for its next tick (it never ends:
//   cancel it, or shutdown drops it), but each run is, while it is queued or running.
//   An exception from a callback goes where a detached task's goes: join_all() or
//   shutdown() rethrows it. A periodic timer whose callback throws stops (state Done).
//
// Periodic timers: runs of one timer never overlap; the next run is armed when the current
//   one ends. FixedRate: the next deadline is the previous one plus the period, and ticks
//   whose deadline has passed by then are skipped (counted by missed()), never run in a
//   burst. FixedDelay: the next deadline is the end of the run plus the period.
//
// Shutdown contract (Scheduler::shutdown() or its destructor): once the external
//   submissions have drained, and before waiting for the detached work, every pending
//   timer is dropped: its callback never runs, its closure is destroyed, and its Timer
//   reports TimerState::Dropped. Runs already queued or running finish. When one-shot
//   timers were dropped, one line on stderr says how many. From then on arming is refused:
//   after/at/every throw UsageError. To have pending one-shot timers run, join_all() first.
//
// The Timer handle: move-only, refers to the timer's shared state. Destroying it does NOT
//   cancel the timer (the callback still runs; the state lives until both are done). It
//   may outlive its scheduler (state() then reports how the timer ended), but cancel()
//   must not overlap the scheduler's destruction.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "vitte/detail/user_timer.hpp"
#include "vitte/task_options.hpp"

namespace vitte {

class Scheduler;

enum class TimerState : unsigned char {
  Pending,    // waiting for its deadline (a periodic timer between runs), or due and queued
  Running,    // the callback is running
  Done,       // a one-shot timer ran; a periodic one stopped because its callback threw
  Cancelled,  // cancel() stopped it
  Dropped,    // shutdown dropped it while it was pending
};

enum class Periodic : unsigned char {
  FixedRate,   // deadline k = first deadline + k * period; missed ticks are skipped
  FixedDelay,  // next deadline = end of the previous run + period
};

class Timer {
 public:
  Timer() noexcept = default;  // refers to no timer
  Timer(Timer&& o) noexcept : t_(o.t_) { o.t_ = nullptr; }
  Timer& operator=(Timer&& o) noexcept;
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer();  // does not cancel

  // Stops the timer: after it returns no new run starts (a run in progress finishes).
  // True if this prevented at least one run; false if it came too late (a one-shot timer
  // already started or ended), if the timer had ended, on a second call, and on an empty
  // handle. Safe from any thread, from the callback itself too. Throws UsageError in a
  // process that inherited the scheduler through fork() (its timer thread is gone there). The closure is destroyed
  // by this call, or, when the timer was firing at that instant, by the thread firing it.
  // The handle itself is a plain object: a callback that cancels its own timer through a
  // Timer variable that is still being assigned from every() (`t = s.every(...)`) races
  // with that assignment when the first tick fires early; hand the handle over first
  // (e.g. through a std::promise<Timer*> or a flag the callback checks).
  bool cancel();

  // Where the timer stands (an empty handle reports Dropped: it refers to no timer).
  TimerState state() const noexcept;
  // The deadline of the pending or latest run (a default time_point for an empty handle).
  std::chrono::steady_clock::time_point deadline() const noexcept;
  // Runs started so far, and (FixedRate) ticks skipped because they had passed.
  std::uint64_t runs() const noexcept;
  std::uint64_t missed() const noexcept;
  bool periodic() const noexcept;
  // False for a default-constructed or moved-from handle.
  explicit operator bool() const noexcept { return t_ != nullptr; }

 private:
  friend class Scheduler;
  explicit Timer(detail::UserTimer* t) noexcept : t_(t) {}
  detail::UserTimer* t_ = nullptr;
};

}  // namespace vitte

// UserTimer: the shared state behind a vitte::Timer (timer.hpp), and the one allocation a
// timer costs. It holds the queue's entry (TimerEntry, intrusive), the closure, and a phase
// word that decides, between the threads that may touch a timer at once (the timer thread
// firing it, the worker running it, a thread cancelling it, the thread shutting down),
// which of them ends it. The protocol lives in src/timer/user_timer.cpp; only the layout
// and the closure's type erasure are here, because Scheduler::after/at/every are templates.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include "vitte/detail/bound_options.hpp"
#include "vitte/detail/timer_entry.hpp"

namespace vitte::detail {

// Armed: in a timer queue (or about to be)      Queued: fired, its run is queued on a worker
// Running: the callback runs                     Done / Cancelled / Dropped: ended
enum class TimerPhase : unsigned char { Armed, Queued, Running, Done, Cancelled, Dropped };
enum class UserTimerOp : unsigned char { Invoke, DestroyClosure, Delete };

struct UserTimer {
  TimerEntry entry;  // first member: fire() finds the timer from its entry
  // Invoke runs the closure (and may throw); DestroyClosure destroys it; Delete frees the
  // whole object (the closure is gone by then).
  void (*op)(UserTimer*, UserTimerOp) = nullptr;
  SchedulerCore* core = nullptr;
  std::uint64_t live = 0;  // core's liveness token (liveness.hpp)
  std::chrono::nanoseconds period{0};  // 0: one-shot
  bool fixed_delay = false;
  // Its options (task_options.hpp), owned; null: none (each run goes to the urgent lane).
  // With a group, a priority or a deadline each run is policy work, its deadline counted
  // from its tick; a name labels and counts its runs.
  const BoundOptions* opts = nullptr;
  // References: the Timer handle's, and one for whoever holds the timer's life at the
  // moment (its queue entry, its queued run, the re-arming worker), released when it ends.
  std::atomic<std::uint32_t> refs{1};
  std::atomic<TimerPhase> phase{TimerPhase::Armed};
  std::atomic<bool> cancel_requested{false};  // the first cancel() sets it; later ones return false
  std::atomic<std::int64_t> deadline_ns{0};   // entry.deadline for readers outside the protocol
  std::atomic<std::uint64_t> runs{0};
  std::atomic<std::uint64_t> missed{0};       // FixedRate ticks skipped
};
static_assert(std::is_standard_layout_v<UserTimer>, "the entry must be pointer-interconvertible with its timer");

template <class F>
struct UserTimerOf final : UserTimer {
  template <class G>
  explicit UserTimerOf(G&& g) : fn(std::forward<G>(g)) {
    op = &run_op;
  }
  ~UserTimerOf() { delete opts; }  // fn was destroyed by DestroyClosure
  static void run_op(UserTimer* base, UserTimerOp o) {
    auto* self = static_cast<UserTimerOf*>(base);
    switch (o) {
      case UserTimerOp::Invoke: self->fn(); return;
      case UserTimerOp::DestroyClosure: self->fn.~F(); return;
      case UserTimerOp::Delete: delete self; return;
    }
  }
  union {
    F fn;
  };
};

template <class F>
UserTimer* make_user_timer(F&& fn) {
  static_assert(std::is_invocable_v<std::decay_t<F>&>, "a timer's callback is callable with no arguments");
  return new UserTimerOf<std::decay_t<F>>(std::forward<F>(fn));
}

// A duration in nanoseconds, rounded up, saturated at nanoseconds::min()/max().
template <class Rep, class Period>
std::chrono::nanoseconds saturated_ns(std::chrono::duration<Rep, Period> d) noexcept {
  using Wide = std::chrono::duration<long double, std::nano>;
  const long double v = std::chrono::duration_cast<Wide>(d).count();
  constexpr auto kMax = std::chrono::nanoseconds::max().count();
  if (!(v < static_cast<long double>(kMax))) return std::chrono::nanoseconds::max();
  if (!(v > -static_cast<long double>(kMax))) return -std::chrono::nanoseconds::max();
  auto n = static_cast<std::int64_t>(v);
  if (static_cast<long double>(n) < v) ++n;
  return std::chrono::nanoseconds(n);
}

// t + d, saturated at time_point::max(); a d <= 0 gives t.
inline std::chrono::steady_clock::time_point add_saturated(std::chrono::steady_clock::time_point t,
                                                           std::chrono::nanoseconds d) noexcept {
  using Clock = std::chrono::steady_clock;
  if (d <= std::chrono::nanoseconds::zero()) return t;
  return d >= Clock::time_point::max() - t ? Clock::time_point::max()
                                           : t + std::chrono::duration_cast<Clock::duration>(d);
}

}  // namespace vitte::detail

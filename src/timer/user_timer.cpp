// User timers (Scheduler::after/at/every, vitte::Timer): the protocol on UserTimer's phase.
//
// Who may touch a timer at once: the timer thread firing its entry (fire), the worker
// running its callback and re-arming it (run, after_run), any thread in cancel(), and the
// thread running shutdown (fire with Dropped). The phase word (user_timer.hpp) decides.
//
//   Armed ──fire──► Queued ──run──► Running ──one-shot──► Done
//     ▲                                │ periodic: CAS Running -> Armed, then arm_timer
//     └────────────────────────────────┘
//   cancel(): Armed/Queued -> Cancelled; Running -> Cancelled (periodic only)
//   shutdown: Armed -> Dropped (fire(Dropped), or a re-arm that arm_timer refused)
//
// Invariants:
//   U1  the phase only moves along the arrows above, by CAS (acq_rel), except two plain
//       stores made by the only thread that can change it then: Running -> Done of a
//       one-shot (cancel() leaves a running one-shot alone) and the refusal paths of
//       start, before anyone else knows the timer.
//   U2  one party at a time holds the timer's life (the "engine" reference): the queue
//       while the entry is armed (then fire, or the cancel_timer() that took it out), the
//       queued run and the running worker, the re-arming worker until arm_timer accepted.
//       Whoever holds it when the phase is final calls finish() exactly once: the closure
//       is destroyed, the reference released, and a one-shot's detached count given back
//       if no run frame carries it. Nobody else destroys the closure or frees the state.
//   U3  cancel() sets Cancelled and, from Armed, then tries cancel_timer(): true means it
//       took the entry (and the life, U2); false means fire() is under way (it will see
//       Cancelled and finish), or a re-arm has not queued it yet (the re-armer reads the
//       phase after arm_timer and takes the entry back itself). The CAS before the
//       cancel_timer() orders the two: a re-arm whose arm_timer came after the cancel's
//       cancel_timer() reads Cancelled (the queue's lock is the happens-before edge).
//   U4  a one-shot counts as one detached task from start until finish() (no run) or
//       until its run frame completes (the frame carries the count: its counter is the
//       scheduler's detached one). A periodic run counts only as its frame.
#include <cstdio>
#include <exception>
#include <string>

#include "memory/free_memory.hpp"
#include "scheduler_core.hpp"
#include "timer/timer_service.hpp"
#include "vitte/detail/clock.hpp"
#include "vitte/detail/route.hpp"
#include "vitte/detail/task_frame.hpp"
#include "vitte/scheduler.hpp"
#include "vitte/timer.hpp"

namespace vitte {
namespace detail {
namespace {

using Clock = std::chrono::steady_clock;

UserTimer* from_entry(TimerEntry* e) noexcept { return reinterpret_cast<UserTimer*>(e); }

void add_ref(UserTimer* t) noexcept {
  // relaxed: the caller already holds a reference.
  t->refs.fetch_add(1, std::memory_order_relaxed);
}

namespace {
// Timer states alive in the process, and whether they passed kTimerBurst since they last
// drained. A burst that drains hands its memory back once (release_free_memory): glibc
// trims its heap only from the top, and any small block allocated there during the burst
// by another thread (a metrics snapshot, a log line) would otherwise keep the whole
// burst's pages. Statistics-grade: relaxed RMWs on the timer path, never on a task's.
constexpr std::int64_t kTimerBurst = std::int64_t{1} << 16;
std::atomic<std::int64_t> live_timers{0};
std::atomic<bool> timer_burst{false};

void timer_born() noexcept {
  if (live_timers.fetch_add(1, std::memory_order_relaxed) + 1 == kTimerBurst)
    timer_burst.store(true, std::memory_order_relaxed);
}

void timer_died() noexcept {
  if (live_timers.fetch_sub(1, std::memory_order_relaxed) == 1 && timer_burst.load(std::memory_order_relaxed) &&
      timer_burst.exchange(false, std::memory_order_relaxed))
    release_free_memory();
}
}  // namespace

void release(UserTimer* t) noexcept {
  // acq_rel: the release publishes this holder's writes; the last one's acquire sees all.
  if (t->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    t->op(t, UserTimerOp::Delete);
    timer_died();
  }
}

void set_deadline(UserTimer* t, Clock::time_point d) noexcept {
  t->entry.deadline = d;
  // relaxed: read only by Timer::deadline(), a snapshot.
  t->deadline_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(d.time_since_epoch()).count(),
                       std::memory_order_relaxed);
}

bool cas_phase(UserTimer* t, TimerPhase from, TimerPhase to) noexcept {
  // acq_rel (U1): the winner sees what the previous holder did (a run's effects before
  // the closure is destroyed on another thread) and publishes its own.
  return t->phase.compare_exchange_strong(from, to, std::memory_order_acq_rel, std::memory_order_acquire);
}

// U2: the end of a timer, by the holder of its life.
void finish(UserTimer* t, bool frame_carries_count) noexcept {
  t->op(t, UserTimerOp::DestroyClosure);
  SchedulerCore* core = t->core;
  const bool one_shot = t->period.count() == 0;
  release(t);
  // Last: join_all() may return and the scheduler go away once the count drops (U4).
  if (one_shot && !frame_carries_count) core->detached.done(nullptr);
}

void after_run(UserTimer* t, bool threw) noexcept;

// The task a fired timer queues. It carries the timer's life (U2) until it runs.
struct RunUserTimer {
  UserTimer* t;
  RunUserTimer(UserTimer* timer) noexcept : t(timer) {}
  RunUserTimer(RunUserTimer&& o) noexcept : t(o.t) { o.t = nullptr; }
  RunUserTimer(const RunUserTimer&) = delete;
  // A frame discarded unrun (the scheduler's detached counter is never cancelled, so this
  // does not happen today) still ends the timer.
  ~RunUserTimer() {
    if (t != nullptr && cas_phase(t, TimerPhase::Queued, TimerPhase::Dropped)) finish(t, true);
  }
  void operator()() {
    UserTimer* timer = std::exchange(t, nullptr);
    if (!cas_phase(timer, TimerPhase::Queued, TimerPhase::Running)) {  // cancelled before it started
      finish(timer, true);
      return;
    }
    timer->runs.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    struct AfterRun {
      UserTimer* t;
      bool threw = true;
      ~AfterRun() { after_run(t, threw); }
    } guard{timer};
    timer->op(timer, UserTimerOp::Invoke);  // an exception goes on to the frame, which records it
    guard.threw = false;
  }
};

// FixedRate: the next tick after `prev`, skipping those that have passed by `now`.
Clock::time_point next_fixed_rate(UserTimer* t, Clock::time_point now) noexcept {
  Clock::time_point next = add_saturated(t->entry.deadline, t->period);
  if (next >= now) return next;
  const auto behind = std::chrono::duration_cast<std::chrono::nanoseconds>(now - next).count();
  const auto p = t->period.count();
  const auto skipped = static_cast<std::uint64_t>((behind + p - 1) / p);
  t->missed.fetch_add(skipped, std::memory_order_relaxed);  // relaxed: a statistic
  return add_saturated(next, std::chrono::nanoseconds(static_cast<std::int64_t>(skipped) * p));
}

void after_run(UserTimer* t, bool threw) noexcept {
  if (t->period.count() == 0) {
    t->phase.store(TimerPhase::Done, std::memory_order_release);  // U1: nobody else moves a running one-shot
    finish(t, true);
    return;
  }
  if (threw) {  // a periodic timer stops at its callback's first error (a cancel may have come first)
    cas_phase(t, TimerPhase::Running, TimerPhase::Done);
    finish(t, true);
    return;
  }
  const Clock::time_point now = steady_now();  // virtual in a deterministic run
  set_deadline(t, t->fixed_delay ? add_saturated(now, t->period) : next_fixed_rate(t, now));
  if (!cas_phase(t, TimerPhase::Running, TimerPhase::Armed)) {  // cancelled during the run
    finish(t, true);
    return;
  }
  SchedulerCore* core = t->core;  // alive: our run frame is detached work until we return
  add_ref(t);                     // once armed, the entry may fire and end before we look again
  bool armed = false;
  try {
    armed = arm_timer(core, &t->entry, static_cast<int>(t->entry.node));
  } catch (...) {
    core->detached.record_exception(std::current_exception());  // no thread, no memory: say so
  }
  if (!armed) {  // refused (shutdown) or failed: the life stayed with us
    cas_phase(t, TimerPhase::Armed, TimerPhase::Dropped);  // or it was Cancelled meanwhile
    finish(t, true);
  } else if (t->phase.load(std::memory_order_acquire) == TimerPhase::Cancelled && cancel_timer(core, &t->entry)) {
    finish(t, true);  // U3: a cancel() came between our CAS and the arm
  }
  release(t);
}

// TimerEntry::fire of a user timer: on the timer thread (Fired) or the shutting-down one
// (Dropped). Holds the timer's life (U2) on entry.
void fire_user_timer(TimerEntry* e, TimerEvent ev) noexcept {
  UserTimer* t = from_entry(e);
  const bool one_shot = t->period.count() == 0;
  if (ev == TimerEvent::Dropped) {
    if (cas_phase(t, TimerPhase::Armed, TimerPhase::Dropped) && one_shot) t->core->timers->note_dropped_one_shot();
    finish(t, false);  // dropped, or cancelled by a cancel() that raced with the drop
    return;
  }
  if (!cas_phase(t, TimerPhase::Armed, TimerPhase::Queued)) {  // cancelled while it fell due (U3)
    finish(t, false);
    return;
  }
  SchedulerCore* core = t->core;
  TaskFrame* f = nullptr;
  try {
    f = pack(nullptr, RunUserTimer{t});  // owns the life from here (U2)
    f->counter = &core->detached;
    if (!one_shot) core->detached.add(nullptr);  // U4: this run
    try {
      const int node = static_cast<int>(t->entry.node);
      const BoundOptions* o = t->opts;
      if (o != nullptr && o->policy()) {  // policy work (policy.hpp), its deadline from the tick
        // relaxed: written before the timer was armed (set_deadline); saturates like it.
        const std::int64_t tick = t->deadline_ns.load(std::memory_order_relaxed);
        const std::int64_t due =
            o->deadline_ns == 0 ? 0 : tick > INT64_MAX - o->deadline_ns ? INT64_MAX : tick + o->deadline_ns;
        route(core, nullptr, f, Route{.opts = o, .source = Source::Timer, .node = node, .due_ns = due});
      } else {
        route(core, nullptr, f, Route{.opts = o, .lane = Lane::Urgent, .source = Source::Timer, .node = node});
      }
    } catch (...) {
      if (!one_shot) core->detached.done(nullptr);
      throw;
    }
  } catch (...) {
    // No memory for the frame or the queue's page: the run cannot happen. Reported like a
    // task's failure (join_all() rethrows it), and the timer ends as dropped.
    core->detached.record_exception(std::current_exception());
    if (f != nullptr) {
      f->op(f, FrameOp::Discard);  // ~RunUserTimer ends the timer; the frame carries no count
      delete_frame(f);
      if (one_shot) core->detached.done(nullptr);
    } else if (cas_phase(t, TimerPhase::Queued, TimerPhase::Dropped)) {
      finish(t, false);
    }
  }
}

// Checks and arms a freshly made timer (refs == 1: the caller's handle). On any error,
// nothing is armed or counted and the closure is destroyed before the exception leaves.
void start_user_timer(SchedulerCore* core, UserTimer* t, Clock::time_point first, std::chrono::nanoseconds period,
                      bool periodic, const TaskOptions& opts, Periodic mode, const char* what) {
  auto refuse = [&] {  // U1: nobody else knows the timer yet
    t->phase.store(TimerPhase::Dropped, std::memory_order_relaxed);
    t->op(t, UserTimerOp::DestroyClosure);
  };
  // Strings only on the error paths: arming allocates nothing but the timer itself (and
  // its options, when it has some).
  auto name = [what] { return std::string("Scheduler::") + what; };
  try {
    core->check_not_inherited(what);
    if (periodic && period.count() <= 0)
      throw UsageError(name() + ": the period must be above zero; got " + std::to_string(period.count()) + " ns");
    if (!opts.empty()) t->opts = new BoundOptions(bind_options(core, opts, name().c_str()));  // freed with the timer
  } catch (...) {
    refuse();
    throw;
  }
  t->core = core;
  t->live = live_token(core);
  t->period = periodic ? period : std::chrono::nanoseconds(0);
  t->fixed_delay = mode == Periodic::FixedDelay;
  t->entry.fire = &fire_user_timer;
  t->entry.node = core->timers->node_for(t->opts != nullptr ? t->opts->node : -1);
  set_deadline(t, first);
  add_ref(t);                                  // the life (U2), handed to the queue by arm_timer
  if (!periodic) core->detached.add(nullptr);  // U4
  bool armed = false;
  try {
    armed = arm_timer(core, &t->entry, static_cast<int>(t->entry.node));
  } catch (...) {
    t->phase.store(TimerPhase::Dropped, std::memory_order_relaxed);
    finish(t, false);
    throw;
  }
  if (!armed) {
    t->phase.store(TimerPhase::Dropped, std::memory_order_relaxed);
    finish(t, false);
    throw UsageError(name() + " after the scheduler's shutdown dropped its timers; the timer was not armed");
  }
}

TimerState public_state(TimerPhase p) noexcept {
  switch (p) {
    case TimerPhase::Armed:
    case TimerPhase::Queued: return TimerState::Pending;
    case TimerPhase::Running: return TimerState::Running;
    case TimerPhase::Done: return TimerState::Done;
    case TimerPhase::Cancelled: return TimerState::Cancelled;
    case TimerPhase::Dropped: return TimerState::Dropped;
  }
  return TimerState::Dropped;
}

// Timer::cancel (U3).
bool cancel_user_timer(UserTimer* t) noexcept {
  // acq_rel: only the first cancel() goes on.
  if (t->cancel_requested.exchange(true, std::memory_order_acq_rel)) return false;
  TimerPhase p = t->phase.load(std::memory_order_acquire);
  for (;;) {
    switch (p) {
      case TimerPhase::Armed:
        // acq_rel, as cas_phase; a failure re-reads p and decides again.
        if (!t->phase.compare_exchange_weak(p, TimerPhase::Cancelled, std::memory_order_acq_rel,
                                            std::memory_order_acquire))
          continue;
        if (cancel_timer(t->core, &t->entry)) finish(t, false);  // we took the entry, and its life
        return true;
      case TimerPhase::Queued:  // the queued run will see Cancelled and end the timer unrun
        if (!t->phase.compare_exchange_weak(p, TimerPhase::Cancelled, std::memory_order_acq_rel,
                                            std::memory_order_acquire))
          continue;
        return true;
      case TimerPhase::Running:
        if (t->period.count() == 0) return false;  // a one-shot's only run has started
        // The running worker will not re-arm it.
        if (!t->phase.compare_exchange_weak(p, TimerPhase::Cancelled, std::memory_order_acq_rel,
                                            std::memory_order_acquire))
          continue;
        return true;
      case TimerPhase::Done:
      case TimerPhase::Cancelled:
      case TimerPhase::Dropped:
        return false;
    }
  }
}

}  // namespace
}  // namespace detail

Timer Scheduler::start_timer(detail::UserTimer* t, std::chrono::steady_clock::time_point first,
                             std::chrono::nanoseconds period, bool periodic, const TaskOptions& opts,
                             Periodic mode, const char* what) {
  detail::timer_born();
  Timer timer(t);  // the handle's reference: frees the state if we throw
  detail::start_user_timer(core_.get(), t, first, period, periodic, opts, mode, what);
  return timer;
}

Timer& Timer::operator=(Timer&& o) noexcept {
  if (this != &o) {
    if (t_ != nullptr) detail::release(t_);
    t_ = std::exchange(o.t_, nullptr);
  }
  return *this;
}

Timer::~Timer() {
  if (t_ != nullptr) detail::release(t_);
}

bool Timer::cancel() {
  if (t_ == nullptr) return false;
  // In a fork() child the timer thread that may hold the queue's lock does not exist:
  // refuse before touching it. A destroyed scheduler dropped the timer (cancel says false).
  if (t_->core != nullptr && detail::alive(t_->live)) t_->core->check_not_inherited("Timer::cancel()");
  return detail::cancel_user_timer(t_);
}

TimerState Timer::state() const noexcept {
  // acquire: a state read as ended comes with the ending thread's effects.
  return t_ == nullptr ? TimerState::Dropped : detail::public_state(t_->phase.load(std::memory_order_acquire));
}

std::chrono::steady_clock::time_point Timer::deadline() const noexcept {
  if (t_ == nullptr) return {};
  // relaxed: a snapshot (set_deadline).
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(t_->deadline_ns.load(std::memory_order_relaxed)));
}

std::uint64_t Timer::runs() const noexcept { return t_ == nullptr ? 0 : t_->runs.load(std::memory_order_relaxed); }
std::uint64_t Timer::missed() const noexcept { return t_ == nullptr ? 0 : t_->missed.load(std::memory_order_relaxed); }
bool Timer::periodic() const noexcept { return t_ != nullptr && t_->period.count() != 0; }

}  // namespace vitte

// A worker with nothing to do: the searching state, the bounded spin, and the sleep
// protocol that pairs with the producers' wake-ups (docs/design.md); idle statistics
// (WorkerStats S2); and the blocking wait of threads that are not workers.
#include <thread>

#include "clock/clock.hpp"
#include "deterministic/sim.hpp"
#include "jobserver/client.hpp"
#include "timer/timer_queue.hpp"
#include "scheduler_core.hpp"
#include "worker/hot_path.hpp"
#include "worker/parking_lot.hpp"

namespace vitte::detail {

// S2. Going idle is also when the counters are read: the worker has nothing else to do.
void Worker::idle_begin() noexcept {
  if (stats.idle_since.load(std::memory_order_relaxed) != 0) return;
  stats.idle_since.store(now_ns(), std::memory_order_relaxed);
  if (stats.events != nullptr) publish_counters();
  stats.state.store(WorkerState::Searching, std::memory_order_release);  // S3
}

void Worker::idle_end() noexcept {
  const std::int64_t since = stats.idle_since.load(std::memory_order_relaxed);
  if (since == 0) return;
  stats.state.store(WorkerState::Running, std::memory_order_relaxed);
  stats.idle_ns.bump(static_cast<std::uint64_t>(now_ns() - since));
  stats.idle_since.store(0, std::memory_order_relaxed);
}

void Worker::backoff(unsigned round) {
  if (round < kSpinRounds / 2) {
    for (unsigned i = 0, n = 1u << (round < 6 ? round : 6); i < n; ++i) cpu_relax();
  } else {
    std::this_thread::yield();
  }
}

void Worker::start_searching() noexcept {
  idle_begin();
  searching_ = true;
  // seq_cst: read by producers deciding whether to wake a sleeper.
  core_.idle.searching.fetch_add(1, std::memory_order_seq_cst);
}

void Worker::found_work() noexcept {
  idle_end();
  searching_ = false;
  // The last searcher to find work wakes a successor if anyone sleeps and there is more
  // work where this came from: nobody else is looking for it.
  if (core_.idle.searching.fetch_sub(1, std::memory_order_seq_cst) == 1 && more_where_found_ &&
      core_.idle.sleepers.load(std::memory_order_relaxed) > 0)
    core_.lot->wake_one(node);
}

void Worker::leave_search() noexcept {
  if (!searching_) return;
  searching_ = false;
  core_.idle.searching.fetch_sub(1, std::memory_order_seq_cst);
}

// The sleep protocol. Announce (enlist: sleepers++), stop searching, then re-check every
// queue after a seq_cst fence that pairs with the producer's fence in
// SchedulerCore::inject(): either the producer sees our announcement and wakes us, or we
// see its work and do not sleep. A joining worker also arms its WaitCounter so that the
// group's last task wakes it.
void Worker::park(WaitCounter* joining, bool& armed, bool isolated) {
  const std::uint32_t epoch = waiter.epoch();
  core_.lot->enlist(this);
  leave_search();
  if (joining != nullptr && !armed) armed = joining->arm(&waiter);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // An isolated wait cannot go by visible work, which may all be foreign (it would never
  // sleep): it goes by arrivals on its node's queues since its last scan. The producer's
  // push, its fence and its look at the sleepers pair with this fence as for any sleeper:
  // either it sees us enlisted and wakes one, or we see the frame it queued.
  const bool arrived = isolated ? queued_on_node() > isolated_seen_ : core_.any_work_visible_to(node);
  const bool ready = (joining != nullptr && (joining->finished() || (armed && joining->notified()))) ||
                     core_.stopping.load(std::memory_order_acquire) || arrived;
  bool keeping = false, timed_out = false;
  if (!ready) {
    counters.parks.bump();
    stats.state.store(WorkerState::Parked, std::memory_order_relaxed);
    // relaxed: a hint; the last worker to fall asleep hands freed memory back.
    if (joining == nullptr && core_.idle.sleepers.load(std::memory_order_relaxed) ==
                                  static_cast<std::int32_t>(core_.workers.size()))
      core_.on_idle();
    const bool traced = tracing();
    const std::int64_t slept_at = traced ? trace_ticks() : 0;
    // TimerQueue Q5: one sleeper of the node keeps its earliest deadline.
    std::chrono::steady_clock::time_point until;
    keeping = timers_ != nullptr && timers_->keep(&until);
    // A parked worker runs nothing: its jobserver token goes back (jobserver.hpp).
    if (core_.jobserver != nullptr) [[unlikely]]
      core_.jobserver->release(index);
    timed_out = keeping && !waiter.wait_until(epoch, until);
    if (!keeping) waiter.wait(epoch);
    stats.state.store(WorkerState::Searching, std::memory_order_relaxed);
    if (traced) [[unlikely]] trace_.parked(slept_at, trace_ticks());
  }
  if (keeping) timers_->resign(timed_out);
  if (!core_.lot->delist(this)) {
    // A producer took us off the list and counted us as searching (ParkingLot P3).
    counters.wakeups.bump();
    searching_ = true;
    if (tracing()) [[unlikely]] trace_.woken(trace_ticks());
  } else {
    // Back in the loop as a worker that is not searching: it runs what it finds without
    // found_work(), so its idle period ends here (and starts again if it finds nothing).
    idle_end();
  }
  // Back to running tasks: with a token again, however long that takes (once shutdown
  // has begun, not when there is nothing left to run: JobserverClient::acquire). A worker woken
  // by a producer counts as searching meanwhile, so no other sleeper is woken for that
  // work: any worker holding a token finds it, and when none does the process's own
  // token is free and this wait ends at once (JobserverClient J1).
  if (!ready && core_.jobserver != nullptr) [[unlikely]]
    (void)core_.jobserver->acquire(index, [this] { return drained(); });
  // The keeper's deadline came: it fires what is due itself, off the sleepers' list, and
  // its loop takes the work next (UrgentLane).
  if (timed_out) (void)timers_->fire_due(std::chrono::steady_clock::now());
}

// The real driver's idle step (worker/loop.hpp): a round that found nothing makes the
// worker a searcher; it spins kSpinRounds rounds with growing pauses, then parks.
void Worker::rest(Rounds& r, WaitCounter* joining, bool isolated) {
  if (!searching_) start_searching();
  if (++r.failed < kSpinRounds) {
    backoff(r.failed);
    return;
  }
  r.failed = 0;
  park(joining, r.armed, isolated);
}

bool Worker::drained() const {
  return core_.stopping.load(std::memory_order_acquire) && !core_.any_work_visible();
}

// Sleeps until a notifier ends the arming (WaitCounter I3/I4). The count can rise again
// after it reached zero (run() from another thread meanwhile): then arm again.
void block_wait(WaitCounter& c) {
  Waiter& w = this_thread_waiter();
  for (;;) {
    std::uint32_t epoch = w.epoch();  // before arming, so the notifier's wake is never missed
    if (!c.arm(&w)) return;           // nothing pending
    while (!c.notified()) {
      w.wait(epoch);
      epoch = w.epoch();
    }
    c.disarm();
    if (c.finished()) return;
  }
}

void yield_thread() noexcept { std::this_thread::yield(); }

Waiter& this_thread_waiter() noexcept {
  static thread_local Waiter w;
  return w;
}

void wake_for_spawn(WorkerLocal* w) noexcept {
  // A deterministic run keeps `sleepers` at 1 and `searching` at 0, so every spawn comes here
  // (DetSim::spawned); real runs pay nothing for it on push_local's fast path.
  if (DetSim* d = w->core->det.get()) [[unlikely]] {
    if (!w->in_stop_callback) d->spawned(w->index);  // WorkerLocal::in_stop_callback
    return;
  }
  w->core->lot->wake_one(w->node);
}

}  // namespace vitte::detail

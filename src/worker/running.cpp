// Running a found task off the plain path (hot_path.hpp has the plain one): policy work,
// timed and accounted; a cancelled group's task, discarded; a task of another isolation
// region; and the observers of a watched worker (a trace's spans, event counters published
// on request, a deterministic run's clock), which all go through run_watched().
#include <array>
#include <cstdint>
#include <string>

#include "clock/clock.hpp"
#include "deterministic/sim.hpp"
#include "scheduler_core.hpp"
#include "worker/hot_path.hpp"

namespace vitte::detail {

// Policy work is timed: the time it ran is what the Fair levels share, and its end is what
// its deadline is checked against. The accounting (and a deadline handler) comes before the
// counter's done(), like the closure's own effects: whoever waits for the task (join_all,
// TaskGroup::wait) then sees its deadline counted. Otherwise as execute_rare(): a cancelled
// group's task is discarded (not a deadline miss), and it runs in its isolation region. A
// nested wait inside it runs other tasks (policy work too) on this stack; each keeps its own
// entry here.
void Worker::run_policy(TaskFrame* f, TaskSpan* span) noexcept {
  ReadyQueue* q = std::exchange(policy_from_, nullptr);
  Entry e = std::move(policy_entry_);
  WaitCounter* c = f->counter;
  const bool skip = c->cancelled();
  const std::uint64_t outer = isolation;
  isolation = f->isolation;
  const std::int64_t outer_inner = std::exchange(policy_inner_ns_, 0);
  // Event counters, for a group that asks: read around the task, like its CPU time.
  const bool count = stats.events != nullptr && e.group->wants_counters && !skip;
  std::array<std::uint64_t, kMaxEvents> ev0{}, outer_events{};
  if (count) {
    outer_events = std::exchange(policy_inner_events_, {});
    (void)stats.events->read(ev0.data());
  }
  const std::int64_t start = thread_cpu_ns();
  const RunEnd ended = f->op(f, skip ? FrameOp::Discard : FrameOp::Run);
  observe_ran();  // before the CPU time is read: a deterministic run's virtual cost
  const std::int64_t used = thread_cpu_ns() - start;
  if (count) count_group_events(*e.group, ev0, outer_events);
  const std::int64_t end = e.deadline_ns != 0 ? now_ns() : 0;
  // What nested policy tasks used is theirs; the enclosing task (if any) skips all of it.
  const std::int64_t own = used - policy_inner_ns_;
  policy_inner_ns_ = outer_inner + used;
  isolation = outer;
  pool.put(f);
  (skip ? counters.skipped : counters.executed).bump();
  if (ended != RunEnd::Ok) count_end(ended, nullptr);
  if (q->finish(e, skip ? 0 : (own > 0 ? own : 0), end, /*ran=*/!skip)) core_.deadline_missed(e, end, node);
  if (span != nullptr) trace_.end_task(*span);
  c->done(this);
}

// Charges the events since `ev0`, less those of policy tasks nested in this one, to `g`;
// the enclosing task (if any) skips all of them, as it skips their CPU time.
void Worker::count_group_events(GroupNode& g, const std::array<std::uint64_t, kMaxEvents>& ev0,
                                const std::array<std::uint64_t, kMaxEvents>& outer) noexcept {
  std::array<std::uint64_t, kMaxEvents> ev1{};
  if (!stats.events->read(ev1.data())) ev1 = ev0;
  for (std::size_t i = 0; i < stats.n_events; ++i) {
    const std::uint64_t used = ev1[i] - ev0[i];
    const std::uint64_t inner = policy_inner_events_[i];
    // relaxed: statistics, added to by every worker that runs the group's tasks.
    g.counters[i].fetch_add(used > inner ? used - inner : 0, std::memory_order_relaxed);
    policy_inner_events_[i] = outer[i] + used;
  }
}

void Worker::start_counters() {
  if (core_.events.empty()) return;
  stats.events = std::make_unique<ThreadCounters>();
  std::string why;
  if (!stats.events->start(core_.events, &why)) {
    stats.events_error = "worker " + std::to_string(slot_.index) + ": " + why;
    stats.events.reset();
    return;
  }
  stats.n_events = core_.events.info.events.size();
  publish_counters();
}

void Worker::publish_counters() noexcept {
  std::array<std::uint64_t, kMaxEvents> v{};
  if (stats.events != nullptr && stats.events->read(v.data())) {
    // relaxed stores, then the release below (S3).
    for (std::size_t i = 0; i < stats.n_events; ++i) stats.published[i].store(v[i], std::memory_order_relaxed);
    stats.published_ns.store(now_ns(), std::memory_order_release);
  }
  // S3: a request answered. release: pairs with the snapshot's acquire of the bit. A request
  // made after the read above and cleared here finds totals a few stores old.
  if ((watch_.load(std::memory_order_relaxed) & kWatchCounters) != 0)
    watch_.fetch_and(static_cast<std::uint8_t>(~kWatchCounters), std::memory_order_release);
}

// The cold side of run_task: policy work, and workers that an observer watches. A trace's
// span opens before the task and closes before its counter is told (execute, run_policy);
// event counters are published after it when a snapshot asked (WorkerStats S3).
void Worker::run_watched(TaskFrame* f) noexcept {
  TaskSpan span;
  const bool traced = tracing();
  if (traced) trace_.begin_task(span, f);
  if (policy_from_ != nullptr) {
    run_policy(f, traced ? &span : nullptr);
  } else {
    if (traced)
      execute<true>(f, &span);
    else
      execute<false>(f, nullptr);
    observe_ran();
  }
  // relaxed: a request; publish_counters() orders the answer (S3).
  if ((watch_.load(std::memory_order_relaxed) & kWatchCounters) != 0) publish_counters();
}

// The observers' hook after a task's closure returned, on both cold paths (run_watched,
// run_policy): a deterministic run's clock and the worker's virtual CPU time advance by
// the task's cost (kWatchDet). Traces and event counters hook in around it (run_watched).
void Worker::observe_ran() noexcept {
  if ((watch_.load(std::memory_order_relaxed) & kWatchDet) != 0) [[unlikely]] core_.det->charge(slot_.index);
}

void Worker::watch(std::uint8_t bit, bool on) noexcept {
  // relaxed: see watch_.
  if (on)
    watch_.fetch_or(bit, std::memory_order_relaxed);
  else
    watch_.fetch_and(static_cast<std::uint8_t>(~bit), std::memory_order_relaxed);
}

// A cancelled group's task is destroyed unrun and counted as skipped; a task of another
// isolation region runs inside that region (the one it was spawned in).
void Worker::execute_rare(TaskFrame* f, TaskSpan* span) noexcept {
  WaitCounter* c = f->counter;
  const bool skip = c->cancelled();
  const std::uint64_t outer = isolation;
  isolation = f->isolation;
  const RunEnd ended = f->op(f, skip ? FrameOp::Discard : FrameOp::Run);
  isolation = outer;
  pool.put(f);
  (skip ? counters.skipped : counters.executed).bump();
  if (ended != RunEnd::Ok) count_end(ended, nullptr);
  if (span != nullptr) trace_.end_task(*span);
  c->done(this);
}

}  // namespace vitte::detail

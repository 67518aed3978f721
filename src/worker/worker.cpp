#include "worker/worker.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>

#include "scheduler_core.hpp"
#include "deterministic/sim.hpp"
#include "memory/jemalloc_arenas.hpp"
#include "topology/hwloc_seam.hpp"
#include "trace/trace_clock.hpp"
#include "vitte/detail/future_core.hpp"
#include "worker/parking_lot.hpp"

namespace vitte::detail {

constinit thread_local WorkerLocal* tls_worker = nullptr;

namespace {
// A pinned worker woken on a CPU that another process is using waits, under Linux's EEVDF
// scheduler (6.6+), until that process's time slice ends: 3-4 ms measured on a loaded
// 2-core VM, where unpinned threads are simply placed on the waker's CPU. Since Linux 6.12
// a normal thread may ask for a shorter slice (sched_attr.sched_runtime); a waking task
// with a shorter slice than the running one preempts it. The share of CPU is unchanged;
// a contended worker runs in shorter turns. Best effort: older kernels ignore the field,
// and real-time or idle policies are left alone.
constexpr std::uint64_t kWorkerSliceNs = 100'000;  // the kernel's minimum

struct SchedAttr {  // struct sched_attr, SCHED_ATTR_SIZE_VER0
  std::uint32_t size, policy;
  std::uint64_t flags;
  std::int32_t nice;
  std::uint32_t priority;
  std::uint64_t runtime, deadline, period;
};

}  // namespace

void request_short_slice() noexcept {
#if defined(SYS_sched_getattr) && defined(SYS_sched_setattr)
  SchedAttr a{};
  if (syscall(SYS_sched_getattr, 0, &a, sizeof a, 0) != 0) return;
  if (a.policy != 0 /* SCHED_OTHER */ && a.policy != 3 /* SCHED_BATCH */) return;
  a.size = sizeof a;
  a.flags = 0;
  a.runtime = kWorkerSliceNs;
  (void)syscall(SYS_sched_setattr, 0, &a, 0);
#endif
}

Worker::Worker(SchedulerCore& core, const WorkerSlot& slot)
    : core_(core),
      slot_(slot),
      // Deterministic: the victims' order comes from the seed (DetSim D3).
      rng_(0x9E3779B97F4A7C15ull * (slot.index + 1) ^ (core.det != nullptr ? SplitMix{core.det->seed()}.next() : 0)),
      trace_(slot.index) {
  if (rng_ == 0) rng_ = 1;  // xorshift's one fixed point
  this->core = &core;
  this->core_live = core.live.token();
  this->idle = &core.idle;
  this->detached = &core.detached;
  this->index = slot.index;
  this->node = slot.node;
}

void Worker::wire(const std::vector<std::unique_ptr<Worker>>& all,
                  const std::vector<std::unique_ptr<InjectionQueue>>& inject, const Plan& plan) {
  own_inject_ = inject[slot_.node].get();
  own_urgent_ = core_.urgent_queues[slot_.node].get();
  own_ready_ = core_.ready_queues[slot_.node].get();
  all_ = all.data();
  inject_ = inject.data();
  for (const StealLevel& sl : plan.steal_order[slot_.index]) {
    const VictimList& vl = plan.victim_lists[sl.list];
    levels_.push_back(Level{sl.kind, sl.distance, vl.workers.data(), sl.base, sl.size, sl.first, sl.count, &vl.nodes});
  }
  stats.steal_bins = std::make_unique<OwnerCounter[]>(levels_.size());
}

StealScope Worker::steal_scope(std::size_t i) const noexcept {
  switch (levels_[i].kind) {
    case StealLevel::Kind::SameL3: return StealScope::L3;
    case StealLevel::Kind::SameNode: return StealScope::Node;
    case StealLevel::Kind::Remote: return StealScope::Remote;
  }
  return StealScope::Remote;
}

void Worker::start(std::size_t stack_size) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  int rc = stack_size != 0 ? pthread_attr_setstacksize(&attr, stack_size) : 0;
  if (rc == 0)
    rc = pthread_create(
        &thread_, &attr, [](void* self) -> void* { static_cast<Worker*>(self)->main(); return nullptr; }, this);
  pthread_attr_destroy(&attr);
  running_ = rc == 0;
  if (!running_) {
    start_error_ = "worker " + std::to_string(slot_.index) + ": cannot start its thread" +
                   (stack_size != 0 ? " with a stack of " + std::to_string(stack_size) + " bytes" : "") + ": " +
                   std::strerror(rc);
    core_.started.count_down();  // main() never runs to count itself
  }
}

void Worker::join() {
  if (running_) pthread_join(thread_, nullptr);
  running_ = false;
}

void Worker::detach() noexcept {
  if (running_) pthread_detach(thread_);
  running_ = false;
}

std::uint64_t Worker::next_random() noexcept {  // xorshift64*
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  return rng_ * 0x2545F4914F6CDD1Dull;
}

void Worker::main() {
  tls_worker = this;
  // Named for top -H, perf, gdb and traces: "vitte-w<index>/n<node>" (15 characters at most).
  char name[16];
  std::snprintf(name, sizeof name, "vitte-w%u/n%u", slot_.index, slot_.node);
  pthread_setname_np(pthread_self(), name);
  DetSim* const det = core_.det.get();
  if (det != nullptr) {  // unpinned, no counters, its start hook in its first turn
    det->attach_worker(slot_.index);
    watch(kWatchDet, true);
    core_.started.count_down();
    core_.go.wait();
    if (core_.start_aborted) {
      tls_worker = nullptr;
      return;
    }
    main_det(WorkerInfo{slot_.index, slot_.node, -1});
    tls_worker = nullptr;
    return;
  }
  if (slot_.os_cpu >= 0) {
    std::string why;
    if (!hw::pin_current_thread(static_cast<unsigned>(slot_.os_cpu), &why))
      start_error_ = "worker " + std::to_string(slot_.index) + ": " + why;
    else
      request_short_slice();  // pinned: it cannot be woken on another CPU
  }
  if (start_error_.empty() && core_.malloc.node_local) {
    std::string why;
    if (!je::route_thread_malloc(hw::current_node(), &why))
      start_error_ = "worker " + std::to_string(slot_.index) + ": memory.allocator = \"node-local\": " + why;
  }
  start_counters();
  const WorkerInfo info{slot_.index, slot_.node, slot_.os_cpu};
  core_.run_hook(core_.opts.on_worker_start, info, "on_worker_start");
  // relaxed: read by snapshots as statistics (WorkerStats S1). A worker starts idle.
  const std::int64_t began = now_ns();
  stats.started_ns.store(began, std::memory_order_relaxed);
  stats.idle_since.store(began, std::memory_order_relaxed);
  core_.started.count_down();
  core_.go.wait();  // the constructor checked every worker's start before releasing us

  // A new worker is looking for work: counted as searching (and idle) until it finds some.
  if (!core_.start_aborted) start_searching();
  unsigned idle_rounds = 0;
  for (;;) {
    if (core_.start_aborted) break;
    if (TaskFrame* f = find_work(idle_rounds)) {
      if (searching_) found_work();
      idle_rounds = 0;
      run_task(f);
      continue;
    }
    if (core_.stopping.load(std::memory_order_acquire) && !core_.any_work_visible()) break;
    if (!searching_) start_searching();
    if (++idle_rounds < kSpinRounds) {
      backoff(idle_rounds);
      continue;
    }
    idle_rounds = 0;
    bool unused = false;
    park(nullptr, unused, false);
  }
  leave_search();
  idle_end();
  core_.run_hook(core_.opts.on_worker_stop, info, "on_worker_stop");
  if (stats.events != nullptr) {
    publish_counters();  // the final totals
    stats.events->stop();
  }
  stats.stopped_ns.store(now_ns(), std::memory_order_relaxed);
  stats.state.store(WorkerState::Stopped, std::memory_order_release);
  tls_worker = nullptr;
}

// One search per turn (DetSim): what a real worker decides by timing (when to look again,
// when to sleep, who wakes) is the chooser's. Statistics of idleness are not kept: a virtual
// worker is never idle in real time.
void Worker::main_det(const WorkerInfo& info) {
  DetSim& d = *core_.det;
  d.enter(slot_.index);
  core_.run_hook(core_.opts.on_worker_start, info, "on_worker_start");
  const std::int64_t began = now_ns();
  stats.started_ns.store(began, std::memory_order_relaxed);
  stats.state.store(WorkerState::Running, std::memory_order_relaxed);
  unsigned idle_rounds = 0;
  for (;;) {
    if (TaskFrame* f = find_work(idle_rounds)) {
      idle_rounds = 0;
      run_task(f);
      end_det_turn(d, nullptr);
      continue;
    }
    if (core_.stopping.load(std::memory_order_acquire) && !core_.any_work_visible()) break;
    // A worker that keeps finding nothing gains the patience to look at other nodes, as
    // a spinning real one does, counted in turns instead of time.
    if (idle_rounds < kRemoteInjectPatience) ++idle_rounds;
    d.turn(slot_.index, /*ran=*/false);
  }
  core_.run_hook(core_.opts.on_worker_stop, info, "on_worker_stop");
  stats.stopped_ns.store(now_ns(), std::memory_order_relaxed);
  stats.state.store(WorkerState::Stopped, std::memory_order_release);
  d.leave(slot_.index);
}

TaskFrame* Worker::find_work(unsigned failed_rounds) {
  // Due timers go before the own deque, which a busy worker never empties (UrgentLane).
  // The check is two loads and a branch; the rest is a tail call, so this stays frameless.
  if (own_urgent_->hinted()) [[unlikely]] return find_work_urgent(failed_rounds);
  return find_own(failed_rounds);
}

inline TaskFrame* Worker::find_own(unsigned failed_rounds) {
  if (TaskFrame* f = deque.pop()) {
    if (searching_) more_where_found_ = deque.size_hint() > 0;  // off the hot path
    return f;
  }
  return find_queued(failed_rounds);
}

TaskFrame* Worker::find_work_urgent(unsigned failed_rounds) {
  if (TaskFrame* f = take_urgent()) return f;
  if (own_ready_->has_preferred())
    if (TaskFrame* f = take_ready(own_ready_, /*preferred=*/true, false)) return f;
  return find_own(failed_rounds);
}

TaskFrame* Worker::take_ready(ReadyQueue* q, bool preferred, bool allow_low) {
  Entry e;  // empty: nothing is destroyed under the queue's lock (ReadyQueue R4)
  const bool got = q == own_ready_ ? (preferred ? q->pop_preferred(&e) : q->pop(allow_low, &e)) : q->pop_remote(&e);
  return got ? took_ready(q, e) : nullptr;
}

TaskFrame* Worker::took_ready(ReadyQueue* q, Entry& e) {
  counters.policy_taken.bump();
  if (e.external) stats.submit_latency.record(now_ns() - e.queued_ns);
  more_where_found_ = !q->empty();
  policy_from_ = q;
  policy_entry_ = std::move(e);
  return policy_entry_.frame;
}

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
  const bool threw = f->op(f, skip ? FrameOp::Discard : FrameOp::Run);
  if (core_.det != nullptr) [[unlikely]] core_.det->charge(slot_.index);  // its virtual cost
  const std::int64_t used = thread_cpu_ns() - start;
  if (count) count_group_events(*e.group, ev0, outer_events);
  const std::int64_t end = e.deadline_ns != 0 ? now_ns() : 0;
  // What nested policy tasks used is theirs; the enclosing task (if any) skips all of it.
  const std::int64_t own = used - policy_inner_ns_;
  policy_inner_ns_ = outer_inner + used;
  isolation = outer;
  pool.put(f);
  (skip ? counters.skipped : counters.executed).bump();
  if (threw) counters.failed.bump();
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
    if (core_.det != nullptr) core_.det->charge(slot_.index);  // kWatchDet
  }
  // relaxed: a request; publish_counters() orders the answer (S3).
  if ((watch_.load(std::memory_order_relaxed) & kWatchCounters) != 0) publish_counters();
}

void Worker::watch(std::uint8_t bit, bool on) noexcept {
  // relaxed: see watch_.
  if (on)
    watch_.fetch_or(bit, std::memory_order_relaxed);
  else
    watch_.fetch_and(static_cast<std::uint8_t>(~bit), std::memory_order_relaxed);
}

// Off the fork-join path: the worker's own deque is empty.
TaskFrame* Worker::find_queued(unsigned failed_rounds) {
  if (!own_urgent_->empty()) [[unlikely]] {  // the hint may lag (UrgentLane U1)
    if (TaskFrame* f = take_urgent()) return f;
  }
  // The node's queued work: the injection queue and the ReadyQueue take turns, so that a
  // stream of one never starves the other.
  ready_first_ = !ready_first_;
  if (ready_first_ && !own_ready_->empty())
    if (TaskFrame* f = take_ready(own_ready_, false, /*allow_low=*/false)) return f;
  std::int64_t queued_ns = 0;
  if (TaskFrame* f = own_inject_->try_pop(&queued_ns)) {
    counters.injected_taken.bump();
    if (queued_ns != 0) stats.submit_latency.record(now_ns() - queued_ns);
    crossing_ = false;
    more_where_found_ = !own_inject_->empty();
    return f;
  }
  if (!ready_first_ && !own_ready_->empty())
    if (TaskFrame* f = take_ready(own_ready_, false, /*allow_low=*/false)) return f;
  return steal(failed_rounds);
}

TaskFrame* Worker::take_urgent() {
  TaskFrame* f = own_urgent_->try_pop();
  if (f != nullptr) {
    counters.injected_taken.bump();
    more_where_found_ = !own_urgent_->empty() || !own_inject_->empty();
  }
  return f;
}

TaskFrame* Worker::steal(unsigned failed_rounds, bool policy) {
  const bool remote = crossing_ || failed_rounds >= kRemotePatience;
  const bool remote_inject = crossing_ || failed_rounds >= kRemoteInjectPatience;
  bool low_checked = false;
  for (Level& l : levels_) {
    if (l.kind == StealLevel::Kind::Remote && !low_checked) {
      // Nothing to steal on the node: now its Low work (policy.hpp), before other nodes.
      low_checked = true;
      if (policy && !own_ready_->empty())
        if (TaskFrame* f = take_ready(own_ready_, false, /*allow_low=*/true)) return f;
    }
    if (l.kind == StealLevel::Kind::Remote && !remote) break;  // levels are nearest first
    const unsigned n = l.count;
    const unsigned start = n > 1 ? static_cast<unsigned>(next_random() % n) : 0;
    for (unsigned i = 0, k = start; i < n; ++i, k = k + 1 == n ? 0 : k + 1) {
      const unsigned r = l.first + k;  // < 2 * size: first < size, k < count <= size
      Worker* v = all_[l.list[l.base + (r >= l.size ? r - l.size : r)]].get();
      if (TaskFrame* f = v->deque.steal()) {
        stats.steal_bins[static_cast<std::size_t>(&l - levels_.data())].bump();
        if (tracing()) [[unlikely]] trace_.stolen(v->index, f);
        switch (l.kind) {
          case StealLevel::Kind::SameL3: counters.steals_l3.bump(); break;
          case StealLevel::Kind::SameNode: counters.steals_node.bump(); break;
          case StealLevel::Kind::Remote: counters.steals_remote.bump(); break;
        }
        crossing_ = l.kind == StealLevel::Kind::Remote;
        more_where_found_ = v->deque.size_hint() > 0;
        return f;
      }
    }
    if (l.kind == StealLevel::Kind::Remote && remote_inject) {
      std::int64_t queued_ns = 0;
      for (unsigned node : *l.nodes)
        if (InjectionQueue* q = inject_[node].get(); TaskFrame* f = q->try_pop(&queued_ns)) {
          counters.steals_remote.bump();
          stats.steal_bins[static_cast<std::size_t>(&l - levels_.data())].bump();
          if (queued_ns != 0) stats.submit_latency.record(now_ns() - queued_ns);
          crossing_ = true;
          more_where_found_ = !q->empty();
          return f;
        }
      for (unsigned node : *l.nodes)
        if (ReadyQueue* q = core_.ready_queues[node].get(); policy && q != nullptr && !q->empty())
          if (TaskFrame* f = take_ready(q, false, false)) {
            counters.steals_remote.bump();
            stats.steal_bins[static_cast<std::size_t>(&l - levels_.data())].bump();
            crossing_ = true;
            return f;
          }
    }
  }
  if (policy && !low_checked && !own_ready_->empty())
    if (TaskFrame* f = take_ready(own_ready_, false, /*allow_low=*/true)) return f;
  counters.failed_rounds.bump();
  if (remote) crossing_ = false;  // nothing anywhere: the episode of helping others is over
  return nullptr;
}

// The common case (a group that is not cancelled, a task of the region this worker is in
// already, almost always none) is the straight line; the rest is execute_rare().
template <bool kTraced>
void Worker::execute(TaskFrame* f, TaskSpan* span) noexcept {
  WaitCounter* c = f->counter;
  if (c->cancelled() || f->isolation != isolation) [[unlikely]] {
    execute_rare(f, span);
    return;
  }
  const bool threw = f->op(f, FrameOp::Run);
  pool.put(f);
  counters.executed.bump();
  if (threw) [[unlikely]] counters.failed.bump();
  if constexpr (kTraced) trace_.end_task(*span);
  c->done(this);  // last: the joiner may release everything the task referenced
}

// A cancelled group's task is destroyed unrun and counted as skipped; a task of another
// isolation region runs inside that region (the one it was spawned in).
void Worker::execute_rare(TaskFrame* f, TaskSpan* span) noexcept {
  WaitCounter* c = f->counter;
  const bool skip = c->cancelled();
  const std::uint64_t outer = isolation;
  isolation = f->isolation;
  const bool threw = f->op(f, skip ? FrameOp::Discard : FrameOp::Run);
  isolation = outer;
  pool.put(f);
  (skip ? counters.skipped : counters.executed).bump();
  if (threw) counters.failed.bump();
  if (span != nullptr) trace_.end_task(*span);
  c->done(this);
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
  if (!ready) {
    counters.parks.bump();
    stats.state.store(WorkerState::Parked, std::memory_order_relaxed);
    // relaxed: a hint; the last worker to fall asleep hands freed memory back.
    if (joining == nullptr && core_.idle.sleepers.load(std::memory_order_relaxed) ==
                                  static_cast<std::int32_t>(core_.workers.size()))
      core_.on_idle();
    const bool traced = tracing();
    const std::int64_t slept_at = traced ? trace_ticks() : 0;
    waiter.wait(epoch);
    stats.state.store(WorkerState::Searching, std::memory_order_relaxed);
    if (traced) [[unlikely]] trace_.parked(slept_at, trace_ticks());
  }
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
}

// Inside an isolation region (vitte::isolate) a waiting worker runs only tasks of that
// region and tasks of the group or future it waits for, or of a future that one depends on
// (a then() link's source, a when_all's input: feeds_into); those it runs inside the region.
// Every foreign task it comes across is handed to its node's injection queue, where
// another worker (or this one, after the wait) takes it:
//   - its own deque, drained from the bottom: the region's work usually lies on top, but a
//     task the wait needs can sit below foreign work (a group made before the region, a
//     detached spawn from a nested region), and a deque is only reachable from its ends;
//   - its node's urgent lane and injection queue, each scanned once through (foreign frames
//     go back to its tail), so a task the wait needs is found behind any number of foreign
//     ones;
//   - one steal round, as usual.
// Its sleep then ignores visible work: all of it near this worker is foreign, and a new
// injection or the group's notifier wakes it (Worker::park).
bool Worker::belongs(TaskFrame* f, const WaitCounter& c) noexcept {
  if (f->isolation == isolation) return true;
  if (f->counter != &c && !feeds_into(f->joins, c, isolation)) return false;
  f->isolation = isolation;  // we own the frame now; it runs inside our region
  return true;
}

std::size_t Worker::queued_on_node() const { return own_inject_->size_hint() + own_urgent_->size_hint(); }

TaskFrame* Worker::find_work_isolated(WaitCounter& c, unsigned failed_rounds) {
  // What the node's queues hold once this scan is over, had nobody else pushed or popped
  // meanwhile: the sleep that may follow compares against it (isolated_seen_, park).
  std::int64_t expect = static_cast<std::int64_t>(queued_on_node());
  auto back_to_node = [&](TaskFrame* f) {
    core_.inject(f, static_cast<int>(node));
    ++expect;
  };
  while (TaskFrame* f = deque.pop()) {
    if (belongs(f, c)) return f;
    back_to_node(f);
  }
  // The urgent lane holds resumptions of sleeps in the region (resume.hpp): scanned once
  // through like the injection queue, foreign frames back to its tail, urgent still.
  for (std::size_t n = own_urgent_->size_hint() + 1; n > 0; --n) {
    TaskFrame* f = own_urgent_->try_pop();
    if (f == nullptr) break;
    if (belongs(f, c)) {
      counters.injected_taken.bump();
      return f;
    }
    core_.inject_urgent(f, static_cast<int>(node));  // popped and pushed back: expect unchanged
  }
  for (std::size_t n = own_inject_->size_hint() + 1; n > 0; --n) {
    TaskFrame* f = own_inject_->try_pop();
    if (f == nullptr) break;
    if (belongs(f, c)) return f;
    core_.inject(f, static_cast<int>(node));  // back to the tail; expect unchanged
  }
  // Its own policy work, on any node (a group's options may name another node): found by
  // matching, so foreign entries keep their place for the other workers.
  for (unsigned n : core_.arena_nodes) {
    ReadyQueue* q = core_.ready_queues[n].get();
    Entry e;
    if (!q->empty() && q->take_if([&](TaskFrame* t) { return belongs(t, c); }, &e)) return took_ready(q, e);
  }
  TaskFrame* f = steal(failed_rounds, /*policy=*/false);
  if (f != nullptr && belongs(f, c)) return f;
  if (f != nullptr) back_to_node(f);
  isolated_seen_ = expect > 0 ? static_cast<std::size_t>(expect) : 0;
  return nullptr;
}

void Worker::help_wait(WaitCounter& c) {
  const bool isolated = isolation != 0;
  bool armed = false;
  unsigned idle_rounds = 0;
  while (!c.finished()) {
    if (armed && c.notified()) {  // the count reached zero and rose again: re-arm later
      c.disarm();
      armed = false;
    }
    if (TaskFrame* f = isolated ? find_work_isolated(c, idle_rounds) : find_work(idle_rounds)) {
      if (searching_) found_work();
      idle_rounds = 0;
      run_task(f);
      continue;
    }
    if (!searching_) start_searching();
    if (++idle_rounds < kSpinRounds) {
      backoff(idle_rounds);
      continue;
    }
    idle_rounds = 0;
    park(&c, armed, isolated);
  }
  leave_search();
  idle_end();
  if (armed) c.disarm();
}

void Worker::end_det_turn(DetSim& d, const WaitCounter* waiting) {
  if (const int to = std::exchange(handed_back_to_, -1); to >= 0)
    d.turn_handed_back(slot_.index, static_cast<unsigned>(to), waiting);
  else
    d.turn(slot_.index, /*ran=*/true);
}

void Worker::help_wait_det(WaitCounter& c) {
  DetSim& d = *core_.det;
  const bool isolated = isolation != 0;
  unsigned idle_rounds = 0;
  while (!c.finished()) {
    if (TaskFrame* f = isolated ? find_work_isolated(c, idle_rounds) : find_work(idle_rounds)) {
      idle_rounds = 0;
      run_task(f);
      end_det_turn(d, &c);
      continue;
    }
    if (idle_rounds < kRemoteInjectPatience) ++idle_rounds;
    d.turn_waiting(slot_.index, c);
  }
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

std::uint64_t new_isolation_tag() noexcept {
  static std::atomic<std::uint64_t> last{0};
  // relaxed: only uniqueness matters, which the RMW gives.
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

Waiter& this_thread_waiter() noexcept {
  static thread_local Waiter w;
  return w;
}

namespace {
// wait_for(c, core) where a deterministic run is involved: off the path real waits take.
[[gnu::cold, gnu::noinline]] void wait_for_det(WaitCounter& c, SchedulerCore* core) {
  DetSim* const d = det_of_this_thread();
  if (core != nullptr && core->abandoned) throw Deadlock(core->abandoned_why);
  if (core != nullptr && core->det != nullptr) {
    if (d != core->det.get())
      throw UsageError("a deterministic scheduler (seed " + std::to_string(core->det->seed()) +
                       ") is waited on from a thread outside its run: only the thread that made it (its driver) and "
                       "its own tasks may wait on its work, since only they take its turns");
    d->wait(c);
  } else if (core != nullptr) {
    block_wait(c);  // a real scheduler's work, from a thread of a run: its own workers finish it
  } else {
    d->wait(c);  // whose work is not known: this thread's run
  }
}
}  // namespace

void wait_for(WaitCounter& c, SchedulerCore* core) {
  if (c.finished()) return;
  // Real runs: one thread-local load and one load of core->det before helping or blocking.
  if (det_of_this_thread() == nullptr && (core == nullptr || core->det == nullptr)) [[likely]] {
    if (WorkerLocal* w = tls_worker)
      static_cast<Worker*>(w)->help_wait(c);
    else
      block_wait(c);
    return;
  }
  wait_for_det(c, core);
}

void wait_for_noexcept(WaitCounter& c, SchedulerCore* core) noexcept {
  try {
    wait_for(c, core);
  } catch (const Deadlock& d) {
    if (core != nullptr) core->abandon(d.what());  // returns unfinished: nothing runs again
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vitte: %s (in a wait that cannot throw). Aborting.\n", e.what());
    std::abort();
  }
}

void abandon_run(SchedulerCore* core) noexcept {
  if (core != nullptr && core->det != nullptr)
    core->abandon(core->abandoned ? core->abandoned_why : core->det->deadlock_message());
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

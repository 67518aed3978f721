// A worker's thread: its construction and wiring to the plan's steal levels, its start
// (pinning, node-local malloc, event counters, the start hook) and its end. What it runs
// is the loop (worker/loop.hpp); a deterministic run's thread body is its driver's
// (deterministic/det_worker.cpp).
#include "worker/worker.hpp"

#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>

#include "clock/clock.hpp"
#include "deterministic/det_worker.hpp"
#include "deterministic/sim.hpp"
#include "jobserver/client.hpp"
#include "memory/jemalloc_arenas.hpp"
#include "scheduler_core.hpp"
#include "timer/timer_queue.hpp"
#include "timer/timer_service.hpp"
#include "topology/hwloc_seam.hpp"
#include "worker/loop.hpp"

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
  timers_ = core_.timers->queue(slot_.node);
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
  if (core_.det != nullptr) {  // unpinned, no counters: the run's driver (det_worker.cpp)
    run_deterministic(*this);
    tls_worker = nullptr;
    return;
  }
  // A worker that keeps its node's timers (TimerQueue Q5) sleeps until their deadline: as
  // the timer thread, it asks for no timer slack (Linux adds 50 µs by default).
  (void)prctl(PR_SET_TIMERSLACK, TimerQueue::kTimerSlackNs, 0, 0, 0);
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

  if (!core_.start_aborted) {
    // A new worker is looking for work: counted as searching (and idle) until it finds some.
    if (core_.jobserver != nullptr)  // before its first task; none needed to see there is none
      (void)core_.jobserver->acquire(index, [this] { return drained(); });
    start_searching();
    loop(UntilStopped{}, Parks{});
    if (core_.jobserver != nullptr) core_.jobserver->release(index);
  }
  core_.run_hook(core_.opts.on_worker_stop, info, "on_worker_stop");
  if (stats.events != nullptr) {
    publish_counters();  // the final totals
    stats.events->stop();
  }
  stats.stopped_ns.store(now_ns(), std::memory_order_relaxed);
  stats.state.store(WorkerState::Stopped, std::memory_order_release);
  tls_worker = nullptr;
}

}  // namespace vitte::detail

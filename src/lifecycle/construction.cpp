// Making a scheduler: the process-wide statistics and fork generation, SchedulerCore's
// constructor (topology, plan, queues, workers, their start), the public constructors and
// accessors.
#include "vitte/scheduler.hpp"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>

#include "clock/clock.hpp"
#include "config/merge.hpp"
#include "deterministic/sim.hpp"
#include "jobserver/client.hpp"
#include "memory/free_memory.hpp"
#include "metrics/queue_sampler.hpp"
#include "policy/group_tree.hpp"
#include "policy/ready_queue.hpp"
#include "queue/injection_queue.hpp"
#include "queue/urgent_lane.hpp"
#include "scheduler_checks.hpp"
#include "scheduler_core.hpp"
#include "timer/timer_service.hpp"
#include "trace/trace_data.hpp"
#include "worker/parking_lot.hpp"
#include "worker/worker.hpp"

namespace vitte {
namespace detail {

std::atomic<std::int64_t> external_frames{0};
std::atomic<bool> trim_wanted{false};
std::atomic<std::uint64_t> fork_generation{0};

namespace {
void after_fork_in_child() noexcept {
  // relaxed: the child has one thread now.
  fork_generation.fetch_add(1, std::memory_order_relaxed);
  // A task that called fork() leaves the child's only thread looking like a worker; it is
  // not one there, so every call takes the checked external path.
  tls_worker = nullptr;
}
}  // namespace

std::int64_t SchedulerCore::clock_ns() const noexcept { return det != nullptr ? det->now_ns() : steady_ns(); }

SchedulerCore::SchedulerCore(Scheduler* owner_, CheckedOptions checked)
    : owner(owner_),
      opts(std::move(checked.opts)),
      topo(std::move(checked.topo)),
      plan(std::move(checked.plan)),
      malloc(malloc_routing(plan)),
      started(static_cast<std::ptrdiff_t>(plan.workers.size())),
      born_in_generation(fork_generation.load(std::memory_order_relaxed)) {
  static std::once_flag atfork_once;
  std::call_once(atfork_once, [] { pthread_atfork(nullptr, nullptr, &after_fork_in_child); });
  if (opts.deterministic) {
    det = std::make_unique<DetSim>(*this, *opts.deterministic, static_cast<unsigned>(plan.workers.size()));
    det->attach_driver();  // undone by ~DetSim if this constructor throws
    // Nobody parks in a deterministic run; one "sleeper" and no searcher send every spawn
    // through push_local's slow path, where it is a turn (DetSim::spawned).
    idle.sleepers.store(1, std::memory_order_relaxed);
  }
  if (checked.counting) {
    events = EventPlan::probe(opts.metrics.events.value_or(std::vector<std::string>{}));
    events.info.requested = true;
  }
  const std::size_t nn = topo.nodes().size();
  arena_policy = checked.arena_policy;
  groups = std::move(checked.groups);
  inject_queues.resize(nn);
  urgent_queues.resize(nn);
  ready_queues.resize(nn);
  for (unsigned n = 0; n < nn; ++n)
    if (!plan.arenas[n].empty()) {
      inject_queues[n] = std::make_unique<InjectionQueue>(opts.max_backlog);
      urgent_queues[n] = std::make_unique<UrgentLane>();
      ready_queues[n] = std::make_unique<ReadyQueue>(*groups, n, *urgent_queues[n], *inject_queues[n],
                                                     opts.aging.value_or(kDefaultAging));
      arena_nodes.push_back(n);
    }
  // Every node, CPU-less ones included, maps to itself or to its nearest arena, and has
  // a wake order: arena nodes nearest first.
  std::vector<std::vector<unsigned>> near(nn);
  arena_of.resize(nn);
  for (unsigned n = 0; n < nn; ++n) {
    std::vector<unsigned> order{n};
    for (unsigned o : topo.nodes_by_distance(n)) order.push_back(o);
    for (unsigned o : order)
      if (!plan.arenas[o].empty()) near[n].push_back(o);
    arena_of[n] = near[n].front();
  }
  lot = std::make_unique<ParkingLot>(idle, std::move(near));
  // Before any worker starts: each takes a token before its first task (worker.cpp).
  const JobserverMode jm = opts.jobserver.value_or(JobserverMode::Auto);
  const std::string js_setting = opts.config && !opts.config->jobserver.empty()
                                     ? config_at(*opts.config, "workers.jobserver") + ": workers.jobserver"
                                     : "Options::jobserver";
  if (det != nullptr) {
    if (jm == JobserverMode::On)
      throw UsageError(js_setting + " = on in a deterministic run: its workers take turns and never park, so "
                       "they cannot give tokens back");
    jobserver_info.note = "a deterministic run takes no part in a jobserver";
  } else {
    jobserver = JobserverClient::open(jm, js_setting, plan.workers.size(), &jobserver_info);
  }
  timers = std::make_unique<TimerService>(*this);
  tbb_arenas = make_tbb_arenas(*this);  // no oneTBB call until an arena is asked for
  for (const WorkerSlot& s : plan.workers) workers.push_back(std::make_unique<Worker>(*this, s));
  for (auto& w : workers) w->wire(workers, inject_queues, plan);

  for (auto& w : workers) w->start(opts.stack_size);
  started.wait();
  std::string errors;
  for (auto& w : workers)
    if (!w->start_error().empty()) errors += (errors.empty() ? "" : "; ") + w->start_error();
  if (!errors.empty()) {
    start_aborted = true;
    go.count_down();
    if (det) det->release_all();
    for (auto& w : workers) w->join();
    shut_down = true;
    throw PlanError("cannot start the workers as planned (" + plan.binding_reason + "): " + errors);
  }
  for (auto& w : workers)
    if (!w->stats.events_error.empty())
      events.info.note += (events.info.note.empty() ? "" : "; ") + w->stats.events_error + " (its counters are absent)";
  if (opts.metrics.sample_interval && opts.metrics.sample_interval->count() > 0)
    sampler = std::make_unique<QueueSampler>(*this, *opts.metrics.sample_interval);
  go.count_down();
}

}  // namespace detail

namespace {
Options with_workers(std::size_t n) {
  if (n == 0)
    throw PlanError("Scheduler(0): a scheduler needs at least 1 worker (use Scheduler() for one per core)");
  Options o;
  o.workers = n;
  return o;
}
}  // namespace

Scheduler::Scheduler() : Scheduler(Options{}) {}
Scheduler::Scheduler(std::size_t workers) : Scheduler(with_workers(workers)) {}
Scheduler::Scheduler(Options opts)
    : core_(std::make_unique<detail::SchedulerCore>(this, detail::check_options(std::move(opts)))) {}

const Topology& Scheduler::topology() const noexcept { return core_->topo; }
const Plan& Scheduler::plan() const noexcept { return core_->plan; }
const MallocRouting& Scheduler::malloc_routing() const noexcept { return core_->malloc; }
std::size_t Scheduler::num_workers() const noexcept { return core_->workers.size(); }

Scheduler* Scheduler::current() noexcept {
  return detail::tls_worker != nullptr ? detail::tls_worker->core->owner : nullptr;
}
int Scheduler::current_worker() noexcept {
  return detail::tls_worker != nullptr ? static_cast<int>(detail::tls_worker->index) : -1;
}

}  // namespace vitte

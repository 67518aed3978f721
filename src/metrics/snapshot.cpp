// Scheduler::metrics(): a snapshot of every worker's counters and statistics, summed per
// node and in total, with fresh event counts asked for; the clock and the deterministic
// run's schedule.
#include "vitte/scheduler.hpp"

#include <chrono>
#include <thread>

#include "deterministic/sim.hpp"
#include "jobserver/client.hpp"
#include "metrics/queue_sampler.hpp"
#include "policy/group_tree.hpp"
#include "policy/ready_queue.hpp"
#include "scheduler_core.hpp"
#include "timer/timer_service.hpp"
#include "worker/worker.hpp"

namespace vitte {

namespace {
// Adds `n` steals to the bin (scope, distance), keeping bins ordered nearest first.
void add_bin(std::vector<StealBin>& bins, StealScope scope, unsigned distance, std::uint64_t n) {
  auto it = bins.begin();
  for (; it != bins.end(); ++it) {
    if (it->scope == scope && it->distance == distance) {
      it->steals += n;
      return;
    }
    if (std::make_pair(it->scope, it->distance) > std::make_pair(scope, distance)) break;
  }
  bins.insert(it, StealBin{scope, distance, n});
}

// Asks every worker for fresh event-counter totals (WorkerStats S3) and waits, at most
// kFreshWait, for those running a task to answer at their next task boundary. An idle
// worker's totals are fresh already: it published them when it ran out of work.
constexpr std::chrono::milliseconds kFreshWait{20};
void fresh_counters(detail::SchedulerCore& core) {
  for (const auto& w : core.workers)
    if (w->stats.events != nullptr && w.get() != detail::tls_worker) w->request_counters();
  const auto until = std::chrono::steady_clock::now() + kFreshWait;
  for (const auto& w : core.workers) {
    const detail::WorkerStats& st = w->stats;
    if (st.events == nullptr) continue;
    if (w.get() == detail::tls_worker) {  // a task asking on this worker: read here
      w->publish_counters();
      continue;
    }
    while (w->counters_requested() &&
           st.state.load(std::memory_order_acquire) == WorkerState::Running && std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
  }
}
}  // namespace

std::chrono::steady_clock::time_point Scheduler::now() const noexcept {
  if (core_->det != nullptr) [[unlikely]]
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(core_->det->now_ns()));
  return std::chrono::steady_clock::now();
}

ScheduleInfo Scheduler::schedule() const { return core_->det != nullptr ? core_->det->info() : ScheduleInfo{}; }

MetricsSnapshot Scheduler::metrics() const {
  core_->check_not_inherited("metrics()");  // the timer and sampler threads' locks may be held
  MetricsSnapshot s;
  s.nodes.resize(0);
  std::vector<int> node_slot(core_->topo.nodes().size(), -1);
  for (unsigned n : core_->arena_nodes) {
    node_slot[n] = static_cast<int>(s.nodes.size());
    NodeMetrics nm;
    nm.node = n;
    nm.workers = static_cast<unsigned>(core_->plan.arenas[n].size());
    nm.timers = core_->timers->counts(n);
    if (core_->sampler) nm.queue_depth = core_->sampler->read(n);
    nm.queue_depth.now = detail::queue_depth_now(*core_, n);
    nm.counters.assign(core_->events.info.events.size(), 0);
    s.timers += nm.timers;
    s.nodes.push_back(std::move(nm));
  }
  s.counter_info = core_->events.info;
  s.jobserver = core_->jobserver != nullptr ? core_->jobserver->info() : core_->jobserver_info;
  s.counters.assign(s.counter_info.events.size(), 0);
  const std::int64_t now = core_->clock_ns();
  s.taken_ns = now;
  if (!s.counter_info.events.empty()) fresh_counters(*core_);
  s.frames_live = detail::external_frames.load(std::memory_order_relaxed);
  s.memory = node_memory_stats();
  for (const auto& w : core_->workers) {
    const detail::WorkerCounters& c = w->counters;
    WorkerMetrics m;
    m.worker = w->index;
    m.node = w->node;
#define VITTE_READ(member, json, prom, help) m.counts.member = c.member.read();
    VITTE_COUNTS(VITTE_READ)
#undef VITTE_READ
    const detail::WorkerStats& st = w->stats;
    for (std::size_t i = 0; i < w->steal_levels(); ++i) add_bin(m.steal_bins, w->steal_scope(i), w->steal_distance(i), st.steal_bins[i].read());
    // relaxed: statistics (WorkerStats S1); the state is read with acquire for S3 in fresh_counters().
    m.state = st.state.load(std::memory_order_relaxed);
    const std::int64_t since = st.idle_since.load(std::memory_order_relaxed);
    m.idle_ns = st.idle_ns.read() + (since != 0 && since < now ? static_cast<std::uint64_t>(now - since) : 0);
    const std::int64_t began = st.started_ns.load(std::memory_order_relaxed);
    const std::int64_t ended = st.stopped_ns.load(std::memory_order_relaxed);
    m.alive_ns = began == 0 ? 0 : static_cast<std::uint64_t>((ended != 0 ? ended : now) - began);
    if (st.events != nullptr && st.n_events == s.counters.size()) {
      // acquire: S3, the totals stored before it.
      m.counters_read_ns = st.published_ns.load(std::memory_order_acquire);
      for (std::size_t i = 0; i < st.n_events; ++i) m.counters.push_back(st.published[i].load(std::memory_order_relaxed));
    }
    NodeMetrics& nm = s.nodes[static_cast<std::size_t>(node_slot[w->node])];
    st.submit_latency.add_to(nm.submit_latency);
    nm.idle_ns += m.idle_ns;
    for (const StealBin& b : m.steal_bins) add_bin(nm.steal_bins, b.scope, b.distance, b.steals);
    for (const StealBin& b : m.steal_bins) add_bin(s.steal_bins, b.scope, b.distance, b.steals);
    for (std::size_t i = 0; i < m.counters.size(); ++i) {
      nm.counters[i] += m.counters[i];
      s.counters[i] += m.counters[i];
    }
    s.frames_live += static_cast<std::int64_t>(w->pool.from_system()) - static_cast<std::int64_t>(w->pool.to_system());
    s.nodes[static_cast<std::size_t>(node_slot[w->node])].counts += m.counts;
    s.total += m.counts;
    s.workers.push_back(m);
  }
  for (const NodeMetrics& nm : s.nodes) s.submit_latency += nm.submit_latency;
  s.total.boxed += core_->external_boxed.load(std::memory_order_relaxed);  // no worker's
  s.groups = core_->groups->metrics(s.counter_info.events.size());
  for (const auto& q : core_->ready_queues)
    if (q) {
      s.deadlines_met += q->deadlines_met();
      s.deadlines_missed += q->deadlines_missed();
    }
  return s;
}

}  // namespace vitte

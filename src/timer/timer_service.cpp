#include "timer/timer_service.hpp"

#include <algorithm>
#include <cstdio>

#include "deterministic/sim.hpp"
#include "scheduler_core.hpp"

namespace vitte::detail {

namespace {
// Where node n's timer thread runs: on the Linux CPUs of the node's workers when every one
// of them is pinned (it wakes the worker bound to its own CPU, which then runs as soon as
// the timer thread blocks: no IPI), else anywhere (unbound, like the workers).
std::vector<int> timer_thread_cpus(const Plan& plan, unsigned n) {
  std::vector<int> cpus;
  for (unsigned w : plan.arenas[n]) {
    const int cpu = plan.workers[w].os_cpu;
    if (cpu < 0) return {};
    if (std::find(cpus.begin(), cpus.end(), cpu) == cpus.end()) cpus.push_back(cpu);
  }
  return cpus;
}
}  // namespace

TimerService::TimerService(SchedulerCore& core) : core_(core) {
  queues_.resize(core.topo.nodes().size());
  for (unsigned n : core.arena_nodes)
    queues_[n] = std::make_unique<TimerQueue>(n, timer_thread_cpus(core.plan, n), /*manual=*/core.det != nullptr);
}

unsigned TimerService::node_for(int node) noexcept {
  if (node >= 0) return core_.arena_for(node);
  const WorkerLocal* w = tls_worker;
  return w != nullptr && w->core == &core_ ? w->node : core_.home_node();
}

bool TimerService::arm(TimerEntry* e, int node) {
  if (core_.det != nullptr && !core_.det->is_participant()) [[unlikely]] core_.det->foreign("a timer");
  VITTE_ASSERT(node < static_cast<int>(queues_.size()), "arm_timer() for a node the topology does not have");
  const unsigned n = node_for(node);
  // Written only when it changes: a cancel_timer() racing with the re-arm of an entry on
  // the same node (a periodic timer) then reads a value nobody writes.
  if (e->node != n) e->node = n;
  return queues_[n]->arm(e);
}

bool TimerService::cancel(TimerEntry* e) noexcept {
  const unsigned n = e->node;
  if (n >= queues_.size() || !queues_[n]) return false;  // never armed
  return queues_[n]->cancel(e);
}

void TimerService::shutdown() noexcept {
  for (auto& q : queues_) {
    if (!q) continue;
    for (TimerEntry* e : q->close()) e->fire(e, TimerEvent::Dropped);  // T2, T4
  }
  const std::uint64_t n = dropped_one_shots_.load(std::memory_order_relaxed);
  if (n > 0)
    std::fprintf(stderr,
                 "vitte: shutdown dropped %llu pending timer(s) before they fell due; their callbacks did not "
                 "run (cancel them, or join_all() to wait for them, before shutting down)\n",
                 static_cast<unsigned long long>(n));
}

bool TimerService::fire_due(std::int64_t now_ns) noexcept {
  const std::chrono::steady_clock::time_point now{std::chrono::nanoseconds(now_ns)};
  bool fired = false;
  for (auto& q : queues_)
    if (q && q->fire_due(now) > 0) fired = true;
  return fired;
}

bool TimerService::next_due(std::int64_t* ns) const {
  bool any = false;
  std::chrono::steady_clock::time_point best{};
  for (const auto& q : queues_) {
    std::chrono::steady_clock::time_point at;
    if (q && q->next_due(&at) && (!any || at < best)) {
      best = at;
      any = true;
    }
  }
  if (any) *ns = std::chrono::duration_cast<std::chrono::nanoseconds>(best.time_since_epoch()).count();
  return any;
}

void TimerService::note_dropped_one_shot() noexcept {
  dropped_one_shots_.fetch_add(1, std::memory_order_relaxed);
}

TimerCounts TimerService::counts(unsigned node) const {
  return node < queues_.size() && queues_[node] ? queues_[node]->counts() : TimerCounts{};
}

const TimerQueue* TimerService::queue(unsigned node) const noexcept {
  return node < queues_.size() ? queues_[node].get() : nullptr;
}
TimerQueue* TimerService::queue(unsigned node) noexcept {
  return node < queues_.size() ? queues_[node].get() : nullptr;
}

bool arm_timer(SchedulerCore* core, TimerEntry* e, int node) { return core->timers->arm(e, node); }

bool cancel_timer(SchedulerCore* core, TimerEntry* e) noexcept { return core->timers->cancel(e); }

}  // namespace vitte::detail

// Intake and wake-up: which arena node takes work (home_node, arena_for), the backlog slot
// of bounded mode, the wake-up that pairs with a sleeper's re-check, what a sleeper sees
// (any_work_visible), and the public submit() that hands tasks to the route.
#include "vitte/scheduler.hpp"

#include <sched.h>

#include <cstdio>

#include "memory/free_memory.hpp"
#include "policy/ready_queue.hpp"
#include "queue/injection_queue.hpp"
#include "queue/urgent_lane.hpp"
#include "scheduler_core.hpp"
#include "vitte/detail/route.hpp"
#include "worker/parking_lot.hpp"
#include "worker/worker.hpp"

namespace vitte {
namespace detail {

unsigned SchedulerCore::home_node() noexcept {
  if (det == nullptr && topo.is_this_machine() && arena_nodes.size() > 1) {
    const int cpu = sched_getcpu();
    const int n = cpu >= 0 ? topo.node_of_os_cpu(static_cast<unsigned>(cpu)) : -1;
    if (n >= 0) return arena_of[static_cast<unsigned>(n)];
  }
  // relaxed: only spreads external work; no ordering needed.
  const unsigned k = round_robin.fetch_add(1, std::memory_order_relaxed);
  return arena_nodes[k % arena_nodes.size()];
}

unsigned SchedulerCore::arena_for(int node) noexcept {
  return node < 0 ? home_node() : arena_of[static_cast<unsigned>(node)];
}

void SchedulerCore::admit_external(unsigned n) {
  InjectionQueue& q = *inject_queues[n];
  if (!q.admit(opts.on_backlog_full == Options::BacklogFullAction::Block))
    throw BacklogFull("node " + std::to_string(n) + "'s backlog is full (" + std::to_string(q.bound()) +
                      " tasks queued, Options::max_backlog); the task was not queued");
}

void SchedulerCore::wake_for_injection(unsigned n) {
  // seq_cst fence: pairs with the fence in Worker::park. Either the sleeper's re-check
  // sees this push, or we see its enlistment below and wake it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // A thread that is not a worker asks for the sleeper bound to its own CPU: it usually
  // blocks in a join next, and that CPU is then free at once, while another worker's CPU
  // may be running another process for the rest of its time slice (ParkingLot). A worker
  // producer keeps running, so it takes the default choice.
  if (idle.sleepers.load(std::memory_order_relaxed) > 0 &&
      (lot->sleepers_on(n) > 0 || idle.searching.load(std::memory_order_relaxed) == 0))
    lot->wake_one(n, tls_worker == nullptr ? sched_getcpu() : -1);
}

void SchedulerCore::on_idle() noexcept {
  // relaxed: a hint; trimming twice or a little late is harmless.
  if (trim_wanted.load(std::memory_order_relaxed) && trim_wanted.exchange(false, std::memory_order_relaxed))
    release_free_memory();
}

bool SchedulerCore::any_work_visible_to(unsigned node) const {
  // Other nodes count only where this worker could take their work: their deques and
  // injection queues with cross-node steals, never their urgent lanes (workers take only
  // their own), their ReadyQueues by remote_visible.
  const bool remote = plan.cross_node_steals;
  for (unsigned n : arena_nodes)
    if ((n == node || remote) && !inject_queues[n]->empty()) return true;
  if (!urgent_queues[node]->empty()) return true;
  const std::int64_t now = clock_ns();
  for (unsigned n : arena_nodes) {
    const ReadyQueue& q = *ready_queues[n];
    if (!q.empty() && (n == node || (remote && q.remote_visible(now)))) return true;
  }
  for (const auto& w : workers)
    if ((w->node == node || remote) && !w->deque.empty()) return true;
  return false;
}

bool SchedulerCore::any_work_visible() const {
  for (const auto& q : inject_queues)
    if (q && !q->empty()) return true;
  for (const auto& q : urgent_queues)
    if (q && !q->empty()) return true;
  for (const auto& q : ready_queues)
    if (q && !q->empty()) return true;
  for (const auto& w : workers)
    if (!w->deque.empty()) return true;
  return false;
}

void SchedulerCore::run_hook(const std::function<void(const WorkerInfo&)>& hook,
                             const WorkerInfo& info, const char* name) noexcept {
  if (!hook) return;
  try {
    hook(info);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vitte: %s hook threw on worker %u: %s (ignored)\n", name, info.index, e.what());
  } catch (...) {
    std::fprintf(stderr, "vitte: %s hook threw on worker %u (ignored)\n", name, info.index);
  }
}

SchedulerCore* core_of(Scheduler& s) noexcept { return s.core_.get(); }

void throw_spawn_outside_worker() {
  throw UsageError("vitte::spawn() called outside a worker thread; use Scheduler::submit()");
}

void note_external_boxed(SchedulerCore* core) noexcept {
  core->external_boxed.fetch_add(1, std::memory_order_relaxed);  // statistics
}

void submit_external(SchedulerCore* core, std::uint64_t live, TaskFrame* f, int node, const char* what) {
  check_alive(live, what);
  core->check_not_inherited(what);
  route_slow(core, nullptr, f, Route{.source = Source::Submission, .node = node});
}

}  // namespace detail

void Scheduler::submit(Task&& t) {
  if (!t) throw UsageError("submit() of an empty Task (moved from, or already submitted)");
  if (detail::WorkerLocal* w = detail::own_worker(core_.get())) {
    if (t.boxed_off_worker_) [[unlikely]] detail::note_external_boxed(core_.get());
    detail::TaskFrame* f = t.release();
    f->counter = &core_->detached;
    core_->detached.add(w);
    detail::route(core_.get(), w, f);
    return;
  }
  submit_routed(t, detail::Route{.lane = detail::Lane::Fifo, .source = detail::Source::Submission});
}

void Scheduler::submit(Task&& t, const TaskOptions& opts) { submit_with(std::move(t), opts, "submit(task, options)"); }

void Scheduler::submit_with(Task&& t, const TaskOptions& opts, const char* what) {
  if (!t) throw UsageError("submit() of an empty Task (moved from, or already submitted)");
  const detail::BoundOptions b = detail::bind_options(core_.get(), opts, what);
  // A node given: that node's injection queue, also from one of its workers (as submit to a
  // node always did); none: the worker's own deque, as submit(t).
  submit_routed(t, detail::Route{.opts = &b, .lane = opts.node ? detail::Lane::Fifo : detail::Lane::Local,
                                 .source = detail::Source::Submission});
}

void Scheduler::submit_routed(Task& t, const detail::Route& r) {
  core_->check_not_inherited("submit()");
  detail::WorkerLocal* w = detail::own_worker(core_.get());
  detail::TaskFrame* f = t.frame_;  // still t's until it is queued (a refusal leaves it there)
  f->counter = &core_->detached;
  core_->detached.add(w);
  try {
    detail::route(core_.get(), w, f, r);
  } catch (...) {
    core_->detached.done(w);
    throw;
  }
  if (t.boxed_off_worker_) detail::note_external_boxed(core_.get());
  (void)t.release();
}

}  // namespace vitte

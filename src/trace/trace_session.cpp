// Starting and stopping a trace: the controller's side of TraceRecorder's handshake (R1-R5).
//
// start_trace() allocates every worker's buffer first (an allocation that fails leaves no
// trace half-started), then publishes them one by one; stop_trace() retracts them one by one
// (each waits only for that worker's current section, R3) and hands the buffers to a Trace.
// trace_mu keeps one controller at a time; the workers never take it.
#include <string>

#include "clock/clock.hpp"
#include "scheduler_core.hpp"
#include "trace/trace_data.hpp"
#include "vitte/scheduler.hpp"
#include "worker/worker.hpp"

namespace vitte {

void Scheduler::start_trace(const TraceOptions& opts) {
  core_->check_not_inherited("start_trace()");
  if (opts.events_per_worker == 0)
    throw UsageError("start_trace(): TraceOptions::events_per_worker = 0; a worker needs room for at least one event");
  // 2^28 events of 32 bytes: 8 GiB per worker, far beyond any trace a viewer can load.
  constexpr std::size_t kMaxEventsPerWorker = std::size_t{1} << 28;
  if (opts.events_per_worker > kMaxEventsPerWorker)
    throw UsageError("start_trace(): TraceOptions::events_per_worker = " + std::to_string(opts.events_per_worker) +
                     "; at most " + std::to_string(kMaxEventsPerWorker) + " (each worker's buffer is preallocated)");
  if (opts.sample_every == 0)
    throw UsageError("start_trace(): TraceOptions::sample_every = 0; 1 records every task, N one task in N");
  detail::SchedulerCore& c = *core_;
  std::lock_guard lock(c.trace_mu);
  if (!c.accepting.load(std::memory_order_acquire))
    throw UsageError("start_trace() after the scheduler began shutting down");
  if (c.trace != nullptr) throw UsageError("start_trace(): a trace is already recording; stop_trace() ends it");
  auto data = std::make_unique<detail::TraceData>();
  data->sample_every = opts.sample_every;
  data->events_per_worker = opts.events_per_worker;
  data->binding = to_string(c.plan.binding);
  data->binding_reason = c.plan.binding_reason;
  data->topology = c.topo.source();
  data->start_ns = detail::now_ns();
  data->tsc = detail::kTraceUsesTsc;
  data->start_ticks = data->tsc ? detail::trace_ticks() : data->start_ns;
  const std::uint32_t generation = c.trace_generation + 1;
  for (const auto& w : c.workers)
    data->workers.push_back(detail::TraceData::Worker{
        w->index, w->node, w->os_cpu(),
        std::make_unique<detail::WorkerTrace>(opts.events_per_worker, generation, data->start_ticks)});
  c.trace_generation = generation;
  for (std::size_t i = 0; i < c.workers.size(); ++i) {
    c.workers[i]->trace_recorder().publish(data->workers[i].trace.get(), opts.sample_every);
    c.workers[i]->watch(detail::Worker::kWatchTrace, true);
  }
  c.trace = std::move(data);
}

Trace Scheduler::stop_trace() {
  core_->check_not_inherited("stop_trace()");
  detail::SchedulerCore& c = *core_;
  std::lock_guard lock(c.trace_mu);
  if (c.trace == nullptr) throw UsageError("stop_trace(): no trace is recording (start_trace() starts one)");
  for (const auto& w : c.workers) {
    w->watch(detail::Worker::kWatchTrace, false);
    w->trace_recorder().retract();
  }
  c.trace->stop_ns = detail::now_ns();
  c.trace->stop_ticks = c.trace->tsc ? detail::trace_ticks() : c.trace->stop_ns;
  return detail::TraceAccess::make(std::move(c.trace));
}

bool Scheduler::tracing() const {
  std::lock_guard lock(core_->trace_mu);
  return core_->trace != nullptr;
}

}  // namespace vitte

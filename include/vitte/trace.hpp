// Trace: what the workers did over a region of time, for ui.perfetto.dev and chrome://tracing.
//
//   sched.start_trace();                              // or start_trace({.sample_every = 64})
//   run_the_work();
//   vitte::Trace t = sched.stop_trace();
//   t.write("run.json");                              // Chrome/Perfetto trace-event JSON
//
// The file holds one process per NUMA node ("node N") and one thread per worker
// ("worker W") inside its node's process. On each worker's track: a slice per task it ran
// (category "task"; work given TaskOptions::name is named by it), a nested slice per
// graph task (category "graph", named by the task's name, else by its graph's), a slice per
// sleep ("park") and an instant per wake-up by a producer ("wake"); every steal from another
// worker's deque is a flow (category "steal") from the victim's track, at the moment of the
// steal, to the slice of the stolen task on the thief's. Metadata ("vitte" in the file's
// "metadata" object) gives the sampling rate, the events dropped, the workers and their
// nodes, and the plan's binding. docs/tracing.md: how to read it, what it costs.
//
// Recording: each worker writes into a buffer of its own, allocated by start_trace(), with
// no lock. A full buffer drops further events of that worker; they are counted (dropped(),
// and in the file), never silently lost. Off (the default) the scheduler pays one predicted
// branch per task, steal and sleep.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace vitte {

namespace detail {
struct TraceData;    // src/trace/trace_data.hpp
struct TraceAccess;  // how the scheduler fills a Trace
}

struct TraceOptions {
  // Events each worker can hold (32 bytes each; the default is 8 MiB per worker). A task
  // slice is one event, a steal one more. At least 1.
  std::size_t events_per_worker = std::size_t{1} << 18;
  // Record one task in N on each worker (its first task since start_trace(), then every
  // N-th); the others are counted, not timed. Steals, graph tasks and timer names follow
  // their task's sampling; parks and wake-ups are always recorded. At least 1.
  unsigned sample_every = 1;
};

// A finished recording (Scheduler::stop_trace()). Move-only; owns copies of every name, so it
// outlives the scheduler, its graphs and its timers.
class Trace {
 public:
  Trace() noexcept;  // empty: no workers, no events
  Trace(Trace&&) noexcept;
  Trace& operator=(Trace&&) noexcept;
  Trace(const Trace&) = delete;
  Trace& operator=(const Trace&) = delete;
  ~Trace();

  // The trace-event JSON document ({"traceEvents": [...], "displayTimeUnit": "ns",
  // "metadata": {"vitte": {...}}}). Timestamps in microseconds since start_trace().
  std::string json() const;
  // Writes json() to `path` (replaced if it exists). Throws vitte::Error naming the path and
  // the reason when it cannot be written.
  void write(const std::string& path) const;

  // Task slices in the trace (with sample_every = N: about tasks_run() / N).
  std::uint64_t task_slices() const noexcept;
  // Tasks the workers finished while the trace recorded, sampled or not.
  std::uint64_t tasks_run() const noexcept;
  // Events that did not fit in their worker's buffer (TraceOptions::events_per_worker).
  std::uint64_t dropped() const noexcept;
  unsigned sample_every() const noexcept;
  std::size_t workers() const noexcept;

 private:
  friend struct detail::TraceAccess;
  std::unique_ptr<detail::TraceData> data_;
};

}  // namespace vitte

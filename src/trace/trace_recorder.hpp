// TraceRecorder: one worker's side of a trace (trace.hpp), and the handshake that lets a
// trace start and stop while the worker runs.
//
// Roles: the controller (Scheduler::start_trace/stop_trace, one at a time under
// SchedulerCore::trace_mu, from any thread, a worker of this scheduler included) hands the
// recorder a WorkerTrace and takes it back; the worker writes into it from its hooks (a
// task's start and end, a steal, a sleep, a wake-up, a graph task, a timer's name).
//
// Invariants:
//   R1  The controller publishes a buffer by storing it in `active_` (seq_cst, after it
//       filled the buffer and `session_`) and retracts it by storing null.
//   R2  The worker touches a buffer only inside a section: it announces the buffer in
//       `in_use_` (seq_cst store), re-reads `active_` (seq_cst) and enters only if it still
//       holds that buffer; it leaves by storing null in `in_use_` (release). A section is a
//       few stores (an event, a counter, a name lookup): it never spans a task.
//   R3  retract() stores null in `active_` (seq_cst), then waits while `in_use_` holds the
//       buffer (seq_cst loads). The four seq_cst operations are totally ordered: either the
//       worker's re-read comes after the retraction (it does not enter), or its announcement
//       comes before the controller's load (which then waits for the section to end, and
//       its acquire sees every write of the section). Once retract() returns, the worker
//       can no longer reach the buffer, which the controller may read, move and free. The
//       wait lasts a section (nanoseconds; longer only if the worker is preempted inside
//       one), never a task: stop_trace() may be called from a task, even on this worker,
//       whose `in_use_` is null while it runs a task.
//   R4  What the worker carries across a task (the open span's start, its label) belongs to
//       the session it began in (its generation); a section writes it only into a buffer of
//       the same generation, so a task that began under one trace never lands in another.
//   R5  Worker::watch_'s trace bit only says whether to call the hooks at all: a worker
//       that sees it late misses the first tasks, one that sees it cleared late finds no
//       buffer (R2). Work queued after start_trace() returned is traced: the queue's
//       release/acquire orders the bit and `session_` before the worker takes the task.
//   R6  A task that is not sampled touches no buffer and enters no section: it is counted
//       in `tasks_run_` (the worker's own counter; the controller reads it at publish and
//       after retract, and the difference is the session's tasks_run). A task finishing
//       as the trace stops may be counted without its slice, or not at all; a task that
//       finished before stop_trace() was called is always counted, and its slice is in.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "trace/trace_data.hpp"

namespace vitte::detail {

struct TaskFrame;

// One task between begin_task() and end_task(): on the worker's stack, chained to the span
// of the task it runs inside (a nested wait runs tasks inside tasks).
struct TaskSpan {
  std::int64_t start = 0;
  std::uint32_t generation = 0;
  std::uint32_t label = 0;     // interned name (a timer's), 0: unnamed
  bool sampled = false;
  int victim = -1;             // the worker it was stolen from, -1: not stolen
  std::int64_t stolen_at = 0;
  TaskSpan* outer = nullptr;
};

class TraceRecorder {
 public:
  explicit TraceRecorder(unsigned worker) noexcept : worker_(worker) {}

  // Controller side (under SchedulerCore::trace_mu).
  void publish(WorkerTrace* t, unsigned sample_every) noexcept;
  void retract() noexcept;  // R3: returns once the worker has left the buffer for good

  // Worker side (the owning worker only).
  void begin_task(TaskSpan& s, const TaskFrame* f) noexcept;
  void end_task(TaskSpan& s) noexcept;
  // `f` was just stolen from `victim`'s deque: the flow goes with f's slice if it is sampled.
  void stolen(unsigned victim, const TaskFrame* f) noexcept;
  // Names the innermost open task (named work: TaskOptions::name, src/intake/named.cpp).
  void label_task(std::string_view name) noexcept;
  // Graph tasks are recorded inside sampled task slices only.
  bool in_sampled_task() const noexcept { return open_ != nullptr && open_->sampled; }
  // Times in trace ticks (clock/clock.hpp).
  void graph_task(std::int64_t start, std::string_view name, std::uint32_t index) noexcept;
  void parked(std::int64_t start, std::int64_t end) noexcept;
  void woken(std::int64_t at) noexcept;

 private:
  WorkerTrace* enter() noexcept;  // R2: the buffer, or null (then nothing to leave)
  void leave() noexcept;
  void count_task() noexcept;     // R6

  // Shared with the controller.
  std::atomic<WorkerTrace*> active_{nullptr};  // R1
  std::atomic<WorkerTrace*> in_use_{nullptr};  // R2
  // The session's generation (high half) and sampling rate (low half): read at each task's
  // start, outside any section, so it is a copy rather than a field of the buffer. relaxed:
  // ordered for the worker by R5's queue edge, and checked against the buffer by R4.
  std::atomic<std::uint64_t> session_{0};
  std::atomic<std::uint64_t> tasks_run_{0};  // R6: written by the worker only
  std::uint64_t tasks_at_publish_ = 0;       // the controller's

  // The worker's own.
  const unsigned worker_;
  std::uint32_t generation_ = 0;  // the session the countdown belongs to
  unsigned countdown_ = 0;        // tasks until the next sampled one
  TaskSpan* open_ = nullptr;      // innermost task being run
  const TaskFrame* stolen_frame_ = nullptr;
  int stolen_from_ = -1;
  std::int64_t stolen_at_ = 0;
  // Steals recorded in this worker's traces; a flow's id is (worker << 32 | this), unique in
  // a trace and below 2^53, so viewers that read numbers as doubles keep them apart.
  std::uint64_t flows_ = 0;
};

}  // namespace vitte::detail

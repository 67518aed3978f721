#include "trace/trace_recorder.hpp"

#include <new>
#include <thread>

#include "clock/clock.hpp"

namespace vitte::detail {

std::uint32_t NameTable::intern(std::string_view name) {
  if (name.empty()) return 0;
  if (auto it = ids_.find(name); it != ids_.end()) return it->second;
  if (names_.size() >= kMaxNames) {
    ++overflow;
    return 0;
  }
  names_.push_back(std::make_unique<std::string>(name));
  const auto id = static_cast<std::uint32_t>(names_.size() - 1);
  ids_.emplace(*names_.back(), id);
  return id;
}

void TraceRecorder::publish(WorkerTrace* t, unsigned sample_every) noexcept {
  // relaxed: ordered before the worker reads it by the seq_cst store below and R5.
  session_.store(std::uint64_t{t->generation} << 32 | sample_every, std::memory_order_relaxed);
  tasks_at_publish_ = tasks_run_.load(std::memory_order_relaxed);
  active_.store(t, std::memory_order_seq_cst);  // R1
}

void TraceRecorder::retract() noexcept {
  WorkerTrace* t = active_.load(std::memory_order_relaxed);  // only the controller writes it
  active_.store(nullptr, std::memory_order_seq_cst);          // R3
  for (unsigned spins = 0; in_use_.load(std::memory_order_seq_cst) == t && t != nullptr; ++spins)
    if (spins > 64) std::this_thread::yield();  // the worker was preempted inside a section
  if (t != nullptr) t->tasks_run = tasks_run_.load(std::memory_order_relaxed) - tasks_at_publish_;
}

void TraceRecorder::count_task() noexcept {
  // relaxed, load + store: the worker is the only writer; the controller reads a value at
  // most a task or two old (R6).
  tasks_run_.store(tasks_run_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

WorkerTrace* TraceRecorder::enter() noexcept {
  WorkerTrace* t = active_.load(std::memory_order_relaxed);  // a first look; R2 decides
  if (t == nullptr) return nullptr;
  in_use_.store(t, std::memory_order_seq_cst);
  if (active_.load(std::memory_order_seq_cst) != t) {
    in_use_.store(nullptr, std::memory_order_release);
    return nullptr;
  }
  return t;
}

void TraceRecorder::leave() noexcept {
  // release: the section's writes happen before the controller's load that sees null (R3).
  in_use_.store(nullptr, std::memory_order_release);
}

void TraceRecorder::begin_task(TaskSpan& s, const TaskFrame* f) noexcept {
  const std::uint64_t session = session_.load(std::memory_order_relaxed);
  const auto generation = static_cast<std::uint32_t>(session >> 32);
  const auto every = static_cast<unsigned>(session & 0xffffffffu);
  if (generation != generation_) {  // a new trace: its first task is sampled
    generation_ = generation;
    countdown_ = 0;
  }
  s.generation = generation;
  s.sampled = countdown_ == 0;
  countdown_ = countdown_ + 1 >= every ? 0 : countdown_ + 1;
  if (s.sampled) {
    if (stolen_frame_ == f) {
      s.victim = stolen_from_;
      s.stolen_at = stolen_at_;
    }
    s.start = trace_ticks();
  }
  stolen_frame_ = nullptr;
  s.outer = open_;
  open_ = &s;
}

void TraceRecorder::end_task(TaskSpan& s) noexcept {
  open_ = s.outer;
  if (!s.sampled) {
    // No buffer to touch, so no section (R6): a relaxed look at the session is enough.
    if (active_.load(std::memory_order_relaxed) != nullptr &&
        session_.load(std::memory_order_relaxed) >> 32 == s.generation)
      count_task();
    return;
  }
  const std::int64_t end = trace_ticks();
  WorkerTrace* t = enter();
  if (t == nullptr) return;
  if (t->generation == s.generation) {  // R4
    count_task();
    // A steal's flow ends at this task's slice: with room for one event only, the slice is
    // kept and the flow dropped (counted), never a flow pointing at a slice that is not there.
    if (s.victim >= 0) {
      if (t->capacity - t->size >= 2)
        t->add(TraceEvent{s.start, s.stolen_at, static_cast<std::uint32_t>(s.victim), TraceKind::Steal,
                          std::uint64_t{worker_} << 32 | ++flows_});
      else
        ++t->dropped;
    }
    if (t->add(TraceEvent{s.start, end - s.start, s.label, TraceKind::Task, 0})) ++t->task_slices;
  }
  leave();
}

void TraceRecorder::stolen(unsigned victim, const TaskFrame* f) noexcept {
  if (countdown_ != 0) return;  // the stolen task will not be sampled: no flow, no clock read
  stolen_frame_ = f;
  stolen_from_ = static_cast<int>(victim);
  stolen_at_ = trace_ticks();
}

void TraceRecorder::label_task(std::string_view name) noexcept {
  if (!in_sampled_task()) return;
  WorkerTrace* t = enter();
  if (t == nullptr) return;
  if (t->generation == open_->generation) {  // R4
    try {
      open_->label = t->names.intern(name);
    } catch (const std::bad_alloc&) {
      ++t->names.overflow;
    }
  }
  leave();
}

void TraceRecorder::graph_task(std::int64_t start, std::string_view name, std::uint32_t index) noexcept {
  const std::int64_t end = trace_ticks();
  WorkerTrace* t = enter();
  if (t == nullptr) return;
  if (open_ != nullptr && t->generation == open_->generation) {  // R4, through the enclosing task
    std::uint32_t id = 0;
    try {
      id = t->names.intern(name);
    } catch (const std::bad_alloc&) {
      ++t->names.overflow;
    }
    t->add(TraceEvent{start, end - start, id, TraceKind::Graph, index});
  }
  leave();
}

void TraceRecorder::parked(std::int64_t start, std::int64_t end) noexcept {
  WorkerTrace* t = enter();
  if (t == nullptr) return;
  // A sleep that began before this trace did shows from the trace's start.
  if (start < t->start_ticks) start = t->start_ticks;
  t->add(TraceEvent{start, end - start, 0, TraceKind::Park, 0});
  leave();
}

void TraceRecorder::woken(std::int64_t at) noexcept {
  WorkerTrace* t = enter();
  if (t == nullptr) return;
  t->add(TraceEvent{at, 0, 0, TraceKind::Wake, 0});
  leave();
}

}  // namespace vitte::detail

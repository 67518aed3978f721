// What a trace records (private; the API is include/vitte/trace.hpp): each worker's event
// buffer and name table, and the finished recording a vitte::Trace owns.
//
// A WorkerTrace is written by its worker alone, and only inside the recorder's guarded
// sections (trace_recorder.hpp, R1-R4); the exporter reads it once stop_trace() has seen the
// worker leave its last section. So nothing here is atomic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "vitte/trace.hpp"

namespace vitte::detail {

enum class TraceKind : std::uint8_t {
  Task,   // a task slice: ts, dur, name (0: unnamed)
  Graph,  // a graph task's slice, nested in its strand's task slice: ts, dur, name, arg = its index
  Park,   // a sleep: ts, dur
  Wake,   // woken by a producer: ts
  Steal,  // a steal from another worker's deque: ts = the stolen task's slice start,
          // dur = when it was stolen (ticks), name = the victim, arg = the flow id
};

// 32 bytes: two per cache line. Times in trace ticks (clock/clock.hpp).
struct TraceEvent {
  std::int64_t ts;
  std::int64_t dur;
  std::uint32_t name;
  TraceKind kind;
  std::uint64_t arg;
};
static_assert(sizeof(TraceEvent) == 32);

// Names copied on first use, so that the trace outlives the graphs and timers that named
// its slices. Id 0 is the empty name. A lookup hashes the name (the view is the key; it
// points into `names`, whose strings never move once made: a vector of unique_ptr).
class NameTable {
 public:
  // Names past this many stay unnamed (id 0) and are counted in `overflow`: a graph whose
  // every task has its own name (one per file) must not grow the trace without bound.
  static constexpr std::size_t kMaxNames = std::size_t{1} << 16;

  NameTable() { names_.push_back(std::make_unique<std::string>()); }
  std::uint32_t intern(std::string_view name);
  const std::string& name(std::uint32_t id) const noexcept { return *names_[id]; }
  std::size_t size() const noexcept { return names_.size(); }
  std::uint64_t overflow = 0;

 private:
  std::vector<std::unique_ptr<std::string>> names_;
  std::unordered_map<std::string_view, std::uint32_t> ids_;
};

// One worker's recording. The events array is allocated by start_trace() and not touched
// until the worker writes it (so its pages are first touched, and placed, by that worker).
struct WorkerTrace {
  WorkerTrace(std::size_t capacity_, std::uint32_t generation_, std::int64_t start_ticks_)
      : events(new TraceEvent[capacity_]), capacity(capacity_), generation(generation_), start_ticks(start_ticks_) {}
  std::unique_ptr<TraceEvent[]> events;
  std::size_t capacity;
  std::size_t size = 0;
  std::uint32_t generation;  // the session it belongs to (TraceRecorder R4)
  std::int64_t start_ticks;  // when the session began
  // Tasks that ended during the session: TraceRecorder counts them outside the buffer (an
  // unsampled task touches no buffer); retract() stores the count here.
  std::uint64_t tasks_run = 0;
  std::uint64_t task_slices = 0;
  std::uint64_t dropped = 0;
  NameTable names;
  // Appends an event; false (and counted as dropped) when the buffer is full.
  bool add(const TraceEvent& e) noexcept {
    if (size == capacity) {
      ++dropped;
      return false;
    }
    events[size++] = e;
    return true;
  }
};

// A finished recording: every worker's buffer plus what the file says about the run.
struct TraceData {
  struct Worker {
    unsigned index = 0;
    unsigned node = 0;
    int os_cpu = -1;
    std::unique_ptr<WorkerTrace> trace;
  };
  std::vector<Worker> workers;
  unsigned sample_every = 1;
  std::size_t events_per_worker = 0;
  // The clock at start and stop, in steady_clock ns and in trace ticks: ticks map linearly
  // to ns between them (clock/clock.hpp).
  std::int64_t start_ns = 0, stop_ns = 0;
  std::int64_t start_ticks = 0, stop_ticks = 0;
  bool tsc = false;  // ticks are TSC cycles; else they are the ns themselves
  // Nanoseconds since the start of the trace at `ticks`.
  std::int64_t ns_since_start(std::int64_t ticks) const noexcept {
    const std::int64_t span = stop_ticks - start_ticks;
    if (span <= 0) return 0;
    const long double scale = static_cast<long double>(stop_ns - start_ns) / static_cast<long double>(span);
    return static_cast<std::int64_t>(static_cast<long double>(ticks - start_ticks) * scale);
  }
  std::string binding;         // the plan's binding, and why
  std::string binding_reason;
  std::string topology;        // where the topology came from
};

struct TraceAccess {
  static Trace make(std::unique_ptr<TraceData> d) noexcept {
    Trace t;
    t.data_ = std::move(d);
    return t;
  }
};

}  // namespace vitte::detail

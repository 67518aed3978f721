// Event counters per worker thread: the one seam for PAPI and for Linux's perf_event
// software counters (the only code that counts hardware or kernel events).
//
// Which events a scheduler counts is decided once, on the thread that makes it
// (EventPlan::probe): each wanted event is tried on its own and then together with those
// kept so far, and kept only when the whole set adds and starts. PAPI is tried first; an
// event PAPI cannot count (its perf_event component is disabled in VMs without a PMU, an
// event the CPU lacks) falls to Linux's software counters when it is one of them
// (perf::CONTEXT-SWITCHES and friends, opened with perf_event_open directly). Each event
// that cannot be counted is reported with the reason, never counted as zero. When the
// default set was asked for and no hardware event counts, the software events are used.
//
// Each worker then starts its own ThreadCounters on its own thread (PAPI event sets and
// perf_event fds count the thread that opened them) and reads them itself.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "vitte/metrics.hpp"

namespace vitte::detail {

// At most this many events per scheduler (more is a UsageError): hardware has 4 to 8
// programmable counters, and the per-task group reads stay on the stack.
inline constexpr std::size_t kMaxEvents = 16;

// The default set: L1/L2 data-cache misses, L3 misses (PAPI has no L3 data-miss preset on
// most CPUs), data-TLB misses, instructions, cycles.
const std::vector<std::string>& default_events();
// Used instead when no event of the default set can be counted.
const std::vector<std::string>& software_events();

struct EventPlan {
  CounterInfo info;  // events, sources, unavailable, note (info.requested set by the caller)
  // Probes `wanted` (empty: the default set) on the calling thread.
  static EventPlan probe(const std::vector<std::string>& wanted);
  bool empty() const noexcept { return info.events.empty(); }
};

// One thread's counters for a plan. start() and read() must run on the thread counted.
class ThreadCounters {
 public:
  ThreadCounters();
  ~ThreadCounters();
  ThreadCounters(const ThreadCounters&) = delete;
  ThreadCounters& operator=(const ThreadCounters&) = delete;

  // Starts counting the calling thread; false with a reason when it could not (the worker
  // then publishes nothing, and the snapshot says why).
  bool start(const EventPlan& plan, std::string* why);
  // Current totals since start(), in plan order; false if a read failed.
  bool read(std::uint64_t* out);
  void stop() noexcept;
  bool running() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Backends (papi_counters.cpp or papi_absent.cpp; perf_software.cpp).
namespace papi {
// "" when PAPI is ready on this process (initialised once), else why not.
std::string ready();
// The PAPI error for counting `events` together on the calling thread, or "".
std::string try_set(const std::vector<std::string>& events);
// A started PAPI event set of the calling thread; -1 on failure (`why` set).
int start(const std::vector<std::string>& events, std::string* why);
bool read(int set, long long* values);
void stop(int set) noexcept;
}  // namespace papi

namespace perfsw {
// Whether `name` is one of Linux's software events this backend knows (in any letter case,
// as PAPI's names are).
bool known(const std::string& name);
// The name as this backend spells it ("perf::task-clock" -> "perf::TASK-CLOCK"); other names
// unchanged.
std::string canonical(const std::string& name);
// The kernel's error for counting `events` together on the calling thread, or "".
std::string try_set(const std::vector<std::string>& events);
// A started group on the calling thread: fds (leader first), empty on failure.
std::vector<int> start(const std::vector<std::string>& events, std::string* why);
bool read(const std::vector<int>& fds, std::uint64_t* values);
void stop(std::vector<int>& fds) noexcept;
}  // namespace perfsw

}  // namespace vitte::detail

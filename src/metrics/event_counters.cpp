#include "metrics/event_counters.hpp"

#include <algorithm>

namespace vitte::detail {

const std::vector<std::string>& default_events() {
  static const std::vector<std::string> v{"PAPI_L1_DCM", "PAPI_L2_DCM", "PAPI_L3_TCM",
                                          "PAPI_TLB_DM", "PAPI_TOT_INS", "PAPI_TOT_CYC"};
  return v;
}

const std::vector<std::string>& software_events() {
  static const std::vector<std::string> v{"perf::TASK-CLOCK", "perf::CONTEXT-SWITCHES", "perf::PAGE-FAULTS",
                                          "perf::CPU-MIGRATIONS"};
  return v;
}

namespace {

// Tries each of `wanted` in turn with those kept so far. Linux's software events (context
// switches, page faults, migrations, task clock) go to the kernel's own counters, which count
// them where they happen, in the kernel; PAPI would count them in its default user domain,
// where Linux 6.x reads 0 for them (measured on 6.18: 20 context switches of 20 sleeps
// counted with exclude_kernel = 0, none with 1). Where the kernel refuses (its
// perf_event_paranoid), such an event is reported missing, never counted as 0 by PAPI.
// Everything else goes to PAPI.
void keep_what_counts(const std::vector<std::string>& wanted, std::vector<std::string>& by_papi,
                      std::vector<std::string>& by_perf, std::vector<CounterInfo::Missing>& missing) {
  for (const std::string& raw : wanted) {
    const std::string e = perfsw::canonical(raw);  // one spelling per software event
    if (std::find(by_papi.begin(), by_papi.end(), e) != by_papi.end() ||
        std::find(by_perf.begin(), by_perf.end(), e) != by_perf.end() ||
        std::any_of(missing.begin(), missing.end(), [&](const CounterInfo::Missing& m) { return m.event == e; }))
      continue;  // listed twice: counted (or reported missing) once
    if (perfsw::known(e)) {
      std::vector<std::string> with = by_perf;
      with.push_back(e);
      const std::string perf_why = perfsw::try_set(with);
      if (perf_why.empty())
        by_perf.push_back(e);
      else
        missing.push_back({e, "Linux: " + perf_why +
                                  " (PAPI would count it in user mode only, where the kernel's events read 0)"});
      continue;
    }
    std::vector<std::string> with = by_papi;
    with.push_back(e);
    const std::string papi_why = papi::try_set(with);
    if (papi_why.empty())
      by_papi.push_back(e);
    else
      missing.push_back({e, "PAPI: " + papi_why});
  }
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& e : v) s += (s.empty() ? "" : ", ") + e;
  return s;
}

}  // namespace

EventPlan EventPlan::probe(const std::vector<std::string>& wanted) {
  EventPlan p;
  const bool use_default = wanted.empty();
  std::vector<std::string> by_papi, by_perf;
  std::vector<CounterInfo::Missing> missing;
  keep_what_counts(use_default ? default_events() : wanted, by_papi, by_perf, missing);
  std::string note;
  if (use_default && by_papi.empty() && by_perf.empty()) {
    keep_what_counts(software_events(), by_papi, by_perf, missing);
    note = by_papi.empty() && by_perf.empty()
               ? "no event of the default set counts here, nor any of Linux's software events"
               : "no event of the default set counts here (see unavailable); counting software events instead: " +
                     join(by_papi.empty() ? by_perf : by_papi) + (by_papi.empty() ? "" : ", " + join(by_perf));
  } else if (!missing.empty()) {
    note = std::to_string(missing.size()) + " wanted event(s) cannot be counted here (see unavailable)";
  }
  if (!by_perf.empty() && note.find("software") == std::string::npos)
    note += std::string(note.empty() ? "" : "; ") + join(by_perf) + " counted by Linux directly (PAPI could not)";
  for (const std::string& e : by_papi) {
    p.info.events.push_back(e);
    p.info.sources.emplace_back("papi");
  }
  for (const std::string& e : by_perf) {
    p.info.events.push_back(e);
    p.info.sources.emplace_back("perf_event");
  }
  p.info.unavailable = std::move(missing);
  p.info.note = std::move(note);
  return p;
}

struct ThreadCounters::Impl {
  int papi_set = -1;
  std::size_t n_papi = 0;
  std::vector<int> perf_fds;
};

ThreadCounters::ThreadCounters() : impl_(std::make_unique<Impl>()) {}
ThreadCounters::~ThreadCounters() { stop(); }

bool ThreadCounters::start(const EventPlan& plan, std::string* why) {
  std::vector<std::string> by_papi, by_perf;
  for (std::size_t i = 0; i < plan.info.events.size(); ++i)
    (plan.info.sources[i] == "papi" ? by_papi : by_perf).push_back(plan.info.events[i]);
  if (!by_papi.empty()) {
    impl_->papi_set = papi::start(by_papi, why);
    if (impl_->papi_set < 0) return false;
    impl_->n_papi = by_papi.size();
  }
  if (!by_perf.empty()) {
    impl_->perf_fds = perfsw::start(by_perf, why);
    if (impl_->perf_fds.empty()) {
      stop();
      return false;
    }
  }
  return true;
}

bool ThreadCounters::read(std::uint64_t* out) {
  if (impl_->papi_set >= 0) {
    long long v[kMaxEvents];
    if (!papi::read(impl_->papi_set, v)) return false;
    for (std::size_t i = 0; i < impl_->n_papi; ++i) out[i] = v[i] > 0 ? static_cast<std::uint64_t>(v[i]) : 0;
  }
  return impl_->perf_fds.empty() || perfsw::read(impl_->perf_fds, out + impl_->n_papi);
}

void ThreadCounters::stop() noexcept {
  if (impl_->papi_set >= 0) papi::stop(impl_->papi_set);
  impl_->papi_set = -1;
  impl_->n_papi = 0;
  perfsw::stop(impl_->perf_fds);
}

bool ThreadCounters::running() const noexcept { return impl_->papi_set >= 0 || !impl_->perf_fds.empty(); }

}  // namespace vitte::detail

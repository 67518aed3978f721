// The PAPI backend of the counter seam (event_counters.hpp): the only code that includes
// <papi.h>, built only when meson finds PAPI (never in the sanitizer builds).
#include <papi.h>
#include <pthread.h>

#include <mutex>

#include "metrics/event_counters.hpp"

namespace vitte::detail::papi {

namespace {

unsigned long thread_id() { return static_cast<unsigned long>(pthread_self()); }

std::string error(int rc) {
  const char* s = PAPI_strerror(rc);
  return s != nullptr ? std::string(s) : "PAPI error " + std::to_string(rc);
}

// Why PAPI's perf_event component (CPU counters) is off, or "".
std::string disabled_component() {
  const int n = PAPI_num_components();
  for (int i = 0; i < n; ++i) {
    const PAPI_component_info_t* c = PAPI_get_component_info(i);
    if (c != nullptr && std::string(c->name) == "perf_event" && c->disabled != 0)
      return std::string("PAPI's perf_event component is disabled: ") + c->disabled_reason;
  }
  return "";
}

// Adds `events` to `set` in order; the first failure's message, or "".
std::string add_all(int set, const std::vector<std::string>& events) {
  for (const std::string& e : events)
    if (const int rc = PAPI_add_named_event(set, e.c_str()); rc != PAPI_OK) return e + ": " + error(rc);
  return "";
}

}  // namespace

std::string ready() {
  static std::once_flag once;
  static std::string why;
  std::call_once(once, [] {
    const int v = PAPI_library_init(PAPI_VER_CURRENT);
    if (v != PAPI_VER_CURRENT) {
      why = v > 0 ? "PAPI_library_init: header and library versions differ" : "PAPI_library_init: " + error(v);
      return;
    }
    if (const int rc = PAPI_thread_init(&thread_id); rc != PAPI_OK) {
      why = "PAPI_thread_init: " + error(rc);
      return;
    }
  });
  return why;
}

std::string try_set(const std::vector<std::string>& events) {
  if (std::string why = ready(); !why.empty()) return why;
  std::string why;
  const int set = start(events, &why);
  if (set >= 0) stop(set);
  return why;
}

int start(const std::vector<std::string>& events, std::string* why) {
  if (std::string w = ready(); !w.empty()) {
    *why = w;
    return -1;
  }
  int set = PAPI_NULL;
  if (const int rc = PAPI_create_eventset(&set); rc != PAPI_OK) {
    *why = "PAPI_create_eventset: " + error(rc);
    return -1;
  }
  std::string failed = add_all(set, events);
  if (failed.empty())
    if (const int rc = PAPI_start(set); rc != PAPI_OK) failed = "PAPI_start: " + error(rc);
  if (!failed.empty()) {
    if (const std::string comp = disabled_component(); !comp.empty()) failed += " (" + comp + ")";
    *why = failed;
    PAPI_cleanup_eventset(set);
    PAPI_destroy_eventset(&set);
    return -1;
  }
  return set;
}

bool read(int set, long long* values) { return PAPI_read(set, values) == PAPI_OK; }

void stop(int set) noexcept {
  long long ignored[kMaxEvents];
  PAPI_stop(set, ignored);
  PAPI_cleanup_eventset(set);
  PAPI_destroy_eventset(&set);
  PAPI_unregister_thread();
}

}  // namespace vitte::detail::papi

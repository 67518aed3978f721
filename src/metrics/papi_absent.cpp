// The counter seam's PAPI backend in a build without PAPI (-Dpapi=disabled, or PAPI not
// found): every PAPI event is reported unavailable with that reason; Linux's software
// events still count (perf_software.cpp).
#include "metrics/event_counters.hpp"

namespace vitte::detail::papi {

std::string ready() { return "this build has no PAPI (meson -Dpapi=disabled, or libpapi-dev was not found)"; }
std::string try_set(const std::vector<std::string>&) { return ready(); }
int start(const std::vector<std::string>&, std::string* why) {
  *why = ready();
  return -1;
}
bool read(int, long long*) { return false; }
void stop(int) noexcept {}

}  // namespace vitte::detail::papi

// Linux's software counters through perf_event_open: the fallback of the counter seam
// (event_counters.hpp) for the events the kernel counts itself (context switches, page
// faults, migrations, task clock), which need no PMU and so also count in VMs where PAPI's
// perf_event component is disabled. One group per thread, read with one read().
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "metrics/event_counters.hpp"

namespace vitte::detail::perfsw {

namespace {

struct SoftEvent {
  const char* name;
  std::uint64_t config;
};
constexpr SoftEvent kEvents[] = {
    {"perf::TASK-CLOCK", PERF_COUNT_SW_TASK_CLOCK},
    {"perf::CPU-CLOCK", PERF_COUNT_SW_CPU_CLOCK},
    {"perf::CONTEXT-SWITCHES", PERF_COUNT_SW_CONTEXT_SWITCHES},
    {"perf::CPU-MIGRATIONS", PERF_COUNT_SW_CPU_MIGRATIONS},
    {"perf::PAGE-FAULTS", PERF_COUNT_SW_PAGE_FAULTS},
    {"perf::MINOR-FAULTS", PERF_COUNT_SW_PAGE_FAULTS_MIN},
    {"perf::MAJOR-FAULTS", PERF_COUNT_SW_PAGE_FAULTS_MAJ},
};

const SoftEvent* find(const std::string& name) {
  const auto same = [&](const char* known) {
    std::size_t i = 0;
    for (; known[i] != '\0' && i < name.size(); ++i)
      if (std::toupper(static_cast<unsigned char>(name[i])) != std::toupper(static_cast<unsigned char>(known[i])))
        return false;
    return known[i] == '\0' && i == name.size();
  };
  for (const SoftEvent& e : kEvents)
    if (same(e.name)) return &e;
  return nullptr;
}

std::string paranoid_note() {
  std::ifstream in("/proc/sys/kernel/perf_event_paranoid");
  int level = 0;
  if (!(in >> level)) return "";
  return " (kernel.perf_event_paranoid = " + std::to_string(level) +
         (level >= 3 ? ": this kernel forbids unprivileged counting; 2 or lower lets a process count its own threads)"
                     : ")");
}

int open_event(const SoftEvent& e, int group) {
  perf_event_attr a{};
  a.size = sizeof a;
  a.type = PERF_TYPE_SOFTWARE;
  a.config = e.config;
  a.read_format = PERF_FORMAT_GROUP;
  a.disabled = group < 0 ? 1 : 0;  // the group starts with its leader
  a.exclude_hv = 1;
  // This thread (pid 0), any CPU; kernel-side events such as page faults count in the kernel.
  return static_cast<int>(syscall(SYS_perf_event_open, &a, 0, -1, group, PERF_FLAG_FD_CLOEXEC));
}

}  // namespace

bool known(const std::string& name) { return find(name) != nullptr; }

std::string canonical(const std::string& name) {
  const SoftEvent* e = find(name);
  return e != nullptr ? std::string(e->name) : name;
}

std::vector<int> start(const std::vector<std::string>& events, std::string* why) {
  std::vector<int> fds;
  for (const std::string& name : events) {
    const SoftEvent* e = find(name);
    if (e == nullptr) {
      *why = name + ": not a Linux software event";
      stop(fds);
      return fds;
    }
    const int fd = open_event(*e, fds.empty() ? -1 : fds.front());
    if (fd < 0) {
      const int err = errno;
      *why = name + ": perf_event_open: " + std::strerror(err) +
             (err == EACCES || err == EPERM ? paranoid_note() : std::string());
      stop(fds);
      return fds;
    }
    fds.push_back(fd);
  }
  if (!fds.empty() && ioctl(fds.front(), PERF_EVENT_IOC_ENABLE, PERF_IOC_FLAG_GROUP) != 0) {
    *why = std::string("perf_event enable: ") + std::strerror(errno);
    stop(fds);
  }
  return fds;
}

std::string try_set(const std::vector<std::string>& events) {
  std::string why;
  std::vector<int> fds = start(events, &why);
  stop(fds);
  return why;
}

bool read(const std::vector<int>& fds, std::uint64_t* values) {
  // PERF_FORMAT_GROUP: nr, then one value per event in the order they joined.
  std::uint64_t buf[1 + kMaxEvents];
  const std::size_t want = (1 + fds.size()) * sizeof(std::uint64_t);
  if (fds.empty() || ::read(fds.front(), buf, want) != static_cast<ssize_t>(want) || buf[0] != fds.size())
    return false;
  for (std::size_t i = 0; i < fds.size(); ++i) values[i] = buf[1 + i];
  return true;
}

void stop(std::vector<int>& fds) noexcept {
  for (auto it = fds.rbegin(); it != fds.rend(); ++it) ::close(*it);
  fds.clear();
}

}  // namespace vitte::detail::perfsw

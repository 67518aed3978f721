// Shared helpers for the test suites.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <csignal>
#include <cstdio>
#include <cstddef>
#include <thread>
#include <string>
#include <vector>

#ifndef VITTE_STRESS_SCALE
#define VITTE_STRESS_SCALE 100
#endif
#ifndef VITTE_TOPOLOGY_DIR
#error "VITTE_TOPOLOGY_DIR must point at the topology/ folder"
#endif

namespace vitte::test {

// Raises `max` to `v` if v is larger (the most of a count seen at once).
template <class T>
void raise_max(std::atomic<T>& max, T v) {
  T m = max.load();
  while (v > m && !max.compare_exchange_weak(m, v)) {
  }
}

// A stress size scaled by the build's stress_scale option (percent); never below 1.
inline std::size_t scaled(std::size_t full) {
  const std::size_t s = full * VITTE_STRESS_SCALE / 100;
  return s == 0 ? 1 : s;
}

inline std::string topology_file(const std::string& name) { return std::string(VITTE_TOPOLOGY_DIR) + "/" + name; }

std::vector<std::string> shipped_topologies();

// The example configs shipped in topology/, each with the machine it is for: MACHINE.toml
// or MACHINE.PURPOSE.toml goes with MACHINE.xml (the longest such MACHINE; "" when none).
struct ShippedConfig {
  std::string toml, xml;
};
std::vector<ShippedConfig> shipped_configs();

// Threads of this process now (from /proc/self/status).
std::size_t thread_count();

// Runs `child` in a forked process and returns its exit code; -1 if it died of a signal
// or did not end within `limit` (it is then killed). For tests that need a process of
// their own (a clean heap to measure, fork() itself).
template <class F>
int in_child(F child, std::chrono::seconds limit = std::chrono::seconds(20)) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int rc = child();
    std::fflush(nullptr);  // _exit() skips stdio: keep what the child printed
    _exit(rc);
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs `body` on this thread and returns what it returns; if it has not returned within
// `limit`, says so (naming `what`) and aborts the process, so that a hang fails the suite
// instead of stalling it. For hang tests that cannot fork: ThreadSanitizer refuses to start
// threads in the child of a process that already has threads (a suite that leaks the
// threads of abandoned deterministic runs on purpose).
template <class F>
auto within(std::chrono::seconds limit, const char* what, F body) -> decltype(body()) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, limit, [&] { return done; })) {
      std::fprintf(stderr, "%s: did not finish within %lld s (a hang); aborting\n", what,
                   static_cast<long long>(limit.count()));
      std::abort();
    }
  });
  struct Stop {
    std::mutex& mu;
    std::condition_variable& cv;
    bool& done;
    std::thread& watchdog;
    ~Stop() {
      {
        std::lock_guard<std::mutex> lock(mu);
        done = true;
      }
      cv.notify_one();
      watchdog.join();
    }
  } stop{mu, cv, done, watchdog};
  return body();
}

}  // namespace vitte::test

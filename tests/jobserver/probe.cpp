// A compiler-like process for the jobserver tests (make_test.py): it runs tasks on a
// scheduler that takes part in the jobserver MAKEFLAGS names, and records when each task
// ran, so that the test can count the workers running tasks across several processes.
//
//   probe --workers N --tasks M --task-us U --log FILE   run M busy tasks of U µs, write
//                                                        "start_ns end_ns" per task (CLOCK_MONOTONIC)
//   probe ... --off                                      the same with Options::jobserver = Off
//   probe --workers N --hold (exit|term|kill|abort|forkexit|none)
//                                                        keep every worker busy; once all N hold a
//                                                        token print "holding N", then exit(3)
//                                                        from the main thread, raise SIGTERM,
//                                                        SIGKILL or abort(), fork a child that
//                                                        calls exit(0) (and go on), or go on
//   probe ... --own-pipe                                 open a pipe before the scheduler starts
//                                                        (it takes the numbers make closed)
// Its last stdout line is the metrics' jobserver object as JSON.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "vitte/vitte.hpp"

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void spin_for_us(long us) {
  const std::int64_t until = now_ns() + us * 1000;
  while (now_ns() < until) {
  }
}

void print_jobserver(const vitte::JobserverInfo& j) {
  std::printf("{\"in_use\": %s, \"kind\": \"%s\", \"tokens_held\": %u, \"max_held\": %u, \"tokens_read\": %llu, "
              "\"waits\": %llu}\n",
              j.in_use ? "true" : "false", j.kind.c_str(), j.tokens_held, j.max_held,
              static_cast<unsigned long long>(j.tokens_read), static_cast<unsigned long long>(j.waits));
  std::fflush(stdout);
}

int usage(const char* why) {
  std::fprintf(stderr, "probe: %s\n", why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t workers = 2, tasks = 100;
  long task_us = 1000;
  std::string log, hold;
  bool off = false, own_pipe = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--workers" && has_value) workers = std::strtoul(argv[++i], nullptr, 10);
    else if (a == "--tasks" && has_value) tasks = std::strtoul(argv[++i], nullptr, 10);
    else if (a == "--task-us" && has_value) task_us = std::strtol(argv[++i], nullptr, 10);
    else if (a == "--log" && has_value) log = argv[++i];
    else if (a == "--hold" && has_value) hold = argv[++i];
    else if (a == "--off") off = true;
    else if (a == "--own-pipe") own_pipe = true;
    else return usage(("unknown argument '" + a + "'").c_str());
  }
  int program_pipe[2] = {-1, -1};
  if (own_pipe && ::pipe(program_pipe) != 0) return usage("pipe() failed");
  vitte::Options o;
  o.workers = workers;
  if (off) o.jobserver = vitte::JobserverMode::Off;
  vitte::Scheduler sched(std::move(o));

  if (!hold.empty()) {
    std::atomic<bool> stop{false};
    for (std::size_t w = 0; w < workers; ++w)
      sched.submit(vitte::Task([&stop] {
        while (!stop.load(std::memory_order_relaxed)) spin_for_us(100);
      }));
    while (sched.metrics().jobserver.tokens_held < workers) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::printf("holding %zu\n", workers);
    std::fflush(stdout);
    if (hold == "exit") std::exit(3);
    if (hold == "term") std::raise(SIGTERM);
    if (hold == "kill") std::raise(SIGKILL);
    if (hold == "abort") std::abort();
    if (hold == "forkexit") {
      const pid_t child = fork();
      if (child == 0) std::exit(0);  // the parent's tokens are not the child's to give back
      int status = 0;
      waitpid(child, &status, 0);
    }
    stop.store(true, std::memory_order_relaxed);
    sched.join_all();
    print_jobserver(sched.metrics().jobserver);
    return 0;
  }

  vitte::per_worker<std::vector<std::pair<std::int64_t, std::int64_t>>> spans(sched);
  vitte::parallel_for(sched, 0, tasks, 1, [&](std::size_t) {
    const std::int64_t start = now_ns();
    spin_for_us(task_us);
    spans.local().emplace_back(start, now_ns());
  });
  std::size_t recorded = 0;
  if (!log.empty()) {
    std::ofstream out(log);
    spans.for_each([&](auto& v) {
      for (auto [s, e] : v) out << s << " " << e << "\n";
      recorded += v.size();
    });
    if (!out) return usage(("cannot write '" + log + "'").c_str());
    if (recorded != tasks) return usage("a task was not recorded");
  }
  print_jobserver(sched.metrics().jobserver);
  return 0;
}

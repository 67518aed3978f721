// Taking part in a GNU make jobserver: a compiler started by `make -jN` (or ninja, or
// anything else that hands out make's tokens) shares the N job slots with the other jobs
// instead of starting a worker per core beside each of them.
//
// A scheduler that finds a jobserver in MAKEFLAGS (`--jobserver-auth=R,W`, make 4.3 and
// earlier; `--jobserver-auth=fifo:PATH`, make 4.4) runs at most as many workers at once as
// it holds tokens: the process's own job slot (make's implicit token) and one token read
// from the jobserver for every further worker. A worker takes a token before it runs tasks
// and gives it back when it parks, never per task; a worker without a token sleeps. Every
// token goes back when the scheduler shuts down, when a task's exception ends the program,
// on exit(), and on SIGINT, SIGTERM and SIGHUP unless the program handles them itself.
// SIGKILL leaks the tokens the process held: make 4.3 cannot tell, finishes the build with
// fewer jobs and says "INTERNAL: Exiting with N jobserver tokens available; should be M!".
//
// A task that blocks its thread outside vitte's waits (a mutex, a std::future, a sleep)
// keeps its worker's token: with few tokens, a task that waits for another task that way
// can wait forever. vitte's own waits (TaskGroup::wait, future::get on a worker, co_await)
// run other tasks or park, which gives the token back.
#pragma once

#include <cstdint>
#include <string>

namespace vitte {

// Options::jobserver, or the config's [workers] jobserver = "auto" | "off" | "on".
enum class JobserverMode {
  Auto,  // take part when MAKEFLAGS names a jobserver; one that cannot be used is said on
         // stderr (and in JobserverInfo::note), and the plan's workers run without it
  Off,   // ignore MAKEFLAGS
  On,    // take part or fail: no usable jobserver is a PlanError naming the reason
};

// MetricsSnapshot::jobserver, and `vitte-sched topo`.
struct JobserverInfo {
  bool in_use = false;
  std::string kind;             // "pipe" or "fifo" while in use
  std::string option;           // as found in MAKEFLAGS ("--jobserver-auth=3,4")
  std::uint32_t tokens_held = 0;  // now, the process's own token included
  std::uint32_t max_held = 0;     // the most held at once since the scheduler started
  std::uint64_t tokens_read = 0;  // tokens taken from the jobserver (each later given back)
  std::uint64_t waits = 0;        // times a worker had to wait for a token
  std::string note;             // why none is in use, or what fell back
};

}  // namespace vitte

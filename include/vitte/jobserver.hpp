// Taking part in a GNU make jobserver: a compiler started by `make -jN` (or ninja, or
// anything else that hands out make's tokens) shares the N job slots with the other jobs
// instead of starting a worker per core beside each of them.
//
// A scheduler that finds a jobserver in MAKEFLAGS (`--jobserver-auth=R,W`, make 4.3 and
// earlier; `--jobserver-auth=fifo:PATH`, make 4.4) runs at most as many workers at once as
// it holds tokens: the process's own job slot (make's implicit token) and one token read
// from the jobserver for every further worker. A worker takes a token before it runs tasks
// and gives it back when it parks, never per task; a worker without a token sleeps. The
// process's own slot is lent to the workers: a thread that is not a worker (main, say)
// should only submit and wait while they run, or the process runs one over its share.
// Every token goes back when the scheduler shuts down, on exit() and quick_exit(), and on
// the signals whose default action ends the process (SIGINT, SIGTERM, SIGHUP, SIGQUIT,
// SIGPIPE, SIGABRT of abort() and of an uncaught exception, SIGSEGV, SIGBUS, SIGFPE, SIGILL,
// SIGXCPU, SIGXFSZ) unless the program has its own handler for one when the first
// scheduler starts. A fork's child gives back none of the parent's. SIGKILL, _exit() and a
// program's own handler that calls _exit() leak the tokens the process held: make 4.3
// cannot tell, finishes the build with fewer jobs and says "INTERNAL: Exiting with N
// jobserver tokens available; should be M!". For the R,W form the two descriptors must
// have been open, as one pipe, when the program started (make 4.3 closes them for a recipe
// without +, and a program's own pipe may take those numbers): otherwise they are refused.
// Bursty work (a few tasks at a time from outside) parks and wakes workers, and each wake
// reads a token: about 1,000-2,000 reads a second in a review's worst case, harmless to make.
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

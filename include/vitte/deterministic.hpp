// Deterministic mode: reproducible multi-worker schedules for tests.
//
//   vitte::Options o;
//   o.workers = 8;                                    // any number, on any machine
//   o.topology = vitte::Topology::from_xml("topology/96em64t-4n4d3ca2co-pci.xml");
//   o.deterministic = vitte::DeterministicOptions{.seed = 42};
//   vitte::Scheduler sched(o);                        // or VITTE_DETERMINISTIC=42, or the
//   ...                                               // config's [deterministic] seed = 42
//   std::cout << sched.schedule().hash;               // the same for every run of seed 42
//
// The same program with the same seed runs the same sequence of turns, tasks and steals on
// every run and every machine. The workers are real threads (so thread_local data and
// std::this_thread::get_id() behave as in real runs), but exactly one of them, or the
// thread that made the scheduler (the driver), runs at any moment: at every task boundary,
// every spawn and every wait a seeded chooser picks who goes next. Everything a real run decides by
// timing is drawn from the seed: which worker steps next, which victim it steals from, when
// an idle worker looks again, when a waiting thread resumes. Tasks run only while the driver
// waits (join_all, TaskGroup::wait, Future::get, sync_wait, Graph runs, the destructor).
//
// Time is virtual: Scheduler::now() starts at 1 s and advances by `task_cost` per task run,
// and jumps to the next timer when every worker is idle, so a one-hour sleep_for takes no
// real time; timers, sleep_for, deadlines, aging and fair shares all use it. Absolute time
// points passed to at()/sleep_until() must come from Scheduler::now(), not from
// std::chrono::steady_clock.
//
// What cannot be made deterministic is reported, not silently made flaky: a submission or
// timer armed from a thread that is neither the driver nor a worker (counted in
// ScheduleInfo::foreign_inputs, and named once on stderr); a turn held for long in real time
// (a task blocked on a mutex, a condition variable, I/O, or a driver spinning without
// waiting: named on stderr after `stall_report`); a wait that can never finish (every
// worker idle and no timer pending: the driver's wait throws vitte::Deadlock, naming the
// seed and the turn); a wait on the run's work from a thread outside it (UsageError).
// Settings that would not apply are refused with UsageError: pinning, event counters,
// node-local malloc routing, bounded backlogs that block, oneTBB arenas.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "vitte/error.hpp"

namespace vitte {

class Scheduler;
struct Options;

// How the seeded chooser picks who runs next.
enum class Strategy : unsigned char {
  // Uniformly among those that can run, at every turn.
  Random,
  // Probabilistic concurrency testing (Burckhardt et al., ASPLOS 2010): each participant gets
  // a random priority, the highest that can run goes on running, and at `pct_depth - 1`
  // random turns among the first `pct_turns` the one running drops to the lowest priority.
  // Finds bugs that need a few precise preemptions far more often than Random does.
  Pct,
};
const char* to_string(Strategy s) noexcept;
// "random" or "pct"; nullopt for anything else.
std::optional<Strategy> parse_strategy(const std::string& s) noexcept;

struct DeterministicOptions {
  std::uint64_t seed = 0;
  Strategy strategy = Strategy::Random;
  unsigned pct_depth = 3;          // PCT: d (d - 1 priority changes), 1 to 64
  std::uint64_t pct_turns = 2000;  // PCT: the change points are drawn from turns 1..pct_turns
  // A spawn (TaskGroup::run, vitte::spawn, a coroutine's fork, a graph's successor) is a turn
  // too: another worker may steal and run the new task before its parent goes on, as a thief
  // can in real runs. Off: turns only at task boundaries and waits. A task that holds a lock
  // while it spawns can then block the run (another task waits for the lock while the
  // holder waits for its turn): the stall report names it; turn this off for such code.
  bool spawn_turns = true;
  // Virtual time charged per task run (and to its group's fair share); at least 1 ns.
  std::chrono::nanoseconds task_cost = std::chrono::microseconds(1);
  // Turns one wait of the driver may last before the run is declared stuck (a livelock: a
  // periodic timer that never lets the wait finish, say): that wait throws Deadlock. 0: no
  // limit.
  std::uint64_t max_turns = 0;
  // Writes the schedule log (one line per choice) to this file; "": none.
  std::string record{};
  // Replays a schedule log written by `record`: each choice is taken from it while it still
  // fits the run (the chosen participant can run, and as many can as then); where it stops
  // fitting (the code changed), ScheduleInfo::divergence says where and why, stderr says it
  // once, and the seed's own choices take over.
  std::string replay{};
  // Real time a single turn may take before stderr says who holds it; 0: never.
  std::chrono::milliseconds stall_report{10000};
};

// What a deterministic run did so far (Scheduler::schedule()).
struct ScheduleInfo {
  bool deterministic = false;  // false: a real scheduler; the rest is empty
  std::uint64_t seed = 0;
  Strategy strategy = Strategy::Random;
  std::uint64_t turns = 0;      // choices made
  std::uint64_t tasks = 0;      // tasks run
  std::uint64_t steals = 0;     // tasks taken from another worker or another node's queue
  // A hash of every choice and, per turn, of the worker's tasks run and steals by level:
  // equal hashes mean the same schedule.
  std::uint64_t hash = 0;
  std::int64_t virtual_ns = 0;  // time on the virtual clock since the scheduler started
  std::uint64_t foreign_inputs = 0;  // submissions and timers from threads outside the run
  std::string divergence;       // replay: where the log stopped fitting; "": it fits
  // "VITTE_DETERMINISTIC=<seed>:<strategy>" (with the PCT parameters when not the default),
  // then what the variable cannot say: "with N workers" and spawn_turns or task_cost when
  // not the defaults. The topology is the program's own choice, as are the workers.
  std::string reproduce;
};

// Runs `body` on a fresh deterministic scheduler for each seed, with `strategy`, until one
// run fails (body or the scheduler's shutdown throws) or the seeds or the time budget run
// out. A failure is printed on stderr with the seed and the line that reproduces it.
struct ExploreOptions {
  std::uint64_t first_seed = 1;
  std::uint64_t seeds = 100;                   // at most this many runs
  std::chrono::milliseconds budget{0};         // and at most this long; 0: no limit
  Strategy strategy = Strategy::Pct;
  std::size_t workers = 4;                     // 0: the base options' (or the topology's)
  // Every other setting (topology, policy, config...); its `deterministic` field, if set,
  // gives the PCT parameters and the task cost (seed and strategy come from here). Unset,
  // PCT draws its change points from as many turns as the previous run took (the first run:
  // pct_turns' default), so that they fall inside the run; the failure line names the value.
  // Unset, one driver wait may also last at most 10 million turns (max_turns), so that a
  // schedule that livelocks fails its seed instead of hanging the exploration.
  std::function<void(Options&)> configure{};
  bool quiet = false;                          // no stderr line on failure
};

struct ExploreResult {
  bool failed = false;
  std::uint64_t runs = 0;
  std::uint64_t seed = 0;       // the failing seed
  DeterministicOptions options; // the failing run's (seed, strategy, PCT parameters): replay with these
  std::string error;            // what the failing run threw
  ScheduleInfo schedule;        // of the failing run (or the last run)
  std::uint64_t distinct_schedules = 0;  // distinct schedule hashes over the runs
};

ExploreResult explore(const ExploreOptions& opts, const std::function<void(Scheduler&)>& body);

}  // namespace vitte

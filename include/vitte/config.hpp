// Config: worker placement from a TOML file, for HPC engineers who pin the runtime without
// touching code.
//
//   [workers]
//   nodes     = [0, 1]       # NUMA nodes to use (logical ids); default: every node with CPUs
//   per_node  = 4            # workers on each chosen node      } at most one of the two;
//   total     = 8            # workers in all, spread by cores  } default: see `unit`
//   unit      = "core"       # default count: one per "core", or one per "pu" (SMT siblings)
//   cpuset    = "0-7,16-23"  # Linux CPUs workers may use (hwloc list syntax)
//   reserve   = "0"          # Linux CPUs to leave free (the OS, I/O threads)
//   placement = "auto"       # auto | pin | unpinned
//   stack_size = "16M"       # each worker's stack (bytes, or K/M/G); default: ulimit -s
//   jobserver = "auto"       # GNU make's jobserver (jobserver.hpp): auto | off | on
//
//   [scheduling]
//   steal_scope = "cross-node"   # or "node": never steal from another node
//   policy      = "fifo"         # the arena's level: fifo | lifo | priority | fair (policy.hpp)
//   aging       = "20ms"         # Priority levels: a task waiting longer counts as High
//                                # (a whole number of ns, us, ms or s; at most 1 hour)
//   max_backlog = 100000         # external tasks queued per node before producers wait
//   on_backlog_full = "block"    # block | fail (BacklogFull); needs max_backlog
//
//   [[groups]]                   # a level of the scheduling tree (policy.hpp), any number
//   name   = "tenant-a"          # required, unique, 1 to 64 characters, no control characters;
//                                # Scheduler::group("tenant-a") finds it
//   parent = "batch"             # another [[groups]] name, declared before or after; no
//                                # cycles; default: the arena
//   weight = 2                   # share under a "fair" parent (> 0, at most 1e6; default 1);
//                                # given under a parent of another policy it is an error (the
//                                # arena's policy is known here when this file sets it)
//   policy = "fifo"              # how it orders its own tasks and child groups (as above)
//   counters = false             # sum the event counters over its tasks (needs [metrics])
//
//   [metrics]                    # what the metrics module measures (docs/metrics.md)
//   counters = true              # per-worker event counters (PAPI; software events where the
//                                # hardware has none); default false
//   events = ["PAPI_TOT_INS", "perf::CONTEXT-SWITCHES"]   # which; default: the default set
//                                # (giving events turns counters on)
//   sample_interval = "10ms"     # sample each node's queue depth this often; default: never
//
//   [deterministic]              # deterministic mode (deterministic.hpp); seed is required
//   seed = 42                    # the schedule's seed, 0 to 2^63-1 (TOML integers are signed)
//   strategy = "pct"             # random | pct; default random
//   pct_depth = 3                # PCT: d (d - 1 priority changes), 1 to 64
//   pct_turns = 2000             # PCT: change points are drawn from the first this many turns
//   task_cost = "1us"            # virtual time per task
//   max_turns = 0                # one driver wait longer than this many turns is stuck (0: none)
//   spawn_turns = true           # a spawn is a turn (another worker may steal the new task)
//   record = "schedule.log"      # write the choices; replay = "schedule.log" replays them
//
//   [memory]
//   allocator = "auto"           # workers' malloc/new: "node-local" (their node's jemalloc
//                                # arena), "system", or "auto": node-local when workers are
//                                # pinned on a multi-node machine and jemalloc is the malloc
//
// Every key is optional. Unknown keys, wrong types and bad values are ConfigErrors naming
// the file, line, key and value; whether the result fits the machine (nodes that exist,
// CPUs the process may use) is checked by Plan::make, before any thread starts. A program
// picks a config up without code changes through the VITTE_CONFIG environment variable.
#pragma once

#include <cstddef>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vitte/deterministic.hpp"
#include "vitte/plan.hpp"

namespace vitte {

struct Config {
  PlanOptions plan;              // what the [workers] and [scheduling] tables ask for
  bool sets_worker_count = false;  // per_node or total given
  bool sets_placement = false;
  std::string policy = "fifo";          // [scheduling] policy
  bool sets_policy = false;
  std::chrono::nanoseconds aging{0};    // [scheduling] aging (0: not set)
  // One [[groups]] table, checked: the name is unique and not empty, the parent is declared
  // (in any order, no cycles), the weight is positive and set only under a "fair" parent
  // (under the arena, only checked when this file sets [scheduling] policy).
  struct GroupDecl {
    std::string name;
    std::string parent;                 // "": the arena
    double weight = 1.0;
    bool sets_weight = false;           // weight given in the file
    std::string policy = "fifo";
    bool counters = false;              // read the event counters around its tasks
    unsigned line = 0;                  // of its [[groups]] header
  };
  std::vector<GroupDecl> groups;        // parents before children
  std::string allocator = "auto";
  std::size_t stack_size = 0;           // [workers] stack_size in bytes (0: not set)
  std::string jobserver;                // [workers] jobserver: "auto" | "off" | "on" ("": not set)
  std::size_t max_backlog = 0;          // [scheduling] max_backlog (0: not set, unbounded)
  std::string on_backlog_full;          // [scheduling] "block" | "fail" ("": not set)
  std::optional<bool> counters;         // [metrics] counters (true when events are given)
  std::optional<std::vector<std::string>> events;  // [metrics] events
  std::chrono::nanoseconds sample_interval{0};     // [metrics] sample_interval (0: not set)
  std::optional<DeterministicOptions> deterministic;  // [deterministic] (deterministic.hpp)
  std::string source = "<string>";  // the file it came from
  std::map<std::string, unsigned> lines;  // key ("workers.nodes") -> the line that sets it

  // A config file must be a regular file of at most kMaxBytes; a directory, FIFO, device
  // or larger file is a ConfigError naming the path and what it is.
  static constexpr std::size_t kMaxBytes = std::size_t{1} << 20;
  static Config from_file(const std::string& path);
  static Config parse(std::string_view text, const std::string& source = "<string>");
  // The config VITTE_CONFIG names, or nothing when the variable is unset or empty.
  static std::optional<Config> from_environment();

  // Combines this config with what code asked for (Scheduler(n), Options::placement).
  // Precedence: neither wins silently. A setting made in one place only is taken from
  // there; made in both places it must agree: the same total (`Scheduler(2)` with
  // `total = 2`) or the same placement is fine, different values are a ConfigError, and a
  // count in code with `per_node` in the config is always one (they count differently).
  PlanOptions merged_with(std::size_t code_workers, Placement code_placement) const;

  // Plan::make(topo, merged) where `merged` came from merged_with(): a PlanError about a key
  // this config sets (nodes, cpuset, ...) is rethrown naming the config file and the line of
  // that key, as parse errors do.
  Plan make_plan(const Topology& topo, const PlanOptions& merged) const;
};

}  // namespace vitte

// The subcommands of vitte-sched. Each returns the process exit status.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>

#include "vitte/config.hpp"
#include "vitte/plan.hpp"
#include "vitte/scheduler.hpp"
#include "vitte/topology.hpp"

namespace vitte::cli {

// The exit statuses of vitte-sched, documented in README.md ("Exit status") and in the
// --help footer. A usage error is anything about the inputs the user gave: the command
// line, the config, a --topology/--synthetic machine, a plan that cannot be built from
// them, a --dir that is not a directory. A runtime failure is the rest: this machine's
// topology cannot be discovered, the output cannot be written, the tree changed between
// runs, an unexpected error.
enum ExitStatus : int {
  kExitOk = 0,
  kExitUsage = 2,
  kExitRuntime = 3,
  kExitMismatch = 4,  // the N-worker and 1-worker runs of the main job disagree
};
inline constexpr const char* kExitStatusHelp =
    "Exit status: 0 ok; 2 usage error (bad arguments, config, --topology/--synthetic, a plan that cannot be "
    "built from them, a --dot graph too big to draw, two outputs into one file, an option refused across MPI ranks); 3 runtime failure (this machine cannot be discovered, the "
    "output, the --dot, --trace or a --metrics-* file cannot be written, the tree changed between runs, MPI ranks that see different trees, an unexpected error); 4 the N-worker and 1-worker runs disagree. With --json, "
    "stdout holds one JSON document, the result or {\"schema\", \"error\": {\"message\", \"exit_code\"}}.";

// An error a command reports with a given exit status; main() prints it (as JSON with
// --json) and exits with it.
class Failure : public std::runtime_error {
 public:
  Failure(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

// Where the topology comes from, shared by every subcommand.
struct TopologyArgs {
  std::string config;     // --config FILE (default: $VITTE_CONFIG)
  std::string xml;        // --topology FILE
  std::string synthetic;  // --synthetic DESC
  std::size_t workers = 0;
  std::string placement = "auto";
};

struct TopoArgs {
  TopologyArgs topo;
  bool json = false;
};

// What the scheduler measures beyond its always-on counts (MetricsOptions).
struct MetricsArgs {
  bool counters = false;  // --counters: event counters, the default set
  std::string events;     // --events LIST: these events (comma-separated); turns counting on
};

struct RunArgs {
  TopologyArgs topo;
  MetricsArgs metrics;
  std::string dir = "/usr/include";
  bool json = false;
  bool skip_baseline = false;
  std::string dot;      // --dot FILE: write the pass graph (a small --dir only)
  bool passes = false;  // --passes: per-pass time totals
  std::string metrics_json;  // --metrics-json FILE ("-": stdout): the measured run's snapshot
  std::string metrics_prom;  // --metrics-prom FILE ("-": stdout): the same, Prometheus text
  bool live = false;         // --live: the live view (live_view.hpp) during the runs
  std::string trace;         // --trace FILE: a trace of the measured run (trace.hpp)
};

// vitte-sched top: the main job over and over, under the live view.
struct TopArgs {
  TopologyArgs topo;
  MetricsArgs metrics;
  std::string dir = "/usr/include";
  unsigned seconds = 10;  // how long to keep running the job
};

// --dot refuses pass graphs of more tasks than this (4 per file, plus one): a drawing of
// more is not readable.
inline constexpr std::size_t kMaxDotTasks = 2000;

int topo_command(const TopoArgs& args);
int run_command(const RunArgs& args);
int top_command(const TopArgs& args);

// Helpers shared by the commands.
Topology load_topology(const TopologyArgs& a);
Placement parse_placement(const std::string& s);
// The config to use (--config, else VITTE_CONFIG).
std::optional<Config> load_config(const TopologyArgs& a);
// The scheduler's metrics options from --counters/--events; `live`: also sample the queue
// depths (unless the config sets its own interval). Throws Failure for a bad --events list.
MetricsOptions metrics_options(const MetricsArgs& a, const std::optional<Config>& config, bool live);
// Whether `file` names the same file as this process's standard output (/dev/stdout, a
// path the shell redirected stdout to, ...).
bool is_stdout(const std::string& file);
// A scheduler on `t` for the commands' jobs.
Scheduler make_scheduler(const Topology& t, const std::optional<Config>& config, std::size_t workers,
                         Placement placement, MetricsOptions metrics = {});
// Writes `text` to `file` (replacing it); a file that cannot be written is a Failure with
// kExitRuntime naming `what` and the file.
void write_output(const std::string& file, const std::string& text, const std::string& what);

}  // namespace vitte::cli

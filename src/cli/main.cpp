// vitte-sched: inspect the machine and the worker plan, run the main job, watch it live.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "cli/commands.hpp"
#include "cli/dist_job.hpp"
#include "cli/report.hpp"
#include "vitte/error.hpp"

namespace {

void add_topology_options(CLI::App* cmd, vitte::cli::TopologyArgs& a) {
  auto* xml = cmd->add_option("--topology", a.xml, "hwloc XML file describing the machine (default: this machine)");
  auto* syn = cmd->add_option("--synthetic", a.synthetic, "hwloc synthetic description, e.g. 'pack:2 numa:2 core:4 pu:2'");
  xml->excludes(syn);
  cmd->add_option("--config", a.config, "placement config (TOML); default: the file VITTE_CONFIG names");
  cmd->add_option("--workers", a.workers, "number of workers (default: one per core)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 16));
  cmd->add_option("--placement", a.placement, "auto | pin | unpinned (default auto)")
      ->check(CLI::IsMember({"auto", "pin", "unpinned"}));
}

void add_metrics_options(CLI::App* cmd, vitte::cli::MetricsArgs& a) {
  cmd->add_flag("--counters", a.counters,
                "count hardware/software events per worker (PAPI or perf_event; the default set of events)");
  cmd->add_option("--events", a.events,
                  "count these events (comma-separated, e.g. PAPI_TOT_INS,perf::CONTEXT-SWITCHES); implies --counters");
}

// Whether the command line asks for JSON; looked up before parsing so that parse errors
// are JSON too.
bool wants_json(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) return false;
    if (std::strcmp(argv[i], "--json") == 0) return true;
  }
  return false;
}

// Reports an error: a JSON document on stdout with --json, a line on stderr otherwise.
// Under mpirun with several ranks, stdout is rank 0's: the others write a line naming
// their rank on stderr.
int fail(bool json, int status, const std::string& message) {
  if (const vitte::cli::Launch l = vitte::cli::launch_info(); l.secondary())
    std::fprintf(stderr, "vitte-sched: rank %d: error: %s\n", l.rank, message.c_str());
  else if (json)
    std::cout << vitte::cli::error_json(message, status).dump(2) << "\n";
  else
    std::fprintf(stderr, "vitte-sched: error: %s\n", message.c_str());
  return status;
}

// Flushes and closes stdout and checks that everything written reached it (a full disk, a
// closed pipe with SIGPIPE ignored, a closed descriptor): a result that was not delivered
// is a failure.
int finish_output(int status) {
  errno = 0;
  std::cout.flush();
  const bool stream_ok = !std::cout.fail();
  const bool flushed = std::fflush(stdout) == 0 && !std::ferror(stdout);
  const int flush_errno = errno;
  const bool closed = std::fclose(stdout) == 0;
  if (stream_ok && flushed && closed) return status;
  const int e = flush_errno != 0 ? flush_errno : errno;
  std::fprintf(stderr, "vitte-sched: error: cannot write the output to stdout%s%s\n", e != 0 ? ": " : "",
               e != 0 ? std::strerror(e) : "");
  return status == vitte::cli::kExitOk ? vitte::cli::kExitRuntime : status;
}

int run(int argc, char** argv) {
  using namespace vitte::cli;
  const bool json = wants_json(argc, argv);
  CLI::App app{"vitte-sched: NUMA-aware work-stealing scheduler: topology, plans, the main job and its live view"};
  app.require_subcommand(1);
  app.footer(kExitStatusHelp);

  TopoArgs topo;
  CLI::App* topo_cmd = app.add_subcommand("topo", "show the machine as seen and the worker plan with steal orders");
  add_topology_options(topo_cmd, topo.topo);
  topo_cmd->add_flag("--json", topo.json, "print JSON");
  topo_cmd->footer(kExitStatusHelp);

  RunArgs run;
  CLI::App* run_cmd = app.add_subcommand(
      "run", "the main job: a pass pipeline (read, lex, collect, link, analyse) over every file of a source tree. "
             "Under `mpirun -np N` (N > 1) read, lex and collect run across the ranks, link and analyse on rank 0, "
             "which reports per rank; --dot, --trace, --passes, --live and deterministic mode are then refused");
  add_topology_options(run_cmd, run.topo);
  run_cmd->add_option("--dir", run.dir, "source tree to process (default /usr/include)");
  run_cmd->add_flag("--json", run.json, "print JSON");
  run_cmd->add_flag("--no-baseline", run.skip_baseline, "skip the 1-worker baseline run (no speedup figure)");
  run_cmd->add_option("--dot", run.dot,
                      "write the pass graph (Graphviz DOT, each task with its timings) to FILE; a small --dir only "
                      "(at most " + std::to_string(vitte::cli::kMaxDotTasks) + " tasks, 4 per file + 1); not across MPI ranks");
  run_cmd->add_flag("--passes", run.passes, "print per-pass time totals (read, lex, collect, link, analyse); not across MPI ranks");
  add_metrics_options(run_cmd, run.metrics);
  run_cmd->add_option("--metrics-json", run.metrics_json,
                      "write the measured run's metrics snapshot as JSON to FILE ('-': standard output, after the report)");
  run_cmd->add_option("--metrics-prom", run.metrics_prom,
                      "write the measured run's metrics in the Prometheus text format to FILE ('-': standard output)");
  run_cmd->add_flag("--live", run.live, "show the live view (as top does) during the warm-up and the measured run; not across MPI ranks");
  run_cmd->add_option("--trace", run.trace,
                      "write a trace of the measured run (Chrome/Perfetto trace-event JSON: ui.perfetto.dev) to FILE; not across MPI ranks");
  run_cmd->footer(kExitStatusHelp);

  TopArgs top;
  CLI::App* top_cmd = app.add_subcommand(
      "top", "run the main job over and over, showing per node and worker what the scheduler does, once a second");
  add_topology_options(top_cmd, top.topo);
  top_cmd->add_option("--dir", top.dir, "source tree to process (default /usr/include)");
  top_cmd->add_option("--seconds", top.seconds, "how long to keep running the job (default 10)")
      ->check(CLI::Range(1u, 86400u));
  add_metrics_options(top_cmd, top.metrics);
  top_cmd->footer(kExitStatusHelp);

  if (argc > 1 && argv[1][0] != '-' && std::string(argv[1]) != "topo" && std::string(argv[1]) != "run" &&
      std::string(argv[1]) != "top")
    return fail(json, kExitUsage,
                "unknown command '" + std::string(argv[1]) + "' (expected 'topo', 'run' or 'top'; see --help)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version end here too, with CLI11's status 0; every other parse error
    // (CLI11 numbers them 101-127) is a usage error.
    if (e.get_exit_code() == 0) return app.exit(e);
    if (json) return fail(true, kExitUsage, e.what());
    app.exit(e);
    return kExitUsage;
  }
  for (CLI::App* cmd : {topo_cmd, run_cmd, top_cmd})
    if (*cmd && cmd->count("--synthetic") > 0 &&
        (cmd == topo_cmd ? topo.topo.synthetic : cmd == run_cmd ? run.topo.synthetic : top.topo.synthetic).empty())
      return fail(json, kExitUsage, "--synthetic needs a description, e.g. 'pack:2 numa:2 core:4 pu:2'");
  if (*run_cmd && run_cmd->count("--dot") > 0 && run.dot.empty())
    return fail(json, kExitUsage, "--dot needs a file name");
  for (const char* flag : {"--metrics-json", "--metrics-prom"})
    if (*run_cmd && run_cmd->count(flag) > 0 && (flag[10] == 'j' ? run.metrics_json : run.metrics_prom).empty())
      return fail(json, kExitUsage, std::string(flag) + " needs a file name ('-' for standard output)");
  for (CLI::App* cmd : {run_cmd, top_cmd})
    if (*cmd && cmd->count("--events") > 0 && (cmd == run_cmd ? run.metrics : top.metrics).events.empty())
      return fail(json, kExitUsage, "--events needs a list of events, e.g. PAPI_TOT_INS,PAPI_L1_DCM");
  if (*run_cmd && run_cmd->count("--trace") > 0 && run.trace.empty())
    return fail(json, kExitUsage, "--trace needs a file name");
  try {
    if (*topo_cmd) return topo_command(topo);
    if (*run_cmd) return run_command(run);
    if (*top_cmd) return top_command(top);
  } catch (const RanksFailure&) {
    // Rank 0 reports it, and its status is mpirun's. Exiting 0 here lets it: mpirun aborts
    // the whole job as soon as one rank exits non-zero, maybe before rank 0 has printed.
    return kExitOk;
  } catch (const Failure& e) {
    return fail(json, e.status(), e.what());
  } catch (const vitte::ConfigError& e) {
    return fail(json, kExitUsage, e.what());
  } catch (const vitte::PlanError& e) {
    return fail(json, kExitUsage, e.what());
  } catch (const vitte::UsageError& e) {
    return fail(json, kExitUsage, e.what());
  } catch (const vitte::TopologyError& e) {
    return fail(json, kExitUsage, e.what());  // from --topology/--synthetic; see load_topology
  } catch (const std::exception& e) {
    return fail(json, kExitRuntime, std::string("unexpected error: ") + e.what());
  }
  return fail(json, kExitUsage, "no command given (expected 'topo', 'run' or 'top'; see --help)");
}

}  // namespace

int main(int argc, char** argv) { return finish_output(run(argc, argv)); }

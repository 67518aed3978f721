// vitte-sched: inspect the machine and the worker plan, and run the main job.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "cli/commands.hpp"
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vitte-sched: NUMA-aware work-stealing scheduler: topology, plans and the main job"};
  app.require_subcommand(1);

  vitte::cli::TopoArgs topo;
  CLI::App* topo_cmd = app.add_subcommand("topo", "show the machine as seen and the worker plan with steal orders");
  add_topology_options(topo_cmd, topo.topo);
  topo_cmd->add_flag("--json", topo.json, "print JSON");

  vitte::cli::RunArgs run;
  CLI::App* run_cmd = app.add_subcommand(
      "run", "the main job: tokenize every file of a source tree and analyse its include graph in parallel");
  add_topology_options(run_cmd, run.topo);
  run_cmd->add_option("--dir", run.dir, "source tree to process (default /usr/include)");
  run_cmd->add_flag("--json", run.json, "print JSON");
  run_cmd->add_flag("--no-baseline", run.skip_baseline, "skip the 1-worker baseline run (no speedup figure)");

  if (argc > 1 && argv[1][0] != '-' && std::string(argv[1]) != "topo" && std::string(argv[1]) != "run") {
    std::fprintf(stderr, "vitte-sched: error: unknown command '%s' (expected 'topo' or 'run'; see --help)\n", argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (CLI::App* cmd : {topo_cmd, run_cmd})
    if (*cmd && cmd->count("--synthetic") > 0 &&
        (cmd == topo_cmd ? topo.topo.synthetic : run.topo.synthetic).empty()) {
      std::fprintf(stderr, "vitte-sched: error: --synthetic needs a description, e.g. 'pack:2 numa:2 core:4 pu:2'\n");
      return 2;
    }
  try {
    if (*topo_cmd) return vitte::cli::topo_command(topo);
    if (*run_cmd) return vitte::cli::run_command(run);
  } catch (const vitte::Error& e) {
    std::fprintf(stderr, "vitte-sched: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vitte-sched: unexpected error: %s\n", e.what());
    return 3;
  }
  return 1;
}

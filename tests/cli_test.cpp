// vitte-sched: the main job's workload, and clear errors for bad command lines.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <tuple>
#include <vector>

#include "cli/include_graph.hpp"
#include "cli/report.hpp"
#include "cli/pipeline.hpp"
#include "cli_support.hpp"
#include "test_support.hpp"
#include "vitte/vitte.hpp"

namespace fs = std::filesystem;

using namespace vitte::clitest;

TEST(IncludeGraph, TokenizerSkipsCommentsAndStrings) {
  vitte::cli::SourceFile f;
  vitte::cli::scan_source("#include <x.h>\n// #include <no.h>\nint main() { return \"#include <s>\"[0]; }\n", f);
  ASSERT_EQ(f.includes.size(), 1u);
  EXPECT_EQ(f.includes[0].first, "x.h");
  EXPECT_FALSE(f.includes[0].second);
  EXPECT_EQ(f.tokens, 19u);  // # include < x . h > int main ( ) { return "..." [ 0 ] ; }
}

TEST(IncludeGraph, TransitiveCountsOnASmallTree) {
  const fs::path root = make_tree();
  vitte::Scheduler sched(2);
  vitte::cli::SkipTally skipped;
  auto files = vitte::cli::list_tree(root.string(), skipped);
  ASSERT_EQ(files.size(), 5u);
  vitte::cli::PassPipeline pipeline(root.string(), files);
  const auto r = pipeline.run(sched);
  std::map<std::string, unsigned> reach;
  for (const auto& f : files) reach[f.path] = f.reach;
  EXPECT_EQ(reach["a.h"], 2u);    // b, c
  EXPECT_EQ(reach["b.h"], 1u);    // c
  EXPECT_EQ(reach["c.h"], 0u);
  EXPECT_EQ(reach["d/e.h"], 3u);  // a, b, c
  EXPECT_EQ(reach["f.h"], 0u);
  EXPECT_EQ(r.include_directives, 5u);
  EXPECT_EQ(r.resolved, 4u);
  EXPECT_EQ(r.tasks, 21u);  // 3 per file, link, 1 analyse per file
  EXPECT_EQ(r.analyse_edges, 4u);
  EXPECT_EQ(r.cycle_edges_dropped, 0u);
  fs::remove_all(root);
}

TEST(Cli, RunPrintsJsonWithSpeedupAndLocality) {
  const fs::path root = make_tree();
  const CliRun r = vitte_sched("run --dir " + root.string() + " --workers 2 --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["files"], 5);
  EXPECT_EQ(j["transitive_includes_sum"], 6);
  EXPECT_TRUE(j.contains("speedup_vs_1_worker"));
  EXPECT_TRUE(j["metrics"]["total"].contains("steals_remote"));
  EXPECT_EQ(j["pipeline"]["tasks"], 21);
  EXPECT_EQ(j["pipeline"]["analyse_edges"], 4);
  EXPECT_EQ(j["pipeline"]["include_cycle_edges_dropped"], 0);
  EXPECT_EQ(j["pipeline"]["passes"], nlohmann::json({"read", "lex", "collect", "link", "analyse"}));
  EXPECT_FALSE(j.contains("passes")) << "per-pass times only with --passes";
  fs::remove_all(root);
}

TEST(Cli, RunTraceWritesThePerfettoFileOfTheMeasuredRun) {
  const fs::path root = make_tree();
  const fs::path trace = fs::temp_directory_path() / ("vitte-cli-trace-" + std::to_string(getpid())).append(".json");
  const CliRun r = vitte_sched("run --dir " + root.string() + " --synthetic 'node:2 core:1 pu:1' --trace " +
                               trace.string() + " --json");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["trace"]["file"], trace.string());
  EXPECT_EQ(j["trace"]["dropped_events"], 0);
  const auto t = nlohmann::json::parse(slurp(trace));
  // The measured run only: its tasks, not the warm-up's or the 1-worker baseline's.
  std::size_t task_slices = 0, graph_slices = 0;
  std::set<std::string> threads, passes;
  for (const auto& e : t["traceEvents"]) {
    task_slices += e["ph"] == "X" && e["cat"] == "task";
    graph_slices += e["ph"] == "X" && e["cat"] == "graph";
    if (e["ph"] == "X" && e["cat"] == "graph") passes.insert(e["name"].get<std::string>());
    if (e["ph"] == "M" && e["name"] == "thread_name") threads.insert(e["args"]["name"].get<std::string>());
  }
  EXPECT_EQ(task_slices, j["trace"]["task_slices"]);
  EXPECT_EQ(task_slices, j["metrics"]["total"]["executed"]);
  EXPECT_EQ(graph_slices, j["pipeline"]["tasks"]) << "one slice per task of the pass graph, named by its pass";
  EXPECT_EQ(passes, (std::set<std::string>{"read", "lex", "collect", "link", "analyse"}));
  EXPECT_EQ(threads, (std::set<std::string>{"worker 0", "worker 1"}));
  EXPECT_EQ(t["metadata"]["vitte"]["worker_count"], 2);
  fs::remove(trace);

  const CliRun text = vitte_sched("run --dir " + root.string() + " --workers 2 --no-baseline --trace " + trace.string());
  ASSERT_EQ(text.status, 0) << text.output;
  EXPECT_NE(text.output.find("trace of the measured run written to " + trace.string()), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("0 events dropped"), std::string::npos) << text.output;
  fs::remove(trace);

  // A file that cannot be written: a runtime failure naming it, before anything runs.
  const CliStreams bad = vitte_sched_streams("run --dir " + root.string() + " --trace /nonexistent-dir/t.json");
  EXPECT_EQ(bad.status, 3);
  EXPECT_NE(bad.err.find("cannot write the trace to '/nonexistent-dir/t.json'"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.out, "");
  fs::remove_all(root);
}

TEST(Cli, TopoDryRunOfEveryShippedMachine) {
  for (const std::string& f : vitte::test::shipped_topologies()) {
    const CliRun r = vitte_sched("topo --json --topology " + f);
    ASSERT_EQ(r.status, 0) << f << "\n" << r.output;
    const auto j = nlohmann::json::parse(r.output);
    EXPECT_EQ(j["plan"]["binding"], "unpinned");
    EXPECT_GT(j["plan"]["workers"].size(), 0u);
  }
}

TEST(Cli, ConfigDryRunOfEveryShippedExample) {
  int n = 0;
  for (const auto& [toml, xml] : vitte::test::shipped_configs()) {
    ASSERT_FALSE(xml.empty()) << toml << " names no shipped machine (MACHINE.toml or MACHINE.PURPOSE.toml)";
    const CliRun r = vitte_sched("topo --json --config " + toml + " --topology " + xml);
    ASSERT_EQ(r.status, 0) << toml << "\n" << r.output;
    const auto j = nlohmann::json::parse(r.output);
    EXPECT_EQ(j["config"]["source"], toml);
    EXPECT_GT(j["plan"]["workers"].size(), 0u);
    ++n;
  }
  EXPECT_EQ(n, 6);
}

TEST(Cli, TopoPrintsTheArenaPolicyAgingAndTheGroupTree) {
  const fs::path cfg = fs::temp_directory_path() / "vitte-cli-groups.toml";
  // Children before their parents: both come out parents first (JSON: the config's order).
  std::ofstream(cfg) << R"([[groups]]
name = "tenant-a"
parent = "batch"
weight = 2
[[groups]]
name = "interactive"
weight = 3
policy = "priority"
[[groups]]
name = "ide"
parent = "interactive"
[[groups]]
name = "batch"
weight = 0.5
policy = "fair"
[[groups]]
name = "tenant-b"
parent = "batch"
[scheduling]
policy = "fair"
aging = "1500us"
)";
  const std::string args = "topo --synthetic 'numa:1 core:2 pu:1' --config " + cfg.string();
  const CliRun text = vitte_sched(args);
  ASSERT_EQ(text.status, 0) << text.output;
  EXPECT_NE(text.output.find("config: " + cfg.string() + "; steal scope cross-node; arena policy \"fair\"; aging 1500us; "
                             "allocator \"auto\"\n"),
            std::string::npos) << text.output;
  EXPECT_NE(text.output.find("groups (5, below the arena):\n"
                             "  interactive: weight 3, policy \"priority\"\n"
                             "    ide: weight 1 (default), policy \"fifo\"\n"
                             "  batch: weight 0.5, policy \"fair\"\n"
                             "    tenant-a: weight 2, policy \"fifo\"\n"
                             "    tenant-b: weight 1 (default), policy \"fifo\"\n"
                             "plan: "),
            std::string::npos) << text.output;
  EXPECT_EQ(text.output.find("not applied"), std::string::npos) << text.output;
  const CliRun json = vitte_sched(args + " --json");
  ASSERT_EQ(json.status, 0) << json.output;
  const auto c = nlohmann::json::parse(json.output)["config"];
  EXPECT_EQ(c["policy"], "fair");
  EXPECT_EQ(c["aging_ns"], 1500000);
  const auto group = [](const char* name, const char* parent, double weight, const char* policy) {
    return nlohmann::json{{"name", name}, {"parent", parent}, {"weight", weight}, {"policy", policy}, {"counters", false}};
  };
  EXPECT_EQ(c["groups"], nlohmann::json::array({group("interactive", "", 3, "priority"), group("ide", "interactive", 1, "fifo"),
                                                group("batch", "", 0.5, "fair"), group("tenant-a", "batch", 2, "fifo"),
                                                group("tenant-b", "batch", 1, "fifo")}))
      << c.dump(2);
  // Nothing set: the default policy, said to be one; no aging and no groups.
  std::ofstream(cfg) << "[workers]\ntotal = 1\n";
  const CliRun plain = vitte_sched(args);
  ASSERT_EQ(plain.status, 0) << plain.output;
  EXPECT_NE(plain.output.find("; arena policy \"fifo\" (default); allocator"), std::string::npos) << plain.output;
  EXPECT_EQ(plain.output.find("groups ("), std::string::npos) << plain.output;
  const auto p = nlohmann::json::parse(vitte_sched(args + " --json").output)["config"];
  EXPECT_EQ(p["policy"], "fifo");
  EXPECT_FALSE(p.contains("aging_ns")) << p.dump(2);
  EXPECT_EQ(p["groups"], nlohmann::json::array());
  fs::remove(cfg);
}

TEST(Cli, TheTenantsExampleHasAFairArenaAndNestedGroups) {
  const std::string toml = vitte::test::topology_file("24em64t-2n6c2t-pci.tenants.toml");
  const CliRun r = vitte_sched("topo --config " + toml + " --topology " + vitte::test::topology_file("24em64t-2n6c2t-pci.xml"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("arena policy \"fair\"; aging 20ms;"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\n    team-b: weight 1, policy \"fifo\"\n      nightly: weight 1 (default), policy \"fifo\"\n"),
            std::string::npos) << r.output;
}

TEST(Cli, ABadConfigIsNamedAndExitsNonZero) {
  const fs::path bad = fs::temp_directory_path() / "vitte-bad.toml";
  std::ofstream(bad) << "[workers]\nper_node = \"many\"\n";
  const CliRun r = vitte_sched("topo --config " + bad.string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find(bad.string() + "' line 2: workers.per_node = \"many\""), std::string::npos) << r.output;
  const CliRun env = vitte_sched("topo", "VITTE_CONFIG=" + bad.string());
  EXPECT_EQ(env.status, 2);
  EXPECT_NE(env.output.find("VITTE_CONFIG"), std::string::npos) << env.output;
  fs::remove(bad);
}

TEST(Cli, PlanErrorsFromAConfigNameItsFileAndLine) {
  const fs::path cfg = fs::temp_directory_path() / "vitte-cli-node1.toml";
  std::ofstream(cfg) << "[workers]\nper_node = 1\nnodes = [1]\n";
  const CliRun r = vitte_sched("topo --synthetic 'numa:1 core:2 pu:1' --config " + cfg.string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("config '" + cfg.string() + "' line 3: workers.nodes names node 1"), std::string::npos)
      << r.output;
  fs::remove(cfg);
}

// The dry run refuses what the scheduler refuses, with the scheduler's own message (they run
// the same checks): a stack size out of bounds, a weight under the default "fifo" arena.
TEST(Cli, TopoRefusesWhatTheSchedulerRefuses) {
  const fs::path dir = make_temp_dir("topo-refuses");
  const fs::path cfg = dir / "c.toml";
  const std::string synthetic = "numa:1 core:2 pu:1";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"[workers]\nstack_size = \"1K\"\n", "' line 2: workers.stack_size = 1024 bytes is below the minimum"},
      {"[workers]\nstack_size = \"999999G\"\n",
       "' line 2: workers.stack_size = 1073740750258176 bytes is above the maximum"},
      {"[[groups]]\nname = \"a\"\nweight = 2\n", "' line 1: [[groups]] make_group(\"a\"): weight = 2"},
  };
  for (const auto& [text, error] : cases) {
    std::ofstream(cfg) << text;
    std::string refusal = "(accepted)";
    try {
      vitte::Options o;
      o.topology = vitte::Topology::from_synthetic(synthetic);
      o.config = vitte::Config::from_file(cfg.string());
      vitte::Scheduler s(std::move(o));
    } catch (const vitte::Error& e) {
      refusal = e.what();
    }
    EXPECT_NE(refusal.find("config '" + cfg.string() + error), std::string::npos) << refusal;
    const CliStreams r = vitte_sched_streams("topo --synthetic '" + synthetic + "' --config " + cfg.string());
    EXPECT_EQ(r.status, 2) << text << r.out;
    EXPECT_EQ(r.err, "vitte-sched: error: " + refusal + "\n") << text;
    EXPECT_EQ(r.out, "") << text;
  }
  // Under a fair arena the weight applies: both accept it.
  std::ofstream(cfg) << "[scheduling]\npolicy = \"fair\"\n[[groups]]\nname = \"a\"\nweight = 2\n";
  const CliRun fair = vitte_sched("topo --synthetic '" + synthetic + "' --config " + cfg.string());
  EXPECT_EQ(fair.status, 0) << fair.output;
  fs::remove_all(dir);
}

TEST(Cli, TopoSaysWhenL3GroupsAreInferred) {
  const std::string xml = vitte::test::topology_file("16amd64-4distances.xml");
  const CliRun text = vitte_sched("topo --topology " + xml);
  ASSERT_EQ(text.status, 0) << text.output;
  EXPECT_NE(text.output.find("L3 group(s) (inferred"), std::string::npos) << text.output;
  EXPECT_EQ(text.output.find("same-l3{"), std::string::npos) << text.output;
  const CliRun json = vitte_sched("topo --json --topology " + xml);
  ASSERT_EQ(json.status, 0) << json.output;
  const auto j = nlohmann::json::parse(json.output);
  EXPECT_EQ(j["topology"]["l3_inferred"], true);
  EXPECT_EQ(j["topology"]["nodes"][0]["l3_inferred"], true);
  EXPECT_EQ(j["plan"]["workers"][0]["l3_inferred"], true);
  const CliRun l3 = vitte_sched("topo --json --topology " + vitte::test::topology_file("96em64t-4n4d3ca2co-pci.xml"));
  EXPECT_EQ(nlohmann::json::parse(l3.output)["topology"]["l3_inferred"], false);
}

TEST(Cli, ADirectoryOrDeviceAsConfigOrTopologyIsRefused) {
  const fs::path dir = fs::temp_directory_path() / "vitte-cli-config-dir";
  fs::create_directories(dir);
  const CliRun r = vitte_sched("topo --config " + dir.string());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("'" + dir.string() + "' is a directory"), std::string::npos) << r.output;
  const CliRun env = vitte_sched("topo", "VITTE_CONFIG=" + dir.string());
  EXPECT_EQ(env.status, 2);
  EXPECT_NE(env.output.find("is a directory"), std::string::npos) << env.output;
  EXPECT_NE(env.output.find("VITTE_CONFIG"), std::string::npos) << env.output;
  const CliRun zero = vitte_sched("topo --topology /dev/zero");
  EXPECT_NE(zero.status, 0);
  EXPECT_NE(zero.output.find("'/dev/zero' is a character device"), std::string::npos) << zero.output;
}

TEST(Cli, HugeWorkerCountsAreRefusedAndPlansPrintRanges) {
  const CliRun r = vitte_sched("topo --workers 65536");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("65536 workers asked"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("limit"), std::string::npos) << r.output;
  const CliRun big = vitte_sched("topo --topology " + vitte::test::topology_file("96em64t-4n4d3ca2co-pci.xml"));
  ASSERT_EQ(big.status, 0) << big.output;
  EXPECT_NE(big.output.find("same-node{workers 6-23} -> remote@"), std::string::npos) << big.output;
  EXPECT_LT(big.output.size(), 40000u) << "a 96-worker plan stays readable";
}

// The process's own limits restrict the plan, and the plan says so: run under an affinity
// mask of one CPU.
TEST(Cli, AffinityMaskRestrictsThePlan) {
  if (std::system("command -v taskset >/dev/null 2>&1") != 0) GTEST_SKIP() << "taskset is not installed";
  const CliRun r = vitte_sched("topo --json", "", "taskset -c 0");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["topology"]["pus"], 1);
  EXPECT_NE(j["topology"]["restriction"].get<std::string>().find("affinity mask"), std::string::npos);
  EXPECT_EQ(j["plan"]["workers"].size(), 1u);
  EXPECT_EQ(j["plan"]["workers"][0]["os_cpu"], 0);
  const fs::path cfg = fs::temp_directory_path() / "vitte-cpu1.toml";
  std::ofstream(cfg) << "[workers]\ncpuset = \"1\"\n";
  const CliRun refused = vitte_sched("topo --config " + cfg.string(), "", "taskset -c 0");
  EXPECT_EQ(refused.status, 2);
  EXPECT_NE(refused.output.find("may not use"), std::string::npos) << refused.output;
  fs::remove(cfg);
}

// Random command lines: each ends with a plan or a clear error, never a signal or a hang.
TEST(CliFuzz, RandomArgumentsNeverCrashOrHang) {
  const std::vector<std::string> tokens = {
      "topo", "run", "--workers", "0", "1", "3", "-5", "99999999999", "x", "--json", "--topology",
      VITTE_TOPOLOGY_DIR "/24em64t-2n6c2t-pci.xml", "/nonexistent.xml", "--synthetic", "'pack:2 core:2'",
      "'pack:0'", "''", "--placement", "pin", "auto", "unpinned", "sideways", "--config",
      VITTE_TOPOLOGY_DIR "/16amd64-4distances.toml", "/dev/null", "--dir", "/nonexistent", "--no-baseline",
      "--help", "-h", "--", "=", "--workers=2"};
  std::mt19937 rng(7);
  const int runs = static_cast<int>(vitte::test::scaled(60));
  for (int i = 0; i < runs; ++i) {
    std::string args;
    const int n = 1 + static_cast<int>(rng() % 6);
    for (int k = 0; k < n; ++k) args += tokens[rng() % tokens.size()] + " ";
    if (args.rfind("run", 0) == 0 && args.find("--dir") == std::string::npos) args += "--dir /nonexistent";
    const CliRun r = vitte_sched(args, "", "timeout 20");
    EXPECT_NE(r.status, 124) << "hang: " << args;
    EXPECT_LT(r.status, 128) << "killed by a signal: " << args << "\n" << r.output;
    EXPECT_TRUE(r.status == 0 || !r.output.empty()) << "failed silently: " << args;
  }
}

TEST(Cli, BadArgumentsGetAClearErrorNamingTheCulprit) {
  struct Case {
    std::string args, must_mention;
  };
  const std::vector<Case> cases = {
      {"topo --workers 0", "--workers"},
      {"topo --workers lots", "--workers"},
      {"topo --topology /no/such.xml", "/no/such.xml"},
      {"topo --synthetic 'pack:2 frob:3'", "pack:2 frob:3"},
      {"topo --synthetic ''", "--synthetic"},
      {"topo --placement everywhere", "--placement"},
      {"topo --topology a.xml --synthetic 'pack:2'", "--synthetic"},
      {"run --dir /no/such/dir --workers 1", "/no/such/dir"},
      {"frobnicate", "frobnicate"},
      {"", "subcommand"},
  };
  for (const Case& c : cases) {
    const CliRun r = vitte_sched(c.args);
    EXPECT_NE(r.status, 0) << c.args;
    EXPECT_NE(r.output.find(c.must_mention), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_EQ(r.output.find("Segmentation"), std::string::npos);
  }
}

// Every usage error exits with the same documented status, 2, whoever detects it: CLI11
// (which numbers its own errors 101-127), the config, the topology loader, the planner.
TEST(Cli, UsageErrorsAllExitWithTwo) {
  const fs::path bad = fs::temp_directory_path() / "vitte-usage-bad.toml";
  std::ofstream(bad) << "[workers]\nper_node = \"many\"\n";
  const std::vector<std::string> cases = {
      "topo --workers 0", "topo --workers -1", "topo --workers abc", "topo --workers 99999999999",
      "topo --workers 65537", "run --workers 0 --dir /tmp", "topo --workers 65536 --placement pin",
      "topo --placement everywhere", "topo --synthetic ''", "topo --synthetic 'pack:2 frob:3'",
      "topo --topology /no/such.xml", "topo --topology a.xml --synthetic 'pack:2'", "topo --config " + bad.string(),
      "topo --frobnicate", "run --dir /no/such/dir", "frobnicate", "", "topo extra"};
  for (const std::string& c : cases) {
    const CliRun r = vitte_sched(c);
    EXPECT_EQ(r.status, 2) << c << "\n" << r.output;
    EXPECT_FALSE(r.output.empty()) << c;
  }
  EXPECT_EQ(vitte_sched("topo --help").status, 0);
  EXPECT_EQ(vitte_sched("--help").status, 0);
  fs::remove(bad);
}

TEST(Cli, HelpDocumentsTheExitStatuses) {
  for (const std::string c : {"--help", "topo --help", "run --help"}) {
    const CliRun r = vitte_sched(c);
    EXPECT_NE(r.output.find("Exit status: 0 ok; 2 usage error"), std::string::npos) << c << "\n" << r.output;
    EXPECT_NE(r.output.find("3 runtime failure"), std::string::npos) << c;
  }
}

// With --json, stdout holds exactly one JSON document, the result or the error, and every
// document names its schema.
TEST(Cli, JsonErrorsAreJsonOnStdoutWithTheExitCode) {
  struct Case {
    std::string args, must_mention;
  };
  const std::vector<Case> cases = {{"topo --json --workers 0", "--workers"},
                                   {"topo --workers abc --json", "abc"},
                                   {"topo --json --topology /no/such.xml", "/no/such.xml"},
                                   {"topo --json --synthetic ''", "--synthetic"},
                                   {"run --json --dir /no/such/dir", "/no/such/dir"}};
  for (const Case& c : cases) {
    const CliStreams r = vitte_sched_streams(c.args);
    EXPECT_EQ(r.status, 2) << c.args;
    EXPECT_TRUE(r.err.empty()) << c.args << "\n" << r.err;
    ASSERT_TRUE(nlohmann::json::accept(r.out)) << c.args << "\n" << r.out;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["schema"], "vitte-sched/1") << c.args;
    EXPECT_EQ(j["error"]["exit_code"], 2) << c.args;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(c.must_mention), std::string::npos) << c.args;
  }
}

TEST(Cli, EveryJsonResultNamesItsSchema) {
  const CliStreams topo = vitte_sched_streams("topo --json --synthetic 'pack:2 core:2 pu:1'");
  ASSERT_EQ(topo.status, 0) << topo.err;
  EXPECT_EQ(nlohmann::json::parse(topo.out)["schema"], "vitte-sched/1");
  const fs::path root = make_tree();
  const CliStreams run = vitte_sched_streams("run --json --workers 2 --dir " + root.string());
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(nlohmann::json::parse(run.out)["schema"], "vitte-sched/1");
  fs::remove_all(root);
}

// A result that could not be written is a failure (status 3) with a message on stderr.
TEST(Cli, AFailedWriteOfTheOutputFails) {
  if (fs::exists("/dev/full")) {
    for (const std::string c : {"topo", "topo --json"}) {
      const CliStreams r = vitte_sched_streams(c, ">/dev/full");
      EXPECT_EQ(r.status, 3) << c;
      EXPECT_NE(r.err.find("cannot write the output"), std::string::npos) << c << "\n" << r.err;
    }
  }
  const CliStreams closed = vitte_sched_streams("topo", ">&-");
  EXPECT_EQ(closed.status, 3);
  EXPECT_NE(closed.err.find("cannot write the output"), std::string::npos) << closed.err;
  const CliStreams pipe = vitte_sched_into_closed_pipe({"topo"});
  EXPECT_EQ(pipe.status, 3);
  EXPECT_NE(pipe.err.find("Broken pipe"), std::string::npos) << pipe.err;
}

// What the job cannot read sensibly is skipped and counted by reason, never read whole,
// and the 1-worker/N-worker comparison still runs.
TEST(Cli, RunSkipsAndCountsWhatItCannotRead) {
  const fs::path root = make_tree();
  ASSERT_EQ(mkfifo((root / "fifo").c_str(), 0600), 0);
  {
    std::ofstream(root / "huge.h");
  }
  fs::resize_file(root / "huge.h", 4 * vitte::cli::kMaxSourceBytes);  // sparse: no disk, no time
  fs::create_symlink("a.h", root / "link.h");
  const bool root_user = geteuid() == 0;  // root reads a mode-000 file anyway
  if (!root_user) {
    std::ofstream(root / "secret.h") << "int s;\n";
    fs::permissions(root / "secret.h", fs::perms::none);
  }
  const CliStreams r = vitte_sched_streams("run --json --workers 2 --dir " + root.string());
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["files"], 5);
  EXPECT_EQ(j["transitive_includes_sum"], 6);
  EXPECT_EQ(j["max_file_bytes"], vitte::cli::kMaxSourceBytes);
  EXPECT_EQ(j["skipped"]["not_regular"], 1);
  EXPECT_EQ(j["skipped"]["symlink"], 1);
  EXPECT_EQ(j["skipped"]["too_large"], 1);
  EXPECT_EQ(j["skipped"]["unreadable"], root_user ? 0 : 1);
  EXPECT_EQ(j["skipped"]["total"], root_user ? 3 : 4);
  std::map<std::string, std::string> first;
  for (const auto& e : j["skipped_first"]) first[e["reason"]] = e["file"];
  EXPECT_EQ(first["not_regular"], "fifo");
  EXPECT_EQ(first["too_large"], "huge.h");
  EXPECT_EQ(first["symlink"], "link.h");
  EXPECT_TRUE(j.contains("speedup_vs_1_worker"));  // the comparison ran and agreed
  EXPECT_LT(j["peak_rss_bytes"].get<std::uint64_t>(), 2 * vitte::cli::kMaxSourceBytes) << "huge.h was read whole";
  const CliStreams text = vitte_sched_streams("run --workers 2 --dir " + root.string());
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("5 files read"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("1 too_large (first: huge.h: "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("1 not_regular (first: fifo: a FIFO)"), std::string::npos) << text.out;
  fs::remove_all(root);
}

// Kernel files fail to read in odd ways (EINVAL, EIO); each is skipped and named.
TEST(Cli, RunOverProcNamesWhatItCannotRead) {
  if (!fs::is_directory("/proc/self/attr")) GTEST_SKIP() << "no /proc";
  const CliStreams r = vitte_sched_streams("run --json --workers 2 --no-baseline --dir /proc/self");
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["files"].get<int>(), 0);
  EXPECT_GT(j["skipped"]["unreadable"].get<int>(), 0);
  for (const auto& e : j["skipped_first"]) {
    EXPECT_FALSE(e["file"].get<std::string>().empty());
    EXPECT_FALSE(e["why"].get<std::string>().empty());
  }
}

TEST(IncludeGraph, FirstInputChangeNamesTheFile) {
  std::vector<vitte::cli::SourceFile> a(2), b;
  a[0].path = "x.h";
  a[1].path = "y.h";
  a[1].bytes = 10;
  b = a;
  EXPECT_EQ(vitte::cli::first_input_change(a, b), "");
  b[1].bytes = 12;
  EXPECT_EQ(vitte::cli::first_input_change(a, b), "y.h (10 bytes then 12)");
  b = a;
  b[0].skipped = vitte::cli::Skip::Unreadable;
  EXPECT_EQ(vitte::cli::first_input_change(a, b), "x.h (read then unreadable)");
}

// ---- The main job as a pass pipeline (#7) -------------------------------------------------

namespace {

std::map<std::string, std::uint32_t> reach_of(const std::vector<vitte::cli::SourceFile>& files) {
  std::map<std::string, std::uint32_t> m;
  for (const auto& f : files) m[f.path] = f.reach;
  return m;
}

// A random tree of `n` headers in a few directories, each including a few others (quoted
// relative, quoted from the root, angle), some missing, some itself: many include cycles.
fs::path make_random_tree(std::size_t n, unsigned seed) {
  const fs::path root = make_temp_dir("random");
  const std::vector<std::string> dirs = {"", "sys/", "bits/", "c++/12/", "c++/12/bits/"};
  std::vector<std::string> paths;
  for (std::size_t i = 0; i < n; ++i) paths.push_back(dirs[i % dirs.size()] + "h" + std::to_string(i) + ".h");
  std::mt19937 rng(seed);
  for (std::size_t i = 0; i < n; ++i) {
    fs::create_directories((root / paths[i]).parent_path());
    std::ofstream out(root / paths[i]);
    const int k = static_cast<int>(rng() % 5);
    for (int e = 0; e < k; ++e) {
      const std::string& to = paths[rng() % n];
      switch (rng() % 4) {
        case 0: out << "#include <" << to << ">\n"; break;
        case 1: out << "#include \"" << fs::path(to).filename().string() << "\"\n"; break;  // beside it or by suffix
        case 2: out << "# include \"" << to << "\"  // from the root\n"; break;
        default: out << "#include <missing/" << rng() % 7 << ".h>\n"; break;
      }
    }
    if (rng() % 10 == 0) out << "#include \"" << fs::path(paths[i]).filename().string() << "\"\n";  // itself
    out << "int f" << i << "(int x) { return x * " << i << "; } /* #include <h1.h> */\n";
  }
  return root;
}

}  // namespace

// The pipeline gives the answers of the job as it was before it (three parallel_for phases):
// per file, at 1 and at 3 workers, on a tree with many include cycles, and again when the
// same graph runs a second time.
TEST(Pipeline, AnswersEqualTheOldJobOnATreeWithCycles) {
  const fs::path root = make_random_tree(300, 11);
  vitte::cli::SkipTally skipped;
  auto old_files = vitte::cli::list_tree(root.string(), skipped);
  ASSERT_EQ(old_files.size(), 300u);
  vitte::Scheduler two(2);
  const auto old_result = vitte::cli::run_job_phases(two, root.string(), old_files);
  ASSERT_GT(old_result.resolved, 300u);

  auto files = old_files;
  vitte::cli::PassPipeline pipeline(root.string(), files);
  std::uint64_t dropped = 0;
  for (std::size_t workers : {1u, 3u, 1u}) {
    vitte::Scheduler sched(workers);
    const auto r = pipeline.run(sched);
    EXPECT_EQ(reach_of(files), reach_of(old_files)) << workers << " workers";
    for (std::size_t i = 0; i < files.size(); ++i) {
      EXPECT_EQ(files[i].edges, old_files[i].edges) << files[i].path;
      EXPECT_EQ(files[i].tokens, old_files[i].tokens) << files[i].path;
      EXPECT_EQ(files[i].includes, old_files[i].includes) << files[i].path;
    }
    EXPECT_EQ(r.reach_sum, old_result.reach_sum);
    EXPECT_EQ(r.reach_max, old_result.reach_max);
    EXPECT_EQ(r.reach_max_file, old_result.reach_max_file);
    EXPECT_EQ(r.tokens, old_result.tokens);
    EXPECT_EQ(r.resolved, old_result.resolved);
    EXPECT_GT(r.cycle_edges_dropped, 0u) << "the tree has include cycles";
    EXPECT_EQ(r.analyse_edges + r.cycle_edges_dropped, r.resolved);
    if (dropped == 0) dropped = r.cycle_edges_dropped;
    EXPECT_EQ(r.cycle_edges_dropped, dropped) << "cycle breaking is deterministic";
  }
  // The CLI reports the same count, and its 1-worker and 3-worker runs agree.
  const CliStreams cli = vitte_sched_streams("run --json --workers 3 --dir " + root.string());
  ASSERT_EQ(cli.status, 0) << cli.err << cli.out;
  const auto j = nlohmann::json::parse(cli.out);
  EXPECT_EQ(j["transitive_includes_sum"], old_result.reach_sum);
  EXPECT_EQ(j["pipeline"]["include_cycle_edges_dropped"], dropped);
  EXPECT_EQ(j["pipeline"]["tasks"], 4 * 300 + 1);
  const CliStreams text = vitte_sched_streams("run --workers 2 --no-baseline --dir " + root.string());
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("include cycles broken: " + std::to_string(dropped) + " edge(s) dropped"),
            std::string::npos)
      << text.out;
  fs::remove_all(root);
}

// A DFS in path order drops the edge that closes each cycle: b.h -> a.h (a.h is on the
// stack), c.h -> c.h (itself), e.h -> d.h. The counts still follow every edge.
TEST(Pipeline, CyclesAreBrokenDeterministically) {
  const fs::path root = make_temp_dir("cycles");
  std::ofstream(root / "a.h") << "#include \"b.h\"\n";
  std::ofstream(root / "b.h") << "#include \"a.h\"\n#include \"c.h\"\n";
  std::ofstream(root / "c.h") << "#include \"c.h\"\n";
  std::ofstream(root / "d.h") << "#include \"e.h\"\n";
  std::ofstream(root / "e.h") << "#include \"d.h\"\n";
  vitte::cli::SkipTally skipped;
  auto files = vitte::cli::list_tree(root.string(), skipped);
  auto old_files = files;
  vitte::Scheduler sched(2);
  vitte::cli::run_job_phases(sched, root.string(), old_files);
  vitte::cli::PassPipeline pipeline(root.string(), files);
  const auto r = pipeline.run(sched);
  EXPECT_EQ(r.cycle_edges_dropped, 3u);
  using Edges = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(pipeline.dropped_edges(), (Edges{{"c.h", "c.h"}, {"b.h", "a.h"}, {"e.h", "d.h"}}));
  const auto reach = reach_of(files);
  EXPECT_EQ(reach, reach_of(old_files));
  EXPECT_EQ(reach.at("a.h"), 2u);  // b, c (not itself)
  EXPECT_EQ(reach.at("b.h"), 2u);  // a, c
  EXPECT_EQ(reach.at("c.h"), 0u);
  EXPECT_EQ(reach.at("d.h"), 1u);
  fs::remove_all(root);
}

// --dot writes the pass graph: every task of the tiny tree, its chains, the fan-in to
// link, and the analyse edges along the includes.
TEST(Cli, RunDotWritesThePassGraph) {
  const fs::path root = make_tree();
  const fs::path out_dir = make_temp_dir("dot");
  const fs::path dot = out_dir / "passes.dot";
  const CliStreams r = vitte_sched_streams("run --workers 2 --dir " + root.string() + " --dot " + dot.string());
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("pass graph written to " + dot.string()), std::string::npos) << r.out;
  const std::string text = slurp(dot);
  ASSERT_EQ(text.rfind("digraph ", 0), 0u) << text;
  EXPECT_EQ(text.back(), '\n');
  EXPECT_EQ(text.substr(text.size() - 2), "}\n");
  // id -> task name (the label's first line), and the edges as names.
  std::map<std::string, std::string> name;
  const std::regex vertex(R"(^\s*(\w+) \[label="([^"\\]*)(\\n[^"]*)?")");
  const std::regex edge(R"(^\s*(\w+) -> (\w+)( \[style=dashed\])?;)");
  std::vector<std::pair<std::string, std::string>> edge_ids;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_search(line, m, vertex)) name[m[1]] = m[2];
    else if (std::regex_search(line, m, edge)) edge_ids.emplace_back(m[1], m[2]);
  }
  std::set<std::string> names;
  for (const auto& [id, n] : name) names.insert(n);
  for (const std::string f : {"a.h", "b.h", "c.h", "d/e.h", "f.h"})
    for (const std::string pass : {"read", "lex", "collect", "analyse"})
      EXPECT_TRUE(names.count(pass + " " + f)) << pass << " " << f << "\n" << text;
  EXPECT_TRUE(names.count("link"));
  EXPECT_EQ(name.size(), 21u) << text;
  std::set<std::pair<std::string, std::string>> edges;
  for (const auto& [a, b] : edge_ids) edges.emplace(name[a], name[b]);
  for (const auto& e : std::vector<std::pair<std::string, std::string>>
       {std::pair<std::string, std::string>{"read a.h", "lex a.h"}, {"lex a.h", "collect a.h"},
        {"collect a.h", "link"}, {"collect d/e.h", "link"}, {"analyse b.h", "analyse a.h"},
        {"analyse c.h", "analyse b.h"}, {"analyse a.h", "analyse d/e.h"}, {"analyse c.h", "analyse d/e.h"}})
    EXPECT_TRUE(edges.count(e)) << e.first << " -> " << e.second << "\n" << text;
  EXPECT_FALSE(edges.count({"analyse a.h", "analyse b.h"})) << "analyse waits on what a file includes";
  EXPECT_NE(text.find("include cycles broken: 0 edge(s) dropped"), std::string::npos);
  fs::remove_all(out_dir);
  fs::remove_all(root);
}

// With --json, stdout holds one JSON document: a --dot that is stdout would break it.
TEST(Cli, RunDotToStdoutUnderJsonIsRefused) {
  const fs::path dir = make_temp_dir("dotstdout");
  std::ofstream(dir / "a.h") << "#include \"b.h\"\n";
  std::ofstream(dir / "b.h") << "#include \"a.h\"\n";
  const CliStreams j = vitte_sched_streams("run --json --no-baseline --workers 2 --dir " + dir.string() + " --dot /dev/stdout");
  EXPECT_EQ(j.status, 2) << j.err;
  const nlohmann::json doc = nlohmann::json::parse(j.out);  // throws (fails) if DOT came first
  EXPECT_EQ(doc["error"]["exit_code"], 2);
  EXPECT_NE(doc["error"]["message"].get<std::string>().find("standard output"), std::string::npos);
}

// Without --json too: stdout carries the report, which a trace or a graph written over it would
// corrupt; "-" is refused as well (it is not a file name the user meant).
TEST(Cli, RunTraceAndDotToStdoutAreRefused) {
  const fs::path dir = make_temp_dir("tracestdout");
  std::ofstream(dir / "a.h") << "int a;\n";
  for (const char* flags : {" --trace -", " --trace /dev/stdout", " --dot -", " --dot /dev/stdout"}) {
    const CliStreams r = vitte_sched_streams("run --no-baseline --workers 2 --dir " + dir.string() + flags);
    EXPECT_EQ(r.status, 2) << flags << ": " << r.err;
    EXPECT_NE(r.err.find("standard output"), std::string::npos) << flags << ": " << r.err;
    EXPECT_FALSE(fs::exists("-")) << flags;
  }
}

// Two outputs into one file: the later write would silently replace the earlier one. Refused
// before anything runs, however the file is spelled: the same path, another spelling of it
// (./x, a/../x), a symbolic or a hard link to it, a path not made yet.
TEST(Cli, RunRefusesTwoOutputsIntoOneFile) {
  const fs::path root = make_tree();
  const fs::path out = make_temp_dir("same-output");
  fs::create_directory(out / "sub");
  std::ofstream(out / "made") << "kept\n";
  fs::create_symlink(out / "made", out / "symlink");
  fs::create_hard_link(out / "made", out / "hardlink");
  fs::create_symlink(out / "later", out / "dangling");  // writing through it makes "later"
  const std::string run = "run --no-baseline --workers 2 --dir " + root.string();
  const std::string x = (out / "x").string(), made = (out / "made").string();
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {" --trace " + x + " --metrics-json " + x, "--trace and --metrics-json both write '" + x + "'", ""},
      {" --trace " + x + " --dot " + x, "--trace and --dot both write '" + x + "'", ""},
      {" --metrics-prom " + x + " --metrics-json " + x, "--metrics-json and --metrics-prom both write '" + x + "'", ""},
      {" --dot " + x + " --metrics-prom " + out.string() + "/sub/../x", "--dot '" + x + "' and --metrics-prom '" +
           out.string() + "/sub/../x' both write the same file", ""},
      {" --metrics-json " + (out / "symlink").string() + " --metrics-prom " + made, "--metrics-json '" +
           (out / "symlink").string() + "' and --metrics-prom '" + made + "' both write the same file", ""},
      {" --trace " + (out / "hardlink").string() + " --dot " + made, "--trace '" + (out / "hardlink").string() +
           "' and --dot '" + made + "' both write the same file", ""},
      {" --trace " + (out / "dangling").string() + " --metrics-json " + (out / "later").string(),
       "--trace '" + (out / "dangling").string() + "' and --metrics-json '" + (out / "later").string() +
           "' both write the same file", ""},
      // Relative spellings, from the directory the command runs in.
      {" --trace x --metrics-json ./x", "--trace 'x' and --metrics-json './x' both write the same file", out.string()},
  };
  for (const auto& [flags, error, cwd] : cases) {
    const CliRun r = cwd.empty() ? vitte_sched(run + flags)
                                 : shell("cd " + cwd + " && " + VITTE_SCHED_BIN + " " + run + flags + " 2>&1");
    EXPECT_EQ(r.status, 2) << flags << "\n" << r.output;
    EXPECT_NE(r.output.find("vitte-sched: error: " + error + ": give each output its own file"), std::string::npos)
        << flags << "\n" << r.output;
    if (!cwd.empty()) continue;
    const CliStreams j = vitte_sched_streams(run + " --json" + flags);
    EXPECT_EQ(nlohmann::json::parse(j.out)["error"]["exit_code"], 2) << flags << "\n" << j.out;
  }
  EXPECT_FALSE(fs::exists(out / "x")) << "refused before anything was written";
  EXPECT_FALSE(fs::exists(out / "later"));
  EXPECT_EQ(slurp(out / "made"), "kept\n");
  // Different files are fine, and standard output keeps its own rules (one export may go there).
  const CliStreams ok = vitte_sched_streams(run + " --trace " + x + " --dot " + (out / "sub" / "x").string() +
                                            " --metrics-json - --metrics-prom " + made);
  EXPECT_EQ(ok.status, 0) << ok.err;
  fs::remove_all(out);
  fs::remove_all(root);
}

TEST(Cli, RunDotRefusesBigGraphsAndNamesAnUnwritableFile) {
  const fs::path big = make_temp_dir("big");
  for (int i = 0; i < 500; ++i) std::ofstream(big / ("h" + std::to_string(i) + ".h")) << "int x;\n";
  const fs::path out_dir = make_temp_dir("dot");
  const fs::path dot = out_dir / "big.dot";
  const CliStreams r = vitte_sched_streams("run --workers 2 --dir " + big.string() + " --dot " + dot.string());
  EXPECT_EQ(r.status, 2) << r.err << r.out;
  EXPECT_NE(r.err.find("would have 2001 tasks"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("more than 2000"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dot));
  const CliStreams j = vitte_sched_streams("run --json --workers 2 --dir " + big.string() + " --dot " + dot.string());
  EXPECT_EQ(j.status, 2);
  EXPECT_EQ(nlohmann::json::parse(j.out)["error"]["exit_code"], 2);
  fs::remove(big / "h0.h");  // 499 files: 1997 tasks, drawn
  const CliStreams fits = vitte_sched_streams("run --workers 2 --no-baseline --dir " + big.string() + " --dot " +
                                              dot.string());
  EXPECT_EQ(fits.status, 0) << fits.err;
  EXPECT_TRUE(fs::exists(dot));

  const fs::path root = make_tree();
  const std::string bad = (out_dir / "no-such-dir" / "x.dot").string();
  const CliStreams w = vitte_sched_streams("run --workers 2 --dir " + root.string() + " --dot " + bad);
  EXPECT_EQ(w.status, 3) << w.err << w.out;
  EXPECT_NE(w.err.find("cannot write the pass graph to '" + bad + "'"), std::string::npos) << w.err;
  EXPECT_EQ(vitte_sched("run --workers 2 --dir " + root.string() + " --dot ''").status, 2);
  fs::remove_all(root);
  fs::remove_all(out_dir);
  fs::remove_all(big);
}

TEST(Cli, RunPassesPrintsEveryPass) {
  const fs::path root = make_tree();
  const CliStreams text = vitte_sched_streams("run --workers 2 --passes --dir " + root.string());
  ASSERT_EQ(text.status, 0) << text.err;
  for (const std::string pass : {"read", "lex", "collect", "link", "analyse"})
    EXPECT_NE(text.out.find("    " + pass + " "), std::string::npos) << pass << "\n" << text.out;
  EXPECT_NE(text.out.find("speedup with 2 workers"), std::string::npos) << text.out;
  const CliStreams json = vitte_sched_streams("run --json --workers 2 --passes --dir " + root.string());
  ASSERT_EQ(json.status, 0) << json.err;
  const auto j = nlohmann::json::parse(json.out);
  ASSERT_EQ(j["passes"].size(), 5u) << json.out;
  const std::map<std::string, int> tasks = {{"read", 5}, {"lex", 5}, {"collect", 5}, {"link", 1}, {"analyse", 5}};
  for (const auto& p : j["passes"]) {
    EXPECT_EQ(p["tasks"], tasks.at(p["pass"].get<std::string>())) << p;
    EXPECT_GE(p["task_seconds"].get<double>(), 0.0);
    EXPECT_GE(p["wall_seconds"].get<double>(), 0.0);
  }
  fs::remove_all(root);
}

// --metrics-json and --metrics-prom write the measured run's snapshot: the same one that
// run --json embeds under "metrics".
TEST(Cli, RunWritesTheMetricsAsJsonAndPrometheusText) {
  const fs::path root = make_tree();
  const fs::path out = make_temp_dir("metrics");
  const fs::path mj = out / "m.json", mp = out / "m.prom";
  const CliStreams r = vitte_sched_streams("run --json --no-baseline --workers 2 --dir " + root.string() +
                                           " --metrics-json " + mj.string() + " --metrics-prom " + mp.string());
  ASSERT_EQ(r.status, 0) << r.err << r.out;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["metrics_json_file"], mj.string());
  EXPECT_EQ(doc["metrics_prom_file"], mp.string());
  const auto m = nlohmann::json::parse(slurp(mj));
  EXPECT_EQ(m["schema"], "vitte-metrics/1");
  EXPECT_EQ(m, doc["metrics"]) << "one snapshot, one shape";
  ASSERT_EQ(m["workers"].size(), 2u);
  const std::uint64_t executed = m["total"]["executed"].get<std::uint64_t>();
  EXPECT_GT(executed, 0u);
  // The Prometheus file: per-worker executed counts that add up to the same total.
  const std::string prom = slurp(mp);
  EXPECT_NE(prom.find("# TYPE vitte_tasks_executed_total counter\n"), std::string::npos) << prom;
  const std::regex sample(R"re(^vitte_tasks_executed_total\{worker="(\d+)",node="\d+"\} (\d+)$)re");
  std::uint64_t sum = 0;
  int workers = 0;
  std::istringstream lines(prom);
  for (std::string line; std::getline(lines, line);) {
    std::smatch s;
    if (!std::regex_match(line, s, sample)) continue;
    sum += std::stoull(s[2]);
    ++workers;
  }
  EXPECT_EQ(workers, 2);
  EXPECT_EQ(sum, executed);

  const CliStreams text = vitte_sched_streams("run --no-baseline --workers 2 --dir " + root.string() +
                                              " --metrics-prom " + mp.string());
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_NE(text.out.find("metrics (Prometheus text) written to " + mp.string()), std::string::npos) << text.out;
  fs::remove_all(out);
  fs::remove_all(root);
}

// "-" is standard output: after the report, or refused where --json owns stdout; a path
// that cannot be written fails with status 3 naming it.
TEST(Cli, MetricsExportsToStdoutOrAnUnwritablePath) {
  const fs::path root = make_tree();
  const std::string run = "run --no-baseline --workers 2 --dir " + root.string();
  const CliStreams dash = vitte_sched_streams(run + " --metrics-json -");
  ASSERT_EQ(dash.status, 0) << dash.err;
  const std::size_t brace = dash.out.find("\n{");
  ASSERT_NE(brace, std::string::npos) << dash.out;
  EXPECT_NE(dash.out.find("vitte-sched run:"), std::string::npos) << "the report comes first";
  EXPECT_EQ(nlohmann::json::parse(dash.out.substr(brace + 1))["schema"], "vitte-metrics/1");

  for (const std::string bad : {" --json --metrics-json -", " --json --metrics-prom /dev/stdout"}) {
    const CliStreams j = vitte_sched_streams(run + bad);
    EXPECT_EQ(j.status, 2) << bad << j.err;
    const auto doc = nlohmann::json::parse(j.out);  // throws (fails) if the export came first
    EXPECT_NE(doc["error"]["message"].get<std::string>().find("standard output"), std::string::npos) << bad;
  }
  const CliStreams both = vitte_sched_streams(run + " --metrics-json - --metrics-prom -");
  EXPECT_EQ(both.status, 2);
  EXPECT_NE(both.err.find("both standard output"), std::string::npos) << both.err;

  const fs::path out = make_temp_dir("metrics-bad");
  const std::string bad = (out / "no-such-dir" / "m.json").string();
  for (const std::string flag : {"--metrics-json", "--metrics-prom"}) {
    const CliStreams w = vitte_sched_streams(run + " " + flag + " " + bad);
    EXPECT_EQ(w.status, 3) << flag << w.err << w.out;
    EXPECT_NE(w.err.find("cannot write the metrics"), std::string::npos) << w.err;
    EXPECT_NE(w.err.find("'" + bad + "'"), std::string::npos) << w.err;
    const CliRun empty = vitte_sched(run + " " + flag + " ''");
    EXPECT_EQ(empty.status, 2) << flag;
    EXPECT_NE(empty.output.find(flag), std::string::npos) << empty.output;
  }
  fs::remove_all(out);
  fs::remove_all(root);
}

TEST(Cli, EventListsAreCheckedAndCountersReportedOnlyWhenAskedFor) {
  const fs::path root = make_tree();
  const std::string run = "run --no-baseline --workers 2 --dir " + root.string();
  for (const std::string bad : {"'PAPI_TOT_INS,,PAPI_L1_DCM'", "' , '", "','"}) {
    const CliRun r = vitte_sched(run + " --events " + bad);
    EXPECT_EQ(r.status, 2) << bad << r.output;
    EXPECT_NE(r.output.find("empty event name"), std::string::npos) << r.output;
  }
  EXPECT_EQ(vitte_sched(run + " --events ''").status, 2);
  const CliStreams plain = vitte_sched_streams(run);
  ASSERT_EQ(plain.status, 0) << plain.err;
  EXPECT_EQ(plain.out.find("event counters"), std::string::npos) << plain.out;
  const CliStreams counted = vitte_sched_streams(run + " --counters");
  ASSERT_EQ(counted.status, 0) << counted.err;
  EXPECT_NE(counted.out.find("event counters"), std::string::npos) << counted.out;
  fs::remove_all(root);
}

// The report lists what was counted and why the rest was not: no number for an event that
// was not measured.
TEST(Cli, TheCounterReportNeverShowsAnUnmeasuredEventAsANumber) {
  vitte::MetricsSnapshot m;
  EXPECT_EQ(vitte::cli::describe_counters(m, false), "");
  EXPECT_NE(vitte::cli::describe_counters(m, true).find("none were requested"), std::string::npos);
  m.counter_info.requested = true;
  m.counter_info.events = {"PAPI_TOT_INS"};
  m.counter_info.sources = {"papi"};
  m.counter_info.unavailable = {{"PAPI_L3_TCM", "no such event"}};
  m.counters = {12345};
  const std::string text = vitte::cli::describe_counters(m, false);
  EXPECT_NE(text.find("    PAPI_TOT_INS [papi]: 12345\n"), std::string::npos) << text;
  EXPECT_NE(text.find("    PAPI_L3_TCM: not counted: no such event\n"), std::string::npos) << text;
  EXPECT_FALSE(std::regex_search(text, std::regex("PAPI_L3_TCM[^\n]*[0-9]"))) << text;
}

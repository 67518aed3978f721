// vitte-sched: the main job's workload, and clear errors for bad command lines.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "cli/include_graph.hpp"
#include "test_support.hpp"
#include "vitte/vitte.hpp"

namespace fs = std::filesystem;

namespace {

struct CliRun {
  int status;
  std::string output;
};

CliRun vitte_sched(const std::string& args, const std::string& env = "", const std::string& wrapper = "") {
  const std::string cmd = (env.empty() ? "" : "env " + env + " ") + wrapper + " " + VITTE_SCHED_BIN + " " + args +
                          " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

// a.h -> b.h -> c.h, d/e.h -> "../a.h" and <c.h>; f.h includes nothing it can find.
fs::path make_tree() {
  const fs::path root = fs::temp_directory_path() / "vitte-cli-tree";
  fs::remove_all(root);
  fs::create_directories(root / "d");
  std::ofstream(root / "a.h") << "#include \"b.h\"\nint a(); // #include \"f.h\" in a comment\n";
  std::ofstream(root / "b.h") << "#  include <c.h>\n/* #include <a.h> */ int b = 0x10;\n";
  std::ofstream(root / "c.h") << "#pragma once\nconst char* s = \"#include <a.h>\";\n";
  std::ofstream(root / "d" / "e.h") << "#include \"../a.h\"\n#include <c.h>\n";
  std::ofstream(root / "f.h") << "#include <missing.h>\n";
  return root;
}

}  // namespace

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
  auto files = vitte::cli::list_tree(root.string());
  ASSERT_EQ(files.size(), 5u);
  const auto r = vitte::cli::run_job(sched, root.string(), files);
  std::map<std::string, unsigned> reach;
  for (const auto& f : files) reach[f.path] = f.reach;
  EXPECT_EQ(reach["a.h"], 2u);    // b, c
  EXPECT_EQ(reach["b.h"], 1u);    // c
  EXPECT_EQ(reach["c.h"], 0u);
  EXPECT_EQ(reach["d/e.h"], 3u);  // a, b, c
  EXPECT_EQ(reach["f.h"], 0u);
  EXPECT_EQ(r.include_directives, 5u);
  EXPECT_EQ(r.resolved, 4u);
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
  for (const std::string& xml : vitte::test::shipped_topologies()) {
    const std::string toml = xml.substr(0, xml.size() - 4) + ".toml";
    if (!fs::exists(toml)) continue;
    const CliRun r = vitte_sched("topo --json --config " + toml + " --topology " + xml);
    ASSERT_EQ(r.status, 0) << toml << "\n" << r.output;
    const auto j = nlohmann::json::parse(r.output);
    EXPECT_EQ(j["config"]["source"], toml);
    EXPECT_GT(j["plan"]["workers"].size(), 0u);
    ++n;
  }
  EXPECT_EQ(n, 5);
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

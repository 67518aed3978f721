// vitte-sched: the main job's workload, and clear errors for bad command lines.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/include_graph.hpp"
#include "test_support.hpp"
#include "vitte/vitte.hpp"

namespace fs = std::filesystem;

namespace {

struct CliRun {
  int status;
  std::string output;
};

CliRun vitte_sched(const std::string& args) {
  const std::string cmd = std::string(VITTE_SCHED_BIN) + " " + args + " 2>&1";
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

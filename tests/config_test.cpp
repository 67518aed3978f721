// Placement configs: parsing, validation messages, merging with code, the environment
// variable, the shipped examples, and a bounded fuzz run.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "scheduler_checks.hpp"
#include "test_support.hpp"
#include "vitte/vitte.hpp"

using vitte::Config;
using vitte::Plan;
using vitte::Topology;

namespace {
std::string config_error(const std::string& text) {
  try {
    Config::parse(text, "test.toml");
  } catch (const vitte::ConfigError& e) {
    return e.what();
  }
  return "";
}
std::string plan_error(const Topology& t, const std::string& text) {
  try {
    Plan::make(t, Config::parse(text, "test.toml").plan);
  } catch (const vitte::Error& e) {
    return e.what();
  }
  return "";
}
const Topology& two_socket() {
  static const Topology t = Topology::from_xml(vitte::test::topology_file("24em64t-2n6c2t-pci.xml"));
  return t;
}
}  // namespace

TEST(Config, ReadsEveryKey) {
  const Config c = Config::parse(R"(
[workers]
nodes = [1]
per_node = 3
cpuset = "1-11"
reserve = "1"
placement = "unpinned"
[scheduling]
steal_scope = "node"
policy = "lifo"
[memory]
allocator = "system"
)");
  EXPECT_EQ(c.plan.nodes, std::vector<unsigned>{1});
  EXPECT_EQ(c.plan.workers_per_node, 3u);
  EXPECT_EQ(c.plan.cpus.size(), 11u);
  EXPECT_EQ(c.plan.reserve, std::vector<unsigned>{1});
  EXPECT_EQ(c.plan.placement, vitte::Placement::Unpinned);
  EXPECT_FALSE(c.plan.cross_node_steals);
  EXPECT_EQ(c.policy, "lifo");
  const Plan p = Plan::make(two_socket(), c.plan);
  ASSERT_EQ(p.workers.size(), 3u);
  for (const auto& w : p.workers) {
    EXPECT_EQ(w.node, 1u);
    EXPECT_NE(two_socket().pus()[w.pu].os_index, 1u) << "CPU 1 is reserved";
    for (const auto& l : p.steal_order[w.index]) EXPECT_NE(l.kind, vitte::StealLevel::Kind::Remote);
  }
}

TEST(Config, EmptyConfigMeansDefaults) {
  const Config c = Config::parse("");
  const Plan p = Plan::make(two_socket(), c.plan);
  EXPECT_EQ(p.workers.size(), 12u);
}

TEST(Config, UnitPuCountsHardwareThreads) {
  const Plan p = Plan::make(two_socket(), Config::parse("[workers]\nunit = \"pu\"\n").plan);
  EXPECT_EQ(p.workers.size(), 24u);
}

TEST(Config, EveryBadKeyOrValueIsNamed) {
  struct Case {
    std::string text, must_mention;
  };
  const std::vector<Case> cases = {
      {"[workers]\nper_nod = 2\n", "workers.per_nod"},
      {"[worker]\n", "worker"},
      {"threads = 4\n", "threads"},
      {"[workers]\nper_node = 0\n", "workers.per_node = 0"},
      {"[workers]\nper_node = -3\n", "workers.per_node = -3"},
      {"[workers]\ntotal = \"four\"\n", "workers.total = \"four\""},
      {"[workers]\ntotal = 4.5\n", "workers.total = 4.5"},
      {"[workers]\ntotal = 100000000\n", "workers.total = 100000000"},
      {"[workers]\nper_node = 2\ntotal = 4\n", "conflicting"},
      {"[workers]\ntotal = 4\nunit = \"pu\"\n", "conflicting"},
      {"[workers]\nunit = \"socket\"\n", "workers.unit = \"socket\""},
      {"[workers]\ncpuset = \"0-x\"\n", "workers.cpuset = \"0-x\""},
      {"[workers]\ncpuset = \"5-2\"\n", "workers.cpuset = \"5-2\""},
      {"[workers]\ncpuset = 7\n", "workers.cpuset = 7"},
      {"[workers]\ncpuset = \"0-3\"\nreserve = \"0-3\"\n", "conflicting"},
      {"[workers]\nnodes = []\n", "workers.nodes"},
      {"[workers]\nnodes = [0, \"one\"]\n", "\"one\""},
      {"[workers]\nplacement = \"everywhere\"\n", "workers.placement = \"everywhere\""},
      {"[scheduling]\nsteal_scope = \"galaxy\"\n", "scheduling.steal_scope = \"galaxy\""},
      {"[scheduling]\npolicy = \"random\"\n", "scheduling.policy = \"random\""},
      {"[memory]\nallocator = \"jemalloc\"\n", "memory.allocator = \"jemalloc\""},
      {"[memory]\nallocator = 3\n", "memory.allocator = 3"},
      {"workers = 3\n", "'workers' must be a table"},
      {"[workers\n", "line 1"},
      {"[workers]\nper_node = 2\nper_node = 3\n", "line 3"},
  };
  for (const Case& c : cases) {
    const std::string e = config_error(c.text);
    EXPECT_NE(e.find("test.toml"), std::string::npos) << c.text << " -> " << e;
    EXPECT_NE(e.find(c.must_mention), std::string::npos) << c.text << " -> " << e;
  }
}

TEST(Config, PolicyAndAgingAreRead) {
  using namespace std::chrono_literals;
  const Config none = Config::parse("");
  EXPECT_FALSE(none.sets_policy);
  EXPECT_EQ(none.policy, "fifo");
  EXPECT_EQ(none.aging, 0ns);
  EXPECT_TRUE(none.groups.empty());
  const Config c = Config::parse("[scheduling]\npolicy = \"priority\"\naging = \"20ms\"\n");
  EXPECT_TRUE(c.sets_policy);
  EXPECT_EQ(c.policy, "priority");
  EXPECT_EQ(c.aging, 20ms);
  EXPECT_TRUE(Config::parse("[scheduling]\npolicy = \"fifo\"\n").sets_policy) << "the default, given, is set";
  const std::vector<std::pair<std::string, std::chrono::nanoseconds>> durations = {
      {"7ns", 7ns}, {"500us", 500us}, {"20ms", 20ms}, {"1s", 1s}, {"3600s", 1h}, {"3600000ms", 1h}, {"0020ms", 20ms}};
  for (const auto& [text, expected] : durations)
    EXPECT_EQ(Config::parse("[scheduling]\naging = \"" + text + "\"\n").aging, expected) << text;
}

TEST(Config, BadAgingIsNamedWithFileLineKeyAndValue) {
  const std::string expected = ": expected a duration string such as \"20ms\" (a whole number and ns, us, ms or s)";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\"0ms\"", "scheduling.aging = \"0ms\": must be more than 0"},
      {"\"0s\"", "scheduling.aging = \"0s\": must be more than 0"},
      {"\"3601s\"", "scheduling.aging = \"3601s\": longer than 3600s, the most allowed"},
      {"\"3600000001us\"", "scheduling.aging = \"3600000001us\": longer than 3600s"},
      {"\"99999999999999999999999999s\"", "scheduling.aging = \"99999999999999999999999999s\": longer than 3600s"},
      {"20", "scheduling.aging = 20" + expected},
      {"\"20\"", "scheduling.aging = \"20\"" + expected},
      {"\"20 ms\"", "scheduling.aging = \"20 ms\"" + expected},
      {"\"1.5ms\"", "scheduling.aging = \"1.5ms\"" + expected},
      {"\"-5ms\"", "scheduling.aging = \"-5ms\"" + expected},
      {"\"1h\"", "scheduling.aging = \"1h\"" + expected},
      {"\"ms\"", "scheduling.aging = \"ms\"" + expected},
  };
  for (const auto& [value, message] : cases) {
    const std::string e = config_error("# aging\n[scheduling]\naging = " + value + "\n");
    EXPECT_NE(e.find("config 'test.toml' line 3: " + message), std::string::npos) << value << " -> " << e;
  }
}

TEST(Config, GroupsAreReadWithTheirDefaults) {
  const Config c = Config::parse(R"([scheduling]
policy = "fair"

[[groups]]
name = "batch"
weight = 0.5
policy = "fair"

[[groups]]
name = "nightly"
parent = "batch"
weight = 4
policy = "lifo"

[[groups]]
name = "ops"
)");
  ASSERT_EQ(c.groups.size(), 3u);
  const Config::GroupDecl& batch = c.groups[0];
  EXPECT_EQ(batch.name, "batch");
  EXPECT_EQ(batch.parent, "");
  EXPECT_EQ(batch.weight, 0.5);
  EXPECT_TRUE(batch.sets_weight);
  EXPECT_EQ(batch.policy, "fair");
  EXPECT_EQ(batch.line, 4u);
  const Config::GroupDecl& nightly = c.groups[1];
  EXPECT_EQ(nightly.name, "nightly");
  EXPECT_EQ(nightly.parent, "batch");
  EXPECT_EQ(nightly.weight, 4.0);
  EXPECT_EQ(nightly.policy, "lifo");
  EXPECT_EQ(nightly.line, 9u);
  const Config::GroupDecl& ops = c.groups[2];
  EXPECT_EQ(ops.name, "ops");
  EXPECT_EQ(ops.weight, 1.0);
  EXPECT_FALSE(ops.sets_weight);
  EXPECT_EQ(ops.policy, "fifo");
  EXPECT_EQ(ops.line, 15u);
  EXPECT_TRUE(Config::parse("groups = []\n").groups.empty());
  EXPECT_EQ(Config::parse("groups = [{name = \"a\"}, {name = \"b\", parent = \"a\"}]\n").groups.size(), 2u);
  EXPECT_EQ(Config::parse("[[groups]]\nname = \"" + std::string(64, 'n') + "\"\n").groups[0].name.size(), 64u);
}

TEST(Config, GroupsAreSortedParentsFirstOtherwiseInFileOrder) {
  const Config c = Config::parse(R"([[groups]]
name = "leaf"
parent = "mid"
[[groups]]
name = "x"
[[groups]]
name = "mid"
parent = "top"
[[groups]]
name = "top"
[[groups]]
name = "y"
)");
  const auto names = [](const Config& config) {
    std::vector<std::string> out;
    for (const auto& g : config.groups) out.push_back(g.name);
    return out;
  };
  EXPECT_EQ(names(c), (std::vector<std::string>{"x", "top", "mid", "leaf", "y"}));
  EXPECT_EQ(c.groups[3].line, 1u) << "a moved group keeps its own line";
  const Config ordered = Config::parse(
      "[[groups]]\nname = \"a\"\n[[groups]]\nname = \"b\"\nparent = \"a\"\n[[groups]]\nname = \"c\"\n"
      "[[groups]]\nname = \"d\"\nparent = \"c\"\n[[groups]]\nname = \"e\"\nparent = \"a\"\n");
  EXPECT_EQ(names(ordered), (std::vector<std::string>{"a", "b", "c", "d", "e"})) << "already in order: unchanged";
}

TEST(Config, EveryBadGroupIsNamedWithFileLineKeyAndValue) {
  const std::string number = ": expected a number from 0.001 to 1000000";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"groups = 3\n", "line 1: 'groups' must be an array of tables ([[groups]]), not 3"},
      {"[groups]\nname = \"a\"\n", "line 1: 'groups' must be an array of tables ([[groups]]), not a table"},
      {"groups = [1, 2]\n", "line 1: 'groups' must be an array of tables ([[groups]])"},
      {"groups = [{name = \"a\"}, 2]\n", "line 1: 'groups' must be an array of tables ([[groups]])"},
      {"# g\n[[groups]]\nname = \"a\"\ncolour = \"red\"\n",
       "line 4: unknown key 'groups.colour' (known keys in [groups]: counters, name, parent, policy, weight)"},
      {"# g\n[[groups]]\nparent = \"a\"\n", "line 2: groups[0].name is missing"},
      {"# g\n[[groups]]\nname = 3\n", "line 3: groups[0].name = 3: expected a string"},
      {"# g\n[[groups]]\nname = \"\"\n", "line 3: groups[0].name = \"\": a group's name must not be empty"},
      {"# g\n[[groups]]\nname = \"" + std::string(65, 'n') + "\"\n",
       "line 3: groups[0].name = \"" + std::string(65, 'n') + "\": longer than 64 characters"},
      {"# g\n[[groups]]\nname = \"a\\tb\"\n", "line 3: groups[0].name = \"a\\u0009b\": a name holds no control characters"},
      {"# g\n[[groups]]\nname = \"a\"\n[[groups]]\nname = \"b\"\n[[groups]]\nname = \"a\"\n",
       "line 7: groups[2].name = \"a\": declared twice, by groups[0] on line 2 and groups[2] on line 6"},
      {"[[groups]]\nname = \"a\"\nparent = 3\n", "line 3: groups[0].parent = 3: expected a string"},
      {"[[groups]]\nname = \"a\"\nparent = \"zz\"\n[[groups]]\nname = \"b\"\n",
       "line 3: groups[0].parent = \"zz\": no [[groups]] has that name (declared: \"a\", \"b\")"},
      {"[[groups]]\nname = \"a\"\n[[groups]]\nname = \"b\"\nparent = \"b\"\n",
       "line 5: groups[1].parent = \"b\": a group cannot be its own parent"},
      {"[[groups]]\nname = \"a\"\nweight = -1\n", "line 3: groups[0].weight = -1" + number},
      {"[[groups]]\nname = \"a\"\nweight = 0\n", "line 3: groups[0].weight = 0" + number},
      {"[[groups]]\nname = \"a\"\nweight = 0.0\n", "line 3: groups[0].weight = 0.0" + number},
      {"[[groups]]\nname = \"a\"\nweight = nan\n", "line 3: groups[0].weight = nan" + number},
      {"[[groups]]\nname = \"a\"\nweight = inf\n", "line 3: groups[0].weight = inf" + number},
      {"[[groups]]\nname = \"a\"\nweight = 1000001\n", "line 3: groups[0].weight = 1000001" + number},
      {"[[groups]]\nname = \"a\"\nweight = 0.0009765625\n", "line 3: groups[0].weight = 0.0009765625" + number},
      {"[[groups]]\nname = \"a\"\nweight = \"2\"\n", "line 3: groups[0].weight = \"2\"" + number},
      {"[[groups]]\nname = \"a\"\npolicy = \"random\"\n",
       "line 3: groups[0].policy = \"random\": expected one of \"fair\", \"fifo\", \"lifo\", \"priority\""},
  };
  for (const auto& [text, message] : cases) {
    const std::string e = config_error(text);
    EXPECT_NE(e.find("config 'test.toml' " + message), std::string::npos) << text << " -> " << e;
  }
  EXPECT_EQ(Config::parse("[[groups]]\nname = \"a\"\nweight = 1000000\n").groups[0].weight, 1e6);
  std::string many;
  for (int i = 0; i < 10; ++i) many += "[[groups]]\nname = \"g" + std::to_string(i) + "\"\n";
  const std::string e = config_error(many + "[[groups]]\nname = \"x\"\nparent = \"nope\"\n");
  EXPECT_NE(e.find("(declared: \"g0\", \"g1\", \"g2\", \"g3\", \"g4\", \"g5\", \"g6\", \"g7\" and 3 more)"),
            std::string::npos) << e;
}

TEST(Config, GroupCyclesAreNamed) {
  // t hangs below the cycle a -> c -> b -> a without being on it.
  const std::string e = config_error(R"([[groups]]
name = "t"
parent = "a"
[[groups]]
name = "a"
parent = "c"
[[groups]]
name = "b"
parent = "a"
[[groups]]
name = "c"
parent = "b"
[[groups]]
name = "free"
)");
  EXPECT_NE(e.find("config 'test.toml' line 6: groups[1].parent = \"c\": parents form a cycle (\"a\" -> \"c\" -> \"b\" -> "
                   "\"a\", each followed by its parent)"),
            std::string::npos) << e;
  EXPECT_EQ(e.find("\"t\""), std::string::npos) << "t is below the cycle, not on it: " << e;
  const std::string two = config_error("[[groups]]\nname = \"x\"\nparent = \"y\"\n[[groups]]\nname = \"y\"\nparent = \"x\"\n");
  EXPECT_NE(two.find("line 3: groups[0].parent = \"y\": parents form a cycle (\"x\" -> \"y\" -> \"x\""), std::string::npos)
      << two;
}

TEST(Config, AWeightIsOnlyGivenUnderAFairParent) {
  const std::string rule = ": weight only applies under a fair parent, and its parent";
  // Under a group: its policy decides, wherever it is declared.
  EXPECT_NO_THROW(Config::parse("[[groups]]\nname = \"p\"\npolicy = \"fair\"\n[[groups]]\nname = \"c\"\nparent = \"p\"\nweight = 2\n"));
  std::string e = config_error("[[groups]]\nname = \"c\"\nparent = \"p\"\nweight = 2\n[[groups]]\nname = \"p\"\npolicy = \"lifo\"\n");
  EXPECT_NE(e.find("config 'test.toml' line 4: groups[0].weight = 2" + rule + " groups[1] \"p\" (line 5) has policy \"lifo\""),
            std::string::npos) << e;
  e = config_error("[[groups]]\nname = \"p\"\n[[groups]]\nname = \"c\"\nparent = \"p\"\nweight = 1\n");
  EXPECT_NE(e.find("line 6: groups[1].weight = 1" + rule + " groups[0] \"p\" (line 1) has policy \"fifo\""), std::string::npos)
      << "the default policy, and a weight equal to the default, still count: " << e;
  EXPECT_NO_THROW(Config::parse("[[groups]]\nname = \"p\"\n[[groups]]\nname = \"c\"\nparent = \"p\"\n"))
      << "no weight given: nothing to refuse";
  // Under the arena: its policy is known when this file sets it, before or after the groups.
  e = config_error("[scheduling]\npolicy = \"priority\"\n[[groups]]\nname = \"a\"\nweight = 2.5\n");
  EXPECT_NE(e.find("line 5: groups[0].weight = 2.5" + rule + ", the arena, has policy \"priority\" (scheduling.policy, line 2)"),
            std::string::npos) << e;
  e = config_error("[[groups]]\nname = \"a\"\nweight = 3\n[scheduling]\npolicy = \"fifo\"\n");
  EXPECT_NE(e.find("line 3: groups[0].weight = 3" + rule + ", the arena, has policy \"fifo\" (scheduling.policy, line 5)"),
            std::string::npos) << e;
  EXPECT_NO_THROW(Config::parse("[scheduling]\npolicy = \"fair\"\n[[groups]]\nname = \"a\"\nweight = 3\n"));
  const Config unset = Config::parse("[[groups]]\nname = \"a\"\nweight = 3\n");
  ASSERT_EQ(unset.groups.size(), 1u);
  EXPECT_TRUE(unset.groups[0].sets_weight) << "left for the scheduler to check against its arena";
  EXPECT_EQ(unset.groups[0].weight, 3.0);
}

TEST(Config, PlansThatDoNotFitTheMachineAreNamed) {
  EXPECT_NE(plan_error(two_socket(), "[workers]\nnodes = [5]\n").find("node 5"), std::string::npos);
  EXPECT_NE(plan_error(two_socket(), "[workers]\ncpuset = \"0-30\"\n").find("CPU 24"), std::string::npos);
  EXPECT_NE(plan_error(two_socket(), "[workers]\nper_node = 13\n").find("13"), std::string::npos);
  const Topology knl = Topology::from_xml(vitte::test::topology_file("64intel64-fakeKNL-SNC4-hybrid.xml"));
  EXPECT_NE(plan_error(knl, "[workers]\nnodes = [1]\n").find("no CPUs"), std::string::npos);
  EXPECT_NE(plan_error(two_socket(), "[workers]\nnodes = [0]\ncpuset = \"1,3\"\n").find("node 0"), std::string::npos);
}

TEST(Config, CodeAndConfigMustAgree) {
  const Config c = Config::parse("[workers]\nper_node = 2\n", "farm.toml");
  try {
    c.merged_with(4, vitte::Placement::Auto);
    FAIL();
  } catch (const vitte::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("farm.toml' line 2: conflicting settings: workers.per_node = 2 but the code "
                                         "asks for 4 workers"),
              std::string::npos)
        << e.what();
  }
  const Config cpus = Config::parse("[workers]\ncpuset = \"0\"\n");
  EXPECT_EQ(cpus.merged_with(1, vitte::Placement::Auto).workers, 1u);
}

TEST(Config, EqualCountsInCodeAndConfigAreNoConflict) {
  const Config c = Config::parse("[workers]\ntotal = 2\nplacement = \"unpinned\"\n", "farm.toml");
  const vitte::PlanOptions p = c.merged_with(2, vitte::Placement::Unpinned);
  EXPECT_EQ(p.workers, 2u);
  EXPECT_EQ(p.placement, vitte::Placement::Unpinned);
  try {
    c.merged_with(3, vitte::Placement::Auto);
    FAIL() << "3 workers in code and total = 2 in the config must conflict";
  } catch (const vitte::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2: conflicting settings: workers.total = 2"), std::string::npos) << e.what();
  }
  try {
    c.merged_with(2, vitte::Placement::Pin);
    FAIL() << "pin in code and unpinned in the config must conflict";
  } catch (const vitte::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("farm.toml' line 3: conflicting settings: workers.placement = \"unpinned\" but "
                                         "the code asks for Options::placement = \"pin\""),
              std::string::npos)
        << e.what();
  }
}

TEST(Config, BadConfigStartsNoThreads) {
  vitte::Options o;
  o.config = Config::parse("[workers]\nnodes = [7]\n");
  const std::size_t before = vitte::test::thread_count();
  EXPECT_THROW(vitte::Scheduler s(std::move(o)), vitte::PlanError);
  EXPECT_EQ(vitte::test::thread_count(), before);
}

TEST(Config, EnvironmentVariableReachesTheScheduler) {
  const auto path = std::filesystem::temp_directory_path() / "vitte-env.toml";
  std::ofstream(path) << "[workers]\ntotal = 1\n";
  setenv("VITTE_CONFIG", path.c_str(), 1);
  {
    vitte::Scheduler s;
    EXPECT_EQ(s.num_workers(), 1u);
    EXPECT_THROW(vitte::Scheduler s2(2), vitte::ConfigError) << "code and config both set the count";
  }
  std::ofstream(path) << "[workers]\ntotal = 0\n";
  try {
    vitte::Scheduler s;
    FAIL();
  } catch (const vitte::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("VITTE_CONFIG"), std::string::npos);
  }
  unsetenv("VITTE_CONFIG");
  std::filesystem::remove(path);
}

TEST(Config, ShippedExamplesDryRunOnTheirMachines) {
  int checked = 0;
  for (const auto& [toml, xml] : vitte::test::shipped_configs()) {
    SCOPED_TRACE(toml);
    ASSERT_FALSE(xml.empty()) << "no shipped machine for this example";
    const Config c = Config::from_file(toml);
    const Plan p = Plan::make(Topology::from_xml(xml), c.plan);
    EXPECT_GT(p.workers.size(), 0u);
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

// Random mutations of valid configs: every outcome is a plan or a vitte::Error, never a
// crash, a hang or another exception type.
TEST(ConfigFuzz, MutatedConfigsGiveAPlanOrAClearError) {
  const std::vector<std::string> seeds = {
      "[workers]\nnodes = [0, 1]\nper_node = 4\nplacement = \"pin\"\n[scheduling]\nsteal_scope = \"node\"\n",
      "[workers]\ncpuset = \"0-7,16-23\"\nreserve = \"0\"\ntotal = 6\n[memory]\nallocator = \"system\"\n",
      "[workers]\nunit = \"pu\"\n[scheduling]\npolicy = \"fair\"\n",
      "[scheduling]\npolicy = \"fair\"\naging = \"20ms\"\n[[groups]]\nname = \"b\"\nparent = \"a\"\nweight = 2\n"
      "[[groups]]\nname = \"a\"\nweight = 1.5\npolicy = \"fair\"\n",
  };
  const std::string alphabet = "[]=\"#,.-_ \n0123456789abcdefghijklmnopqrstuvwxyz";
  std::mt19937 rng(20261124);
  const int rounds = static_cast<int>(vitte::test::scaled(4000));
  int plans = 0, errors = 0;
  for (int i = 0; i < rounds; ++i) {
    std::string s = seeds[static_cast<std::size_t>(i) % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      const std::size_t at = rng() % s.size();
      switch (rng() % 4) {
        case 0: s[at] = alphabet[rng() % alphabet.size()]; break;
        case 1: s.erase(at, 1 + rng() % 6); break;
        case 2: s.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        case 3: s.insert(at, s.substr(rng() % s.size(), rng() % 12)); break;
      }
    }
    try {
      const Plan p = Plan::make(two_socket(), Config::parse(s, "fuzz.toml").plan);
      EXPECT_GT(p.workers.size(), 0u);
      ++plans;
    } catch (const vitte::Error& e) {
      EXPECT_GT(std::string(e.what()).size(), 10u);
      ++errors;
    }
  }
  EXPECT_GT(plans, 0);
  EXPECT_GT(errors, 0);
}

TEST(ConfigFile, OnlyARegularFileOfBoundedSizeIsRead) {
  namespace fs = std::filesystem;
  const auto error_of = [](const std::string& path) {
    try {
      Config::from_file(path);
    } catch (const vitte::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const fs::path dir = fs::temp_directory_path() / "vitte-config-dir";
  fs::create_directories(dir);
  std::string e = error_of(dir.string());
  EXPECT_NE(e.find("'" + dir.string() + "' is a directory"), std::string::npos) << e;
  e = error_of("/dev/zero");
  EXPECT_NE(e.find("'/dev/zero' is a character device"), std::string::npos) << e;
  const fs::path fifo = fs::temp_directory_path() / "vitte-config-fifo";
  fs::remove(fifo);
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  e = error_of(fifo.string());  // must not block waiting for a writer
  EXPECT_NE(e.find("is a FIFO"), std::string::npos) << e;
  fs::remove(fifo);
  const fs::path big = fs::temp_directory_path() / "vitte-config-big.toml";
  std::ofstream(big) << std::string(Config::kMaxBytes + 1, '#');
  e = error_of(big.string());
  EXPECT_NE(e.find("is too large: " + std::to_string(Config::kMaxBytes + 1) + " bytes"), std::string::npos) << e;
  fs::remove(big);
  e = error_of("/no/such/config.toml");
  EXPECT_NE(e.find("'/no/such/config.toml' does not exist"), std::string::npos) << e;
}

TEST(Config, ARestrictionIsNeverDroppedToFitMoreWorkers) {
  // 2 cores, CPUs 0 and 1; reserving CPU 0 leaves one PU for two workers.
  const vitte::Topology t = vitte::Topology::from_synthetic("numa:1 core:2 pu:1");
  const auto plan_error = [&](const std::string& text) {
    try {
      vitte::Plan::make(t, Config::parse(text, "pin.toml").merged_with(0, vitte::Placement::Auto));
    } catch (const vitte::PlanError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  std::string e = plan_error("[workers]\nreserve = \"0\"\ntotal = 2\n");
  EXPECT_NE(e.find("2 workers need 2 PUs, but workers.reserve '0' leave(s) 1 usable PU"), std::string::npos) << e;
  e = plan_error("[workers]\ncpuset = \"1\"\ntotal = 2\n");
  EXPECT_NE(e.find("workers.cpuset '1'"), std::string::npos) << e;
  EXPECT_TRUE(plan_error("[workers]\nreserve = \"0\"\ntotal = 1\n").empty());
  EXPECT_TRUE(plan_error("[workers]\ntotal = 4\n").empty()) << "unrestricted oversubscription stays allowed";
}

TEST(Config, PlanErrorsNameTheConfigFileAndLine) {
  const vitte::Topology one = vitte::Topology::from_synthetic("numa:1 core:2 pu:1");
  const Config c = Config::parse("[scheduling]\npolicy = \"fifo\"\n[workers]\nnodes = [1]\n", "one-node.toml");
  try {
    c.make_plan(one, c.merged_with(0, vitte::Placement::Auto));
    FAIL() << "node 1 does not exist";
  } catch (const vitte::PlanError& e) {
    EXPECT_NE(std::string(e.what()).find("config 'one-node.toml' line 4: workers.nodes names node 1"),
              std::string::npos) << e.what();
  }
  const Config r = Config::parse("[workers]\nreserve = \"0\"\ntotal = 2\n", "reserve.toml");
  try {
    r.make_plan(one, r.merged_with(0, vitte::Placement::Auto));
    FAIL() << "reserve leaves one PU for two workers";
  } catch (const vitte::PlanError& e) {
    EXPECT_NE(std::string(e.what()).find("config 'reserve.toml' line 2: "), std::string::npos) << e.what();
  }
}

TEST(Config, StackSizeAndBacklogKeysAreReadAndChecked) {
  const vitte::Config c = vitte::Config::parse(
      "[workers]\nstack_size = \"16M\"\n[scheduling]\nmax_backlog = 1000\non_backlog_full = \"fail\"\n", "rt.toml");
  EXPECT_EQ(c.stack_size, std::size_t{16} << 20);
  EXPECT_EQ(c.max_backlog, 1000u);
  EXPECT_EQ(c.on_backlog_full, "fail");
  EXPECT_EQ(vitte::Config::parse("[workers]\nstack_size = 65536\n").stack_size, 65536u);
  auto error_of = [](const char* text) {
    try {
      vitte::Config::parse(text, "bad.toml");
    } catch (const vitte::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  EXPECT_NE(error_of("[workers]\nstack_size = \"lots\"\n").find("line 2"), std::string::npos);
  EXPECT_NE(error_of("[workers]\nstack_size = \"lots\"\n").find("workers.stack_size"), std::string::npos);
  EXPECT_NE(error_of("[workers]\nstack_size = -5\n").find("workers.stack_size"), std::string::npos);
  EXPECT_NE(error_of("[scheduling]\nmax_backlog = 0\n").find("scheduling.max_backlog"), std::string::npos);
  EXPECT_NE(error_of("[scheduling]\non_backlog_full = \"fail\"\n").find("needs scheduling.max_backlog"),
            std::string::npos);
  EXPECT_NE(error_of("[scheduling]\nmax_backlog = 5\non_backlog_full = \"drop\"\n").find("on_backlog_full"),
            std::string::npos);
}

// Accepted means applied: the scheduler's workers get the config's stack and bound.
TEST(Config, StackSizeAndBacklogFromAConfigAreApplied) {
  vitte::Options o;
  o.workers = 1;
  o.config = vitte::Config::parse(
      "[workers]\nstack_size = \"1M\"\n[scheduling]\nmax_backlog = 2\non_backlog_full = \"fail\"\n", "rt.toml");
  vitte::Scheduler sched(o);
  const std::size_t stack = sched.async([] {
                                   pthread_attr_t a;
                                   std::size_t size = 0;
                                   pthread_getattr_np(pthread_self(), &a);
                                   pthread_attr_getstacksize(&a, &size);
                                   pthread_attr_destroy(&a);
                                   return size;
                                 }).get();
  EXPECT_GE(stack, std::size_t{1} << 20);
  EXPECT_LT(stack, std::size_t{4} << 20);
  std::atomic<bool> release{false};
  sched.submit(vitte::Task([&] {
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }));
  while (sched.metrics().total.injected_taken < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  sched.submit(vitte::Task([] {}));
  sched.submit(vitte::Task([] {}));
  EXPECT_THROW(sched.submit(vitte::Task([] {})), vitte::BacklogFull);
  release = true;
  sched.join_all();
}

// A setting the scheduler refuses names the config's file, line and key, as the parser's
// errors do: a stack size out of bounds, a weight under an arena that is not "fair" (the
// default "fifo" one when the file sets no [scheduling] policy). vitte-sched topo, the dry
// run, refuses the same files with the same messages (cli_test.cpp).
TEST(Config, TheSchedulerNamesTheLineOfASettingItRefuses) {
  const std::pair<const char*, const char*> cases[] = {
      {"[workers]\nstack_size = \"1K\"\n",
       "config 'rt.toml' line 2: workers.stack_size = 1024 bytes is below the minimum of 65536 (64 KiB)"},
      {"[workers]\nstack_size = \"999999G\"\n",
       "config 'rt.toml' line 2: workers.stack_size = 1073740750258176 bytes is above the maximum of 1099511627776"},
      {"[[groups]]\nname = \"a\"\nweight = 2\n",
       "config 'rt.toml' line 1: [[groups]] make_group(\"a\"): weight = 2.000000 would not apply: its parent (the "
       "arena) has policy fifo"},
  };
  for (const auto& [text, error] : cases) {
    vitte::Options o;
    o.workers = 1;
    o.config = vitte::Config::parse(text, "rt.toml");
    try {
      vitte::Scheduler sched(o);
      ADD_FAILURE() << text << ": accepted";
    } catch (const vitte::Error& e) {
      EXPECT_NE(std::string(e.what()).find(error), std::string::npos) << e.what();
    }
  }
  // The arena's policy may come from the code: a fair one takes the weight.
  vitte::Options fair;
  fair.workers = 1;
  fair.policy = vitte::Policy::Fair;
  fair.config = vitte::Config::parse("[[groups]]\nname = \"a\"\nweight = 2\n", "rt.toml");
  vitte::Scheduler sched(fair);
  EXPECT_EQ(sched.group("a").weight(), 2.0);
}

TEST(Config, RuntimeSettingsInCodeAndConfigMustAgree) {
  vitte::Options o;
  o.workers = 1;
  o.stack_size = std::size_t{2} << 20;
  o.config = vitte::Config::parse("[workers]\nstack_size = \"1M\"\n", "rt.toml");
  try {
    vitte::Scheduler sched(o);
    ADD_FAILURE() << "different stack sizes in code and config must be refused";
  } catch (const vitte::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("rt.toml' line 2"), std::string::npos) << e.what();
  }
  o.stack_size = std::size_t{1} << 20;  // the same value: no conflict
  EXPECT_NO_THROW(vitte::Scheduler ok(o));
}

// Every row of the merge table (src/config/merge.cpp), through the checks a Scheduler makes:
// set in the file alone it is taken; set in both it must agree, and a disagreement names the
// file, the line and the key, and shows both values.
TEST(Config, EverySettingOfTheMergeTableFollowsOneRule) {
  using namespace std::chrono_literals;
  struct Row {
    const char* key;
    const char* toml;                         // sets the key on line 2
    void (*agree)(vitte::Options&);           // the same value in code
    void (*differ)(vitte::Options&);          // another value in code
    bool (*taken)(const vitte::Options&);     // the file's value reached Options
    const char* shown;                        // how the file's value is shown
  };
  const Row rows[] = {
      {"workers.stack_size", "[workers]\nstack_size = \"1M\"\n", [](vitte::Options& o) { o.stack_size = 1 << 20; },
       [](vitte::Options& o) { o.stack_size = 2 << 20; }, [](const vitte::Options& o) { return o.stack_size == (1u << 20); },
       "1048576"},
      {"scheduling.max_backlog", "[scheduling]\nmax_backlog = 64\n", [](vitte::Options& o) { o.max_backlog = 64; },
       [](vitte::Options& o) { o.max_backlog = 65; }, [](const vitte::Options& o) { return o.max_backlog == 64; }, "64"},
      {"scheduling.on_backlog_full", "[scheduling]\non_backlog_full = \"block\"\nmax_backlog = 8\n",
       [](vitte::Options&) {}, [](vitte::Options& o) { o.on_backlog_full = vitte::Options::BacklogFullAction::Fail; },
       [](const vitte::Options& o) { return o.on_backlog_full == vitte::Options::BacklogFullAction::Block; }, "\"block\""},
      {"scheduling.policy", "[scheduling]\npolicy = \"lifo\"\n", [](vitte::Options& o) { o.policy = vitte::Policy::Lifo; },
       [](vitte::Options& o) { o.policy = vitte::Policy::Fifo; },
       [](const vitte::Options& o) { return o.policy == vitte::Policy::Lifo; }, "\"lifo\""},
      {"scheduling.aging", "[scheduling]\naging = \"20ms\"\npolicy = \"priority\"\n",
       [](vitte::Options& o) { o.aging = 20ms; }, [](vitte::Options& o) { o.aging = 30ms; },
       [](const vitte::Options& o) { return o.aging == std::chrono::nanoseconds(20ms); }, "20000000 ns"},
      {"metrics.sample_interval", "[metrics]\nsample_interval = \"10ms\"\n",
       [](vitte::Options& o) { o.metrics.sample_interval = 10ms; }, [](vitte::Options& o) { o.metrics.sample_interval = 20ms; },
       [](const vitte::Options& o) { return o.metrics.sample_interval == std::chrono::nanoseconds(10ms); }, "10000000 ns"},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(r.key);
    auto options = [&](void (*code)(vitte::Options&)) {
      vitte::Options o;
      o.workers = 1;
      o.topology = vitte::Topology::from_synthetic("node:1 core:1 pu:1");
      o.config = vitte::Config::parse(r.toml, "rt.toml");
      if (code != nullptr) code(o);
      return o;
    };
    EXPECT_TRUE(r.taken(vitte::detail::check_options(options(nullptr)).opts));
    EXPECT_TRUE(r.taken(vitte::detail::check_options(options(r.agree)).opts));
    try {
      (void)vitte::detail::check_options(options(r.differ));
      ADD_FAILURE() << "a different value in code must be refused";
    } catch (const vitte::ConfigError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("rt.toml' line 2: conflicting settings: " + std::string(r.key) + " = " + r.shown),
                std::string::npos)
          << what;
    }
  }
}

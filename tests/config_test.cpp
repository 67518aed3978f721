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
    EXPECT_NE(std::string(e.what()).find("farm.toml"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("per_node = 2"), std::string::npos);
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
    EXPECT_NE(std::string(e.what()).find("total = 2"), std::string::npos) << e.what();
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
  for (const std::string& xml : vitte::test::shipped_topologies()) {
    const std::string toml = xml.substr(0, xml.size() - 4) + ".toml";
    if (!std::filesystem::exists(toml)) continue;
    SCOPED_TRACE(toml);
    const Config c = Config::from_file(toml);
    const Plan p = Plan::make(Topology::from_xml(xml), c.plan);
    EXPECT_GT(p.workers.size(), 0u);
    ++checked;
  }
  EXPECT_EQ(checked, 5);
}

// Random mutations of valid configs: every outcome is a plan or a vitte::Error, never a
// crash, a hang or another exception type.
TEST(ConfigFuzz, MutatedConfigsGiveAPlanOrAClearError) {
  const std::vector<std::string> seeds = {
      "[workers]\nnodes = [0, 1]\nper_node = 4\nplacement = \"pin\"\n[scheduling]\nsteal_scope = \"node\"\n",
      "[workers]\ncpuset = \"0-7,16-23\"\nreserve = \"0\"\ntotal = 6\n[memory]\nallocator = \"system\"\n",
      "[workers]\nunit = \"pu\"\n[scheduling]\npolicy = \"fair\"\n",
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
  sched.submit(vitte::Task::spawn([&] {
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }));
  while (sched.metrics().total.injected_taken < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  sched.submit(vitte::Task::spawn([] {}));
  sched.submit(vitte::Task::spawn([] {}));
  EXPECT_THROW(sched.submit(vitte::Task::spawn([] {})), vitte::BacklogFull);
  release = true;
  sched.join_all();
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

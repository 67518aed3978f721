// Topology loading, worker plans and steal orders, against the shipped machine files.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>

#include "test_support.hpp"
#include "vitte/vitte.hpp"

using vitte::Plan;
using vitte::PlanOptions;
using vitte::StealLevel;
using vitte::Topology;

namespace {
PlanOptions workers(std::size_t n, vitte::Placement p = vitte::Placement::Auto) {
  PlanOptions o;
  o.workers = n;
  o.placement = p;
  return o;
}
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const vitte::Error& e) {
    return e.what();
  }
  return "";
}
std::string temp_file(const std::string& name, const std::string& text) {
  const auto p = std::filesystem::temp_directory_path() / ("vitte-test-" + name);
  std::ofstream(p) << text;
  return p.string();
}
}  // namespace

TEST(Topology, ThisMachineHasCoresAndANode) {
  const Topology t = Topology::this_machine();
  EXPECT_TRUE(t.is_this_machine());
  EXPECT_GE(t.cores().size(), 1u);
  EXPECT_GE(t.nodes().size(), 1u);
  EXPECT_FALSE(t.nodes_with_cpus().empty());
}

TEST(Topology, EveryShippedXmlLoadsAndPlans) {
  const auto files = vitte::test::shipped_topologies();
  ASSERT_GE(files.size(), 5u);
  for (const std::string& f : files) {
    SCOPED_TRACE(f);
    const Topology t = Topology::from_xml(f);
    EXPECT_FALSE(t.is_this_machine());
    const Plan p = Plan::make(t, PlanOptions{});
    EXPECT_EQ(p.workers.size(), t.cores().size()) << "default: one worker per core";
    EXPECT_EQ(p.binding, vitte::Binding::Unpinned);
    EXPECT_NE(p.binding_reason.find("not this machine"), std::string::npos);
    for (const vitte::NumaNode& n : t.nodes()) {
      if (n.has_cpus())
        EXPECT_FALSE(p.arenas[n.id].empty()) << "node " << n.id << " has CPUs but no workers";
      else
        EXPECT_TRUE(p.arenas[n.id].empty()) << "CPU-less node " << n.id << " got workers";
    }
    // Every other worker appears exactly once in a worker's steal order, and remote
    // levels come nearest first with the matrix's distances.
    for (const vitte::WorkerSlot& w : p.workers) {
      std::multiset<unsigned> victims;
      unsigned last_distance = 0;
      for (const StealLevel& l : p.steal_order[w.index]) {
        const std::vector<unsigned> vs = p.victims(l);
        victims.insert(vs.begin(), vs.end());
        if (l.kind == StealLevel::Kind::Remote) {
          EXPECT_GT(l.distance, last_distance);
          last_distance = l.distance;
          for (unsigned n : p.nodes(l)) EXPECT_EQ(t.distance(w.node, n), l.distance);
          for (unsigned v : vs) EXPECT_NE(p.workers[v].node, w.node);
        } else {
          for (unsigned v : vs) EXPECT_EQ(p.workers[v].node, w.node);
        }
      }
      EXPECT_EQ(victims.size(), p.workers.size() - 1);
      EXPECT_EQ(victims.count(w.index), 0u);
    }
  }
}

TEST(Topology, LogicalAndOsNodeIndexesDifferOnTheOpteron) {
  const Topology t = Topology::from_xml(vitte::test::topology_file("16amd64-4distances.xml"));
  ASSERT_EQ(t.nodes().size(), 8u);
  EXPECT_EQ(t.nodes()[0].os_index, 1u);
  EXPECT_EQ(t.nodes()[1].os_index, 0u);
  EXPECT_NE(t.distance_origin().find("hwloc"), std::string::npos);
}

TEST(Topology, ClusterOnDieStealsFromTheSamePackageFirst) {
  const Topology t = Topology::from_xml(vitte::test::topology_file("28intel64-2p2g7c-CoDgroups.v1tov2.xml"));
  ASSERT_EQ(t.nodes().size(), 4u);
  EXPECT_EQ(t.distance(0, 1), 21u);
  EXPECT_EQ(t.distance(0, 2), 31u);
  const Plan p = Plan::make(t, workers(8));
  const unsigned w0 = p.arenas[0].front();
  const auto& levels = p.steal_order[w0];
  ASSERT_GE(levels.size(), 3u);
  const StealLevel& first_remote = levels[levels.size() - 2];
  EXPECT_EQ(first_remote.kind, StealLevel::Kind::Remote);
  EXPECT_EQ(p.nodes(first_remote), std::vector<unsigned>{1});
  EXPECT_EQ(p.nodes(levels.back()), (std::vector<unsigned>{2, 3}));
}

TEST(Topology, KnlMcdramNodesAreCpuLess) {
  const Topology t = Topology::from_xml(vitte::test::topology_file("64intel64-fakeKNL-SNC4-hybrid.xml"));
  ASSERT_EQ(t.nodes().size(), 8u);
  int cpu_less = 0;
  for (const auto& n : t.nodes()) cpu_less += !n.has_cpus();
  EXPECT_EQ(cpu_less, 4);
  EXPECT_EQ(t.nodes()[1].subtype, "MCDRAM");
}

TEST(Plan, WorkersSpreadEvenlyOverNodes) {
  const Topology t = Topology::from_synthetic("pack:2 numa:2 core:4 pu:2");
  const Plan p = Plan::make(t, workers(8));
  for (unsigned n = 0; n < 4; ++n) EXPECT_EQ(p.arenas[n].size(), 2u);
  const Plan smt = Plan::make(t, workers(32));
  for (unsigned n = 0; n < 4; ++n) EXPECT_EQ(smt.arenas[n].size(), 8u);
  std::set<unsigned> pus;
  for (const auto& w : smt.workers) pus.insert(w.pu);
  EXPECT_EQ(pus.size(), 32u) << "SMT siblings are used once the cores are taken";
}

TEST(Plan, SameL3PeersComeBeforeTheRestOfTheNode) {
  const Topology t = Topology::from_synthetic("numa:1 l3:2 core:2 pu:1");
  const Plan p = Plan::make(t, workers(4));
  const auto& levels = p.steal_order[0];
  ASSERT_EQ(levels.size(), 2u);
  EXPECT_EQ(levels[0].kind, StealLevel::Kind::SameL3);
  EXPECT_EQ(p.victims(levels[0]).size(), 1u);
  EXPECT_EQ(levels[1].kind, StealLevel::Kind::SameNode);
  EXPECT_EQ(p.victims(levels[1]).size(), 2u);
}

TEST(Plan, ForeignTopologyFoldsOntoThisMachineWhenPinningIsAsked) {
  const Topology t = Topology::from_synthetic("pack:2 core:2 pu:1");
  const Plan p = Plan::make(t, workers(4, vitte::Placement::Pin));
  EXPECT_EQ(p.binding, vitte::Binding::Folded);
  for (const auto& w : p.workers) EXPECT_GE(w.os_cpu, 0);
  EXPECT_NE(p.binding_reason.find("round-robin"), std::string::npos);
}

TEST(BadInput, MissingXmlNamesTheFile) {
  const std::string e = error_of([] { Topology::from_xml("/no/such/machine.xml"); });
  EXPECT_NE(e.find("/no/such/machine.xml"), std::string::npos) << e;
  EXPECT_NE(e.find("does not exist"), std::string::npos) << e;
}

TEST(BadInput, DirectoryInsteadOfXml) {
  const std::string e = error_of([] { Topology::from_xml(VITTE_TOPOLOGY_DIR); });
  EXPECT_NE(e.find("directory"), std::string::npos) << e;
}

TEST(BadInput, UnreadableXmlNamesTheFile) {
  const std::string p = temp_file("unreadable.xml", "<topology/>");
  std::filesystem::permissions(p, std::filesystem::perms::none);
  const bool root_reads_anyway = static_cast<bool>(std::ifstream(p));
  const std::string e = error_of([&] { Topology::from_xml(p); });
  EXPECT_NE(e.find(p), std::string::npos) << e;
  if (!root_reads_anyway) {
    EXPECT_NE(e.find("cannot be read"), std::string::npos) << e;
  }
  std::filesystem::remove(p);
}

TEST(BadInput, MalformedXmlIsRejected) {
  for (const std::string& text : {std::string("not xml at all"),
                                  std::string("<?xml version=\"1.0\"?>\n<topology><object type=\"Machine\""),
                                  std::string("<?xml version=\"1.0\"?>\n<html><body/></html>")}) {
    const std::string p = temp_file("malformed.xml", text);
    const std::string e = error_of([&] { Topology::from_xml(p); });
    EXPECT_NE(e.find(p), std::string::npos) << "for input: " << text << "\n got: " << e;
    std::filesystem::remove(p);
  }
}

TEST(BadInput, BadSyntheticStringIsNamed) {
  for (const std::string s : {"pack:2 frob:3", "core:x", "", "pack:0"}) {
    const std::string e = error_of([&] { Topology::from_synthetic(s); });
    EXPECT_FALSE(e.empty()) << "'" << s << "' was accepted";
    if (!s.empty()) {
      EXPECT_NE(e.find(s), std::string::npos) << e;
    }
  }
}

TEST(BadInput, PinnedPlacementOfMoreWorkersThanPus) {
  const Topology real = Topology::this_machine();
  const std::size_t too_many = real.pus().size() + 1;
  const std::string e = error_of([&] { Plan::make(real, workers(too_many, vitte::Placement::Pin)); });
  EXPECT_NE(e.find(std::to_string(too_many) + " workers"), std::string::npos) << e;
  const Topology xml = Topology::from_xml(vitte::test::topology_file("24em64t-2n6c2t-pci.xml"));
  EXPECT_FALSE(error_of([&] { Plan::make(xml, workers(25, vitte::Placement::Pin)); }).empty());
  // Auto placement does not fail: it runs unpinned and says so.
  const Plan p = Plan::make(real, workers(too_many, vitte::Placement::Auto));
  EXPECT_EQ(p.binding, vitte::Binding::Unpinned);
  EXPECT_NE(p.binding_reason.find("oversubscribed"), std::string::npos);
}

TEST(Plan, ManyWorkersPlanFastWithMemoryLinearInTheWorkers) {
  // 2 x 2 nodes, 4 L3 groups each, 1024 PUs: 4096 workers is the per-PU limit.
  const Topology t = Topology::from_synthetic("pack:2 numa:2 l3:4 core:16 pu:4");
  ASSERT_EQ(t.pus().size(), 1024u);
  const auto t0 = std::chrono::steady_clock::now();
  const Plan p = Plan::make(t, workers(4096));
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(p.workers.size(), 4096u);
  EXPECT_LT(took, std::chrono::seconds(2));
  // Shared lists: each node's workers once, plus each node's remote lists (the other
  // nodes' workers once each): at most nodes x workers entries, not workers^2.
  std::size_t entries = 0, levels = 0;
  for (const vitte::VictimList& l : p.victim_lists) entries += l.workers.size();
  for (const auto& order : p.steal_order) levels += order.size();
  EXPECT_LE(entries, t.nodes().size() * p.workers.size());
  EXPECT_LE(levels, (2 + t.nodes().size()) * p.workers.size());
  for (unsigned w : {0u, 1u, 1023u, 1500u, 4095u}) {
    SCOPED_TRACE(w);
    std::multiset<unsigned> victims;
    for (const StealLevel& l : p.steal_order[w]) {
      const std::vector<unsigned> vs = p.victims(l);
      victims.insert(vs.begin(), vs.end());
      for (unsigned v : vs) {
        if (l.kind == StealLevel::Kind::SameL3) {
          EXPECT_EQ(p.workers[v].l3, p.workers[w].l3);
        } else if (l.kind == StealLevel::Kind::SameNode) {
          EXPECT_NE(p.workers[v].l3, p.workers[w].l3);
        }
      }
    }
    EXPECT_EQ(victims.size(), p.workers.size() - 1);
    EXPECT_EQ(std::set<unsigned>(victims.begin(), victims.end()).size(), p.workers.size() - 1);
    EXPECT_EQ(victims.count(w), 0u);
  }
}

TEST(Plan, HugeWorkerCountsAreRefusedQuickly) {
  const Topology t = Topology::from_synthetic("numa:2 core:2 pu:1");  // 4 PUs: limit 16
  ASSERT_EQ(Plan::max_workers(t), 16u);
  EXPECT_EQ(Plan::make(t, workers(16)).workers.size(), 16u);
  const std::string e17 = error_of([&] { Plan::make(t, workers(17)); });
  EXPECT_NE(e17.find("17 workers"), std::string::npos) << e17;
  EXPECT_NE(e17.find("limit for 'synthetic:numa:2 core:2 pu:1' is 16"), std::string::npos) << e17;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string neg = error_of([&] { Plan::make(t, workers(SIZE_MAX)); });
  EXPECT_NE(neg.find("18446744073709551615 workers"), std::string::npos) << neg;
  EXPECT_NE(neg.find("negative"), std::string::npos) << neg;
  PlanOptions per_node;
  per_node.workers_per_node = 9;  // 9 x 2 nodes = 18 > 16
  const std::string pn = error_of([&] { Plan::make(t, per_node); });
  EXPECT_NE(pn.find("make 18 workers"), std::string::npos) << pn;
  per_node.workers_per_node = SIZE_MAX / 2 + 1;  // would overflow when multiplied
  EXPECT_NE(error_of([&] { Plan::make(t, per_node); }).find("too many"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  // The absolute cap holds on machines with very many PUs.
  const Topology big = Topology::from_synthetic("pack:4 numa:2 l3:4 core:16 pu:9");  // 4608 PUs
  EXPECT_EQ(Plan::max_workers(big), Plan::kMaxWorkers);
  const std::string cap = error_of([&] { Plan::make(big, workers(Plan::kMaxWorkers + 1)); });
  EXPECT_NE(cap.find("never more than 16384"), std::string::npos) << cap;
}

TEST(BadInput, XmlMustBeARegularFileOfBoundedSize) {
  std::string e = error_of([] { Topology::from_xml("/dev/zero"); });
  EXPECT_NE(e.find("'/dev/zero' is a character device"), std::string::npos) << e;
  const auto fifo = std::filesystem::temp_directory_path() / "vitte-test-fifo.xml";
  std::filesystem::remove(fifo);
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  e = error_of([&] { Topology::from_xml(fifo.string()); });  // must not block
  EXPECT_NE(e.find("is a FIFO"), std::string::npos) << e;
  std::filesystem::remove(fifo);
  const std::string big = temp_file("big.xml", "<" + std::string(Topology::kMaxXmlBytes, ' '));
  e = error_of([&] { Topology::from_xml(big); });
  EXPECT_NE(e.find("'" + big + "' is too large"), std::string::npos) << e;
  std::filesystem::remove(big);
}

TEST(Plan, MachinesWithoutL3HaveInferredGroupsAndNoSameL3Steals) {
  for (const char* f : {"16amd64-4distances.xml", "28intel64-2p2g7c-CoDgroups.v1tov2.xml"}) {
    SCOPED_TRACE(f);
    const Topology t = Topology::from_xml(vitte::test::topology_file(f));
    for (const vitte::L3Group& g : t.l3s()) EXPECT_TRUE(g.inferred);
    const Plan p = Plan::make(t, PlanOptions{});
    bool same_node = false;
    for (const auto& order : p.steal_order)
      for (const StealLevel& l : order) {
        EXPECT_NE(l.kind, StealLevel::Kind::SameL3) << "no L3 cache: there is no same-L3 level";
        same_node = same_node || l.kind == StealLevel::Kind::SameNode;
      }
    EXPECT_TRUE(same_node);
  }
}

TEST(Topology, ANodeItLacksIsAUsageErrorNamingIt) {
  const vitte::Topology t = vitte::Topology::from_xml(vitte::test::topology_file("16amd64-4distances.xml"));
  const unsigned n = static_cast<unsigned>(t.nodes().size());
  for (unsigned bad : {n, n + 1, ~0u}) {
    try {
      (void)t.nodes_by_distance(bad);  // erased begin() + node before any check
      ADD_FAILURE() << "nodes_by_distance(" << bad << ") was accepted";
    } catch (const vitte::UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("node " + std::to_string(bad)), std::string::npos) << e.what();
    }
    EXPECT_THROW((void)t.distance(0, bad), vitte::UsageError);
  }
  EXPECT_EQ(t.nodes_by_distance(0).size(), n - 1);
}

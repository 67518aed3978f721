// Node-local memory: the kernel's policy for every block names the node asked for, the STL
// adaptor works, statistics add up, bad requests are named.
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "vitte/vitte.hpp"

namespace {
const bool kJemalloc = vitte::memory_backend().rfind("jemalloc", 0) == 0;
}

TEST(NodeMemory, PagesAreBoundToTheNodeAskedFor) {
  std::printf("backend: %s\n", vitte::memory_backend().c_str());
  const std::size_t big = 64 * 4096;
  void* p = vitte::allocate_on_node(big, 0);
  std::memset(p, 1, big);  // first touch after binding
  EXPECT_EQ(vitte::memory_binding(p, big), std::vector<unsigned>{0});
  vitte::deallocate(p, big);
  EXPECT_EQ(vitte::memory_backend().find("binding failed"), std::string::npos) << vitte::memory_backend();
}

TEST(NodeMemory, SmallBlocksToo) {
  void* p = vitte::allocate_on_node(48, 0, 16);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 16, 0u);
  std::memset(p, 2, 48);
  if (kJemalloc) {
    EXPECT_EQ(vitte::memory_binding(p, 48), std::vector<unsigned>{0}) << "the arena's extents are bound";
  }
  vitte::deallocate(p, 48, 16);
}

TEST(NodeMemory, StlAdaptorAndStatistics) {
  const auto before = vitte::node_memory_stats();
  {
    std::vector<double, vitte::NodeAllocator<double>> v(100000, 1.5, vitte::NodeAllocator<double>(0));
    EXPECT_DOUBLE_EQ(std::accumulate(v.begin(), v.end(), 0.0), 150000.0);
    EXPECT_EQ(vitte::memory_binding(v.data(), v.size() * sizeof(double)), std::vector<unsigned>{0});
  }
  const auto after = vitte::node_memory_stats();
  ASSERT_EQ(after.size(), before.size());
  EXPECT_EQ(after[0].allocations - before[0].allocations, 1u);
  EXPECT_EQ(after[0].bytes_allocated - before[0].bytes_allocated, 100000 * sizeof(double));
  EXPECT_EQ(after[0].frees - before[0].frees, 1u);
  EXPECT_EQ(after[0].bytes_live(), before[0].bytes_live());
}

TEST(NodeMemory, AWorkersLocalMemoryIsOnItsNode) {
  vitte::Scheduler sched(2);
  std::vector<vitte::Future<bool>> checks;
  for (int i = 0; i < 16; ++i)
    checks.push_back(sched.async([&sched] {
      const unsigned node = sched.plan().workers[static_cast<unsigned>(vitte::Scheduler::current_worker())].node;
      const std::size_t n = 8 * 4096;
      void* p = vitte::allocate_local(n);
      std::memset(p, 3, n);
      const bool ok = vitte::memory_binding(p, n) == std::vector<unsigned>{node};
      vitte::deallocate(p, n);
      return ok;
    }));
  for (auto& f : checks) EXPECT_TRUE(f.get());
}

TEST(NodeMemory, BadRequestsAreNamed) {
  try {
    vitte::allocate_on_node(64, 4096);
    FAIL();
  } catch (const vitte::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("node 4096"), std::string::npos) << e.what();
  }
  EXPECT_THROW(vitte::allocate_on_node(64, 0, 3), vitte::UsageError);
}

TEST(NodeMemoryStress, ManyThreadsAllocateAndFree) {
  const int threads = 4;
  const int rounds = static_cast<int>(vitte::test::scaled(20000));
  const auto before = vitte::node_memory_stats();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      std::vector<std::pair<void*, std::size_t>> live;
      for (int i = 0; i < rounds; ++i) {
        const std::size_t n = 16 + static_cast<std::size_t>((i * 7919 + t) % 9000);
        void* p = vitte::allocate_on_node(n, 0);
        static_cast<char*>(p)[n - 1] = 1;
        live.emplace_back(p, n);
        if (live.size() > 64) {
          vitte::deallocate_on_node(live.front().first, live.front().second, 0);
          live.erase(live.begin());
        }
      }
      for (auto& [p, n] : live) vitte::deallocate_on_node(p, n, 0);
    });
  for (auto& t : ts) t.join();
  const auto after = vitte::node_memory_stats();
  EXPECT_EQ(after[0].allocations - before[0].allocations, static_cast<std::uint64_t>(threads * rounds));
  EXPECT_EQ(after[0].bytes_live(), before[0].bytes_live()) << "everything allocated was freed";
}

// memory.allocator = "node-local": plain new/malloc inside tasks come from the worker's node.
TEST(NodeMemory, NodeLocalAllocatorRoutesTasksMalloc) {
  vitte::Options o;
  o.config = vitte::Config::parse("[memory]\nallocator = \"node-local\"\n", "node-local.toml");
  if (!kJemalloc) {
    try {
      vitte::Scheduler s(std::move(o));
      FAIL() << "node-local malloc cannot work without jemalloc";
    } catch (const vitte::PlanError& e) {
      EXPECT_NE(std::string(e.what()).find("jemalloc"), std::string::npos) << e.what();
    }
    return;
  }
  vitte::Scheduler sched(std::move(o));
  std::vector<vitte::Future<bool>> checks;
  for (int i = 0; i < 8; ++i)
    checks.push_back(sched.async([] {
      const std::size_t n = 256 * 1024;
      auto* v = new std::vector<char>(n, 1);
      const bool ok = vitte::memory_binding(v->data(), n) == std::vector<unsigned>{0};
      delete v;
      return ok;
    }));
  for (auto& f : checks) EXPECT_TRUE(f.get());
}

TEST(NodeMemory, AutoRoutingSaysWhatItDecidedAndWhy) {
  vitte::Scheduler sched(2);
  const vitte::MallocRouting& m = sched.malloc_routing();
  EXPECT_FALSE(m.reason.empty());
  if (vitte::Topology::this_machine().nodes().size() < 2 || !kJemalloc) {
    EXPECT_FALSE(m.node_local) << m.reason;
  }
  vitte::Options sys;
  sys.config = vitte::Config::parse("[memory]\nallocator = \"system\"\n");
  vitte::Scheduler s2(std::move(sys));
  EXPECT_FALSE(s2.malloc_routing().node_local);
  EXPECT_NE(s2.malloc_routing().reason.find("system"), std::string::npos);
}

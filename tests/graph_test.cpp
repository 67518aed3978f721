// Graph: ordering, reruns, affinity, subflows, errors, refusals, concurrency, deep chains.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <climits>
#include <functional>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"
#include "vitte/vitte.hpp"

namespace {

// Gives every task a sequence stamp when it runs; check() then verifies every edge.
struct Stamps {
  explicit Stamps(std::size_t n) : at(n) {}
  void reset() {
    for (auto& a : at) a.store(0, std::memory_order_relaxed);
    seq.store(0);
  }
  void stamp(std::size_t i) { at[i].store(seq.fetch_add(1) + 1, std::memory_order_relaxed); }
  std::uint64_t of(std::size_t i) const { return at[i].load(std::memory_order_relaxed); }
  std::atomic<std::uint64_t> seq{0};
  std::vector<std::atomic<std::uint64_t>> at;
};

// A layered random DAG: `layers` x `width` tasks, each with up to 3 predecessors in the
// layer above. Returns the edges (from, to).
std::vector<std::pair<std::size_t, std::size_t>> random_dag(vitte::Graph& g, Stamps& st, std::size_t layers,
                                                            std::size_t width, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<vitte::TaskRef> t;
  for (std::size_t i = 0; i < layers * width; ++i) t.push_back(g.add([&st, i] { st.stamp(i); }));
  std::vector<std::pair<std::size_t, std::size_t>> edges;
  for (std::size_t l = 1; l < layers; ++l)
    for (std::size_t x = 0; x < width; ++x) {
      const std::size_t to = l * width + x;
      const int k = static_cast<int>(rng() % 4);
      for (int j = 0; j < k; ++j) {
        const std::size_t from = (l - 1) * width + rng() % width;
        t[from].precede(t[to]);
        edges.emplace_back(from, to);
      }
    }
  return edges;
}

void expect_edges_respected(const Stamps& st, const std::vector<std::pair<std::size_t, std::size_t>>& edges) {
  for (std::size_t i = 0; i < st.at.size(); ++i) ASSERT_NE(st.of(i), 0u) << "task " << i << " did not run";
  for (auto [a, b] : edges) ASSERT_LT(st.of(a), st.of(b)) << "edge " << a << " -> " << b << " violated";
}

}  // namespace

TEST(Graph, EveryEdgeIsRespected) {
  vitte::Scheduler sched(2);
  vitte::Graph g;
  Stamps st(40 * 25);
  auto edges = random_dag(g, st, 40, 25, 7);
  sched.run(g).wait();
  expect_edges_respected(st, edges);
}

TEST(Graph, EmptyGraphCompletesAtOnce) {
  vitte::Scheduler sched(1);
  vitte::Graph g;
  auto r = sched.run(g);
  EXPECT_TRUE(r.ready());
  r.wait();
  EXPECT_FALSE(g.running());
  EXPECT_THROW(r.wait(), vitte::UsageError) << "the handle is empty once waited for";
  sched.shutdown();
  EXPECT_THROW((void)sched.run(g), vitte::UsageError) << "an empty graph after shutdown is refused too";
  EXPECT_FALSE(g.running());
}

// Every task that threw counts in the metrics' failed, not only the one rethrown.
TEST(Graph, EveryErrorCountsInTheMetrics) {
  vitte::Scheduler sched(2);
  vitte::Graph g;
  std::atomic<int> started{0};
  for (int i = 0; i < 2; ++i)
    g.add([&] {
      ++started;
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      while (started.load() < 2 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
      throw std::runtime_error("boom");
    });
  const std::uint64_t before = sched.metrics().total.failed;
  EXPECT_THROW(sched.run(g).wait(), std::runtime_error);
  EXPECT_EQ(sched.metrics().total.failed - before, static_cast<std::uint64_t>(started.load()));
}

TEST(Graph, RunsTheSameGraphManyTimes) {
  vitte::Scheduler sched(2);
  vitte::Graph g;
  Stamps st(30 * 10);
  auto edges = random_dag(g, st, 30, 10, 11);
  for (int run = 0; run < 100; ++run) {
    st.reset();
    sched.run(g).get();
    expect_edges_respected(st, edges);
  }
}

TEST(Graph, RunFromInsideATaskAndFromAnotherScheduler) {
  vitte::Scheduler a(2), b(1);
  vitte::Graph g;
  std::atomic<int> n{0};
  auto x = g.add([&] { n++; });
  auto y = g.add([&] { n++; });
  x.precede(y);
  a.async([&] { a.run(g).wait(); }).get();  // joined by a worker, which helps meanwhile
  b.async([&] { a.run(g).wait(); }).get();  // a worker of another scheduler: external
  EXPECT_EQ(n.load(), 4);
}

TEST(Graph, ConcurrentRunOfTheSameGraphIsRefused) {
  vitte::Scheduler sched(1);
  vitte::Graph g("busy");
  std::atomic<bool> go{false};
  g.add([&] {
    while (!go.load()) std::this_thread::yield();
  });
  auto r = sched.run(g);
  try {
    (void)sched.run(g);
    FAIL() << "a second run of a running graph must be refused";
  } catch (const vitte::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("'busy' is already running"), std::string::npos) << e.what();
  }
  go = true;
  r.wait();
  sched.run(g).wait();  // fine once waited for
}

TEST(Graph, EditingWhileRunningIsRefused) {
  vitte::Scheduler sched(1);
  vitte::Graph g;
  std::atomic<bool> go{false};
  auto a = g.add([&] {
    while (!go.load()) std::this_thread::yield();
  });
  auto b = g.add([] {});
  auto r = sched.run(g);
  EXPECT_THROW(g.add([] {}), vitte::UsageError);
  EXPECT_THROW(a.precede(b), vitte::UsageError);
  EXPECT_THROW(b.options({.node = 0}), vitte::UsageError);
  go = true;
  r.wait();
  a.precede(b);  // allowed again
  sched.run(g).wait();
  EXPECT_EQ(g.edges(), 1u);
}

// Edits racing with run() from another thread are each either done or refused with
// UsageError (the phase word, G6), never a corrupted graph; clean under TSan.
TEST(Graph, EditsRacingWithRunsAreRefusedOrDone) {
  vitte::Scheduler sched(2);
  vitte::Graph g("race");
  std::atomic<long> ran{0};
  vitte::TaskRef first = g.add([&] { ++ran; });
  std::atomic<bool> stop{false};
  std::thread runner([&] {
    while (!stop.load()) {
      try {
        sched.run(g).wait();
      } catch (const vitte::UsageError&) {  // refused: an edit was in progress
      }
    }
  });
  long done = 0, refused = 0;
  const int rounds = static_cast<int>(vitte::test::scaled(4000));
  for (int i = 0; i < rounds; ++i) {
    try {
      vitte::TaskRef t = g.add([&] { ++ran; });
      ++done;
      try {
        first.precede(t);
        t.options({.node = 0});
      } catch (const vitte::UsageError&) {
        ++refused;
      }
    } catch (const vitte::UsageError&) {
      ++refused;
    }
  }
  stop = true;
  runner.join();
  EXPECT_GT(done + refused, 0);
  EXPECT_FALSE(g.running());
  // The graph is intact: every task that was added runs once per run.
  ran = 0;
  sched.run(g).wait();
  EXPECT_EQ(ran.load(), static_cast<long>(g.size()));
}

TEST(Graph, EditingFromOneOfItsOwnTasksIsRefused) {
  vitte::Scheduler sched(2);
  vitte::Graph g;
  g.add([&] { g.add([] {}); });
  EXPECT_THROW(sched.run(g).wait(), vitte::UsageError);
  EXPECT_EQ(g.size(), 1u);
}

TEST(Graph, CrossGraphEdgeIsRefused) {
  vitte::Graph g1("one"), g2("two");
  auto a = g1.add([] {}, "a");
  auto b = g2.add([] {}, "b");
  try {
    a.precede(b);
    FAIL();
  } catch (const vitte::UsageError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'one'"), std::string::npos) << m;
    EXPECT_NE(m.find("'two'"), std::string::npos) << m;
  }
  EXPECT_EQ(g1.edges(), 0u);
}

TEST(Graph, CycleIsRefusedAtRunNamingATaskOnIt) {
  vitte::Scheduler sched(2);
  vitte::Graph g("loop");
  auto s = g.add([] {}, "start");
  auto a = g.add([] {}, "a");
  auto b = g.add([] {}, "b");
  auto c = g.add([] {}, "c");
  auto d = g.add([] {}, "after");
  s.precede(a);
  a.precede(b);
  b.precede(c);
  c.precede(a);
  c.precede(d);
  try {
    (void)sched.run(g);
    FAIL() << "a cycle must be refused";
  } catch (const vitte::UsageError& e) {
    const std::string m = e.what();
    const bool names_one = m.find("'a'") != std::string::npos || m.find("'b'") != std::string::npos ||
                           m.find("'c'") != std::string::npos;
    EXPECT_TRUE(names_one) << m;
    EXPECT_NE(m.find("cycle"), std::string::npos) << m;
  }
  EXPECT_FALSE(g.running());
  vitte::Graph self;
  auto x = self.add([] {});
  x.precede(x);
  EXPECT_THROW((void)sched.run(self), vitte::UsageError);
}

TEST(Graph, ExceptionCancelsWhatHasNotStartedAndTheGraphRunsAgain) {
  vitte::Scheduler sched(1);
  vitte::Graph g;
  std::atomic<int> ran{0};
  std::atomic<bool> fail{true};
  auto head = g.add([&] {
    if (fail) throw std::runtime_error("head failed");
  });
  for (int i = 0; i < 100; ++i) head.precede(g.add([&] { ran++; }));
  try {
    sched.run(g).wait();
    FAIL() << "wait() must rethrow";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "head failed");
  }
  EXPECT_EQ(ran.load(), 0) << "successors of the failed task never start";
  fail = false;
  sched.run(g).wait();
  EXPECT_EQ(ran.load(), 100);
}

TEST(Graph, ErrorMidRunSkipsTheRestAndRerunIsComplete) {
  vitte::Scheduler sched(2);
  vitte::Graph g;
  const std::size_t n = 2000;
  std::vector<std::atomic<int>> count(n);
  std::atomic<bool> fail{true};
  std::vector<vitte::TaskRef> t;
  for (std::size_t i = 0; i < n; ++i)
    t.push_back(g.add([&, i] {
      count[i]++;
      if (i == 500 && fail) throw std::logic_error("mid");
    }));
  for (std::size_t i = 1; i < n; ++i) t[i / 2].precede(t[i]);  // a binary tree, in-degree 1
  for (std::size_t i = 2; i + 1 < n; i += 7) t[i - 1].precede(t[i + 1]);  // joins with in-degree 2
  EXPECT_THROW(sched.run(g).get(), std::logic_error);
  for (std::size_t c = 1000; c < n; c += 1000) EXPECT_EQ(count[c].load(), 0) << "a descendant of task 500 ran";
  fail = false;
  for (auto& c : count) c = 0;
  sched.run(g).get();  // join counters reset after the cancelled run
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(count[i].load(), 1) << i;
}

TEST(Graph, AffinityRunsTasksOnTheirNode) {
  vitte::Options o;
  o.topology = vitte::Topology::from_synthetic("pack:2 numa:1 core:2 pu:1");
  vitte::Scheduler sched(std::move(o));
  ASSERT_EQ(sched.topology().nodes().size(), 2u);
  const vitte::Plan& plan = sched.plan();
  vitte::Graph g;
  const std::size_t n = 200;
  std::vector<int> ran_on(n, -1);
  std::vector<vitte::TaskRef> t;
  for (std::size_t i = 0; i < n; ++i) {
    t.push_back(g.add([&, i] { ran_on[i] = vitte::Scheduler::current_worker(); }));
    t.back().options({.node = static_cast<unsigned>(i % 3 == 2 ? 0 : i % 2)});
  }
  for (std::size_t i = 1; i < n; ++i) t[i - 1].precede(t[i]);  // a chain that changes node
  for (int run = 0; run < 5; ++run) {
    sched.run(g).wait();
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_GE(ran_on[i], 0);
      EXPECT_EQ(plan.workers[static_cast<std::size_t>(ran_on[i])].node, i % 3 == 2 ? 0u : i % 2) << "task " << i;
    }
  }
  vitte::Graph bad;
  bad.add([] {}).options({.node = 7});
  EXPECT_THROW((void)sched.run(bad), vitte::UsageError);
  // Numbers beyond the node field (32767) never wrap to "anywhere": refused at once.
  vitte::Graph wide;
  vitte::TaskRef w = wide.add([] {});
  EXPECT_THROW(w.options({.node = UINT_MAX}), vitte::UsageError);
  EXPECT_THROW(w.options({.node = 0x80000001u}), vitte::UsageError);
  EXPECT_THROW(w.options({.node = 32768u}), vitte::UsageError);
  w.options({.node = 32767u});  // in range, but not in this topology: refused at run
  EXPECT_THROW((void)sched.run(wide), vitte::UsageError);
}

TEST(Graph, EmptyCallableIsRefusedAtAdd) {
  vitte::Graph g;
  EXPECT_THROW(g.add(std::function<void()>{}), vitte::UsageError);
  EXPECT_THROW(g.add(std::function<void(vitte::Subflow&)>{}), vitte::UsageError);
  void (*null_fn)() = nullptr;
  EXPECT_THROW(g.add(null_fn), vitte::UsageError);
  EXPECT_EQ(g.size(), 0u);
  g.add([] {});                          // a captureless lambda is fine
  g.add(std::function<void()>([] {}));   // so is a non-empty std::function
  EXPECT_EQ(g.size(), 2u);
  vitte::Scheduler sched(1);
  sched.run(g).wait();
}

// Destroying the scheduler while a run with affinity is in flight (nobody waited yet)
// lets the run finish first: the workers of node 1 must not leave while a node-0 strand
// still has node-1 work to hand over.
TEST(Graph, SchedulerDestroyedWhileARunWithAffinityIsInFlight) {
  const int rc = vitte::test::in_child([] {
    vitte::Graph g("aff");
    std::atomic<int> ran{0};
    vitte::GraphRun r;
    {
      vitte::Options o;
      o.topology = vitte::Topology::from_synthetic("pack:2 numa:1 core:2 pu:1");
      vitte::Scheduler sched(std::move(o));
      auto a = g.add([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        ++ran;
      });
      a.options({.node = 0});
      for (int i = 0; i < 50; ++i) {
        auto b = g.add([&] { ++ran; });
        b.options({.node = 1});
        a.precede(b);
        auto d = g.add([&] { ++ran; });
        d.options({.node = 0});
        b.precede(d);
      }
      r = sched.run(g);
    }  // shutdown: waits for the run, drops nothing
    const int before = ran.load();
    r.wait();
    return before == 101 ? 0 : 1;
  });
  EXPECT_EQ(rc, 0) << "-1: hung (killed)";
}

TEST(Graph, AChainStaysOnOneWorker) {
  vitte::Scheduler sched(2);
  vitte::Graph g;
  const std::size_t n = 10000;
  std::vector<int> w(n, -1);
  vitte::TaskRef prev;
  for (std::size_t i = 0; i < n; ++i) {
    auto t = g.add([&, i] { w[i] = vitte::Scheduler::current_worker(); });
    if (prev.valid()) prev.precede(t);
    prev = t;
  }
  sched.run(g).wait();
  for (std::size_t i = 1; i < n; ++i) ASSERT_EQ(w[i], w[0]) << i;
}

TEST(Graph, SubflowTasksFinishBeforeTheSuccessors) {
  vitte::Scheduler sched(2);
  vitte::Graph g;
  std::atomic<int> children{0}, grandchildren{0};
  std::atomic<int> seen_by_successor{-1};
  auto parent = g.add(
      [&](vitte::Subflow& sf) {
        std::vector<vitte::TaskRef> c;
        for (int i = 0; i < 50; ++i)
          c.push_back(sf.add([&](vitte::Subflow& inner) {  // nested: a subflow of its own
            children++;
            for (int j = 0; j < 4; ++j) inner.add([&] { grandchildren++; });
          }));
        for (int i = 1; i < 50; ++i) c[i - 1].precede(c[i]);
      },
      "parent");
  auto after = g.add([&] { seen_by_successor = children.load() * 1000 + grandchildren.load(); }, "after");
  parent.precede(after);
  for (int run = 0; run < 20; ++run) {
    children = grandchildren = 0;
    sched.run(g).wait();
    EXPECT_EQ(seen_by_successor.load(), 50 * 1000 + 200);
  }
}

TEST(Graph, SubflowErrorsAndCycles) {
  vitte::Scheduler sched(2);
  vitte::Graph g;
  std::atomic<int> mode{0};
  std::atomic<int> after_ran{0};
  auto p = g.add([&](vitte::Subflow& sf) {
    if (mode == 1) sf.add([] { throw std::runtime_error("child"); });
    if (mode == 2) {
      auto a = sf.add([] {}, "x");
      auto b = sf.add([] {}, "y");
      a.precede(b);
      b.precede(a);
    }
  });
  p.precede(g.add([&] { after_ran++; }));
  mode = 1;
  EXPECT_THROW(sched.run(g).wait(), std::runtime_error);
  mode = 2;
  try {
    sched.run(g).wait();
    FAIL();
  } catch (const vitte::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("cycle"), std::string::npos) << e.what();
  }
  EXPECT_EQ(after_ran.load(), 0);
  mode = 0;
  sched.run(g).wait();
  EXPECT_EQ(after_ran.load(), 1);
}

TEST(Graph, DotAndTrace) {
  vitte::Scheduler sched(2);
  vitte::Graph g("demo");
  auto a = g.add([] {}, "read \"x\"");
  auto b = g.add([](vitte::Subflow& sf) { sf.add([] {}, "kid"); }, "lex");
  a.precede(b);
  b.options({.node = 0});
  const std::string dot = g.dot();
  EXPECT_NE(dot.find("digraph \"demo\""), std::string::npos) << dot;
  EXPECT_NE(dot.find("read \\\"x\\\""), std::string::npos) << dot;
  EXPECT_NE(dot.find("n0 -> n1"), std::string::npos) << dot;
  sched.run(g).wait();
  EXPECT_THROW((void)g.trace_json(), vitte::UsageError) << "no timings without RunOptions::trace";
  sched.run(g, vitte::RunOptions{.trace = true}).wait();
  const std::string json = g.trace_json();
  EXPECT_NE(json.find("\"name\": \"lex\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"parent\": \"1\""), std::string::npos) << json;
  EXPECT_EQ(json.find("\"ran\": false"), std::string::npos) << json;
  EXPECT_NE(json.find("\"worker\": "), std::string::npos) << json;
  EXPECT_NE(g.trace_dot().find("worker"), std::string::npos);
}

// 20,000 nested subflows: the exports walk them without recursion, with ids that do not
// grow with depth, in linear time.
TEST(Graph, TraceOfDeeplyNestedSubflows) {
  vitte::Scheduler sched(2);
  vitte::Graph g("deep");
  const int depth = 20000;
  std::function<void(vitte::Subflow&, int)> nest = [&](vitte::Subflow& sf, int d) {
    if (d == 0) {
      sf.add([] {}, "leaf");
      return;
    }
    sf.add([&nest, d](vitte::Subflow& s) { nest(s, d - 1); });
  };
  g.add([&](vitte::Subflow& sf) { nest(sf, depth); }, "root");
  sched.run(g, vitte::RunOptions{.trace = true}).wait();
  const auto t0 = std::chrono::steady_clock::now();
  const nlohmann::json j = nlohmann::json::parse(g.trace_json());
  ASSERT_EQ(j["tasks"].size(), static_cast<std::size_t>(depth) + 2);
  EXPECT_TRUE(j["tasks"][0]["parent"].is_null());
  for (std::size_t i = 1; i < j["tasks"].size(); ++i) {  // each task's parent is the one before
    ASSERT_EQ(j["tasks"][i]["parent"], j["tasks"][i - 1]["id"]) << i;
    ASSERT_TRUE(j["tasks"][i]["ran"].get<bool>()) << i;
  }
  EXPECT_EQ(j["tasks"].back()["name"], "leaf");
  const std::string dot = g.trace_dot();
  EXPECT_NE(dot.find("subgraph cluster_n0 {"), std::string::npos);
  EXPECT_NE(dot.find("leaf"), std::string::npos);
  EXPECT_LT(dot.size(), std::size_t{40} << 20) << "the DOT text grows linearly";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
}

TEST(Graph, DeepChainDoesNotGrowTheStack) {
  vitte::Options o;
  o.workers = 2;
  o.stack_size = 256 * 1024;  // a recursive release would need far more for 1M nodes
  vitte::Scheduler sched(std::move(o));
  vitte::Graph g;
  const std::size_t n = vitte::test::scaled(1'000'000);
  std::uint64_t sum = 0;
  vitte::TaskRef prev;
  for (std::size_t i = 0; i < n; ++i) {
    auto t = g.add([&sum, i] { sum += i; });
    if (prev.valid()) prev.precede(t);
    prev = t;
  }
  sched.run(g).wait();
  EXPECT_EQ(sum, static_cast<std::uint64_t>(n) * (n - 1) / 2);
  // and a deep chain of nested subflows completes its parents in a loop as well
  vitte::Graph nest;
  std::atomic<int> depth{0};
  std::function<void(vitte::Subflow&)> dive = [&](vitte::Subflow& sf) {
    if (++depth < 20000) sf.add(dive);
  };
  nest.add(dive);
  sched.run(nest).wait();
  EXPECT_EQ(depth.load(), 20000);
}

TEST(GraphStress, ManyDifferentGraphsAtOnce) {
  vitte::Scheduler sched(2);
  const std::size_t graphs = 6, rounds = vitte::test::scaled(30);
  std::vector<std::unique_ptr<vitte::Graph>> gs;
  std::vector<std::unique_ptr<Stamps>> st;
  std::vector<std::vector<std::pair<std::size_t, std::size_t>>> edges;
  for (std::size_t i = 0; i < graphs; ++i) {
    gs.push_back(std::make_unique<vitte::Graph>("g" + std::to_string(i)));
    st.push_back(std::make_unique<Stamps>(20 * 20));
    edges.push_back(random_dag(*gs[i], *st[i], 20, 20, static_cast<unsigned>(100 + i)));
  }
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < graphs; ++i)
    threads.emplace_back([&, i] {
      for (std::size_t r = 0; r < rounds; ++r) {
        st[i]->reset();
        sched.run(*gs[i], vitte::RunOptions{.trace = r % 5 == 0}).wait();
        expect_edges_respected(*st[i], edges[i]);
      }
    });
  for (auto& t : threads) t.join();
  // and many at once from inside one task, joined there
  sched.async([&] {
    for (std::size_t r = 0; r < rounds; ++r) {
      std::vector<vitte::GraphRun> runs;
      for (std::size_t i = 0; i < graphs; ++i) {
        st[i]->reset();
        runs.push_back(sched.run(*gs[i]));
      }
      for (auto& run : runs) run.wait();
      for (std::size_t i = 0; i < graphs; ++i) expect_edges_respected(*st[i], edges[i]);
    }
  }).get();
}

TEST(GraphStress, RandomErrorsAndReruns) {
  vitte::Scheduler sched(2);
  vitte::Graph g;
  const std::size_t n = 3000;
  std::atomic<std::size_t> throw_at{n};
  std::vector<std::atomic<int>> count(n);
  std::vector<vitte::TaskRef> t;
  for (std::size_t i = 0; i < n; ++i)
    t.push_back(g.add([&, i](vitte::Subflow& sf) {
      count[i]++;
      if (i % 100 == 0) sf.add([&, i] { if (throw_at == i + 1) throw std::runtime_error("child"); });
      if (throw_at == i) throw std::runtime_error("task");
    }));
  std::mt19937 rng(5);
  for (std::size_t i = 1; i < n; ++i)
    for (int k = 0; k < 2; ++k) t[rng() % i].precede(t[i]);
  for (std::size_t r = 0; r < vitte::test::scaled(60); ++r) {
    for (auto& c : count) c = 0;
    const bool fail = r % 2 == 0;
    throw_at = fail ? rng() % n + (r % 4 == 0 ? 1 : 0) : n + 10;
    if (fail && throw_at % 100 != 1 && r % 4 == 0) throw_at = throw_at - 1;  // a task, not a child
    bool threw = false;
    try {
      sched.run(g).wait();
    } catch (const std::runtime_error&) {
      threw = true;
    }
    if (!fail) {
      EXPECT_FALSE(threw);
      for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(count[i].load(), 1) << i;
    }
  }
}

// The graph's ordering contract under explored schedules (deterministic.hpp): on a 4-node
// machine's topology, every task starts after all its predecessors (and a subflow's tasks
// before the task's successors), in every schedule the seeds choose, with remote steals.
TEST(Graph, OrderHoldsUnderExploredSchedules) {
  vitte::ExploreOptions eo;
  eo.seeds = 40 * VITTE_STRESS_SCALE / 100 + 8;
  eo.workers = 8;
  eo.configure = [](vitte::Options& o) {
    o.topology = vitte::Topology::from_xml(std::string(VITTE_TOPOLOGY_DIR) + "/96em64t-4n4d3ca2co-pci.xml");
  };
  const vitte::ExploreResult r = vitte::explore(eo, [](vitte::Scheduler& s) {
    constexpr int kLayers = 4, kWidth = 5;
    std::atomic<int> done[kLayers][kWidth] = {};
    std::atomic<int> sub_done{0};
    vitte::Graph g("layers");
    std::vector<vitte::TaskRef> prev;
    for (int l = 0; l < kLayers; ++l) {
      std::vector<vitte::TaskRef> cur;
      for (int i = 0; i < kWidth; ++i) {
        auto check = [&, l, i] {
          if (l > 0)
            for (int j = 0; j < kWidth; ++j)
              if (done[l - 1][j].load() == 0) throw std::runtime_error("a task started before a predecessor ended");
          if (l == kLayers - 1 && sub_done.load() != 3) throw std::runtime_error("a successor started before a subflow ended");
          done[l][i].store(1);
        };
        if (l == kLayers - 2 && i == 0)
          cur.push_back(g.add([&, check](vitte::Subflow& sf) {
            check();
            for (int k = 0; k < 3; ++k) sf.add([&] { sub_done.fetch_add(1); });
          }));
        else
          cur.push_back(g.add(check));
      }
      for (auto& p : prev)
        for (auto& c : cur) p.precede(c);
      prev = std::move(cur);
    }
    s.run(g).wait();
  });
  EXPECT_FALSE(r.failed) << "seed " << r.seed << ": " << r.error;
  EXPECT_EQ(r.runs, eo.seeds);
}

// The live view (vitte-sched top, run --live): frames rendered from hand-made snapshots,
// and the command on a pseudo-terminal and on a pipe.
#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "cli/live_view.hpp"
#include "cli_support.hpp"

using namespace vitte::clitest;

namespace {

// Two nodes of two workers; `s` scales every count, so that two calls make an interval.
vitte::MetricsSnapshot snapshot(std::uint64_t s) {
  vitte::MetricsSnapshot m;
  for (unsigned n = 0; n < 2; ++n) {
    vitte::NodeMetrics node;
    node.node = n;
    node.workers = 2;
    node.queue_depth = {5 + n, 10 * s, 30 * s, 12};
    node.steal_bins = {{vitte::StealScope::Remote, 21, 3 * s}};
    for (std::int64_t ns : {2000, 2000, 90000}) {
      node.submit_latency.buckets[vitte::LatencyHistogram::bucket_of(ns)] += s;
      node.submit_latency.count += s;
      node.submit_latency.max_ns = ns;
    }
    node.counters = {1000 * s};
    for (unsigned k = 0; k < 2; ++k) {
      vitte::WorkerMetrics w;
      w.worker = 2 * n + k;
      w.node = n;
      w.counts.executed = 100 * s * (k + 1);
      w.counts.steals_node = 4 * s;
      w.state = k == 0 ? vitte::WorkerState::Running : vitte::WorkerState::Parked;
      w.idle_ns = 250000000 * s * k;  // worker k of each node: idle a quarter of the time
      w.alive_ns = 1000000000 * s;
      w.counters = {500 * s};
      node.counts += w.counts;
      m.workers.push_back(w);
    }
    m.nodes.push_back(node);
  }
  m.counter_info.requested = true;
  m.counter_info.events = {"PAPI_TOT_INS"};
  m.counter_info.unavailable = {{"PAPI_L3_TCM", "not on this CPU"}};
  return m;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace

TEST(LiveView, PlainLinesOnePerNodeWithRates) {
  const std::string text = vitte::cli::render_live(snapshot(1), snapshot(3), 2.0, 4.0, {false, 80}, "title");
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  const auto lines = lines_of(text);
  ASSERT_EQ(lines.size(), 2u) << text;
  // Node 0 over 2 s: workers ran 200 and 400 tasks (100 and 200 per unit, 2 units).
  EXPECT_EQ(lines[0].rfind("live t=4.0 node=0 workers=2 running=1 searching=0 parked=1 stopped=0 tasks/s=300 ", 0), 0u)
      << lines[0];
  EXPECT_NE(lines[0].find(" steals/s=l3:0,node:8,remote:0 remote_by_distance=21:3 idle=12% queue=5 queue_mean=3.0 "
                          "queue_max=12 "),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[0].find(" submit_p50_us=2.0 submit_p99_us=90.0 events/s=PAPI_TOT_INS:1000 "
                          "worker_states=0:running,1:parked"),
            std::string::npos)
      << lines[0];
  EXPECT_EQ(lines[1].rfind("live t=4.0 node=1 ", 0), 0u) << lines[1];
  EXPECT_NE(lines[1].find("worker_states=2:running,3:parked"), std::string::npos) << lines[1];
}

TEST(LiveView, PlainLinesSayWhatWasNotMeasured) {
  vitte::MetricsSnapshot a = snapshot(1), b = snapshot(1);  // nothing happened
  for (auto* m : {&a, &b}) {
    m->counter_info = {};
    for (auto& n : m->nodes) n.counters.clear();
    for (auto& w : m->workers) w.alive_ns = w.idle_ns = 0;
  }
  const auto lines = lines_of(vitte::cli::render_live(a, b, 1.0, 1.0, {false, 80}, ""));
  ASSERT_EQ(lines.size(), 2u);
  for (const std::string key : {" idle=- ", " queue_mean=- ", " queue_max=- ", " submit_p50_us=- ", " submit_p99_us=- ",
                                " events/s=- "})
    EXPECT_NE(lines[0].find(key), std::string::npos) << key << "\n" << lines[0];
  EXPECT_NE(lines[0].find(" tasks/s=0 "), std::string::npos) << lines[0];
}

TEST(LiveView, TerminalFrameShowsEveryWorkerAndFitsANarrowScreen) {
  const std::string wide = vitte::cli::render_live(snapshot(1), snapshot(2), 1.0, 1.0, {true, 120}, "the title");
  ASSERT_EQ(wide.rfind("\x1b[H\x1b[2J", 0), 0u) << "home and clear first";
  const auto lines = lines_of(wide.substr(7));
  EXPECT_EQ(lines[0], "the title");
  EXPECT_NE(wide.find("not counted: PAPI_L3_TCM (not on this CPU)"), std::string::npos) << wide;
  EXPECT_NE(wide.find("node 0: 2 worker(s), 300 tasks/s, idle 12%, queue 5 (mean 3.0, max 12), submit p50 2.0us p99 90.0us"),
            std::string::npos)
      << wide;
  EXPECT_NE(wide.find("events/s: PAPI_TOT_INS 1.0k"), std::string::npos) << wide;
  EXPECT_NE(wide.find("[distance 21: 3]"), std::string::npos) << wide;
  const std::regex row(R"(^\s+(\d) +(running|parked) .*)");
  std::set<std::string> workers;
  for (const std::string& l : lines) {
    std::smatch m;
    if (std::regex_match(l, m, row)) workers.insert(m[1]);
  }
  EXPECT_EQ(workers, (std::set<std::string>{"0", "1", "2", "3"})) << wide;
  EXPECT_NE(wide.find("remote/s"), std::string::npos);

  const std::string narrow = vitte::cli::render_live(snapshot(1), snapshot(2), 1.0, 1.0, {true, 40}, std::string(60, 't'));
  for (const std::string& l : lines_of(narrow.substr(7))) EXPECT_LE(l.size(), 40u) << l;
  EXPECT_EQ(narrow.find("remote/s"), std::string::npos) << "columns that do not fit are left out";
  EXPECT_NE(narrow.find("tasks/s"), std::string::npos) << narrow;
  workers.clear();
  for (const std::string& l : lines_of(narrow)) {
    std::smatch m;
    if (std::regex_match(l, m, row)) workers.insert(m[1]);
  }
  EXPECT_EQ(workers.size(), 4u) << narrow;
}

// On a pseudo-terminal (script(1) gives the command one), top redraws in place and its
// screen shows both nodes and every worker.
TEST(LiveView, TopOnATerminalShowsEveryWorkerAndNode) {
  const fs::path root = make_tree();
  const std::string top = std::string(VITTE_SCHED_BIN) + " top --seconds 2 --synthetic 'pack:1 numa:2 core:2 pu:1' "
                          "--workers 4 --dir " + root.string();
  // stty sets the pty's size, which the view reads with TIOCGWINSZ.
  const CliRun r = shell("script -qefc \"stty cols 100 rows 40; " + top + "\" /dev/null");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::size_t last = r.output.rfind("\x1b[H\x1b[2J");
  ASSERT_NE(last, std::string::npos) << "no screen was drawn:\n" << r.output;
  const std::string screen = r.output.substr(last + 7);  // after home + clear
  EXPECT_NE(screen.find("vitte-sched top: 5 files, 4 worker(s) on 2 node(s)"), std::string::npos) << screen;
  for (const std::string node : {"node 0: 2 worker(s)", "node 1: 2 worker(s)"})
    EXPECT_NE(screen.find(node), std::string::npos) << node << "\n" << screen;
  const std::regex row(R"(^\s+(\d) +(running|searching|parked|stopped) +\S+.*)");
  std::set<std::string> workers;
  for (std::string l : lines_of(screen)) {
    if (!l.empty() && l.back() == '\r') l.pop_back();  // the terminal's line ends
    std::smatch m;
    if (std::regex_match(l, m, row)) workers.insert(m[1]);
    EXPECT_LE(l.size(), 100u) << l;
  }
  EXPECT_EQ(workers, (std::set<std::string>{"0", "1", "2", "3"})) << screen;
  EXPECT_NE(r.output.find("top: "), std::string::npos) << "the closing summary";
  fs::remove_all(root);
}

// Not a terminal: plain lines, about one per node per second, no escape codes.
TEST(LiveView, TopIntoAPipeWritesPlainLines) {
  const fs::path root = make_tree();
  const CliStreams r = vitte_sched_streams("top --seconds 2 --synthetic 'pack:1 numa:2 core:2 pu:1' --workers 4 --dir " +
                                           root.string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
  std::map<std::string, int> per_node;
  double last_t = -1;
  const std::regex line(R"(^live t=([0-9.]+) node=(\d) workers=2 running=\d searching=\d parked=\d stopped=\d tasks/s=\d+ .*)");
  for (const std::string& l : lines_of(r.out)) {
    std::smatch m;
    if (!std::regex_match(l, m, line)) continue;
    ++per_node[m[2]];
    const double t = std::stod(m[1]);
    EXPECT_GE(t, last_t) << l;
    last_t = t;
  }
  ASSERT_EQ(per_node.size(), 2u) << r.out;
  for (const auto& [node, n] : per_node) {
    EXPECT_GE(n, 1) << node;
    EXPECT_LE(n, 3) << "a refresh a second, plus the last one: " << node << "\n" << r.out;
  }
  EXPECT_GE(last_t, 1.9) << r.out;
  EXPECT_NE(r.out.find("top: "), std::string::npos);
  fs::remove_all(root);
}

TEST(LiveView, UsageErrors) {
  EXPECT_EQ(vitte_sched("top --seconds 0").status, 2);
  EXPECT_EQ(vitte_sched("top --dir /no/such/dir --seconds 1").status, 2);
  const CliStreams j = vitte_sched_streams("run --json --live --dir /tmp");
  EXPECT_EQ(j.status, 2);
  EXPECT_NE(j.out.find("--live"), std::string::npos) << j.out;
}

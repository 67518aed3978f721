#include "cli/live_view.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <utility>
#include <vector>

namespace vitte::cli {

namespace {

// The view subtracts raw snapshots field by field rather than use MetricsSnapshot's
// operator-, which keeps some fields as they are (the queue depth's maximum, a worker's
// state) and need not subtract every newer one: a rate must come from two raw values.
std::uint64_t minus(std::uint64_t later, std::uint64_t earlier) { return later >= earlier ? later - earlier : 0; }

constexpr WorkerState kStates[] = {WorkerState::Running, WorkerState::Searching, WorkerState::Parked, WorkerState::Stopped};

struct WorkerRates {
  unsigned worker = 0;
  WorkerState state = WorkerState::Running;
  double tasks = 0, l3 = 0, node = 0, remote = 0;  // per second
  double idle_pct = -1;                             // -1: not measured (no alive time)
};

struct NodeRates {
  unsigned node = 0;
  std::vector<WorkerRates> workers;
  unsigned in_state[4] = {};
  double tasks = 0, l3 = 0, node_steals = 0, remote = 0;
  std::vector<std::pair<unsigned, double>> remote_by_distance;  // distance, steals/s
  double idle_pct = -1;
  std::uint64_t depth_now = 0;
  bool sampled = false;  // queue depth samples in this interval
  double depth_mean = 0;
  std::uint64_t depth_max = 0;
  bool submitted = false;  // external submissions started in this interval
  std::int64_t p50_ns = 0, p99_ns = 0;
  std::vector<std::pair<std::string, double>> events;  // per second, counted events only
};

template <class T, class Pred>
const T* find_if_ptr(const std::vector<T>& v, Pred p) {
  const auto it = std::find_if(v.begin(), v.end(), p);
  return it == v.end() ? nullptr : &*it;
}

double idle_percent(std::uint64_t idle, std::uint64_t alive) {
  return alive == 0 ? -1.0 : 100.0 * static_cast<double>(std::min(idle, alive)) / static_cast<double>(alive);
}

std::vector<NodeRates> rates(const MetricsSnapshot& earlier, const MetricsSnapshot& later, double seconds) {
  const double per_s = seconds > 0 ? 1.0 / seconds : 0.0;
  const auto rate = [&](std::uint64_t l, std::uint64_t e) { return static_cast<double>(minus(l, e)) * per_s; };
  const WorkerMetrics none_w{};
  const NodeMetrics none_n{};
  std::vector<NodeRates> out;
  for (const NodeMetrics& ln : later.nodes) {
    const NodeMetrics* found = find_if_ptr(earlier.nodes, [&](const NodeMetrics& n) { return n.node == ln.node; });
    const NodeMetrics& en = found != nullptr ? *found : none_n;
    NodeRates r;
    r.node = ln.node;
    std::uint64_t idle = 0, alive = 0;
    for (const WorkerMetrics& lw : later.workers) {
      if (lw.node != ln.node) continue;
      const WorkerMetrics* fw = find_if_ptr(earlier.workers, [&](const WorkerMetrics& w) { return w.worker == lw.worker; });
      const WorkerMetrics& ew = fw != nullptr ? *fw : none_w;
      WorkerRates w;
      w.worker = lw.worker;
      w.state = lw.state;
      w.tasks = rate(lw.counts.executed, ew.counts.executed);
      w.l3 = rate(lw.counts.steals_l3, ew.counts.steals_l3);
      w.node = rate(lw.counts.steals_node, ew.counts.steals_node);
      w.remote = rate(lw.counts.steals_remote, ew.counts.steals_remote);
      w.idle_pct = idle_percent(minus(lw.idle_ns, ew.idle_ns), minus(lw.alive_ns, ew.alive_ns));
      idle += minus(lw.idle_ns, ew.idle_ns);
      alive += minus(lw.alive_ns, ew.alive_ns);
      ++r.in_state[static_cast<unsigned>(lw.state)];
      r.workers.push_back(w);
    }
    r.idle_pct = idle_percent(idle, alive);
    r.tasks = rate(ln.counts.executed, en.counts.executed);
    r.l3 = rate(ln.counts.steals_l3, en.counts.steals_l3);
    r.node_steals = rate(ln.counts.steals_node, en.counts.steals_node);
    r.remote = rate(ln.counts.steals_remote, en.counts.steals_remote);
    for (const StealBin& b : ln.steal_bins) {
      if (b.scope != StealScope::Remote) continue;
      const StealBin* eb = find_if_ptr(en.steal_bins, [&](const StealBin& x) { return x.scope == b.scope && x.distance == b.distance; });
      r.remote_by_distance.emplace_back(b.distance, rate(b.steals, eb != nullptr ? eb->steals : 0));
    }
    r.depth_now = ln.queue_depth.now;
    const std::uint64_t samples = minus(ln.queue_depth.samples, en.queue_depth.samples);
    r.sampled = samples > 0;
    if (r.sampled)
      r.depth_mean = static_cast<double>(minus(ln.queue_depth.sum, en.queue_depth.sum)) / static_cast<double>(samples);
    r.depth_max = ln.queue_depth.max;
    // The interval's latencies: the bucket counts subtract; the maximum is the one since
    // the start, which only caps the top percentile.
    LatencyHistogram h;
    for (unsigned b = 0; b < LatencyHistogram::kBuckets; ++b)
      h.buckets[b] = minus(ln.submit_latency.buckets[b], en.submit_latency.buckets[b]);
    h.count = minus(ln.submit_latency.count, en.submit_latency.count);
    h.max_ns = ln.submit_latency.max_ns;
    r.submitted = h.count > 0;
    r.p50_ns = h.percentile(0.5);
    r.p99_ns = h.percentile(0.99);
    const std::vector<std::string>& events = later.counter_info.events;
    for (std::size_t i = 0; i < events.size() && i < ln.counters.size(); ++i)
      r.events.emplace_back(events[i], rate(ln.counters[i], i < en.counters.size() ? en.counters[i] : 0));
    out.push_back(std::move(r));
  }
  return out;
}

std::string printf_string(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// 950, 12.3k, 4.5M, 1.2G: rates fit a narrow column.
std::string si(double v) {
  if (v < 999.5) return printf_string("%.0f", v);
  if (v < 999.5e3) return printf_string("%.1fk", v / 1e3);
  if (v < 999.5e6) return printf_string("%.1fM", v / 1e6);
  return printf_string("%.1fG", v / 1e9);
}

std::string latency_text(std::int64_t ns) {
  const double v = static_cast<double>(ns);
  if (ns < 1000) return std::to_string(ns) + "ns";
  if (ns < 1000000) return printf_string("%.1fus", v / 1e3);
  if (ns < 1000000000) return printf_string("%.1fms", v / 1e6);
  return printf_string("%.2fs", v / 1e9);
}

std::string percent(double p) { return p < 0 ? "-" : printf_string("%.0f%%", p); }

// A line no wider than the terminal: a wrapped line would push the screen out of place.
void add_line(std::string& out, std::string line, unsigned columns) {
  if (line.size() > columns) line.resize(columns);
  out += line;
  out += '\n';
}

// The worker table's columns, most important first; the ones that do not fit the width
// are left out from the right.
struct Column {
  const char* head;
  unsigned width;
  std::string (*cell)(const WorkerRates&);
};
const Column kColumns[] = {
    {"worker", 8, [](const WorkerRates& w) { return std::to_string(w.worker); }},
    {"state", 11, [](const WorkerRates& w) { return std::string(to_string(w.state)); }},
    {"tasks/s", 9, [](const WorkerRates& w) { return si(w.tasks); }},
    {"idle", 6, [](const WorkerRates& w) { return percent(w.idle_pct); }},
    {"l3/s", 8, [](const WorkerRates& w) { return si(w.l3); }},
    {"node/s", 8, [](const WorkerRates& w) { return si(w.node); }},
    {"remote/s", 10, [](const WorkerRates& w) { return si(w.remote); }},
};

void terminal_node(std::string& out, const NodeRates& r, unsigned columns) {
  std::string head = "node " + std::to_string(r.node) + ": " + std::to_string(r.workers.size()) + " worker(s), " +
                     si(r.tasks) + " tasks/s, idle " + percent(r.idle_pct) + ", queue " + std::to_string(r.depth_now);
  if (r.sampled) head += " (mean " + printf_string("%.1f", r.depth_mean) + ", max " + std::to_string(r.depth_max) + ")";
  head += r.submitted ? ", submit p50 " + latency_text(r.p50_ns) + " p99 " + latency_text(r.p99_ns) : ", no submissions";
  add_line(out, head, columns);
  std::string steals = "  steals/s: l3 " + si(r.l3) + ", node " + si(r.node_steals) + ", remote " + si(r.remote);
  for (const auto& [distance, s] : r.remote_by_distance) steals += " [distance " + std::to_string(distance) + ": " + si(s) + "]";
  add_line(out, steals, columns);
  if (!r.events.empty()) {
    std::string ev = "  events/s:";
    for (const auto& [name, v] : r.events) ev += " " + name + " " + si(v);
    add_line(out, ev, columns);
  }
  // Indent 2, then as many columns as fit.
  std::size_t used = 2, shown = 0;
  for (const Column& c : kColumns) {
    if (used + c.width > columns && shown >= 2) break;  // worker and state always
    used += c.width;
    ++shown;
  }
  const auto row = [&](auto cell_of) {
    std::string line = "  ";
    for (std::size_t i = 0; i < shown; ++i) {
      std::string cell = cell_of(kColumns[i]);
      // The worker index right-aligned, the state left-aligned, figures right-aligned.
      if (i == 1) cell = "  " + cell + std::string(kColumns[i].width > cell.size() + 2 ? kColumns[i].width - cell.size() - 2 : 0, ' ');
      else if (cell.size() < kColumns[i].width) cell.insert(0, kColumns[i].width - cell.size(), ' ');
      line += cell;
    }
    add_line(out, line, columns);
  };
  row([](const Column& c) { return std::string(c.head); });
  for (const WorkerRates& w : r.workers) row([&](const Column& c) { return c.cell(w); });
}

// Adds `item` to a comma-separated list.
void append_item(std::string& list, const std::string& item) {
  if (!list.empty()) list += ',';
  list += item;
}

// One grep-friendly line per node: the same keys in the same order every time, "-" where
// a figure was not measured in the interval.
void plain_node(std::string& out, const NodeRates& r, double since_start) {
  std::string l = "live t=" + printf_string("%.1f", since_start) + " node=" + std::to_string(r.node) +
                  " workers=" + std::to_string(r.workers.size());
  for (WorkerState s : kStates) l += std::string(" ") + to_string(s) + "=" + std::to_string(r.in_state[static_cast<unsigned>(s)]);
  l += " tasks/s=" + printf_string("%.0f", r.tasks);
  l += " steals/s=l3:" + printf_string("%.0f", r.l3) + ",node:" + printf_string("%.0f", r.node_steals) +
       ",remote:" + printf_string("%.0f", r.remote);
  std::string by_distance;
  for (const auto& [distance, s] : r.remote_by_distance)
    append_item(by_distance, std::to_string(distance) + ":" + printf_string("%.0f", s));
  l += " remote_by_distance=" + (by_distance.empty() ? "-" : by_distance);
  l += " idle=" + percent(r.idle_pct);
  l += " queue=" + std::to_string(r.depth_now);
  l += " queue_mean=" + (r.sampled ? printf_string("%.1f", r.depth_mean) : "-");
  l += " queue_max=" + (r.sampled ? std::to_string(r.depth_max) : "-");
  l += " submit_p50_us=" + (r.submitted ? printf_string("%.1f", static_cast<double>(r.p50_ns) / 1e3) : "-");
  l += " submit_p99_us=" + (r.submitted ? printf_string("%.1f", static_cast<double>(r.p99_ns) / 1e3) : "-");
  std::string events;
  for (const auto& [name, v] : r.events) append_item(events, name + ":" + printf_string("%.0f", v));
  l += " events/s=" + (events.empty() ? "-" : events);
  std::string states;
  for (const WorkerRates& w : r.workers)
    append_item(states, std::to_string(w.worker) + ":" + to_string(w.state));
  l += " worker_states=" + (states.empty() ? "-" : states);
  out += l;
  out += '\n';
}

}  // namespace

std::string render_live(const MetricsSnapshot& earlier, const MetricsSnapshot& later, double interval_s,
                        double since_start, const ViewStyle& style, const std::string& title) {
  const std::vector<NodeRates> nodes = rates(earlier, later, interval_s);
  std::string out;
  if (!style.terminal) {
    for (const NodeRates& r : nodes) plain_node(out, r, since_start);
    return out;
  }
  out += "\x1b[H\x1b[2J";  // cursor home, clear the screen
  add_line(out, title, style.columns);
  const CounterInfo& info = later.counter_info;
  for (const CounterInfo::Missing& m : info.unavailable) add_line(out, "not counted: " + m.event + " (" + m.why + ")", style.columns);
  for (const NodeRates& r : nodes) terminal_node(out, r, style.columns);
  return out;
}

ViewStyle style_of(std::FILE* out) {
  ViewStyle s;
  const int fd = fileno(out);
  s.terminal = fd >= 0 && isatty(fd) == 1;
  winsize ws{};
  if (s.terminal && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
    s.columns = ws.ws_col;
  } else if (const char* c = std::getenv("COLUMNS")) {
    const long n = std::strtol(c, nullptr, 10);
    if (n > 0 && n < 10000) s.columns = static_cast<unsigned>(n);
  }
  return s;
}

LiveView::LiveView(const Scheduler& sched, std::FILE* out, std::function<std::string()> title,
                   std::chrono::milliseconds period)
    : sched_(sched), out_(out), title_(std::move(title)), period_(period), thread_([this] { loop(); }) {}

LiveView::~LiveView() { stop(); }

void LiveView::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void LiveView::loop() {
  using clock = std::chrono::steady_clock;
  const clock::time_point start = clock::now();
  MetricsSnapshot earlier = sched_.metrics();
  clock::time_point earlier_at = clock::now();
  clock::time_point next = start + period_;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    // Wakes at the next refresh, or at once when stop() asks for the last frame.
    const bool last = wake_.wait_until(lock, next, [&] { return stopping_; });
    lock.unlock();
    MetricsSnapshot later = sched_.metrics();
    const clock::time_point now = clock::now();
    const double interval = std::chrono::duration<double>(now - earlier_at).count();
    const double since_start = std::chrono::duration<double>(now - start).count();
    const ViewStyle style = style_of(out_);  // per frame: the terminal may have been resized
    const std::string frame = render_live(earlier, later, interval, since_start, style, style.terminal ? title_() : "");
    std::fwrite(frame.data(), 1, frame.size(), out_);
    std::fflush(out_);
    earlier = std::move(later);
    earlier_at = now;
    next += period_;
    if (next < now) next = now + period_;  // a slow frame: skip the missed refreshes
    lock.lock();
    if (last) return;
  }
}

}  // namespace vitte::cli

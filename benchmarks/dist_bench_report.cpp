// vitte-dist-bench's report: the JSON object scripts/dist_bench.sh collects, and the table.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "dist_bench.hpp"
#include "vitte/dist.hpp"

namespace distbench {
namespace {

std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  std::snprintf(b, sizeof b, "%.9g", v);
  return b;
}

// Names here are ours (no quotes or backslashes), so quoting is enough.
std::string str(const std::string& s) { return "\"" + s + "\""; }

const Series* find(const Report& r, const std::string& name) {
  for (const auto& s : r.series)
    if (s.name == name) return &s;
  return nullptr;
}

// Ratios of medians the bars are judged on (those whose two series this run has).
std::vector<std::pair<std::string, double>> derived(const Report& r) {
  std::vector<std::pair<std::string, double>> d;
  const auto ratio = [&](const char* name, const char* a, const char* b) {
    const Series *x = find(r, a), *y = find(r, b);
    if (x && y) d.emplace_back(name, median(x->per_rep) / median(y->per_rep));
  };
  ratio("uts/static_over_vitte", "uts/static_mpi_tbb", "uts/vitte");
  ratio("uts/serial_over_vitte", "uts/serial", "uts/vitte");
  ratio("nqueens/serial_over_vitte", "nqueens/serial", "nqueens/vitte");
  ratio("pingpong/vitte_async_over_mpi", "pingpong/vitte_async", "pingpong/mpi");
  ratio("pingpong/vitte_async_in_task_over_mpi", "pingpong/vitte_async_in_task", "pingpong/mpi");
  ratio("pingpong/vitte_steal_over_mpi", "pingpong/vitte_steal", "pingpong/mpi");
  return d;
}

std::string acc_json(const Acc& a) {
  std::string s = "{";
  const auto f = [&](const char* k, double v, bool last = false) {
    s.append(str(k)).append(":").append(num(v)).append(last ? "" : ",");
  };
  f("messages_sent", a.messages_sent);
  f("bytes_sent", a.bytes_sent);
  f("steal_requests", a.steal_requests);
  f("steals_won", a.steals_won);
  f("steal_replies", a.steal_replies);
  f("steal_reply_ns", a.steal_reply_ns);
  f("steal_reply_mean_us", a.steal_replies ? a.steal_reply_ns * 1e-3 / a.steal_replies : NAN);
  f("tasks_stolen_in", a.tasks_stolen_in);
  f("tasks_given", a.tasks_given);
  f("lifeline_pushes", a.lifeline_pushes);
  f("calls_served", a.calls_served);
  f("pool_tasks_run", a.pool_tasks_run);
  f("comm_idle_cpu_s", a.comm_idle_cpu_s, true);
  return s + "}";
}

}  // namespace

std::string to_json(const Config& c, const Report& r, const std::vector<std::vector<Acc>>& stats, bool ok) {
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "x" + std::string&&.
  std::string j;
  const auto add = [&j](const auto&... parts) { (j.append(parts), ...); };
  const auto field = [&](const char* key, const std::string& value, bool last = false) {
    add(str(key), ":", value, last ? "" : ",");
  };
  add("{");
  field("benchmark", str("vitte-dist-bench"));
  field("kernel", str(c.kernel));
  field("ranks", num(mpi_size()));
  field("workers_per_rank", num(c.workers));
  field("reps", num(c.reps));
  field("split_cpus", c.split_cpus ? "true" : "false");
  add(str("params"), ":{");
  field("uts_root_children", num(c.uts.root_children));
  field("uts_q", num(c.uts.q));
  field("uts_m", num(c.uts.m));
  field("uts_work", num(c.uts.work));
  field("uts_seed", num(static_cast<double>(c.uts.seed)));
  field("uts_nodes", num(static_cast<double>(uts_known(c.uts))));
  field("static", c.with_static ? "true" : "false");
  field("frontier_per_rank", num(c.frontier_per_rank));
  field("queens", num(c.queens));
  field("queens_split", num(c.queens_split));
  field("iters", num(c.iters));
  field("warmup", num(c.warmup));
  field("steal_tasks", num(c.steal_tasks));
  field("steal_task_us", num(c.steal_task_us), true);
  add("},", str("series"), ":{");
  for (std::size_t i = 0; i < r.series.size(); ++i) {
    const auto& s = r.series[i];
    const auto [lo, hi] = std::minmax_element(s.per_rep.begin(), s.per_rep.end());
    add(i ? "," : "", str(s.name), ":{");
    field("unit", str(s.unit));
    field("median", num(median(s.per_rep)));
    field("min", num(*lo));
    field("max", num(*hi));
    add(str("per_rep"), ":[");
    for (std::size_t k = 0; k < s.per_rep.size(); ++k) add(k ? "," : "", num(s.per_rep[k]));
    add("]}");
  }
  add("},", str("derived"), ":{");
  const auto d = derived(r);
  for (std::size_t i = 0; i < d.size(); ++i) add(i ? "," : "", str(d[i].first), ":", num(d[i].second));
  add("},", str("stats"), ":{");
  for (std::size_t p = 0; p < stats.size(); ++p) {
    add(p ? "," : "", str(accs()[p].first), ":[");
    for (std::size_t k = 0; k < stats[p].size(); ++k) add(k ? "," : "", acc_json(stats[p][k]));
    add("]");
  }
  add("},", str("checks"), ":[");
  for (std::size_t i = 0; i < r.checks.size(); ++i) {
    const auto& ch = r.checks[i];
    add(i ? "," : "", "{");
    field("what", str(ch.what));
    field("expected", num(ch.expected));
    field("got", num(ch.got));
    field("ok", ch.ok() ? "true" : "false", true);
    add("}");
  }
  add("],");
  field("ok", ok ? "true" : "false", true);
  add("}");
  return j;
}

void print_table(const Config& c, const Report& r, bool ok, std::FILE* to) {
  std::fprintf(to, "vitte-dist-bench: kernel %s, %d rank(s) x %d worker(s), %d repetition(s)\n", c.kernel.c_str(),
               mpi_size(), c.workers, c.reps);
  std::fprintf(to, "  %-34s %-8s %12s %12s %12s %8s\n", "series", "unit", "median", "min", "max", "spread");
  for (const auto& s : r.series) {
    const auto [lo, hi] = std::minmax_element(s.per_rep.begin(), s.per_rep.end());
    const double m = median(s.per_rep);
    std::fprintf(to, "  %-34s %-8s %12.4g %12.4g %12.4g %7.1f%%\n", s.name.c_str(), s.unit.c_str(), m, *lo, *hi,
                 m != 0 ? 100.0 * (*hi - *lo) / m : 0.0);
  }
  for (const auto& [name, v] : derived(r)) std::fprintf(to, "  %-34s %12.3f (ratio of medians)\n", name.c_str(), v);
  std::size_t bad = 0;
  for (const auto& ch : r.checks) {
    if (ch.ok()) continue;
    ++bad;
    std::fprintf(to, "  WRONG: %s: expected %.0f, got %.0f\n", ch.what.c_str(), ch.expected, ch.got);
  }
  std::fprintf(to, "  checks: %zu, wrong: %zu -> %s\n", r.checks.size(), bad, ok ? "ok" : "FAILED");
}

}  // namespace distbench

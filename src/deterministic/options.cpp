// DeterministicOptions from the environment, and the checks every source goes through.
#include "deterministic/options.hpp"

#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include "vitte/error.hpp"
#include "vitte/scheduler.hpp"

namespace vitte::detail {

namespace {
bool whole(const std::string& s, std::uint64_t* v) {
  if (s.empty() || s.size() > 20 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  errno = 0;
  const unsigned long long x = std::strtoull(s.c_str(), nullptr, 10);
  if (errno != 0) return false;
  *v = x;
  return true;
}
}  // namespace

std::optional<DeterministicOptions> deterministic_from_environment() {
  const char* env = std::getenv("VITTE_DETERMINISTIC");
  if (env == nullptr || *env == '\0') return std::nullopt;
  const std::string text(env);
  const auto bad = [&](const std::string& why) {
    return ConfigError("VITTE_DETERMINISTIC = '" + text + "': " + why +
                       " (expected SEED, SEED:random, SEED:pct or SEED:pct:DEPTH:TURNS)");
  };
  std::vector<std::string> parts;
  for (std::size_t at = 0;;) {
    const std::size_t colon = text.find(':', at);
    parts.push_back(text.substr(at, colon == std::string::npos ? std::string::npos : colon - at));
    if (colon == std::string::npos) break;
    at = colon + 1;
  }
  DeterministicOptions o;
  if (!whole(parts[0], &o.seed)) throw bad("the seed '" + parts[0] + "' is not a whole number");
  if (parts.size() >= 2) {
    const auto s = parse_strategy(parts[1]);
    if (!s) throw bad("unknown strategy '" + parts[1] + "'");
    o.strategy = *s;
  }
  if (parts.size() == 3 || parts.size() > 4) throw bad("wrong number of fields");
  if (parts.size() == 4) {
    std::uint64_t depth = 0;
    if (o.strategy != Strategy::Pct) throw bad("DEPTH and TURNS are PCT's parameters");
    if (!whole(parts[2], &depth) || depth < 1 || depth > 64) throw bad("DEPTH '" + parts[2] + "' is not 1 to 64");
    if (!whole(parts[3], &o.pct_turns) || o.pct_turns == 0) throw bad("TURNS '" + parts[3] + "' is not 1 or more");
    o.pct_depth = static_cast<unsigned>(depth);
  }
  return o;
}

void check_deterministic(const DeterministicOptions& o) {
  const std::string at = "DeterministicOptions::";
  if (o.strategy != Strategy::Random && o.strategy != Strategy::Pct)
    throw UsageError(at + "strategy = " + std::to_string(static_cast<unsigned>(o.strategy)) + ": not a Strategy");
  if (o.pct_depth < 1 || o.pct_depth > 64)
    throw UsageError(at + "pct_depth = " + std::to_string(o.pct_depth) + ": expected 1 to 64");
  if (o.pct_turns < 1) throw UsageError(at + "pct_turns = 0: expected at least 1 (the turns change points are drawn from)");
  if (o.task_cost.count() < 1)
    throw UsageError(at + "task_cost = " + std::to_string(o.task_cost.count()) +
                     " ns: at least 1 ns (virtual time must advance as tasks run)");
  if (o.stall_report.count() < 0)
    throw UsageError(at + "stall_report = " + std::to_string(o.stall_report.count()) + " ms: cannot be negative");
  if (!o.record.empty() && o.record == o.replay)
    throw UsageError(at + "record and replay name the same file '" + o.record +
                     "': recording would overwrite the log being replayed");
}

// Settings a deterministic run cannot honour are refused rather than ignored: it runs its
// workers unpinned, on one turn at a time, so pinning, per-thread malloc routing and event
// counters per worker would not mean what they say, and a producer blocked on a full
// backlog would hold the only turn.
void check_deterministic_fits(const Options& o) {
  if (!o.deterministic) return;
  check_deterministic(*o.deterministic);
  const std::string mode = "deterministic mode (seed " + std::to_string(o.deterministic->seed) + ")";
  const Config* c = o.config ? &*o.config : nullptr;
  if (o.placement == Placement::Pin || (c != nullptr && c->sets_placement && c->plan.placement == Placement::Pin))
    throw UsageError(mode + " runs its workers unpinned (one of them runs at a time): placement = pin would not apply");
  if (c != nullptr && c->plan.malloc == PlanOptions::Malloc::NodeLocal)
    throw UsageError(mode + ": memory.allocator = \"node-local\" routes each worker thread's malloc by where it "
                            "is pinned, and deterministic workers are not pinned");
  if (o.metrics.counters.value_or(false) || (o.metrics.events && !o.metrics.events->empty()))
    throw UsageError(mode + ": event counters (MetricsOptions::counters/events, [metrics]) count what OS threads "
                            "did in real time, which is not part of a reproducible schedule; turn them off");
  if (o.max_backlog != 0 && o.on_backlog_full == Options::BacklogFullAction::Block)
    throw UsageError(mode + ": max_backlog with on_backlog_full = Block would block the driver, which holds the "
                            "only turn; use BacklogFullAction::Fail");
}

bool same_deterministic(const DeterministicOptions& a, const DeterministicOptions& b) noexcept {
  return a.seed == b.seed && a.strategy == b.strategy && a.pct_depth == b.pct_depth && a.pct_turns == b.pct_turns &&
         a.spawn_turns == b.spawn_turns &&
         a.task_cost == b.task_cost && a.max_turns == b.max_turns && a.record == b.record && a.replay == b.replay;
}

}  // namespace vitte::detail

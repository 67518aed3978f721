// explore(): a test body under many seeds (deterministic.hpp).
#include <chrono>
#include <cstdio>
#include <exception>
#include <set>

#include "vitte/scheduler.hpp"

namespace vitte {

namespace {
constexpr std::uint64_t kExploreMaxTurns = 10'000'000;

std::string what_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}
}  // namespace

ExploreResult explore(const ExploreOptions& opts, const std::function<void(Scheduler&)>& body) {
  if (!body) throw UsageError("explore(): the body is empty");
  if (opts.seeds == 0 && opts.budget.count() <= 0)
    throw UsageError("explore(): ExploreOptions::seeds = 0 with no budget would run nothing");
  ExploreResult r;
  std::set<std::uint64_t> hashes;
  const auto start = std::chrono::steady_clock::now();
  // PCT's change points must fall inside the run to change anything: unless `configure` set
  // the PCT parameters, they are drawn from as many turns as the previous run took (the
  // first run uses the default). The printed reproduction names the value used.
  std::uint64_t last_turns = 0;
  for (std::uint64_t k = 0; opts.seeds == 0 || k < opts.seeds; ++k) {
    if (opts.budget.count() > 0 && std::chrono::steady_clock::now() - start >= opts.budget) break;
    Options o;
    if (opts.configure) opts.configure(o);
    if (opts.workers != 0) o.workers = opts.workers;
    const bool adapt = !o.deterministic.has_value();
    DeterministicOptions d = o.deterministic.value_or(DeterministicOptions{});
    d.seed = opts.first_seed + k;
    d.strategy = opts.strategy;
    if (adapt && d.strategy == Strategy::Pct && last_turns > 0) d.pct_turns = last_turns;
    // A schedule that livelocks (a worker that keeps taking work that keeps coming back)
    // fails its seed with Deadlock instead of hanging the exploration.
    if (adapt) d.max_turns = kExploreMaxTurns;
    o.deterministic = d;
    std::exception_ptr error;
    ScheduleInfo info;
    {
      // A configuration error is the caller's, not a schedule's: it propagates as it is.
      Scheduler s(std::move(o));
      try {
        body(s);
        s.join_all();
        info = s.schedule();
        s.shutdown();
      } catch (...) {
        error = std::current_exception();
        info = s.schedule();
      }
    }
    ++r.runs;
    last_turns = info.turns;
    hashes.insert(info.hash);
    r.schedule = info;
    if (error) {
      r.failed = true;
      r.seed = d.seed;
      r.options = d;
      r.error = what_of(error);
      const std::string of = opts.seeds != 0 ? " of " + std::to_string(opts.seeds) : std::string();
      if (!opts.quiet)
        std::fprintf(stderr,
                     "vitte: explore: run %llu%s failed with seed %llu (strategy %s, after %llu turns): %s\n"
                     "vitte: explore: reproduce with %s, or ExploreResult::options (DeterministicOptions{.seed = "
                     "%llu, .strategy = vitte::Strategy::%s, .pct_depth = %u, .pct_turns = %llu, ...})\n",
                     static_cast<unsigned long long>(r.runs), of.c_str(),
                     static_cast<unsigned long long>(d.seed), to_string(d.strategy),
                     static_cast<unsigned long long>(info.turns), r.error.c_str(), info.reproduce.c_str(),
                     static_cast<unsigned long long>(d.seed), d.strategy == Strategy::Pct ? "Pct" : "Random",
                     d.pct_depth, static_cast<unsigned long long>(d.pct_turns));
      break;
    }
  }
  r.distinct_schedules = hashes.size();
  return r;
}

}  // namespace vitte

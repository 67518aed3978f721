// explore(): a test body under many seeds (deterministic.hpp).
#include <chrono>
#include <cstdio>
#include <exception>
#include <set>

#include "vitte/scheduler.hpp"

namespace vitte {

namespace {
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
  for (std::uint64_t k = 0; opts.seeds == 0 || k < opts.seeds; ++k) {
    if (opts.budget.count() > 0 && std::chrono::steady_clock::now() - start >= opts.budget) break;
    Options o;
    if (opts.configure) opts.configure(o);
    if (opts.workers != 0) o.workers = opts.workers;
    DeterministicOptions d = o.deterministic.value_or(DeterministicOptions{});
    d.seed = opts.first_seed + k;
    d.strategy = opts.strategy;
    o.deterministic = d;
    std::exception_ptr error;
    ScheduleInfo info;
    {
      std::optional<Scheduler> s;
      try {
        s.emplace(std::move(o));
      } catch (...) {
        throw;  // a configuration error is the caller's, not a schedule's: report it as it is
      }
      try {
        body(*s);
        s->join_all();
        info = s->schedule();
        s->shutdown();
      } catch (...) {
        error = std::current_exception();
        info = s->schedule();
      }
    }
    ++r.runs;
    hashes.insert(info.hash);
    r.schedule = info;
    if (error) {
      r.failed = true;
      r.seed = d.seed;
      r.error = what_of(error);
      if (!opts.quiet)
        std::fprintf(stderr,
                     "vitte: explore: run %llu of %llu failed with seed %llu (strategy %s, %llu turns): %s\n"
                     "vitte: explore: reproduce with %s, or DeterministicOptions{.seed = %llu, .strategy = "
                     "vitte::Strategy::%s}\n",
                     static_cast<unsigned long long>(r.runs), static_cast<unsigned long long>(opts.seeds),
                     static_cast<unsigned long long>(d.seed), to_string(d.strategy),
                     static_cast<unsigned long long>(info.turns), r.error.c_str(), info.reproduce.c_str(),
                     static_cast<unsigned long long>(d.seed), d.strategy == Strategy::Pct ? "Pct" : "Random");
      break;
    }
  }
  r.distinct_schedules = hashes.size();
  return r;
}

}  // namespace vitte

#include "deterministic/chooser.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace vitte {

const char* to_string(Strategy s) noexcept {
  switch (s) {
    case Strategy::Random: return "random";
    case Strategy::Pct: return "pct";
  }
  return "?";
}

std::optional<Strategy> parse_strategy(const std::string& s) noexcept {
  if (s == "random") return Strategy::Random;
  if (s == "pct") return Strategy::Pct;
  return std::nullopt;
}

}  // namespace vitte

namespace vitte::detail {

namespace {
std::string who(unsigned p, unsigned workers) {
  return p == workers ? std::string("the driver") : "worker " + std::to_string(p);
}
std::string list(const std::vector<unsigned>& v, unsigned workers) {
  std::string s;
  for (unsigned p : v) s += (s.empty() ? "" : ", ") + who(p, workers);
  return s;
}
}  // namespace

std::string Chooser::header(const DeterministicOptions& o, unsigned workers) {
  return "vitte-schedule 1 seed=" + std::to_string(o.seed) + " strategy=" + to_string(o.strategy) +
         " workers=" + std::to_string(workers) + " pct_depth=" + std::to_string(o.pct_depth) +
         " pct_turns=" + std::to_string(o.pct_turns) + " task_cost_ns=" + std::to_string(o.task_cost.count()) +
         " spawn_turns=" + (o.spawn_turns ? "1" : "0");
}

Chooser::Chooser(const DeterministicOptions& o, unsigned participants, unsigned workers)
    : opts_(o), workers_(workers), rng_{o.seed ^ 0x5EEDC0FFEEull} {
  if (o.strategy == Strategy::Pct) {
    // Initial priorities: a random permutation placed above d, so that every change point
    // (priorities 1 .. d-1) ranks below all of them.
    std::vector<std::uint64_t> perm(participants);
    for (unsigned i = 0; i < participants; ++i) perm[i] = i;
    for (unsigned i = participants; i > 1; --i) std::swap(perm[i - 1], perm[rng_.next() % i]);
    prio_.resize(participants);
    for (unsigned i = 0; i < participants; ++i) prio_[i] = o.pct_depth + perm[i];
    for (unsigned k = 1; k < o.pct_depth; ++k) change_at_.push_back(1 + rng_.next() % o.pct_turns);
    std::sort(change_at_.begin(), change_at_.end());
  }
  if (!o.replay.empty()) load_replay(o, workers);
  if (!o.record.empty()) {
    record_ = std::fopen(o.record.c_str(), "w");
    if (record_ == nullptr)
      throw UsageError("DeterministicOptions::record: cannot write the schedule log '" + o.record +
                       "': " + std::strerror(errno));
    std::fprintf(record_, "%s\n", header(o, workers).c_str());
    std::fflush(record_);
  }
}

Chooser::~Chooser() {
  if (record_ != nullptr) std::fclose(record_);
}

void Chooser::load_replay(const DeterministicOptions& o, unsigned workers) {
  std::ifstream in(o.replay);
  if (!in) throw UsageError("DeterministicOptions::replay: cannot read the schedule log '" + o.replay + "': " + std::strerror(errno));
  std::string line;
  if (!std::getline(in, line) || line.rfind("vitte-schedule 1 ", 0) != 0)
    throw UsageError("DeterministicOptions::replay: '" + o.replay + "' line 1: not a schedule log (expected a line "
                     "starting 'vitte-schedule 1', as DeterministicOptions::record writes)");
  const std::string want = header(o, workers);
  if (line != want)
    throw UsageError("DeterministicOptions::replay: '" + o.replay + "' was recorded as '" + line +
                     "', but this run is '" + want + "': replay it with the same seed, strategy, workers and "
                     "PCT parameters");
  for (std::size_t n = 2; std::getline(in, line); ++n) {
    std::istringstream ls(line);
    unsigned chosen = 0, count = 0;
    std::string rest;
    if (!(ls >> chosen >> count) || (ls >> rest) || count == 0 || chosen > workers)
      throw UsageError("DeterministicOptions::replay: '" + o.replay + "' line " + std::to_string(n) + ": '" + line +
                       "' is not '<chosen> <how many could run>' with chosen at most " + std::to_string(workers));
    replay_.emplace_back(chosen, count);
  }
}

unsigned Chooser::pick(const std::vector<unsigned>& runnable, unsigned current, std::uint64_t turn) {
  unsigned chosen;
  if (!diverged_ && replayed_ < replay_.size()) {
    const auto [want, count] = replay_[replayed_];
    if (count == runnable.size() && std::binary_search(runnable.begin(), runnable.end(), want)) {
      chosen = want;
      ++replayed_;
      // The strategy's state moves on as if it had chosen: a log that stops fitting hands
      // over to the same chooser a fresh run would have at this turn.
      (void)by_strategy(runnable, current, turn);
    } else {
      diverged_ = true;
      divergence_ = "schedule log '" + opts_.replay + "' diverges at turn " + std::to_string(turn) + ": it chose " +
                    who(want, workers_) + " of " + std::to_string(count) + " that could run; this run has " +
                    std::to_string(runnable.size()) + " (" + list(runnable, workers_) +
                    "); the seed's own choices take over from here";
      std::fprintf(stderr, "vitte: %s\n", divergence_.c_str());
      chosen = by_strategy(runnable, current, turn);
    }
  } else {
    chosen = by_strategy(runnable, current, turn);
  }
  if (record_ != nullptr) {
    std::fprintf(record_, "%u %zu\n", chosen, runnable.size());
    std::fflush(record_);  // a run that crashes keeps its log up to the crash
  }
  return chosen;
}

unsigned Chooser::by_strategy(const std::vector<unsigned>& runnable, unsigned current, std::uint64_t turn) {
  if (opts_.strategy == Strategy::Random) return runnable[rng_.next() % runnable.size()];
  // Pct: the turn just ended by `current` may be a change point.
  while (next_change_ < change_at_.size() && change_at_[next_change_] <= turn) {
    if (change_at_[next_change_] == turn) prio_[current] = next_change_ + 1;
    ++next_change_;
  }
  unsigned best = runnable.front();
  for (unsigned p : runnable)
    if (prio_[p] > prio_[best]) best = p;
  return best;
}

}  // namespace vitte::detail

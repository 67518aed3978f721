// Chooser: who takes the next turn of a deterministic run (deterministic.hpp).
//
// The strategy draws from the seed alone: Random picks uniformly among the participants
// that can run; Pct (probabilistic concurrency testing) keeps a priority per participant,
// runs the highest that can run, and at d - 1 turns drawn up front drops the one that just
// held the turn below everybody. A schedule log records every choice as "<chosen>
// <how many could run>" after a header naming the run; replaying one takes each choice from
// it while it still fits (the chosen one can run, and as many can as when it was written)
// and, at the first choice that does not, notes where and falls back to the strategy.
// Single-threaded: only the thread holding the run's turn calls it (DetSim D1).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "vitte/deterministic.hpp"

namespace vitte::detail {

// splitmix64: a tiny, well-mixed generator; one per purpose, so that a change in how often
// one is drawn from does not shift the others.
struct SplitMix {
  std::uint64_t s;
  std::uint64_t next() noexcept {
    std::uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
};

class Chooser {
 public:
  // `participants`: the workers and the driver; `names(i)` describes one for messages.
  // Opens the log files named by `o` (UsageError naming the file when it cannot).
  Chooser(const DeterministicOptions& o, unsigned participants, unsigned workers);
  ~Chooser();
  Chooser(const Chooser&) = delete;
  Chooser& operator=(const Chooser&) = delete;

  // `runnable`: ascending, not empty; `current`: who held the turn; `turn`: numbered from 1.
  unsigned pick(const std::vector<unsigned>& runnable, unsigned current, std::uint64_t turn);
  const std::string& divergence() const noexcept { return divergence_; }
  // The header line a log starts with (also what replay checks).
  static std::string header(const DeterministicOptions& o, unsigned workers);

 private:
  unsigned by_strategy(const std::vector<unsigned>& runnable, unsigned current, std::uint64_t turn);
  void load_replay(const DeterministicOptions& o, unsigned workers);

  DeterministicOptions opts_;
  unsigned workers_;
  SplitMix rng_;
  std::vector<std::uint64_t> prio_;         // Pct: by participant
  std::vector<std::uint64_t> change_at_;    // Pct: ascending turns
  std::size_t next_change_ = 0;
  std::vector<std::pair<unsigned, unsigned>> replay_;  // (chosen, how many could run)
  std::size_t replayed_ = 0;
  bool diverged_ = false;
  std::string divergence_;
  std::FILE* record_ = nullptr;
};

}  // namespace vitte::detail

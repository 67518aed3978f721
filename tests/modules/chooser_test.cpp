// Chooser (src/deterministic/chooser.hpp) on its own: a seed fixes every choice, other
// seeds choose otherwise, a choice is always one of the participants that can run, PCT runs
// the highest priority and demotes at its change points, and schedule logs record and
// replay choices (falling back to the seed's own choices where they stop fitting).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "deterministic/chooser.hpp"
#include "vitte/error.hpp"

using vitte::DeterministicOptions;
using vitte::Strategy;
using vitte::UsageError;
using vitte::detail::Chooser;
using vitte::detail::SplitMix;

namespace {

constexpr unsigned kWorkers = 4;  // participants 0..3 are workers, 4 the driver

DeterministicOptions opts(std::uint64_t seed, Strategy s = Strategy::Random, unsigned depth = 3,
                          std::uint64_t turns = 2000) {
  DeterministicOptions o;
  o.seed = seed;
  o.strategy = s;
  o.pct_depth = depth;
  o.pct_turns = turns;
  return o;
}

// Turn t's runnable set: a non-empty ascending subset of 0..kWorkers, the same for every
// call (so that two choosers see the same run).
std::vector<unsigned> runnable_at(std::uint64_t t) {
  SplitMix r{t * 7919};
  std::vector<unsigned> v;
  for (unsigned p = 0; p <= kWorkers; ++p)
    if (r.next() % 3 != 0) v.push_back(p);
  if (v.empty()) v.push_back(static_cast<unsigned>(t % (kWorkers + 1)));
  return v;
}

// `n` turns of a run: each turn's runnable set from runnable_at, `current` the last choice.
std::vector<unsigned> run(Chooser& c, std::uint64_t n, std::uint64_t first_turn = 1, unsigned current = kWorkers) {
  std::vector<unsigned> picks;
  for (std::uint64_t t = first_turn; t < first_turn + n; ++t) {
    current = c.pick(runnable_at(t), current, t);
    picks.push_back(current);
  }
  return picks;
}

std::string temp_path(const std::string& what) {
  return testing::TempDir() + "vitte_chooser_" + std::to_string(::getpid()) + "_" + what + ".log";
}

void write_file(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const auto& l : lines) out << l << "\n";
}

}  // namespace

// One seed, one schedule: two choosers fed the same run choose the same, for both strategies.
TEST(Chooser, SameSeedSameChoices) {
  for (Strategy s : {Strategy::Random, Strategy::Pct}) {
    Chooser a(opts(42, s, 3, 50), kWorkers + 1, kWorkers);
    Chooser b(opts(42, s, 3, 50), kWorkers + 1, kWorkers);
    EXPECT_EQ(run(a, 500), run(b, 500)) << vitte::to_string(s);
  }
}

// Other seeds, other schedules: of ten seeds no two give the same 200 choices.
TEST(Chooser, DifferentSeedsChooseDifferently) {
  for (Strategy s : {Strategy::Random, Strategy::Pct}) {
    std::set<std::vector<unsigned>> schedules;
    for (std::uint64_t seed = 0; seed < 10; ++seed) {
      Chooser c(opts(seed, s, 5, 100), kWorkers + 1, kWorkers);
      schedules.insert(run(c, 200));
    }
    EXPECT_EQ(schedules.size(), 10u) << vitte::to_string(s);
  }
}

// Bounds: every choice is one of the runnable participants; a lone runnable one is chosen.
TEST(Chooser, ChoosesOnlyRunnableParticipants) {
  for (Strategy s : {Strategy::Random, Strategy::Pct}) {
    Chooser c(opts(7, s, 8, 300), kWorkers + 1, kWorkers);
    unsigned current = kWorkers;
    for (std::uint64_t t = 1; t <= 2000; ++t) {
      const auto r = runnable_at(t);
      current = c.pick(r, current, t);
      ASSERT_TRUE(std::binary_search(r.begin(), r.end(), current)) << vitte::to_string(s) << " turn " << t;
    }
    for (unsigned p = 0; p <= kWorkers; ++p) EXPECT_EQ(c.pick({p}, current, 2001 + p), p);
  }
}

// Random draws uniformly: over 4000 turns with the same 4 runnable, each is chosen about
// a quarter of the time (the bounds are over 10 standard deviations wide).
TEST(Chooser, RandomCoversEveryRunnableParticipant) {
  Chooser c(opts(3), kWorkers + 1, kWorkers);
  std::vector<int> count(kWorkers + 1, 0);
  const std::vector<unsigned> r{0, 1, 3, 4};
  for (std::uint64_t t = 1; t <= 4000; ++t) ++count[c.pick(r, 0, t)];
  EXPECT_EQ(count[2], 0);
  for (unsigned p : r) {
    EXPECT_GT(count[p], 700) << p;
    EXPECT_LT(count[p], 1300) << p;
  }
}

// PCT without change points (depth 1): the highest-priority runnable participant runs,
// every turn; when it cannot run, the next one does, the same one each time.
TEST(Chooser, PctRunsTheHighestPriority) {
  Chooser c(opts(11, Strategy::Pct, 1), kWorkers + 1, kWorkers);
  const std::vector<unsigned> all{0, 1, 2, 3, 4};
  const unsigned top = c.pick(all, 0, 1);
  std::vector<unsigned> rest;
  for (unsigned p : all)
    if (p != top) rest.push_back(p);
  const unsigned second = c.pick(rest, top, 2);
  for (std::uint64_t t = 3; t < 200; t += 2) {
    EXPECT_EQ(c.pick(all, top, t), top);
    EXPECT_EQ(c.pick(rest, top, t + 1), second);
  }
}

// PCT's change point: at the turn drawn (all at turn 1 with pct_turns = 1) the participant
// that held the turn drops below everybody, so it runs again only when alone.
TEST(Chooser, PctChangePointDemotesTheCurrentParticipant) {
  const std::vector<unsigned> all{0, 1, 2, 3, 4};
  for (std::uint64_t seed = 0; seed < 5; ++seed) {
    // The same seed draws the same initial priorities whatever the depth.
    Chooser plain(opts(seed, Strategy::Pct, 1, 1), kWorkers + 1, kWorkers);
    const unsigned top = plain.pick(all, 0, 1);
    Chooser c(opts(seed, Strategy::Pct, 2, 1), kWorkers + 1, kWorkers);
    const unsigned after = c.pick(all, /*current=*/top, /*turn=*/1);
    EXPECT_NE(after, top) << "seed " << seed;
    for (std::uint64_t t = 2; t < 50; ++t) EXPECT_NE(c.pick(all, after, t), top) << "seed " << seed;
    EXPECT_EQ(c.pick({top}, after, 50), top);
  }
}

// Different seeds give PCT different initial priorities.
TEST(Chooser, PctPrioritiesComeFromTheSeed) {
  std::set<unsigned> tops;
  for (std::uint64_t seed = 0; seed < 30; ++seed) {
    Chooser c(opts(seed, Strategy::Pct, 1), kWorkers + 1, kWorkers);
    tops.insert(c.pick({0, 1, 2, 3, 4}, 0, 1));
  }
  EXPECT_GE(tops.size(), 3u);
}

// The log's header names everything a replay must match.
TEST(Chooser, HeaderNamesTheRun) {
  DeterministicOptions o = opts(99, Strategy::Pct, 4, 123);
  const std::string h = Chooser::header(o, 6);
  EXPECT_EQ(h.rfind("vitte-schedule 1 ", 0), 0u) << h;
  for (const char* part : {"seed=99", "strategy=pct", "workers=6", "pct_depth=4", "pct_turns=123"})
    EXPECT_NE(h.find(part), std::string::npos) << part << " in " << h;
  EXPECT_NE(Chooser::header(opts(98, Strategy::Pct, 4, 123), 6), h);
}

// record writes the header and one "<chosen> <how many could run>" line per choice.
TEST(Chooser, RecordWritesOneLinePerChoice) {
  const std::string path = temp_path("record");
  DeterministicOptions o = opts(5);
  o.record = path;
  std::vector<unsigned> picks;
  {
    Chooser c(o, kWorkers + 1, kWorkers);
    picks = run(c, 20);
  }
  std::ifstream in(path);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line, Chooser::header(o, kWorkers));
  for (std::uint64_t t = 1; t <= 20; ++t) {
    ASSERT_TRUE(std::getline(in, line)) << t;
    EXPECT_EQ(line, std::to_string(picks[t - 1]) + " " + std::to_string(runnable_at(t).size()));
  }
  EXPECT_FALSE(std::getline(in, line));
  std::remove(path.c_str());
}

// Replay follows the log, not the seed: a log of choices the seed would not make (always
// the last runnable) is followed to the letter; past its end the choices are those a fresh
// run of the seed makes at those turns (the strategy moved on meanwhile).
TEST(Chooser, ReplayFollowsTheLogThenHandsOverToTheSeed) {
  for (Strategy s : {Strategy::Random, Strategy::Pct}) {
    const std::string path = temp_path("replay");
    DeterministicOptions o = opts(8, s, 3, 40);
    std::vector<std::string> lines{Chooser::header(o, kWorkers)};
    for (std::uint64_t t = 1; t <= 30; ++t) {
      const auto r = runnable_at(t);
      lines.push_back(std::to_string(r.back()) + " " + std::to_string(r.size()));
    }
    write_file(path, lines);
    DeterministicOptions ro = o;
    ro.replay = path;
    Chooser replay(ro, kWorkers + 1, kWorkers);
    Chooser fresh(o, kWorkers + 1, kWorkers);
    unsigned cur = kWorkers;
    for (std::uint64_t t = 1; t <= 30; ++t) {
      const auto r = runnable_at(t);
      const unsigned got = replay.pick(r, cur, t);
      ASSERT_EQ(got, r.back()) << vitte::to_string(s) << " turn " << t;
      (void)fresh.pick(r, cur, t);  // the fresh run is fed the same `current`s
      cur = got;
    }
    for (std::uint64_t t = 31; t <= 100; ++t) {
      const auto r = runnable_at(t);
      const unsigned want = fresh.pick(r, cur, t);
      ASSERT_EQ(replay.pick(r, cur, t), want) << vitte::to_string(s) << " turn " << t;
      cur = want;
    }
    EXPECT_EQ(replay.divergence(), "");
    std::remove(path.c_str());
  }
}

// A log that stops fitting (here: it says 3 could run, this run has 2) is left at that
// turn for good; divergence() names the turn, and the seed's choices take over.
TEST(Chooser, ReplayDivergesWhereTheLogStopsFitting) {
  const std::string path = temp_path("diverge");
  DeterministicOptions o = opts(9);
  write_file(path, {Chooser::header(o, kWorkers), "1 2", "2 3", "0 2"});
  DeterministicOptions ro = o;
  ro.replay = path;
  Chooser replay(ro, kWorkers + 1, kWorkers);
  Chooser fresh(o, kWorkers + 1, kWorkers);
  EXPECT_EQ(replay.pick({1, 2}, 4, 1), 1u);
  (void)fresh.pick({1, 2}, 4, 1);
  EXPECT_EQ(replay.divergence(), "");
  EXPECT_EQ(replay.pick({0, 2}, 1, 2), fresh.pick({0, 2}, 1, 2));
  EXPECT_NE(replay.divergence().find("turn 2"), std::string::npos) << replay.divergence();
  // Line 3 ("0 2") would fit turn 3, but a diverged replay does not come back to the log.
  for (std::uint64_t t = 3; t < 40; ++t) EXPECT_EQ(replay.pick({0, 3}, 0, t), fresh.pick({0, 3}, 0, t)) << t;
  std::remove(path.c_str());
}

// Logs that cannot be replayed are refused with UsageError: missing, not a log, recorded
// for another run, or with a malformed line or a participant past the driver.
TEST(Chooser, ReplayRefusesLogsItCannotUse) {
  const std::string path = temp_path("bad");
  DeterministicOptions o = opts(10);
  DeterministicOptions ro = o;
  ro.replay = path;
  std::remove(path.c_str());
  EXPECT_THROW(Chooser(ro, kWorkers + 1, kWorkers), UsageError) << "missing file";
  const std::string good = Chooser::header(o, kWorkers);
  const std::vector<std::vector<std::string>> bad{
      {"not a schedule log"},
      {Chooser::header(opts(11), kWorkers)},      // another seed
      {Chooser::header(o, kWorkers + 1)},         // other workers
      {good, "1"},                                // no count
      {good, "1 2 3"},                            // trailing field
      {good, "1 0"},                              // nobody could run
      {good, std::to_string(kWorkers + 1) + " 2"},  // past the driver
      {good, "x 2"},
  };
  for (const auto& lines : bad) {
    write_file(path, lines);
    EXPECT_THROW(Chooser(ro, kWorkers + 1, kWorkers), UsageError) << lines.back();
  }
  write_file(path, {good, std::to_string(kWorkers) + " 2"});  // the driver is fine
  EXPECT_NO_THROW(Chooser(ro, kWorkers + 1, kWorkers));
  std::remove(path.c_str());
}

// A record path that cannot be written is refused at construction, naming the file.
TEST(Chooser, RecordRefusesAnUnwritablePath) {
  DeterministicOptions o = opts(1);
  o.record = "/nonexistent-dir-for-vitte-tests/schedule.log";
  try {
    Chooser c(o, kWorkers + 1, kWorkers);
    ADD_FAILURE() << "no UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(o.record), std::string::npos) << e.what();
  }
}

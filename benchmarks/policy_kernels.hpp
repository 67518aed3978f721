// Policy kernels (issue #9): the timing contracts of the scheduling policies (policy.hpp).
//
//   prio_latency/{vitte,tbb}/threads:N
//       N workers saturated by Low tasks of 50 µs (10,000 queued at the start, topped up to
//       10,000 whenever fewer than 5,000 are left); about every 1 ms the benchmark thread
//       submits one High task and times submission -> start. 400 samples, or as many as
//       3 s allow. The Time column is the mean; median_us / p99_us / max_us the
//       distribution; bar_met (vitte): p99 <= 500 µs.
//       vitte: Options{workers = N, policy = Priority} (the default aging, 20 ms);
//       submit(task, {.priority = Low}) and submit(task, {.priority = High}).
//       oneTBB: two task_arenas of N slots, none reserved for external threads, one
//       priority::low and one priority::high, with N worker threads in the process
//       (global_control); the Low tasks go to the low arena, the High one to the high arena,
//       both by enqueue().
//       low_threads: the threads that ran Low work (N: the backlog saturated them all).
//       Between runs the backlog is drained: a stop flag makes the queued Low tasks return
//       at once, and the run waits for every one of them.
//   fair_2to1/vitte/threads:N
//       Groups a (weight 2) and b (weight 1) under a Fair arena, each fed endless 200 µs
//       tasks (4 in flight per group, each task queues its successor) for 2 s. ratio:
//       CPU(a) / CPU(b) from metrics().groups (cpu_ns, the difference of two snapshots);
//       bar_met: 2.0 +- 0.2.
//   fair_nested/vitte/threads:N
//       1:1 at the top (left is Fair, right Fifo), 3:1 inside left (l3, l1), fed the same
//       way: frac_l3 / frac_l1 / frac_right of the leaves' CPU; bar_met: 3/8, 1/8 and 1/2
//       within 0.05 each.
//       cpu_util (both): the leaves' CPU over N x the elapsed time (near 1: saturated).
//       oneTBB has no weighted share between arenas (only priorities, and fixed concurrency
//       limits, which partition threads instead of sharing them), so the fair kernels have
//       no oneTBB counterpart.
//   edf_{on,off}/vitte/threads:2
//       Three periodic timers (every 10 ms) each release a job of 2 ms of work, beside
//       background work that keeps 40 tasks of 1 ms queued on node 0 (each replaces itself
//       at its end), for 5 s. on: the job is submitted with {.deadline = 10ms}; off: plainly
//       on node 0's injection queue, behind the background (FIFO: about 20 ms of wait).
//       A job misses when it finishes more than 10 ms after its release (the timer
//       callback that submitted it): missed / jobs, worst_late_us (the largest finish -
//       deadline; negative: every job finished early). on also reports the scheduler's own
//       deadline counts (sched_met, sched_missed). bar_met: on, no job missed; off, some did
//       (the load is heavy enough that the policy makes the difference).
//
// The fair and EDF bars are reported (bar_met = 1 / 0), not enforced: SkipWithError marks
// only broken runs (no CPU measured, a worker that never ran the load, a sample that never
// started, jobs lost).
#pragma once

#include <benchmark/benchmark.h>
#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "runtimes.hpp"
#include "timer_kernels.hpp"  // busy_for, TimerSample, LatencyReport

namespace bench {

using PolicyClock = std::chrono::steady_clock;

// A broken run: marked as an error, and the binary exits 1.
inline void policy_fail(benchmark::State& st, std::atomic<bool>* wrong, const std::string& why) {
  *wrong = true;
  st.SkipWithError(why.c_str());
}

// Options for a policy kernel's own scheduler. VITTE_CONFIG's placement applies as it does
// to the other kernels; its scheduling policy, aging and groups do not (each kernel sets its
// own tree, which the config's would clash with).
inline vitte::Options policy_options(int workers, vitte::Policy policy) {
  vitte::Options o;
  o.workers = static_cast<std::size_t>(workers);
  o.policy = policy;
  if (std::optional<vitte::Config> c = vitte::Config::from_environment()) {
    c->sets_policy = false;
    c->policy = "fifo";
    c->aging = std::chrono::nanoseconds(0);
    c->groups.clear();
    o.config = std::move(*c);
  }
  return o;
}

// ---- Priority latency ---------------------------------------------------------------

enum class PrioRuntime { Vitte, Tbb };
inline const char* name(PrioRuntime r) { return r == PrioRuntime::Vitte ? "vitte" : "tbb"; }

// The saturating Low backlog and the High probe, on either runtime.
class PrioRig {
 public:
  static constexpr auto kLowTask = std::chrono::microseconds(50);

  PrioRig(PrioRuntime r, int threads) {
    static std::atomic<std::uint64_t> runs{0};
    run_ = runs.fetch_add(1) + 1;
    if (r == PrioRuntime::Vitte) {
      sched_ = std::make_unique<vitte::Scheduler>(policy_options(threads, vitte::Policy::Priority));
    } else {
      // N workers in the process (the external thread is the +1), shared by two arenas of
      // N slots each that take no external thread: the high arena's demand takes workers
      // from the low one as they finish their task.
      limit_ = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                     static_cast<std::size_t>(threads) + 1);
      low_ = std::make_unique<tbb::task_arena>(threads, 0, tbb::task_arena::priority::low);
      high_ = std::make_unique<tbb::task_arena>(threads, 0, tbb::task_arena::priority::high);
      low_->initialize();
      high_->initialize();
    }
  }
  ~PrioRig() { drain(); }
  PrioRig(const PrioRig&) = delete;
  PrioRig& operator=(const PrioRig&) = delete;

  std::uint64_t pending() const { return queued_ - done_.load(std::memory_order_acquire); }
  // Queues Low tasks until `target` are pending.
  void top_up(std::uint64_t target) {
    for (std::uint64_t p = pending(); p < target; ++p) {
      auto low = [this] {
        thread_local std::uint64_t seen_run = 0;
        if (seen_run != run_) {
          seen_run = run_;
          low_threads_.fetch_add(1, std::memory_order_relaxed);
        }
        if (!stop_.load(std::memory_order_relaxed)) busy_for(kLowTask);
        done_.fetch_add(1, std::memory_order_release);
      };
      ++queued_;
      if (sched_)
        sched_->submit(vitte::Task(low), {.priority = vitte::Priority::Low});
      else
        low_->enqueue(low);
    }
  }
  // One High task: submission -> start. False if it had not started within 5 s.
  bool probe(double* us) {
    auto sample = std::make_shared<TimerSample>();  // outlives a probe that starts late
    const auto t0 = PolicyClock::now();
    if (sched_)
      sched_->submit(vitte::Task([sample] { sample->fire(); }), {.priority = vitte::Priority::High});
    else
      high_->enqueue([sample] { sample->fire(); });
    if (!sample->wait(std::chrono::seconds(5))) return false;
    *us = std::chrono::duration<double, std::micro>(sample->ran_at - t0).count();
    return true;
  }
  // The queued Low tasks return at once; waits for every one of them.
  void drain() {
    stop_.store(true, std::memory_order_relaxed);
    if (sched_) sched_->join_all();
    while (pending() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  int low_threads() const { return low_threads_.load(std::memory_order_relaxed); }

 private:
  std::uint64_t run_ = 0;  // tells this run's Low tasks from an earlier run's on a reused thread
  std::unique_ptr<vitte::Scheduler> sched_;
  std::unique_ptr<tbb::global_control> limit_;
  std::unique_ptr<tbb::task_arena> low_, high_;
  std::uint64_t queued_ = 0;  // the benchmark thread's alone
  std::atomic<std::uint64_t> done_{0};
  std::atomic<bool> stop_{false};
  std::atomic<int> low_threads_{0};
};

inline void prio_latency_bench(benchmark::State& st, PrioRuntime r, int threads, std::atomic<bool>* wrong,
                               LatencyReport report) {
  constexpr std::uint64_t kBacklog = 10'000, kRefillBelow = 5'000;
  constexpr std::size_t kSamples = 400;
  constexpr auto kBudget = std::chrono::seconds(3);
  std::vector<double> us;
  std::string error;
  std::uint64_t refills = 0, least_pending = kBacklog;
  int low_threads = 0;
  for (auto _ : st) {
    PrioRig rig(r, threads);
    rig.top_up(kBacklog);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // the workers are busy with it
    const auto end = PolicyClock::now() + kBudget;
    while (us.size() < kSamples && PolicyClock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      if (rig.pending() < kRefillBelow) {
        rig.top_up(kBacklog);
        ++refills;
      }
      least_pending = std::min(least_pending, rig.pending());
      double v = 0;
      if (!rig.probe(&v)) {
        error = "sample " + std::to_string(us.size()) + ": the High task had not started after 5 s";
        break;
      }
      us.push_back(v);
    }
    rig.drain();
    low_threads = rig.low_threads();
    double sum = 0;
    for (double v : us) sum += v;
    st.SetIterationTime(us.empty() ? 0.0 : sum / static_cast<double>(us.size()) * 1e-6);
  }
  if (error.empty() && low_threads != threads)
    error = std::to_string(low_threads) + " of " + std::to_string(threads) +
            " threads ran the Low backlog: the runtime was not saturated";
  if (!error.empty()) return policy_fail(st, wrong, error);
  st.counters["samples"] = static_cast<double>(us.size());
  st.counters["low_threads"] = low_threads;
  st.counters["refills"] = static_cast<double>(refills);
  st.counters["least_pending"] = static_cast<double>(least_pending);
  report(st, std::move(us));
  if (r == PrioRuntime::Vitte) st.counters["bar_met"] = st.counters["p99_us"] <= 500.0 ? 1 : 0;
}

// ---- Fair share ---------------------------------------------------------------------

// A leaf group of a fair kernel, and the CPU fraction the weights promise it.
struct FairLeaf {
  const char* name;
  double want;
};

// Endless tasks of 200 µs in group `g`: each queues its successor until `stop`.
inline void fair_feed(vitte::Scheduler& s, const vitte::Group& g, const std::atomic<bool>& stop) {
  s.submit(vitte::Task([&s, g, &stop] {
             busy_for(std::chrono::microseconds(200));
             if (!stop.load(std::memory_order_relaxed)) fair_feed(s, g, stop);
           }),
           {.group = g});
}

// `groups`: the tree under a Fair arena; `leaves`: the fed groups. ratio_tol > 0: the bar is
// CPU(leaves[0]) / CPU(leaves[1]) within ratio_tol of their promised ratio; otherwise every
// leaf's fraction within frac_tol of its promise.
inline void fair_bench(benchmark::State& st, int threads, std::vector<vitte::GroupSpec> groups,
                       std::vector<FairLeaf> leaves, double ratio_tol, double frac_tol, std::atomic<bool>* wrong) {
  constexpr auto kLength = std::chrono::seconds(2);
  constexpr int kInFlight = 4;
  std::vector<double> cpu(leaves.size(), 0.0);
  double elapsed_s = 0;
  std::uint64_t tasks = 0;
  for (auto _ : st) {
    vitte::Scheduler s(policy_options(threads, vitte::Policy::Fair));
    for (const vitte::GroupSpec& g : groups) s.make_group(g);
    std::atomic<bool> stop{false};
    const vitte::MetricsSnapshot m0 = s.metrics();
    const auto t0 = PolicyClock::now();
    for (const FairLeaf& l : leaves)
      for (int i = 0; i < kInFlight; ++i) fair_feed(s, s.group(l.name), stop);
    std::this_thread::sleep_for(kLength);
    const vitte::MetricsSnapshot d = s.metrics() - m0;
    elapsed_s = std::chrono::duration<double>(PolicyClock::now() - t0).count();
    stop.store(true);
    s.join_all();
    for (std::size_t i = 0; i < leaves.size(); ++i)
      for (const vitte::GroupMetrics& g : d.groups)
        if (g.name == leaves[i].name) {
          cpu[i] = static_cast<double>(g.cpu_ns);
          tasks += g.tasks;
        }
  }
  double all = 0;
  for (double c : cpu) all += c;
  for (std::size_t i = 0; i < leaves.size(); ++i)
    if (cpu[i] <= 0)
      return policy_fail(st, wrong, std::string("group ") + leaves[i].name + " got no CPU time in the metrics");
  bool met = true;
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    const double frac = cpu[i] / all;
    st.counters[std::string("frac_") + leaves[i].name] = frac;
    if (ratio_tol <= 0 && std::abs(frac - leaves[i].want) > frac_tol) met = false;
  }
  if (ratio_tol > 0) {
    const double ratio = cpu[0] / cpu[1], want = leaves[0].want / leaves[1].want;
    st.counters["ratio"] = ratio;
    met = std::abs(ratio - want) <= ratio_tol;
  }
  st.counters["bar_met"] = met ? 1 : 0;
  st.counters["cpu_util"] = all * 1e-9 / (elapsed_s * threads);
  st.counters["tasks"] = static_cast<double>(tasks);
}

// ---- Earliest deadline first --------------------------------------------------------

inline void edf_bench(benchmark::State& st, bool with_deadlines, std::atomic<bool>* wrong) {
  using std::chrono::milliseconds;
  constexpr int kWorkers = 2, kPeriodic = 3, kBackground = 40;
  constexpr auto kLength = std::chrono::seconds(5);
  constexpr milliseconds kPeriod{10}, kWork{2}, kDeadline{10};
  std::uint64_t jobs = 0, late = 0, skipped = 0, sched_met = 0, sched_missed = 0, expected = 0;
  std::int64_t worst_ns = 0;
  for (auto _ : st) {
    vitte::Scheduler s(policy_options(kWorkers, vitte::Policy::Fifo));
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> n_jobs{0}, n_late{0};
    std::atomic<std::int64_t> worst{INT64_MIN};
    struct Background {
      vitte::Scheduler& s;
      const std::atomic<bool>& stop;
      void operator()() const {
        busy_for(milliseconds(1));
        if (!stop.load(std::memory_order_relaxed)) s.submit(vitte::Task(*this), {.node = 0});
      }
    };
    for (int i = 0; i < kBackground; ++i) s.submit(vitte::Task(Background{s, stop}), {.node = 0});
    const auto t0 = PolicyClock::now();
    std::vector<vitte::Timer> ticks;
    for (int k = 0; k < kPeriodic; ++k)
      ticks.push_back(s.every(kPeriod, [&] {
        const auto deadline = PolicyClock::now() + kDeadline;
        auto job = [&, deadline] {
          busy_for(kWork);
          const std::int64_t lateness = (PolicyClock::now() - deadline).count();
          n_jobs.fetch_add(1);
          if (lateness > 0) n_late.fetch_add(1);
          for (std::int64_t w = worst.load(); lateness > w && !worst.compare_exchange_weak(w, lateness);) {
          }
        };
        if (with_deadlines)
          s.submit(vitte::Task(job), {.deadline = kDeadline});
        else
          s.submit(vitte::Task(job), {.node = 0});
      }));
    std::this_thread::sleep_for(kLength);
    for (vitte::Timer& t : ticks) t.cancel();
    const double elapsed = std::chrono::duration<double>(PolicyClock::now() - t0).count();
    stop.store(true);
    s.join_all();
    expected = static_cast<std::uint64_t>(kPeriodic * elapsed / std::chrono::duration<double>(kPeriod).count());
    for (const vitte::Timer& t : ticks) skipped += t.missed();
    const vitte::MetricsSnapshot m = s.metrics();
    jobs = n_jobs.load();
    late = n_late.load();
    worst_ns = worst.load();
    sched_met = m.deadlines_met;
    sched_missed = m.deadlines_missed;
  }
  if (jobs < expected * 9 / 10)
    return policy_fail(st, wrong, std::to_string(jobs) + " jobs ran, " + std::to_string(expected) +
                                      " periods elapsed: the timers fell behind");
  if (with_deadlines && sched_met + sched_missed != jobs)
    return policy_fail(st, wrong, "the scheduler counted " + std::to_string(sched_met + sched_missed) +
                                      " deadline tasks for " + std::to_string(jobs) + " jobs");
  st.counters["jobs"] = static_cast<double>(jobs);
  st.counters["missed"] = static_cast<double>(late);
  st.counters["missed_pct"] = 100.0 * static_cast<double>(late) / static_cast<double>(jobs);
  st.counters["worst_late_us"] = static_cast<double>(worst_ns) * 1e-3;
  st.counters["ticks_skipped"] = static_cast<double>(skipped);
  if (with_deadlines) {
    st.counters["sched_met"] = static_cast<double>(sched_met);
    st.counters["sched_missed"] = static_cast<double>(sched_missed);
  }
  st.counters["bar_met"] = (with_deadlines ? late == 0 : late > 0) ? 1 : 0;
}

// Registers the kernels above at the thread counts of `thread_counts` up to 2 (EDF: 2).
inline void register_policy_kernels(const std::vector<int>& thread_counts, std::atomic<bool>& wrong,
                                    LatencyReport report) {
  for (int t : thread_counts) {
    if (t > 2) continue;
    const std::string threads = "/threads:" + std::to_string(t);
    for (PrioRuntime r : {PrioRuntime::Vitte, PrioRuntime::Tbb})
      benchmark::RegisterBenchmark(("prio_latency/" + std::string(name(r)) + threads).c_str(), prio_latency_bench, r,
                                   t, &wrong, report)
          ->Unit(benchmark::kMicrosecond)->UseManualTime()->Iterations(1);
    benchmark::RegisterBenchmark(("fair_2to1/vitte" + threads).c_str(), fair_bench, t,
                                 std::vector<vitte::GroupSpec>{{.name = "a", .weight = 2}, {.name = "b", .weight = 1}},
                                 std::vector<FairLeaf>{{"a", 2.0 / 3}, {"b", 1.0 / 3}}, 0.2, 0.0, &wrong)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
    benchmark::RegisterBenchmark(("fair_nested/vitte" + threads).c_str(), fair_bench, t,
                                 std::vector<vitte::GroupSpec>{{.name = "left", .weight = 1, .policy = vitte::Policy::Fair},
                                                               {.name = "right", .weight = 1},
                                                               {.name = "l3", .parent = "left", .weight = 3},
                                                               {.name = "l1", .parent = "left", .weight = 1}},
                                 std::vector<FairLeaf>{{"l3", 3.0 / 8}, {"l1", 1.0 / 8}, {"right", 1.0 / 2}}, 0.0,
                                 0.05, &wrong)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
  }
  if (std::find(thread_counts.begin(), thread_counts.end(), 2) != thread_counts.end())
    for (bool on : {true, false})
      benchmark::RegisterBenchmark(on ? "edf_on/vitte/threads:2" : "edf_off/vitte/threads:2", edf_bench, on, &wrong)
          ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
}

}  // namespace bench

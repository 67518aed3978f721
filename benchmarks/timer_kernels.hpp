// Timer kernels (issue #8): vitte's timers against Asio's steady_timer, in the same run.
//
//   timer_lateness_{1ms,10ms}_{idle,loaded}/{vitte,asio}/threads:N
//       one timer at a time, armed for now + 1 ms (10 ms); lateness = the moment its
//       callback starts - its deadline. A few hundred samples per run; the Time column is
//       the mean lateness, median_us / p99_us / max_us the distribution.
//       vitte: Scheduler(N), sched.at(deadline, fn). Asio: one asio::io_context run by N
//       threads, a steady_timer's async_wait. "loaded": 2 x N tasks of 100 µs of busy work
//       in flight all the time, each re-submitting itself when it ends (vitte: vitte::spawn
//       from the task; Asio: asio::post to the same io_context), so every thread is busy.
//   timer_arm_cancel_1M/{vitte,asio}/threads:1
//       1M timers armed (an hour out) then cancelled, and their handles dropped; per_op is
//       the time per operation (arm or cancel). Asio's count includes running the 1M
//       aborted handlers, which is where its cancellation destroys them.
//
// Checked: every sample is taken (a timer that has not fired after 5 s is an error) and
// none fired before its deadline; every cancellation found its timer pending.
#pragma once

#include <benchmark/benchmark.h>

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtimes.hpp"

namespace bench {

enum class TimerRuntime { Vitte, Asio };
// bench_main.cpp's add_latency_counters: p50/p99/max counters from samples in µs.
using LatencyReport = void (*)(benchmark::State&, std::vector<double>);
inline const char* name(TimerRuntime r) { return r == TimerRuntime::Vitte ? "vitte" : "asio"; }

using TimerClock = std::chrono::steady_clock;

// An io_context run by `threads` threads, made once per thread count and reused.
struct AsioPool {
  explicit AsioPool(int threads) : ctx(threads), guard(asio::make_work_guard(ctx)) {
    for (int i = 0; i < threads; ++i) runners.emplace_back([this] { ctx.run(); });
  }
  ~AsioPool() {
    guard.reset();
    ctx.stop();
    for (auto& t : runners) t.join();
  }
  asio::io_context ctx;
  asio::executor_work_guard<asio::io_context::executor_type> guard;
  std::vector<std::thread> runners;
};

inline AsioPool& asio_pool(int threads) {
  static std::map<int, std::unique_ptr<AsioPool>> pool;
  auto& p = pool[threads];
  if (!p) p = std::make_unique<AsioPool>(threads);
  return *p;
}

inline void busy_for(std::chrono::microseconds d) {
  const auto end = TimerClock::now() + d;
  while (TimerClock::now() < end) {
  }
}

// 2 x threads self-resubmitting 100 µs tasks on either runtime.
class TimerLoad {
 public:
  static constexpr auto kTask = std::chrono::microseconds(100);

  TimerLoad(TimerRuntime r, int threads) : r_(r), threads_(threads) {
    live_ = 2 * threads;
    for (int i = 0; i < 2 * threads; ++i) {
      if (r_ == TimerRuntime::Vitte)
        vitte_scheduler(threads).submit(vitte::Task([this] { vitte_step(); }));
      else
        asio::post(asio_pool(threads).ctx, [this] { asio_step(); });
    }
  }
  ~TimerLoad() {
    stop_.store(true, std::memory_order_relaxed);
    if (r_ == TimerRuntime::Vitte) {
      vitte_scheduler(threads_).join_all();
    } else {
      std::unique_lock<std::mutex> lock(mu_);
      done_.wait(lock, [&] { return live_ == 0; });
    }
  }
  TimerLoad(const TimerLoad&) = delete;
  TimerLoad& operator=(const TimerLoad&) = delete;

 private:
  void vitte_step() {
    busy_for(kTask);
    if (!stop_.load(std::memory_order_relaxed)) vitte::spawn([this] { vitte_step(); });
  }
  void asio_step() {
    busy_for(kTask);
    if (!stop_.load(std::memory_order_relaxed)) {
      asio::post(asio_pool(threads_).ctx, [this] { asio_step(); });
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (--live_ == 0) done_.notify_all();
  }

  const TimerRuntime r_;
  const int threads_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable done_;
  int live_ = 0;  // Asio tasks still re-posting themselves (under mu_)
};

// One lateness sample: the callback records when it started and wakes the benchmark thread.
struct TimerSample {
  std::mutex mu;
  std::condition_variable cv;
  bool fired = false;
  TimerClock::time_point ran_at{};

  void fire() {
    const auto now = TimerClock::now();
    std::lock_guard<std::mutex> lock(mu);
    ran_at = now;
    fired = true;
    cv.notify_one();
  }
  bool wait(std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, limit, [&] { return fired; });
  }
};

inline void timer_lateness_bench(benchmark::State& st, TimerRuntime r, int threads, std::chrono::milliseconds delay,
                                 bool loaded, std::atomic<bool>* wrong, LatencyReport report) {
  vitte::Scheduler* sched = r == TimerRuntime::Vitte ? &vitte_scheduler(threads) : nullptr;
  AsioPool* pool = r == TimerRuntime::Asio ? &asio_pool(threads) : nullptr;
  std::unique_ptr<asio::steady_timer> timer;
  if (pool != nullptr) timer = std::make_unique<asio::steady_timer>(pool->ctx);
  std::unique_ptr<TimerLoad> load;
  if (loaded) load = std::make_unique<TimerLoad>(r, threads);
  std::vector<double> us;
  std::string error;
  for (auto _ : st) {
    auto sample = std::make_shared<TimerSample>();  // outlives a timer that fires late
    const auto deadline = TimerClock::now() + delay;
    if (sched != nullptr) {
      sched->at(deadline, [sample] { sample->fire(); });
    } else {
      timer->expires_at(deadline);
      timer->async_wait([sample](const std::error_code& ec) {
        if (!ec) sample->fire();
      });
    }
    if (!sample->wait(std::chrono::seconds(5))) {
      error = "sample " + std::to_string(us.size()) + ": the timer had not fired 5 s after its deadline";
      break;
    }
    const double late = std::chrono::duration<double>(sample->ran_at - deadline).count();
    if (late < 0) {
      error = "sample " + std::to_string(us.size()) + " fired " + std::to_string(-late * 1e6) + " µs early";
      break;
    }
    st.SetIterationTime(late);
    us.push_back(late * 1e6);
  }
  load.reset();
  if (!error.empty()) {
    *wrong = true;
    st.SkipWithError(error.c_str());
    return;
  }
  report(st, std::move(us));
}

inline void timer_arm_cancel_bench(benchmark::State& st, TimerRuntime r, std::size_t n, std::atomic<bool>* wrong) {
  std::string error;
  for (auto _ : st) {
    if (r == TimerRuntime::Vitte) {
      vitte::Scheduler& sched = vitte_scheduler(1);
      std::vector<vitte::Timer> timers;
      timers.reserve(n);
      for (std::size_t i = 0; i < n; ++i) timers.push_back(sched.after(std::chrono::hours(1), [] {}));
      std::size_t cancelled = 0;
      for (auto& t : timers) cancelled += t.cancel() ? 1 : 0;
      timers.clear();
      if (cancelled != n) error = std::to_string(n - cancelled) + " cancel() calls found their timer gone";
    } else {
      asio::io_context ctx(1);
      std::vector<asio::steady_timer> timers;
      timers.reserve(n);
      std::size_t aborted = 0;
      for (std::size_t i = 0; i < n; ++i) {
        timers.emplace_back(ctx);
        timers.back().expires_after(std::chrono::hours(1));
        timers.back().async_wait([&aborted](const std::error_code& ec) {
          if (ec == asio::error::operation_aborted) ++aborted;
        });
      }
      for (auto& t : timers) t.cancel();
      ctx.run();  // the aborted handlers run (and are destroyed) here
      timers.clear();
      if (aborted != n) error = std::to_string(n - aborted) + " timers were not aborted by cancel()";
    }
    if (!error.empty()) break;
  }
  if (!error.empty()) {
    *wrong = true;
    st.SkipWithError(error.c_str());
    return;
  }
  st.counters["timers"] = static_cast<double>(n);
  st.counters["per_op"] = benchmark::Counter(2.0 * static_cast<double>(n),
                                             benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

inline void register_timer_kernels(const std::vector<int>& thread_counts, std::atomic<bool>& wrong,
                                   LatencyReport report) {
  for (TimerRuntime r : {TimerRuntime::Vitte, TimerRuntime::Asio}) {
    for (int t : thread_counts) {
      const std::string suffix = std::string("/") + name(r) + "/threads:" + std::to_string(t);
      for (int ms : {1, 10})
        for (bool loaded : {false, true}) {
          const std::string kernel =
              "timer_lateness_" + std::to_string(ms) + "ms_" + (loaded ? "loaded" : "idle");
          benchmark::RegisterBenchmark((kernel + suffix).c_str(), timer_lateness_bench, r, t,
                                       std::chrono::milliseconds(ms), loaded, &wrong, report)
              ->Unit(benchmark::kMicrosecond)->UseManualTime()->Iterations(ms == 1 ? 500 : 200);
        }
    }
    benchmark::RegisterBenchmark((std::string("timer_arm_cancel_1M/") + name(r) + "/threads:1").c_str(),
                                 timer_arm_cancel_bench, r, std::size_t{1'000'000}, &wrong)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
  }
}

}  // namespace bench

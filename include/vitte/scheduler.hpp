// Scheduler: the worker arenas of one machine and the API that feeds them.
//
//   vitte::Scheduler sched(4);                       // 4 workers spread over the NUMA nodes
//   sched.submit(vitte::Task([] { work(); }));
//   sched.submit(vitte::Task([] { io(); }), {.node = 1});   // options: task_options.hpp
//   sched.join_all();                                // waits; rethrows the first error
//
// One arena per NUMA node that has CPUs; each arena's workers are pinned to that node's
// PUs (see Plan for when they are not). Work submitted from outside the workers goes to
// the injection queue of the caller's node (or the node named); work spawned inside a
// task goes to the spawning worker's own deque. Idle workers steal: same L3 first, then
// the rest of the node, then other nodes nearest first (docs/design.md).
//
// Shutdown contract (shutdown(), or the destructor): stop accepting submissions from other
// threads (they get UsageError and keep their task), drop every pending timer (its callback
// never runs, its closure is destroyed, its Timer reports TimerState::Dropped, and stderr
// says how many one-shot timers were dropped; arming is refused from then on: timer.hpp),
// wait for all submitted work and everything it spawns to finish (nothing queued is
// dropped), then stop and join the workers. shutdown() rethrows the first error of a
// detached task that join_all() never reported; the destructor, which cannot throw,
// writes it to stderr. Shutting down from one of the scheduler's own workers is a usage
// error (it would wait for itself) and aborts.
//
// fork() contract: a child process gets none of the parent's worker threads. A Scheduler
// the child inherited is unusable there: submit(), async(), join_all(), shutdown(),
// TaskGroup::run()/wait() on it throw UsageError, and its destructor frees nothing (the
// threads it would join do not exist). Futures and groups from the parent must not be
// waited on in the child. A new Scheduler made in the child works normally.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <stop_token>
#include <string_view>
#include <type_traits>
#include <utility>
#include <string>
#include <vector>

#include "vitte/config.hpp"
#include "vitte/deterministic.hpp"
#include "vitte/error.hpp"
#include "vitte/future.hpp"
#include "vitte/jobserver.hpp"
#include "vitte/memory.hpp"
#include "vitte/metrics.hpp"
#include "vitte/plan.hpp"
#include "vitte/policy.hpp"
#include "vitte/task.hpp"
#include "vitte/task_options.hpp"
#include "vitte/timer.hpp"
#include "vitte/topology.hpp"
#include "vitte/trace.hpp"

namespace vitte {

class Graph;      // graph.hpp
template <class T = void>
class task;       // coro.hpp
class GraphRun;
struct RunOptions;

struct WorkerInfo {
  unsigned index = 0;
  unsigned node = 0;
  int os_cpu = -1;  // -1 when unpinned
};

// What the metrics module measures beyond its always-on counts (metrics.hpp, docs/metrics.md).
// Each setting may also come from the config's [metrics] table; set in both, they must agree.
struct MetricsOptions {
  // Event counters per worker (PAPI, or Linux's software events where PAPI cannot count):
  // `events` names them (PAPI presets such as "PAPI_TOT_INS", native names such as
  // "perf::CONTEXT-SWITCHES"); empty: the default set (L1/L2/L3 data-cache misses, TLB
  // misses, instructions, cycles; software events where the hardware has none). Unset
  // `counters`: the config's [metrics] counters, else off. Events that cannot be counted
  // are listed with the reason in MetricsSnapshot::counter_info; counting never fails
  // the scheduler.
  std::optional<bool> counters;
  std::optional<std::vector<std::string>> events;
  // Samples each node's queue depth this often (a thread that sleeps in between); unset or
  // zero: the config's [metrics] sample_interval, else no sampling.
  std::optional<std::chrono::nanoseconds> sample_interval;
};

struct Options {
  std::size_t workers = 0;            // 0: one per core of the topology
  std::optional<Topology> topology;   // default: this machine
  Placement placement = Placement::Auto;
  // Placement config; when unset, the file named by VITTE_CONFIG (if any). Settings both
  // here and in the config must agree: equal values are fine (workers = 2 with
  // total = 2), different ones are a ConfigError; neither silently overrides the other
  // (Config::merged_with).
  std::optional<Config> config;
  // Called on each worker thread after it is pinned and before it runs tasks, and after
  // its last task. For embedding runtimes and profilers. Exceptions thrown here are
  // reported on stderr and otherwise ignored.
  std::function<void(const WorkerInfo&)> on_worker_start;
  std::function<void(const WorkerInfo&)> on_worker_stop;
  // Stack of each worker thread, in bytes; 0: the process default (ulimit -s, usually
  // 8 MiB). Nested waits (a TaskGroup::wait inside a task run by another wait) grow a
  // worker's stack by a few hundred bytes per level plus the user's own frames: see
  // docs/design.md for the measured cost per level. At least 64 KiB; rounded up to pages.
  std::size_t stack_size = 0;
  // Backpressure for external submissions (threads that are not this scheduler's
  // workers): at most this many tasks queued per node (0: unbounded). When a node's
  // backlog is full, submit()/async()/TaskGroup::run() from outside either wait for room
  // (Block) or throw BacklogFull (Fail): submit() then leaves the task in its Task, while
  // async() and run(), which took the closure, destroy it unrun. Work that the workers
  // queue themselves is never refused or blocked (a worker must not wait for itself), but
  // it counts towards the backlog that external producers see.
  std::size_t max_backlog = 0;
  enum class BacklogFullAction { Block, Fail } on_backlog_full = BacklogFullAction::Block;
  // Scheduling policies (policy.hpp). `policy`: the arena's own level, which orders the
  // external submissions made without TaskOptions (Fifo keeps them on the injection queue,
  // as before) and the top-level groups; unset: the config's [scheduling] policy, or Fifo.
  // `aging`: at Priority levels, a task that waited longer counts as High; unset: the
  // config's [scheduling] aging, or 20 ms. Set both here and in the config, they must agree.
  std::optional<Policy> policy;
  std::optional<std::chrono::nanoseconds> aging;
  // Called on the worker that ran a deadline task which finished late (after its counter
  // in the metrics was raised). Exceptions are reported on stderr and otherwise ignored.
  std::function<void(const DeadlineMiss&)> on_deadline_miss;
  MetricsOptions metrics;
  // Deterministic mode (deterministic.hpp): the workers take turns chosen by a seeded
  // chooser, on a virtual clock. Unset: the config's [deterministic] table, else the
  // VITTE_DETERMINISTIC environment variable ("SEED" or "SEED:random", "SEED:pct",
  // "SEED:pct:DEPTH:TURNS"), else real scheduling.
  std::optional<DeterministicOptions> deterministic;
  // GNU make's jobserver (jobserver.hpp). Unset: the config's [workers] jobserver, else
  // Auto. A deterministic run takes no part (it has no parked workers); On with one is a
  // UsageError.
  std::optional<JobserverMode> jobserver;
};

class Scheduler {
 public:
  // One worker per core of this machine.
  Scheduler();
  // `workers` workers over this machine's nodes. Throws PlanError for 0.
  explicit Scheduler(std::size_t workers);
  explicit Scheduler(Options opts);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  ~Scheduler();

  // Queues a task. From one of this scheduler's workers: on its own deque; from any
  // other thread: on the injection queue of the node the caller runs on (round-robin over
  // nodes when the topology is not this machine). Throws UsageError after shutdown began
  // (the task is left untouched in `t`).
  void submit(Task&& t);
  // The same, placed as `opts` say (task_options.hpp): on opts.node's queue, as policy work
  // at opts.group's level with its priority and deadline, named. Counted as detached work
  // like submit(t). UsageError for options that would not apply and after shutdown began;
  // `t` keeps its task then.
  void submit(Task&& t, const TaskOptions& opts);
  // The former spelling of submit(t, {.node = node}).
  template <class N>
    requires(std::integral<N> && !std::same_as<N, bool> && !std::same_as<N, char> &&
             !std::same_as<N, signed char> && !std::same_as<N, unsigned char> && !std::same_as<N, wchar_t> &&
             !std::same_as<N, char8_t> && !std::same_as<N, char16_t> && !std::same_as<N, char32_t>)
  [[deprecated("use submit(t, {.node = n})")]] void submit(Task&& t, N node) {
    if (node < 0 || static_cast<unsigned long long>(node) > std::numeric_limits<unsigned>::max())
      throw UsageError("submit() to node " + std::to_string(node) + ": no such node");
    submit(std::move(t), TaskOptions{.node = static_cast<unsigned>(node)});
  }

  // A new level of the scheduling tree (policy.hpp). UsageError for a name in use, an
  // unknown parent, a weight that is not positive and finite, or a weight other than 1
  // under a parent that is not Fair. Groups declared in the config ([[groups]]) exist
  // from the start.
  Group make_group(const GroupSpec& spec);
  // The named group; UsageError if there is none.
  Group group(std::string_view name) const;
  // The arena's policy (its root level).
  Policy policy() const noexcept;

  // Runs `fn` as a task and returns a future for its result; `opts` place it
  // (task_options.hpp). UsageError for options that would not apply, and after shutdown
  // began.
  // (Two overloads, no default argument: GCC 12 frees a defaulted TaskOptions temporary
  // twice inside a co_await expression, `co_await sched.async(fn)`.)
  template <class F>
  auto async(F&& fn) -> Future<std::invoke_result_t<std::decay_t<F>&>> {
    return async_with(std::forward<F>(fn), nullptr);
  }
  template <class F>
  auto async(F&& fn, const TaskOptions& opts) -> Future<std::invoke_result_t<std::decay_t<F>&>> {
    return async_with(std::forward<F>(fn), &opts);
  }
  // The former spelling of async(fn, {.node = node}).
  template <class F>
  [[deprecated("use async(fn, {.node = n})")]] auto async(unsigned node, F&& fn)
      -> Future<std::invoke_result_t<std::decay_t<F>&>> {
    return async(std::forward<F>(fn), TaskOptions{.node = node});
  }

  // Starts a coroutine as a detached task (coro.hpp): join_all() and shutdown wait for it
  // to end, suspended or not; its exception goes where a detached task's goes (join_all()
  // rethrows it). `opts` (task_options.hpp) hold for all of it: every resumption queues
  // under them, and the coroutines it awaits inherit them; a deadline is refused (it
  // applies to one task's run, and a coroutine runs as many). `token` reaches it and
  // everything it starts. UsageError for options that would not apply and after shutdown
  // began (the task is destroyed unstarted).
  template <class T>
  void start(task<T> t, const TaskOptions& opts = {}, std::stop_token token = {});
  // The former spelling of start(t, {}, token).
  template <class T>
  [[deprecated("use start(t) (\"spawn\" now means only vitte::spawn)")]] void spawn(task<T> t,
                                                                                     std::stop_token token = {}) {
    start(std::move(t), TaskOptions{}, std::move(token));
  }

  // Timers (timer.hpp: accounting, periodic semantics, shutdown). The callback runs as a
  // task on a worker of opts.node, placed by `opts` (task_options.hpp; a deadline counts
  // from each tick). after(): once, `delay` from now (a delay <= 0: at once); at(): once,
  // at `when`; every(): every `period` (> 0), the first run one period from now, ticks by
  // `mode`. Throw UsageError for options that would not apply, a period <= 0, and once
  // shutdown has begun (nothing is armed then). A callback not callable with no arguments
  // does not compile.
  template <class Rep, class Per, class F>
  Timer after(std::chrono::duration<Rep, Per> delay, F&& fn, const TaskOptions& opts = {}) {
    detail::UserTimer* t = detail::make_user_timer(std::forward<F>(fn));
    const auto first = detail::add_saturated(now(), detail::saturated_ns(delay));
    return start_timer(t, first, std::chrono::nanoseconds(0), false, opts, Periodic::FixedRate, "after()");
  }
  template <class F>
  Timer at(std::chrono::steady_clock::time_point when, F&& fn, const TaskOptions& opts = {}) {
    detail::UserTimer* t = detail::make_user_timer(std::forward<F>(fn));
    return start_timer(t, when, std::chrono::nanoseconds(0), false, opts, Periodic::FixedRate, "at()");
  }
  template <class Rep, class Per, class F>
  Timer every(std::chrono::duration<Rep, Per> period, F&& fn, const TaskOptions& opts = {},
              Periodic mode = Periodic::FixedRate) {
    detail::UserTimer* t = detail::make_user_timer(std::forward<F>(fn));
    const std::chrono::nanoseconds p = detail::saturated_ns(period);
    const auto first = detail::add_saturated(now(), p);
    return start_timer(t, first, p, true, opts, mode, "every()");
  }
  // Starts a run of a task graph and returns its handle (graph.hpp: the contract, and
  // the UsageErrors for a cycle or a graph already running). RunOptions{.trace = true}
  // records each task's timings.
  GraphRun run(Graph& g);
  GraphRun run(Graph& g, const RunOptions& opts);

  // Waits until every task submitted so far (and every task they spawned) has finished,
  // graph runs in flight included (their errors stay with their GraphRun), and every
  // pending one-shot timer (after/at) until its callback has run; periodic timers are not
  // waited for (only their runs in progress).
  // Rethrows the first error a detached task threw since the last join_all(); the others
  // are counted in metrics().total.failed. A task or coroutine that ended with
  // vitte::Cancelled (its stop token, shutdown) is counted in metrics().total.cancelled and
  // rethrown only with Rethrow::ErrorsAndCancellations (docs/errors.md). Throws UsageError
  // when called from one of this scheduler's own workers (it would wait for the task that
  // calls it).
  void join_all(Rethrow what = Rethrow::Errors);

  // Stops accepting submissions from other threads, drops the pending timers (see the
  // shutdown contract above), waits for all submitted work (and what it spawns) to finish,
  // then stops and joins the workers. Rethrows the first error of a detached task that
  // join_all() never reported. Idempotent; the destructor calls it. Afterwards submit(),
  // after(), at() and every() throw UsageError. Calling it from one of this scheduler's own
  // workers aborts (it would wait for itself).
  void shutdown();

  // Starts recording a trace (trace.hpp) of everything the workers do until stop_trace(),
  // from any thread, a task of this scheduler included. Work queued after it returned is
  // recorded. Allocates each worker's buffer (opts.events_per_worker events of 32 bytes).
  // UsageError when a trace is already recording, for events_per_worker or sample_every
  // of 0 (naming the field), after shutdown() began, and in a process that inherited the
  // scheduler through fork().
  void start_trace(const TraceOptions& opts = {});
  // Ends the recording and returns it. Never waits for a running task (a task that has
  // not finished by then has no slice); may be called from a task. After shutdown() it
  // returns the trace that was recording when the workers stopped. UsageError when no trace
  // is recording, and in a process that inherited the scheduler through fork().
  Trace stop_trace();
  // Whether a trace is recording.
  bool tracing() const;

  const Topology& topology() const noexcept;
  const Plan& plan() const noexcept;
  // Whether workers' plain malloc/new come from their node's arena, and why.
  const MallocRouting& malloc_routing() const noexcept;
  std::size_t num_workers() const noexcept;
  MetricsSnapshot metrics() const;

  // The scheduler's clock: std::chrono::steady_clock::now(), or in deterministic mode the
  // run's virtual clock (which timers, sleep_for, deadlines and aging follow). at() takes
  // time points of this clock.
  std::chrono::steady_clock::time_point now() const noexcept;
  // What the deterministic run did so far: its seed, choices, tasks, steals and schedule
  // hash (deterministic.hpp); `deterministic` is false for a real scheduler.
  ScheduleInfo schedule() const;

  // The scheduler whose worker runs the calling thread, or null.
  static Scheduler* current() noexcept;
  // The calling worker's index in the plan, or -1 on other threads.
  static int current_worker() noexcept;

 private:
  friend detail::SchedulerCore* detail::core_of(Scheduler&) noexcept;

  template <class F>
  auto async_with(F&& fn, const TaskOptions* opts) -> Future<std::invoke_result_t<std::decay_t<F>&>> {
    using R = std::invoke_result_t<std::decay_t<F>&>;
    auto state = std::make_shared<detail::FutureState<R>>(core_.get());
    Task t([state, f = std::forward<F>(fn)]() mutable { return state->fulfil(f); });
    t.frame_->joins = state.get();  // an isolated get() may run this task
    if (opts == nullptr)
      submit(std::move(t));
    else
      submit_with(std::move(t), *opts, "async(fn, options)");
    return Future<R>(std::move(state));
  }
  // submit(t, opts), its errors naming `what` (the entry point the caller used).
  void submit_with(Task&& t, const TaskOptions& opts, const char* what);
  // Queues `t` by `r` from any thread: counts it as detached work, leaves it in `t` when
  // refused.
  void submit_routed(Task& t, const detail::Route& r);
  // Adopts `t` (the handle's reference) before it checks anything, so a refusal frees it
  // (src/timer/user_timer.cpp).
  Timer start_timer(detail::UserTimer* t, std::chrono::steady_clock::time_point first,
                    std::chrono::nanoseconds period, bool periodic, const TaskOptions& opts, Periodic mode,
                    const char* what);

  std::unique_ptr<detail::SchedulerCore> core_;
};

}  // namespace vitte

// Worker: one thread of an arena, and the one loop it runs (worker/loop.hpp).
//
//   loop:  find work -> run it -> (found nothing) the driver's idle step,
//          until what the loop waits for: shutdown (the worker's own loop) or a counter
//          (a wait inside a task: TaskGroup::wait, Future::get on a worker).
//   search (worker/search.cpp): when the node's hint is up: its urgent lane, then its
//          ReadyQueue's preferred work (deadlines, High) -> own deque (LIFO) -> own node's
//          urgent lane -> own node's injection queue and ReadyQueue (alternating) -> steal
//          levels within the node -> the node's Low work -> remote levels, nearest first
//          (their injection queues and ReadyQueues too, after a longer patience).
//   idle step: real runs spin a bounded number of rounds, then park until woken
//          (worker/parking.cpp); a deterministic run ends its turn instead
//          (deterministic/det_worker.cpp). The loop itself has no deterministic branch.
//   run (worker/running.cpp): the plain path executes the frame; policy work and watched
//          workers (a trace, event counters, a deterministic run's clock) take the cold side.
//
// Files: worker.cpp (the thread: start, pinning, its body), hot_path.hpp (the inline search
// and run of fork-join work), loop.hpp (the loop), search.cpp, running.cpp, parking.cpp,
// waiting.cpp (waits inside tasks, isolation regions, wait_for).
//
// The hot part (deque, pool, counters) is WorkerLocal, visible to inline code; this class
// adds the thread, the steal plan and the sleep protocol. See docs/design.md for the
// searching/parking protocol and why a missed wake-up can delay but never lose work.
// Pinned workers ask the kernel for a short time slice so that a wake-up preempts another
// process on their CPU instead of waiting out its slice (worker.cpp, request_short_slice).
#pragma once

#include <array>
#include <utility>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <pthread.h>

#include <thread>
#include <vector>

#include "metrics/worker_stats.hpp"
#include "policy/ready_queue.hpp"
#include "queue/injection_queue.hpp"
#include "queue/urgent_lane.hpp"
#include "trace/trace_recorder.hpp"
#include "vitte/detail/worker_local.hpp"
#include "vitte/plan.hpp"

namespace vitte {
struct WorkerInfo;
}

namespace vitte::detail {

class TimerQueue;  // timer/timer_queue.hpp

class Worker : public WorkerLocal {
 public:
  // Steal rounds a worker spins through before it parks (each round visits every victim
  // once, with growing pauses in between, then yields).
  static constexpr unsigned kSpinRounds = 48;
  // Failed rounds within the own node before a worker also looks at other nodes. Work
  // that appears on the node a moment later (a peer about to push, a node-local
  // submission whose own workers are waking up) stays on the node; a few microseconds
  // of patience is cheap next to a remote cache-line walk per stolen task.
  static constexpr unsigned kRemotePatience = 32;
  // Failed rounds before a worker takes a remote node's *injected* work. That node's own
  // workers were woken for it, and a root taken across nodes drags its whole subtree
  // with it, so this waits longer (about a wake-up latency).
  static constexpr unsigned kRemoteInjectPatience = 40;

  Worker(SchedulerCore& core, const WorkerSlot& slot);

  // Resolves the plan's steal levels to queue pointers; call once all workers exist.
  void wire(const std::vector<std::unique_ptr<Worker>>& all,
            const std::vector<std::unique_ptr<InjectionQueue>>& inject, const Plan& plan);

  // Starts the thread (Options::stack_size bytes of stack; 0: the default). A failure
  // is reported through start_error() like a failed pin.
  void start(std::size_t stack_size);
  void join();
  const std::string& start_error() const noexcept { return start_error_; }
  // Linux CPU this worker is bound to; -1 when unpinned.
  int os_cpu() const noexcept { return slot_.os_cpu; }

  // Runs other tasks until `c` finishes (TaskGroup::wait, Future::get on a worker);
  // inside an isolation region, only that region's tasks. Real runs; a deterministic run's
  // waits go through its driver (deterministic/det_worker.hpp).
  void help_wait(WaitCounter& c);

  // The one scheduling loop (worker/loop.hpp): finds work and runs it until `goal` is met
  // (UntilStopped, UntilDone); `driver` decides what follows a task and what a round that
  // found nothing does (Parks here, the deterministic run's Turns). Instantiated where a
  // driver lives: worker.cpp and waiting.cpp (Parks), deterministic/det_worker.cpp.
  template <class Goal, class Driver>
  void loop(Goal goal, Driver driver);
  // A loop's rounds that found nothing in a row (they widen the search: kRemotePatience),
  // and whether its wait's counter is armed to wake it (WaitCounter I3).
  struct Rounds {
    unsigned failed = 0;
    bool armed = false;
  };
  // The real idle step (worker/parking.cpp): searching, a bounded spin, then park.
  void rest(Rounds& r, WaitCounter* joining, bool isolated);
  // The task just run only handed its work to another node (a coroutine resuming there, a
  // graph task placed there): in a deterministic run that turn made progress for others but
  // not for this worker, which must not win the next turn by it (DetSim::turn_handed_back).
  // `node`: the arena node the work went to. Read (and cleared) by the deterministic
  // driver's take_handed_back().
  void handed_back(unsigned node) noexcept { handed_back_to_ = static_cast<int>(node); }
  int take_handed_back() noexcept { return std::exchange(handed_back_to_, -1); }
  // Lets a thread stuck in an abandoned deterministic run go (SchedulerCore::abandon).
  void detach() noexcept;

  // Observers of this worker, as bits of watch_: while none is set, each hook (a task's
  // run, a steal, a sleep) costs one predicted branch on a byte of this worker.
  static constexpr std::uint8_t kWatchTrace = 1;     // a trace records (trace.hpp)
  static constexpr std::uint8_t kWatchCounters = 2;  // event counters are published on request
  static constexpr std::uint8_t kWatchDet = 4;       // a deterministic run charges each task
  // Sets or clears a bit; from any thread (the controller of the observer).
  void watch(std::uint8_t bit, bool on) noexcept;
  TraceRecorder& trace_recorder() noexcept { return trace_; }
  // The recorder when this worker records graph tasks now (a trace is on and the task
  // running is sampled), else null. Called per graph task by the graph runner.
  TraceRecorder* graph_tracer() noexcept { return tracing() && trace_.in_sampled_task() ? &trace_ : nullptr; }
  // Names the task running now in a trace (a timer's callback), if one records.
  void label_task(std::string_view name) noexcept {
    if (tracing()) [[unlikely]] trace_.label_task(name);
  }

  // Metrics beyond the counters (metrics/worker_stats.hpp, S1-S3).
  WorkerStats stats;
  // The steal level `i`'s scope and NUMA distance (for the snapshot's steal bins).
  std::size_t steal_levels() const noexcept { return levels_.size(); }
  StealScope steal_scope(std::size_t i) const noexcept;
  unsigned steal_distance(std::size_t i) const noexcept { return levels_[i].distance; }
  // Reads this thread's event counters into stats.published (WorkerStats S3); on this
  // worker's own thread only.
  void publish_counters() noexcept;
  // S3: asks this worker for fresh totals at its next task boundary; whether it still has
  // to answer (acquire: pairs with publish_counters()).
  void request_counters() noexcept { watch(kWatchCounters, true); }
  bool counters_requested() const noexcept { return (watch_.load(std::memory_order_acquire) & kWatchCounters) != 0; }

 private:
  // A StealLevel resolved against the plan's shared lists: no per-worker copy of the
  // victims (memory stays linear in the workers); victim k is
  // workers[list[base + (first + k) % size]].
  struct Level {
    StealLevel::Kind kind;
    unsigned distance;
    const unsigned* list;       // the plan's VictimList::workers (the plan outlives us)
    unsigned base, size, first, count;
    const std::vector<unsigned>* nodes;  // Remote levels: those nodes' injection queues
  };

  void main();
  TaskFrame* find_work(unsigned failed_rounds);
  TaskFrame* find_own(unsigned failed_rounds);  // own deque, then find_queued
  [[gnu::cold, gnu::noinline]] TaskFrame* find_work_urgent(unsigned failed_rounds);
  TaskFrame* find_queued(unsigned failed_rounds);
  TaskFrame* take_urgent();
  // Policy work: takes from `q` (see ReadyQueue), and keeps the entry for run_task().
  TaskFrame* take_ready(ReadyQueue* q, bool preferred, bool allow_low);
  TaskFrame* took_ready(ReadyQueue* q, Entry& e);
  // Runs a found task: policy work is timed and accounted (run_policy), the rest executed;
  // a watched worker (a trace records, counters are published) goes through run_watched.
  void run_task(TaskFrame* f) noexcept {
    if (policy_from_ != nullptr || watch_.load(std::memory_order_relaxed) != 0) [[unlikely]] {
      run_watched(f);
      return;
    }
    execute<false>(f, nullptr);
  }
  [[gnu::cold, gnu::noinline]] void run_watched(TaskFrame* f) noexcept;
  // Observers after a task's closure returned (running.cpp).
  void observe_ran() noexcept;
  // `span`: the task's trace span, closed before the task's counter is told (so that a
  // joiner that saw the task finish, then stopped the trace, finds its slice); null: none.
  [[gnu::cold, gnu::noinline]] void run_policy(TaskFrame* f, TaskSpan* span) noexcept;
  bool tracing() const noexcept { return (watch_.load(std::memory_order_relaxed) & kWatchTrace) != 0; }
  // Event counters (kWatchCounters): starts them on this thread.
  void start_counters();
  void count_group_events(GroupNode& g, const std::array<std::uint64_t, kMaxEvents>& ev0,
                          const std::array<std::uint64_t, kMaxEvents>& outer) noexcept;
  // Idle periods and state (WorkerStats S2).
  void idle_begin() noexcept;
  void idle_end() noexcept;
  bool belongs(TaskFrame* f, const WaitCounter& c) noexcept;
  TaskFrame* find_work_isolated(WaitCounter& c, unsigned failed_rounds);
  // `policy` false (an isolated wait): deques and injection queues only; an isolated wait
  // takes its own policy work by matching (find_work_isolated), never foreign entries.
  TaskFrame* steal(unsigned failed_rounds, bool policy = true);
  // kTraced: `span` is open and closed here (see run_policy); false: the plain hot path.
  template <bool kTraced>
  void execute(TaskFrame* f, TaskSpan* span) noexcept;
  [[gnu::cold, gnu::noinline]] void execute_rare(TaskFrame* f, TaskSpan* span) noexcept;
  void park(WaitCounter* joining, bool& armed, bool isolated);
  // Shutdown has begun and no queue holds work: the worker's own loop ends (parking.cpp).
  bool drained() const;
  void backoff(unsigned round);
  void start_searching() noexcept;
  void found_work() noexcept;     // leaves the searching state, may wake a successor
  void leave_search() noexcept;   // leaves it without waking anyone
  std::uint64_t next_random() noexcept;

  SchedulerCore& core_;
  WorkerSlot slot_;
  InjectionQueue* own_inject_ = nullptr;
  UrgentLane* own_urgent_ = nullptr;  // timers that fell due (resume.hpp, Lane::Urgent)
  // An isolated wait's view of its node's queues after its last scan found nothing of its
  // own (frames queued there, foreign ones included): its sleep re-checks for arrivals
  // against it (Worker::park).
  std::size_t isolated_seen_ = 0;
  std::size_t queued_on_node() const;
  ReadyQueue* own_ready_ = nullptr;   // the node's policy work (policy.hpp)
  TimerQueue* timers_ = nullptr;      // the node's timers, kept while we sleep (TimerQueue Q5)
  // The policy entry just taken (its frame is what find_work returned), and its queue;
  // null when the found task is not policy work. run_task() consumes it.
  ReadyQueue* policy_from_ = nullptr;
  // Observer bits (kWatchTrace, ...), read by run_task beside policy_from_. Set and cleared
  // by RMW from other threads (each observer its own bit); relaxed: a hint, each observer
  // has its own handshake for what it writes (TraceRecorder R5).
  std::atomic<std::uint8_t> watch_{0};
  Entry policy_entry_;
  bool ready_first_ = false;  // alternates the injection queue and the ReadyQueue
  // CPU time of the policy tasks that ran nested inside the policy task running now (in
  // its waits), which run_policy() does not charge to it a second time.
  std::int64_t policy_inner_ns_ = 0;
  // The same for event counters, when the running policy task's group counts them.
  std::array<std::uint64_t, kMaxEvents> policy_inner_events_{};
  std::vector<Level> levels_;
  const std::unique_ptr<Worker>* all_ = nullptr;            // every worker, by index
  const std::unique_ptr<InjectionQueue>* inject_ = nullptr;  // every node's injection queue
  std::uint64_t rng_;
  bool searching_ = false;
  int handed_back_to_ = -1;  // deterministic runs: see handed_back()
  // Set after a successful remote take; cleared by the next local take or by a round
  // that finds nothing anywhere. While it is set the own node stays dry, so later
  // searches cross at once instead of paying the patience again.
  bool crossing_ = false;
  // Whether the queue the last task came from still held work after we took it: only
  // then does a searcher that found work wake a successor (waking one to find nothing
  // costs a futex call and an IPI before our own task can start).
  bool more_where_found_ = false;
  TraceRecorder trace_;
  std::string start_error_;
  pthread_t thread_{};
  bool running_ = false;
};

// Asks Linux for a short time slice for the calling thread (worker.cpp: why, and which
// kernels honour it), so that its wake-ups can preempt a busy thread on its CPU instead
// of waiting for that thread's slice to end. Pinned workers and the timer threads call it.
void request_short_slice() noexcept;

// Blocks a thread that is not a worker until `c` finishes.
void block_wait(WaitCounter& c);

// The worker this thread is, or null. The one place the thread's WorkerLocal is taken as
// the Worker it is part of: only Worker::main sets tls_worker (worker.cpp), to itself.
inline Worker* this_worker() noexcept { return static_cast<Worker*>(tls_worker); }

}  // namespace vitte::detail

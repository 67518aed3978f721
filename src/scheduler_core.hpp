// SchedulerCore: the state behind a vitte::Scheduler (private).
//
// Owns the topology, the plan, one injection queue per arena node, the workers and the
// parking lot. The public Scheduler is a handle to it; inline code reaches it through
// WorkerLocal::core.
#pragma once

#include <atomic>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lifecycle/live_slot.hpp"
#include "metrics/event_counters.hpp"
#include "vitte/detail/wait_counter.hpp"
#include "vitte/detail/worker_local.hpp"
#include "vitte/scheduler.hpp"

namespace vitte::detail {

// Each part lives in its module's header; a file includes those it uses (the core holds
// them through pointers, so this header stays narrow).
struct BoundOptions;        // vitte/detail/bound_options.hpp
struct CheckedOptions;      // scheduler_checks.hpp
class DetSim;               // deterministic/sim.hpp
struct Entry;               // policy/group_node.hpp
class GroupTree;            // policy/group_tree.hpp
class InjectionQueue;       // queue/injection_queue.hpp
class ParkingLot;           // worker/parking_lot.hpp
class QueueSampler;         // metrics/queue_sampler.hpp
class ReadyQueue;           // policy/ready_queue.hpp
class TimerService;         // timer/timer_service.hpp
class JobserverClient;      // jobserver/client.hpp
struct TraceData;           // trace/trace_data.hpp
class UrgentLane;           // queue/urgent_lane.hpp
class Worker;               // worker/worker.hpp

class SchedulerCore;
class TbbArenas;  // interop/tbb_arenas.hpp: the oneTBB arenas, made on first use
struct TbbArenasDeleter {
  void operator()(TbbArenas* a) const noexcept;
};
std::unique_ptr<TbbArenas, TbbArenasDeleter> make_tbb_arenas(SchedulerCore& core);
void destroy_tbb_arenas(TbbArenas* a) noexcept;

// Options::aging when neither the code nor the config sets it.
inline constexpr std::chrono::nanoseconds kDefaultAging = std::chrono::milliseconds(20);

class SchedulerCore {
 public:
  // Options that check_options() (scheduler_checks.hpp) accepted.
  SchedulerCore(Scheduler* owner, CheckedOptions checked);
  ~SchedulerCore();

  // Bounded mode: takes a slot in node n's backlog for an external submission (waits for
  // one, or throws BacklogFull, as Options::on_backlog_full says). The route's (route.hpp).
  void admit_external(unsigned n);
  // Queues a frame as policy work on node n's ReadyQueue (policy/submit.cpp), for the route:
  // `ext` when the caller is not one of our workers (admitted by the route; in bounded mode
  // this takes a backlog slot). Wakes a worker of the node. `deadline_at_ns` > 0 overrides
  // b's relative deadline with an absolute one (a timer's run: its tick plus its deadline).
  void queue_policy(TaskFrame* f, const BoundOptions& b, unsigned n, bool ext, std::int64_t deadline_at_ns = 0);
  // After a deadline task finished late: the handler (Options::on_deadline_miss).
  void deadline_missed(const Entry& e, std::int64_t end_ns, unsigned node) noexcept;
  // After a push to node n's injection queue: the Dekker half that pairs with park.
  void wake_for_injection(unsigned n);
  // The arena node that work for `node` goes to (node < 0: the caller's node).
  unsigned arena_for(int node) noexcept;
  // Throws UsageError in a child process that inherited this scheduler through fork():
  // its workers do not exist there (see Scheduler's fork contract).
  void check_not_inherited(const char* what) const;
  bool inherited() const noexcept;
  // Called by a worker about to sleep when every worker is asleep.
  void on_idle() noexcept;
  // Brackets a submission from a thread that is not one of our workers. begin_external()
  // returns false once shutdown has begun (nothing may be queued then). Between the two
  // calls shutdown() waits, so every accepted submission is queued before it drains.
  bool begin_external() noexcept;
  void end_external() noexcept;
  // This scheduler's clock in ns (now_ns() reads the calling thread's, which for a thread of
  // a deterministic run is that run's virtual clock even when it submits to another
  // scheduler): the steady clock, or this deterministic run's virtual one.
  std::int64_t clock_ns() const noexcept;
  // Arena node for external work from the calling thread.
  unsigned home_node() noexcept;
  // True if any queue holds work (a snapshot; see Worker::park).
  bool any_work_visible() const;
  // The same from the view of a worker of `node` about to sleep: other nodes' work counts
  // only where it could take it (their deques and injection queues with cross-node steals,
  // their ReadyQueues by ReadyQueue::remote_visible, never their urgent lanes), so work it
  // must refuse does not keep it awake.
  bool any_work_visible_to(unsigned node) const;
  // Stops intake, drops the pending timers (TimerService::shutdown), drains, stops and
  // joins the workers. Returns the first error of a
  // detached task that join_all() never reported (and counts the rest in *others).
  // Idempotent: later calls return null.
  std::exception_ptr shutdown(std::uint64_t* others) noexcept;
  // Deterministic runs: gives up a deadlocked run that cannot be mended (a wait that cannot
  // throw, or a stack that blocked tasks still reference, is in the way): no turn is passed
  // again, the workers are detached where they block, submissions are refused, every later
  // wait on its work throws Deadlock (or returns, where it cannot throw), and the scheduler
  // is leaked when destroyed. Says so on stderr, once.
  void abandon(const std::string& why) noexcept;
  void run_hook(const std::function<void(const WorkerInfo&)>& hook, const WorkerInfo& info,
                const char* name) noexcept;

  // This scheduler's place in the liveness table (vitte/detail/liveness.hpp). First, so
  // that it is given back last, once nothing of the scheduler runs any more.
  LiveSlot live;
  Scheduler* owner;
  Options opts;
  Topology topo;
  Plan plan;
  MallocRouting malloc;  // decided before any thread starts
  // The deterministic run (deterministic.hpp), made before the workers; null: real
  // scheduling. Declared before everything the workers touch, so it outlives them.
  std::unique_ptr<DetSim> det;
  // A deterministic run that deadlocked and was abandoned by shutdown(): its workers stay
  // blocked inside tasks, so nothing of it may be freed (Scheduler's destructor leaks it).
  bool abandoned = false;
  std::string abandoned_why;  // the Deadlock's message, for every wait after the abandonment
  IdleState idle;
  WaitCounter detached{Joins::Detached};
  std::vector<std::unique_ptr<InjectionQueue>> inject_queues;  // by node; null: no arena
  std::vector<std::unique_ptr<UrgentLane>> urgent_queues;      // by node; null: no arena
  // Completions of resumption frames queued by threads that are not workers (resume.hpp);
  // nobody waits on it.
  WaitCounter untracked{Joins::Detached};
  // The scheduling tree (policy.hpp) and each arena node's queue of policy work.
  Policy arena_policy = Policy::Fifo;
  std::shared_ptr<GroupTree> groups;
  std::vector<std::unique_ptr<ReadyQueue>> ready_queues;       // by node; null: no arena
  std::vector<unsigned> arena_of;       // node -> the arena node its work goes to
  std::vector<unsigned> arena_nodes;    // nodes with an arena
  // GNU make's jobserver (jobserver/client.hpp); null: not in use, jobserver_info says why.
  // Declared before the workers: it outlives their last release().
  std::unique_ptr<JobserverClient> jobserver;
  JobserverInfo jobserver_info;
  std::vector<std::unique_ptr<Worker>> workers;
  std::unique_ptr<ParkingLot> lot;
  // One timer queue per arena node (timer/timer_service.hpp); its threads start with the
  // first timer of their node, so an unused service costs a few empty structures.
  std::unique_ptr<TimerService> timers;
  // The event counters every worker starts (metrics/event_counters.hpp); empty: none.
  EventPlan events;
  // Samples the nodes' queue depths (MetricsOptions::sample_interval); null: not asked.
  std::unique_ptr<QueueSampler> sampler;
  // One oneTBB arena per arena node, each made on first use; destroyed by shutdown() once
  // the workers are joined (no task can be inside one of them then).
  std::unique_ptr<TbbArenas, TbbArenasDeleter> tbb_arenas;

  // Closures boxed on threads that are not workers (Task::spawn there, TaskGroup::run and
  // continuations from outside), which no worker's counters hold; metrics().total.boxed
  // adds them. relaxed: statistics, bumped off the workers' paths.
  std::atomic<std::uint64_t> external_boxed{0};
  std::atomic<bool> accepting{true};   // external submissions allowed
  std::atomic<std::int64_t> external_in_flight{0};  // inside begin/end_external
  // Continuations queued by other threads (future/continuations.cpp): accepted until
  // shutdown() has drained, then refused; the in-flight count is the handshake.
  std::atomic<bool> continuations_open{true};
  std::atomic<std::int64_t> continuations_in_flight{0};
  std::atomic<bool> stopping{false};   // workers exit once no work is visible
  std::atomic<unsigned> round_robin{0};
  std::latch started;
  std::latch go{1};
  bool start_aborted = false;          // written before go is released
  // The trace recording now (trace.hpp; trace/trace_session.cpp), or null. start_trace()
  // and stop_trace() take trace_mu; its buffers are written by the workers meanwhile
  // (TraceRecorder R1-R5). `trace_generation` numbers the sessions, from 1.
  std::mutex trace_mu;
  std::unique_ptr<TraceData> trace;
  std::uint32_t trace_generation = 0;
  std::mutex join_mu;                  // one join_all() at a time
  std::mutex shutdown_mu;              // one shutdown() at a time
  bool shut_down = false;              // under shutdown_mu
  std::uint64_t born_in_generation;    // fork_generation when made (see fork contract)
};

// Writes an error nobody will rethrow to stderr ("vitte: <what_happened>; N task(s) threw,
// first: ...") rather than lose it.
void report_unjoined(std::exception_ptr e, std::uint64_t others, const char* what_happened) noexcept;

// Bumped in the child after every fork(); a scheduler made in an earlier generation is
// inherited and unusable there.
extern std::atomic<std::uint64_t> fork_generation;

}  // namespace vitte::detail

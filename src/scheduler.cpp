#include "vitte/scheduler.hpp"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>

#include "memory/free_memory.hpp"
#include "metrics/queue_sampler.hpp"
#include "scheduler_core.hpp"
#include "vitte/detail/route.hpp"
#include "vitte/task_group.hpp"

namespace vitte {
namespace detail {

std::atomic<std::int64_t> external_frames{0};
std::atomic<bool> trim_wanted{false};
std::atomic<std::uint64_t> fork_generation{0};

namespace {
void after_fork_in_child() noexcept {
  // relaxed: the child has one thread now.
  fork_generation.fetch_add(1, std::memory_order_relaxed);
  // A task that called fork() leaves the child's only thread looking like a worker; it is
  // not one there, so every call takes the checked external path.
  tls_worker = nullptr;
}
}  // namespace

SchedulerCore::SchedulerCore(Scheduler* owner_, CheckedOptions checked)
    : owner(owner_),
      opts(std::move(checked.opts)),
      topo(std::move(checked.topo)),
      plan(std::move(checked.plan)),
      malloc(malloc_routing(plan)),
      started(static_cast<std::ptrdiff_t>(plan.workers.size())),
      born_in_generation(fork_generation.load(std::memory_order_relaxed)) {
  static std::once_flag atfork_once;
  std::call_once(atfork_once, [] { pthread_atfork(nullptr, nullptr, &after_fork_in_child); });
  if (opts.deterministic) {
    det = std::make_unique<DetSim>(*this, *opts.deterministic, static_cast<unsigned>(plan.workers.size()));
    det->attach_driver();  // undone by ~DetSim if this constructor throws
    // Nobody parks in a deterministic run; one "sleeper" and no searcher send every spawn
    // through push_local's slow path, where it is a turn (DetSim::spawned).
    idle.sleepers.store(1, std::memory_order_relaxed);
  }
  if (checked.counting) {
    events = EventPlan::probe(opts.metrics.events.value_or(std::vector<std::string>{}));
    events.info.requested = true;
  }
  const std::size_t nn = topo.nodes().size();
  arena_policy = checked.arena_policy;
  groups = std::move(checked.groups);
  inject_queues.resize(nn);
  urgent_queues.resize(nn);
  ready_queues.resize(nn);
  for (unsigned n = 0; n < nn; ++n)
    if (!plan.arenas[n].empty()) {
      inject_queues[n] = std::make_unique<InjectionQueue>(opts.max_backlog);
      urgent_queues[n] = std::make_unique<UrgentLane>();
      ready_queues[n] = std::make_unique<ReadyQueue>(*groups, n, *urgent_queues[n], *inject_queues[n],
                                                     opts.aging.value_or(kDefaultAging));
      arena_nodes.push_back(n);
    }
  // Every node, CPU-less ones included, maps to itself or to its nearest arena, and has
  // a wake order: arena nodes nearest first.
  std::vector<std::vector<unsigned>> near(nn);
  arena_of.resize(nn);
  for (unsigned n = 0; n < nn; ++n) {
    std::vector<unsigned> order{n};
    for (unsigned o : topo.nodes_by_distance(n)) order.push_back(o);
    for (unsigned o : order)
      if (!plan.arenas[o].empty()) near[n].push_back(o);
    arena_of[n] = near[n].front();
  }
  lot = std::make_unique<ParkingLot>(idle, std::move(near));
  timers = std::make_unique<TimerService>(*this);
  tbb_arenas = make_tbb_arenas(*this);  // no oneTBB call until an arena is asked for
  for (const WorkerSlot& s : plan.workers) workers.push_back(std::make_unique<Worker>(*this, s));
  for (auto& w : workers) w->wire(workers, inject_queues, plan);

  for (auto& w : workers) w->start(opts.stack_size);
  started.wait();
  std::string errors;
  for (auto& w : workers)
    if (!w->start_error().empty()) errors += (errors.empty() ? "" : "; ") + w->start_error();
  if (!errors.empty()) {
    start_aborted = true;
    go.count_down();
    if (det) det->release_all();
    for (auto& w : workers) w->join();
    shut_down = true;
    throw PlanError("cannot start the workers as planned (" + plan.binding_reason + "): " + errors);
  }
  for (auto& w : workers)
    if (!w->stats.events_error.empty())
      events.info.note += (events.info.note.empty() ? "" : "; ") + w->stats.events_error + " (its counters are absent)";
  if (opts.metrics.sample_interval && opts.metrics.sample_interval->count() > 0)
    sampler = std::make_unique<QueueSampler>(*this, *opts.metrics.sample_interval);
  go.count_down();
}


unsigned SchedulerCore::home_node() noexcept {
  if (det == nullptr && topo.is_this_machine() && arena_nodes.size() > 1) {
    const int cpu = sched_getcpu();
    const int n = cpu >= 0 ? topo.node_of_os_cpu(static_cast<unsigned>(cpu)) : -1;
    if (n >= 0) return arena_of[static_cast<unsigned>(n)];
  }
  // relaxed: only spreads external work; no ordering needed.
  const unsigned k = round_robin.fetch_add(1, std::memory_order_relaxed);
  return arena_nodes[k % arena_nodes.size()];
}

unsigned SchedulerCore::arena_for(int node) noexcept {
  return node < 0 ? home_node() : arena_of[static_cast<unsigned>(node)];
}

void SchedulerCore::admit_external(unsigned n) {
  InjectionQueue& q = *inject_queues[n];
  if (!q.admit(opts.on_backlog_full == Options::BacklogFullAction::Block))
    throw BacklogFull("node " + std::to_string(n) + "'s backlog is full (" + std::to_string(q.bound()) +
                      " tasks queued, Options::max_backlog); the task was not queued");
}

void SchedulerCore::wake_for_injection(unsigned n) {
  // seq_cst fence: pairs with the fence in Worker::park. Either the sleeper's re-check
  // sees this push, or we see its enlistment below and wake it.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // A thread that is not a worker asks for the sleeper bound to its own CPU: it usually
  // blocks in a join next, and that CPU is then free at once, while another worker's CPU
  // may be running another process for the rest of its time slice (ParkingLot). A worker
  // producer keeps running, so it takes the default choice.
  if (idle.sleepers.load(std::memory_order_relaxed) > 0 &&
      (lot->sleepers_on(n) > 0 || idle.searching.load(std::memory_order_relaxed) == 0))
    lot->wake_one(n, tls_worker == nullptr ? sched_getcpu() : -1);
}

bool SchedulerCore::inherited() const noexcept {
  return fork_generation.load(std::memory_order_relaxed) != born_in_generation;
}

void SchedulerCore::check_not_inherited(const char* what) const {
  if (inherited())
    throw UsageError(std::string(what) + " on a Scheduler inherited through fork(): its workers exist only in the "
                     "parent process; make a new Scheduler in the child");
}

void SchedulerCore::on_idle() noexcept {
  // relaxed: a hint; trimming twice or a little late is harmless.
  if (trim_wanted.load(std::memory_order_relaxed) && trim_wanted.exchange(false, std::memory_order_relaxed))
    release_free_memory();
}

bool SchedulerCore::any_work_visible_to(unsigned node) const {
  // Other nodes count only where this worker could take their work: their deques and
  // injection queues with cross-node steals, never their urgent lanes (workers take only
  // their own), their ReadyQueues by remote_visible.
  const bool remote = plan.cross_node_steals;
  for (unsigned n : arena_nodes)
    if ((n == node || remote) && !inject_queues[n]->empty()) return true;
  if (!urgent_queues[node]->empty()) return true;
  const std::int64_t now = clock_ns();
  for (unsigned n : arena_nodes) {
    const ReadyQueue& q = *ready_queues[n];
    if (!q.empty() && (n == node || (remote && q.remote_visible(now)))) return true;
  }
  for (const auto& w : workers)
    if ((w->node == node || remote) && !w->deque.empty()) return true;
  return false;
}

bool SchedulerCore::any_work_visible() const {
  for (const auto& q : inject_queues)
    if (q && !q->empty()) return true;
  for (const auto& q : urgent_queues)
    if (q && !q->empty()) return true;
  for (const auto& q : ready_queues)
    if (q && !q->empty()) return true;
  for (const auto& w : workers)
    if (!w->deque.empty()) return true;
  return false;
}

void SchedulerCore::run_hook(const std::function<void(const WorkerInfo&)>& hook,
                             const WorkerInfo& info, const char* name) noexcept {
  if (!hook) return;
  try {
    hook(info);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vitte: %s hook threw on worker %u: %s (ignored)\n", name, info.index, e.what());
  } catch (...) {
    std::fprintf(stderr, "vitte: %s hook threw on worker %u (ignored)\n", name, info.index);
  }
}

bool SchedulerCore::begin_external() noexcept {
  if (det != nullptr && !det->is_participant()) [[unlikely]] det->foreign("a submission");
  // seq_cst RMW then seq_cst load: the submitter's half of the handshake with
  // shutdown() (store accepting, then load external_in_flight). Either we see the refusal,
  // or shutdown sees us in flight and waits for our push.
  external_in_flight.fetch_add(1, std::memory_order_seq_cst);
  if (accepting.load(std::memory_order_seq_cst)) return true;
  external_in_flight.fetch_sub(1, std::memory_order_release);
  return false;
}

void SchedulerCore::end_external() noexcept {
  // release: our push happens-before shutdown's acquire load that sees the count drop.
  external_in_flight.fetch_sub(1, std::memory_order_release);
}

std::exception_ptr SchedulerCore::shutdown(std::uint64_t* others) noexcept {
  if (inherited()) return nullptr;  // the child of a fork(): nothing of ours runs here
  std::lock_guard<std::mutex> lock(shutdown_mu);
  if (abandoned) return std::make_exception_ptr(Deadlock(abandoned_why));  // nothing of it runs
  if (shut_down) return nullptr;
  shut_down = true;
  if (tls_worker != nullptr && tls_worker->core == this) {
    std::fprintf(stderr, "vitte: a Scheduler was shut down from one of its own workers; it would wait for "
                         "itself. Aborting.\n");
    std::abort();
  }
  accepting.store(false, std::memory_order_seq_cst);
  while (external_in_flight.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  // Pending timers are dropped before the wait below: a pending one-shot timer and a
  // sleeping coroutine count as detached work that nothing else would end. Runs already
  // queued still run; arming is refused from here on (T4).
  timers->shutdown();
  {
    std::lock_guard<std::mutex> join_lock(join_mu);
    try {
      // Nothing queued is dropped: all submitted work and every graph run in flight (each
      // counts as one detached task, WaitCounter I7) runs to the end.
      wait_for(detached, this);
      // Continuations that other threads queue while we drain must run (their source has
      // completed); from here on they are refused (future/continuations.cpp). Then drain
      // what got in before the close.
      continuations_open.store(false, std::memory_order_seq_cst);
      while (continuations_in_flight.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
      wait_for(detached, this);
    } catch (const Deadlock& d) {  // only a deterministic run's wait throws
      abandon(d.what());
      return std::make_exception_ptr(Deadlock(abandoned_why));
    }
  }
  std::exception_ptr e = detached.take_error(others);
  stopping.store(true, std::memory_order_seq_cst);
  if (det != nullptr && !det->drive_until_gone()) {
    abandon(det->deadlock_message());
    return std::make_exception_ptr(Deadlock(abandoned_why));
  }
  lot->wake_all();
  for (auto& w : workers) w->join();
  // Nothing waits on a deterministic run any more: its driver's thread lets go of it, so it
  // may be destroyed anywhere, and the thread may drive another.
  if (det != nullptr) det->detach_driver();
  if (sampler) sampler->stop();
  destroy_tbb_arenas(tbb_arenas.get());
  VITTE_ASSERT(!any_work_visible(), "every queue is empty after shutdown");
  return e;
}

// An error nobody will rethrow is written to stderr rather than lost.
void report_unjoined(std::exception_ptr e, std::uint64_t others, const char* what_happened) noexcept {
  if (!e) return;
  std::string what = "unknown exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    what = ex.what();
  } catch (...) {
  }
  std::fprintf(stderr, "vitte: %s; %llu task(s) threw, first: %s\n", what_happened,
               static_cast<unsigned long long>(others + 1), what.c_str());
}

void SchedulerCore::abandon(const std::string& why) noexcept {
  if (abandoned) return;
  abandoned = true;
  abandoned_why = why + "; the run was abandoned: no task of it runs again";
  // relaxed: nothing is published by it; begin_external() reads it seq_cst as usual.
  accepting.store(false, std::memory_order_seq_cst);
  for (auto& w : workers) w->detach();
  std::fprintf(stderr,
               "vitte: %s; the scheduler is abandoned: its workers stay blocked in the tasks that wait, and its "
               "memory is not freed\n",
               why.c_str());
  if (det) {
    det->detach_driver();
    det->stop_watchdog();  // no stall reports about a run nobody drives any more
  }
}

SchedulerCore::~SchedulerCore() {
  std::uint64_t others = 0;
  std::exception_ptr e = shutdown(&others);
  report_unjoined(e, others, "detached tasks failed and join_all() never reported it");
  if (groups != nullptr && !inherited()) groups->release();  // Group handles may outlive us
}

SchedulerCore* core_of(Scheduler& s) noexcept { return s.core_.get(); }

void throw_spawn_outside_worker() {
  throw UsageError("vitte::spawn() called outside a worker thread; use Scheduler::submit()");
}

void note_external_boxed(SchedulerCore* core) noexcept {
  core->external_boxed.fetch_add(1, std::memory_order_relaxed);  // statistics
}

void submit_external(SchedulerCore* core, std::uint64_t live, TaskFrame* f, int node, const char* what) {
  check_alive(live, what);
  core->check_not_inherited(what);
  route_slow(core, nullptr, f, Route{.source = Source::Submission, .node = node});
}

}  // namespace detail

namespace {
Options with_workers(std::size_t n) {
  if (n == 0)
    throw PlanError("Scheduler(0): a scheduler needs at least 1 worker (use Scheduler() for one per core)");
  Options o;
  o.workers = n;
  return o;
}
}  // namespace

Scheduler::Scheduler() : Scheduler(Options{}) {}
Scheduler::Scheduler(std::size_t workers) : Scheduler(with_workers(workers)) {}
Scheduler::Scheduler(Options opts)
    : core_(std::make_unique<detail::SchedulerCore>(this, detail::check_options(std::move(opts)))) {}
Scheduler::~Scheduler() {
  // In the child of a fork() the workers do not exist: joining them, or destroying the
  // thread handles, would hang or abort. The inherited state is left as it is.
  if (core_->inherited()) {
    (void)core_.release();
    return;
  }
  if (core_->det != nullptr) {  // shut down here, to learn whether the run was abandoned
    if (core_->abandoned) {  // stderr said so already; its workers still reference it
      (void)core_.release();
      return;
    }
    if (!core_->det->is_participant() && !core_->shut_down) {
      // Its driver's thread keeps pointers to the run, and no other thread can take its turns.
      std::fprintf(stderr,
                   "vitte: a deterministic scheduler (seed %llu) was destroyed on a thread other than the one that "
                   "made it; destroy it on its driver's thread. Aborting.\n",
                   static_cast<unsigned long long>(core_->det->seed()));
      std::abort();
    }
    std::uint64_t others = 0;
    std::exception_ptr e = core_->shutdown(&others);
    if (core_->abandoned) {  // stderr said so already; the workers still reference it
      (void)core_.release();
      return;
    }
    detail::report_unjoined(e, others, "detached tasks failed and join_all() never reported it");
  }
  // Otherwise SchedulerCore's destructor shuts down.
}

void Scheduler::shutdown() {
  core_->check_not_inherited("shutdown()");
  if (core_->abandoned) throw Deadlock(core_->abandoned_why);
  if (core_->det != nullptr && !core_->det->is_participant())
    throw UsageError("shutdown() of a deterministic scheduler (seed " + std::to_string(core_->det->seed()) +
                     ") from a thread other than the one that made it: only its driver takes its turns");
  std::uint64_t others = 0;
  if (std::exception_ptr e = core_->shutdown(&others)) std::rethrow_exception(e);
}

void Scheduler::submit(Task&& t) {
  if (!t) throw UsageError("submit() of an empty Task (moved from, or already submitted)");
  if (detail::WorkerLocal* w = detail::own_worker(core_.get())) {
    if (t.boxed_off_worker_) [[unlikely]] detail::note_external_boxed(core_.get());
    detail::TaskFrame* f = t.release();
    f->counter = &core_->detached;
    core_->detached.add(w);
    detail::route(core_.get(), w, f);
    return;
  }
  submit_routed(t, detail::Route{.lane = detail::Lane::Fifo, .source = detail::Source::Submission});
}

void Scheduler::submit(Task&& t, const TaskOptions& opts) {
  if (!t) throw UsageError("submit() of an empty Task (moved from, or already submitted)");
  const detail::BoundOptions b = detail::bind_options(core_.get(), opts, "submit(task, options)");
  // A node given: that node's injection queue, also from one of its workers (as submit to a
  // node always did); none: the worker's own deque, as submit(t).
  submit_routed(t, detail::Route{.opts = &b, .lane = opts.node ? detail::Lane::Fifo : detail::Lane::Local,
                                 .source = detail::Source::Submission});
}

void Scheduler::submit_routed(Task& t, const detail::Route& r) {
  core_->check_not_inherited("submit()");
  detail::WorkerLocal* w = detail::own_worker(core_.get());
  detail::TaskFrame* f = t.frame_;  // still t's until it is queued (a refusal leaves it there)
  f->counter = &core_->detached;
  core_->detached.add(w);
  try {
    detail::route(core_.get(), w, f, r);
  } catch (...) {
    core_->detached.done(w);
    throw;
  }
  if (t.boxed_off_worker_) detail::note_external_boxed(core_.get());
  (void)t.release();
}

void Scheduler::join_all() {
  core_->check_not_inherited("join_all()");
  if (detail::tls_worker != nullptr && detail::tls_worker->core == core_.get())
    throw UsageError("join_all() called from a task of the same scheduler; it would wait for itself "
                     "(use a TaskGroup inside tasks)");
  if (core_->abandoned) throw Deadlock(core_->abandoned_why);  // nothing of the run finishes now
  std::lock_guard<std::mutex> lock(core_->join_mu);
  detail::wait_for(core_->detached, core_.get());
  std::uint64_t others = 0;  // counted in metrics().total.failed already; reset with the error
  if (std::exception_ptr e = core_->detached.take_error(&others)) std::rethrow_exception(e);
}

const Topology& Scheduler::topology() const noexcept { return core_->topo; }
const Plan& Scheduler::plan() const noexcept { return core_->plan; }
const MallocRouting& Scheduler::malloc_routing() const noexcept { return core_->malloc; }
std::size_t Scheduler::num_workers() const noexcept { return core_->workers.size(); }

Scheduler* Scheduler::current() noexcept {
  return detail::tls_worker != nullptr ? detail::tls_worker->core->owner : nullptr;
}
int Scheduler::current_worker() noexcept {
  return detail::tls_worker != nullptr ? static_cast<int>(detail::tls_worker->index) : -1;
}

namespace {
// Adds `n` steals to the bin (scope, distance), keeping bins ordered nearest first.
void add_bin(std::vector<StealBin>& bins, StealScope scope, unsigned distance, std::uint64_t n) {
  auto it = bins.begin();
  for (; it != bins.end(); ++it) {
    if (it->scope == scope && it->distance == distance) {
      it->steals += n;
      return;
    }
    if (std::make_pair(it->scope, it->distance) > std::make_pair(scope, distance)) break;
  }
  bins.insert(it, StealBin{scope, distance, n});
}

// Asks every worker for fresh event-counter totals (WorkerStats S3) and waits, at most
// kFreshWait, for those running a task to answer at their next task boundary. An idle
// worker's totals are fresh already: it published them when it ran out of work.
constexpr std::chrono::milliseconds kFreshWait{20};
void fresh_counters(detail::SchedulerCore& core) {
  for (const auto& w : core.workers)
    if (w->stats.events != nullptr && w.get() != detail::tls_worker) w->request_counters();
  const auto until = std::chrono::steady_clock::now() + kFreshWait;
  for (const auto& w : core.workers) {
    const detail::WorkerStats& st = w->stats;
    if (st.events == nullptr) continue;
    if (w.get() == detail::tls_worker) {  // a task asking on this worker: read here
      w->publish_counters();
      continue;
    }
    while (w->counters_requested() &&
           st.state.load(std::memory_order_acquire) == WorkerState::Running && std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
  }
}
}  // namespace

std::chrono::steady_clock::time_point Scheduler::now() const noexcept {
  if (core_->det != nullptr) [[unlikely]]
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(core_->det->now_ns()));
  return std::chrono::steady_clock::now();
}

ScheduleInfo Scheduler::schedule() const { return core_->det != nullptr ? core_->det->info() : ScheduleInfo{}; }

MetricsSnapshot Scheduler::metrics() const {
  core_->check_not_inherited("metrics()");  // the timer and sampler threads' locks may be held
  MetricsSnapshot s;
  s.nodes.resize(0);
  std::vector<int> node_slot(core_->topo.nodes().size(), -1);
  for (unsigned n : core_->arena_nodes) {
    node_slot[n] = static_cast<int>(s.nodes.size());
    NodeMetrics nm;
    nm.node = n;
    nm.workers = static_cast<unsigned>(core_->plan.arenas[n].size());
    nm.timers = core_->timers->counts(n);
    if (core_->sampler) nm.queue_depth = core_->sampler->read(n);
    nm.queue_depth.now = detail::queue_depth_now(*core_, n);
    nm.counters.assign(core_->events.info.events.size(), 0);
    s.timers += nm.timers;
    s.nodes.push_back(std::move(nm));
  }
  s.counter_info = core_->events.info;
  s.counters.assign(s.counter_info.events.size(), 0);
  const std::int64_t now = core_->clock_ns();
  s.taken_ns = now;
  if (!s.counter_info.events.empty()) fresh_counters(*core_);
  s.frames_live = detail::external_frames.load(std::memory_order_relaxed);
  s.memory = node_memory_stats();
  for (const auto& w : core_->workers) {
    const detail::WorkerCounters& c = w->counters;
    WorkerMetrics m;
    m.worker = w->index;
    m.node = w->node;
    m.counts.executed = c.executed.read();
    m.counts.skipped = c.skipped.read();
    m.counts.failed = c.failed.read();
    m.counts.spawned = c.spawned.read();
    m.counts.injected_taken = c.injected_taken.read();
    m.counts.steals_l3 = c.steals_l3.read();
    m.counts.steals_node = c.steals_node.read();
    m.counts.steals_remote = c.steals_remote.read();
    m.counts.failed_steal_rounds = c.failed_rounds.read();
    m.counts.parks = c.parks.read();
    m.counts.wakeups = c.wakeups.read();
    m.counts.boxed = c.boxed.read();
    m.counts.policy_taken = c.policy_taken.read();
    const detail::WorkerStats& st = w->stats;
    for (std::size_t i = 0; i < w->steal_levels(); ++i) add_bin(m.steal_bins, w->steal_scope(i), w->steal_distance(i), st.steal_bins[i].read());
    // relaxed: statistics (WorkerStats S1); the state is read with acquire for S3 in fresh_counters().
    m.state = st.state.load(std::memory_order_relaxed);
    const std::int64_t since = st.idle_since.load(std::memory_order_relaxed);
    m.idle_ns = st.idle_ns.read() + (since != 0 && since < now ? static_cast<std::uint64_t>(now - since) : 0);
    const std::int64_t began = st.started_ns.load(std::memory_order_relaxed);
    const std::int64_t ended = st.stopped_ns.load(std::memory_order_relaxed);
    m.alive_ns = began == 0 ? 0 : static_cast<std::uint64_t>((ended != 0 ? ended : now) - began);
    if (st.events != nullptr && st.n_events == s.counters.size()) {
      // acquire: S3, the totals stored before it.
      m.counters_read_ns = st.published_ns.load(std::memory_order_acquire);
      for (std::size_t i = 0; i < st.n_events; ++i) m.counters.push_back(st.published[i].load(std::memory_order_relaxed));
    }
    NodeMetrics& nm = s.nodes[static_cast<std::size_t>(node_slot[w->node])];
    st.submit_latency.add_to(nm.submit_latency);
    nm.idle_ns += m.idle_ns;
    for (const StealBin& b : m.steal_bins) add_bin(nm.steal_bins, b.scope, b.distance, b.steals);
    for (const StealBin& b : m.steal_bins) add_bin(s.steal_bins, b.scope, b.distance, b.steals);
    for (std::size_t i = 0; i < m.counters.size(); ++i) {
      nm.counters[i] += m.counters[i];
      s.counters[i] += m.counters[i];
    }
    s.frames_live += static_cast<std::int64_t>(w->pool.from_system()) - static_cast<std::int64_t>(w->pool.to_system());
    s.nodes[static_cast<std::size_t>(node_slot[w->node])].counts += m.counts;
    s.total += m.counts;
    s.workers.push_back(m);
  }
  for (const NodeMetrics& nm : s.nodes) s.submit_latency += nm.submit_latency;
  s.total.boxed += core_->external_boxed.load(std::memory_order_relaxed);  // no worker's
  s.groups = core_->groups->metrics(s.counter_info.events.size());
  for (const auto& q : core_->ready_queues)
    if (q) {
      s.deadlines_met += q->deadlines_met();
      s.deadlines_missed += q->deadlines_missed();
    }
  return s;
}

// TaskGroup's out-of-line parts.
namespace {
detail::SchedulerCore* core_of_this_worker() {
  if (detail::tls_worker == nullptr)
    throw UsageError("TaskGroup() outside a worker thread needs its scheduler: TaskGroup g(sched)");
  return detail::tls_worker->core;
}

bool on_owner_thread(const detail::WaitCounter& c) noexcept {
  return c.owner() == nullptr || c.owner() == detail::tls_worker;
}
}  // namespace

TaskGroup::TaskGroup()
    : core_(core_of_this_worker()), live_(detail::tls_worker->core_live), counter_(/*cancel_on_error=*/true, detail::tls_worker) {}

TaskGroup::~TaskGroup() {
  if (!on_owner_thread(counter_)) {
    std::fprintf(stderr, "vitte: a TaskGroup made on worker %u was destroyed on another thread; aborting\n",
                 counter_.owner()->index);
    std::abort();
  }
  detail::wait_for_noexcept(counter_, core_);
  std::uint64_t others = 0;
  detail::report_unjoined(counter_.take_error(&others), others, "a TaskGroup was destroyed without wait()");
}

void TaskGroup::wait() {
  // Only a thread that is not a worker can be in a fork() child (the child's thread is
  // never a worker, see after_fork_in_child), and the check stays off the fork-join path.
  if (detail::tls_worker == nullptr) {
    // A destroyed scheduler ran every task of the group before it went (shutdown drains):
    // nothing to wait for, and the scheduler must not be touched.
    if (!detail::alive(live_)) {
      VITTE_ASSERT(counter_.finished(), "a TaskGroup outlived its scheduler with tasks pending");
      if (std::exception_ptr e = counter_.take_error()) std::rethrow_exception(e);
      return;
    }
    core_->check_not_inherited("TaskGroup::wait()");
  }
  if (!on_owner_thread(counter_))
    throw UsageError("TaskGroup::wait() on a thread other than the worker that made the group (worker " +
                     std::to_string(counter_.owner()->index) + ")");
  detail::wait_for(counter_, core_);
  if (std::exception_ptr e = counter_.take_error()) std::rethrow_exception(e);
}

}  // namespace vitte

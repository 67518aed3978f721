// Cluster's public face and the hand-offs of ClusterCore that run on any thread:
// posting messages, spawning into the pool, running tokens, delivering outcomes.
#include <cxxabi.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <cstdlib>
#include <typeinfo>

#include "dist/cluster_core.hpp"
#include "dist/messages.hpp"

namespace vitte::dist {
namespace detail {

std::string describe_table(const std::vector<Entry>& table);  // table_check.cpp
void check_tables(const std::vector<std::string>& texts);     // table_check.cpp
std::string describe_placement(const Scheduler& sched);       // table_check.cpp
void warn_shared_cpus(int rank, const std::vector<std::string>& placements);  // table_check.cpp

namespace {
// The process's cluster. Written by the program thread that makes and destroys it.
std::atomic<Cluster*> g_current{nullptr};
}  // namespace

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string current_exception_type() {
  const std::type_info* t = abi::__cxa_current_exception_type();
  if (t == nullptr) return "unknown exception";
  int status = 0;
  char* d = abi::__cxa_demangle(t->name(), nullptr, nullptr, &status);
  std::string out = (status == 0 && d != nullptr) ? d : t->name();
  std::free(d);
  return out;
}

Cluster* current_cluster() noexcept { return g_current.load(std::memory_order_acquire); }

ClusterCore::ClusterCore(Cluster* o, Scheduler& s, const Functions& fns, int* argc, char*** argv, ClusterOptions op)
    : owner(o), sched(s), opts(op), table(fns.entries()), pool(s.num_workers() + 1) {
  std::sort(table.begin(), table.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  for (std::uint32_t i = 0; i < table.size(); ++i) index.emplace(table[i].key, i);
  Cluster* none = nullptr;
  // acq_rel: one cluster per process; pairs with the release store in the destructor.
  if (!g_current.compare_exchange_strong(none, owner, std::memory_order_acq_rel))
    throw SetupError("vitte::dist: a Cluster already exists in this process (one at a time)");
  try {
    const auto started = mpi::start(argc, argv);
    rank = started.rank;
    size = started.size;
    mpi_initialised_here = started.initialised_here;
    try {
      // The options are part of what every rank must agree on, and are checked after the
      // gather, so that a bad value is refused on every rank instead of leaving the others
      // waiting in the gather.
      check_tables(mpi::all_gather_now(describe_table(table) + "\toptions steal_batch=" +
                                       std::to_string(opts.steal_batch) + "\n"));
      if (opts.steal_batch == 0)
        throw SetupError("vitte::dist::ClusterOptions::steal_batch is 0 (on every rank): a steal must move a task");
      warn_shared_cpus(rank, mpi::all_gather_now(describe_placement(sched)));
    } catch (...) {
      mpi::stop();
      throw;
    }
  } catch (...) {
    g_current.store(nullptr, std::memory_order_release);
    throw;
  }
  thieves_.assign(static_cast<std::size_t>(size), 0);
  // Lifelines: rank + 2^k (mod size), a low-degree graph in which every rank reaches
  // every other (the k = 0 edges alone form a ring).
  for (int d = 1; d < size; d *= 2) {
    const int buddy = (rank + d) % size;
    if (buddy != rank && std::find(lifelines_.begin(), lifelines_.end(), buddy) == lifelines_.end())
      lifelines_.push_back(buddy);
  }
  rng_.seed(static_cast<unsigned>(rank) * 2654435761u + 1);
  hunger_ = size > 1 ? Hunger::Hungry : Hunger::Lifelined;
  // The communication thread starts in Cluster's constructor, once Cluster::core_ is set:
  // a call it passes to a worker may use Cluster::current() at once.
}

ClusterCore::~ClusterCore() {
  stop_comm();  // already stopped, unless a constructor failed half-way
  g_current.store(nullptr, std::memory_order_release);
}

void ClusterCore::post(int dest, int tag, std::string bytes) {
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw WireError("a message of " + std::to_string(bytes.size()) + " bytes to rank " + std::to_string(dest) +
                    ": MPI counts are int, so at most 2 GiB travel in one call or result");
  auto* m = new OutMsg;
  m->dest = dest;
  m->tag = tag;
  m->bytes = std::move(bytes);
  // relaxed: published to the waves by the release decrement of `active` that follows
  // (C1, C2), or read by the communication thread itself.
  if (counted(tag)) sent.fetch_add(1, std::memory_order_relaxed);
  outbox.push(m);
  comm_waiter.wake();
}

void ClusterCore::check_open(const char* what) const {
  if (closed.load(std::memory_order_relaxed))
    throw UsageError(std::string("vitte::dist::Cluster::") + what + " after shutdown(): the cluster no longer runs work");
}

void ClusterCore::spawn(std::unique_ptr<PoolItem> item) {
  // relaxed: the item is not visible to anyone yet; the waves read `active` after the
  // token's submission, which orders it (C2).
  active.fetch_add(1, std::memory_order_relaxed);
  std::size_t list = pool.lists() - 1;  // other threads' list
  if (Scheduler::current() == &sched) {
    const auto w = static_cast<std::size_t>(Scheduler::current_worker());
    VITTE_ASSERT(w < pool.lists() - 1, "a worker index beyond the scheduler's workers");
    list = w;
  }
  pool.push(list, std::move(item));
  sched.submit(Task([this, list] { run_token(list); }));
  if (thieves_waiting.load(std::memory_order_relaxed)) comm_waiter.wake();
}

void ClusterCore::accept(std::vector<std::unique_ptr<PoolItem>> items) {
  const std::size_t list = pool.lists() - 1;
  // relaxed: the communication thread itself raises it and answers the waves (C2).
  active.fetch_add(static_cast<std::int64_t>(items.size()), std::memory_order_relaxed);
  for (auto& it : items) {
    pool.push(list, std::move(it));
    sched.submit(Task([this, list] { run_token(list); }));
  }
}

void ClusterCore::run_token(std::size_t list) {
  if (auto item = pool.pop_newest(list)) {  // null: shipped to a thief (L2)
    counters.pool_tasks_run.fetch_add(1, std::memory_order_relaxed);
    item->run();
  }
  end_work();
}

void ClusterCore::end_work() noexcept {
  // The wake-up comes first (C3): after the decrement the core may be gone. It is only a
  // hint that the waves may find this rank quiet now.
  // relaxed: a hint; a stale value costs one sleep period of the communication thread.
  if (active.load(std::memory_order_relaxed) == 1) comm_waiter.wake();
  // release: pairs with the acquire in passive(); the work's messages were queued first (C1).
  [[maybe_unused]] const auto before = active.fetch_sub(1, std::memory_order_release);
  VITTE_ASSERT(before >= 1, "C2: more work ended than began");
}

void ClusterCore::deliver(int origin, std::uint64_t slot, std::uint32_t fn, const std::string* bytes,
                          std::exception_ptr error) {
  if (origin == rank) {
    auto s = take_slot(slot);
    if (!s) {
      record_error("vitte::dist: rank " + std::to_string(rank) + " finished a task whose result slot #" +
                   std::to_string(slot) + " does not exist");
      return;
    }
    if (error) {
      s->set_error(error);
      return;
    }
    try {
      s->set_bytes(*bytes);
    } catch (...) {
      s->set_error(std::current_exception());
    }
    return;
  }
  Writer w;
  w.put(slot);
  w.put(static_cast<std::uint8_t>(error ? 0 : 1));
  if (!error) {
    w.put(*bytes);
  } else {
    std::string type, what;
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      type = current_exception_type();
      what = e.what();
    } catch (...) {
      type = current_exception_type();
      what = "(not a std::exception)";
    }
    w.put(fn < table.size() ? table[fn].name : "#" + std::to_string(fn));
    w.put(type);
    w.put(what);
  }
  try {
    post(origin, kResult, w.take());
  } catch (const WireError& e) {  // a result over 2 GiB: the caller gets the reason instead
    Writer why;
    why.put(slot);
    why.put(static_cast<std::uint8_t>(0));
    why.put(fn < table.size() ? table[fn].name : "#" + std::to_string(fn));
    why.put(std::string("vitte::dist::WireError"));
    why.put(std::string(e.what()));
    post(origin, kResult, why.take());
  }
}

std::uint64_t ClusterCore::add_slot(std::unique_ptr<ReplySlot> s) {
  std::lock_guard lock(slots_mu_);
  const auto id = next_slot_++;
  slots_.emplace(id, std::move(s));
  return id;
}

std::unique_ptr<ReplySlot> ClusterCore::take_slot(std::uint64_t id) {
  std::lock_guard lock(slots_mu_);
  auto it = slots_.find(id);
  if (it == slots_.end()) return nullptr;
  auto s = std::move(it->second);
  slots_.erase(it);
  return s;
}

void ClusterCore::record_error(std::string what) {
  std::lock_guard lock(err_mu_);
  if (!first_error_) first_error_ = std::make_exception_ptr(vitte::Error(std::move(what)));
}

std::exception_ptr ClusterCore::take_error() {
  std::lock_guard lock(err_mu_);
  return std::exchange(first_error_, nullptr);
}

// --- exported to the header's templates ---

std::uint32_t index_of(ClusterCore* c, std::uintptr_t key, const char* what) {
  auto it = c->index.find(key);
  if (it == c->index.end())
    throw UsageError(std::string("vitte::dist::") + what + ": the function is not in the cluster's Functions table");
  return it->second;
}
void push_pool(ClusterCore* c, std::unique_ptr<PoolItem> item) {
  c->check_open("spawn()");
  c->spawn(std::move(item));
}
void begin_work(ClusterCore* c) {
  c->check_open("async()");
  // relaxed: the caller is counted work or the program thread before join_all(), which
  // publishes it (C2).
  c->active.fetch_add(1, std::memory_order_relaxed);
}
void end_work(ClusterCore* c) noexcept { c->end_work(); }
void send_call(ClusterCore* c, int rank, std::uint32_t fn, std::string args, std::unique_ptr<ReplySlot> slot) {
  c->check_open("async()");
  const auto id = c->add_slot(std::move(slot));
  Writer w;
  w.put(id);
  w.put(fn);
  w.put(args);
  c->post(rank, kCall, w.take());
}
std::uint64_t add_slot(ClusterCore* c, std::unique_ptr<ReplySlot> slot) { return c->add_slot(std::move(slot)); }
int rank_of(const ClusterCore* c) noexcept { return c->rank; }
Scheduler& scheduler_of(ClusterCore* c) noexcept { return c->sched; }
std::vector<std::string> all_gather(ClusterCore* c, std::string mine) { return c->all_gather(std::move(mine)); }

}  // namespace detail

void Functions::add_entry(detail::Entry e) {
  if (e.name.empty()) throw UsageError("vitte::dist::Functions::add: an empty name");
  for (const auto& have : entries_) {
    if (have.name == e.name)
      throw UsageError("vitte::dist::Functions::add: the name \"" + e.name + "\" is registered twice");
    if (have.key == e.key)
      throw UsageError("vitte::dist::Functions::add: \"" + e.name + "\" is the function already registered as \"" +
                       have.name + "\"");
  }
  entries_.push_back(std::move(e));
}

Cluster::Cluster(Scheduler& sched, const Functions& fns, ClusterOptions opts)
    : Cluster(sched, fns, nullptr, nullptr, opts) {}
Cluster::Cluster(Scheduler& sched, const Functions& fns, int* argc, char*** argv, ClusterOptions opts)
    : core_(std::make_unique<detail::ClusterCore>(this, sched, fns, argc, argv, opts)),
      uncaught_(std::uncaught_exceptions()) {
  core_->start_comm();
}

Cluster::~Cluster() {
  if (!core_->stopped && Scheduler::current() == &core_->sched) {
    // shutdown() cannot run here (it would wait for the task that runs it), and without it
    // the other ranks would wait for this one forever.
    std::fprintf(stderr,
                 "vitte::dist: rank %d destroys its Cluster on a worker of the cluster's scheduler, before "
                 "shutdown(): aborting the job (MPI_Abort); destroy it, or call shutdown(), on the program thread\n",
                 core_->rank);
    core_->abort_job();
  }
  if (std::uncaught_exceptions() > uncaught_ && !core_->stopped) {
    // This rank leaves the cluster in an exception. The others may wait for it in a
    // join_all() or a collective; a final join here could wait for them in turn. End the
    // job instead, so that no rank waits forever (docs/distributed.md, "Faults").
    std::fprintf(stderr,
                 "vitte::dist: rank %d is unwinding an exception with its Cluster alive: aborting the job "
                 "(MPI_Abort) so that no other rank waits for it forever\n",
                 core_->rank);
    core_->abort_job();
  }
  try {
    shutdown();
  } catch (...) {
    // The destructor cannot throw; shutdown() called first reports the error.
  }
}

int Cluster::rank() const noexcept { return core_->rank; }
int Cluster::size() const noexcept { return core_->size; }

void Cluster::check_rank(int rank) const {
  if (rank < 0 || rank >= core_->size)
    throw UsageError("vitte::dist::Cluster::async: rank " + std::to_string(rank) + " does not exist (the job has " +
                     std::to_string(core_->size) + " ranks)");
}

void Cluster::join_all() {
  if (core_->stopped) throw UsageError("vitte::dist::Cluster::join_all() after shutdown()");
  core_->join_all();
}

void Cluster::shutdown() {
  if (core_->stopped) return;
  if (Scheduler::current() == &core_->sched)
    throw UsageError("vitte::dist::Cluster::shutdown() from a worker of the cluster's scheduler: it would wait for "
                     "the task that calls it");
  std::exception_ptr err;
  try {
    core_->join_all();
  } catch (...) {
    err = std::current_exception();
  }
  // After the final join: its tasks may still spawn while it runs. Nothing runs now.
  core_->closed.store(true, std::memory_order_relaxed);
  core_->stop_comm();
  core_->stopped = true;
  detail::mpi::stop();
  if (err) std::rethrow_exception(err);
}

ClusterStats Cluster::stats() const {
  const auto& c = core_->counters;
  auto ld = [](const auto& a) { return a.load(std::memory_order_relaxed); };
  ClusterStats s;
  s.rank = core_->rank;
  s.size = core_->size;
  s.messages_sent = ld(c.messages_sent);
  s.messages_received = ld(c.messages_received);
  s.bytes_sent = ld(c.bytes_sent);
  s.bytes_received = ld(c.bytes_received);
  s.steal_requests = ld(c.steal_requests);
  s.steals_won = ld(c.steals_won);
  s.steal_replies = ld(c.steal_replies);
  s.steal_reply_ns = ld(c.steal_reply_ns);
  s.tasks_stolen_in = ld(c.tasks_stolen_in);
  s.tasks_given = ld(c.tasks_given);
  s.lifeline_pushes = ld(c.lifeline_pushes);
  s.calls_served = ld(c.calls_served);
  s.pool_tasks_run = ld(c.pool_tasks_run);
  s.comm_idle_seconds = static_cast<double>(ld(c.idle_ns)) * 1e-9;
  s.comm_idle_cpu_seconds = static_cast<double>(ld(c.idle_cpu_ns)) * 1e-9;
  return s;
}

int launch_rank() noexcept {
  for (const char* v : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}) {
    if (const char* s = std::getenv(v); s != nullptr && *s != '\0') return std::atoi(s);
  }
  return -1;
}

}  // namespace vitte::dist

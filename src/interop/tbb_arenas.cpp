// One oneTBB task_arena per arena node, made on first use (vitte/tbb_interop.hpp).
#include "interop/tbb_arenas.hpp"

#include <dlfcn.h>
#include <link.h>
#include <sched.h>

#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_scheduler_observer.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "deterministic/sim.hpp"
#include "interop/tbb_placement.hpp"
#include "scheduler_core.hpp"
#include "topology/hwloc_seam.hpp"
#include "vitte/error.hpp"
#include "vitte/tbb_arena.hpp"

namespace vitte {

const char* to_string(TbbPlacement p) noexcept {
  switch (p) {
    case TbbPlacement::NumaConstrained: return "numa-constrained";
    case TbbPlacement::Observer: return "observer";
    case TbbPlacement::Unpinned: return "unpinned";
  }
  return "?";
}

namespace detail {

TbbArenaSpec plan_tbb_arena(const Topology& topo, const Plan& plan, unsigned node, const TbbEnvironment& env) {
  if (node >= plan.arenas.size() || plan.arenas[node].empty())
    throw UsageError("node " + std::to_string(node) + " has no workers, so no oneTBB arena");
  TbbArenaSpec s;
  s.node = node;
  s.max_concurrency = static_cast<int>(plan.arenas[node].size());
  if (plan.binding == Binding::Unpinned) {
    s.placement = TbbPlacement::Unpinned;
    s.reason = "the workers are unpinned (" + plan.binding_reason + "), so oneTBB's threads float too";
    return s;
  }
  // The CPUs of the node's workers, and whether they cover every core of the node.
  std::vector<bool> core_used(topo.cores().size());
  for (unsigned w : plan.arenas[node]) {
    const WorkerSlot& slot = plan.workers[w];
    if (slot.os_cpu >= 0) s.os_cpus.push_back(static_cast<unsigned>(slot.os_cpu));
    core_used[slot.core] = true;
  }
  std::sort(s.os_cpus.begin(), s.os_cpus.end());
  s.os_cpus.erase(std::unique(s.os_cpus.begin(), s.os_cpus.end()), s.os_cpus.end());
  bool every_core = true;
  for (unsigned c : topo.nodes()[node].cores) every_core = every_core && core_used[c];
  s.placement = TbbPlacement::Observer;
  const unsigned os_node = topo.nodes()[node].os_index;
  if (plan.binding == Binding::Folded) {
    s.reason = "the topology is folded onto this machine's CPUs; oneTBB's threads are bound to those of the node's workers";
    return s;
  }
  if (!env.tbbbind) {
    s.reason = "oneTBB's hwloc binding (libtbbbind) is not loaded; an observer binds oneTBB's threads to the node's CPUs";
    return s;
  }
  if (!every_core) {
    s.reason = "the plan uses only some of the node's cores (cpuset/reserve); an observer keeps oneTBB's threads on them";
    return s;
  }
  int id = -1;
  for (const auto& [os, tbb_id] : env.numa_ids)
    if (os == os_node) id = tbb_id;
  if (id < 0 || std::find(env.tbb_nodes.begin(), env.tbb_nodes.end(), id) == env.tbb_nodes.end()) {
    s.reason = "oneTBB does not list Linux node " + std::to_string(os_node) + "; an observer binds its threads instead";
    return s;
  }
  s.placement = TbbPlacement::NumaConstrained;
  s.tbb_numa_id = id;
  s.os_cpus.clear();
  for (unsigned c : topo.nodes()[node].cores)
    for (unsigned pu : topo.cores()[c].pus) s.os_cpus.push_back(topo.pus()[pu].os_index);
  std::sort(s.os_cpus.begin(), s.os_cpus.end());
  s.reason = "libtbbbind is loaded: task_arena::constraints{numa_id = " + std::to_string(id) + "} (Linux node " +
             std::to_string(os_node) + ")";
  return s;
}

namespace {
int note_tbbbind(dl_phdr_info* info, std::size_t, void* found) {
  if (info->dlpi_name != nullptr && std::strstr(info->dlpi_name, "libtbbbind") != nullptr) *static_cast<bool*>(found) = true;
  return 0;
}
}  // namespace

const TbbEnvironment& tbb_environment() {
  static const TbbEnvironment env = [] {
    TbbEnvironment e;
    // Asking for the nodes makes oneTBB load its binding library if it can; it then shows
    // among the loaded objects (oneTBB has no query for it).
    e.tbb_nodes = tbb::info::numa_nodes();
    bool found = false;
    dl_iterate_phdr(&note_tbbbind, &found);
    e.tbbbind = found;
    if (found) e.numa_ids = hw::tbbbind_numa_ids();
    return e;
  }();
  return env;
}

// Binds oneTBB's worker threads to the node's CPUs while they are in the arena. The thread
// that called execute() (a vitte worker) is left as its plan binds it.
class NodeObserver final : public tbb::task_scheduler_observer {
 public:
  NodeObserver(tbb::task_arena& a, const std::vector<unsigned>& cpus) : tbb::task_scheduler_observer(a) {
    const unsigned max = cpus.empty() ? 0 : cpus.back() + 1;
    size_ = CPU_ALLOC_SIZE(max);
    set_ = CPU_ALLOC(max);
    CPU_ZERO_S(size_, set_);
    for (unsigned c : cpus) CPU_SET_S(c, size_, set_);
    observe(true);
  }
  ~NodeObserver() override {
    observe(false);  // waits for callbacks in flight
    CPU_FREE(set_);
  }
  void on_scheduler_entry(bool is_worker) override {
    if (!is_worker) return;
    Saved s;
    s.size = CPU_ALLOC_SIZE(CPU_SETSIZE * 4);
    s.set = CPU_ALLOC(CPU_SETSIZE * 4);
    s.ok = s.set != nullptr && sched_getaffinity(0, s.size, s.set) == 0;
    saved_stack().push_back(s);
    sched_setaffinity(0, size_, set_);
  }
  void on_scheduler_exit(bool is_worker) override {
    if (!is_worker || saved_stack().empty()) return;
    Saved s = saved_stack().back();
    saved_stack().pop_back();
    if (s.ok) sched_setaffinity(0, s.size, s.set);
    if (s.set != nullptr) CPU_FREE(s.set);
  }

 private:
  struct Saved {
    cpu_set_t* set = nullptr;
    std::size_t size = 0;
    bool ok = false;
  };
  static std::vector<Saved>& saved_stack() {
    thread_local std::vector<Saved> stack;
    return stack;
  }
  cpu_set_t* set_ = nullptr;
  std::size_t size_ = 0;
};

std::unique_ptr<tbb::task_scheduler_observer> bind_workers_entering(tbb::task_arena& a, const std::vector<unsigned>& cpus) {
  std::vector<unsigned> sorted = cpus;
  std::sort(sorted.begin(), sorted.end());
  return std::make_unique<NodeObserver>(a, sorted);
}

struct TbbArenas::NodeArena {
  std::once_flag once;
  TbbArenaSpec spec;
  std::unique_ptr<tbb::task_arena> arena;
  std::unique_ptr<tbb::task_scheduler_observer> observer;
};

TbbArenas::TbbArenas(SchedulerCore& core) : core_(core), nodes_(core.topo.nodes().size()) {
  for (auto& n : nodes_) n = std::make_unique<NodeArena>();
}

TbbArenas::~TbbArenas() { destroy(); }

void TbbArenas::destroy() noexcept {
  // release: pairs with the acquire in arena(); after this no arena is made or handed out.
  destroyed_.store(true, std::memory_order_release);
  for (auto& n : nodes_) {
    if (!n) continue;
    n->observer.reset();  // before its arena
    n->arena.reset();
  }
}

TbbArenaSpec TbbArenas::spec(unsigned node) const {
  return plan_tbb_arena(core_.topo, core_.plan, node, tbb_environment());
}

tbb::task_arena& TbbArenas::arena(unsigned node) {
  if (core_.det != nullptr)  // oneTBB's own threads and timing are outside the seed's control
    throw UsageError("tbb_arena() in deterministic mode (seed " + std::to_string(core_.det->seed()) +
                     "): oneTBB's threads would run outside the reproducible schedule");
  if (node >= nodes_.size() || core_.plan.arenas[node].empty())
    throw UsageError("node " + std::to_string(node) + " has no workers, so no oneTBB arena");
  // acquire: pairs with destroy(). Shutdown destroys the arenas once no task can be inside
  // one; asking for one afterwards is a usage error, not a new arena nobody will destroy.
  if (destroyed_.load(std::memory_order_acquire) || core_.inherited())
    throw UsageError("tbb_arena(): the scheduler has shut down; its oneTBB arenas are gone");
  NodeArena& n = *nodes_[node];
  std::call_once(n.once, [&] {
    n.spec = spec(node);
    if (n.spec.placement == TbbPlacement::NumaConstrained) {
      tbb::task_arena::constraints c(n.spec.tbb_numa_id, n.spec.max_concurrency);
      n.arena = std::make_unique<tbb::task_arena>(c, 1);
    } else {
      n.arena = std::make_unique<tbb::task_arena>(n.spec.max_concurrency, 1);
    }
    n.arena->initialize();
    if (n.spec.placement == TbbPlacement::Observer && !n.spec.os_cpus.empty())
      n.observer = bind_workers_entering(*n.arena, n.spec.os_cpus);
  });
  return *n.arena;
}

void TbbArenasDeleter::operator()(TbbArenas* a) const noexcept { delete a; }

std::unique_ptr<TbbArenas, TbbArenasDeleter> make_tbb_arenas(SchedulerCore& core) {
  return std::unique_ptr<TbbArenas, TbbArenasDeleter>(new TbbArenas(core));
}
void destroy_tbb_arenas(TbbArenas* a) noexcept {
  if (a != nullptr) a->destroy();
}

namespace {
TbbArenas& arenas_of_this_worker(const char* what) {
  WorkerLocal* w = tls_worker;
  if (w == nullptr)
    throw UsageError(std::string(what) + " on a thread that is not a vitte worker: it runs oneTBB on the calling "
                     "worker's node (elsewhere use tbb_arena(sched, node)). Inside a oneTBB algorithm started by "
                     "with_tbb(), bodies may run on oneTBB's own threads, which are already in the node's arena: "
                     "call oneTBB directly there");
  return *w->core->tbb_arenas;
}
unsigned node_of_this_worker() { return tls_worker->core->plan.workers[tls_worker->index].node; }
}  // namespace

void with_tbb_erased(const std::function<void()>& fn) {
  TbbArenas& a = arenas_of_this_worker("with_tbb()");
  a.arena(node_of_this_worker()).execute(fn);
}

}  // namespace detail

TbbArenaSpec tbb_arena_spec(Scheduler& sched, unsigned node) {
  detail::SchedulerCore* core = detail::core_of(sched);
  if (node >= core->topo.nodes().size() || core->plan.arenas[node].empty())
    throw UsageError("node " + std::to_string(node) + " has no workers, so no oneTBB arena");
  return core->tbb_arenas->spec(node);
}

tbb::task_arena& tbb_arena() {
  detail::TbbArenas& a = detail::arenas_of_this_worker("tbb_arena()");
  return a.arena(detail::node_of_this_worker());
}

tbb::task_arena& tbb_arena(Scheduler& sched, unsigned node) { return detail::core_of(sched)->tbb_arenas->arena(node); }

}  // namespace vitte

// vitte::dist: one vitte program across the ranks of an MPI job (docs/distributed.md).
//
//   long fib(int n);                                   // any free function
//   vitte::dist::Functions fns;
//   fns.add<&fib>("fib");                              // the same table on every rank
//   vitte::Scheduler sched(2);
//   vitte::dist::Cluster cluster(sched, fns);          // starts MPI if the program did not
//   auto a = cluster.async<&fib>(1, 30);               // runs on rank 1: a vitte::Future<long>
//   auto b = cluster.spawn<&fib>(30);                  // runs where an idle rank steals it
//   long r = a.get() + b.get();
//   cluster.join_all();                                // every rank: all cluster work done
//
// Built only when meson finds MPI (option `mpi`); link `vitte-dist`. Only this library
// calls MPI, and only from its communication thread (one per rank); workers hand it
// messages through a lock-free queue. The program may use MPI itself before the cluster
// starts and after it was destroyed; while it lives, MPI belongs to the cluster.
//
// Functions: registered by name, in any order; the cluster checks at start-up that every
// rank has the same table (the same names, the same signatures) and the same build of the
// program, and otherwise throws SetupError on every rank, naming the functions and ranks.
// Calls travel as the function's index in that table, never as an address.
//
// Arguments and results: trivially copyable types, std::string, std::vector of those and
// the standard containers cereal covers, and any type with a cereal serialize()
// (detail/dist_wire.hpp). A type that cannot be sent fails to compile where the function
// is registered. Parameters are stored decayed and must be default-constructible.
//
// Where work runs:
//   - async<F>(rank, args...): on that rank, as a task of its scheduler. On the calling
//     rank itself it runs as a plain task (no serialisation).
//   - spawn<F>(args...): in the distributed pool. It runs on this rank unless an idle
//     rank steals it first: ranks with nothing queued steal from a random rank, then
//     register on their lifelines, and a rank with surplus pushes work to them. Thieves
//     take the oldest half (at most ClusterOptions::steal_batch). Spawn work worth
//     shipping: see "The grain" in docs/distributed.md.
// Both return a vitte::Future: get(), then(), when_all() and co_await work on it. An
// exception a function throws on another rank arrives as RemoteError (the rank, the
// function, the exception's type and message); on this rank, as itself.
//
// join_all(): collective. Returns on every rank once no cluster task is queued or running
// anywhere and no message carrying work or results is in flight (termination waves over
// sent and received counts, docs/distributed.md). It counts what enters the cluster:
// spawn(), async() and the tasks they run. A then() continuation of a cluster future, or a
// plain local task a cluster task leaves running, is the local scheduler's work: wait for
// it there; and when such a continuation feeds the cluster again (spawns, calls), repeat
// join_all() and sched.join_all() until neither finds work, or keep the continuation's
// work inside a cluster task that get()s the future instead. Rethrows the first protocol
// error this rank met (a message it had to refuse).
//
// Lifetime: the Scheduler must outlive the Cluster. One cluster per process at a time;
// one after another works. The destructor is shutdown(): a final join_all() (collective,
// with no barrier beyond the termination wave), then the communication thread stops. MPI,
// when the cluster initialised it, is finalised at exit. If a rank dies, Open MPI's
// default error handler aborts the job (mpirun ends every rank): no rank waits forever in
// join_all() for it. A Cluster destroyed while an exception unwinds (one raised after it
// was made), or on a worker of its own scheduler before shutdown(), ends the job with
// MPI_Abort for the same reason.
#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "vitte/detail/dist_wire.hpp"
#include "vitte/error.hpp"
#include "vitte/future.hpp"
#include "vitte/scheduler.hpp"

namespace vitte::dist {

// A function that threw on another rank.
class RemoteError : public vitte::Error {
 public:
  RemoteError(int rank, std::string function, const std::string& what)
      : Error(what), rank_(rank), function_(std::move(function)) {}
  int rank() const noexcept { return rank_; }
  const std::string& function() const noexcept { return function_; }

 private:
  int rank_;
  std::string function_;
};

// The cluster could not start, or its ranks disagree (function tables, builds, MPI's
// thread support). Thrown on every rank with the same message.
class SetupError : public vitte::Error {
 public:
  using Error::Error;
};

struct ClusterOptions {
  // The most tasks one remote steal or lifeline push moves (it moves half of what the
  // victim has queued, at most this many). UsageError when 0.
  unsigned steal_batch = 32;
};

struct ClusterStats {
  int rank = 0;
  int size = 1;
  std::uint64_t messages_sent = 0, messages_received = 0;
  std::uint64_t bytes_sent = 0, bytes_received = 0;
  std::uint64_t steal_requests = 0;     // remote steals this rank asked for (random and lifeline)
  std::uint64_t steals_won = 0;         // of which came back with tasks
  std::uint64_t steal_replies = 0;      // replies received (with tasks or empty)
  std::uint64_t steal_reply_ns = 0;     // summed time from each request to its reply
  std::uint64_t tasks_stolen_in = 0;    // tasks that arrived by steal or lifeline push
  std::uint64_t tasks_given = 0;        // tasks this rank shipped to thieves
  std::uint64_t lifeline_pushes = 0;    // pushes this rank made to registered buddies
  std::uint64_t calls_served = 0;       // async() calls from other ranks run here
  std::uint64_t pool_tasks_run = 0;     // spawn() tasks run here (wherever spawned)
  double comm_idle_seconds = 0;         // wall time the communication thread spent idle
  double comm_idle_cpu_seconds = 0;     // CPU time it burned meanwhile
};

class Cluster;

namespace detail {

class ClusterCore;  // src/dist/cluster_core.hpp
struct ClusterAccess;  // the project's own tests reach the core through it

using Invoke = std::string (*)(std::string_view args);  // wire args in, wire result out
struct Entry {
  std::string name;
  std::string signature;  // the function type's mangled name
  std::uintptr_t key = 0;  // the function's address, for this process's lookups only
  Invoke invoke = nullptr;
};

// Where a result goes once it arrives from another rank.
struct ReplySlot {
  virtual ~ReplySlot() = default;
  virtual void set_bytes(std::string_view bytes) = 0;  // throws WireError when malformed
  virtual void set_error(std::exception_ptr e) = 0;
};

// A task of the distributed pool, queued on this rank. A thief's rank receives it as
// bytes (its function's index and its arguments).
struct PoolItem {
  virtual ~PoolItem() = default;
  virtual void run() = 0;                            // here, delivering the result
  virtual std::uint32_t function() const = 0;
  virtual std::string arguments() const = 0;         // for shipping
  // For shipping: where the result must go (the origin rank's slot), registering one.
  virtual std::uint64_t reply_to(ClusterCore* c, int* origin) = 0;
  // It cannot run or be shipped (its arguments would not serialise): its future fails.
  virtual void fail(std::exception_ptr e) noexcept = 0;
};

// Exported by the library.
std::uint32_t index_of(ClusterCore* c, std::uintptr_t key, const char* what);
void push_pool(ClusterCore* c, std::unique_ptr<PoolItem> item);
void send_call(ClusterCore* c, int rank, std::uint32_t fn, std::string args, std::unique_ptr<ReplySlot> slot);
std::uint64_t add_slot(ClusterCore* c, std::unique_ptr<ReplySlot> slot);
void begin_work(ClusterCore* c);  // counted cluster work starts (join_all waits for it); UsageError after shutdown()
void end_work(ClusterCore* c) noexcept;    // ... and ends: the last touch of the cluster
int rank_of(const ClusterCore* c) noexcept;
Scheduler& scheduler_of(ClusterCore* c) noexcept;
std::vector<std::string> all_gather(ClusterCore* c, std::string mine);

template <auto F>
struct Fn {
  static_assert(kAlwaysFalse<decltype(F)>,
                "vitte::dist: register a free function (or a static member function) by its address, &f");
};
template <class P>
inline constexpr bool kByValueOrConstRef =
    !std::is_rvalue_reference_v<P> &&
    (!std::is_lvalue_reference_v<P> || std::is_const_v<std::remove_reference_t<P>>);
template <class R, class... P, R (*F)(P...)>
struct Fn<F> {
  static_assert(!std::is_reference_v<R>,
                "vitte::dist: a registered function returns by value (a reference cannot travel to another rank)");
  static_assert((kByValueOrConstRef<P> && ...),
                "vitte::dist: parameters are taken by value or const reference (the function runs on a copy of the "
                "arguments, on another rank: an output parameter would be lost, an rvalue reference meaningless)");
  static_assert((std::is_default_constructible_v<std::decay_t<P>> && ...),
                "vitte::dist: parameter types must be default-constructible (they are decoded into a default value)");
  using Result = R;
  using Args = std::tuple<std::decay_t<P>...>;
  static constexpr std::size_t arity = sizeof...(P);
  static std::uintptr_t key() noexcept { return reinterpret_cast<std::uintptr_t>(F); }
  static R call(Args& a) {
    return std::apply([](auto&... v) -> R { return F(v...); }, a);
  }
  static std::string invoke(std::string_view bytes) {
    Args a = read_args<std::decay_t<P>...>(bytes);
    if constexpr (std::is_void_v<R>) {
      call(a);
      return {};
    } else {
      Writer w;
      w.put(call(a));
      return w.take();
    }
  }
};

template <class R>
struct TypedSlot final : ReplySlot {
  explicit TypedSlot(Promise<R> p) : promise(std::move(p)) {}
  void set_bytes(std::string_view bytes) override {
    if constexpr (std::is_void_v<R>) {
      Reader(bytes).finish();
      promise.set_value();
    } else {
      Reader r(bytes);
      auto v = r.template get<R>();
      r.finish();
      promise.set_value(std::move(v));
    }
  }
  void set_error(std::exception_ptr e) override { promise.set_exception(std::move(e)); }
  Promise<R> promise;
};

template <class R, class Call>
void settle(Promise<R>& p, Call&& call) noexcept {
  try {
    if constexpr (std::is_void_v<R>) {
      call();
      p.set_value();
    } else {
      p.set_value(call());
    }
  } catch (...) {
    p.set_exception(std::current_exception());
  }
}

// A pool task spawned on this rank: its arguments stay typed until a thief takes it.
template <auto F>
struct TypedItem final : PoolItem {
  using T = Fn<F>;
  TypedItem(std::uint32_t fn, typename T::Args a, Promise<typename T::Result> p)
      : fn_(fn), args_(std::move(a)), promise_(std::move(p)) {}
  void run() override {
    settle(promise_, [this] { return T::call(args_); });
  }
  std::uint32_t function() const override { return fn_; }
  std::string arguments() const override { return write_args(args_); }
  std::uint64_t reply_to(ClusterCore* c, int* origin) override {
    *origin = rank_of(c);
    return add_slot(c, std::make_unique<TypedSlot<typename T::Result>>(std::move(promise_)));
  }
  void fail(std::exception_ptr e) noexcept override { promise_.set_exception(std::move(e)); }

 private:
  std::uint32_t fn_;
  typename T::Args args_;
  Promise<typename T::Result> promise_;
};

Cluster* current_cluster() noexcept;

}  // namespace detail

// The table of functions other ranks may call. Build the same one on every rank.
class Functions {
 public:
  // Registers F (a free function) under `name`. UsageError for an empty name, a name or a
  // function registered twice. Parameter and result types must be sendable
  // (detail/dist_wire.hpp); anything else fails to compile here.
  template <auto F>
  Functions& add(std::string name) {
    using T = detail::Fn<F>;
    static_assert(detail::sendable<typename T::Result>(),
                  "vitte::dist::Functions::add: the result type cannot be sent between ranks");
    static_assert(detail::AllSendable<typename T::Args>::value,
                  "vitte::dist::Functions::add: a parameter type cannot be sent between ranks");
    add_entry(detail::Entry{std::move(name), typeid(F).name(), T::key(), &T::invoke});
    return *this;
  }
  const std::vector<detail::Entry>& entries() const noexcept { return entries_; }

 private:
  void add_entry(detail::Entry e);
  std::vector<detail::Entry> entries_;
};

class Cluster {
 public:
  // Starts MPI if it is not initialised (MPI_THREAD_SERIALIZED; pass argc/argv to let it
  // read its arguments), checks the function table across ranks, and starts the
  // communication thread. SetupError: tables or builds differ, MPI was initialised with
  // less than MPI_THREAD_SERIALIZED, MPI was finalised, or another Cluster lives.
  Cluster(Scheduler& sched, const Functions& fns, ClusterOptions opts = {});
  Cluster(Scheduler& sched, const Functions& fns, int* argc, char*** argv, ClusterOptions opts = {});
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  int rank() const noexcept;
  int size() const noexcept;
  Scheduler& scheduler() noexcept { return detail::scheduler_of(core_.get()); }

  // Runs F(args...) on `rank`. UsageError: no such rank, F not registered.
  template <auto F, class... A>
  auto async(int rank, A&&... args) -> Future<typename detail::Fn<F>::Result> {
    using T = detail::Fn<F>;
    using R = typename T::Result;
    static_assert(sizeof...(A) == T::arity, "vitte::dist::Cluster::async: wrong number of arguments");
    static_assert(sizeof...(A) != T::arity || std::is_constructible_v<typename T::Args, A&&...>,
                  "vitte::dist::Cluster::async: the arguments do not convert to the function's parameters");
    const std::uint32_t fn = detail::index_of(core_.get(), T::key(), "Cluster::async");
    check_rank(rank);
    typename T::Args a(std::forward<A>(args)...);
    if (rank == this->rank()) detail::begin_work(core_.get());  // first: it refuses after shutdown()
    Promise<R> p(scheduler());
    Future<R> f = p.get_future();
    if (rank == this->rank()) {
      scheduler().submit(Task([c = core_.get(), a = std::move(a), p = std::move(p)]() mutable {
        detail::settle(p, [&a] { return T::call(a); });
        detail::end_work(c);
      }));
    } else {
      detail::send_call(core_.get(), rank, fn, detail::write_args(a),
                        std::make_unique<detail::TypedSlot<R>>(std::move(p)));
    }
    return f;
  }

  // Queues F(args...) in the distributed pool (see the file comment).
  template <auto F, class... A>
  auto spawn(A&&... args) -> Future<typename detail::Fn<F>::Result> {
    using T = detail::Fn<F>;
    using R = typename T::Result;
    static_assert(sizeof...(A) == T::arity, "vitte::dist::Cluster::spawn: wrong number of arguments");
    static_assert(sizeof...(A) != T::arity || std::is_constructible_v<typename T::Args, A&&...>,
                  "vitte::dist::Cluster::spawn: the arguments do not convert to the function's parameters");
    const std::uint32_t fn = detail::index_of(core_.get(), T::key(), "Cluster::spawn");
    Promise<R> p(scheduler());
    Future<R> f = p.get_future();
    detail::push_pool(core_.get(), std::make_unique<detail::TypedItem<F>>(
                                       fn, typename T::Args(std::forward<A>(args)...), std::move(p)));
    return f;
  }

  // Collective: waits until no cluster work is left on any rank (see the file comment).
  void join_all();
  // Collective: join_all(), then stops the communication thread. Idempotent.
  void shutdown();

  // Collective: every rank's `mine`, indexed by rank, on every rank.
  std::vector<std::string> all_gather(std::string mine) { return detail::all_gather(core_.get(), std::move(mine)); }
  // Collective: the sum over ranks of an arithmetic value.
  template <class T>
  T sum(T mine) {
    static_assert(std::is_arithmetic_v<T>, "Cluster::sum: an arithmetic type");
    detail::Writer w;
    w.put(mine);
    T total{};
    for (const auto& s : all_gather(w.take())) {
      detail::Reader r(s);
      total += r.template get<T>();
    }
    return total;
  }

  // This rank's counters (messages, bytes, steals, lifelines, idle CPU).
  ClusterStats stats() const;

  // The process's cluster, or null.
  static Cluster* current() noexcept { return detail::current_cluster(); }

 private:
  friend struct detail::ClusterAccess;
  void check_rank(int rank) const;
  std::unique_ptr<detail::ClusterCore> core_;
  int uncaught_ = 0;  // exceptions in flight when it was made (the destructor compares)
};

// This process's rank as the launcher (mpirun, srun, hydra) set it in the environment,
// before any cluster starts; -1 when not launched by one. For setting up rank-dependent
// things before MPI starts.
int launch_rank() noexcept;

}  // namespace vitte::dist

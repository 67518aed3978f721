// The communication thread: the only thread of a rank that calls MPI (mpi_seam.hpp).
//
// Each turn it sends what the outbox holds, takes in waiting messages, takes one step of
// the steal protocol (steal.cpp), of the termination waves (termination.cpp) and of a
// collective, and completes finished sends. A turn that did nothing backs off: it spins
// a little (a reply usually follows a request within microseconds), then yields (so a
// thread it woke gets the core), then
// sleeps on comm_waiter with a timeout that doubles up to a cap (0.1 ms while this rank
// has cluster work, which thieves may ask for; 1 ms in its first 50 ms without; 5 ms
// after). Posting a message wakes it at once; an arriving message waits for the end of
// the current sleep (MPI has no wait on "a message or a futex").
// ClusterStats reports the wall and CPU time it spent idle.
#include <pthread.h>
#include <time.h>

#include <thread>

#include "dist/cluster_core.hpp"
#include "dist/messages.hpp"

namespace vitte::dist::detail {
namespace {

std::int64_t thread_cpu_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// A pool task that arrived from another rank: its function's index and its arguments.
class WireItem final : public PoolItem {
 public:
  WireItem(ClusterCore* c, std::uint32_t fn, int origin, std::uint64_t slot, std::string args)
      : c_(c), fn_(fn), origin_(origin), slot_(slot), args_(std::move(args)) {}
  void run() override {
    std::string out;
    std::exception_ptr err;
    try {
      out = c_->table[fn_].invoke(args_);
    } catch (const WireError& e) {
      err = std::make_exception_ptr(WireError("malformed arguments for \"" + c_->table[fn_].name + "\" shipped to rank " +
                                              std::to_string(c_->rank) + ": " + e.what()));
    } catch (...) {
      err = std::current_exception();
    }
    c_->deliver(origin_, slot_, fn_, &out, err);
  }
  std::uint32_t function() const override { return fn_; }
  std::string arguments() const override { return args_; }
  std::uint64_t reply_to(ClusterCore*, int* origin) override {
    *origin = origin_;
    return slot_;
  }
  void fail(std::exception_ptr e) noexcept override { c_->deliver(origin_, slot_, fn_, nullptr, std::move(e)); }

 private:
  ClusterCore* c_;
  std::uint32_t fn_;
  int origin_;
  std::uint64_t slot_;
  std::string args_;
};

// Few spins, many yields: a yield hands the core to the worker or the caller this thread
// just woke, which on a machine with fewer cores than threads is what a reply waits for.
// 2,000 spins and 200 yields measured a remote call at 379-531 us on the 2-core VM, 200
// and 2,000 at 104-130 us, with UTS and nqueens as fast or faster (docs/benchmarks.md).
constexpr int kSpinTurns = 200;
constexpr int kYieldTurns = 2000;
constexpr std::int64_t kBusyCapNs = 100'000;     // this rank has cluster work
constexpr std::int64_t kRecentCapNs = 1'000'000; // idle for less than 50 ms
constexpr std::int64_t kIdleCapNs = 5'000'000;   // idle for longer

}  // namespace

void ClusterCore::start_comm() {
  comm_ = std::thread([this] { comm_main(); });
  pthread_setname_np(comm_.native_handle(), "vitte-dist-comm");  // for top, perf, gdb
}

void ClusterCore::stop_comm() {
  if (!comm_.joinable()) return;
  // release: pairs with the acquire in comm_main's loop condition.
  stop_.store(true, std::memory_order_release);
  comm_waiter.wake();
  comm_.join();
}

void ClusterCore::abort_job() {
  // release: pairs with the acquire in comm_main; MPI_Abort is called there, by the one
  // thread that calls MPI.
  abort_.store(true, std::memory_order_release);
  comm_waiter.wake();
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));  // MPI_Abort ends the process
}

void ClusterCore::send_now(int dest, int tag, std::string bytes) {
  counters.messages_sent.fetch_add(1, std::memory_order_relaxed);
  counters.bytes_sent.fetch_add(bytes.size(), std::memory_order_relaxed);
  mpi::send(dest, tag, std::move(bytes));
}

bool ClusterCore::drain_outbox() {
  bool any = false;
  while (OutMsg* m = outbox.pop()) {
    any = true;
    if (m->dest == rank) {
      // To ourselves (a shipped task's result coming home is delivered directly; this is a
      // result posted for a rank that is this one only in tests of the loop).
      mpi::Incoming in{rank, m->tag, std::move(m->bytes)};
      if (counted(in.tag)) ++received_;
      dispatch(in);
    } else {
      send_now(m->dest, m->tag, std::move(m->bytes));
    }
    delete m;
  }
  return any;
}

bool ClusterCore::receive() {
  bool any = false;
  mpi::Incoming in;
  for (int i = 0; i < 64 && mpi::poll(in); ++i) {
    any = true;
    counters.messages_received.fetch_add(1, std::memory_order_relaxed);
    counters.bytes_received.fetch_add(in.bytes.size(), std::memory_order_relaxed);
    if (counted(in.tag)) ++received_;  // C1: before acting on it
    dispatch(in);
  }
  return any;
}

void ClusterCore::dispatch(const mpi::Incoming& in) {
  const std::string_view body(in.bytes);
  try {
    switch (in.tag) {
      case kCall: on_call(in.source, body); break;
      case kResult: on_result(in.source, body); break;
      case kTasks: on_tasks(in.source, body); break;
      case kStealReq: on_steal_request(in.source, body); break;
      case kStealNone: on_steal_none(in.source, body); break;
      case kWave: on_wave(in.source, body); break;
      case kWaveReply: on_wave_reply(in.source, body); break;
      case kDone: on_done(body); break;
      default:
        record_error("vitte::dist: rank " + std::to_string(rank) + " received a message with unknown tag " +
                     std::to_string(in.tag) + " from rank " + std::to_string(in.source) + "; refused");
    }
  } catch (const WireError& e) {
    record_error("vitte::dist: rank " + std::to_string(rank) + " refused a malformed " + tag_name(in.tag) +
                 " message from rank " + std::to_string(in.source) + ": " + e.what());
  } catch (const std::exception& e) {
    // A user type's cereal load() threw, or memory ran out: the communication thread goes
    // on, and the rank's next join_all() reports it.
    record_error("vitte::dist: rank " + std::to_string(rank) + " failed on a " + tag_name(in.tag) +
                 " message from rank " + std::to_string(in.source) + ": " + current_exception_type() + ": " + e.what());
  } catch (...) {
    record_error("vitte::dist: rank " + std::to_string(rank) + " failed on a " + tag_name(in.tag) +
                 " message from rank " + std::to_string(in.source) + ": " + current_exception_type());
  }
}

void ClusterCore::on_call(int src, std::string_view body) {
  Reader r(body);
  const auto slot = r.get<std::uint64_t>();
  const auto fn = r.get<std::uint32_t>();
  auto args = r.get<std::string>();
  r.finish();
  if (fn >= table.size()) {
    // The caller's table passed the start-up check, so this is a corrupt message; the
    // caller still gets an answer, so nothing waits for it forever.
    Writer w;
    w.put(slot);
    w.put(static_cast<std::uint8_t>(0));
    w.put("#" + std::to_string(fn));
    w.put(std::string("vitte::dist::WireError"));
    w.put("rank " + std::to_string(rank) + " has no function #" + std::to_string(fn) + " (it has " +
          std::to_string(table.size()) + ")");
    post(src, kResult, w.take());
    return;
  }
  counters.calls_served.fetch_add(1, std::memory_order_relaxed);
  active.fetch_add(1, std::memory_order_relaxed);  // C2: before the task is visible
  sched.submit(Task([this, src, slot, fn, args = std::move(args)] {
    std::string out;
    std::exception_ptr err;
    try {
      out = table[fn].invoke(args);
    } catch (const WireError& e) {
      err = std::make_exception_ptr(WireError("malformed arguments for \"" + table[fn].name + "\" sent to rank " +
                                              std::to_string(rank) + ": " + e.what()));
    } catch (...) {
      err = std::current_exception();
    }
    deliver(src, slot, fn, &out, err);
    end_work();
  }));
}

void ClusterCore::on_result(int src, std::string_view body) {
  Reader r(body);
  const auto id = r.get<std::uint64_t>();
  const auto ok = r.get<std::uint8_t>();
  auto slot = take_slot(id);
  if (!slot) {
    record_error("vitte::dist: rank " + std::to_string(rank) + " received from rank " + std::to_string(src) +
                 " a result for request #" + std::to_string(id) + ", which it never made or was answered already");
    return;
  }
  try {
    if (ok) {
      auto bytes = r.get<std::string>();
      r.finish();
      std::exception_ptr bad;
      try {
        slot->set_bytes(bytes);
      } catch (const WireError& e) {
        bad = std::make_exception_ptr(WireError("the result from rank " + std::to_string(src) + " is malformed: " + e.what()));
      } catch (...) {
        bad = std::current_exception();  // the result type's own load() threw: the caller gets it
      }
      if (bad) slot->set_error(std::move(bad));
      return;
    }
    auto fn = r.get<std::string>();
    auto type = r.get<std::string>();
    auto what = r.get<std::string>();
    r.finish();
    // The exception is made in its own statement, so the reader's copy is the only one
    // left once the future completes (libstdc++ shares exception messages by a reference
    // count that ThreadSanitizer cannot see).
    auto e = std::make_exception_ptr(
        RemoteError(src, fn, "rank " + std::to_string(src) + ": \"" + fn + "\" threw " + type + ": " + what));
    slot->set_error(std::move(e));
  } catch (const WireError& e) {
    // The slot's future fails too, so its reader does not wait forever.
    auto bad = std::make_exception_ptr(WireError("a malformed result message from rank " + std::to_string(src) + ": " + e.what()));
    slot->set_error(std::move(bad));
    throw;
  }
}

void ClusterCore::on_tasks(int src, std::string_view body) {
  Reader r(body);
  const bool push = r.get<std::uint8_t>() != 0;
  const auto n = r.get<std::uint32_t>();
  std::vector<std::unique_ptr<PoolItem>> items;
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto fn = r.get<std::uint32_t>();
    const auto origin = r.get<std::int32_t>();
    const auto slot = r.get<std::uint64_t>();
    auto args = r.get<std::string>();
    if (fn >= table.size() || origin < 0 || origin >= size) {
      // Cannot run it; tell its origin when there is one, so its future fails.
      const std::string why = "rank " + std::to_string(rank) + " received from rank " + std::to_string(src) +
                              " a task of function #" + std::to_string(fn) + " from origin rank " +
                              std::to_string(origin) + ", which it cannot run";
      if (origin >= 0 && origin < size && slot != 0) {
        // Made in its own statement: no temporary sharing its message outlives the hand-off.
        auto e = std::make_exception_ptr(WireError(why));
        deliver(origin, slot, fn, nullptr, std::move(e));
      }
      record_error("vitte::dist: " + why);
      continue;
    }
    items.push_back(std::make_unique<WireItem>(this, fn, origin, slot, std::move(args)));
  }
  r.finish();
  counters.tasks_stolen_in.fetch_add(items.size(), std::memory_order_relaxed);
  if (!push) {
    counters.steals_won.fetch_add(1, std::memory_order_relaxed);
    steal_answered();
  }
  if (!items.empty()) hunger_ = Hunger::Fed;
  accept(std::move(items));
}

std::vector<std::string> ClusterCore::all_gather(std::string mine) {
  check_open("all_gather()/sum()");
  std::unique_lock lock(coll_mu_);
  if (coll_in_ || coll_out_) throw UsageError("vitte::dist::Cluster: two collectives at once on one rank");
  coll_in_ = std::move(mine);
  lock.unlock();
  comm_waiter.wake();
  lock.lock();
  coll_cv_.wait(lock, [this] { return coll_out_.has_value(); });
  auto out = std::move(*coll_out_);
  coll_out_.reset();
  return out;
}

bool ClusterCore::collective_step() {
  if (!gather_) {
    std::lock_guard lock(coll_mu_);
    if (!coll_in_) return false;
    gather_ = std::make_unique<mpi::Gather>(std::move(*coll_in_));
    coll_in_.reset();
  }
  if (!gather_->test()) return false;
  {
    std::lock_guard lock(coll_mu_);
    coll_out_ = std::move(gather_->result());
  }
  gather_.reset();
  coll_cv_.notify_all();
  return true;
}

void ClusterCore::comm_main() {
  int idle_turns = 0;
  std::int64_t sleep_ns = 20'000;
  // The idle period being accounted (ClusterStats): from the end of the spin phase, added
  // up after each sleep so that a long idle period shows while it lasts.
  std::int64_t idle_mark = 0, idle_cpu_mark = 0, idle_start = 0;
  auto account_idle = [&] {
    const std::int64_t t = now_ns(), c = thread_cpu_ns();
    counters.idle_ns.fetch_add(t - idle_mark, std::memory_order_relaxed);
    counters.idle_cpu_ns.fetch_add(c - idle_cpu_mark, std::memory_order_relaxed);
    idle_mark = t;
    idle_cpu_mark = c;
  };
  // acquire: pairs with stop_comm's release.
  while (!stop_.load(std::memory_order_acquire)) {
    const std::uint32_t epoch = comm_waiter.epoch();
    if (abort_.load(std::memory_order_acquire)) mpi::abort(70);
    bool did = drain_outbox();
    did |= receive();
    did |= steal_step();
    did |= give_to_lifelines();
    did |= wave_step();
    did |= collective_step();
    const bool sending = mpi::progress_sends();
    if (did) {
      if (idle_turns >= kSpinTurns) account_idle();
      idle_turns = 0;
      sleep_ns = 20'000;
      continue;
    }
    ++idle_turns;
    if (idle_turns < kSpinTurns) continue;
    if (idle_turns == kSpinTurns) {
      idle_start = idle_mark = now_ns();
      idle_cpu_mark = thread_cpu_ns();
    }
    if (idle_turns <= kSpinTurns + kYieldTurns || sending || wave_open_) {
      std::this_thread::yield();
      continue;
    }
    // The cap: short while this rank has work a thief may ask for; longer when idle, and
    // longer still after 50 ms of idleness (each wake-up costs a few microseconds of MPI
    // polling; docs/distributed.md, "The communication thread").
    std::int64_t cap = kIdleCapNs;
    if (active.load(std::memory_order_relaxed) > 0) cap = kBusyCapNs;  // relaxed: a hint
    else if (now_ns() - idle_start < 50'000'000) cap = kRecentCapNs;
    sleep_ns = std::min(sleep_ns * 2, cap);
    comm_waiter.wait_until(epoch, std::chrono::steady_clock::now() + std::chrono::nanoseconds(sleep_ns));
    account_idle();
  }
  if (idle_turns >= kSpinTurns) account_idle();
  drain_outbox();
  mpi::flush_sends();
}

}  // namespace vitte::dist::detail

// A scheduler's end and its brackets: the fork() check, the external-submission bracket
// that shutdown waits for, shutdown itself (drain, stop, join), a deterministic run's
// abandonment, join_all(), and the destructors.
#include "vitte/scheduler.hpp"

#include <cstdio>
#include <mutex>
#include <thread>

#include "deterministic/sim.hpp"
#include "jobserver/client.hpp"
#include "metrics/queue_sampler.hpp"
#include "policy/group_tree.hpp"
#include "scheduler_core.hpp"
#include "timer/timer_service.hpp"
#include "worker/parking_lot.hpp"
#include "worker/worker.hpp"

namespace vitte {
namespace detail {

bool SchedulerCore::inherited() const noexcept {
  return fork_generation.load(std::memory_order_relaxed) != born_in_generation;
}

void SchedulerCore::check_not_inherited(const char* what) const {
  if (inherited())
    throw UsageError(std::string(what) + " on a Scheduler inherited through fork(): its workers exist only in the "
                     "parent process; make a new Scheduler in the child");
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
  if (jobserver != nullptr) jobserver->stop();  // workers waiting for a token look again
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

}  // namespace detail

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

void Scheduler::join_all(Rethrow what) {
  core_->check_not_inherited("join_all()");
  if (detail::tls_worker != nullptr && detail::tls_worker->core == core_.get())
    throw UsageError("join_all() called from a task of the same scheduler; it would wait for itself "
                     "(use a TaskGroup inside tasks)");
  if (core_->abandoned) throw Deadlock(core_->abandoned_why);  // nothing of the run finishes now
  std::lock_guard<std::mutex> lock(core_->join_mu);
  detail::wait_for(core_->detached, core_.get());
  std::uint64_t others = 0;  // counted in metrics().total.failed already; reset with the error
  if (std::exception_ptr e = core_->detached.take_error(&others, what == Rethrow::ErrorsAndCancellations))
    std::rethrow_exception(e);
}

}  // namespace vitte

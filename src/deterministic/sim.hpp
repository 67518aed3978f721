// DetSim: the turn-taking core of a deterministic run (deterministic.hpp).
//
// Participants: the workers 0..N-1 (each its own OS thread, running Worker::main_det) and
// the driver N (the thread that made the scheduler). One of them holds the turn; the rest
// sleep on their own semaphore. The holder runs (a worker: one search for work and the
// task it found, cut short where the task spawns or waits; the driver: the user's code
// until it waits), then calls a turn function,
// which records how it left (it ran a task; it found nothing; it waits for a counter),
// fires the timers that are due on the virtual clock, asks the Chooser who goes next among
// those that can, and hands the turn over.
//
// Who can run:
//   Ready     a worker that ran a task (or spawned one) last turn: always.
//   Idle      a worker that found nothing: once anyone made progress since (progress_
//             moved), since it would find nothing again otherwise.
//   Waiting   a worker inside a wait (TaskGroup::wait in a task, ...): when its counter
//             finished, or progress moved (it helps meanwhile).
//   Driver    waiting: when its counter finished (or all workers left, at shutdown).
//   Gone      a worker that left (shutdown): never.
// When none can, the virtual clock jumps to the earliest timer; with no timer either, the
// driver's wait can never finish: the run is deadlocked, and the driver's wait throws
// Deadlock, once (the program may mend it). A worker blocked in a wait that never finishes
// stays where it is; if the scheduler is destroyed so, it is abandoned (SchedulerCore).
//
// Invariants:
//   D1  exactly one participant holds the turn (holder_); only the holder touches the
//       members below (but the atomics marked otherwise) and the scheduler's queues. A
//       foreign thread (neither driver nor worker) may still submit: that is counted as a
//       nondeterministic input (foreign()), and the queues stay safe, being concurrent.
//   D2  the holder hands over by releasing the next holder's semaphore, then acquiring its
//       own; release/acquire on the semaphore orders everything the old holder did before
//       everything the new one does (ThreadSanitizer sees it as the atomics inside).
//   D3  every choice depends only on the seed, the replay log, and the participants'
//       states, which depend only on earlier choices and the program: same program and
//       seed, same choices.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "deterministic/chooser.hpp"
#include "vitte/deterministic.hpp"

namespace vitte::detail {

class SchedulerCore;
class WaitCounter;

class DetSim;
// The run the calling thread takes part in (as driver or worker), or null: a plain %fs load,
// read by every wait that must block (wait_for), so real runs pay one predicted branch.
extern constinit thread_local DetSim* tls_sim __attribute__((tls_model("initial-exec")));
inline DetSim* det_of_this_thread() noexcept { return tls_sim; }

class DetSim {
 public:
  // Virtual time at which a run starts (not 0: 0 means "unset" in several statistics).
  static constexpr std::int64_t kEpochNs = 1'000'000'000;

  DetSim(SchedulerCore& core, const DeterministicOptions& o, unsigned workers);
  ~DetSim();
  DetSim(const DetSim&) = delete;
  DetSim& operator=(const DetSim&) = delete;

  // The calling thread takes part: the driver (in the constructor's thread) or worker w.
  void attach_driver();
  void detach_driver() noexcept;
  void attach_worker(unsigned w) noexcept;
  // Worker w, before anything else it does in the run: waits for its first turn.
  void enter(unsigned w);
  // Ends worker w's turn: it ran a task (ran = true) or found nothing.
  void turn(unsigned w, bool ran);
  // Worker w just pushed a task on its own deque (push_local's slow path, which every spawn
  // of a deterministic run takes): a turn, when DeterministicOptions::spawn_turns.
  void spawned(unsigned w);
  // Ends worker w's turn after a task that only handed its work to node `node`
  // (Worker::handed_back): that node's workers may look again, while w, and every worker
  // that saw nothing new, wait for real progress. Otherwise crossing workers of other nodes
  // could take the same resumption back and forth for ever while the node it belongs to
  // never gets a turn (a livelock PCT's fixed priorities found). `c`: the wait w is in, or
  // null.
  void turn_handed_back(unsigned w, unsigned node, const WaitCounter* c);
  // Ends worker w's turn inside a wait for `c`.
  void turn_waiting(unsigned w, const WaitCounter& c);
  // Worker w leaves the run for good and hands the turn on.
  void leave(unsigned w);
  // The driver waits for `c` (wait_for on the driver's thread): turns pass until it is
  // done. Throws Deadlock when it cannot be.
  void driver_wait(WaitCounter& c);
  // Shutdown: the driver lets the workers run until every one has left. False: deadlocked
  // (a worker is stuck in a wait), nothing was joined.
  bool drive_until_gone();
  // Start failed: lets every worker out of enter() without a turn.
  void release_all() noexcept;
  // wait_for() from a thread of this run: the driver's or a worker's wait.
  void wait(WaitCounter& c);

  // Stops the stall reports (an abandoned run, which is never destroyed).
  void stop_watchdog() noexcept;
  // A task ran on worker w (Worker::run_watched): advances the clock and w's CPU time.
  void charge(unsigned w) noexcept;
  // A submission or timer from a thread outside the run (D1); `what` names it.
  void foreign(const char* what) noexcept;
  // Whether the calling thread takes part in this run.
  bool is_participant() const noexcept;

  std::int64_t now_ns() const noexcept { return vnow_.load(std::memory_order_relaxed); }
  bool deadlocked() const noexcept { return deadlocked_; }
  const std::string& deadlock_message() const noexcept { return deadlock_msg_; }
  ScheduleInfo info() const;
  std::uint64_t seed() const noexcept { return opts_.seed; }
  std::string reproduce() const;

 private:
  enum class State : unsigned char { Ready, Idle, Waiting, DriverWaiting, DriverStopping, Running, Gone };
  struct Part {
    std::binary_semaphore sem{0};
    State state = State::Idle;
    const WaitCounter* waiting = nullptr;
    std::uint64_t seen = ~std::uint64_t{0};  // progress_ when it last found nothing
    std::int64_t vcpu = 0;                   // its virtual CPU time
    std::uint64_t executed = 0, steals[3] = {0, 0, 0};  // its counters at its last turn
  };

  bool runnable(unsigned p) const noexcept;
  // Fires due timers, advances the clock when nobody can run, detects deadlock; returns
  // who goes next (the holder may be chosen again).
  unsigned choose(unsigned current);
  // Hands the turn from `me` to `next` and waits for it to come back (D2).
  void pass(unsigned me);
  void account(unsigned w) noexcept;  // hashes worker w's turn
  void mix(std::uint64_t v) noexcept;
  void declare_deadlock(const std::string& why);
  void watchdog() noexcept;

  SchedulerCore& core_;
  const DeterministicOptions opts_;
  const unsigned n_;  // workers; the driver is participant n_
  std::unique_ptr<Part[]> parts_;
  Chooser chooser_;
  std::vector<unsigned> runnable_;  // scratch for choose()
  // The virtual clock. Written by the holder only (D1); relaxed everywhere: participants
  // read it in their own turns, ordered by the hand-off (D2). Atomic because tls_vclock
  // hands out a pointer to it, which other code reads without knowing about turns.
  std::atomic<std::int64_t> vnow_{kEpochNs};
  std::uint64_t progress_ = 0;    // bumped by every turn that may have made work visible
  std::uint64_t wait_began_ = 0;  // the first turn of the driver's current wait; 0: none
  // Written by the holder; read (relaxed) by the watchdog, which only compares snapshots of
  // them over real time and orders nothing by them.
  std::atomic<std::uint64_t> turns_{0};
  std::atomic<unsigned> holder_;
  std::uint64_t tasks_ = 0, steals_ = 0;
  std::uint64_t hash_ = 0xCBF29CE484222325ull;
  bool deadlocked_ = false;
  std::string deadlock_msg_;
  // Foreign inputs (D1's exception): counted from any thread, relaxed (a statistic); the
  // exchange only picks the one thread that prints the message.
  std::atomic<std::uint64_t> foreign_{0};
  std::atomic<bool> foreign_told_{false};
  // The watchdog (stall_report): its own thread, stopped by the destructor.
  std::mutex wd_mu_;
  std::condition_variable wd_cv_;
  bool wd_stop_ = false;
  std::thread wd_;
};

}  // namespace vitte::detail

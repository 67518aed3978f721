// WaitCounter: the join point of a group of tasks (a TaskGroup, the scheduler's detached
// tasks, a future).
//
// Roles: threads add work before it is queued; the thread that finishes a task reports it;
// at most one joiner at a time waits for the pending count to reach zero.
//
// Two ledgers, so that fork-join pays no atomic read-modify-write in the common case:
//   L  (plain fields, owner only): tasks the *owner* worker spawned minus tasks the owner
//      finished. A TaskGroup made on a worker has that worker as owner; other counters
//      have none and L stays 0.
//   A  (atomic, in state_): tasks other threads spawned minus tasks other threads
//      finished. A may be negative (a thief finishing a task the owner spawned).
//   pending = L + A.
// State word: state_ = (A << 1) | kWaiting, two's complement; A is state_ >> 1 (signed).
//
// State word: state_ = (A << 2) | kNotifying | kWaiting; A is state_ >> 2 (signed).
//
// Joining: the owner (or, without an owner, the single joiner) helps or spins while
// pending > 0. Before sleeping it arms: one CAS folds L into A and sets kWaiting, after
// which A alone is the pending count (>= 1) and the owner too reports through the atomic
// path until disarm().
// Completing on the atomic path is a CAS, not a fetch_sub: the completer that takes A
// from 1 to 0 while kWaiting is set swaps kWaiting for kNotifying in the same step, so
// exactly one completer per arming becomes the notifier, and nobody can be between
// "took the count to zero" and "told the joiner" without the joiner seeing it. (With a
// plain fetch_sub, run() from another thread could raise A again before the joiner left;
// a second completer then also saw "1 -> 0 while waiting", and the joiner could leave on
// the second one's signal while the first still touched the freed group: issue #6.)
// Invariants:
//   I1  without an owner, A never goes below zero (done() without add(); asserted).
//   I2  while kWaiting is set, L == 0 and A == pending >= 1 (A reaching 0 clears it).
//   I3  kWaiting and kNotifying are never both set; kNotifying is set only by the one
//       completer whose CAS took A from 1 to 0 with kWaiting set (the notifier).
//   I4  the notifier reads waiter_, wakes it, and then clears kNotifying (release); that
//       is its last access to this object. Every other completer's last access is its
//       successful CAS. A joiner that armed leaves only once it has seen kNotifying
//       clear after kWaiting cleared (disarm()), so the object may live on its stack or
//       be freed right after wait().
//   I5  L, armed_ and the owner's view are touched by the owner thread only; other
//       threads read owner_ alone, which never changes after construction.
//   I6  arm() runs only when neither bit is set (the joiner's previous disarm() waited
//       the notifier out), and only the joiner clears kWaiting without notifying, which
//       it does only while A >= 1, when no completer can be the notifier.
//   I7  a chained counter (chain_to) counts as one task of its chain while its count is
//       above zero; the completer that takes it to zero reports that task done, after its
//       own last access to this object (it read chain_ before its CAS).
// Errors: the first exception recorded wins its slot (exception slots, X1-X2); the rest are
// counted. The joiner takes it after it observed pending == 0 (acquire on state_), which
// happens after the recording task's completion (release), or on its own thread.
// Cancellations (docs/errors.md): a task that ended by throwing vitte::Cancelled goes to a
// slot of its own, so that an error recorded later still wins. It cancels nothing else.
// A counter that joins no value (Joins::Group, Detached) hands it over only when the
// joiner asks for it; one that joins a value (Joins::Value: a future's result) always does,
// when there is no error: there is no value to give instead.
// Exception slots (invariants X1-X2): the first error and the first cancellation of a join,
// each claimed by one recorder and taken by the joiner. Both states share one byte (two
// bits each) beside
// the counter's other small fields, so a join that never sees an exception pays nothing
// for them but two null pointers.
//   X1  a slot's state: Empty -> Writing (one recorder's CAS) -> Full (its release RMW) ->
//       Empty (the joiner's take_slot(), release). Its exception is written only in Writing
//       (by the claimer) and in take_slot() (by the joiner, which saw Full): never by two
//       threads at once.
//   X2  a recorder that races with a take_slot() (a task that began after the join's count
//       reached zero) either finds the slot taken, or claims it after the take: its CAS's
//       acquire pairs with the take's release, so its write follows the reset. A take that
//       finds Writing leaves the exception to the next join.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>

#include "vitte/detail/assert.hpp"
#include "vitte/detail/waiter.hpp"

namespace vitte::detail {

struct WorkerLocal;

// How a task's run ended, as its frame reports it (task_frame.hpp).
enum class RunEnd : unsigned char { Ok, Failed, Cancelled };

// What a counter joins, which decides what its errors do.
enum class Joins : unsigned char {
  Value,     // a future's result: any exception, vitte::Cancelled too, is the result
  Group,     // a TaskGroup or a graph run: the first error skips what has not started
  Detached,  // unrelated tasks (join_all): an error skips nothing
};

// True when `e` is a vitte::Cancelled (error.hpp). Out of line: exception paths only.
bool is_cancellation(const std::exception_ptr& e) noexcept;

struct TaskName;  // policy/group_node.hpp
// Counts a run that did not end Ok where no task frame reports it (a coroutine, a graph
// task, a loop piece keep their own errors): in the calling worker's counters (none on
// other threads) and, when given, its name's. src/task/run_end.cpp.
void count_end(RunEnd end, TaskName* name) noexcept;

class WaitCounter {
 public:
  static constexpr std::uint64_t kWaiting = 1;
  static constexpr std::uint64_t kNotifying = 2;
  static constexpr std::uint64_t kOne = 4;

  // joins: see Joins. owner: the worker whose spawns and completions may use the plain
  // ledger (or null).
  explicit WaitCounter(Joins joins, const WorkerLocal* owner = nullptr) noexcept : owner_(owner), joins_(joins) {}
  WaitCounter(const WaitCounter&) = delete;
  WaitCounter& operator=(const WaitCounter&) = delete;

  const WorkerLocal* owner() const noexcept { return owner_; }

  // A task of this counter is about to be queued by `self` (null: not a worker).
  void add(const WorkerLocal* self = nullptr) noexcept {
    if (self != nullptr && self == owner_ && !armed_) {
      ++local_spawned_;
      return;
    }
    // relaxed: the new task is published by the queue push (release) that follows; a
    // joiner that must see this increment is ordered after it by that same hand-off or by
    // program order.
    state_.fetch_add(kOne, std::memory_order_relaxed);
  }

  // A task of this counter finished on `self` (null: not a worker).
  void done(const WorkerLocal* self = nullptr) noexcept {
    if (self != nullptr && self == owner_ && !armed_) {
      ++local_done_;
      return;
    }
    // Read before the CAS: once it lands, the joiner may see the group finished and free
    // this object (only the notifier may touch it after, I4).
    [[maybe_unused]] const bool has_owner = owner_ != nullptr;
    WaitCounter* const chain = chain_;  // read before the CAS, as above
    // relaxed: only a first guess for the CAS, which re-reads the word on failure.
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    bool notifier;
    std::uint64_t next;
    do {
      VITTE_ASSERT(has_owner || static_cast<std::int64_t>(s) >= static_cast<std::int64_t>(kOne),
                   "I1: WaitCounter::done() without a matching add()");
      // Only the swap of kWaiting for kNotifying makes a notifier: a count that reaches 0
      // while an earlier notifier is still in flight (state kOne | kNotifying) does not.
      notifier = s == (kOne | kWaiting);
      next = notifier ? kNotifying : s - kOne;
      // acq_rel: release publishes the task's effects (and a recorded error) to the
      // joiner's acquire loads; acquire pairs with the joiner's arming CAS (release), so
      // the notifier sees waiter_ below.
    } while (!state_.compare_exchange_weak(s, next, std::memory_order_acq_rel, std::memory_order_relaxed));
    if (notifier) {
      Waiter* w = waiter_.load(std::memory_order_relaxed);  // published by arm()'s CAS
      w->wake();
      // release: pairs with the joiner's acquire loads in disarm(); last touch (I4).
      state_.fetch_and(~kNotifying, std::memory_order_release);
    }
    // The whole group finished: it was one task of `chain` (I7). `this` is not touched.
    if (chain != nullptr && (s & ~(kWaiting | kNotifying)) == kOne) [[unlikely]] chain->done(self);
  }

  // I7: while set, this counter's group (from its first add() until its count returns to
  // zero) is itself one task of `c`: the caller did c->add() before this group's first
  // add(), and the completer that takes this count to zero calls c->done(). Only for
  // counters without an owner; set between groups (before the first add()).
  void chain_to(WaitCounter* c) noexcept {
    VITTE_ASSERT(owner_ == nullptr, "I7: chain_to() on a counter with an owner");
    chain_ = c;
  }

  // Joiner side (the owner, when there is one).
  bool finished() const noexcept {
    // acquire: pairs with done()'s release, so the joiner sees the tasks' effects.
    const std::int64_t a = static_cast<std::int64_t>(state_.load(std::memory_order_acquire)) >> 2;
    return a + local_pending() == 0;
  }

  // Joiner side, while armed: true once a notifier took kWaiting (the count reached 0;
  // it may have risen again since, if run() is called concurrently with the wait). The
  // joiner then disarm()s and, if the group is not finished after all, arms again.
  bool notified() const noexcept {
    // acquire: pairs with the notifier's CAS (release), as in finished().
    return (state_.load(std::memory_order_acquire) & kWaiting) == 0;
  }

  // Joiner side. Announces `w` as the sleeper; returns false if nothing is pending (then
  // nothing is armed).
  bool arm(Waiter* w) noexcept {
    VITTE_ASSERT(!armed_, "arm() twice without disarm()");
    waiter_.store(w, std::memory_order_relaxed);  // published by the CAS below
    const std::int64_t l = local_pending();
    std::uint64_t s = state_.load(std::memory_order_acquire);
    for (;;) {
      VITTE_ASSERT((s & (kWaiting | kNotifying)) == 0, "I6: arm() while armed or notifying");
      if ((static_cast<std::int64_t>(s) >> 2) + l == 0) return false;
      const std::uint64_t folded = (s + static_cast<std::uint64_t>(l) * kOne) | kWaiting;
      // release: publishes waiter_ to the completer's acq_rel fetch_sub.
      // acquire (on failure too): we re-read the count as the completers left it.
      // A's bits are added with wrap-around (L may be negative relative to A).
      if (state_.compare_exchange_weak(s, folded, std::memory_order_acq_rel, std::memory_order_acquire)) {
        local_spawned_ = local_done_ = 0;  // I2: L now lives in A
        armed_ = true;
        return true;
      }
    }
  }

  // Joiner side, after arm() returned true: ends the arming. If a notifier was chosen,
  // waits until it is done with this object (I4); if none was (the count never reached
  // zero), clears kWaiting so that none will be (I6). Afterwards the joiner may leave, or
  // check finished() and arm again.
  void disarm() noexcept {
    // acquire: pairs with the notifier's release clearing kNotifying, and with the
    // completers' CAS releases.
    std::uint64_t s = state_.load(std::memory_order_acquire);
    for (unsigned spins = 0;;) {
      if (s & kNotifying) {  // the notifier is between its CAS and its last store
        if (++spins < 64) cpu_relax(); else yield_thread();
        s = state_.load(std::memory_order_acquire);
        continue;
      }
      if ((s & kWaiting) == 0) break;
      VITTE_ASSERT((static_cast<std::int64_t>(s) >> 2) >= 1, "I2: waiting with nothing pending");
      // acq_rel: as above; a completer that reads the word after this sees no waiter.
      if (state_.compare_exchange_weak(s, s & ~kWaiting, std::memory_order_acq_rel, std::memory_order_acquire))
        break;
    }
    armed_ = false;
  }

  // A task of this counter threw `e`. Returns whether it counts as failed or cancelled.
  RunEnd record_exception(std::exception_ptr e) noexcept {
    if (is_cancellation(e)) [[unlikely]] {
      (void)put_slot(kCancelSlot, e);  // the first is kept; the rest are counted by their workers
      return RunEnd::Cancelled;
    }
    // relaxed: a statistic, read by the joiner after completion.
    if (!put_slot(kErrorSlot, e)) extra_errors_.fetch_add(1, std::memory_order_relaxed);
    // relaxed: a hint read by tasks that have not started yet (they are skipped).
    if (joins_ == Joins::Group) cancelled_.store(true, std::memory_order_relaxed);
    return RunEnd::Failed;
  }

  void cancel() noexcept { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const noexcept { return cancelled_.load(std::memory_order_relaxed); }

  // Joiner side, after finished(): hands over the first error, else (with
  // `with_cancellations`, always for Joins::Value) the first cancellation, else null, and
  // resets the error state so the counter can be reused.
  std::exception_ptr take_error(std::uint64_t* others = nullptr, bool with_cancellations = false) noexcept {
    // acquire: as take_slot()'s. The common case: nothing was thrown, one load.
    if (slot_state_.load(std::memory_order_acquire) == 0) [[likely]] {
      cancelled_.store(false, std::memory_order_relaxed);
      return nullptr;
    }
    std::exception_ptr e = take_slot(kErrorSlot);
    if (e && others) *others = extra_errors_.exchange(0, std::memory_order_relaxed);
    std::exception_ptr c = take_slot(kCancelSlot);
    if (!e && (with_cancellations || joins_ == Joins::Value)) e = std::move(c);
    cancelled_.store(false, std::memory_order_relaxed);
    return e;
  }

 private:
  // The exception slots (X1-X2): `w` is a slot's bit offset in slot_state_.
  static constexpr unsigned kErrorSlot = 0, kCancelSlot = 2;
  static constexpr unsigned kEmpty = 0, kWritingSlot = 1, kFull = 2;
  // True when `e` was kept (the slot was empty); false: another one is already there.
  bool put_slot(unsigned w, std::exception_ptr& e) noexcept {
    // relaxed: only a first guess for the CAS.
    unsigned char s = slot_state_.load(std::memory_order_relaxed);
    do {
      if (((s >> w) & 3u) != kEmpty) return false;
      // acquire: pairs with take_slot()'s release (X2). relaxed on failure: we look again.
    } while (!slot_state_.compare_exchange_weak(s, static_cast<unsigned char>(s | (kWritingSlot << w)),
                                                std::memory_order_acquire, std::memory_order_relaxed));
    slot_value_[w / 2] = std::move(e);
    // release: publishes the value to take_slot()'s acquire (X1). Writing + 1 = Full.
    slot_state_.fetch_add(static_cast<unsigned char>(1u << w), std::memory_order_release);
    return true;
  }
  // Joiner side: the kept exception (or null), leaving the slot empty.
  std::exception_ptr take_slot(unsigned w) noexcept {
    // acquire: pairs with put_slot()'s release.
    if (((slot_state_.load(std::memory_order_acquire) >> w) & 3u) != kFull) return nullptr;
    std::exception_ptr e = std::move(slot_value_[w / 2]);
    slot_value_[w / 2] = nullptr;
    // release: pairs with the next put_slot()'s acquiring CAS (X2).
    slot_state_.fetch_and(static_cast<unsigned char>(~(3u << w)), std::memory_order_release);
    return e;
  }

  std::int64_t local_pending() const noexcept {
    return static_cast<std::int64_t>(local_spawned_ - local_done_);
  }

  std::atomic<std::uint64_t> state_{0};
  std::atomic<Waiter*> waiter_{nullptr};
  std::exception_ptr slot_value_[2];  // the first error, the first cancellation (X1)
  // The owner's ledger (I5).
  const WorkerLocal* const owner_;
  WaitCounter* chain_ = nullptr;  // I7
  std::uint64_t local_spawned_ = 0;
  std::uint64_t local_done_ = 0;
  // The small fields share one word.
  std::atomic<std::uint32_t> extra_errors_{0};  // errors after the first (a statistic: wraps at 2^32)
  std::atomic<unsigned char> slot_state_{0};    // X1: two bits per slot
  std::atomic<bool> cancelled_{false};
  bool armed_ = false;
  const Joins joins_;
};

}  // namespace vitte::detail

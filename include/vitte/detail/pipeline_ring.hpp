// The two concurrent structures of run_pipeline (pipeline.hpp): the gate of a serial stage
// and the source's token pool. No mutex, no allocation per item.
//
// Terms. A pipeline holds `cap` (max_in_flight) tokens; a token carries one item from the
// source to the sink and is then free again. An item's `id` at a serial stage is its
// sequence number (SerialInOrder: the order the source made it) or the arrival ticket the
// gate gave it (SerialOutOfOrder). Whoever "holds" a stage for id may call the stage's
// function on that item; nobody else calls it meanwhile.
//
// SerialGate invariants:
//   G1  next_ is the id that may hold the stage next. Only the holder of id changes it,
//       once, to id + 1 (pass), after the stage's call on id returned. So ids hold the
//       stage one at a time, in id order, and each call happens-before the next.
//   G2  slot (id % cap) holds 2*id+2 while item id waits (parked: it arrived before id-1
//       passed) with its token in `token`; otherwise 0 or the stale value of an id that
//       waits no more. Ids id and id+cap never wait at once: an item waits only while
//       every smaller id is still short of this stage, and the cap tokens bound the items
//       between source and sink (for an in-order stage: id+cap cannot exist before item
//       id passed it, its token being needed by some smaller id; for tickets: id..id+cap
//       waiting would be cap+1 items at the stage).
//   G3  A parked item is claimed exactly once: the arriver stores its slot then loads
//       next_; pass() stores next_ then loads the slot, all four seq_cst (a Dekker pair),
//       so at least one of them sees the other's store, and the CAS 2*id+2 -> 0 on the slot
//       lets only one of them win. The winner holds the stage for id.
//
// TokenPool invariants:
//   P1  free_ counts the free tokens. Free tokens are in own_ (a private list) or on
//       returned_ (a stack any thread pushes onto; only the lock holder empties it, all at
//       once with exchange: no ABA, as nobody else pops). give() pushes before it counts,
//       so a lock holder that reads a count also finds the token.
//   P2  lock_ is held by at most one thread, the only one that calls the source, takes a
//       token (decrements free_), or touches own_ and the source's own state.
//   P3  No free token is forgotten: a thread that gives a token back then tries the lock;
//       if the lock is held, the holder sees the count after it lets go (unlock() reports
//       it). The giver's count and lock attempt and the holder's unlock and count load are
//       all seq_cst (a Dekker pair), so one of them sees the other.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "vitte/detail/assert.hpp"

namespace vitte::detail {

struct alignas(kCacheLine) GateSlot {
  std::atomic<std::uint64_t> state{0};  // G2: 2*id+2 while item id waits here
  void* token = nullptr;                // its token, published by the store of `state`
};

class SerialGate {
 public:
  void init(std::size_t cap) {
    cap_ = cap;
    slots_ = std::make_unique<GateSlot[]>(cap);
  }

  // A SerialOutOfOrder stage's id for an arriving item. relaxed: the ticket only names a
  // slot and a turn; the turns themselves are ordered by next_ (G1).
  std::uint64_t ticket() noexcept { return tickets_.fetch_add(1, std::memory_order_relaxed); }

  // Item `id` (in token `tok`) arrives. True: the caller holds the stage for it now. False:
  // it is parked, and the holder of id - 1 takes it when it passes (G3).
  bool arrive(std::uint64_t id, void* tok) noexcept {
    // acquire: pairs with pass()'s store of next_ (seq_cst, so release), making the
    // previous holder's call happen-before ours. The fast path: nobody can claim id, as it
    // is in no slot.
    if (next_.load(std::memory_order_acquire) == id) return true;
    GateSlot& s = slots_[id % cap_];
    [[maybe_unused]] const std::uint64_t old = s.state.load(std::memory_order_relaxed);
    VITTE_ASSERT(old == 0 || (old - 2) / 2 + cap_ <= id, "G2: an earlier item still waits in this slot");
    s.token = tok;
    // seq_cst (G3): the store of the slot comes before the load of next_ below in the
    // single total order, against pass()'s store of next_ and load of the slot. It also
    // releases `token` to the claimer's CAS (acquire).
    s.state.store(2 * id + 2, std::memory_order_seq_cst);
    if (next_.load(std::memory_order_seq_cst) != id) return false;
    std::uint64_t want = 2 * id + 2;
    // acq_rel: the CAS that decides between us and pass() (G3); acquire also orders the
    // previous holder's call before ours (it is after its store of next_).
    return s.state.compare_exchange_strong(want, 0, std::memory_order_acq_rel, std::memory_order_relaxed);
  }

  // The holder of `id` is done with the stage and hands it on (G1). Returns the token of
  // id + 1 if that item was parked: the caller now holds the stage for id + 1. Else null.
  void* pass(std::uint64_t id) noexcept {
    VITTE_ASSERT(next_.load(std::memory_order_relaxed) == id, "G1: pass() by an item that does not hold the stage");
    // seq_cst (G3): against the arriver's store of the slot and load of next_. Also a
    // release for the arriver's fast-path acquire load.
    next_.store(id + 1, std::memory_order_seq_cst);
    GateSlot& s = slots_[(id + 1) % cap_];
    std::uint64_t want = 2 * (id + 1) + 2;
    if (s.state.load(std::memory_order_seq_cst) != want) return nullptr;
    // acq_rel: decides between us and the arriver (G3); acquire pairs with the arriver's
    // store of the slot, so `token` below is the one it wrote.
    if (!s.state.compare_exchange_strong(want, 0, std::memory_order_acq_rel, std::memory_order_relaxed)) return nullptr;
    return s.token;
  }

 private:
  alignas(kCacheLine) std::atomic<std::uint64_t> next_{0};
  alignas(kCacheLine) std::atomic<std::uint64_t> tickets_{0};
  std::size_t cap_ = 0;
  std::unique_ptr<GateSlot[]> slots_;
};

struct PoolNode {
  PoolNode* next_free = nullptr;
};

class TokenPool {
 public:
  static constexpr int kLockSpins = 32;

  // All `n` tokens start free, the lock free.
  void init(PoolNode* const* nodes, std::size_t n) noexcept {
    for (std::size_t i = n; i-- > 0;) {
      nodes[i]->next_free = own_;
      own_ = nodes[i];
    }
    // relaxed: set before any task of the pipeline exists (their spawn publishes it).
    free_.store(n, std::memory_order_relaxed);
  }

  // Takes the lock if a token is free and nobody holds it (P2). False: none is free, or
  // the holder will see the free ones when it lets go (P3).
  bool try_lock() noexcept {
    // seq_cst (P3): after give()'s count, against unlock()'s store and load.
    if (free_.load(std::memory_order_seq_cst) == 0) return false;
    // relaxed: a first look that spares the exchange while the lock is held.
    if (lock_.load(std::memory_order_relaxed)) return false;
    // seq_cst (P3), so also acquire: pairs with unlock()'s store, handing over the
    // source's state and own_.
    return !lock_.exchange(true, std::memory_order_seq_cst);
  }
  // try_lock(), waiting a little (about one short source call) while another thread holds
  // the lock and tokens are free: cheaper than ending the walk and leaving the next item to
  // the queued task another worker would have to steal. Gives up at once when none is free.
  bool try_lock_briefly() noexcept {
    for (int spin = 0;; ++spin) {
      if (try_lock()) return true;
      // relaxed: a hint; try_lock() reads the count again, seq_cst.
      if (spin == kLockSpins || free_.load(std::memory_order_relaxed) == 0) return false;
      cpu_relax();
    }
  }
  // Holder only: lets go. True: tokens are free now, someone has to try again (P3).
  bool unlock() noexcept {
    VITTE_ASSERT(lock_.load(std::memory_order_relaxed), "P2: unlock() without the lock");
    // seq_cst (P3): the store (a release for the next holder's exchange) comes before the
    // load of the count in the single total order.
    lock_.store(false, std::memory_order_seq_cst);
    return free_.load(std::memory_order_seq_cst) > 0;
  }
  // Any thread: whether a token is free, seq_cst (a Dekker pair with give()'s count).
  bool any_free_now() const noexcept { return free_.load(std::memory_order_seq_cst) > 0; }
  // Holder only: whether a token is free. acquire: pairs with give()'s count (P1).
  bool any_free() const noexcept { return free_.load(std::memory_order_acquire) > 0; }
  // Holder only, with any_free(): a free token (P1).
  PoolNode* take() noexcept {
    if (own_ == nullptr) {
      // acquire: pairs with give()'s release push, so the token's last use (its item's
      // destruction) happens-before its next.
      own_ = returned_.exchange(nullptr, std::memory_order_acquire);
    }
    PoolNode* t = own_;
    VITTE_ASSERT(t != nullptr, "P1: a token is counted free but is in no list");
    own_ = t->next_free;
    // relaxed: only the holder decrements (P2), and the token was found above.
    [[maybe_unused]] const std::size_t before = free_.fetch_sub(1, std::memory_order_relaxed);
    VITTE_ASSERT(before >= 1, "P1: took a token while none was counted free");
    return t;
  }
  // Holder only: puts back a token it took without using it.
  void untake(PoolNode* t) noexcept {
    t->next_free = own_;
    own_ = t;
    // relaxed: the holder's own; unlock()'s seq_cst store orders it for the next holder.
    free_.fetch_add(1, std::memory_order_relaxed);
  }
  // Any thread: `t` is free again. The caller then tries the lock (P3).
  void give(PoolNode* t) noexcept {
    PoolNode* head = returned_.load(std::memory_order_relaxed);
    do {
      t->next_free = head;
      // release: publishes t's last use to take()'s acquire exchange.
    } while (!returned_.compare_exchange_weak(head, t, std::memory_order_release, std::memory_order_relaxed));
    // seq_cst (P3); as a release it orders the push before the count (P1).
    free_.fetch_add(1, std::memory_order_seq_cst);
  }

 private:
  alignas(kCacheLine) std::atomic<std::size_t> free_{0};
  alignas(kCacheLine) std::atomic<bool> lock_{false};
  alignas(kCacheLine) std::atomic<PoolNode*> returned_{nullptr};
  PoolNode* own_ = nullptr;  // the holder's (P2)
};

}  // namespace vitte::detail

// WsDeque: the per-worker work-stealing deque.
//
// Design: Chase & Lev, "Dynamic Circular Work-Stealing Deque" (SPAA 2005), with the
// C11 memory orders of Lê, Pop, Cohen & Zappa Nardelli, "Correct and Efficient
// Work-Stealing for Weak Memory Models" (PPoPP 2013).
//
// Roles: one owner thread calls push() and pop() at the bottom; any thread calls
// steal() at the top.
// Invariants:
//   D1  top_ only grows, and only by a successful CAS (a thief, or the owner taking the
//       last item); bottom_ is written by the owner alone.
//   D2  items live in [top_, bottom_); an item is returned by exactly one pop() or
//       steal(): the CAS on top_ decides the race for the last item.
//   D3  a ring is never freed while the deque lives: a thief may still read a ring the
//       owner has replaced by a larger one (retired rings are kept until destruction,
//       so memory is at most twice the largest ring ever needed).
// Departures from the paper, for ThreadSanitizer, which does not model standalone
// fences: push() publishes with a release store of bottom_ instead of a release fence
// plus a relaxed store; pop() and steal() use seq_cst operations on top_/bottom_
// instead of seq_cst fences between relaxed ones. On x86-64 this compiles to the same
// instructions (one XCHG in pop, plain loads in steal).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "vitte/detail/assert.hpp"

namespace vitte::detail {

template <class T>
class WsDeque {
  static_assert(std::is_pointer_v<T>, "WsDeque holds pointers");

  struct Ring {
    explicit Ring(std::int64_t cap) : mask(cap - 1), slots(new std::atomic<T>[cap]) {}
    std::int64_t capacity() const noexcept { return mask + 1; }
    // Slots are atomics accessed relaxed: a thief may read a slot the owner is about to
    // overwrite (it then loses the CAS and discards the value), which must not be a race.
    void put(std::int64_t i, T x) noexcept { slots[i & mask].store(x, std::memory_order_relaxed); }
    T get(std::int64_t i) const noexcept { return slots[i & mask].load(std::memory_order_relaxed); }
    std::int64_t mask;
    std::unique_ptr<std::atomic<T>[]> slots;
  };

 public:
  explicit WsDeque(std::int64_t capacity = 1024) {
    VITTE_ASSERT(capacity > 0 && (capacity & (capacity - 1)) == 0, "capacity is a power of two");
    rings_.push_back(std::make_unique<Ring>(capacity));
    ring_.store(rings_.back().get(), std::memory_order_relaxed);
  }
  WsDeque(const WsDeque&) = delete;
  WsDeque& operator=(const WsDeque&) = delete;

  // Owner only.
  [[gnu::always_inline]] void push(T x) {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);  // owner's own value
    // acquire: pairs with a thief's CAS on top_, so the slots it vacated are free to reuse.
    const std::int64_t t = top_.load(std::memory_order_acquire);
    Ring* r = ring_.load(std::memory_order_relaxed);  // only the owner replaces the ring
    if (b - t > r->capacity() - 1) r = grow(r, t, b);
    r->put(b, x);
    // release: publishes the slot and the task it points to; pairs with the seq_cst
    // (hence acquire) load of bottom_ in steal().
    bottom_.store(b + 1, std::memory_order_release);
  }

  // Owner only. Returns nullptr when empty.
  T pop() noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    Ring* r = ring_.load(std::memory_order_relaxed);
    // seq_cst store then seq_cst load: the owner's half of the Dekker handshake with
    // steal()'s load of top_ then bottom_; either the thief sees the reserved slot gone
    // or we see its claim on top_.
    bottom_.store(b, std::memory_order_seq_cst);
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    if (t > b) {  // empty: undo the reservation
      bottom_.store(b + 1, std::memory_order_relaxed);
      return nullptr;
    }
    T x = r->get(b);
    if (t == b) {  // the last item: race the thieves for it through top_ (D2)
      // seq_cst on success: totally ordered with the thieves' CASes; relaxed on failure.
      if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed))
        x = nullptr;
      bottom_.store(b + 1, std::memory_order_relaxed);
    }
    return x;
  }

  // Any thread. Returns nullptr when empty or when another thread won the race.
  T steal() noexcept {
    // seq_cst: the thief's half of the handshake described in pop().
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    // seq_cst (includes acquire): pairs with push()'s release store of bottom_.
    const std::int64_t b = bottom_.load(std::memory_order_seq_cst);
    if (t >= b) return nullptr;
    // acquire: pairs with grow()'s release store, so a new ring's slots are visible.
    Ring* r = ring_.load(std::memory_order_acquire);
    T x = r->get(t);
    // seq_cst: decides the race for the item at t with other thieves and pop() (D2).
    if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                      std::memory_order_relaxed))
      return nullptr;
    return x;
  }

  // Any thread; a snapshot that may be stale by the time it is used.
  bool empty() const noexcept {
    // seq_cst: used by a worker about to sleep as the second half of the
    // "announce sleep, then re-check" handshake with producers.
    const std::int64_t b = bottom_.load(std::memory_order_seq_cst);
    const std::int64_t t = top_.load(std::memory_order_seq_cst);
    return b <= t;
  }
  std::int64_t size_hint() const noexcept {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    const std::int64_t t = top_.load(std::memory_order_relaxed);
    return b > t ? b - t : 0;
  }

 private:
  Ring* grow(Ring* old, std::int64_t t, std::int64_t b) {
    auto bigger = std::make_unique<Ring>(old->capacity() * 2);
    for (std::int64_t i = t; i < b; ++i) bigger->put(i, old->get(i));
    Ring* r = bigger.get();
    rings_.push_back(std::move(bigger));  // the old ring stays alive (D3)
    // release: pairs with steal()'s acquire load of ring_.
    ring_.store(r, std::memory_order_release);
    return r;
  }

  alignas(kCacheLine) std::atomic<std::int64_t> top_{0};
  alignas(kCacheLine) std::atomic<std::int64_t> bottom_{0};
  std::atomic<Ring*> ring_{nullptr};
  std::vector<std::unique_ptr<Ring>> rings_;  // owner only: current and retired rings
};

}  // namespace vitte::detail

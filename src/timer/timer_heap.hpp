// TimerHeap: an indexed binary min-heap of TimerEntry*, keyed by (deadline, seq).
//
// Not thread-safe: its TimerQueue holds the lock around every call.
// Invariants (checked by check() in debug and sanitizer builds):
//   H1  heap order: no entry is due before its parent (key = (deadline, seq));
//   H2  index: entries_[i]->slot == i for every i, and an entry out of the heap has
//       slot == TimerEntry::kNotQueued (this is what makes removal O(log n) without a
//       search, and what lets cancel_timer() tell "pending" from "already fired");
//   H3  memory follows the population: when the heap shrinks to a quarter of its
//       capacity (above kKeepCapacity) the vector is halved, and an empty heap keeps at
//       most kKeepCapacity slots, so a burst of a million timers, cancelled, gives its
//       8 MB back instead of keeping them for ever. Removal is never lazy (no tombstones):
//       a cancelled entry leaves the heap at once. Storage of kKeepCapacity slots and more
//       is mapped from the kernel (MappedStorage), not taken from malloc: a vector
//       reallocated while a burst's timers are freed would otherwise land at the top of
//       malloc's heap, above their freed blocks, and keep malloc from trimming them.
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <new>
#include <utility>
#include <vector>

#include "vitte/detail/assert.hpp"
#include "vitte/detail/timer_entry.hpp"

namespace vitte::detail {

// Capacity kept however small the heap gets (32 KiB of pointers).
inline constexpr std::size_t kTimerHeapKeep = 4096;

// H3's allocator: blocks of kTimerHeapKeep pointers or more come straight from mmap and go
// back with munmap; smaller ones from operator new.
template <class T>
struct MappedStorage {
  using value_type = T;
  MappedStorage() noexcept = default;
  template <class U>
  MappedStorage(const MappedStorage<U>&) noexcept {}
  static bool mapped(std::size_t n) noexcept { return n * sizeof(T) >= kTimerHeapKeep * sizeof(void*); }
  T* allocate(std::size_t n) {
    if (!mapped(n)) return static_cast<T*>(::operator new(n * sizeof(T)));
    void* p = mmap(nullptr, n * sizeof(T), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (mapped(n))
      munmap(p, n * sizeof(T));
    else
      ::operator delete(p);
  }
  template <class U>
  bool operator==(const MappedStorage<U>&) const noexcept { return true; }
};

class TimerHeap {
 public:
  using Storage = std::vector<TimerEntry*, MappedStorage<TimerEntry*>>;
  static constexpr std::size_t kKeepCapacity = kTimerHeapKeep;

  bool empty() const noexcept { return entries_.empty(); }
  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t capacity() const noexcept { return entries_.capacity(); }
  // The entry due first. Precondition: !empty().
  TimerEntry* top() const noexcept { return entries_.front(); }

  // Adds `e` (slot must be kNotQueued). May throw std::bad_alloc; then nothing changed.
  void push(TimerEntry* e) {
    VITTE_ASSERT(e->slot == TimerEntry::kNotQueued, "H2: an entry pushed twice");
    entries_.push_back(e);
    e->slot = entries_.size() - 1;
    sift_up(e->slot);
  }

  // Removes the entry at `e->slot` (which must be in this heap); O(log n).
  void remove(TimerEntry* e) noexcept {
    const std::size_t i = e->slot;
    VITTE_ASSERT(i < entries_.size() && entries_[i] == e, "H2: removing an entry that is not here");
    e->slot = TimerEntry::kNotQueued;
    TimerEntry* last = entries_.back();
    entries_.pop_back();
    if (last != e) {
      place(i, last);
      // The moved entry may be due before or after its new parent.
      if (i > 0 && before(last, entries_[(i - 1) / 2]))
        sift_up(i);
      else
        sift_down(i);
    }
    give_back_memory();
  }

  TimerEntry* pop() noexcept {
    TimerEntry* e = top();
    remove(e);
    return e;
  }

  // Takes every entry out (each with slot = kNotQueued) and returns them, leaving the
  // heap empty with no memory. No allocation: the vector itself changes hands.
  Storage take_all() noexcept {
    Storage all;
    all.swap(entries_);
    for (TimerEntry* e : all) e->slot = TimerEntry::kNotQueued;
    return all;
  }

  // H1 and H2 over the whole heap; O(n), for tests and checked builds.
  bool check() const noexcept {
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i]->slot != i) return false;
      if (i > 0 && before(entries_[i], entries_[(i - 1) / 2])) return false;
    }
    return true;
  }

  // (deadline, seq) order: T3 of timer_entry.hpp.
  static bool before(const TimerEntry* a, const TimerEntry* b) noexcept {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
  }

 private:
  void place(std::size_t i, TimerEntry* e) noexcept {
    entries_[i] = e;
    e->slot = i;
  }

  void sift_up(std::size_t i) noexcept {
    TimerEntry* e = entries_[i];
    while (i > 0) {
      const std::size_t parent = (i - 1) / 2;
      if (!before(e, entries_[parent])) break;
      place(i, entries_[parent]);
      i = parent;
    }
    place(i, e);
  }

  void sift_down(std::size_t i) noexcept {
    TimerEntry* e = entries_[i];
    const std::size_t n = entries_.size();
    for (;;) {
      std::size_t child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && before(entries_[child + 1], entries_[child])) ++child;
      if (!before(entries_[child], e)) break;
      place(i, entries_[child]);
      i = child;
    }
    place(i, e);
  }

  // H3. Shrinking copies at most a quarter of the capacity and happens only after that
  // many removals, so removal stays O(log n) amortised.
  void give_back_memory() noexcept {
    const std::size_t cap = entries_.capacity();
    if (cap <= kKeepCapacity || entries_.size() * 4 > cap) return;
    try {
      Storage smaller;
      smaller.reserve(std::max(cap / 2, kKeepCapacity));
      smaller.assign(entries_.begin(), entries_.end());
      entries_.swap(smaller);
    } catch (...) {
      // No memory for the smaller copy: keep the larger vector (H3 waits for later).
    }
  }

  Storage entries_;
};

}  // namespace vitte::detail

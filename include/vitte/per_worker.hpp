// per_worker<T>: one T per worker of a scheduler, made on first use by that worker, in
// memory of the worker's NUMA node (memory.hpp; plain memory when the scheduler runs on a
// topology read from another machine's file). For per-worker accumulators, scratch
// buffers and caches, without locks and without false sharing (each instance starts on
// its own cache line).
//
//   vitte::per_worker<std::vector<Diag>> diags(sched);
//   vitte::parallel_for(sched, 0, n, 16, [&](std::size_t i) { check(i, diags.local()); });
//   auto all = diags.combine([](auto a, auto b) { a.insert(a.end(), b.begin(), b.end()); return a; });
//
// local(): the calling worker's instance, made (with `make`, default T()) the first time
// that worker asks. Only from a worker of the scheduler (Scheduler::current_worker() is the
// index, 0 to num_workers() - 1); UsageError from any other thread. A worker's instance is
// touched only by that worker while tasks run; for_each() and combine() read all of them
// and must run when no task uses the object any more (after the loop that filled it).
// combine(op) folds the instances in worker-index order (not in the order they were made),
// so the result depends on which worker did what, not on timing: for a schedule-independent
// result, reduce with parallel_reduce instead. Only local() needs the scheduler: the
// object may outlive it (for_each, combine, clear and the destructor still work).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "vitte/detail/assert.hpp"
#include "vitte/error.hpp"
#include "vitte/memory.hpp"
#include "vitte/plan.hpp"
#include "vitte/scheduler.hpp"

namespace vitte {

template <class T>
class per_worker {
 public:
  explicit per_worker(Scheduler& sched, std::function<T()> make = [] { return T(); })
      : sched_(&sched),
        node_local_(sched.topology().is_this_machine()),
        make_(std::move(make)),
        slots_(sched.num_workers()) {}
  per_worker(const per_worker&) = delete;
  per_worker& operator=(const per_worker&) = delete;
  ~per_worker() { clear(); }

  // The calling worker's instance (see the file comment).
  T& local() {
    const int w = Scheduler::current_worker();
    if (Scheduler::current() != sched_ || w < 0)
      throw UsageError("per_worker::local() from a thread that is not a worker of its scheduler");
    Slot& s = slots_[static_cast<std::size_t>(w)];
    if (s.value == nullptr) [[unlikely]] {
      const unsigned node = sched_->plan().workers[static_cast<std::size_t>(w)].node;
      void* p = allocate(node);
      try {
        s.value = ::new (p) T(make_());
      } catch (...) {
        deallocate(p, node);
        throw;
      }
      s.node = node;
    }
    return *s.value;
  }

  // Instances made so far.
  std::size_t size() const noexcept {
    std::size_t n = 0;
    for (const Slot& s : slots_) n += s.value != nullptr;
    return n;
  }

  // fn(T&) for every instance made, in worker-index order.
  template <class F>
  void for_each(F&& fn) {
    for (Slot& s : slots_)
      if (s.value != nullptr) fn(*s.value);
  }

  // The instances folded with op(T, const T&) in worker-index order, starting from a copy
  // of the first; T() when none was made (UsageError then for a T without a default).
  template <class Op>
  T combine(Op&& op) const {
    std::optional<T> acc;
    for (const Slot& s : slots_) {
      if (s.value == nullptr) continue;
      if (acc)
        acc.emplace(op(std::move(*acc), *s.value));
      else
        acc.emplace(*s.value);
    }
    if (acc) return std::move(*acc);
    if constexpr (std::is_default_constructible_v<T>)
      return T();
    else
      throw UsageError("per_worker::combine(): no instance was made, and T has no default value");
  }

  // Destroys every instance (the next local() makes a new one).
  void clear() noexcept {
    for (Slot& s : slots_) {
      if (s.value == nullptr) continue;
      s.value->~T();
      deallocate(s.value, s.node);
      s.value = nullptr;
    }
  }

 private:
  static constexpr std::size_t kLine = detail::kCacheLine;
  static constexpr std::size_t kAlign = alignof(T) > kLine ? alignof(T) : kLine;
  // Node-local when the scheduler's topology is this machine's; a topology read from
  // another machine's file names nodes this one may not have: plain memory then.
  // Decided once, at construction: the instances (and clear(), and the destructor) do not
  // need the scheduler, which may be gone by then.
  void* allocate(unsigned node) const {
    if (node_local_) return allocate_on_node(sizeof(T), node, kAlign);
    return ::operator new(sizeof(T), std::align_val_t{kAlign});
  }
  void deallocate(void* p, unsigned node) const noexcept {
    if (node_local_)
      deallocate_on_node(p, sizeof(T), node, kAlign);
    else
      ::operator delete(p, std::align_val_t{kAlign});
  }
  // One per worker, on its own cache line: a worker's first local() writes only its slot.
  struct alignas(detail::kCacheLine) Slot {
    T* value = nullptr;
    unsigned node = 0;
  };
  Scheduler* sched_;
  bool node_local_;
  std::function<T()> make_;
  std::vector<Slot> slots_;
};

}  // namespace vitte

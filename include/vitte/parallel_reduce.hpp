// parallel_reduce and parallel_transform_reduce: a reduction over [begin, end) on vitte's
// own workers, deterministic by construction.
//
//   double sum = vitte::parallel_transform_reduce(sched, 0, n, 0, 0.0,
//       [&](std::size_t i) { return x[i] * y[i]; }, std::plus<>{});
//
// Determinism: the range is split into halves until a piece has at most `grain`
// iterations; the split points depend on begin, end and grain only, never on the number
// of workers or on who stole what. Each leaf is reduced left to right from `identity`,
// and the partial results are combined in the tree's fixed order (left, then right). So a
// floating-point sum, or a list of diagnostics appended in order, comes out bit-identical
// on 1 and 64 workers and on every run. `combine` must be associative for the result to
// equal a serial fold; it need not be commutative (the order is always left to right).
// grain 0 picks one independent of the worker count: ceil(n / 512), so at most 512 leaves
// (detail::auto_grain, parallel_for.hpp).
//
// The cost over a non-deterministic reduction is nil: every split level keeps its right
// half's result in the splitting call's frame (no allocation for results of up to 256
// bytes; one per split level above that, so that a large T, a histogram say, never fills
// a worker's stack) and combines after the join, as any tree reduction does; nothing waits
// for a particular order. body and combine still take and return T by value: a T of tens
// of KiB costs that much stack in each of their calls, and waits nest calls on a worker's
// stack; keep a large result behind a pointer (a std::vector) or raise Options::stack_size.
//
// Errors, cancellation and options: as parallel_for (parallel_for.hpp): the first exception
// (from body, transform or combine) stops the reduction and is rethrown; `opts` places
// every task of it. Callable from any thread, a worker or a coroutine's worker included.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "vitte/detail/assert.hpp"
#include "vitte/parallel_for.hpp"

namespace vitte {

namespace detail {

inline constexpr int kMaxSplitDepth = 64;  // halving a std::size_t range ends within 64 levels

// Reduces [b, e): forks every right half of the left spine into `g`, reduces the leftmost
// leaf here, waits, then folds the right halves back in from the deepest up, which is the
// halving tree's own left-to-right order.
template <class T, class Body, class Combine>
T reduce_level(TaskGroup& g, std::size_t b, std::size_t e, std::size_t grain, const T& identity, const Body& body,
               const Combine& combine, LoopState& st, const LoopOptions* lo, std::optional<T>* right, int cap,
               std::optional<T>& acc);

// The left spine's length below [b, e): how many right halves reduce_level forks.
inline int split_depth(std::size_t n, std::size_t grain) noexcept {
  int d = 0;
  for (; n > grain; n /= 2) ++d;
  return d;
}

// Results of at most this many bytes keep a level's right halves in its frame; larger ones
// take one allocation per level (a 128 KiB histogram times 16 slots would be 2 MiB of
// stack per level, and waits nest levels: a review's SIGSEGV).
inline constexpr std::size_t kFrameSlotBytes = 256;

// A level with room for its right halves' results: in the frame, a small array for the
// many short spines near the leaves (its slots are constructed on every call: 64 of them
// were most of a fine-grained reduction's time, measured with perf annotate), the full one
// at the top; on the heap, sized by the depth, for large results.
template <class T, class Body, class Combine>
T reduce_level_sized(TaskGroup& g, std::size_t b, std::size_t e, std::size_t grain, const T& identity,
                     const Body& body, const Combine& combine, LoopState& st, const LoopOptions* lo) {
  const int d = split_depth(e - b, grain);
  if constexpr (sizeof(std::optional<T>) > kFrameSlotBytes) {
    // The level's own accumulator too: it lives across the wait, while this worker runs
    // other levels on the same stack.
    const std::unique_ptr<std::optional<T>[]> right(new std::optional<T>[static_cast<std::size_t>(d) + 1]);
    return reduce_level(g, b, e, grain, identity, body, combine, st, lo, right.get(), d, right[d]);
  } else {
    std::optional<T> acc;
    if (d <= 4) {
      std::optional<T> right[4];
      return reduce_level(g, b, e, grain, identity, body, combine, st, lo, right, 4, acc);
    }
    if (d <= 16) {
      std::optional<T> right[16];
      return reduce_level(g, b, e, grain, identity, body, combine, st, lo, right, 16, acc);
    }
    std::optional<T> right[kMaxSplitDepth];
    return reduce_level(g, b, e, grain, identity, body, combine, st, lo, right, kMaxSplitDepth, acc);
  }
}

template <class T, class Body, class Combine>
T reduce_split(std::size_t b, std::size_t e, std::size_t grain, const T& identity, const Body& body,
               const Combine& combine, LoopState& st, const LoopOptions* lo) {
  // relaxed: a hint (see LoopState).
  if (st.stop.load(std::memory_order_relaxed)) return identity;
  if (e - b <= grain) {  // a leaf: nothing to fork, no group
    try {
      return body(b, e, T(identity));
    } catch (...) {
      st.fail(std::current_exception());
      return identity;
    }
  }
  if (lo == nullptr) [[likely]] {
    TaskGroup g;
    return reduce_level_sized(g, b, e, grain, identity, body, combine, st, lo);
  }
  TaskGroup g(*lo->sched, lo->bound);
  return reduce_level_sized(g, b, e, grain, identity, body, combine, st, lo);
}

template <class T, class Body, class Combine>
T reduce_level(TaskGroup& g, std::size_t b, std::size_t e, std::size_t grain, const T& identity, const Body& body,
               const Combine& combine, LoopState& st, const LoopOptions* lo, std::optional<T>* right, int cap,
               std::optional<T>& acc) {
  int depth = 0;
  while (e - b > grain) {
    VITTE_ASSERT(depth < cap, "reduce_level: more right halves than split_depth() counted");
    const std::size_t mid = b + (e - b) / 2;
    std::optional<T>* slot = &right[depth++];
    g.run([=, &identity, &body, &combine, &st] {
      slot->emplace(reduce_split(mid, e, grain, identity, body, combine, st, lo));
    });
    e = mid;
  }
  try {
    acc.emplace(body(b, e, T(identity)));
  } catch (...) {
    st.fail(std::current_exception());
    g.cancel();
  }
  g.wait();  // the right halves never throw: their errors went to `st`
  if (st.stop.load(std::memory_order_relaxed) || !acc) return identity;  // the result is discarded
  try {
    for (int d = depth - 1; d >= 0; --d) {
      if (!right[d]) return identity;  // skipped: the group was cancelled, st says why
      acc.emplace(combine(std::move(*acc), std::move(*right[d])));
    }
  } catch (...) {
    st.fail(std::current_exception());
    return identity;
  }
  return std::move(*acc);
}

template <class T, class Body, class Combine>
T reduce_root(Scheduler& sched, std::size_t begin, std::size_t end, std::size_t grain, T identity, const Body& body,
              const Combine& combine, const TaskOptions& opts, const char* what) {
  if (begin >= end) {
    check_options_anyway(sched, opts, what);
    return identity;
  }
  if (grain == 0) grain = auto_grain(end - begin);
  LoopState st;
  std::optional<T> out;
  if (!opts.empty()) {
    const LoopOptions lo{&sched, share_options(core_of(sched), opts, what)};
    if (lo.bound) st.name = lo.bound->name;
    TaskGroup root(sched, lo.bound);
    root.run([&] { out.emplace(reduce_split(begin, end, grain, identity, body, combine, st, &lo)); });
    root.wait();
  } else if (Scheduler::current() == &sched) {
    out.emplace(reduce_split(begin, end, grain, identity, body, combine, st, nullptr));
  } else {
    TaskGroup root(sched);
    root.run([&] { out.emplace(reduce_split(begin, end, grain, identity, body, combine, st, nullptr)); });
    root.wait();
  }
  if (st.error()) std::rethrow_exception(st.error());
  return std::move(*out);
}

}  // namespace detail

// Reduces [begin, end): body(b, e, acc) folds the iterations [b, e) into acc and returns
// it; combine(left, right) joins two partial results. See the file comment for the split,
// the determinism and errors. T must be copy-constructible (identity seeds every leaf).
template <class T, class Body, class Combine>
T parallel_reduce(Scheduler& sched, std::size_t begin, std::size_t end, std::size_t grain, T identity,
                  const Body& body, const Combine& combine, const TaskOptions& opts = {}) {
  static_assert(std::is_copy_constructible_v<T>, "parallel_reduce: the identity is copied into every leaf");
  static_assert(std::is_convertible_v<std::invoke_result_t<const Body&, std::size_t, std::size_t, T>, T>,
                "parallel_reduce: body(b, e, acc) returns the folded accumulator");
  return detail::reduce_root(sched, begin, end, grain, std::move(identity), body, combine, opts,
                             "parallel_reduce(options)");
}

// combine(... combine(combine(identity, transform(begin)), transform(begin + 1)) ...),
// computed as a parallel_reduce over the same fixed tree.
template <class T, class Transform, class Combine>
T parallel_transform_reduce(Scheduler& sched, std::size_t begin, std::size_t end, std::size_t grain, T identity,
                            const Transform& transform, const Combine& combine, const TaskOptions& opts = {}) {
  auto body = [&transform, &combine](std::size_t b, std::size_t e, T acc) {
    for (std::size_t i = b; i < e; ++i) acc = combine(std::move(acc), transform(i));
    return acc;
  };
  return detail::reduce_root(sched, begin, end, grain, std::move(identity), body, combine, opts,
                             "parallel_transform_reduce(options)");
}

}  // namespace vitte

// parallel_inclusive_scan and parallel_exclusive_scan: prefix sums (or any associative
// op) of a random-access range on vitte's own workers, deterministic by construction.
//
//   vitte::parallel_inclusive_scan(sched, x.begin(), x.end(), out.begin(), std::plus<>{});
//   vitte::parallel_exclusive_scan(sched, x.begin(), x.end(), x.begin(), 0.0, std::plus<>{});
//
// out[i] = x[0] op x[1] op ... op x[i] (inclusive), init op x[0] op ... op x[i-1]
// (exclusive). out may be first itself (an in-place scan); otherwise [out, out + n) must
// not overlap [first, last).
//
// How: the range is cut into blocks; pass 1 folds each block (in parallel), then the
// calling piece folds the block sums left to right into each block's offset, and pass 2
// scans each block from its offset (in parallel). Reading the input twice and writing the
// output once costs 3n element transfers where a serial scan costs 2n, so on memory-bound
// data two workers gain at most 4/3, and only where one core alone cannot use the
// memory's bandwidth; more workers gain more, and an expensive op gains like any loop.
//
// Determinism: the blocks depend on n alone: blocks of max(16384, ceil(n / 512))
// elements, never on the worker count or on who stole what. Every out[i] is computed in
// one fixed grouping, ((((s0 op s1) op ...) op s(k-1)) op x[b]) op ... op x[i] with
// s the blocks' left folds and b the first element of i's block, so a floating-point
// prefix sum is bit-identical on 1 and 64 workers and on every run. That grouping differs
// from the serial left fold: op must be associative for the result to equal
// std::inclusive_scan's (a floating-point + is, up to rounding); it need not be
// commutative (the order of the operands is always the input's).
//
// Errors and cancellation: the first exception thrown by op (or by the element's copy or
// move) stops the scan, blocks not started are skipped, and it is rethrown; a
// vitte::Cancelled ends it the same way, counted as cancelled. [out, out + n) is then
// partly written. Options (task_options.hpp) place every task of the scan; UsageError for
// options that would not apply. Callable from any thread: a worker, another thread, a
// coroutine of `sched`; inside vitte::isolate its waits run only its own tasks.
#pragma once

#include <algorithm>
#include <cstddef>
#include <exception>
#include <iterator>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "vitte/parallel_for.hpp"

namespace vitte {

namespace detail {

inline constexpr std::size_t kScanMinBlock = 16384;

inline constexpr std::size_t scan_block(std::size_t n) noexcept {
  return std::max(kScanMinBlock, (n + kAutoLeaves - 1) / kAutoLeaves);
}

// The two passes and the serial fold between them. T: the accumulator's type (the value
// type for an inclusive scan, init's for an exclusive one); `init`: null for inclusive.
template <class In, class Out, class T, class Op>
void scan_root(Scheduler& sched, In first, In last, Out out, const T* init, const Op& op, const TaskOptions& opts,
               const char* what) {
  const auto n = static_cast<std::size_t>(last - first);
  if (n == 0) return;
  const std::size_t block = scan_block(n);
  const std::size_t nb = (n + block - 1) / block;
  using D = std::iter_difference_t<In>;
  using DO = std::iter_difference_t<Out>;
  // sums[k]: block k's left fold (pass 1); then block k's offset, what comes before it.
  std::vector<std::optional<T>> sums(nb);
  LoopState st;
  run_root(sched, st, opts, what, [&](const LoopOptions* lo) {
    // Pass 1. The last block's fold is not needed: nothing comes after it.
    parallel_for_split(0, nb - 1, 1,
                       [&](std::size_t k) {
                         const In b = first + static_cast<D>(k * block), e = b + static_cast<D>(block);
                         T acc(*b);
                         for (In i = b + 1; i != e; ++i) acc = op(std::move(acc), *i);
                         sums[k].emplace(std::move(acc));
                       },
                       st, lo);
    // relaxed: every piece of pass 1 has joined (the group waits order their writes).
    if (st.stop.load(std::memory_order_relaxed)) return;
    try {
      // Offsets: block 0's is init (exclusive) or nothing (inclusive); block k + 1's is
      // block k's offset op block k's fold.
      std::optional<T> carry;
      if (init != nullptr) carry.emplace(*init);
      for (std::size_t k = 0; k < nb; ++k) {
        std::optional<T> fold = std::move(sums[k]);
        sums[k] = std::move(carry);
        if (k + 1 == nb) break;
        if (sums[k])
          carry.emplace(op(*sums[k], std::move(*fold)));
        else
          carry = std::move(fold);
      }
    } catch (...) {
      st.fail(std::current_exception());
      return;
    }
    // Pass 2: each block from its offset; an element is read before its slot is written,
    // so out == first works.
    parallel_for_split(0, nb, 1,
                       [&](std::size_t k) {
                         const std::size_t b = k * block, e = std::min(n, b + block);
                         In i = first + static_cast<D>(b);
                         Out o = out + static_cast<DO>(b);
                         if (init == nullptr) {
                           T acc = sums[k] ? op(*sums[k], *i) : T(*i);
                           *o = acc;
                           for (std::size_t j = b + 1; j < e; ++j) {
                             acc = op(std::move(acc), *++i);
                             *++o = acc;
                           }
                         } else {
                           T acc = *sums[k];
                           for (std::size_t j = b; j < e; ++j, ++i, ++o) {
                             T next = op(acc, *i);
                             *o = std::move(acc);
                             acc = std::move(next);
                           }
                         }
                       },
                       st, lo);
  });
}

}  // namespace detail

// out[i] = first[0] op ... op first[i] for every i < last - first; returns out's end.
template <std::random_access_iterator In, std::random_access_iterator Out, class Op>
Out parallel_inclusive_scan(Scheduler& sched, In first, In last, Out out, const Op& op, const TaskOptions& opts = {}) {
  using T = std::iter_value_t<In>;
  static_assert(std::is_copy_constructible_v<T>, "parallel_inclusive_scan: blocks start from a copied element");
  detail::scan_root(sched, first, last, out, static_cast<const T*>(nullptr), op, opts,
                    "parallel_inclusive_scan(options)");
  return out + (last - first);
}

// out[i] = init op first[0] op ... op first[i - 1] for every i < last - first (out[0] =
// init); returns out's end.
template <std::random_access_iterator In, std::random_access_iterator Out, class T, class Op>
Out parallel_exclusive_scan(Scheduler& sched, In first, In last, Out out, T init, const Op& op,
                            const TaskOptions& opts = {}) {
  static_assert(std::is_copy_constructible_v<T>, "parallel_exclusive_scan: init seeds the offsets");
  detail::scan_root(sched, first, last, out, &init, op, opts, "parallel_exclusive_scan(options)");
  return out + (last - first);
}

}  // namespace vitte

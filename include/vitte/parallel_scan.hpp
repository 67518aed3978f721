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
// scans each block from its offset (in parallel). The passes go over a few MiB at a time,
// so that pass 2 finds its input in the cache: the input is read from memory once, as by
// a serial scan. A serial scan of doubles waits on each add's latency (one chain); here
// every task runs four chains, so one worker keeps up with std::inclusive_scan and more
// workers gain until the memory bandwidth caps them (10M doubles, 2 workers of a 2-core
// VM: 11-12 ms against std::inclusive_scan's 16-19 ms).
//
// Determinism: the blocks depend on n alone: blocks of max(4096, ceil(n / 2048))
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

// Blocks of max(4096, ceil(n / 2048)) elements, at most 2048 of them; a task takes a tile
// of kScanLanes consecutive blocks and walks them in lockstep: kScanLanes independent
// chains of op, where one block alone would wait on each op's latency (a floating-point
// add's 4 cycles an element, the whole cost of a serial scan). Tiles only schedule the
// work: what each out[i] is made of depends on the blocks alone.
inline constexpr std::size_t kScanMinBlock = 4096;
inline constexpr std::size_t kScanMaxBlocks = 2048;
inline constexpr std::size_t kScanLanes = 4;
inline constexpr std::size_t kScanChunkBytes = std::size_t{2} << 20;

inline constexpr std::size_t scan_block(std::size_t n) noexcept {
  return std::max(kScanMinBlock, (n + kScanMaxBlocks - 1) / kScanMaxBlocks);
}

// The two passes and the serial fold between them. T: the accumulator's type (the value
// type for an inclusive scan, init's for an exclusive one); `init`: null for inclusive.
template <class In, class Out, class T, class Op>
void scan_root(Scheduler& sched, In first, In last, Out out, const T* init, const Op& op, const TaskOptions& opts,
               const char* what) {
  const auto n = static_cast<std::size_t>(last - first);
  if (n == 0) return check_options_anyway(sched, opts, what);
  const std::size_t block = scan_block(n);
  const std::size_t nb = (n + block - 1) / block;
  const auto bd = static_cast<std::iter_difference_t<In>>(block);
  auto in_at = [&](std::size_t k) { return first + static_cast<std::iter_difference_t<In>>(k * block); };
  auto out_at = [&](std::size_t k) { return out + static_cast<std::iter_difference_t<Out>>(k * block); };
  // sums[k]: block k's left fold (pass 1); then block k's offset, what comes before it.
  std::vector<std::optional<T>> sums(nb);

  // Pass 1 over the blocks [k0, k1), all full: their left folds.
  auto fold = [&](std::size_t k0, std::size_t k1) {
    std::size_t k = k0;
    for (; k + kScanLanes <= k1; k += kScanLanes) {
      const In p0 = in_at(k), p1 = p0 + bd, p2 = p1 + bd, p3 = p2 + bd;
      T a0(*p0), a1(*p1), a2(*p2), a3(*p3);
      for (std::iter_difference_t<In> j = 1; j < bd; ++j) {
        a0 = op(std::move(a0), p0[j]);
        a1 = op(std::move(a1), p1[j]);
        a2 = op(std::move(a2), p2[j]);
        a3 = op(std::move(a3), p3[j]);
      }
      sums[k].emplace(std::move(a0)), sums[k + 1].emplace(std::move(a1));
      sums[k + 2].emplace(std::move(a2)), sums[k + 3].emplace(std::move(a3));
    }
    for (; k < k1; ++k) {
      const In p = in_at(k);
      T a(*p);
      for (std::iter_difference_t<In> j = 1; j < bd; ++j) a = op(std::move(a), p[j]);
      sums[k].emplace(std::move(a));
    }
  };
  // Pass 2 on block k: start() gives the accumulator and writes out[0] for an inclusive
  // scan (block 0 of which has no offset), step() does element j. An element is read
  // before its slot is written, so out == first works.
  const std::iter_difference_t<In> j0 = init == nullptr ? 1 : 0;
  auto start = [&](std::size_t k, In p, Out o) -> T {
    if (init != nullptr) return std::move(*sums[k]);
    T a = sums[k] ? T(op(*sums[k], *p)) : T(*p);
    *o = a;
    return a;
  };
  auto step = [&](T& a, In p, Out o, std::iter_difference_t<In> j) {
    if (init == nullptr) {
      a = op(std::move(a), p[j]);
      o[j] = a;
    } else {
      T next = op(a, p[j]);
      o[j] = std::move(a);
      a = std::move(next);
    }
  };
  auto scan = [&](std::size_t k0, std::size_t k1) {
    std::size_t k = k0;
    for (; k + kScanLanes <= k1 && (k + kScanLanes) * block <= n; k += kScanLanes) {
      const In p0 = in_at(k), p1 = p0 + bd, p2 = p1 + bd, p3 = p2 + bd;
      const Out o0 = out_at(k), o1 = out_at(k + 1), o2 = out_at(k + 2), o3 = out_at(k + 3);
      T a0 = start(k, p0, o0), a1 = start(k + 1, p1, o1), a2 = start(k + 2, p2, o2), a3 = start(k + 3, p3, o3);
      for (std::iter_difference_t<In> j = j0; j < bd; ++j) {
        step(a0, p0, o0, j), step(a1, p1, o1, j), step(a2, p2, o2, j), step(a3, p3, o3, j);
      }
    }
    for (; k < k1; ++k) {
      const auto len = static_cast<std::iter_difference_t<In>>(std::min(block, n - k * block));
      const In p = in_at(k);
      const Out o = out_at(k);
      T a = start(k, p, o);
      for (std::iter_difference_t<In> j = j0; j < len; ++j) step(a, p, o, j);
    }
  };
  auto tiles = [](std::size_t blocks) { return (blocks + kScanLanes - 1) / kScanLanes; };

  // The passes go chunk by chunk, each chunk about kScanChunkBytes of input per worker (an
  // L2's worth; the chunk as a whole sits in a shared L3), so that pass 2 reads what pass 1
  // has just brought into the cache: the input crosses the memory bus once, as in a serial
  // scan. Chunks only order the work (the offsets are one serial chain over the blocks
  // either way), so they change no result, which is why they may follow the worker count.
  const std::size_t chunk_bytes = kScanChunkBytes * std::max<std::size_t>(2, sched.num_workers());
  const std::size_t chunk = std::max<std::size_t>(
      kScanLanes, chunk_bytes / sizeof(std::iter_value_t<In>) / block / kScanLanes * kScanLanes);
  LoopState st;
  run_root(sched, st, opts, what, [&](const LoopOptions* lo) {
    // Offsets: block 0's is init (exclusive) or nothing (inclusive); block k + 1's is block
    // k's offset op block k's fold.
    std::optional<T> carry;
    if (init != nullptr) carry.emplace(*init);
    for (std::size_t c0 = 0; c0 < nb; c0 += chunk) {
      const std::size_t c1 = std::min(nb, c0 + chunk), f1 = std::min(c1, nb - 1);
      // Pass 1. The last block's fold is not needed: nothing comes after it.
      if (c0 < f1)
        parallel_for_split(0, tiles(f1 - c0), 1,
                           [&](std::size_t t) { fold(c0 + t * kScanLanes, std::min(f1, c0 + (t + 1) * kScanLanes)); },
                           st, lo);
      // relaxed: every piece of pass 1 has joined (the group waits order their writes).
      if (st.stop.load(std::memory_order_relaxed)) return;
      try {
        for (std::size_t k = c0; k < c1; ++k) {
          std::optional<T> f = std::move(sums[k]);
          sums[k] = std::move(carry);
          if (k + 1 == nb) break;
          if (sums[k])
            carry.emplace(op(*sums[k], std::move(*f)));
          else
            carry = std::move(f);
        }
      } catch (...) {
        st.fail(std::current_exception());
        return;
      }
      // Pass 2: each block from its offset.
      parallel_for_split(0, tiles(c1 - c0), 1,
                         [&](std::size_t t) { scan(c0 + t * kScanLanes, std::min(c1, c0 + (t + 1) * kScanLanes)); },
                         st, lo);
      if (st.stop.load(std::memory_order_relaxed)) return;  // relaxed: as above
    }
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

// parallel_sort and parallel_stable_sort: comparison sorts of a random-access range on
// vitte's own workers.
//
//   vitte::parallel_sort(sched, v.begin(), v.end());
//   vitte::parallel_stable_sort(sched, recs.begin(), recs.end(), by_key, {.name = "sort"});
//
// parallel_sort (unstable): a quicksort. Each level moves the ninther (a median of three
// medians of three) to the front, partitions around it the way std::sort does (Hoare's
// scheme, which stops on equal keys: all-equal input splits in halves, not quadratically),
// forks the larger part into a TaskGroup and goes on with the smaller. A part of at most
// max(2048, n / 512) elements is sorted by std::sort. A part that is still being split
// after 2 log2(n) levels (an adversarial input) is handed to std::sort whole, whose
// introsort bounds it to O(n log n): no quadratic case, at the cost of that part's
// parallelism. The tree of partitions depends on the input alone (never on the worker
// count or the timing), so the order equal elements end in is the same on every run.
//
// parallel_stable_sort: a merge sort with one buffer of n elements (the value type must
// be default-constructible, and movable). The range is halved a fixed, even number of
// levels, so that pieces have at most max(2048, n / 256) elements; each piece is sorted by
// std::stable_sort, then each level merges pairs of pieces into the other array (the
// range or the buffer, in turn; an even number of levels ends in the range). A merge of
// two long pieces is itself split: the middle element of the longer one, its place in the
// other found by binary search (lower_bound or upper_bound so that equal elements of the
// left piece stay first), and the two halves merged in parallel.
//
// Both: O(n log n) work; comp is a strict weak order, called concurrently (as const) from
// several workers. Errors and cancellation: the first exception thrown by comp (or by a
// move or swap) stops the sort, pieces not started are skipped, and it is rethrown; a
// vitte::Cancelled ends it the same way, counted as cancelled. The range is then left
// unsorted: after parallel_sort it holds a permutation of the input (it only swaps); after
// parallel_stable_sort its elements are valid but unspecified (some may sit moved-from, as
// after a std::stable_sort that threw). Options (task_options.hpp) place every task of
// the sort; UsageError for options that would not apply. Callable from any thread: a
// worker, another thread, a coroutine of `sched`; inside vitte::isolate its waits run only
// its own tasks.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <type_traits>
#include <utility>

#include "vitte/parallel_for.hpp"

namespace vitte {

namespace detail {

inline constexpr std::ptrdiff_t kSortMinLeaf = 2048;

// The one of a, b, c whose element is the median of the three (by comp).
template <class It, class Comp>
It median_of_3(It a, It b, It c, const Comp& comp) {
  if (comp(*a, *b)) return comp(*b, *c) ? b : (comp(*a, *c) ? c : a);
  return comp(*a, *c) ? a : (comp(*b, *c) ? c : b);
}

// Partitions [first, last), n >= 3, around a pivot moved to *first: returns cut with
// [first, cut) <= pivot <= [cut, last), both non-empty. The pivot is picked from positions
// after `first`, so that the element of its triple that is not smaller stays behind it as
// the sentinel the unguarded scans below rely on (as libstdc++'s std::sort does).
template <class It, class Comp>
It sort_partition(It first, It last, const Comp& comp) {
  const auto n = last - first;
  const It mid = first + n / 2;
  It p;
  if (n >= 128) {
    const auto s = n / 8;
    p = median_of_3(median_of_3(first + 1, first + 1 + s, first + 1 + 2 * s, comp),
                    median_of_3(mid - s, mid, mid + s, comp),
                    median_of_3(last - 1 - 2 * s, last - 1 - s, last - 1, comp), comp);
  } else {
    p = median_of_3(first + 1, mid, last - 1, comp);
  }
  std::iter_swap(first, p);
  It lo = first + 1, hi = last;
  while (true) {
    while (comp(*lo, *first)) ++lo;
    --hi;
    while (comp(*first, *hi)) --hi;
    if (!(lo < hi)) return lo;
    std::iter_swap(lo, hi);
    ++lo;
  }
}

template <class It, class Comp>
void sort_split(It first, It last, std::ptrdiff_t leaf, int depth, const Comp& comp, LoopState& st,
                const LoopOptions* lo);

template <class It, class Comp>
void sort_level(TaskGroup& g, It first, It last, std::ptrdiff_t leaf, int depth, const Comp& comp, LoopState& st,
                const LoopOptions* lo) {
  try {
    // relaxed: a hint (see LoopState).
    while (last - first > leaf && depth > 0 && !st.stop.load(std::memory_order_relaxed)) {
      const It cut = sort_partition(first, last, comp);
      --depth;
      if (cut - first < last - cut) {
        g.run([cut, last, leaf, depth, &comp, &st, lo] { sort_split(cut, last, leaf, depth, comp, st, lo); });
        last = cut;
      } else {
        g.run([first, cut, leaf, depth, &comp, &st, lo] { sort_split(first, cut, leaf, depth, comp, st, lo); });
        first = cut;
      }
    }
    if (!st.stop.load(std::memory_order_relaxed)) std::sort(first, last, comp);
  } catch (...) {
    st.fail(std::current_exception());
    g.cancel();
  }
  g.wait();  // the parts forked above never throw: their errors went to `st`
}

template <class It, class Comp>
void sort_split(It first, It last, std::ptrdiff_t leaf, int depth, const Comp& comp, LoopState& st,
                const LoopOptions* lo) {
  if (st.stop.load(std::memory_order_relaxed)) return;  // relaxed: a hint (see LoopState)
  with_group(lo, [&](TaskGroup& g) { sort_level(g, first, last, leaf, depth, comp, st, lo); });
}

// A serial stable merge that moves the elements to `out`. Not std::merge over move
// iterators: that calls comp on rvalues, and a comparator taking its arguments by value
// would move the elements out of the pieces into its parameters.
template <class In, class Out, class Comp>
void move_merge(In a1, In e1, In a2, In e2, Out out, const Comp& comp) {
  for (; a1 != e1 && a2 != e2; ++out) {
    if (comp(*a2, *a1)) {  // strictly less: on a tie the left piece's element goes first
      *out = std::move(*a2);
      ++a2;
    } else {
      *out = std::move(*a1);
      ++a1;
    }
  }
  std::move(a2, e2, std::move(a1, e1, out));
}

// The stable sort's merge: moves the merge of [a1, e1) and [a2, e2) (each sorted) to
// `out`, splitting it in two parallel halves while it is longer than `leaf`.
template <class In, class Out, class Comp>
void merge_split(In a1, In e1, In a2, In e2, Out out, std::ptrdiff_t leaf, const Comp& comp, LoopState& st,
                 const LoopOptions* lo);

template <class In, class Out, class Comp>
void merge_level(TaskGroup& g, In a1, In e1, In a2, In e2, Out out, std::ptrdiff_t leaf, const Comp& comp,
                 LoopState& st, const LoopOptions* lo) {
  try {
    while ((e1 - a1) + (e2 - a2) > leaf && !st.stop.load(std::memory_order_relaxed)) {
      In m1, m2;
      if (e1 - a1 >= e2 - a2) {  // split the longer piece at its middle
        m1 = a1 + (e1 - a1) / 2;
        m2 = std::lower_bound(a2, e2, *m1, comp);  // the right's elements equal to *m1 go after it
      } else {
        m2 = a2 + (e2 - a2) / 2;
        m1 = std::upper_bound(a1, e1, *m2, comp);  // the left's elements equal to *m2 go before it
      }
      const Out out2 = out + ((m1 - a1) + (m2 - a2));
      g.run([=, &comp, &st] { merge_split(m1, e1, m2, e2, out2, leaf, comp, st, lo); });
      e1 = m1;
      e2 = m2;
    }
    if (!st.stop.load(std::memory_order_relaxed)) move_merge(a1, e1, a2, e2, out, comp);
  } catch (...) {
    st.fail(std::current_exception());
    g.cancel();
  }
  g.wait();
}

template <class In, class Out, class Comp>
void merge_split(In a1, In e1, In a2, In e2, Out out, std::ptrdiff_t leaf, const Comp& comp, LoopState& st,
                 const LoopOptions* lo) {
  if (st.stop.load(std::memory_order_relaxed)) return;  // relaxed: a hint (see LoopState)
  with_group(lo, [&](TaskGroup& g) { merge_level(g, a1, e1, a2, e2, out, leaf, comp, st, lo); });
}

// Sorts [a, a + n) `levels` levels down (levels even at the top). With an even `levels`
// the result is in `a`, with an odd one in `b` (the buffer's matching slice): the pieces
// are sorted in place, and each level merges into the other array.
template <class It, class T, class Comp>
void stable_split(It a, T* b, std::ptrdiff_t n, int levels, std::ptrdiff_t merge_leaf, const Comp& comp,
                  LoopState& st, const LoopOptions* lo) {
  if (st.stop.load(std::memory_order_relaxed)) return;  // relaxed: a hint (see LoopState)
  if (levels == 0) {
    try {
      std::stable_sort(a, a + n, comp);
    } catch (...) {
      st.fail(std::current_exception());
    }
    return;
  }
  const std::ptrdiff_t h = n / 2;
  with_group(lo, [&](TaskGroup& g) {
    try {
      g.run([=, &comp, &st] { stable_split(a + h, b + h, n - h, levels - 1, merge_leaf, comp, st, lo); });
    } catch (...) {
      st.fail(std::current_exception());
      return;
    }
    stable_split(a, b, h, levels - 1, merge_leaf, comp, st, lo);
    g.wait();
    if (st.stop.load(std::memory_order_relaxed)) return;
    if (levels % 2 == 1)  // the halves are in the range: merge into the buffer
      merge_level(g, a, a + h, a + h, a + n, b, merge_leaf, comp, st, lo);
    else
      merge_level(g, b, b + h, b + h, b + n, a, merge_leaf, comp, st, lo);
  });
}

}  // namespace detail

// Sorts [first, last) by comp, not stably. See the file comment.
template <std::random_access_iterator It, class Comp = std::less<>>
void parallel_sort(Scheduler& sched, It first, It last, const Comp& comp = {}, const TaskOptions& opts = {}) {
  const std::ptrdiff_t n = last - first;
  if (n < 2) return detail::check_options_anyway(sched, opts, "parallel_sort(options)");
  const std::ptrdiff_t leaf = std::max(detail::kSortMinLeaf, n / 512);
  const int depth = 2 * std::bit_width(static_cast<std::size_t>(n));
  detail::LoopState st;
  detail::run_root(sched, st, opts, "parallel_sort(options)", [&](const detail::LoopOptions* lo) {
    detail::sort_split(first, last, leaf, depth, comp, st, lo);
  });
}

// Sorts [first, last) by comp, stably: equal elements keep their order. See the file
// comment. Allocates a buffer of last - first elements (std::bad_alloc before any work).
template <std::random_access_iterator It, class Comp = std::less<>>
void parallel_stable_sort(Scheduler& sched, It first, It last, const Comp& comp = {}, const TaskOptions& opts = {}) {
  using T = std::iter_value_t<It>;
  static_assert(std::is_default_constructible_v<T> && std::is_move_assignable_v<T>,
                "parallel_stable_sort: the buffer holds default-constructed elements, moved into and out of");
  const std::ptrdiff_t n = last - first;
  if (n < 2) return detail::check_options_anyway(sched, opts, "parallel_stable_sort(options)");
  // An even number of levels, so that the last merge lands in the range; none (one piece,
  // no buffer) for a short range.
  int levels = 0;
  const std::ptrdiff_t leaf = std::max(detail::kSortMinLeaf, n / 256);
  while ((n >> levels) > leaf) ++levels;
  levels += levels % 2;
  const std::ptrdiff_t merge_leaf = std::max<std::ptrdiff_t>(detail::kSortMinLeaf * 2, n / 256);
  std::unique_ptr<T[]> buf;
  if (levels > 0) buf = std::make_unique_for_overwrite<T[]>(static_cast<std::size_t>(n));
  detail::LoopState st;
  detail::run_root(sched, st, opts, "parallel_stable_sort(options)", [&](const detail::LoopOptions* lo) {
    detail::stable_split(first, buf.get(), n, levels, merge_leaf, comp, st, lo);
  });
}

}  // namespace vitte

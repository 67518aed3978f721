// parallel_for_each: fn(element) for every element of an iterator range or a range, on
// vitte's own workers.
//
//   vitte::parallel_for_each(sched, v.begin(), v.end(), [](Item& x) { x.update(); });
//   vitte::parallel_for_each(sched, v, [](Item& x) { x.update(); });
//   vitte::parallel_for_each(sched, v, vitte::Grain{64}, fn, {.name = "update"});
//
// fn is called once per element with the element by reference (what *it gives: Item&, or
// const Item& for a const range), concurrently from several workers, in no particular
// order. fn must be callable as const (it is shared by every piece, as parallel_for's).
//
// Splitting. Random-access iterators split by index exactly as parallel_for (halves until a
// piece has at most `grain` elements; the split depends on the length and grain only).
// Forward iterators (std::list, std::map, std::forward_list) cannot be split without
// walking: the first piece walks the range on one thread, cutting it into chunks of
// `grain` elements and forking each chunk as a task as soon as it is cut, so workers start
// on the first chunks while the walk goes on. The cost is that serial walk, one pointer
// chase per element (plus a second, std::distance, for the automatic grain); it pays off
// when fn costs much more than following a link, and not for a trivial fn over a list.
// The walk runs ahead of the workers: every chunk it has cut waits as a queued task (about
// 200 bytes), so a tiny grain over a long list holds n / grain tasks at once (Grain{1}
// over a 2M-element list: 500 MB, measured); the automatic grain keeps it to 512.
//
// Grain: automatic by default (Grain{} or no Grain): ceil(n / 512) elements a piece, at
// most 512 pieces, the rule parallel_for's and parallel_reduce's grain 0 follow. Pass
// vitte::Grain{n} to choose (Grain{0} is automatic). A plain integer is not taken, so that
// no call can be read two ways.
//
// Errors and cancellation: as parallel_for. The first exception thrown by fn (or by the
// iterators) stops the loop: pieces not started are skipped, running ones stop within
// kStopCheck elements, and it is rethrown; a vitte::Cancelled thrown by fn (say, when its
// std::stop_token was triggered) ends it the same way, counted as cancelled, not failed.
// Options (task_options.hpp) place every task of the loop; UsageError for options that
// would not apply. Callable from any thread: a worker, another thread, a coroutine of
// `sched`; inside vitte::isolate its waits run only its own tasks.
#pragma once

#include <concepts>
#include <cstddef>
#include <exception>
#include <functional>
#include <iterator>
#include <ranges>
#include <type_traits>

#include "vitte/parallel_for.hpp"

namespace vitte {

// A grain for the algorithms that take one as a tag: elements a piece; 0: automatic.
struct Grain {
  std::size_t n = 0;
};

namespace detail {

// The forward-iterator walk: cuts [first, last) into chunks of `grain` elements and forks
// each into `g`; a chunk's error goes to `st` and cancels the group (unstarted chunks).
template <class It, class F>
void for_each_chunks(TaskGroup& g, It first, It last, std::size_t grain, const F& fn, LoopState& st) {
  try {
    // relaxed: a hint (see LoopState); a late look only forks a chunk that is skipped.
    while (first != last && !st.stop.load(std::memory_order_relaxed)) {
      It b = first;
      std::size_t k = 0;
      for (; k < grain && first != last; ++k) ++first;
      g.run([b, k, &fn, &st, &g] {
        if (st.stop.load(std::memory_order_relaxed)) return;
        try {
          It p = b;
          for (std::size_t i = 0; i < k; ++i, ++p) {
            std::invoke(fn, *p);
            if (i % kStopCheck == kStopCheck - 1 && st.stop.load(std::memory_order_relaxed)) break;
          }
        } catch (...) {
          st.fail(std::current_exception());
          g.cancel();
        }
      });
    }
  } catch (...) {  // an iterator's, or run()'s own (a scheduler shutting down)
    st.fail(std::current_exception());
    g.cancel();
  }
  g.wait();  // the chunks never throw: their errors went to `st`
}

template <class It, class F>
void for_each_root(Scheduler& sched, It first, It last, std::size_t grain, const F& fn, const TaskOptions& opts) {
  static constexpr const char* kWhat = "parallel_for_each(options)";
  if constexpr (std::random_access_iterator<It>) {
    if (first == last) return check_options_anyway(sched, opts, kWhat);
    const auto n = static_cast<std::size_t>(last - first);
    parallel_for_root(
        sched, 0, n, grain,
        [first, &fn](std::size_t i) { std::invoke(fn, first[static_cast<std::iter_difference_t<It>>(i)]); }, opts,
        kWhat);
  } else {
    if (first == last) return check_options_anyway(sched, opts, kWhat);
    if (grain == 0) grain = auto_grain(static_cast<std::size_t>(std::distance(first, last)));
    LoopState st;
    run_root(sched, st, opts, kWhat, [&](const LoopOptions* lo) {
      with_group(lo, [&](TaskGroup& g) { for_each_chunks(g, first, last, grain, fn, st); });
    });
  }
}

}  // namespace detail

// fn(*it) for every it in [first, last), automatic grain. See the file comment.
template <std::forward_iterator It, class F>
  requires std::invocable<const F&, std::iter_reference_t<It>>
void parallel_for_each(Scheduler& sched, It first, It last, const F& fn, const TaskOptions& opts = {}) {
  detail::for_each_root(sched, std::move(first), std::move(last), 0, fn, opts);
}

// The same with a chosen grain (elements a piece; Grain{0}: automatic).
template <std::forward_iterator It, class F>
  requires std::invocable<const F&, std::iter_reference_t<It>>
void parallel_for_each(Scheduler& sched, It first, It last, Grain grain, const F& fn, const TaskOptions& opts = {}) {
  detail::for_each_root(sched, std::move(first), std::move(last), grain.n, fn, opts);
}

// fn(x) for every element x of `range` (begin() and end() of one type: a container, a
// common view). The range must outlive the call, as it does a plain call's argument.
template <std::ranges::forward_range R, class F>
  requires std::ranges::common_range<R> && std::invocable<const F&, std::ranges::range_reference_t<R>>
void parallel_for_each(Scheduler& sched, R&& range, const F& fn, const TaskOptions& opts = {}) {
  detail::for_each_root(sched, std::ranges::begin(range), std::ranges::end(range), 0, fn, opts);
}

template <std::ranges::forward_range R, class F>
  requires std::ranges::common_range<R> && std::invocable<const F&, std::ranges::range_reference_t<R>>
void parallel_for_each(Scheduler& sched, R&& range, Grain grain, const F& fn, const TaskOptions& opts = {}) {
  detail::for_each_root(sched, std::ranges::begin(range), std::ranges::end(range), grain.n, fn, opts);
}

}  // namespace vitte

// isolate: a region inside which a waiting worker only runs tasks spawned from that
// region.
//
//   std::lock_guard lock(mu);
//   vitte::isolate([&] {            // without it, wait() below may run an unrelated
//     vitte::TaskGroup g;           // queued task on this thread, which may take `mu`
//     g.run([&] { part(); });       // again: a deadlock (or recursion on a held lock)
//     g.wait();
//   });
//
// Why: TaskGroup::wait() and Future::get() on a worker keep the worker busy with other
// queued work until the wait is over, so that fork-join never blocks a core. That work
// runs on the waiting thread, on top of the waiting task's stack, while that task still
// holds whatever it holds (mutexes, thread-local state). Inside isolate(fn), waits run
// only tasks spawned inside fn (directly or by their descendants, wherever they run), so
// nothing unrelated can interleave with the holder.
//
// Contract: fn runs on the calling thread and its result (or exception) is returned (or
// rethrown). A wait inside the region runs tasks of the region, tasks of the group (or
// future) it waits for, and tasks that future depends on, wherever they were queued: the
// source of a then() chain, the inputs of a when_all, the producer of a future that a
// coroutine of the region co_awaits; the inputs of a when_any only for a wait on the
// when_any's own future or a co_await of it (a when_any finishes while inputs are still
// queued, and a chain past it may be gone by then, so no later link leads back to them:
// a then() on a when_any of work queued outside the region needs another worker).
// Nothing else: a foreign
// task it comes across while looking for work is handed to its node's injection queue
// for another worker. Regions nest: an inner region's waits run only the inner region's
// tasks. Tasks spawned in the region and stolen by other workers run in the region there
// too, so their waits are isolated as well, and so do coroutines suspended in the region,
// whoever resumes them (a promise's setter, the timer thread). What a region cannot do:
// run work that only a worker waiting in another region could take (a coroutine of the
// region that moves with schedule_on to a node whose every worker waits in a region of
// its own waits until one is free). On a thread that is not a worker, waits never run
// tasks anyway, and isolate(fn) simply calls fn.
#pragma once

#include <atomic>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "vitte/detail/worker_local.hpp"

namespace vitte {

namespace detail {
// A new region tag, unique for the life of the process. Called once per isolate().
std::uint64_t new_isolation_tag() noexcept;
}  // namespace detail

template <class F>
auto isolate(F&& fn) -> std::invoke_result_t<F&&> {
  detail::WorkerLocal* w = detail::tls_worker;
  if (w == nullptr) return std::forward<F>(fn)();
  struct Restore {
    detail::WorkerLocal* w;
    std::uint64_t outer;
    ~Restore() { w->isolation = outer; }
  } restore{w, w->isolation};
  w->isolation = detail::new_isolation_tag();
  return std::forward<F>(fn)();
}

}  // namespace vitte

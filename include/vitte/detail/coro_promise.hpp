// The machinery of vitte::task<T> (coro.hpp): its promise, the join scope its children
// report to, and the awaiters of `co_await task`, fork and join.
//
// A task is lazy: it starts when it is awaited (it runs at once on the awaiting worker,
// by symmetric transfer), forked (queued on the worker's own deque like a spawned task,
// so idle workers steal it), or handed to when_all/when_any, sync_wait or
// Scheduler::spawn. It always runs on a worker of a scheduler. Its frame comes from the
// worker's CoroFramePool: no heap allocation in the common case.
//
// JoinScope: the children of one fork/join block or one when_all/when_any report to it.
// Invariants:
//   J1  `count` = (children the waiter declared) - (children finished). A fork scope
//       declares its children at join time (one fetch_add of `forked`), so before the join
//       the count runs negative; a when_all scope declares them all before any starts.
//   J2  exactly one party goes on after the last child: the child whose fetch_sub took the
//       count from 1 to 0 resumes `waiter`; or, if every child finished before the join
//       declared them, the joiner itself (its fetch_add lands on zero) and nobody resumes it.
//   J3  `waiter` is written before the declaring RMW (release) and read only by the child
//       that saw 1 (acquire); `error` is written before the writer's fetch_sub (release)
//       and read by the waiter after the count reached zero (acquire).
//   J4  after its fetch_sub a child touches neither the scope nor its own frame: the
//       waiter may run on another worker at once and destroy both.
//   J6  a fork scope lists its children. A join marks them joined (their result() reads
//       only their own promise, so a task may outlive the coroutine that forked it). A
//       task destroyed before its join does not wait (a blocking wait nested inside
//       another one could wait for a frame below it on the same stack, forever): it marks
//       the child orphaned and leaves the frame alive. The owner's final suspension then
//       joins what is left: if children are still running it stays suspended and the last
//       child ends it (settle, then the owner's own final step); orphans are destroyed
//       once all have finished. Their first error becomes the owner's, unless it failed
//       itself.
//   J5  a join runs the children still on top of its worker's deque (no thief took them)
//       here, one at a time, as a chain: it pops the newest, marks it `chained` and
//       transfers to it; a chained child that ends does not count down: it takes one off
//       `forked` and pops the next (chain_ended, next_link). Children below the one running
//       stay on the deque, so idle workers can still steal them. When the top of the
//       deque holds no child of the scope, the links left in `forked` (the stolen ones,
//       and any a worker runs unchained) are declared with one fetch_add, or with none if
//       every child ran in the chain. One party at a time holds the chain (the joiner, then
//       each link in turn), so `forked` needs no atomic.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "vitte/detail/bound_options.hpp"
#include "vitte/detail/resume.hpp"
#include "vitte/detail/task_frame.hpp"
#include "vitte/detail/worker_local.hpp"
#include "vitte/error.hpp"

namespace vitte {

template <class T>
class task;

namespace detail {

struct PromiseBase;

// A coroutine's options (task_options.hpp: Scheduler::start, sync_wait, reschedule). The
// coroutine that was given them (the origin) owns them; the coroutines it awaits or forks
// inherit a plain pointer, since they end before it does (an awaited task before its
// awaiter resumes, a forked child before its parent finishes: J6). Inheriting is one masked
// copy, no branch and no atomic, so coroutines without options pay nothing for them. A
// later reschedule() keeps the earlier options alive (`prev`) for the children that still
// point at them.
struct OwnedOptions {
  BoundOptions bound;
  std::unique_ptr<OwnedOptions> prev;
};
class OptionsSlot {
 public:
  OptionsSlot() noexcept = default;
  OptionsSlot(const OptionsSlot&) = delete;
  OptionsSlot& operator=(const OptionsSlot&) = delete;
  ~OptionsSlot() {
    if ((v_ & kOwned) != 0) [[unlikely]] delete owned();
  }
  // The parent's options, not owned.
  void inherit(const OptionsSlot& parent) noexcept { v_ = parent.v_ & ~kOwned; }
  // Takes `o` as this coroutine's options from now on; the previous ones stay alive.
  void own(std::unique_ptr<OwnedOptions> o) noexcept {
    if ((v_ & kOwned) != 0) o->prev.reset(owned());
    v_ = reinterpret_cast<std::uintptr_t>(o.release()) | kOwned;
  }
  const BoundOptions* get() const noexcept {
    const std::uintptr_t p = v_ & ~kOwned;
    return p != 0 ? &reinterpret_cast<const OwnedOptions*>(p)->bound : nullptr;
  }

 private:
  static constexpr std::uintptr_t kOwned = 1;
  OwnedOptions* owned() const noexcept { return reinterpret_cast<OwnedOptions*>(v_ & ~kOwned); }
  std::uintptr_t v_ = 0;
};

struct JoinScope {
  enum class Kind : unsigned char { Fork, All, Any };

  std::atomic<std::int64_t> count{0};
  std::coroutine_handle<> waiter{};
  // Fork and All: the first child that failed (its error stays in its promise, which
  // lives until the waiter is done: the children's tasks belong to the waiter). Any: the
  // first child that finished. Claimed by CAS; null: none.
  std::atomic<PromiseBase*> first{nullptr};
  // Fork and All: the first child that ended with vitte::Cancelled, kept apart so that an
  // error still wins (docs/errors.md). Claimed by CAS; null: none.
  std::atomic<PromiseBase*> first_cancelled{nullptr};
  // All and Any: asked to stop on the first failure (All) or the first finish (Any), so
  // that siblings still suspended resume with Cancelled. Null for fork scopes.
  std::stop_source* stop = nullptr;
  // Fork scopes only, touched by the owning coroutine alone (J6): children forked since
  // the last join, and the list of them (through PromiseBase::next_forked).
  std::int32_t forked = 0;
  PromiseBase* children = nullptr;
  PromiseBase* owner = nullptr;  // the coroutine whose scope this is
  Kind kind = Kind::Fork;
  // Set by the owner's final suspension when it joins implicitly (J6): the last child
  // ends the owner instead of resuming it.
  bool final_join = false;

  // A child claims `slot` (first, or first_cancelled); true if it was the first. Triggers
  // `stop` for the winner.
  bool claim(PromiseBase* p, std::atomic<PromiseBase*>& slot) noexcept {
    PromiseBase* none = nullptr;
    // acq_rel: one winner; the waiter reads it after the count reached zero (J3).
    const bool won = slot.compare_exchange_strong(none, p, std::memory_order_acq_rel);
    if (won && stop != nullptr) stop->request_stop();
    return won;
  }
  bool claim(PromiseBase* p) noexcept { return claim(p, first); }
  // J5: the chain's next step, from the joiner or a chained child that ended.
  Transfer next_link() noexcept;
  Transfer chain_ended() noexcept {
    --forked;
    return next_link();
  }
  // Waiter side, after the count reached zero (J3): the first failure's error (Fork, All),
  // and reset.
  std::exception_ptr take_error() noexcept;
};

// The UsageError of an await outside a worker (cold, out of line).
[[noreturn]] void throw_not_on_worker(const char* what);

// The running worker, or a UsageError naming `what` on threads that are not workers.
WorkerLocal& require_worker(const char* what);

struct ForkRequest {
  PromiseBase* child;
  std::coroutine_handle<> handle;  // the child's
};
struct JoinRequest {};
struct StopTokenRequest {};

// Queues a resumption of `h` on this worker's own deque: the same path and cost as
// vitte::spawn, without the detached counter.
inline void push_resume(WorkerLocal* w, std::coroutine_handle<> h) {
  TaskFrame* f = pack(w, ResumeFn{h});
  f->counter = &w->untracked;
  w->untracked.add(w);
  route(w->core, w, f);
}
// A forked child: the same, minus the untracked counter's add. Nobody waits on that
// counter and it has an owner (no I1 check), so the completion of a frame that runs
// counts down alone; a frame its own join takes back counts nothing.
inline void push_fork(WorkerLocal* w, std::coroutine_handle<> h, PromiseBase* child);

// The closure of a forked child's frame: a ResumeFn that also names the child, so that its
// parent's join can recognise it on top of its own deque (JoinAwaiter).
struct ForkFn {
  std::coroutine_handle<> h;
  PromiseBase* child;
  void operator()() const noexcept { run_coroutine(h); }
};

struct PromiseBase {
  std::coroutine_handle<> continuation{};  // plain co_await: who goes on after us
  JoinScope* scope = nullptr;              // forked or when_all/when_any child: who to tell
  std::exception_ptr error;
  std::stop_token token;                   // inherited from whoever started us
  // Its options (Scheduler::start, vitte::reschedule; task_options.hpp), inherited like the
  // token: its resumptions are routed by them. Null: none (a null copy costs no atomic).
  OptionsSlot options;
  JoinScope forks;                         // our own fork/join children
  // As a forked child (J6): the next child of the same scope, our own handle, whether a
  // join has covered us, whether our task object let go of us before that.
  PromiseBase* next_forked = nullptr;
  std::coroutine_handle<> self{};
  bool joined_flag = false;
  bool orphaned = false;
  bool started = false;
  bool forked = false;
  // Set by the parent's join when it runs us inline (J5): when done we hand the chain on
  // (JoinScope::chain_ended) instead of counting down the scope.
  bool chained = false;

  [[gnu::always_inline]] static void* operator new(std::size_t n) { return coro_frame_alloc(n); }
  [[gnu::always_inline]] static void operator delete(void* p, std::size_t n) noexcept { coro_frame_free(p, n); }

  PromiseBase() noexcept { forks.owner = this; }
  PromiseBase(const PromiseBase&) = delete;
  PromiseBase& operator=(const PromiseBase&) = delete;

  std::suspend_always initial_suspend() const noexcept { return {}; }
  // Every coroutine that ends by throwing counts as failed or cancelled (docs/errors.md),
  // as a task does: this one, and each that rethrows it from a co_await.
  void unhandled_exception() noexcept {
    error = std::current_exception();
    const BoundOptions* o = options.get();
    count_end(is_cancellation(error) ? RunEnd::Cancelled : RunEnd::Failed, o != nullptr ? o->name : nullptr);
  }

  // J6: after every child of the fork scope finished. Takes the first child error (for a
  // join to rethrow, or as our own error at the end), marks the children joined, and
  // destroys the orphans. Returns the error taken.
  std::exception_ptr settle_forks() noexcept {
    std::exception_ptr e = forks.take_error();  // before any orphan (maybe the failed one) goes
    for (PromiseBase* c = std::exchange(forks.children, nullptr); c != nullptr;) {
      PromiseBase* next = c->next_forked;
      if (c->orphaned)
        c->self.destroy();
      else
        c->joined_flag = true;
      c = next;
    }
    return e;
  }

  // Our last step: tell our scope (forked, when_all/when_any child) or go on into our
  // continuation (an awaited task, a root). J4: nothing of this frame is touched after the
  // scope's count went down.
  Transfer end_into_scope_or_continuation() noexcept {
    if (JoinScope* s = scope) {
      // A failure (Fork, All) or any finish (Any) claims the scope's `first`.
      // A cancellation (Fork, All) claims a slot of its own: an error still wins.
      if (error || s->kind == JoinScope::Kind::Any) [[unlikely]]
        (void)s->claim(this, error && s->kind != JoinScope::Kind::Any && is_cancellation(error) ? s->first_cancelled
                                                                                                : s->first);
      if (chained) {  // J5: our join runs us inline; it goes on with the next link
        chained = false;
        return s->chain_ended();
      }
      // acq_rel: J2/J3.
      if (s->count.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        if (s->final_join) [[unlikely]]
          return s->owner->end_after_final_join();  // J6: we were the owner's last child
        return transfer_to(s->waiter);
      }
      return stay_suspended();
    }
    if (continuation) return transfer_to(continuation);
    return stay_suspended();
  }
  [[gnu::noinline]] Transfer end_after_final_join() noexcept {
    forks.final_join = false;
    forks.count.store(0, std::memory_order_relaxed);
    std::exception_ptr e = settle_forks();
    if (!error) error = std::move(e);
    return end_into_scope_or_continuation();
  }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    [[gnu::always_inline]] Transfer await_suspend(std::coroutine_handle<P> h) noexcept {
      PromiseBase& p = h.promise();
      if (p.forks.children != nullptr) [[unlikely]]
        return p.final_join();
      return p.end_into_scope_or_continuation();
    }
    void await_resume() const noexcept {}
  };
  // J6: children forked and never joined (the body ended early, by an exception or a
  // co_return before its join).
  [[gnu::noinline]] Transfer final_join() noexcept {
    const std::int64_t n = std::exchange(forks.forked, 0);
    forks.final_join = true;
    // acq_rel: as a join's (J2, J3); the release also publishes `orphaned` marks.
    if (n != 0 && forks.count.fetch_add(n, std::memory_order_acq_rel) + n != 0)
      return stay_suspended();  // the last child ends us (end_after_final_join)
    return end_after_final_join();
  }
  FinalAwaiter final_suspend() noexcept { return {}; }

  // fork(child): queue it on this worker's deque; we go on at once.
  std::suspend_never await_transform(ForkRequest r) {
    PromiseBase& c = *r.child;
    WorkerLocal* w = tls_worker;
    if (w == nullptr) [[unlikely]]
      throw_not_on_worker("vitte::fork");
    c.started = true;
    c.forked = true;
    c.scope = &forks;
    c.token = token;
    c.options.inherit(options);
    c.self = r.handle;
    c.next_forked = forks.children;
    forks.children = &c;
    ++forks.forked;
    push_fork(w, r.handle, &c);
    return {};
  }

  struct JoinAwaiter {
    JoinScope& s;
    bool await_ready() noexcept {
      if (s.forked == 0) return true;  // (await_resume still settles: J6)
      // Every child finished already (stolen and done, J1): nothing to wait for.
      // acquire: pairs with their fetch_subs (J3).
      if (s.count.load(std::memory_order_acquire) == -s.forked) {
        s.count.store(0, std::memory_order_relaxed);  // no child is left to touch it
        s.forked = 0;
        return true;
      }
      return false;
    }
    Transfer await_suspend(std::coroutine_handle<> h) noexcept {
      s.waiter = h;
      return s.next_link();  // J5
    }
    void await_resume() {
      if (std::exception_ptr e = s.owner->settle_forks()) [[unlikely]]
        std::rethrow_exception(e);
    }
  };
  JoinAwaiter await_transform(JoinRequest) noexcept { return JoinAwaiter{forks}; }

  struct TokenAwaiter {
    std::stop_token token;
    bool await_ready() const noexcept { return true; }
    void await_suspend(std::coroutine_handle<>) const noexcept {}
    std::stop_token await_resume() noexcept { return std::move(token); }
  };
  TokenAwaiter await_transform(StopTokenRequest) const noexcept { return TokenAwaiter{token}; }

  template <class A>
  A&& await_transform(A&& a) const noexcept {
    return std::forward<A>(a);
  }

  // A forked task's result is readable once a join covered it (J6).
  bool joined() const noexcept { return !forked || joined_flag; }
};

inline std::exception_ptr JoinScope::take_error() noexcept {
  if (kind == Kind::Any) return nullptr;
  // acquire: pairs with the claims (J3).
  PromiseBase* f = first.load(std::memory_order_acquire);
  PromiseBase* c = first_cancelled.load(std::memory_order_acquire);
  if (f == nullptr && c == nullptr) return nullptr;
  first.store(nullptr, std::memory_order_relaxed);
  first_cancelled.store(nullptr, std::memory_order_relaxed);
  return f != nullptr ? f->error : c->error;
}

inline Transfer JoinScope::next_link() noexcept {
  if (forked == 0) return transfer_to(waiter);  // every child ran in the chain: no atomic
  // A link that ended off the workers (an awaitable of another library resumed it on its
  // own thread) has no deque to look at: the rest count down.
  WorkerLocal* w = tls_worker;
  if (TaskFrame* f = w != nullptr ? w->deque.pop() : nullptr) {
    if (f->op == &frame_op<ForkFn> && std::launder(reinterpret_cast<ForkFn*>(f->storage))->child->scope == this) {
      const ForkFn fn = *std::launder(reinterpret_cast<ForkFn*>(f->storage));
      w->pool.put(f);
      fn.child->chained = true;
      return transfer_to(fn.h);
    }
    w->deque.push(f);  // not ours: leave it where it was
  }
  // The rest were stolen (or sit lower on some deque): they count down (J1, J2).
  const std::int64_t n = std::exchange(forked, 0);
  // acq_rel: release publishes `waiter` to the last child; acquire sees the children that
  // finished already (J2, J3). Landing on zero: all done, go on without suspending.
  if (count.fetch_add(n, std::memory_order_acq_rel) + n == 0) return transfer_to(waiter);
  return stay_suspended();
}

inline void push_fork(WorkerLocal* w, std::coroutine_handle<> h, PromiseBase* child) {
  TaskFrame* f = pack(w, ForkFn{h, child});
  f->counter = &w->untracked;
  route(w->core, w, f);
}

// The options of a vitte::task awaiting through `h` (null: none, or another coroutine).
template <class P>
const BoundOptions* options_of(std::coroutine_handle<P> h) noexcept {
  if constexpr (std::is_base_of_v<PromiseBase, P>)
    return h.promise().options.get();
  else
    return nullptr;
}

// The stop token of a vitte::task awaiting through `h`, or null for other coroutines.
template <class P>
const std::stop_token* token_of(std::coroutine_handle<P> h) noexcept {
  if constexpr (std::is_base_of_v<PromiseBase, P>)
    return &h.promise().token;
  else
    return nullptr;
}

template <class T>
struct TaskPromise : PromiseBase {
  static_assert(!std::is_reference_v<T>, "vitte::task<T&> is not supported; return a pointer");
  std::optional<T> value;

  task<T> get_return_object() noexcept;
  template <class U = T>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
  T result() {
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }
};

template <>
struct TaskPromise<void> : PromiseBase {
  task<void> get_return_object() noexcept;
  void return_void() const noexcept {}
  void result() const {
    if (error) std::rethrow_exception(error);
  }
};

}  // namespace detail
}  // namespace vitte

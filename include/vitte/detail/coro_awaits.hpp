// The awaiters of a vitte::task's cooperative awaits (coro.hpp): yield, schedule_on,
// reschedule, sleep_for/sleep_until. Included by coro.hpp.
#pragma once

#include <chrono>
#include <coroutine>
#include <memory>
#include <stop_token>

#include "vitte/detail/coro_promise.hpp"
#include "vitte/detail/coro_suspend.hpp"
#include "vitte/detail/resume.hpp"
#include "vitte/detail/timer_entry.hpp"
#include "vitte/task_options.hpp"

namespace vitte::detail {

// Binds the options of a coroutine start (Scheduler::start, sync_wait, reschedule): as
// bind_options, and a deadline is refused (`what` names the call). Null for none.
std::unique_ptr<OwnedOptions> coroutine_options(SchedulerCore* core, const TaskOptions& o, const char* what);


[[noreturn]] void throw_cancelled(Interruptible::Outcome o, const char* what);

// True when nothing else is ready for `w` on its node (its own deque, the node's urgent
// lane, injection queue and policy work are empty, in a run that is not deterministic):
// a yield of a coroutine without options then goes on at once, as a round trip through the
// queue would, minus the trip and the hand-off to a searching worker that would take the
// coroutine away.
bool nothing_else_ready(const WorkerLocal& w) noexcept;

struct YieldAwaiter {
  const std::stop_token* token = nullptr;
  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    token = token_of(h);
    if (token != nullptr && token->stop_requested()) return false;  // Cancelled at once
    WorkerLocal& w = require_worker("vitte::yield");
    // A coroutine with options (a node, a priority) always goes through the route, which
    // honours them: its yield may move it to its node, or behind work of its level.
    const BoundOptions* opts = options_of(h);
    if (opts == nullptr && nothing_else_ready(w)) return false;
    resume_later(w.core, h, Lane::Fifo, static_cast<int>(w.node), w.isolation, opts);
    return true;
  }
  void await_resume() const {
    if (token != nullptr && token->stop_requested()) throw_cancelled(Interruptible::Outcome::Stopped, "vitte::yield");
  }
};

// Checks `node` against the running worker's scheduler (UsageError naming it).
void check_node(const WorkerLocal& w, unsigned node);

struct ScheduleOnAwaiter {
  unsigned node;
  const std::stop_token* token = nullptr;
  bool await_ready() const {
    WorkerLocal& w = require_worker("vitte::schedule_on");
    check_node(w, node);
    return false;
  }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    token = token_of(h);
    if (token != nullptr && token->stop_requested()) return false;  // Cancelled at once
    // The node asked for beats the coroutine's options' node; the rest of them hold.
    const BoundOptions* o = options_of(h);
    if (o != nullptr && o->node >= 0 && o->node != static_cast<int>(node)) {
      BoundOptions here = *o;
      here.node = static_cast<int>(node);
      rehome(h, std::move(here));
      o = options_of(h);
    }
    resume_later(tls_worker->core, h, Lane::Fifo, static_cast<int>(node), tls_worker->isolation, o);
    return true;
  }
  void await_resume() const {
    if (token != nullptr && token->stop_requested())
      throw_cancelled(Interruptible::Outcome::Stopped, "vitte::schedule_on");
  }
  template <class P>
  static void rehome(std::coroutine_handle<P> h, BoundOptions o) {
    if constexpr (std::is_base_of_v<PromiseBase, P>)
      h.promise().options.own(std::unique_ptr<OwnedOptions>(new OwnedOptions{std::move(o), nullptr}));
  }
};

// co_await vitte::reschedule(opts): the coroutine goes on under `opts` (Scheduler::start):
// it is queued as they say (like yield) and every later resumption follows them. Empty
// options drop the coroutine's options. UsageError for options that would not apply
// (bound on the running worker's scheduler); a deadline is refused.
struct RescheduleAwaiter {
  TaskOptions opts;
  std::unique_ptr<OwnedOptions> bound{};
  const std::stop_token* token = nullptr;
  bool await_ready() {
    WorkerLocal& w = require_worker("vitte::reschedule");
    bound = coroutine_options(w.core, opts, "vitte::reschedule(options)");
    return false;
  }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    static_assert(std::is_base_of_v<PromiseBase, P>, "vitte::reschedule is for vitte::task coroutines");
    token = token_of(h);
    if (token != nullptr && token->stop_requested()) return false;  // Cancelled at once
    // Empty options: none from here on (an empty set, which keeps the earlier ones alive
    // for the children that still point at them).
    if (bound == nullptr && h.promise().options.get() != nullptr) bound.reset(new OwnedOptions{});
    if (bound != nullptr) h.promise().options.own(std::move(bound));
    WorkerLocal* w = tls_worker;
    resume_later(w->core, h, Lane::Fifo, -1, w->isolation, options_of(h));
    return true;
  }
  void await_resume() const {
    if (token != nullptr && token->stop_requested())
      throw_cancelled(Interruptible::Outcome::Stopped, "vitte::reschedule");
  }
};

class SleepAwaiter : Interruptible {
 public:
  explicit SleepAwaiter(std::chrono::steady_clock::time_point deadline) noexcept : entry_(this) {
    entry_.deadline = deadline;
  }
  SleepAwaiter(SleepAwaiter&& o) noexcept : Interruptible(std::move(o)), entry_(this) {
    entry_.deadline = o.entry_.deadline;
  }
  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    if (!begin(h, token_of(h), Lane::Urgent, -1)) return false;
    entry_.fire = &fired;
    if (!arm_timer(core_, &entry_, node_)) {  // the scheduler is shutting down: not armed
      event(Outcome::ShutDown);
      return false;
    }
    return end(&take_back);
  }
  void await_resume() {
    const Outcome o = finish();
    if (o != Outcome::Event) throw_cancelled(o, "vitte::sleep_for/sleep_until");
  }

 private:
  struct Entry : TimerEntry {
    explicit Entry(SleepAwaiter* s) noexcept : self(s) {}
    SleepAwaiter* self;
  };
  static void fired(TimerEntry* e, TimerEvent ev) noexcept {
    static_cast<Entry*>(e)->self->event(ev == TimerEvent::Fired ? Outcome::Event : Outcome::ShutDown);
  }
  static bool take_back(Interruptible* i) noexcept {
    SleepAwaiter* self = static_cast<SleepAwaiter*>(i);
    return cancel_timer(self->core_, &self->entry_);
  }
  Entry entry_;
};

}  // namespace vitte::detail

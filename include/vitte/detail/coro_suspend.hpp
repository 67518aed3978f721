// Suspensions that wait for something outside the coroutine (a timer, a future) and can
// be called off by the coroutine's stop token.
//
// Interruptible: exactly one resumption, whichever comes first of the event and the stop
// request. Invariants:
//   S1  `pending_` starts at 2: one share for await_suspend's setup, one for the winner
//       of the race (the event, or a stop request whose take_back() succeeded). Each
//       drops its share once; whoever drops the last queues the resumption, or, if that
//       is the setup itself, await_suspend returns false and the coroutine goes on inline.
//   S2  the event and the canceller decide the winner with the source's own take-back
//       (cancel_timer, ContinuationSlot::unsubscribe): only one of them can succeed, so
//       only one of them drops the second share.
//   S3  `outcome_` is written by the winner before its share drops (acq_rel), and read
//       after the resumption (the queue hand-off, or the setup's own acq_rel RMW).
//   S4  the stop callback is deregistered (std::stop_callback's destructor) before the
//       awaiter dies; that destructor waits for a callback running on another thread, so
//       a losing canceller never touches a dead awaiter.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <utility>

#include "vitte/detail/coro_promise.hpp"
#include "vitte/detail/resume.hpp"
#include "vitte/detail/worker_local.hpp"
#include "vitte/error.hpp"

namespace vitte::detail {

// The running worker, or a UsageError naming `what` on threads that are not workers
// (src/coro/coro.cpp).
WorkerLocal& require_worker(const char* what);

class Interruptible {
 public:
  enum class Outcome : unsigned char { Event, Stopped, ShutDown };

  Interruptible() = default;
  // Moved only before it is awaited (the operand of co_await): a fresh one.
  Interruptible(Interruptible&&) noexcept {}
  Interruptible(const Interruptible&) = delete;
  Interruptible& operator=(const Interruptible&) = delete;

 protected:
  // Setup, part 1: where to resume. Returns false when the token was triggered already
  // (nothing is armed; the caller returns false from await_suspend).
  template <class P>
  bool begin(std::coroutine_handle<P> h, const std::stop_token* token, Lane lane, int node) {
    WorkerLocal& w = require_worker("a vitte::task's co_await");
    h_ = h;
    opts_ = options_of(h);
    core_ = w.core;
    lane_ = lane;
    node_ = node < 0 ? static_cast<int>(w.node) : node;
    region_ = w.isolation;  // the resumption runs in it, whoever queues it (resume.hpp)
    token_ = token;
    if (token != nullptr && token->stop_requested()) {
      outcome_ = Outcome::Stopped;
      return false;
    }
    return true;
  }
  // Setup, part 2, once the event source holds us: listen to the token, then drop the
  // setup's share. True: stay suspended.
  bool end(bool (*take_back)(Interruptible*) noexcept) {
    take_back_ = take_back;
    if (token_ != nullptr && token_->stop_possible()) on_stop_.emplace(*token_, OnStop{this});
    // acq_rel: S1/S3.
    return pending_.fetch_sub(1, std::memory_order_acq_rel) != 1;
  }
  // The event side: the source fired (or was dropped by a shutdown).
  void event(Outcome o) noexcept {
    outcome_ = o;
    drop_share();
  }
  // await_resume: deregister (S4) and report.
  Outcome finish() noexcept {
    on_stop_.reset();
    return outcome_;
  }

  SchedulerCore* core_ = nullptr;
  int node_ = -1;

 private:
  struct OnStop {
    Interruptible* self;
    void operator()() const noexcept {
      if (self->take_back_(self)) {  // S2: we won; the event will never come
        self->outcome_ = Outcome::Stopped;
        WorkerLocal* w = tls_worker;
        const bool outer = w != nullptr && std::exchange(w->in_stop_callback, true);
        self->drop_share();
        if (w != nullptr) w->in_stop_callback = outer;
      }
    }
  };
  void drop_share() noexcept {
    // acq_rel: S1/S3. After the last share drops, this object may be gone (resumed).
    std::coroutine_handle<> h = h_;
    SchedulerCore* core = core_;
    const Lane lane = lane_;
    const int node = node_;
    const std::uint64_t region = region_;
    const BoundOptions* opts = opts_;
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) resume_later(core, h, lane, node, region, opts);
  }

  std::coroutine_handle<> h_{};
  const std::stop_token* token_ = nullptr;
  bool (*take_back_)(Interruptible*) noexcept = nullptr;
  std::optional<std::stop_callback<OnStop>> on_stop_;
  std::uint64_t region_ = 0;  // the isolation region the coroutine was suspended in
  const BoundOptions* opts_ = nullptr;  // the coroutine's options (options_of), kept alive by it
  std::atomic<int> pending_{2};
  Outcome outcome_ = Outcome::Event;
  Lane lane_ = Lane::Local;
};

}  // namespace vitte::detail

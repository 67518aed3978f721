#include "timer/timer_queue.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>

#include <array>
#include <cstdio>

#include "worker/worker.hpp"

namespace vitte::detail {

using Clock = std::chrono::steady_clock;

TimerQueue::TimerQueue(unsigned node, std::vector<int> cpus, bool manual)
    : node_(node), cpus_(std::move(cpus)), manual_(manual) {}

TimerQueue::~TimerQueue() {
  VITTE_ASSERT(!thread_.joinable(), "Q3: a timer queue destroyed before close()");
}

bool TimerQueue::arm(TimerEntry* e) {
  bool notify = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return false;  // Q3, T4
    if (!started_ && !manual_) start_thread();
    e->seq = next_seq_++;  // T3
    heap_.push(e);
    ++counts_.armed;
    if (e->deadline < sleeping_until_) {  // Q2
      notify = true;
      sleeping_until_ = Clock::time_point::min();  // it will look again: no second notify
    }
  }
  // Outside the lock, so the woken thread does not block on it at once. The condition
  // variable lives as long as the queue, which outlives every arm().
  if (notify) wake_.notify_one();
  return true;
}

bool TimerQueue::cancel(TimerEntry* e) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  if (e->slot == TimerEntry::kNotQueued) return false;  // T1, T2: fired or dropped
  heap_.remove(e);
  ++counts_.cancelled;
  // The thread may sleep until this entry's deadline; it then wakes once, finds nothing
  // due and sleeps again. Cheaper than a notify for every cancel of the earliest entry.
  return true;
}

TimerHeap::Storage TimerQueue::close() noexcept {
  TimerHeap::Storage left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    left = heap_.take_all();
    counts_.dropped += left.size();
  }
  wake_.notify_one();
  // Q1: closed_ is set, so no arm() starts the thread any more; our lock ordered us after
  // the one that did.
  if (thread_.joinable()) thread_.join();
  return left;
}

std::size_t TimerQueue::fire_due(Clock::time_point now) noexcept {  // the thread, keepers, manual queues
  // Q6: one firer at a time, so entries fire in the order they leave the heap.
  std::lock_guard<std::mutex> firing(fire_mu_);
  std::size_t fired = 0;
  std::array<TimerEntry*, 64> due;
  for (;;) {
    std::size_t n = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (n < due.size() && !heap_.empty() && heap_.top()->deadline <= now) due[n++] = heap_.pop();
      counts_.fired += n;
    }
    if (n == 0) return fired;
    for (std::size_t i = 0; i < n; ++i) due[i]->fire(due[i], TimerEvent::Fired);  // T2
    fired += n;
  }
}

bool TimerQueue::next_due(Clock::time_point* at) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (heap_.empty()) return false;
  *at = heap_.top()->deadline;
  return true;
}

namespace {

// `t` plus the keeper's backstop, saturating: a sleep armed near time_point::max() (a
// huge duration) must not overflow.
Clock::time_point past_backstop(Clock::time_point t) noexcept {
  return t > Clock::time_point::max() - TimerQueue::kKeeperBackstop ? Clock::time_point::max()
                                                                   : t + TimerQueue::kKeeperBackstop;
}

}  // namespace

bool TimerQueue::keep(Clock::time_point* until) {
  bool notify = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (manual_ || closed_ || keeper_ || heap_.empty()) return false;
    keeper_ = true;
    keeper_until_ = heap_.top()->deadline;
    *until = keeper_until_;
    // The thread chose its wait before there was a keeper: it would wake at the same
    // deadline and race us for it. Told, it waits out the backstop instead (Q5).
    if (sleeping_until_ < past_backstop(keeper_until_) && sleeping_until_ != Clock::time_point::min()) {
      notify = true;
      sleeping_until_ = Clock::time_point::min();  // Q2: it will look again
    }
  }
  if (notify) wake_.notify_one();
  return true;
}

void TimerQueue::resign(bool timed_out) noexcept {
  bool notify = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    keeper_ = false;
    // Woken by work before the deadline: the thread, which sleeps past it, takes it over.
    if (!timed_out && !heap_.empty() && !closed_) {
      notify = true;
      sleeping_until_ = Clock::time_point::min();  // Q2: it will look again
    }
  }
  if (notify) wake_.notify_one();
}

TimerCounts TimerQueue::counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_;
}

std::size_t TimerQueue::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return heap_.size();
}

std::size_t TimerQueue::capacity() const {
  std::lock_guard<std::mutex> lock(mu_);
  return heap_.capacity();
}

void TimerQueue::start_thread() {
  thread_ = std::thread([this] { run(); });
  started_ = true;
}

void TimerQueue::set_up_thread() noexcept {
  char name[16];  // "vitte-t/n<node>", 15 characters at most, like the workers'
  std::snprintf(name, sizeof name, "vitte-t/n%u", node_);
  pthread_setname_np(pthread_self(), name);
  // Linux lets a normal thread's timed waits end up to its timer slack late (50 µs by
  // default) to batch wake-ups; lateness is what this thread is for.
  (void)prctl(PR_SET_TIMERSLACK, kTimerSlackNs, 0, 0, 0);
  // Its CPUs may all be held by busy workers, which ask for short slices themselves; with
  // the default slice (1.4 ms here) its wake-up more often waits behind theirs until the
  // next tick (docs/design.md, Timers: measured on a shared machine).
  request_short_slice();
  if (cpus_.empty()) return;
  int max_cpu = 0;
  for (int c : cpus_) max_cpu = c > max_cpu ? c : max_cpu;
  const std::size_t n = static_cast<std::size_t>(max_cpu) + 1;
  cpu_set_t* set = CPU_ALLOC(n);
  if (set == nullptr) return;
  const std::size_t bytes = CPU_ALLOC_SIZE(n);
  CPU_ZERO_S(bytes, set);
  for (int c : cpus_) CPU_SET_S(static_cast<std::size_t>(c), bytes, set);
  // Best effort: unbound, the thread still works; it only may run on another node.
  (void)pthread_setaffinity_np(pthread_self(), bytes, set);
  CPU_FREE(set);
}

void TimerQueue::run() noexcept {
  set_up_thread();
  std::unique_lock<std::mutex> lock(mu_);
  while (!closed_) {
    const Clock::time_point now = Clock::now();
    if (!heap_.empty() && heap_.top()->deadline <= now) {
      // T2: popped in batches under mu_, fired without it (fire_due, Q6); fire() is the
      // last touch of each.
      lock.unlock();
      (void)fire_due(now);
      lock.lock();
      continue;  // more may be due, or have been armed meanwhile
    }
    if (heap_.empty()) {
      sleeping_until_ = Clock::time_point::max();
      wake_.wait(lock);
    } else {
      // Q5: what the keeper sleeps until is its; an entry armed since, due before, is ours.
      const Clock::time_point next = heap_.top()->deadline;
      sleeping_until_ = keeper_ && next >= keeper_until_ ? past_backstop(next) : next;
      wake_.wait_until(lock, sleeping_until_);
    }
    sleeping_until_ = Clock::time_point::min();  // Q2: awake
  }
}

}  // namespace vitte::detail

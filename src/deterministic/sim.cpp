#include "deterministic/sim.hpp"

#include <cstdio>

#include "clock/clock.hpp"
#include "deterministic/det_worker.hpp"
#include "scheduler_core.hpp"
#include "timer/timer_service.hpp"
#include "worker/worker.hpp"

namespace vitte::detail {

constinit thread_local DetSim* tls_sim = nullptr;


DetSim::DetSim(SchedulerCore& core, const DeterministicOptions& o, unsigned workers)
    : core_(core),
      opts_(o),
      n_(workers),
      parts_(std::make_unique<Part[]>(workers + 1)),
      chooser_(o, workers + 1, workers),
      holder_(workers) {
  runnable_.reserve(workers + 1);
  parts_[n_].state = State::Running;
  if (opts_.stall_report.count() > 0) wd_ = std::thread([this] { watchdog(); });
}

DetSim::~DetSim() {
  detach_driver();
  stop_watchdog();
}

void DetSim::stop_watchdog() noexcept {
  {
    std::lock_guard<std::mutex> lock(wd_mu_);
    wd_stop_ = true;
  }
  wd_cv_.notify_all();
  if (wd_.joinable()) wd_.join();
}

void DetSim::attach_driver() {
  if (tls_sim != nullptr)
    throw UsageError("deterministic mode: this thread already drives a deterministic scheduler (seed " +
                     std::to_string(tls_sim->seed()) + "); a thread drives one at a time");
  tls_sim = this;
  tls_vclock = &vnow_;
  tls_vcpu = &parts_[n_].vcpu;
}

void DetSim::detach_driver() noexcept {
  if (tls_sim != this) return;
  tls_sim = nullptr;
  tls_vclock = nullptr;
  tls_vcpu = nullptr;
}

void DetSim::attach_worker(unsigned w) noexcept {
  tls_sim = this;
  tls_vclock = &vnow_;
  tls_vcpu = &parts_[w].vcpu;
}

bool DetSim::is_participant() const noexcept { return tls_sim == this; }

void DetSim::enter(unsigned w) { parts_[w].sem.acquire(); }

void DetSim::release_all() noexcept {
  for (unsigned w = 0; w < n_; ++w) parts_[w].sem.release();
}

void DetSim::mix(std::uint64_t v) noexcept {  // FNV-1a over the value's bytes
  for (int i = 0; i < 8; ++i) {
    hash_ ^= (v >> (8 * i)) & 0xFF;
    hash_ *= 0x100000001B3ull;
  }
}

void DetSim::account(unsigned w) noexcept {
  Part& p = parts_[w];
  const WorkerCounters& c = core_.workers[w]->counters;
  const std::uint64_t ex = c.executed.read() + c.skipped.read();
  const std::uint64_t st[3] = {c.steals_l3.read(), c.steals_node.read(), c.steals_remote.read()};
  mix(ex - p.executed);
  for (int i = 0; i < 3; ++i) {
    mix(st[i] - p.steals[i]);
    steals_ += st[i] - p.steals[i];
    p.steals[i] = st[i];
  }
  p.executed = ex;
}

namespace {
// The virtual clock saturates: a timer at time_point::max() or a huge task_cost stop it at
// the end of time instead of wrapping it into the past.
std::int64_t add_saturated(std::int64_t a, std::int64_t b) noexcept {
  return b > 0 && a > INT64_MAX - b ? INT64_MAX : a + b;
}
}  // namespace

void DetSim::charge(unsigned w) noexcept {
  // relaxed: D1, only the holder writes; readers are ordered by the hand-off (D2).
  vnow_.store(add_saturated(vnow_.load(std::memory_order_relaxed), opts_.task_cost.count()), std::memory_order_relaxed);
  parts_[w].vcpu = add_saturated(parts_[w].vcpu, opts_.task_cost.count());
  ++tasks_;
}

bool DetSim::runnable(unsigned p) const noexcept {
  const Part& s = parts_[p];
  switch (s.state) {
    case State::Ready: return true;
    case State::Idle: return s.seen != progress_;
    case State::Waiting: return s.waiting->finished() || s.seen != progress_;
    case State::DriverWaiting: return deadlocked_ || s.waiting->finished();
    case State::DriverStopping:
      for (unsigned w = 0; w < n_; ++w)
        if (parts_[w].state != State::Gone) return deadlocked_;
      return true;
    case State::Running:
    case State::Gone: return false;
  }
  return false;
}

unsigned DetSim::choose(unsigned current) {
  const std::uint64_t turn = turns_.load(std::memory_order_relaxed) + 1;
  for (;;) {
    // Timers due on the virtual clock fire first, as the timer thread would: their work
    // is queued from outside the workers (tls_worker null while they fire).
    WorkerLocal* const self = tls_worker;
    tls_worker = nullptr;
    const bool fired = core_.timers->fire_due(vnow_.load(std::memory_order_relaxed));
    tls_worker = self;
    if (fired) ++progress_;
    runnable_.clear();
    for (unsigned p = 0; p <= n_; ++p)
      if (runnable(p)) runnable_.push_back(p);
    if (opts_.max_turns != 0 && wait_began_ != 0 && turn - wait_began_ >= opts_.max_turns && !deadlocked_) {
      declare_deadlock("the driver's wait has lasted DeterministicOptions::max_turns = " +
                       std::to_string(opts_.max_turns) + " turns without finishing (a livelock?)");
      continue;
    }
    if (!runnable_.empty()) break;
    std::int64_t due = 0;
    if (core_.timers->next_due(&due)) {  // everybody idle: time passes until the next timer
      if (due > vnow_.load(std::memory_order_relaxed)) vnow_.store(due, std::memory_order_relaxed);
      // A timer at the end of time (a saturated deadline) fires there, once the clock got there.
      mix(static_cast<std::uint64_t>(due));
      continue;
    }
    if (deadlocked_) {
      // Nobody can run even so: the driver is not waiting (it holds no wait that could
      // throw). Cannot happen while the driver lives; fail loudly rather than hang.
      std::fprintf(stderr, "vitte: %s\n", deadlock_msg_.c_str());
      std::abort();
    }
    std::string waiting;
    for (unsigned w = 0; w < n_; ++w)
      if (parts_[w].state == State::Waiting) waiting += (waiting.empty() ? "" : ", ") + std::to_string(w);
    declare_deadlock("every worker is idle" +
                     (waiting.empty() ? std::string() : " or blocked in a wait inside a task (workers " + waiting + ")") +
                     ", no timer is pending, and the driver waits for work that can never finish");
  }
  const unsigned next = chooser_.pick(runnable_, current, turn);
  mix(next);
  mix(runnable_.size());
  turns_.store(turn, std::memory_order_relaxed);
  return next;
}

void DetSim::declare_deadlock(const std::string& why) {
  deadlocked_ = true;
  deadlock_msg_ = "deterministic run (" + reproduce() + ") deadlocked after turn " +
                  std::to_string(turns_.load(std::memory_order_relaxed)) + ": " + why;
}

void DetSim::pass(unsigned me) {
  const unsigned next = choose(me);
  if (next == me) return;
  holder_.store(next, std::memory_order_relaxed);
  parts_[next].sem.release();  // D2
  parts_[me].sem.acquire();
}

void DetSim::turn(unsigned w, bool ran) {
  Part& p = parts_[w];
  account(w);
  if (ran) {
    p.state = State::Ready;
    ++progress_;
  } else {
    p.state = State::Idle;
    p.seen = progress_;
  }
  pass(w);
  p.state = State::Running;
}

void DetSim::spawned(unsigned w) {
  if (opts_.spawn_turns) turn(w, /*ran=*/true);
}

void DetSim::turn_handed_back(unsigned w, unsigned node, const WaitCounter* c) {
  // Only the node it went to may now find new work: its workers look again. Nobody else's
  // view changed, so progress_ stays, and w (and any other worker of another node that
  // would take it only to hand it back again) waits for real progress.
  for (unsigned x = 0; x < n_; ++x)
    if (core_.workers[x]->node == node) parts_[x].seen = ~std::uint64_t{0};
  if (c != nullptr) {
    turn_waiting(w, *c);
    return;
  }
  Part& p = parts_[w];
  account(w);
  p.state = State::Idle;
  p.seen = progress_;
  pass(w);
  p.state = State::Running;
}

void DetSim::turn_waiting(unsigned w, const WaitCounter& c) {
  Part& p = parts_[w];
  account(w);
  p.state = State::Waiting;
  p.waiting = &c;
  p.seen = progress_;
  pass(w);
  p.state = State::Running;
  p.waiting = nullptr;
}

void DetSim::leave(unsigned w) {
  account(w);
  parts_[w].state = State::Gone;
  ++progress_;
  const unsigned next = choose(w);
  holder_.store(next, std::memory_order_relaxed);
  parts_[next].sem.release();  // D2: our last touch of the run
}

void DetSim::driver_wait(WaitCounter& c) {
  Part& d = parts_[n_];
  wait_began_ = turns_.load(std::memory_order_relaxed) + 1;
  while (!c.finished()) {
    if (deadlocked_) {
      // Told once: the program may still mend it (set the promise it waits for), and a
      // later wait that is stuck again is found again.
      deadlocked_ = false;
      wait_began_ = 0;
      throw Deadlock(deadlock_msg_);
    }
    d.state = State::DriverWaiting;
    d.waiting = &c;
    ++progress_;  // the driver may have queued work since its last wait
    pass(n_);
    d.state = State::Running;
    d.waiting = nullptr;
  }
  wait_began_ = 0;
}

bool DetSim::drive_until_gone() {
  Part& d = parts_[n_];
  wait_began_ = 0;  // the workers are only leaving: no livelock bound here
  d.state = State::DriverStopping;
  ++progress_;  // every idle worker looks once more, sees the stop and leaves
  while (!runnable(n_) || deadlocked_) {
    if (deadlocked_) {
      d.state = State::Running;
      return false;
    }
    pass(n_);
  }
  d.state = State::Running;
  return true;
}

void DetSim::wait(WaitCounter& c) {
  if (Worker* w = this_worker(); w != nullptr && w->core == &core_)
    help_wait_deterministic(*w, c);
  else
    driver_wait(c);
}

void DetSim::foreign(const char* what) noexcept {
  // relaxed: a statistic; foreign threads are outside D1 by definition.
  foreign_.fetch_add(1, std::memory_order_relaxed);
  if (!foreign_told_.exchange(true, std::memory_order_relaxed))
    std::fprintf(stderr,
                 "vitte: deterministic run (%s): %s from a thread outside the run (neither the thread that made the "
                 "scheduler nor one of its workers); its timing is not the seed's, so this run may not reproduce "
                 "(ScheduleInfo::foreign_inputs counts them)\n",
                 reproduce().c_str(), what);
}

std::string DetSim::reproduce() const {
  // Appended piece by piece (GCC 12 warns, wrongly, of overlapping copies in a chain of +).
  std::string s = "VITTE_DETERMINISTIC=";
  s.append(std::to_string(opts_.seed)).append(":").append(to_string(opts_.strategy));
  if (opts_.strategy == Strategy::Pct && (opts_.pct_depth != 3 || opts_.pct_turns != 2000))
    s.append(":").append(std::to_string(opts_.pct_depth)).append(":").append(std::to_string(opts_.pct_turns));
  // What the variable cannot say, but the run depends on: the same number of workers (and
  // the same topology, which the program chose), and the options below.
  s.append(" with ").append(std::to_string(n_)).append(n_ == 1 ? " worker" : " workers");
  if (!opts_.spawn_turns) s.append(", DeterministicOptions::spawn_turns = false");
  if (opts_.task_cost != std::chrono::microseconds(1))
    s.append(", DeterministicOptions::task_cost = ").append(std::to_string(opts_.task_cost.count())).append(" ns");
  return s;
}

ScheduleInfo DetSim::info() const {
  ScheduleInfo i;
  i.deterministic = true;
  i.seed = opts_.seed;
  i.strategy = opts_.strategy;
  i.turns = turns_.load(std::memory_order_relaxed);
  i.tasks = tasks_;
  i.steals = steals_;
  i.hash = hash_;
  i.virtual_ns = vnow_.load(std::memory_order_relaxed) - kEpochNs;
  i.foreign_inputs = foreign_.load(std::memory_order_relaxed);
  i.divergence = chooser_.divergence();
  i.reproduce = reproduce();
  return i;
}

void DetSim::watchdog() noexcept {
  std::unique_lock<std::mutex> lock(wd_mu_);
  std::uint64_t last = ~std::uint64_t{0};
  auto since = std::chrono::steady_clock::now();
  bool told = false;
  const auto step = opts_.stall_report / 4 > std::chrono::milliseconds(1) ? opts_.stall_report / 4
                                                                          : std::chrono::milliseconds(1);
  while (!wd_cv_.wait_for(lock, step, [&] { return wd_stop_; })) {
    const std::uint64_t t = turns_.load(std::memory_order_relaxed);
    const auto now = std::chrono::steady_clock::now();
    if (t != last) {
      last = t;
      since = now;
      told = false;
      continue;
    }
    if (told || now - since < opts_.stall_report) continue;
    told = true;
    const unsigned h = holder_.load(std::memory_order_relaxed);
    const long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - since).count();
    if (h == n_)
      std::fprintf(stderr,
                   "vitte: deterministic run (%s): the driver has held the turn for %lld ms after turn %llu without "
                   "waiting; tasks run only while it waits (join_all, TaskGroup::wait, Future::get, sync_wait), so a "
                   "driver that polls for a result, or blocks on anything else (another thread waiting on this "
                   "scheduler, which only its driver may), waits forever\n",
                   reproduce().c_str(), ms, static_cast<unsigned long long>(t));
    else
      std::fprintf(stderr,
                   "vitte: deterministic run (%s): worker %u has held the turn for %lld ms after turn %llu: its task may "
                   "be blocked on an OS primitive (a mutex, a condition variable, I/O, a thread of the program's), "
                   "which no other task can release while it holds the turn (with DeterministicOptions::spawn_turns, a "
                   "lock held while spawning blocks the same way)\n",
                   reproduce().c_str(), h, ms, static_cast<unsigned long long>(t));
  }
}

}  // namespace vitte::detail

// Cluster-wide termination: join_all() returns on every rank exactly when no cluster task
// is queued or running anywhere and no counted message (messages.hpp) is in flight.
//
// Rank 0's communication thread runs waves: it reads its own (passive, sent, received)
// and asks every other rank for theirs. A rank is passive when the program is in this
// join_all() and `active` is 0 (C2). Termination is declared after two consecutive waves
// in which every rank was passive and the four sums agree:
//   sent(1) == received(1) == sent(2) == received(2).
// Proof sketch (Mattern's four-counter method). Let t be the moment wave 1 ended.
// Counters only grow; wave 1 read each rank before t and wave 2 after t, so
//   received(1) <= R(t) <= S(t) <= sent(2)
// (R(t) <= S(t): nothing is received before it is sent, and C1 counts a send when it is
// queued). Equality throughout gives R(t) == received(1): no rank received anything
// between its wave-1 reading and t. A passive rank becomes active only by receiving a
// counted message (its program thread is blocked in join_all(), and C2 keeps a task
// counted until its last message is queued), so every rank stayed passive up to t; and
// S(t) == R(t): nothing was in flight at t. A state with every rank passive and nothing in
// flight never changes, so it holds from t on. Conversely, once the cluster is quiet two
// waves see it, so join_all() returns.
// Waves back off (20 us doubling to 1 ms) while some rank is active; the confirming wave
// follows at once.
#include <algorithm>

#include "dist/cluster_core.hpp"
#include "dist/messages.hpp"

namespace vitte::dist::detail {

bool ClusterCore::passive() const {
  // acquire: pairs with the release decrements of `active` (C2), so the `sent` a
  // finished task counted is visible to the read that follows.
  return active.load(std::memory_order_acquire) == 0;
}

void ClusterCore::join_all() {
  if (Scheduler::current() == &sched)
    throw UsageError("vitte::dist::Cluster::join_all() from a worker of the cluster's scheduler: it would wait for "
                     "the task that calls it");
  // relaxed: only the program thread in join_all() writes join_epoch.
  const std::uint64_t epoch = join_epoch.load(std::memory_order_relaxed) + 1;
  // release: the program's spawns before join_all() happen before the rank reports passive.
  join_epoch.store(epoch, std::memory_order_release);
  comm_waiter.wake();
  {
    std::unique_lock lock(join_mu);
    join_cv.wait(lock, [&] { return done_epoch.load(std::memory_order_acquire) >= epoch; });
  }
  if (auto e = take_error()) std::rethrow_exception(e);
}

void ClusterCore::finish(std::uint64_t epoch) {
  {
    std::lock_guard lock(join_mu);
    // release: pairs with join_all()'s acquire.
    done_epoch.store(epoch, std::memory_order_release);
  }
  join_cv.notify_all();
}

bool ClusterCore::wave_step() {
  if (rank != 0 || wave_open_) return false;
  // acquire: pairs with join_all()'s release.
  const std::uint64_t epoch = join_epoch.load(std::memory_order_acquire);
  // relaxed: only this thread writes done_epoch.
  if (epoch == 0 || done_epoch.load(std::memory_order_relaxed) >= epoch) return false;
  if (now_ns() < next_wave_ns_) return false;
  wave_ = Wave{};
  wave_.epoch = epoch;
  wave_.id = next_wave_id_++;
  wave_.replies = 1;
  wave_.passive = passive();
  wave_.sent = sent.load(std::memory_order_relaxed);  // after passive(): see there
  wave_.received = received_;
  wave_open_ = true;
  Writer w;
  w.put(wave_.epoch);
  w.put(wave_.id);
  const std::string msg = w.take();
  for (int r = 1; r < size; ++r) send_now(r, kWave, msg);
  if (size == 1) close_wave();
  return true;
}

void ClusterCore::on_wave(int src, std::string_view body) {
  Reader r(body);
  const auto epoch = r.get<std::uint64_t>();
  const auto id = r.get<std::uint64_t>();
  r.finish();
  const bool joined = join_epoch.load(std::memory_order_acquire) == epoch;
  const bool quiet = passive();  // before reading `sent` (see passive())
  Writer w;
  w.put(epoch);
  w.put(id);
  w.put(static_cast<std::uint8_t>(joined && quiet ? 1 : 0));
  w.put(sent.load(std::memory_order_relaxed));
  w.put(received_);
  send_now(src, kWaveReply, w.take());
}

void ClusterCore::on_wave_reply(int src, std::string_view body) {
  Reader r(body);
  const auto epoch = r.get<std::uint64_t>();
  const auto id = r.get<std::uint64_t>();
  const bool p = r.get<std::uint8_t>() != 0;
  const auto s = r.get<std::uint64_t>();
  const auto rc = r.get<std::uint64_t>();
  r.finish();
  if (rank != 0 || !wave_open_ || epoch != wave_.epoch || id != wave_.id) {
    record_error("vitte::dist: rank " + std::to_string(rank) + " received a stray wave reply from rank " +
                 std::to_string(src));
    return;
  }
  wave_.passive = wave_.passive && p;
  wave_.sent += s;
  wave_.received += rc;
  if (++wave_.replies == size) close_wave();
}

void ClusterCore::close_wave() {
  wave_open_ = false;
  const bool done = wave_.passive && last_valid_ && last_.passive && last_.epoch == wave_.epoch &&
                    wave_.sent == wave_.received && last_.sent == wave_.sent && last_.received == wave_.received;
  if (done) {
    Writer w;
    w.put(wave_.epoch);
    const std::string msg = w.take();
    for (int r = 1; r < size; ++r) send_now(r, kDone, msg);
    last_valid_ = false;
    wave_gap_ns_ = 0;
    next_wave_ns_ = 0;
    finish(wave_.epoch);
    return;
  }
  last_ = wave_;
  last_valid_ = true;
  wave_gap_ns_ = wave_.passive ? 0 : std::clamp<std::int64_t>(wave_gap_ns_ * 2, 20'000, 1'000'000);
  next_wave_ns_ = now_ns() + wave_gap_ns_;
}

void ClusterCore::on_done(std::string_view body) {
  Reader r(body);
  const auto epoch = r.get<std::uint64_t>();
  r.finish();
  finish(epoch);
}

}  // namespace vitte::dist::detail

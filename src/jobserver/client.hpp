// JobserverClient: this process's side of a GNU make jobserver (makeflags.hpp says where
// it comes from). make gives each job it starts one implicit token; every further thread
// that runs at the same time must hold a token read from the jobserver and write it back
// when it stops. A scheduler takes part per worker, never per task: a worker holds a token
// from before it runs tasks until it parks (worker/parking.cpp), so a busy worker keeps its
// token across any number of tasks and only a worker that goes to sleep gives it back.
//
// Who holds what. held_[w] is worker w's token: kNone, kImplicit (the process's own token)
// or the byte read from the jobserver (written back as read: make 4.4 gives bytes meaning).
//   J1  At most one worker of the process (of all its schedulers) holds kImplicit, and
//       only while the process-wide flag g_implicit_free (client.cpp) is false.
//   J2  A byte is in exactly one place: the jobserver, or one held_ slot. Every hand-back
//       is an exchange of a slot to kNone (or, J3, of a byte to kImplicit), so a byte
//       is written back once however release, the exit path and the signal path race.
//   J3  A scheduler does not keep a jobserver token while the implicit token it gives
//       back goes free: a worker giving back the implicit token gives back another
//       worker's byte instead when its scheduler has one (that worker now holds the
//       implicit token). Across two schedulers of one process this is not done.
// Waiting: a worker that finds no token polls the jobserver, a process-wide eventfd
// written whenever the implicit token is given back (so that is never missed), and its
// client's wake_fd_, written once when the jobserver breaks or the process exits.
//
// The exit path (exit_return.cpp): exit() and SIGINT/SIGTERM/SIGHUP (where the program has
// no handler of its own) write back every byte held; SIGKILL cannot be caught, and the
// bytes its process held are lost to that make run (make 4.3 prints "INTERNAL: Exiting
// with N jobserver tokens available; should be M!" at its end and runs the rest with fewer
// jobs: checked 2026-12-07 with a recipe that takes a token and kills itself).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "vitte/metrics.hpp"
#include "vitte/scheduler.hpp"

namespace vitte::detail {

class JobserverClient {
 public:
  // MAKEFLAGS per `mode`: null when there is no jobserver to take part in, or (Auto) when
  // the one named cannot be used; *info then says why, and an unusable one is also
  // reported once on stderr. On: PlanError naming `setting` and the reason instead.
  static std::unique_ptr<JobserverClient> open(JobserverMode mode, const std::string& setting, std::size_t workers,
                                               JobserverInfo* info);
  // What open() would find, for a dry run (`vitte-sched topo`): nothing is taken, said
  // or thrown.
  static JobserverInfo probe(JobserverMode mode);
  ~JobserverClient();
  JobserverClient(const JobserverClient&) = delete;
  JobserverClient& operator=(const JobserverClient&) = delete;

  // Blocks until worker w holds a token (the implicit one when free, else one read from
  // the jobserver): true. False, without a token, when the jobserver broke (it is then
  // ignored, said once on stderr), the process is exiting, or stop() was called and
  // nothing_left() says the worker will find no work to run.
  bool acquire(unsigned w, const std::function<bool()>& nothing_left) noexcept;
  // Shutdown has begun (the scheduler's `stopping` is set): waiters look at nothing_left().
  void stop() noexcept;
  // Worker w gives its token back (J3).
  void release(unsigned w) noexcept;
  // Every byte any worker holds, written back (exit_return.cpp); async-signal-safe.
  void return_all() noexcept;

  JobserverInfo info() const;

 private:
  static constexpr int kNone = -1;
  static constexpr int kImplicit = 256;
  JobserverClient(std::size_t workers, int rfd, int wfd, JobserverInfo info);
  bool take_implicit(unsigned w) noexcept;
  void held_now(int delta) noexcept;
  void broke(const char* what, int err) noexcept;

  const int rfd_, wfd_;  // our own open file descriptions: reads never block
  int wake_fd_ = -1;     // eventfd: the jobserver broke, or the process is exiting
  const std::size_t workers_;
  std::unique_ptr<std::atomic<int>[]> held_;
  std::atomic<bool> broken_{false};  // relaxed: once set, acquire() stops waiting
  std::atomic<bool> stopping_{false};
  // Statistics, relaxed: read by snapshots only.
  std::atomic<unsigned> holding_{0}, max_held_{0};
  std::atomic<std::uint64_t> read_{0}, waits_{0};
  JobserverInfo base_;  // kind, option, note
  int registry_slot_ = -1;
};

// exit_return.cpp: the clients alive now, for the exit and signal paths.
int register_client(JobserverClient* c, std::string* note);
void unregister_client(int slot) noexcept;
// A fork's child: the clients are the parent's; forget them without touching their tokens.
void forget_clients_after_fork() noexcept;
// --jobserver-auth=R,W: R and W are one pipe, the one they were when the program started
// (make 4.3 closes them for a recipe without +, and the program may have opened other
// files under those numbers since). *why says otherwise.
struct MakeflagsAuth;
bool same_pipe_as_at_start(const MakeflagsAuth& a, std::string* why);
bool process_exiting() noexcept;

}  // namespace vitte::detail

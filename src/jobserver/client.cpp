// The jobserver client (client.hpp): opening the jobserver MAKEFLAGS names, and the token
// hand-offs of parking workers.
#include "jobserver/client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "io/regular_file.hpp"
#include "jobserver/makeflags.hpp"
#include "vitte/detail/assert.hpp"
#include "vitte/error.hpp"

namespace vitte::detail {

namespace {

// A new open file description of inherited descriptor `fd`'s pipe, with our own flags:
// O_NONBLOCK on make's shared description would change it for make and every other job.
int reopen_fd(int fd, int access, std::string* why) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags == -1) {
    *why = "file descriptor " + std::to_string(fd) + " is not open in this process (make hands its jobserver only "
           "to recipes it knows run a make: put + before the command, or use $(MAKE) in it)";
    return -1;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
    *why = "file descriptor " + std::to_string(fd) + " is " + file_kind(st.st_mode) + ", not the jobserver's pipe";
    return -1;
  }
  const int mode = flags & O_ACCMODE;
  if (mode != O_RDWR && mode != (access == O_RDONLY ? O_RDONLY : O_WRONLY)) {
    *why = "file descriptor " + std::to_string(fd) + " is not open for " + (access == O_RDONLY ? "reading" : "writing");
    return -1;
  }
  const std::string proc = "/proc/self/fd/" + std::to_string(fd);
  const int own = ::open(proc.c_str(), access | O_NONBLOCK | O_CLOEXEC);
  if (own == -1) *why = "cannot reopen " + proc + ": " + std::strerror(errno);
  return own;
}

bool open_fifo(const std::string& path, int* rfd, int* wfd, std::string* why) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    *why = "fifo '" + path + "': " + std::strerror(errno);
    return false;
  }
  if (!S_ISFIFO(st.st_mode)) {
    *why = "'" + path + "' is " + file_kind(st.st_mode) + ", not a fifo";
    return false;
  }
  // The read end first: opening the write end without blocking needs a reader.
  *rfd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (*rfd != -1) *wfd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (*rfd == -1 || *wfd == -1) {
    *why = "fifo '" + path + "': " + std::strerror(errno);
    if (*rfd != -1) ::close(*rfd);
    return false;
  }
  return true;
}

}  // namespace

namespace {

// The process's own token, one per process however many schedulers it runs (make counts
// jobs, not schedulers), and the eventfd written each time it is given back. Made once,
// never closed: a worker of any scheduler may wait on it.
// release: pairs with take_implicit()'s acquire exchange (J1).
std::atomic<bool> g_implicit_free{true};
std::atomic<int> g_implicit_wake{-1};  // relaxed: made once under call_once, remade in a fork's child

int implicit_wake_fd() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_implicit_wake.store(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), std::memory_order_relaxed);
    // A fork's child starts with no scheduler: the process's own token is free, and it
    // gets its own eventfd (the inherited one is the parent's).
    pthread_atfork(nullptr, nullptr, [] {
      g_implicit_free.store(true, std::memory_order_relaxed);
      g_implicit_wake.store(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), std::memory_order_relaxed);
      forget_clients_after_fork();
    });
  });
  return g_implicit_wake.load(std::memory_order_relaxed);
}

struct Connection {
  int rfd = -1, wfd = -1;
  bool named = false;  // MAKEFLAGS names a jobserver (usable or not)
  std::string why;     // why it cannot be used
};

Connection connect(const MakeflagsAuth& a, bool env_set) {
  Connection c;
  c.named = a.kind != MakeflagsAuth::Kind::None || !a.error.empty();
  if (!a.error.empty()) {
    c.why = "MAKEFLAGS: " + a.error;
  } else if (a.kind == MakeflagsAuth::Kind::None) {
    c.why = !env_set  ? "MAKEFLAGS is not set"
            : a.has_j ? "MAKEFLAGS has -j but no jobserver (make's unlimited -j, or not started by make)"
                      : "MAKEFLAGS names no jobserver";
  } else if (a.kind == MakeflagsAuth::Kind::Fifo) {
    open_fifo(a.path, &c.rfd, &c.wfd, &c.why);
  } else {
    c.rfd = same_pipe_as_at_start(a, &c.why) ? reopen_fd(a.read_fd, O_RDONLY, &c.why) : -1;
    if (c.rfd != -1) {
      c.wfd = reopen_fd(a.write_fd, O_WRONLY, &c.why);
      if (c.wfd == -1) ::close(c.rfd), c.rfd = -1;
    }
  }
  return c;
}

MakeflagsAuth makeflags(bool* set) {
  const char* env = std::getenv("MAKEFLAGS");
  *set = env != nullptr;
  return parse_makeflags(env != nullptr ? env : "");
}

}  // namespace

JobserverInfo JobserverClient::probe(JobserverMode mode) {
  JobserverInfo info;
  if (mode == JobserverMode::Off) {
    info.note = "jobserver = off";
    return info;
  }
  bool set = false;
  const MakeflagsAuth a = makeflags(&set);
  Connection c = connect(a, set);
  if (c.rfd == -1) {
    info.note = c.why;
    return info;
  }
  ::close(c.rfd);
  ::close(c.wfd);
  info.in_use = true;
  info.kind = a.kind == MakeflagsAuth::Kind::Fifo ? "fifo" : "pipe";
  info.option = a.option;
  return info;
}

std::unique_ptr<JobserverClient> JobserverClient::open(JobserverMode mode, const std::string& setting,
                                                       std::size_t workers, JobserverInfo* info) {
  *info = JobserverInfo{};
  if (mode == JobserverMode::Off) {
    info->note = setting + " = off";
    return nullptr;
  }
  bool set = false;
  const MakeflagsAuth a = makeflags(&set);
  const Connection c = connect(a, set);
  if (c.rfd == -1) {
    if (mode == JobserverMode::On) throw PlanError(setting + " = on, but the jobserver cannot be used: " + c.why);
    info->note = c.why;
    // A jobserver was named and cannot be used: this process may oversubscribe the
    // machine, which its user should hear about.
    if (c.named)
      std::fprintf(stderr, "vitte: jobserver: %s (%s); running the plan's %zu workers without it\n", c.why.c_str(),
                   a.option.empty() ? "MAKEFLAGS" : a.option.c_str(), workers);
    return nullptr;
  }
  info->in_use = true;
  info->kind = a.kind == MakeflagsAuth::Kind::Fifo ? "fifo" : "pipe";
  info->option = a.option;
  auto client = std::unique_ptr<JobserverClient>(new JobserverClient(workers, c.rfd, c.wfd, *info));
  client->registry_slot_ = register_client(client.get(), &client->base_.note);
  return client;
}

JobserverClient::JobserverClient(std::size_t workers, int rfd, int wfd, JobserverInfo info)
    : rfd_(rfd), wfd_(wfd), workers_(workers), held_(new std::atomic<int>[workers]), base_(std::move(info)) {
  for (std::size_t w = 0; w < workers; ++w) held_[w].store(kNone, std::memory_order_relaxed);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ == -1 || implicit_wake_fd() == -1) {
    if (wake_fd_ != -1) ::close(wake_fd_);
    ::close(rfd_);
    ::close(wfd_);
    throw PlanError(std::string("jobserver: eventfd: ") + std::strerror(errno));
  }
}

JobserverClient::~JobserverClient() {
  unregister_client(registry_slot_);
  for (std::size_t w = 0; w < workers_; ++w)
    VITTE_ASSERT(held_[w].load(std::memory_order_relaxed) == kNone, "a worker still holds a jobserver token");
  ::close(rfd_);
  ::close(wfd_);
  ::close(wake_fd_);
}

void JobserverClient::held_now(int delta) noexcept {
  // relaxed: statistics (JobserverInfo), read by snapshots.
  const unsigned now = holding_.fetch_add(static_cast<unsigned>(delta), std::memory_order_relaxed) +
                       static_cast<unsigned>(delta);
  unsigned max = max_held_.load(std::memory_order_relaxed);
  while (now > max && !max_held_.compare_exchange_weak(max, now, std::memory_order_relaxed)) {
  }
}

bool JobserverClient::take_implicit(unsigned w) noexcept {
  // acquire: pairs with release()'s store of true, so the previous holder's use of the
  // token happened before ours (J1).
  if (!g_implicit_free.load(std::memory_order_relaxed) || !g_implicit_free.exchange(false, std::memory_order_acquire))
    return false;
  held_[w].store(kImplicit, std::memory_order_relaxed);  // relaxed: only this worker and J3 read it
  held_now(+1);
  return true;
}

void JobserverClient::broke(const char* what, int err) noexcept {
  if (broken_.exchange(true, std::memory_order_relaxed)) return;
  std::fprintf(stderr, "vitte: jobserver: %s: %s; running without it from now on\n", what, std::strerror(err));
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);  // left unread: every waiter sees it (acquire)
}

bool JobserverClient::acquire(unsigned w, const std::function<bool()>& nothing_left) noexcept {
  VITTE_ASSERT(w < workers_ && held_[w].load(std::memory_order_relaxed) == kNone, "a worker takes a second token");
  bool counted_wait = false;
  for (;;) {
    // relaxed: flags; once set, running without tokens is the documented fallback.
    if (broken_.load(std::memory_order_relaxed) || process_exiting()) return false;
    if (take_implicit(w)) return true;
    unsigned char byte = 0;
    const ssize_t n = ::read(rfd_, &byte, 1);
    if (n == 1) {
      if (process_exiting()) {  // the exit path has run: hand it straight back
        (void)!::write(wfd_, &byte, 1);
        return false;
      }
      held_[w].store(byte, std::memory_order_relaxed);
      read_.fetch_add(1, std::memory_order_relaxed);
      held_now(+1);
      return true;
    }
    if (n == 0) return broke("reading a token", EPIPE), false;  // no writer left: make is gone
    if (errno != EAGAIN && errno != EINTR) return broke("reading a token", errno), false;
    if (errno == EINTR) continue;
    // Shutdown: a worker needs no token to see that nothing is left and end; the holder
    // of the last token may itself be waiting for this scheduler to end (a scheduler
    // destroyed inside another one's task).
    const bool stopping = stopping_.load(std::memory_order_acquire);
    if (stopping && nothing_left()) return false;
    if (!counted_wait) {
      waits_.fetch_add(1, std::memory_order_relaxed);
      counted_wait = true;
    }
    // wake_fd_ is never drained (it says the jobserver broke, the process is exiting or
    // the scheduler is stopping: all final; while stopping, the waiter looks again every
    // millisecond instead); the implicit token's eventfd is drained by whoever wakes
    // first, and every waiter tries the token after any wake-up.
    pollfd fds[3] = {{rfd_, POLLIN, 0}, {stopping ? -1 : wake_fd_, POLLIN, 0}, {implicit_wake_fd(), POLLIN, 0}};
    if (::poll(fds, 3, stopping ? 1 : -1) == -1 && errno != EINTR) return broke("waiting for a token", errno), false;
    if (((fds[0].revents | fds[1].revents | fds[2].revents) & (POLLERR | POLLNVAL)) != 0)
      return broke("waiting for a token (a descriptor was closed under it)", EBADF), false;
    if ((fds[2].revents & POLLIN) != 0) {
      std::uint64_t v;
      (void)!::read(implicit_wake_fd(), &v, sizeof v);  // another waiter may have drained it: EAGAIN
    }
  }
}

void JobserverClient::stop() noexcept {
  // release: pairs with acquire()'s load; the scheduler's `stopping` was set before.
  stopping_.store(true, std::memory_order_release);
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void JobserverClient::release(unsigned w) noexcept {
  // relaxed exchanges on held_: a slot carries no data but its own value (J2 needs only
  // that each value is taken once, which the exchange gives).
  const int mine = held_[w].exchange(kNone, std::memory_order_relaxed);
  if (mine == kNone) return;  // never took one (broken jobserver), or the exit path returned it
  held_now(-1);
  if (mine != kImplicit) {
    const unsigned char byte = static_cast<unsigned char>(mine);
    (void)!::write(wfd_, &byte, 1);
    return;
  }
  // J3: keep the implicit token with another worker holding a byte, and give the byte back.
  for (std::size_t o = 0; o < workers_; ++o) {
    int b = held_[o].load(std::memory_order_relaxed);
    if (o == w || b == kNone || b == kImplicit) continue;
    if (held_[o].compare_exchange_strong(b, kImplicit, std::memory_order_relaxed)) {
      const unsigned char byte = static_cast<unsigned char>(b);
      (void)!::write(wfd_, &byte, 1);
      return;
    }
  }
  // release: pairs with take_implicit()'s acquire exchange.
  g_implicit_free.store(true, std::memory_order_release);
  const std::uint64_t one = 1;
  (void)!::write(implicit_wake_fd(), &one, sizeof one);
}

void JobserverClient::return_all() noexcept {
  for (std::size_t w = 0; w < workers_; ++w) {
    const int b = held_[w].load(std::memory_order_relaxed);
    if (b == kNone || b == kImplicit) continue;
    int seen = b;
    if (held_[w].compare_exchange_strong(seen, kNone, std::memory_order_relaxed)) {
      const unsigned char byte = static_cast<unsigned char>(b);
      (void)!::write(wfd_, &byte, 1);
      holding_.fetch_sub(1, std::memory_order_relaxed);  // lock-free: fine in a signal handler
    }
  }
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);  // waiters see process_exiting() and stop
}

JobserverInfo JobserverClient::info() const {
  JobserverInfo i = base_;
  i.in_use = !broken_.load(std::memory_order_relaxed);
  if (!i.in_use) i.note = "the jobserver broke while in use (said on stderr); running without it";
  i.tokens_held = holding_.load(std::memory_order_relaxed);
  i.max_held = max_held_.load(std::memory_order_relaxed);
  i.tokens_read = read_.load(std::memory_order_relaxed);
  i.waits = waits_.load(std::memory_order_relaxed);
  return i;
}

}  // namespace vitte::detail

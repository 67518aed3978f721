// The exit and signal paths of the jobserver clients (client.hpp): whatever tokens the
// process holds when it exits or is killed by SIGINT, SIGTERM or SIGHUP go back to make.
//
// A fixed table of the live clients, read by an async-signal-safe handler: it only loads
// the table's atomics, exchanges token slots (lock-free atomics) and calls write(2).
//   E1  A client is in the table from its open to its destruction, which happens after
//       its workers have stopped (they hold no token then). A signal that lands while a
//       client is being destroyed may read it as it goes: the window is the few stores of
//       its destructor, and the bytes were all given back before it began.
//   E2  The handlers are installed once, for signals whose disposition is the default
//       when the first client opens; a program's own handler is left alone (it can call
//       exit(), which returns the tokens through the atexit path). A handler gives the
//       tokens back, sets the default disposition and raises the signal again, so the
//       process ends as it would have (a crash still dumps its core). Not a handler on
//       an alternate stack: a stack overflow still ends the process without one.
//   E3  A fork's child forgets the parent's clients (their tokens are the parent's), so
//       its exit or a signal to it gives back nothing the parent holds.
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <string>

#include "jobserver/client.hpp"

namespace vitte::detail {

namespace {

constexpr int kSlots = 64;
std::atomic<JobserverClient*> g_clients[kSlots];  // relaxed: see E1; the handler only reads
std::atomic<bool> g_exiting{false};
struct Sig {
  int sig;
  const char* name;
};
// The signals whose default action ends the process: asked for (SIGINT, SIGTERM, SIGHUP,
// SIGQUIT, SIGPIPE of `prog | head`, the resource limits) and crashes (abort(), an
// uncaught exception, a fault).
constexpr Sig kSignals[] = {{SIGINT, "SIGINT"},   {SIGTERM, "SIGTERM"}, {SIGHUP, "SIGHUP"},   {SIGQUIT, "SIGQUIT"},
                            {SIGPIPE, "SIGPIPE"}, {SIGXCPU, "SIGXCPU"}, {SIGXFSZ, "SIGXFSZ"}, {SIGABRT, "SIGABRT"},
                            {SIGSEGV, "SIGSEGV"}, {SIGBUS, "SIGBUS"},   {SIGFPE, "SIGFPE"},   {SIGILL, "SIGILL"}};

void return_everything() noexcept {
  // relaxed: the flag only stops new token reads; the exchanges in return_all() decide
  // who writes each byte back (J2).
  g_exiting.store(true, std::memory_order_relaxed);
  for (auto& slot : g_clients)
    if (JobserverClient* c = slot.load(std::memory_order_acquire)) c->return_all();
}

void on_signal(int sig) {
  const int saved = errno;
  return_everything();
  // The default disposition, set here and not only by SA_RESETHAND: a handler the program
  // installed later may have called this one as its predecessor. The signal is blocked
  // until this handler returns, and then ends the process as it would have.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  std::raise(sig);
  errno = saved;
}

std::string install_handlers() {
  std::string left;
  for (const auto [sig, name] : kSignals) {
    struct sigaction old {};
    if (sigaction(sig, nullptr, &old) != 0) continue;
    const bool plain = (old.sa_flags & SA_SIGINFO) == 0;
    if (plain && old.sa_handler == SIG_IGN) continue;
    if (!plain || old.sa_handler != SIG_DFL) {
      left += std::string(left.empty() ? "" : ", ") + name;
      continue;
    }
    struct sigaction sa {};
    sa.sa_handler = &on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND | SA_RESTART;
    sigaction(sig, &sa, nullptr);
  }
  std::atexit(&return_everything);
  std::at_quick_exit(&return_everything);
  return left.empty() ? "" : "the program handles " + left + " itself: tokens go back on those only if it exits";
}

}  // namespace

int register_client(JobserverClient* c, std::string* note) {
  static const std::string handled = install_handlers();  // E2: once
  if (!handled.empty()) *note = handled;
  for (int i = 0; i < kSlots; ++i) {
    JobserverClient* expected = nullptr;
    // release: pairs with the handler's acquire load, which then sees a constructed client.
    if (g_clients[i].compare_exchange_strong(expected, c, std::memory_order_release, std::memory_order_relaxed))
      return i;
  }
  *note = "more than 64 schedulers use the jobserver at once: this one's tokens are not returned on a signal";
  return -1;
}

void unregister_client(int slot) noexcept {
  if (slot >= 0) g_clients[slot].store(nullptr, std::memory_order_relaxed);
}

void forget_clients_after_fork() noexcept {
  for (auto& slot : g_clients) slot.store(nullptr, std::memory_order_relaxed);  // one thread in the child
  g_exiting.store(false, std::memory_order_relaxed);
}

bool process_exiting() noexcept { return g_exiting.load(std::memory_order_relaxed); }

}  // namespace vitte::detail

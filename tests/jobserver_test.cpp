// The jobserver client (jobserver.hpp) inside one process: MAKEFLAGS parsing, the token
// bound on a fifo jobserver this test makes, every token back after shutdown and after a
// task's exception, and the settings (option, config key, refusals). Across processes and
// under make: tests/jobserver/make_test.py.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "jobserver/makeflags.hpp"
#include "tests/test_support.hpp"
#include "vitte/vitte.hpp"

namespace {

using vitte::detail::MakeflagsAuth;
using vitte::detail::parse_makeflags;

// A fifo jobserver in a fresh directory, holding `tokens` tokens, named in MAKEFLAGS for
// the test's lifetime.
class FifoJobserver {
 public:
  explicit FifoJobserver(int tokens) {
    char tmpl[] = "/tmp/vitte-js-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/fifo";
    if (mkfifo(path_.c_str(), 0600) != 0) throw std::runtime_error("mkfifo");
    rfd_ = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK);
    wfd_ = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK);
    for (int i = 0; i < tokens; ++i) (void)!::write(wfd_, "+", 1);
    setenv("MAKEFLAGS", (" -j" + std::to_string(tokens + 1) + " --jobserver-auth=fifo:" + path_).c_str(), 1);
  }
  ~FifoJobserver() {
    unsetenv("MAKEFLAGS");
    ::close(rfd_);
    ::close(wfd_);
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  // Takes every token out and puts them back: how many there are now.
  int count() {
    char buf[64];
    const ssize_t n = ::read(rfd_, buf, sizeof buf);
    if (n > 0) (void)!::write(wfd_, buf, static_cast<std::size_t>(n));
    return n > 0 ? static_cast<int>(n) : 0;
  }
  const std::string& path() const { return path_; }

 private:
  std::string dir_, path_;
  int rfd_ = -1, wfd_ = -1;
};

// A busy task that counts how many of its kind run at once.
struct BusyTask {
  std::atomic<int>* running;
  std::atomic<int>* peak;
  void operator()(std::size_t) const {
    vitte::test::raise_max(*peak, running->fetch_add(1) + 1);
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
    while (std::chrono::steady_clock::now() < until) {
    }
    running->fetch_sub(1);
  }
};

// Runs `tasks` busy tasks and returns the most that ran at once.
int peak_running(vitte::Scheduler& sched, std::size_t tasks) {
  std::atomic<int> running{0}, peak{0};
  vitte::parallel_for(sched, 0, tasks, 1, BusyTask{&running, &peak});
  return peak.load();
}

vitte::Options with(std::size_t workers, std::optional<vitte::JobserverMode> mode) {
  vitte::Options o;
  o.workers = workers;
  o.jobserver = mode;
  return o;
}

}  // namespace

TEST(Makeflags, ReadsEveryFormMakeAndNinjaWrite) {
  MakeflagsAuth a = parse_makeflags(" -j4 --jobserver-auth=3,4");
  EXPECT_EQ(a.kind, MakeflagsAuth::Kind::Pipe);
  EXPECT_EQ(a.read_fd, 3);
  EXPECT_EQ(a.write_fd, 4);
  EXPECT_TRUE(a.has_j);
  a = parse_makeflags("-j --jobserver-fds=5,6 -l4");  // make 4.1 and earlier
  EXPECT_EQ(a.kind, MakeflagsAuth::Kind::Pipe);
  EXPECT_EQ(a.read_fd, 5);
  a = parse_makeflags("kw -j8 --jobserver-auth=fifo:/tmp/GMfifo12");  // make 4.4
  EXPECT_EQ(a.kind, MakeflagsAuth::Kind::Fifo);
  EXPECT_EQ(a.path, "/tmp/GMfifo12");
  a = parse_makeflags(" --jobserver-auth=fifo:/tmp/a\\ b -- X=--jobserver-auth=9,9");
  EXPECT_EQ(a.path, "/tmp/a b") << "an escaped blank is part of the path; variables after -- are not flags";
  a = parse_makeflags(" -j2 --jobserver-auth=3,4 --jobserver-auth=fifo:/x");
  EXPECT_EQ(a.kind, MakeflagsAuth::Kind::Fifo) << "the last option counts, as make reads it";
}

TEST(Makeflags, NoJobserverAndBadOnesAreToldApart) {
  EXPECT_EQ(parse_makeflags("").kind, MakeflagsAuth::Kind::None);
  MakeflagsAuth a = parse_makeflags(" -j");
  EXPECT_EQ(a.kind, MakeflagsAuth::Kind::None);
  EXPECT_TRUE(a.has_j) << "-j without a jobserver: nothing to take part in";
  EXPECT_TRUE(parse_makeflags("ij").has_j);
  EXPECT_FALSE(parse_makeflags("ik").has_j);
  for (const char* bad : {"--jobserver-auth=3", "--jobserver-auth=a,b", "--jobserver-auth=-1,4",
                          "--jobserver-auth=3,4x", "--jobserver-auth=fifo:"}) {
    a = parse_makeflags(bad);
    EXPECT_EQ(a.kind, MakeflagsAuth::Kind::None) << bad;
    EXPECT_NE(a.error.find(bad), std::string::npos) << "the error quotes the option: " << a.error;
  }
}

// With k tokens in the jobserver, at most k + 1 tasks run at once however many workers
// there are, and every token is back once the scheduler is gone.
TEST(Jobserver, HoldsTheTokenBoundAndGivesEveryTokenBack) {
  for (int tokens : {0, 1, 2}) {
    FifoJobserver js(tokens);
    {
      vitte::Scheduler sched(with(4, vitte::JobserverMode::On));
      const int peak = peak_running(sched, vitte::test::scaled(2000));
      EXPECT_LE(peak, tokens + 1) << tokens << " token(s)";
      const vitte::JobserverInfo info = sched.metrics().jobserver;
      EXPECT_TRUE(info.in_use);
      EXPECT_EQ(info.kind, "fifo");
      EXPECT_LE(info.max_held, static_cast<unsigned>(tokens + 1));
      EXPECT_GE(info.max_held, 1u);
      if (tokens == 0) {
        EXPECT_EQ(info.tokens_read, 0u);
      }
    }
    EXPECT_EQ(js.count(), tokens) << "every token back after shutdown";
  }
}

TEST(Jobserver, TokensComeBackAfterATaskThrows) {
  FifoJobserver js(2);
  {
    vitte::Scheduler sched(with(3, std::nullopt));  // Auto finds it
    EXPECT_THROW(vitte::parallel_for(sched, 0, 1000, 1,
                                     [](std::size_t i) {
                                       if (i == 500) throw std::runtime_error("pass failed");
                                     }),
                 std::runtime_error);
    EXPECT_TRUE(sched.metrics().jobserver.in_use);
    for (int i = 0; i < 100; ++i) sched.submit(vitte::Task([] {}));
  }  // pending work at shutdown: drained, then the tokens go back
  EXPECT_EQ(js.count(), 2);
}

TEST(Jobserver, AnUnusableJobserverWarnsAndFallsBackOrIsRefused) {
  setenv("MAKEFLAGS", " -j2 --jobserver-auth=fifo:/nonexistent/vitte-js", 1);
  {
    vitte::Scheduler sched(2);
    const vitte::JobserverInfo info = sched.metrics().jobserver;
    EXPECT_FALSE(info.in_use);
    EXPECT_NE(info.note.find("/nonexistent/vitte-js"), std::string::npos) << info.note;
    EXPECT_EQ(vitte::parallel_transform_reduce(sched, 0, 1000, 0, 0, [](std::size_t) { return 1; }, std::plus<>{}), 1000);
  }
  try {
    vitte::Scheduler sched(with(2, vitte::JobserverMode::On));
    ADD_FAILURE() << "On without a usable jobserver must fail";
  } catch (const vitte::PlanError& e) {
    EXPECT_NE(std::string(e.what()).find("Options::jobserver = on"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("/nonexistent/vitte-js"), std::string::npos) << e.what();
  }
  // Descriptors that are not open here, or not a pipe.
  setenv("MAKEFLAGS", " -j2 --jobserver-auth=97,98", 1);
  {
    vitte::Scheduler sched(2);
    EXPECT_NE(sched.metrics().jobserver.note.find("file descriptor 97 is not open"), std::string::npos)
        << sched.metrics().jobserver.note;
  }
  const int file = ::open("/proc/self/exe", O_RDONLY);
  setenv("MAKEFLAGS", (" -j2 --jobserver-auth=" + std::to_string(file) + "," + std::to_string(file)).c_str(), 1);
  {
    vitte::Scheduler sched(2);
    EXPECT_NE(sched.metrics().jobserver.note.find("a regular file, not the jobserver's pipe"), std::string::npos)
        << sched.metrics().jobserver.note;
  }
  ::close(file);
  unsetenv("MAKEFLAGS");
  vitte::Scheduler quiet(1);
  EXPECT_EQ(quiet.metrics().jobserver.note, "MAKEFLAGS is not set");
}

TEST(Jobserver, OffIgnoresAJobserverAndTheConfigKeyAgreesWithTheOption) {
  FifoJobserver js(0);
  {
    vitte::Scheduler sched(with(2, vitte::JobserverMode::Off));
    EXPECT_FALSE(sched.metrics().jobserver.in_use);
  }
  vitte::Options o = with(2, std::nullopt);
  o.config = vitte::Config::parse("[workers]\njobserver = \"off\"\n", "js.toml");
  {
    vitte::Scheduler sched(o);
    EXPECT_FALSE(sched.metrics().jobserver.in_use) << "the config's key applies";
  }
  o.jobserver = vitte::JobserverMode::On;
  EXPECT_THROW(vitte::Scheduler s(o), vitte::ConfigError) << "code and config disagree";
  try {
    (void)vitte::Config::parse("[workers]\njobserver = \"sometimes\"\n", "js.toml");
    ADD_FAILURE() << "a bad value must be refused";
  } catch (const vitte::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("workers.jobserver"), std::string::npos) << e.what();
  }
  vitte::Options det = with(2, vitte::JobserverMode::On);
  det.deterministic = vitte::DeterministicOptions{.seed = 1};
  EXPECT_THROW(vitte::Scheduler s(det), vitte::UsageError);
  det.jobserver.reset();
  vitte::Scheduler quiet(det);
  EXPECT_FALSE(quiet.metrics().jobserver.in_use) << "a deterministic run takes no part";
  EXPECT_EQ(js.count(), 0);
}

// Nested waits park and give tokens back: fork-join with a single token (the process's
// own) finishes and gets the right answer on 4 workers.
TEST(Jobserver, ForkJoinFinishesOnTheImplicitTokenAlone) {
  FifoJobserver js(0);
  vitte::Scheduler sched(with(4, vitte::JobserverMode::On));
  std::function<std::uint64_t(int)> fib = [&](int n) -> std::uint64_t {
    if (n < 2) return static_cast<std::uint64_t>(n);
    std::uint64_t a = 0;
    vitte::TaskGroup g(sched);
    g.run([&] { a = fib(n - 1); });
    const std::uint64_t b = fib(n - 2);
    g.wait();
    return a + b;
  };
  std::uint64_t r = 0;
  vitte::TaskGroup root(sched);
  root.run([&] { r = fib(20); });
  root.wait();
  EXPECT_EQ(r, 6765u);
  EXPECT_EQ(sched.metrics().jobserver.max_held, 1u);
}

// make counts jobs, not schedulers: two schedulers of one process share its one implicit
// token, so with no token in the jobserver at most one task of either runs at a time.
TEST(Jobserver, TwoSchedulersShareTheProcesssOwnToken) {
  FifoJobserver js(0);
  vitte::Scheduler a(with(2, vitte::JobserverMode::On));
  vitte::Scheduler b(with(2, vitte::JobserverMode::On));
  std::atomic<int> running{0}, peak{0};
  const BusyTask body{&running, &peak};
  std::thread other([&] { vitte::parallel_for(b, 0, vitte::test::scaled(1000), 1, body); });
  vitte::parallel_for(a, 0, vitte::test::scaled(1000), 1, body);
  other.join();
  EXPECT_EQ(peak.load(), 1);
}

// A scheduler made and destroyed inside another's task, with no token to spare: the
// only token is held by the task's worker, which waits for the inner scheduler's workers
// to end; they need no token to see that nothing is left.
TEST(Jobserver, ASchedulerDestroyedInsideAnothersTaskEnds) {
  FifoJobserver js(0);
  vitte::Scheduler outer(with(2, vitte::JobserverMode::On));
  std::atomic<std::uint64_t> sum{0};
  outer.async([&] {
         vitte::Scheduler inner(with(2, vitte::JobserverMode::On));
         vitte::parallel_for(inner, 0, 100, 1, [&](std::size_t i) { sum += i; });
       })
      .get();
  EXPECT_EQ(sum.load(), 4950u);
}

// Futures, promises and continuations: then() (order, values, void, errors, flattening,
// long chains, memory), Promise (external threads, double set, broken), when_all /
// when_any, accounting (join_all, shutdown), blocking waits on one worker, and a stress
// of promises fulfilled while continuations are attached.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

#include "test_support.hpp"
#include "vitte/vitte.hpp"

using vitte::Future;
using vitte::Promise;
using vitte::test::scaled;

namespace {

// A value that counts its live instances (moved-from ones included until destroyed).
std::atomic<long> g_live{0};
struct Counted {
  explicit Counted(long v) : v(v) { g_live.fetch_add(1); }
  Counted(Counted&& o) noexcept : v(o.v) { g_live.fetch_add(1); }
  Counted(const Counted&) = delete;
  ~Counted() { g_live.fetch_sub(1); }
  long v;
};

std::size_t rss_kib() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * 4;  // 4 KiB pages
}

// A chain of n (+1) links on a promise not yet set; returns its final future.
Future<long> plus_one_chain(Promise<long>& p, std::size_t n) {
  Future<long> f = p.get_future();
  for (std::size_t i = 0; i < n; ++i) f = std::move(f).then([](long v) { return v + 1; });
  return f;
}

std::string error_of(auto&& fut) {
  try {
    fut.get();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Future, ThenRunsInOrderWithEachValue) {
  vitte::Scheduler sched(2);
  Promise<int> p(sched);
  std::vector<std::string> trace;  // one link at a time touches it: the chain orders them
  auto f = p.get_future()
               .then([&](int v) {
                 trace.push_back("a" + std::to_string(v));
                 return v * 2;
               })
               .then([&](int v) {
                 trace.push_back("b" + std::to_string(v));
                 return std::to_string(v) + "!";
               });
  EXPECT_FALSE(f.ready());
  EXPECT_TRUE(trace.empty()) << "a continuation ran before the promise was set";
  p.set_value(21);
  EXPECT_EQ(f.get(), "42!");
  EXPECT_EQ(trace, (std::vector<std::string>{"a21", "b42"}));
  EXPECT_FALSE(f.valid()) << "get() empties the future";
}

TEST(Future, ThenOnAReadyFutureRunsOnTheScheduler) {
  vitte::Scheduler sched(2);
  auto src = sched.async([] { return 5; });
  src.wait();
  const auto caller = std::this_thread::get_id();
  auto f = std::move(src).then([&](int v) {
    EXPECT_EQ(vitte::Scheduler::current(), &sched) << "fn must run on a worker of the future's scheduler";
    EXPECT_NE(std::this_thread::get_id(), caller);
    return v + 1;
  });
  EXPECT_FALSE(src.valid()) << "then() consumes the future";
  EXPECT_EQ(f.get(), 6);
}

TEST(Future, VoidFuturesChain) {
  vitte::Scheduler sched(2);
  std::atomic<int> step{0};
  Promise<void> p(sched);
  Future<void> f = p.get_future()
                       .then([&] { EXPECT_EQ(step.exchange(1), 0); })
                       .then([&] {
                         EXPECT_EQ(step.exchange(2), 1);
                         return 7;
                       })
                       .then([&](int v) { EXPECT_EQ(v, 7); });
  p.set_value();
  f.get();
  EXPECT_EQ(step.load(), 2);
}

TEST(Future, ThenOnAnEmptyFutureIsAUsageError) {
  Future<int> f;
  EXPECT_THROW(std::move(f).then([](int v) { return v; }), vitte::UsageError);
}

// A link returning a Future is flattened; nested flattening 10k deep needs no recursion.
TEST(Future, ThenFlattensAReturnedFuture) {
  vitte::Scheduler sched(2);
  Future<int> f = sched.async([] { return 3; }).then([&](int v) { return sched.async([v] { return v * 10; }); });
  EXPECT_EQ(f.get(), 30);

  std::function<Future<long>(long)> countdown = [&](long n) -> Future<long> {
    if (n == 0) return sched.async([] { return 0L; });
    return sched.async([n] { return n; }).then([&countdown](long m) { return countdown(m - 1); });
  };
  EXPECT_EQ(countdown(static_cast<long>(scaled(10'000))).get(), 0);

  std::atomic<bool> inner_ran{false};
  Future<void> void_inner = sched.async([] {}).then([&] { return sched.async([&] { inner_ran = true; }); });
  void_inner.get();
  EXPECT_TRUE(inner_ran.load()) << "a flattened Future<void> completes only after its inner future";

  Future<int> empty = sched.async([] { return 1; }).then([](int) { return Future<int>(); });
  EXPECT_NE(error_of(empty).find("returned an empty Future"), std::string::npos);
}

// Who completes the future decides where the continuation is queued: a thread that is
// not a worker -> the injection queue; a worker of the scheduler -> its own deque.
TEST(Future, ContinuationsAreQueuedWithTheFulfillersLocality) {
  vitte::Scheduler sched(2);
  auto injected = [&] { return sched.metrics().total.injected_taken; };

  Promise<int> p(sched);
  auto f = p.get_future().then([](int v) { return v; });
  const auto i0 = injected();
  p.set_value(1);  // from this thread
  EXPECT_EQ(f.get(), 1);
  EXPECT_EQ(injected() - i0, 1u) << "an external fulfiller's continuation goes through the injection queue";

  Promise<int> q(sched);
  auto g = q.get_future().then([](int v) { return v; });
  const auto i1 = injected();
  const auto spawned = sched.metrics().total.spawned;
  sched.async([&] { q.set_value(2); }).get();  // the async task itself is injected
  EXPECT_EQ(g.get(), 2);
  EXPECT_EQ(injected() - i1, 1u) << "a worker's continuation must not go through the injection queue";
  EXPECT_GE(sched.metrics().total.spawned - spawned, 1u) << "it is pushed on the worker's own deque";
}

// Each link is its own task: a long chain runs on a worker with a 256 KiB stack, which a
// recursive chain would overflow within a few thousand links.
TEST(Future, LongChainNeedsNoStack) {
  vitte::Options o;
  o.workers = 1;
  o.stack_size = 256 * 1024;
  vitte::Scheduler sched(o);
  const std::size_t n = scaled(100'000);
  Promise<long> p(sched);
  Future<long> f = plus_one_chain(p, n);
  p.set_value(0);
  EXPECT_EQ(f.get(), static_cast<long>(n));
}

// A chain runs as a strand: each link's completion holds the next link on the same
// worker instead of queuing it, so no thief ever sees one and all run on one thread.
TEST(Future, AChainRunsOnOneWorker) {
  vitte::Scheduler sched(2);
  const std::size_t n = scaled(10'000);
  std::vector<std::thread::id> ran_on(n);
  Promise<std::size_t> p(sched);
  Future<std::size_t> f = p.get_future();
  for (std::size_t i = 0; i < n; ++i)
    f = std::move(f).then([&ran_on](std::size_t k) {
      ran_on[k] = std::this_thread::get_id();
      return k + 1;
    });
  p.set_value(0);
  ASSERT_EQ(f.get(), n);
  for (std::size_t i = 1; i < n; ++i) ASSERT_EQ(ran_on[i], ran_on[0]) << "link " << i << " left the strand";
}

// Only the completion of a link's own future is held: a promise that fn sets queues its
// continuation as usual, so fn can wait for it (on one worker, holding it would deadlock).
TEST(Future, APromiseSetInsideALinkIsNotHeld) {
  EXPECT_EQ(vitte::test::in_child([] {
              vitte::Scheduler sched(1);
              Promise<int> p(sched);
              Future<int> f = p.get_future().then([](int v) { return v + 1; }).then([&sched](int v) {
                Promise<int> q(sched);
                Future<int> g = q.get_future().then([](int w) { return w * 10; });
                q.set_value(v);
                return g.get();
              });
              p.set_value(1);
              return f.get() == 20 ? 0 : 1;
            }),
            0);
}

// A finished link's state (its value included) is freed when the next link runs, not
// when the chain ends: inside every link only a bounded number of values is alive. One
// worker, so no link starts while the previous task is still returning (on two, a thief
// may, and the bound would depend on timing).
TEST(Future, FinishedLinksAreFreedAsTheChainRuns) {
  vitte::Scheduler sched(1);
  const long n = static_cast<long>(scaled(20'000));
  const long live0 = g_live.load();
  std::atomic<long> max_live{0};
  {
    Promise<Counted> p(sched);  // holds the first value until the end of this scope
    Future<Counted> f = p.get_future();
    for (long i = 0; i < n; ++i)
      f = std::move(f).then([&](Counted c) {
        long live = g_live.load() - live0, m = max_live.load();
        while (live > m && !max_live.compare_exchange_weak(m, live)) {
        }
        return Counted(c.v + 1);
      });
    p.set_value(0);
    EXPECT_EQ(f.get().v, n);
  }
  // Alive inside link k: the promise's value, link k-1's value (its state is link k's
  // source) and fn's argument. Without freeing, k values.
  EXPECT_LE(max_live.load(), 3) << "values of finished links stayed alive";
  sched.join_all();
  EXPECT_EQ(g_live.load(), live0) << "some link state was never freed";
}

TEST(Future, AnErrorSkipsTheRestOfTheChainAndReachesGet) {
  vitte::Scheduler sched(2);
  std::atomic<int> ran{0};
  Promise<int> p(sched);
  auto f = p.get_future()
               .then([&](int v) {
                 ran++;
                 if (v > 0) throw std::runtime_error("link 1 failed on " + std::to_string(v));
                 return v;
               })
               .then([&](int v) {
                 ran += 10;
                 return v;
               })
               .then([&](int v) {
                 ran += 100;
                 return v;
               });
  p.set_value(3);
  EXPECT_EQ(error_of(f), "link 1 failed on 3");
  EXPECT_EQ(ran.load(), 1) << "links after the failing one must not run";

  Promise<int> q(sched);
  auto g = q.get_future().then([&](int v) {
    ran += 1000;
    return v;
  });
  q.set_exception(std::make_exception_ptr(std::logic_error("from the producer")));
  EXPECT_THROW(
      {
        try {
          g.get();
        } catch (const std::logic_error& e) {
          EXPECT_STREQ(e.what(), "from the producer");
          throw;
        }
      },
      std::logic_error);
  EXPECT_EQ(ran.load(), 1);
}

TEST(Promise, ContractErrors) {
  vitte::Scheduler sched(1);
  Promise<int> p(sched);
  auto f = p.get_future();
  EXPECT_THROW(p.get_future(), vitte::UsageError);
  EXPECT_THROW(p.set_exception(nullptr), vitte::UsageError);
  p.set_value(1);
  EXPECT_THROW(p.set_value(2), vitte::UsageError);
  EXPECT_THROW(p.set_exception(std::make_exception_ptr(std::runtime_error("late"))), vitte::UsageError);
  EXPECT_EQ(f.get(), 1) << "the first value stays";
  Promise<int> moved(std::move(p));
  EXPECT_FALSE(p.valid());
  EXPECT_THROW(p.set_value(3), vitte::UsageError);
}

TEST(Promise, ABrokenPromiseRunsTheChainsErrorPath) {
  vitte::Scheduler sched(2);
  std::atomic<int> ran{0};
  Future<int> plain, chained;
  {
    Promise<int> p(sched), q(sched);
    plain = p.get_future();
    chained = q.get_future().then([&](int v) {
      ran++;
      return v;
    });
  }
  EXPECT_THROW(plain.get(), vitte::BrokenPromise);
  EXPECT_NE(error_of(chained).find("Promise destroyed without a value"), std::string::npos);
  EXPECT_EQ(ran.load(), 0);
  Promise<int> r(sched);
  auto f = r.get_future();
  r = Promise<int>(sched);  // the old promise is dropped unset
  EXPECT_THROW(f.get(), vitte::BrokenPromise);
}

TEST(Promise, SetFromAnotherThreadWakesABlockedGet) {
  vitte::Scheduler sched(2);
  Promise<std::string> p(sched);
  auto f = p.get_future();
  std::thread t([&] { p.set_value("from the I/O thread"); });
  EXPECT_EQ(f.get(), "from the I/O thread");
  t.join();
}

TEST(WhenAll, TupleOfMixedFutures) {
  vitte::Scheduler sched(2);
  Promise<int> p(sched);
  auto all = vitte::when_all(p.get_future(), sched.async([] {}), sched.async([] { return std::string("s"); }));
  EXPECT_FALSE(all.ready()) << "an input is still pending";
  p.set_value(4);
  auto [a, b, c] = all.get();
  EXPECT_EQ(a, 4);
  EXPECT_EQ(b, std::monostate{});
  EXPECT_EQ(c, "s");
  EXPECT_EQ(vitte::when_all().get(), std::tuple<>{});
}

TEST(WhenAll, RangeOfManyFutures) {
  vitte::Scheduler sched(2);
  const std::size_t n = scaled(100'000);
  std::vector<Future<std::uint64_t>> fs;
  fs.reserve(n);
  for (std::size_t i = 0; i < n; ++i) fs.push_back(sched.async([i] { return std::uint64_t{i}; }));
  std::vector<std::uint64_t> v = vitte::when_all(std::move(fs)).get();
  ASSERT_EQ(v.size(), n);
  for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(v[i], i) << "values come in input order";

  std::atomic<int> ran{0};
  std::vector<Future<void>> vs;
  for (int i = 0; i < 100; ++i) vs.push_back(sched.async([&] { ran++; }));
  vitte::when_all(std::move(vs)).get();
  EXPECT_EQ(ran.load(), 100);
}

TEST(WhenAll, EmptyInputsAndEmptyFutures) {
  vitte::Scheduler sched(1);
  auto none = vitte::when_all(std::vector<Future<int>>{});
  EXPECT_TRUE(none.ready());
  EXPECT_TRUE(none.get().empty());
  EXPECT_THROW(std::move(none).then([](std::vector<int>) {}), vitte::UsageError)
      << "unbound (made outside a worker), and read";
  auto unbound = vitte::when_all(std::vector<Future<int>>{});
  EXPECT_THROW(std::move(unbound).then([](std::vector<int>) {}), vitte::UsageError)
      << "bound to no scheduler and called outside a worker";
  std::vector<Future<int>> fs;
  fs.push_back(sched.async([] { return 1; }));
  fs.emplace_back();
  try {
    vitte::when_all(std::move(fs));
    ADD_FAILURE() << "an empty input was accepted";
  } catch (const vitte::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("input 1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(vitte::when_any(std::vector<Future<int>>{}), vitte::UsageError);
  // On a worker, an empty when_all binds to the worker's scheduler, so then() works.
  EXPECT_EQ(sched.async([] {
                  return vitte::when_all(std::vector<Future<int>>{}).then([](std::vector<int> v) { return v.size(); });
                })
                .get()
                .get(),
            0u);
}

// The first error wins, but only once every input completed (none is left dangling).
TEST(WhenAll, TheFirstErrorIsReportedAfterAllInputsCompleted) {
  vitte::Scheduler sched(2);
  Promise<int> p0(sched), p1(sched), p2(sched);
  std::vector<Future<int>> fs;
  fs.push_back(p0.get_future());
  fs.push_back(p1.get_future());
  fs.push_back(p2.get_future());
  auto all = vitte::when_all(std::move(fs));
  p1.set_exception(std::make_exception_ptr(std::runtime_error("p1 first")));
  p2.set_exception(std::make_exception_ptr(std::runtime_error("p2 second")));
  sched.join_all();
  EXPECT_FALSE(all.ready()) << "p0 is still pending";
  p0.set_value(0);
  EXPECT_EQ(error_of(all), "p1 first");

  auto tuple = vitte::when_all(sched.async([] { return 1; }),
                               sched.async([]() -> int { throw std::out_of_range("tuple input"); }));
  EXPECT_THROW(tuple.get(), std::out_of_range);

  Future<int> broken;
  { broken = Promise<int>(sched).get_future(); }
  std::vector<Future<int>> with_broken;
  with_broken.push_back(std::move(broken));
  EXPECT_THROW(vitte::when_all(std::move(with_broken)).get(), vitte::BrokenPromise);
}

TEST(WhenAny, PicksTheFirstToComplete) {
  vitte::Scheduler sched(2);
  Promise<std::string> p0(sched), p1(sched), p2(sched);
  auto any = vitte::when_any(p0.get_future(), p1.get_future(), p2.get_future());
  EXPECT_FALSE(any.ready());
  p2.set_value("third input");
  auto r = any.get();
  EXPECT_EQ(r.index, 2u);
  EXPECT_EQ(r.value, "third input");
  p0.set_value("late");  // the others still complete; nobody awaits them
  p1.set_exception(std::make_exception_ptr(std::runtime_error("late error")));

  Promise<void> q0(sched), q1(sched);
  std::vector<Future<void>> vs;
  vs.push_back(q0.get_future());
  vs.push_back(q1.get_future());
  auto void_any = vitte::when_any(std::move(vs));
  q1.set_exception(std::make_exception_ptr(std::runtime_error("q1 failed first")));
  EXPECT_EQ(error_of(void_any), "q1 failed first") << "the first input to complete decides, error or not";
  q0.set_value();
  sched.join_all();
}

// Continuations are counted as detached tasks once queued: join_all() waits for a whole
// chain even when nobody holds its futures.
TEST(Future, JoinAllWaitsForContinuationChains) {
  vitte::Scheduler sched(2);
  std::atomic<int> last{0};
  for (int k = 0; k < 50; ++k) {
    Future<int> f = sched.async([] { return 0; });
    for (int i = 0; i < 200; ++i) f = std::move(f).then([](int v) { return v + 1; });
    (void)std::move(f).then([&](int v) { last.fetch_add(v == 200 ? 1 : 1000); });
  }
  sched.join_all();
  EXPECT_EQ(last.load(), 50);

  Promise<int> p(sched);
  std::atomic<bool> ran{false};
  (void)p.get_future().then([&](int) { ran = true; });
  sched.join_all();  // nothing queued yet: a continuation waiting for a promise is not counted
  std::thread setter([&] { p.set_value(1); });
  setter.join();  // set_value() returned: the continuation is queued and counted
  sched.join_all();
  EXPECT_TRUE(ran.load());
}

// Blocking inside tasks on one worker: nested get()s and a promise fulfilled later by
// another task all finish (the waiting worker runs the work it waits for). In a child
// process so that a deadlock fails the test instead of hanging the suite.
TEST(Future, NestedBlockingWaitsOnOneWorkerFinish) {
  EXPECT_EQ(vitte::test::in_child([] {
              vitte::Scheduler sched(1);
              std::function<int(int)> nest = [&](int depth) -> int {
                if (depth == 0) return 0;
                return sched.async([&, depth] { return nest(depth - 1); }).get() + 1;
              };
              const int deep = sched.async([&] { return nest(20); }).get();

              const int from_promise = sched.async([&] {
                                              Promise<int> p(sched);
                                              auto f = p.get_future().then([](int v) { return v * 2; });
                                              vitte::spawn([&p] { p.set_value(21); });  // queued behind us
                                              return f.get();                           // runs it meanwhile
                                            }).get();

              // A promise set by a task that is submitted only after the worker blocked.
              Promise<int> late(sched);
              Future<int> late_f = late.get_future();
              std::atomic<bool> blocked{false};
              auto waiter = sched.async([&] {
                blocked = true;
                return late_f.get();
              });
              while (!blocked) std::this_thread::yield();
              sched.submit(vitte::Task([&] { late.set_value(5); }));
              const int late_v = waiter.get();

              const int isolated = sched.async([&] {
                                          return vitte::isolate([&] {
                                            return sched.async([] { return 1; }).then([](int v) { return v + 1; }).get();
                                          });
                                        }).get();
              return deep == 20 && from_promise == 42 && late_v == 5 && isolated == 2 ? 0 : 1;
            }),
            0);
}

// Continuations queued while shutdown() drains are accepted and run: a task that waits for
// one keeps the drain open until an external thread, seeing submissions refused, sets it.
TEST(Future, ContinuationsQueuedDuringShutdownRun) {
  auto sched = std::make_unique<vitte::Scheduler>(2);
  Promise<int> p(*sched);
  Future<int> chained = p.get_future().then([](int v) { return v + 1; });
  std::atomic<int> seen{0};
  sched->submit(vitte::Task([&] { seen = chained.get(); }));
  std::thread io([&] {
    for (;;) {
      try {
        sched->submit(vitte::Task([] {}));
      } catch (const vitte::UsageError&) {
        break;  // shutdown() began; it is draining the waiting task
      }
      std::this_thread::yield();
    }
    p.set_value(41);
  });
  sched->shutdown();
  io.join();
  EXPECT_EQ(seen.load(), 42);
}

// After shutdown() a continuation cannot run: its future fails with BrokenPromise, as
// does the rest of the chain, iteratively on the fulfilling thread (a recursive failure
// of this chain would overflow the stack).
TEST(Future, AfterShutdownTheChainFailsWithBrokenPromise) {
  vitte::Scheduler sched(2);
  Promise<long> p(sched);
  std::atomic<int> ran{0};
  Future<long> f = plus_one_chain(p, scaled(200'000));
  f = std::move(f).then([&](long v) {
    ran++;
    return v;
  });
  sched.shutdown();
  p.set_value(0);
  EXPECT_TRUE(f.ready());
  EXPECT_NE(error_of(f).find("scheduler had shut down"), std::string::npos);
  EXPECT_EQ(ran.load(), 0);
}

// Memory of finished chains goes back: RSS after many more chains stays flat, and the
// values of every link are destroyed.
TEST(FutureStress, MemoryDoesNotGrowWithFinishedLinks) {
  const int rc = vitte::test::in_child(
      [] {
        vitte::Scheduler sched(2);
        const std::size_t n = scaled(200'000);
        auto chain = [&] {
          Promise<long> p(sched);
          Future<long> f = plus_one_chain(p, n);
          p.set_value(0);
          return f.get() == static_cast<long>(n);
        };
        bool ok = chain() && chain();
        const std::size_t warm = rss_kib();
        for (int r = 0; r < 8; ++r) ok = ok && chain();
        const std::size_t after = rss_kib();
        sched.join_all();
#if defined(__SANITIZE_ADDRESS__)
        (void)warm;
        (void)after;  // ASan's quarantine keeps freed memory resident
#else
        // A leak would keep ~150 bytes per link: 8 chains of n links.
        if (after > warm + 16 * 1024) {
          std::fprintf(stderr, "RSS grew from %zu KiB to %zu KiB over 8 chains of %zu links\n", warm, after, n);
          return 2;
        }
#endif
        return ok ? 0 : 1;
      },
      std::chrono::seconds(120));
  EXPECT_EQ(rc, 0);
}

// Several threads fulfil promises (external threads and tasks, values and errors) while
// others attach continuations, wait on futures and gather them with when_all/when_any.
namespace {
void fulfil_while_attaching(vitte::Scheduler& sched, std::size_t n) {
  std::vector<Promise<long>> ps;
  std::vector<Future<long>> fs(n), chained(n);
  ps.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    ps.emplace_back(sched);
    fs[i] = ps[i].get_future();
  }
  auto fails = [](std::size_t i) { return i % 7 == 3; };
  auto settle = [&](std::size_t i) {
    if (fails(i))
      ps[i].set_exception(std::make_exception_ptr(std::runtime_error(std::to_string(i))));
    else
      ps[i].set_value(static_cast<long>(i));
  };
  // Promise i is set by: i % 4 == 0, 1: one of two external threads; 2: a task; 3: the
  // thread that submits those tasks.
  std::latch go(5);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      go.arrive_and_wait();
      for (std::size_t i = t; i < n; i += 4) settle(i);
    });
  threads.emplace_back([&] {
    go.arrive_and_wait();
    for (std::size_t i = 2; i < n; i += 4) {
      sched.submit(vitte::Task([&settle, i] { settle(i); }));
      if (i + 1 < n) settle(i + 1);
    }
  });
  for (std::size_t t = 0; t < 2; ++t)  // attachers: two links on each future
    threads.emplace_back([&, t] {
      go.arrive_and_wait();
      for (std::size_t i = t; i < n; i += 2)
        chained[i] = std::move(fs[i]).then([](long v) { return v * 2; }).then([](long v) { return v + 1; });
    });
  for (auto& th : threads) th.join();
  std::vector<Future<long>> firsts, all_ok;
  long want_sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (i % 3 == 0) {
      firsts.push_back(std::move(chained[i]));
      continue;
    }
    if (fails(i)) {
      EXPECT_EQ(error_of(chained[i]), std::to_string(i));
    } else {
      all_ok.push_back(std::move(chained[i]));
      want_sum += 2 * static_cast<long>(i) + 1;
    }
  }
  long sum = 0;
  for (long v : vitte::when_all(std::move(all_ok)).get()) sum += v;
  EXPECT_EQ(sum, want_sum);
  const std::size_t k = firsts.size();
  auto any = vitte::when_any(std::move(firsts));
  try {
    EXPECT_LT(any.get().index, k);
  } catch (const std::runtime_error&) {
    // the first to complete may be a failing one
  }
  sched.join_all();
}
}  // namespace

TEST(FutureStress, FulfilWhileAttaching) {
  vitte::Scheduler sched(2);
  for (int round = 0; round < 5; ++round) fulfil_while_attaching(sched, scaled(4'000));
}

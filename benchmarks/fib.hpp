// fib(n) in vitte's two fork-join forms, one task (or coroutine) per call and no cutoff:
// what the benchmarks measure (kernels.hpp, coro_kernels.hpp) and what the tests run
// (tests/det_kernels.hpp, task_group_test.cpp, coro_test.cpp). The one copy of each.
#pragma once

#include "vitte/coro.hpp"
#include "vitte/task_group.hpp"

namespace bench {

// By TaskGroup, on the calling worker's scheduler.
inline long fib_vitte(int n) {
  if (n < 2) return n;
  long x = 0, y = 0;
  vitte::TaskGroup g;
  g.run([&] { x = fib_vitte(n - 1); });
  y = fib_vitte(n - 2);
  g.wait();
  return x + y;
}

// As a coroutine that forks one half.
inline vitte::task<long> cofib(int n) {
  if (n < 2) co_return n;
  vitte::task<long> a = cofib(n - 1);
  co_await vitte::fork(a);
  const long b = co_await cofib(n - 2);
  co_await vitte::join();
  co_return a.result() + b;
}

}  // namespace bench

// Small recursive kernels the deterministic and conformance suites run in both modes.
#pragma once

#include "vitte/vitte.hpp"

namespace vitte::test {

// fib(n) by TaskGroup fork-join, on the calling worker's scheduler.
inline long fib(int n) {
  if (n < 2) return n;
  long a = 0;
  vitte::TaskGroup g;
  g.run([&] { a = fib(n - 1); });
  const long b = fib(n - 2);
  g.wait();
  return a + b;
}

// fib(n) as a coroutine that forks one half.
inline vitte::task<long> cofib(int n) {
  if (n < 2) co_return n;
  vitte::task<long> a = cofib(n - 1);
  co_await vitte::fork(a);
  const long b = co_await cofib(n - 2);
  co_await vitte::join();
  co_return a.result() + b;
}

}  // namespace vitte::test

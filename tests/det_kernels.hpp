// Small recursive kernels the deterministic and conformance suites run in both modes: the
// benchmarks' own (benchmarks/fib.hpp), so that what is measured is what is tested.
#pragma once

#include "../benchmarks/fib.hpp"

namespace vitte::test {

inline long fib(int n) { return bench::fib_vitte(n); }  // TaskGroup fork-join
using bench::cofib;                                      // a coroutine forking one half

}  // namespace vitte::test

// Task-parallel kernels, each in the three runtimes' idioms, plus their serial references.
#pragma once

#include <omp.h>
#include <tbb/task_group.h>

#include <array>
#include <cstdint>

#include "fib.hpp"
#include "vitte/vitte.hpp"

namespace bench {

// ---- fib: one task per call, no cutoff (measures spawn + join) -------------------------
// fib_vitte: fib.hpp (shared with the tests).
inline long fib_tbb(int n) {
  if (n < 2) return n;
  long x = 0, y = 0;
  tbb::task_group g;
  g.run([&] { x = fib_tbb(n - 1); });
  y = fib_tbb(n - 2);
  g.wait();
  return x + y;
}
inline long fib_omp(int n) {
  if (n < 2) return n;
  long x = 0, y = 0;
#pragma omp task shared(x) firstprivate(n)
  x = fib_omp(n - 1);
  y = fib_omp(n - 2);
#pragma omp taskwait
  return x + y;
}
// The floor: the same recursion as plain calls, no runtime (what a spawn is measured against).
[[gnu::noinline]] inline long fib_serial(int n) { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }
// Tasks spawned by fib(n): one per call with n >= 2.
inline std::uint64_t fib_spawns(int n) {
  std::uint64_t a = 0, b = 0;  // spawns(0), spawns(1)
  for (int i = 2; i <= n; ++i) {
    const std::uint64_t c = a + b + 1;
    a = b;
    b = c;
  }
  return n < 2 ? 0 : b;
}

// ---- skynet: every node forks 10 children down to 1M leaves; sum of leaf numbers -------
inline std::uint64_t skynet_vitte(std::uint64_t num, std::uint64_t size) {
  if (size == 1) return num;
  std::array<std::uint64_t, 10> sums{};
  vitte::TaskGroup g;
  for (std::uint64_t i = 0; i < 10; ++i)
    g.run([&sums, i, num, size] { sums[i] = skynet_vitte(num + i * (size / 10), size / 10); });
  g.wait();
  std::uint64_t s = 0;
  for (auto v : sums) s += v;
  return s;
}
inline std::uint64_t skynet_tbb(std::uint64_t num, std::uint64_t size) {
  if (size == 1) return num;
  std::array<std::uint64_t, 10> sums{};
  tbb::task_group g;
  for (std::uint64_t i = 0; i < 10; ++i)
    g.run([&sums, i, num, size] { sums[i] = skynet_tbb(num + i * (size / 10), size / 10); });
  g.wait();
  std::uint64_t s = 0;
  for (auto v : sums) s += v;
  return s;
}
[[gnu::noinline]] inline std::uint64_t skynet_serial(std::uint64_t num, std::uint64_t size) {
  if (size == 1) return num;
  std::uint64_t s = 0;
  for (std::uint64_t i = 0; i < 10; ++i) s += skynet_serial(num + i * (size / 10), size / 10);
  return s;
}
inline std::uint64_t skynet_omp(std::uint64_t num, std::uint64_t size) {
  if (size == 1) return num;
  std::array<std::uint64_t, 10> sums{};
  for (std::uint64_t i = 0; i < 10; ++i) {
#pragma omp task shared(sums) firstprivate(i, num, size)
    sums[i] = skynet_omp(num + i * (size / 10), size / 10);
  }
#pragma omp taskwait
  std::uint64_t s = 0;
  for (auto v : sums) s += v;
  return s;
}

// ---- nqueens: one task per legal placement at every row ---------------------------------
struct Board {
  std::array<std::int8_t, 16> col{};
};
inline bool legal(const Board& b, int row, int c) {
  for (int r = 0; r < row; ++r) {
    const int d = b.col[r] - c;
    if (d == 0 || d == row - r || d == r - row) return false;
  }
  return true;
}
inline long nqueens_serial(int n, int row, Board b) {
  if (row == n) return 1;
  long count = 0;
  for (int c = 0; c < n; ++c)
    if (legal(b, row, c)) {
      b.col[row] = static_cast<std::int8_t>(c);
      count += nqueens_serial(n, row + 1, b);
    }
  return count;
}
inline long nqueens_vitte(int n, int row, const Board& b) {
  if (row == n) return 1;
  std::array<long, 16> counts{};
  vitte::TaskGroup g;
  for (int c = 0; c < n; ++c)
    if (legal(b, row, c)) {
      Board next = b;
      next.col[row] = static_cast<std::int8_t>(c);
      g.run([&counts, n, row, c, next] { counts[c] = nqueens_vitte(n, row + 1, next); });
    }
  g.wait();
  long s = 0;
  for (long v : counts) s += v;
  return s;
}
inline long nqueens_tbb(int n, int row, const Board& b) {
  if (row == n) return 1;
  std::array<long, 16> counts{};
  tbb::task_group g;
  for (int c = 0; c < n; ++c)
    if (legal(b, row, c)) {
      Board next = b;
      next.col[row] = static_cast<std::int8_t>(c);
      g.run([&counts, n, row, c, next] { counts[c] = nqueens_tbb(n, row + 1, next); });
    }
  g.wait();
  long s = 0;
  for (long v : counts) s += v;
  return s;
}
inline long nqueens_omp(int n, int row, const Board& b) {
  if (row == n) return 1;
  std::array<long, 16> counts{};
  for (int c = 0; c < n; ++c)
    if (legal(b, row, c)) {
      Board next = b;
      next.col[row] = static_cast<std::int8_t>(c);
#pragma omp task shared(counts) firstprivate(n, row, c, next)
      counts[c] = nqueens_omp(n, row + 1, next);
    }
#pragma omp taskwait
  long s = 0;
  for (long v : counts) s += v;
  return s;
}

// ---- UTS-like unbalanced tree: binomial, node ids hashed so every run builds one tree ---
struct Uts {
  int root_children = 2000;
  int m = 4;                  // children of a non-leaf
  std::uint64_t q = 0;        // P(non-leaf) as a threshold on a 64-bit hash
};
inline std::uint64_t mix(std::uint64_t x) {  // splitmix64 finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
inline int uts_children(const Uts& u, std::uint64_t id, bool root) {
  if (root) return u.root_children;
  return mix(id) < u.q ? u.m : 0;
}
inline std::uint64_t uts_serial(const Uts& u, std::uint64_t id, bool root) {
  std::uint64_t n = 1;
  const int k = uts_children(u, id, root);
  for (int i = 0; i < k; ++i) n += uts_serial(u, mix(id ^ (0x100000001B3ull * (i + 1))), false);
  return n;
}
inline std::uint64_t uts_vitte(const Uts& u, std::uint64_t id, bool root) {
  const int k = uts_children(u, id, root);
  if (k == 0) return 1;
  std::vector<std::uint64_t> counts(static_cast<std::size_t>(k));
  vitte::TaskGroup g;
  for (int i = 0; i < k; ++i)
    g.run([&u, &counts, id, i] { counts[i] = uts_vitte(u, mix(id ^ (0x100000001B3ull * (i + 1))), false); });
  g.wait();
  std::uint64_t n = 1;
  for (auto c : counts) n += c;
  return n;
}
inline std::uint64_t uts_tbb(const Uts& u, std::uint64_t id, bool root) {
  const int k = uts_children(u, id, root);
  if (k == 0) return 1;
  std::vector<std::uint64_t> counts(static_cast<std::size_t>(k));
  tbb::task_group g;
  for (int i = 0; i < k; ++i)
    g.run([&u, &counts, id, i] { counts[i] = uts_tbb(u, mix(id ^ (0x100000001B3ull * (i + 1))), false); });
  g.wait();
  std::uint64_t n = 1;
  for (auto c : counts) n += c;
  return n;
}
inline std::uint64_t uts_omp(const Uts& u, std::uint64_t id, bool root) {
  const int k = uts_children(u, id, root);
  if (k == 0) return 1;
  std::vector<std::uint64_t> counts(static_cast<std::size_t>(k));
  for (int i = 0; i < k; ++i) {
#pragma omp task shared(u, counts) firstprivate(id, i)
    counts[i] = uts_omp(u, mix(id ^ (0x100000001B3ull * (i + 1))), false);
  }
#pragma omp taskwait
  std::uint64_t n = 1;
  for (auto c : counts) n += c;
  return n;
}

}  // namespace bench

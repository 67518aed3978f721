#!/usr/bin/env bash
# Strong scaling of the fork-join, search and graph kernels on vitte, oneTBB and OpenMP, in
# one benchmark run, at 1, 2, 4, 8 and 16 workers (or the list in THREADS), written as a
# JSON run and plotted (speedup and time per task figures, scripts/plot_bench.py).
#
#   scripts/scaling.sh [OUT_DIR]          # default OUT_DIR: scaling-out
#   THREADS=1,2,4 REPS=3 BENCH=build/benchmarks/vitte-bench scripts/scaling.sh out
#
# Kernels: fib35, skynet, uts, nqueens12 (each in the three runtimes), linear_chain and
# wavefront (vitte and oneTBB's flow graph; OpenMP where the kernel has a form). Every
# result is checked by vitte-bench itself: a wrong answer fails the run. On a 16-core
# machine the run takes about 6 minutes; the script prints its own wall time. It needs a
# built vitte-bench (scripts/build.sh build -Dbuildtype=release) and, for the plots,
# Python with matplotlib; without matplotlib it still writes the JSON and says so.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-scaling-out}
bench=${BENCH:-$root/build/benchmarks/vitte-bench}
threads=${THREADS:-1,2,4,8,16}
reps=${REPS:-3}
if [ ! -x "$bench" ]; then
  echo "scaling.sh: no vitte-bench at $bench; build it first (scripts/build.sh build -Dbuildtype=release)" >&2
  exit 2
fi
case "$reps" in
  '' | *[!0-9]* | 0) echo "scaling.sh: REPS=$reps is not a positive count" >&2; exit 2 ;;
esac
mkdir -p "$out"
start=$(date +%s)
echo "scaling.sh: $(nproc) CPUs, workers $threads, $reps repetitions -> $out/scaling.json"
VITTE_BENCH_THREADS=$threads "$bench" \
  --benchmark_filter='^(fib35|skynet|uts|nqueens12|linear_chain|wavefront)/(vitte|tbb|omp|serial)/' \
  --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true \
  --benchmark_out="$out/scaling.json" --benchmark_out_format=json
python3 "$root/scripts/bench_report.py" "$out/scaling.json" >"$out/scaling.md"
if python3 -c 'import matplotlib' 2>/dev/null; then
  python3 "$root/scripts/plot_bench.py" "$out/scaling.json" --out "$out" --formats png
else
  echo "scaling.sh: matplotlib is missing here; the JSON and $out/scaling.md are written, no plots" >&2
fi
echo "scaling.sh: done in $(( $(date +%s) - start )) s"

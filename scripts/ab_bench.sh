#!/usr/bin/env bash
# Compares two builds of the benchmark binary, alternating old and new, so that both see
# the same machine drift. Prints, per round, each benchmark's median of the repetitions for
# old and new, and new/old.
#   scripts/ab_bench.sh OLD_BENCH NEW_BENCH [FILTER] [ROUNDS] [REPETITIONS]
# OLD_BENCH/NEW_BENCH: vitte-bench binaries (each finds its own library by its RUNPATH,
# $ORIGIN/../src: copy build/benchmarks and build/src together to keep an old build).
# Default filter: fib35 and skynet of vitte at 1 and 2 workers.
set -euo pipefail
old=$1 new=$2
filter=${3:-'^(fib35|skynet)/vitte/'}
rounds=${4:-2}
reps=${5:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for r in $(seq 1 "$rounds"); do
  for side in old new; do
    bin=$old
    [ "$side" = new ] && bin=$new
    "$bin" --benchmark_filter="$filter" --benchmark_repetitions="$reps" \
      --benchmark_report_aggregates_only=true --benchmark_format=json >"$tmp/$side.$r.json" 2>/dev/null
  done
done
python3 - "$tmp" "$rounds" <<'PY'
import json, sys
tmp, rounds = sys.argv[1], int(sys.argv[2])
def medians(path):
    out = {}
    for b in json.load(open(path))["benchmarks"]:
        if b.get("aggregate_name") == "median":
            out[b["run_name"]] = b["real_time"], b["time_unit"]
    return out
for r in range(1, rounds + 1):
    o, n = medians(f"{tmp}/old.{r}.json"), medians(f"{tmp}/new.{r}.json")
    print(f"round {r}")
    for k in o:
        if k in n:
            (ot, u), (nt, _) = o[k], n[k]
            print(f"  {k:40s} old {ot:9.2f} {u}  new {nt:9.2f} {u}  new/old {nt / ot:6.3f}")
PY

#!/usr/bin/env bash
# Runs vitte-dist-bench's matrix on this machine and writes one JSON file:
#   ping-pong    2 ranks x 1 worker: raw MPI_Send/MPI_Recv round trip, vitte's remote
#                async round trip (from the program thread and from inside a task), and
#                remote steal round trips (ClusterStats steal_reply_ns / steal_replies)
#   uts          2 ranks x 1 worker and 1 rank x 2 workers, each with the MPI + oneTBB
#                static split alternated in the same run (at 1 rank: plain oneTBB)
#   nqueens      2 ranks x 1 worker and 1 rank x 2 workers
# and a summary: the efficiency time(1x2) / time(2x1) per kernel, vitte's round trip over
# MPI's, and the static split's time over vitte's on UTS, each with the bar it is judged by.
#
#   scripts/dist_bench.sh [NAME]    -> docs/bench/NAME (default: DATE-HOST-dist.json)
# Environment: BUILD (default build), REPS (default 7, at least 5), OUT_DIR (default
# docs/bench). Needs a release build with -Dbenchmarks=enabled and MPI found
# (build/benchmarks/vitte-dist-bench).
#
# Timings are only worth keeping from a quiet machine: the ping-pong baselines busy-poll,
# and with 2 cores one other busy process decides them. The script runs one benchmark at
# a time, takes a lock so that two copies never overlap, and records the load average
# before and after each run in the file.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build}
reps=${REPS:-7}
out_dir=${OUT_DIR:-docs/bench}
name=${1:-$(date -u +%Y-%m-%d)-$(hostname)-dist.json}
bin=$build/benchmarks/vitte-dist-bench
[ -x "$bin" ] || { echo "dist_bench.sh: $bin not built (meson -Dbenchmarks=enabled, MPI found)" >&2; exit 2; }
[ "$reps" -ge 5 ] || { echo "dist_bench.sh: REPS=$reps: at least 5" >&2; exit 2; }

# Open MPI in containers and as root (as tests/meson.build sets for the dist tests);
# --bind-to none: every rank may use every core (Open MPI binds each rank to one core by
# default, which would pin the 1-rank x 2-worker runs to one core).
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_ALLOW_RUN_AS_ROOT=1
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

exec 9>"${TMPDIR:-/tmp}/vitte-dist-bench.lock"
flock -n 9 || { echo "dist_bench.sh: another dist_bench.sh is running; one benchmark at a time" >&2; exit 2; }

# The sizes: UTS's (64 root children, seed 1) tree has 924,025 nodes, 923,465 of them under
# one root child; `work` 300 makes it about a second serially on the 2-core VM. nqueens 15
# (2,279,184 solutions) is about a second too; 14 takes 0.2 s, too short to time well.
sizes=(--uts-root 64 --uts-seed 1 --uts-work 300 --frontier-per-rank 16 --queens 15 --queens-split 3
       --iters 5000 --warmup 500 --steal-tasks 2000 --steal-task-us 50)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
runs=()
run() {  # run NAME NP WORKERS ARGS...
  local tag=$1 np=$2 workers=$3
  shift 3
  local cmd=(mpirun -np "$np" --bind-to none "$bin" --workers "$workers" --reps "$reps" "${sizes[@]}" "$@"
             --json "$tmp/$tag.json")
  echo "== $tag: ${cmd[*]}"
  cut -d' ' -f1-3 /proc/loadavg >"$tmp/$tag.load_before"
  "${cmd[@]}"
  cut -d' ' -f1-3 /proc/loadavg >"$tmp/$tag.load_after"
  echo "${cmd[*]}" >"$tmp/$tag.cmd"
  runs+=("$tag")
}

run pingpong_2x1 2 1 --kernel pingpong
run uts_2x1 2 1 --kernel uts --static --serial
run uts_1x2 1 2 --kernel uts --static --serial
run nqueens_2x1 2 1 --kernel nqueens --serial
run nqueens_1x2 1 2 --kernel nqueens --serial

mkdir -p "$out_dir"
python3 - "$tmp" "$out_dir/$name" "$reps" "${runs[@]}" <<'PY'
import datetime, json, os, socket, subprocess, sys

tmp, out, reps, tags = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
def read(tag, ext):
    with open(os.path.join(tmp, f"{tag}.{ext}")) as f:
        return f.read().strip()
runs = {}
for t in tags:
    r = json.loads(read(t, "json"))
    r["command"] = read(t, "cmd")
    r["load_before"] = [float(x) for x in read(t, "load_before").split()]
    r["load_after"] = [float(x) for x in read(t, "load_after").split()]
    runs[t] = r

def med(tag, series):
    return runs[tag]["series"][series]["median"]
def spread(tag, series):
    s = runs[tag]["series"][series]
    return (s["max"] - s["min"]) / s["median"] if s["median"] else None

summary = {}
mpi, va, vt, vs = (med("pingpong_2x1", f"pingpong/{s}") for s in ("mpi", "vitte_async", "vitte_async_in_task", "vitte_steal"))
summary["round_trip_us"] = {
    "mpi_pingpong": mpi, "vitte_async": va, "vitte_async_in_task": vt, "vitte_steal": vs,
    "vitte_async_over_mpi": va / mpi, "vitte_async_in_task_over_mpi": vt / mpi, "vitte_steal_over_mpi": vs / mpi,
    "spread": {s: spread("pingpong_2x1", f"pingpong/{s}") for s in ("mpi", "vitte_async", "vitte_async_in_task", "vitte_steal")},
    "bar": "vitte's round trip within 5x of MPI's", "bar_met": va / mpi <= 5 and vt / mpi <= 5,
}
for k in ("uts", "nqueens"):
    t21, t12 = med(f"{k}_2x1", f"{k}/vitte"), med(f"{k}_1x2", f"{k}/vitte")
    summary[k] = {"vitte_2x1_s": t21, "vitte_1x2_s": t12, "efficiency_1x2_over_2x1": t12 / t21,
                  "spread_2x1": spread(f"{k}_2x1", f"{k}/vitte"), "spread_1x2": spread(f"{k}_1x2", f"{k}/vitte"),
                  "serial_s": med(f"{k}_2x1", f"{k}/serial")}
st = med("uts_2x1", "uts/static_mpi_tbb")
summary["uts"].update({
    "static_mpi_tbb_2x1_s": st, "static_spread_2x1": spread("uts_2x1", "uts/static_mpi_tbb"),
    "static_largest_share": med("uts_2x1", "uts/static_largest_share"),
    "static_over_vitte_2x1": runs["uts_2x1"]["derived"]["uts/static_over_vitte"],
    "tbb_1x2_s": med("uts_1x2", "uts/static_mpi_tbb"),
    "bar": "vitte's rank-level stealing at least 1.5x faster than the static split (same run, 2x1)",
})
summary["uts"]["bar_met"] = summary["uts"]["static_over_vitte_2x1"] >= 1.5
summary["all_checks_ok"] = all(r["ok"] for r in runs.values())

def git(*a):
    try:
        return subprocess.run(["git", *a], capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return None
mpi_version = subprocess.run(["mpirun", "--version"], capture_output=True, text=True).stdout.splitlines()
doc = {
    "context": {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host_name": socket.gethostname(), "num_cpus": os.cpu_count(), "reps": reps,
        "git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "mpi": mpi_version[0] if mpi_version else None,
        "note": "times in seconds, round trips in microseconds; medians over the repetitions, "
                "min/max and per_rep beside them; each run alternates its baseline and vitte per repetition",
    },
    "summary": summary,
    "runs": runs,
}
with open(out, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")
rt, u, q = summary["round_trip_us"], summary["uts"], summary["nqueens"]
print(f"\nwrote {out}")
print(f"round trip (us, median): MPI {rt['mpi_pingpong']:.2f}  vitte async {rt['vitte_async']:.2f} "
      f"({rt['vitte_async_over_mpi']:.1f}x)  in a task {rt['vitte_async_in_task']:.2f} ({rt['vitte_async_in_task_over_mpi']:.1f}x)  "
      f"steal {rt['vitte_steal']:.2f} ({rt['vitte_steal_over_mpi']:.1f}x)  bar 5x: {'met' if rt['bar_met'] else 'MISSED'}")
for k, s in (("uts", u), ("nqueens", q)):
    print(f"{k}: 2x1 {s['vitte_2x1_s']:.3f} s, 1x2 {s['vitte_1x2_s']:.3f} s, efficiency {s['efficiency_1x2_over_2x1']:.2f}; serial {s['serial_s']:.3f} s")
print(f"uts static split 2x1 {u['static_mpi_tbb_2x1_s']:.3f} s (largest share {u['static_largest_share']:.1%}), "
      f"static/vitte {u['static_over_vitte_2x1']:.2f}x, bar 1.5x: {'met' if u['bar_met'] else 'MISSED'}; oneTBB alone 1x2 {u['tbb_1x2_s']:.3f} s")
print("checks:", "all ok" if summary["all_checks_ok"] else "SOME WRONG")
sys.exit(0 if summary["all_checks_ok"] else 1)
PY

#!/usr/bin/env bash
# Quick start, second command: set up, build and run every test.
#   1. release build: all suites (unit, stress, CLI, benchmark smoke run)
#   2. ThreadSanitizer build: the stress suites (deque, scheduler, task groups, locality)
#   3. AddressSanitizer + UndefinedBehaviorSanitizer build: the same suites
#   4. install checks: `meson install` into a staging prefix, then: the origin example built
#      with the staged .pc's flags runs; those Cflags hold no private dependency (toml++...);
#      the staged vitte-sched runs without LD_LIBRARY_PATH (its RUNPATH); a CMake project
#      (tests/cmake_consumer) finds the package with find_package and vitte::scheduler
#   5. the NUMA suite on real multi-node kernels: scripts/numa-vm.sh boots QEMU guests of
#      2 nodes x 2 CPUs and 4 nodes x 1 CPU and checks pinning, page placement and steal
#      locality inside them (skipped, saying why, only where QEMU cannot start)
# Ends with one line "N passed, N failed" over all of them; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1

export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"

passed=0
failed=0
failures=()

count_meson() {  # adds a meson test log's results to the totals
  local log=$1/meson-logs/testlog.json
  [ -f "$log" ] || return
  local p f
  p=$(grep -c '"result": "OK"' "$log" || true)
  f=$(grep -vc '"result": "OK"' "$log" || true)
  passed=$((passed + p))
  failed=$((failed + f))
}

run_meson() {  # name dir suite [meson options...]
  local name=$1 dir=$2 suite=$3
  shift 3
  echo "=== $name: build"
  if ! bash scripts/build.sh "$dir" "$@" >"$dir.build.log" 2>&1; then
    tail -40 "$dir.build.log"
    failed=$((failed + 1))
    failures+=("$name (build)")
    return
  fi
  echo "=== $name: test (suite $suite)"
  rm -f "$dir/meson-logs/testlog.json"
  if ! meson test -C "$dir" --suite "$suite" --print-errorlogs --num-processes 1; then
    failures+=("$name")
  fi
  count_meson "$dir"
}

run_meson release build unit -Dbuildtype=release -Dtests=enabled -Dbenchmarks=enabled
run_meson tsan build-tsan stress -Db_sanitize=thread -Db_lundef=false -Dbuildtype=debugoptimized \
  -Djemalloc=disabled -Dpapi=disabled -Dbenchmarks=disabled -Dtests=enabled -Dstress_scale=20
run_meson asan+ubsan build-asan stress -Db_sanitize=address,undefined -Db_lundef=false \
  -Dbuildtype=debugoptimized -Djemalloc=disabled -Dpapi=disabled -Dbenchmarks=disabled -Dtests=enabled \
  -Dstress_scale=25

echo "=== install: meson install into a staging prefix, then use it as pkg-config and CMake users do"
install_check() {  # name, then a command; counts one test
  local name=$1
  shift
  if "$@"; then
    echo "install: $name: OK"
    passed=$((passed + 1))
  else
    echo "install: $name: FAILED"
    failed=$((failed + 1))
    failures+=("install: $name")
  fi
}
stage=$(mktemp -d)
if meson install -C build --destdir "$stage" --quiet >/dev/null &&
   prefix=$(meson introspect build --buildoptions | python3 -c \
     'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"))'); then
  echo "install: staged prefix $prefix under $stage"
  pc_file=$(find "$stage" -name vitte-scheduler.pc | head -1)
  pkg() { PKG_CONFIG_SYSROOT_DIR="$stage" PKG_CONFIG_PATH="$(dirname "$pc_file")" pkg-config "$@" vitte-scheduler; }
  # The origin example, built with the staged .pc's flags, runs.
  pc_build() {
    local flags libdir
    flags=$(pkg --cflags --libs) && libdir=$(dirname "$(find "$stage" -name 'libvitte-scheduler.so' | head -1)") &&
      g++ -std=c++20 -O2 examples/origin.cpp $flags -o "$stage/origin-pc" &&
      LD_LIBRARY_PATH="$libdir" "$stage/origin-pc" | grep -q "task on thread"
  }
  # Users' Cflags hold only what the public headers need: no private dependency's flags.
  pc_private() {
    local cflags
    cflags=$(pkg --cflags) || return 1
    echo "install: pkg-config --cflags: $cflags"
    ! grep -qiE 'toml|tbb|hwloc|jemalloc|nlohmann' <<<"$cflags"
  }
  # The installed vitte-sched finds the staged library through its RUNPATH alone.
  sched_runs() {
    local bin
    bin=$(find "$stage" -type f -name vitte-sched | head -1)
    [ -n "$bin" ] || return 1
    echo "install: $(env -u LD_LIBRARY_PATH ldd "$bin" | grep libvitte-scheduler)"
    env -u LD_LIBRARY_PATH ldd "$bin" | grep -q "libvitte-scheduler.so.0 => $stage/" &&
      env -u LD_LIBRARY_PATH "$bin" topo >/dev/null
  }
  # find_package(vitte-scheduler CONFIG) and vitte::scheduler, from a prefix other than the
  # configured one (relocatable), built and run without LD_LIBRARY_PATH.
  cmake_build() {
    cmake -S tests/cmake_consumer -B "$stage/cmake-consumer" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_PREFIX_PATH="$stage$prefix" >"$stage/cmake-consumer.log" 2>&1 &&
      cmake --build "$stage/cmake-consumer" >>"$stage/cmake-consumer.log" 2>&1 &&
      echo "install: cmake: $(grep -o 'vitte-scheduler [0-9.]* from .*' "$stage/cmake-consumer.log")" &&
      env -u LD_LIBRARY_PATH "$stage/cmake-consumer/origin" | grep -q "task on thread" ||
      { tail -20 "$stage/cmake-consumer.log"; return 1; }
  }
  install_check "pkg-config build of the origin example" pc_build
  install_check "pkg-config --cflags free of private dependencies" pc_private
  install_check "vitte-sched runs without LD_LIBRARY_PATH" sched_runs
  install_check "CMake find_package(vitte-scheduler) and vitte::scheduler" cmake_build
else
  install_check "meson install --destdir" false
fi
rm -rf "$stage"

echo "=== numa: multi-node guests under QEMU"
bash scripts/numa-vm.sh build | tee numa-vm.log
numa_rc=${PIPESTATUS[0]}
if [ "$numa_rc" -eq 77 ]; then
  echo "numa: skipped (see the reason above)"
else
  line=$(grep -E '^numa-vm: [0-9]+ passed, [0-9]+ failed' numa-vm.log | tail -1)
  p=$(echo "$line" | awk '{print $2}')
  f=$(echo "$line" | awk '{print $4}')
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-1}))
  [ "$numa_rc" -eq 0 ] || failures+=("numa")
fi
rm -f numa-vm.log

[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "test: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#failures[@]} -eq 0 ]

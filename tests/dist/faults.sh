#!/usr/bin/env bash
# Runs tests/dist/faults.cpp's modes under mpirun and checks each outcome.
#   faults.sh MPIRUN FAULTS_BINARY
set -uo pipefail
mpirun=$1
bin=$2
fail=0

for mode in missing signature; do
  out=$(timeout 120 "$mpirun" -np 3 "$bin" "$mode" 2>&1)
  rc=$?
  n=$(grep -c '^refused: ' <<<"$out")
  if [ $rc -ne 0 ] || [ "$n" -ne 3 ]; then
    echo "FAIL $mode: exit $rc, $n of 3 ranks refused"; echo "$out"; fail=1
  else
    echo "ok   $mode: every rank refused"; grep -m1 '^refused: ' <<<"$out"
  fi
done

start=$(date +%s)
out=$(timeout 120 "$mpirun" -np 2 "$bin" dies 2>&1)
rc=$?
took=$(( $(date +%s) - start ))
if [ $rc -eq 124 ] || [ $rc -eq 0 ]; then
  echo "FAIL dies: exit $rc after ${took}s (0: join_all returned; 124: the job hung)"; echo "$out"; fail=1
elif grep -q 'join_all() returned' <<<"$out"; then
  echo "FAIL dies: join_all() returned on a surviving rank"; echo "$out"; fail=1
else
  echo "ok   dies: mpirun ended the job with exit $rc after ${took}s"
fi
exit $fail

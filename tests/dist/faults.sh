#!/usr/bin/env bash
# Runs tests/dist/faults.cpp's modes under mpirun and checks each outcome.
#   faults.sh MPIRUN FAULTS_BINARY
set -uo pipefail
mpirun=$1
bin=$2
fail=0

for mode in missing signature options; do
  out=$(timeout 120 "$mpirun" -np 3 "$bin" "$mode" 2>&1)
  rc=$?
  n=$(grep -c '^refused: ' <<<"$out")
  if [ $rc -ne 0 ] || [ "$n" -ne 3 ]; then
    echo "FAIL $mode: exit $rc, $n of 3 ranks refused"; echo "$out"; fail=1
  else
    echo "ok   $mode: every rank refused"; grep -m1 '^refused: ' <<<"$out"
  fi
done

if timeout 120 "$mpirun" -np 2 "$bin" again >/dev/null 2>&1; then
  echo "ok   again: two clusters one after the other"
else
  echo "FAIL again: a second cluster in the same process failed"; fail=1
fi

for mode in dies throws; do
  start=$(date +%s)
  out=$(timeout 120 "$mpirun" -np 2 "$bin" $mode 2>&1)
  rc=$?
  took=$(( $(date +%s) - start ))
  if [ $rc -eq 124 ] || [ $rc -eq 0 ]; then
    echo "FAIL $mode: exit $rc after ${took}s (0: join_all returned; 124: the job hung)"; echo "$out"; fail=1
  elif grep -q 'join_all() returned\|reached main' <<<"$out"; then
    echo "FAIL $mode: a surviving rank went on"; echo "$out"; fail=1
  elif [ $mode = throws ] && ! grep -q 'rank 1 is unwinding an exception' <<<"$out"; then
    echo "FAIL throws: the job ended without the cluster saying why"; echo "$out"; fail=1
  else
    echo "ok   $mode: the job ended with exit $rc after ${took}s"
  fi
done
exit $fail

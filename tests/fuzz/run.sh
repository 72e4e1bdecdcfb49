#!/bin/sh
# run.sh SRCDIR FUZZDIR TARGET... — runs each libFuzzer target FUZZDIR/fuzz_TARGET
# for FUZZ_SECONDS (default 20) over SRCDIR/tests/fuzz/corpus/TARGET and
# regress/TARGET; new inputs go to FUZZDIR/work/TARGET, findings to
# FUZZDIR/findings/. Exits non-zero if any target found something, naming the
# input to copy into regress/. FUZZ_RSS_MB (default 1024), FUZZ_MALLOC_MB
# (default 1024), FUZZ_TIMEOUT (seconds per input, default 20) and FUZZ_ARGS
# (more libFuzzer flags) tune the run; OMP and OpenBLAS run one thread each.
set -u
srcdir=$1
dir=$2
shift 2
seconds=${FUZZ_SECONDS:-20}
rss=${FUZZ_RSS_MB:-1024}
malloc=${FUZZ_MALLOC_MB:-1024}
timeout=${FUZZ_TIMEOUT:-20}
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=passive
export OMP_NUM_THREADS OPENBLAS_NUM_THREADS OMP_WAIT_POLICY
LSAN_OPTIONS="suppressions=$srcdir/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS
failed=""
for t in "$@"; do
  work="$dir/work/$t"
  findings="$dir/findings"
  mkdir -p "$work" "$findings"
  log="$dir/work/$t.log"
  echo "fuzz $t: ${seconds}s"
  regress="$srcdir/tests/fuzz/regress/$t"
  [ -d "$regress" ] || regress=""
  # shellcheck disable=SC2086
  "$dir/fuzz_$t" -max_total_time="$seconds" -rss_limit_mb="$rss" -malloc_limit_mb="$malloc" \
    -timeout="$timeout" -print_final_stats=1 -artifact_prefix="$findings/$t-" ${FUZZ_ARGS:-} \
    "$work" "$srcdir/tests/fuzz/corpus/$t" $regress >"$log" 2>&1
  rc=$?
  grep -E '^#[0-9]+[[:space:]]+DONE|^stat::number_of_executed_units|^stat::peak_rss_mb' "$log" | tr '\n' ' '
  echo
  if [ $rc -ne 0 ]; then
    failed="$failed $t"
    echo "fuzz $t: FAILED (exit $rc); the log is $log:"
    grep -E '^==[0-9]+==ERROR|^FUZZ FINDING|runtime error|^SUMMARY|Test unit written to' "$log" | head -20
    for a in $(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log"); do
      echo "fuzz $t: the input is $a; minimise it (FUZZDIR/fuzz_$t -minimize_crash=1 -runs=10000 $a),"
      echo "  fix the reader and copy it into $srcdir/tests/fuzz/regress/$t/ (make check replays it)"
    done
  fi
done
if [ -n "$failed" ]; then
  echo "fuzz-smoke: findings in:$failed"
  exit 1
fi
echo "fuzz-smoke: no findings in $*"

#!/bin/bash
# speed_table_test.sh — bench/speed_table.sh plans what it says, without running
# a benchmark: dry_run=1 lists every row's taming runs at all three precisions,
# leaves out the PyTorch runs with one line saying why where the given python
# cannot be run, and bad arguments exit 2.
set -u -o pipefail
src=${TT_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
build=${TT_BUILDDIR:-$src}
script=$src/bench/speed_table.sh
taming=$build/host/taming
fails=0
ok() { # ok WHAT CONDITION...
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails + 1)); fi
}
T=$(mktemp -d "${TMPDIR:-/tmp}/speed-table-test.XXXXXX")
trap 'rm -rf "$T"' EXIT

TMPDIR=$T bash "$script" dry_run=1 python="$T/no-python" official="$T/none" taming="$taming" >"$T/out.txt" 2>&1
rc=$?
sed 's/^/    | /' "$T/out.txt"
ok "dry run exits 0" [ $rc -eq 0 ]
ok "names the CPU, the threads and the load" \
  bash -c "grep -q '^speed_table: .*CPUs; flags:' '$T/out.txt' && grep -q '^threads: 2;' '$T/out.txt' && grep -q '^load average at start: ' '$T/out.txt'"
ok "says why the PyTorch rows are skipped" grep -q "^PyTorch rows skipped: no python at '$T/no-python'" "$T/out.txt"
ok "runs no PyTorch step without torch" bash -c "! grep -q 'torch_bench.py\|torch_gpt.py\|ref.py' '$T/out.txt'"
for step in vqgan_fp32 vqgan_bf16 gpt1_fp32 gpt1_bf16 gpt1_int8 gpt16_fp32 gpt16_bf16 gpt16_int8 win_fp32 win_bf16 win_int8; do
  ok "plans $step" grep -q "^would run $step: " "$T/out.txt"
done
ok "batch 16 runs at batch 16" grep -q "^would run gpt16_int8: .*gpt.lua .*batch=16 .*precision=int8" "$T/out.txt"
ok "the window row samples a stated number of cells" grep -q "^would run win_fp32: .*highres.lua .*cells=[0-9]" "$T/out.txt"
ok "the dry run leaves nothing behind" [ -z "$(ls -A "$T" | grep -v '^out.txt$')" ]

TMPDIR=$T bash "$script" dry_run=1 bogus=1 taming="$taming" >/dev/null 2>&1
ok "an unknown argument exits 2" [ $? -eq 2 ]
TMPDIR=$T bash "$script" dry_run=1 threads=0 taming="$taming" >/dev/null 2>&1
ok "threads=0 exits 2" [ $? -eq 2 ]
TMPDIR=$T bash "$script" dry_run=1 taming="$T/no-taming" >/dev/null 2>&1
ok "a missing taming command exits 2" [ $? -eq 2 ]

echo "speed_table_test: $fails failure(s)"
[ $fails -eq 0 ]

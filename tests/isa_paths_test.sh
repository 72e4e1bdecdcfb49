#!/bin/bash
# isa_paths_test.sh — the bf16 and int8 fidelity gates on the path of CPUs that
# have AVX512-BF16 but no AMX (AMD Zen 4), taken on an AMX CPU by hiding AMX
# (TAMING_CPU_ISA=avx512): the VQGAN's bf16 codes and reconstructions against
# fp32 (test_vqgan_bf16: >= 98 % codes equal, PSNR >= 35 dB), and the GPT's greedy
# agreement and logit error (test_precision's prefill and batch-16 cases, the ones
# AMX tiles would otherwise run; test_precision_fixtures on the official weights).
# Each run must name the AVX512-BF16 kernels and never AMX. Skips (77) where the
# CPU has no AVX512-BF16, or where every suite skips (no fixtures, no kernels).
set -u
top=${TT_BUILDDIR:-$(cd "$(dirname "$0")/.." && pwd)}
src=${TT_SRCDIR:-$top}
taming=$top/host/taming
if ! grep -qw avx512_bf16 /proc/cpuinfo 2>/dev/null; then
  echo "SKIP: this CPU has no AVX512-BF16"
  exit 77
fi
fails=0 ran=0
# run SUITE ONLY PATTERN...: the suite under TAMING_CPU_ISA=avx512 (ONLY: its tests to run,
# "" for all); each PATTERN must appear in its output, "amx" must not
run() {
  local suite=$1 only=$2 out rc
  shift 2
  out=$(TAMING_CPU_ISA=avx512 TAMING_TEST_ONLY=$only "$taming" run "$src/tests/lua/$suite.lua" 2>&1)
  rc=$?
  echo "$out" | sed "s/^/    $suite | /"
  if [ $rc -eq 77 ]; then echo "skipped: $suite"; return; fi
  ran=$((ran + 1))
  if [ $rc -ne 0 ]; then echo "FAIL: $suite exited $rc under TAMING_CPU_ISA=avx512"; fails=$((fails + 1)); fi
  for p in "$@"; do
    if ! grep -qF -- "$p" <<<"$out"; then echo "FAIL: $suite does not say '$p'"; fails=$((fails + 1)); fi
  done
  if grep -qi amx <<<"$out"; then echo "FAIL: $suite ran AMX kernels with AMX hidden"; fails=$((fails + 1)); fi
}
run test_vqgan_bf16 report,fixture_model,shipped_model "bf16 convolutions: avx512bf16 (oneDNN)"
run test_precision bf16_prefill_and_batch,int8_prefill_and_batch "precision bf16: avx512bf16" "precision int8: avx512f"
run test_precision_fixtures ""
if [ $ran -eq 0 ]; then echo "SKIP: every suite skipped"; exit 77; fi
echo "isa_paths_test: $ran suite(s) on the AVX512-BF16 path, $fails failure(s)"
[ $fails -eq 0 ]

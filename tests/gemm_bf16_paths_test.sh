#!/bin/bash
# gemm_bf16_paths_test.sh — check_ops_gemm_bf16 on the paths an AMX CPU does not
# take by itself: TAMING_CPU_ISA=avx512 (the AVX512-BF16 kernel of CPUs without
# AMX, e.g. AMD Zen 4) must pass; TAMING_CPU_ISA=generic (no bf16 GEMM) must skip
# with the reason, the compute-precision switch refusing bf16. Skips (77) where the
# CPU has no AVX512-BF16 at all (check_ops_gemm_bf16 covers that case itself).
set -u
top=${TT_BUILDDIR:-$(cd "$(dirname "$0")/.." && pwd)}
prog="$top/tests/check_ops_gemm_bf16"
[ -x "$prog" ] || { echo "SKIP: $prog is not built (no check library?)"; exit 77; }
if ! grep -qw avx512_bf16 /proc/cpuinfo 2>/dev/null; then
  echo "SKIP: this CPU has no AVX512-BF16"
  exit 77
fi
out=$(TAMING_CPU_ISA=avx512 "$prog" 2>&1); rc=$?
echo "$out"
if [ $rc -ne 0 ] || ! grep -q "gemm_bf16: avx512bf16" <<<"$out"; then
  echo "FAIL: the AVX512-BF16 path (TAMING_CPU_ISA=avx512) exited $rc"
  exit 1
fi
out=$(TAMING_CPU_ISA=generic "$prog" 2>&1); rc=$?
echo "$out"
if [ $rc -ne 77 ] || ! grep -q "no bf16 GEMM on this CPU (no kernel (TAMING_CPU_ISA=generic))" <<<"$out"; then
  echo "FAIL: without a bf16 GEMM the suite must skip (77) with the reason; it exited $rc"
  exit 1
fi
echo "PASS: avx512bf16 path, and the refusal without a bf16 GEMM"

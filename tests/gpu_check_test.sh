#!/bin/bash
# gpu_check_test.sh — bench/gpu_check.sh fails loudly, on any machine: it runs
# against a stand-in bundle (shell scripts in place of the programs, a fake
# nvidia-smi first on the PATH) and checks that
#   - with no GPU, each phase says so, exits non-zero, ends with a FAIL summary
#     and leaves exactly one tar in O=;
#   - with a "GPU", a check that exits 77 (skip) fails the run, PARITY lines of
#     both convolution paths reach parity.txt;
#   - bad arguments exit 2 and write nothing.
set -u -o pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
script=$top/bench/gpu_check.sh
T=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
fails=0
ok() { # ok WHAT CONDITION...
  local what=$1
  shift
  if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fails=$((fails + 1)); fi
}

# a stand-in bundle: the layout gpu_check.sh reads, programs that behave as told
B=$T/bundle
mkdir -p "$B/bin" "$B/lib/taming" "$B/bench" "$T/fakebin" "$T/cudalibs"
cp "$script" "$B/bench/gpu_check.sh"
: >"$B/lib/taming/libtaming_cuda.so"
echo libfakecuda.so.1 >"$B/lib/taming/cuda-libs.txt"
: >"$T/cudalibs/libfakecuda.so.1"
printf '#!/bin/sh\nexit 0\n' >"$B/bin/taming"
# check_cuda: the cuDNN run skips (77), the GEMM run passes; both print PARITY lines
cat >"$B/bin/check_cuda" <<'EOF'
#!/bin/sh
echo "cuda device: Fake GPU, 80 GiB, sm_90, cuDNN 9.1.0 from /fake/libcudnn.so.9"
echo "PARITY conv2d_${TAMING_CUDA_CONV:-cudnn} 1e-7 2e-7"
[ "${TAMING_CUDA_CONV:-}" = gemm ] && exit 0
exit 77
EOF
printf '#!/bin/sh\necho "NCCL allreduce ranks=1 n=1 max_abs_diff=0"\nexit 0\n' >"$B/bin/check_nccl"
printf '#!/bin/sh\necho "========= ERROR SUMMARY: 0 errors"\nexit 0\n' >"$T/fakebin/compute-sanitizer"
chmod +x "$B/bin/"* "$B/bench/gpu_check.sh" "$T/fakebin/"*

nogpu() { printf '#!/bin/sh\necho "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver."\nexit 9\n' >"$T/fakebin/nvidia-smi"; chmod +x "$T/fakebin/nvidia-smi"; }
gpu() { printf '#!/bin/sh\necho "GPU 0: Fake GPU (UUID: GPU-0)"\nexit 0\n' >"$T/fakebin/nvidia-smi"; chmod +x "$T/fakebin/nvidia-smi"; }
run_phase() { # run_phase N OUTDIR -> output in $T/out.txt, status in $rc
  PATH=$T/fakebin:$PATH TAMING_CUDA_LIBS=$T/cudalibs "$B/bench/gpu_check.sh" "phase=$1" "O=$2" >"$T/out.txt" 2>&1
  rc=$?
  sed 's/^/    | /' "$T/out.txt"
}
only_tar() { [ "$(ls -A "$1")" = "gpu-check-phase$2.tar.gz" ]; }
last_line_fail() { tail -n 1 "$T/out.txt" | grep -q "^gpu_check phase=$1: FAIL"; }
in_tar() { tar -xzOf "$1" "$2" 2>/dev/null | grep -q -- "$3"; }

# ---- no GPU
nogpu
for p in 1 2; do
  O=$T/out$p
  run_phase $p "$O"
  ok "phase $p without a GPU exits non-zero" [ $rc -ne 0 ]
  ok "phase $p without a GPU says so" grep -q "NO GPU" "$T/out.txt"
  ok "phase $p ends with a FAIL summary" last_line_fail $p
  ok "phase $p leaves one tar and nothing else" only_tar "$O" $p
  ok "phase $p's tar holds the summary" in_tar "$O/gpu-check-phase$p.tar.gz" "gpu-check-phase$p/summary.txt" FAIL
  worst=$(sed -n 's/.*worst case \([0-9]*\) s.*/\1/p' "$T/out.txt")
  ok "phase $p states its worst case, under 8 minutes ($worst s)" test "${worst:-999}" -le 480
done

# ---- a "GPU" where the cuDNN run of check_cuda skips
gpu
O=$T/skip
run_phase 1 "$O"
ok "a skip (77) fails phase 1" [ $rc -ne 0 ]
ok "the skip is named in the summary" bash -c "tail -n 1 '$T/out.txt' | grep -q 'FAIL (1 failed: check_cuda;'"
ok "the skip is reported as a skip" grep -q "check_cuda: SKIP (exit 77" "$T/out.txt"
ok "the GEMM run, memcheck and NCCL pass" bash -c "tail -n 1 '$T/out.txt' | grep -q '4 passed'"
ok "parity.txt has the cuDNN path's lines" in_tar "$O/gpu-check-phase1.tar.gz" gpu-check-phase1/parity.txt "^cudnn PARITY conv2d_cudnn"
ok "parity.txt has the GEMM path's lines" in_tar "$O/gpu-check-phase1.tar.gz" gpu-check-phase1/parity.txt "^gemm PARITY conv2d_gemm"
ok "one tar and nothing else" only_tar "$O" 1

# ---- arguments
mkdir -p "$T/args"
PATH=$T/fakebin:$PATH "$B/bench/gpu_check.sh" phase=3 "O=$T/args" >/dev/null 2>&1
ok "phase=3 exits 2" [ $? -eq 2 ]
PATH=$T/fakebin:$PATH "$B/bench/gpu_check.sh" "O=$T/args" >/dev/null 2>&1
ok "a missing phase exits 2" [ $? -eq 2 ]
ok "bad arguments write nothing" [ -z "$(ls -A "$T/args")" ]

echo "gpu_check_test: $fails failure(s)"
[ $fails -eq 0 ]

#!/bin/sh
# gpu_check.sh — the GPU checks in one run, on a machine with an NVIDIA GPU:
# every CUDA kernel against its CPU twin (tests/check_cuda prints one
# "PARITY op max_fwd max_bwd" line per case), then the benchmarks with
# device=cuda (one JSON line each).
#
#   bench/gpu_check.sh [BUILD_DIR] [OUT_DIR]
#
# BUILD_DIR is a configured and built tree (default: build); results go to
# OUT_DIR (default: gpu-results) and to stdout.
set -u
B=${1:-build}
O=${2:-gpu-results}
mkdir -p "$O"
TAMING="$B/host/taming"
run() { # name timeout command...
  name=$1; limit=$2; shift 2
  echo "== $name"
  timeout "$limit" "$@" 2>&1 | tee "$O/$name.log"
}
nvidia-smi -L 2>&1 | tee "$O/gpu.log"
run check_cuda 300 "$B/tests/check_cuda"
run check_cuda_gemm 300 env TAMING_CUDA_CONV=gemm "$B/tests/check_cuda"
run vqgan 120 "$TAMING" run bench/vqgan.lua size=256 device=cuda reps=5
run vqgan_b8 120 "$TAMING" run bench/vqgan.lua size=256 batch=8 device=cuda reps=3
run gpt 180 "$TAMING" run bench/gpt.lua tokens=256 device=cuda
run gpt_b8 180 "$TAMING" run bench/gpt.lua tokens=256 batch=8 device=cuda
run highres 300 "$TAMING" run bench/highres.lua device=cuda
grep -h '^{' "$O"/*.log > "$O/bench.jsonl"
grep -h '^PARITY' "$O"/check_cuda.log > "$O/parity.txt"
echo "results in $O"

#!/bin/bash
# gpu_check.sh — the GPU checks, run from a bundle made by `make gpu-bundle`
# (no build step: the machine needs an NVIDIA driver, and cuBLAS, cuDNN, NCCL
# and the CUDA runtime from the CUDA toolkit or from PyTorch's nvidia/* wheels).
#
#   gpu-bundle/bench/gpu_check.sh phase=1|2 [O=DIR]
#
# phase=1  correctness: every CUDA kernel against its CPU twin (check_cuda, one
#          "PARITY op max_fwd max_bwd" line per case, the large-shape case
#          included) with convolutions through cuDNN and again through cuBLAS
#          (TAMING_CUDA_CONV=gemm); compute-sanitizer memcheck on the parity
#          cases (pool off, so every overrun is seen); a one-rank NCCL all-reduce.
# phase=2  speed: the VQGAN (fp32, and bf16 convolutions with their fidelity
#          against the same weights in fp32 on the CPU), GPT (fp32, and bf16 /
#          int8 linear layers), sliding-window and training-step benchmarks with
#          device=cuda, then PyTorch with the same shapes (torch_bench.py).
#
# Each phase's step time limits add up to less than 8 minutes (printed at the
# start). Everything — logs, parity.txt (both convolution paths), bench.jsonl,
# the libraries used — goes into ONE file, DIR/gpu-check-phase<N>.tar.gz (DIR:
# O=, else $OUT, else the current folder); nothing else is written there.
# The exit status is 0 only when every step passed: a failure, a time-out and
# a skip (exit 77, e.g. no GPU) all fail the run. The last line is a summary.
set -u -o pipefail

phase="" O="${OUT:-.}"
for a in "$@"; do
  case $a in
    phase=*) phase=${a#phase=} ;;
    O=*) O=${a#O=} ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check: unknown argument '$a' (expected phase=1|2 [O=DIR])" >&2; exit 2 ;;
  esac
done
case $phase in 1 | 2) ;; *) echo "gpu_check: phase=1 or phase=2 is required" >&2; exit 2 ;; esac

HERE=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -x "$HERE/bin/taming" ] || [ ! -f "$HERE/lib/taming/libtaming_cuda.so" ]; then
  echo "gpu_check: $HERE is not a GPU bundle with the CUDA module (make it with 'make gpu-bundle', run gpu-bundle/bench/gpu_check.sh)" >&2
  exit 2
fi
mkdir -p "$O" || { echo "gpu_check: cannot create the output folder $O" >&2; exit 2; }
O=$(cd "$O" && pwd)
TAR=$O/gpu-check-phase$phase.tar.gz
W=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX") || exit 2
RES=$W/gpu-check-phase$phase
mkdir -p "$RES"

export TAMING_HOME=$HERE
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc 2>/dev/null || echo 4)}
BIN=$HERE/bin
START=$(date +%s)
passed=() failed=()

summary() { # the tar, then the one-line summary, last; true when every step passed
  local took=$(($(date +%s) - START)) line ok=0
  [ ${#failed[@]} -eq 0 ] && [ ${#passed[@]} -gt 0 ] && ok=1
  if [ $ok = 1 ]; then
    line="gpu_check phase=$phase: PASS (${#passed[@]} steps: ${passed[*]}) in ${took} s; results in $TAR"
  else
    line="gpu_check phase=$phase: FAIL (${#failed[@]} failed: ${failed[*]}; ${#passed[@]} passed) in ${took} s; results in $TAR"
  fi
  echo "$line" >"$RES/summary.txt"
  if ! tar -C "$W" -czf "$TAR.tmp" "gpu-check-phase$phase" || ! mv "$TAR.tmp" "$TAR"; then
    rm -f "$TAR.tmp"
    line="gpu_check phase=$phase: FAIL (could not write $TAR)"
    ok=0
  fi
  rm -rf "$W"
  echo "$line"
  [ $ok = 1 ]
}

# run NAME LIMIT_S CMD... — one step: its output in NAME.log, one status line here
run() {
  local name=$1 limit=$2 t0 rc verdict
  shift 2
  t0=$(date +%s)
  echo "== $name (limit ${limit} s): $*" | sed "s|$HERE|<bundle>|g"
  timeout -k "$GRACE" "$limit" "$@" >"$RES/$name.log" 2>&1
  rc=$?
  case $rc in
    0) verdict=PASS ;;
    77) verdict="SKIP (exit 77; counted as a failure)" ;;
    124 | 137) verdict="TIMEOUT after ${limit} s" ;;
    *) verdict="FAIL (exit $rc)" ;;
  esac
  echo "$name: $verdict in $(($(date +%s) - t0)) s" | tee -a "$RES/steps.txt"
  if [ $rc -eq 0 ]; then
    passed+=("$name")
  else
    failed+=("$name")
    tail -n 15 "$RES/$name.log" | sed 's/^/    /'
  fi
  return $rc
}

# fail NAME WHY — a step that could not even start
fail() {
  echo "$1: FAIL ($2)" | tee -a "$RES/steps.txt"
  failed+=("$1")
}

# ---- the machine, the GPU and the libraries
# ---- time: every step's limit, and the worst case of the phase (limits + the kill grace of each)
GRACE=5 PREFLIGHT=40 # nvidia-smi twice, python, cuobjdump: 10 s each at most
if [ "$phase" = 1 ]; then
  declare -A LIMIT=([check_cuda]=100 [check_cuda_gemm]=100 [memcheck]=170 [nccl]=40)
  STEPS=(check_cuda check_cuda_gemm memcheck nccl)
else
  declare -A LIMIT=([vqgan]=40 [vqgan_bf16]=35 [vqgan_b8]=35 [gpt]=40 [gpt_bf16]=20 [gpt_int8]=20 [gpt_b8]=40
    [highres]=35 [train_step]=40 [torch]=85)
  STEPS=(vqgan vqgan_bf16 vqgan_b8 gpt gpt_bf16 gpt_int8 gpt_b8 highres train_step torch)
fi
worst=$PREFLIGHT budget="preflight $PREFLIGHT"
for k in "${STEPS[@]}"; do
  worst=$((worst + LIMIT[$k] + GRACE))
  budget="$budget, $k ${LIMIT[$k]}"
done
echo "gpu_check phase=$phase from $HERE; step limits (s): $budget; worst case ${worst} s (limit 480 s)"
if [ $worst -gt 480 ]; then echo "gpu_check: the step limits add up to ${worst} s, over 8 minutes" >&2; exit 2; fi
{
  cat "$HERE/BUNDLE.txt" 2>/dev/null
  echo "--- machine"
  uname -a
  echo "cpus: $(nproc 2>/dev/null)"
  echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
} >"$RES/machine.txt"

gpu_ok=1
if ! command -v nvidia-smi >/dev/null 2>&1; then
  gpu_ok=0 why="nvidia-smi is not installed (no NVIDIA driver)"
elif ! timeout 10 nvidia-smi -L >"$RES/gpu.txt" 2>&1 || ! grep -q '^GPU ' "$RES/gpu.txt"; then
  gpu_ok=0 why="nvidia-smi found no GPU: $(head -n 1 "$RES/gpu.txt")"
else
  timeout 10 nvidia-smi >>"$RES/gpu.txt" 2>&1
fi

# Where a soname is: $TAMING_CUDA_LIBS, the CUDA toolkit, PyTorch's nvidia/* wheels, the system cache.
lib_dirs() {
  local d sp
  for d in ${TAMING_CUDA_LIBS:+${TAMING_CUDA_LIBS//:/ }}; do echo "$d user"; done
  for d in "${CUDA_HOME:-/usr/local/cuda}/lib64" /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    echo "$d toolkit"
  done
  for py in python3 python; do
    command -v $py >/dev/null 2>&1 || continue
    for sp in $(timeout 10 $py -c 'import site; print("\n".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null); do
      for d in "$sp"/nvidia/*/lib; do [ -d "$d" ] && echo "$d python-wheel"; done
    done
    break
  done
  ldconfig -p 2>/dev/null | awk '$NF ~ /^\// {sub(/\/[^\/]*$/, "", $NF); print $NF, "system"}' | sort -u
}
: >"$RES/libraries.txt"
LIBPATH=""
missing=""
while read -r soname; do
  [ -n "$soname" ] || continue
  found=""
  while read -r dir kind; do
    if [ -e "$dir/$soname" ]; then found="$dir/$soname ($kind)"; break; fi
  done < <(lib_dirs)
  if [ -z "$found" ]; then
    missing="$missing $soname"
    echo "$soname: NOT FOUND" >>"$RES/libraries.txt"
    continue
  fi
  echo "$soname: $found" >>"$RES/libraries.txt"
  dir=${found%/*}
  case ":$LIBPATH:" in *":$dir:"*) ;; *) LIBPATH=${LIBPATH:+$LIBPATH:}$dir ;; esac
done <"$HERE/lib/taming/cuda-libs.txt"
ORIG_LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}
export LD_LIBRARY_PATH=$LIBPATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "CUDA libraries used (LD_LIBRARY_PATH=$LIBPATH):"
sed 's/^/  /' "$RES/libraries.txt"
{
  echo "--- ldd of the CUDA module and the check programs, with LD_LIBRARY_PATH=$LIBPATH"
  for f in "$HERE/lib/taming/libtaming_cuda.so" "$BIN/check_cuda" "$BIN/check_nccl" "$BIN/taming"; do
    echo "$f:"
    ldd "$f" 2>&1
  done
  if command -v cuobjdump >/dev/null 2>&1; then
    echo "--- cuobjdump: machine code and PTX in the CUDA module"
    timeout 10 cuobjdump --list-elf --list-ptx "$HERE/lib/taming/libtaming_cuda.so" 2>&1 | sed 's/.*\.\(sm_[0-9a-z]*\)\..*/\1/' | sort | uniq -c
  fi
  command -v nvcc >/dev/null 2>&1 && nvcc --version
} >"$RES/preflight.txt" 2>&1
if grep -q 'not found' "$RES/preflight.txt"; then
  fail preflight "a library does not resolve (see preflight.txt):$(grep 'not found' "$RES/preflight.txt" | awk '{print " " $1}' | sort -u | tr -d '\n')"
elif [ -n "$missing" ]; then
  fail preflight "not found on this machine:$missing"
else
  passed+=(preflight)
fi
if [ $gpu_ok = 0 ]; then
  echo "gpu_check: NO GPU: $why. Nothing can be checked here."
  fail gpu "no NVIDIA GPU: $why"
  summary
  exit 1
fi
head -n 1 "$RES/gpu.txt"

# ---- phase 1: correctness
if [ "$phase" = 1 ]; then
  run check_cuda "${LIMIT[check_cuda]}" "$BIN/check_cuda"
  # the cuDNN run must have used cuDNN: the device line names the library it loaded
  if ! grep -q '^cuda device: .*cuDNN [0-9]' "$RES/check_cuda.log"; then
    fail cudnn_loaded "check_cuda did not run its convolutions through cuDNN: $(grep -m1 '^cuda device' "$RES/check_cuda.log")"
  fi
  run check_cuda_gemm "${LIMIT[check_cuda_gemm]}" env TAMING_CUDA_CONV=gemm "$BIN/check_cuda"
  for path in cudnn gemm; do
    log=$RES/check_cuda.log
    [ $path = gemm ] && log=$RES/check_cuda_gemm.log
    grep '^PARITY' "$log" | sed "s/^/$path /"
  done >"$RES/parity.txt"
  echo "PARITY lines: $(grep -c '^cudnn' "$RES/parity.txt") (cuDNN), $(grep -c '^gemm' "$RES/parity.txt") (GEMM)"
  if command -v compute-sanitizer >/dev/null 2>&1; then
    run memcheck "${LIMIT[memcheck]}" env TAMING_CUDA_POOL=0 CK_RUN_CASE=parity \
      compute-sanitizer --tool memcheck --error-exitcode 99 --leak-check no "$BIN/check_cuda"
    grep -h 'ERROR SUMMARY' "$RES/memcheck.log"
  else
    fail memcheck "compute-sanitizer is not on the PATH"
  fi
  run nccl "${LIMIT[nccl]}" "$BIN/check_nccl"
fi

# ---- phase 2: speed, ours then PyTorch's, same shapes
if [ "$phase" = 2 ]; then
  T="$BIN/taming run"
  run vqgan "${LIMIT[vqgan]}" $T "$HERE/bench/vqgan.lua" size=256 device=cuda reps=5
  # bf16 convolutions (cuDNN), and their fidelity against fp32 on the CPU (a fallback to fp32 fails the step)
  if run vqgan_bf16 "${LIMIT[vqgan_bf16]}" $T "$HERE/bench/vqgan.lua" size=256 device=cuda reps=3 precision=bf16 \
    fidelity=1 && ! grep -q '"precision":"bf16"' "$RES/vqgan_bf16.log"; then
    fail vqgan_bf16_kernels "precision=bf16 ran fp32 on the GPU: $(grep -m1 'not available' "$RES/vqgan_bf16.log")"
  fi
  grep -ho '"codes_equal":[^}]*' "$RES/vqgan_bf16.log" | sed 's/^/VQGAN bf16 on cuda vs fp32 on the cpu: /'
  run vqgan_b8 "${LIMIT[vqgan_b8]}" $T "$HERE/bench/vqgan.lua" size=256 batch=8 device=cuda reps=3
  run gpt "${LIMIT[gpt]}" $T "$HERE/bench/gpt.lua" tokens=256 device=cuda
  # precision=: the linear layers through the CUDA qlinear kernels (a fallback to fp32 fails the step)
  for p in bf16 int8; do
    if run gpt_$p "${LIMIT[gpt_$p]}" $T "$HERE/bench/gpt.lua" tokens=128 device=cuda precision=$p &&
      ! grep -q "\"precision\":\"$p\"" "$RES/gpt_$p.log"; then
      fail gpt_${p}_kernels "precision=$p ran fp32 on the GPU: $(grep -m1 'not available' "$RES/gpt_$p.log")"
    fi
  done
  run gpt_b8 "${LIMIT[gpt_b8]}" $T "$HERE/bench/gpt.lua" tokens=256 batch=8 device=cuda
  run highres "${LIMIT[highres]}" $T "$HERE/bench/highres.lua" device=cuda cells=64
  run train_step "${LIMIT[train_step]}" $T "$HERE/bench/train_step.lua" size=256 tokens=256 device=cuda
  # PyTorch loads its own cuBLAS and cuDNN: the library path found for ours stays out of its way
  run torch "${LIMIT[torch]}" env PYTHONUNBUFFERED=1 LD_LIBRARY_PATH="$ORIG_LD_LIBRARY_PATH" python3 "$HERE/bench/torch_bench.py" \
    --device cuda --what vqgan,gpt,highres,train_step --size 256 --tokens 256 --reps 5 --cells 64
  grep -h '^{' "$RES"/*.log >"$RES/bench.jsonl"
  echo "benchmark lines (ours, then PyTorch's):"
  sed 's/^/  /' "$RES/bench.jsonl"
fi

summary || exit 1

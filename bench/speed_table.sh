#!/bin/bash
# speed_table.sh — every row of README.md's speed table, both sides, back to back
# on this machine in one run: taming fp32 / bf16 / int8 against PyTorch fp32 and
# bf16 (model.to(torch.bfloat16)), on the CPU.
#
#   bench/speed_table.sh [python=PATH] [official=DIR] [threads=2] [taming=PATH] [quick=1] [dry_run=1]
#
# python=    the Python with torch (default /work/venv-torch/bin/python if present,
#            else python3); where it has no torch the PyTorch columns say so and
#            stay empty.
# official=  an extracted copy of the official taming-transformers source (the
#            folder holding taming/; default $TAMING_SRC): the sliding-window row's
#            PyTorch side is the official step run by ../shared/tools/torch-reference
#            (one full 511-token window forward per token); without it that cell is
#            skipped with a message.
# quick=1    tiny shapes (VQGAN 64^2, a 2-layer 256-wide GPT): checks the script
#            end to end in a minute; its numbers mean nothing.
# dry_run=1  prints the plan (every command) and runs nothing.
#
# Rows (full mode; about 25 minutes on 2 idle cores):
#   VQGAN f16 ImageNet config 256^2 encode / decode (s, median of 3): bench/vqgan.lua,
#     bench/torch_bench.py --what vqgan
#   GPT 305M (FacesHQ), KV cache, batch 1, 256 tokens (tokens/s): bench/gpt.lua,
#     bench/torch_gpt.py; with the weight bytes per token, the GB/s they make and
#     the share of a streaming read measured in the same run
#   the same GPT, batch 16, 48 steps (tokens/s)
#   sliding window over a 32x32 grid, 16x16 window (s/token): the whole grid for
#     taming (its windows come back to cached prefixes in some rows and not in
#     others, so no run of cells is a fair sample), 12 official steps for PyTorch
#     (each the same 511-token forward) extrapolated to the 1024 tokens of the grid
# Ratios are taming's speed over PyTorch fp32's (and over PyTorch bf16's for the
# bf16 column); > 1 means taming is faster. Everything a command printed stays
# in the log folder named at the end.
set -u -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)

python="" official=${TAMING_SRC:-} threads=2 taming="" quick=0 dry=0
for a in "$@"; do
  case $a in
    python=*) python=${a#python=} ;;
    official=*) official=${a#official=} ;;
    threads=*) threads=${a#threads=} ;;
    taming=*) taming=${a#taming=} ;;
    quick=*) quick=${a#quick=} ;;
    dry_run=*) dry=${a#dry_run=} ;;
    *) echo "speed_table: unknown argument '$a' (expected python= official= threads= taming= quick=1 dry_run=1)" >&2; exit 2 ;;
  esac
done
case $threads in '' | *[!0-9]* | 0) echo "speed_table: threads must be a positive integer, found '$threads'" >&2; exit 2 ;; esac
if [ -z "$python" ]; then
  if [ -x /work/venv-torch/bin/python ]; then python=/work/venv-torch/bin/python; else python=python3; fi
fi
if [ -z "$taming" ]; then
  for t in "$top/host/taming" "$top/build/host/taming" "$(command -v taming 2>/dev/null)"; do
    if [ -n "$t" ] && [ -x "$t" ]; then taming=$t; break; fi
  done
fi
if [ -z "$taming" ] || [ ! -x "$taming" ]; then
  echo "speed_table: no taming command found (build the tree, or pass taming=PATH)" >&2
  exit 2
fi

# ---- sizes
if [ "$quick" = 1 ]; then
  VQ="size=64 reps=1" TVQ="--size 64 --reps 1"
  GPTSZ="layers=2 width=256" TGPTSZ="--layers 2 --width 256"
  TOK1=8 TOK16=4 CELLS=4 REFSTEPS=1
else
  VQ="size=256 reps=3" TVQ="--size 256 --reps 3"
  GPTSZ="" TGPTSZ=""
  TOK1=256 TOK16=48 CELLS=1024 REFSTEPS=12
fi

LOG=$(mktemp -d "${TMPDIR:-/tmp}/speed-table.XXXXXX")
torch_ok=0 torch_why=""
if ! command -v "$python" >/dev/null 2>&1; then
  torch_why="no python at '$python'"
elif ! torch_v=$("$python" -c 'import torch; print(torch.__version__, torch.backends.cpu.get_cpu_capability())' 2>"$LOG/torch-import.txt"); then
  torch_why="'$python' has no torch ($(tail -n 1 "$LOG/torch-import.txt"))"
else
  torch_ok=1
fi
ref_ok=0 ref_why=""
REF=$top/../shared/tools/torch-reference/ref.py
if [ $torch_ok = 0 ]; then
  ref_why=$torch_why
elif [ ! -f "$REF" ]; then
  ref_why="../shared/tools/torch-reference/ref.py is not here"
elif [ -z "$official" ] || [ ! -f "$official/taming/modules/transformer/mingpt.py" ]; then
  ref_why="no official taming-transformers source (pass official=DIR holding taming/, see ../shared/tools/torch-reference/README.md)"
else
  ref_ok=1
fi

# ---- what runs, in order: each workload's taming and PyTorch runs back to back
T="$taming run $top/bench"
STEPS=()
add() { STEPS+=("$1|$2"); }   # add NAME COMMAND
torch_add() { [ $torch_ok = 1 ] && add "$1" "$2"; }
for p in fp32 bf16; do add "vqgan_$p" "$T/vqgan.lua $VQ threads=$threads precision=$p"; done
for p in fp32 bf16; do
  torch_add "tvqgan_$p" "$python $top/bench/torch_bench.py --device cpu --what vqgan $TVQ --threads $threads --dtype $p"
done
for p in fp32 bf16 int8; do add "gpt1_$p" "$T/gpt.lua $GPTSZ tokens=$TOK1 threads=$threads precision=$p"; done
for p in fp32 bf16; do torch_add "tgpt1_$p" "$python $top/bench/torch_gpt.py $TGPTSZ --tokens $TOK1 --threads $threads --dtype $p"; done
for p in fp32 bf16 int8; do
  add "gpt16_$p" "$T/gpt.lua $GPTSZ batch=16 tokens=$TOK16 threads=$threads precision=$p bandwidth=false"
done
for p in fp32 bf16; do
  torch_add "tgpt16_$p" "$python $top/bench/torch_gpt.py $TGPTSZ --batch 16 --tokens $TOK16 --threads $threads --dtype $p"
done
for p in fp32 bf16 int8; do add "win_$p" "$T/highres.lua $GPTSZ cells=$CELLS threads=$threads precision=$p"; done
if [ $ref_ok = 1 ]; then
  add twin_fp32 "env TAMING_SRC=$official REF_THREADS=$threads $python $REF bench --what highres --tokens 32 --reps $REFSTEPS"
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_bf16|avx512_vnni|amx_bf16|amx_int8|amx_tile)$' | tr '\n' ' ')
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "speed_table: ${cpu:-unknown CPU}; $(nproc) CPUs; flags: ${flags:-none of avx2/avx512/amx}"
echo "threads: $threads; taming: $taming; python: $python"
[ $torch_ok = 1 ] && echo "PyTorch: $torch_v (version, CPU capability)" || echo "PyTorch rows skipped: $torch_why"
[ $ref_ok = 1 ] || echo "official sliding-window step skipped: $ref_why"
echo "load average at start: $load0; logs in $LOG"
if [ "$dry" = 1 ]; then
  for s in "${STEPS[@]}"; do echo "would run ${s%%|*}: ${s#*|}"; done
  rm -rf "$LOG"
  exit 0
fi

t_all=$(date +%s)
failed=()
for s in "${STEPS[@]}"; do
  name=${s%%|*} cmd=${s#*|}
  t0=$(date +%s)
  # shellcheck disable=SC2086 # the command is a word list on purpose
  if (cd "$LOG" && $cmd) >"$LOG/$name.out" 2>"$LOG/$name.err"; then
    echo "  $name: $(($(date +%s) - t0)) s"
  else
    echo "  $name: FAILED after $(($(date +%s) - t0)) s: $(tail -n 1 "$LOG/$name.err")"
    failed+=("$name")
  fi
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the table
# jget NAME KEY: KEY of the JSON line in NAME's output ("" when absent)
jget() {
  [ -f "$LOG/$1.out" ] || return 0
  grep '^{' "$LOG/$1.out" | tail -n 1 | sed -n "s/.*\"$2\": *\"\{0,1\}\([^\",}]*\).*/\1/p"
}
# cell VALUE FMT: the number formatted, or a dash
cell() { if [ -n "$1" ]; then LC_ALL=C printf "$2" "$1"; else printf -- "—"; fi; }
# ratio OURS THEIRS MODE: OURS/THEIRS for speeds (tok/s), THEIRS/OURS for times (MODE=time)
ratio() {
  [ -n "$1" ] && [ -n "$2" ] || return 0
  LC_ALL=C awk -v a="$1" -v b="$2" -v m="$3" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", (m == "time" ? b / a : a / b) }'
}
# ours VALUE FMT VS_FP32 VS_BF16 MODE: "value (r× pt fp32, r× pt bf16)"
ours() {
  local v=$1 f=$2 r1 r2 out
  out=$(cell "$v" "$f")
  r1=$(ratio "$v" "$3" "$5")
  r2=$(ratio "$v" "$4" "$5")
  if [ -n "$r1" ] || [ -n "$r2" ]; then
    out="$out (${r1:+${r1}× pt fp32}${r1:+${r2:+, }}${r2:+${r2}× pt bf16})"
  fi
  printf "%s" "$out"
}
grid=$((32 * 32))
row() { # row LABEL KIND KEY FMT MODE (KIND: vqgan gpt1 gpt16 win)
  local label=$1 k=$2 key=$3 f=$4 m=$5 tk=t$2 f32 b16 i8 p32 p16
  f32=$(jget "${k}_fp32" "$key") b16=$(jget "${k}_bf16" "$key") i8=$(jget "${k}_int8" "$key")
  p32=$(jget "${tk}_fp32" "$key") p16=$(jget "${tk}_bf16" "$key")
  # the bench's own word on the precision it ran: a fallback to fp32 is shown as such
  local pb=$(jget "${k}_bf16" precision) pi=$(jget "${k}_int8" precision)
  printf "| %s | %s | %s%s | %s%s | %s | %s |\n" "$label" "$(ours "$f32" "$f" "$p32" "" "$m")" \
    "$(ours "$b16" "$f" "$p32" "$p16" "$m")" "${pb:+$([ "$pb" != bf16 ] && echo " (ran $pb)")}" \
    "$(ours "$i8" "$f" "$p32" "" "$m")" "${pi:+$([ "$pi" != int8 ] && echo " (ran $pi)")}" \
    "$(cell "$p32" "$f")" "$(cell "$p16" "$f")"
}
echo
echo "| workload | taming fp32 | taming bf16 | taming int8 | PyTorch fp32 | PyTorch bf16 |"
echo "|---|---|---|---|---|---|"
vq=256 && [ "$quick" = 1 ] && vq=64
row "VQGAN f16 ${vq}², encode (s)" vqgan encode_s "%.3f" time
row "VQGAN f16 ${vq}², decode (s)" vqgan decode_s "%.3f" time
row "GPT, KV cache, batch 1, $TOK1 tokens (tokens/s)" gpt1 tok_per_s "%.1f" speed
row "GPT, KV cache, batch 16, $TOK16 steps (tokens/s)" gpt16 tok_per_s "%.1f" speed
w32=$(jget win_fp32 s_per_token) w16=$(jget win_bf16 s_per_token) w8=$(jget win_int8 s_per_token)
r32=$(jget twin_fp32 s_per_token)
grid_s() { [ -n "$1" ] && LC_ALL=C awk -v s="$1" -v n=$grid 'BEGIN { printf " = %.0f s/grid", s * n }'; }
cells_txt="last $CELLS cells" && [ "$CELLS" -ge "$grid" ] && cells_txt="the whole grid"
printf "| sliding window 32×32, 16×16 window (s/token; taming: %s, PyTorch: %d official steps; ×%d for a grid) | %s%s | %s%s | %s%s | %s%s | — |\n" \
  "$cells_txt" "$REFSTEPS" "$grid" "$(ours "$w32" "%.3f" "$r32" "" time)" "$(grid_s "$w32")" \
  "$(ours "$w16" "%.3f" "$r32" "" time)" "$(grid_s "$w16")" "$(ours "$w8" "%.3f" "$r32" "" time)" "$(grid_s "$w8")" \
  "$(cell "$r32" "%.3f")" "$(grid_s "$r32")"
echo
echo "GPT batch 1, bandwidth (weights read once per token; streaming read: $threads threads, a 1 GiB buffer, same run):"
for p in fp32 bf16 int8; do
  wb=$(jget "gpt1_$p" weight_bytes_per_token) gbs=$(jget "gpt1_$p" weight_gbs)
  bw=$(jget "gpt1_$p" stream_read_gbs) sh=$(jget "gpt1_$p" bandwidth_share)
  [ -n "$wb" ] || continue
  LC_ALL=C awk -v p=$p -v wb="$wb" -v g="$gbs" -v b="$bw" -v s="$sh" \
    'BEGIN { printf "  %s: %.1f MB/token, %.1f GB/s = %.0f %% of a %.1f GB/s streaming read\n", p, wb / 1e6, g, 100 * s, b }'
done
echo "ISA paths: taming gpt $(for p in fp32 bf16 int8; do printf "%s=%s " $p "$(jget "gpt1_$p" isa)"; done)vqgan bf16=$(jget vqgan_bf16 isa);" \
  "PyTorch $(jget tgpt1_fp32 isa)"
echo "threads: $threads; load average at start $load0, at end $load1; total $(($(date +%s) - t_all)) s"
[ "$quick" = 1 ] && echo "(quick=1: tiny shapes; these numbers check the script, they are not speeds)"
if [ ${#failed[@]} -gt 0 ]; then
  echo "speed_table: ${#failed[@]} step(s) failed: ${failed[*]} (their logs are in $LOG)"
  exit 1
fi
echo "logs: $LOG"

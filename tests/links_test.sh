#!/bin/bash
# links_test.sh — every shared object the build made (libtaming, the plugins, the
# CUDA backend module, the MPI module) resolves all its symbols: `ldd -r` finds
# no undefined symbol and no missing library. A module dlopen'ed at run time
# fails only on the machine that loads it (the CUDA module on a GPU machine), so
# this is checked here, where no GPU is needed. Symbols of a sanitizer runtime
# (provided by the instrumented executable) are not counted.
set -u -o pipefail
top=${TT_BUILDDIR:-$(cd "$(dirname "$0")/.." && pwd)}
shopt -s nullglob
objs=("$top"/host/.libs/*.so "$top"/plugins/.libs/*.so "$top"/kernels/cuda/.libs/*.so)
if [ ${#objs[@]} -eq 0 ]; then
  echo "SKIP: no shared objects under $top (host/.libs, plugins/.libs, kernels/cuda/.libs)"
  exit 77
fi
fails=0
for so in "${objs[@]}"; do
  [ -L "$so" ] && continue
  bad=$(ldd -r "$so" 2>&1 | grep -E 'undefined symbol|not found' | grep -vE '__(asan|ubsan|lsan|sanitizer|msan|tsan)_|__sancov' )
  if [ -n "$bad" ]; then
    echo "FAIL: ${so#"$top"/}:"
    echo "$bad" | sed 's/^/  /'
    fails=$((fails + 1))
  else
    echo "ok: ${so#"$top"/}"
  fi
done
echo "$fails of ${#objs[@]} shared objects with unresolved symbols or libraries"
[ "$fails" -eq 0 ]

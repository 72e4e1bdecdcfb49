#!/bin/sh
# installcheck.sh — what `make installcheck` (and so `make distcheck`) does with
# the example plugins: copy their sources (not the tree) to a scratch folder,
# build them against the INSTALLED SDK with pkg-config, point
# TAMING_PLUGIN_PATH at them and use them from pipelines with the installed
# `taming`.
#
#   installcheck.sh SRCDIR PREFIX BINDIR LIBDIR PKGDATADIR DESTDIR [PKG_CONFIG]
# (the directories with DESTDIR already prepended)
set -eu
src=$1 prefix=$2 bindir=$3 libdir=$4 pkgdatadir=$5 destdir=$6 pkgconfig=${7:-pkg-config}

fail() { echo "installcheck: $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/taming-examples.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$src/Makefile" "$src/min_p.c" "$src/luma.c" "$work/"

PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH
${MAKE:-make} -C "$work" PKG_CONFIG="$pkgconfig --define-variable=prefix=$prefix"

TAMING_PLUGIN_PATH=$work
export TAMING_PLUGIN_PATH
if [ -n "$destdir" ]; then
  # staged under DESTDIR: the files are not where the program was built to look
  TAMING_HOME=$prefix
  LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export TAMING_HOME LD_LIBRARY_PATH
fi
taming=$bindir/taming

"$taming" plugins -v > "$work/plugins.txt"
grep -q "^sampler  *min_p  *1.0.0  *$work/sampler_min_p.so\$" "$work/plugins.txt" ||
  fail "taming plugins does not list $work/sampler_min_p.so: $(cat "$work/plugins.txt")"
grep -q "^cond  *luma  *1.0.0  *$work/cond_luma.so\$" "$work/plugins.txt" ||
  fail "taming plugins does not list $work/cond_luma.so"
grep -q "^ *sample  *required  *logits" "$work/plugins.txt" || fail "taming plugins -v shows no method docs"

# their numbers against the definitions
"$taming" run "$src/check.lua"

# the min_p sampler from a shipped pipeline on the shipped model
m=$pkgdatadir/models/fashion_mnist
sample() {
  "$taming" run sample_class config="$m/transformer.yaml" ckpt="$m/transformer.safetensors" class=all n=2 "$@"
}
sample sampler=min_p sampler.min_p=0.05 output="$work/min_p.png" codes="$work/min_p.npy"
test -s "$work/min_p.png" || fail "sample_class with sampler=min_p wrote no image"
sample sampler=min_p sampler.min_p=0.05 output="$work/again.png" codes="$work/again.npy"
cmp "$work/min_p.npy" "$work/again.npy" || fail "sampler=min_p: the same seed gave other codes"
# min_p = 1 keeps only the most likely token: greedy decoding
sample sampler=min_p sampler.min_p=1 output="$work/one.png" codes="$work/one.npy"
sample sampler=greedy output="$work/greedy.png" codes="$work/greedy.npy"
cmp "$work/one.npy" "$work/greedy.npy" || fail "sampler=min_p sampler.min_p=1 differs from sampler=greedy"
if cmp -s "$work/min_p.npy" "$work/greedy.npy"; then fail "sampler=min_p sampler.min_p=0.05 gave the greedy codes"; fi

# the condition encoder through tt.plugin, from a pipeline script
"$taming" run "$src/luma_hint.lua" input="$m/samples.png" down_factor=4 output="$work/hint.png"
test -s "$work/hint.png" || fail "luma_hint.lua wrote no image"
echo "installcheck: the example plugins built against $prefix and ran from pipelines"

#!/bin/sh
# gpu-bundle.sh — builds the GPU bundle (`make gpu-bundle`): one relocatable
# folder that runs the GPU checks (bench/gpu_check.sh) on a machine that has an
# NVIDIA driver, the CUDA toolkit or PyTorch's nvidia/* wheels (cuBLAS, cuDNN,
# NCCL, the CUDA runtime), but none of our build dependencies and no network.
#
#   build-aux/gpu-bundle.sh SRCDIR WORKDIR OUTDIR
#
# SRCDIR is the source tree (a git checkout: its tracked and untracked,
# not-ignored files are copied, so uncommitted edits are built too); WORKDIR
# holds that copy and its build (kept between runs, so a second run rebuilds
# only what changed); OUTDIR is replaced by the new bundle only when all of it
# was made. The build is configured with --disable-native (the GPU machine's CPU
# is not this one), the CUDA backend required and MPI off (libtaming_mpi needs
# an MPI runtime the GPU machine lacks; check_nccl covers NCCL without it).
#
# The bundle:
#   taming                   the command, with TAMING_HOME set to the bundle
#   bin/                     taming, check_cuda, check_nccl, bench_conv (real binaries)
#   lib/                     libtaming and every library they load that is not
#                            libc-level or CUDA (Lua, OpenBLAS and its Fortran
#                            runtime, libyaml, libpng, libjpeg, subunit, libgomp)
#   lib/taming/              libtaming_cuda.so and plugins/
#   share/taming/            the Lua library, pipelines, the shipped model
#   bench/                   gpu_check.sh, the benchmark scripts, torch_bench.py
#   tools/torch-reference/   a copy of ../shared/tools/torch-reference, when present
#   BUNDLE.txt               what was built, from which commit, with which CUDA
# Every ELF file's run path is $ORIGIN-relative. cuBLAS, cuDNN, NCCL and the CUDA
# runtime are left out on purpose: gpu_check.sh finds them on the GPU machine.
# Neither are libstdc++ and libgcc_s: a cuDNN or cuBLAS built against a newer
# C++ runtime than ours must get the machine's own.
set -eu

die() {
  echo "gpu-bundle: $*" >&2
  exit 1
}

[ $# -eq 3 ] || die "usage: gpu-bundle.sh SRCDIR WORKDIR OUTDIR"
SRC=$(cd "$1" && pwd) || die "$1: no such folder"
mkdir -p "$2"
WORK=$(cd "$2" && pwd)
case $3 in /*) OUT=$3 ;; *) OUT=$(pwd)/$3 ;; esac
MAX_MIB=${GPU_BUNDLE_MAX_MIB:-60}
PREFIX=/opt/taming

command -v patchelf >/dev/null 2>&1 || die "patchelf is needed to make run paths relative (apt-get install patchelf)"
command -v git >/dev/null 2>&1 || die "git is needed to list the source files"
git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1 || die "$SRC is not a git checkout"

# ---- 1. a copy of the sources (only changed files are rewritten: make sees their times)
tree=$WORK/src
mkdir -p "$tree"
git -C "$SRC" ls-files --cached --others --exclude-standard >"$WORK/files"
n_copied=0
while IFS= read -r f; do
  [ -f "$SRC/$f" ] || continue
  if ! cmp -s "$SRC/$f" "$tree/$f"; then
    mkdir -p "$tree/$(dirname "$f")"
    cp -p "$SRC/$f" "$tree/$f"
    n_copied=$((n_copied + 1))
  fi
done <"$WORK/files"
echo "gpu-bundle: $n_copied source files updated in $tree"

# ---- 2. configure (once) and build
cd "$tree"
if [ ! -x configure ] || [ configure.ac -nt configure ]; then ./bootstrap; fi
want="--prefix=$PREFIX --disable-native --enable-cuda=yes --enable-mpi=no"
if [ ! -f config.status ] || [ "$(cat "$WORK/configured-with" 2>/dev/null)" != "$want" ]; then
  rm -f "$WORK/configured-with"
  # shellcheck disable=SC2086
  ./configure $want >"$WORK/configure.log" 2>&1 || die "configure failed: see $WORK/configure.log"
  echo "$want" >"$WORK/configured-with"
fi
jobs=$(nproc 2>/dev/null || echo 2)
make -j"$jobs" >"$WORK/make.log" 2>&1 || die "make failed: see $WORK/make.log"
make -j"$jobs" tests/check_cuda tests/check_nccl bench/bench_conv >>"$WORK/make.log" 2>&1 ||
  die "building the check programs failed: see $WORK/make.log"

# ---- 3. install into a staging folder, then the programs that make install leaves out
stage=$WORK/stage
rm -rf "$stage"
make install DESTDIR="$stage" >"$WORK/install.log" 2>&1 || die "make install failed: see $WORK/install.log"
B=$stage$PREFIX
# headers, pkg-config data and the shipped Fashion-MNIST model (12 MB) serve no GPU check
rm -rf "$B/include" "$B/lib/pkgconfig" "$B/share/taming/models"
rm -f "$B"/lib/*.la "$B"/lib/taming/*.la "$B"/lib/taming/plugins/*.la "$B"/lib/libtaming*.so
for p in tests/check_cuda tests/check_nccl bench/bench_conv; do
  ./libtool --mode=install install -c "$p" "$B/bin/" >>"$WORK/install.log" 2>&1 || die "installing $p failed"
done
mkdir -p "$B/bench"
for f in bench/gpu_check.sh bench/vqgan.lua bench/gpt.lua bench/highres.lua bench/train_step.lua bench/torch_bench.py; do
  cp -p "$f" "$B/bench/"
done
if [ -d "$SRC/../shared/tools/torch-reference" ]; then
  mkdir -p "$B/tools"
  cp -rp "$SRC/../shared/tools/torch-reference" "$B/tools/"
fi
cat >"$B/taming" <<'EOF'
#!/bin/sh
# The taming command of a moved install: plugins, the CUDA module and the Lua
# library are found under this folder.
here=$(cd "$(dirname "$0")" && pwd)
TAMING_HOME=$here exec "$here/bin/taming" "$@"
EOF
chmod +x "$B/taming"

# ---- 4. the libraries a bare machine lacks, next to ours; run paths relative
is_elf() { [ -f "$1" ] && [ "$(head -c 4 "$1" | od -An -c | tr -d ' \n')" = '177ELF' ]; }
# libc-level and CUDA libraries stay outside the bundle
keep_out() {
  case $1 in
    linux-vdso.so.* | ld-linux*.so.* | libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | \
      libutil.so.* | libresolv.so.* | libstdc++.so.* | libgcc_s.so.* | libz.so.* | \
      libcuda.so.* | libcudart.so.* | libcublas.so.* | libcublasLt.so.* | libcudnn*.so.* | libnccl.so.* | libnvrtc*.so.*)
      return 0 ;;
  esac
  return 1
}
elves() { find "$B" -type f \( -name '*.so*' -o -path "$B/bin/*" \) | while read -r f; do is_elf "$f" && echo "$f"; done; }
: >"$WORK/libs.txt"
rounds=0
while :; do
  added=0
  for f in $(elves); do
    # ldd of the build tree resolves libtaming in the staging lib/ through LD_LIBRARY_PATH
    LD_LIBRARY_PATH=$B/lib:$B/lib/taming ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' |
      while read -r name path; do
        keep_out "$name" && continue
        case $path in "$B"/*) continue ;; esac
        [ -e "$B/lib/$name" ] && continue
        cp -L "$path" "$B/lib/$name"
        chmod u+w "$B/lib/$name"
        echo "$name <- $path"
      done >"$WORK/added"
    [ -s "$WORK/added" ] && added=1 && cat "$WORK/added" >>"$WORK/libs.txt"
  done
  rounds=$((rounds + 1))
  [ $added -eq 0 ] && break
  [ $rounds -lt 5 ] || die "the library closure did not settle after 5 rounds"
done
for f in $(elves); do
  # ours were built with -g: symbols stay (backtraces), debug sections go
  case $f in "$B"/bin/* | "$B"/lib/taming/* | "$B"/lib/libtaming*.so.*) strip --strip-debug "$f" ;; esac
  case $f in
    "$B"/bin/*) rp='$ORIGIN/../lib' ;;
    "$B"/lib/taming/plugins/*) rp='$ORIGIN/../..' ;;
    "$B"/lib/taming/*) rp='$ORIGIN/..' ;;
    *) rp='$ORIGIN' ;;
  esac
  patchelf --set-rpath "$rp" "$f" || die "patchelf failed on $f"
done

# the CUDA libraries the module and the checks load from the machine (gpu_check.sh finds them)
{
  for f in "$B/lib/taming/libtaming_cuda.so" "$B/bin/check_nccl"; do
    LD_LIBRARY_PATH=$B/lib ldd "$f" 2>/dev/null | awk '{print $1}' | grep -E '^lib(cudart|cublas|cublasLt|nccl)\.so\.'
  done
  echo "libcudnn.so.$(sed -n 's/^#define CUDNN_MAJOR //p' "$(sed -n 's/^CUDA_HOME = //p' Makefile)/include/cudnn_version.h")"
} | sort -u >"$B/lib/taming/cuda-libs.txt"
[ "$(wc -l <"$B/lib/taming/cuda-libs.txt")" -ge 4 ] || die "could not list the CUDA libraries the module needs"

# ---- 5. what it is, and its size
cuda_ver=$("${NVCC:-$(sed -n 's/^NVCC = //p' Makefile)}" --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p')
{
  echo "taming GPU bundle"
  echo "source:   $(git -C "$SRC" describe --always --dirty 2>/dev/null) ($(git -C "$SRC" log -1 --format=%cd --date=iso 2>/dev/null))"
  echo "built:    $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -m), glibc $(ldd --version | sed -n '1s/.* //p')"
  echo "CUDA:     nvcc $cuda_ver; $(sed -n 's/^CUDA_GENCODE = //p' Makefile)"
  echo "cuDNN:    built against the header of cuDNN $(sed -n 's/^#define CUDNN_MAJOR //p' "$(sed -n 's/^CUDA_HOME = //p' Makefile)/include/cudnn_version.h" 2>/dev/null) (loaded at run time)"
  echo "options:  $(./config.status --config)"
  echo "bundled libraries (name <- where they came from):"
  sed 's/^/  /' "$WORK/libs.txt" 2>/dev/null | sort -u
  echo "run: ./bench/gpu_check.sh phase=1 (then phase=2); see README.md, \"Checking a GPU install\""
  echo "./taming is the command; to run bin/* directly, set TAMING_HOME to this folder first"
} >"$B/BUNDLE.txt"
rm -f "$WORK/libs.txt" "$WORK/added"
mib=$(du -sm "$B" | cut -f1)
[ "$mib" -le "$MAX_MIB" ] || die "the bundle is $mib MiB, over the $MAX_MIB MiB limit (GPU_BUNDLE_MAX_MIB)"

# ---- 6. replace the old bundle only now
rm -rf "$OUT.new"
mv "$B" "$OUT.new"
rm -rf "$OUT"
mv "$OUT.new" "$OUT"
rm -rf "$stage"
echo "gpu-bundle: $OUT ($mib MiB)"

/* reduce.cuh — generic device reductions shared by the CUDA families
 * (reduce, norm, conv's bias gradient, quantize).
 *
 * A reduction is described by a small functor R (passed to kernels by value):
 *   typedef ... acc;                       POD accumulator
 *   __device__ acc identity() const;
 *   __device__ acc combine(acc a, acc b) const;   associative
 *   __device__ acc load(...) const;        one element's contribution
 *   __device__ void store(int64_t j, acc a) const;  the result of set/column j
 *
 * tt_cuda_set_reduce: `sets` sets of L elements each, load(j, e) for e in [0, L);
 *   one block per (set, chunk), each block reducing through shared memory. Few,
 *   large sets are split into chunks whose partial results a second kernel
 *   combines in chunk order, so the device stays busy.
 * tt_cuda_col_reduce: the middle axis of [outer, n, inner], load(o, i, k);
 *   32 adjacent columns per block (coalesced reads along k), 8 lanes walking i.
 *   Few columns over a long axis are split into segments combined afterwards.
 * Both are deterministic: the same launch shape and combination order each run. */
#ifndef TAMING_KERNELS_CUDA_REDUCE_CUH
#define TAMING_KERNELS_CUDA_REDUCE_CUH

#include "cuda_backend.h"

/* Sum in double. */
struct tt_red_dsum {
  double s;
};
/* Two sums in double (moments, gradient sums). */
struct tt_red_dsum2 {
  double a, b;
};
/* A value and its index for max/min/argmax/argmin; i < 0 marks "no element yet". */
struct tt_red_arg {
  float v;
  int64_t i;
};

__device__ __forceinline__ tt_red_dsum2 tt_red_add(tt_red_dsum2 x, tt_red_dsum2 y) { return {x.a + y.a, x.b + y.b}; }

/* The combination rule of max/min and their arg variants, chosen so the result
 * equals a first-to-last scan that keeps the first extreme: NaN beats any
 * number (the first NaN wins), and equal values keep the lower index. */
__device__ __forceinline__ tt_red_arg tt_red_arg_combine(tt_red_arg a, tt_red_arg b, bool want_max) {
  if (a.i < 0) return b;
  if (b.i < 0) return a;
  bool an = isnan(a.v), bn = isnan(b.v);
  if (an || bn) {
    if (an && bn) return a.i <= b.i ? a : b;
    return an ? a : b;
  }
  if (want_max ? b.v > a.v : b.v < a.v) return b;
  if (a.v == b.v && b.i < a.i) return b;
  return a;
}

/* Block-wide reduction of one value per thread (blockDim.x threads, a power of two). */
template <class R>
__device__ __forceinline__ typename R::acc tt_red_block(const R &r, typename R::acc a, typename R::acc *sh) {
  unsigned t = threadIdx.x;
  sh[t] = a;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] = r.combine(sh[t], sh[t + s]);
    __syncthreads();
  }
  typename R::acc out = sh[0];
  __syncthreads(); /* sh is reused by the caller's next iteration */
  return out;
}

template <class R>
__global__ void tt_k_set_reduce(R r, int64_t sets, int64_t L, int64_t chunks, int64_t clen,
                                typename R::acc *partial) {
  __shared__ typename R::acc sh[TT_CUDA_THREADS];
  for (int64_t p = blockIdx.x; p < sets * chunks; p += gridDim.x) {
    int64_t j = p / chunks, c = p % chunks, e0 = c * clen, e1 = e0 + clen < L ? e0 + clen : L;
    typename R::acc a = r.identity();
    for (int64_t e = e0 + threadIdx.x; e < e1; e += blockDim.x) a = r.combine(a, r.load(j, e));
    a = tt_red_block(r, a, sh);
    if (threadIdx.x == 0) {
      if (chunks == 1) r.store(j, a);
      else partial[p] = a;
    }
  }
}

template <class R>
__global__ void tt_k_set_finish(R r, int64_t sets, int64_t chunks, const typename R::acc *partial) {
  TT_CUDA_LOOP(j, sets) {
    typename R::acc a = r.identity();
    for (int64_t c = 0; c < chunks; c++) a = r.combine(a, partial[j * chunks + c]);
    r.store(j, a);
  }
}

template <class R>
static tt_status tt_cuda_set_reduce(const char *what, const R &r, int64_t sets, int64_t L) {
  if (sets <= 0) return TT_OK;
  int64_t target = (int64_t)tt_cuda_sm_count() * 4, chunks = 1;
  if (sets < target && L > 8192) {
    int64_t by_len = (L + 2047) / 2048, by_dev = (target + sets - 1) / sets;
    chunks = by_len < by_dev ? by_len : by_dev;
  }
  int64_t clen = (L + chunks - 1) / chunks;
  if (clen > 0) chunks = (L + clen - 1) / clen;
  if (chunks < 1) chunks = 1;
  tt_cuda_buf part;
  if (chunks > 1) TT_TRY(part.alloc(sizeof(typename R::acc) * (size_t)(sets * chunks), what));
  int64_t blocks = sets * chunks, cap = (int64_t)tt_cuda_sm_count() * 32;
  tt_k_set_reduce<R><<<(unsigned)(blocks < cap ? blocks : cap), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(
      r, sets, L, chunks, clen, part.as<typename R::acc>());
  TT_TRY(tt_cuda_check_launch(what));
  if (chunks > 1) {
    tt_k_set_finish<R><<<tt_cuda_grid(sets), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(r, sets, chunks,
                                                                                    part.as<typename R::acc>());
    TT_TRY(tt_cuda_check_launch(what));
  }
  return TT_OK;
}

#define TT_RED_COLS 32
#define TT_RED_LANES 8

template <class R>
__global__ void tt_k_col_reduce(R r, int64_t outer, int64_t n, int64_t inner, int64_t segs, int64_t slen,
                                typename R::acc *partial) {
  __shared__ typename R::acc sh[TT_RED_LANES][TT_RED_COLS];
  int64_t cols = outer * inner, cblocks = (cols + TT_RED_COLS - 1) / TT_RED_COLS;
  for (int64_t p = blockIdx.x; p < cblocks * segs; p += gridDim.x) {
    int64_t cb = p / segs, s = p % segs, c = cb * TT_RED_COLS + threadIdx.x;
    int64_t i0 = s * slen, i1 = i0 + slen < n ? i0 + slen : n;
    typename R::acc a = r.identity();
    if (c < cols) {
      int64_t o = c / inner, k = c % inner;
      for (int64_t i = i0 + threadIdx.y; i < i1; i += TT_RED_LANES) a = r.combine(a, r.load(o, i, k));
    }
    sh[threadIdx.y][threadIdx.x] = a;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
      for (int y = 1; y < TT_RED_LANES; y++) a = r.combine(a, sh[y][threadIdx.x]);
      if (segs == 1) r.store(c, a);
      else partial[s * cols + c] = a;
    }
    __syncthreads();
  }
}

template <class R>
__global__ void tt_k_col_finish(R r, int64_t cols, int64_t segs, const typename R::acc *partial) {
  TT_CUDA_LOOP(c, cols) {
    typename R::acc a = r.identity();
    for (int64_t s = 0; s < segs; s++) a = r.combine(a, partial[s * cols + c]);
    r.store(c, a);
  }
}

template <class R>
static tt_status tt_cuda_col_reduce(const char *what, const R &r, int64_t outer, int64_t n, int64_t inner) {
  int64_t cols = outer * inner;
  if (cols <= 0) return TT_OK;
  int64_t cblocks = (cols + TT_RED_COLS - 1) / TT_RED_COLS, target = (int64_t)tt_cuda_sm_count() * 8;
  int64_t segs = 1;
  if (cblocks < target && n > 1024) {
    int64_t by_len = (n + 255) / 256, by_dev = (target + cblocks - 1) / cblocks;
    segs = by_len < by_dev ? by_len : by_dev;
  }
  int64_t slen = (n + segs - 1) / segs;
  if (slen > 0) segs = (n + slen - 1) / slen;
  if (segs < 1) segs = 1;
  tt_cuda_buf part;
  if (segs > 1) TT_TRY(part.alloc(sizeof(typename R::acc) * (size_t)(segs * cols), what));
  int64_t blocks = cblocks * segs, cap = (int64_t)tt_cuda_sm_count() * 32;
  dim3 block(TT_RED_COLS, TT_RED_LANES);
  tt_k_col_reduce<R><<<(unsigned)(blocks < cap ? blocks : cap), block, 0, tt_cuda_stream()>>>(
      r, outer, n, inner, segs, slen, part.as<typename R::acc>());
  TT_TRY(tt_cuda_check_launch(what));
  if (segs > 1) {
    tt_k_col_finish<R><<<tt_cuda_grid(cols), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(r, cols, segs,
                                                                                   part.as<typename R::acc>());
    TT_TRY(tt_cuda_check_launch(what));
  }
  return TT_OK;
}

/* ---- whole-block reductions of one value per thread (for row kernels) ----
 * Every thread of the block must call them (uniform control flow) and gets the
 * same result; lanes combine in a butterfly, so every warp ends with bitwise
 * the same value. blockDim.x is a multiple of 32, at most 1024. */

__device__ __forceinline__ float tt_block_max(float v) {
  __shared__ float sh[32];
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  unsigned lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  __syncthreads(); /* readers of a previous call are done with sh */
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  v = lane < nw ? sh[lane] : -INFINITY;
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ double tt_block_sum(double v) {
  __shared__ double sh[32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  unsigned lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  __syncthreads();
  if (lane == 0) sh[wid] = v;
  __syncthreads();
  v = lane < nw ? sh[lane] : 0.0;
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

#endif

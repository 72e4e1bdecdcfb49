/* quantize.cu — CUDA kernel of the nearest-codebook search of vector quantisation.
 *
 * d[n, k] = (|z_n|^2 + |e_k|^2) - 2 z_n·e_k in fp32, in that expanded order,
 * as the official VectorQuantizer2 computes it (separate roundings: the _rn
 * intrinsics keep the compiler from fusing them into an FMA). The squared
 * norms are summed in double and rounded once, like the CPU kernel. z·e is a
 * cuBLAS GEMM formed one [rows, cols] tile at a time so memory stays bounded,
 * and each row's running minimum is carried across the code tiles in
 * increasing k: the first minimum wins ties, a NaN distance wins and stays. */
#include "config.h"
#include "reduce.cuh"

#define TILE_ROWS 2048
#define TILE_COLS 8192

/* Squared norms of the rows of x [M, D]. */
struct row_norms {
  typedef tt_red_dsum acc;
  const float *x;
  float *out;
  int64_t D;
  __device__ acc identity() const { return {0.0}; }
  __device__ acc combine(acc a, acc b) const { return {a.s + b.s}; }
  __device__ acc load(int64_t i, int64_t c) const {
    double v = x[i * D + c];
    return {v * v};
  }
  __device__ void store(int64_t i, acc a) const { out[i] = (float)a.s; }
};

/* One tile's rows folded into the running (best, arg) of rows r0.. . */
struct fold {
  typedef tt_red_arg acc;
  const float *tile, *zz, *ee;
  float *best;
  int64_t *arg;
  int64_t r0, k0, cols;
  __device__ acc identity() const { return {0.0f, -1}; }
  __device__ acc combine(acc a, acc b) const { return tt_red_arg_combine(a, b, false); }
  __device__ acc load(int64_t j, int64_t c) const {
    float d = __fsub_rn(__fadd_rn(zz[r0 + j], ee[k0 + c]), __fmul_rn(2.0f, tile[j * cols + c]));
    return {d, k0 + c};
  }
  __device__ void store(int64_t j, acc a) const {
    acc run = {best[r0 + j], arg[r0 + j]}; /* arg < 0: no code seen yet */
    acc r = tt_red_arg_combine(run, a, false);
    best[r0 + j] = r.v;
    arg[r0 + j] = r.i;
  }
};

// z [N, D], e [K, D] -> idx [N], dmin [N] (optional)
static tt_status cu_codebook_argmin(const tt_tensor *z, const tt_tensor *e, tt_tensor *idx, tt_tensor *dmin) {
  const char *K_ = "codebook_argmin";
  int64_t N = z->shape[0], D = z->shape[1], K = e->shape[0];
  if (N == 0) return TT_OK;
  if (K == 0) return tt_error(TT_ERR_INVALID, "codebook_argmin: the codebook has no rows");
  const float *zs = tt_cuda_ptr<float>(z), *es = tt_cuda_ptr<float>(e);
  int64_t *arg = tt_cuda_ptr<int64_t>(idx);
  int64_t trows = N < TILE_ROWS ? N : TILE_ROWS, tcols = K < TILE_COLS ? K : TILE_COLS;
  tt_cuda_buf norms, bestbuf, tile;
  TT_TRY(norms.alloc(sizeof(float) * (size_t)(N + K), K_));
  TT_TRY(tile.alloc(sizeof(float) * (size_t)(trows * tcols), K_));
  float *zz = norms.as<float>(), *ee = zz + N, *best = dmin ? tt_cuda_ptr<float>(dmin) : nullptr;
  if (!best) {
    TT_TRY(bestbuf.alloc(sizeof(float) * (size_t)N, K_));
    best = bestbuf.as<float>();
  }
  TT_TRY(tt_cuda_set_reduce(K_, row_norms{zs, zz, D}, N, D));
  TT_TRY(tt_cuda_set_reduce(K_, row_norms{es, ee, D}, K, D));
  TT_CUDA_TRY(cudaMemsetAsync(arg, 0xff, sizeof(int64_t) * (size_t)N, tt_cuda_stream()), K_); /* all -1 */
  for (int64_t r0 = 0; r0 < N; r0 += TILE_ROWS) {
    int64_t rows = N - r0 < TILE_ROWS ? N - r0 : TILE_ROWS;
    for (int64_t k0 = 0; k0 < K; k0 += TILE_COLS) {
      int64_t cols = K - k0 < TILE_COLS ? K - k0 : TILE_COLS;
      // tile [rows, cols] = z[r0 : r0+rows] e[k0 : k0+cols]^T
      TT_TRY(tt_cuda_sgemm(false, true, rows, cols, D, 1.0f, zs + r0 * D, D, 0, es + k0 * D, D, 0, 0.0f,
                           tile.as<float>(), cols, 0, 1, K_));
      fold f = {tile.as<float>(), zz, ee, best, arg, r0, k0, cols};
      TT_TRY(tt_cuda_set_reduce(K_, f, rows, cols));
    }
  }
  return TT_OK;
}

tt_status tt_cuda_register_quantize(tt_backend *b) {
  TT_REGISTER_KERNEL(b, codebook_argmin, cu_codebook_argmin);
  return TT_OK;
}

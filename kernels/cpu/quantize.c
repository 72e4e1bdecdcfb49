/* quantize.c — CPU kernel of the nearest-codebook search of vector quantisation.
 *
 * d[n, k] = (|z_n|^2 + |e_k|^2) - 2 z_n·e_k in fp32, in exactly that expanded
 * order, as the official VectorQuantizer2 computes it: near-ties between codes
 * are decided by the same roundings, so the chosen indices match the
 * reference's. The z·e term is a GEMM; it is formed one [ROWS, COLS] tile at a
 * time so memory stays bounded (16384 codes x 4096 vectors would otherwise be a
 * 256 MiB distance matrix), and the running minimum of each row is carried
 * across the code tiles in increasing k, so the first minimum wins ties.
 *
 * Threads: when the BLAS runs single-threaded inside a parallel region
 * (sequential or OpenMP OpenBLAS, or one BLAS thread), OpenMP splits the rows
 * into small blocks and each thread multiplies its own [64, 1024] tiles. The
 * pthreads OpenBLAS would instead start its own pool inside every OpenMP
 * thread and oversubscribe the cores (0.40 s against 0.25 s for 4096 x 16384 x
 * 256 on 2 cores), so with it the row blocks are taken one after the other,
 * each [1024, 8192] product uses the BLAS threads, and OpenMP folds the tile's
 * rows. Both fold every k in increasing order; on the development machine
 * they return bit-identical indices and distances (the BLAS does not promise
 * equal roundings for different tile shapes, so near-ties could in principle
 * differ between the two orders, as between two BLAS builds). */
#include "config.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include "cpu.h"

/* OpenBLAS's queries, weak so that another CBLAS still links (then: NULL). */
extern int openblas_get_parallel(void);
extern int openblas_get_num_threads(void);
#pragma weak openblas_get_parallel
#pragma weak openblas_get_num_threads

/* Tile of the parallel-over-row-blocks order (per thread; 256 KiB). */
#define SMALL_ROWS 64
#define SMALL_COLS 1024
/* Tile of the BLAS-threaded order (one, shared; 32 MiB). */
#define LARGE_ROWS 1024
#define LARGE_COLS 8192

static bool blas_has_own_threads(void) {
  return openblas_get_parallel && openblas_get_num_threads && openblas_get_parallel() == 1 &&
         openblas_get_num_threads() > 1;
}

/* Squared norms of the rows of x [M, D], summed in double and rounded once. */
static void row_norms(const float *x, int64_t M, int64_t D, float *out) {
#pragma omp parallel for schedule(static) if (M * D > TT_CPU_PAR_MIN)
  for (int64_t i = 0; i < M; i++) {
    const float *r = x + i * D;
    double s = 0;
    for (int64_t c = 0; c < D; c++) s += (double)r[c] * r[c];
    out[i] = (float)s;
  }
}

// z[r0 : r0+rows] [rows, D] · e[k0 : k0+cols]^T [D, cols] -> tile [rows, cols]
static void tile_product(const float *z, const float *e, int64_t D, int64_t r0, int64_t rows, int64_t k0,
                         int64_t cols, float *tile) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)rows, (blasint)cols, (blasint)D, 1.0f, z + r0 * D,
              (blasint)D, e + k0 * D, (blasint)D, 0.0f, tile, (blasint)cols);
}

/* Folds row i of a tile (codes k0 .. k0+cols) into its running minimum. A NaN
 * distance wins and stays, as in torch.argmin; otherwise only a strictly
 * smaller distance replaces the minimum, so the first one is kept on ties. */
static inline void fold_row(const float *t, int64_t cols, int64_t k0, float zn, const float *ee, float *best,
                            int64_t *arg) {
  float bv = *best;
  int64_t bi = *arg;
  if (bi >= 0 && isnan(bv)) return;
  for (int64_t k = 0; k < cols; k++) {
    float d = (zn + ee[k0 + k]) - 2.0f * t[k];
    if (d < bv || bi < 0 || isnan(d)) {
      bv = d;
      bi = k0 + k;
      if (isnan(d)) break;
    }
  }
  *best = bv;
  *arg = bi;
}

static tt_status argmin_parallel_blocks(const float *zs, const float *es, int64_t N, int64_t K, int64_t D,
                                        const float *zz, const float *ee, float *best, int64_t *arg) {
  int64_t nblocks = (N + SMALL_ROWS - 1) / SMALL_ROWS;
  int failed = 0;
#pragma omp parallel if (N * K * D > TT_CPU_PAR_MIN && nblocks > 1)
  {
    float *tile = malloc(sizeof *tile * SMALL_ROWS * SMALL_COLS);   // [rows, cols]
    if (!tile) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for schedule(dynamic, 1)
    for (int64_t b = 0; b < nblocks; b++) {
      if (!tile) continue;
      int64_t r0 = b * SMALL_ROWS, rows = N - r0 < SMALL_ROWS ? N - r0 : SMALL_ROWS;
      for (int64_t k0 = 0; k0 < K; k0 += SMALL_COLS) {
        int64_t cols = K - k0 < SMALL_COLS ? K - k0 : SMALL_COLS;
        tile_product(zs, es, D, r0, rows, k0, cols, tile);
        for (int64_t i = 0; i < rows; i++)
          fold_row(tile + i * cols, cols, k0, zz[r0 + i], ee, &best[r0 + i], &arg[r0 + i]);
      }
    }
    free(tile);
  }
  if (failed) return tt_error(TT_ERR_NOMEM, "codebook_argmin: out of memory for a distance tile");
  return TT_OK;
}

static tt_status argmin_blas_threaded(const float *zs, const float *es, int64_t N, int64_t K, int64_t D,
                                      const float *zz, const float *ee, float *best, int64_t *arg) {
  int64_t trows = N < LARGE_ROWS ? N : LARGE_ROWS, tcols = K < LARGE_COLS ? K : LARGE_COLS;
  float *tile = malloc(sizeof *tile * (size_t)(trows * tcols));   // [rows, cols]
  if (!tile)
    return tt_error(TT_ERR_NOMEM, "codebook_argmin: out of memory for a [%lld, %lld] distance tile",
                    (long long)trows, (long long)tcols);
  for (int64_t r0 = 0; r0 < N; r0 += LARGE_ROWS) {
    int64_t rows = N - r0 < LARGE_ROWS ? N - r0 : LARGE_ROWS;
    for (int64_t k0 = 0; k0 < K; k0 += LARGE_COLS) {
      int64_t cols = K - k0 < LARGE_COLS ? K - k0 : LARGE_COLS;
      tile_product(zs, es, D, r0, rows, k0, cols, tile);
#pragma omp parallel for schedule(static) if (rows * cols > TT_CPU_PAR_MIN)
      for (int64_t i = 0; i < rows; i++)
        fold_row(tile + i * cols, cols, k0, zz[r0 + i], ee, &best[r0 + i], &arg[r0 + i]);
    }
  }
  free(tile);
  return TT_OK;
}

// z [N, D], e [K, D] -> idx [N], dmin [N] (optional)
static tt_status cpu_codebook_argmin(const tt_tensor *z, const tt_tensor *e, tt_tensor *idx, tt_tensor *dmin) {
  int64_t N = z->shape[0], D = z->shape[1], K = e->shape[0];
  if (N == 0) return TT_OK;
  if (K == 0) return tt_error(TT_ERR_INVALID, "codebook_argmin: the codebook has no rows");
  const float *zs = tt_f32(z), *es = tt_f32(e);
  int64_t *arg = tt_i64(idx);
  float *zz = malloc(sizeof *zz * (size_t)N), *ee = malloc(sizeof *ee * (size_t)K);
  float *best = dmin ? NULL : malloc(sizeof *best * (size_t)N);
  if (dmin) best = tt_f32(dmin);
  if (!zz || !ee || !best) {
    free(zz);
    free(ee);
    if (!dmin) free(best);
    return tt_error(TT_ERR_NOMEM, "codebook_argmin: out of memory for %lld + %lld norms", (long long)N,
                    (long long)K);
  }
  row_norms(zs, N, D, zz);
  row_norms(es, K, D, ee);
  for (int64_t n = 0; n < N; n++) {
    best[n] = INFINITY;
    arg[n] = -1;
  }
  tt_status s = blas_has_own_threads() ? argmin_blas_threaded(zs, es, N, K, D, zz, ee, best, arg)
                                       : argmin_parallel_blocks(zs, es, N, K, D, zz, ee, best, arg);
  free(zz);
  free(ee);
  if (!dmin) free(best);
  return s;
}

tt_status tt_cpu_register_quantize(tt_backend *b) {
  TT_REGISTER_KERNEL(b, codebook_argmin, cpu_codebook_argmin);
  return TT_OK;
}

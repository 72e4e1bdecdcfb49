/* gemm.c — CPU matrix products through OpenBLAS (row-major).
 *
 * Threading: OpenBLAS is kept single-threaded (set when the backend starts) and
 * the kernels split large products across OpenMP threads themselves, each
 * thread calling sgemm on its own block of rows or columns. Two thread pools
 * (OpenMP's and OpenBLAS's pthreads) busy-waiting on the same two cores cost
 * more than the arithmetic of small layers; one pool does not. Splitting by
 * output blocks also keeps every element's summation order, so results do not
 * depend on the thread count. A one-row product runs as sgemv.
 *
 * Linear layers at inference, C = A B^T with few rows in A (decoding one token,
 * or a batch of up to 16 sequences), are bound by streaming B, the weights:
 * sgemv reads them once but stops short of the memory's bandwidth (no prefetch
 * ahead of 4 KB rows), and sgemm packs all of B into its own layout on every
 * call, an extra read and write of every weight. Where the CPU has AVX-512 they
 * run in rows_nt instead: B is read in place, once per call, in tiles of 4 or 8
 * of its rows that stay in registers against up to 4 rows of A, with the next
 * tile prefetched; blocks of 16 B rows are split across threads and every A row
 * meets a block while it is hot in L2. Each output is one dot product in a fixed
 * k order, so results do not depend on the thread count either.
 * TAMING_CPU_ISA=generic hides it (OpenBLAS only). */
#include "config.h"
#include <cblas.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "cpu.h"

extern void openblas_set_num_threads(int n) __attribute__((weak));
extern int openblas_get_num_threads(void) __attribute__((weak));

void tt_cpu_blas_single_threaded(void) {
  if (openblas_set_num_threads) openblas_set_num_threads(1);
}

int tt_cpu_blas_serial_begin(void) {
  if (!openblas_get_num_threads || !openblas_set_num_threads) return 0;
  int prev = openblas_get_num_threads();
  if (prev > 1) openblas_set_num_threads(1);
  return prev;
}

void tt_cpu_blas_serial_end(int prev) {
  if (prev > 1 && openblas_set_num_threads) openblas_set_num_threads(prev);
}

int tt_cpu_max_threads(void) {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

int tt_cpu_thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

static int max_threads(void) {
#ifdef _OPENMP
  return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
  return 1;
#endif
}

/* ---- few rows times B^T on AVX-512 ---- */

#define TT_AVX512 "avx512f,avx512bw,avx512vl,avx512dq,fma"
/* rows of A up to which rows_nt beats sgemm: measured on the GPT's shapes
 * ([M, 1024] x [1024|3072|4096, 1024]^T and [M, 4096] x [1024, 4096]^T) */
#define NT_MAX_ROWS 16

static bool nt_ok;   /* the CPU has AVX-512 and TAMING_CPU_ISA does not hide it */

/* R rows of B [., K] against G rows of A [., K] -> out[r][g] = dot(B_r, A_g) */
__attribute__((target(TT_AVX512), always_inline)) static inline void
tile_nt(const int R, const int G, const float *b, int64_t ldb, const float *a, int64_t lda, int64_t K,
        float out[8][4]) {
  __m512 acc[8][4];
  for (int r = 0; r < R; r++)
    for (int g = 0; g < G; g++) acc[r][g] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    __m512 bv[8];
    /* the next tile's rows, one tile ahead: rows of 4-16 KB end before the
     * hardware prefetcher has found them */
    for (int r = 0; r < R; r++) _mm_prefetch((const char *)(b + (R + r) * ldb + k), _MM_HINT_T0);
    for (int r = 0; r < R; r++) bv[r] = _mm512_loadu_ps(b + r * ldb + k);
    for (int g = 0; g < G; g++) {
      __m512 av = _mm512_loadu_ps(a + g * lda + k);
      for (int r = 0; r < R; r++) acc[r][g] = _mm512_fmadd_ps(av, bv[r], acc[r][g]);
    }
  }
  if (k < K) {
    __mmask16 mk = (__mmask16)((1u << (K - k)) - 1);
    __m512 bv[8];
    for (int r = 0; r < R; r++) bv[r] = _mm512_maskz_loadu_ps(mk, b + r * ldb + k);
    for (int g = 0; g < G; g++) {
      __m512 av = _mm512_maskz_loadu_ps(mk, a + g * lda + k);
      for (int r = 0; r < R; r++) acc[r][g] = _mm512_fmadd_ps(av, bv[r], acc[r][g]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int g = 0; g < G; g++) out[r][g] = _mm512_reduce_add_ps(acc[r][g]);
}

/* columns [n0, n1) of C [M, N] = alpha A [M, K] B[N, K]^T + beta C, every row of A */
__attribute__((target(TT_AVX512))) static void rows_nt(int64_t n0, int64_t n1, int64_t M, int64_t K, float alpha,
                                                       const float *A, int64_t lda, const float *B, int64_t ldb,
                                                       float beta, float *C, int64_t ldc) {
  float o[8][4];
  for (int64_t m = 0; m < M; m += 4) {
    int G = M - m < 4 ? (int)(M - m) : 4;
    const float *am = A + m * lda;
    for (int64_t n = n0; n < n1;) {
      /* one row of A (decoding): 8 rows of B a tile, so more lines are in flight */
      int R = G == 1 && n1 - n >= 8 ? 8 : n1 - n >= 4 ? 4 : 1;
      const float *bn = B + n * ldb;
      /* constant R and G so each call unrolls into registers */
      if (R == 8) {
        tile_nt(8, 1, bn, ldb, am, lda, K, o);
      } else if (R == 4) {
        switch (G) {
          case 1: tile_nt(4, 1, bn, ldb, am, lda, K, o); break;
          case 2: tile_nt(4, 2, bn, ldb, am, lda, K, o); break;
          case 3: tile_nt(4, 3, bn, ldb, am, lda, K, o); break;
          default: tile_nt(4, 4, bn, ldb, am, lda, K, o); break;
        }
      } else {
        switch (G) {
          case 1: tile_nt(1, 1, bn, ldb, am, lda, K, o); break;
          case 2: tile_nt(1, 2, bn, ldb, am, lda, K, o); break;
          case 3: tile_nt(1, 3, bn, ldb, am, lda, K, o); break;
          default: tile_nt(1, 4, bn, ldb, am, lda, K, o); break;
        }
      }
      for (int r = 0; r < R; r++)
        for (int g = 0; g < G; g++) {
          float *c = C + (m + g) * ldc + n + r;
          *c = alpha * o[r][g] + (beta == 0.0f ? 0.0f : beta * *c);
        }
      n += R;
    }
  }
}

/* C [M, N] = alpha A B^T + beta C with B [N, K] read once, in blocks of 16 rows over the threads */
static void gemm_nt_rows(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda, const float *B,
                         int64_t ldb, float beta, float *C, int64_t ldc) {
  int64_t nblk = (N + 15) / 16;
  int nt = max_threads();
  if ((double)M * N * K < 4.0 * TT_CPU_PAR_MIN) nt = 1;
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t b = 0; b < nblk; b++) {
    int64_t n0 = b * 16, n1 = n0 + 16 < N ? n0 + 16 : N;
    rows_nt(n0, n1, M, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }
}

static void sgemm1(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                   const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (M == 1 && !ta) {
    /* C[1, N] = alpha * a[K] op(B) + beta C: op(B) = B [K, N] -> B^T x; B^T stored [N, K] -> B x */
    cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, tb ? (blasint)N : (blasint)K,
                tb ? (blasint)K : (blasint)N, alpha, B, (blasint)ldb, A, 1, beta, C, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M,
              (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

/* C = beta C where a product has K = 0 (BLAS would leave C untouched; the product is 0). */
static void scale_only(int64_t M, int64_t N, float beta, float *C, int64_t ldc) {
  for (int64_t i = 0; i < M; i++)
    for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

void tt_cpu_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    scale_only(M, N, beta, C, ldc);
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M,
              (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
}

static tt_status cpu_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                          int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (M == 0 || N == 0) return TT_OK;
  if (K == 0) {
    scale_only(M, N, beta, C, ldc);
    return TT_OK;
  }
  if (nt_ok && !ta && tb && M <= NT_MAX_ROWS) {
    gemm_nt_rows(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return TT_OK;
  }
  int nt = max_threads();
  double work = (double)M * (double)N * (double)K;
  if (nt <= 1 || work < 262144.0 || (M < 2 * nt && N < 32 * nt)) {
    sgemm1(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return TT_OK;
  }
  /* split the larger output side into one block per thread (columns in multiples of 16) */
  bool by_cols = N >= M || M < 2 * nt;
#pragma omp parallel num_threads(nt)
  {
#ifdef _OPENMP
    int t = omp_get_thread_num(), n = omp_get_num_threads();
#else
    int t = 0, n = 1;
#endif
    if (by_cols) {
      int64_t chunk = ((N + n - 1) / n + 15) / 16 * 16;
      int64_t j0 = t * chunk, j1 = j0 + chunk < N ? j0 + chunk : N;
      if (j0 < j1)
        sgemm1(ta, tb, M, j1 - j0, K, alpha, A, lda, tb ? B + j0 * ldb : B + j0, ldb, beta, C + j0, ldc);
    } else {
      int64_t chunk = (M + n - 1) / n;
      int64_t i0 = t * chunk, i1 = i0 + chunk < M ? i0 + chunk : M;
      if (i0 < i1)
        sgemm1(ta, tb, i1 - i0, N, K, alpha, ta ? A + i0 : A + i0 * lda, lda, B, ldb, beta, C + i0 * ldc, ldc);
    }
  }
  return TT_OK;
}

static tt_status cpu_gemm_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                                  int64_t lda, int64_t sa, const float *B, int64_t ldb, int64_t sb, float beta,
                                  float *C, int64_t ldc, int64_t sc, int64_t batch) {
  int nt = max_threads();
  if (nt > 1 && batch >= nt && (double)M * N * K * batch >= 262144.0) {
    /* many small products: one per thread at a time */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int64_t i = 0; i < batch; i++)
      if (M && N) {
        if (K) sgemm1(ta, tb, M, N, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta, C + i * sc, ldc);
        else scale_only(M, N, beta, C + i * sc, ldc);
      }
    return TT_OK;
  }
  for (int64_t i = 0; i < batch; i++)
    TT_TRY(cpu_gemm(ta, tb, M, N, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta, C + i * sc, ldc));
  return TT_OK;
}

tt_status tt_cpu_register_gemm(tt_backend *b) {
  tt_cpu_blas_single_threaded();
  const char *env = getenv("TAMING_CPU_ISA");
  __builtin_cpu_init();
  nt_ok = !(env && !strcmp(env, "generic")) && __builtin_cpu_supports("avx512f") &&
          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
          __builtin_cpu_supports("avx512dq");
  TT_REGISTER_KERNEL(b, gemm, cpu_gemm);
  TT_REGISTER_KERNEL(b, gemm_batched, cpu_gemm_batched);
  return TT_OK;
}

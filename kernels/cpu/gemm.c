/* gemm.c — CPU matrix products through OpenBLAS (row-major).
 *
 * Threading: OpenBLAS is kept single-threaded (set when the backend starts) and
 * the kernels split large products across OpenMP threads themselves, each
 * thread calling sgemm on its own block of rows or columns. Two thread pools
 * (OpenMP's and OpenBLAS's pthreads) busy-waiting on the same two cores cost
 * more than the arithmetic of small layers; one pool does not. Splitting by
 * output blocks also keeps every element's summation order, so results do not
 * depend on the thread count. A one-row product runs as sgemv. */
#include "config.h"
#include <cblas.h>
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
  TT_REGISTER_KERNEL(b, gemm, cpu_gemm);
  TT_REGISTER_KERNEL(b, gemm_batched, cpu_gemm_batched);
  return TT_OK;
}

/* gemm.c — CPU matrix products through OpenBLAS cblas_sgemm (row-major). */
#include "config.h"
#include <cblas.h>
#include "cpu.h"

static tt_status cpu_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                          int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (M == 0 || N == 0) return TT_OK;
  if (K == 0) {
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return TT_OK;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M,
              (blasint)N, (blasint)K, alpha, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
  return TT_OK;
}

static tt_status cpu_gemm_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                                  const float *A, int64_t lda, int64_t sa, const float *B, int64_t ldb,
                                  int64_t sb, float beta, float *C, int64_t ldc, int64_t sc, int64_t batch) {
  for (int64_t i = 0; i < batch; i++)
    TT_TRY(cpu_gemm(ta, tb, M, N, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta, C + i * sc, ldc));
  return TT_OK;
}

tt_status tt_cpu_register_gemm(tt_backend *b) {
  TT_REGISTER_KERNEL(b, gemm, cpu_gemm);
  TT_REGISTER_KERNEL(b, gemm_batched, cpu_gemm_batched);
  return TT_OK;
}

/* gemm.cu — CUDA matrix products through cuBLAS (64-bit interface).
 *
 * cuBLAS is column-major. A row-major [M, N] matrix with leading dimension ld
 * is the column-major [N, M] matrix with the same ld, so row-major
 * C = op(A) op(B) is computed as column-major C^T = op(B)^T op(A)^T: the
 * operands swap places and M, N swap, the transpose flags stay with their
 * operands. Exact fp32 unless TAMING_CUDA_TF32=1 (see backend.cu). */
#include "config.h"
#include "cuda_backend.h"

/* C [M, N] (leading dim ldc) = beta * C, for K == 0 where the product is empty. */
__global__ void k_scale_matrix(float *C, int64_t M, int64_t N, int64_t ldc, int64_t sc, int64_t batch, float beta) {
  TT_CUDA_LOOP(t, batch * M * N) {
    int64_t b = t / (M * N), r = t % (M * N), i = r / N, j = r % N;
    float *c = C + b * sc + i * ldc + j;
    *c = beta == 0.0f ? 0.0f : beta * *c;
  }
}

tt_status tt_cuda_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                        int64_t sa, const float *B, int64_t ldb, int64_t sb, float beta, float *C, int64_t ldc,
                        int64_t sc, int64_t batch, const char *what) {
  if (M <= 0 || N <= 0 || batch <= 0) return TT_OK;
  if (K <= 0) {
    k_scale_matrix<<<tt_cuda_grid(batch * M * N), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(C, M, N, ldc, sc, batch,
                                                                                         beta);
    return tt_cuda_check_launch(what);
  }
  cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (batch == 1)
    TT_CUBLAS_TRY(cublasSgemm_64(tt_cuda_blas(), opb, opa, N, M, K, &alpha, B, ldb, A, lda, &beta, C, ldc), what);
  else
    TT_CUBLAS_TRY(cublasSgemmStridedBatched_64(tt_cuda_blas(), opb, opa, N, M, K, &alpha, B, ldb, sb, A, lda, sa,
                                               &beta, C, ldc, sc, batch),
                  what);
  return tt_cuda_check_launch(what);
}

// C [M, N] = alpha * op(A) op(B) + beta * C, row-major
static tt_status cu_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                         const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  return tt_cuda_sgemm(ta, tb, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1, "gemm");
}

// C_i [M, N] = alpha * op(A_i) op(B_i) + beta * C_i, operand i at A + i*sa, B + i*sb, C + i*sc
static tt_status cu_gemm_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                                 int64_t lda, int64_t sa, const float *B, int64_t ldb, int64_t sb, float beta,
                                 float *C, int64_t ldc, int64_t sc, int64_t batch) {
  return tt_cuda_sgemm(ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch, "gemm_batched");
}

tt_status tt_cuda_register_gemm(tt_backend *b) {
  TT_REGISTER_KERNEL(b, gemm, cu_gemm);
  TT_REGISTER_KERNEL(b, gemm_batched, cu_gemm_batched);
  return TT_OK;
}

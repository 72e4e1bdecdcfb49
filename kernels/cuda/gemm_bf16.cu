/* gemm_bf16.cu — CUDA matrix products with bf16 operands and f32 accumulation,
 * the GEMMs of bf16 mixed-precision training (taming/ops/gemm.h: gemm_bf16,
 * gemm_bf16_batched, under tt_set_compute_precision(TT_BF16)); the twin of
 * kernels/cpu/gemm_bf16.c. attention.cu runs its products through the same
 * function under mixed precision.
 *
 * The operands arrive in f32, with the same transposes, leading dimensions and
 * batch strides as the f32 gemm kernels. Each is rounded to bf16 as the CPU
 * kernel rounds it (nearest even, subnormal inputs count as zero, as
 * vcvtneps2bf16 does) into a dense pool buffer — once, not per batch entry,
 * when its batch stride is 0 — and cuBLAS multiplies bf16 by bf16 with f32
 * accumulation and an f32 C (cublasGemmEx / cublasGemmStridedBatchedEx,
 * CUDA_R_16BF operands, CUBLAS_COMPUTE_32F). The order of the f32 sums is
 * cuBLAS's, not the CPU's: results agree to f32 rounding of the same products.
 * Row-major to column-major as in gemm.cu: the operands swap places. */
#include "config.h"
#include <cuda_bf16.h>
#include "cuda_backend.h"

/* f32 -> bf16, nearest even; subnormals (and zeros) become a zero of the same sign */
__device__ __forceinline__ __nv_bfloat16 to_bf16_ftz(float v) {
  if (fabsf(v) < 1.17549435e-38f) v = copysignf(0.0f, v);
  return __float2bfloat16_rn(v);
}

// src [batch][rows, cols] (row stride ld, batch stride bs) -> dst [batch, rows, cols] dense bf16
__global__ void k_gemm_pack_bf16(const float *src, int64_t ld, int64_t bs, int64_t rows, int64_t cols, int64_t batch,
                            __nv_bfloat16 *dst) {
  TT_CUDA_LOOP(i, batch * rows * cols) {
    int64_t c = i % cols, r = (i / cols) % rows, b = i / (rows * cols);
    dst[i] = to_bf16_ftz(src[b * bs + r * ld + c]);
  }
}

/* the stored matrix [rows, cols] of an operand (op(X) = X or X^T) as dense bf16 in buf */
static tt_status pack(tt_cuda_buf &buf, const float *X, int64_t rows, int64_t cols, int64_t ld, int64_t bs,
                      int64_t batch, const char *what) {
  int64_t nb = bs == 0 ? 1 : batch, n = nb * rows * cols;
  TT_TRY(buf.alloc(sizeof(__nv_bfloat16) * (size_t)n, what));
  k_gemm_pack_bf16<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(X, ld, bs, rows, cols, nb,
                                                                        buf.as<__nv_bfloat16>());
  return tt_cuda_check_launch(what);
}

tt_status tt_cuda_gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                            int64_t lda, int64_t sa, const float *B, int64_t ldb, int64_t sb, float beta, float *C,
                            int64_t ldc, int64_t sc, int64_t batch, const char *what) {
  if (M <= 0 || N <= 0 || batch <= 0) return TT_OK;
  /* an empty sum: C = beta C, as the f32 kernel does it */
  if (K <= 0) return tt_cuda_sgemm(ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch, what);
  /* stored shapes: A is [M, K] or, transposed, [K, M]; B is [K, N] or [N, K] */
  int64_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
  tt_cuda_buf ab, bb;
  TT_TRY(pack(ab, A, ar, ac, lda, sa, batch, what));
  TT_TRY(pack(bb, B, br, bc, ldb, sb, batch, what));
  int64_t sab = sa == 0 ? 0 : ar * ac, sbb = sb == 0 ? 0 : br * bc;
  cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (batch == 1)
    TT_CUBLAS_TRY(cublasGemmEx_64(tt_cuda_blas(), opb, opa, N, M, K, &alpha, bb.p, CUDA_R_16BF, bc, ab.p, CUDA_R_16BF,
                                  ac, &beta, C, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                  what);
  else
    TT_CUBLAS_TRY(cublasGemmStridedBatchedEx_64(tt_cuda_blas(), opb, opa, N, M, K, &alpha, bb.p, CUDA_R_16BF, bc, sbb,
                                                ab.p, CUDA_R_16BF, ac, sab, &beta, C, CUDA_R_32F, ldc, sc, batch,
                                                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                  what);
  return tt_cuda_check_launch(what);
}

// C [M, N] = alpha * op(A) op(B) + beta * C, row-major, bf16 operands
static tt_status cu_gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  return tt_cuda_gemm_bf16(ta, tb, M, N, K, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1, "gemm_bf16");
}

// C_i [M, N] = alpha * op(A_i) op(B_i) + beta * C_i, operand i at A + i*sa, B + i*sb, C + i*sc
static tt_status cu_gemm_bf16_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                                      int64_t lda, int64_t sa, const float *B, int64_t ldb, int64_t sb, float beta,
                                      float *C, int64_t ldc, int64_t sc, int64_t batch) {
  return tt_cuda_gemm_bf16(ta, tb, M, N, K, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch,
                           "gemm_bf16_batched");
}

static const char *cu_gemm_bf16_isa(void) { return "cublas-bf16 (f32 accumulate)"; }

tt_status tt_cuda_register_gemm_bf16(tt_backend *b) {
  TT_REGISTER_KERNEL(b, gemm_bf16, cu_gemm_bf16);
  TT_REGISTER_KERNEL(b, gemm_bf16_batched, cu_gemm_bf16_batched);
  TT_REGISTER_KERNEL(b, gemm_bf16_isa, cu_gemm_bf16_isa);
  return TT_OK;
}

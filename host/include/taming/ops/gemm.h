/* ops/gemm.h — matrix products: matmul (batched, broadcasting), linear. */
#ifndef TAMING_OPS_GEMM_H
#define TAMING_OPS_GEMM_H
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kernels on device pointers, row-major:
 *   C[M,N] = alpha * op(A) op(B) + beta * C, op(A) = A[M,K] or A^T (A stored [K,M]).
 *   gemm_batched: `batch` such products, operand i at A + i*sa, B + i*sb, C + i*sc. */
typedef tt_status (*tt_gemm_fn)(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
                                float alpha, const float *A, int64_t lda, const float *B,
                                int64_t ldb, float beta, float *C, int64_t ldc);
typedef tt_status (*tt_gemm_batched_fn)(bool trans_a, bool trans_b, int64_t M, int64_t N,
                                        int64_t K, float alpha, const float *A, int64_t lda,
                                        int64_t sa, const float *B, int64_t ldb, int64_t sb,
                                        float beta, float *C, int64_t ldc, int64_t sc,
                                        int64_t batch);

/* [..., M, K] @ [..., K, N] -> [..., M, N]; batch dims broadcast; 1-D operands as in numpy. */
TT_API tt_tensor *tt_matmul(tt_tensor *a, tt_tensor *b);
/* x [..., in] · w[out, in]^T + bias[out] -> [..., out]; bias may be NULL. */
TT_API tt_tensor *tt_linear(tt_tensor *x, tt_tensor *w, tt_tensor *bias);

#ifdef __cplusplus
}
#endif
#endif

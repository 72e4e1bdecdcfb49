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

/* bf16 mixed precision (training): the same contracts as gemm / gemm_batched with the
 * operands rounded to bf16 (round to nearest even) and f32 products and sums.
 * gemm_bf16_isa names the instructions used ("amx-bf16", ...) or why there are none. */
typedef tt_gemm_fn tt_gemm_bf16_fn;
typedef tt_gemm_batched_fn tt_gemm_bf16_batched_fn;
typedef const char *(*tt_gemm_bf16_isa_fn)(void);

/* The precision of the GEMMs inside tt_linear and tt_matmul, forward and backward
 * (an autocast switch; process-wide, off = TT_F32 by default). Tensors, weights,
 * gradients and optimizer state stay f32; under TT_BF16 the products round their
 * operands to bf16 and accumulate in f32. A node records the precision of its
 * forward and its backward uses the same. TT_F32 results are those of the plain
 * f32 kernels, bit for bit. Setting TT_BF16 where neither the CPU nor a CUDA device
 * has a bf16 GEMM fails with TT_ERR_UNSUPPORTED (a message saying why) and leaves
 * TT_F32; tensors on a device without the bf16 kernels keep f32 GEMMs under TT_BF16
 * (said once on stderr). On CUDA the products run through cuBLAS (bf16 operands,
 * f32 accumulation). */
TT_API tt_status tt_set_compute_precision(tt_dtype dt);
TT_API tt_dtype tt_compute_precision(void);
/* The instructions the CPU's bf16 GEMM uses, or why there is none. */
TT_API const char *tt_gemm_bf16_isa(void);

/* [..., M, K] @ [..., K, N] -> [..., M, N]; batch dims broadcast; 1-D operands as in numpy. */
TT_API tt_tensor *tt_matmul(tt_tensor *a, tt_tensor *b);
/* x [..., in] · w[out, in]^T + bias[out] -> [..., out]; bias may be NULL. */
TT_API tt_tensor *tt_linear(tt_tensor *x, tt_tensor *w, tt_tensor *bias);

#ifdef __cplusplus
}
#endif
#endif

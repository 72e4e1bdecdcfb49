/* cpu.h — shared helpers of the CPU kernels (not part of the SDK). */
#ifndef TAMING_KERNELS_CPU_H
#define TAMING_KERNELS_CPU_H

#include <stdint.h>
#include "../../host/core/backend_impl.h"
#include "taming/ops.h"
#include "../collapse.h"

/* One registration function per op family (kernels/cpu/<family>.c). */
tt_status tt_cpu_register_copy(tt_backend *b);
tt_status tt_cpu_register_elementwise(tt_backend *b);
tt_status tt_cpu_register_reduce(tt_backend *b);
tt_status tt_cpu_register_gemm(tt_backend *b);
tt_status tt_cpu_register_conv(tt_backend *b);
tt_status tt_cpu_register_resample(tt_backend *b);
tt_status tt_cpu_register_norm(tt_backend *b);
tt_status tt_cpu_register_softmax(tt_backend *b);
tt_status tt_cpu_register_attention(tt_backend *b);
tt_status tt_cpu_register_embedding(tt_backend *b);
tt_status tt_cpu_register_loss(tt_backend *b);
tt_status tt_cpu_register_quantize(tt_backend *b);
tt_status tt_cpu_register_optim(tt_backend *b);
tt_status tt_cpu_register_random(tt_backend *b);
tt_status tt_cpu_register_compare(tt_backend *b);
tt_status tt_cpu_register_sort(tt_backend *b);
tt_status tt_cpu_register_qlinear(tt_backend *b);
tt_status tt_cpu_register_gemm_bf16(tt_backend *b);
tt_status tt_cpu_register_conv_lowp(tt_backend *b);
tt_status tt_cpu_register_conv_dnnl_train(tt_backend *b);

/* What oneDNN dispatches to on this CPU (conv_dnnl.c; builds with oneDNN only), a
 * mask of the TT_DNNL_* bits: 0 under TAMING_CPU_ISA=generic, no AMX under
 * TAMING_CPU_ISA=avx512 (the cap is set at the first call, before oneDNN
 * dispatches anything, so every caller sees the same answer). */
enum { TT_DNNL_AVX512 = 1, TT_DNNL_BF16 = 2, TT_DNNL_AMX = 4 };
unsigned tt_cpu_dnnl_isa(void);

/* The CPU has AMX-BF16 and Linux granted this process the tile state (qlinear.c). */
bool tt_cpu_amx_bf16_usable(void);

/* OpenBLAS runs single-threaded; kernels split work across OpenMP threads (gemm.c).
 * A kernel that calls BLAS from OpenMP threads brackets the region with
 * serial_begin/end, which hold OpenBLAS at one thread even if a caller raised it. */
void tt_cpu_blas_single_threaded(void);
int tt_cpu_blas_serial_begin(void);
void tt_cpu_blas_serial_end(int prev);

/* OpenMP's thread count and this thread's number (1 and 0 without OpenMP). */
int tt_cpu_max_threads(void);
/* Row-major C = alpha op(A) op(B) + beta C by one OpenBLAS call on the calling
 * thread (callers hold tt_cpu_blas_serial_begin); K = 0 scales C by beta. */
void tt_cpu_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
int tt_cpu_thread_id(void);
/* The same with bf16 operands and f32 sums (gemm_bf16.c), on the calling thread when
 * called inside an OpenMP team; f32 sgemm where the CPU has no bf16 GEMM or packing
 * memory runs out. */
void tt_cpu_gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                      const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* Work below this many elements is not worth waking threads for. */
#define TT_CPU_PAR_MIN 32768

#endif

/* qlinear.cu — CUDA kernels of linear layers with bf16 or int8 weights
 * (taming/ops/qlinear.h), the twins of kernels/cpu/qlinear.c.
 *
 *   bf16  x is rounded to bf16 (zeros past K, like the packed weights) and cuBLAS
 *         multiplies bf16 by bf16 with f32 accumulation (cublasGemmEx,
 *         CUBLAS_COMPUTE_32F) into f32 y; a bias is written into y first and
 *         the product added to it (beta = 1).
 *   int8, fewer than TT_QLINEAR_TILE_ROWS activation rows (decoding): a GEMV
 *         kernel, one warp per output channel, reads each weight row once with
 *         16-byte loads, widens the 16 weights to f32 and meets every row of x
 *         in f32; the scale multiplies the finished dot product, as on the CPU,
 *         so only the order of the sums differs from the CPU kernel.
 *   int8, more rows (batched sampling, prefill): the weights are widened to bf16
 *         (exact: |q| <= 127 fits bf16's 8-bit significand) one slab of rows at
 *         a time and go through the same cuBLAS GEMM; x is rounded to bf16 as on
 *         the CPU's AMX path, and scale and bias are applied to the f32 result.
 *   pack  f32 weights -> bf16 or per-channel int8 on the device, equal bit for bit
 *         to the host packing (round to nearest even; scale = max|w| / 127 and
 *         q = rint(w * (1 / scale)), IEEE division and multiplication).
 *
 * cuBLAS is column-major: the row-major packed w [N, Kp] is the column-major
 * [Kp, N] matrix w^T, x_bf16 [M, Kp] is x^T [Kp, M], and row-major y [M, N]
 * (leading dimension ldy) is column-major y^T [N, M]; so y^T = (w^T)^T x^T is
 * cublasGemmEx(OP_T, OP_N, m = N, n = M, k = Kp, A = w, lda = Kp, B = x, ldb =
 * Kp, C = y, ldc = ldy). Everything runs on the backend's one stream. */
#include "config.h"
#include <cuda_bf16.h>
#include "cuda_backend.h"

/* Weight rows widened to bf16 per GEMM call on the many-row int8 path: a bounded
 * scratch buffer however large the layer. */
#define TT_QLINEAR_SLAB_BYTES ((int64_t)64 << 20)
#define GEMV_WARPS 8   /* output channels per block of the int8 GEMV */

static tt_status size_error(const char *op, int64_t M, int64_t Kp) {
  return tt_error(TT_ERR_INVALID, "%s: a [%lld, %lld] workspace is too large", op, (long long)M, (long long)Kp);
}

static tt_status check_width(const char *op, int64_t K, int64_t Kp) {
  if (K <= 0 || Kp < K || Kp % TT_QLINEAR_KALIGN)
    return tt_error(TT_ERR_INVALID, "%s: packed width %lld does not fit %lld inputs", op, (long long)Kp,
                    (long long)K);
  return TT_OK;
}

/* ---- elementwise helpers ---- */

// x [M, K] (row stride ldx) -> xb [M, Kp] bf16, zeros past K
__global__ void k_x_to_bf16(const float *x, int64_t ldx, int64_t M, int64_t K, int64_t Kp, __nv_bfloat16 *xb) {
  TT_CUDA_LOOP(i, M * Kp) {
    int64_t m = i / Kp, k = i % Kp;
    xb[i] = __float2bfloat16_rn(k < K ? x[m * ldx + k] : 0.0f);
  }
}

// x [M, K] (row stride ldx) -> xp [M, Kp] f32, zeros past K
__global__ void k_x_pad(const float *x, int64_t ldx, int64_t M, int64_t K, int64_t Kp, float *xp) {
  TT_CUDA_LOOP(i, M * Kp) {
    int64_t m = i / Kp, k = i % Kp;
    xp[i] = k < K ? x[m * ldx + k] : 0.0f;
  }
}

// y [M, N] (row stride ldy): every row = bias [N]
__global__ void k_bias_rows(float *y, int64_t ldy, int64_t M, int64_t N, const float *bias) {
  TT_CUDA_LOOP(i, M * N) {
    int64_t m = i / N, n = i % N;
    y[m * ldy + n] = bias[n];
  }
}

// y [M, N] (row stride ldy) = y * scale[n] (+ bias[n])
__global__ void k_scale_bias(float *y, int64_t ldy, int64_t M, int64_t N, const float *scale, const float *bias) {
  TT_CUDA_LOOP(i, M * N) {
    int64_t m = i / N, n = i % N;
    float *p = y + m * ldy + n;
    *p = *p * scale[n] + (bias ? bias[n] : 0.0f);
  }
}

// q [rows, Kp] i8 -> wb [rows, Kp] bf16 (exact)
__global__ void k_i8_to_bf16(const int8_t *q, int64_t n, __nv_bfloat16 *wb) {
  TT_CUDA_LOOP(i, n) wb[i] = __float2bfloat16_rn((float)q[i]);
}

/* ---- the bf16 GEMM shared by both weight kinds ---- */

// y [M, N] (ldy) = xb [M, Kp] w [N, Kp]^T + beta * y, bf16 operands, f32 accumulation and result
static tt_status gemm_bf16(int64_t M, int64_t N, int64_t Kp, const __nv_bfloat16 *xb, const void *w, float beta,
                           float *y, int64_t ldy, const char *what) {
  const float alpha = 1.0f;
  TT_CUBLAS_TRY(cublasGemmEx_64(tt_cuda_blas(), CUBLAS_OP_T, CUBLAS_OP_N, N, M, Kp, &alpha, w, CUDA_R_16BF, Kp, xb,
                                CUDA_R_16BF, Kp, &beta, y, CUDA_R_32F, ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                what);
  return tt_cuda_check_launch(what);
}

/* x rounded to bf16 in a pool buffer [M, Kp] */
static tt_status x_bf16(tt_cuda_buf &xb, int64_t M, int64_t K, const float *x, int64_t ldx, int64_t Kp,
                        const char *what) {
  int64_t n, bytes;
  if (__builtin_mul_overflow(M, Kp, &n) || __builtin_mul_overflow(n, (int64_t)sizeof(__nv_bfloat16), &bytes))
    return size_error(what, M, Kp);
  TT_TRY(xb.alloc((size_t)bytes, what));
  k_x_to_bf16<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(x, ldx, M, K, Kp, xb.as<__nv_bfloat16>());
  return tt_cuda_check_launch(what);
}

static tt_status cu_qlinear_bf16(int64_t M, int64_t N, int64_t K, const float *x, int64_t ldx, const uint16_t *w,
                                 int64_t Kp, const float *bias, float *y, int64_t ldy) {
  if (M <= 0 || N <= 0) return TT_OK;
  TT_TRY(check_width("qlinear_bf16", K, Kp));
  tt_cuda_buf xb;
  TT_TRY(x_bf16(xb, M, K, x, ldx, Kp, "qlinear_bf16"));
  float beta = 0.0f;
  if (bias) {
    k_bias_rows<<<tt_cuda_grid(M * N), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(y, ldy, M, N, bias);
    TT_TRY(tt_cuda_check_launch("qlinear_bf16 bias"));
    beta = 1.0f;
  }
  return gemm_bf16(M, N, Kp, xb.as<__nv_bfloat16>(), w, beta, y, ldy, "qlinear_bf16");
}

/* ---- int8: GEMV for few rows ---- */

/* Sign-extended byte j (0..3) of a 32-bit word, as f32. */
__device__ __forceinline__ float i8_at(int v, int j) { return (float)(signed char)(v >> (8 * j)); }

/* y[m, n] = scale[n] * sum_k xp[m, k] q[n, k] (+ bias[n]) for m < MR, one warp per n.
 * xp [MR, Kp] f32 padded with zeros; VEC: q rows start 16-byte aligned (Kp is a
 * multiple of 32, so every row does when the first does), else bytes are loaded
 * one at a time. Lanes take 16-weight chunks in turn; the warp sums the lanes. */
template <int MR, bool VEC>
__global__ void __launch_bounds__(GEMV_WARPS * 32)
    k_gemv_i8(int64_t N, int64_t Kp, const float *__restrict__ xp, const int8_t *__restrict__ q,
              const float *__restrict__ scale, const float *__restrict__ bias, float *__restrict__ y, int64_t ldy) {
  const int lane = threadIdx.x & 31;
  const int64_t n = (int64_t)blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5);
  if (n >= N) return;   // the whole warp leaves together: n is the same on every lane
  const int8_t *qr = q + n * Kp;
  float acc[MR];
#pragma unroll
  for (int m = 0; m < MR; m++) acc[m] = 0.0f;
  const int64_t chunks = Kp / 16;
  for (int64_t c = lane; c < chunks; c += 32) {
    float wf[16];
    if (VEC) {
      int4 v = __ldg(reinterpret_cast<const int4 *>(qr) + c);
#pragma unroll
      for (int j = 0; j < 4; j++) {
        wf[j] = i8_at(v.x, j);
        wf[4 + j] = i8_at(v.y, j);
        wf[8 + j] = i8_at(v.z, j);
        wf[12 + j] = i8_at(v.w, j);
      }
    } else {
#pragma unroll
      for (int j = 0; j < 16; j++) wf[j] = (float)qr[c * 16 + j];
    }
#pragma unroll
    for (int m = 0; m < MR; m++) {
      const float4 *xv = reinterpret_cast<const float4 *>(xp + m * Kp) + c * 4;
      float a = acc[m];
#pragma unroll
      for (int j = 0; j < 4; j++) {
        float4 v = __ldg(xv + j);
        a = fmaf(v.x, wf[4 * j], a);
        a = fmaf(v.y, wf[4 * j + 1], a);
        a = fmaf(v.z, wf[4 * j + 2], a);
        a = fmaf(v.w, wf[4 * j + 3], a);
      }
      acc[m] = a;
    }
  }
#pragma unroll
  for (int m = 0; m < MR; m++) {
    float a = acc[m];
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) a += __shfl_xor_sync(0xffffffffu, a, off);
    if (lane == 0) y[m * ldy + n] = a * scale[n] + (bias ? bias[n] : 0.0f);
  }
}

template <int MR>
static void launch_gemv(bool vec, unsigned blocks, int64_t N, int64_t Kp, const float *xp, const int8_t *q,
                        const float *scale, const float *bias, float *y, int64_t ldy) {
  if (vec)
    k_gemv_i8<MR, true><<<blocks, GEMV_WARPS * 32, 0, tt_cuda_stream()>>>(N, Kp, xp, q, scale, bias, y, ldy);
  else
    k_gemv_i8<MR, false><<<blocks, GEMV_WARPS * 32, 0, tt_cuda_stream()>>>(N, Kp, xp, q, scale, bias, y, ldy);
}

static_assert(TT_QLINEAR_TILE_ROWS == 8, "the GEMV dispatch below covers 1 .. TT_QLINEAR_TILE_ROWS - 1 rows");
static_assert(TT_QLINEAR_KALIGN % 16 == 0, "the GEMV reads 16 weights at a time");

static tt_status gemv_i8(int64_t M, int64_t N, int64_t K, const float *x, int64_t ldx, const int8_t *w, int64_t Kp,
                         const float *scale, const float *bias, float *y, int64_t ldy) {
  const char *what = "qlinear_i8";
  int64_t blocks = (N + GEMV_WARPS - 1) / GEMV_WARPS, n, bytes;
  if (blocks > 0x7fffffff) return tt_error(TT_ERR_INVALID, "%s: %lld output channels are too many", what, (long long)N);
  if (__builtin_mul_overflow(M, Kp, &n) || __builtin_mul_overflow(n, (int64_t)sizeof(float), &bytes))
    return size_error(what, M, Kp);
  tt_cuda_buf xp;   /* x padded to Kp: the kernel reads whole float4 with no tail */
  TT_TRY(xp.alloc((size_t)bytes, what));
  k_x_pad<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(x, ldx, M, K, Kp, xp.as<float>());
  TT_TRY(tt_cuda_check_launch("qlinear_i8 pad"));
  bool vec = ((uintptr_t)w & 15) == 0;
  unsigned g = (unsigned)blocks;
  const float *xpp = xp.as<float>();
  switch (M) {
    case 1: launch_gemv<1>(vec, g, N, Kp, xpp, w, scale, bias, y, ldy); break;
    case 2: launch_gemv<2>(vec, g, N, Kp, xpp, w, scale, bias, y, ldy); break;
    case 3: launch_gemv<3>(vec, g, N, Kp, xpp, w, scale, bias, y, ldy); break;
    case 4: launch_gemv<4>(vec, g, N, Kp, xpp, w, scale, bias, y, ldy); break;
    case 5: launch_gemv<5>(vec, g, N, Kp, xpp, w, scale, bias, y, ldy); break;
    case 6: launch_gemv<6>(vec, g, N, Kp, xpp, w, scale, bias, y, ldy); break;
    default: launch_gemv<7>(vec, g, N, Kp, xpp, w, scale, bias, y, ldy); break;
  }
  return tt_cuda_check_launch("qlinear_i8 gemv");
}

/* ---- int8: bf16 GEMM for many rows ---- */

static tt_status gemm_i8(int64_t M, int64_t N, int64_t K, const float *x, int64_t ldx, const int8_t *w, int64_t Kp,
                         const float *scale, const float *bias, float *y, int64_t ldy) {
  const char *what = "qlinear_i8";
  tt_cuda_buf xb, wb;
  TT_TRY(x_bf16(xb, M, K, x, ldx, Kp, what));
  int64_t slab = TT_QLINEAR_SLAB_BYTES / (Kp * (int64_t)sizeof(__nv_bfloat16));
  if (slab < 1) slab = 1;
  if (slab > N) slab = N;
  TT_TRY(wb.alloc((size_t)(slab * Kp) * sizeof(__nv_bfloat16), what));
  /* one stream: the GEMM of a slab reads wb before the next slab's widening overwrites it */
  for (int64_t n0 = 0; n0 < N; n0 += slab) {
    int64_t rows = N - n0 < slab ? N - n0 : slab;
    k_i8_to_bf16<<<tt_cuda_grid(rows * Kp), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(w + n0 * Kp, rows * Kp,
                                                                                     wb.as<__nv_bfloat16>());
    TT_TRY(tt_cuda_check_launch("qlinear_i8 widen"));
    TT_TRY(gemm_bf16(M, rows, Kp, xb.as<__nv_bfloat16>(), wb.p, 0.0f, y + n0, ldy, what));
  }
  k_scale_bias<<<tt_cuda_grid(M * N), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(y, ldy, M, N, scale, bias);
  return tt_cuda_check_launch("qlinear_i8 scale");
}

static tt_status cu_qlinear_i8(int64_t M, int64_t N, int64_t K, const float *x, int64_t ldx, const int8_t *w,
                               int64_t Kp, const float *scale, const float *bias, float *y, int64_t ldy) {
  if (M <= 0 || N <= 0) return TT_OK;
  TT_TRY(check_width("qlinear_i8", K, Kp));
  if (M < TT_QLINEAR_TILE_ROWS) return gemv_i8(M, N, K, x, ldx, w, Kp, scale, bias, y, ldy);
  return gemm_i8(M, N, K, x, ldx, w, Kp, scale, bias, y, ldy);
}

/* ---- packing ---- */

// w [N, K] f32 -> p [N, Kp] bf16 bits, zeros past K
__global__ void k_pack_bf16(const float *w, int64_t N, int64_t K, int64_t Kp, uint16_t *p) {
  TT_CUDA_LOOP(i, N * Kp) {
    int64_t n = i / Kp, k = i % Kp;
    p[i] = k < K ? __bfloat16_as_ushort(__float2bfloat16_rn(w[n * K + k])) : (uint16_t)0;
  }
}

// q [N, K] i8 -> p [N, Kp] i8, zeros past K
__global__ void k_pack_rows_i8(const int8_t *q, int64_t N, int64_t K, int64_t Kp, int8_t *p) {
  TT_CUDA_LOOP(i, N * Kp) {
    int64_t n = i / Kp, k = i % Kp;
    p[i] = k < K ? q[n * K + k] : (int8_t)0;
  }
}

#define PACK_THREADS 256

// w [N, K] f32 -> p [N, Kp] i8 + scale [N]: one block per row (grid-stride over rows)
__global__ void __launch_bounds__(PACK_THREADS)
    k_quantize_rows(const float *w, int64_t N, int64_t K, int64_t Kp, int8_t *p, float *scale) {
  __shared__ float part[PACK_THREADS / 32];
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const float *wr = w + n * K;
    float amax = 0.0f;   // max is exact: the order of the reduction does not matter
    for (int64_t k = threadIdx.x; k < K; k += PACK_THREADS) amax = fmaxf(amax, fabsf(wr[k]));
    for (int off = 16; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = amax;
    __syncthreads();
    amax = part[0];
    for (int j = 1; j < PACK_THREADS / 32; j++) amax = fmaxf(amax, part[j]);
    __syncthreads();   // part is reused by the next row
    float s = amax / 127.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
    int8_t *pr = p + n * Kp;
    for (int64_t k = threadIdx.x; k < Kp; k += PACK_THREADS) {
      float v = k < K ? rintf(__fmul_rn(wr[k], inv)) : 0.0f;
      pr[k] = (int8_t)(v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v);
    }
    if (threadIdx.x == 0) scale[n] = s;
  }
}

static tt_status cu_qlinear_pack(int64_t N, int64_t K, const void *src, tt_dtype src_dt, void *packed, tt_dtype dt,
                                 int64_t Kp, float *scale) {
  if (N <= 0) return TT_OK;
  TT_TRY(check_width("qlinear_pack", K, Kp));
  int64_t n;
  if (__builtin_mul_overflow(N, Kp, &n)) return size_error("qlinear_pack", N, Kp);
  cudaStream_t st = tt_cuda_stream();
  if (src_dt == TT_F32 && dt == TT_BF16) {
    k_pack_bf16<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, st>>>((const float *)src, N, K, Kp, (uint16_t *)packed);
  } else if (src_dt == TT_F32 && dt == TT_I8 && scale) {
    int64_t blocks = N < (int64_t)tt_cuda_sm_count() * 8 ? N : (int64_t)tt_cuda_sm_count() * 8;
    k_quantize_rows<<<(unsigned)(blocks < 1 ? 1 : blocks), PACK_THREADS, 0, st>>>((const float *)src, N, K, Kp,
                                                                                 (int8_t *)packed, scale);
  } else if (src_dt == TT_I8 && dt == TT_I8) {
    k_pack_rows_i8<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, st>>>((const int8_t *)src, N, K, Kp, (int8_t *)packed);
  } else {
    return tt_error(TT_ERR_INVALID, "qlinear_pack: cannot pack %s weights to %s%s", tt_dtype_name(src_dt),
                    tt_dtype_name(dt), dt == TT_I8 && !scale ? " without somewhere to put the scales" : "");
  }
  return tt_cuda_check_launch("qlinear_pack");
}

static const char *cu_qlinear_isa(tt_dtype dt) {
  return dt == TT_BF16 ? "cublas-bf16 (f32 accumulate)"
         : dt == TT_I8 ? "cuda-i8-gemv (< 8 rows), cublas-bf16 (>= 8 rows)"
                       : "no kernel for this dtype";
}

tt_status tt_cuda_register_qlinear(tt_backend *b) {
  TT_REGISTER_KERNEL(b, qlinear_bf16, cu_qlinear_bf16);
  TT_REGISTER_KERNEL(b, qlinear_i8, cu_qlinear_i8);
  TT_REGISTER_KERNEL(b, qlinear_isa, cu_qlinear_isa);
  TT_REGISTER_KERNEL(b, qlinear_pack, cu_qlinear_pack);
  return TT_OK;
}

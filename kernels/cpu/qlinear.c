/* qlinear.c — CPU kernels of linear layers with bf16 or int8 weights
 * (taming/ops/qlinear.h), chosen at run time by what the CPU has.
 *
 * Decoding one token at a time is bound by how many weight bytes stream from
 * memory per token, so both kernels read the packed weights exactly once per
 * call for up to four activation rows and keep them in registers:
 *   bf16: x is rounded to bf16 once per call, products accumulate in f32 with
 *         AVX512-BF16's vdpbf16ps (32 weights per instruction).
 *   int8: 16 weights widen to f32 (vpmovsxbd + vcvtdq2ps) and meet x in f32
 *         FMAs; the per-channel scale multiplies the finished dot product, so
 *         the dequantization is exact.
 * A tile is 4 weight rows x up to 4 activation rows (16 accumulators). Weight
 * rows are split across OpenMP threads in blocks of 16, and all activation
 * rows of a block run while it is hot in L2, so a batch of 16 sequences reads
 * the weights from memory once, not 16 times. Every output's summation order is
 * fixed, so results do not depend on the thread count.
 *
 * Kernels are compiled with target attributes, not -march, so a portable build
 * still has them; they are registered only when cpuid says the CPU (and the OS)
 * has the instructions. TAMING_CPU_ISA=generic hides them (to test the fp32
 * fallback). AMX tiles are not used yet. */
#include "config.h"
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "cpu.h"
#include "taming/ops/qlinear.h"

#define TT_AVX512 "avx512f,avx512bw,avx512vl,avx512dq,fma"
#define TT_AVX512BF16 TT_AVX512 ",avx512bf16"

static int qthreads(double work) {
#ifdef _OPENMP
  if (omp_in_parallel() || work < 4.0 * TT_CPU_PAR_MIN) return 1;
  return omp_get_max_threads();
#else
  (void)work;
  return 1;
#endif
}

/* ---- bf16 ---- */

__attribute__((target(TT_AVX512BF16), always_inline)) static inline void
tile_bf16(const int R, const int G, const uint16_t *w, int64_t Kp, const uint16_t *xb, int64_t ldxb,
          float out[4][4]) {
  __m512 acc[4][4];
  for (int r = 0; r < R; r++)
    for (int g = 0; g < G; g++) acc[r][g] = _mm512_setzero_ps();
  for (int64_t k = 0; k < Kp; k += 32) {
    __m512bh wv[4];
    for (int r = 0; r < R; r++) wv[r] = (__m512bh)_mm512_loadu_si512((const void *)(w + r * Kp + k));
    for (int g = 0; g < G; g++) {
      __m512bh xv = (__m512bh)_mm512_loadu_si512((const void *)(xb + g * ldxb + k));
      for (int r = 0; r < R; r++) acc[r][g] = _mm512_dpbf16_ps(acc[r][g], xv, wv[r]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int g = 0; g < G; g++) out[r][g] = _mm512_reduce_add_ps(acc[r][g]);
}

/* rows [n0, n1) of y for every activation row */
__attribute__((target(TT_AVX512BF16))) static void rows_bf16(int64_t n0, int64_t n1, int64_t M, const uint16_t *xb,
                                                             int64_t Kp, const uint16_t *w, const float *bias,
                                                             float *y, int64_t ldy) {
  float o[4][4];
  for (int64_t m = 0; m < M; m += 4) {
    int G = M - m < 4 ? (int)(M - m) : 4;
    const uint16_t *xm = xb + m * Kp;
    for (int64_t n = n0; n < n1;) {
      int R = n1 - n >= 4 ? 4 : 1;
      const uint16_t *wn = w + n * Kp;
      /* constant R and G so each call unrolls into registers */
      if (R == 4) {
        switch (G) {
          case 1: tile_bf16(4, 1, wn, Kp, xm, Kp, o); break;
          case 2: tile_bf16(4, 2, wn, Kp, xm, Kp, o); break;
          case 3: tile_bf16(4, 3, wn, Kp, xm, Kp, o); break;
          default: tile_bf16(4, 4, wn, Kp, xm, Kp, o); break;
        }
      } else {
        switch (G) {
          case 1: tile_bf16(1, 1, wn, Kp, xm, Kp, o); break;
          case 2: tile_bf16(1, 2, wn, Kp, xm, Kp, o); break;
          case 3: tile_bf16(1, 3, wn, Kp, xm, Kp, o); break;
          default: tile_bf16(1, 4, wn, Kp, xm, Kp, o); break;
        }
      }
      for (int r = 0; r < R; r++)
        for (int g = 0; g < G; g++) y[(m + g) * ldy + n + r] = o[r][g] + (bias ? bias[n + r] : 0.0f);
      n += R;
    }
  }
}

/* x f32 [M, K] -> bf16 [M, Kp], round to nearest even, zero padding */
__attribute__((target(TT_AVX512BF16))) static void x_to_bf16(int64_t M, int64_t K, const float *x, int64_t ldx,
                                                             uint16_t *xb, int64_t Kp) {
  for (int64_t m = 0; m < M; m++) {
    const float *xr = x + m * ldx;
    uint16_t *d = xb + m * Kp;
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
      __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(xr + k + 16), _mm512_loadu_ps(xr + k));
      _mm512_storeu_si512((void *)(d + k), (__m512i)v);
    }
    for (; k < Kp; k += 16) {
      int64_t left = K - k;
      __mmask16 mk = left >= 16 ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
      __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mk, xr + k));
      _mm256_storeu_si256((void *)(d + k), (__m256i)v);
    }
  }
}

static tt_status cpu_qlinear_bf16(int64_t M, int64_t N, int64_t K, const float *x, int64_t ldx, const uint16_t *w,
                                  int64_t Kp, const float *bias, float *y, int64_t ldy) {
  if (M <= 0 || N <= 0) return TT_OK;
  if (Kp < K || Kp % TT_QLINEAR_KALIGN)
    return tt_error(TT_ERR_INVALID, "qlinear_bf16: packed width %lld does not fit %lld inputs", (long long)Kp,
                    (long long)K);
  uint16_t *xb = aligned_alloc(64, (size_t)((M * Kp * 2 + 63) / 64 * 64));
  if (!xb) return tt_error(TT_ERR_NOMEM, "qlinear_bf16: out of memory for [%lld, %lld]", (long long)M, (long long)Kp);
  x_to_bf16(M, K, x, ldx, xb, Kp);
  int64_t nblk = (N + 15) / 16;
  int nt = qthreads((double)M * N * Kp);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t b = 0; b < nblk; b++) {
    int64_t n0 = b * 16, n1 = n0 + 16 < N ? n0 + 16 : N;
    rows_bf16(n0, n1, M, xb, Kp, w, bias, y, ldy);
  }
  free(xb);
  return TT_OK;
}

/* ---- int8 ---- */

__attribute__((target(TT_AVX512), always_inline)) static inline void
tile_i8(const int R, const int G, const int8_t *w, int64_t Kp, const float *xp, int64_t ldxp, float out[4][4]) {
  __m512 acc[4][4];
  for (int r = 0; r < R; r++)
    for (int g = 0; g < G; g++) acc[r][g] = _mm512_setzero_ps();
  for (int64_t k = 0; k < Kp; k += 16) {
    __m512 wv[4];
    for (int r = 0; r < R; r++)
      wv[r] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(w + r * Kp + k))));
    for (int g = 0; g < G; g++) {
      __m512 xv = _mm512_loadu_ps(xp + g * ldxp + k);
      for (int r = 0; r < R; r++) acc[r][g] = _mm512_fmadd_ps(xv, wv[r], acc[r][g]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int g = 0; g < G; g++) out[r][g] = _mm512_reduce_add_ps(acc[r][g]);
}

__attribute__((target(TT_AVX512))) static void rows_i8(int64_t n0, int64_t n1, int64_t M, const float *xp, int64_t Kp,
                                                       const int8_t *w, const float *scale, const float *bias, float *y,
                                                       int64_t ldy) {
  float o[4][4];
  for (int64_t m = 0; m < M; m += 4) {
    int G = M - m < 4 ? (int)(M - m) : 4;
    const float *xm = xp + m * Kp;
    for (int64_t n = n0; n < n1;) {
      int R = n1 - n >= 4 ? 4 : 1;
      const int8_t *wn = w + n * Kp;
      if (R == 4) {
        switch (G) {
          case 1: tile_i8(4, 1, wn, Kp, xm, Kp, o); break;
          case 2: tile_i8(4, 2, wn, Kp, xm, Kp, o); break;
          case 3: tile_i8(4, 3, wn, Kp, xm, Kp, o); break;
          default: tile_i8(4, 4, wn, Kp, xm, Kp, o); break;
        }
      } else {
        switch (G) {
          case 1: tile_i8(1, 1, wn, Kp, xm, Kp, o); break;
          case 2: tile_i8(1, 2, wn, Kp, xm, Kp, o); break;
          case 3: tile_i8(1, 3, wn, Kp, xm, Kp, o); break;
          default: tile_i8(1, 4, wn, Kp, xm, Kp, o); break;
        }
      }
      for (int r = 0; r < R; r++)
        for (int g = 0; g < G; g++)
          y[(m + g) * ldy + n + r] = o[r][g] * scale[n + r] + (bias ? bias[n + r] : 0.0f);
      n += R;
    }
  }
}

static tt_status cpu_qlinear_i8(int64_t M, int64_t N, int64_t K, const float *x, int64_t ldx, const int8_t *w,
                                int64_t Kp, const float *scale, const float *bias, float *y, int64_t ldy) {
  if (M <= 0 || N <= 0) return TT_OK;
  if (Kp < K || Kp % TT_QLINEAR_KALIGN)
    return tt_error(TT_ERR_INVALID, "qlinear_i8: packed width %lld does not fit %lld inputs", (long long)Kp,
                    (long long)K);
  /* x padded with zeros to Kp so the kernel runs whole vectors */
  float *xp = aligned_alloc(64, (size_t)((M * Kp * 4 + 63) / 64 * 64));
  if (!xp) return tt_error(TT_ERR_NOMEM, "qlinear_i8: out of memory for [%lld, %lld]", (long long)M, (long long)Kp);
  for (int64_t m = 0; m < M; m++) {
    memcpy(xp + m * Kp, x + m * ldx, sizeof(float) * (size_t)K);
    memset(xp + m * Kp + K, 0, sizeof(float) * (size_t)(Kp - K));
  }
  int64_t nblk = (N + 15) / 16;
  int nt = qthreads((double)M * N * Kp);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t b = 0; b < nblk; b++) {
    int64_t n0 = b * 16, n1 = n0 + 16 < N ? n0 + 16 : N;
    rows_i8(n0, n1, M, xp, Kp, w, scale, bias, y, ldy);
  }
  free(xp);
  return TT_OK;
}

/* ---- run-time selection ---- */

static const char *bf16_isa, *i8_isa;   /* what the kernels use, or why there is none */

static const char *cpu_qlinear_isa(tt_dtype dt) {
  return dt == TT_BF16 ? bf16_isa : dt == TT_I8 ? i8_isa : "no kernel for this dtype";
}

tt_status tt_cpu_register_qlinear(tt_backend *b) {
  const char *env = getenv("TAMING_CPU_ISA");
  bool generic = env && !strcmp(env, "generic");
  __builtin_cpu_init();
  bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  bool bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
  if (generic) {
    bf16_isa = i8_isa = "no kernel (TAMING_CPU_ISA=generic)";
  } else {
    bf16_isa = bf16 ? "avx512bf16" : "no avx512bf16 on this CPU";
    i8_isa = avx512 ? "avx512f" : "no avx512f on this CPU";
    if (bf16) TT_REGISTER_KERNEL(b, qlinear_bf16, cpu_qlinear_bf16);
    if (avx512) TT_REGISTER_KERNEL(b, qlinear_i8, cpu_qlinear_i8);
  }
  TT_REGISTER_KERNEL(b, qlinear_isa, cpu_qlinear_isa);
  return TT_OK;
}

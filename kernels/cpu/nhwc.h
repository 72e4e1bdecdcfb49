/* nhwc.h — the NCHW <-> NHWC transposes around oneDNN's convolutions
 * (conv_dnnl.c, conv_dnnl_train.c): activations stay f32 NCHW between ops, and
 * oneDNN's brgemm kernels read and write NHWC. AVX-512 only; callers check the
 * CPU (oneDNN's effective ISA) before calling. Not part of the SDK. */
#ifndef TAMING_KERNELS_CPU_NHWC_H
#define TAMING_KERNELS_CPU_NHWC_H

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>
#include "cpu.h"
#include "taming/dtype.h"

/* Layout changes around the primitive when it reads and writes NHWC (the AMX and
 * AVX512-BF16 brgemm kernels do). oneDNN's generic reorders (jit:uni) took about as
 * long as the convolutions on the VQGAN (1.5 s against 1.7 s per encode + decode at
 * 256x256, loaded machine); these take about 60 ms. Blocks of 16 pixels, each
 * cache line read whole while it is in L1. Rounding to bf16 is to nearest even,
 * as oneDNN's. */
#define TT_AVX512BF16 "avx512f,avx512bw,avx512vl,avx512dq,fma,avx512bf16"

/* x f32 [B, C, P] -> d bf16 [B, P, C] */
__attribute__((target(TT_AVX512BF16))) static inline void nchw_to_nhwc_bf16(int64_t B, int64_t C, int64_t P,
                                                                            const float *x, uint16_t *d) {
  int64_t pblocks = (P + 15) / 16, C16 = C / 16 * 16;
  __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                   _mm512_set1_epi32((int)P));
  bool vec = P <= INT32_MAX / 16;
#pragma omp parallel for schedule(static) collapse(2) if (B * C * P >= 4 * TT_CPU_PAR_MIN)
  for (int64_t b = 0; b < B; b++)
    for (int64_t pb = 0; pb < pblocks; pb++) {
      const float *xb = x + b * C * P;
      uint16_t *db = d + b * C * P;
      int64_t p0 = pb * 16, p1 = p0 + 16 < P ? p0 + 16 : P;
      for (int64_t p = p0; p < p1; p++) {
        int64_t c = 0;
        for (; vec && c < C16; c += 16) {
          __m512 v = _mm512_i32gather_ps(idx, xb + c * P + p, 4);
          _mm256_storeu_si256((__m256i *)(db + p * C + c), (__m256i)_mm512_cvtneps_pbh(v));
        }
        for (; c < C; c++) db[p * C + c] = tt_f32_to_bf16(xb[c * P + p]);
      }
    }
}

/* x f32 [B, C, P] -> d f32 [B, P, C] */
__attribute__((target("avx512f"))) static inline void nchw_to_nhwc_f32(int64_t B, int64_t C, int64_t P,
                                                                      const float *x, float *d) {
  int64_t pblocks = (P + 15) / 16, C16 = C / 16 * 16;
  __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                   _mm512_set1_epi32((int)P));
  bool vec = P <= INT32_MAX / 16;
#pragma omp parallel for schedule(static) collapse(2) if (B * C * P >= 4 * TT_CPU_PAR_MIN)
  for (int64_t b = 0; b < B; b++)
    for (int64_t pb = 0; pb < pblocks; pb++) {
      const float *xb = x + b * C * P;
      float *db = d + b * C * P;
      int64_t p0 = pb * 16, p1 = p0 + 16 < P ? p0 + 16 : P;
      for (int64_t p = p0; p < p1; p++) {
        int64_t c = 0;
        for (; vec && c < C16; c += 16) _mm512_storeu_ps(db + p * C + c, _mm512_i32gather_ps(idx, xb + c * P + p, 4));
        for (; c < C; c++) db[p * C + c] = xb[c * P + p];
      }
    }
}

/* s f32 [B, P, C] -> y f32 [B, C, P] */
__attribute__((target(TT_AVX512BF16))) static inline void nhwc_to_nchw_f32(int64_t B, int64_t C, int64_t P,
                                                                           const float *s, float *y) {
  int64_t pblocks = (P + 15) / 16;
  __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                   _mm512_set1_epi32((int)C));
  bool vec = C <= INT32_MAX / 16;
#pragma omp parallel for schedule(static) collapse(2) if (B * C * P >= 4 * TT_CPU_PAR_MIN)
  for (int64_t b = 0; b < B; b++)
    for (int64_t pb = 0; pb < pblocks; pb++) {
      const float *sb = s + b * C * P;
      float *yb = y + b * C * P;
      int64_t p0 = pb * 16;
      if (vec && p0 + 16 <= P) {
        for (int64_t c = 0; c < C; c++) _mm512_storeu_ps(yb + c * P + p0, _mm512_i32gather_ps(idx, sb + p0 * C + c, 4));
      } else {
        for (int64_t c = 0; c < C; c++)
          for (int64_t p = p0; p < P && p < p0 + 16; p++) yb[c * P + p] = sb[p * C + c];
      }
    }
}


#endif

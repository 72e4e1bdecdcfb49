/* nhwc.h — the NCHW <-> NHWC transposes around oneDNN's convolutions
 * (conv_dnnl.c, conv_dnnl_train.c): activations stay f32 NCHW between ops, and
 * oneDNN's brgemm kernels read and write NHWC. The bf16 input transpose can also
 * apply a per-channel scale and shift (a group norm), SiLU and nearest upsampling,
 * and the output transpose can add a residual: conv2d_bf16_fused's steps, done
 * on passes that touch the data anyway. AVX-512 only; callers check the
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
 * 256x256, loaded machine); these take about 60 ms. Rounding to bf16 is to nearest even,
 * as oneDNN's. */
#define TT_AVX512BF16 "avx512f,avx512bw,avx512vl,avx512dq,fma,avx512bf16"

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

/* Tiles of TILE_P pixels x 16 channels: each channel's pixels are read (or written) as one
 * contiguous run, and the 16 x TILE_P f32 tile (16 KB) is turned in L1. With 16-pixel
 * blocks gathered straight from memory (one cache line per channel per block), the
 * fused norm + SiLU cost more than the separate ops it replaced; measured alone on one
 * thread at [128, 256, 256], this tiling takes 13 ms where the separate group_norm_silu
 * and transpose took 9.5 + 10 ms. */
#define TILE_P 256

/* silu(h) = h / (1 + exp(-h)) on 16 lanes: exp by Cody-Waite reduction, a degree-6
 * polynomial and scalef; the reciprocal by rcp14 and one Newton step (~1e-7 relative) */
__attribute__((target(TT_AVX512BF16))) static inline __m512 silu16(__m512 h) {
  __m512 z = _mm512_min_ps(_mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), h), _mm512_set1_ps(-87.0f)),
                           _mm512_set1_ps(87.0f));
  __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(z, _mm512_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), z);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  __m512 den = _mm512_add_ps(_mm512_scalef_ps(p, n), _mm512_set1_ps(1.0f));
  __m512 inv = _mm512_rcp14_ps(den);
  inv = _mm512_mul_ps(inv, _mm512_fnmadd_ps(den, inv, _mm512_set1_ps(2.0f)));
  return _mm512_mul_ps(h, inv);
}

/* One tile of the input steps: x f32 [C, H, W] (one image) -> d bf16 [H*u, W*u, C] for pixels
 * p0.. and channels c0..c0+16: h = x * scale[c] + shift[c] (scale NULL: h = x), SiLU,
 * nearest upsampling by u. t: 16 * TILE_P floats, 64-byte aligned. */
__attribute__((target(TT_AVX512BF16))) static inline void prep_tile(int64_t C, int64_t H, int64_t W, int u, const float *x,
    const float *scale, const float *shift, bool silu, uint16_t *d, float *t, int64_t p0, int64_t c0) {
  int64_t P = H * W, np = p0 + TILE_P <= P ? TILE_P : P - p0, nc = c0 + 16 <= C ? 16 : C - c0;
  for (int64_t k = 0; k < 16; k++) {
    float *tk = t + k * TILE_P;
    if (k >= nc) { for (int64_t i = 0; i < np; i++) tk[i] = 0; continue; }
    const float *xr = x + (c0 + k) * P + p0;
    __m512 a = _mm512_set1_ps(scale ? scale[c0 + k] : 1.0f), s = _mm512_set1_ps(scale ? shift[c0 + k] : 0.0f);
    int64_t i = 0;
    for (; i + 16 <= np; i += 16) {
      __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(xr + i), a, s);
      _mm512_store_ps(tk + i, silu ? silu16(v) : v);
    }
    if (i < np) {
      __mmask16 m = (__mmask16)((1u << (np - i)) - 1);
      __m512 v = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, xr + i), a, s);
      _mm512_mask_storeu_ps(tk + i, m, silu ? silu16(v) : v);
    }
  }
  __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                   _mm512_set1_epi32(TILE_P));
  __mmask16 cm = (__mmask16)((1u << nc) - 1);
  int64_t Wo = W * u;
  for (int64_t i = 0; i < np; i++) {
    __m256i v = (__m256i)_mm512_cvtneps_pbh(_mm512_i32gather_ps(idx, t + i, 4));
    int64_t p = p0 + i, h = p / W, w = p % W;
    for (int dy = 0; dy < u; dy++)
      for (int dx = 0; dx < u; dx++) {
        uint16_t *o = d + ((h * u + dy) * Wo + w * u + dx) * C + c0;
        if (nc == 16) _mm256_storeu_si256((__m256i *)o, v);
        else _mm256_mask_storeu_epi16(o, cm, v);
      }
  }
}

/* One tile of the output steps: s f32 [P, C] -> y f32 [C, P] (+ r f32 [C, P], NULL: none)
 * for pixels p0.. and channels c0..c0+16. t as for prep_tile. */
__attribute__((target(TT_AVX512BF16))) static inline void out_tile(int64_t C, int64_t P, const float *s, const float *r,
    float *y, float *t, int64_t p0, int64_t c0) {
  int64_t np = p0 + TILE_P <= P ? TILE_P : P - p0, nc = c0 + 16 <= C ? 16 : C - c0;
  __mmask16 cm = (__mmask16)((1u << nc) - 1);
  for (int64_t i = 0; i < np; i++) _mm512_store_ps(t + i * 16, _mm512_maskz_loadu_ps(cm, s + (p0 + i) * C + c0));
  __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                   _mm512_set1_epi32(16));
  for (int64_t k = 0; k < nc; k++) {
    float *yr = y + (c0 + k) * P + p0;
    const float *rr = r ? r + (c0 + k) * P + p0 : NULL;
    int64_t i = 0;
    for (; i + 16 <= np; i += 16) {
      __m512 v = _mm512_i32gather_ps(idx, t + i * 16 + k, 4);
      if (rr) v = _mm512_add_ps(v, _mm512_loadu_ps(rr + i));
      _mm512_storeu_ps(yr + i, v);
    }
    for (; i < np; i++) yr[i] = t[i * 16 + k] + (rr ? rr[i] : 0.0f);
  }
}

/* x f32 [B, C, H, W] -> d bf16 [B, H*u, W*u, C] with the input steps (scale NULL: no norm) */
static inline void prep_input_bf16(int64_t B, int64_t C, int64_t H, int64_t W, int u, const float *x, const float *scale,
                            const float *shift, bool silu, uint16_t *d) {
  int64_t P = H * W, pt = (P + TILE_P - 1) / TILE_P, ct = (C + 15) / 16;
#pragma omp parallel for schedule(static) collapse(3) if (B * C * P >= 4 * TT_CPU_PAR_MIN)
  for (int64_t b = 0; b < B; b++)
    for (int64_t pi = 0; pi < pt; pi++)
      for (int64_t ci = 0; ci < ct; ci++) {
        float t[16 * TILE_P] __attribute__((aligned(64)));
        prep_tile(C, H, W, u, x + b * C * P, scale ? scale + b * C : NULL, shift ? shift + b * C : NULL, silu,
                  d + b * C * P * u * u, t, pi * TILE_P, ci * 16);
      }
}

/* s f32 [B, P, C] -> y f32 [B, C, P], adding r f32 [B, C, P] (NULL: nothing) */
static inline void nhwc_to_nchw_add_f32(int64_t B, int64_t C, int64_t P, const float *s, const float *r, float *y) {
  int64_t pt = (P + TILE_P - 1) / TILE_P, ct = (C + 15) / 16;
#pragma omp parallel for schedule(static) collapse(3) if (B * C * P >= 4 * TT_CPU_PAR_MIN)
  for (int64_t b = 0; b < B; b++)
    for (int64_t pi = 0; pi < pt; pi++)
      for (int64_t ci = 0; ci < ct; ci++) {
        float t[16 * TILE_P] __attribute__((aligned(64)));
        out_tile(C, P, s + b * C * P, r ? r + b * C * P : NULL, y + b * C * P, t, pi * TILE_P, ci * 16);
      }
}

#endif

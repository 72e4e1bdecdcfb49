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
 * fallback), TAMING_CPU_ISA=avx512 hides AMX. With 8 or more activation rows
 * (batched sampling, prefill) bf16 runs on AMX tiles where the CPU has them. */
#include "config.h"
#include <cpuid.h>
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif
#include "cpu.h"
#include "amx.h"
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
          float out[8][4]) {
  __m512 acc[8][4];
  for (int r = 0; r < R; r++)
    for (int g = 0; g < G; g++) acc[r][g] = _mm512_setzero_ps();
  for (int64_t k = 0; k < Kp; k += 32) {
    __m512bh wv[8];
    /* the next tile's rows, one tile ahead: rows of 1-8 KB are too short for the
     * hardware prefetcher to find before they end (2x on a 4096x1024 GEMV) */
    for (int r = 0; r < R; r++) _mm_prefetch((const char *)(w + (R + r) * Kp + k), _MM_HINT_T0);
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
  float o[8][4];
  for (int64_t m = 0; m < M; m += 4) {
    int G = M - m < 4 ? (int)(M - m) : 4;
    const uint16_t *xm = xb + m * Kp;
    for (int64_t n = n0; n < n1;) {
      /* one activation row (decoding): 8 weight rows a tile, so more lines are in flight */
      int R = G == 1 && n1 - n >= 8 ? 8 : n1 - n >= 4 ? 4 : 1;
      const uint16_t *wn = w + n * Kp;
      /* constant R and G so each call unrolls into registers */
      if (R == 8) {
        tile_bf16(8, 1, wn, Kp, xm, Kp, o);
      } else if (R == 4) {
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

/* ---- bf16 on AMX tiles (batches and prefill) ----
 * C^T = W x^T: the A tile is 16 weight rows x 32 k exactly as packed (row-major,
 * so the weights need no second layout), the B tile 16 k-pairs x 16 activation
 * rows in the VNNI order AMX wants (x is rearranged once per call), and the
 * C tile holds y[m, n] transposed, 16 n x 16 m in f32. Four C tiles cover 64
 * weight rows per pass over k; activation rows come 16 at a time (zero-padded),
 * so batches of 16 use each weight once per step. Weight rows past the last
 * whole block of 16 take the AVX512-BF16 path. */


/* t[m] = column m of the 16 x 16 f32 block c (row-major): a transpose in registers */
__attribute__((target(TT_AVX512), always_inline)) static inline void transpose16(const float *c, __m512 t[16]) {
  __m512 r[16], u[16];
  for (int i = 0; i < 16; i++) r[i] = _mm512_load_ps(c + 16 * i);
  /* 1x1 blocks of row pairs, then 2x2 blocks of pairs of pairs */
  for (int i = 0; i < 16; i += 2) {
    u[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    u[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(u[i]), _mm512_castps_pd(u[i + 2])));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(u[i]), _mm512_castps_pd(u[i + 2])));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(u[i + 1]), _mm512_castps_pd(u[i + 3])));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(u[i + 1]), _mm512_castps_pd(u[i + 3])));
  }
  /* r[4q + j] holds, in each 128-bit lane l, elements (4q..4q+3, 4l + j) */
  for (int j = 0; j < 4; j++) {
    /* the four 128-bit lanes of rows j, 4+j, 8+j, 12+j, regrouped by lane */
    __m512 a = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x44), b = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xee);
    __m512 cc = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x44), d = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xee);
    t[j] = _mm512_shuffle_f32x4(a, cc, 0x88);
    t[4 + j] = _mm512_shuffle_f32x4(a, cc, 0xdd);
    t[8 + j] = _mm512_shuffle_f32x4(b, d, 0x88);
    t[12 + j] = _mm512_shuffle_f32x4(b, d, 0xdd);
  }
}

/* y rows [m0, m0 + 16) (only those < M are written) for weight rows [n0, n0 + 64k) */
/* wn: bf16 rows [n0, n0 + 16 * nblocks) of the weights, row stride Kp; y = C (* scale) + bias */
__attribute__((target("amx-tile,amx-bf16," TT_AVX512))) static void
amx_block(int64_t n0, int nblocks, int64_t m0, int64_t M, const uint32_t *xv, int64_t Kp, const uint16_t *wn,
          const float *scale, const float *bias, float *y, int64_t ldy) {
  float c[16 * 16] __attribute__((aligned(64)));
  int64_t steps = Kp / 32, ldw = Kp * 2;
  const uint32_t *xm = xv + (m0 / 16) * steps * 256;   /* this m-tile's B tiles, 1 KiB per k-step */
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t s = 0; s < steps; s++) {
    _tile_loadd(4, xm + s * 256, 64);
    _tile_loadd(5, wn + s * 32, ldw);
    _tile_dpbf16ps(0, 5, 4);
    if (nblocks > 1) {
      _tile_loadd(6, wn + 16 * Kp + s * 32, ldw);
      _tile_dpbf16ps(1, 6, 4);
    }
    if (nblocks > 2) {
      _tile_loadd(5, wn + 32 * Kp + s * 32, ldw);
      _tile_dpbf16ps(2, 5, 4);
    }
    if (nblocks > 3) {
      _tile_loadd(6, wn + 48 * Kp + s * 32, ldw);
      _tile_dpbf16ps(3, 6, 4);
    }
  }
  int64_t mr = M - m0 < 16 ? M - m0 : 16;
  for (int b = 0; b < nblocks; b++) {
    switch (b) {
      case 0: _tile_stored(0, c, 64); break;
      case 1: _tile_stored(1, c, 64); break;
      case 2: _tile_stored(2, c, 64); break;
      default: _tile_stored(3, c, 64); break;
    }
    /* c is y transposed: turn it in registers and store whole rows of y */
    __m512 t[16];
    transpose16(c, t);
    int64_t nb0 = n0 + b * 16;
    __m512 sv = scale ? _mm512_loadu_ps(scale + nb0) : _mm512_set1_ps(1.0f);
    __m512 bv = bias ? _mm512_loadu_ps(bias + nb0) : _mm512_setzero_ps();
    for (int64_t m = 0; m < mr; m++) _mm512_storeu_ps(y + (m0 + m) * ldy + nb0, _mm512_fmadd_ps(t[m], sv, bv));
  }
}

static bool amx_ok;   /* the CPU has AMX-BF16 and Linux granted this process the tile state */

/* x bf16 [M, Kp] as B tiles: [m-tile][k-step][16 k-pairs][16 rows] dwords (a dword
 * is 2 bf16 along k), rows past M zero; NULL when out of memory */
static uint32_t *amx_x_tiles(int64_t M, const uint16_t *xb, int64_t Kp) {
  int64_t mt = (M + 15) / 16, steps = Kp / 32;
  uint32_t *xv = aligned_alloc(64, (size_t)(mt * steps * 1024));
  if (!xv) return NULL;
  memset(xv, 0, (size_t)(mt * steps * 1024));
  for (int64_t m = 0; m < M; m++) {
    const uint32_t *xr = (const uint32_t *)(xb + m * Kp);
    uint32_t *d = xv + (m / 16) * steps * 256 + (m % 16);
    for (int64_t kp = 0; kp < Kp / 2; kp++) d[(kp / 16) * 256 + (kp % 16) * 16] = xr[kp];
  }
  return xv;
}

/* int8 weight rows -> bf16 (exact: |q| <= 127 needs 7 bits), 32 at a time */
__attribute__((target(TT_AVX512BF16))) static void i8_rows_to_bf16(const int8_t *q, int64_t rows, int64_t Kp,
                                                                   uint16_t *d) {
  for (int64_t i = 0; i < rows * Kp; i += 32) {
    __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + i))));
    __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + i + 16))));
    _mm512_storeu_si512((void *)(d + i), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
  }
}

/* rows [0, N / 16 * 16) of y on AMX: bf16 weights w, or int8 weights q widened to
 * bf16 64 rows at a time (then scaled per channel) */
static tt_status amx_gemm(int64_t M, int64_t N, const uint16_t *xb, int64_t Kp, const uint16_t *w, const int8_t *q,
                          const float *scale, const float *bias, float *y, int64_t ldy) {
  uint32_t *xv = amx_x_tiles(M, xb, Kp);
  if (!xv) return tt_error(TT_ERR_NOMEM, "qlinear: out of memory for [%lld, %lld]", (long long)M, (long long)Kp);
  int64_t full = N / 16 * 16, groups = (full + 63) / 64;
  int nt = qthreads((double)M * N * Kp);
  bool nomem = false;
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(|| : nomem)
  {
    uint16_t *wg = q ? aligned_alloc(64, (size_t)(64 * Kp * 2)) : NULL;
    nomem = q && !wg;
    if (!nomem) tt_cpu_amx_begin();
#pragma omp for schedule(static)
    for (int64_t g = 0; g < groups; g++) {
      if (nomem) continue;
      int64_t n0 = g * 64;
      int nb = (int)((full - n0) / 16 < 4 ? (full - n0) / 16 : 4);
      const uint16_t *wn = w + n0 * Kp;
      if (q) {
        i8_rows_to_bf16(q + n0 * Kp, 16 * nb, Kp, wg);
        wn = wg;
      }
      for (int64_t m0 = 0; m0 < M; m0 += 16) amx_block(n0, nb, m0, M, xv, Kp, wn, scale, bias, y, ldy);
    }
    if (!nomem) tt_cpu_amx_end();
    free(wg);
  }
  free(xv);
  if (nomem) return tt_error(TT_ERR_NOMEM, "qlinear: out of memory for a [64, %lld] weight block", (long long)Kp);
  return TT_OK;
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
  if (amx_ok && M >= TT_QLINEAR_TILE_ROWS) {
    tt_status s = amx_gemm(M, N, xb, Kp, w, NULL, NULL, bias, y, ldy);
    if (s == TT_OK && N % 16) rows_bf16(N / 16 * 16, N, M, xb, Kp, w, bias, y, ldy);
    free(xb);
    return s;
  }
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
tile_i8(const int R, const int G, const int8_t *w, int64_t Kp, const float *xp, int64_t ldxp, float out[8][4]) {
  __m512 acc[8][4];
  for (int r = 0; r < R; r++)
    for (int g = 0; g < G; g++) acc[r][g] = _mm512_setzero_ps();
  for (int64_t k = 0; k < Kp; k += 16) {
    __m512 wv[8];
    if ((k & 63) == 0)   /* the next tile's rows, one 64-byte line each (see tile_bf16) */
      for (int r = 0; r < R; r++) _mm_prefetch((const char *)(w + (R + r) * Kp + k), _MM_HINT_T0);
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
  float o[8][4];
  for (int64_t m = 0; m < M; m += 4) {
    int G = M - m < 4 ? (int)(M - m) : 4;
    const float *xm = xp + m * Kp;
    for (int64_t n = n0; n < n1;) {
      /* one activation row (decoding): 8 weight rows a tile, so more lines are in flight */
      int R = G == 1 && n1 - n >= 8 ? 8 : n1 - n >= 4 ? 4 : 1;
      const int8_t *wn = w + n * Kp;
      if (R == 8) {
        tile_i8(8, 1, wn, Kp, xm, Kp, o);
      } else if (R == 4) {
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
  int64_t tail = 0;
  if (amx_ok && M >= TT_QLINEAR_TILE_ROWS) {
    uint16_t *xb = aligned_alloc(64, (size_t)((M * Kp * 2 + 63) / 64 * 64));
    if (!xb) return tt_error(TT_ERR_NOMEM, "qlinear_i8: out of memory for [%lld, %lld]", (long long)M, (long long)Kp);
    x_to_bf16(M, K, x, ldx, xb, Kp);
    tt_status s = amx_gemm(M, N, xb, Kp, NULL, w, scale, bias, y, ldy);
    free(xb);
    if (s != TT_OK || N % 16 == 0) return s;
    tail = N / 16 * 16;   /* the rows past the last whole block of 16 below */
  }
  /* x padded with zeros to Kp so the kernel runs whole vectors */
  float *xp = aligned_alloc(64, (size_t)((M * Kp * 4 + 63) / 64 * 64));
  if (!xp) return tt_error(TT_ERR_NOMEM, "qlinear_i8: out of memory for [%lld, %lld]", (long long)M, (long long)Kp);
  for (int64_t m = 0; m < M; m++) {
    memcpy(xp + m * Kp, x + m * ldx, sizeof(float) * (size_t)K);
    memset(xp + m * Kp + K, 0, sizeof(float) * (size_t)(Kp - K));
  }
  int64_t nblk = (N - tail + 15) / 16;
  int nt = qthreads((double)M * (N - tail) * Kp);
#pragma omp parallel for schedule(static) num_threads(nt) if (nt > 1)
  for (int64_t b = 0; b < nblk; b++) {
    int64_t n0 = tail + b * 16, n1 = n0 + 16 < N ? n0 + 16 : N;
    rows_i8(n0, n1, M, xp, Kp, w, scale, bias, y, ldy);
  }
  free(xp);
  return TT_OK;
}

/* ---- run-time selection ---- */

static const char *bf16_isa, *i8_isa;   /* what the kernels use, or why there is none */

/* Linux hands a process the 8 KiB AMX tile state only when asked for it */
static bool request_amx(void) {
#if defined(__linux__) && defined(SYS_arch_prctl)
  enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
  return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
  return false;
#endif
}

/* AMX-TILE and AMX-BF16 from CPUID leaf 7 (EDX bits 24 and 22), read directly:
 * __builtin_cpu_supports knows no AMX names in every compiler the build allows */
static bool cpu_has_amx_bf16(void) {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return (d >> 24 & 1) && (d >> 22 & 1);
#else
  return false;
#endif
}

bool tt_cpu_amx_bf16_usable(void) { return cpu_has_amx_bf16() && request_amx(); }

static const char *cpu_qlinear_isa(tt_dtype dt) {
  return dt == TT_BF16 ? bf16_isa : dt == TT_I8 ? i8_isa : "no kernel for this dtype";
}

tt_status tt_cpu_register_qlinear(tt_backend *b) {
  /* TAMING_CPU_ISA=generic: no kernels; =avx512: no AMX */
  const char *env = getenv("TAMING_CPU_ISA");
  bool generic = env && !strcmp(env, "generic"), no_amx = env && !strcmp(env, "avx512");
  __builtin_cpu_init();
  bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  bool bf16 = avx512 && __builtin_cpu_supports("avx512bf16");
  if (generic) {
    bf16_isa = i8_isa = "no kernel (TAMING_CPU_ISA=generic)";
  } else {
    amx_ok = bf16 && !no_amx && tt_cpu_amx_bf16_usable();
    bf16_isa = amx_ok ? "amx-bf16+avx512bf16" : bf16 ? "avx512bf16" : "no avx512bf16 on this CPU";
    i8_isa = avx512 ? (amx_ok ? "amx-bf16+avx512f" : "avx512f") : "no avx512f on this CPU";
    if (bf16) TT_REGISTER_KERNEL(b, qlinear_bf16, cpu_qlinear_bf16);
    if (avx512) TT_REGISTER_KERNEL(b, qlinear_i8, cpu_qlinear_i8);
  }
  TT_REGISTER_KERNEL(b, qlinear_isa, cpu_qlinear_isa);
  return TT_OK;
}

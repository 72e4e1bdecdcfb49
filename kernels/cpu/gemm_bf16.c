/* gemm_bf16.c — CPU matrix products with bf16 operands and f32 accumulation,
 * the GEMMs of bf16 mixed-precision training (taming/ops/gemm.h: gemm_bf16,
 * gemm_bf16_batched, under tt_set_compute_precision(TT_BF16)).
 *
 * The operands arrive in f32 with the same transposes as the f32 gemm kernel
 * and are rounded to bf16 (round to nearest even, as vcvtneps2bf16 does:
 * subnormal inputs count as zero) while they are packed; every product and
 * sum is f32. Both operands are packed once per call into AMX tile order (A as
 * 16-row x 32-k tiles, B as 16 k-pairs x 16 columns in the VNNI order
 * tdpbf16ps wants), each thread packing its share; then
 *   amx:        a 2 x 2 block of 16 x 16 f32 C tiles per pass over k;
 *   avx512bf16: CPUs without AMX (AMD Zen 4): the same packed tiles through
 *               vdpbf16ps, 8 rows x 32 columns of C per pass over k.
 * C blocks are split across OpenMP threads. Debian's OpenBLAS 0.3.21 declares
 * cblas_sbgemm but is built without it (no such symbol in the library), so the
 * choice was between these kernels and f32 sgemm: on the transformer's shapes
 * AMX is 2.3-2.65x sgemm at 2 threads and 3-5x on one (README, "bf16 mixed-precision
 * training"); the AVX512-BF16 kernel is slower than sgemm on the same (AMX) CPU.
 * Every element of C is one f32 sum in a fixed k order per path, so results
 * do not depend on the thread count. TAMING_CPU_ISA=generic registers no
 * kernel (the f32 fallback), TAMING_CPU_ISA=avx512 hides AMX. */
#include "config.h"
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "cpu.h"
#include "amx.h"

#define TT_AVX512BF16 "avx512f,avx512bw,avx512vl,avx512dq,fma,avx512bf16"

static int nthreads(double work) {
#ifdef _OPENMP
  if (omp_in_parallel() || work < 8.0 * TT_CPU_PAR_MIN) return 1;
  return omp_get_max_threads();
#else
  (void)work;
  return 1;
#endif
}

/* mask of the first n (0..16) lanes */
static inline __mmask16 lanes16(int64_t n) {
  return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* ---- packing into AMX tile order ----
 * Ap: [mt][steps][16 rows][32 k] bf16 — one 1 KiB A tile per (m-block, k-step)
 * Bp: [nt][steps][16 k-pairs][16 cols][2] bf16 — one 1 KiB B tile per (n-block, k-step)
 * mt and nt are rounded up to even counts (2 x 2 C tiles); padding is zero. */

/* op(A) [M, K] -> Ap, m-blocks [b0, b1) */
__attribute__((target(TT_AVX512BF16))) static void pack_a(bool ta, int64_t M, int64_t K, const float *A, int64_t lda,
                                                          int64_t steps, int64_t b0, int64_t b1, uint16_t *Ap) {
  for (int64_t mb = b0; mb < b1; mb++)
    for (int64_t s = 0; s < steps; s++) {
      uint16_t *d = Ap + (mb * steps + s) * 512;
      int64_t k0 = s * 32, kl = K - k0;
      if (!ta) {   /* A [M, K]: each tile row is 32 consecutive floats of a row */
        for (int r = 0; r < 16; r++) {
          int64_t m = mb * 16 + r;
          __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
          if (m < M) {
            const float *src = A + m * lda + k0;
            lo = _mm512_maskz_loadu_ps(lanes16(kl), src);
            hi = _mm512_maskz_loadu_ps(lanes16(kl - 16), src + 16);
          }
          _mm512_storeu_si512((void *)(d + r * 32), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
      } else {     /* A stored [K, M]: rows k, k+1 of 16 m -> 16 k-pairs, one to each tile row */
        const __m512i pairs = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7,
                                               22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
        const __m512i row = _mm512_set_epi32(240, 224, 208, 192, 176, 160, 144, 128, 112, 96, 80, 64, 48, 32, 16, 0);
        __mmask16 mm = lanes16(M - mb * 16);
        for (int kp = 0; kp < 16; kp++) {
          int64_t k = k0 + 2 * kp;
          __m512 r0 = k < K ? _mm512_maskz_loadu_ps(mm, A + k * lda + mb * 16) : _mm512_setzero_ps();
          __m512 r1 = k + 1 < K ? _mm512_maskz_loadu_ps(mm, A + (k + 1) * lda + mb * 16) : _mm512_setzero_ps();
          __m512i v = _mm512_permutexvar_epi16(pairs, (__m512i)_mm512_cvtne2ps_pbh(r1, r0));
          _mm512_i32scatter_epi32((void *)(d + 2 * kp), row, v, 4);
        }
      }
    }
}

/* op(B) [K, N] -> Bp, n-blocks [b0, b1) */
__attribute__((target(TT_AVX512BF16))) static void pack_b(bool tb, int64_t K, int64_t N, const float *B, int64_t ldb,
                                                          int64_t steps, int64_t b0, int64_t b1, uint16_t *Bp) {
  /* (row k, row k+1) of 16 columns -> 16 interleaved pairs */
  const __m512i pairs = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                         21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i col = _mm512_set_epi32(240, 224, 208, 192, 176, 160, 144, 128, 112, 96, 80, 64, 48, 32, 16, 0);
  for (int64_t nb = b0; nb < b1; nb++)
    for (int64_t s = 0; s < steps; s++) {
      uint16_t *d = Bp + (nb * steps + s) * 512;
      int64_t k0 = s * 32;
      if (!tb) {   /* B [K, N]: rows k of 16 consecutive columns */
        __mmask16 nm = lanes16(N - nb * 16);
        for (int kp = 0; kp < 16; kp++) {
          int64_t k = k0 + 2 * kp;
          __m512 r0 = k < K ? _mm512_maskz_loadu_ps(nm, B + k * ldb + nb * 16) : _mm512_setzero_ps();
          __m512 r1 = k + 1 < K ? _mm512_maskz_loadu_ps(nm, B + (k + 1) * ldb + nb * 16) : _mm512_setzero_ps();
          __m512i v = (__m512i)_mm512_cvtne2ps_pbh(r1, r0);
          _mm512_storeu_si512((void *)(d + kp * 32), _mm512_permutexvar_epi16(pairs, v));
        }
      } else {     /* B stored [N, K]: a column's 32 k are one stored row; its 16 pairs go to 16 tile rows */
        int64_t kl = K - k0;
        for (int n = 0; n < 16; n++) {
          int64_t j = nb * 16 + n;
          __m512 lo = _mm512_setzero_ps(), hi = _mm512_setzero_ps();
          if (j < N) {
            lo = _mm512_maskz_loadu_ps(lanes16(kl), B + j * ldb + k0);
            hi = _mm512_maskz_loadu_ps(lanes16(kl - 16), B + j * ldb + k0 + 16);
          }
          __m512i v = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
          _mm512_i32scatter_epi32((void *)(d + 2 * n), col, v, 4);
        }
      }
    }
}

/* ---- AMX ---- */

static bool amx_ok;   /* AMX-BF16 present and granted to this process */


/* Long k runs are cut into chunks of KCHUNK steps (512 k), so the two A tiles' panel
 * (32 KiB) stays in L1 while the B panels stream past; partial sums wait in an f32
 * workspace W [mt * 16, nt * 16] between chunks. */
#define KCHUNK 16

#define AMX_C_TILE(t, expr) \
  switch (t) {              \
    case 0: expr(0); break; \
    case 1: expr(1); break; \
    case 2: expr(2); break; \
    default: expr(3); break; \
  }

/* C rows [32 mp, +32) x columns [32 np, +32) over k-steps [s0, s0 + ns): from zero
 * (first) or W, into W or, after the last chunk, into C (the parts inside M x N) */
__attribute__((target("amx-tile,amx-bf16,avx512f"))) static void
amx_block(int64_t mp, int64_t np, int64_t steps, int64_t s0, int64_t ns, bool first, bool last, const uint16_t *Ap,
          const uint16_t *Bp, float *W, int64_t ldw, int64_t M, int64_t N, float alpha, float beta, float *C,
          int64_t ldc) {
  float c[16 * 16] __attribute__((aligned(64)));
  const uint16_t *a0 = Ap + 2 * mp * steps * 512, *a1 = a0 + steps * 512;
  const uint16_t *b0 = Bp + 2 * np * steps * 512, *b1 = b0 + steps * 512;
  float *w0 = W ? W + mp * 32 * ldw + np * 32 : NULL;
  if (first) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  } else {
    _tile_loadd(0, w0, ldw * 4);
    _tile_loadd(1, w0 + 16, ldw * 4);
    _tile_loadd(2, w0 + 16 * ldw, ldw * 4);
    _tile_loadd(3, w0 + 16 * ldw + 16, ldw * 4);
  }
  for (int64_t s = s0; s < s0 + ns; s++) {
    _tile_loadd(4, a0 + s * 512, 64);
    _tile_loadd(6, b0 + s * 512, 64);
    _tile_loadd(5, a1 + s * 512, 64);
    _tile_loadd(7, b1 + s * 512, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  if (!last) {
    _tile_stored(0, w0, ldw * 4);
    _tile_stored(1, w0 + 16, ldw * 4);
    _tile_stored(2, w0 + 16 * ldw, ldw * 4);
    _tile_stored(3, w0 + 16 * ldw + 16, ldw * 4);
    return;
  }
  for (int t = 0; t < 4; t++) {
#define STORE_C(i) _tile_stored(i, c, 64)
    AMX_C_TILE(t, STORE_C)
#undef STORE_C
    int64_t m0 = mp * 32 + (t / 2) * 16, n0 = np * 32 + (t % 2) * 16;
    if (m0 >= M || n0 >= N) continue;
    int64_t mr = M - m0 < 16 ? M - m0 : 16;
    __mmask16 nm = lanes16(N - n0);
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int64_t i = 0; i < mr; i++) {
      float *dst = C + (m0 + i) * ldc + n0;
      __m512 v = _mm512_mul_ps(va, _mm512_load_ps(c + i * 16));
      if (beta != 0.0f) v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(nm, dst), v);
      _mm512_mask_storeu_ps(dst, nm, v);
    }
  }
}

/* ---- AVX512-BF16 (no AMX) ----
 * The same packed operands: a B tile row (16 columns x one k-pair) is one 512-bit
 * vector, an A tile row's k-pair one dword to broadcast, so vdpbf16ps adds two
 * products per lane. 8 rows x 32 columns of C live in 16 registers per pass over k. */

/* C rows [m0, m0 + 8) of m-block mb (r0 = m0 - 16 mb), columns [32 np, +32) */
__attribute__((target(TT_AVX512BF16))) static void avx_block(int64_t mb, int r0, int64_t np, int64_t steps,
                                                             const uint16_t *Ap, const uint16_t *Bp, int64_t M,
                                                             int64_t N, float alpha, float beta, float *C,
                                                             int64_t ldc) {
  __m512 acc[8][2];
  for (int r = 0; r < 8; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  const uint32_t *a = (const uint32_t *)(Ap + mb * steps * 512) + r0 * 16;
  const uint16_t *b0 = Bp + 2 * np * steps * 512, *b1 = b0 + steps * 512;
  for (int64_t s = 0; s < steps; s++)
    for (int kp = 0; kp < 16; kp++) {
      __m512bh v0 = (__m512bh)_mm512_load_si512((const void *)(b0 + s * 512 + kp * 32));
      __m512bh v1 = (__m512bh)_mm512_load_si512((const void *)(b1 + s * 512 + kp * 32));
      for (int r = 0; r < 8; r++) {
        __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[s * 256 + r * 16 + kp]);
        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, v0);
        acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, v1);
      }
    }
  int64_t m0 = mb * 16 + r0;
  __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  for (int r = 0; r < 8 && m0 + r < M; r++)
    for (int h = 0; h < 2; h++) {
      int64_t n0 = np * 32 + h * 16;
      if (n0 >= N) continue;
      __mmask16 nm = lanes16(N - n0);
      float *dst = C + (m0 + r) * ldc + n0;
      __m512 v = _mm512_mul_ps(va, acc[r][h]);
      if (beta != 0.0f) v = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(nm, dst), v);
      _mm512_mask_storeu_ps(dst, nm, v);
    }
}

/* ---- the kernels ---- */

/* pack both operands (each thread its share of blocks), then the C blocks split across threads */
static tt_status gemm_packed(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                             int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  int64_t steps = (K + 31) / 32, mt = (M + 31) / 32 * 2, nt = (N + 31) / 32 * 2;
  size_t abytes = (size_t)(mt * steps) * 1024, bbytes = (size_t)(nt * steps) * 1024;
  bool amx = amx_ok, chunked = amx && steps > KCHUNK;
  int64_t ldw = nt * 16;
  uint16_t *Ap = aligned_alloc(64, abytes), *Bp = aligned_alloc(64, bbytes);
  float *W = chunked ? aligned_alloc(64, sizeof(float) * (size_t)(mt * 16 * ldw)) : NULL;
  if (!Ap || !Bp || (chunked && !W)) {
    free(Ap);
    free(Bp);
    free(W);
    return tt_error(TT_ERR_NOMEM, "gemm_bf16: out of memory packing [%lld, %lld] x [%lld, %lld]", (long long)M,
                    (long long)K, (long long)K, (long long)N);
  }
  int64_t mp = mt / 2, np = nt / 2, m8 = (M + 7) / 8;
  int nth = nthreads((double)M * N * K / 16.0);
#pragma omp parallel num_threads(nth) if (nth > 1)
  {
#ifdef _OPENMP
    int t = omp_get_thread_num(), n = omp_get_num_threads();
#else
    int t = 0, n = 1;
#endif
    int64_t ca = (mt + n - 1) / n, cb = (nt + n - 1) / n;
    int64_t a0 = t * ca < mt ? t * ca : mt, a1 = a0 + ca < mt ? a0 + ca : mt;
    int64_t c0 = t * cb < nt ? t * cb : nt, c1 = c0 + cb < nt ? c0 + cb : nt;
    pack_a(ta, M, K, A, lda, steps, a0, a1, Ap);
    pack_b(tb, K, N, B, ldb, steps, c0, c1, Bp);
#pragma omp barrier
    /* row blocks in contiguous runs per thread, so each keeps its A panel hot */
    if (amx) {
      tt_cpu_amx_begin();
      for (int64_t s0 = 0; s0 < steps; s0 += KCHUNK) {
        int64_t ns = steps - s0 < KCHUNK ? steps - s0 : KCHUNK;
#pragma omp for schedule(static)
        for (int64_t w = 0; w < mp * np; w++)
          amx_block(w / np, w % np, steps, s0, ns, s0 == 0, s0 + ns == steps, Ap, Bp, W, ldw, M, N, alpha, beta, C,
                    ldc);
      }
      tt_cpu_amx_end();
    } else {
#pragma omp for schedule(static)
      for (int64_t w = 0; w < m8 * np; w++) {
        int64_t r8 = w / np;
        avx_block(r8 / 2, (int)(r8 % 2) * 8, w % np, steps, Ap, Bp, M, N, alpha, beta, C, ldc);
      }
    }
  }
  free(Ap);
  free(Bp);
  free(W);
  return TT_OK;
}

static tt_status cpu_gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                               int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (M <= 0 || N <= 0) return TT_OK;
  if (K <= 0) {
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return TT_OK;
  }
  return gemm_packed(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static tt_status cpu_gemm_bf16_batched(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                                       const float *A, int64_t lda, int64_t sa, const float *B, int64_t ldb,
                                       int64_t sb, float beta, float *C, int64_t ldc, int64_t sc, int64_t batch) {
  for (int64_t i = 0; i < batch; i++)
    TT_TRY(cpu_gemm_bf16(ta, tb, M, N, K, alpha, A + i * sa, lda, B + i * sb, ldb, beta, C + i * sc, ldc));
  return TT_OK;
}

static bool have_bf16;   /* a bf16 kernel is registered */

void tt_cpu_gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                      const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (have_bf16 && K > 0 && gemm_packed(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) == TT_OK) return;
  if (have_bf16 && K > 0) tt_error_clear();   /* out of memory for the packed operands: f32 instead */
  tt_cpu_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static const char *isa = "no kernel";

static const char *cpu_gemm_bf16_isa(void) { return isa; }

tt_status tt_cpu_register_gemm_bf16(tt_backend *b) {
  const char *env = getenv("TAMING_CPU_ISA");
  bool generic = env && !strcmp(env, "generic"), no_amx = env && !strcmp(env, "avx512");
  __builtin_cpu_init();
  bool bf16 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
              __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
              __builtin_cpu_supports("avx512bf16");
  if (generic) {
    isa = "no kernel (TAMING_CPU_ISA=generic)";
  } else if (!bf16) {
    isa = "no avx512bf16 on this CPU";
  } else {
    amx_ok = !no_amx && tt_cpu_amx_bf16_usable();
    isa = amx_ok ? "amx-bf16" : "avx512bf16";
    have_bf16 = true;
    TT_REGISTER_KERNEL(b, gemm_bf16, cpu_gemm_bf16);
    TT_REGISTER_KERNEL(b, gemm_bf16_batched, cpu_gemm_bf16_batched);
  }
  TT_REGISTER_KERNEL(b, gemm_bf16_isa, cpu_gemm_bf16_isa);
  return TT_OK;
}

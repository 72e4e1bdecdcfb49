/* softmax_row.h — the row softmax shared by the softmax and attention CPU
 * kernels (private to kernels/cpu).
 *
 * glibc's expf is only vectorised under -ffast-math, which the build does not
 * use (it would also change the reductions' rounding), so softmax carries its
 * own exp written so that `#pragma omp simd` loops vectorise it: Cody-Waite
 * range reduction to |r| <= ln2/2 and the Cephes degree-6 polynomial, within
 * 1.5 ulp of exp over [-86, 88.7]. */
#ifndef TAMING_KERNELS_CPU_SOFTMAX_ROW_H
#define TAMING_KERNELS_CPU_SOFTMAX_ROW_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define TT_SOFTMAX_CHUNK 256

/* exp(x) for x <= 88.7 (softmax only passes x - max <= 0). Results below
 * exp(-86) ~ 4e-38 are flushed to 0 (so -inf gives exactly 0 and no
 * subnormal is produced); NaN stays NaN; above 88.7 gives +inf. */
static inline float tt_cpu_expf(float x) {
  const float lo = -86.0f, hi = 88.7f;
  float xc = x < lo ? lo : (x > hi ? hi : x);
  xc = xc == xc ? xc : 0.0f; /* NaN: keeps the int conversion below defined; restored at the end */
  /* round to nearest by the 1.5*2^23 trick: exact for |fn| < 2^22 */
  float fn = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = xc - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  /* 2^(n-1) * 2 keeps the exponent field in range for n = 128 */
  uint32_t bits = (uint32_t)((int32_t)fn + 126) << 23; /* fn in [-124, 128] */
  float s;
  memcpy(&s, &bits, sizeof s);
  float res = (p * s) * 2.0f;
  return x < lo ? 0.0f : (x > hi ? INFINITY : (x == x ? res : x));
}

/* y = softmax(x) or log_softmax(x) over n values (y may equal x).
 * -inf entries get probability 0 (log-probability -inf). A row with no finite
 * entry (all -inf, or n == 0) has no distribution: y is all 0 (softmax) or all
 * -inf (log_softmax), never NaN. NaN or +inf inputs give NaN, as in PyTorch. */
static inline void tt_cpu_softmax_row(const float *x, float *y, int64_t n, bool log_) {
  float m = -INFINITY;
#pragma omp simd reduction(max : m)
  for (int64_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
  if (m == -INFINITY) {
    float fill = log_ ? -INFINITY : 0.0f;
    for (int64_t i = 0; i < n; i++) y[i] = fill;
    return;
  }
  /* A NaN is skipped by the max above but reaches the sum below. The sum is
   * float within chunks of TT_SOFTMAX_CHUNK (a double accumulator in the exp
   * loop keeps GCC from vectorising it: 15x slower) and double across them;
   * the terms are positive, so a chunk's relative error stays below ~1e-6
   * even where the loop is not vectorised (-O1: one lane sums 256 terms). */
  double sum = 0;
  for (int64_t c0 = 0; c0 < n; c0 += TT_SOFTMAX_CHUNK) {
    int64_t c1 = n - c0 > TT_SOFTMAX_CHUNK ? c0 + TT_SOFTMAX_CHUNK : n;
    float part = 0;
    if (!log_) {
#pragma omp simd reduction(+ : part)
      for (int64_t i = c0; i < c1; i++) {
        float e = tt_cpu_expf(x[i] - m);
        y[i] = e;
        part += e;
      }
    } else {
#pragma omp simd reduction(+ : part)
      for (int64_t i = c0; i < c1; i++) part += tt_cpu_expf(x[i] - m);
    }
    sum += part;
  }
  if (!log_) {
    float inv = (float)(1.0 / sum);
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] *= inv;
  } else {
    float ls = (float)log(sum);
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) - ls;
  }
}

#endif

/* reduce.c — CPU reduction kernel over the middle axis of [outer, n, inner], and
 * the cumulative sum along it. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include "cpu.h"

static tt_status cpu_reduce(tt_reduce_op op, const tt_tensor *x, int64_t outer, int64_t n, int64_t inner,
                            tt_tensor *y) {
  const float *xs = tt_f32(x);
  if (op == TT_REDUCE_SUM || op == TT_REDUCE_MEAN) {
    float *ys = tt_f32(y);
    double scale = op == TT_REDUCE_MEAN ? 1.0 / (double)(n ? n : 1) : 1.0;
    if (inner == 1) {
      if (outer == 1) { /* one row: split it across threads */
        double acc = 0;
#pragma omp parallel for reduction(+ : acc) schedule(static) if (n > TT_CPU_PAR_MIN)
        for (int64_t i = 0; i < n; i++) acc += xs[i];
        ys[0] = (float)(acc * scale);
        return TT_OK;
      }
#pragma omp parallel for schedule(static) if (outer * n > TT_CPU_PAR_MIN)
      for (int64_t o = 0; o < outer; o++) {
        const float *p = xs + o * n;
        double acc = 0;
        for (int64_t i = 0; i < n; i++) acc += p[i];
        ys[o] = (float)(acc * scale);
      }
      return TT_OK;
    }
#pragma omp parallel for schedule(static) if (outer * n * inner > TT_CPU_PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
      double *acc = calloc((size_t)inner, sizeof *acc);
      if (acc) {
        for (int64_t i = 0; i < n; i++) {
          const float *p = xs + (o * n + i) * inner;
          for (int64_t k = 0; k < inner; k++) acc[k] += p[k];
        }
        for (int64_t k = 0; k < inner; k++) ys[o * inner + k] = (float)(acc[k] * scale);
        free(acc);
      } else {
        for (int64_t k = 0; k < inner; k++) ys[o * inner + k] = NAN;
      }
    }
    return TT_OK;
  }
  bool want_max = op == TT_REDUCE_MAX || op == TT_REDUCE_ARGMAX;
  bool want_idx = op == TT_REDUCE_ARGMAX || op == TT_REDUCE_ARGMIN;
  if ((unsigned)op >= TT_REDUCE_COUNT) return tt_error(TT_ERR_INVALID, "reduce: unknown op %d", (int)op);
#pragma omp parallel for schedule(static) if (outer * n * inner > TT_CPU_PAR_MIN)
  for (int64_t o = 0; o < outer; o++) {
    for (int64_t k = 0; k < inner; k++) {
      const float *p = xs + o * n * inner + k;
      float best = n ? p[0] : NAN;
      int64_t bi = 0;
      for (int64_t i = 1; i < n; i++) {
        float v = p[i * inner];
        /* NaN wins (as in PyTorch); ties keep the first index */
        if (isnan(best)) break;
        if (isnan(v) || (want_max ? v > best : v < best)) { best = v; bi = i; }
      }
      if (want_idx) tt_i64(y)[o * inner + k] = bi;
      else tt_f32(y)[o * inner + k] = best;
    }
  }
  return TT_OK;
}

static tt_status cpu_cumsum(const tt_tensor *x, int64_t outer, int64_t n, int64_t inner, bool reverse, tt_tensor *y) {
  const float *xs = tt_f32(x);
  float *ys = tt_f32(y);
#pragma omp parallel for schedule(static) if (outer * inner > 1 && outer * n * inner > TT_CPU_PAR_MIN)
  for (int64_t line = 0; line < outer * inner; line++) {
    int64_t o = line / inner, q = line % inner;
    double acc = 0;
    for (int64_t t = 0; t < n; t++) {
      int64_t j = reverse ? n - 1 - t : t;
      int64_t at = (o * n + j) * inner + q;
      acc += xs[at];
      ys[at] = (float)acc;
    }
  }
  return TT_OK;
}

tt_status tt_cpu_register_reduce(tt_backend *b) {
  TT_REGISTER_KERNEL(b, reduce, cpu_reduce);
  TT_REGISTER_KERNEL(b, cumsum, cpu_cumsum);
  return TT_OK;
}

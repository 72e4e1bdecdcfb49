/* softmax.c — CPU kernels of softmax and log-softmax over the rows of a
 * contiguous [N, D] tensor (the op moves the softmax dim last), forward and
 * backward. Rows run in parallel; each row's loops vectorise. */
#include "config.h"
#include <math.h>
#include "cpu.h"
#include "softmax_row.h"

static tt_status rows_of(const char *op, const tt_tensor *x, int64_t *N, int64_t *D) {
  if (x->ndim != 2)
    return tt_error(TT_ERR_INVALID, "%s: the cpu kernel takes rows [N, D], found %d dims", op, x->ndim);
  *N = x->shape[0];
  *D = x->shape[1];
  return TT_OK;
}

/* x [N, D] -> y [N, D] */
static tt_status cpu_softmax_fwd(bool log_, const tt_tensor *x, tt_tensor *y) {
  int64_t N, D;
  TT_TRY(rows_of("softmax_fwd", x, &N, &D));
  const float *xs = tt_f32(x);
  float *ys = tt_f32(y);
#pragma omp parallel for schedule(static) if (N * D > TT_CPU_PAR_MIN)
  for (int64_t n = 0; n < N; n++) tt_cpu_softmax_row(xs + n * D, ys + n * D, D, log_);
  return TT_OK;
}

/* softmax:     gx = y * (gy - sum(y * gy))
 * log_softmax: gx = gy - exp(y) * sum(gy)
 * A row without a finite input (y all 0, resp. all -inf) gets gx = 0: the
 * softmax formula gives that by itself, log_softmax tests for it. */
static tt_status cpu_softmax_bwd(bool log_, const tt_tensor *y, const tt_tensor *gy, tt_tensor *gx) {
  int64_t N, D;
  TT_TRY(rows_of("softmax_bwd", y, &N, &D));
  const float *ys = tt_f32(y), *gs = tt_f32(gy);
  float *gxs = tt_f32(gx);
#pragma omp parallel for schedule(static) if (N * D > TT_CPU_PAR_MIN)
  for (int64_t n = 0; n < N; n++) {
    const float *yr = ys + n * D, *gr = gs + n * D;
    float *out = gxs + n * D;
    double acc = 0;
    if (!log_) {
#pragma omp simd reduction(+ : acc)
      for (int64_t i = 0; i < D; i++) acc += (double)yr[i] * gr[i];
      float dot = (float)acc;
#pragma omp simd
      for (int64_t i = 0; i < D; i++) out[i] = yr[i] * (gr[i] - dot);
    } else {
      float m = -INFINITY;
#pragma omp simd reduction(+ : acc) reduction(max : m)
      for (int64_t i = 0; i < D; i++) {
        acc += gr[i];
        m = yr[i] > m ? yr[i] : m;
      }
      if (m == -INFINITY) {
        for (int64_t i = 0; i < D; i++) out[i] = 0.0f;
        continue;
      }
      float sum = (float)acc;
#pragma omp simd
      for (int64_t i = 0; i < D; i++) out[i] = gr[i] - tt_cpu_expf(yr[i]) * sum;
    }
  }
  return TT_OK;
}

tt_status tt_cpu_register_softmax(tt_backend *b) {
  TT_REGISTER_KERNEL(b, softmax_fwd, cpu_softmax_fwd);
  TT_REGISTER_KERNEL(b, softmax_bwd, cpu_softmax_bwd);
  return TT_OK;
}

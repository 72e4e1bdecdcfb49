/* loss.c — CPU kernels of the fused cross-entropy (the transformer's loss over
 * the codebook vocabulary), forward and backward.
 *
 * The log-sum-exp subtracts the row maximum before exponentiating, so large
 * logits neither overflow nor lose the small terms; the sum of exponentials is
 * accumulated in double because V reaches 16384 codes. The backward re-forms
 * softmax from the saved lse instead of storing an [N, V] probability matrix. */
#include "config.h"
#include <math.h>
#include "cpu.h"

static tt_status check_targets(const char *op, const int64_t *t, int64_t N, int64_t V) {
  for (int64_t n = 0; n < N; n++)
    if (t[n] < 0 || t[n] >= V)
      return tt_error(TT_ERR_INVALID, "%s: target %lld of row %lld is outside [0, V) for V = %lld", op,
                      (long long)t[n], (long long)n, (long long)V);
  return TT_OK;
}

// logits [N, V], target [N] -> loss_rows [N], lse [N]
static tt_status cpu_cross_entropy_fwd(const tt_tensor *logits, const tt_tensor *target, tt_tensor *loss_rows,
                                       tt_tensor *lse) {
  int64_t N = logits->shape[0], V = logits->shape[1];
  const int64_t *t = tt_i64(target);
  TT_TRY(check_targets("cross_entropy", t, N, V));
  const float *x = tt_f32(logits);
  float *lr = tt_f32(loss_rows), *ls = tt_f32(lse);
#pragma omp parallel for schedule(static) if (N * V > TT_CPU_PAR_MIN && N > 1)
  for (int64_t n = 0; n < N; n++) {
    const float *row = x + n * V;
    float m = row[0];
    for (int64_t v = 1; v < V; v++) m = row[v] > m ? row[v] : m;
    double s = 0;
    for (int64_t v = 0; v < V; v++) s += expf(row[v] - m);
    double l = (double)m + log(s);
    ls[n] = (float)l;
    lr[n] = (float)(l - (double)row[t[n]]);
  }
  return TT_OK;
}

// glogits[n, v] = scale[n] * (softmax(logits)[n, v] - [v == target[n]])
static tt_status cpu_cross_entropy_bwd(const tt_tensor *logits, const tt_tensor *target, const tt_tensor *lse,
                                       const tt_tensor *scale, tt_tensor *glogits) {
  int64_t N = logits->shape[0], V = logits->shape[1];
  const int64_t *t = tt_i64(target);
  TT_TRY(check_targets("cross_entropy backward", t, N, V));
  const float *x = tt_f32(logits), *ls = tt_f32(lse), *sc = tt_f32(scale);
  float *g = tt_f32(glogits);
#pragma omp parallel for schedule(static) if (N * V > TT_CPU_PAR_MIN && N > 1)
  for (int64_t n = 0; n < N; n++) {
    const float *row = x + n * V;
    float *grow = g + n * V;
    float l = ls[n], s = sc[n];
    for (int64_t v = 0; v < V; v++) grow[v] = s * expf(row[v] - l);
    grow[t[n]] -= s;
  }
  return TT_OK;
}

tt_status tt_cpu_register_loss(tt_backend *b) {
  TT_REGISTER_KERNEL(b, cross_entropy_fwd, cpu_cross_entropy_fwd);
  TT_REGISTER_KERNEL(b, cross_entropy_bwd, cpu_cross_entropy_bwd);
  return TT_OK;
}

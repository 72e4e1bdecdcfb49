/* optim.c — CPU kernel of the fused Adam / AdamW update (one pass over the
 * parameter, its gradient and both moments; no temporaries).
 *
 * The arithmetic follows PyTorch's single-tensor Adam step term by term, so a
 * training run tracks the reference's within fp32 rounding: the bias
 * corrections and the step size are formed in double on the host side of the
 * loop (Python floats in the reference), everything per element in float. */
#include "config.h"
#include <math.h>
#include "cpu.h"

static tt_status cpu_adam_step(const tt_adam_params *p, tt_tensor *param, const tt_tensor *grad, tt_tensor *m,
                               tt_tensor *v) {
  int64_t n = tt_tensor_numel(param);
  float *w = tt_f32(param), *ms = tt_f32(m), *vs = tt_f32(v);
  const float *g = tt_f32(grad);
  const double t = (double)p->step;
  const double bc1 = 1.0 - pow((double)p->beta1, t), bc2 = 1.0 - pow((double)p->beta2, t);
  const float step_size = (float)((double)p->lr / bc1);
  const float bc2_sqrt = (float)sqrt(bc2);
  const float b1 = p->beta1, b2 = p->beta2, eps = p->eps, wd = p->weight_decay;
  const float one_b1 = (float)(1.0 - (double)p->beta1), one_b2 = (float)(1.0 - (double)p->beta2);
  const bool decoupled = p->decoupled && wd != 0.0f, coupled = !p->decoupled && wd != 0.0f;
  const float decay = (float)(1.0 - (double)p->lr * (double)wd);
#pragma omp parallel for simd schedule(static) if (n > TT_CPU_PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i], wi = w[i];
    if (decoupled) wi *= decay;
    if (coupled) gi += wd * wi;
    float mi = b1 * ms[i] + one_b1 * gi;
    float vi = b2 * vs[i] + one_b2 * (gi * gi);
    float denom = sqrtf(vi) / bc2_sqrt + eps;
    ms[i] = mi;
    vs[i] = vi;
    w[i] = wi - step_size * (mi / denom);
  }
  return TT_OK;
}

tt_status tt_cpu_register_optim(tt_backend *b) {
  TT_REGISTER_KERNEL(b, adam_step, cpu_adam_step);
  return TT_OK;
}

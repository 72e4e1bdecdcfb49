/* optim.c — CPU kernels of the fused Adam / AdamW update: one parameter
 * (adam_step) or all of them in one pass (adam_step_multi, PyTorch's
 * fused/foreach path). No temporaries: each element of the parameter, its
 * gradient and both moments is read and written once.
 *
 * The arithmetic follows PyTorch's single-tensor Adam step term by term, so a
 * training run tracks the reference's within fp32 rounding: the bias
 * corrections and the step size are formed in double on the host side of the
 * loop (Python floats in the reference), everything per element in float. Both
 * kernels run the same element function, so they agree bit for bit. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "cpu.h"

/* What one tensor's update needs, formed once per step. */
typedef struct {
  float b1, b2, one_b1, one_b2, eps, wd, step_size, bc2_sqrt, decay;
  bool decoupled, coupled;
} adam_consts;

static adam_consts consts_of(const tt_adam_params *p) {
  const double t = (double)p->step;
  const double bc1 = 1.0 - pow((double)p->beta1, t), bc2 = 1.0 - pow((double)p->beta2, t);
  adam_consts c;
  c.step_size = (float)((double)p->lr / bc1);
  c.bc2_sqrt = (float)sqrt(bc2);
  c.b1 = p->beta1;
  c.b2 = p->beta2;
  c.eps = p->eps;
  c.wd = p->weight_decay;
  c.one_b1 = (float)(1.0 - (double)p->beta1);
  c.one_b2 = (float)(1.0 - (double)p->beta2);
  c.decoupled = p->decoupled && c.wd != 0.0f;
  c.coupled = !p->decoupled && c.wd != 0.0f;
  c.decay = (float)(1.0 - (double)p->lr * (double)c.wd);
  return c;
}

/* elements [lo, hi) of one tensor */
static inline void adam_range(const adam_consts *c, float *restrict w, const float *restrict g, float *restrict ms,
                              float *restrict vs, int64_t lo, int64_t hi) {
  const float b1 = c->b1, b2 = c->b2, one_b1 = c->one_b1, one_b2 = c->one_b2, eps = c->eps, wd = c->wd;
  const float step_size = c->step_size, bc2_sqrt = c->bc2_sqrt, decay = c->decay;
  const bool decoupled = c->decoupled, coupled = c->coupled;
#pragma omp simd
  for (int64_t i = lo; i < hi; i++) {
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
}

static tt_status cpu_adam_step(const tt_adam_params *p, tt_tensor *param, const tt_tensor *grad, tt_tensor *m,
                               tt_tensor *v) {
  int64_t n = tt_tensor_numel(param);
  float *w = tt_f32(param), *ms = tt_f32(m), *vs = tt_f32(v);
  const float *g = tt_f32(grad);
  const adam_consts c = consts_of(p);
  /* blocks of 4096 elements, so that each thread runs the vectorised element loop */
  const int64_t nb = (n + 4095) / 4096;
#pragma omp parallel for schedule(static) if (n > TT_CPU_PAR_MIN)
  for (int64_t b = 0; b < nb; b++) adam_range(&c, w, g, ms, vs, b * 4096, b + 1 < nb ? (b + 1) * 4096 : n);
  return TT_OK;
}

/* All parameters at once: the concatenation of their elements is cut into one
 * contiguous range per thread (boundaries rounded to 16 elements), and each
 * thread walks the tensors its range covers. */
static tt_status cpu_adam_step_multi(int n, const tt_adam_params *hp, tt_tensor *const *param,
                                     tt_tensor *const *grad, tt_tensor *const *m, tt_tensor *const *v) {
  adam_consts *c = malloc(sizeof *c * (size_t)n);
  int64_t *start = malloc(sizeof *start * ((size_t)n + 1));   /* start[i]: offset of tensor i in the concatenation */
  if (!c || !start) {
    free(c);
    free(start);
    return tt_error(TT_ERR_NOMEM, "adam: out of memory for %d parameters", n);
  }
  start[0] = 0;
  for (int i = 0; i < n; i++) {
    c[i] = consts_of(&hp[i]);
    start[i + 1] = start[i] + tt_tensor_numel(param[i]);
  }
  const int64_t total = start[n];
#pragma omp parallel if (total > TT_CPU_PAR_MIN)
  {
    int nt = 1, t = 0;
#ifdef _OPENMP
    nt = omp_get_num_threads();
    t = omp_get_thread_num();
#endif
    int64_t lo = (total * t / nt) & ~(int64_t)15, hi = t + 1 == nt ? total : (total * (t + 1) / nt) & ~(int64_t)15;
    /* the first tensor that ends after lo */
    int a = 0, b = n;
    while (a < b) {
      int mid = (a + b) / 2;
      if (start[mid + 1] <= lo) a = mid + 1;
      else b = mid;
    }
    for (int i = a; i < n && start[i] < hi; i++) {
      int64_t s = lo > start[i] ? lo - start[i] : 0, e = (hi < start[i + 1] ? hi : start[i + 1]) - start[i];
      adam_range(&c[i], tt_f32(param[i]), tt_f32(grad[i]), tt_f32(m[i]), tt_f32(v[i]), s, e);
    }
  }
  free(c);
  free(start);
  return TT_OK;
}

tt_status tt_cpu_register_optim(tt_backend *b) {
  TT_REGISTER_KERNEL(b, adam_step, cpu_adam_step);
  TT_REGISTER_KERNEL(b, adam_step_multi, cpu_adam_step_multi);
  return TT_OK;
}

/* optim.cu — CUDA kernel of the fused Adam / AdamW update (one pass over the
 * parameter, its gradient and both moments).
 *
 * PyTorch's single-tensor Adam step term by term: bias corrections and the step
 * size are formed in double on the host (Python floats in the reference),
 * everything per element in float — the same constants the CPU kernel uses. */
#include "config.h"
#include <math.h>
#include "cuda_backend.h"

typedef struct {
  float b1, b2, one_b1, one_b2, eps, wd, step_size, bc2_sqrt, decay;
  bool decoupled, coupled;
} adam_consts;

__global__ void k_adam(adam_consts c, float *w, const float *g, float *m, float *v, int64_t n) {
  TT_CUDA_LOOP(i, n) {
    float gi = g[i], wi = w[i];
    if (c.decoupled) wi *= c.decay;
    if (c.coupled) gi += c.wd * wi;
    float mi = c.b1 * m[i] + c.one_b1 * gi;
    float vi = c.b2 * v[i] + c.one_b2 * (gi * gi);
    float denom = sqrtf(vi) / c.bc2_sqrt + c.eps;
    m[i] = mi;
    v[i] = vi;
    w[i] = wi - c.step_size * (mi / denom);
  }
}

// param, grad, m, v [n] (contiguous f32), updated in place
static tt_status cu_adam_step(const tt_adam_params *p, tt_tensor *param, const tt_tensor *grad, tt_tensor *m,
                              tt_tensor *v) {
  int64_t n = tt_tensor_numel(param);
  if (n == 0) return TT_OK;
  double t = (double)p->step, bc1 = 1.0 - pow((double)p->beta1, t), bc2 = 1.0 - pow((double)p->beta2, t);
  adam_consts c;
  c.b1 = p->beta1;
  c.b2 = p->beta2;
  c.one_b1 = (float)(1.0 - (double)p->beta1);
  c.one_b2 = (float)(1.0 - (double)p->beta2);
  c.eps = p->eps;
  c.wd = p->weight_decay;
  c.step_size = (float)((double)p->lr / bc1);
  c.bc2_sqrt = (float)sqrt(bc2);
  c.decay = (float)(1.0 - (double)p->lr * (double)p->weight_decay);
  c.decoupled = p->decoupled && p->weight_decay != 0.0f;
  c.coupled = !p->decoupled && p->weight_decay != 0.0f;
  k_adam<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(c, tt_cuda_ptr<float>(param),
                                                                    tt_cuda_ptr<float>(grad), tt_cuda_ptr<float>(m),
                                                                    tt_cuda_ptr<float>(v), n);
  return tt_cuda_check_launch("adam_step");
}

tt_status tt_cuda_register_optim(tt_backend *b) {
  TT_REGISTER_KERNEL(b, adam_step, cu_adam_step);
  return TT_OK;
}

/* optim.cu — CUDA kernels of the fused Adam / AdamW update: one parameter
 * (adam_step) or all of them (adam_step_multi: up to ADAM_BATCH tensors per
 * launch, their pointers and constants passed by value, as PyTorch's
 * multi_tensor_apply does).
 *
 * PyTorch's single-tensor Adam step term by term: bias corrections and the step
 * size are formed in double on the host (Python floats in the reference),
 * everything per element in float — the same constants the CPU kernel uses.
 * Both kernels run the same element function. */
#include "config.h"
#include <math.h>
#include "cuda_backend.h"

typedef struct {
  float b1, b2, one_b1, one_b2, eps, wd, step_size, bc2_sqrt, decay;
  bool decoupled, coupled;
} adam_consts;

static adam_consts consts_of(const tt_adam_params *p) {
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
  return c;
}

__device__ __forceinline__ void adam_element(const adam_consts &c, float *w, const float *g, float *m, float *v,
                                             int64_t i) {
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

__global__ void k_adam(adam_consts c, float *w, const float *g, float *m, float *v, int64_t n) {
  TT_CUDA_LOOP(i, n) adam_element(c, w, g, m, v, i);
}

// param, grad, m, v [n] (contiguous f32), updated in place
static tt_status cu_adam_step(const tt_adam_params *p, tt_tensor *param, const tt_tensor *grad, tt_tensor *m,
                              tt_tensor *v) {
  int64_t n = tt_tensor_numel(param);
  if (n == 0) return TT_OK;
  adam_consts c = consts_of(p);
  k_adam<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(c, tt_cuda_ptr<float>(param),
                                                                    tt_cuda_ptr<float>(grad), tt_cuda_ptr<float>(m),
                                                                    tt_cuda_ptr<float>(v), n);
  return tt_cuda_check_launch("adam_step");
}

/* One launch's tensors: kernel arguments stay under 4 KiB. */
#define ADAM_BATCH 24
typedef struct {
  float *w[ADAM_BATCH], *m[ADAM_BATCH], *v[ADAM_BATCH];
  const float *g[ADAM_BATCH];
  int64_t start[ADAM_BATCH + 1];   // offsets of each tensor in the batch's concatenation
  adam_consts c[ADAM_BATCH];
  int n;
} adam_batch;

__global__ void k_adam_multi(adam_batch b) {
  const int64_t total = b.start[b.n];
  int t = 0;
  // a thread's indices only grow, so its tensor cursor only moves forward
  TT_CUDA_LOOP(i, total) {
    while (b.start[t + 1] <= i) t++;
    const int64_t j = i - b.start[t];
    adam_element(b.c[t], b.w[t], b.g[t], b.m[t], b.v[t], j);
  }
}

static tt_status cu_adam_step_multi(int n, const tt_adam_params *hp, tt_tensor *const *param,
                                    tt_tensor *const *grad, tt_tensor *const *m, tt_tensor *const *v) {
  adam_batch b;
  b.n = 0;
  b.start[0] = 0;
  for (int i = 0; i <= n; i++) {
    if (b.n == ADAM_BATCH || (i == n && b.n > 0)) {
      int64_t total = b.start[b.n];
      k_adam_multi<<<tt_cuda_grid(total), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(b);
      TT_TRY(tt_cuda_check_launch("adam_step_multi"));
      b.n = 0;
    }
    if (i == n) break;
    int64_t numel = tt_tensor_numel(param[i]);
    if (numel == 0) continue;
    int k = b.n++;
    b.w[k] = tt_cuda_ptr<float>(param[i]);
    b.g[k] = tt_cuda_ptr<float>(grad[i]);
    b.m[k] = tt_cuda_ptr<float>(m[i]);
    b.v[k] = tt_cuda_ptr<float>(v[i]);
    b.c[k] = consts_of(&hp[i]);
    b.start[k + 1] = b.start[k] + numel;
  }
  return TT_OK;
}

tt_status tt_cuda_register_optim(tt_backend *b) {
  TT_REGISTER_KERNEL(b, adam_step, cu_adam_step);
  TT_REGISTER_KERNEL(b, adam_step_multi, cu_adam_step_multi);
  return TT_OK;
}

/* ops/optim.h — fused optimizer updates (Adam, AdamW), in place, no autograd. */
#ifndef TAMING_OPS_OPTIM_H
#define TAMING_OPS_OPTIM_H
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tt_adam_params {
  float lr, beta1, beta2, eps;
  float weight_decay;
  bool decoupled;   /* AdamW (decay the weight) instead of L2 added to the gradient */
  int64_t step;     /* 1 for the first update (bias correction) */
} tt_adam_params;

/* Kernel: param, grad, m, v contiguous f32 of equal numel; PyTorch's update:
 *   decoupled: p *= 1 - lr*wd;  else g += wd*p
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps) */
typedef tt_status (*tt_adam_step_fn)(const tt_adam_params *p, tt_tensor *param,
                                     const tt_tensor *grad, tt_tensor *m, tt_tensor *v);

TT_API tt_status tt_adam_step(const tt_adam_params *p, tt_tensor *param, tt_tensor *grad,
                              tt_tensor *m, tt_tensor *v);

/* Kernel: the same update for n parameters in one pass (PyTorch's fused /
 * foreach Adam): hp[i], param[i], grad[i], m[i], v[i] as above, every tensor
 * contiguous f32, on one device. The elements of all tensors are split evenly
 * over the threads; per element the arithmetic is adam_step's. */
typedef tt_status (*tt_adam_step_multi_fn)(int n, const tt_adam_params *hp, tt_tensor *const *param,
                                           tt_tensor *const *grad, tt_tensor *const *m, tt_tensor *const *v);

/* n updates in one call: every parameter with its own hyperparameters and
 * step (parameter groups, lazily created state). Gradients are only read (a
 * strided one is copied first). Checks every tensor before updating any, so a
 * bad argument leaves all parameters as they were. */
TT_API tt_status tt_adam_step_multi(int n, const tt_adam_params *hp, tt_tensor *const *param,
                                    tt_tensor *const *grad, tt_tensor *const *m, tt_tensor *const *v);

#ifdef __cplusplus
}
#endif
#endif

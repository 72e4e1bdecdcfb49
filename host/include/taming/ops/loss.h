/* ops/loss.h — the losses of both stages: L1, MSE, cross-entropy, BCE with logits. */
#ifndef TAMING_OPS_LOSS_H
#define TAMING_OPS_LOSS_H
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kernels:
 *   cross_entropy_fwd: logits [N, V], target i64 [N] -> loss_rows [N] = lse - logit[target],
 *                      lse [N] saved. A target outside [0, V) is an error.
 *   cross_entropy_bwd: glogits[n, v] = scale[n] * (softmax(logits)[n, v] - [v == target[n]]). */
typedef tt_status (*tt_cross_entropy_fwd_fn)(const tt_tensor *logits, const tt_tensor *target,
                                             tt_tensor *loss_rows, tt_tensor *lse);
typedef tt_status (*tt_cross_entropy_bwd_fn)(const tt_tensor *logits, const tt_tensor *target,
                                             const tt_tensor *lse, const tt_tensor *scale,
                                             tt_tensor *glogits);

/* mean |a - b| */
TT_API tt_tensor *tt_l1_loss(tt_tensor *a, tt_tensor *b);
/* mean (a - b)^2 */
TT_API tt_tensor *tt_mse_loss(tt_tensor *a, tt_tensor *b);
/* logits [N, V], target i64 [N] -> mean over N (0-dim). */
TT_API tt_tensor *tt_cross_entropy(tt_tensor *logits, tt_tensor *target);
/* mean of max(x,0) - x*t + log(1 + exp(-|x|)) */
TT_API tt_tensor *tt_bce_with_logits(tt_tensor *logits, tt_tensor *target);

#ifdef __cplusplus
}
#endif
#endif

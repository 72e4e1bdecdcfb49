/* ops/softmax.h — softmax and log-softmax along a dim. */
#ifndef TAMING_OPS_SOFTMAX_H
#define TAMING_OPS_SOFTMAX_H
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kernels on contiguous rows x [N, D] (the op moves the dim last):
 *   softmax_fwd: y = softmax or log_softmax of each row.
 *   softmax_bwd: gx from y and gy.
 * -inf inputs are allowed: probability 0, log-probability -inf. A row with no
 * finite entry (all -inf: a fully masked row) has no distribution; instead of
 * NaN it gives all 0 (softmax) or all -inf (log_softmax), and its gradient is
 * 0. NaN or +inf inputs give NaN, as in PyTorch. */
typedef tt_status (*tt_softmax_fwd_fn)(bool log, const tt_tensor *x, tt_tensor *y);
typedef tt_status (*tt_softmax_bwd_fn)(bool log, const tt_tensor *y, const tt_tensor *gy,
                                       tt_tensor *gx);

/* Along dim (negative counts from the end); the result has x's shape and is
 * contiguous. See above for -inf and fully masked rows. */
TT_API tt_tensor *tt_softmax(tt_tensor *x, int dim);
TT_API tt_tensor *tt_log_softmax(tt_tensor *x, int dim);

#ifdef __cplusplus
}
#endif
#endif

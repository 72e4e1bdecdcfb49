/* ops/reduce.h — sums, means, max/argmax over dims, and the cumulative sum. */
#ifndef TAMING_OPS_REDUCE_H
#define TAMING_OPS_REDUCE_H
#include "taming/tensor.h"

typedef enum tt_reduce_op {
  TT_REDUCE_SUM = 0,
  TT_REDUCE_MEAN,
  TT_REDUCE_MAX,
  TT_REDUCE_MIN,
  TT_REDUCE_ARGMAX, /* output i64; first maximum */
  TT_REDUCE_ARGMIN, /* output i64; first minimum */
  TT_REDUCE_COUNT
} tt_reduce_op;

/* Kernel: x contiguous, viewed as [outer, n, inner]; y contiguous [outer, inner]
 * (f32, or i64 for ARG*). Sums accumulate in double on the CPU. */
typedef tt_status (*tt_reduce_fn)(tt_reduce_op op, const tt_tensor *x, int64_t outer, int64_t n,
                                  int64_t inner, tt_tensor *y);

/* Kernel: inclusive cumulative sum of contiguous f32 x viewed as [outer, n, inner]
 * along n (from the end when reverse) into y of the same shape; accumulates in double. */
typedef tt_status (*tt_cumsum_fn)(const tt_tensor *x, int64_t outer, int64_t n, int64_t inner, bool reverse,
                                  tt_tensor *y);

/* Over all elements -> 0-dim tensor. */
TT_API tt_tensor *tt_sum(tt_tensor *x);
TT_API tt_tensor *tt_mean(tt_tensor *x);
/* Over the listed dims. */
TT_API tt_tensor *tt_sum_dims(tt_tensor *x, int n, const int *dims, bool keepdim);
TT_API tt_tensor *tt_mean_dims(tt_tensor *x, int n, const int *dims, bool keepdim);
TT_API tt_tensor *tt_sum_dim(tt_tensor *x, int dim, bool keepdim);
TT_API tt_tensor *tt_mean_dim(tt_tensor *x, int dim, bool keepdim);
/* Sums a broadcast result back to shape (the backward of broadcasting). */
TT_API tt_tensor *tt_sum_to(tt_tensor *x, int ndim, const int64_t *shape);
/* y[..., i, ...] = sum of x[..., 0..i, ...] along dim; differentiable. */
TT_API tt_tensor *tt_cumsum(tt_tensor *x, int dim);
/* No gradient. */
TT_API tt_tensor *tt_max_dim(tt_tensor *x, int dim, bool keepdim);
TT_API tt_tensor *tt_argmax(tt_tensor *x, int dim, bool keepdim);
TT_API tt_tensor *tt_argmin(tt_tensor *x, int dim, bool keepdim);
#endif

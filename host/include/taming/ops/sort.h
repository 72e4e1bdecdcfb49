/* ops/sort.h — sort and top-k along one dim (f32), with the indices they came
 * from. Both are stable: equal values keep their index order; NaN sorts as the
 * largest value, as in PyTorch. No gradient (a sampler filters with the
 * indices, it does not differentiate through them). */
#ifndef TAMING_OPS_SORT_H
#define TAMING_OPS_SORT_H
#include "taming/tensor.h"

/* Kernel: x contiguous f32 viewed as [outer, n, inner]; the k first entries of
 * each (outer, inner) line in sorted order go to values f32 and indices i64,
 * both contiguous [outer, k, inner] (1 <= k <= n). */
typedef tt_status (*tt_sort_fn)(const tt_tensor *x, int64_t outer, int64_t n, int64_t inner, int64_t k,
                                bool descending, tt_tensor *values, tt_tensor *indices);

/* x sorted along dim: values like x, indices i64 like x. */
TT_API tt_status tt_sort(tt_tensor *x, int dim, bool descending, tt_tensor **values, tt_tensor **indices);
/* The k largest (largest) or smallest entries along dim, in sorted order:
 * values and indices have x's shape with k at dim. */
TT_API tt_status tt_topk(tt_tensor *x, int64_t k, int dim, bool largest, tt_tensor **values, tt_tensor **indices);
#endif

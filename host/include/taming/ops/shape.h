/* ops/shape.h — views and rearrangements: reshape, permute, slice, select,
 * (un)squeeze, expand, cat, pad. Views share storage; all are differentiable. */
#ifndef TAMING_OPS_SHAPE_H
#define TAMING_OPS_SHAPE_H
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One dim may be -1 (inferred). A view when t's layout allows it, else a copy. */
TT_API tt_tensor *tt_reshape(tt_tensor *t, int ndim, const int64_t *shape);
TT_API tt_tensor *tt_flatten(tt_tensor *t, int start_dim, int end_dim);
TT_API tt_tensor *tt_permute(tt_tensor *t, const int *perm);
TT_API tt_tensor *tt_transpose(tt_tensor *t, int d0, int d1);
/* Elements start, start+step, ... < end along dim (negative start/end count from the end). */
TT_API tt_tensor *tt_slice(tt_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
/* Drops dim, keeping index. */
TT_API tt_tensor *tt_select(tt_tensor *t, int dim, int64_t index);
TT_API tt_tensor *tt_unsqueeze(tt_tensor *t, int dim);
TT_API tt_tensor *tt_squeeze(tt_tensor *t, int dim);
/* Broadcast view (stride 0) to shape; -1 keeps a dim. */
TT_API tt_tensor *tt_expand(tt_tensor *t, int ndim, const int64_t *shape);
TT_API tt_tensor *tt_cat(int n, tt_tensor *const *ts, int dim);
/* Constant padding of the last two dims: pads = {left, right, top, bottom}. */
TT_API tt_tensor *tt_pad2d(tt_tensor *t, const int64_t pads[4], double value);
/* Repeats the tensor along each dim (like torch.Tensor.repeat). */
TT_API tt_tensor *tt_repeat(tt_tensor *t, int ndim, const int64_t *reps);

#ifdef __cplusplus
}
#endif
#endif

/* ops/copy.h — strided copies, dtype casts and fills (the data movement every op needs). */
#ifndef TAMING_OPS_COPY_H
#define TAMING_OPS_COPY_H
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kernels (contract for every backend):
 *   copy_strided: dst[i] = (dst dtype) src[i] over dst's shape; both may be strided,
 *                 src may broadcast (stride 0); same device.
 *   fill:         every element of a contiguous t = value. */
typedef tt_status (*tt_copy_strided_fn)(tt_tensor *dst, const tt_tensor *src);
typedef tt_status (*tt_fill_fn)(tt_tensor *t, double value);

/* In place, no autograd. src broadcasts to dst's shape; dtypes may differ. */
TT_API tt_status tt_copy_(tt_tensor *dst, const tt_tensor *src);
TT_API tt_status tt_fill_(tt_tensor *t, double value);
/* A contiguous copy with the same values (reference to t if already contiguous). Differentiable. */
TT_API tt_tensor *tt_contiguous(tt_tensor *t);
/* A fresh contiguous copy. Differentiable. */
TT_API tt_tensor *tt_clone(tt_tensor *t);
/* Values converted to dtype (float<->int, no grad across an integer type). */
TT_API tt_tensor *tt_cast(tt_tensor *t, tt_dtype dt);
/* The tensor on another device (reference to t when already there). Differentiable. */
TT_API tt_tensor *tt_to_device(tt_tensor *t, tt_device dev);
/* A contiguous CPU tensor with t's values (t itself, referenced, when it already is
 * one); no autograd link. For code that reads elements on the host. */
TT_API tt_tensor *tt_host_contiguous(const tt_tensor *t);
/* Copies device data of a contiguous tensor to host memory `dst` (nbytes of t). */
TT_API tt_status tt_tensor_read(const tt_tensor *t, void *dst);
/* Copies host memory into a contiguous tensor (nbytes of t). */
TT_API tt_status tt_tensor_write(tt_tensor *t, const void *src);

#ifdef __cplusplus
}
#endif
#endif

/* ops/compare.h — elementwise comparisons, where and masked_fill: what a
 * vectorised sampler needs to build and apply masks over logits.
 *
 * Masks are u8 tensors holding 0 or 1 (PyTorch's bool). Comparisons take two
 * f32, two i64 or two u8 tensors that broadcast (numpy rules), or a tensor and a
 * scalar. where and masked_fill are differentiable in their f32 value inputs
 * (not in the mask); comparisons have no gradient. */
#ifndef TAMING_OPS_COMPARE_H
#define TAMING_OPS_COMPARE_H
#include "taming/tensor.h"

typedef enum tt_compare_op {
  TT_CMP_LT = 0,
  TT_CMP_LE,
  TT_CMP_GT,
  TT_CMP_GE,
  TT_CMP_EQ,
  TT_CMP_NE,
  TT_CMP_COUNT
} tt_compare_op;

/* Kernels (all operands contiguous with the same numel):
 *   compare: out[i] = a[i] (op) b[i]; a, b both f32, i64 or u8 (masks); out u8 0/1.
 *            NaN compares false except under NE, as in IEEE.
 *   where:   out[i] = cond[i] ? a[i] : b[i]; cond u8; a, b, out one dtype (f32 or i64). */
typedef tt_status (*tt_compare_fn)(tt_compare_op op, const tt_tensor *a, const tt_tensor *b, tt_tensor *out);
typedef tt_status (*tt_where_fn)(const tt_tensor *cond, const tt_tensor *a, const tt_tensor *b, tt_tensor *out);

/* a (op) b, broadcast -> u8 mask. */
TT_API tt_tensor *tt_compare(tt_compare_op op, tt_tensor *a, tt_tensor *b);
/* a (op) s, s converted to a's dtype -> u8 mask of a's shape. */
TT_API tt_tensor *tt_compare_scalar(tt_compare_op op, tt_tensor *a, double s);
TT_API tt_tensor *tt_lt(tt_tensor *a, tt_tensor *b);
TT_API tt_tensor *tt_le(tt_tensor *a, tt_tensor *b);
TT_API tt_tensor *tt_gt(tt_tensor *a, tt_tensor *b);
TT_API tt_tensor *tt_ge(tt_tensor *a, tt_tensor *b);
TT_API tt_tensor *tt_eq(tt_tensor *a, tt_tensor *b);
TT_API tt_tensor *tt_ne(tt_tensor *a, tt_tensor *b);
/* cond ? a : b, the three broadcast together; gradients flow to a and b. */
TT_API tt_tensor *tt_where(tt_tensor *cond, tt_tensor *a, tt_tensor *b);
/* x with value where mask is set (mask broadcasts to x's shape); gradient to x
 * where mask is 0. */
TT_API tt_tensor *tt_masked_fill(tt_tensor *x, tt_tensor *mask, double value);
/* Name of a comparison ("lt", ...). */
TT_API const char *tt_compare_name(tt_compare_op op);
#endif

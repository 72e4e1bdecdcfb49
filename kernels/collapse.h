/* collapse.h — the one dimension-collapsing rule of the CPU and CUDA kernels
 * (not part of the SDK). An elementwise loop over NOPS operands of one shape
 * runs fastest over as few dims as possible: size-1 dims are dropped, and a dim
 * folds into the one before it when, in every operand, stepping the previous
 * dim once equals stepping this dim through its whole extent. Broadcast
 * operands (stride 0) take part like any other. */
#ifndef TAMING_KERNELS_COLLAPSE_H
#define TAMING_KERNELS_COLLAPSE_H

#include <stdbool.h>
#include <stdint.h>

/* shape[0..ndim) and strides[k][0..ndim) for each of nops operands are
 * rewritten in place; returns the new ndim, >= 1 (a scalar becomes [1] with
 * stride 0). */
static inline int tt_collapse_dims(int ndim, int64_t *shape, int nops, int64_t *const *strides) {
  int nd = 0;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == 1) continue;
    shape[nd] = shape[i];
    for (int k = 0; k < nops; k++) strides[k][nd] = strides[k][i];
    nd++;
  }
  if (nd == 0) {
    shape[0] = 1;
    for (int k = 0; k < nops; k++) strides[k][0] = 0;
    return 1;
  }
  int out = 0;
  for (int i = 1; i < nd; i++) {
    bool merge = true;
    for (int k = 0; k < nops; k++)
      if (strides[k][out] != strides[k][i] * shape[i]) merge = false;
    if (merge) {
      shape[out] *= shape[i];
      for (int k = 0; k < nops; k++) strides[k][out] = strides[k][i];
    } else {
      out++;
      shape[out] = shape[i];
      for (int k = 0; k < nops; k++) strides[k][out] = strides[k][i];
    }
  }
  return out + 1;
}

#endif

/* ops/sort.c — sort and top-k: shape checks and kernel dispatch. */
#include "config.h"
#include <string.h>
#include "common.h"

static tt_status sort_common(const char *op, tt_tensor *x, int64_t k, int dim, bool descending, tt_tensor **values,
                             tt_tensor **indices) {
  *values = *indices = NULL;
  TT_TRY(tt_check_f32(op, "input", x));
  int d = tt_tensor_dim(x, dim);
  char sb[TT_SHAPE_BUF];
  if (x->ndim == 0 || d < 0)
    return tt_error(TT_ERR_INVALID, "%s: dim %d out of range for input %s", op, dim,
                    tt_tensor_shape_str(x, sb, sizeof sb));
  int64_t n = x->shape[d];
  if (k < 0) k = n;
  if (k < 1 || k > n)
    return tt_error(TT_ERR_INVALID, "%s: k = %lld must lie in [1, %lld] (the size of dim %d of %s)", op, (long long)k,
                    (long long)n, d, tt_tensor_shape_str(x, sb, sizeof sb));
  tt_sort_fn f = (tt_sort_fn)tt_kernel_cpu_only(op, x->device, "sort");
  if (!f) return tt_last_status();
  int64_t outer = 1, inner = 1, shape[TT_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) {
    shape[i] = i == d ? k : x->shape[i];
    if (i < d) outer *= x->shape[i];
    if (i > d) inner *= x->shape[i];
  }
  bool prev = tt_grad_set_enabled(false);
  tt_tensor *xc = tt_contiguous(x);
  tt_tensor *v = xc ? tt_tensor_new(TT_F32, x->ndim, shape, x->device) : NULL;
  tt_tensor *ix = v ? tt_tensor_new(TT_I64, x->ndim, shape, x->device) : NULL;
  tt_status s = ix ? f(xc, outer, n, inner, k, descending, v, ix) : tt_last_status();
  tt_grad_set_enabled(prev);
  tt_tensor_unref(xc);
  if (s != TT_OK) {
    tt_tensor_unref(v);
    tt_tensor_unref(ix);
    return s;
  }
  *values = v;
  *indices = ix;
  return TT_OK;
}

tt_status tt_sort(tt_tensor *x, int dim, bool descending, tt_tensor **values, tt_tensor **indices) {
  TT_PROFILE_OP("sort");
  return sort_common("sort", x, -1, dim, descending, values, indices);
}

tt_status tt_topk(tt_tensor *x, int64_t k, int dim, bool largest, tt_tensor **values, tt_tensor **indices) {
  TT_PROFILE_OP("topk");
  if (k < 1) {
    *values = *indices = NULL;
    return tt_error(TT_ERR_INVALID, "topk: k = %lld must be positive", (long long)k);
  }
  return sort_common("topk", x, k, dim, largest, values, indices);
}

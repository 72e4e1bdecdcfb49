/* ops/reduce.c — sum and mean over dims and the cumulative sum (with backward),
 * max/argmax (no gradient). */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "common.h"

typedef struct {
  int nd;
  int64_t shape[TT_MAX_DIMS];     /* input shape */
  int64_t kshape[TT_MAX_DIMS];    /* output shape with kept (size-1) dims */
  double scale;                   /* 1 for sum, 1/n for mean */
} reduce_ctx;

static tt_status reduce_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  reduce_ctx *c = n->ctx;
  if (!gy[0] || !tt_node_wants(n, 0)) return TT_OK;
  tt_tensor *g = tt_reshape(gy[0], c->nd, c->kshape);
  tt_tensor *e = g ? tt_expand(g, c->nd, c->shape) : NULL;
  tt_tensor *r = NULL;
  if (e) r = c->scale == 1.0 ? tt_contiguous(e) : tt_mul_scalar(e, c->scale);
  tt_tensor_unref(g);
  tt_tensor_unref(e);
  if (!r) return tt_last_status();
  gx[0] = r;
  return TT_OK;
}

/* Normalises and sorts dims; returns a bitmask of reduced dims. */
static tt_status dims_mask(const char *op, const tt_tensor *x, int n, const int *dims, unsigned *mask) {
  *mask = 0;
  for (int i = 0; i < n; i++) {
    int d = tt_tensor_dim(x, dims[i]);
    if (d < 0 || x->ndim == 0)
      return tt_error(TT_ERR_INVALID, "%s: dim %d out of range for %d dims", op, dims[i], x->ndim);
    *mask |= 1u << d;
  }
  return TT_OK;
}

/* Runs the reduce kernel over the dims in mask; out has keepdim shape. */
static tt_tensor *reduce_raw(tt_reduce_op op, tt_tensor *x, unsigned mask, tt_dtype out_dt) {
  tt_reduce_fn f = TT_KERNEL(x->device, reduce);
  if (!f) return NULL;
  int nd = x->ndim;
  int64_t kshape[TT_MAX_DIMS];
  int lo = -1, hi = -1;
  bool block = true;
  for (int i = 0; i < nd; i++) {
    kshape[i] = (mask >> i & 1) ? 1 : x->shape[i];
    if (mask >> i & 1) {
      if (lo < 0) lo = i;
      else if (hi != i - 1) block = false;
      hi = i;
    }
  }
  tt_tensor *src;
  int64_t outer = 1, n = 1, inner = 1;
  if (mask == 0) {
    src = tt_contiguous(x);
    outer = tt_tensor_numel(x);
  } else if (block) {
    src = tt_contiguous(x);
    for (int i = 0; i < lo; i++) outer *= x->shape[i];
    for (int i = lo; i <= hi; i++) n *= x->shape[i];
    for (int i = hi + 1; i < nd; i++) inner *= x->shape[i];
  } else {
    int perm[TT_MAX_DIMS], k = 0;
    for (int i = 0; i < nd; i++) if (!(mask >> i & 1)) { perm[k++] = i; outer *= x->shape[i]; }
    for (int i = 0; i < nd; i++) if (mask >> i & 1) { perm[k++] = i; n *= x->shape[i]; }
    tt_tensor *p = tt_permute(x, perm);
    src = p ? tt_contiguous(p) : NULL;
    tt_tensor_unref(p);
  }
  if (!src) return NULL;
  tt_tensor *y = tt_tensor_new(out_dt, nd, kshape, x->device);
  if (!y || f(op, src, outer, n, inner, y) != TT_OK) {
    tt_tensor_unref(y);
    y = NULL;
  }
  tt_tensor_unref(src);
  return y;
}

static tt_tensor *sum_mean(const char *op, bool mean, tt_tensor *x, int ndims, const int *dims, bool all,
                           bool keepdim) {
  TT_PROFILE_OP(op);
  if (tt_check_f32(op, "input", x)) return NULL;
  unsigned mask = 0;
  if (all) mask = x->ndim ? (1u << x->ndim) - 1 : 0;
  else if (dims_mask(op, x, ndims, dims, &mask)) return NULL;
  int64_t count = 1;
  for (int i = 0; i < x->ndim; i++)
    if (mask >> i & 1) count *= x->shape[i];
  tt_tensor *y;
  bool prev = tt_grad_set_enabled(false);
  y = reduce_raw(mean ? TT_REDUCE_MEAN : TT_REDUCE_SUM, x, mask, TT_F32);
  tt_grad_set_enabled(prev);
  if (!y) return NULL;
  int64_t kshape[TT_MAX_DIMS];
  memcpy(kshape, y->shape, sizeof kshape);
  if (!keepdim || all) {
    int64_t sh[TT_MAX_DIMS];
    int nd = 0;
    if (!(all && keepdim))
      for (int i = 0; i < x->ndim; i++)
        if (!(mask >> i & 1)) sh[nd++] = x->shape[i];
    if (!(all && keepdim)) {
      tt_tensor *r = tt_tensor_view_of(y, nd, sh, NULL, y->offset);
      tt_tensor_unref(y);
      y = r;
      if (!y) return NULL;
    }
  }
  tt_node *n = tt_node_new(op, reduce_backward, NULL, 1, &x, 1, sizeof(reduce_ctx));
  if (n) {
    reduce_ctx *c = n->ctx;
    c->nd = x->ndim;
    memcpy(c->shape, x->shape, sizeof c->shape);
    memcpy(c->kshape, kshape, sizeof c->kshape);
    c->scale = mean ? 1.0 / (double)(count ? count : 1) : 1.0;
    tt_node_attach(n, 0, y);
    tt_node_unref(n);
  }
  return y;
}

tt_tensor *tt_sum(tt_tensor *x) { return sum_mean("sum", false, x, 0, NULL, true, false); }
tt_tensor *tt_mean(tt_tensor *x) { return sum_mean("mean", true, x, 0, NULL, true, false); }
tt_tensor *tt_sum_dims(tt_tensor *x, int n, const int *dims, bool keepdim) {
  return sum_mean("sum", false, x, n, dims, false, keepdim);
}
tt_tensor *tt_mean_dims(tt_tensor *x, int n, const int *dims, bool keepdim) {
  return sum_mean("mean", true, x, n, dims, false, keepdim);
}
tt_tensor *tt_sum_dim(tt_tensor *x, int dim, bool keepdim) { return tt_sum_dims(x, 1, &dim, keepdim); }
tt_tensor *tt_mean_dim(tt_tensor *x, int dim, bool keepdim) { return tt_mean_dims(x, 1, &dim, keepdim); }

tt_tensor *tt_sum_to(tt_tensor *x, int ndim, const int64_t *shape) {
  TT_PROFILE_OP("sum_to");
  int off = x->ndim - ndim;
  char a[TT_SHAPE_BUF], b[TT_SHAPE_BUF];
  if (off < 0) goto bad;
  int dims[TT_MAX_DIMS], nd = 0;
  for (int i = 0; i < x->ndim; i++) {
    int j = i - off;
    if (j < 0) dims[nd++] = i;
    else if (shape[j] == 1 && x->shape[i] != 1) dims[nd++] = i;
    else if (shape[j] != x->shape[i]) goto bad;
  }
  if (nd == 0) return tt_reshape(x, ndim, shape);
  tt_tensor *s = tt_sum_dims(x, nd, dims, true);
  if (!s) return NULL;
  tt_tensor *r = tt_reshape(s, ndim, shape);
  tt_tensor_unref(s);
  return r;
bad:
  tt_error(TT_ERR_INVALID, "sum_to: cannot reduce %s to %s", tt_tensor_shape_str(x, a, sizeof a),
           tt_shape_str(ndim, shape, b, sizeof b));
  return NULL;
}

static tt_tensor *arg_like(const char *op, tt_reduce_op rop, tt_tensor *x, int dim, bool keepdim, tt_dtype dt) {
  TT_PROFILE_OP(op);
  if (tt_check_f32(op, "input", x)) return NULL;
  int d = tt_tensor_dim(x, dim);
  if (d < 0 || x->ndim == 0) {
    tt_error(TT_ERR_INVALID, "%s: dim %d out of range for %d dims", op, dim, x->ndim);
    return NULL;
  }
  bool prev = tt_grad_set_enabled(false);
  tt_tensor *y = reduce_raw(rop, x, 1u << d, dt);
  tt_grad_set_enabled(prev);
  if (!y || keepdim) return y;
  int64_t sh[TT_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < x->ndim; i++)
    if (i != d) sh[nd++] = x->shape[i];
  tt_tensor *r = tt_tensor_view_of(y, nd, sh, NULL, y->offset);
  tt_tensor_unref(y);
  return r;
}

tt_tensor *tt_max_dim(tt_tensor *x, int dim, bool keepdim) {
  return arg_like("max", TT_REDUCE_MAX, x, dim, keepdim, TT_F32);
}
tt_tensor *tt_argmax(tt_tensor *x, int dim, bool keepdim) {
  return arg_like("argmax", TT_REDUCE_ARGMAX, x, dim, keepdim, TT_I64);
}
tt_tensor *tt_argmin(tt_tensor *x, int dim, bool keepdim) {
  return arg_like("argmin", TT_REDUCE_ARGMIN, x, dim, keepdim, TT_I64);
}

/* ---- cumulative sum ---- */

typedef struct { int dim; } cumsum_ctx;

static tt_tensor *cumsum_raw(tt_tensor *x, int d, bool reverse) {
  tt_cumsum_fn f = (tt_cumsum_fn)tt_kernel_cpu_only("cumsum", x->device, "cumsum");
  if (!f) return NULL;
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < d; i++) outer *= x->shape[i];
  for (int i = d + 1; i < x->ndim; i++) inner *= x->shape[i];
  tt_tensor *xc = tt_contiguous(x);
  tt_tensor *y = xc ? tt_tensor_new_like(xc) : NULL;
  if (y && f(xc, outer, x->shape[d], inner, reverse, y) != TT_OK) {
    tt_tensor_unref(y);
    y = NULL;
  }
  tt_tensor_unref(xc);
  return y;
}

/* d/dx_j of sum_{k<=i} x_k is 1 for i >= j: the gradient is the cumsum from the end */
static tt_status cumsum_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  cumsum_ctx *c = n->ctx;
  if (!gy[0] || !tt_node_wants(n, 0)) return TT_OK;
  tt_tensor *g = cumsum_raw(gy[0], c->dim, true);
  if (!g) return tt_last_status();
  gx[0] = g;
  return TT_OK;
}

tt_tensor *tt_cumsum(tt_tensor *x, int dim) {
  TT_PROFILE_OP("cumsum");
  if (tt_check_f32("cumsum", "input", x)) return NULL;
  int d = tt_tensor_dim(x, dim);
  if (d < 0 || x->ndim == 0) {
    char sb[TT_SHAPE_BUF];
    tt_error(TT_ERR_INVALID, "cumsum: dim %d out of range for input %s", dim, tt_tensor_shape_str(x, sb, sizeof sb));
    return NULL;
  }
  bool prev = tt_grad_set_enabled(false);
  tt_tensor *y = cumsum_raw(x, d, false);
  tt_grad_set_enabled(prev);
  if (!y) return NULL;
  tt_node *n = tt_node_new("cumsum", cumsum_backward, NULL, 1, &x, 1, sizeof(cumsum_ctx));
  if (n) {
    ((cumsum_ctx *)n->ctx)->dim = d;
    tt_node_attach(n, 0, y);
    tt_node_unref(n);
  }
  return y;
}

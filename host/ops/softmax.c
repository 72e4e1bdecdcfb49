/* ops/softmax.c — softmax and log-softmax along any dim, forward and backward.
 * The kernels work on contiguous rows, so a dim other than the last is moved
 * last (a permuted copy) and the result is moved back into x's dim order. */
#include "config.h"
#include <string.h>
#include "common.h"

typedef struct {
  bool log;
  tt_tensor *y;              /* output with the softmax dim last, contiguous, detached */
  int perm[TT_MAX_DIMS];     /* x's dims in y's order (identity when dim is last) */
  bool moved;
} softmax_ctx;

static void softmax_release(tt_node *n) {
  softmax_ctx *c = n->ctx;
  tt_tensor_release(&c->y);
}

/* t permuted by perm (when moved), contiguous, detached. */
static tt_tensor *rows_layout(tt_tensor *t, bool moved, const int *perm) {
  tt_tensor *p = moved ? tt_permute(t, perm) : tt_tensor_ref(t);
  tt_tensor *c = p ? tt_contiguous(p) : NULL;
  tt_tensor_unref(p);
  return c;
}

/* r (dim last) back into the original dim order, contiguous. */
static tt_tensor *original_layout(tt_tensor *r, int nd, bool moved, const int *perm) {
  if (!moved) return tt_tensor_ref(r);
  int inv[TT_MAX_DIMS];
  for (int i = 0; i < nd; i++) inv[perm[i]] = i;
  tt_tensor *p = tt_permute(r, inv);
  tt_tensor *c = p ? tt_contiguous(p) : NULL;
  tt_tensor_unref(p);
  return c;
}

/* A 2-D [N, D] header for the contiguous t. */
static tt_tensor as_rows(const tt_tensor *t) {
  tt_tensor v = *t;
  int64_t D = t->ndim ? t->shape[t->ndim - 1] : 1, N = D ? tt_tensor_numel(t) / D : 0;
  v.ndim = 2;
  v.shape[0] = N;
  v.shape[1] = D;
  v.stride[0] = D;
  v.stride[1] = 1;
  return v;
}

static tt_status softmax_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  softmax_ctx *c = n->ctx;
  if (!gy[0] || !tt_node_wants(n, 0)) return TT_OK;
  tt_softmax_bwd_fn f = TT_KERNEL(c->y->device, softmax_bwd);
  if (!f) return tt_last_status();
  int nd = gy[0]->ndim;
  tt_tensor *g = rows_layout(gy[0], c->moved, c->perm);
  tt_tensor *r = g ? tt_tensor_new_like(c->y) : NULL;
  tt_status s = r ? TT_OK : tt_last_status();
  if (s == TT_OK) {
    tt_tensor vy = as_rows(c->y), vg = as_rows(g), vr = as_rows(r);
    s = f(c->log, &vy, &vg, &vr);
  }
  tt_tensor *out = s == TT_OK ? original_layout(r, nd, c->moved, c->perm) : NULL;
  if (s == TT_OK && !out) s = tt_last_status();
  tt_tensor_unref(g);
  tt_tensor_unref(r);
  if (s == TT_OK) gx[0] = out;
  return s;
}

static tt_tensor *softmax_common(const char *op, bool log_, tt_tensor *x, int dim) {
  TT_PROFILE_OP(op);
  if (tt_check_f32(op, "input", x)) return NULL;
  int nd = x->ndim;
  int d = nd == 0 && (dim == 0 || dim == -1) ? 0 : tt_tensor_dim(x, dim);
  if (d < 0) {
    char s1[TT_SHAPE_BUF];
    tt_error(TT_ERR_INVALID, "%s: dim %d out of range for input %s", op, dim, tt_tensor_shape_str(x, s1, sizeof s1));
    return NULL;
  }
  tt_softmax_fwd_fn f = TT_KERNEL(x->device, softmax_fwd);
  if (!f) return NULL;
  softmax_ctx c = {.log = log_, .moved = nd > 0 && d != nd - 1};
  for (int i = 0, k = 0; i < nd; i++)
    if (i != d) c.perm[k++] = i;
  if (nd > 0) c.perm[nd - 1] = d;
  bool prev = tt_grad_set_enabled(false);
  tt_tensor *xr = rows_layout(x, c.moved, c.perm);          /* [..., D] */
  tt_tensor *yr = xr ? tt_tensor_new_like(xr) : NULL;
  tt_status s = yr ? TT_OK : tt_last_status();
  if (s == TT_OK) {
    tt_tensor vx = as_rows(xr), vy = as_rows(yr);
    s = f(log_, &vx, &vy);
  }
  tt_tensor *y = s == TT_OK ? original_layout(yr, nd, c.moved, c.perm) : NULL;
  tt_grad_set_enabled(prev);
  tt_tensor_unref(xr);
  if (!y) {
    tt_tensor_unref(yr);
    return NULL;
  }
  tt_node *n = tt_node_new(op, softmax_backward, softmax_release, 1, &x, 1, sizeof(softmax_ctx));
  if (n) {
    softmax_ctx *ctx = n->ctx;
    *ctx = c;
    /* detached: saving y itself would make y -> node -> y a cycle */
    ctx->y = tt_detach(yr);
    tt_node_attach(n, 0, y);
    tt_node_unref(n);
  }
  tt_tensor_unref(yr);
  return y;
}

tt_tensor *tt_softmax(tt_tensor *x, int dim) { return softmax_common("softmax", false, x, dim); }
tt_tensor *tt_log_softmax(tt_tensor *x, int dim) { return softmax_common("log_softmax", true, x, dim); }

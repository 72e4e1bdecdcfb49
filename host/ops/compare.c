/* ops/compare.c — comparisons, where and masked_fill. Operands are broadcast
 * to the output shape and made contiguous before the kernel runs, so the
 * kernels stay flat loops; where records a node whose backward routes the
 * incoming gradient through the same mask. */
#include "config.h"
#include <math.h>
#include <string.h>
#include "common.h"

static const char *cmp_names[TT_CMP_COUNT] = {"lt", "le", "gt", "ge", "eq", "ne"};

const char *tt_compare_name(tt_compare_op op) { return (unsigned)op < TT_CMP_COUNT ? cmp_names[op] : "?"; }

/* Broadcast shape of n tensors (numpy rules). */
static tt_status broadcast_n(const char *op, int n, tt_tensor *const *ts, int *nd, int64_t *shape) {
  *nd = 0;
  for (int k = 0; k < n; k++)
    if (ts[k]->ndim > *nd) *nd = ts[k]->ndim;
  for (int i = 0; i < *nd; i++) {
    int64_t s = 1;
    for (int k = 0; k < n; k++) {
      int j = i - (*nd - ts[k]->ndim);
      int64_t x = j >= 0 ? ts[k]->shape[j] : 1;
      if (x == 1) continue;
      if (s != 1 && s != x) {
        char s1[TT_SHAPE_BUF], s2[TT_SHAPE_BUF];
        return tt_error(TT_ERR_INVALID, "%s: shapes %s and %s do not broadcast", op,
                        tt_tensor_shape_str(ts[0], s1, sizeof s1), tt_tensor_shape_str(ts[k], s2, sizeof s2));
      }
      s = x;
    }
    shape[i] = s;
  }
  return TT_OK;
}

/* t expanded to (nd, shape) and made contiguous (no autograd). */
static tt_tensor *dense(tt_tensor *t, int nd, const int64_t *shape) {
  tt_tensor *e = tt_expand(t, nd, shape);
  tt_tensor *c = e ? tt_contiguous(e) : NULL;
  tt_tensor_unref(e);
  return c;
}

static tt_status check_value_dtype(const char *op, const char *what, const tt_tensor *t) {
  if (t->dtype == TT_F32 || t->dtype == TT_I64) return TT_OK;
  return tt_error(TT_ERR_INVALID, "%s: %s must be f32 or i64, found %s", op, what, tt_dtype_name(t->dtype));
}

tt_tensor *tt_compare(tt_compare_op op, tt_tensor *a, tt_tensor *b) {
  TT_PROFILE_OP("compare");
  if ((unsigned)op >= TT_CMP_COUNT) {
    tt_error(TT_ERR_INVALID, "compare: unknown op %d", (int)op);
    return NULL;
  }
  const char *name = cmp_names[op];
  tt_tensor *ab[2] = {a, b};
  if ((a->dtype != TT_U8 && check_value_dtype(name, "the left operand", a)) || tt_check_same_device(name, 2, ab))
    return NULL;
  if (a->dtype != b->dtype) {
    tt_error(TT_ERR_INVALID, "%s: operands must have one dtype, found %s and %s", name, tt_dtype_name(a->dtype),
             tt_dtype_name(b->dtype));
    return NULL;
  }
  int nd;
  int64_t shape[TT_MAX_DIMS];
  if (broadcast_n(name, 2, ab, &nd, shape)) return NULL;
  tt_compare_fn f = (tt_compare_fn)tt_kernel_cpu_only(name, a->device, "compare");
  if (!f) return NULL;
  bool prev = tt_grad_set_enabled(false);
  tt_tensor *da = dense(a, nd, shape), *db = da ? dense(b, nd, shape) : NULL;
  tt_tensor *out = db ? tt_tensor_new(TT_U8, nd, shape, a->device) : NULL;
  if (out && f(op, da, db, out) != TT_OK) {
    tt_tensor_unref(out);
    out = NULL;
  }
  tt_grad_set_enabled(prev);
  tt_tensor_unref(da);
  tt_tensor_unref(db);
  return out;
}

/* A scalar must be exact in an integer tensor's dtype (2.5 against i64 would
 * silently become 2). */
static tt_status check_scalar(const char *op, tt_dtype dt, double s) {
  bool ok = dt == TT_F32 || (s == floor(s) && (dt == TT_U8 ? s >= 0 && s <= 255 : fabs(s) < 9.2e18));
  if (ok) return TT_OK;
  return tt_error(TT_ERR_INVALID, "%s: the scalar %g is not a value of the tensor's dtype %s", op, s, tt_dtype_name(dt));
}

tt_tensor *tt_compare_scalar(tt_compare_op op, tt_tensor *a, double s) {
  const char *name = op < TT_CMP_COUNT ? cmp_names[op] : "compare";
  if ((a->dtype != TT_U8 && check_value_dtype(name, "the left operand", a)) || check_scalar(name, a->dtype, s))
    return NULL;
  tt_tensor *b = tt_full(a->dtype, 0, NULL, s, a->device);
  tt_tensor *r = b ? tt_compare(op, a, b) : NULL;
  tt_tensor_unref(b);
  return r;
}

tt_tensor *tt_lt(tt_tensor *a, tt_tensor *b) { return tt_compare(TT_CMP_LT, a, b); }
tt_tensor *tt_le(tt_tensor *a, tt_tensor *b) { return tt_compare(TT_CMP_LE, a, b); }
tt_tensor *tt_gt(tt_tensor *a, tt_tensor *b) { return tt_compare(TT_CMP_GT, a, b); }
tt_tensor *tt_ge(tt_tensor *a, tt_tensor *b) { return tt_compare(TT_CMP_GE, a, b); }
tt_tensor *tt_eq(tt_tensor *a, tt_tensor *b) { return tt_compare(TT_CMP_EQ, a, b); }
tt_tensor *tt_ne(tt_tensor *a, tt_tensor *b) { return tt_compare(TT_CMP_NE, a, b); }

/* ---- where ---- */

typedef struct {
  tt_tensor *cond;                           /* the dense mask [out shape] */
  int nda, ndb;
  int64_t sa[TT_MAX_DIMS], sb[TT_MAX_DIMS];  /* the value inputs' shapes */
} where_ctx;

static void where_release(tt_node *n) {
  where_ctx *c = n->ctx;
  tt_tensor_release(&c->cond);
}

static tt_tensor *where_dense(tt_tensor *cond, tt_tensor *a, tt_tensor *b) {
  tt_where_fn f = (tt_where_fn)tt_kernel_cpu_only("where", a->device, "where");
  if (!f) return NULL;
  tt_tensor *out = tt_tensor_new(a->dtype, cond->ndim, cond->shape, a->device);
  if (out && f(cond, a, b, out) != TT_OK) {
    tt_tensor_unref(out);
    return NULL;
  }
  return out;
}

/* gy routed to one side: cond ? gy : 0 (take_a) or cond ? 0 : gy, summed back to shape */
static tt_tensor *route(tt_tensor *cond, tt_tensor *gy, bool take_a, int nd, const int64_t *shape) {
  tt_tensor *g = tt_contiguous(gy);
  tt_tensor *z = g ? tt_zeros(TT_F32, g->ndim, g->shape, g->device) : NULL;
  tt_tensor *r = z ? where_dense(cond, take_a ? g : z, take_a ? z : g) : NULL;
  tt_tensor *s = r ? tt_sum_to(r, nd, shape) : NULL;
  tt_tensor_unref(g);
  tt_tensor_unref(z);
  tt_tensor_unref(r);
  return s;
}

static tt_status where_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  where_ctx *c = n->ctx;
  if (!gy[0]) return TT_OK;
  if (tt_node_wants(n, 0) && !(gx[0] = route(c->cond, gy[0], true, c->nda, c->sa))) return tt_last_status();
  if (tt_node_wants(n, 1) && !(gx[1] = route(c->cond, gy[0], false, c->ndb, c->sb))) return tt_last_status();
  return TT_OK;
}

tt_tensor *tt_where(tt_tensor *cond, tt_tensor *a, tt_tensor *b) {
  TT_PROFILE_OP("where");
  tt_tensor *all[3] = {cond, a, b};
  if (tt_check_same_device("where", 3, all) || check_value_dtype("where", "a", a)) return NULL;
  if (cond->dtype != TT_U8) {
    tt_error(TT_ERR_INVALID, "where: the condition must be a u8 mask (a comparison's result), found %s",
             tt_dtype_name(cond->dtype));
    return NULL;
  }
  if (a->dtype != b->dtype) {
    tt_error(TT_ERR_INVALID, "where: a and b must have one dtype, found %s and %s", tt_dtype_name(a->dtype),
             tt_dtype_name(b->dtype));
    return NULL;
  }
  int nd;
  int64_t shape[TT_MAX_DIMS];
  if (broadcast_n("where", 3, all, &nd, shape)) return NULL;
  bool prev = tt_grad_set_enabled(false);
  tt_tensor *dc = dense(cond, nd, shape), *da = dc ? dense(a, nd, shape) : NULL;
  tt_tensor *db = da ? dense(b, nd, shape) : NULL;
  tt_tensor *out = db ? where_dense(dc, da, db) : NULL;
  tt_grad_set_enabled(prev);
  tt_tensor_unref(da);
  tt_tensor_unref(db);
  if (!out) {
    tt_tensor_unref(dc);
    return NULL;
  }
  tt_tensor *ins[2] = {a, b};
  tt_node *n = a->dtype == TT_F32 ? tt_node_new("where", where_backward, where_release, 2, ins, 1, sizeof(where_ctx))
                                  : NULL;
  if (n) {
    where_ctx *c = n->ctx;
    c->cond = tt_tensor_ref(dc);
    c->nda = a->ndim;
    c->ndb = b->ndim;
    memcpy(c->sa, a->shape, sizeof c->sa);
    memcpy(c->sb, b->shape, sizeof c->sb);
    tt_node_attach(n, 0, out);
    tt_node_unref(n);
  }
  tt_tensor_unref(dc);
  return out;
}

tt_tensor *tt_masked_fill(tt_tensor *x, tt_tensor *mask, double value) {
  TT_PROFILE_OP("masked_fill");
  if (check_value_dtype("masked_fill", "the input", x) || check_scalar("masked_fill", x->dtype, value)) return NULL;
  int nd;
  int64_t shape[TT_MAX_DIMS];
  tt_tensor *xm[2] = {x, mask};
  if (broadcast_n("masked_fill", 2, xm, &nd, shape)) return NULL;
  if (nd != x->ndim || memcmp(shape, x->shape, sizeof(int64_t) * (size_t)nd) != 0) {
    char s1[TT_SHAPE_BUF], s2[TT_SHAPE_BUF];
    tt_error(TT_ERR_INVALID, "masked_fill: the mask %s must broadcast to the input's shape %s",
             tt_tensor_shape_str(mask, s1, sizeof s1), tt_tensor_shape_str(x, s2, sizeof s2));
    return NULL;
  }
  tt_tensor *v = tt_full(x->dtype, 0, NULL, value, x->device);
  tt_tensor *r = v ? tt_where(mask, v, x) : NULL;
  tt_tensor_unref(v);
  return r;
}

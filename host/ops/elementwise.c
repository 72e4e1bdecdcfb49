/* ops/elementwise.c — broadcasting binary arithmetic and pointwise functions,
 * forward and backward. */
#include "config.h"
#include <string.h>
#include "common.h"

/* ---- binary ---- */

static const char *binary_names[TT_BINARY_COUNT] = {"add", "sub", "mul", "div", "maximum", "minimum"};

typedef struct {
  tt_binary_op op;
  tt_tensor *a, *b;   /* saved inputs (only for ops whose backward reads them) */
  int nda, ndb;
  int64_t sa[TT_MAX_DIMS], sb[TT_MAX_DIMS];
} binary_ctx;

static void binary_release(tt_node *n) {
  binary_ctx *c = n->ctx;
  tt_tensor_release(&c->a);
  tt_tensor_release(&c->b);
}

/* View of t broadcast to (nd, shape): same data, stride 0 on broadcast dims. */
static void broadcast_view(const tt_tensor *t, int nd, const int64_t *shape, tt_tensor *v) {
  *v = *t;
  int off = nd - t->ndim;
  v->ndim = nd;
  for (int i = nd - 1; i >= 0; i--) {
    int j = i - off;
    v->shape[i] = shape[i];
    v->stride[i] = (j >= 0 && t->shape[j] == shape[i]) ? t->stride[j] : 0;
  }
}

static tt_status broadcast_shape(const char *op, const tt_tensor *a, const tt_tensor *b, int *nd,
                                 int64_t *shape) {
  *nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  for (int i = 0; i < *nd; i++) {
    int ia = i - (*nd - a->ndim), ib = i - (*nd - b->ndim);
    int64_t x = ia >= 0 ? a->shape[ia] : 1, y = ib >= 0 ? b->shape[ib] : 1;
    if (x != y && x != 1 && y != 1) {
      char s1[TT_SHAPE_BUF], s2[TT_SHAPE_BUF];
      return tt_error(TT_ERR_INVALID, "%s: shapes %s and %s do not broadcast", op,
                      tt_tensor_shape_str(a, s1, sizeof s1), tt_tensor_shape_str(b, s2, sizeof s2));
    }
    shape[i] = x == 1 ? y : x;
  }
  return TT_OK;
}

static tt_status binary_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  binary_ctx *c = n->ctx;
  tt_tensor *g = gy[0];
  if (!g) return TT_OK;
  tt_tensor *gc = tt_contiguous(g);
  if (!gc) return tt_last_status();
  tt_status s = TT_OK;
  bool wa = tt_node_wants(n, 0), wb = tt_node_wants(n, 1);
  const int64_t *sha = c->sa, *shb = c->sb;
  if (c->op == TT_BINARY_ADD || c->op == TT_BINARY_SUB) {
    if (wa) s = (gx[0] = tt_sum_to(gc, c->nda, sha)) ? TT_OK : tt_last_status();
    if (s == TT_OK && wb) {
      tt_tensor *t = tt_sum_to(gc, c->ndb, shb);
      if (t && c->op == TT_BINARY_SUB) {
        tt_tensor *u = tt_neg(t);
        tt_tensor_unref(t);
        t = u;
      }
      s = (gx[1] = t) ? TT_OK : tt_last_status();
    }
  } else {
    tt_tensor va, vb;
    broadcast_view(c->a, gc->ndim, gc->shape, &va);
    broadcast_view(c->b, gc->ndim, gc->shape, &vb);
    tt_tensor *ga = wa ? tt_tensor_new_like(gc) : NULL, *gb = wb ? tt_tensor_new_like(gc) : NULL;
    tt_binary_bwd_fn f = TT_KERNEL(gc->device, binary_bwd);
    if ((wa && !ga) || (wb && !gb) || !f) s = tt_last_status();
    else s = f(c->op, &va, &vb, gc, ga, gb);
    if (s == TT_OK && wa) s = (gx[0] = tt_sum_to(ga, c->nda, sha)) ? TT_OK : tt_last_status();
    if (s == TT_OK && wb) s = (gx[1] = tt_sum_to(gb, c->ndb, shb)) ? TT_OK : tt_last_status();
    tt_tensor_unref(ga);
    tt_tensor_unref(gb);
  }
  tt_tensor_unref(gc);
  return s;
}

tt_tensor *tt_binary(tt_binary_op op, tt_tensor *a, tt_tensor *b) {
  TT_PROFILE_OP(binary_names[(unsigned)op < TT_BINARY_COUNT ? op : 0]);
  if ((unsigned)op >= TT_BINARY_COUNT) {
    tt_error(TT_ERR_INVALID, "binary: unknown op %d", (int)op);
    return NULL;
  }
  const char *name = binary_names[op];
  tt_tensor *args[2] = {a, b};
  if (tt_check_f32(name, "first operand", a) || tt_check_f32(name, "second operand", b) ||
      tt_check_same_device(name, 2, args))
    return NULL;
  int nd;
  int64_t shape[TT_MAX_DIMS];
  if (broadcast_shape(name, a, b, &nd, shape)) return NULL;
  tt_binary_fwd_fn f = TT_KERNEL(a->device, binary_fwd);
  if (!f) return NULL;
  tt_tensor *out = tt_tensor_new(TT_F32, nd, shape, a->device);
  if (!out) return NULL;
  tt_tensor va, vb;
  broadcast_view(a, nd, shape, &va);
  broadcast_view(b, nd, shape, &vb);
  if (f(op, &va, &vb, out) != TT_OK) {
    tt_tensor_unref(out);
    return NULL;
  }
  tt_node *n = tt_node_new(name, binary_backward, binary_release, 2, args, 1, sizeof(binary_ctx));
  if (n) {
    binary_ctx *c = n->ctx;
    c->op = op;
    c->nda = a->ndim;
    c->ndb = b->ndim;
    memcpy(c->sa, a->shape, sizeof c->sa);
    memcpy(c->sb, b->shape, sizeof c->sb);
    if (op != TT_BINARY_ADD && op != TT_BINARY_SUB) {
      c->a = tt_detach(a);
      c->b = tt_detach(b);
    }
    tt_node_attach(n, 0, out);
    tt_node_unref(n);
  }
  return out;
}

tt_tensor *tt_add(tt_tensor *a, tt_tensor *b) { return tt_binary(TT_BINARY_ADD, a, b); }
tt_tensor *tt_sub(tt_tensor *a, tt_tensor *b) { return tt_binary(TT_BINARY_SUB, a, b); }
tt_tensor *tt_mul(tt_tensor *a, tt_tensor *b) { return tt_binary(TT_BINARY_MUL, a, b); }
tt_tensor *tt_div(tt_tensor *a, tt_tensor *b) { return tt_binary(TT_BINARY_DIV, a, b); }
tt_tensor *tt_maximum(tt_tensor *a, tt_tensor *b) { return tt_binary(TT_BINARY_MAX, a, b); }
tt_tensor *tt_minimum(tt_tensor *a, tt_tensor *b) { return tt_binary(TT_BINARY_MIN, a, b); }

/* ---- unary ---- */

static const char *unary_names[TT_UNARY_COUNT] = {
    "neg", "abs", "exp", "log", "sqrt", "square", "relu", "silu", "gelu", "sigmoid",
    "tanh", "softplus", "leaky_relu", "clamp", "affine", "pow", "reciprocal"};

typedef struct {
  tt_unary_params p;
  tt_tensor *x, *y;
} unary_ctx;

static void unary_release(tt_node *n) {
  unary_ctx *c = n->ctx;
  tt_tensor_release(&c->x);
  tt_tensor_release(&c->y);
}

static bool unary_uses_y(tt_unary_op op) {
  return op == TT_UNARY_EXP || op == TT_UNARY_SQRT || op == TT_UNARY_SIGMOID || op == TT_UNARY_TANH ||
         op == TT_UNARY_RECIPROCAL;
}

static tt_status unary_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  unary_ctx *c = n->ctx;
  if (!gy[0] || !tt_node_wants(n, 0)) return TT_OK;
  tt_tensor *g = tt_contiguous(gy[0]);
  if (!g) return tt_last_status();
  tt_tensor *out = tt_tensor_new_like(c->x);
  tt_unary_bwd_fn f = TT_KERNEL(c->x->device, unary_bwd);
  tt_status s = (!out || !f) ? tt_last_status() : f(&c->p, c->x, c->y, g, out);
  tt_tensor_unref(g);
  if (s != TT_OK) {
    tt_tensor_unref(out);
    return s;
  }
  gx[0] = out;
  return TT_OK;
}

tt_tensor *tt_unary(tt_unary_op op, float alpha, float beta, tt_tensor *x) {
  TT_PROFILE_OP(unary_names[(unsigned)op < TT_UNARY_COUNT ? op : 0]);
  if ((unsigned)op >= TT_UNARY_COUNT) {
    tt_error(TT_ERR_INVALID, "unary: unknown op %d", (int)op);
    return NULL;
  }
  const char *name = unary_names[op];
  if (tt_check_f32(name, "input", x)) return NULL;
  tt_unary_fwd_fn f = TT_KERNEL(x->device, unary_fwd);
  if (!f) return NULL;
  tt_tensor *xc = tt_contiguous(x);
  if (!xc) return NULL;
  tt_tensor *y = tt_tensor_new_like(xc);
  tt_unary_params p = {op, alpha, beta};
  if (!y || f(&p, xc, y) != TT_OK) {
    tt_tensor_unref(y);
    tt_tensor_unref(xc);
    return NULL;
  }
  tt_node *n = tt_node_new(name, unary_backward, unary_release, 1, &x, 1, sizeof(unary_ctx));
  if (n) {
    unary_ctx *c = n->ctx;
    c->p = p;
    c->x = tt_detach(xc);
    if (unary_uses_y(op)) c->y = tt_detach(y);
    tt_node_attach(n, 0, y);
    tt_node_unref(n);
  }
  tt_tensor_unref(xc);
  return y;
}

tt_tensor *tt_neg(tt_tensor *x) { return tt_unary(TT_UNARY_NEG, 0, 0, x); }
tt_tensor *tt_abs(tt_tensor *x) { return tt_unary(TT_UNARY_ABS, 0, 0, x); }
tt_tensor *tt_exp(tt_tensor *x) { return tt_unary(TT_UNARY_EXP, 0, 0, x); }
tt_tensor *tt_log(tt_tensor *x) { return tt_unary(TT_UNARY_LOG, 0, 0, x); }
tt_tensor *tt_sqrt(tt_tensor *x) { return tt_unary(TT_UNARY_SQRT, 0, 0, x); }
tt_tensor *tt_square(tt_tensor *x) { return tt_unary(TT_UNARY_SQUARE, 0, 0, x); }
tt_tensor *tt_relu(tt_tensor *x) { return tt_unary(TT_UNARY_RELU, 0, 0, x); }
tt_tensor *tt_silu(tt_tensor *x) { return tt_unary(TT_UNARY_SILU, 0, 0, x); }
tt_tensor *tt_gelu(tt_tensor *x) { return tt_unary(TT_UNARY_GELU, 0, 0, x); }
tt_tensor *tt_sigmoid(tt_tensor *x) { return tt_unary(TT_UNARY_SIGMOID, 0, 0, x); }
tt_tensor *tt_tanh(tt_tensor *x) { return tt_unary(TT_UNARY_TANH, 0, 0, x); }
tt_tensor *tt_softplus(tt_tensor *x) { return tt_unary(TT_UNARY_SOFTPLUS, 0, 0, x); }
tt_tensor *tt_leaky_relu(tt_tensor *x, float slope) { return tt_unary(TT_UNARY_LEAKY_RELU, slope, 0, x); }
tt_tensor *tt_clamp(tt_tensor *x, float lo, float hi) { return tt_unary(TT_UNARY_CLAMP, lo, hi, x); }
tt_tensor *tt_add_scalar(tt_tensor *x, double s) { return tt_unary(TT_UNARY_AFFINE, 1.0f, (float)s, x); }
tt_tensor *tt_mul_scalar(tt_tensor *x, double s) { return tt_unary(TT_UNARY_AFFINE, (float)s, 0.0f, x); }
tt_tensor *tt_affine(tt_tensor *x, double a, double b) { return tt_unary(TT_UNARY_AFFINE, (float)a, (float)b, x); }
tt_tensor *tt_pow_scalar(tt_tensor *x, double p) { return tt_unary(TT_UNARY_POW, (float)p, 0, x); }
tt_tensor *tt_reciprocal(tt_tensor *x) { return tt_unary(TT_UNARY_RECIPROCAL, 0, 0, x); }

tt_status tt_axpy_(tt_tensor *y, float alpha, tt_tensor *x) {
  TT_PROFILE_OP("axpy_");
  if (!tt_tensor_same_shape(x, y) || !tt_tensor_is_contiguous(y)) {
    char a[TT_SHAPE_BUF], b[TT_SHAPE_BUF];
    return tt_error(TT_ERR_INVALID, "axpy: shapes %s and %s differ or the destination is strided",
                    tt_tensor_shape_str(x, a, sizeof a), tt_tensor_shape_str(y, b, sizeof b));
  }
  TT_TRY(tt_check_f32("axpy", "x", x));
  TT_TRY(tt_check_f32("axpy", "y", y));
  tt_tensor *xc = tt_contiguous(x);
  if (!xc) return tt_last_status();
  tt_axpy_fn f = TT_KERNEL(y->device, axpy);
  tt_status s = f ? f(alpha, xc, y) : tt_last_status();
  tt_tensor_unref(xc);
  return s;
}

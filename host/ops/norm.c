/* ops/norm.c — group norm, group norm + SiLU, layer norm, batch norm and batch
 * norm + LeakyReLU:
 * argument checks, kernel calls and autograd nodes. The kernels see x as [B, C, S] (group and batch
 * norm, S = product of the spatial dims) or [N, E] (layer norm). */
#include "config.h"
#include <math.h>
#include <string.h>
#include "common.h"

/* A header for t's data with another (contiguous) shape; t must be contiguous. */
static tt_tensor as_shape(const tt_tensor *t, int nd, const int64_t *shape) {
  tt_tensor v = *t;
  v.ndim = nd;
  memcpy(v.shape, shape, sizeof(int64_t) * (size_t)nd);
  tt_contiguous_strides(nd, shape, v.stride);
  return v;
}

/* weight or bias: NULL, or f32 [C] on x's device. */
static tt_status check_param(const char *op, const char *what, const tt_tensor *p, const tt_tensor *x,
                             int64_t C) {
  if (!p) return TT_OK;
  TT_TRY(tt_check_f32(op, what, p));
  char s1[TT_SHAPE_BUF], s2[TT_SHAPE_BUF];
  if (p->ndim != 1 || p->shape[0] != C)
    return tt_error(TT_ERR_INVALID, "%s: %s has shape %s, expected [%lld] for input %s", op, what,
                    tt_tensor_shape_str(p, s1, sizeof s1), (long long)C, tt_tensor_shape_str(x, s2, sizeof s2));
  if (p->device != x->device)
    return tt_error(TT_ERR_INVALID, "%s: %s is on %s, input on %s", op, what, tt_device_name(p->device),
                    tt_device_name(x->device));
  return TT_OK;
}

/* Contiguous copies made with gradients off (the op records its own node). */
static tt_tensor *plain_contiguous(tt_tensor *t) {
  if (!t) return NULL;
  bool prev = tt_grad_set_enabled(false);
  tt_tensor *c = tt_contiguous(t);
  tt_tensor *d = c ? tt_detach(c) : NULL;
  tt_tensor_unref(c);
  tt_grad_set_enabled(prev);
  return d;
}

/* What every norm saves for its backward. */
typedef struct {
  tt_tensor *x, *w;          /* contiguous, detached; w may be NULL; for group norm with
                                from_y, x holds the output y instead of the input */
  tt_tensor *b;              /* group norm with from_y: the bias (may be NULL) */
  bool from_y;
  tt_tensor *mean, *rstd;
  int groups;                /* group norm */
  bool training;             /* batch norm */
  float slope;               /* batch norm + LeakyReLU (x is the input, b the bias of h) */
  float eps;                 /* group norm + SiLU: for recomputing the output */
  int nd;                    /* the kernel's view of x */
  int64_t kshape[3];
} norm_ctx;

static void norm_release(tt_node *n) {
  norm_ctx *c = n->ctx;
  tt_tensor_release(&c->x);
  tt_tensor_release(&c->w);
  tt_tensor_release(&c->mean);
  tt_tensor_release(&c->rstd);
  tt_tensor_release(&c->b);
}

/* Group norm's backward reads x only through x^ = (x - mean) * rstd, which the
 * output gives back as (y - b) / w. Saving y instead of x keeps one activation
 * where the next op (SiLU, the attention's projections) saves y anyway, and
 * frees x. Only where that inversion is well conditioned: on the CPU (the
 * check reads the weights), every |w| nonzero and |b| <= 64 |w| (y's rounding
 * error, divided by w, stays within 64 ulp of x^). */
static bool group_norm_invertible(const tt_tensor *w, const tt_tensor *b) {
  if ((w && w->device != TT_CPU) || (b && b->device != TT_CPU)) return false;
  int64_t C = w ? w->shape[0] : b ? b->shape[0] : 0;
  const float *ws = w ? tt_f32(w) : NULL, *bs = b ? tt_f32(b) : NULL;
  for (int64_t c = 0; c < C; c++) {
    float wc = ws ? ws[c] : 1.0f, bc = bs ? bs[c] : 0.0f;
    if (!(fabsf(wc) > 0.0f) || !isfinite(wc) || !isfinite(bc) || fabsf(bc) > 64.0f * fabsf(wc)) return false;
  }
  return true;
}

/* x' with (x' - 0) * rstd = x^ = (y - b) / w, the input the group norm backward
 * kernel reads (with a zero mean): [B, C, S] from the saved y, in two passes
 * over y: x' = y * s + t with s = 1 / (w rstd), t = -b s per (sample, channel). */
static tt_tensor *group_norm_input_from_y(const norm_ctx *c) {
  int64_t B = c->kshape[0], C = c->kshape[1], S = c->kshape[2], G = c->groups;
  tt_tensor *y = tt_reshape(c->x, TT_DIMS(B, G, C / G, S));             // [B, G, C/G, S]
  tt_tensor *r = y ? tt_reshape(c->rstd, TT_DIMS(B, G, 1, 1)) : NULL;    // [B, G, 1, 1]
  tt_tensor *w = r && c->w ? tt_reshape(c->w, TT_DIMS(1, G, C / G, 1)) : NULL;
  tt_tensor *wr = !r ? NULL : w ? tt_mul(w, r) : tt_tensor_ref(r);     // [B, G, C/G or 1, 1]
  tt_tensor *sc = wr ? tt_reciprocal(wr) : NULL, *t = NULL;
  if (sc && c->b) {
    tt_tensor *b = tt_reshape(c->b, TT_DIMS(1, G, C / G, 1)), *bs = b ? tt_mul(b, sc) : NULL;
    t = bs ? tt_neg(bs) : NULL;
    tt_tensor_unref(b);
    tt_tensor_unref(bs);
  }
  tt_tensor *ys = sc && (t || !c->b) ? tt_mul(y, sc) : NULL;
  tt_tensor *xp = ys && t ? tt_add(ys, t) : tt_tensor_ref(ys);
  tt_tensor *tmp[] = {y, r, w, wr, sc, t, ys};
  for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tt_tensor_unref(tmp[i]);
  return xp;
}

typedef enum { NORM_GROUP, NORM_GROUP_SILU, NORM_LAYER, NORM_BATCH, NORM_BATCH_LRELU } norm_kind;

/* Shared backward: gx like x, gw and gb [C] when wanted. */
static tt_status norm_backward_common(norm_kind kind, tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  norm_ctx *c = n->ctx;
  if (!gy[0]) return TT_OK;
  tt_tensor *g = tt_contiguous(gy[0]);
  if (!g) return tt_last_status();
  int64_t C = c->kshape[1];
  tt_tensor *rx = NULL, *rw = NULL, *rb = NULL;
  tt_status s = TT_OK;
  if (tt_node_wants(n, 0) && !(rx = tt_tensor_new(TT_F32, c->x->ndim, c->x->shape, g->device))) s = tt_last_status();
  if (s == TT_OK && tt_node_wants(n, 1) && !(rw = tt_tensor_new(TT_F32, TT_DIMS(C), g->device))) s = tt_last_status();
  if (s == TT_OK && tt_node_wants(n, 2) && !(rb = tt_tensor_new(TT_F32, TT_DIMS(C), g->device))) s = tt_last_status();
  tt_tensor *xin = c->x, *mean = c->mean, *own_x = NULL, *zero_mean = NULL;
  if (s == TT_OK && c->from_y) {
    own_x = group_norm_input_from_y(c);
    zero_mean = own_x ? tt_zeros(TT_F32, c->mean->ndim, c->mean->shape, g->device) : NULL;
    if (!zero_mean) s = tt_last_status();
    xin = own_x;
    mean = zero_mean;
  }
  if (s == TT_OK) {
    tt_tensor vx = as_shape(xin, c->nd, c->kshape), vg = as_shape(g, c->nd, c->kshape), vgx;
    if (rx) vgx = as_shape(rx, c->nd, c->kshape);
    tt_tensor *pgx = rx ? &vgx : NULL;
    if (kind == NORM_GROUP) {
      tt_group_norm_bwd_fn f = TT_KERNEL(g->device, group_norm_bwd);
      s = f ? f(&vx, c->groups, c->w, mean, c->rstd, &vg, pgx, rw, rb) : tt_last_status();
    } else if (kind == NORM_GROUP_SILU) {
      tt_group_norm_silu_bwd_fn f = TT_KERNEL(g->device, group_norm_silu_bwd);
      s = f ? f(&vx, c->groups, c->w, c->b, c->mean, c->rstd, &vg, pgx, rw, rb) : tt_last_status();
    } else if (kind == NORM_LAYER) {
      tt_layer_norm_bwd_fn f = TT_KERNEL(g->device, layer_norm_bwd);
      s = f ? f(&vx, c->w, c->mean, c->rstd, &vg, pgx, rw, rb) : tt_last_status();
    } else if (kind == NORM_BATCH_LRELU) {
      tt_batch_norm_lrelu_bwd_fn f = TT_KERNEL(g->device, batch_norm_lrelu_bwd);
      s = f ? f(c->training, &vx, c->mean, c->rstd, c->w, c->b, c->slope, &vg, pgx, rw, rb) : tt_last_status();
    } else {
      tt_batch_norm_bwd_fn f = TT_KERNEL(g->device, batch_norm_bwd);
      s = f ? f(c->training, &vx, c->mean, c->rstd, c->w, &vg, pgx, rw, rb) : tt_last_status();
    }
  }
  tt_tensor_unref(g);
  tt_tensor_unref(own_x);
  tt_tensor_unref(zero_mean);
  if (s != TT_OK) {
    tt_tensor_unref(rx);
    tt_tensor_unref(rw);
    tt_tensor_unref(rb);
    return s;
  }
  gx[0] = rx;
  gx[1] = rw;
  gx[2] = rb;
  return TT_OK;
}

static tt_status group_norm_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  return norm_backward_common(NORM_GROUP, n, gy, gx);
}
static tt_status group_norm_silu_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  return norm_backward_common(NORM_GROUP_SILU, n, gy, gx);
}
static tt_status layer_norm_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  return norm_backward_common(NORM_LAYER, n, gy, gx);
}
static tt_status batch_norm_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  return norm_backward_common(NORM_BATCH, n, gy, gx);
}
static tt_status batch_norm_lrelu_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  return norm_backward_common(NORM_BATCH_LRELU, n, gy, gx);
}

/* Records the node (when any input needs a gradient); takes over xc, wc, mean, rstd. */
static void norm_record(const char *op, tt_backward_fn bwd, tt_tensor *x, tt_tensor *w, tt_tensor *b, tt_tensor *y,
                        tt_tensor *xc, tt_tensor *wc, tt_tensor *mean, tt_tensor *rstd, int groups, bool training,
                        int nd, const int64_t *kshape) {
  tt_tensor *args[3] = {x, w, b};
  tt_node *n = tt_node_new(op, bwd, norm_release, 3, args, 1, sizeof(norm_ctx));
  if (!n) {
    tt_tensor_unref(xc);
    tt_tensor_unref(wc);
    tt_tensor_unref(mean);
    tt_tensor_unref(rstd);
    return;
  }
  norm_ctx *c = n->ctx;
  c->x = xc;
  c->w = wc;
  c->mean = mean;
  c->rstd = rstd;
  c->groups = groups;
  c->training = training;
  c->nd = nd;
  memcpy(c->kshape, kshape, sizeof(int64_t) * (size_t)nd);
  tt_node_attach(n, 0, y);
  tt_node_unref(n);
}

/* Checks shared by group and batch norm: x [B, C, ...] f32, params [C]. */
static tt_status check_bc(const char *op, tt_tensor *x, tt_tensor *w, tt_tensor *b) {
  TT_TRY(tt_check_f32(op, "input", x));
  char s1[TT_SHAPE_BUF];
  if (x->ndim < 2)
    return tt_error(TT_ERR_INVALID, "%s: input must be [B, C, ...], found shape %s", op,
                    tt_tensor_shape_str(x, s1, sizeof s1));
  TT_TRY(check_param(op, "weight", w, x, x->shape[1]));
  TT_TRY(check_param(op, "bias", b, x, x->shape[1]));
  return TT_OK;
}

/* ---- group norm, and group norm + SiLU ---- */

/* What both group norms run: x viewed as [B, C, S], its contiguous copies, the
 * output and the statistics [B, groups]. */
typedef struct {
  tt_tensor *xc, *wc, *bc, *y, *mean, *rstd;
  int64_t kshape[3];
} gn_pass;

static void gn_pass_release(gn_pass *r) {
  tt_tensor *all[6] = {r->xc, r->wc, r->bc, r->y, r->mean, r->rstd};
  for (int i = 0; i < 6; i++) tt_tensor_unref(all[i]);
}

/* The checks and the forward kernel shared by group_norm (silu false) and
 * group_norm_silu; false (everything released) on an error. */
static bool gn_forward(const char *op, bool silu, tt_tensor *x, int groups, tt_tensor *weight, tt_tensor *bias,
                       float eps, gn_pass *r) {
  memset(r, 0, sizeof *r);
  if (check_bc(op, x, weight, bias)) return false;
  char s1[TT_SHAPE_BUF];
  int64_t B = x->shape[0], C = x->shape[1];
  if (groups <= 0 || C % groups != 0) {
    tt_error(TT_ERR_INVALID, "%s: %lld channels of input %s do not split into %d groups", op, (long long)C,
             tt_tensor_shape_str(x, s1, sizeof s1), groups);
    return false;
  }
  if (!(eps >= 0)) {
    tt_error(TT_ERR_INVALID, "%s: eps must be >= 0, found %g", op, (double)eps);
    return false;
  }
  tt_group_norm_fwd_fn f = silu ? TT_KERNEL(x->device, group_norm_silu_fwd) : TT_KERNEL(x->device, group_norm_fwd);
  if (!f) return false;
  int64_t S = B * C != 0 ? tt_tensor_numel(x) / (B * C) : 0;
  r->kshape[0] = B, r->kshape[1] = C, r->kshape[2] = S;
  r->xc = plain_contiguous(x), r->wc = plain_contiguous(weight), r->bc = plain_contiguous(bias);
  r->y = r->xc ? tt_tensor_new(TT_F32, x->ndim, x->shape, x->device) : NULL;
  r->mean = r->y ? tt_tensor_new(TT_F32, TT_DIMS(B, groups), x->device) : NULL;
  r->rstd = r->mean ? tt_tensor_new(TT_F32, TT_DIMS(B, groups), x->device) : NULL;
  bool ok = r->rstd && (!weight || r->wc) && (!bias || r->bc);
  if (ok) {
    tt_tensor vx = as_shape(r->xc, 3, r->kshape), vy = as_shape(r->y, 3, r->kshape);
    ok = f(&vx, groups, eps, r->wc, r->bc, &vy, r->mean, r->rstd) == TT_OK;
  }
  if (!ok) gn_pass_release(r);
  return ok;
}

/* A node of either group norm keeping `saved` (y for group_norm, x for the fused
 * op), the parameters and the statistics; the pass's references (and `saved`)
 * move into it. NULL, nothing moved, when no node was made; else the node,
 * which r->y holds. */
static tt_node *gn_record(const char *op, tt_backward_fn bwd, tt_tensor *x, tt_tensor *weight, tt_tensor *bias,
                          int groups, tt_tensor *saved, bool from_y, gn_pass *r) {
  tt_tensor *args[3] = {x, weight, bias};
  tt_node *n = tt_node_new(op, bwd, norm_release, 3, args, 1, sizeof(norm_ctx));
  if (!n) return NULL;
  norm_ctx *c = n->ctx;
  c->x = saved;
  c->from_y = from_y;
  c->w = r->wc;
  c->b = r->bc;
  c->mean = r->mean;
  c->rstd = r->rstd;
  c->groups = groups;
  c->nd = 3;
  memcpy(c->kshape, r->kshape, sizeof r->kshape);
  tt_node_attach(n, 0, r->y);
  tt_node_unref(n);   /* r->y holds it */
  r->wc = r->bc = r->mean = r->rstd = NULL;
  return n;
}

tt_tensor *tt_group_norm(tt_tensor *x, int groups, tt_tensor *weight, tt_tensor *bias, float eps) {
  TT_PROFILE_OP("group_norm");
  const char *op = "group_norm";
  gn_pass r;
  if (!gn_forward(op, false, x, groups, weight, bias, eps, &r)) return NULL;
  tt_tensor *y = r.y;
  bool recorded = tt_grad_enabled() && (tt_requires_grad(x) || tt_requires_grad(weight) || tt_requires_grad(bias));
  if (recorded && group_norm_invertible(r.wc, r.bc)) {
    tt_tensor *yd = tt_detach(y);   /* y, not x: see group_norm_invertible */
    if (yd && !gn_record(op, group_norm_backward, x, weight, bias, groups, yd, true, &r)) tt_tensor_unref(yd);
    r.y = NULL;
    gn_pass_release(&r);
    return y;
  }
  tt_tensor_unref(r.bc);
  norm_record(op, group_norm_backward, x, weight, bias, y, r.xc, r.wc, r.mean, r.rstd, groups, false, 3, r.kshape);
  return y;
}

/* The output again from the saved input: the forward kernel is deterministic
 * (each group's statistics are one thread's), so y and the statistics come out
 * bit for bit as they did; the statistics are dropped. */
static tt_tensor *group_norm_silu_recompute(tt_node *n, int k) {
  (void)k;
  norm_ctx *c = n->ctx;
  tt_group_norm_silu_fwd_fn f = TT_KERNEL(c->x->device, group_norm_silu_fwd);
  if (!f) return NULL;
  tt_tensor *y = tt_tensor_new(TT_F32, c->x->ndim, c->x->shape, c->x->device);
  tt_tensor *mean = y ? tt_tensor_new(TT_F32, c->mean->ndim, c->mean->shape, c->x->device) : NULL;
  tt_tensor *rstd = mean ? tt_tensor_new(TT_F32, c->rstd->ndim, c->rstd->shape, c->x->device) : NULL;
  tt_status s = rstd ? TT_OK : tt_last_status();
  if (s == TT_OK) {
    tt_tensor vx = as_shape(c->x, 3, c->kshape), vy = as_shape(y, 3, c->kshape);
    s = f(&vx, c->groups, c->eps, c->w, c->b, &vy, mean, rstd);
  }
  tt_tensor_unref(mean);
  tt_tensor_unref(rstd);
  if (s != TT_OK) tt_tensor_release(&y);
  return y;
}

tt_tensor *tt_group_norm_silu(tt_tensor *x, int groups, tt_tensor *weight, tt_tensor *bias, float eps) {
  TT_PROFILE_OP("group_norm_silu");
  gn_pass r;
  if (!gn_forward("group_norm_silu", true, x, groups, weight, bias, eps, &r)) return NULL;
  tt_tensor *y = r.y;
  /* the backward recomputes h from x: x, w, b and the statistics are all it keeps */
  tt_node *n = gn_record("group_norm_silu", group_norm_silu_backward, x, weight, bias, groups, r.xc, false, &r);
  if (n) {
    r.xc = NULL;
    ((norm_ctx *)n->ctx)->eps = eps;
    if (tt_recompute_mode() & TT_RECOMPUTE_NORM_ACT) n->recompute = group_norm_silu_recompute;
  }
  r.y = NULL;
  gn_pass_release(&r);
  return y;
}

/* ---- layer norm ---- */

tt_tensor *tt_layer_norm(tt_tensor *x, tt_tensor *weight, tt_tensor *bias, float eps) {
  TT_PROFILE_OP("layer_norm");
  const char *op = "layer_norm";
  if (tt_check_f32(op, "input", x)) return NULL;
  char s1[TT_SHAPE_BUF];
  if (x->ndim < 1) {
    tt_error(TT_ERR_INVALID, "layer_norm: input must have at least 1 dim, found shape %s",
             tt_tensor_shape_str(x, s1, sizeof s1));
    return NULL;
  }
  int64_t E = x->shape[x->ndim - 1], N = E ? tt_tensor_numel(x) / E : 0;
  if (check_param(op, "weight", weight, x, E) || check_param(op, "bias", bias, x, E)) return NULL;
  if (!(eps >= 0)) {
    tt_error(TT_ERR_INVALID, "layer_norm: eps must be >= 0, found %g", (double)eps);
    return NULL;
  }
  tt_layer_norm_fwd_fn f = TT_KERNEL(x->device, layer_norm_fwd);
  if (!f) return NULL;
  int64_t kshape[3] = {N, E, 0};
  tt_tensor *xc = plain_contiguous(x), *wc = plain_contiguous(weight), *bc = plain_contiguous(bias);
  tt_tensor *y = xc ? tt_tensor_new(TT_F32, x->ndim, x->shape, x->device) : NULL;
  tt_tensor *mean = y ? tt_tensor_new(TT_F32, TT_DIMS(N), x->device) : NULL;
  tt_tensor *rstd = mean ? tt_tensor_new(TT_F32, TT_DIMS(N), x->device) : NULL;
  bool ok = rstd && (!weight || wc) && (!bias || bc);
  if (ok) {
    tt_tensor vx = as_shape(xc, 2, kshape), vy = as_shape(y, 2, kshape);
    ok = f(&vx, eps, wc, bc, &vy, mean, rstd) == TT_OK;
  }
  tt_tensor_unref(bc);
  if (!ok) {
    tt_tensor_unref(xc);
    tt_tensor_unref(wc);
    tt_tensor_unref(y);
    tt_tensor_unref(mean);
    tt_tensor_unref(rstd);
    return NULL;
  }
  /* the backward's gw, gb are [E]: kshape[1] doubles as the parameter size */
  norm_record(op, layer_norm_backward, x, weight, bias, y, xc, wc, mean, rstd, 0, false, 2, kshape);
  return y;
}

/* ---- batch norm ---- */

/* running = (1 - momentum) * running + momentum * scale * batch, in place. */
static tt_status update_running(tt_tensor *running, float momentum, float scale, tt_tensor *batch) {
  tt_tensor *t = tt_affine(running, 1.0 - (double)momentum, 0.0);
  tt_status s = t ? tt_axpy_(t, momentum * scale, batch) : tt_last_status();
  if (s == TT_OK) s = tt_copy_(running, t);
  tt_tensor_unref(t);
  return s;
}

/* The checks, statistics, running-stat update and apply kernel shared by
 * batch_norm (lrelu false) and batch_norm_leaky_relu; NULL on an error. On
 * success *xc, *wc, *bc (contiguous, detached; NULL where absent), *mean and
 * *rstd [C] are the caller's, and kshape is x viewed as [B, C, S]. */
static tt_tensor *bn_forward(const char *op, tt_tensor *x, tt_tensor *weight, tt_tensor *bias,
                             tt_tensor *running_mean, tt_tensor *running_var, bool training, float momentum,
                             float eps, bool lrelu, float slope, tt_tensor **xc_out, tt_tensor **wc_out,
                             tt_tensor **bc_out, tt_tensor **mean_out, tt_tensor **rstd_out, int64_t kshape[3]) {
  if (check_bc(op, x, weight, bias)) return NULL;
  int64_t B = x->shape[0], C = x->shape[1];
  if (check_param(op, "running_mean", running_mean, x, C) || check_param(op, "running_var", running_var, x, C))
    return NULL;
  char s1[TT_SHAPE_BUF];
  int64_t count = C ? tt_tensor_numel(x) / C : 0, S = B ? count / B : 0;
  if (training && count <= 1) {
    tt_error(TT_ERR_INVALID, "%s: training needs more than 1 value per channel, input is %s", op,
             tt_tensor_shape_str(x, s1, sizeof s1));
    return NULL;
  }
  if (!training && (!running_mean || !running_var)) {
    tt_error(TT_ERR_INVALID, "%s: eval mode needs running_mean and running_var (%s is NULL)", op,
             running_mean ? "running_var" : "running_mean");
    return NULL;
  }
  if (!(eps >= 0) || !(momentum >= 0 && momentum <= 1)) {
    tt_error(TT_ERR_INVALID, "%s: eps must be >= 0 and momentum in [0, 1], found eps %g, momentum %g", op,
             (double)eps, (double)momentum);
    return NULL;
  }
  if (lrelu && !isfinite(slope)) {
    tt_error(TT_ERR_INVALID, "%s: the negative slope must be finite, found %g", op, (double)slope);
    return NULL;
  }
  tt_batch_norm_apply_fn apply = lrelu ? NULL : TT_KERNEL(x->device, batch_norm_apply);
  tt_batch_norm_lrelu_apply_fn apply_lrelu = lrelu ? TT_KERNEL(x->device, batch_norm_lrelu_apply) : NULL;
  tt_batch_norm_stats_fn stats = apply || apply_lrelu ? TT_KERNEL(x->device, batch_norm_stats) : NULL;
  if (!stats) return NULL;
  kshape[0] = B, kshape[1] = C, kshape[2] = S;
  tt_tensor *xc = plain_contiguous(x), *wc = plain_contiguous(weight), *bc = plain_contiguous(bias);
  tt_tensor *mean = NULL, *var = NULL, *rstd = NULL, *y = NULL;
  bool prev = tt_grad_set_enabled(false);
  tt_status s = xc && (!weight || wc) && (!bias || bc) ? TT_OK : tt_last_status();
  if (s == TT_OK && training) {
    mean = tt_tensor_new(TT_F32, TT_DIMS(C), x->device);
    var = mean ? tt_tensor_new(TT_F32, TT_DIMS(C), x->device) : NULL;
    if (!var) s = tt_last_status();
    if (s == TT_OK) {
      tt_tensor vx = as_shape(xc, 3, kshape);
      s = stats(&vx, mean, var);
    }
    /* PyTorch keeps the unbiased variance: var * N / (N - 1) */
    if (s == TT_OK && running_mean) s = update_running(running_mean, momentum, 1.0f, mean);
    if (s == TT_OK && running_var)
      s = update_running(running_var, momentum, (float)((double)count / (double)(count - 1)), var);
  } else if (s == TT_OK) {
    /* a snapshot: later training calls update the running stats in place */
    mean = tt_clone(running_mean);
    var = mean ? tt_contiguous(running_var) : NULL;
    if (!var) s = tt_last_status();
  }
  if (s == TT_OK) {
    tt_tensor *ve = tt_add_scalar(var, (double)eps);
    rstd = ve ? tt_pow_scalar(ve, -0.5) : NULL;
    tt_tensor_unref(ve);
    if (!rstd) s = tt_last_status();
  }
  if (s == TT_OK) {
    y = tt_tensor_new(TT_F32, x->ndim, x->shape, x->device);
    if (!y) s = tt_last_status();
  }
  if (s == TT_OK) {
    tt_tensor vx = as_shape(xc, 3, kshape), vy = as_shape(y, 3, kshape);
    s = lrelu ? apply_lrelu(&vx, mean, rstd, wc, bc, slope, &vy) : apply(&vx, mean, rstd, wc, bc, &vy);
  }
  tt_grad_set_enabled(prev);
  tt_tensor_unref(var);
  if (s != TT_OK) {
    tt_tensor *all[] = {xc, wc, bc, mean, rstd, y};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) tt_tensor_unref(all[i]);
    return NULL;
  }
  *xc_out = xc, *wc_out = wc, *bc_out = bc, *mean_out = mean, *rstd_out = rstd;
  return y;
}

tt_tensor *tt_batch_norm(tt_tensor *x, tt_tensor *weight, tt_tensor *bias, tt_tensor *running_mean,
                         tt_tensor *running_var, bool training, float momentum, float eps) {
  TT_PROFILE_OP("batch_norm");
  tt_tensor *xc, *wc, *bc, *mean, *rstd;
  int64_t kshape[3];
  tt_tensor *y = bn_forward("batch_norm", x, weight, bias, running_mean, running_var, training, momentum, eps, false,
                            0.0f, &xc, &wc, &bc, &mean, &rstd, kshape);
  if (!y) return NULL;
  tt_tensor_unref(bc);
  norm_record("batch_norm", batch_norm_backward, x, weight, bias, y, xc, wc, mean, rstd, 0, training, 3, kshape);
  return y;
}

/* The output again from the saved input and statistics (the apply kernel alone:
 * the same values, bit for bit). */
static tt_tensor *batch_norm_lrelu_recompute(tt_node *n, int k) {
  (void)k;
  norm_ctx *c = n->ctx;
  tt_batch_norm_lrelu_apply_fn f = TT_KERNEL(c->x->device, batch_norm_lrelu_apply);
  tt_tensor *y = f ? tt_tensor_new(TT_F32, c->x->ndim, c->x->shape, c->x->device) : NULL;
  if (!y) return NULL;
  tt_tensor vx = as_shape(c->x, 3, c->kshape), vy = as_shape(y, 3, c->kshape);
  if (f(&vx, c->mean, c->rstd, c->w, c->b, c->slope, &vy) != TT_OK) tt_tensor_release(&y);
  return y;
}

tt_tensor *tt_batch_norm_leaky_relu(tt_tensor *x, tt_tensor *weight, tt_tensor *bias, tt_tensor *running_mean,
                                    tt_tensor *running_var, bool training, float momentum, float eps, float slope) {
  TT_PROFILE_OP("batch_norm_leaky_relu");
  const char *op = "batch_norm_leaky_relu";
  tt_tensor *xc, *wc, *bc, *mean, *rstd;
  int64_t kshape[3];
  tt_tensor *y = bn_forward(op, x, weight, bias, running_mean, running_var, training, momentum, eps, true, slope, &xc,
                            &wc, &bc, &mean, &rstd, kshape);
  if (!y) return NULL;
  /* the backward recomputes h from x for its sign: x, w, b and the statistics are
   * all it keeps (the unfused pair keeps x and h) */
  tt_tensor *args[3] = {x, weight, bias};
  tt_node *n = tt_node_new(op, batch_norm_lrelu_backward, norm_release, 3, args, 1, sizeof(norm_ctx));
  if (!n) {
    tt_tensor *all[] = {xc, wc, bc, mean, rstd};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) tt_tensor_unref(all[i]);
    return y;
  }
  norm_ctx *c = n->ctx;
  c->x = xc, c->w = wc, c->b = bc, c->mean = mean, c->rstd = rstd;
  c->training = training;
  c->slope = slope;
  c->nd = 3;
  memcpy(c->kshape, kshape, sizeof c->kshape);
  if (tt_recompute_mode() & TT_RECOMPUTE_NORM_ACT) n->recompute = batch_norm_lrelu_recompute;
  tt_node_attach(n, 0, y);
  tt_node_unref(n);
  return y;
}

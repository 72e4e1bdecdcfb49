/* ops/resample.c — nearest upsampling and max/average pooling (with backward) and
 * interpolation (forward only) of NCHW maps. */
#include "config.h"
#include "common.h"

static tt_status check_map(const char *op, const tt_tensor *x) {
  TT_TRY(tt_check_f32(op, "input", x));
  return tt_check_ndim(op, "input", x, 4);
}

/* ---- nearest upsampling ---- */

typedef struct {
  int scale;
} upsample_ctx;

static tt_status upsample_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  upsample_ctx *c = n->ctx;
  if (!gy[0] || !tt_node_wants(n, 0)) return TT_OK;
  tt_upsample_nearest_bwd_fn f = TT_KERNEL(gy[0]->device, upsample_nearest_bwd);
  if (!f) return tt_last_status();
  tt_tensor *g = tt_contiguous(gy[0]);   // [B, C, H*s, W*s]
  tt_tensor *r = g ? tt_tensor_new(TT_F32, 4, n->in[0]->shape, g->device) : NULL;   // [B, C, H, W]
  tt_status s = r ? f(c->scale, c->scale, g, r) : tt_last_status();
  tt_tensor_unref(g);
  if (s != TT_OK) {
    tt_tensor_unref(r);
    return s;
  }
  gx[0] = r;
  return TT_OK;
}

tt_tensor *tt_upsample_nearest(tt_tensor *x, int scale) {
  TT_PROFILE_OP("upsample_nearest");
  if (check_map("upsample_nearest", x)) return NULL;
  if (scale < 1) {
    tt_error(TT_ERR_INVALID, "upsample_nearest: scale must be >= 1, found %d", scale);
    return NULL;
  }
  tt_upsample_nearest_fwd_fn f = TT_KERNEL(x->device, upsample_nearest_fwd);
  if (!f) return NULL;
  bool prev = tt_grad_set_enabled(false);
  tt_tensor *xc = tt_contiguous(x);
  tt_grad_set_enabled(prev);
  // [B, C, H, W] -> [B, C, H*s, W*s]
  tt_tensor *y = xc ? tt_tensor_new(TT_F32, TT_DIMS(x->shape[0], x->shape[1], x->shape[2] * scale,
                                                   x->shape[3] * scale), x->device) : NULL;
  tt_status s = y ? f(scale, scale, xc, y) : tt_last_status();
  tt_tensor_unref(xc);
  if (s != TT_OK) {
    tt_tensor_unref(y);
    return NULL;
  }
  tt_node *n = tt_node_new("upsample_nearest", upsample_backward, NULL, 1, &x, 1, sizeof(upsample_ctx));
  if (n) {
    ((upsample_ctx *)n->ctx)->scale = scale;
    tt_node_attach(n, 0, y);
    tt_node_unref(n);
  }
  return y;
}

/* ---- pooling ---- */

typedef struct {
  tt_pool2d_params p;
  tt_tensor *argmax;   /* [B, C, Ho, Wo] i64 for MAX */
} pool_ctx;

static void pool_release(tt_node *n) { tt_tensor_release(&((pool_ctx *)n->ctx)->argmax); }

static tt_status pool_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  pool_ctx *c = n->ctx;
  if (!gy[0] || !tt_node_wants(n, 0)) return TT_OK;
  tt_pool2d_bwd_fn f = TT_KERNEL(gy[0]->device, pool2d_bwd);
  if (!f) return tt_last_status();
  tt_tensor *g = tt_contiguous(gy[0]);
  tt_tensor *r = g ? tt_tensor_new(TT_F32, 4, n->in[0]->shape, g->device) : NULL;
  tt_status s = r ? f(&c->p, g, c->argmax, r) : tt_last_status();
  tt_tensor_unref(g);
  if (s != TT_OK) {
    tt_tensor_unref(r);
    return s;
  }
  gx[0] = r;
  return TT_OK;
}

static tt_tensor *pool2d(const char *op, tt_tensor *x, const tt_pool2d_params *pp) {
  TT_PROFILE_OP(op);
  if (check_map(op, x)) return NULL;
  char b[TT_SHAPE_BUF];
  tt_pool2d_params p = *pp;
  if (p.kernel_h < 1 || p.kernel_w < 1 || p.stride_h < 1 || p.stride_w < 1) {
    if (p.kernel_h == p.kernel_w && p.stride_h == p.stride_w)
      tt_error(TT_ERR_INVALID, "%s: kernel and stride must be >= 1, found kernel %d, stride %d", op, p.kernel_h,
               p.stride_h);
    else
      tt_error(TT_ERR_INVALID, "%s: kernel and stride must be >= 1, found kernel %dx%d, stride %dx%d", op,
               p.kernel_h, p.kernel_w, p.stride_h, p.stride_w);
    return NULL;
  }
  if (p.pad_h < 0 || p.pad_w < 0 || p.pad_h > p.kernel_h / 2 || p.pad_w > p.kernel_w / 2) {
    tt_error(TT_ERR_INVALID, "%s: padding %dx%d must be between 0 and half the %dx%d kernel", op, p.pad_h, p.pad_w,
             p.kernel_h, p.kernel_w);
    return NULL;
  }
  if (x->shape[2] + 2 * p.pad_h < p.kernel_h || x->shape[3] + 2 * p.pad_w < p.kernel_w) {
    tt_error(TT_ERR_INVALID, "%s: input %s is smaller than the %dx%d window", op,
             tt_tensor_shape_str(x, b, sizeof b), p.kernel_h, p.kernel_w);
    return NULL;
  }
  tt_pool2d_fwd_fn f = TT_KERNEL(x->device, pool2d_fwd);
  if (!f) return NULL;
  int64_t sh[4] = {x->shape[0], x->shape[1], (x->shape[2] + 2 * p.pad_h - p.kernel_h) / p.stride_h + 1,
                   (x->shape[3] + 2 * p.pad_w - p.kernel_w) / p.stride_w + 1};
  bool prev = tt_grad_set_enabled(false);
  tt_tensor *xc = tt_contiguous(x);
  tt_grad_set_enabled(prev);
  tt_tensor *y = xc ? tt_tensor_new(TT_F32, 4, sh, x->device) : NULL;   // [B, C, Ho, Wo]
  tt_tensor *am = (y && p.mode == TT_POOL_MAX) ? tt_tensor_new(TT_I64, 4, sh, x->device) : NULL;
  tt_status s = (y && (p.mode != TT_POOL_MAX || am)) ? f(&p, xc, y, am) : tt_last_status();
  tt_tensor_unref(xc);
  if (s != TT_OK) {
    tt_tensor_unref(y);
    tt_tensor_unref(am);
    return NULL;
  }
  tt_node *n = tt_node_new(op, pool_backward, pool_release, 1, &x, 1, sizeof(pool_ctx));
  if (n) {
    pool_ctx *c = n->ctx;
    c->p = p;
    c->argmax = am;
    am = NULL;
    tt_node_attach(n, 0, y);
    tt_node_unref(n);
  }
  tt_tensor_unref(am);
  return y;
}

tt_tensor *tt_max_pool2d(tt_tensor *x, int kernel, int stride) {
  return pool2d("max_pool2d", x, &(tt_pool2d_params){TT_POOL_MAX, kernel, kernel, stride, stride, 0, 0, false});
}
tt_tensor *tt_avg_pool2d(tt_tensor *x, int kernel, int stride) {
  return pool2d("avg_pool2d", x, &(tt_pool2d_params){TT_POOL_AVG, kernel, kernel, stride, stride, 0, 0, false});
}
tt_tensor *tt_pool2d(tt_tensor *x, const tt_pool2d_params *p) {
  if (!p) {
    tt_error(TT_ERR_INVALID, "pool2d: NULL parameters");
    return NULL;
  }
  return pool2d(p->mode == TT_POOL_MAX ? "max_pool2d" : "avg_pool2d", x, p);
}

/* ---- interpolation ---- */

tt_tensor *tt_interpolate(tt_tensor *x, int64_t oh, int64_t ow, tt_interp_mode mode) {
  TT_PROFILE_OP("interpolate");
  if (check_map("interpolate", x)) return NULL;
  char b[TT_SHAPE_BUF];
  if (oh < 1 || ow < 1) {
    tt_error(TT_ERR_INVALID, "interpolate: output size must be >= 1, found %lldx%lld", (long long)oh, (long long)ow);
    return NULL;
  }
  if (mode < TT_INTERP_NEAREST || mode > TT_INTERP_BICUBIC) {
    tt_error(TT_ERR_INVALID, "interpolate: unknown mode %d", (int)mode);
    return NULL;
  }
  if (x->shape[2] < 1 || x->shape[3] < 1) {
    tt_error(TT_ERR_INVALID, "interpolate: empty input %s", tt_tensor_shape_str(x, b, sizeof b));
    return NULL;
  }
  /* It resizes conditions during preprocessing, where no gradient flows; refusing is
   * better than silently cutting the graph. */
  if (tt_grad_enabled() && tt_requires_grad(x)) {
    tt_error(TT_ERR_UNSUPPORTED, "interpolate: has no gradient, but input %s requires one; detach it or "
             "disable gradients around the call", tt_tensor_shape_str(x, b, sizeof b));
    return NULL;
  }
  tt_interpolate_fwd_fn f = TT_KERNEL(x->device, interpolate_fwd);
  if (!f) return NULL;
  tt_tensor *xc = tt_contiguous(x);
  tt_tensor *y = xc ? tt_tensor_new(TT_F32, TT_DIMS(x->shape[0], x->shape[1], oh, ow), x->device) : NULL;
  tt_status s = y ? f(mode, xc, y) : tt_last_status();
  tt_tensor_unref(xc);
  if (s != TT_OK) {
    tt_tensor_unref(y);
    return NULL;
  }
  return y;
}

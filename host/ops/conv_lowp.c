/* ops/conv_lowp.c — convolutions with bf16 weights for inference: packing f32
 * weights once, and the forward op that hands the pack's kernel state to the
 * backend (taming/ops/conv_lowp.h). */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "common.h"

struct tt_conv2d_packed {
  tt_tensor *w;    /* bf16 [Co, Ci, kh, kw] on the device it was packed for */
  void *cache;     /* the backend kernel's state for w (reordered weights, plans) */
};

bool tt_conv2d_bf16_supported(tt_device dev, const char **isa) {
  bool ok = tt_backend_supports(dev, "conv2d_bf16");
  if (isa) {
    tt_conv2d_bf16_isa_fn f = tt_backend_supports(dev, "conv2d_bf16_isa") ? TT_KERNEL(dev, conv2d_bf16_isa) : NULL;
    *isa = f ? f() : "no bf16 convolution kernel on this device";
  }
  return ok;
}

tt_conv2d_packed *tt_conv2d_pack(tt_tensor *w, tt_dtype dt) {
  char b[TT_SHAPE_BUF];
  if (w->dtype != TT_F32 || w->ndim != 4) {
    tt_error(TT_ERR_INVALID, "conv2d_pack: weight%s%s must be f32 [Co, Ci, kh, kw], found %s %s",
             w->name ? " " : "", w->name ? w->name : "", tt_dtype_name(w->dtype), tt_tensor_shape_str(w, b, sizeof b));
    return NULL;
  }
  if (dt != TT_BF16) {
    tt_error(TT_ERR_UNSUPPORTED, "conv2d_pack: packs to bf16, not %s", tt_dtype_name(dt));
    return NULL;
  }
  tt_conv2d_packed *pk = calloc(1, sizeof *pk);
  if (!pk) {
    tt_error(TT_ERR_NOMEM, "conv2d_pack: out of memory");
    return NULL;
  }
  bool prev = tt_grad_set_enabled(false);
  pk->w = tt_cast(w, TT_BF16);   /* rounds to nearest even */
  tt_grad_set_enabled(prev);
  if (!pk->w) {
    free(pk);
    return NULL;
  }
  return pk;
}

void tt_conv2d_packed_free(tt_conv2d_packed *pk) {
  if (!pk) return;
  if (pk->cache && tt_backend_supports(pk->w->device, "conv2d_bf16_cache_free")) {
    tt_conv2d_bf16_cache_free_fn f = TT_KERNEL(pk->w->device, conv2d_bf16_cache_free);
    if (f) f(pk->cache);
  }
  tt_tensor_unref(pk->w);
  free(pk);
}

/* Checks x (channels-last when nhwc), bias and p against the pack, for the input x upsampled
 * by up; the output's size in *ho, *wo. */
static tt_status packed_check(const char *op, const tt_conv2d_packed *pk, tt_tensor *x, tt_tensor *bias,
                              const tt_conv2d_params *p, int up, bool nhwc, int64_t *ho, int64_t *wo) {
  char s1[TT_SHAPE_BUF], s2[TT_SHAPE_BUF];
  if (!pk || !p) return tt_error(TT_ERR_INVALID, "%s: the pack or the params are missing", op);
  tt_tensor *w = pk->w, *args[3] = {x, w, bias ? bias : x};
  if (tt_check_f32(op, "input", x) || (bias && tt_check_f32(op, "bias", bias)) ||
      tt_check_same_device(op, 3, args) || tt_check_ndim(op, "input", x, 4))
    return tt_last_status();
  if (p->stride_h < 1 || p->stride_w < 1 || p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 ||
      p->pad_right < 0)
    return tt_error(TT_ERR_INVALID, "%s: stride must be >= 1 and padding >= 0, found stride %dx%d, padding "
                    "top %d bottom %d left %d right %d", op, p->stride_h, p->stride_w, p->pad_top, p->pad_bottom,
                    p->pad_left, p->pad_right);
  int64_t B = x->shape[0], Ci = x->shape[nhwc ? 3 : 1], H = x->shape[nhwc ? 1 : 2] * up,
          W = x->shape[nhwc ? 2 : 3] * up;
  int64_t Co = w->shape[0], kh = w->shape[2], kw = w->shape[3];
  if (w->shape[1] != Ci || B < 1)
    return tt_error(TT_ERR_INVALID, nhwc ? "%s: packed weight %s expects [B >= 1, H, W, %lld], found input %s"
                                         : "%s: packed weight %s expects [B >= 1, %lld, H, W], found input %s",
                    op, tt_tensor_shape_str(w, s1, sizeof s1), (long long)w->shape[1],
                    tt_tensor_shape_str(x, s2, sizeof s2));
  if (bias && (bias->ndim != 1 || bias->shape[0] != Co))
    return tt_error(TT_ERR_INVALID, "%s: bias must be [%lld] for packed weight %s, found %s", op, (long long)Co,
                    tt_tensor_shape_str(w, s1, sizeof s1), tt_tensor_shape_str(bias, s2, sizeof s2));
  int64_t hp = H + p->pad_top + p->pad_bottom, wp = W + p->pad_left + p->pad_right;
  if (hp < kh || wp < kw)
    return tt_error(TT_ERR_INVALID, "%s: padded input %lldx%lld (input %s) is smaller than the kernel %lldx%lld", op,
                    (long long)hp, (long long)wp, tt_tensor_shape_str(x, s1, sizeof s1), (long long)kh, (long long)kw);
  *ho = (hp - kh) / p->stride_h + 1, *wo = (wp - kw) / p->stride_w + 1;
  return TT_OK;
}

tt_tensor *tt_conv2d_packed_forward(tt_conv2d_packed *pk, tt_tensor *x, tt_tensor *bias, const tt_conv2d_params *p) {
  TT_PROFILE_OP("conv2d_bf16");
  int64_t Ho, Wo;
  if (packed_check("conv2d_bf16", pk, x, bias, p, 1, false, &Ho, &Wo) != TT_OK) return NULL;
  tt_tensor *w = pk->w;
  tt_conv2d_bf16_fn f = TT_KERNEL(x->device, conv2d_bf16);   /* the CPU's oneDNN kernel, or cuDNN on CUDA */
  if (!f) return NULL;
  tt_tensor *xc = tt_contiguous(x), *bc = xc && bias ? tt_contiguous(bias) : NULL;
  tt_tensor *y = xc && (!bias || bc) ? tt_tensor_new(TT_F32, TT_DIMS(x->shape[0], w->shape[0], Ho, Wo), x->device)
                                     : NULL;
  tt_status s = y ? f(&pk->cache, p, xc, w, bc, y) : tt_last_status();
  tt_tensor_unref(xc);
  tt_tensor_unref(bc);
  if (s != TT_OK) tt_tensor_release(&y);
  return y;
}

/* f's tensors against x [B, Ci, H, W] and the output [B, Co, Ho, Wo] */
static tt_status fuse_check(const tt_conv2d_fuse *f, const tt_tensor *x, int64_t Co, int64_t Ho, int64_t Wo) {
  const char *op = "conv2d_bf16_fused";
  char s1[TT_SHAPE_BUF];
  int64_t Ci = x->shape[f->in_nhwc ? 3 : 1];
  if (f->upsample != 1 && f->upsample != 2)
    return tt_error(TT_ERR_INVALID, "%s: upsample must be 1 or 2, found %d", op, f->upsample);
  if (f->groups < 0 || (f->groups > 0 && Ci % f->groups != 0))
    return tt_error(TT_ERR_INVALID, "%s: %lld input channels do not split into %d groups", op, (long long)Ci,
                    f->groups);
  if (f->silu && f->groups == 0) return tt_error(TT_ERR_INVALID, "%s: SiLU is fused only after a group norm", op);
  const tt_tensor *nw[2] = {f->norm_w, f->norm_b};
  const char *nn[2] = {"norm weight", "norm bias"};
  for (int i = 0; i < 2; i++) {
    if (!nw[i]) continue;
    if (tt_check_f32(op, nn[i], nw[i])) return tt_last_status();
    if (nw[i]->ndim != 1 || nw[i]->shape[0] != Ci || !tt_tensor_is_contiguous(nw[i]) || nw[i]->device != x->device)
      return tt_error(TT_ERR_INVALID, "%s: %s must be contiguous [%lld] on the input's device, found %s", op, nn[i],
                      (long long)Ci, tt_tensor_shape_str(nw[i], s1, sizeof s1));
  }
  const tt_tensor *r = f->residual;
  if (r && f->out_nhwc) return tt_error(TT_ERR_INVALID, "%s: a residual is added to an NCHW output only", op);
  if (r) {
    if (tt_check_f32(op, "residual", r)) return tt_last_status();
    if (r->ndim != 4 || r->shape[0] != x->shape[0] || r->shape[1] != Co || r->shape[2] != Ho || r->shape[3] != Wo ||
        r->device != x->device)
      return tt_error(TT_ERR_INVALID, "%s: residual must be [%lld, %lld, %lld, %lld] on the input's device, found %s",
                      op, (long long)x->shape[0], (long long)Co, (long long)Ho, (long long)Wo,
                      tt_tensor_shape_str(r, s1, sizeof s1));
  }
  return TT_OK;
}

/* The fused steps as separate ops, for a backend without the fused kernel. */
static tt_tensor *fused_by_parts(tt_conv2d_packed *pk, tt_tensor *x, tt_tensor *bias, const tt_conv2d_params *p,
                                 const tt_conv2d_fuse *f) {
  static const int to_nchw[4] = {0, 3, 1, 2}, to_nhwc[4] = {0, 2, 3, 1};
  tt_tensor *nw = (tt_tensor *)f->norm_w, *nb = (tt_tensor *)f->norm_b;
  tt_tensor *xt = f->in_nhwc ? tt_permute(x, to_nchw) : NULL;
  if (f->in_nhwc) {
    if (!xt) return NULL;
    x = xt;
  }
  tt_tensor *h = f->groups == 0 ? tt_tensor_ref(x)
                 : f->silu      ? tt_group_norm_silu(x, f->groups, nw, nb, f->eps)
                                : tt_group_norm(x, f->groups, nw, nb, f->eps);
  if (h && f->upsample > 1) {
    tt_tensor *u = tt_upsample_nearest(h, f->upsample);
    tt_tensor_unref(h);
    h = u;
  }
  tt_tensor *y = h ? tt_conv2d_packed_forward(pk, h, bias, p) : NULL;
  tt_tensor_unref(h);
  tt_tensor_unref(xt);
  if (y && f->residual) {
    tt_tensor *s = tt_add(y, (tt_tensor *)f->residual);
    tt_tensor_unref(y);
    y = s;
  }
  if (y && f->out_nhwc) {
    tt_tensor *v = tt_permute(y, to_nhwc), *c = v ? tt_contiguous(v) : NULL;
    tt_tensor_unref(v);
    tt_tensor_unref(y);
    y = c;
  }
  return y;
}

tt_tensor *tt_conv2d_packed_forward_fused(tt_conv2d_packed *pk, tt_tensor *x, tt_tensor *bias,
                                          const tt_conv2d_params *p, const tt_conv2d_fuse *f) {
  if (!f) return tt_conv2d_packed_forward(pk, x, bias, p);
  TT_PROFILE_OP("conv2d_bf16_fused");
  int64_t Ho, Wo;
  if (packed_check("conv2d_bf16_fused", pk, x, bias, p, f->upsample == 2 ? 2 : 1, f->in_nhwc, &Ho, &Wo) != TT_OK ||
      fuse_check(f, x, pk->w->shape[0], Ho, Wo) != TT_OK)
    return NULL;
  if (!tt_backend_supports(x->device, "conv2d_bf16_fused")) return fused_by_parts(pk, x, bias, p, f);
  tt_conv2d_bf16_fused_fn k = TT_KERNEL(x->device, conv2d_bf16_fused);
  tt_tensor *w = pk->w;
  tt_tensor *xc = tt_contiguous(x), *bc = xc && bias ? tt_contiguous(bias) : NULL;
  tt_tensor *rc = xc && f->residual ? tt_contiguous((tt_tensor *)f->residual) : NULL;
  tt_conv2d_fuse fc = *f;
  fc.residual = rc;
  tt_tensor *y = xc && (!bias || bc) && (!f->residual || rc)
                     ? (f->out_nhwc ? tt_tensor_new(TT_F32, TT_DIMS(x->shape[0], Ho, Wo, w->shape[0]), x->device)
                                    : tt_tensor_new(TT_F32, TT_DIMS(x->shape[0], w->shape[0], Ho, Wo), x->device))
                     : NULL;
  tt_status s = y ? k(&pk->cache, p, &fc, xc, w, bc, y) : tt_last_status();
  tt_tensor_unref(xc);
  tt_tensor_unref(bc);
  tt_tensor_unref(rc);
  if (s != TT_OK) tt_tensor_release(&y);
  return y;
}

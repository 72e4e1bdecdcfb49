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

tt_tensor *tt_conv2d_packed_forward(tt_conv2d_packed *pk, tt_tensor *x, tt_tensor *bias, const tt_conv2d_params *p) {
  TT_PROFILE_OP("conv2d_bf16");
  char s1[TT_SHAPE_BUF], s2[TT_SHAPE_BUF];
  if (!pk || !p) {
    tt_error(TT_ERR_INVALID, "conv2d_bf16: the pack or the params are missing");
    return NULL;
  }
  tt_tensor *w = pk->w, *args[3] = {x, w, bias ? bias : x};
  if (tt_check_f32("conv2d_bf16", "input", x) || (bias && tt_check_f32("conv2d_bf16", "bias", bias)) ||
      tt_check_same_device("conv2d_bf16", 3, args) || tt_check_ndim("conv2d_bf16", "input", x, 4))
    return NULL;
  if (p->stride_h < 1 || p->stride_w < 1 || p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 ||
      p->pad_right < 0) {
    tt_error(TT_ERR_INVALID, "conv2d_bf16: stride must be >= 1 and padding >= 0, found stride %dx%d, padding "
             "top %d bottom %d left %d right %d", p->stride_h, p->stride_w, p->pad_top, p->pad_bottom,
             p->pad_left, p->pad_right);
    return NULL;
  }
  int64_t B = x->shape[0], Ci = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t Co = w->shape[0], kh = w->shape[2], kw = w->shape[3];
  if (w->shape[1] != Ci || B < 1) {
    tt_error(TT_ERR_INVALID, "conv2d_bf16: packed weight %s expects [B >= 1, %lld, H, W], found input %s",
             tt_tensor_shape_str(w, s1, sizeof s1), (long long)w->shape[1], tt_tensor_shape_str(x, s2, sizeof s2));
    return NULL;
  }
  if (bias && (bias->ndim != 1 || bias->shape[0] != Co)) {
    tt_error(TT_ERR_INVALID, "conv2d_bf16: bias must be [%lld] for packed weight %s, found %s", (long long)Co,
             tt_tensor_shape_str(w, s1, sizeof s1), tt_tensor_shape_str(bias, s2, sizeof s2));
    return NULL;
  }
  int64_t hp = H + p->pad_top + p->pad_bottom, wp = W + p->pad_left + p->pad_right;
  if (hp < kh || wp < kw) {
    tt_error(TT_ERR_INVALID, "conv2d_bf16: padded input %lldx%lld (input %s) is smaller than the kernel %lldx%lld",
             (long long)hp, (long long)wp, tt_tensor_shape_str(x, s1, sizeof s1), (long long)kh, (long long)kw);
    return NULL;
  }
  int64_t Ho = (hp - kh) / p->stride_h + 1, Wo = (wp - kw) / p->stride_w + 1;
  tt_conv2d_bf16_fn f = TT_KERNEL(x->device, conv2d_bf16);   /* the CPU's oneDNN kernel, or cuDNN on CUDA */
  if (!f) return NULL;
  tt_tensor *xc = tt_contiguous(x), *bc = xc && bias ? tt_contiguous(bias) : NULL;
  tt_tensor *y = xc && (!bias || bc) ? tt_tensor_new(TT_F32, TT_DIMS(B, Co, Ho, Wo), x->device) : NULL;
  tt_status s = y ? f(&pk->cache, p, xc, w, bc, y) : tt_last_status();
  tt_tensor_unref(xc);
  tt_tensor_unref(bc);
  if (s != TT_OK) tt_tensor_release(&y);
  return y;
}

/* ops/conv.c — conv2d: argument checks, the kernel call, and its autograd node
 * (backward to the input, the weight and the bias through the backend's kernels).
 *
 * Under bf16 compute precision (tt_set_compute_precision, mixed-precision
 * training) a CPU conv2d runs forward and both backwards through the
 * conv2d_*_prec kernels with bf16 products and f32 sums (taming/ops/conv_prec.h);
 * weights and gradients stay f32. A CPU without them convolves in f32.
 *
 * In f32, a CPU conv2d whose kernel is larger than 1x1 and whose input and
 * output both have at least 16 channels runs the same kernels with f32 products
 * (oneDNN's AVX-512 convolutions) for both backwards, and for the forward when no
 * gradient is recorded (inference); the rest runs conv.c's GEMM kernels. Measured
 * on the VQGAN 64^2 training step's shapes (bench_conv --train --prec=f32, one
 * thread), oneDNN was 1.1-2.8x faster on those, and 0.24-0.6x on the few-channel
 * and 1x1 ones (conv_in's and conv_out's input gradients, the 1x1 backwards),
 * where the layout changes cost more than the arithmetic. A recorded forward
 * keeps conv.c's kernels: they sum every output pixel in the same order, so
 * equal input patches give bitwise-equal outputs and a following max pool breaks
 * ties as PyTorch does. oneDNN sums border and interior pixels differently, which
 * moved LPIPS's input gradient by 1.5% on a fixture image with saturated patches
 * (tests/lua/test_train_parity.lua). TAMING_CONV_F32=ours|onednn forces one or
 * the other (for measuring). */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "common.h"

tt_conv2d_params tt_conv2d_params_make(int stride, int pad) {
  return (tt_conv2d_params){.stride_h = stride, .stride_w = stride,
                            .pad_top = pad, .pad_bottom = pad, .pad_left = pad, .pad_right = pad};
}

typedef struct {
  tt_conv2d_params p;
  tt_tensor *x, *w;   /* contiguous, detached; each saved only when the other's gradient is wanted */
  bool has_bias;
  bool prec;          /* the forward ran the conv2d_*_prec kernels with products in dt: so do the gradients */
  tt_dtype dt;
} conv2d_ctx;

const char *tt_conv2d_prec_isa(tt_device dev, tt_dtype dt) {
  if (!tt_backend_supports(dev, "conv2d_prec_isa")) return NULL;
  tt_conv2d_prec_isa_fn f = TT_KERNEL(dev, conv2d_prec_isa);
  return f ? f(dt) : NULL;
}

/* The f32 rule above, for a weight w [Co, Ci, kh, kw] of shape ws. */
static bool onednn_f32(tt_device dev, const int64_t *ws) {
  static int forced = -1;   /* -1: not read yet, 0: by the rule, 1: ours, 2: oneDNN */
  if (forced < 0) {
    const char *e = getenv("TAMING_CONV_F32");
    forced = e && !strcmp(e, "ours") ? 1 : e && !strcmp(e, "onednn") ? 2 : 0;
  }
  if (forced == 1 || dev != TT_CPU || !tt_conv2d_prec_isa(dev, TT_F32)) return false;
  return forced == 2 || (ws[2] * ws[3] > 1 && ws[0] >= 16 && ws[1] >= 16);
}

/* Whether a conv2d on dev runs the conv2d_*_prec kernels, and with products in which dtype. */
static bool use_prec(tt_device dev, const int64_t *ws, tt_dtype *dt) {
  if (tt_compute_precision() != TT_BF16) {
    *dt = TT_F32;
    return onednn_f32(dev, ws);
  }
  if (dev != TT_CPU) return false;
  if (tt_conv2d_prec_isa(dev, TT_BF16)) {
    *dt = TT_BF16;
    return true;
  }
  static bool said;
  if (!said) {
    said = true;
    fprintf(stderr, "taming: compute precision bf16: no bf16 convolution on this CPU (%s); convolutions stay f32\n",
            tt_conv2d_bf16_supported(dev, NULL) ? "oneDNN kernels hidden" : "needs oneDNN with AVX512-BF16 or AMX");
  }
  return false;
}

static void conv2d_release(tt_node *n) {
  conv2d_ctx *c = n->ctx;
  tt_tensor_release(&c->x);
  tt_tensor_release(&c->w);
}

static tt_status conv2d_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  conv2d_ctx *c = n->ctx;
  if (!gy[0]) return TT_OK;
  bool want_x = tt_node_wants(n, 0), want_w = tt_node_wants(n, 1), want_b = c->has_bias && tt_node_wants(n, 2);
  if (!want_x && !want_w && !want_b) return TT_OK;
  tt_tensor *g = tt_contiguous(gy[0]);   // [B, Co, Ho, Wo]
  if (!g) return tt_last_status();
  tt_status s = TT_OK;
  tt_tensor *rx = NULL, *rw = NULL, *rb = NULL;
  if (want_x && c->prec) {   // [B, Ci, H, W]
    tt_conv2d_bwd_data_prec_fn f = TT_KERNEL(g->device, conv2d_bwd_data_prec);
    rx = f ? tt_tensor_new(TT_F32, 4, n->in[0]->shape, g->device) : NULL;
    s = rx ? f(c->dt, &c->p, g, c->w, rx) : tt_last_status();
  } else if (want_x) {
    tt_conv2d_bwd_data_fn f = TT_KERNEL(g->device, conv2d_bwd_data);
    rx = f ? tt_tensor_new(TT_F32, 4, n->in[0]->shape, g->device) : NULL;
    s = rx ? f(&c->p, g, c->w, rx) : tt_last_status();
  }
  if (s == TT_OK && want_w && c->prec) {
    tt_conv2d_bwd_weight_prec_fn f = TT_KERNEL(g->device, conv2d_bwd_weight_prec);
    if (!f) s = tt_last_status();
    if (s == TT_OK && !(rw = tt_tensor_new(TT_F32, 4, n->in[1]->shape, g->device))) s = tt_last_status();
    if (s == TT_OK && want_b && !(rb = tt_tensor_new(TT_F32, 1, n->in[2]->shape, g->device))) s = tt_last_status();
    tt_tensor *xs = s == TT_OK ? tt_saved_get(c->x) : NULL;   // recomputed when saved without data
    if (s == TT_OK && !xs) s = tt_last_status();
    if (s == TT_OK) s = f(c->dt, &c->p, xs, g, rw, rb);
    tt_tensor_unref(xs);
  } else if (s == TT_OK && (want_w || want_b)) {
    tt_conv2d_bwd_weight_fn f = TT_KERNEL(g->device, conv2d_bwd_weight);
    if (!f) s = tt_last_status();
    if (s == TT_OK && want_w && !(rw = tt_tensor_new(TT_F32, 4, n->in[1]->shape, g->device))) s = tt_last_status();
    if (s == TT_OK && want_b && !(rb = tt_tensor_new(TT_F32, 1, n->in[2]->shape, g->device))) s = tt_last_status();
    /* x is saved whenever the weight needs a gradient; the bias gradient reads only gy */
    tt_tensor *xs = s == TT_OK && want_w ? tt_saved_get(c->x) : NULL;   // recomputed when saved without data
    if (s == TT_OK && want_w && !xs) s = tt_last_status();
    if (s == TT_OK) s = f(&c->p, xs, g, rw, rb);
    tt_tensor_unref(xs);
  }
  tt_tensor_unref(g);
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

/* " 'name'" for a named tensor (weights carry their state-dict key), else "". */
static const char *label(const tt_tensor *t, char *buf, size_t n) {
  if (!t->name) return "";
  snprintf(buf, n, " '%s'", t->name);
  return buf;
}

tt_tensor *tt_conv2d(tt_tensor *x, tt_tensor *w, tt_tensor *b, const tt_conv2d_params *p) {
  TT_PROFILE_OP("conv2d");
  tt_tensor *args[3] = {x, w, b};
  if (tt_check_f32("conv2d", "input", x) || tt_check_f32("conv2d", "weight", w) ||
      (b && tt_check_f32("conv2d", "bias", b)) || tt_check_same_device("conv2d", 3, args) ||
      tt_check_ndim("conv2d", "input", x, 4) || tt_check_ndim("conv2d", "weight", w, 4))
    return NULL;
  char s1[TT_SHAPE_BUF], s2[TT_SHAPE_BUF], n1[96], n2[96];
  if (!p) {
    tt_error(TT_ERR_INVALID, "conv2d: params are missing (use tt_conv2d_params_make)");
    return NULL;
  }
  if (p->stride_h < 1 || p->stride_w < 1 || p->pad_top < 0 || p->pad_bottom < 0 || p->pad_left < 0 ||
      p->pad_right < 0) {
    tt_error(TT_ERR_INVALID, "conv2d: stride must be >= 1 and padding >= 0, found stride %dx%d, padding "
             "top %d bottom %d left %d right %d", p->stride_h, p->stride_w, p->pad_top, p->pad_bottom,
             p->pad_left, p->pad_right);
    return NULL;
  }
  int64_t B = x->shape[0], Ci = x->shape[1], H = x->shape[2], W = x->shape[3];
  int64_t Co = w->shape[0], kh = w->shape[2], kw = w->shape[3];
  if (w->shape[1] != Ci) {
    tt_error(TT_ERR_INVALID, "conv2d: weight%s %s expects %lld input channels, input%s %s has %lld",
             label(w, n1, sizeof n1), tt_tensor_shape_str(w, s1, sizeof s1), (long long)w->shape[1],
             label(x, n2, sizeof n2), tt_tensor_shape_str(x, s2, sizeof s2), (long long)Ci);
    return NULL;
  }
  if (Co < 1 || kh < 1 || kw < 1 || B < 1 || Ci < 1) {
    tt_error(TT_ERR_INVALID, "conv2d: empty input %s or weight %s", tt_tensor_shape_str(x, s1, sizeof s1),
             tt_tensor_shape_str(w, s2, sizeof s2));
    return NULL;
  }
  if (b && (b->ndim != 1 || b->shape[0] != Co)) {
    tt_error(TT_ERR_INVALID, "conv2d: bias%s must be [%lld] for weight%s %s, found %s", label(b, n1, sizeof n1),
             (long long)Co, label(w, n2, sizeof n2), tt_tensor_shape_str(w, s1, sizeof s1),
             tt_tensor_shape_str(b, s2, sizeof s2));
    return NULL;
  }
  int64_t hp = H + p->pad_top + p->pad_bottom, wp = W + p->pad_left + p->pad_right;
  if (hp < kh || wp < kw) {
    tt_error(TT_ERR_INVALID, "conv2d: padded input %lldx%lld (input %s) is smaller than the kernel %lldx%lld: "
             "the output would be empty", (long long)hp, (long long)wp, tt_tensor_shape_str(x, s1, sizeof s1),
             (long long)kh, (long long)kw);
    return NULL;
  }
  int64_t Ho = (hp - kh) / p->stride_h + 1, Wo = (wp - kw) / p->stride_w + 1;
  tt_dtype dt = TT_F32;
  bool records = tt_grad_enabled() && (tt_requires_grad(x) || tt_requires_grad(w) || (b && tt_requires_grad(b)));
  bool bwd_prec = use_prec(x->device, w->shape, &dt);
  bool prec = bwd_prec && !(dt == TT_F32 && records);   /* a recorded f32 forward stays conv.c's (see the top) */
  tt_conv2d_fwd_fn f = prec ? NULL : TT_KERNEL(x->device, conv2d_fwd);
  tt_conv2d_fwd_prec_fn fp = prec ? TT_KERNEL(x->device, conv2d_fwd_prec) : NULL;
  if (!f && !fp) return NULL;
  tt_tensor *xc, *wc, *bc = NULL, *y = NULL;
  bool prev = tt_grad_set_enabled(false);
  xc = tt_contiguous(x);
  wc = tt_contiguous(w);
  if (b) bc = tt_contiguous(b);
  tt_grad_set_enabled(prev);
  tt_status s = (xc && wc && (!b || bc)) ? TT_OK : tt_last_status();
  if (s == TT_OK && !(y = tt_tensor_new(TT_F32, TT_DIMS(B, Co, Ho, Wo), x->device))) s = tt_last_status();
  if (s == TT_OK) s = prec ? fp(dt, p, xc, wc, bc, y) : f(p, xc, wc, bc, y);
  if (s == TT_OK) {
    tt_node *n = tt_node_new("conv2d", conv2d_backward, conv2d_release, 3, args, 1, sizeof(conv2d_ctx));
    if (n) {
      conv2d_ctx *c = n->ctx;
      c->p = *p;
      c->has_bias = b != NULL;
      c->prec = bwd_prec;
      c->dt = dt;
      if (n->in[1]) c->x = tt_saved_make(xc);
      if (n->in[0]) c->w = tt_detach(wc);
      tt_node_attach(n, 0, y);
      tt_node_unref(n);
    }
  }
  tt_tensor_unref(xc);
  tt_tensor_unref(wc);
  tt_tensor_unref(bc);
  if (s != TT_OK) {
    tt_tensor_unref(y);
    return NULL;
  }
  return y;
}

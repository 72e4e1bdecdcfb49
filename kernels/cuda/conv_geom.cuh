/* conv_geom.cuh — the geometry of a 2-D convolution as the CUDA kernels see it
 * (conv.cu: f32; conv_bf16.cu: bf16), shared so the two split padding and
 * batches alike.
 *
 * cuDNN pads both sides of a dim equally: the common part min(top, bottom),
 * min(left, right) is cuDNN's padding and the rest (the official Downsample's
 * extra bottom row and right column) is made explicit by the caller, which
 * copies the input into a zero-bordered buffer [B, Ci, He, We]. cuDNN's
 * descriptors take int sizes and strides: large batches run in chunks of
 * images whose tensors stay below 2^31 elements. */
#ifndef TAMING_KERNELS_CUDA_CONV_GEOM_CUH
#define TAMING_KERNELS_CUDA_CONV_GEOM_CUH
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "cuda_backend.h"

typedef struct {
  int64_t B, Ci, H, W, Co, kh, kw, Ho, Wo;
  int sh, sw, ph, pw;   /* cuDNN's stride and symmetric padding */
  int et, eb, el, er;   /* the explicit extra padding */
  int64_t He, We;       /* the input extent cuDNN sees */
} tt_conv_geom;

static inline tt_conv_geom tt_conv_geom_make(const tt_conv2d_params *p, const int64_t *xs, const int64_t *ws) {
  tt_conv_geom g;
  g.B = xs[0];
  g.Ci = xs[1];
  g.H = xs[2];
  g.W = xs[3];
  g.Co = ws[0];
  g.kh = ws[2];
  g.kw = ws[3];
  g.sh = p->stride_h;
  g.sw = p->stride_w;
  g.ph = p->pad_top < p->pad_bottom ? p->pad_top : p->pad_bottom;
  g.pw = p->pad_left < p->pad_right ? p->pad_left : p->pad_right;
  g.et = p->pad_top - g.ph;
  g.eb = p->pad_bottom - g.ph;
  g.el = p->pad_left - g.pw;
  g.er = p->pad_right - g.pw;
  g.He = g.H + g.et + g.eb;
  g.We = g.W + g.el + g.er;
  g.Ho = g.sh > 0 ? (g.H + p->pad_top + p->pad_bottom - g.kh) / g.sh + 1 : 0;
  g.Wo = g.sw > 0 ? (g.W + p->pad_left + p->pad_right - g.kw) / g.sw + 1 : 0;
  return g;
}

static inline bool tt_conv_explicit_pad(const tt_conv_geom *g) { return g->et || g->eb || g->el || g->er; }

/* Images per cuDNN call so that every tensor stays below 2^31 elements. */
static inline tt_status tt_conv_geom_check(const char *k, const tt_conv_geom *g, int64_t *chunk) {
  if (g->sh < 1 || g->sw < 1 || g->B < 1 || g->Ci < 1 || g->Co < 1 || g->kh < 1 || g->kw < 1 ||
      g->He + 2 * g->ph < g->kh || g->We + 2 * g->pw < g->kw)
    return tt_error(TT_ERR_INVALID, "%s: empty convolution (batch %lld, %lld -> %lld channels, output %lldx%lld)", k,
                    (long long)g->B, (long long)g->Ci, (long long)g->Co, (long long)g->Ho, (long long)g->Wo);
  int64_t per_x = g->Ci * g->He * g->We, per_y = g->Co * g->Ho * g->Wo, per = per_x > per_y ? per_x : per_y;
  int64_t wn = g->Co * g->Ci * g->kh * g->kw;
  if (per > INT_MAX || wn > INT_MAX || g->ph > INT_MAX / 2 || g->pw > INT_MAX / 2)
    return tt_error(TT_ERR_UNSUPPORTED, "%s: one image (%lld values) or the weight (%lld) exceeds cuDNN's 32-bit sizes",
                    k, (long long)per, (long long)wn);
  int64_t n = INT_MAX / per;
  *chunk = n < g->B ? n : g->B;
  return TT_OK;
}

/* Held around every use of the cuDNN handle and of the plan caches (conv.cu). */
extern pthread_mutex_t tt_cuda_conv_lock;

/* True unless TAMING_CUDA_CONV=gemm asked for the im2col + cuBLAS path (read
 * once) or cuDNN did not start. */
static inline bool tt_conv_use_cudnn(void) {
  static int forced = -1;
  if (forced < 0) {
    const char *v = getenv("TAMING_CUDA_CONV");
    forced = v && strcmp(v, "gemm") == 0;
  }
  return !forced && tt_cuda_dnn() != NULL;
}

#endif

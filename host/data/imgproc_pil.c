/* imgproc_pil.c — Pillow's Image.resize (8 bpc fixed-point taps and the
 * affine nearest), as imgproc.h promises it.
 *
 * Contraction is off, as in every imgproc_*.c file: the reference computes in
 * plain float32/float64 without fused multiply-adds (imgproc_internal.h). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "config.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "taming/autograd.h"
#include "taming/imgproc.h"
#include "taming/io.h"
#include "taming/ops/copy.h"
#include "imgproc_internal.h"

/* ---- Pillow Image.resize ---- */

static double pil_box(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }
static double pil_bilinear(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}
static double pil_hamming(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * M_PI;
  return sin(x) / x * (0.54f + 0.46f * cos(x)); /* Pillow uses float constants here */
}
static double pil_bicubic(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
static double pil_sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return sin(x) / x;
}
static double pil_lanczos(double x) {
  if (-3.0 <= x && x < 3.0) return pil_sinc(x) * pil_sinc(x / 3);
  return 0.0;
}

typedef struct pil_filter_def {
  double (*fn)(double);
  double support;
} pil_filter_def;

#define PIL_PRECISION_BITS (32 - 8 - 2)

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc: per output position a
 * window [xmin, xmin + n) and 22-bit fixed-point weights. */
typedef struct pil_taps {
  int ksize;
  int *bounds; /* [out * 2]: xmin, count */
  int32_t *k;  /* [out * ksize] */
} pil_taps;

static tt_status pil_taps_make(pil_taps *t, int64_t in_size, int64_t out_size, const pil_filter_def *f) {
  memset(t, 0, sizeof *t);
  /* the box is (0, 0, W, H) in float */
  double scale = (double)((float)in_size - 0.0f) / (double)out_size, filterscale = scale < 1.0 ? 1.0 : scale;
  double support = f->support * filterscale;
  int ksize = (int)ceil(support) * 2 + 1;
  t->ksize = ksize;
  t->bounds = malloc(sizeof(int) * (size_t)out_size * 2);
  t->k = malloc(sizeof(int32_t) * (size_t)(out_size * ksize));
  double *kk = malloc(sizeof(double) * (size_t)ksize);
  if (!t->bounds || !t->k || !kk) {
    free(t->bounds);
    free(t->k);
    free(kk);
    return tt_error(TT_ERR_NOMEM, "pil_resize: out of memory for the coefficients");
  }
  for (int64_t xx = 0; xx < out_size; xx++) {
    double center = 0.0 + (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
    if (xmin < 0) xmin = 0;
    if (xmax > in_size) xmax = (int)in_size;
    xmax -= xmin;
    int x = 0;
    for (; x < xmax; x++) {
      double w = f->fn((x + xmin - center + 0.5) * ss);
      kk[x] = w;
      ww += w;
    }
    for (x = 0; x < xmax; x++)
      if (ww != 0.0) kk[x] /= ww;
    for (; x < ksize; x++) kk[x] = 0;
    t->bounds[xx * 2] = xmin;
    t->bounds[xx * 2 + 1] = xmax;
    for (x = 0; x < ksize; x++)
      t->k[xx * ksize + x] = kk[x] < 0 ? (int32_t)(-0.5 + kk[x] * (1 << PIL_PRECISION_BITS))
                                       : (int32_t)(0.5 + kk[x] * (1 << PIL_PRECISION_BITS));
  }
  free(kk);
  return TT_OK;
}

static void pil_taps_free(pil_taps *t) {
  free(t->bounds);
  free(t->k);
}

static inline uint8_t pil_clip8(int32_t in) {
  if (in >= (1 << PIL_PRECISION_BITS << 8)) return 255;
  if (in <= 0) return 0;
  return (uint8_t)(in >> PIL_PRECISION_BITS);
}

/* Pillow's nearest resize is an affine scale: source x = floor(x0 + (x + 0.5) * sx),
 * with the position accumulated in double as Pillow does. */
static tt_status pil_nearest(const img *s, uint8_t *dst, int64_t oh, int64_t ow) {
  double a0 = (double)((float)s->w - 0.0f) / (double)ow, a4 = (double)((float)s->h - 0.0f) / (double)oh;
  int64_t cn = s->c;
  int64_t *xin = malloc(sizeof(int64_t) * (size_t)ow);
  if (!xin) return tt_error(TT_ERR_NOMEM, "pil_resize: out of memory for %lld offsets", (long long)ow);
  double xo = 0.0 + a0 * 0.5, yo = 0.0 + a4 * 0.5;
  for (int64_t x = 0; x < ow; x++) {
    int64_t v = xo < 0.0 ? -1 : (int64_t)xo;
    xin[x] = v >= 0 && v < s->w ? v : -1;
    xo += a0;
  }
  const uint8_t *src = s->data;
  for (int64_t y = 0; y < oh; y++) {
    int64_t yi = yo < 0.0 ? -1 : (int64_t)yo;
    uint8_t *D = dst + y * ow * cn;
    memset(D, 0, (size_t)(ow * cn));
    if (yi >= 0 && yi < s->h)
      for (int64_t x = 0; x < ow; x++)
        if (xin[x] >= 0) memcpy(D + x * cn, src + (yi * s->w + xin[x]) * cn, (size_t)cn);
    yo += a4;
  }
  free(xin);
  return TT_OK;
}

tt_tensor *tt_pil_resize(const tt_tensor *image, int64_t out_h, int64_t out_w, tt_pil_filter filter) {
  static const pil_filter_def defs[6] = {
      {NULL, 0}, {pil_lanczos, 3.0}, {pil_bilinear, 1.0}, {pil_bicubic, 2.0}, {pil_box, 0.5}, {pil_hamming, 1.0}};
  img s;
  if (img_open("pil_resize", image, ALLOW_U8, &s) != TT_OK) return NULL;
  if (s.c != 1 && s.c != 3) {
    tt_error(TT_ERR_UNSUPPORTED, "pil_resize: only L and RGB images ([H, W], [H, W, 1] or [H, W, 3]); this one has %lld "
             "channels (Pillow premultiplies alpha before filtering)", (long long)s.c);
    img_close(&s);
    return NULL;
  }
  if (out_h < 1 || out_w < 1 || out_h > INT32_MAX / 8 || out_w > INT32_MAX / 8 || (int)filter < 0 || (int)filter > 5) {
    tt_error(TT_ERR_INVALID, "pil_resize: bad output size %lld x %lld or filter %d", (long long)out_h,
             (long long)out_w, (int)filter);
    img_close(&s);
    return NULL;
  }
  tt_tensor *out = img_new(&s, out_h, out_w);
  if (!out) {
    img_close(&s);
    return NULL;
  }
  uint8_t *dst = tt_tensor_data(out);
  int64_t cn = s.c;
  if (out_h == s.h && out_w == s.w) {
    memcpy(dst, s.data, tt_tensor_nbytes(out));
    img_close(&s);
    return out;
  }
  if (filter == TT_PIL_NEAREST) {
    if (pil_nearest(&s, dst, out_h, out_w) != TT_OK) goto fail;
    img_close(&s);
    return out;
  }
  const pil_filter_def *f = &defs[filter];
  bool need_h = out_w != s.w, need_v = out_h != s.h;
  pil_taps th, tv;
  if (pil_taps_make(&th, s.w, out_w, f) != TT_OK) goto fail;
  if (pil_taps_make(&tv, s.h, out_h, f) != TT_OK) {
    pil_taps_free(&th);
    goto fail;
  }
  /* horizontal pass over the rows the vertical pass reads */
  int64_t yfirst = tv.bounds[0], ylast = tv.bounds[out_h * 2 - 2] + tv.bounds[out_h * 2 - 1];
  const uint8_t *vin = s.data;
  int64_t vin_w = s.w, yshift = 0;
  uint8_t *tmp = NULL;
  if (need_h) {
    int64_t rows = need_v ? ylast - yfirst : s.h;
    int64_t r0 = need_v ? yfirst : 0;
    uint8_t *hout = need_v ? (tmp = malloc((size_t)(rows * out_w * cn))) : dst;
    if (!hout) {
      pil_taps_free(&th);
      pil_taps_free(&tv);
      tt_error(TT_ERR_NOMEM, "pil_resize: out of memory");
      goto fail;
    }
#pragma omp parallel for if (rows * out_w * cn > IMG_PAR_MIN)
    for (int64_t y = 0; y < rows; y++) {
      const uint8_t *S = (const uint8_t *)s.data + (r0 + y) * s.w * cn;
      uint8_t *D = hout + y * out_w * cn;
      for (int64_t xx = 0; xx < out_w; xx++) {
        int xmin = th.bounds[xx * 2], n = th.bounds[xx * 2 + 1];
        const int32_t *k = th.k + xx * th.ksize;
        for (int64_t c = 0; c < cn; c++) {
          int32_t ss = 1 << (PIL_PRECISION_BITS - 1);
          for (int x = 0; x < n; x++) ss += S[(xmin + x) * cn + c] * k[x];
          D[xx * cn + c] = pil_clip8(ss);
        }
      }
    }
    vin = hout;
    vin_w = out_w;
    yshift = r0;
  }
  if (need_v) {
#pragma omp parallel for if (out_h * out_w * cn > IMG_PAR_MIN)
    for (int64_t yy = 0; yy < out_h; yy++) {
      int ymin = tv.bounds[yy * 2] - (int)yshift, n = tv.bounds[yy * 2 + 1];
      const int32_t *k = tv.k + yy * tv.ksize;
      uint8_t *D = dst + yy * out_w * cn;
      for (int64_t xx = 0; xx < out_w * cn; xx++) {
        int32_t ss = 1 << (PIL_PRECISION_BITS - 1);
        for (int y = 0; y < n; y++) ss += vin[(ymin + y) * vin_w * cn + xx] * k[y];
        D[xx] = pil_clip8(ss);
      }
    }
  }
  free(tmp);
  pil_taps_free(&th);
  pil_taps_free(&tv);
  img_close(&s);
  return out;
fail:
  tt_tensor_unref(out);
  img_close(&s);
  return NULL;
}

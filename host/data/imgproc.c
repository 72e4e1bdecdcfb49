/* imgproc.c — the preprocessing primitives of the official data pipeline,
 * reproduced to the bit where the original libraries allow it (see imgproc.h).
 *
 * The reference libraries compute in plain float32/float64 without fused
 * multiply-adds (OpenCV's baseline is SSE2, scipy and Pillow are built for
 * generic x86-64), so contraction is switched off for this file: with
 * -march=native GCC would otherwise fuse a*b + c and change the rounding. */
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

/* Below this many output values the loops stay on one thread. */
#define IMG_PAR_MIN 32768

/* ---- image views ---- */

/* A validated, contiguous CPU image [H, W, C] (C = 1 for 2-D tensors). */
typedef struct img {
  tt_tensor *t; /* the reference held on the data */
  int64_t h, w, c;
  int ndim;
  tt_dtype dt;
  void *data;
} img;


/* dtypes: bit 0 allows u8, bit 1 allows f32. */
enum { ALLOW_U8 = 1, ALLOW_F32 = 2 };

static tt_status img_open(const char *op, const tt_tensor *t, unsigned dtypes, img *im) {
  char sh[128];
  memset(im, 0, sizeof *im);
  if (!t) return tt_error(TT_ERR_INVALID, "%s: NULL image", op);
  bool dt_ok = (t->dtype == TT_U8 && (dtypes & ALLOW_U8)) || (t->dtype == TT_F32 && (dtypes & ALLOW_F32));
  if (!dt_ok || (t->ndim != 2 && t->ndim != 3) || t->shape[0] < 1 || t->shape[1] < 1 ||
      (t->ndim == 3 && t->shape[2] < 1) || t->shape[0] > INT32_MAX / 8 || t->shape[1] > INT32_MAX / 8)
    return tt_error(TT_ERR_INVALID, "%s: expected a %s image [H, W] or [H, W, C], found %s %s", op,
                    dtypes == ALLOW_U8 ? "u8" : dtypes == ALLOW_F32 ? "f32" : "u8 or f32", tt_dtype_name(t->dtype),
                    tt_tensor_shape_str(t, sh, sizeof sh));
  im->t = tt_host_contiguous(t);
  if (!im->t) return tt_last_status();
  im->h = t->shape[0];
  im->w = t->shape[1];
  im->c = t->ndim == 3 ? t->shape[2] : 1;
  im->ndim = t->ndim;
  im->dt = t->dtype;
  im->data = tt_tensor_data(im->t);
  return TT_OK;
}

static void img_close(img *im) { tt_tensor_release(&im->t); }

/* A new image like `like` with another height and width. */
static tt_tensor *img_new(const img *like, int64_t h, int64_t w) {
  if (like->ndim == 2) return tt_tensor_new(like->dt, TT_DIMS(h, w), TT_CPU);
  return tt_tensor_new(like->dt, TT_DIMS(h, w, like->c), TT_CPU);
}

static inline uint8_t sat_u8_int(int64_t v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }
/* OpenCV's saturate_cast<uchar>(float): round half to even, then clamp. */
static inline uint8_t sat_u8_float(float v) {
  float r = rintf(v);
  if (!(r > 0.0f)) return 0; /* NaN rounds through cvRound's int conversion to 0 */
  return r >= 255.0f ? 255 : (uint8_t)r;
}
static inline int16_t sat_s16_float(float v) {
  float r = rintf(v);
  return (int16_t)(r <= -32768.0f ? -32768 : r >= 32767.0f ? 32767 : (int)r);
}

/* ---- OpenCV cv2.resize ---- */

/* The part of an oh x ow resize that is computed: rows [y0, y0 + h) and columns
 * [x0, x0 + w). Every path below computes each output value from its position in
 * the whole resize alone, so a window holds the same numbers as the crop of the
 * whole, and memory follows the window (a 1 x 1e6 strip enlarged to a short
 * side of 32 would be 32 x 32e6 whole). */
typedef struct win {
  int64_t oh, ow;
  int64_t y0, x0, h, w;
} win;

static tt_status cv_resize_nearest(const img *s, void *dst, const win *o) {
  size_t pix = (size_t)s->c * tt_dtype_size(s->dt);
  double ifx = 1.0 / ((double)o->ow / (double)s->w), ify = 1.0 / ((double)o->oh / (double)s->h);
  int64_t *xo = malloc(sizeof(int64_t) * (size_t)o->w);
  if (!xo) return tt_error(TT_ERR_NOMEM, "cv_resize: out of memory for %lld offsets", (long long)o->w);
  for (int64_t x = 0; x < o->w; x++) {
    int64_t sx = (int64_t)floor((double)(o->x0 + x) * ifx);
    xo[x] = (sx < s->w - 1 ? sx : s->w - 1) * (int64_t)pix;
  }
  const uint8_t *src = s->data;
  uint8_t *out = dst;
#pragma omp parallel for if (o->h * o->w * s->c > IMG_PAR_MIN)
  for (int64_t y = 0; y < o->h; y++) {
    int64_t sy = (int64_t)floor((double)(o->y0 + y) * ify);
    if (sy > s->h - 1) sy = s->h - 1;
    const uint8_t *S = src + (size_t)sy * (size_t)s->w * pix;
    uint8_t *D = out + (size_t)y * (size_t)o->w * pix;
    for (int64_t x = 0; x < o->w; x++) memcpy(D + (size_t)x * pix, S + xo[x], pix);
  }
  free(xo);
  return TT_OK;
}

static inline void cubic_coeffs(float x, float *c) {
  const float A = -0.75f;
  c[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
  c[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
  c[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
  c[3] = 1.f - c[0] - c[1] - c[2];
}

/* Tap positions and weights along one axis, as OpenCV's generic resize computes
 * them: half-pixel centres (or the area-mode variant used when INTER_AREA
 * enlarges), weights in float and, for u8, rounded to 11-bit fixed point. */
typedef struct axis_taps {
  int ksize;
  int64_t *ofs;   /* first tap's source index (before clamping) per output position */
  float *alpha;   /* [n * ksize] */
  int16_t *ialpha;
  int64_t xmax;   /* outputs from xmax on read past the right border */
} axis_taps;

static void axis_taps_free(axis_taps *a) {
  free(a->ofs);
  free(a->alpha);
  free(a->ialpha);
}

/* The taps of outputs [d0, d0 + n) of an in -> out resize (indexed from d0). */
static tt_status axis_taps_make(axis_taps *a, int64_t in, int64_t out, int64_t d0, int64_t n, tt_interp interp,
                                bool horizontal) {
  memset(a, 0, sizeof *a);
  bool area_mode = interp == TT_INTER_AREA, cubic = interp == TT_INTER_CUBIC;
  int ksize = cubic ? 4 : 2, ksize2 = ksize / 2;
  a->ksize = ksize;
  a->ofs = malloc(sizeof(int64_t) * (size_t)n);
  a->alpha = malloc(sizeof(float) * (size_t)(n * ksize));
  a->ialpha = malloc(sizeof(int16_t) * (size_t)(n * ksize));
  if (!a->ofs || !a->alpha || !a->ialpha) {
    axis_taps_free(a);
    return tt_error(TT_ERR_NOMEM, "cv_resize: out of memory for %lld coefficients", (long long)n);
  }
  double inv_scale = (double)out / (double)in, scale = 1.0 / inv_scale;
  a->xmax = n;
  for (int64_t i = 0; i < n; i++) {
    int64_t d = d0 + i;
    float f;
    int64_t s;
    if (!area_mode) {
      f = (float)((d + 0.5) * scale - 0.5);
      s = (int64_t)floorf(f);
      f -= (float)s;
    } else {
      s = (int64_t)floor(d * scale);
      f = (float)((d + 1) - (s + 1) * inv_scale);
      f = f <= 0 ? 0.f : f - floorf(f);
    }
    /* only the horizontal pass clamps the tap itself; rows are clamped when fetched */
    if (horizontal) {
      if (s < ksize2 - 1 && s < 0 && !cubic) f = 0, s = 0;
      if (s + ksize2 >= in) {
        if (i < a->xmax) a->xmax = i;
        if (s >= in - 1 && !cubic) f = 0, s = in - 1;
      }
    }
    a->ofs[i] = s;
    float cb[4];
    if (cubic) cubic_coeffs(f, cb);
    else cb[0] = 1.f - f, cb[1] = f;
    for (int k = 0; k < ksize; k++) {
      a->alpha[i * ksize + k] = cb[k];
      a->ialpha[i * ksize + k] = sat_s16_float(cb[k] * 2048.0f);
    }
  }
  return TT_OK;
}

static inline int64_t clampi(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Horizontal pass of one source row: u8 -> int (x 2048 fixed point), f32 -> float. */
static void hresize_row_u8(const uint8_t *S, int64_t sw, int64_t cn, const axis_taps *a, int64_t ow, int32_t *D) {
  if (a->ksize == 2) {
    for (int64_t dx = 0; dx < ow; dx++) {
      int64_t sx = a->ofs[dx] * cn;
      const int16_t *al = a->ialpha + dx * 2;
      if (dx < a->xmax)
        for (int64_t k = 0; k < cn; k++) D[dx * cn + k] = S[sx + k] * al[0] + S[sx + k + cn] * al[1];
      else
        for (int64_t k = 0; k < cn; k++) D[dx * cn + k] = S[sx + k] * 2048;
    }
  } else {
    for (int64_t dx = 0; dx < ow; dx++) {
      const int16_t *al = a->ialpha + dx * 4;
      int64_t p[4];
      for (int j = 0; j < 4; j++) p[j] = clampi(a->ofs[dx] - 1 + j, 0, sw - 1) * cn;
      for (int64_t k = 0; k < cn; k++)
        D[dx * cn + k] = S[p[0] + k] * al[0] + S[p[1] + k] * al[1] + S[p[2] + k] * al[2] + S[p[3] + k] * al[3];
    }
  }
}

static void hresize_row_f32(const float *S, int64_t sw, int64_t cn, const axis_taps *a, int64_t ow, float *D) {
  if (a->ksize == 2) {
    for (int64_t dx = 0; dx < ow; dx++) {
      int64_t sx = a->ofs[dx] * cn;
      const float *al = a->alpha + dx * 2;
      if (dx < a->xmax)
        for (int64_t k = 0; k < cn; k++) D[dx * cn + k] = S[sx + k] * al[0] + S[sx + k + cn] * al[1];
      else
        for (int64_t k = 0; k < cn; k++) D[dx * cn + k] = S[sx + k];
    }
  } else {
    for (int64_t dx = 0; dx < ow; dx++) {
      const float *al = a->alpha + dx * 4;
      int64_t p[4];
      for (int j = 0; j < 4; j++) p[j] = clampi(a->ofs[dx] - 1 + j, 0, sw - 1) * cn;
      for (int64_t k = 0; k < cn; k++)
        D[dx * cn + k] = S[p[0] + k] * al[0] + S[p[1] + k] * al[1] + S[p[2] + k] * al[2] + S[p[3] + k] * al[3];
    }
  }
}

/* OpenCV's 8-bit cubic vertical pass runs SIMD float code over blocks of this
 * many values and integer code over the rest of the row. */
#define CV_CUBIC_VEC 8
#define CV_CUBIC_VEC_F32 4

static tt_status cv_resize_generic(const img *s, void *dst, const win *o, tt_interp interp) {
  axis_taps ax, ay;
  TT_TRY(axis_taps_make(&ax, s->w, o->ow, o->x0, o->w, interp, true));
  tt_status st = axis_taps_make(&ay, s->h, o->oh, o->y0, o->h, interp, false);
  if (st != TT_OK) {
    axis_taps_free(&ax);
    return st;
  }
  int ks = ax.ksize, half = ks / 2;
  int64_t oh = o->h, ow = o->w, cn = s->c, width = ow * cn;
  /* where the whole row's SIMD blocks of the cubic vertical pass end, in the window */
  int64_t full = o->ow * cn, gx0 = o->x0 * cn;
  int64_t vec_u8 = clampi(full - full % CV_CUBIC_VEC - gx0, 0, width);
  int64_t vec_f32 = clampi(full - full % CV_CUBIC_VEC_F32 - gx0, 0, width);
  bool u8 = s->dt == TT_U8;
  /* the source rows the vertical taps touch (clamped), each horizontally resized once */
  int64_t r0 = clampi(ay.ofs[0] - half + 1, 0, s->h - 1), r1 = clampi(ay.ofs[oh - 1] - half + ks, 0, s->h - 1);
  int64_t nrows = r1 - r0 + 1;
  void *rows = malloc((size_t)(nrows * width) * 4);
  uint8_t *need = calloc((size_t)nrows, 1);
  if (!rows || !need) {
    free(rows);
    free(need);
    axis_taps_free(&ax);
    axis_taps_free(&ay);
    return tt_error(TT_ERR_NOMEM, "cv_resize: out of memory for %lld x %lld intermediate values", (long long)nrows,
                    (long long)width);
  }
  /* when shrinking a lot, most source rows are never read */
  for (int64_t dy = 0; dy < oh; dy++)
    for (int k = 0; k < ks; k++) need[clampi(ay.ofs[dy] - half + 1 + k, 0, s->h - 1) - r0] = 1;
#pragma omp parallel for if (nrows * width > IMG_PAR_MIN)
  for (int64_t r = 0; r < nrows; r++) {
    if (!need[r]) continue;
    if (u8)
      hresize_row_u8((const uint8_t *)s->data + (r0 + r) * s->w * cn, s->w, cn, &ax, ow, (int32_t *)rows + r * width);
    else
      hresize_row_f32((const float *)s->data + (r0 + r) * s->w * cn, s->w, cn, &ax, ow, (float *)rows + r * width);
  }
#pragma omp parallel for if (oh * width > IMG_PAR_MIN)
  for (int64_t dy = 0; dy < oh; dy++) {
    int64_t rr[4];
    for (int k = 0; k < ks; k++) rr[k] = clampi(ay.ofs[dy] - half + 1 + k, 0, s->h - 1) - r0;
    if (u8) {
      const int32_t *R = rows;
      const int32_t *S0 = R + rr[0] * width, *S1 = R + rr[1] * width;
      const int16_t *b = ay.ialpha + dy * ks;
      uint8_t *D = (uint8_t *)dst + dy * width;
      if (ks == 2) {
        for (int64_t x = 0; x < width; x++)
          D[x] = sat_u8_int((((b[0] * (S0[x] >> 4)) >> 16) + ((b[1] * (S1[x] >> 4)) >> 16) + 2) >> 2);
      } else {
        const int32_t *S2 = R + rr[2] * width, *S3 = R + rr[3] * width;
        const float scale = 1.f / (2048 * 2048);
        float f0 = b[0] * scale, f1 = b[1] * scale, f2 = b[2] * scale, f3 = b[3] * scale;
        int64_t x = 0, vec_end = vec_u8;
        for (; x < vec_end; x++) {
          float t = (float)S0[x] * f0 + ((float)S1[x] * f1 + ((float)S2[x] * f2 + (float)S3[x] * f3));
          D[x] = sat_u8_int(sat_s16_float(t));
        }
        for (; x < width; x++) {
          int64_t v = (int64_t)S0[x] * b[0] + (int64_t)S1[x] * b[1] + (int64_t)S2[x] * b[2] + (int64_t)S3[x] * b[3];
          D[x] = sat_u8_int((v + (1 << 21)) >> 22);
        }
      }
    } else {
      const float *R = rows;
      const float *S0 = R + rr[0] * width, *S1 = R + rr[1] * width;
      const float *b = ay.alpha + dy * ks;
      float *D = (float *)dst + dy * width;
      if (ks == 2) {
        for (int64_t x = 0; x < width; x++) D[x] = S0[x] * b[0] + S1[x] * b[1];
      } else {
        const float *S2 = R + rr[2] * width, *S3 = R + rr[3] * width;
        int64_t x = 0, vec_end = vec_f32;
        for (; x < vec_end; x++) D[x] = S0[x] * b[0] + (S1[x] * b[1] + (S2[x] * b[2] + S3[x] * b[3]));
        for (; x < width; x++) D[x] = S0[x] * b[0] + S1[x] * b[1] + S2[x] * b[2] + S3[x] * b[3];
      }
    }
  }
  free(rows);
  free(need);
  axis_taps_free(&ax);
  axis_taps_free(&ay);
  return TT_OK;
}

/* Integer shrink factors: plain box averages. */
static void cv_resize_area_fast(const img *s, void *dst, const win *o, int sx, int sy) {
  /* x runs over the whole row's values [gx0, gx0 + width): the f32 fast path
   * takes blocks of four of the whole row */
  int64_t cn = s->c, width = o->w * cn, area = (int64_t)sx * sy, oh = o->h, gx0 = o->x0 * cn, gx1 = gx0 + width;
  float scale = 1.f / (float)area;
  bool u8 = s->dt == TT_U8;
  /* OpenCV's dedicated 2x2 kernels: rounded integer average for u8 (1, 3, 4
   * channels), pairwise float sums for f32 (1, 4 channels, 4 values at a time). */
  bool fast_u8 = u8 && sx == 2 && sy == 2 && (cn == 1 || cn == 3 || cn == 4);
  bool fast_f32 = !u8 && sx == 2 && sy == 2 && (cn == 1 || cn == 4);
  int64_t rowlen = s->w * cn;
#pragma omp parallel for if (oh * width * area > IMG_PAR_MIN)
  for (int64_t dy = 0; dy < oh; dy++) {
    int64_t x = gx0;
    if (u8) {
      const uint8_t *S = (const uint8_t *)s->data + (o->y0 + dy) * sy * rowlen;
      uint8_t *D = (uint8_t *)dst + dy * width - gx0;
      if (fast_u8) {
        for (; x < gx1; x++) {
          int64_t px = x / cn, k = x % cn, i = px * 2 * cn + k;
          D[x] = (uint8_t)((S[i] + S[i + cn] + S[rowlen + i] + S[rowlen + i + cn] + 2) >> 2);
        }
      }
      for (; x < gx1; x++) {
        int64_t px = x / cn, k = x % cn, base = px * sx * cn + k, sum = 0;
        for (int a = 0; a < sy; a++)
          for (int b = 0; b < sx; b++) sum += S[a * rowlen + base + b * cn];
        D[x] = sat_u8_float((float)sum * scale);
      }
    } else {
      const float *S = (const float *)s->data + (o->y0 + dy) * sy * rowlen;
      float *D = (float *)dst + dy * width - gx0;
      if (fast_f32) {
        int64_t full = o->ow * cn, vend = full - full % 4;
        if (vend > gx1) vend = gx1;
        for (; x < vend; x++) {
          int64_t px = x / cn, k = x % cn, i = px * 2 * cn + k;
          D[x] = ((S[i] + S[i + cn]) + (S[rowlen + i] + S[rowlen + i + cn])) * 0.25f;
        }
      }
      for (; x < gx1; x++) {
        int64_t px = x / cn, k = x % cn, base = px * sx * cn + k;
        /* the taps in row-major order, added four at a time: sum += ((a + b) + c) + d */
        float v[64], sum = 0;
        int64_t n = 0;
        for (int a = 0; a < sy; a++)
          for (int b = 0; b < sx; b++) {
            v[n++] = S[a * rowlen + base + b * cn];
            if (n == 64) { /* only for factors beyond 8x8: keep the running order */
              for (int64_t j = 0; j + 4 <= n; j += 4) sum += ((v[j] + v[j + 1]) + v[j + 2]) + v[j + 3];
              n = 0;
            }
          }
        int64_t j = 0;
        for (; j + 4 <= n; j += 4) sum += ((v[j] + v[j + 1]) + v[j + 2]) + v[j + 3];
        for (; j < n; j++) sum += v[j];
        D[x] = sum * scale;
      }
    }
  }
}

/* Fractional shrink: each output pixel is the area-weighted mean of the source
 * pixels its footprint covers (OpenCV's decimation tables). */
typedef struct area_tab {
  int64_t di, si;
  float alpha;
} area_tab;

static int64_t area_tab_make(int64_t ssize, int64_t dsize, double scale, area_tab *tab) {
  int64_t k = 0;
  for (int64_t dx = 0; dx < dsize; dx++) {
    double fsx1 = dx * scale, fsx2 = fsx1 + scale;
    double cell = scale < ssize - fsx1 ? scale : ssize - fsx1;
    int64_t sx1 = (int64_t)ceil(fsx1), sx2 = (int64_t)floor(fsx2);
    if (sx2 > ssize - 1) sx2 = ssize - 1;
    if (sx1 > sx2) sx1 = sx2;
    if (sx1 - fsx1 > 1e-3) tab[k++] = (area_tab){dx, sx1 - 1, (float)((sx1 - fsx1) / cell)};
    for (int64_t sx = sx1; sx < sx2; sx++) tab[k++] = (area_tab){dx, sx, (float)(1.0 / cell)};
    if (fsx2 - sx2 > 1e-3) {
      double part = fsx2 - sx2 < 1.0 ? fsx2 - sx2 : 1.0;
      if (part > cell) part = cell;
      tab[k++] = (area_tab){dx, sx2, (float)(part / cell)};
    }
  }
  return k;
}

static tt_status cv_resize_area(const img *s, void *dst, const win *o) {
  /* shrinking only: the tables of the whole resize are no larger than the source */
  int64_t oh = o->oh, ow = o->ow;
  double scale_x = 1.0 / ((double)ow / (double)s->w), scale_y = 1.0 / ((double)oh / (double)s->h);
  area_tab *xt = malloc(sizeof(area_tab) * (size_t)(s->w * 2 + 2));
  area_tab *yt = malloc(sizeof(area_tab) * (size_t)(s->h * 2 + 2));
  int64_t *yofs = malloc(sizeof(int64_t) * (size_t)(oh + 1));
  if (!xt || !yt || !yofs) {
    free(xt);
    free(yt);
    free(yofs);
    return tt_error(TT_ERR_NOMEM, "cv_resize: out of memory for the area tables");
  }
  int64_t nx = area_tab_make(s->w, ow, scale_x, xt), ny = area_tab_make(s->h, oh, scale_y, yt);
  for (int64_t k = 0, dy = 0; k < ny; k++)
    if (k == 0 || yt[k].di != yt[k - 1].di) yofs[dy++] = k;
  yofs[oh] = ny;
  /* the window's columns: their entries, in the same order */
  int64_t kx = 0;
  for (int64_t k = 0; k < nx; k++)
    if (xt[k].di >= o->x0 && xt[k].di < o->x0 + o->w) xt[kx++] = (area_tab){xt[k].di - o->x0, xt[k].si, xt[k].alpha};
  nx = kx;
  int64_t cn = s->c, width = o->w * cn, y0 = o->y0;
  oh = o->h;
  bool u8 = s->dt == TT_U8;
  tt_status st = TT_OK;
#pragma omp parallel if (oh * width > IMG_PAR_MIN)
  {
    float *buf = malloc(sizeof(float) * (size_t)width * 2);
    float *sum = buf ? buf + width : NULL;
    if (!buf) {
#pragma omp critical
      st = TT_ERR_NOMEM;
    }
#pragma omp for
    for (int64_t dy = 0; dy < oh; dy++) {
      if (!buf) continue;
      for (int64_t j = yofs[y0 + dy]; j < yofs[y0 + dy + 1]; j++) {
        float beta = yt[j].alpha;
        int64_t sy = yt[j].si;
        for (int64_t x = 0; x < width; x++) buf[x] = 0;
        if (u8) {
          const uint8_t *S = (const uint8_t *)s->data + sy * s->w * cn;
          for (int64_t k = 0; k < nx; k++)
            for (int64_t c = 0; c < cn; c++) buf[xt[k].di * cn + c] += S[xt[k].si * cn + c] * xt[k].alpha;
        } else {
          const float *S = (const float *)s->data + sy * s->w * cn;
          for (int64_t k = 0; k < nx; k++)
            for (int64_t c = 0; c < cn; c++) buf[xt[k].di * cn + c] += S[xt[k].si * cn + c] * xt[k].alpha;
        }
        if (j == yofs[y0 + dy])
          for (int64_t x = 0; x < width; x++) sum[x] = beta * buf[x];
        else
          for (int64_t x = 0; x < width; x++) sum[x] += beta * buf[x];
      }
      if (u8)
        for (int64_t x = 0; x < width; x++) ((uint8_t *)dst)[dy * width + x] = sat_u8_float(sum[x]);
      else
        memcpy((float *)dst + dy * width, sum, sizeof(float) * (size_t)width);
    }
    free(buf);
  }
  free(xt);
  free(yt);
  free(yofs);
  if (st != TT_OK) return tt_error(st, "cv_resize: out of memory for the area row buffers");
  return TT_OK;
}

tt_tensor *tt_cv_resize_window(const tt_tensor *image, int64_t out_h, int64_t out_w, int64_t y, int64_t x, int64_t h,
                               int64_t w, tt_interp interp) {
  img s;
  if (img_open("cv_resize", image, ALLOW_U8 | ALLOW_F32, &s) != TT_OK) return NULL;
  if (out_h < 1 || out_w < 1 || out_h > INT32_MAX / 8 || out_w > INT32_MAX / 8 ||
      (interp != TT_INTER_NEAREST && interp != TT_INTER_LINEAR && interp != TT_INTER_CUBIC &&
       interp != TT_INTER_AREA)) {
    tt_error(TT_ERR_INVALID, "cv_resize: bad output size %lld x %lld or interpolation %d", (long long)out_h,
             (long long)out_w, (int)interp);
    img_close(&s);
    return NULL;
  }
  if (h < 1 || w < 1 || y < 0 || x < 0 || y > out_h - h || x > out_w - w) {
    tt_error(TT_ERR_INVALID, "cv_resize: rows [%lld, %lld) x columns [%lld, %lld) do not fit the %lld x %lld output",
             (long long)y, (long long)y + h, (long long)x, (long long)x + w, (long long)out_h, (long long)out_w);
    img_close(&s);
    return NULL;
  }
  tt_tensor *out = img_new(&s, h, w);
  if (!out) {
    img_close(&s);
    return NULL;
  }
  void *dst = tt_tensor_data(out);
  const win o = {out_h, out_w, y, x, h, w};
  tt_status st = TT_OK;
  if (out_h == s.h && out_w == s.w) {
    size_t pix = (size_t)s.c * tt_dtype_size(s.dt);
    for (int64_t r = 0; r < h; r++)
      memcpy((uint8_t *)dst + (size_t)r * (size_t)w * pix,
             (const uint8_t *)s.data + ((size_t)(y + r) * (size_t)s.w + (size_t)x) * pix, (size_t)w * pix);
  } else if (interp == TT_INTER_NEAREST) {
    st = cv_resize_nearest(&s, dst, &o);
  } else {
    double scale_x = 1.0 / ((double)out_w / (double)s.w), scale_y = 1.0 / ((double)out_h / (double)s.h);
    double ix = rint(scale_x), iy = rint(scale_y);
    bool area_fast = fabs(scale_x - ix) < DBL_EPSILON && fabs(scale_y - iy) < DBL_EPSILON;
    /* an exact 2x bilinear shrink is the 2x2 box average; OpenCV takes that path */
    if (interp == TT_INTER_LINEAR && area_fast && ix == 2 && iy == 2) interp = TT_INTER_AREA;
    if (interp == TT_INTER_AREA && scale_x >= 1 && scale_y >= 1) {
      if (area_fast) cv_resize_area_fast(&s, dst, &o, (int)ix, (int)iy);
      else st = cv_resize_area(&s, dst, &o);
    } else {
      st = cv_resize_generic(&s, dst, &o, interp);
    }
  }
  img_close(&s);
  if (st != TT_OK) {
    tt_tensor_unref(out);
    return NULL;
  }
  return out;
}

tt_tensor *tt_cv_resize(const tt_tensor *image, int64_t out_h, int64_t out_w, tt_interp interp) {
  return tt_cv_resize_window(image, out_h, out_w, 0, 0, out_h, out_w, interp);
}

/* ---- albumentations 0.4.3 ---- */

void tt_smallest_max_size_dims(int64_t h, int64_t w, int64_t size, int64_t *out_h, int64_t *out_w) {
  double scale = (double)size / (double)(h < w ? h : w);
  if (scale == 1.0) {
    *out_h = h, *out_w = w;
    return;
  }
  /* Python's round(): half to even, which rint does in the default rounding mode */
  *out_h = (int64_t)rint((double)h * scale);
  *out_w = (int64_t)rint((double)w * scale);
}

tt_tensor *tt_smallest_max_size(const tt_tensor *image, int64_t size, tt_interp interp) {
  char sh[128];
  if (!image || image->ndim < 2 || size < 1) {
    tt_error(TT_ERR_INVALID, "smallest_max_size: need an image [H, W(, C)] and size >= 1 (size %lld, image %s)",
             (long long)size, image ? tt_tensor_shape_str(image, sh, sizeof sh) : "NULL");
    return NULL;
  }
  int64_t oh, ow;
  tt_smallest_max_size_dims(image->shape[0], image->shape[1], size, &oh, &ow);
  if (oh < 1 || ow < 1) {
    tt_error(TT_ERR_INVALID, "smallest_max_size(%lld): image %s would shrink to %lld x %lld", (long long)size,
             tt_tensor_shape_str(image, sh, sizeof sh), (long long)oh, (long long)ow);
    return NULL;
  }
  return tt_cv_resize(image, oh, ow, interp);
}

tt_tensor *tt_crop(const tt_tensor *image, int64_t y, int64_t x, int64_t h, int64_t w) {
  img s;
  if (img_open("crop", image, ALLOW_U8 | ALLOW_F32, &s) != TT_OK) return NULL;
  if (h < 1 || w < 1 || y < 0 || x < 0 || y + h > s.h || x + w > s.w) {
    tt_error(TT_ERR_INVALID, "crop: rows [%lld, %lld) x columns [%lld, %lld) do not fit an image of %lld x %lld",
             (long long)y, (long long)(y + h), (long long)x, (long long)(x + w), (long long)s.h, (long long)s.w);
    img_close(&s);
    return NULL;
  }
  tt_tensor *out = img_new(&s, h, w);
  if (out) {
    size_t pix = (size_t)s.c * tt_dtype_size(s.dt);
    for (int64_t r = 0; r < h; r++)
      memcpy((uint8_t *)tt_tensor_data(out) + (size_t)r * (size_t)w * pix,
             (const uint8_t *)s.data + ((size_t)(y + r) * (size_t)s.w + (size_t)x) * pix, (size_t)w * pix);
  }
  img_close(&s);
  return out;
}

/* The top-left corner of an h x w crop of H x W: the centre when u < 0, else
 * RandomCrop's (int((H - h) * u), int((W - w) * v)). */
static tt_status crop_origin(const char *op, int64_t H, int64_t W, int64_t h, int64_t w, double u, double v, int64_t *y,
                             int64_t *x) {
  if (h > H || w > W || h < 1 || w < 1)
    return tt_error(TT_ERR_INVALID, "%s: requested crop size (%lld, %lld) is larger than the image size (%lld, %lld)",
                    op, (long long)h, (long long)w, (long long)H, (long long)W);
  if (u < 0) {
    *y = (H - h) / 2, *x = (W - w) / 2;
  } else {
    *y = (int64_t)((double)(H - h) * u), *x = (int64_t)((double)(W - w) * v);
  }
  return TT_OK;
}

static tt_tensor *crop_checked(const char *op, const tt_tensor *image, int64_t h, int64_t w, double u, double v) {
  char sh[128];
  if (!image || image->ndim < 2) {
    tt_error(TT_ERR_INVALID, "%s: expected an image [H, W(, C)], found %s", op,
             image ? tt_tensor_shape_str(image, sh, sizeof sh) : "NULL");
    return NULL;
  }
  int64_t y = 0, x = 0;
  if (crop_origin(op, image->shape[0], image->shape[1], h, w, u, v, &y, &x) != TT_OK) return NULL;
  return tt_crop(image, y, x, h, w);
}

tt_tensor *tt_center_crop(const tt_tensor *image, int64_t h, int64_t w) {
  return crop_checked("center_crop", image, h, w, -1, -1);
}

tt_tensor *tt_random_crop(const tt_tensor *image, int64_t h, int64_t w, double u, double v) {
  if (!(u >= 0 && u < 1 && v >= 0 && v < 1)) {
    tt_error(TT_ERR_INVALID, "random_crop: the uniform draws must lie in [0, 1), got %g and %g", u, v);
    return NULL;
  }
  return crop_checked("random_crop", image, h, w, u, v);
}

tt_tensor *tt_smallest_max_size_crop(const tt_tensor *image, int64_t size, int64_t h, int64_t w, double u, double v,
                                     tt_interp interp) {
  char sh[128];
  const char *op = u < 0 ? "center_crop" : "random_crop";
  if (!image || image->ndim < 2 || size < 1) {
    tt_error(TT_ERR_INVALID, "smallest_max_size: need an image [H, W(, C)] and size >= 1 (size %lld, image %s)",
             (long long)size, image ? tt_tensor_shape_str(image, sh, sizeof sh) : "NULL");
    return NULL;
  }
  if (u >= 0 && !(u < 1 && v >= 0 && v < 1)) {
    tt_error(TT_ERR_INVALID, "random_crop: the uniform draws must lie in [0, 1), got %g and %g", u, v);
    return NULL;
  }
  int64_t oh, ow, y = 0, x = 0;
  tt_smallest_max_size_dims(image->shape[0], image->shape[1], size, &oh, &ow);
  if (oh < 1 || ow < 1) {
    tt_error(TT_ERR_INVALID, "smallest_max_size(%lld): image %s would shrink to %lld x %lld", (long long)size,
             tt_tensor_shape_str(image, sh, sizeof sh), (long long)oh, (long long)ow);
    return NULL;
  }
  if (crop_origin(op, oh, ow, h, w, u, v, &y, &x) != TT_OK) return NULL;
  return tt_cv_resize_window(image, oh, ow, y, x, h, w, interp);
}

tt_tensor *tt_hflip(const tt_tensor *image) {
  img s;
  if (img_open("hflip", image, ALLOW_U8 | ALLOW_F32, &s) != TT_OK) return NULL;
  tt_tensor *out = img_new(&s, s.h, s.w);
  if (out) {
    size_t pix = (size_t)s.c * tt_dtype_size(s.dt);
    uint8_t *D = tt_tensor_data(out);
    const uint8_t *S = s.data;
    for (int64_t y = 0; y < s.h; y++)
      for (int64_t x = 0; x < s.w; x++)
        memcpy(D + ((size_t)y * (size_t)s.w + (size_t)x) * pix, S + ((size_t)y * (size_t)s.w + (size_t)(s.w - 1 - x)) * pix,
               pix);
  }
  img_close(&s);
  return out;
}

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

/* ---- scikit-image rgb2gray and canny ---- */

tt_tensor *tt_rgb2gray(const tt_tensor *image) {
  img s;
  if (img_open("rgb2gray", image, ALLOW_F32, &s) != TT_OK) return NULL;
  if (s.ndim != 3 || s.c != 3) {
    char sh[128];
    tt_error(TT_ERR_INVALID, "rgb2gray: expected f32 [H, W, 3], found %s", tt_tensor_shape_str(image, sh, sizeof sh));
    img_close(&s);
    return NULL;
  }
  tt_tensor *out = tt_tensor_new(TT_F32, TT_DIMS(s.h, s.w), TT_CPU);
  if (out) {
    const float *S = s.data;
    float *D = tt_f32(out);
    int64_t W = s.w, rem = W % 8, b4 = W - rem, b2 = b4 + (rem >= 4 ? 4 : 0), b1 = b2 + ((rem & 2) ? 2 : 0);
    /* numpy evaluates `rgb @ coeffs` per image row as an OpenBLAS sgemv over
     * the row's pixels; on AVX-512 machines its kernel associates the three
     * products differently in the 8-wide body and in the 4-, 2- and 1-wide
     * tail blocks, and the float32 roundings follow that. */
#pragma omp parallel for if (s.h * W > IMG_PAR_MIN)
    for (int64_t y = 0; y < s.h; y++) {
      for (int64_t x = 0; x < W; x++) {
        const float *p = S + 3 * (y * W + x);
        float r = p[0] * 0.2125f, g = p[1] * 0.7154f, v;
        if (x < b4) v = fmaf(p[2], 0.0721f, fmaf(p[1], 0.7154f, r));
        else if (x < b2 || x >= b1) v = fmaf(p[2], 0.0721f, fmaf(p[0], 0.2125f, g));
        else v = (r + g) + p[2] * 0.0721f;
        D[y * W + x] = v;
      }
    }
  }
  img_close(&s);
  return out;
}

/* scipy.ndimage.correlate1d with a symmetric kernel w[0..r] (w[0] the centre),
 * over `len` values at stride `st`, mode 'constant' (0) or 'reflect', in
 * double: centre term first, then the pairs from the outermost inwards. */
static void correlate_sym(const double *line, int64_t len, const double *w, int r, bool reflect, double *ext,
                          double *out) {
  for (int64_t i = 0; i < len; i++) ext[r + i] = line[i];
  for (int j = 1; j <= r; j++) {
    if (reflect) {
      /* half-sample symmetric: ... b a | a b ... */
      int64_t li = j - 1, ri = len - j;
      while (li >= len || li < 0) li = li < 0 ? -li - 1 : 2 * len - li - 1;
      while (ri >= len || ri < 0) ri = ri < 0 ? -ri - 1 : 2 * len - ri - 1;
      ext[r - j] = line[li];
      ext[r + len - 1 + j] = line[ri];
    } else {
      ext[r - j] = 0.0;
      ext[r + len - 1 + j] = 0.0;
    }
  }
  for (int64_t i = 0; i < len; i++) {
    const double *c = ext + r + i;
    double v = c[0] * w[0];
    for (int j = r; j >= 1; j--) v += (c[-j] + c[j]) * w[j];
    out[i] = v;
  }
}

/* The [-1, 0, 1] Sobel derivative (antisymmetric path), mode 'reflect'. */
static void correlate_deriv(const double *line, int64_t len, double *out) {
  for (int64_t i = 0; i < len; i++) {
    double l = line[i > 0 ? i - 1 : 0], r = line[i < len - 1 ? i + 1 : len - 1];
    double v = line[i] * 0.0;
    v += (l - r) * -1.0;
    out[i] = v;
  }
}

enum { PASS_GAUSS, PASS_DERIV, PASS_SMOOTH };

/* One scipy 1-D pass over a float32 (or float64) image along `axis`, storing
 * float32 (or float64) results, as ndimage does with an output array. */
static tt_status nd_pass(const void *in, void *out, bool f64, int64_t H, int64_t W, int axis, int kind,
                         const double *gw, int r) {
  int64_t len = axis == 0 ? H : W, nlines = axis == 0 ? W : H;
  int64_t step = axis == 0 ? W : 1, lstep = axis == 0 ? 1 : W;
  tt_status st = TT_OK;
#pragma omp parallel if (H * W > IMG_PAR_MIN)
  {
    double *buf = malloc(sizeof(double) * (size_t)(3 * len + 2 * r + 2));
    if (!buf) {
#pragma omp critical
      st = TT_ERR_NOMEM;
    }
#pragma omp for
    for (int64_t l = 0; l < nlines; l++) {
      if (!buf) continue;
      double *line = buf, *res = buf + len, *ext = buf + 2 * len;
      for (int64_t i = 0; i < len; i++) {
        int64_t at = l * lstep + i * step;
        line[i] = f64 ? ((const double *)in)[at] : (double)((const float *)in)[at];
      }
      static const double smooth_w[2] = {2.0, 1.0};
      if (kind == PASS_GAUSS) correlate_sym(line, len, gw, r, false, ext, res);
      else if (kind == PASS_SMOOTH) correlate_sym(line, len, smooth_w, 1, true, ext, res);
      else correlate_deriv(line, len, res);
      for (int64_t i = 0; i < len; i++) {
        int64_t at = l * lstep + i * step;
        if (f64) ((double *)out)[at] = res[i];
        else ((float *)out)[at] = (float)res[i];
      }
    }
    free(buf);
  }
  if (st != TT_OK) return tt_error(st, "canny: out of memory for the filter lines");
  return TT_OK;
}

/* scipy's _gaussian_kernel1d(sigma, 0, radius) normalised with numpy's pairwise sum. */
static tt_status gaussian_weights(double sigma, int r, double *w /* [r + 1] */) {
  int n = 2 * r + 1;
  double *phi = malloc(sizeof(double) * (size_t)n);
  if (!phi) return tt_error(TT_ERR_NOMEM, "canny: out of memory for the Gaussian kernel");
  double a = -0.5 / (sigma * sigma);
  for (int i = 0; i < n; i++) {
    double x = (double)(i - r);
    phi[i] = exp(a * (x * x));
  }
  double sum;
  if (n < 8) {
    sum = 0.0;
    for (int i = 0; i < n; i++) sum += phi[i];
  } else {
    /* numpy pairwise_sum for 8 <= n <= 128: eight running sums, combined as a tree */
    double p[8];
    for (int j = 0; j < 8; j++) p[j] = phi[j];
    int i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int j = 0; j < 8; j++) p[j] += phi[i + j];
    sum = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
    for (; i < n; i++) sum += phi[i];
  }
  for (int j = 0; j <= r; j++) w[j] = phi[r + j] / sum;
  free(phi);
  return TT_OK;
}

/* Is m a local maximum along the gradient: the magnitudes interpolated at both
 * neighbours along the normal are <= m (float32 arithmetic, as numpy). */
static inline bool nms_side(float c1, float c2, float w, float m) {
  float a = c2 * w, b = c1 * (1.0f - w);
  return a + b <= m;
}

tt_tensor *tt_canny(const tt_tensor *gray, double sigma, double low, double high) {
  img s;
  if (img_open("canny", gray, ALLOW_F32, &s) != TT_OK) return NULL;
  if (s.ndim != 2 && !(s.ndim == 3 && s.c == 1)) {
    char sh[128];
    tt_error(TT_ERR_INVALID, "canny: expected a grayscale f32 [H, W], found %s", tt_tensor_shape_str(gray, sh, sizeof sh));
    img_close(&s);
    return NULL;
  }
  if (low < 0) low = 0.1;
  if (high < 0) high = 0.2;
  if (!(sigma > 0) || sigma > 1000 || high < low) {
    tt_error(TT_ERR_INVALID, "canny: need 0 < sigma <= 1000 and low <= high (sigma %g, low %g, high %g)", sigma, low,
             high);
    img_close(&s);
    return NULL;
  }
  int64_t H = s.h, W = s.w, n = H * W;
  int r = (int)(4.0 * sigma + 0.5);
  tt_tensor *out = tt_zeros(TT_F32, TT_DIMS(H, W), TT_CPU);
  double *gw = malloc(sizeof(double) * (size_t)(r + 1));
  double *bleed = malloc(sizeof(double) * (size_t)n);
  float *sm = malloc(sizeof(float) * (size_t)n), *gi = malloc(sizeof(float) * (size_t)n);
  float *gj = malloc(sizeof(float) * (size_t)n), *mag = malloc(sizeof(float) * (size_t)n);
  uint8_t *lm = calloc((size_t)n, 1);
  int64_t *stack = malloc(sizeof(int64_t) * (size_t)n);
  tt_status st = TT_OK;
  if (!out || !gw || !bleed || !sm || !gi || !gj || !mag || !lm || !stack) {
    st = tt_error(TT_ERR_NOMEM, "canny: out of memory for a %lld x %lld image", (long long)H, (long long)W);
    goto done;
  }
  if ((st = gaussian_weights(sigma, r, gw)) != TT_OK) goto done;

  /* Gaussian smoothing of the image, corrected for the zeros beyond its border
   * by the smoothed all-ones mask (skimage's bleed-over division). */
  for (int64_t i = 0; i < n; i++) bleed[i] = 1.0;
  if ((st = nd_pass(bleed, bleed, true, H, W, 0, PASS_GAUSS, gw, r)) != TT_OK ||
      (st = nd_pass(bleed, bleed, true, H, W, 1, PASS_GAUSS, gw, r)) != TT_OK ||
      (st = nd_pass(s.data, sm, false, H, W, 0, PASS_GAUSS, gw, r)) != TT_OK ||
      (st = nd_pass(sm, sm, false, H, W, 1, PASS_GAUSS, gw, r)) != TT_OK)
    goto done;
  for (int64_t i = 0; i < n; i++) sm[i] = (float)((double)sm[i] / (bleed[i] + DBL_EPSILON));

  /* Sobel: derivative along the axis, then [1, 2, 1] across it */
  if ((st = nd_pass(sm, gj, false, H, W, 1, PASS_DERIV, NULL, 0)) != TT_OK ||
      (st = nd_pass(gj, gj, false, H, W, 0, PASS_SMOOTH, NULL, 0)) != TT_OK ||
      (st = nd_pass(sm, gi, false, H, W, 0, PASS_DERIV, NULL, 0)) != TT_OK ||
      (st = nd_pass(gi, gi, false, H, W, 1, PASS_SMOOTH, NULL, 0)) != TT_OK)
    goto done;
  for (int64_t i = 0; i < n; i++) mag[i] = hypotf(gi[i], gj[i]);

  /* Non-maximum suppression on interior pixels with a gradient; the four
   * direction sectors are evaluated in skimage's order and a later sector
   * overwrites an earlier one where they overlap (ties on the diagonals). */
#pragma omp parallel for if (n > IMG_PAR_MIN)
  for (int64_t y = 1; y < H - 1; y++) {
    for (int64_t x = 1; x < W - 1; x++) {
      int64_t p = y * W + x;
      float m = mag[p];
      if (!(m > 0)) continue;
      float ai = fabsf(gi[p]), aj = fabsf(gj[p]);
      bool horiz = ai >= aj, vert = ai <= aj;
      bool up = gi[p] >= 0, down = gi[p] <= 0, right = gj[p] >= 0, left = gj[p] <= 0;
      bool diag = (up && right) || (down && left), anti = (down && right) || (up && left);
      int res = -1;
#define MAG(dy, dx) mag[p + (dy) * W + (dx)]
      if (diag && horiz) { /* 0-45 degrees */
        float w = aj / ai;
        res = nms_side(MAG(1, 0), MAG(1, 1), w, m) && nms_side(MAG(-1, 0), MAG(-1, -1), w, m);
      }
      if (diag && vert) { /* 45-90 */
        float w = ai / aj;
        res = nms_side(MAG(0, 1), MAG(1, 1), w, m) && nms_side(MAG(0, -1), MAG(-1, -1), w, m);
      }
      if (anti && vert) { /* 90-135 */
        float w = ai / aj;
        res = nms_side(MAG(0, 1), MAG(-1, 1), w, m) && nms_side(MAG(0, -1), MAG(1, -1), w, m);
      }
      if (anti && horiz) { /* 135-180 */
        float w = aj / ai;
        res = nms_side(MAG(-1, 0), MAG(-1, 1), w, m) && nms_side(MAG(1, 0), MAG(1, -1), w, m);
      }
#undef MAG
      /* 1: maximum above the low threshold; 2: also above the high one */
      if (res == 1 && m >= (float)low) lm[p] = m >= (float)high ? 2 : 1;
    }
  }

  /* Hysteresis: keep the 8-connected groups of low pixels that contain a high one. */
  float *o = tt_f32(out);
  int64_t top = 0;
  for (int64_t i = 0; i < n; i++)
    if (lm[i] == 2) {
      o[i] = 1.0f;
      stack[top++] = i;
    }
  while (top > 0) {
    int64_t p = stack[--top], y = p / W, x = p % W;
    for (int dy = -1; dy <= 1; dy++)
      for (int dx = -1; dx <= 1; dx++) {
        int64_t yy = y + dy, xx = x + dx;
        if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
        int64_t q = yy * W + xx;
        if (lm[q] && o[q] == 0.0f) {
          o[q] = 1.0f;
          stack[top++] = q;
        }
      }
  }
done:
  free(gw);
  free(bleed);
  free(sm);
  free(gi);
  free(gj);
  free(mag);
  free(lm);
  free(stack);
  img_close(&s);
  if (st != TT_OK) {
    tt_tensor_unref(out);
    return NULL;
  }
  return out;
}

/* ---- depth maps ---- */

tt_tensor *tt_depth_from_rgba(const tt_tensor *rgba) {
  img s;
  if (img_open("depth_from_rgba", rgba, ALLOW_U8, &s) != TT_OK) return NULL;
  if (s.ndim != 3 || s.c != 4) {
    char sh[128];
    tt_error(TT_ERR_INVALID, "depth_from_rgba: expected u8 [H, W, 4] (float32 bytes as RGBA), found %s",
             tt_tensor_shape_str(rgba, sh, sizeof sh));
    img_close(&s);
    return NULL;
  }
  tt_tensor *out = tt_tensor_new(TT_F32, TT_DIMS(s.h, s.w), TT_CPU);
  if (out) {
    const uint8_t *S = s.data;
    float *D = tt_f32(out);
    for (int64_t i = 0; i < s.h * s.w; i++) {
      uint32_t u = (uint32_t)S[4 * i] | (uint32_t)S[4 * i + 1] << 8 | (uint32_t)S[4 * i + 2] << 16 |
                   (uint32_t)S[4 * i + 3] << 24;
      memcpy(&D[i], &u, 4);
    }
  }
  img_close(&s);
  return out;
}

tt_tensor *tt_depth_normalize(const tt_tensor *depth) {
  img s;
  if (img_open("depth_normalize", depth, ALLOW_F32, &s) != TT_OK) return NULL;
  int64_t n = s.h * s.w * s.c;
  const float *S = s.data;
  float mn = S[0], mx = S[0];
  int64_t bad = -1;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(S[i]) && bad < 0) bad = i;
    mn = S[i] < mn ? S[i] : mn;
    mx = S[i] > mx ? S[i] : mx;
  }
  tt_tensor *out = NULL;
  if (bad >= 0) {
    tt_error(TT_ERR_INVALID, "depth_normalize: value %g at row %lld, column %lld is not finite (corrupt depth bytes?)",
             (double)S[bad], (long long)(bad / (s.w * s.c)), (long long)(bad / s.c % s.w));
  } else if ((out = img_new(&s, s.h, s.w))) {
    /* max(1e-8, max - min) compares in double; the division is float32 */
    float range = mx - mn, den = (double)range > 1e-8 ? range : (float)1e-8;
    float *D = tt_f32(out);
    for (int64_t i = 0; i < n; i++) {
      float d = (S[i] - mn) / den;
      D[i] = 2.0f * d - 1.0f;
    }
  }
  img_close(&s);
  return out;
}

/* An 8-bit image file that must have `channels` channels; `what` says what it must be. */
static tt_status load_u8_channels(const char *path, int64_t channels, const char *what, tt_tensor **im) {
  TT_TRY(tt_image_load_u8(path, im));
  if ((*im)->shape[2] == channels) return TT_OK;
  tt_status s = tt_error(TT_ERR_FORMAT, "%s: %s; this image has %lld channels", path, what,
                         (long long)(*im)->shape[2]);
  tt_tensor_unref(*im);
  *im = NULL;
  return s;
}

tt_status tt_depth_load(const char *path, tt_tensor **out) {
  if (!path || !out) return tt_error(TT_ERR_INVALID, "depth_load: NULL argument");
  *out = NULL;
  tt_tensor *rgba;
  TT_TRY(load_u8_channels(path, 4, "a depth map must be an 8-bit RGBA PNG holding float32 bytes", &rgba));
  tt_tensor *raw = tt_depth_from_rgba(rgba);
  tt_tensor_unref(rgba);
  if (!raw) return tt_error_prefix(tt_last_status(), "%s: ", path);
  *out = tt_depth_normalize(raw);
  tt_tensor_unref(raw);
  if (!*out) return tt_error_prefix(tt_last_status(), "%s: ", path);
  return TT_OK;
}

/* ---- segmentation label maps ---- */

tt_status tt_labels_load(const char *path, tt_tensor **out) {
  if (!path || !out) return tt_error(TT_ERR_INVALID, "labels_load: NULL argument");
  *out = NULL;
  tt_tensor *im;
  TT_TRY(load_u8_channels(path, 1, "a label map must be a single-channel 8-bit image (PIL mode L)",
                          &im));
  *out = tt_tensor_view_of(im, TT_DIMS(im->shape[0], im->shape[1]), NULL, 0);
  tt_tensor_unref(im);
  return *out ? TT_OK : tt_last_status();
}

tt_tensor *tt_labels_shift(const tt_tensor *labels) {
  img s;
  if (img_open("labels_shift", labels, ALLOW_U8, &s) != TT_OK) return NULL;
  tt_tensor *out = img_new(&s, s.h, s.w);
  if (out) {
    const uint8_t *S = s.data;
    uint8_t *D = tt_tensor_data(out);
    for (int64_t i = 0; i < s.h * s.w * s.c; i++) D[i] = (uint8_t)(S[i] + 1);
  }
  img_close(&s);
  return out;
}

tt_tensor *tt_labels_onehot(const tt_tensor *labels, int K, bool shift, const char *what) {
  img s;
  if (!what) what = "labels";
  if (img_open("labels_onehot", labels, ALLOW_U8, &s) != TT_OK) return NULL;
  if (s.c != 1 || K < 1 || K > 256) {
    char sh[128];
    tt_error(TT_ERR_INVALID, "%s: one-hot needs a u8 label map [H, W] and 1 <= K <= 256 (found %s, K = %d)", what,
             tt_tensor_shape_str(labels, sh, sizeof sh), K);
    img_close(&s);
    return NULL;
  }
  const uint8_t *S = s.data;
  int64_t n = s.h * s.w;
  for (int64_t i = 0; i < n; i++) {
    int v = shift ? (uint8_t)(S[i] + 1) : S[i];
    if (v >= K) {
      if (shift)
        tt_error(TT_ERR_INVALID, "%s: label %d (%d after the +1 shift) at row %lld, column %lld is >= K = %d", what,
                 S[i], v, (long long)(i / s.w), (long long)(i % s.w), K);
      else
        tt_error(TT_ERR_INVALID, "%s: label %d at row %lld, column %lld is >= K = %d", what, v, (long long)(i / s.w),
                 (long long)(i % s.w), K);
      img_close(&s);
      return NULL;
    }
  }
  tt_tensor *out = tt_zeros(TT_F32, TT_DIMS(K, s.h, s.w), TT_CPU);
  if (out) {
    float *D = tt_f32(out);
    for (int64_t i = 0; i < n; i++) D[(int64_t)(shift ? (uint8_t)(S[i] + 1) : S[i]) * n + i] = 1.0f;
  }
  img_close(&s);
  return out;
}

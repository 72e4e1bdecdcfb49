/* imgproc_opencv.c — OpenCV's cv2.resize (nearest, linear, cubic, area,
 * lanczos4), whole or by window, as imgproc.h promises it.
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

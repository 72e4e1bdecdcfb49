/* imgproc_skimage.c — scikit-image rgb2gray and canny, with the scipy.ndimage
 * passes they use.
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

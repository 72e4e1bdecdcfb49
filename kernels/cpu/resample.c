/* resample.c — CPU kernels of NCHW resampling: nearest upsampling by integer
 * factors (forward and backward), max/average pooling with zero padding (forward
 * and backward), and PyTorch-compatible interpolation (forward only).
 *
 * Every kernel sees its tensor as P = B*C independent planes; planes are the unit
 * of parallel work, so backward passes that scatter (max pooling with overlapping
 * windows) never race. */
#include "config.h"
#include <math.h>
#include <string.h>
#include "cpu.h"
#include "taming/arena.h"

typedef struct {
  int64_t P, H, W, Ho, Wo;
} planes;

static planes planes_of(const tt_tensor *in, const tt_tensor *out) {
  int nd = in->ndim;
  planes p = {.H = in->shape[nd - 2], .W = in->shape[nd - 1], .Ho = out->shape[nd - 2], .Wo = out->shape[nd - 1]};
  p.P = tt_tensor_numel(in) / (p.H * p.W > 0 ? p.H * p.W : 1);
  return p;
}

/* ---- nearest upsampling ---- */

// x [P, H, W] -> y [P, H*sh, W*sw]
static tt_status cpu_upsample_nearest_fwd(int sh, int sw, const tt_tensor *x, tt_tensor *y) {
  planes g = planes_of(x, y);
  const float *xs = tt_f32(x);
  float *ys = tt_f32(y);
#pragma omp parallel for schedule(static) if (g.P * g.Ho * g.Wo > TT_CPU_PAR_MIN)
  for (int64_t r = 0; r < g.P * g.H; r++) {
    const float *src = xs + r * g.W;
    float *dst = ys + r * sh * g.Wo;   /* the first of the sh output rows of input row r */
    if (sw == 2) {
      for (int64_t j = 0; j < g.W; j++) dst[2 * j] = dst[2 * j + 1] = src[j];
    } else {
      for (int64_t j = 0; j < g.W; j++)
        for (int k = 0; k < sw; k++) dst[j * sw + k] = src[j];
    }
    for (int k = 1; k < sh; k++) memcpy(dst + k * g.Wo, dst, sizeof(float) * (size_t)g.Wo);
  }
  return TT_OK;
}

// gy [P, H*sh, W*sw] -> gx [P, H, W]: each input pixel collects its sh x sw block
static tt_status cpu_upsample_nearest_bwd(int sh, int sw, const tt_tensor *gy, tt_tensor *gx) {
  planes g = planes_of(gx, gy);
  const float *gys = tt_f32(gy);
  float *gxs = tt_f32(gx);
#pragma omp parallel for schedule(static) if (g.P * g.Ho * g.Wo > TT_CPU_PAR_MIN)
  for (int64_t r = 0; r < g.P * g.H; r++) {
    float *dst = gxs + r * g.W;
    const float *src = gys + r * sh * g.Wo;
    for (int64_t j = 0; j < g.W; j++) {
      float acc = 0;
      for (int a = 0; a < sh; a++)
        for (int b = 0; b < sw; b++) acc += src[a * g.Wo + j * sw + b];
      dst[j] = acc;
    }
  }
  return TT_OK;
}

/* ---- pooling (floor mode, zero padding) ---- */

/* The window of output index o along one axis, clipped to the input [0, n): [*lo, *hi),
 * and the divisor count_include_pad uses (the window clipped to the padded input). */
static inline int64_t pool_window(int64_t o, int k, int s, int pad, int64_t n, int64_t *lo, int64_t *hi) {
  int64_t a = o * s - pad, b = a + k;
  int64_t padded = (b < n + pad ? b : n + pad) - a;
  *lo = a < 0 ? 0 : a;
  *hi = b < n ? b : n;
  return padded;
}

static float avg_divisor(const tt_pool2d_params *p, int64_t y0, int64_t y1, int64_t x0, int64_t x1, int64_t ph,
                         int64_t pw) {
  return p->count_include_pad ? (float)(ph * pw) : (float)((y1 - y0) * (x1 - x0));
}

// x [P, H, W] -> y [P, Ho, Wo]; argmax [P, Ho, Wo] = iy*W + ix within the plane (MAX)
static tt_status cpu_pool2d_fwd(const tt_pool2d_params *p, const tt_tensor *x, tt_tensor *y, tt_tensor *argmax) {
  planes g = planes_of(x, y);
  const float *xs = tt_f32(x);
  float *ys = tt_f32(y);
  int64_t *am = argmax ? tt_i64(argmax) : NULL;
  int kh = p->kernel_h, kw = p->kernel_w;
  bool is_max = p->mode == TT_POOL_MAX;
  if (is_max && !am) return tt_error(TT_ERR_INVALID, "pool2d_fwd: max pooling needs an argmax tensor");
#pragma omp parallel for schedule(static) if (g.P * g.Ho * g.Wo * kh * kw > TT_CPU_PAR_MIN)
  for (int64_t r = 0; r < g.P * g.Ho; r++) {
    int64_t pl = r / g.Ho, oy = r % g.Ho, y0, y1;
    const float *plane = xs + pl * g.H * g.W;
    int64_t ph = pool_window(oy, kh, p->stride_h, p->pad_h, g.H, &y0, &y1);
    for (int64_t ox = 0; ox < g.Wo; ox++) {
      int64_t x0, x1, o = r * g.Wo + ox;
      int64_t pw = pool_window(ox, kw, p->stride_w, p->pad_w, g.W, &x0, &x1);
      if (is_max) {
        /* NaN wins, like PyTorch; ties keep the first index in raster order; a padding
         * of at most half the kernel leaves every window at least one input cell */
        float best = plane[y0 * g.W + x0];
        int64_t at = y0 * g.W + x0;
        for (int64_t a = y0; a < y1; a++)
          for (int64_t b = x0; b < x1; b++) {
            int64_t i = a * g.W + b;
            float v = plane[i];
            if (v > best || (isnan(v) && !isnan(best))) {
              best = v;
              at = i;
            }
          }
        ys[o] = best;
        am[o] = at;
      } else {
        float acc = 0;
        for (int64_t a = y0; a < y1; a++)
          for (int64_t b = x0; b < x1; b++) acc += plane[a * g.W + b];
        ys[o] = acc / avg_divisor(p, y0, y1, x0, x1, ph, pw);
      }
    }
  }
  return TT_OK;
}

// gy [P, Ho, Wo] (+ argmax) -> gx [P, H, W]
static tt_status cpu_pool2d_bwd(const tt_pool2d_params *p, const tt_tensor *gy, const tt_tensor *argmax,
                                tt_tensor *gx) {
  planes g = planes_of(gx, gy);
  const float *gys = tt_f32(gy);
  float *gxs = tt_f32(gx);
  const int64_t *am = argmax ? tt_i64(argmax) : NULL;
  int kh = p->kernel_h, kw = p->kernel_w;
  bool is_max = p->mode == TT_POOL_MAX;
  if (is_max && !am) return tt_error(TT_ERR_INVALID, "pool2d_bwd: max pooling needs the forward's argmax");
#pragma omp parallel for schedule(static) if (g.P * g.H * g.W > TT_CPU_PAR_MIN)
  for (int64_t pl = 0; pl < g.P; pl++) {
    float *plane = gxs + pl * g.H * g.W;
    const float *gp = gys + pl * g.Ho * g.Wo;
    memset(plane, 0, sizeof(float) * (size_t)(g.H * g.W));
    if (is_max) {
      const int64_t *ap = am + pl * g.Ho * g.Wo;
      for (int64_t o = 0; o < g.Ho * g.Wo; o++) plane[ap[o]] += gp[o];
      continue;
    }
    for (int64_t oy = 0; oy < g.Ho; oy++) {
      int64_t y0, y1, ph = pool_window(oy, kh, p->stride_h, p->pad_h, g.H, &y0, &y1);
      for (int64_t ox = 0; ox < g.Wo; ox++) {
        int64_t x0, x1, pw = pool_window(ox, kw, p->stride_w, p->pad_w, g.W, &x0, &x1);
        float v = gp[oy * g.Wo + ox] / avg_divisor(p, y0, y1, x0, x1, ph, pw);
        for (int64_t a = y0; a < y1; a++)
          for (int64_t b = x0; b < x1; b++) plane[a * g.W + b] += v;
      }
    }
  }
  return TT_OK;
}

/* ---- interpolation, following torch.nn.functional.interpolate (align_corners=False) ----
 * Index arithmetic is done in float as PyTorch's CPU kernels do, so the sampled
 * positions agree exactly; only the summation order of the taps differs. */

/* 'nearest': src = min(floor(dst * in / out), in - 1). */
static void nearest_index(int64_t in, int64_t out, int64_t *idx) {
  float scale = (float)in / (float)out;
  for (int64_t d = 0; d < out; d++) {
    int64_t s = (int64_t)floorf((float)d * scale);
    idx[d] = s < in - 1 ? s : in - 1;
  }
}

/* Source position of output index d (align_corners=False); the products are taken in
 * double and rounded to float, as PyTorch's expression `scale * (d + 0.5) - 0.5` does. */
static inline float source_index(float scale, int64_t d) { return (float)((double)scale * ((double)d + 0.5) - 0.5); }

/* 'bilinear': taps i0, i1 with weights 1 - t, t; the source position is clamped at 0. */
static void linear_taps(int64_t in, int64_t out, int64_t *i0, int64_t *i1, float *t) {
  float scale = (float)in / (float)out;
  for (int64_t d = 0; d < out; d++) {
    float src = source_index(scale, d);
    if (src < 0) src = 0;
    int64_t i = (int64_t)src;
    i0[d] = i;
    i1[d] = i + (i < in - 1 ? 1 : 0);
    t[d] = src - (float)i;
  }
}

/* 'bicubic': Keys' kernel with A = -0.75 on taps i-1 .. i+2, indices clamped to the border. */
static void cubic_taps(int64_t in, int64_t out, int64_t *idx /* [out][4] */, float *wt /* [out][4] */) {
  const float A = -0.75f;
  float scale = (float)in / (float)out;
  for (int64_t d = 0; d < out; d++) {
    float src = source_index(scale, d);
    float fl = floorf(src);
    int64_t i = (int64_t)fl;
    float t = src - fl;
    float x1 = t + 1.0f, x2 = 1.0f - t, x3 = 2.0f - t;
    wt[4 * d + 0] = ((A * x1 - 5.0f * A) * x1 + 8.0f * A) * x1 - 4.0f * A;
    wt[4 * d + 1] = ((A + 2.0f) * t - (A + 3.0f)) * t * t + 1.0f;
    wt[4 * d + 2] = ((A + 2.0f) * x2 - (A + 3.0f)) * x2 * x2 + 1.0f;
    wt[4 * d + 3] = ((A * x3 - 5.0f * A) * x3 + 8.0f * A) * x3 - 4.0f * A;
    for (int k = 0; k < 4; k++) {
      int64_t j = i - 1 + k;
      idx[4 * d + k] = j < 0 ? 0 : j > in - 1 ? in - 1 : j;
    }
  }
}

/* 'area' (adaptive average pooling): window [floor(d*in/out), ceil((d+1)*in/out)). */
static inline int64_t area_start(int64_t d, int64_t out, int64_t in) { return (d / out) * in + ((d % out) * in) / out; }
static inline int64_t area_end(int64_t d, int64_t out, int64_t in) { return 1 + ((d + 1) * in - 1) / out; }

// x [P, H, W] -> y [P, Ho, Wo]
static tt_status cpu_interpolate_fwd(tt_interp_mode mode, const tt_tensor *x, tt_tensor *y) {
  planes g = planes_of(x, y);
  const float *xs = tt_f32(x);
  float *ys = tt_f32(y);
  int64_t n = g.Ho + g.Wo;
  /* index tables for rows then columns: at most 4 taps each */
  tt_arena *ar = tt_thread_arena();
  size_t mark = tt_arena_mark(ar);
  int64_t *idx = tt_arena_alloc(ar, sizeof(int64_t) * (size_t)(4 * n + 4), 64);
  float *wt = tt_arena_alloc(ar, sizeof(float) * (size_t)(4 * n + 4), 64);
  if (!idx || !wt) {
    tt_arena_reset(ar, mark);
    return tt_error(TT_ERR_NOMEM, "interpolate: out of memory for index tables");
  }
  int64_t *ry = idx, *rx = idx + 4 * g.Ho;
  float *wy = wt, *wx = wt + 4 * g.Ho;
  switch (mode) {
    case TT_INTERP_NEAREST:
      nearest_index(g.H, g.Ho, ry);
      nearest_index(g.W, g.Wo, rx);
      break;
    case TT_INTERP_BILINEAR:
      linear_taps(g.H, g.Ho, ry, ry + g.Ho, wy);
      linear_taps(g.W, g.Wo, rx, rx + g.Wo, wx);
      break;
    case TT_INTERP_BICUBIC:
      cubic_taps(g.H, g.Ho, ry, wy);
      cubic_taps(g.W, g.Wo, rx, wx);
      break;
    case TT_INTERP_AREA:
      break;
    default:
      tt_arena_reset(ar, mark);
      return tt_error(TT_ERR_INVALID, "interpolate: unknown mode %d", (int)mode);
  }
#pragma omp parallel for schedule(static) if (g.P * g.Ho * g.Wo > TT_CPU_PAR_MIN / 4)
  for (int64_t r = 0; r < g.P * g.Ho; r++) {
    int64_t pl = r / g.Ho, oy = r % g.Ho;
    const float *src = xs + pl * g.H * g.W;
    float *dst = ys + r * g.Wo;
    switch (mode) {
      case TT_INTERP_NEAREST: {
        const float *row = src + ry[oy] * g.W;
        for (int64_t ox = 0; ox < g.Wo; ox++) dst[ox] = row[rx[ox]];
        break;
      }
      case TT_INTERP_BILINEAR: {
        const float *r0 = src + ry[oy] * g.W, *r1 = src + ry[g.Ho + oy] * g.W;
        float ty = wy[oy];
        for (int64_t ox = 0; ox < g.Wo; ox++) {
          int64_t a = rx[ox], b = rx[g.Wo + ox];
          float tx = wx[ox];
          float top = (1.0f - tx) * r0[a] + tx * r0[b], bot = (1.0f - tx) * r1[a] + tx * r1[b];
          dst[ox] = (1.0f - ty) * top + ty * bot;
        }
        break;
      }
      case TT_INTERP_BICUBIC: {
        for (int64_t ox = 0; ox < g.Wo; ox++) {
          float acc = 0;
          for (int a = 0; a < 4; a++) {
            const float *row = src + ry[4 * oy + a] * g.W;
            float h = 0;
            for (int b = 0; b < 4; b++) h += wx[4 * ox + b] * row[rx[4 * ox + b]];
            acc += wy[4 * oy + a] * h;
          }
          dst[ox] = acc;
        }
        break;
      }
      default: {   // TT_INTERP_AREA
        int64_t y0 = area_start(oy, g.Ho, g.H), y1 = area_end(oy, g.Ho, g.H);
        for (int64_t ox = 0; ox < g.Wo; ox++) {
          int64_t x0 = area_start(ox, g.Wo, g.W), x1 = area_end(ox, g.Wo, g.W);
          float acc = 0;
          for (int64_t iy = y0; iy < y1; iy++)
            for (int64_t ix = x0; ix < x1; ix++) acc += src[iy * g.W + ix];
          dst[ox] = acc / (float)((y1 - y0) * (x1 - x0));
        }
        break;
      }
    }
  }
  tt_arena_reset(ar, mark);
  return TT_OK;
}

tt_status tt_cpu_register_resample(tt_backend *b) {
  TT_REGISTER_KERNEL(b, upsample_nearest_fwd, cpu_upsample_nearest_fwd);
  TT_REGISTER_KERNEL(b, upsample_nearest_bwd, cpu_upsample_nearest_bwd);
  TT_REGISTER_KERNEL(b, pool2d_fwd, cpu_pool2d_fwd);
  TT_REGISTER_KERNEL(b, pool2d_bwd, cpu_pool2d_bwd);
  TT_REGISTER_KERNEL(b, interpolate_fwd, cpu_interpolate_fwd);
  return TT_OK;
}

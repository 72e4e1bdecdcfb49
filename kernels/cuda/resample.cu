/* resample.cu — CUDA kernels of NCHW resampling: nearest upsampling by integer
 * factors (forward and backward), max/average pooling without padding (forward
 * and backward) and interpolation with PyTorch's semantics (forward only).
 *
 * Every tensor is seen as P = numel / (H * W) planes. Backward passes gather
 * (one thread per input pixel sums the outputs that read it, in raster order)
 * instead of scattering with atomics: no races, and the same summation order
 * as the CPU kernels. Interpolation taps and weights are computed on the host
 * with the CPU kernel's arithmetic and uploaded, so the sampled positions agree
 * exactly; the device only forms the weighted sums. */
#include "config.h"
#include <math.h>
#include <vector>
#include "cuda_backend.h"

typedef struct {
  int64_t P, H, W, Ho, Wo;
} planes;

static planes planes_of(const tt_tensor *in, const tt_tensor *out) {
  int nd = in->ndim;
  planes p;
  p.H = in->shape[nd - 2];
  p.W = in->shape[nd - 1];
  p.Ho = out->shape[nd - 2];
  p.Wo = out->shape[nd - 1];
  p.P = tt_tensor_numel(in) / (p.H * p.W > 0 ? p.H * p.W : 1);
  return p;
}

static tt_status check_nchw(const char *k, const tt_tensor *a, const tt_tensor *b) {
  if (a->ndim < 2 || a->ndim != b->ndim)
    return tt_error(TT_ERR_INVALID, "%s: expected [..., H, W] tensors of equal rank, found %d and %d dims", k, a->ndim,
                    b->ndim);
  return TT_OK;
}

/* ---- nearest upsampling ---- */

// x [P, H, W] -> y [P, H*sh, W*sw]
__global__ void k_upsample_fwd(const float *x, float *y, planes g, int sh, int sw) {
  TT_CUDA_LOOP(i, g.P * g.Ho * g.Wo) {
    int64_t ox = i % g.Wo, r = i / g.Wo, oy = r % g.Ho, p = r / g.Ho;
    y[i] = x[(p * g.H + oy / sh) * g.W + ox / sw];
  }
}

// gy [P, H*sh, W*sw] -> gx [P, H, W]: each input pixel sums its sh x sw block
__global__ void k_upsample_bwd(const float *gy, float *gx, planes g, int sh, int sw) {
  TT_CUDA_LOOP(i, g.P * g.H * g.W) {
    int64_t ix = i % g.W, r = i / g.W, iy = r % g.H, p = r / g.H;
    const float *src = gy + (p * g.Ho + iy * sh) * g.Wo + ix * sw;
    float acc = 0;
    for (int a = 0; a < sh; a++)
      for (int b = 0; b < sw; b++) acc += src[a * g.Wo + b];
    gx[i] = acc;
  }
}

static tt_status cu_upsample_nearest_fwd(int sh, int sw, const tt_tensor *x, tt_tensor *y) {
  TT_TRY(check_nchw("upsample_nearest_fwd", x, y));
  planes g = planes_of(x, y);
  if (sh < 1 || sw < 1 || g.Ho != g.H * sh || g.Wo != g.W * sw)
    return tt_error(TT_ERR_INVALID, "upsample_nearest_fwd: output %lldx%lld is not %lldx%lld scaled by %dx%d",
                    (long long)g.Ho, (long long)g.Wo, (long long)g.H, (long long)g.W, sh, sw);
  int64_t n = g.P * g.Ho * g.Wo;
  if (n == 0) return TT_OK;
  k_upsample_fwd<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(tt_cuda_ptr<float>(x),
                                                                            tt_cuda_ptr<float>(y), g, sh, sw);
  return tt_cuda_check_launch("upsample_nearest_fwd");
}

static tt_status cu_upsample_nearest_bwd(int sh, int sw, const tt_tensor *gy, tt_tensor *gx) {
  TT_TRY(check_nchw("upsample_nearest_bwd", gx, gy));
  planes g = planes_of(gx, gy);
  if (sh < 1 || sw < 1 || g.Ho != g.H * sh || g.Wo != g.W * sw)
    return tt_error(TT_ERR_INVALID, "upsample_nearest_bwd: gradient %lldx%lld is not %lldx%lld scaled by %dx%d",
                    (long long)g.Ho, (long long)g.Wo, (long long)g.H, (long long)g.W, sh, sw);
  int64_t n = g.P * g.H * g.W;
  if (n == 0) return TT_OK;
  k_upsample_bwd<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(tt_cuda_ptr<float>(gy),
                                                                            tt_cuda_ptr<float>(gx), g, sh, sw);
  return tt_cuda_check_launch("upsample_nearest_bwd");
}

/* ---- pooling (no padding, floor mode) ---- */

// x [P, H, W] -> y [P, Ho, Wo]; argmax = iy*W + ix within the plane (MAX)
__global__ void k_pool_fwd(const float *x, float *y, int64_t *am, planes g, int kh, int kw, int sh, int sw,
                           bool is_max) {
  float inv = 1.0f / (float)(kh * kw);
  TT_CUDA_LOOP(i, g.P * g.Ho * g.Wo) {
    int64_t ox = i % g.Wo, r = i / g.Wo, oy = r % g.Ho, p = r / g.Ho;
    const float *plane = x + p * g.H * g.W;
    int64_t y0 = oy * sh, x0 = ox * sw;
    if (is_max) {
      /* NaN wins (the first one); ties keep the first index in raster order */
      int64_t at = y0 * g.W + x0;
      float best = plane[at];
      for (int a = 0; a < kh; a++)
        for (int b = 0; b < kw; b++) {
          int64_t k = (y0 + a) * g.W + x0 + b;
          float v = plane[k];
          if (v > best || (isnan(v) && !isnan(best))) {
            best = v;
            at = k;
          }
        }
      y[i] = best;
      am[i] = at;
    } else {
      float acc = 0;
      for (int a = 0; a < kh; a++)
        for (int b = 0; b < kw; b++) acc += plane[(y0 + a) * g.W + x0 + b];
      y[i] = acc * inv;
    }
  }
}

/* First and last output index whose window [o*s, o*s + k) covers input index t. */
__device__ __forceinline__ void covering(int64_t t, int k, int s, int64_t nout, int64_t *lo, int64_t *hi) {
  int64_t first = t - k + 1;
  *lo = first <= 0 ? 0 : (first + s - 1) / s;
  *hi = t / s;
  if (*hi > nout - 1) *hi = nout - 1;
}

// gy [P, Ho, Wo] (+ argmax) -> gx [P, H, W]
__global__ void k_pool_bwd(const float *gy, const int64_t *am, float *gx, planes g, int kh, int kw, int sh, int sw,
                           bool is_max) {
  float inv = 1.0f / (float)(kh * kw);
  TT_CUDA_LOOP(i, g.P * g.H * g.W) {
    int64_t ix = i % g.W, r = i / g.W, iy = r % g.H, p = r / g.H;
    int64_t oy0, oy1, ox0, ox1, self = iy * g.W + ix;
    covering(iy, kh, sh, g.Ho, &oy0, &oy1);
    covering(ix, kw, sw, g.Wo, &ox0, &ox1);
    const float *gp = gy + p * g.Ho * g.Wo;
    const int64_t *ap = is_max ? am + p * g.Ho * g.Wo : nullptr;
    float acc = 0;
    for (int64_t oy = oy0; oy <= oy1; oy++)
      for (int64_t ox = ox0; ox <= ox1; ox++) {
        int64_t o = oy * g.Wo + ox;
        if (is_max) {
          if (ap[o] == self) acc += gp[o];
        } else {
          acc += gp[o] * inv;
        }
      }
    gx[i] = acc;
  }
}

static tt_status pool_check(const char *k, const tt_pool2d_params *p, const planes *g) {
  if (p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 1 || p->stride_w < 1)
    return tt_error(TT_ERR_INVALID, "%s: kernel %dx%d and stride %dx%d must be positive", k, p->kernel_h, p->kernel_w,
                    p->stride_h, p->stride_w);
  if (g->Ho != (g->H - p->kernel_h) / p->stride_h + 1 || g->Wo != (g->W - p->kernel_w) / p->stride_w + 1 ||
      g->H < p->kernel_h || g->W < p->kernel_w)
    return tt_error(TT_ERR_INVALID, "%s: output %lldx%lld does not match input %lldx%lld, kernel %dx%d, stride %dx%d", k,
                    (long long)g->Ho, (long long)g->Wo, (long long)g->H, (long long)g->W, p->kernel_h, p->kernel_w,
                    p->stride_h, p->stride_w);
  return TT_OK;
}

static tt_status cu_pool2d_fwd(const tt_pool2d_params *p, const tt_tensor *x, tt_tensor *y, tt_tensor *argmax) {
  TT_TRY(check_nchw("pool2d_fwd", x, y));
  planes g = planes_of(x, y);
  TT_TRY(pool_check("pool2d_fwd", p, &g));
  bool is_max = p->mode == TT_POOL_MAX;
  if (is_max && !argmax) return tt_error(TT_ERR_INVALID, "pool2d_fwd: max pooling needs an argmax tensor");
  int64_t n = g.P * g.Ho * g.Wo;
  if (n == 0) return TT_OK;
  k_pool_fwd<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(
      tt_cuda_ptr<float>(x), tt_cuda_ptr<float>(y), is_max ? tt_cuda_ptr<int64_t>(argmax) : nullptr, g, p->kernel_h,
      p->kernel_w, p->stride_h, p->stride_w, is_max);
  return tt_cuda_check_launch("pool2d_fwd");
}

static tt_status cu_pool2d_bwd(const tt_pool2d_params *p, const tt_tensor *gy, const tt_tensor *argmax,
                               tt_tensor *gx) {
  TT_TRY(check_nchw("pool2d_bwd", gx, gy));
  planes g = planes_of(gx, gy);
  TT_TRY(pool_check("pool2d_bwd", p, &g));
  bool is_max = p->mode == TT_POOL_MAX;
  if (is_max && !argmax) return tt_error(TT_ERR_INVALID, "pool2d_bwd: max pooling needs the forward's argmax");
  int64_t n = g.P * g.H * g.W;
  if (n == 0) return TT_OK;
  k_pool_bwd<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(
      tt_cuda_ptr<float>(gy), is_max ? tt_cuda_ptr<int64_t>(argmax) : nullptr, tt_cuda_ptr<float>(gx), g, p->kernel_h,
      p->kernel_w, p->stride_h, p->stride_w, is_max);
  return tt_cuda_check_launch("pool2d_bwd");
}

/* ---- interpolation (torch.nn.functional.interpolate, align_corners = False) ---- */

/* Source coordinate of output index d: scale * (d + 0.5) - 0.5, formed in double and
 * rounded to float, as the CPU kernel does. */
static float source_coord(float scale, int64_t d) { return (float)((double)scale * ((double)d + 0.5) - 0.5); }

/* 'nearest': src = min(floor(d * in / out), in - 1) */
static void nearest_taps(int64_t in, int64_t out, int64_t *idx) {
  float scale = (float)in / (float)out;
  for (int64_t d = 0; d < out; d++) {
    int64_t s = (int64_t)floorf((float)d * scale);
    idx[d] = s < in - 1 ? s : in - 1;
  }
}

/* 'bilinear': i0 = floor(max(src, 0)), i1 = min(i0 + 1, in - 1), weight t of i1 */
static void linear_taps(int64_t in, int64_t out, int64_t *i0, int64_t *i1, float *t) {
  float scale = (float)in / (float)out;
  for (int64_t d = 0; d < out; d++) {
    float src = source_coord(scale, d);
    if (src < 0) src = 0;
    int64_t i = (int64_t)src;
    i0[d] = i;
    i1[d] = i < in - 1 ? i + 1 : i;
    t[d] = src - (float)i;
  }
}

/* 'bicubic': Keys' cubic convolution with A = -0.75 on taps floor(src) - 1 .. + 2,
 * clamped to the border; weights in PyTorch's form (distances t+1, t, 1-t, 2-t). */
static void cubic_taps(int64_t in, int64_t out, int64_t *idx, float *wt) {
  const float A = -0.75f;
  float scale = (float)in / (float)out;
  for (int64_t d = 0; d < out; d++) {
    float src = source_coord(scale, d), fl = floorf(src), t = src - fl;
    int64_t i = (int64_t)fl;
    float far0 = t + 1.0f, near1 = 1.0f - t, far3 = 2.0f - t;
    wt[4 * d + 0] = ((A * far0 - 5.0f * A) * far0 + 8.0f * A) * far0 - 4.0f * A;
    wt[4 * d + 1] = ((A + 2.0f) * t - (A + 3.0f)) * t * t + 1.0f;
    wt[4 * d + 2] = ((A + 2.0f) * near1 - (A + 3.0f)) * near1 * near1 + 1.0f;
    wt[4 * d + 3] = ((A * far3 - 5.0f * A) * far3 + 8.0f * A) * far3 - 4.0f * A;
    for (int k = 0; k < 4; k++) {
      int64_t j = i - 1 + k;
      idx[4 * d + k] = j < 0 ? 0 : j > in - 1 ? in - 1 : j;
    }
  }
}

/* 'area' = adaptive average pooling: window [floor(d*in/out), ceil((d+1)*in/out)) */
__device__ __forceinline__ int64_t area_start(int64_t d, int64_t out, int64_t in) {
  return (d / out) * in + ((d % out) * in) / out;
}
__device__ __forceinline__ int64_t area_end(int64_t d, int64_t out, int64_t in) { return 1 + ((d + 1) * in - 1) / out; }

/* Tables as on the CPU: rows first, then columns; ry/rx up to 4 taps per output. */
__global__ void k_interpolate(tt_interp_mode mode, const float *x, float *y, planes g, const int64_t *idx,
                              const float *wt) {
  const int64_t *ry = idx, *rx = idx + 4 * g.Ho;
  const float *wy = wt, *wx = wt + 4 * g.Ho;
  TT_CUDA_LOOP(i, g.P * g.Ho * g.Wo) {
    int64_t ox = i % g.Wo, r = i / g.Wo, oy = r % g.Ho, p = r / g.Ho;
    const float *src = x + p * g.H * g.W;
    float v;
    switch (mode) {
      case TT_INTERP_NEAREST: v = src[ry[oy] * g.W + rx[ox]]; break;
      case TT_INTERP_BILINEAR: {
        const float *r0 = src + ry[oy] * g.W, *r1 = src + ry[g.Ho + oy] * g.W;
        int64_t a = rx[ox], b = rx[g.Wo + ox];
        float tx = wx[ox], ty = wy[oy];
        float top = (1.0f - tx) * r0[a] + tx * r0[b], bot = (1.0f - tx) * r1[a] + tx * r1[b];
        v = (1.0f - ty) * top + ty * bot;
        break;
      }
      case TT_INTERP_BICUBIC: {
        float acc = 0;
        for (int a = 0; a < 4; a++) {
          const float *row = src + ry[4 * oy + a] * g.W;
          float h = 0;
          for (int b = 0; b < 4; b++) h += wx[4 * ox + b] * row[rx[4 * ox + b]];
          acc += wy[4 * oy + a] * h;
        }
        v = acc;
        break;
      }
      default: { /* TT_INTERP_AREA */
        int64_t y0 = area_start(oy, g.Ho, g.H), y1 = area_end(oy, g.Ho, g.H);
        int64_t x0 = area_start(ox, g.Wo, g.W), x1 = area_end(ox, g.Wo, g.W);
        float acc = 0;
        for (int64_t iy = y0; iy < y1; iy++)
          for (int64_t ix = x0; ix < x1; ix++) acc += src[iy * g.W + ix];
        v = acc / (float)((y1 - y0) * (x1 - x0));
        break;
      }
    }
    y[i] = v;
  }
}

// x [P, H, W] -> y [P, Ho, Wo]
static tt_status cu_interpolate_fwd(tt_interp_mode mode, const tt_tensor *x, tt_tensor *y) {
  TT_TRY(check_nchw("interpolate_fwd", x, y));
  planes g = planes_of(x, y);
  if ((unsigned)mode > TT_INTERP_BICUBIC) return tt_error(TT_ERR_INVALID, "interpolate: unknown mode %d", (int)mode);
  int64_t n = g.P * g.Ho * g.Wo;
  if (n == 0) return TT_OK;
  if (g.H < 1 || g.W < 1) return tt_error(TT_ERR_INVALID, "interpolate: empty input plane %lldx%lld", (long long)g.H,
                                          (long long)g.W);
  size_t taps = (size_t)(4 * (g.Ho + g.Wo));
  std::vector<int64_t> idx(taps, 0);
  std::vector<float> wt(taps, 0.0f);
  int64_t *ry = idx.data(), *rx = ry + 4 * g.Ho;
  float *wy = wt.data(), *wx = wy + 4 * g.Ho;
  switch (mode) {
    case TT_INTERP_NEAREST:
      nearest_taps(g.H, g.Ho, ry);
      nearest_taps(g.W, g.Wo, rx);
      break;
    case TT_INTERP_BILINEAR:
      linear_taps(g.H, g.Ho, ry, ry + g.Ho, wy);
      linear_taps(g.W, g.Wo, rx, rx + g.Wo, wx);
      break;
    case TT_INTERP_BICUBIC:
      cubic_taps(g.H, g.Ho, ry, wy);
      cubic_taps(g.W, g.Wo, rx, wx);
      break;
    default: break; /* area needs no table */
  }
  tt_cuda_buf dev;
  TT_TRY(dev.alloc(taps * (sizeof(int64_t) + sizeof(float)), "interpolate"));
  int64_t *didx = dev.as<int64_t>();
  float *dwt = (float *)(didx + taps);
  cudaStream_t st = tt_cuda_stream();
  TT_CUDA_TRY(cudaMemcpyAsync(didx, idx.data(), taps * sizeof(int64_t), cudaMemcpyHostToDevice, st), "interpolate");
  TT_CUDA_TRY(cudaMemcpyAsync(dwt, wt.data(), taps * sizeof(float), cudaMemcpyHostToDevice, st), "interpolate");
  /* No wait for the copies: from pageable memory, cudaMemcpyAsync returns once
   * the bytes are staged (CUDA runtime, "API synchronization behavior"), so the
   * host tables may go when this function returns. */
  k_interpolate<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, st>>>(mode, tt_cuda_ptr<float>(x), tt_cuda_ptr<float>(y), g,
                                                             didx, dwt);
  return tt_cuda_check_launch("interpolate_fwd");
}

tt_status tt_cuda_register_resample(tt_backend *b) {
  TT_REGISTER_KERNEL(b, upsample_nearest_fwd, cu_upsample_nearest_fwd);
  TT_REGISTER_KERNEL(b, upsample_nearest_bwd, cu_upsample_nearest_bwd);
  TT_REGISTER_KERNEL(b, pool2d_fwd, cu_pool2d_fwd);
  TT_REGISTER_KERNEL(b, pool2d_bwd, cu_pool2d_bwd);
  TT_REGISTER_KERNEL(b, interpolate_fwd, cu_interpolate_fwd);
  return TT_OK;
}

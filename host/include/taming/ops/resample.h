/* ops/resample.h — nearest upsampling, pooling (with padding) and interpolation of NCHW maps. */
#ifndef TAMING_OPS_RESAMPLE_H
#define TAMING_OPS_RESAMPLE_H
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tt_interp_mode {
  TT_INTERP_NEAREST = 0, /* PyTorch 'nearest': src = floor(dst * in / out) */
  TT_INTERP_AREA,        /* PyTorch 'area' = adaptive average pooling */
  TT_INTERP_BILINEAR,    /* align_corners = False */
  TT_INTERP_BICUBIC      /* align_corners = False, A = -0.75 */
} tt_interp_mode;

typedef enum tt_pool_mode { TT_POOL_MAX = 0, TT_POOL_AVG } tt_pool_mode;

typedef struct tt_pool2d_params {
  tt_pool_mode mode;
  int kernel_h, kernel_w, stride_h, stride_w;
  /* zero padding on each side (at most half the kernel, as PyTorch); padded cells never
   * win a max. An average divides by the cells inside the input, or with
   * count_include_pad by the window clipped to the padded input (PyTorch's divisor). */
  int pad_h, pad_w;
  bool count_include_pad;
} tt_pool2d_params;

/* Kernels (contiguous NCHW f32):
 *   upsample_nearest_fwd: y[.., H*sh, W*sw] copies x[.., y/sh, x/sw]; bwd sums gy blocks into gx.
 *   pool2d_fwd: y = pool(x), floor mode, Ho = (H + 2*pad_h - kernel_h) / stride_h + 1 (likewise Wo);
 *               argmax (i64, same shape as y) filled for MAX, may be NULL for AVG.
 *   pool2d_bwd: gx from gy (and argmax for MAX).
 *   interpolate_fwd: y [.., oh, ow] from x [.., h, w] (forward only). */
typedef tt_status (*tt_upsample_nearest_fwd_fn)(int sh, int sw, const tt_tensor *x, tt_tensor *y);
typedef tt_status (*tt_upsample_nearest_bwd_fn)(int sh, int sw, const tt_tensor *gy, tt_tensor *gx);
typedef tt_status (*tt_pool2d_fwd_fn)(const tt_pool2d_params *p, const tt_tensor *x, tt_tensor *y,
                                      tt_tensor *argmax);
typedef tt_status (*tt_pool2d_bwd_fn)(const tt_pool2d_params *p, const tt_tensor *gy,
                                      const tt_tensor *argmax, tt_tensor *gx);
typedef tt_status (*tt_interpolate_fwd_fn)(tt_interp_mode mode, const tt_tensor *x, tt_tensor *y);

/* [B, C, H, W] -> [B, C, H*s, W*s]. */
TT_API tt_tensor *tt_upsample_nearest(tt_tensor *x, int scale);
TT_API tt_tensor *tt_max_pool2d(tt_tensor *x, int kernel, int stride);
TT_API tt_tensor *tt_avg_pool2d(tt_tensor *x, int kernel, int stride);
/* The general form (per-axis kernel, stride, padding): InceptionV3's 3x3 stride-1 pools
 * with padding 1 (average with count_include_pad = False, and max). */
TT_API tt_tensor *tt_pool2d(tt_tensor *x, const tt_pool2d_params *p);
/* [B, C, H, W] -> [B, C, oh, ow], as torch.nn.functional.interpolate(size=(oh, ow)).
 * Forward only: it resizes conditions during preprocessing. An input that requires
 * a gradient while gradients are enabled is refused (TT_ERR_UNSUPPORTED) rather than
 * silently cutting the graph; detach it or wrap the call in TT_NO_GRAD_BEGIN/END. */
TT_API tt_tensor *tt_interpolate(tt_tensor *x, int64_t oh, int64_t ow, tt_interp_mode mode);

#ifdef __cplusplus
}
#endif
#endif

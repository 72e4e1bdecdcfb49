/* ops/conv.h — 2-D convolution (cross-correlation), any stride, asymmetric zero
 * padding (the official Downsample pads only bottom and right). NCHW, f32. */
#ifndef TAMING_OPS_CONV_H
#define TAMING_OPS_CONV_H
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tt_conv2d_params {
  int stride_h, stride_w;
  int pad_top, pad_bottom, pad_left, pad_right;
} tt_conv2d_params;

/* Kernels (all tensors contiguous):
 *   conv2d_fwd:        y[B,Co,Ho,Wo] = conv(x[B,Ci,H,W], w[Co,Ci,kh,kw]) + b[Co] (b may be NULL)
 *   conv2d_bwd_data:   gx[B,Ci,H,W] = d/dx (overwritten)
 *   conv2d_bwd_weight: gw[Co,Ci,kh,kw], gb[Co] (gb may be NULL) (overwritten).
 *                      gw may be NULL too, and then x may be NULL: only the bias gradient is
 *                      computed (a frozen weight with a trainable bias needs no saved input).
 * Ho = (H + pad_top + pad_bottom - kh) / stride_h + 1, likewise Wo. */
typedef tt_status (*tt_conv2d_fwd_fn)(const tt_conv2d_params *p, const tt_tensor *x,
                                      const tt_tensor *w, const tt_tensor *b, tt_tensor *y);
typedef tt_status (*tt_conv2d_bwd_data_fn)(const tt_conv2d_params *p, const tt_tensor *gy,
                                           const tt_tensor *w, tt_tensor *gx);
typedef tt_status (*tt_conv2d_bwd_weight_fn)(const tt_conv2d_params *p, const tt_tensor *x,
                                             const tt_tensor *gy, tt_tensor *gw, tt_tensor *gb);

/* x [B, Ci, H, W], w [Co, Ci, kh, kw], b [Co] or NULL -> [B, Co, Ho, Wo]. */
TT_API tt_tensor *tt_conv2d(tt_tensor *x, tt_tensor *w, tt_tensor *b, const tt_conv2d_params *p);
/* Symmetric padding shorthand. */
TT_API tt_conv2d_params tt_conv2d_params_make(int stride, int pad);

#ifdef __cplusplus
}
#endif
#endif

/* ops/conv_prec.h — backend kernels of 2-D convolution whose products run in a
 * chosen dtype: bf16 for mixed-precision training (tt_set_compute_precision),
 * or f32 through another library than the default kernels where that measured
 * faster. Same geometry as taming/ops/conv.h, and the same tensors: f32, NCHW,
 * contiguous. With dt = bf16 the kernel rounds x, w and gy to bf16 (nearest even)
 * on the way in and sums in f32; outputs and gradients are f32, so weights,
 * gradients and the optimizer state stay f32 (fp32 master weights).
 *
 * The CPU kernels run through oneDNN (kernels/cpu/conv_dnnl_train.c). They keep
 * no state per weight (training changes the weights every step), only a plan per
 * shape and direction. */
#ifndef TAMING_OPS_CONV_PREC_H
#define TAMING_OPS_CONV_PREC_H
#include "taming/ops/conv.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kernels (all tensors f32 and contiguous; outputs preallocated and overwritten):
 *   conv2d_fwd_prec:        y [B,Co,Ho,Wo] = conv(x [B,Ci,H,W], w [Co,Ci,kh,kw]) + b [Co] (b may be NULL)
 *   conv2d_bwd_data_prec:   gx [B,Ci,H,W] from gy [B,Co,Ho,Wo] and w
 *   conv2d_bwd_weight_prec: gw [Co,Ci,kh,kw] and gb [Co] (gb may be NULL) from x and gy
 *   conv2d_prec_isa:        the instruction set the kernels use for dt ("amx-bf16 (oneDNN)"),
 *                           or NULL when there is no kernel for dt on this CPU. */
typedef tt_status (*tt_conv2d_fwd_prec_fn)(tt_dtype dt, const tt_conv2d_params *p, const tt_tensor *x,
                                           const tt_tensor *w, const tt_tensor *b, tt_tensor *y);
typedef tt_status (*tt_conv2d_bwd_data_prec_fn)(tt_dtype dt, const tt_conv2d_params *p, const tt_tensor *gy,
                                                const tt_tensor *w, tt_tensor *gx);
typedef tt_status (*tt_conv2d_bwd_weight_prec_fn)(tt_dtype dt, const tt_conv2d_params *p, const tt_tensor *x,
                                                  const tt_tensor *gy, tt_tensor *gw, tt_tensor *gb);
typedef const char *(*tt_conv2d_prec_isa_fn)(tt_dtype dt);

/* The instruction set tt_conv2d uses on dev for products in dt, or NULL when it
 * has no kernel for dt there (then bf16 convolutions run in f32). */
TT_API const char *tt_conv2d_prec_isa(tt_device dev, tt_dtype dt);

#ifdef __cplusplus
}
#endif
#endif

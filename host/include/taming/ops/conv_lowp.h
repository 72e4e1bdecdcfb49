/* ops/conv_lowp.h — 2-D convolution with bf16 weights, for inference: the VQGAN's
 * convolutions under precision=bf16. Forward only (no autograd node is recorded).
 * Activations stay f32 NCHW between ops; inside the kernel the input is rounded
 * to bf16 (nearest even) and products accumulate in f32, so only the input and
 * the weights lose precision. Same geometry as tt_conv2d (taming/ops/conv.h).
 *
 * A pack holds the weights in bf16 plus the kernel's own state for them (on the
 * CPU: the weights reordered into the layout the chosen oneDNN kernel reads, and
 * one primitive per input shape; on CUDA: the weights in NHWC and one cuDNN plan
 * per input shape), made on first use of a shape and kept until the pack is
 * freed, as tt_qlinear_pack keeps its weights. */
#ifndef TAMING_OPS_CONV_LOWP_H
#define TAMING_OPS_CONV_LOWP_H
#include "taming/ops/conv.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tt_conv2d_packed tt_conv2d_packed;

/* What a packed convolution does to its input before it convolves and to its
 * output after, in the passes that change layout around the kernel anyway, so
 * that no f32 map of the intermediate is written and read back:
 *   input:  x -> silu?(group_norm(x)) (groups > 0) -> nearest upsample by `upsample`
 *   output: y -> y + residual (residual not NULL).
 * The values are those of tt_group_norm_silu / tt_group_norm, tt_upsample_nearest
 * and tt_add applied in f32 before rounding to bf16. A zeroed struct with
 * upsample = 1 does nothing. */
typedef struct {
  int groups;                        /* 0: no normalisation of the input */
  float eps;
  const tt_tensor *norm_w, *norm_b;  /* [Ci] or NULL (no scale / no shift) */
  bool silu;                         /* SiLU after the normalisation */
  int upsample;                      /* 1, or 2: x [B,Ci,H,W] is convolved as [B,Ci,2H,2W] */
  const tt_tensor *residual;         /* [B, Co, Ho, Wo] f32 contiguous, or NULL */
  /* Channels-last maps, for a map that only passes from one fused convolution to the
   * next: x is [B, H, W, Ci] (in_nhwc) and y [B, Ho, Wo, Co] (out_nhwc, not with a
   * residual), so the kernel neither transposes the output nor the next input. */
  bool in_nhwc, out_nhwc;
} tt_conv2d_fuse;

/* Kernels (x, w, b contiguous; y contiguous and preallocated):
 *   conv2d_bf16:            y f32 [B,Co,Ho,Wo] = conv(x f32 [B,Ci,H,W], w bf16 [Co,Ci,kh,kw]) + b f32 [Co]
 *                           (b may be NULL). *cache is the kernel's state for w (NULL at first;
 *                           the kernel fills it), released by conv2d_bf16_cache_free.
 *   conv2d_bf16_fused:      as conv2d_bf16, with the input and output steps of f (not NULL);
 *                           y's spatial size is that of the upsampled input's convolution;
 *                           x and y channels-last where f says so.
 *                           The same cache as conv2d_bf16.
 *   conv2d_bf16_cache_free: frees what conv2d_bf16 put in a cache (NULL is fine).
 *   conv2d_bf16_isa:        the instruction set conv2d_bf16 uses ("amx-bf16 (oneDNN)",
 *                           "avx512bf16 (oneDNN)", "cudnn-bf16 ..." on CUDA), or why there is none. */
typedef tt_status (*tt_conv2d_bf16_fn)(void **cache, const tt_conv2d_params *p, const tt_tensor *x,
                                       const tt_tensor *w, const tt_tensor *b, tt_tensor *y);
typedef tt_status (*tt_conv2d_bf16_fused_fn)(void **cache, const tt_conv2d_params *p, const tt_conv2d_fuse *f,
                                             const tt_tensor *x, const tt_tensor *w, const tt_tensor *b,
                                             tt_tensor *y);
typedef void (*tt_conv2d_bf16_cache_free_fn)(void *cache);
typedef const char *(*tt_conv2d_bf16_isa_fn)(void);

/* True when dev has a bf16 convolution kernel; *isa (may be NULL) gets the
 * instruction set it uses, or why there is none ("no avx512bf16 on this CPU"). */
TT_API bool tt_conv2d_bf16_supported(tt_device dev, const char **isa);
/* w f32 [Co, Ci, kh, kw] -> a pack of its weights in dt (bf16 only, for now) on w's
 * device; NULL + error. The pack does not keep w. */
TT_API tt_conv2d_packed *tt_conv2d_pack(tt_tensor *w, tt_dtype dt);
TT_API void tt_conv2d_packed_free(tt_conv2d_packed *pk);
/* x [B, Ci, H, W] f32, bias [Co] f32 or NULL -> [B, Co, Ho, Wo] f32. */
TT_API tt_tensor *tt_conv2d_packed_forward(tt_conv2d_packed *pk, tt_tensor *x, tt_tensor *bias,
                                           const tt_conv2d_params *p);
/* As tt_conv2d_packed_forward with f's steps before and after (f may be NULL):
 * x [B, Ci, H, W] ([B, H, W, Ci] with in_nhwc), f->residual [B, Co, Ho, Wo] ->
 * [B, Co, Ho, Wo] ([B, Ho, Wo, Co] with out_nhwc) f32, where Ho, Wo are those of the
 * convolution of the input upsampled by f->upsample. Where the backend has no fused
 * kernel, the same steps run as separate ops. */
TT_API tt_tensor *tt_conv2d_packed_forward_fused(tt_conv2d_packed *pk, tt_tensor *x, tt_tensor *bias,
                                                 const tt_conv2d_params *p, const tt_conv2d_fuse *f);

#ifdef __cplusplus
}
#endif
#endif

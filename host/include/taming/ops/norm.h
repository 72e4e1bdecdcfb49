/* ops/norm.h — group norm (VQGAN, eps 1e-6), group norm + SiLU fused (the
 * VQGAN's Normalize + swish), layer norm (GPT, eps 1e-5), batch norm (PatchGAN
 * discriminator, train and eval), batch norm + LeakyReLU fused (the PatchGAN's
 * middle stages). Biased variances. */
#ifndef TAMING_OPS_NORM_H
#define TAMING_OPS_NORM_H
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kernels (contiguous f32):
 *   group_norm_fwd: x [B, C, S] (S = spatial size), G groups of C/G channels;
 *                   w, b [C] (may be NULL); y like x; mean, rstd [B, G] saved.
 *   group_norm_bwd: gx like x, gw, gb [C] (each NULL when not wanted; overwritten).
 *   group_norm_silu_fwd: y = silu(group_norm(x)), arguments as group_norm_fwd.
 *   group_norm_silu_bwd: from the input x (not y) and the forward's w, b, mean,
 *                   rstd; gx, gw, gb as for group_norm_bwd.
 *   layer_norm_fwd: x [N, E] normalised over E; mean, rstd [N].
 *   layer_norm_bwd: likewise.
 *   batch_norm_stats: per channel of x [B, C, S]: mean [C] and biased var [C].
 *   batch_norm_apply: y = (x - mean[c]) * rstd[c] * w[c] + b[c]  (rstd given).
 *   batch_norm_bwd: training-mode backward (batch statistics), or with
 *                   `training` false the per-channel affine backward;
 *                   gx, gw, gb as for group_norm_bwd.
 *   batch_norm_lrelu_apply: y = leaky_relu(h, slope), h = the batch_norm_apply value.
 *   batch_norm_lrelu_bwd: batch_norm_bwd of gh = gy * (h > 0 ? 1 : slope), with h
 *                   recomputed from the input x (not y) and the forward's w, b.
 * Statistics are accumulated in double. */
typedef tt_status (*tt_group_norm_fwd_fn)(const tt_tensor *x, int groups, float eps,
                                          const tt_tensor *w, const tt_tensor *b, tt_tensor *y,
                                          tt_tensor *mean, tt_tensor *rstd);
typedef tt_status (*tt_group_norm_bwd_fn)(const tt_tensor *x, int groups, const tt_tensor *w,
                                          const tt_tensor *mean, const tt_tensor *rstd,
                                          const tt_tensor *gy, tt_tensor *gx, tt_tensor *gw,
                                          tt_tensor *gb);
typedef tt_group_norm_fwd_fn tt_group_norm_silu_fwd_fn;
typedef tt_status (*tt_group_norm_silu_bwd_fn)(const tt_tensor *x, int groups, const tt_tensor *w,
                                               const tt_tensor *b, const tt_tensor *mean,
                                               const tt_tensor *rstd, const tt_tensor *gy, tt_tensor *gx,
                                               tt_tensor *gw, tt_tensor *gb);
typedef tt_status (*tt_layer_norm_fwd_fn)(const tt_tensor *x, float eps, const tt_tensor *w,
                                          const tt_tensor *b, tt_tensor *y, tt_tensor *mean,
                                          tt_tensor *rstd);
typedef tt_status (*tt_layer_norm_bwd_fn)(const tt_tensor *x, const tt_tensor *w,
                                          const tt_tensor *mean, const tt_tensor *rstd,
                                          const tt_tensor *gy, tt_tensor *gx, tt_tensor *gw,
                                          tt_tensor *gb);
typedef tt_status (*tt_batch_norm_stats_fn)(const tt_tensor *x, tt_tensor *mean, tt_tensor *var);
typedef tt_status (*tt_batch_norm_apply_fn)(const tt_tensor *x, const tt_tensor *mean,
                                            const tt_tensor *rstd, const tt_tensor *w,
                                            const tt_tensor *b, tt_tensor *y);
typedef tt_status (*tt_batch_norm_bwd_fn)(bool training, const tt_tensor *x, const tt_tensor *mean,
                                          const tt_tensor *rstd, const tt_tensor *w,
                                          const tt_tensor *gy, tt_tensor *gx, tt_tensor *gw,
                                          tt_tensor *gb);
typedef tt_status (*tt_batch_norm_lrelu_apply_fn)(const tt_tensor *x, const tt_tensor *mean,
                                                  const tt_tensor *rstd, const tt_tensor *w,
                                                  const tt_tensor *b, float slope, tt_tensor *y);
typedef tt_status (*tt_batch_norm_lrelu_bwd_fn)(bool training, const tt_tensor *x,
                                                const tt_tensor *mean, const tt_tensor *rstd,
                                                const tt_tensor *w, const tt_tensor *b, float slope,
                                                const tt_tensor *gy, tt_tensor *gx, tt_tensor *gw,
                                                tt_tensor *gb);

/* x [B, C, ...]; weight, bias [C] or NULL. */
TT_API tt_tensor *tt_group_norm(tt_tensor *x, int groups, tt_tensor *weight, tt_tensor *bias,
                                float eps);
/* silu(group_norm(x)) in one pass, the same values as the two ops; saves x and
 * the statistics for the backward, and no normalised copy of x. */
TT_API tt_tensor *tt_group_norm_silu(tt_tensor *x, int groups, tt_tensor *weight, tt_tensor *bias,
                                     float eps);
/* Normalises over the last dim; weight, bias [E] or NULL. */
TT_API tt_tensor *tt_layer_norm(tt_tensor *x, tt_tensor *weight, tt_tensor *bias, float eps);
/* x [B, C, ...]. training: batch statistics, and running_mean/var (may be NULL)
 * are updated in place with `momentum` (running_var gets the unbiased variance);
 * needs more than one value per channel, like PyTorch. eval: the running
 * statistics (both required) are used. num_batches_tracked is the caller's. */
TT_API tt_tensor *tt_batch_norm(tt_tensor *x, tt_tensor *weight, tt_tensor *bias,
                                tt_tensor *running_mean, tt_tensor *running_var, bool training,
                                float momentum, float eps);
/* leaky_relu(batch_norm(x), slope) in one pass, the same values, statistics and
 * running-stat updates as the two ops; saves x and the statistics for the
 * backward, and neither the normalised tensor nor the output. */
TT_API tt_tensor *tt_batch_norm_leaky_relu(tt_tensor *x, tt_tensor *weight, tt_tensor *bias,
                                           tt_tensor *running_mean, tt_tensor *running_var,
                                           bool training, float momentum, float eps, float slope);

#ifdef __cplusplus
}
#endif
#endif

/* sampling.h — the autoregressive loops, in C: they drive a transformer plugin
 * and a sampler plugin one token at a time, through the typed calls of their
 * kinds' contracts (kinds.h: tt_transformer_forward, tt_transformer_reset_cache,
 * tt_transformer_forward_cached, tt_sampler_sample).
 *
 * tt_sample_sequence: the reference's sample_with_past (KV cache) or its
 *   uncached loop, with optional classifier-free guidance.
 * tt_sample_window: the sliding attention window of sample_conditional.py for
 *   latent grids larger than the transformer's block (REFERENCE §4.7), reusing
 *   the KV cache while the window does not move. Cells are visited in raster
 *   order from `start`; unlike the reference loop, rows after the first start at
 *   column 0 (the reference restarts every row at start's column, which only
 *   matters for an odd number of rows).
 *
 * The sampler is a plugin (method sample) or, when the plugin is NULL, a C
 * callback (opts->draw): the Lua binding passes a Lua function this way. Either
 * gets the last position's logits [B, V] (already cut to vocab_limit) once per
 * sampled step and returns i64 tokens [B] in [0, V).
 *
 * Forced tokens: with a mask, positions where the mask is 0 keep their known
 * token and only the others are sampled. A step where every row keeps its token
 * runs no forward pass of its own: the kept tokens are fed together with the
 * next step that samples. */
#ifndef TAMING_SAMPLING_H
#define TAMING_SAMPLING_H

#include "taming/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A sampler as a callback: logits [B, V] -> *tokens i64 [B] (a new reference). */
typedef tt_status (*tt_draw_fn)(void *ctx, tt_tensor *logits, tt_tensor **tokens);

typedef struct tt_sample_opts {
  bool use_cache;          /* KV cache (true) or the full forward every step */
  int64_t vocab_limit;     /* > 0: only logits[:, :vocab_limit] are sampled from */
  tt_tensor *uncond;       /* classifier-free guidance: unconditional prefix [B, L0] (or NULL) */
  double cfg_scale;        /* logits = u + scale * (c - u); at 1 uncond is not run */
  tt_draw_fn draw;         /* the sampler when the plugin is NULL */
  void *draw_ctx;
  tt_tensor *known;        /* forced tokens: i64 [B, steps] (or NULL) ... */
  tt_tensor *mask;         /* ... kept where mask [B, steps] (u8 or i64) is 0, sampled where it is not */
} tt_sample_opts;

/* prefix [B, L0] i64 (L0 >= 1) -> tokens [B, steps] i64 (only the new ones). */
TT_API tt_status tt_sample_sequence(tt_instance *gpt, tt_instance *sampler, tt_tensor *prefix, int64_t steps,
                                    const tt_sample_opts *opts, tt_tensor **out);

typedef struct tt_window_opts {
  int64_t win_h, win_w;       /* window (the training crop), e.g. 16 x 16 */
  int64_t anchor_h, anchor_w; /* 8 in the conditional demos, 7 in the scene demo */
  int64_t start;              /* first raster cell to sample (earlier cells are kept) */
  bool use_cache;
  int64_t vocab_limit;
  tt_draw_fn draw;            /* the sampler when the plugin is NULL */
  void *draw_ctx;
  tt_tensor *mask;            /* [B, H, W] u8 or i64 (or NULL): cells where it is 0 keep the grid's token */
  int64_t cache_slots;        /* KV caches kept for window positions met again (0: one per window column,
                                 as many as the model keeps; 1: only the current window's) */
  int64_t *tokens_fed;        /* (out, may be NULL) how many tokens per sequence went through the model */
} tt_window_opts;

/* grid [B, H, W] i64: filled in place from cell `start` on. cond_grid [B, H, W] i64
 * (spatial condition on the same grid, cropped with the same window) and/or
 * cond_tokens [B, Lc] i64 (a fixed prefix such as a class or SOS token) — at least one. */
TT_API tt_status tt_sample_window(tt_instance *gpt, tt_instance *sampler, tt_tensor *grid, tt_tensor *cond_grid,
                                  tt_tensor *cond_tokens, const tt_window_opts *opts);

#ifdef __cplusplus
}
#endif
#endif

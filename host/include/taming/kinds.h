/* kinds.h — what a plugin of each kind implements, and typed calls to it.
 *
 * A plugin's methods are named (plugin.h); this header is the contract behind
 * the names. For each kind it lists the required and optional methods with
 * their arguments, results and shapes. The loader checks, for a plugin of a
 * kind listed here, that every required method is present and that methods
 * which go together (state and set_state) come as a pair; it refuses the file
 * otherwise, naming it and the missing method. A kind not listed here (a
 * third-party kind) is loaded without method checks.
 *
 * Arguments are borrowed, results are new references the caller unrefs. The
 * typed wrappers below call a method by its contract name and check what it
 * returned (type, dtype, rank), so a plugin that breaks its contract is
 * named in a one-line error instead of crashing the caller.
 *
 * sampler — logits in, tokens out, with its own random state.
 *   sample(logits [B, V] | [B, T, V]) -> tokens i64 [B]         required
 *     The host passes the last position's logits already cut to the model's
 *     vocab_limit (V is the number of tokens that may be drawn); a [B, T, V]
 *     argument means "use position T-1". tt_sampler_host_logits reads either.
 *   probs(logits) -> p f32 [B, V]: the distribution sample() draws from
 *   state() -> seed, counter                                       \ optional,
 *   set_state(seed, counter)                                       / together
 *     Randomness is a pure function of (seed, counter): a checkpoint saves
 *     state() and a resumed run calls set_state() to continue the stream.
 * cond — a condition stage: class labels, SOS, coordinates, images -> tokens.
 *   encode(c) -> quant, loss (nil), indices i64 [B, L]             required
 *     c: a tensor (labels [B], an image [B, C, H, W]) or a batch size B.
 *   decode(quant) -> the condition as an image                     optional
 * permuter — the order in which a latent grid becomes a sequence.
 *   forward(idx i64 [B, H*W] raster) -> idx in sequence order      required
 *   reverse(idx i64 [B, H*W] sequence order) -> raster order       required
 *   indices() -> fwd, bwd (i64 [H*W] each)                         optional
 * quantizer — the VQGAN bottleneck.
 *   forward(z [B, D, h, w]) -> zq [B, D, h, w], loss, indices      required
 *   get_codebook_entry(indices [N] [, {B, h, w, D}]) -> zq [B, D, h, w]  required
 *   info() -> {n_e, e_dim, ...}, set_temperature(tau)              optional
 * encoder — forward(x [B, C, H, W]) -> h [B, z, H/f, W/f]          required
 * decoder — forward(z [B, z, h, w]) -> x [B, C, h*f, w*f]          required
 *   get_last_layer() -> the last conv weight (adaptive GAN weight)   optional
 * transformer — the autoregressive model over tokens.
 *   forward(tokens i64 [B, T] [, embeddings [B, T0, E]]) -> logits [B, T0+T, V]  required
 *   reset_cache(B): an empty KV cache for B sequences              \ optional,
 *   forward_cached(tokens [B, T] [, last_only]) -> logits [B, 1|T, V] / together
 *   cache_len() -> n, truncate_cache(n), info() -> {vocab_size, block_size, ...}  optional
 *   cache_slots(n) -> kept, select_cache(i): several KV caches       \ optional,
 *     (each its own batch and length), switched without copying      / together
 * discriminator — forward(x [B, C, H, W]) -> logits [B, 1, h, w]   required
 * loss — forward(x, y [B, C, H, W]) -> distance [B, 1, 1, 1]       required
 * layer — forward(x) -> y                                          required
 * feature — forward(x [B, 3, H, W] in [0, 1]) -> features [B, F] [, logits [B, K]]  required
 *
 * Config: a plugin reads its config with the tt_cfg_* readers (value.h) and
 * calls tt_cfg_check_keys first, so a misspelled key is an error that lists
 * the keys it knows. */
#ifndef TAMING_KINDS_H
#define TAMING_KINDS_H

#include "taming/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the contracts, as data (what the loader checks and `taming plugins -v` shows) ---- */

typedef struct tt_kind_method {
  const char *name;
  int group;          /* 0: required; > 0: optional, and present all together with its group */
  const char *doc;    /* the contract: arguments -> results, with shapes */
} tt_kind_method;

typedef struct tt_kind {
  const char *kind;
  const char *summary;
  const tt_kind_method *methods;   /* terminated by {NULL, 0, NULL} */
} tt_kind;

#define TT_KIND_REQUIRED 0
#define TT_KIND_OPTIONAL (-1)     /* optional, on its own */

/* The contract of a kind, or NULL for a kind without one. */
TT_API const tt_kind *tt_kind_find(const char *kind);
/* The i-th known kind (0-based), NULL past the end. */
TT_API const tt_kind *tt_kind_at(int i);
/* Checks a descriptor against its kind's contract (TT_OK for a kind without
 * one); the refusal names `path`, the plugin and the missing method. */
TT_API tt_status tt_kind_check(const char *path, const tt_plugin_desc *d);

/* ---- sampler ---- */

/* logits [B, V] -> tokens i64 [B] (host), each in [0, V). */
TT_API tt_status tt_sampler_sample(tt_instance *s, tt_tensor *logits, tt_tensor **tokens);
/* logits [B, V] -> p f32 [B, V]. */
TT_API tt_status tt_sampler_probs(tt_instance *s, tt_tensor *logits, tt_tensor **probs);
/* The random state; a sampler without state() reports 0, 0. */
TT_API tt_status tt_sampler_state(tt_instance *s, uint64_t *seed, uint64_t *counter);
/* Sets the random state; a no-op for a sampler without set_state(). */
TT_API tt_status tt_sampler_set_state(tt_instance *s, uint64_t seed, uint64_t counter);

/* SDK helpers for sampler plugins. The one argument of sample/probs as a host
 * copy f32 [B, V] of the last position (args[0] is f32 [B, V] or [B, T, V]).
 * The caller unrefs *out. */
TT_API tt_status tt_sampler_host_logits(const tt_value *args, int nargs, tt_tensor **out);
/* Index of the first maximum of row[0..V) (the reference's topk(1) on ties). */
TT_API int64_t tt_sampler_argmax(const float *row, int64_t V);

/* ---- transformer ---- */

/* tokens i64 [B, T] (embeddings [B, T0, E] or NULL) -> logits [B, T0+T, V]. */
TT_API tt_status tt_transformer_forward(tt_instance *t, tt_tensor *tokens, tt_tensor *embeddings,
                                        tt_tensor **logits);
TT_API tt_status tt_transformer_reset_cache(tt_instance *t, int64_t batch);
/* tokens [B, T] appended to the cache -> logits [B, 1, V] (last_only) or [B, T, V]. */
TT_API tt_status tt_transformer_forward_cached(tt_instance *t, tt_tensor *tokens, bool last_only,
                                               tt_tensor **logits);
TT_API tt_status tt_transformer_cache_len(tt_instance *t, int64_t *n);
TT_API tt_status tt_transformer_truncate_cache(tt_instance *t, int64_t n);
/* Keeps up to n KV caches; *kept says how many the plugin keeps (its memory
 * budget), 1 where it has no cache_slots(). */
TT_API tt_status tt_transformer_cache_slots(tt_instance *t, int64_t n, int64_t *kept);
/* The cache slot i in [0, kept) that reset_cache and forward_cached act on next. */
TT_API tt_status tt_transformer_select_cache(tt_instance *t, int64_t i);

/* ---- cond ---- */

/* c (a tensor, or a batch size as an int value) -> quant (may be NULL), indices i64 [B, L]. */
TT_API tt_status tt_cond_encode(tt_instance *c, const tt_value *input, tt_tensor **quant, tt_tensor **indices);

/* ---- permuter ---- */

/* idx i64 [B, N] -> idx i64 [B, N]: raster to sequence order (forward) or back (reverse). */
TT_API tt_status tt_permuter_forward(tt_instance *p, tt_tensor *idx, tt_tensor **out);
TT_API tt_status tt_permuter_reverse(tt_instance *p, tt_tensor *idx, tt_tensor **out);

/* ---- quantizer ---- */

/* z [B, D, h, w] -> zq [B, D, h, w], loss (scalar, may be NULL), indices. Any out may be NULL. */
TT_API tt_status tt_quantizer_forward(tt_instance *q, tt_tensor *z, tt_tensor **zq, tt_tensor **loss,
                                      tt_tensor **indices);
/* indices i64 [N] and the shape {B, h, w, D} -> zq [B, D, h, w]. */
TT_API tt_status tt_quantizer_get_codebook_entry(tt_instance *q, tt_tensor *indices, const int64_t shape[4],
                                                 tt_tensor **zq);

/* ---- encoder, decoder, discriminator, layer, feature: x -> y; loss: x, y -> d ---- */

TT_API tt_status tt_encoder_forward(tt_instance *e, tt_tensor *x, tt_tensor **h);
TT_API tt_status tt_decoder_forward(tt_instance *d, tt_tensor *z, tt_tensor **x);
TT_API tt_status tt_discriminator_forward(tt_instance *d, tt_tensor *x, tt_tensor **logits);
TT_API tt_status tt_loss_forward(tt_instance *l, tt_tensor *x, tt_tensor *y, tt_tensor **distance);
TT_API tt_status tt_layer_forward(tt_instance *l, tt_tensor *x, tt_tensor **y);
/* x [B, 3, H, W] -> features [B, F]; *logits (may be NULL) receives the second result or NULL. */
TT_API tt_status tt_feature_forward(tt_instance *f, tt_tensor *x, tt_tensor **features, tt_tensor **logits);

#ifdef __cplusplus
}
#endif
#endif

/* ops/attention.h — scaled dot-product attention with the minGPT causal mask.
 *
 * Query t sits at absolute position i = q_offset + t (q_offset > 0 when keys
 * include a KV cache). With `causal`, key s is visible iff s <= i, or both
 * i < n_unmasked and s < n_unmasked (minGPT's n_unmasked block). Every query
 * sees at least key 0, so no row is ever fully masked. Without `causal`,
 * q_offset and n_unmasked are ignored and every key is visible.
 *
 * The two users: the VQGAN AttnBlock (q, k, v [B, H*W, C], one head, scale
 * C^-1/2, no mask) and the GPT ([B, n_head, T, d], causal; with a KV cache,
 * q [B, n_head, 1, d] at q_offset = past length against k, v of past + 1). */
#ifndef TAMING_OPS_ATTENTION_H
#define TAMING_OPS_ATTENTION_H
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tt_attention_params {
  float scale;         /* usually 1/sqrt(d) */
  bool causal;
  int64_t q_offset;
  int64_t n_unmasked;
} tt_attention_params;

/* Kernels (contiguous f32; BH = product of the leading dims):
 *   attention_fwd: q [BH, Tq, d], k [BH, Tk, d], v [BH, Tk, dv] -> out [BH, Tq, dv];
 *                  probs [BH, Tq, Tk] is filled when non-NULL (saved for backward),
 *                  with exact 0 at masked positions. With probs NULL a kernel
 *                  must not need [BH, Tq, Tk] of memory (CPU: one row block per thread).
 *   attention_bwd: from probs and gout: gq, gk, gv (overwritten); any of the
 *                  three may be NULL when that gradient is not wanted. */
typedef tt_status (*tt_attention_fwd_fn)(const tt_attention_params *p, const tt_tensor *q,
                                         const tt_tensor *k, const tt_tensor *v, tt_tensor *out,
                                         tt_tensor *probs);
/* attention_fwd_bf16 / attention_bwd_bf16: the same with every GEMM's operands rounded to
 * bf16 and f32 sums (CPU and CUDA, bf16 mixed precision: tt_set_compute_precision) */
typedef tt_attention_fwd_fn tt_attention_fwd_bf16_fn;
typedef tt_status (*tt_attention_bwd_fn)(const tt_attention_params *p, const tt_tensor *q,
                                         const tt_tensor *k, const tt_tensor *v,
                                         const tt_tensor *probs, const tt_tensor *gout,
                                         tt_tensor *gq, tt_tensor *gk, tt_tensor *gv);
typedef tt_attention_bwd_fn tt_attention_bwd_bf16_fn;

/* q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv] (same leading dims) -> [..., Tq, dv].
 * Errors: mismatched shapes, Tk == 0, a non-finite scale, and with `causal`
 * negative q_offset/n_unmasked or q_offset + Tq > Tk (queries after the last
 * key: a wrong cache length). The probabilities are kept for the backward
 * pass only when gradients are on and an input needs one. */
TT_API tt_tensor *tt_attention(tt_tensor *q, tt_tensor *k, tt_tensor *v,
                               const tt_attention_params *p);

#ifdef __cplusplus
}
#endif
#endif

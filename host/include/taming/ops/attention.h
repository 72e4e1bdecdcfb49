/* ops/attention.h — scaled dot-product attention with the minGPT causal mask.
 *
 * Query t sits at absolute position i = q_offset + t (q_offset > 0 when keys
 * include a KV cache). With `causal`, key s is visible iff s <= i, or both
 * i < n_unmasked and s < n_unmasked (minGPT's n_unmasked block). */
#ifndef TAMING_OPS_ATTENTION_H
#define TAMING_OPS_ATTENTION_H
#include "taming/tensor.h"

typedef struct tt_attention_params {
  float scale;         /* usually 1/sqrt(d) */
  bool causal;
  int64_t q_offset;
  int64_t n_unmasked;
} tt_attention_params;

/* Kernels (contiguous f32; BH = product of the leading dims):
 *   attention_fwd: q [BH, Tq, d], k [BH, Tk, d], v [BH, Tk, dv] -> out [BH, Tq, dv];
 *                  probs [BH, Tq, Tk] is filled when non-NULL (saved for backward).
 *   attention_bwd: from probs and gout: gq, gk, gv (overwritten). */
typedef tt_status (*tt_attention_fwd_fn)(const tt_attention_params *p, const tt_tensor *q,
                                         const tt_tensor *k, const tt_tensor *v, tt_tensor *out,
                                         tt_tensor *probs);
typedef tt_status (*tt_attention_bwd_fn)(const tt_attention_params *p, const tt_tensor *q,
                                         const tt_tensor *k, const tt_tensor *v,
                                         const tt_tensor *probs, const tt_tensor *gout,
                                         tt_tensor *gq, tt_tensor *gk, tt_tensor *gv);

/* q [..., Tq, d], k [..., Tk, d], v [..., Tk, dv] (same leading dims) -> [..., Tq, dv]. */
TT_API tt_tensor *tt_attention(tt_tensor *q, tt_tensor *k, tt_tensor *v,
                               const tt_attention_params *p);
#endif

/* ops/embedding.h — table lookups (token embedding, codebook rows) and one-hot. */
#ifndef TAMING_OPS_EMBEDDING_H
#define TAMING_OPS_EMBEDDING_H
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kernels:
 *   embedding_fwd: out[n, :] = w[idx[n], :]; w [V, E] f32, idx [N] i64, out [N, E].
 *                  An index outside [0, V) is an error naming it.
 *   embedding_bwd: gw [V, E] = scatter-add of gout [N, E] rows (gw overwritten).
 *   one_hot: out [N, n] f32, out[i, idx[i]] = 1 (idx outside [0, n) is an error). */
typedef tt_status (*tt_embedding_fwd_fn)(const tt_tensor *w, const tt_tensor *idx, tt_tensor *out);
typedef tt_status (*tt_embedding_bwd_fn)(const tt_tensor *idx, const tt_tensor *gout, tt_tensor *gw);
typedef tt_status (*tt_one_hot_fn)(const tt_tensor *idx, int64_t n, tt_tensor *out);

/* weight [V, E], idx i64 [...] -> [..., E]. */
TT_API tt_tensor *tt_embedding(tt_tensor *weight, tt_tensor *idx);
/* idx i64 [...] -> f32 [..., n]. No gradient. */
TT_API tt_tensor *tt_one_hot(tt_tensor *idx, int64_t n);

#ifdef __cplusplus
}
#endif
#endif

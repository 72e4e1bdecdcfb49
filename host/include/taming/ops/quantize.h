/* ops/quantize.h — nearest-codebook search for vector quantisation.
 *
 * d[n, k] = (|z_n|^2 + |e_k|^2) - 2 z_n·e_k, the expanded fp32 form the
 * official VectorQuantizer2 uses; idx[n] = first k with minimal d[n, k]. */
#ifndef TAMING_OPS_QUANTIZE_H
#define TAMING_OPS_QUANTIZE_H
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Kernel: z [N, D], e [K, D] contiguous f32 -> idx [N] i64, dmin [N] f32 (may be NULL). */
typedef tt_status (*tt_codebook_argmin_fn)(const tt_tensor *z, const tt_tensor *e, tt_tensor *idx,
                                           tt_tensor *dmin);

/* z [N, D], codebook [K, D] -> idx i64 [N]. No gradient. dmin_out (optional) gets [N]. */
TT_API tt_tensor *tt_codebook_argmin(tt_tensor *z, tt_tensor *codebook, tt_tensor **dmin_out);

#ifdef __cplusplus
}
#endif
#endif

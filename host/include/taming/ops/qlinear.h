/* ops/qlinear.h — linear layers with low-precision weights for inference:
 * bf16 weights, or int8 weights with one f32 scale per output channel
 * (weight-only quantization; activations stay f32, rounded to bf16 inside the bf16
 * kernels and on AMX tiles). Forward only: no autograd node is recorded.
 *
 * Packed layout (internal, made by tt_qlinear_pack):
 *   w     [N, Kp] bf16 or i8, Kp = in rounded up to TT_QLINEAR_KALIGN, padding zero
 *   scale [N] f32 for i8 (w_real[n, k] = scale[n] * q[n, k]); absent for bf16
 * The padding lets the kernels run whole vectors with no tail. */
#ifndef TAMING_OPS_QLINEAR_H
#define TAMING_OPS_QLINEAR_H
#include "taming/tensor.h"

#define TT_QLINEAR_KALIGN 32
/* From this many activation rows on (batched sampling, prefill) a CPU with AMX runs
 * both kinds of weights on bf16 tiles: x is then rounded to bf16 for int8 weights too
 * (whole blocks of 16 weight rows; the rest keep x in f32). Fewer rows read the
 * weights just as fast with vector instructions. */
#define TT_QLINEAR_TILE_ROWS 8

/* Kernel on host pointers: y[m, n] = sum_k x[m, k] w[n, k] (* scale[n]) (+ bias[n]) for
 * x [M, K] (row stride ldx), w packed [N, Kp], y [M, N] (row stride ldy).
 * scale is used by the i8 kernel only; bias may be NULL. */
typedef tt_status (*tt_qlinear_bf16_fn)(int64_t M, int64_t N, int64_t K, const float *x, int64_t ldx,
                                        const uint16_t *w, int64_t Kp, const float *bias, float *y, int64_t ldy);
typedef tt_status (*tt_qlinear_i8_fn)(int64_t M, int64_t N, int64_t K, const float *x, int64_t ldx,
                                      const int8_t *w, int64_t Kp, const float *scale, const float *bias, float *y,
                                      int64_t ldy);
/* The instruction set a backend's kernel for weight dtype dt uses ("amx-bf16+avx512bf16",
 * "avx512bf16", "avx512f"), or why there is none. */
typedef const char *(*tt_qlinear_isa_fn)(tt_dtype dt);
/* Packing on the weights' own device (optional: a backend without it gets weights
 * packed on the host and copied): src [N, K] contiguous, f32 (-> bf16, or -> i8 with
 * scale [N] = max |w[n, :]| / 127) or i8 already quantized (-> i8: rows copied, scale
 * untouched) -> packed [N, Kp] of dtype dt, zeros past K; equal to the host packing
 * bit for bit. */
typedef tt_status (*tt_qlinear_pack_fn)(int64_t N, int64_t K, const void *src, tt_dtype src_dt, void *packed,
                                        tt_dtype dt, int64_t Kp, float *scale);

/* True when dev has a kernel for weights of dtype dt (bf16 or i8). *isa (may be NULL)
 * gets the instruction set it uses, or why there is none ("no avx512bf16"). */
TT_API bool tt_qlinear_supported(tt_device dev, tt_dtype dt, const char **isa);
/* w f32 [N, K] (any device; packed there where its backend can, else on the host) -> packed weights of dtype dt (bf16 or
 * i8) on w's device; for i8 *scale gets the scales [N] (symmetric: max |w[n, :]| / 127). */
TT_API tt_tensor *tt_qlinear_pack(tt_tensor *w, tt_dtype dt, tt_tensor **scale);
/* q i8 [N, K] + scale f32 [N] as a quantized file stores them -> packed i8 weights. */
TT_API tt_tensor *tt_qlinear_pack_i8(tt_tensor *q, tt_tensor *scale);
/* Rounds w f32 [N, K] to int8 per output channel: *q i8 [N, K] and *scale f32 [N]
 * (the file form that `taming convert --quantize int8` writes). */
TT_API tt_status tt_quantize_i8_rows(tt_tensor *w, tt_tensor **q, tt_tensor **scale);
/* q i8 [N, K] and scale f32 [N] -> q * scale as f32 [N, K] (exact). */
TT_API tt_tensor *tt_dequantize_i8_rows(tt_tensor *q, tt_tensor *scale);
/* x [..., in] f32, w packed [out, Kp] -> [..., out]; scale [out] for i8 (else NULL);
 * bias [out] or NULL. */
TT_API tt_tensor *tt_qlinear(tt_tensor *x, tt_tensor *w, tt_tensor *scale, tt_tensor *bias);
#endif

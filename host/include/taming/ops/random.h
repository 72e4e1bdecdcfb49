/* ops/random.h — counter-based random numbers (Philox-4x32-10).
 *
 * Element i of a draw is a pure function of (seed, counter + i): the same seed
 * gives the same numbers on any thread count and on any device. A tt_rng is
 * just a key and a counter; every draw advances the counter by the numel. */
#ifndef TAMING_OPS_RANDOM_H
#define TAMING_OPS_RANDOM_H
#include "taming/tensor.h"

typedef struct tt_rng {
  uint64_t seed;
  uint64_t counter;
} tt_rng;

typedef enum tt_random_kind {
  TT_RANDOM_UNIFORM = 0, /* [a, b) */
  TT_RANDOM_NORMAL,      /* mean a, std b */
  TT_RANDOM_BERNOULLI    /* 1 with probability a, else 0 */
} tt_random_kind;

/* Kernel: fills contiguous f32 t; element i uses Philox(seed, counter + i). */
typedef tt_status (*tt_random_fill_fn)(tt_random_kind kind, double a, double b, uint64_t seed,
                                       uint64_t counter, tt_tensor *t);

/* Kernel: n draws with replacement from each row of contiguous f32 weights p
 * [B, V] (non-negative, not necessarily normalised) into contiguous i64 out
 * [B, n]; draw j of row b inverts the CDF at the 53-bit uniform of
 * Philox(seed, counter + b*n + j), the same number tt_rng_uniform returns. */
typedef tt_status (*tt_multinomial_fn)(const tt_tensor *p, int64_t n, uint64_t seed, uint64_t counter, tt_tensor *out);

TT_API tt_rng tt_rng_make(uint64_t seed);
/* Host-side draws from the same stream (advance the counter). */
TT_API uint32_t tt_rng_u32(tt_rng *r);
TT_API double tt_rng_uniform(tt_rng *r);          /* [0, 1), 53 bits */
TT_API double tt_rng_normal(tt_rng *r);
/* The Philox block for (seed, counter): four 32-bit words. */
TT_API void tt_philox4x32(uint64_t seed, uint64_t counter, uint32_t out[4]);

TT_API tt_status tt_random_fill_(tt_tensor *t, tt_rng *r, tt_random_kind kind, double a, double b);
TT_API tt_tensor *tt_rand(tt_rng *r, int ndim, const int64_t *shape, tt_device dev);
TT_API tt_tensor *tt_randn(tt_rng *r, int ndim, const int64_t *shape, tt_device dev);
/* Categorical draws: probs f32 [V] or [B, V] -> i64 [n] or [B, n]; advances r
 * by B*n. With n = 1 and normalised rows it draws what the categorical sampler
 * plugin draws from the same probabilities and seed. */
TT_API tt_tensor *tt_multinomial(tt_tensor *probs, int64_t n, tt_rng *r);
/* Inverted dropout: keeps with prob 1-p and scales by 1/(1-p); identity when !training or p == 0. */
TT_API tt_tensor *tt_dropout(tt_tensor *x, float p, bool training, tt_rng *r);
#endif

/* sampler.h — the one interface every sampler plugin implements:
 *   sample(logits [B, V] or [B, T, V] (last position used)) -> tokens i64 [B]
 *   probs(logits) -> the distribution sample() draws from, f32 [B, V]
 *   state() -> {seed, counter}; set_state(seed, counter)
 * Randomness comes from the counter-based Philox stream: draw n of a sampler
 * with seed s is a pure function of (s, n), whatever the thread count. */
#ifndef TAMING_PLUGINS_SAMPLER_H
#define TAMING_PLUGINS_SAMPLER_H

#include "taming/plugin.h"

/* The last-position logits as a host copy [B, V] (caller frees with tt_tensor_unref). */
tt_status tt_sampler_host_logits(const tt_value *args, int nargs, tt_tensor **out);
/* Index of the first maximum of row[0..V). */
int64_t tt_sampler_argmax(const float *row, int64_t V);

#endif

/* embedding.c — CPU kernels: table lookup (token embedding, codebook rows), its
 * scatter-add backward, and one-hot encoding.
 *
 * Indices are validated before any row is touched, so a bad index leaves the
 * output untouched and the error names the first offending position. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "cpu.h"

/* Position of the first index outside [0, n), or -1. */
static int64_t first_out_of_range(const int64_t *idx, int64_t count, int64_t n) {
  for (int64_t i = 0; i < count; i++)
    if (idx[i] < 0 || idx[i] >= n) return i;
  return -1;
}

// w [V, E], idx [N] -> out [N, E]
static tt_status cpu_embedding_fwd(const tt_tensor *w, const tt_tensor *idx, tt_tensor *out) {
  int64_t V = w->shape[0], E = w->shape[1], N = tt_tensor_numel(idx);
  const int64_t *ix = tt_i64(idx);
  int64_t bad = first_out_of_range(ix, N, V);
  if (bad >= 0)
    return tt_error(TT_ERR_INVALID, "embedding: index %lld (at position %lld) is outside [0, V) for V = %lld",
                    (long long)ix[bad], (long long)bad, (long long)V);
  const float *ws = tt_f32(w);
  float *o = tt_f32(out);
#pragma omp parallel for schedule(static) if (N * E > TT_CPU_PAR_MIN)
  for (int64_t n = 0; n < N; n++) memcpy(o + n * E, ws + ix[n] * E, sizeof(float) * (size_t)E);
  return TT_OK;
}

// idx [N], gout [N, E] -> gw [V, E] (overwritten)
static tt_status cpu_embedding_bwd(const tt_tensor *idx, const tt_tensor *gout, tt_tensor *gw) {
  int64_t V = gw->shape[0], E = gw->shape[1], N = tt_tensor_numel(idx);
  const int64_t *ix = tt_i64(idx);
  int64_t bad = first_out_of_range(ix, N, V);
  if (bad >= 0)
    return tt_error(TT_ERR_INVALID, "embedding backward: index %lld at position %lld is outside [0, %lld)",
                    (long long)ix[bad], (long long)bad, (long long)V);
  /* Bucket the positions by row (a counting sort) so that each row of gw is
   * summed by one thread, in increasing position order: no atomics, and the
   * result does not depend on the thread count. */
  int64_t *start = calloc((size_t)V + 1, sizeof *start);
  int64_t *order = malloc(sizeof *order * (size_t)(N ? N : 1));
  if (!start || !order) {
    free(start);
    free(order);
    return tt_error(TT_ERR_NOMEM, "embedding backward: out of memory bucketing %lld indices", (long long)N);
  }
  for (int64_t n = 0; n < N; n++) start[ix[n] + 1]++;
  for (int64_t v = 0; v < V; v++) start[v + 1] += start[v];
  int64_t *fill = malloc(sizeof *fill * (size_t)(V ? V : 1));
  if (!fill) {
    free(start);
    free(order);
    return tt_error(TT_ERR_NOMEM, "embedding backward: out of memory bucketing %lld indices", (long long)N);
  }
  memcpy(fill, start, sizeof *fill * (size_t)V);
  for (int64_t n = 0; n < N; n++) order[fill[ix[n]]++] = n;
  free(fill);
  const float *g = tt_f32(gout);
  float *o = tt_f32(gw);
#pragma omp parallel for schedule(dynamic, 64) if ((V + N) * E > TT_CPU_PAR_MIN)
  for (int64_t v = 0; v < V; v++) {
    float *row = o + v * E;
    memset(row, 0, sizeof(float) * (size_t)E);
    for (int64_t j = start[v]; j < start[v + 1]; j++) {
      const float *src = g + order[j] * E;
      for (int64_t e = 0; e < E; e++) row[e] += src[e];
    }
  }
  free(start);
  free(order);
  return TT_OK;
}

// idx [N] -> out [N, n]
static tt_status cpu_one_hot(const tt_tensor *idx, int64_t n, tt_tensor *out) {
  int64_t N = tt_tensor_numel(idx);
  const int64_t *ix = tt_i64(idx);
  int64_t bad = first_out_of_range(ix, N, n);
  if (bad >= 0)
    return tt_error(TT_ERR_INVALID, "one_hot: index %lld at position %lld is outside [0, %lld)",
                    (long long)ix[bad], (long long)bad, (long long)n);
  float *o = tt_f32(out);
#pragma omp parallel for schedule(static) if (N * n > TT_CPU_PAR_MIN)
  for (int64_t i = 0; i < N; i++) {
    memset(o + i * n, 0, sizeof(float) * (size_t)n);
    o[i * n + ix[i]] = 1.0f;
  }
  return TT_OK;
}

tt_status tt_cpu_register_embedding(tt_backend *b) {
  TT_REGISTER_KERNEL(b, embedding_fwd, cpu_embedding_fwd);
  TT_REGISTER_KERNEL(b, embedding_bwd, cpu_embedding_bwd);
  TT_REGISTER_KERNEL(b, one_hot, cpu_one_hot);
  return TT_OK;
}

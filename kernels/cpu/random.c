/* random.c — CPU kernel filling tensors from the Philox stream (element i uses
 * counter + i, so the result does not depend on the thread count). */
#include "config.h"
#include <math.h>
#include "cpu.h"

static tt_status cpu_random_fill(tt_random_kind kind, double a, double b, uint64_t seed, uint64_t counter,
                                 tt_tensor *t) {
  float *p = tt_f32(t);
  int64_t n = tt_tensor_numel(t);
  if (kind > TT_RANDOM_BERNOULLI) return tt_error(TT_ERR_INVALID, "random fill: unknown kind %d", (int)kind);
#pragma omp parallel for schedule(static) if (n > 4096)
  for (int64_t i = 0; i < n; i++) {
    uint32_t w[4];
    tt_philox4x32(seed, counter + (uint64_t)i, w);
    float u = (float)(w[0] >> 8) * (1.0f / 16777216.0f);   /* [0, 1) */
    switch (kind) {
      case TT_RANDOM_UNIFORM: p[i] = (float)(a + (b - a) * u); break;
      case TT_RANDOM_NORMAL: {
        double u1 = ((double)w[0] + 1.0) * (1.0 / 4294967296.0), u2 = (double)w[1] * (1.0 / 4294967296.0);
        p[i] = (float)(a + b * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
        break;
      }
      case TT_RANDOM_BERNOULLI: p[i] = u < (float)a ? 1.0f : 0.0f; break;
    }
  }
  return TT_OK;
}

static tt_status cpu_multinomial(const tt_tensor *p, int64_t n, uint64_t seed, uint64_t counter, tt_tensor *out) {
  int64_t B = p->shape[0], V = p->shape[1];
  const float *ps = tt_f32(p);
  int64_t *o = tt_i64(out);
  int64_t bad = -1;
#pragma omp parallel for schedule(static) if (B * V > TT_CPU_PAR_MIN)
  for (int64_t b = 0; b < B; b++) {
    const float *row = ps + b * V;
    double total = 0;
    int64_t last = -1;
    for (int64_t v = 0; v < V; v++) {
      if (!(row[v] >= 0) || isinf(row[v])) { total = -1; break; }
      if (row[v] > 0) { total += row[v]; last = v; }
    }
    if (!(total > 0)) {
#pragma omp critical
      if (bad < 0 || b < bad) bad = b;
      continue;
    }
    for (int64_t j = 0; j < n; j++) {
      uint32_t w[4];
      tt_philox4x32(seed, counter + (uint64_t)(b * n + j), w);
      double u = (double)(((uint64_t)w[0] << 21) ^ (w[1] >> 11)) * (1.0 / 9007199254740992.0) * total;
      double cum = 0;
      int64_t pick = last;
      for (int64_t v = 0; v < V; v++) {
        if (row[v] <= 0) continue;
        cum += row[v];
        if (u < cum) { pick = v; break; }
      }
      o[b * n + j] = pick;
    }
  }
  if (bad >= 0)
    return tt_error(TT_ERR_INVALID, "multinomial: row %lld has a negative, NaN or infinite weight or no positive one",
                    (long long)bad);
  return TT_OK;
}

tt_status tt_cpu_register_random(tt_backend *b) {
  TT_REGISTER_KERNEL(b, random_fill, cpu_random_fill);
  TT_REGISTER_KERNEL(b, multinomial, cpu_multinomial);
  return TT_OK;
}

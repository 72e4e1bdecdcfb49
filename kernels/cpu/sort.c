/* sort.c — CPU kernel of sort and top-k: each line is copied out with its
 * indices and sorted with a stable comparison (value, then index). */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include "cpu.h"

typedef struct { float v; int64_t i; } entry;

/* NaN is the largest value; equal values keep index order in both directions */
static inline int order(const entry *x, const entry *y, bool desc) {
  bool nx = isnan(x->v), ny = isnan(y->v);
  if (nx != ny) return (nx != desc) ? 1 : -1;
  if (!nx && x->v != y->v) return ((x->v < y->v) != desc) ? -1 : 1;
  return x->i < y->i ? -1 : x->i > y->i;
}

static int by_asc(const void *a, const void *b) { return order(a, b, false); }
static int by_desc(const void *a, const void *b) { return order(a, b, true); }

static tt_status cpu_sort(const tt_tensor *x, int64_t outer, int64_t n, int64_t inner, int64_t k, bool descending,
                          tt_tensor *values, tt_tensor *indices) {
  const float *xs = tt_f32(x);
  float *vs = tt_f32(values);
  int64_t *is = tt_i64(indices);
  int failed = 0;
#pragma omp parallel for schedule(dynamic) if (outer * inner > 1 && outer * n * inner > TT_CPU_PAR_MIN)
  for (int64_t line = 0; line < outer * inner; line++) {
    int64_t o = line / inner, q = line % inner;
    entry *e = malloc(sizeof *e * (size_t)n);
    if (!e) {
#pragma omp atomic write
      failed = 1;
      continue;
    }
    for (int64_t j = 0; j < n; j++) e[j] = (entry){xs[(o * n + j) * inner + q], j};
    qsort(e, (size_t)n, sizeof *e, descending ? by_desc : by_asc);
    for (int64_t j = 0; j < k; j++) {
      vs[(o * k + j) * inner + q] = e[j].v;
      is[(o * k + j) * inner + q] = e[j].i;
    }
    free(e);
  }
  if (failed) return tt_error(TT_ERR_NOMEM, "sort: out of memory for a line of %lld", (long long)n);
  return TT_OK;
}

tt_status tt_cpu_register_sort(tt_backend *b) {
  TT_REGISTER_KERNEL(b, sort, cpu_sort);
  return TT_OK;
}

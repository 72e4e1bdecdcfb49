/* sampler/categorical.c — sampling from softmax(logits / temperature) after the
 * optional top-k and nucleus (top-p) filters, in the order and with the exact
 * rules of the reference (transformers 4.3.1 top_k_top_p_filtering, REFERENCE
 * §4.6): top-k keeps ties with the k-th largest; top-p removes sorted entries
 * whose cumulative probability exceeds p, shifted by one so the entry that
 * crosses the threshold stays, and never the first. Config: temperature (1.0),
 * top_k (0 = off), top_p (nil = off; 1.0 still runs the filter), seed (0). */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "taming/kinds.h"
#include "taming/scope.h"

typedef struct {
  double temperature, top_p;
  int64_t top_k;
  bool use_top_p;
  tt_rng rng;
} categorical;

static tt_status ca_create(const tt_value *cfg, void **self) {
  static const char *const known[] = {"temperature", "top_k", "top_p", "seed", NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));
  categorical *c = calloc(1, sizeof *c);
  if (!c) return tt_error(TT_ERR_NOMEM, "out of memory");
  int64_t seed;
  tt_status s;
  if ((s = tt_cfg_num_opt(cfg, "temperature", 1.0, &c->temperature)) || (s = tt_cfg_int_opt(cfg, "top_k", 0, &c->top_k)) ||
      (s = tt_cfg_int_opt(cfg, "seed", 0, &seed)))
    goto fail;
  const tt_value *tp = tt_value_get(cfg, "top_p");
  if (tp && tp->type != TT_V_NIL) {
    if ((s = tt_value_as_num(tp, "top_p", &c->top_p))) goto fail;
    if (c->top_p < 0 || c->top_p > 1) { s = tt_error(TT_ERR_INVALID, "top_p = %g must lie in [0, 1]", c->top_p); goto fail; }
    c->use_top_p = true;
  }
  if (!(c->temperature > 0)) { s = tt_error(TT_ERR_INVALID, "temperature = %g must be positive", c->temperature); goto fail; }
  if (c->top_k < 0) { s = tt_error(TT_ERR_INVALID, "top_k = %lld must be >= 0", (long long)c->top_k); goto fail; }
  c->rng = tt_rng_make((uint64_t)seed);
  *self = c;
  return TT_OK;
fail:
  free(c);
  return s;
}

static void ca_destroy(void *self) { free(self); }

typedef struct { float v; int64_t i; } entry;

static int by_value_desc(const void *a, const void *b) {
  const entry *x = a, *y = b;
  if (x->v > y->v) return -1;
  if (x->v < y->v) return 1;
  return x->i < y->i ? -1 : x->i > y->i;   /* stable: lower index first */
}

/* row [V] of logits -> probabilities p [V] after temperature, top-k, top-p */
static tt_status filtered_probs(const categorical *c, const float *row, int64_t V, float *p, entry *scratch) {
  for (int64_t v = 0; v < V; v++) p[v] = (float)(row[v] / c->temperature);
  if (c->top_k > 0 || c->use_top_p) {
    for (int64_t v = 0; v < V; v++) scratch[v] = (entry){p[v], v};
    qsort(scratch, (size_t)V, sizeof *scratch, by_value_desc);
    if (c->top_k > 0) {
      int64_t k = c->top_k < V ? c->top_k : V;
      float kth = scratch[k - 1].v;
      for (int64_t v = 0; v < V; v++)
        if (p[v] < kth) p[v] = -INFINITY;
      for (int64_t r = 0; r < V; r++)
        if (scratch[r].v < kth) scratch[r].v = -INFINITY;
    }
    if (c->use_top_p) {
      /* softmax of the sorted (already top-k filtered) logits, cumulative sum */
      float mx = scratch[0].v;
      double z = 0;
      for (int64_t r = 0; r < V; r++) z += scratch[r].v == -INFINITY ? 0.0 : exp((double)scratch[r].v - mx);
      double cum = 0;
      bool prev_over = false;
      for (int64_t r = 0; r < V; r++) {
        cum += scratch[r].v == -INFINITY ? 0.0 : exp((double)scratch[r].v - mx) / z;
        bool over = (float)cum > (float)c->top_p;
        /* shifted right by one; the first entry is never removed */
        if (r > 0 && prev_over) p[scratch[r].i] = -INFINITY;
        prev_over = over;
      }
    }
  }
  float mx = -INFINITY;
  for (int64_t v = 0; v < V; v++) if (p[v] > mx) mx = p[v];
  if (mx == -INFINITY) return tt_error(TT_ERR_INVALID, "every logit is -inf: nothing to sample");
  double z = 0;
  for (int64_t v = 0; v < V; v++) z += p[v] == -INFINITY ? 0.0 : exp((double)p[v] - mx);
  for (int64_t v = 0; v < V; v++) p[v] = p[v] == -INFINITY ? 0.0f : (float)(exp((double)p[v] - mx) / z);
  return TT_OK;
}

static tt_status run(categorical *c, const tt_value *args, int nargs, tt_value *ret, bool draw) {
  tt_tensor *l;
  TT_TRY(tt_sampler_host_logits(args, nargs, &l));
  int64_t B = l->shape[0], V = l->shape[1];                       // l [B, V] on the host
  tt_scope_begin();
  tt_scope_own(l);
  tt_tensor *probs = tt_tensor_new(TT_F32, TT_DIMS(B, V), TT_CPU);
  tt_tensor *out = draw ? tt_tensor_new(TT_I64, TT_DIMS(B), TT_CPU) : NULL;
  entry *scratch = malloc(sizeof *scratch * (size_t)V);
  tt_status s = (probs && (out || !draw) && scratch) ? TT_OK : tt_error(TT_ERR_NOMEM, "out of memory sampling");
  for (int64_t b = 0; s == TT_OK && b < B; b++) {
    float *p = tt_f32(probs) + b * V;
    s = filtered_probs(c, tt_f32(l) + b * V, V, p, scratch);
    if (s != TT_OK || !draw) continue;
    /* inverse CDF with one uniform draw per row */
    double u = tt_rng_uniform(&c->rng), cum = 0;
    int64_t pick = -1, last = 0;
    for (int64_t v = 0; v < V; v++) {
      if (p[v] <= 0) continue;
      last = v;
      cum += p[v];
      if (u < cum) { pick = v; break; }
    }
    tt_i64(out)[b] = pick >= 0 ? pick : last;
  }
  free(scratch);
  if (s != TT_OK) {
    tt_scope_end();
    return s;
  }
  int n;
  return tt_scope_return(ret, &n, draw ? out : probs);   // token ids [B] or probabilities [B, V]
}

static tt_status ca_sample(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  TT_TRY(run(self, args, nargs, &rets[0], true));
  *nrets = 1;
  return TT_OK;
}

static tt_status ca_probs(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  TT_TRY(run(self, args, nargs, &rets[0], false));
  *nrets = 1;
  return TT_OK;
}

static tt_status ca_state(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  categorical *c = self;
  rets[0] = tt_value_int((int64_t)c->rng.seed);
  rets[1] = tt_value_int((int64_t)c->rng.counter);
  *nrets = 2;
  return TT_OK;
}

static tt_status ca_set_state(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  categorical *c = self;
  int64_t seed, counter;
  TT_TRY(tt_args_check("set_state", nargs, 2, 2));
  TT_TRY(tt_value_as_int(&args[0], "seed", &seed));
  TT_TRY(tt_value_as_int(&args[1], "counter", &counter));
  c->rng.seed = (uint64_t)seed;
  c->rng.counter = (uint64_t)counter;
  return TT_OK;
}

static const tt_method ca_methods[] = {
    {"sample", ca_sample, "logits [B, V] | [B, T, V] -> tokens [B]"},
    {"probs", ca_probs, "logits -> the filtered distribution [B, V]"},
    {"state", ca_state, "-> seed, counter"},
    {"set_state", ca_set_state, "seed, counter"},
    {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "sampler", .name = "categorical", .version = "1.0.0",
                 .summary = "temperature / top-k / top-p sampling (transformers 4.3.1 rules)", .create = ca_create,
                 .destroy = ca_destroy, .methods = ca_methods);

/* min_p.c — an example sampler plugin, built out of tree against the installed
 * SDK only (see Makefile and README.md, "Writing a plugin").
 *
 * Min-p sampling (Nguyen et al., 2024): after the temperature, keep the tokens
 * whose probability is at least min_p times the most likely token's, and draw
 * from the renormalised rest. The cut follows the model's confidence: a peaked
 * distribution keeps few tokens, a flat one many.
 *
 *   config: min_p (0.05, in [0, 1]), temperature (1.0, > 0), seed (0)
 *   file:   sampler_min_p.so (KIND_NAME.so, as the descriptor says)
 *   use:    taming run sample_class ... sampler=min_p sampler.min_p=0.05
 *
 * It implements the sampler contract of <taming/kinds.h>: sample (required),
 * probs, and the state/set_state pair. */
#include <math.h>
#include <stdlib.h>
#include <taming/kinds.h>

typedef struct {
  double min_p, temperature;
  tt_rng rng;   /* Philox: draw n of seed s is a pure function of (s, n) */
} min_p;

static tt_status mp_create(const tt_value *cfg, void **self) {
  static const char *const known[] = {"min_p", "temperature", "seed", NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));   /* {minp = 0.1} is an error listing these */
  double mp, temperature;
  int64_t seed;
  TT_TRY(tt_cfg_num_opt(cfg, "min_p", 0.05, &mp));
  TT_TRY(tt_cfg_num_opt(cfg, "temperature", 1.0, &temperature));
  TT_TRY(tt_cfg_int_opt(cfg, "seed", 0, &seed));
  if (!(mp >= 0 && mp <= 1)) return tt_error(TT_ERR_INVALID, "min_p = %g must lie in [0, 1]", mp);
  if (!(temperature > 0)) return tt_error(TT_ERR_INVALID, "temperature = %g must be positive", temperature);
  min_p *m = malloc(sizeof *m);
  if (!m) return tt_error(TT_ERR_NOMEM, "out of memory");
  m->min_p = mp;
  m->temperature = temperature;
  m->rng = tt_rng_make((uint64_t)seed);
  *self = m;
  return TT_OK;
}

static void mp_destroy(void *self) { free(self); }

/* row [V] of logits -> p [V]: softmax(row / temperature), cut at min_p * max, renormalised */
static void filtered(const min_p *m, const float *row, int64_t V, float *p) {
  float mx = row[tt_sampler_argmax(row, V)];
  double z = 0;
  for (int64_t v = 0; v < V; v++) z += exp((row[v] - mx) / m->temperature);
  /* p[v] / p_max = exp((row[v] - mx) / T): the cut needs no normalisation */
  double kept = 0;
  for (int64_t v = 0; v < V; v++) {
    double rel = exp((row[v] - mx) / m->temperature);
    p[v] = rel >= m->min_p ? (float)(rel / z) : 0.0f;
    kept += p[v];
  }
  for (int64_t v = 0; v < V; v++) p[v] = (float)(p[v] / kept);
}

/* logits [B, V] | [B, T, V] -> probs f32 [B, V] and, when tokens is not NULL, one draw per row */
static tt_status run(min_p *m, const tt_value *args, int nargs, tt_tensor **probs, tt_tensor **tokens) {
  tt_tensor *l;
  TT_TRY(tt_sampler_host_logits(args, nargs, &l));   // host f32 [B, V], the last position
  int64_t B = l->shape[0], V = l->shape[1];
  tt_tensor *p = tt_tensor_new(TT_F32, TT_DIMS(B, V), TT_CPU);
  tt_tensor *t = tokens ? tt_tensor_new(TT_I64, TT_DIMS(B), TT_CPU) : NULL;
  if (!p || (tokens && !t)) {
    tt_tensor_unref(l);
    tt_tensor_unref(p);
    tt_tensor_unref(t);
    return tt_last_status();
  }
  for (int64_t b = 0; b < B; b++) {
    float *pb = tt_f32(p) + b * V;
    filtered(m, tt_f32(l) + b * V, V, pb);
    if (!t) continue;
    /* inverse CDF with one uniform per row; rounding never runs past the last kept token */
    double u = tt_rng_uniform(&m->rng), cum = 0;
    int64_t pick = -1, last = 0;
    for (int64_t v = 0; v < V && pick < 0; v++) {
      if (pb[v] <= 0) continue;
      last = v;
      cum += pb[v];
      if (u < cum) pick = v;
    }
    tt_i64(t)[b] = pick >= 0 ? pick : last;
  }
  tt_tensor_unref(l);
  if (tokens) {
    tt_tensor_unref(p);
    *tokens = t;
  } else {
    *probs = p;
  }
  return TT_OK;
}

static tt_status mp_sample(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  tt_tensor *t;
  TT_TRY(run(self, args, nargs, NULL, &t));
  rets[0] = tt_value_tensor_steal(t);
  *nrets = 1;
  return TT_OK;
}

static tt_status mp_probs(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  tt_tensor *p;
  TT_TRY(run(self, args, nargs, &p, NULL));
  rets[0] = tt_value_tensor_steal(p);
  *nrets = 1;
  return TT_OK;
}

static tt_status mp_state(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  min_p *m = self;
  rets[0] = tt_value_int((int64_t)m->rng.seed);
  rets[1] = tt_value_int((int64_t)m->rng.counter);
  *nrets = 2;
  return TT_OK;
}

static tt_status mp_set_state(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  min_p *m = self;
  int64_t seed, counter;
  TT_TRY(tt_args_check("set_state", nargs, 2, 2));
  TT_TRY(tt_value_as_int(&args[0], "seed", &seed));
  TT_TRY(tt_value_as_int(&args[1], "counter", &counter));
  m->rng.seed = (uint64_t)seed;
  m->rng.counter = (uint64_t)counter;
  return TT_OK;
}

static const tt_method mp_methods[] = {
    {"sample", mp_sample, "logits [B, V] | [B, T, V] -> tokens i64 [B]"},
    {"probs", mp_probs, "logits -> the min-p filtered distribution f32 [B, V]"},
    {"state", mp_state, "-> seed, counter"},
    {"set_state", mp_set_state, "seed, counter"},
    {NULL, NULL, NULL}};

/* No weights: .params is left out (plugin ABI 1.2). */
TT_PLUGIN_DEFINE(.kind = "sampler", .name = "min_p", .version = "1.0.0",
                 .summary = "min-p sampling: keep tokens with p >= min_p * p_max", .create = mp_create,
                 .destroy = mp_destroy, .methods = mp_methods);

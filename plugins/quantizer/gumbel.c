/* quantizer/gumbel.c — GumbelQuantize of the official GumbelVQ (REFERENCE §2.7.3).
 * Parameters relative to `quantize.`: proj.weight [n_embed, num_hiddens, 1, 1],
 * proj.bias [n_embed], embed.weight [n_embed, embedding_dim].
 *
 * Inference choice: the reference adds Gumbel noise even in eval mode, so its
 * encodings are random; this plugin takes argmax over the logits by default
 * (deterministic; the noise does not change what the model would pick on
 * average) and adds the noise only in training or with stochastic = true. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "taming/plugin.h"
#include "taming/scope.h"

typedef struct {
  int64_t num_hiddens, embedding_dim, n_embed;
  double kl_weight, temperature;
  bool straight_through, stochastic, training;
  tt_paramset ps;
  tt_conv2d_layer proj;
  tt_param *embed;
  tt_rng rng;
} gumbel;

static void g_destroy(void *self) {
  gumbel *g = self;
  if (!g) return;
  tt_paramset_free(&g->ps);
  free(g);
}

static tt_status g_create(const tt_value *cfg, void **self) {
  static const char *const known[] = {"num_hiddens", "embedding_dim", "n_embed", "kl_weight", "temp_init",
                                      "straight_through", "stochastic", "seed", "remap", NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));
  gumbel *g = calloc(1, sizeof *g);
  if (!g) return tt_error(TT_ERR_NOMEM, "out of memory");
  tt_paramset_init(&g->ps);
  tt_status s;
  int64_t seed;
  if ((s = tt_cfg_int(cfg, "num_hiddens", &g->num_hiddens)) || (s = tt_cfg_int(cfg, "embedding_dim", &g->embedding_dim)) ||
      (s = tt_cfg_int(cfg, "n_embed", &g->n_embed)) || (s = tt_cfg_num_opt(cfg, "kl_weight", 5e-4, &g->kl_weight)) ||
      (s = tt_cfg_num_opt(cfg, "temp_init", 1.0, &g->temperature)) ||
      (s = tt_cfg_bool_opt(cfg, "straight_through", true, &g->straight_through)) ||
      (s = tt_cfg_bool_opt(cfg, "stochastic", false, &g->stochastic)) || (s = tt_cfg_int_opt(cfg, "seed", 0, &seed)))
    goto fail;
  if (tt_value_get(cfg, "remap") && tt_value_get(cfg, "remap")->type != TT_V_NIL) {
    s = tt_error(TT_ERR_UNSUPPORTED, "GumbelQuantize with remap is not supported (no released model uses it)");
    goto fail;
  }
  if ((s = tt_conv2d_layer_declare(&g->proj, &g->ps, "proj", (int)g->num_hiddens, (int)g->n_embed, 1, 1, 0, true)))
    goto fail;
  g->embed = tt_param_declare(&g->ps, TT_F32, TT_DIMS(g->n_embed, g->embedding_dim), TT_PARAM_TRAINABLE,
                              tt_init_normal(0.0, 1.0), "embed.weight");
  if (!g->embed) { s = tt_last_status(); goto fail; }
  g->rng = tt_rng_make((uint64_t)seed ^ 0x67756d62ull);
  *self = g;
  return TT_OK;
fail:
  g_destroy(g);
  return s;
}

static tt_paramset *g_params(void *self) { return &((gumbel *)self)->ps; }

static tt_status g_set_training(void *self, bool training) {
  ((gumbel *)self)->training = training;
  return TT_OK;
}

/* y [N, n] (one-hot or soft) @ embed [n, d] -> [B, d, h, w] (in the caller's scope) */
static tt_tensor *mix_codes(gumbel *g, tt_tensor *y, int64_t B, int64_t h, int64_t w) {
  tt_tensor *rows = tt_matmul(y, g->embed->t);                                 // [N, d]
  tt_tensor *r4 = tt_reshape(rows, TT_DIMS(B, h, w, g->embedding_dim));
  return tt_contiguous(tt_permute(r4, (int[]){0, 3, 1, 2}));
}

static tt_status g_forward(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  gumbel *g = self;
  tt_tensor *z;
  TT_TRY(tt_args_check("forward", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "z", &z));
  if (z->ndim != 4 || z->shape[1] != g->num_hiddens) {
    char b[128];
    return tt_error(TT_ERR_INVALID, "expected z [B, %lld, h, w], found %s", (long long)g->num_hiddens,
                    tt_tensor_shape_str(z, b, sizeof b));
  }
  int64_t B = z->shape[0], h = z->shape[2], w = z->shape[3], N = B * h * w, n = g->n_embed;
  tt_scope_begin();
  tt_tensor *logits = tt_conv2d_layer_forward(&g->proj, z);                  // [B, n, h, w]
  tt_tensor *lf = tt_reshape(tt_permute(logits, (int[]){0, 2, 3, 1}), TT_DIMS(N, n));   // [N, n]
  bool noise = g->training || g->stochastic;
  tt_tensor *ysoft = NULL, *idx, *y;
  if (noise) {
    /* g = -log(-log(U)), U ~ U(0,1) clamped away from 0 */
    tt_tensor *u = tt_rand(&g->rng, TT_DIMS(N, n), z->device);
    tt_tensor *gn = tt_neg(tt_log(tt_neg(tt_log(tt_clamp(u, 1e-20f, 1.0f)))));
    tt_tensor *noisy = tt_add(lf, gn);
    ysoft = tt_softmax(tt_mul_scalar(noisy, 1.0 / g->temperature), -1);      // [N, n]
    idx = tt_argmax(ysoft, -1, false);                                       // [N]
  } else {
    idx = tt_argmax(lf, -1, false);
  }
  tt_tensor *hard = tt_one_hot(idx, n);                                      // [N, n]
  if (noise && g->straight_through) y = tt_add(tt_sub(hard, tt_detach(ysoft)), ysoft);   // hard - sg[soft] + soft
  else y = noise ? ysoft : hard;
  tt_tensor *zq = mix_codes(g, y, B, h, w);                                  // [B, d, h, w]
  /* KL to the uniform prior: kl_weight * mean_{b,y,x} sum_k q log(q n + 1e-10) */
  tt_tensor *q = tt_softmax(lf, -1);
  tt_tensor *kl = tt_sum_dim(tt_mul(q, tt_log(tt_affine(q, (double)n, 1e-10))), -1, false);   // [N]
  tt_tensor *loss = tt_mul_scalar(tt_mean(kl), g->kl_weight);
  tt_tensor *ind = tt_reshape(idx, TT_DIMS(B, h, w));
  return tt_scope_return(rets, nrets, zq, loss, ind);
}

/* get_codebook_entry(indices, {B, h, w, D}) -> [B, D, h, w] */
static tt_status g_codebook_entry(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  gumbel *g = self;
  tt_tensor *idx;
  TT_TRY(tt_args_check("get_codebook_entry", nargs, 2, 2));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "indices", &idx));
  int64_t shape[4];
  if (args[1].type != TT_V_LIST || tt_value_len(&args[1]) != 4)
    return tt_error(TT_ERR_INVALID, "shape must be a list {B, h, w, D}");
  for (int i = 0; i < 4; i++) TT_TRY(tt_value_as_int(tt_value_at(&args[1], i), "shape", &shape[i]));
  if (shape[0] * shape[1] * shape[2] != tt_tensor_numel(idx))
    return tt_error(TT_ERR_INVALID, "shape does not match %lld indices", (long long)tt_tensor_numel(idx));
  tt_scope_begin();
  tt_tensor *oh = tt_one_hot(tt_reshape(idx, TT_DIMS(-1)), g->n_embed);      // [N, n]
  return tt_scope_return(rets, nrets, mix_codes(g, oh, shape[0], shape[1], shape[2]));
}

static tt_status g_set_temperature(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  gumbel *g = self;
  TT_TRY(tt_args_check("set_temperature", nargs, 1, 1));
  double t;
  TT_TRY(tt_value_as_num(&args[0], "temperature", &t));
  if (!(t > 0)) return tt_error(TT_ERR_INVALID, "temperature must be positive, got %g", t);
  g->temperature = t;
  return TT_OK;
}

static const tt_method g_methods[] = {
    {"forward", g_forward, "z [B, num_hiddens, h, w] -> zq [B, D, h, w], loss, indices [B, h, w]"},
    {"get_codebook_entry", g_codebook_entry, "indices, {B, h, w, D} -> zq [B, D, h, w]"},
    {"set_temperature", g_set_temperature, "tau"},
    {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "quantizer", .name = "gumbel", .version = "1.0.0", .summary = "GumbelQuantize",
                 .create = g_create, .destroy = g_destroy, .params = g_params, .methods = g_methods,
                 .set_training = g_set_training);

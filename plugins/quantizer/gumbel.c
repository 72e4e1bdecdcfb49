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

/* y [N, n] (one-hot or soft) @ embed [n, d] -> [B, d, h, w] */
static tt_tensor *mix_codes(gumbel *g, tt_tensor *y, int64_t B, int64_t h, int64_t w) {
  tt_tensor *rows = tt_matmul(y, g->embed->t);
  tt_tensor *r4 = rows ? tt_reshape(rows, TT_DIMS(B, h, w, g->embedding_dim)) : NULL;
  tt_tensor *p = r4 ? tt_permute(r4, (int[]){0, 3, 1, 2}) : NULL;
  tt_tensor *c = p ? tt_contiguous(p) : NULL;
  tt_tensor_unref(rows);
  tt_tensor_unref(r4);
  tt_tensor_unref(p);
  return c;
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
  tt_status s = TT_OK;
  tt_tensor *logits = NULL, *lp = NULL, *lf = NULL, *noisy = NULL, *u = NULL, *gn = NULL, *ysoft = NULL,
            *idx = NULL, *hard = NULL, *y = NULL, *zq = NULL, *q = NULL, *lq = NULL, *kl = NULL, *loss = NULL,
            *ind = NULL, *tmp = NULL, *tmp2 = NULL;
#define NN(x) if (!(x)) { s = tt_last_status(); goto done; }
  NN(logits = tt_conv2d_layer_forward(&g->proj, z));                  // [B, n, h, w]
  NN(lp = tt_permute(logits, (int[]){0, 2, 3, 1}));
  NN(lf = tt_reshape(lp, TT_DIMS(N, n)));                             // [N, n]
  bool noise = g->training || g->stochastic;
  if (noise) {
    /* g = -log(-log(U)), U ~ U(0,1) clamped away from 0 */
    NN(u = tt_rand(&g->rng, TT_DIMS(N, n), z->device));
    NN(tmp = tt_clamp(u, 1e-20f, 1.0f));
    NN(tmp2 = tt_log(tmp));
    tt_tensor_release(&tmp);
    NN(tmp = tt_neg(tmp2));
    tt_tensor_release(&tmp2);
    NN(tmp2 = tt_log(tmp));
    NN(gn = tt_neg(tmp2));
    NN(noisy = tt_add(lf, gn));
    tt_tensor_release(&tmp);
    NN(tmp = tt_mul_scalar(noisy, 1.0 / g->temperature));
    NN(ysoft = tt_softmax(tmp, -1));
    NN(idx = tt_argmax(ysoft, -1, false));                            // [N]
  } else {
    NN(idx = tt_argmax(lf, -1, false));
  }
  NN(hard = tt_one_hot(idx, n));                                      // [N, n]
  if (noise && g->straight_through) {
    tt_tensor *sd = tt_detach(ysoft), *d1 = sd ? tt_sub(hard, sd) : NULL;
    y = d1 ? tt_add(d1, ysoft) : NULL;                                // hard - sg[soft] + soft
    tt_tensor_unref(sd);
    tt_tensor_unref(d1);
    NN(y);
  } else if (noise) {
    NN(y = tt_tensor_ref(ysoft));
  } else {
    NN(y = tt_tensor_ref(hard));
  }
  NN(zq = mix_codes(g, y, B, h, w));
  /* KL to the uniform prior: kl_weight * mean_{b,y,x} sum_k q log(q n + 1e-10) */
  NN(q = tt_softmax(lf, -1));
  tt_tensor_release(&tmp);
  NN(tmp = tt_affine(q, (double)n, 1e-10));
  tt_tensor_release(&tmp2);
  NN(tmp2 = tt_log(tmp));
  NN(lq = tt_mul(q, tmp2));
  NN(kl = tt_sum_dim(lq, -1, false));                                 // [N]
  tt_tensor_release(&tmp);
  NN(tmp = tt_mean(kl));
  NN(loss = tt_mul_scalar(tmp, g->kl_weight));
  NN(ind = tt_reshape(idx, TT_DIMS(B, h, w)));
  rets[0] = tt_value_tensor(zq);
  rets[1] = tt_value_tensor(loss);
  rets[2] = tt_value_tensor(ind);
  *nrets = 3;
done:;
#undef NN
  tt_tensor *all[] = {logits, lp, lf, noisy, u, gn, ysoft, idx, hard, y, zq, q, lq, kl, loss, ind, tmp, tmp2};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) tt_tensor_unref(all[i]);
  return s;
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
  tt_tensor *flat = tt_reshape(idx, TT_DIMS(-1));
  tt_tensor *oh = flat ? tt_one_hot(flat, g->n_embed) : NULL;
  tt_tensor *zq = oh ? mix_codes(g, oh, shape[0], shape[1], shape[2]) : NULL;
  tt_tensor_unref(flat);
  tt_tensor_unref(oh);
  if (!zq) return tt_last_status();
  rets[0] = tt_value_tensor_steal(zq);
  *nrets = 1;
  return TT_OK;
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

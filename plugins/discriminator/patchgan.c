/* discriminator/patchgan.c — the official NLayerDiscriminator (PatchGAN,
 * REFERENCE §3.3): 4x4 convs with padding 1, LeakyReLU(0.2), BatchNorm2d (or
 * ActNorm) after every middle conv, one logit per patch. Parameter names are
 * the official `main.{idx}.*` ones relative to `loss.discriminator.`.
 *
 * Config: input_nc (3), ndf (64), n_layers (3), use_actnorm (false).
 * With BatchNorm the middle convs have no bias; with ActNorm every conv has one.
 * BatchNorm (eps 1e-5, momentum 0.1) uses batch statistics in training mode and
 * updates its running statistics on every call; eval mode uses the running ones.
 * BatchNorm and the LeakyReLU after it run as one fused op.
 * ActNorm initialises itself from the first batch it sees in training mode. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include "taming/plugin.h"
#include "taming/scope.h"

#define MAX_STAGES 16

typedef struct {
  tt_param *loc, *scale;    /* [1, C, 1, 1] */
  tt_param *initialized;    /* u8 scalar */
} actnorm;

/* conv -> [norm] -> [LeakyReLU]: one stage of the `main` sequence */
typedef struct {
  tt_conv2d_layer conv;
  bool has_norm, has_act;
  tt_norm_layer bn;
  actnorm an;
} stage;

typedef struct {
  int64_t input_nc, ndf, n_layers;
  bool use_actnorm, training;
  int n_stages;
  stage st[MAX_STAGES];
  tt_paramset ps;
} patchgan;

static void pg_destroy(void *self) {
  patchgan *d = self;
  if (!d) return;
  tt_paramset_free(&d->ps);
  free(d);
}

static tt_status actnorm_declare(actnorm *a, tt_paramset *ps, int idx, int c) {
  a->loc = tt_param_declare(ps, TT_F32, TT_DIMS(1, c, 1, 1), TT_PARAM_TRAINABLE, tt_init_zeros(), "main.%d.loc", idx);
  if (!a->loc) return tt_last_status();
  a->scale = tt_param_declare(ps, TT_F32, TT_DIMS(1, c, 1, 1), TT_PARAM_TRAINABLE, tt_init_const(1.0), "main.%d.scale",
                              idx);
  if (!a->scale) return tt_last_status();
  a->initialized = tt_param_declare(ps, TT_U8, 0, NULL, TT_PARAM_BUFFER, tt_init_zeros(), "main.%d.initialized", idx);
  if (!a->initialized) return tt_last_status();
  return TT_OK;
}

/* weights_init: conv weights N(0, 0.02) (conv biases keep PyTorch's default),
 * BatchNorm weight N(1, 0.02) and bias 0 */
static tt_status stage_declare(patchgan *d, int idx, int cin, int cout, int stride, bool norm, bool act) {
  char name[32];
  if (d->n_stages == MAX_STAGES)
    return tt_error(TT_ERR_UNSUPPORTED, "n_layers = %lld (at most %d)", (long long)d->n_layers, MAX_STAGES - 2);
  stage *s = &d->st[d->n_stages++];
  s->has_norm = norm;
  s->has_act = act;
  snprintf(name, sizeof name, "main.%d", idx);
  TT_TRY(tt_conv2d_layer_declare(&s->conv, &d->ps, name, cin, cout, 4, stride, 1, !norm || d->use_actnorm));
  s->conv.weight->init = tt_init_normal(0.0, 0.02);
  if (!norm) return TT_OK;
  if (d->use_actnorm) return actnorm_declare(&s->an, &d->ps, idx + 1, cout);
  snprintf(name, sizeof name, "main.%d", idx + 1);
  TT_TRY(tt_batch_norm_layer_declare(&s->bn, &d->ps, name, cout, 1e-5f, 0.1f));
  s->bn.weight->init = tt_init_normal(1.0, 0.02);
  return TT_OK;
}

static tt_status pg_build(patchgan *d) {
  int ndf = (int)d->ndf, idx = 0, mult = 1, prev;
  TT_TRY(stage_declare(d, idx, (int)d->input_nc, ndf, 2, false, true));   // conv, LeakyReLU
  idx += 2;
  for (int n = 1; n < d->n_layers; n++) {
    prev = mult;
    mult = (1 << n) < 8 ? (1 << n) : 8;
    TT_TRY(stage_declare(d, idx, ndf * prev, ndf * mult, 2, true, true));  // conv, norm, LeakyReLU
    idx += 3;
  }
  prev = mult;
  mult = d->n_layers < 3 ? (1 << d->n_layers) : 8;
  TT_TRY(stage_declare(d, idx, ndf * prev, ndf * mult, 1, true, true));
  idx += 3;
  return stage_declare(d, idx, ndf * mult, 1, 1, false, false);
}

static tt_status pg_create(const tt_value *cfg, void **self) {
  static const char *const known[] = {"input_nc", "ndf", "n_layers", "use_actnorm", NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));
  patchgan *d = calloc(1, sizeof *d);
  if (!d) return tt_error(TT_ERR_NOMEM, "out of memory");
  tt_paramset_init(&d->ps);
  tt_status s;
  if ((s = tt_cfg_int_opt(cfg, "input_nc", 3, &d->input_nc)) || (s = tt_cfg_int_opt(cfg, "ndf", 64, &d->ndf)) ||
      (s = tt_cfg_int_opt(cfg, "n_layers", 3, &d->n_layers)) ||
      (s = tt_cfg_bool_opt(cfg, "use_actnorm", false, &d->use_actnorm)))
    goto fail;
  if (d->input_nc <= 0 || d->ndf <= 0 || d->n_layers < 1 || d->ndf > (1 << 20)) {
    s = tt_error(TT_ERR_INVALID, "input_nc and ndf must be positive and n_layers >= 1 (found %lld, %lld, %lld)",
                 (long long)d->input_nc, (long long)d->ndf, (long long)d->n_layers);
    goto fail;
  }
  if (d->n_layers > MAX_STAGES - 2) {
    s = tt_error(TT_ERR_UNSUPPORTED, "n_layers = %lld (at most %d)", (long long)d->n_layers, MAX_STAGES - 2);
    goto fail;
  }
  if ((s = pg_build(d))) goto fail;
  *self = d;
  return TT_OK;
fail:
  pg_destroy(d);
  return s;
}

static tt_paramset *pg_params(void *self) { return &((patchgan *)self)->ps; }

static tt_status pg_set_training(void *self, bool training) {
  ((patchgan *)self)->training = training;
  return TT_OK;
}

/* Data-dependent init from x [B, C, H, W]: loc = -mean_c, scale = 1 / (std_c + 1e-6),
 * with the unbiased std over batch and space, as the reference's ActNorm.initialize. */
static tt_status actnorm_init(actnorm *a, tt_tensor *x) {
  int64_t n = x->shape[0] * x->shape[2] * x->shape[3];
  if (n < 2) {
    char b[128];
    return tt_error(TT_ERR_INVALID, "%s: ActNorm initialisation needs more than one value per channel, found %s",
                    a->loc->name, tt_tensor_shape_str(x, b, sizeof b));
  }
  tt_status s = TT_OK;
  static const int dims[3] = {0, 2, 3};
  TT_NO_GRAD_BEGIN;
  tt_scope_begin();
  tt_tensor *mean = tt_mean_dims(x, 3, dims, true);                               // [1, C, 1, 1]
  tt_tensor *ss = tt_sum_dims(tt_square(tt_sub(x, mean)), 3, dims, true);
  tt_tensor *sd = tt_sqrt(tt_mul_scalar(ss, 1.0 / (double)(n - 1)));              // unbiased std
  tt_tensor *scale = tt_reciprocal(tt_add_scalar(sd, 1e-6));
  tt_tensor *loc = tt_neg(mean);
  if (!scale || !loc) s = tt_last_status();
  if (s == TT_OK) s = tt_copy_(a->loc->t, loc);
  if (s == TT_OK) s = tt_copy_(a->scale->t, scale);
  if (s == TT_OK) s = tt_fill_(a->initialized->t, 1.0);
  tt_scope_end();
  TT_NO_GRAD_END;
  return s;
}

// x [B, C, H, W] -> scale * (x + loc), same shape (in the caller's scope)
static tt_tensor *actnorm_forward(actnorm *a, tt_tensor *x, bool training) {
  if (!x) return NULL;
  if (!a->loc->t || !a->scale->t || !a->initialized->t) {
    tt_error(TT_ERR_INVALID, "ActNorm '%s': parameters are neither bound nor materialised", a->loc->name);
    return NULL;
  }
  if (training && tt_tensor_get(a->initialized->t, 0) == 0 && actnorm_init(a, x) != TT_OK) return NULL;
  return tt_mul(a->scale->t, tt_add(x, a->loc->t));
}

// x [B, input_nc, H, W] -> logits [B, 1, h, w]
static tt_tensor *pg_run(patchgan *d, tt_tensor *x) {
  tt_scope_begin();
  tt_tensor *h = x;
  for (int i = 0; i < d->n_stages; i++) {
    stage *s = &d->st[i];
    h = tt_scope_replace(h, tt_conv2d_layer_forward(&s->conv, h));
    if (s->has_norm && !d->use_actnorm && s->has_act) {   // BatchNorm then LeakyReLU, fused
      h = tt_scope_replace(h, tt_batch_norm_lrelu_layer_forward(&s->bn, h, d->training, 0.2f));
      continue;
    }
    if (s->has_norm)
      h = tt_scope_replace(h, d->use_actnorm ? actnorm_forward(&s->an, h, d->training)
                                             : tt_batch_norm_layer_forward(&s->bn, h, d->training));
    if (s->has_act) h = tt_scope_replace(h, tt_leaky_relu(h, 0.2f));
  }
  return tt_scope_end(h);
}

static tt_status pg_forward(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  patchgan *d = self;
  tt_tensor *x;
  TT_TRY(tt_args_check("forward", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "x", &x));
  if (x->ndim != 4 || x->shape[1] != d->input_nc || x->dtype != TT_F32) {
    char b[128];
    return tt_error(TT_ERR_INVALID, "expected f32 input [B, %lld, H, W], found %s %s", (long long)d->input_nc,
                    tt_dtype_name(x->dtype), tt_tensor_shape_str(x, b, sizeof b));
  }
  tt_tensor *y = pg_run(d, x);
  if (!y) return tt_last_status();
  rets[0] = tt_value_tensor_steal(y);
  *nrets = 1;
  return TT_OK;
}

static const tt_method pg_methods[] = {
    {"forward", pg_forward, "x [B, input_nc, H, W] -> logits [B, 1, h, w]"},
    {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "discriminator", .name = "patchgan", .version = "1.0.0",
                 .summary = "NLayerDiscriminator (PatchGAN) with BatchNorm or ActNorm", .create = pg_create,
                 .destroy = pg_destroy, .params = pg_params, .methods = pg_methods,
                 .set_training = pg_set_training);

/* loss/lpips.c — the LPIPS perceptual distance of the official VQGAN loss
 * (REFERENCE §3.4): scaling layer, VGG16 features cut into five slices, unit
 * normalisation along channels (eps added to the norm), squared differences,
 * the five NetLinLayers (Dropout(0.5) + 1x1 conv without bias), spatial mean,
 * sum over the slices. Parameter names are the official ones relative to
 * `loss.perceptual_loss.`; every parameter is frozen (LPIPS is never trained)
 * but gradients flow through it to both inputs.
 *
 * Config: lin_dropout (true): the lin-layer dropout in training mode, as the
 * official training runs it; false gives the deterministic eval-mode value in
 * training too. seed (0): the dropout masks' random stream. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include "taming/plugin.h"
#include "taming/scope.h"

#define N_CONV 13
#define N_SLICE 5

/* torchvision's vgg16().features up to relu5_3: for each conv its index in
 * `features` (the state-dict index), its slice, widths, and whether a 2x2 max
 * pool precedes it. The slice output is the ReLU after its last conv. */
static const struct {
  int slice, index, cin, cout;
  bool pool_before;
} VGG[N_CONV] = {
    {1, 0, 3, 64, false},     {1, 2, 64, 64, false},
    {2, 5, 64, 128, true},    {2, 7, 128, 128, false},
    {3, 10, 128, 256, true},  {3, 12, 256, 256, false},  {3, 14, 256, 256, false},
    {4, 17, 256, 512, true},  {4, 19, 512, 512, false},  {4, 21, 512, 512, false},
    {5, 24, 512, 512, true},  {5, 26, 512, 512, false},  {5, 28, 512, 512, false},
};
static const int CHNS[N_SLICE] = {64, 128, 256, 512, 512};
static const float SHIFT[3] = {-.030f, -.088f, -.188f};
static const float SCALE[3] = {.458f, .448f, .450f};

typedef struct {
  tt_paramset ps;
  tt_param *shift, *scale;             /* [1, 3, 1, 1] buffers */
  tt_conv2d_layer conv[N_CONV];        /* 3x3, pad 1, bias */
  tt_conv2d_layer lin[N_SLICE];        /* [1, C_k, 1, 1], no bias */
  bool training, lin_dropout;
  tt_rng rng;
} lpips;

static void lp_destroy(void *self) {
  lpips *l = self;
  if (!l) return;
  tt_paramset_free(&l->ps);
  free(l);
}

static void freeze(tt_param *p) { p->flags = (p->flags & ~(unsigned)TT_PARAM_TRAINABLE) | TT_PARAM_FROZEN; }

/* The scaling layer's buffers hold fixed constants: bind them now so that a
 * model built from scratch has the official values; a checkpoint rebinds them. */
static tt_status declare_const(lpips *l, tt_param **p, const char *name, const float v[3]) {
  *p = tt_param_declare(&l->ps, TT_F32, TT_DIMS(1, 3, 1, 1), TT_PARAM_BUFFER | TT_PARAM_OPTIONAL, tt_init_zeros(),
                        "scaling_layer.%s", name);
  if (!*p) return tt_last_status();
  tt_scope_begin();
  tt_tensor *t = tt_tensor_from_data(TT_F32, TT_DIMS(1, 3, 1, 1), v, TT_CPU);   // [1, 3, 1, 1]
  tt_status s = t ? tt_param_bind(*p, t, "LPIPS constants") : tt_last_status();
  tt_scope_end();
  return s;
}

static tt_status lp_build(lpips *l) {
  char name[64];
  TT_TRY(declare_const(l, &l->shift, "shift", SHIFT));
  TT_TRY(declare_const(l, &l->scale, "scale", SCALE));
  for (int i = 0; i < N_CONV; i++) {
    snprintf(name, sizeof name, "net.slice%d.%d", VGG[i].slice, VGG[i].index);
    TT_TRY(tt_conv2d_layer_declare(&l->conv[i], &l->ps, name, VGG[i].cin, VGG[i].cout, 3, 1, 1, true));
    freeze(l->conv[i].weight);
    freeze(l->conv[i].bias);
  }
  for (int k = 0; k < N_SLICE; k++) {
    snprintf(name, sizeof name, "lin%d.model.1", k);
    TT_TRY(tt_conv2d_layer_declare(&l->lin[k], &l->ps, name, CHNS[k], 1, 1, 1, 0, false));
    freeze(l->lin[k].weight);
  }
  return TT_OK;
}

static tt_status lp_create(const tt_value *cfg, void **self) {
  static const char *const known[] = {"lin_dropout", "seed", NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));
  lpips *l = calloc(1, sizeof *l);
  if (!l) return tt_error(TT_ERR_NOMEM, "out of memory");
  tt_paramset_init(&l->ps);
  int64_t seed;
  tt_status s;
  if ((s = tt_cfg_bool_opt(cfg, "lin_dropout", true, &l->lin_dropout)) ||
      (s = tt_cfg_int_opt(cfg, "seed", 0, &seed)) || (s = lp_build(l))) {
    lp_destroy(l);
    return s;
  }
  l->rng = tt_rng_make((uint64_t)seed ^ 0x6c70697073ull);
  *self = l;
  return TT_OK;
}

static tt_paramset *lp_params(void *self) { return &((lpips *)self)->ps; }

static tt_status lp_set_training(void *self, bool training) {
  ((lpips *)self)->training = training;
  return TT_OK;
}

/* x [B, 1|3, H, W] -> the five slice outputs feats[k] [B, C_k, H/2^k, W/2^k], owned by the
 * caller's scope (NULL after a failure) */
static void vgg_features(lpips *l, tt_tensor *x, tt_tensor *feats[N_SLICE]) {
  tt_tensor *h = tt_div(tt_sub(x, l->shift->t), l->scale->t);   // [B, 3, H, W] (a 1-channel input broadcasts)
  for (int i = 0; i < N_CONV; i++) {
    if (VGG[i].pool_before) h = tt_scope_replace(h, tt_max_pool2d(h, 2, 2));   // -> [B, C, H/2, W/2]
    h = tt_scope_replace(h, tt_conv2d_layer_forward(&l->conv[i], h));
    h = tt_scope_replace(h, tt_relu(h));
    if (i == N_CONV - 1 || VGG[i + 1].slice != VGG[i].slice) feats[VGG[i].slice - 1] = tt_scope_own(tt_tensor_ref(h));
  }
  tt_scope_drop(h);
}

/* f / (sqrt(sum_c f^2) + 1e-10): the eps sits outside the root, as in the reference (caller's scope) */
static tt_tensor *unit_normalize(tt_tensor *f) {
  tt_tensor *n = tt_sqrt(tt_sum_dim(tt_square(f), 1, true));   // [B, 1, h, w]
  return tt_div(f, tt_add_scalar(n, 1e-10));
}

/* lin_k(dropout((unit(fx) - unit(fy))^2)) averaged over space: [B, C, h, w] -> [B, 1, 1, 1] */
static tt_tensor *layer_distance(lpips *l, int k, tt_tensor *fx, tt_tensor *fy) {
  tt_scope_begin();
  tt_tensor *d2 = tt_square(tt_sub(unit_normalize(fx), unit_normalize(fy)));
  tt_tensor *dd = tt_dropout(d2, 0.5f, l->training && l->lin_dropout, &l->rng);
  tt_tensor *c = tt_conv2d_layer_forward(&l->lin[k], dd);   // [B, 1, h, w]
  return tt_scope_end(tt_mean_dims(c, 2, (const int[]){2, 3}, true));
}

static tt_status check_input(const tt_tensor *t, const char *what) {
  char b[128];
  if (t->ndim != 4 || (t->shape[1] != 1 && t->shape[1] != 3) || t->dtype != TT_F32)
    return tt_error(TT_ERR_INVALID, "%s: expected f32 images [B, 3, H, W] (or [B, 1, H, W]), found %s %s", what,
                    tt_dtype_name(t->dtype), tt_tensor_shape_str(t, b, sizeof b));
  /* four 2x2 max pools precede relu5_3 */
  if (t->shape[2] < 16 || t->shape[3] < 16)
    return tt_error(TT_ERR_INVALID, "%s: LPIPS needs images of at least 16x16 (four 2x2 poolings), found %s", what,
                    tt_tensor_shape_str(t, b, sizeof b));
  return TT_OK;
}

static tt_status lp_forward(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  lpips *l = self;
  tt_tensor *x, *y;
  TT_TRY(tt_args_check("forward", nargs, 2, 2));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "x", &x));
  TT_TRY(tt_arg_tensor(args, nargs, 1, "y", &y));
  TT_TRY(check_input(x, "x"));
  TT_TRY(check_input(y, "y"));
  if (!tt_tensor_same_shape(x, y)) {
    char a[128], b[128];
    return tt_error(TT_ERR_INVALID, "x %s and y %s differ in shape", tt_tensor_shape_str(x, a, sizeof a),
                    tt_tensor_shape_str(y, b, sizeof b));
  }
  if (!l->shift->t || !l->conv[0].weight->t || !l->lin[0].weight->t)
    return tt_error(TT_ERR_INVALID, "parameters are neither bound nor materialised");
  tt_tensor *fx[N_SLICE] = {0}, *fy[N_SLICE] = {0}, *val = NULL;
  tt_scope_begin();
  vgg_features(l, x, fx);
  vgg_features(l, y, fy);
  for (int k = 0; k < N_SLICE; k++) {
    tt_tensor *r = tt_scope_own(layer_distance(l, k, fx[k], fy[k]));   // [B, 1, 1, 1]
    val = k ? tt_add(val, r) : r;
    /* the features of a slice are no longer needed once its distance is taken */
    tt_scope_drop(fx[k]);
    tt_scope_drop(fy[k]);
  }
  return tt_scope_return(rets, nrets, val);
}

static const tt_method lp_methods[] = {
    {"forward", lp_forward, "x, y [B, 3 (or 1), H, W] in [-1, 1] -> distance [B, 1, 1, 1]"},
    {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "loss", .name = "lpips", .version = "1.0.0",
                 .summary = "LPIPS (VGG16) perceptual distance of VQLPIPSWithDiscriminator", .create = lp_create,
                 .destroy = lp_destroy, .params = lp_params, .methods = lp_methods,
                 .set_training = lp_set_training);

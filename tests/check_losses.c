/* check_losses.c — the first-stage loss plugins (loss/lpips, discriminator/patchgan)
 * through the plugin interface: finite-difference gradients w.r.t. their inputs
 * and parameters on tiny, odd-sized inputs, ActNorm's data-dependent
 * initialisation and BatchNorm's running statistics against values computed
 * here in double precision, the parameter layout, and bad input. */
#include "config.h"
#include <math.h>
#include <string.h>
#include "testhelp.h"

static tt_value cfg_map(const char *keys[], const tt_value *vals, int n) {
  tt_value m = tt_value_map();
  for (int i = 0; i < n; i++) {
    tt_value v = vals[i];
    ck_assert(tt_value_set(&m, keys[i], &v) == TT_OK);
  }
  return m;
}

/* A plugin instance with every parameter initialised from `seed`. */
static tt_instance *make(const char *kind, const char *name, tt_value *cfg, uint64_t seed) {
  tt_plugin *p;
  tt_instance *inst;
  TH_OK(tt_plugin_find(kind, name, &p));
  TH_OK(tt_instance_create(p, cfg, &inst));
  tt_value_clear(cfg);
  TH_OK(tt_paramset_materialize(tt_instance_params(inst), seed, TT_CPU));
  TH_OK(tt_instance_params_ready(inst));
  return inst;
}

static tt_tensor *param(tt_instance *inst, const char *name) {
  tt_param *p = tt_paramset_find(tt_instance_params(inst), name);
  ck_assert_msg(p && p->t, "parameter '%s' missing", name);
  return p->t;
}

/* Calls inst.forward(args...) and returns its first result (NULL on failure). */
static tt_tensor *call(tt_instance *inst, int n, tt_tensor *const *ts) {
  tt_value args[2], rets[TT_MAX_RETS];
  int nrets = 0;
  for (int i = 0; i < n; i++) args[i] = tt_value_tensor(ts[i]);
  tt_status s = tt_instance_call(inst, "forward", args, n, rets, &nrets);
  for (int i = 0; i < n; i++) tt_value_clear(&args[i]);
  if (s != TT_OK) return NULL;
  tt_tensor *y = rets[0].u.t;
  rets[0].type = TT_V_NIL;
  for (int i = 0; i < nrets; i++) tt_value_clear(&rets[i]);
  return y;
}

/* ---- LPIPS ---- */

static tt_instance *make_lpips(bool lin_dropout, uint64_t seed) {
  const char *k[] = {"lin_dropout"};
  tt_value v[] = {tt_value_bool(lin_dropout)};
  tt_value cfg = cfg_map(k, v, 1);
  return make("loss", "lpips", &cfg, seed);
}

static tt_tensor *f_lpips(tt_tensor *const *in, void *ud) { return call(ud, 2, in); }

START_TEST(test_lpips_input_grads) {
  tt_instance *lp = make_lpips(true, 11);
  /* eval mode: deterministic; odd, non-square size: the pools floor 17 -> 8 -> 4 -> 2 -> 1 */
  tt_tensor *in[2] = {th_uniform(1, TT_DIMS(2, 3, 17, 20), -1, 1), th_uniform(2, TT_DIMS(2, 3, 17, 20), -1, 1)};
  tt_tensor_set_requires_grad(in[0], true);
  tt_tensor_set_requires_grad(in[1], true);
  th_gradcheck("lpips(x, y)", f_lpips, 2, in, lp, 1e-2, 2e-5, 2e-2, 24);
  /* frozen weights: gradients reach the inputs only */
  tt_tensor *w = param(lp, "net.slice1.0.weight");
  ck_assert(!w->requires_grad && w->grad == NULL);
  ck_assert(!param(lp, "lin0.model.1.weight")->requires_grad);
  tt_tensor_unref(in[0]);
  tt_tensor_unref(in[1]);
  tt_instance_free(lp);
}
END_TEST

START_TEST(test_lpips_one_channel_grads) {
  tt_instance *lp = make_lpips(true, 12);
  /* [B, 1, H, W] broadcasts to 3 channels in the scaling layer; its gradient sums them */
  tt_tensor *in[2] = {th_uniform(3, TT_DIMS(1, 1, 16, 19), -1, 1), th_uniform(4, TT_DIMS(1, 1, 16, 19), -1, 1)};
  tt_tensor_set_requires_grad(in[0], true);
  tt_tensor_set_requires_grad(in[1], true);
  th_gradcheck("lpips 1-channel", f_lpips, 2, in, lp, 1e-2, 2e-5, 2e-2, 24);
  tt_tensor_unref(in[0]);
  tt_tensor_unref(in[1]);
  tt_instance_free(lp);
}
END_TEST

START_TEST(test_lpips_bad_input) {
  tt_instance *lp = make_lpips(true, 13);
  tt_tensor *a = th_uniform(5, TT_DIMS(1, 3, 8, 32), -1, 1), *b = th_uniform(6, TT_DIMS(1, 3, 8, 32), -1, 1);
  tt_tensor *c = th_uniform(7, TT_DIMS(1, 3, 32, 32), -1, 1), *d = th_uniform(8, TT_DIMS(1, 2, 32, 32), -1, 1);
  tt_tensor *e = th_uniform(9, TT_DIMS(1, 3, 32, 24), -1, 1);
  tt_tensor *ab[2] = {a, b}, *cd[2] = {c, d}, *ce[2] = {c, e};
  ck_assert_ptr_null(call(lp, 2, ab));
  ck_assert_msg(strstr(tt_error_message(), "at least 16x16"), "%s", tt_error_message());
  ck_assert_ptr_null(call(lp, 2, cd));
  ck_assert_msg(strstr(tt_error_message(), "[1, 2, 32, 32]"), "%s", tt_error_message());
  ck_assert_ptr_null(call(lp, 2, ce));
  ck_assert_msg(strstr(tt_error_message(), "differ in shape"), "%s", tt_error_message());
  ck_assert_ptr_null(call(lp, 1, ab));
  tt_tensor *all[] = {a, b, c, d, e};
  for (int i = 0; i < 5; i++) tt_tensor_unref(all[i]);
  tt_instance_free(lp);
}
END_TEST

/* ---- PatchGAN ---- */

static tt_instance *make_patchgan(int input_nc, int ndf, int n_layers, bool actnorm, uint64_t seed) {
  const char *k[] = {"input_nc", "ndf", "n_layers", "use_actnorm"};
  tt_value v[] = {tt_value_int(input_nc), tt_value_int(ndf), tt_value_int(n_layers), tt_value_bool(actnorm)};
  tt_value cfg = cfg_map(k, v, 4);
  return make("discriminator", "patchgan", &cfg, seed);
}

/* The discriminator applied to a fixed input; the finite differences perturb either
 * that input or the plugin's own parameter tensors (the ones its forward reads). */
typedef struct {
  tt_instance *d;
  tt_tensor *x;
} disc_case;

static double disc_objective(disc_case *c, const tt_tensor *R) {
  tt_tensor *y = NULL;
  TT_NO_GRAD_BEGIN;
  y = call(c->d, 1, &c->x);
  TT_NO_GRAD_END;
  ck_assert_msg(y != NULL, "discriminator forward failed: %s", tt_error_message());
  double L = 0;
  for (int64_t i = 0; i < tt_tensor_numel(y); i++) L += tt_tensor_get(y, i) * tt_f32(R)[i];
  tt_tensor_unref(y);
  return L;
}

/* Finite differences for a network made of LeakyReLUs: a perturbation may cross a
 * kink on one side, so the analytic derivative must agree with the central, the
 * forward or the backward difference (a wrong gradient agrees with none), within
 * atol + rtol * |difference|. The objective is sum(logits * R). */
static void disc_gradcheck_ts(const char *name, disc_case *c, int n, tt_tensor *const *ts, double eps,
                              double atol, double rtol, int samples) {
  for (int i = 0; i < n; i++) tt_zero_grad(ts[i]);
  tt_tensor *y = call(c->d, 1, &c->x);
  TH_NN(y);
  tt_tensor *R = th_randn(777, y->ndim, y->shape, 1.0f);
  tt_tensor *yr = tt_mul(y, R), *L = yr ? tt_sum(yr) : NULL;
  TH_NN(L);
  TH_OK(tt_backward(L, NULL, false));
  tt_tensor *all[] = {y, yr, L};
  for (int i = 0; i < 3; i++) tt_tensor_unref(all[i]);
  for (int i = 0; i < n; i++) {
    tt_tensor *t = ts[i];
    ck_assert_msg(t->grad != NULL, "%s: tensor %d got no gradient", name, i);
    tt_rng pick = tt_rng_make(4321 + (uint64_t)i);
    int64_t numel = tt_tensor_numel(t);
    float *p = tt_f32(t);
    double l0 = disc_objective(c, R);
    for (int k = 0; k < samples && k < numel; k++) {
      int64_t j = numel <= samples ? k : (int64_t)(tt_rng_uniform(&pick) * (double)numel);
      float keep = p[j];
      p[j] = keep + (float)eps;
      double lp = disc_objective(c, R);
      p[j] = keep - (float)eps;
      double lm = disc_objective(c, R);
      p[j] = keep;
      double ana = tt_tensor_get(t->grad, j);
      double diffs[3] = {(lp - lm) / (2 * eps), (lp - l0) / eps, (l0 - lm) / eps}, best = INFINITY;
      for (int q = 0; q < 3; q++) best = fmin(best, fabs(ana - diffs[q]) - (atol + rtol * fabs(diffs[q])));
      ck_assert_msg(best <= 0, "%s: gradient of tensor %d wrong at element %lld: analytic %.6g, differences "
                    "%.6g (central), %.6g (forward), %.6g (backward)", name, i, (long long)j, ana, diffs[0],
                    diffs[1], diffs[2]);
    }
    tt_zero_grad(t);
  }
  tt_tensor_unref(R);
}

/* The input x (the loss's gradient path to the generator), then parameters. Parameter
 * gradients of every layer are checked against PyTorch in test_loss_plugins.lua;
 * here only those of the last conv, which the logits depend on linearly: a step in
 * an earlier weight moves whole feature maps that the norm layers scale up by
 * 1/std, across many LeakyReLU kinks. */
static void disc_gradcheck(const char *name, tt_instance *d, tt_tensor *x, int np, const char *const *params) {
  disc_case c = {d, x};
  tt_tensor_set_requires_grad(x, true);
  disc_gradcheck_ts(name, &c, 1, &x, 1e-2, 2e-4, 1e-2, 24);
  tt_tensor_set_requires_grad(x, false);
  tt_tensor *ps[8];
  for (int i = 0; i < np; i++) ps[i] = param(d, params[i]);
  disc_gradcheck_ts(name, &c, np, ps, 1e-2, 2e-4, 1e-3, 16);
}

START_TEST(test_patchgan_batchnorm_grads) {
  static const char *const ps[] = {"main.8.weight", "main.8.bias"};
  for (int training = 1; training >= 0; training--) {
    tt_instance *d = make_patchgan(3, 4, 2, false, 21);
    TH_OK(tt_instance_set_training(d, training));
    tt_tensor *x = th_uniform(31, TT_DIMS(2, 3, 37, 30), -1, 1);
    disc_gradcheck(training ? "patchgan bn train" : "patchgan bn eval", d, x, 2, ps);
    tt_tensor_unref(x);
    tt_instance_free(d);
  }
}
END_TEST

START_TEST(test_patchgan_actnorm_grads) {
  static const char *const ps[] = {"main.11.weight", "main.11.bias"};
  tt_instance *d = make_patchgan(1, 4, 3, true, 22);
  TH_OK(tt_instance_set_training(d, true));
  tt_tensor *x0 = th_uniform(32, TT_DIMS(3, 1, 40, 34), -1, 1);
  tt_tensor *y0 = call(d, 1, &x0);   /* initialises every ActNorm */
  TH_NN(y0);
  tt_tensor *x = th_uniform(33, TT_DIMS(2, 1, 35, 40), -1, 1);
  disc_gradcheck("patchgan actnorm", d, x, 2, ps);
  tt_tensor_unref(x0);
  tt_tensor_unref(y0);
  tt_tensor_unref(x);
  tt_instance_free(d);
}
END_TEST

/* per-channel mean and unbiased std of t [B, C, H, W], in double */
static void channel_stats(const tt_tensor *t, int c, double *mean, double *sd) {
  int64_t B = t->shape[0], C = t->shape[1], S = t->shape[2] * t->shape[3];
  double s = 0, s2 = 0;
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < S; i++) s += tt_tensor_get(t, (b * C + c) * S + i);
  *mean = s / (double)(B * S);
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < S; i++) {
      double v = tt_tensor_get(t, (b * C + c) * S + i) - *mean;
      s2 += v * v;
    }
  *sd = sqrt(s2 / (double)(B * S - 1));
}

START_TEST(test_patchgan_actnorm_init) {
  /* n_layers 1: main.0 conv, main.2 conv (bias), main.3 ActNorm, main.5 conv */
  tt_instance *d = make_patchgan(2, 3, 1, true, 23);
  tt_tensor *x = th_uniform(34, TT_DIMS(3, 2, 19, 22), -1, 1);
  tt_tensor *loc = param(d, "main.3.loc"), *scale = param(d, "main.3.scale"), *init = param(d, "main.3.initialized");
  ck_assert_int_eq(init->dtype, TT_U8);
  ck_assert_int_eq(init->ndim, 0);
  /* eval mode never initialises */
  tt_tensor *y = call(d, 1, &x);
  TH_NN(y);
  tt_tensor_unref(y);
  ck_assert(tt_tensor_get(init, 0) == 0 && tt_tensor_get(loc, 0) == 0 && tt_tensor_get(scale, 0) == 1);
  /* the first training forward initialises from the batch entering main.3 */
  TH_OK(tt_instance_set_training(d, true));
  tt_conv2d_params cp1 = tt_conv2d_params_make(2, 1), cp2 = tt_conv2d_params_make(1, 1);
  tt_tensor *h1 = tt_conv2d(x, param(d, "main.0.weight"), param(d, "main.0.bias"), &cp1);
  tt_tensor *a1 = tt_leaky_relu(h1, 0.2f);
  tt_tensor *h2 = tt_conv2d(a1, param(d, "main.2.weight"), param(d, "main.2.bias"), &cp2);
  TH_NN(h2);
  y = call(d, 1, &x);
  TH_NN(y);
  ck_assert(tt_tensor_get(init, 0) == 1);
  double worst = 0;
  for (int c = 0; c < 6; c++) {
    double m, sd;
    channel_stats(h2, c, &m, &sd);
    worst = fmax(worst, fabs(tt_tensor_get(loc, c) + m));
    worst = fmax(worst, fabs(tt_tensor_get(scale, c) - 1.0 / (sd + 1e-6)) / (1.0 / sd));
  }
  ck_assert_msg(worst < 1e-5, "ActNorm init: worst difference %.3g", worst);
  /* normalised: the ActNorm output has zero mean and std sd / (sd + 1e-6) per channel */
  tt_tensor *h2l = tt_add(h2, loc);
  tt_tensor *hn = tt_mul(scale, h2l);
  for (int c = 0; c < 6; c++) {
    double m, sd, m0, sd0;
    channel_stats(h2, c, &m0, &sd0);
    channel_stats(hn, c, &m, &sd);
    ck_assert_msg(fabs(m) < 1e-5 && fabs(sd - sd0 / (sd0 + 1e-6)) < 1e-5, "channel %d: mean %.3g std %.6f", c, m, sd);
  }
  /* a second training batch does not re-initialise */
  float l0 = (float)tt_tensor_get(loc, 0);
  tt_tensor *x2 = th_uniform(35, TT_DIMS(2, 2, 19, 22), -3, 3);
  tt_tensor *y2 = call(d, 1, &x2);
  TH_NN(y2);
  ck_assert(tt_tensor_get(loc, 0) == l0);
  /* one value per channel cannot give an unbiased std */
  tt_instance *d1 = make_patchgan(1, 2, 1, true, 24);
  TH_OK(tt_instance_set_training(d1, true));
  tt_tensor *tiny = th_uniform(36, TT_DIMS(1, 1, 5, 5), -1, 1);   /* main.3 sees [1, 4, 1, 1] */
  ck_assert_ptr_null(call(d1, 1, &tiny));
  ck_assert_msg(strstr(tt_error_message(), "more than one value per channel"), "%s", tt_error_message());
  tt_tensor *all[] = {x, h1, a1, h2, y, h2l, hn, x2, y2, tiny};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) tt_tensor_unref(all[i]);
  tt_instance_free(d);
  tt_instance_free(d1);
}
END_TEST

START_TEST(test_patchgan_batchnorm_running_stats) {
  /* n_layers 1: main.0 conv, main.2 conv (no bias), main.3 BN, main.5 conv */
  tt_instance *d = make_patchgan(3, 2, 1, false, 25);
  ck_assert_ptr_null(tt_paramset_find(tt_instance_params(d), "main.2.bias"));
  tt_tensor *x = th_uniform(37, TT_DIMS(2, 3, 20, 17), -1, 1);
  tt_tensor *rm = param(d, "main.3.running_mean"), *rv = param(d, "main.3.running_var");
  tt_tensor *nb = param(d, "main.3.num_batches_tracked");
  TH_OK(tt_fill_(rm, 0.5));
  TH_OK(tt_fill_(rv, 2.0));
  TH_OK(tt_instance_set_training(d, true));
  tt_conv2d_params cp1 = tt_conv2d_params_make(2, 1), cp2 = tt_conv2d_params_make(1, 1);
  tt_tensor *h1 = tt_conv2d(x, param(d, "main.0.weight"), param(d, "main.0.bias"), &cp1);
  tt_tensor *a1 = tt_leaky_relu(h1, 0.2f);
  tt_tensor *h2 = tt_conv2d(a1, param(d, "main.2.weight"), NULL, &cp2);
  TH_NN(h2);
  for (int k = 1; k <= 2; k++) {
    tt_tensor *y = call(d, 1, &x);
    TH_NN(y);
    tt_tensor_unref(y);
    ck_assert_int_eq((int)tt_tensor_get(nb, 0), k);
  }
  /* two updates with momentum 0.1 from (0.5, 2.0) towards the batch mean and unbiased variance */
  double worst = 0;
  for (int c = 0; c < 4; c++) {
    double m, sd;
    channel_stats(h2, c, &m, &sd);
    double em = 0.81 * 0.5 + 0.19 * m, ev = 0.81 * 2.0 + 0.19 * sd * sd;
    worst = fmax(worst, fmax(fabs(tt_tensor_get(rm, c) - em), fabs(tt_tensor_get(rv, c) - ev)));
  }
  ck_assert_msg(worst < 1e-6, "running statistics: worst difference %.3g", worst);
  /* eval mode reads them and leaves them alone */
  TH_OK(tt_instance_set_training(d, false));
  double rm0 = tt_tensor_get(rm, 0);
  tt_tensor *y = call(d, 1, &x);
  TH_NN(y);
  ck_assert(tt_tensor_get(rm, 0) == rm0 && (int)tt_tensor_get(nb, 0) == 2);
  tt_tensor *all[] = {x, h1, a1, h2, y};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) tt_tensor_unref(all[i]);
  tt_instance_free(d);
}
END_TEST

/* state-dict layout and weights_init of the official n_layers = 3, ndf = 64 model */
START_TEST(test_patchgan_layout_and_init) {
  tt_instance *d = make_patchgan(3, 64, 3, false, 26);
  tt_paramset *ps = tt_instance_params(d);
  static const char *names[] = {"main.0.weight", "main.0.bias", "main.2.weight", "main.3.weight", "main.3.bias",
                                "main.3.running_mean", "main.3.running_var", "main.3.num_batches_tracked",
                                "main.5.weight", "main.6.weight", "main.8.weight", "main.9.weight",
                                "main.11.weight", "main.11.bias"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    ck_assert_msg(tt_paramset_find(ps, names[i]) != NULL, "missing %s", names[i]);
  ck_assert_ptr_null(tt_paramset_find(ps, "main.5.bias"));
  ck_assert_ptr_null(tt_paramset_find(ps, "main.8.bias"));
  tt_tensor *w8 = param(d, "main.8.weight");   /* [512, 256, 4, 4] */
  ck_assert_int_eq(w8->shape[0], 512);
  ck_assert_int_eq(w8->shape[1], 256);
  ck_assert_int_eq(param(d, "main.11.weight")->shape[1], 512);
  /* 2,765,633 parameters, the official count (buffers excluded) */
  ck_assert_int_eq(tt_paramset_numel(ps, TT_PARAM_TRAINABLE), 2765633);
  double s = 0, s2 = 0;
  int64_t n = tt_tensor_numel(w8);
  for (int64_t i = 0; i < n; i++) {
    double v = tt_f32(w8)[i];
    s += v;
    s2 += v * v;
  }
  double mean = s / (double)n, sd = sqrt(s2 / (double)n - mean * mean);
  ck_assert_msg(fabs(mean) < 1e-4 && fabs(sd - 0.02) < 2e-4, "conv init N(0, 0.02): mean %.3g std %.5f", mean, sd);
  tt_tensor *g = param(d, "main.9.weight"), *b = param(d, "main.9.bias");
  s = s2 = 0;
  for (int i = 0; i < 512; i++) {
    s += tt_f32(g)[i];
    s2 += tt_f32(g)[i] * tt_f32(g)[i];
    ck_assert(tt_f32(b)[i] == 0.0f);
  }
  mean = s / 512;
  sd = sqrt(s2 / 512 - mean * mean);
  ck_assert_msg(fabs(mean - 1) < 0.005 && fabs(sd - 0.02) < 0.004, "BN init N(1, 0.02): mean %.4f std %.4f", mean, sd);
  /* conv biases keep PyTorch's default uniform(+-1/sqrt(fan_in)) */
  tt_tensor *b0 = param(d, "main.0.bias");
  for (int i = 0; i < 64; i++) ck_assert(fabsf(tt_f32(b0)[i]) <= 1.0f / sqrtf(48.0f));
  tt_instance_free(d);
  /* ActNorm: every conv has a bias, norms are loc/scale/initialized */
  d = make_patchgan(3, 8, 2, true, 27);
  ps = tt_instance_params(d);
  static const char *an[] = {"main.2.bias", "main.3.loc", "main.3.scale", "main.3.initialized", "main.5.bias",
                             "main.6.loc", "main.8.bias"};
  for (size_t i = 0; i < sizeof an / sizeof *an; i++)
    ck_assert_msg(tt_paramset_find(ps, an[i]) != NULL, "missing %s", an[i]);
  ck_assert_ptr_null(tt_paramset_find(ps, "main.3.running_mean"));
  tt_instance_free(d);
}
END_TEST

START_TEST(test_patchgan_bad_config_and_input) {
  tt_plugin *p;
  tt_instance *inst = NULL;
  TH_OK(tt_plugin_find("discriminator", "patchgan", &p));
  const char *k[] = {"n_layers"};
  tt_value v[] = {tt_value_int(0)};
  tt_value cfg = cfg_map(k, v, 1);
  ck_assert_int_ne(tt_instance_create(p, &cfg, &inst), TT_OK);
  ck_assert_msg(strstr(tt_error_message(), "n_layers"), "%s", tt_error_message());
  tt_value_clear(&cfg);
  tt_instance *d = make_patchgan(3, 4, 2, false, 28);
  tt_tensor *x = th_uniform(38, TT_DIMS(1, 1, 32, 32), -1, 1);
  ck_assert_ptr_null(call(d, 1, &x));
  ck_assert_msg(strstr(tt_error_message(), "[B, 3, H, W]"), "%s", tt_error_message());
  tt_tensor_unref(x);
  tt_instance_free(d);
}
END_TEST

static Suite *losses_suite(void) {
  Suite *s = suite_create("losses");
  TCase *tc = tcase_create("lpips");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_lpips_input_grads);
  tcase_add_test(tc, test_lpips_one_channel_grads);
  tcase_add_test(tc, test_lpips_bad_input);
  suite_add_tcase(s, tc);
  tc = tcase_create("patchgan");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_patchgan_batchnorm_grads);
  tcase_add_test(tc, test_patchgan_actnorm_grads);
  tcase_add_test(tc, test_patchgan_actnorm_init);
  tcase_add_test(tc, test_patchgan_batchnorm_running_stats);
  tcase_add_test(tc, test_patchgan_layout_and_init);
  tcase_add_test(tc, test_patchgan_bad_config_and_input);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return th_run(losses_suite()); }

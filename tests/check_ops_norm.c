/* check_ops_norm.c — group norm, layer norm and batch norm: forward values
 * against double-precision references computed here, finite-difference
 * gradients of every input on odd and non-square shapes, batch norm's running
 * statistics (unbiased variance), the fused group norm + SiLU and batch norm +
 * LeakyReLU against the ops they replace, and the error messages of bad arguments. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testhelp.h"
#include "torch_ref.h"

/* Mean and biased variance, two-pass in double. */
static void ref_moments(const float *x, int64_t n, int64_t stride_blocks, int64_t block, int64_t nblocks,
                        double *mean, double *var) {
  double s = 0, v = 0;
  for (int64_t b = 0; b < nblocks; b++)
    for (int64_t i = 0; i < block; i++) s += x[b * stride_blocks + i];
  *mean = s / (double)n;
  for (int64_t b = 0; b < nblocks; b++)
    for (int64_t i = 0; i < block; i++) {
      double d = x[b * stride_blocks + i] - *mean;
      v += d * d;
    }
  *var = v / (double)n;
}

/* ---- group norm ---- */

/* x [B, C, S] */
static double *ref_group_norm(const tt_tensor *x, int G, const tt_tensor *w, const tt_tensor *b, double eps) {
  int64_t B = x->shape[0], C = x->shape[1], S = tt_tensor_numel(x) / (B * C), cpg = C / G;
  const float *xs = tt_f32(x);
  double *y = th_ref_alloc(B * C * S);
  for (int64_t bi = 0; bi < B; bi++)
    for (int64_t g = 0; g < G; g++) {
      const float *xg = xs + (bi * C + g * cpg) * S;
      double mu, var;
      ref_moments(xg, cpg * S, 0, cpg * S, 1, &mu, &var);
      double r = 1.0 / sqrt(var + eps);
      for (int64_t j = 0; j < cpg * S; j++) {
        int64_t c = g * cpg + j / S;
        y[(bi * C + g * cpg) * S + j] =
            (xg[j] - mu) * r * (w ? tt_f32(w)[c] : 1.0) + (b ? tt_f32(b)[c] : 0.0);
      }
    }
  return y;
}

typedef struct { int groups; float eps; } gn_case;
static tt_tensor *f_group_norm(tt_tensor *const *in, void *ud) {
  gn_case *c = ud;
  return tt_group_norm(in[0], c->groups, in[1], in[2], c->eps);
}

START_TEST(test_group_norm_values) {
  struct { int nd; int64_t sh[5]; int G; bool w, b; float eps; float offset; } cases[] = {
      {4, {2, 6, 5, 3}, 3, true, true, 1e-6f, 0},
      {3, {3, 8, 7}, 4, false, false, 1e-5f, 0},
      {5, {1, 4, 2, 3, 5}, 2, true, false, 1e-6f, 0},
      {2, {5, 6}, 6, false, true, 1e-6f, 0},
      {4, {2, 64, 9, 7}, 32, true, true, 1e-6f, 0},        /* VQGAN's Normalize: 32 groups */
      {4, {2, 64, 32, 32}, 32, true, true, 1e-6f, 0},      /* big enough for the parallel path */
      {4, {2, 4, 6, 5}, 2, true, true, 1e-6f, 1000.0f},    /* |mean| >> std */
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    tt_tensor *x = th_randn(10 + k, cases[k].nd, cases[k].sh, 1.5f);
    for (int64_t i = 0; i < tt_tensor_numel(x); i++) tt_f32(x)[i] += cases[k].offset + 0.3f;
    int64_t C = cases[k].sh[1];
    tt_tensor *w = cases[k].w ? th_randn(20 + k, TT_DIMS(C), 1.0f) : NULL;
    tt_tensor *b = cases[k].b ? th_randn(30 + k, TT_DIMS(C), 1.0f) : NULL;
    tt_tensor *y = tt_group_norm(x, cases[k].G, w, b, cases[k].eps);
    TH_NN(y);
    ck_assert(tt_tensor_same_shape(x, y));
    double *ref = ref_group_norm(x, cases[k].G, w, b, cases[k].eps);
    char name[64];
    snprintf(name, sizeof name, "group_norm case %zu", k);
    /* the |mean| >> std case loses float digits in x itself, not in the op */
    th_assert_ref(name, y, ref, cases[k].offset > 0 ? 2e-4 : 2e-6, 2e-6);
    free(ref);
    tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b); tt_tensor_unref(y);
  }
}
END_TEST

START_TEST(test_group_norm_grads) {
  struct { int nd; int64_t sh[4]; int G; bool w, b; } cases[] = {
      {4, {2, 6, 3, 5}, 3, true, true},
      {3, {3, 4, 7}, 1, true, true},    /* one group: layer norm over (C, S) */
      {3, {2, 5, 3}, 5, true, false},   /* a group per channel: instance norm */
      {4, {1, 6, 2, 3}, 2, false, false},
      {2, {4, 6}, 3, false, true},      /* no spatial dims */
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    int64_t C = cases[k].sh[1];
    tt_tensor *x = th_leaf(100 + k, cases[k].nd, cases[k].sh, 1.0f);
    tt_tensor *w = cases[k].w ? th_leaf(110 + k, TT_DIMS(C), 1.0f) : NULL;
    tt_tensor *b = cases[k].b ? th_leaf(120 + k, TT_DIMS(C), 1.0f) : NULL;
    tt_tensor *in[3] = {x, w, b};
    gn_case gc = {cases[k].G, 1e-6f};
    char name[64];
    snprintf(name, sizeof name, "group_norm grad case %zu", k);
    th_gradcheck(name, f_group_norm, 3, in, &gc, 1e-2, 2e-3, 1e-2, 64);
    tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b);
  }
  /* the parallel path, sampled */
  tt_tensor *x = th_leaf(130, TT_DIMS(2, 64, 16, 20), 1.0f), *w = th_leaf(131, TT_DIMS(64), 1.0f),
            *b = th_leaf(132, TT_DIMS(64), 1.0f);
  tt_tensor *in[3] = {x, w, b};
  gn_case gc = {32, 1e-6f};
  th_gradcheck("group_norm grad, large", f_group_norm, 3, in, &gc, 1e-2, 5e-3, 1e-2, 24);
  tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b);
}
END_TEST

START_TEST(test_group_norm_errors) {
  tt_tensor *x = th_randn(1, TT_DIMS(2, 30, 4, 4), 1.0f);
  ck_assert_ptr_null(tt_group_norm(x, 32, NULL, NULL, 1e-6f));
  ck_assert_msg(strstr(tt_error_message(), "30 channels") && strstr(tt_error_message(), "[2, 30, 4, 4]") &&
                    strstr(tt_error_message(), "32 groups"),
                "message: %s", tt_error_message());
  tt_tensor *w = th_randn(2, TT_DIMS(31), 1.0f);
  ck_assert_ptr_null(tt_group_norm(x, 5, w, NULL, 1e-6f));
  ck_assert_msg(strstr(tt_error_message(), "weight") && strstr(tt_error_message(), "[31]") &&
                    strstr(tt_error_message(), "[30]"),
                "message: %s", tt_error_message());
  tt_tensor *x1 = th_randn(3, TT_DIMS(7), 1.0f);
  ck_assert_ptr_null(tt_group_norm(x1, 1, NULL, NULL, 1e-6f));
  ck_assert_msg(strstr(tt_error_message(), "[B, C, ...]"), "message: %s", tt_error_message());
  tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(x1);
}
END_TEST

/* ---- group norm + SiLU ---- */

static tt_tensor *f_group_norm_silu(tt_tensor *const *in, void *ud) {
  gn_case *c = ud;
  return tt_group_norm_silu(in[0], c->groups, in[1], in[2], c->eps);
}

START_TEST(test_group_norm_silu_values) {
  struct { int nd; int64_t sh[4]; int G; bool w, b; } cases[] = {
      {4, {2, 6, 5, 3}, 3, true, true},
      {3, {3, 8, 7}, 4, false, false},
      {2, {5, 6}, 6, false, true},
      {4, {2, 64, 9, 7}, 32, true, true},     /* VQGAN's Normalize: 32 groups */
      {4, {2, 64, 32, 32}, 32, true, true},   /* big enough for the parallel path */
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    tt_tensor *x = th_randn(40 + k, cases[k].nd, cases[k].sh, 1.5f);
    int64_t C = cases[k].sh[1];
    tt_tensor *w = cases[k].w ? th_randn(50 + k, TT_DIMS(C), 1.0f) : NULL;
    tt_tensor *b = cases[k].b ? th_randn(60 + k, TT_DIMS(C), 1.0f) : NULL;
    tt_tensor *y = tt_group_norm_silu(x, cases[k].G, w, b, 1e-6f);
    TH_NN(y);
    ck_assert(tt_tensor_same_shape(x, y));
    double *ref = ref_group_norm(x, cases[k].G, w, b, 1e-6);
    for (int64_t i = 0; i < tt_tensor_numel(x); i++) ref[i] = ref[i] / (1.0 + exp(-ref[i]));
    char name[64];
    snprintf(name, sizeof name, "group_norm_silu case %zu", k);
    th_assert_ref(name, y, ref, 4e-6, 4e-6);
    free(ref);
    tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b); tt_tensor_unref(y);
  }
}
END_TEST

START_TEST(test_group_norm_silu_grads) {
  struct { int nd; int64_t sh[4]; int G; bool w, b; } cases[] = {
      {4, {2, 6, 3, 5}, 3, true, true},
      {3, {3, 4, 7}, 1, true, true},    /* one group */
      {3, {2, 5, 3}, 5, true, false},   /* a group per channel */
      {4, {1, 6, 2, 3}, 2, false, false},
      /* no spatial dims; 3 values a group: with 2, x^ is +-1 and central differences
       * of silu(x^) miss by 7% (group_norm then silu, unfused, misses the same) */
      {2, {4, 6}, 2, false, true},
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    int64_t C = cases[k].sh[1];
    tt_tensor *x = th_leaf(140 + k, cases[k].nd, cases[k].sh, 1.0f);
    tt_tensor *w = cases[k].w ? th_leaf(150 + k, TT_DIMS(C), 1.0f) : NULL;
    tt_tensor *b = cases[k].b ? th_leaf(160 + k, TT_DIMS(C), 1.0f) : NULL;
    tt_tensor *in[3] = {x, w, b};
    gn_case gc = {cases[k].G, 1e-6f};
    char name[64];
    snprintf(name, sizeof name, "group_norm_silu grad case %zu", k);
    th_gradcheck(name, f_group_norm_silu, 3, in, &gc, 1e-2, 2e-3, 1e-2, 64);
    tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b);
  }
  tt_tensor *x = th_leaf(170, TT_DIMS(2, 64, 16, 20), 1.0f), *w = th_leaf(171, TT_DIMS(64), 1.0f),
            *b = th_leaf(172, TT_DIMS(64), 1.0f);
  tt_tensor *in[3] = {x, w, b};
  gn_case gc = {32, 1e-6f};
  th_gradcheck("group_norm_silu grad, large", f_group_norm_silu, 3, in, &gc, 1e-2, 5e-3, 1e-2, 24);
  tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b);
}
END_TEST

/* The fused op against the two ops it replaces, values and all three gradients,
 * on the parallel path: the VQGAN's blocks switch from one to the other. */
START_TEST(test_group_norm_silu_matches_unfused) {
  tt_tensor *x = th_leaf(180, TT_DIMS(2, 64, 24, 20), 1.5f), *w = th_leaf(181, TT_DIMS(64), 1.0f),
            *b = th_leaf(182, TT_DIMS(64), 1.0f);
  tt_tensor *gy = th_randn(183, TT_DIMS(2, 64, 24, 20), 1.0f);
  tt_tensor *h = tt_group_norm(x, 32, w, b, 1e-6f), *y0 = h ? tt_silu(h) : NULL;
  TH_NN(y0);
  TH_OK(tt_backward(y0, gy, false));
  tt_tensor *gx0 = x->grad, *gw0 = w->grad, *gb0 = b->grad;
  x->grad = w->grad = b->grad = NULL;
  tt_tensor *y1 = tt_group_norm_silu(x, 32, w, b, 1e-6f);
  TH_NN(y1);
  th_assert_close("group_norm_silu vs group_norm + silu", y1, y0, 1e-5);
  TH_OK(tt_backward(y1, gy, false));
  th_assert_close("group_norm_silu gx vs unfused", x->grad, gx0, 1e-4);
  th_assert_close("group_norm_silu gw vs unfused", w->grad, gw0, 1e-3);
  th_assert_close("group_norm_silu gb vs unfused", b->grad, gb0, 1e-3);
  tt_tensor *t[] = {x, w, b, gy, h, y0, y1, gx0, gw0, gb0};
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) tt_tensor_unref(t[i]);
}
END_TEST

START_TEST(test_group_norm_silu_errors) {
  tt_tensor *x = th_randn(1, TT_DIMS(2, 30, 4, 4), 1.0f);
  ck_assert_ptr_null(tt_group_norm_silu(x, 32, NULL, NULL, 1e-6f));
  ck_assert_msg(strstr(tt_error_message(), "group_norm_silu") && strstr(tt_error_message(), "30 channels") &&
                    strstr(tt_error_message(), "[2, 30, 4, 4]") && strstr(tt_error_message(), "32 groups"),
                "message: %s", tt_error_message());
  tt_tensor *b = th_randn(2, TT_DIMS(31), 1.0f);
  ck_assert_ptr_null(tt_group_norm_silu(x, 5, NULL, b, 1e-6f));
  ck_assert_msg(strstr(tt_error_message(), "bias") && strstr(tt_error_message(), "[31]") &&
                    strstr(tt_error_message(), "[30]"),
                "message: %s", tt_error_message());
  ck_assert_ptr_null(tt_group_norm_silu(x, 5, NULL, NULL, -1.0f));
  ck_assert_msg(strstr(tt_error_message(), "eps"), "message: %s", tt_error_message());
  tt_tensor_unref(x); tt_tensor_unref(b);
}
END_TEST

/* ---- layer norm ---- */

static double *ref_layer_norm(const tt_tensor *x, const tt_tensor *w, const tt_tensor *b, double eps) {
  int64_t E = x->shape[x->ndim - 1], N = tt_tensor_numel(x) / E;
  const float *xs = tt_f32(x);
  double *y = th_ref_alloc(N * E);
  for (int64_t n = 0; n < N; n++) {
    double mu, var;
    ref_moments(xs + n * E, E, 0, E, 1, &mu, &var);
    double r = 1.0 / sqrt(var + eps);
    for (int64_t e = 0; e < E; e++)
      y[n * E + e] = (xs[n * E + e] - mu) * r * (w ? tt_f32(w)[e] : 1.0) + (b ? tt_f32(b)[e] : 0.0);
  }
  return y;
}

static tt_tensor *f_layer_norm(tt_tensor *const *in, void *ud) { return tt_layer_norm(in[0], in[1], in[2], 1e-5f); }

START_TEST(test_layer_norm_values_and_grads) {
  struct { int nd; int64_t sh[3]; bool w, b; } cases[] = {
      {3, {3, 5, 7}, true, true}, {2, {4, 33}, false, false}, {1, {9}, true, false},
      {2, {64, 1024}, true, true},   /* GPT width: the parallel path with per-thread sums */
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    int64_t E = cases[k].sh[cases[k].nd - 1];
    tt_tensor *x = th_leaf(200 + k, cases[k].nd, cases[k].sh, 2.0f);
    for (int64_t i = 0; i < tt_tensor_numel(x); i++) tt_f32(x)[i] -= 0.7f;
    tt_tensor *w = cases[k].w ? th_leaf(210 + k, TT_DIMS(E), 1.0f) : NULL;
    tt_tensor *b = cases[k].b ? th_leaf(220 + k, TT_DIMS(E), 1.0f) : NULL;
    tt_tensor *y = tt_layer_norm(x, w, b, 1e-5f);
    TH_NN(y);
    double *ref = ref_layer_norm(x, w, b, 1e-5);
    char name[64];
    snprintf(name, sizeof name, "layer_norm case %zu", k);
    th_assert_ref(name, y, ref, 2e-6, 2e-6);
    free(ref);
    tt_tensor *in[3] = {x, w, b};
    snprintf(name, sizeof name, "layer_norm grad case %zu", k);
    th_gradcheck(name, f_layer_norm, 3, in, NULL, 1e-2, 3e-3, 1e-2, k == 3 ? 24 : 64);
    tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b); tt_tensor_unref(y);
  }
  /* a strided input (a transposed view) normalises the same as its copy */
  tt_tensor *a = th_randn(230, TT_DIMS(6, 5), 1.0f);
  tt_tensor *at = tt_transpose(a, 0, 1), *ac = tt_contiguous(at);
  tt_tensor *y1 = tt_layer_norm(at, NULL, NULL, 1e-5f), *y2 = tt_layer_norm(ac, NULL, NULL, 1e-5f);
  th_assert_close("layer_norm strided", y1, y2, 0);
  tt_tensor *w = th_randn(231, TT_DIMS(6), 1.0f);
  ck_assert_ptr_null(tt_layer_norm(a, w, NULL, 1e-5f));
  ck_assert_msg(strstr(tt_error_message(), "layer_norm: weight has shape [6], expected [5]") &&
                    strstr(tt_error_message(), "[6, 5]"),
                "message: %s", tt_error_message());
  tt_tensor_unref(a); tt_tensor_unref(at); tt_tensor_unref(ac); tt_tensor_unref(y1); tt_tensor_unref(y2);
  tt_tensor_unref(w);
}
END_TEST

/* ---- batch norm ---- */

/* Per channel of x [B, C, ...]: mean and biased variance. */
static void ref_bn_stats(const tt_tensor *x, double *mean, double *var) {
  int64_t B = x->shape[0], C = x->shape[1], S = tt_tensor_numel(x) / (B * C);
  for (int64_t c = 0; c < C; c++) ref_moments(tt_f32(x) + c * S, B * S, C * S, S, B, &mean[c], &var[c]);
}

static double *ref_bn_apply(const tt_tensor *x, const double *mean, const double *var, const tt_tensor *w,
                            const tt_tensor *b, double eps) {
  int64_t B = x->shape[0], C = x->shape[1], S = tt_tensor_numel(x) / (B * C);
  double *y = th_ref_alloc(B * C * S);
  for (int64_t i = 0; i < B * C * S; i++) {
    int64_t c = (i / S) % C;
    y[i] = (tt_f32(x)[i] - mean[c]) / sqrt(var[c] + eps) * (w ? tt_f32(w)[c] : 1.0) + (b ? tt_f32(b)[c] : 0.0);
  }
  return y;
}

START_TEST(test_batch_norm_training_and_running_stats) {
  struct { int nd; int64_t sh[4]; } cases[] = {{4, {4, 3, 5, 2}}, {2, {7, 5}}, {3, {2, 6, 9}}, {4, {8, 16, 24, 20}}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    int64_t C = cases[k].sh[1];
    tt_tensor *x = th_randn(300 + k, cases[k].nd, cases[k].sh, 2.0f);
    int64_t count = tt_tensor_numel(x) / C;
    for (int64_t i = 0; i < tt_tensor_numel(x); i++) tt_f32(x)[i] += 0.5f;
    tt_tensor *w = th_randn(310 + k, TT_DIMS(C), 1.0f), *b = th_randn(320 + k, TT_DIMS(C), 1.0f);
    tt_tensor *rm = th_randn(330 + k, TT_DIMS(C), 1.0f), *rv = th_uniform(340 + k, TT_DIMS(C), 0.5f, 2.0f);
    double *rm0 = th_ref_alloc(C), *rv0 = th_ref_alloc(C), *mean = th_ref_alloc(C), *var = th_ref_alloc(C);
    for (int64_t c = 0; c < C; c++) {
      rm0[c] = tt_f32(rm)[c];
      rv0[c] = tt_f32(rv)[c];
    }
    tt_tensor *y = tt_batch_norm(x, w, b, rm, rv, true, 0.1f, 1e-5f);
    TH_NN(y);
    ref_bn_stats(x, mean, var);
    double *ref = ref_bn_apply(x, mean, var, w, b, 1e-5);
    char name[80];
    snprintf(name, sizeof name, "batch_norm training case %zu", k);
    th_assert_ref(name, y, ref, 3e-6, 3e-6);
    /* running stats: momentum 0.1, running_var takes the unbiased variance */
    double *want_m = th_ref_alloc(C), *want_v = th_ref_alloc(C);
    for (int64_t c = 0; c < C; c++) {
      want_m[c] = 0.9 * rm0[c] + 0.1 * mean[c];
      want_v[c] = 0.9 * rv0[c] + 0.1 * var[c] * (double)count / (double)(count - 1);
    }
    snprintf(name, sizeof name, "batch_norm running_mean case %zu", k);
    th_assert_ref(name, rm, want_m, 1e-6, 1e-6);
    snprintf(name, sizeof name, "batch_norm running_var case %zu", k);
    th_assert_ref(name, rv, want_v, 1e-6, 1e-6);
    /* and it is not the biased one: the difference is visible for small N */
    if (count < 20) {
      double biased = 0.9 * rv0[0] + 0.1 * var[0];
      ck_assert_msg(fabs(tt_f32(rv)[0] - biased) > 1e-4, "running_var looks biased: %g", (double)tt_f32(rv)[0]);
    }
    /* eval mode with the updated statistics */
    tt_tensor *ye = tt_batch_norm(x, w, b, rm, rv, false, 0.1f, 1e-5f);
    TH_NN(ye);
    for (int64_t c = 0; c < C; c++) {
      mean[c] = tt_f32(rm)[c];
      var[c] = tt_f32(rv)[c];
    }
    double *refe = ref_bn_apply(x, mean, var, w, b, 1e-5);
    snprintf(name, sizeof name, "batch_norm eval case %zu", k);
    th_assert_ref(name, ye, refe, 3e-6, 3e-6);
    for (int64_t c = 0; c < C; c++)   /* eval leaves the running statistics alone */
      ck_assert_double_eq(tt_f32(rm)[c], mean[c]);
    free(ref); free(refe); free(rm0); free(rv0); free(mean); free(var); free(want_m); free(want_v);
    tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b); tt_tensor_unref(rm); tt_tensor_unref(rv);
    tt_tensor_unref(y); tt_tensor_unref(ye);
  }
}
END_TEST

typedef struct { bool training; tt_tensor *rm, *rv; } bn_case;
static tt_tensor *f_batch_norm(tt_tensor *const *in, void *ud) {
  bn_case *c = ud;
  return tt_batch_norm(in[0], in[1], in[2], c->rm, c->rv, c->training, 0.1f, 1e-5f);
}

START_TEST(test_batch_norm_grads) {
  struct { int nd; int64_t sh[4]; bool w, b; } cases[] = {
      {4, {3, 4, 3, 5}, true, true}, {2, {6, 5}, true, false}, {3, {2, 3, 7}, false, true},
      {4, {4, 8, 10, 11}, true, true}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    int64_t C = cases[k].sh[1];
    tt_tensor *x = th_leaf(400 + k, cases[k].nd, cases[k].sh, 1.0f);
    tt_tensor *w = cases[k].w ? th_leaf(410 + k, TT_DIMS(C), 1.0f) : NULL;
    tt_tensor *b = cases[k].b ? th_leaf(420 + k, TT_DIMS(C), 1.0f) : NULL;
    tt_tensor *rm = th_randn(430 + k, TT_DIMS(C), 0.5f), *rv = th_uniform(440 + k, TT_DIMS(C), 0.5f, 2.0f);
    tt_tensor *in[3] = {x, w, b};
    int samples = k == 3 ? 24 : 64;
    /* training (running stats updated on every evaluation: they must not matter) */
    bn_case tc = {true, rm, rv};
    char name[64];
    snprintf(name, sizeof name, "batch_norm train grad case %zu", k);
    th_gradcheck(name, f_batch_norm, 3, in, &tc, 1e-2, 3e-3, 1e-2, samples);
    bn_case tn = {true, NULL, NULL};
    snprintf(name, sizeof name, "batch_norm train grad (no running) case %zu", k);
    th_gradcheck(name, f_batch_norm, 3, in, &tn, 1e-2, 3e-3, 1e-2, samples);
    bn_case ec = {false, rm, rv};
    snprintf(name, sizeof name, "batch_norm eval grad case %zu", k);
    th_gradcheck(name, f_batch_norm, 3, in, &ec, 1e-2, 3e-3, 1e-2, samples);
    tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b); tt_tensor_unref(rm); tt_tensor_unref(rv);
  }
}
END_TEST

START_TEST(test_batch_norm_errors) {
  tt_tensor *x = th_randn(1, TT_DIMS(1, 4, 1, 1), 1.0f);
  ck_assert_ptr_null(tt_batch_norm(x, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f));
  ck_assert_msg(strstr(tt_error_message(), "more than 1 value") && strstr(tt_error_message(), "[1, 4, 1, 1]"),
                "message: %s", tt_error_message());
  tt_tensor *x2 = th_randn(2, TT_DIMS(2, 4, 3, 3), 1.0f);
  ck_assert_ptr_null(tt_batch_norm(x2, NULL, NULL, NULL, NULL, false, 0.1f, 1e-5f));
  ck_assert_msg(strstr(tt_error_message(), "eval mode needs"), "message: %s", tt_error_message());
  tt_tensor *rm = th_randn(3, TT_DIMS(5), 1.0f), *rv = th_uniform(4, TT_DIMS(4), 0.5f, 1.0f);
  ck_assert_ptr_null(tt_batch_norm(x2, NULL, NULL, rm, rv, true, 0.1f, 1e-5f));
  ck_assert_msg(strstr(tt_error_message(), "running_mean") && strstr(tt_error_message(), "[5]") &&
                    strstr(tt_error_message(), "[4]"),
                "message: %s", tt_error_message());
  tt_tensor_unref(x); tt_tensor_unref(x2); tt_tensor_unref(rm); tt_tensor_unref(rv);
}
END_TEST

/* ---- batch norm + LeakyReLU ---- */

typedef struct { bool training; tt_tensor *rm, *rv; float slope; } bnl_case;
static tt_tensor *f_batch_norm_lrelu(tt_tensor *const *in, void *ud) {
  bnl_case *c = ud;
  return tt_batch_norm_leaky_relu(in[0], in[1], in[2], c->rm, c->rv, c->training, 0.1f, 1e-5f, c->slope);
}

/* Values against a double reference, train (with the running statistics) and eval. */
START_TEST(test_batch_norm_lrelu_values) {
  struct { int nd; int64_t sh[4]; bool w, b; float slope; } cases[] = {
      {4, {4, 3, 5, 2}, true, true, 0.2f}, {2, {7, 5}, false, true, 0.01f}, {3, {2, 6, 9}, true, false, 0.2f},
      {4, {8, 16, 24, 20}, true, true, 0.2f}};   /* the last one big enough for the parallel path */
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    int64_t C = cases[k].sh[1];
    tt_tensor *x = th_randn(600 + k, cases[k].nd, cases[k].sh, 2.0f);
    int64_t n = tt_tensor_numel(x), count = n / C;
    tt_tensor *w = cases[k].w ? th_randn(610 + k, TT_DIMS(C), 1.0f) : NULL;
    tt_tensor *b = cases[k].b ? th_randn(620 + k, TT_DIMS(C), 1.0f) : NULL;
    tt_tensor *rm = th_randn(630 + k, TT_DIMS(C), 1.0f), *rv = th_uniform(640 + k, TT_DIMS(C), 0.5f, 2.0f);
    double *mean = th_ref_alloc(C), *var = th_ref_alloc(C), *want_m = th_ref_alloc(C), *want_v = th_ref_alloc(C);
    for (int64_t c = 0; c < C; c++) want_m[c] = tt_f32(rm)[c], want_v[c] = tt_f32(rv)[c];
    tt_tensor *y = tt_batch_norm_leaky_relu(x, w, b, rm, rv, true, 0.1f, 1e-5f, cases[k].slope);
    TH_NN(y);
    ref_bn_stats(x, mean, var);
    double *ref = ref_bn_apply(x, mean, var, w, b, 1e-5);
    for (int64_t i = 0; i < n; i++) ref[i] = ref[i] > 0 ? ref[i] : cases[k].slope * ref[i];
    char name[80];
    snprintf(name, sizeof name, "batch_norm_leaky_relu training case %zu", k);
    th_assert_ref(name, y, ref, 3e-6, 3e-6);
    for (int64_t c = 0; c < C; c++) {
      want_m[c] = 0.9 * want_m[c] + 0.1 * mean[c];
      want_v[c] = 0.9 * want_v[c] + 0.1 * var[c] * (double)count / (double)(count - 1);
    }
    snprintf(name, sizeof name, "batch_norm_leaky_relu running_mean case %zu", k);
    th_assert_ref(name, rm, want_m, 1e-6, 1e-6);
    snprintf(name, sizeof name, "batch_norm_leaky_relu running_var case %zu", k);
    th_assert_ref(name, rv, want_v, 1e-6, 1e-6);
    tt_tensor *ye = tt_batch_norm_leaky_relu(x, w, b, rm, rv, false, 0.1f, 1e-5f, cases[k].slope);
    TH_NN(ye);
    for (int64_t c = 0; c < C; c++) mean[c] = tt_f32(rm)[c], var[c] = tt_f32(rv)[c];
    double *refe = ref_bn_apply(x, mean, var, w, b, 1e-5);
    for (int64_t i = 0; i < n; i++) refe[i] = refe[i] > 0 ? refe[i] : cases[k].slope * refe[i];
    snprintf(name, sizeof name, "batch_norm_leaky_relu eval case %zu", k);
    th_assert_ref(name, ye, refe, 3e-6, 3e-6);
    for (int64_t c = 0; c < C; c++) ck_assert_double_eq(tt_f32(rm)[c], mean[c]);   /* eval leaves them */
    free(ref); free(refe); free(mean); free(var); free(want_m); free(want_v);
    tt_tensor *t[] = {x, w, b, rm, rv, y, ye};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) tt_tensor_unref(t[i]);
  }
}
END_TEST

/* Central differences through the kink of LeakyReLU are wrong wherever a step
 * of eps moves h across 0: a weight's step moves the h of a whole channel
 * (440 values in the large case). The inputs are fixed (seeded) and chosen so
 * that no sampled element lies that close, so a wrong gradient is what fails. */
START_TEST(test_batch_norm_lrelu_grads) {
  struct { int nd; int64_t sh[4]; bool w, b; uint64_t seed; } cases[] = {
      {4, {3, 4, 3, 5}, true, true, 700}, {2, {6, 5}, true, false, 710}, {3, {2, 3, 7}, false, true, 720},
      {4, {4, 8, 10, 11}, true, true, 780}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    int64_t C = cases[k].sh[1];
    uint64_t seed = cases[k].seed;
    tt_tensor *x = th_leaf(seed, cases[k].nd, cases[k].sh, 1.0f);
    tt_tensor *w = cases[k].w ? th_leaf(seed + 1, TT_DIMS(C), 1.0f) : NULL;
    tt_tensor *b = cases[k].b ? th_leaf(seed + 2, TT_DIMS(C), 1.0f) : NULL;
    tt_tensor *rm = th_randn(seed + 3, TT_DIMS(C), 0.5f), *rv = th_uniform(seed + 4, TT_DIMS(C), 0.5f, 2.0f);
    tt_tensor *in[3] = {x, w, b};
    int samples = k == 3 ? 24 : 64;
    bnl_case tc = {true, rm, rv, 0.2f}, tn = {true, NULL, NULL, 0.2f}, ec = {false, rm, rv, 0.2f};
    char name[64];
    snprintf(name, sizeof name, "batch_norm_leaky_relu train grad case %zu", k);
    th_gradcheck(name, f_batch_norm_lrelu, 3, in, &tc, 1e-3, 3e-3, 1e-2, samples);
    snprintf(name, sizeof name, "batch_norm_leaky_relu train grad (no running) case %zu", k);
    th_gradcheck(name, f_batch_norm_lrelu, 3, in, &tn, 1e-3, 3e-3, 1e-2, samples);
    snprintf(name, sizeof name, "batch_norm_leaky_relu eval grad case %zu", k);
    th_gradcheck(name, f_batch_norm_lrelu, 3, in, &ec, 1e-3, 3e-3, 1e-2, samples);
    tt_tensor *t[] = {x, w, b, rm, rv};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) tt_tensor_unref(t[i]);
  }
}
END_TEST

/* The fused op against batch_norm then leaky_relu, which the PatchGAN ran
 * before: outputs and running statistics bit for bit, the three gradients
 * within 1e-6 (both sum in double; only the order of float rounding differs),
 * train and eval, on the parallel path. */
START_TEST(test_batch_norm_lrelu_matches_unfused) {
  for (int training = 1; training >= 0; training--) {
    tt_tensor *x = th_leaf(800, TT_DIMS(4, 32, 18, 14), 1.5f), *w = th_leaf(801, TT_DIMS(32), 1.0f),
              *b = th_leaf(802, TT_DIMS(32), 1.0f);
    tt_tensor *gy = th_randn(803, TT_DIMS(4, 32, 18, 14), 1.0f);
    tt_tensor *rm0 = th_randn(804, TT_DIMS(32), 0.5f), *rv0 = th_uniform(805, TT_DIMS(32), 0.5f, 2.0f);
    tt_tensor *rm1 = tt_clone(rm0), *rv1 = tt_clone(rv0);
    tt_tensor *h = tt_batch_norm(x, w, b, rm0, rv0, training, 0.1f, 1e-5f), *y0 = h ? tt_leaky_relu(h, 0.2f) : NULL;
    TH_NN(y0);
    TH_OK(tt_backward(y0, gy, false));
    tt_tensor *gx0 = x->grad, *gw0 = w->grad, *gb0 = b->grad;
    x->grad = w->grad = b->grad = NULL;
    tt_tensor *y1 = tt_batch_norm_leaky_relu(x, w, b, rm1, rv1, training, 0.1f, 1e-5f, 0.2f);
    TH_NN(y1);
    ck_assert_double_eq(th_max_abs_diff(y1, y0), 0.0);
    ck_assert_double_eq(th_max_abs_diff(rm1, rm0), 0.0);
    ck_assert_double_eq(th_max_abs_diff(rv1, rv0), 0.0);
    TH_OK(tt_backward(y1, gy, false));
    th_assert_close("batch_norm_leaky_relu gx vs unfused", x->grad, gx0, 1e-6);
    th_assert_close("batch_norm_leaky_relu gw vs unfused", w->grad, gw0, 1e-6 * 4 * 18 * 14);
    th_assert_close("batch_norm_leaky_relu gb vs unfused", b->grad, gb0, 1e-6 * 4 * 18 * 14);
    tt_tensor *t[] = {x, w, b, gy, rm0, rv0, rm1, rv1, h, y0, y1, gx0, gw0, gb0};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) tt_tensor_unref(t[i]);
  }
  ck_assert_int_eq(tt_autograd_live_nodes(), 0);
}
END_TEST

START_TEST(test_batch_norm_lrelu_errors) {
  tt_tensor *x = th_randn(1, TT_DIMS(1, 4, 1, 1), 1.0f);
  ck_assert_ptr_null(tt_batch_norm_leaky_relu(x, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f, 0.2f));
  ck_assert_msg(strstr(tt_error_message(), "batch_norm_leaky_relu") && strstr(tt_error_message(), "more than 1 value") &&
                    strstr(tt_error_message(), "[1, 4, 1, 1]"),
                "message: %s", tt_error_message());
  tt_tensor *x2 = th_randn(2, TT_DIMS(2, 4, 3, 3), 1.0f), *w = th_randn(3, TT_DIMS(5), 1.0f);
  ck_assert_ptr_null(tt_batch_norm_leaky_relu(x2, w, NULL, NULL, NULL, true, 0.1f, 1e-5f, 0.2f));
  ck_assert_msg(strstr(tt_error_message(), "weight") && strstr(tt_error_message(), "[5]") &&
                    strstr(tt_error_message(), "[4]"),
                "message: %s", tt_error_message());
  ck_assert_ptr_null(tt_batch_norm_leaky_relu(x2, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f, NAN));
  ck_assert_msg(strstr(tt_error_message(), "slope"), "message: %s", tt_error_message());
  ck_assert_ptr_null(tt_batch_norm_leaky_relu(x2, NULL, NULL, NULL, NULL, false, 0.1f, 1e-5f, 0.2f));
  ck_assert_msg(strstr(tt_error_message(), "eval mode needs"), "message: %s", tt_error_message());
  tt_tensor_unref(x); tt_tensor_unref(x2); tt_tensor_unref(w);
}
END_TEST

/* ---- recompute = norm_act ---- */

/* x -> group_norm_silu -> conv -> batch_norm_leaky_relu -> conv, backward with gy;
 * the seven gradients into g[], and in *held the bytes the forward leaves in use
 * (the graph's saved tensors and y) once every handle but y's is dropped. */
static void norm_act_chain(bool recompute, tt_tensor *const *p, tt_tensor *gy, size_t *held, tt_tensor **g) {
  unsigned prev = tt_recompute_set(recompute ? TT_RECOMPUTE_NORM_ACT : 0);
  tt_conv2d_params cp = tt_conv2d_params_make(1, 1);
  for (int i = 0; i < 7; i++) tt_zero_grad(p[i]);
  size_t before = tt_memory_in_use(TT_CPU);
  tt_tensor *h1 = tt_group_norm_silu(p[0], 8, p[1], p[2], 1e-6f);        // [2, 32, 12, 10]
  tt_tensor *c1 = h1 ? tt_conv2d(h1, p[3], NULL, &cp) : NULL;            // -> [2, 16, 12, 10]
  tt_tensor *h2 = c1 ? tt_batch_norm_leaky_relu(c1, p[4], p[5], NULL, NULL, true, 0.1f, 1e-5f, 0.2f) : NULL;
  tt_tensor *y = h2 ? tt_conv2d(h2, p[6], NULL, &cp) : NULL;             // -> [2, 8, 12, 10]
  TH_NN(y);
  tt_tensor_unref(h1);
  tt_tensor_unref(c1);
  tt_tensor_unref(h2);
  *held = tt_memory_in_use(TT_CPU) - before;
  tt_recompute_set(prev);   /* the backward needs no mode: the nodes know */
  TH_OK(tt_backward(y, gy, false));
  tt_tensor_unref(y);
  for (int i = 0; i < 7; i++) {
    g[i] = p[i]->grad;
    p[i]->grad = NULL;
  }
}

/* With TT_RECOMPUTE_NORM_ACT the convolutions keep no copy of the two fused
 * ops' outputs: the forward holds exactly those two tensors less, and every
 * gradient is bit for bit the one without it (the outputs are recomputed by the
 * same deterministic kernels from the same saved input and statistics). */
START_TEST(test_recompute_norm_act) {
  tt_tensor *p[7] = {th_leaf(900, TT_DIMS(2, 32, 12, 10), 1.5f), th_leaf(901, TT_DIMS(32), 1.0f),
                     th_leaf(902, TT_DIMS(32), 1.0f),          th_leaf(903, TT_DIMS(16, 32, 3, 3), 0.1f),
                     th_leaf(904, TT_DIMS(16), 1.0f),          th_leaf(905, TT_DIMS(16), 1.0f),
                     th_leaf(906, TT_DIMS(8, 16, 3, 3), 0.1f)};
  tt_tensor *gy = th_randn(907, TT_DIMS(2, 8, 12, 10), 1.0f);
  tt_tensor *g0[7], *g1[7];
  size_t held0, held1;
  norm_act_chain(false, p, gy, &held0, g0);
  norm_act_chain(true, p, gy, &held1, g1);
  const char *names[7] = {"x", "gn weight", "gn bias", "conv1 weight", "bn weight", "bn bias", "conv2 weight"};
  for (int i = 0; i < 7; i++) {
    TH_NN(g0[i]);
    TH_NN(g1[i]);
    double d = th_max_abs_diff(g1[i], g0[i]);
    ck_assert_msg(d == 0.0, "recompute=norm_act: gradient of %s differs by %g", names[i], d);
  }
  size_t outputs = sizeof(float) * (2 * 32 * 12 * 10 + 2 * 16 * 12 * 10);
  ck_assert_msg(held0 - held1 == outputs, "recompute=norm_act: the forward holds %zu bytes, %zu without it: "
                "expected %zu less", held1, held0, outputs);
  ck_assert_int_eq(tt_recompute_mode(), 0);
  for (int i = 0; i < 7; i++) {
    tt_tensor_unref(g0[i]);
    tt_tensor_unref(g1[i]);
    tt_tensor_unref(p[i]);
  }
  tt_tensor_unref(gy);
  ck_assert_int_eq(tt_autograd_live_nodes(), 0);
}
END_TEST

/* The saved statistics must be what the backward reads even after the inputs'
 * running stats change (eval snapshots them) and after the graph is freed. */
START_TEST(test_batch_norm_eval_snapshot) {
  tt_tensor *x = th_leaf(500, TT_DIMS(3, 2, 4), 1.0f);
  tt_tensor *rm = th_randn(501, TT_DIMS(2), 0.5f), *rv = th_uniform(502, TT_DIMS(2), 0.5f, 2.0f);
  tt_tensor *y = tt_batch_norm(x, NULL, NULL, rm, rv, false, 0.1f, 1e-5f);
  TH_NN(y);
  double r0 = 1.0 / sqrt(tt_f32(rv)[0] + 1e-5);
  /* a training call changes the running stats before the eval output's backward */
  tt_tensor *y2 = tt_batch_norm(x, NULL, NULL, rm, rv, true, 0.5f, 1e-5f);
  tt_tensor *s = tt_sum(y);
  TH_OK(tt_backward(s, NULL, false));
  ck_assert_double_eq_tol(tt_f32(x->grad)[0], r0, 1e-6);
  tt_tensor_unref(s); tt_tensor_unref(y); tt_tensor_unref(y2); tt_tensor_unref(x);
  tt_tensor_unref(rm); tt_tensor_unref(rv);
  ck_assert_int_eq(tt_autograd_live_nodes(), 0);
}
END_TEST

/* Against PyTorch's own modules (tests/data/gen_norm.py): outputs, every
 * gradient, and BatchNorm2d's running statistics after a training call. */
static void check_grads(const char *tag, const torch_ref *r, tt_tensor *y, tt_tensor *const *in,
                        const char *const *gnames) {
  char name[64];
  snprintf(name, sizeof name, "%s.gy", tag);
  TH_OK(tt_backward(y, torchref_get(r, name), false));
  for (int i = 0; i < 3; i++) {
    if (!in[i]) continue;
    snprintf(name, sizeof name, "%s.%s", tag, gnames[i]);
    char what[80];
    snprintf(what, sizeof what, "%s vs PyTorch", name);
    th_assert_close(what, in[i]->grad, torchref_get(r, name), 2e-5);
  }
}

START_TEST(test_norm_vs_pytorch) {
  torch_ref *r = torchref_load();
  const char *gn3[3] = {"gx", "gw", "gb"};
  struct { const char *tag; int groups; } gns[] = {{"gn", 3}, {"gn32", 32}};
  for (int k = 0; k < 2; k++) {
    char name[64];
    const char *tag = gns[k].tag;
    snprintf(name, sizeof name, "%s.x", tag);
    tt_tensor *x = torchref_leaf(r, name);
    snprintf(name, sizeof name, "%s.w", tag);
    tt_tensor *w = torchref_leaf(r, name);
    snprintf(name, sizeof name, "%s.b", tag);
    tt_tensor *b = torchref_leaf(r, name);
    tt_tensor *y = tt_group_norm(x, gns[k].groups, w, b, 1e-6f);
    TH_NN(y);
    snprintf(name, sizeof name, "%s.y", tag);
    th_assert_close("group_norm vs PyTorch", y, torchref_get(r, name), 1e-5);
    tt_tensor *in[3] = {x, w, b};
    check_grads(tag, r, y, in, gn3);
    tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b); tt_tensor_unref(y);
  }
  tt_tensor *x = torchref_leaf(r, "ln.x"), *w = torchref_leaf(r, "ln.w"), *b = torchref_leaf(r, "ln.b");
  tt_tensor *y = tt_layer_norm(x, w, b, 1e-5f);
  TH_NN(y);
  th_assert_close("layer_norm vs PyTorch", y, torchref_get(r, "ln.y"), 1e-5);
  tt_tensor *lin[3] = {x, w, b};
  check_grads("ln", r, y, lin, gn3);
  tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b); tt_tensor_unref(y);
  /* BatchNorm2d: a training call (batch statistics, running stats updated), then eval */
  x = torchref_leaf(r, "bn.x");
  w = torchref_leaf(r, "bn.w");
  b = torchref_leaf(r, "bn.b");
  tt_tensor *rm = tt_clone(torchref_get(r, "bn.rm")), *rv = tt_clone(torchref_get(r, "bn.rv"));
  y = tt_batch_norm(x, w, b, rm, rv, true, 0.1f, 1e-5f);
  TH_NN(y);
  th_assert_close("batch_norm train vs PyTorch", y, torchref_get(r, "bn.train.y"), 1e-5);
  th_assert_close("batch_norm running_mean vs PyTorch", rm, torchref_get(r, "bn.train.rm_after"), 1e-6);
  th_assert_close("batch_norm running_var vs PyTorch", rv, torchref_get(r, "bn.train.rv_after"), 1e-6);
  TH_OK(tt_backward(y, torchref_get(r, "bn.gy"), false));
  th_assert_close("batch_norm train gx vs PyTorch", x->grad, torchref_get(r, "bn.train.gx"), 2e-5);
  th_assert_close("batch_norm train gw vs PyTorch", w->grad, torchref_get(r, "bn.train.gw"), 2e-5);
  th_assert_close("batch_norm train gb vs PyTorch", b->grad, torchref_get(r, "bn.train.gb"), 2e-5);
  tt_zero_grad(x); tt_zero_grad(w); tt_zero_grad(b);
  tt_tensor_unref(y);
  y = tt_batch_norm(x, w, b, rm, rv, false, 0.1f, 1e-5f);
  TH_NN(y);
  th_assert_close("batch_norm eval vs PyTorch", y, torchref_get(r, "bn.eval.y"), 1e-5);
  TH_OK(tt_backward(y, torchref_get(r, "bn.gy"), false));
  th_assert_close("batch_norm eval gx vs PyTorch", x->grad, torchref_get(r, "bn.eval.gx"), 2e-5);
  th_assert_close("batch_norm eval gw vs PyTorch", w->grad, torchref_get(r, "bn.eval.gw"), 2e-5);
  th_assert_close("batch_norm eval gb vs PyTorch", b->grad, torchref_get(r, "bn.eval.gb"), 2e-5);
  tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b); tt_tensor_unref(y);
  tt_tensor_unref(rm); tt_tensor_unref(rv);
  torchref_free(r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("ops_norm");
  TCase *tc = tcase_create("norm");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_group_norm_values);
  tcase_add_test(tc, test_group_norm_grads);
  tcase_add_test(tc, test_group_norm_errors);
  tcase_add_test(tc, test_group_norm_silu_values);
  tcase_add_test(tc, test_group_norm_silu_grads);
  tcase_add_test(tc, test_group_norm_silu_matches_unfused);
  tcase_add_test(tc, test_group_norm_silu_errors);
  tcase_add_test(tc, test_layer_norm_values_and_grads);
  tcase_add_test(tc, test_batch_norm_training_and_running_stats);
  tcase_add_test(tc, test_batch_norm_grads);
  tcase_add_test(tc, test_batch_norm_errors);
  tcase_add_test(tc, test_batch_norm_eval_snapshot);
  tcase_add_test(tc, test_batch_norm_lrelu_values);
  tcase_add_test(tc, test_batch_norm_lrelu_grads);
  tcase_add_test(tc, test_batch_norm_lrelu_matches_unfused);
  tcase_add_test(tc, test_batch_norm_lrelu_errors);
  tcase_add_test(tc, test_recompute_norm_act);
  tcase_add_test(tc, test_norm_vs_pytorch);
  suite_add_tcase(s, tc);
  return th_run(s);
}

/* check_module.c — parameter sets (declare, find, materialise, bind, numel)
 * and the linear layer built on them. */
#include "config.h"
#include <math.h>
#include <string.h>
#include "testhelp.h"
#include "taming/module.h"

static void assert_error_mentions(const char *what, const char *needle) {
  ck_assert_msg(strstr(tt_error_message(), needle) != NULL, "%s: message '%s' does not mention '%s'", what,
                tt_error_message(), needle);
}

START_TEST(test_declare_and_find) {
  tt_paramset ps;
  tt_paramset_init(&ps);
  tt_param *w = tt_param_declare(&ps, TT_F32, TT_DIMS(3, 4), TT_PARAM_TRAINABLE, tt_init_zeros(), "blk.%d.weight", 2);
  TH_NN(w);
  ck_assert_str_eq(w->name, "blk.2.weight");
  ck_assert_int_eq(w->ndim, 2);
  ck_assert_int_eq(w->shape[1], 4);
  ck_assert_ptr_null(w->t);
  ck_assert_ptr_null(tt_param_declare(&ps, TT_F32, TT_DIMS(3), 0, tt_init_zeros(), "blk.2.weight"));
  assert_error_mentions("duplicate", "'blk.2.weight'");
  assert_error_mentions("duplicate", "twice");
  ck_assert_int_eq(ps.n, 1);
  ck_assert_ptr_null(tt_param_declare(&ps, TT_F32, TT_DIMS(3, -1), 0, tt_init_zeros(), "neg"));
  assert_error_mentions("negative dim", "negative");
  /* many declarations (the items array grows) stay findable */
  for (int i = 0; i < 100; i++)
    TH_NN(tt_param_declare(&ps, TT_F32, TT_DIMS(i + 1), 0, tt_init_const(i), "p%d", i));
  ck_assert_ptr_eq(tt_paramset_find(&ps, "blk.2.weight"), w);
  tt_param *p57 = tt_paramset_find(&ps, "p57");
  TH_NN(p57);
  ck_assert_int_eq(p57->shape[0], 58);
  ck_assert_ptr_null(tt_paramset_find(&ps, "blk.2.bias"));
  ck_assert_ptr_null(tt_paramset_find(&ps, "p"));
  tt_paramset_free(&ps);
  ck_assert_int_eq(ps.n, 0);
}
END_TEST

static bool same_values(const tt_tensor *a, const tt_tensor *b) {
  return tt_tensor_same_shape(a, b) && memcmp(tt_tensor_data(a), tt_tensor_data(b), tt_tensor_nbytes(a)) == 0;
}

START_TEST(test_materialize_deterministic) {
  /* the same (seed, name) gives the same values whatever the declaration order */
  tt_paramset a, b, c;
  tt_paramset_init(&a);
  tt_paramset_init(&b);
  tt_paramset_init(&c);
  tt_param *a_enc = tt_param_declare(&a, TT_F32, TT_DIMS(50, 7), TT_PARAM_TRAINABLE, tt_init_normal(0, 1), "enc.w");
  tt_param *a_dec = tt_param_declare(&a, TT_F32, TT_DIMS(33), TT_PARAM_TRAINABLE, tt_init_uniform(-1, 1), "dec.w");
  TH_NN(tt_param_declare(&b, TT_F32, TT_DIMS(9), TT_PARAM_TRAINABLE, tt_init_normal(0, 1), "extra"));
  tt_param *b_dec = tt_param_declare(&b, TT_F32, TT_DIMS(33), TT_PARAM_TRAINABLE, tt_init_uniform(-1, 1), "dec.w");
  tt_param *b_enc = tt_param_declare(&b, TT_F32, TT_DIMS(50, 7), TT_PARAM_TRAINABLE, tt_init_normal(0, 1), "enc.w");
  tt_param *b_enc2 = tt_param_declare(&b, TT_F32, TT_DIMS(50, 7), TT_PARAM_TRAINABLE, tt_init_normal(0, 1), "enc.w2");
  tt_param *c_enc = tt_param_declare(&c, TT_F32, TT_DIMS(50, 7), TT_PARAM_TRAINABLE, tt_init_normal(0, 1), "enc.w");
  TH_OK(tt_paramset_materialize(&a, 42, TT_CPU));
  TH_OK(tt_paramset_materialize(&b, 42, TT_CPU));
  TH_OK(tt_paramset_materialize(&c, 43, TT_CPU));
  ck_assert_msg(same_values(a_enc->t, b_enc->t), "enc.w differs between declaration orders");
  ck_assert_msg(same_values(a_dec->t, b_dec->t), "dec.w differs between declaration orders");
  ck_assert_msg(!same_values(b_enc->t, b_enc2->t), "two names drew the same values");
  ck_assert_msg(!same_values(a_enc->t, c_enc->t), "two seeds drew the same values");
  /* materialising again keeps what is there */
  tt_tensor *keep = a_enc->t;
  TH_OK(tt_paramset_materialize(&a, 7, TT_CPU));
  ck_assert_ptr_eq(a_enc->t, keep);
  ck_assert(a_enc->t->requires_grad);
  ck_assert_str_eq(a_enc->t->name, "enc.w");
  tt_paramset_free(&a);
  tt_paramset_free(&b);
  tt_paramset_free(&c);
}
END_TEST

static void moments(const tt_tensor *t, double *mean, double *var, double *lo, double *hi) {
  int64_t n = tt_tensor_numel(t);
  double s = 0, s2 = 0;
  *lo = INFINITY;
  *hi = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    double x = tt_f32(t)[i];
    s += x;
    s2 += x * x;
    *lo = fmin(*lo, x);
    *hi = fmax(*hi, x);
  }
  *mean = s / n;
  *var = s2 / n - *mean * *mean;
}

START_TEST(test_init_kinds) {
  tt_paramset ps;
  tt_paramset_init(&ps);
  const int64_t n = 200000;
  tt_param *z = tt_param_declare(&ps, TT_F32, TT_DIMS(n), TT_PARAM_TRAINABLE, tt_init_zeros(), "z");
  tt_param *k = tt_param_declare(&ps, TT_F32, TT_DIMS(17, 3), TT_PARAM_BUFFER, tt_init_const(2.5), "k");
  tt_param *u = tt_param_declare(&ps, TT_F32, TT_DIMS(n), TT_PARAM_TRAINABLE, tt_init_uniform(-0.3, 0.7), "u");
  tt_param *g = tt_param_declare(&ps, TT_F32, TT_DIMS(n), TT_PARAM_TRAINABLE, tt_init_normal(0.5, 2.0), "g");
  tt_param *c = tt_param_declare(&ps, TT_I64, 0, NULL, TT_PARAM_BUFFER, tt_init_zeros(), "count");
  TH_OK(tt_paramset_materialize(&ps, 1, TT_CPU));
  double mean, var, lo, hi;
  moments(z->t, &mean, &var, &lo, &hi);
  ck_assert(lo == 0.0 && hi == 0.0);
  moments(k->t, &mean, &var, &lo, &hi);
  ck_assert(lo == 2.5 && hi == 2.5);
  ck_assert(!k->t->requires_grad);
  ck_assert(z->t->requires_grad);
  /* uniform [-0.3, 0.7): mean 0.2, variance 1/12; the standard error of the mean is 0.00065 */
  moments(u->t, &mean, &var, &lo, &hi);
  ck_assert_msg(lo >= -0.3f && hi < 0.7f, "uniform range [%g, %g]", lo, hi);
  ck_assert_msg(lo < -0.29 && hi > 0.69, "uniform does not cover its range: [%g, %g]", lo, hi);
  ck_assert_msg(fabs(mean - 0.2) < 0.004, "uniform mean %g", mean);
  ck_assert_msg(fabs(var - 1.0 / 12) < 0.002, "uniform variance %g", var);
  /* normal(0.5, 2): standard error of the mean 0.0045 */
  moments(g->t, &mean, &var, &lo, &hi);
  ck_assert_msg(fabs(mean - 0.5) < 0.025, "normal mean %g", mean);
  ck_assert_msg(fabs(sqrt(var) - 2.0) < 0.02, "normal std %g", sqrt(var));
  ck_assert_msg(lo < 0.5 - 8 && hi > 0.5 + 8, "normal has no tails: [%g, %g]", lo, hi);
  ck_assert_int_eq(c->t->dtype, TT_I64);
  ck_assert_int_eq(c->t->ndim, 0);
  ck_assert_int_eq(tt_i64(c->t)[0], 0);
  /* a random init of an integer parameter is an error naming it */
  tt_param *bad = tt_param_declare(&ps, TT_I64, TT_DIMS(4), 0, tt_init_uniform(0, 1), "idx_table");
  TH_NN(bad);
  ck_assert_int_ne(tt_paramset_materialize(&ps, 1, TT_CPU), TT_OK);
  assert_error_mentions("i64 uniform", "'idx_table'");
  ck_assert_ptr_null(bad->t);
  tt_paramset_free(&ps);
}
END_TEST

START_TEST(test_bind) {
  tt_paramset m1, m2;
  tt_paramset_init(&m1);
  tt_paramset_init(&m2);
  tt_param *p1 = tt_param_declare(&m1, TT_F32, TT_DIMS(4, 3, 3, 3), TT_PARAM_TRAINABLE, tt_init_zeros(),
                                  "encoder.conv_in.weight");
  tt_param *p2 = tt_param_declare(&m2, TT_F32, TT_DIMS(4, 3, 3, 3), TT_PARAM_FROZEN, tt_init_zeros(),
                                  "encoder.conv_in.weight");
  /* wrong shape: the message names the key and both shapes */
  tt_tensor *wrong = th_randn(1, TT_DIMS(3, 4, 3, 3), 1.0f);
  ck_assert_int_eq(tt_param_bind(p1, wrong, "model.ckpt"), TT_ERR_INVALID);
  assert_error_mentions("shape", "model.ckpt");
  assert_error_mentions("shape", "'encoder.conv_in.weight'");
  assert_error_mentions("shape", "expected shape [4, 3, 3, 3]");
  assert_error_mentions("shape", "found [3, 4, 3, 3]");
  tt_tensor *wrong_rank = th_randn(2, TT_DIMS(4, 27), 1.0f);
  ck_assert_int_eq(tt_param_bind(p1, wrong_rank, NULL), TT_ERR_INVALID);
  assert_error_mentions("rank", "found [4, 27]");
  /* wrong dtype */
  tt_tensor *ints = tt_zeros(TT_I64, TT_DIMS(4, 3, 3, 3), TT_CPU);
  ck_assert_int_eq(tt_param_bind(p1, ints, "model.ckpt"), TT_ERR_INVALID);
  assert_error_mentions("dtype", "'encoder.conv_in.weight'");
  assert_error_mentions("dtype", "expected dtype f32, found i64");
  ck_assert_ptr_null(p1->t);
  /* one checkpoint tensor bound into two models: shared bytes, separate headers */
  tt_tensor *src = th_randn(3, TT_DIMS(4, 3, 3, 3), 1.0f);
  TH_OK(tt_param_bind(p1, src, "model.ckpt"));
  TH_OK(tt_param_bind(p2, src, "model.ckpt"));
  ck_assert_ptr_ne(p1->t, src);
  ck_assert_ptr_ne(p1->t, p2->t);
  ck_assert_ptr_eq(tt_tensor_data(p1->t), tt_tensor_data(src));
  ck_assert_ptr_eq(tt_tensor_data(p2->t), tt_tensor_data(src));
  ck_assert(p1->t->requires_grad);
  ck_assert(!p2->t->requires_grad);
  ck_assert(!src->requires_grad);
  ck_assert_str_eq(p1->t->name, "encoder.conv_in.weight");
  /* gradients land on the model's header only */
  tt_tensor *s = tt_sum(p1->t);
  TH_OK(tt_backward(s, NULL, false));
  TH_NN(p1->t->grad);
  ck_assert_ptr_null(src->grad);
  ck_assert_ptr_null(p2->t->grad);
  tt_tensor_unref(s);
  /* materialise never overwrites a bound parameter */
  TH_OK(tt_paramset_materialize(&m1, 5, TT_CPU));
  ck_assert_ptr_eq(tt_tensor_data(p1->t), tt_tensor_data(src));
  /* rebinding replaces the tensor */
  tt_tensor *src2 = th_randn(4, TT_DIMS(4, 3, 3, 3), 1.0f);
  TH_OK(tt_param_bind(p1, src2, NULL));
  ck_assert_ptr_eq(tt_tensor_data(p1->t), tt_tensor_data(src2));
  ck_assert_int_eq(tt_param_bind(p1, NULL, "model.ckpt"), TT_ERR_INVALID);
  assert_error_mentions("null", "'encoder.conv_in.weight'");
  tt_tensor_unref(wrong); tt_tensor_unref(wrong_rank); tt_tensor_unref(ints);
  tt_tensor_unref(src); tt_tensor_unref(src2);
  tt_paramset_free(&m1);
  tt_paramset_free(&m2);
}
END_TEST

START_TEST(test_numel) {
  tt_paramset ps;
  tt_paramset_init(&ps);
  TH_NN(tt_param_declare(&ps, TT_F32, TT_DIMS(4, 5), TT_PARAM_TRAINABLE, tt_init_zeros(), "w"));
  TH_NN(tt_param_declare(&ps, TT_F32, TT_DIMS(7), TT_PARAM_TRAINABLE | TT_PARAM_OPTIONAL, tt_init_zeros(), "b"));
  TH_NN(tt_param_declare(&ps, TT_F32, TT_DIMS(3), TT_PARAM_BUFFER, tt_init_zeros(), "rm"));
  TH_NN(tt_param_declare(&ps, TT_I64, 0, NULL, TT_PARAM_BUFFER | TT_PARAM_OPTIONAL, tt_init_zeros(), "nb"));
  TH_NN(tt_param_declare(&ps, TT_F32, TT_DIMS(2, 0), TT_PARAM_FROZEN, tt_init_zeros(), "empty"));
  ck_assert_int_eq(tt_paramset_numel(&ps, 0), 20 + 7 + 3 + 1 + 0);
  ck_assert_int_eq(tt_paramset_numel(&ps, TT_PARAM_TRAINABLE), 27);
  ck_assert_int_eq(tt_paramset_numel(&ps, TT_PARAM_BUFFER), 4);
  ck_assert_int_eq(tt_paramset_numel(&ps, TT_PARAM_OPTIONAL), 8);
  ck_assert_int_eq(tt_paramset_numel(&ps, TT_PARAM_BUFFER | TT_PARAM_OPTIONAL), 1);
  ck_assert_int_eq(tt_paramset_numel(&ps, TT_PARAM_FROZEN), 0);
  tt_paramset_free(&ps);
}
END_TEST

typedef struct {
  tt_linear_layer l;
} linear_ud;

/* in[0] = x, in[1] = weight, in[2] = bias (the layer's own tensors) */
static tt_tensor *f_linear_layer(tt_tensor *const *in, void *ud) {
  return tt_linear_layer_forward(&((linear_ud *)ud)->l, in[0]);
}

START_TEST(test_linear_layer) {
  tt_paramset ps;
  tt_paramset_init(&ps);
  linear_ud u;
  TH_OK(tt_linear_layer_declare(&u.l, &ps, "head", 5, 3, true));
  ck_assert_ptr_eq(tt_paramset_find(&ps, "head.weight"), u.l.weight);
  ck_assert_ptr_eq(tt_paramset_find(&ps, "head.bias"), u.l.bias);
  ck_assert_int_eq(u.l.weight->shape[0], 3);
  ck_assert_int_eq(u.l.weight->shape[1], 5);
  tt_tensor *x = th_randn(10, TT_DIMS(2, 7, 5), 1.0f);
  ck_assert_ptr_null(tt_linear_layer_forward(&u.l, x));
  assert_error_mentions("unbound", "head.weight");
  TH_OK(tt_paramset_materialize(&ps, 3, TT_CPU));
  /* PyTorch's default: uniform in +-1/sqrt(in) */
  double bound = 1 / sqrt(5.0), lo, hi, mean, var;
  moments(u.l.weight->t, &mean, &var, &lo, &hi);
  ck_assert_msg(lo >= -bound && hi <= bound && hi - lo > bound, "weight range [%g, %g]", lo, hi);
  moments(u.l.bias->t, &mean, &var, &lo, &hi);
  ck_assert_msg(lo >= -bound && hi <= bound, "bias range [%g, %g]", lo, hi);
  tt_tensor *y = tt_linear_layer_forward(&u.l, x);
  TH_NN(y);
  ck_assert_int_eq(y->ndim, 3);
  ck_assert_int_eq(y->shape[2], 3);
  double worst = 0;
  for (int r = 0; r < 14; r++)
    for (int o = 0; o < 3; o++) {
      double want = tt_f32(u.l.bias->t)[o];
      for (int i = 0; i < 5; i++) want += (double)tt_f32(x)[r * 5 + i] * tt_f32(u.l.weight->t)[o * 5 + i];
      worst = fmax(worst, fabs(tt_f32(y)[r * 3 + o] - want));
    }
  ck_assert_msg(worst < 1e-6, "linear layer forward max abs diff %.3g", worst);
  tt_tensor_set_requires_grad(x, true);
  tt_tensor *in[3] = {x, u.l.weight->t, u.l.bias->t};
  th_gradcheck("linear layer [2, 7, 5] -> 3", f_linear_layer, 3, in, &u, 1e-2, 1e-3, 1e-2, 70);
  /* without a bias; a second layer under the same prefix is refused */
  linear_ud v;
  TH_OK(tt_linear_layer_declare(&v.l, &ps, "proj", 4, 9, false));
  ck_assert_ptr_null(v.l.bias);
  ck_assert_ptr_null(tt_paramset_find(&ps, "proj.bias"));
  linear_ud dup;
  ck_assert_int_ne(tt_linear_layer_declare(&dup.l, &ps, "proj", 4, 9, false), TT_OK);
  assert_error_mentions("duplicate layer", "'proj.weight'");
  TH_OK(tt_paramset_materialize(&ps, 3, TT_CPU));
  tt_tensor *x2 = th_randn(11, TT_DIMS(3, 4), 1.0f);
  tt_tensor_set_requires_grad(x2, true);
  tt_tensor *in2[3] = {x2, v.l.weight->t, NULL};
  th_gradcheck("linear layer no bias [3, 4] -> 9", f_linear_layer, 3, in2, &v, 1e-2, 1e-3, 1e-2, 36);
  ck_assert_int_eq(tt_paramset_numel(&ps, TT_PARAM_TRAINABLE), 15 + 3 + 36);
  tt_tensor_unref(y); tt_tensor_unref(x); tt_tensor_unref(x2);
  tt_paramset_free(&ps);
}
END_TEST

int main(void) {
  Suite *s = suite_create("module");
  TCase *tc = tcase_create("paramset");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_declare_and_find);
  tcase_add_test(tc, test_materialize_deterministic);
  tcase_add_test(tc, test_init_kinds);
  tcase_add_test(tc, test_bind);
  tcase_add_test(tc, test_numel);
  tcase_add_test(tc, test_linear_layer);
  suite_add_tcase(s, tc);
  return th_run(s);
}

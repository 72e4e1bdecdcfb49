/* check_ops_core.c — forward values and finite-difference gradients of the core
 * families: elementwise, shape, reduce, gemm. */
#include "config.h"
#include <math.h>
#include <string.h>
#include "testhelp.h"
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct { tt_unary_op op; float a, b; } unary_case;
static tt_tensor *f_unary(tt_tensor *const *in, void *ud) {
  unary_case *c = ud;
  return tt_unary(c->op, c->a, c->b, in[0]);
}

START_TEST(test_unary_grads) {
  unary_case cases[] = {
      {TT_UNARY_NEG, 0, 0}, {TT_UNARY_ABS, 0, 0}, {TT_UNARY_EXP, 0, 0}, {TT_UNARY_SQUARE, 0, 0},
      {TT_UNARY_RELU, 0, 0}, {TT_UNARY_SILU, 0, 0}, {TT_UNARY_GELU, 0, 0}, {TT_UNARY_SIGMOID, 0, 0},
      {TT_UNARY_TANH, 0, 0}, {TT_UNARY_SOFTPLUS, 0, 0}, {TT_UNARY_LEAKY_RELU, 0.2f, 0},
      {TT_UNARY_CLAMP, -0.5f, 0.5f}, {TT_UNARY_AFFINE, 1.5f, -0.3f}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    tt_tensor *x = th_leaf(10 + k, TT_DIMS(3, 7), 1.0f);
    /* keep samples away from kinks */
    for (int i = 0; i < 21; i++) {
      float *p = &tt_f32(x)[i];
      if (fabsf(*p) < 0.05f) *p = 0.3f;
      if (fabsf(fabsf(*p) - 0.5f) < 0.05f) *p = 0.7f;
    }
    char name[64];
    snprintf(name, sizeof name, "unary op %d", (int)cases[k].op);
    th_gradcheck(name, f_unary, 1, &x, &cases[k], 1e-3, 1e-3, 1e-2, 64);
    tt_tensor_unref(x);
  }
  /* log, sqrt, pow, reciprocal on positive inputs */
  unary_case pos[] = {{TT_UNARY_LOG, 0, 0}, {TT_UNARY_SQRT, 0, 0}, {TT_UNARY_POW, 2.5f, 0}, {TT_UNARY_RECIPROCAL, 0, 0}};
  for (size_t k = 0; k < 4; k++) {
    tt_tensor *x = th_uniform(40 + k, TT_DIMS(10), 0.5f, 2.0f);
    tt_tensor_set_requires_grad(x, true);
    th_gradcheck("unary positive", f_unary, 1, &x, &pos[k], 1e-3, 1e-3, 1e-2, 64);
    tt_tensor_unref(x);
  }
}
END_TEST

START_TEST(test_gelu_is_exact_erf) {
  float v[3] = {-1.0f, 0.5f, 2.0f};
  tt_tensor *x = tt_tensor_from_data(TT_F32, TT_DIMS(3), v, TT_CPU);
  tt_tensor *y = tt_gelu(x);
  for (int i = 0; i < 3; i++) {
    double want = 0.5 * v[i] * (1 + erf(v[i] / sqrt(2.0)));
    ck_assert_double_eq_tol(tt_f32(y)[i], want, 1e-6);
  }
  tt_tensor_unref(x);
  tt_tensor_unref(y);
}
END_TEST

static tt_tensor *f_binary(tt_tensor *const *in, void *ud) { return tt_binary(*(tt_binary_op *)ud, in[0], in[1]); }

START_TEST(test_binary_broadcast_grads) {
  for (int op = 0; op < TT_BINARY_COUNT; op++) {
    tt_tensor *a = th_leaf(100 + op, TT_DIMS(2, 3, 4), 1.0f);
    tt_tensor *b = th_leaf(200 + op, TT_DIMS(3, 1), 1.0f);
    if (op == TT_BINARY_DIV)
      for (int i = 0; i < 3; i++) tt_f32(b)[i] = 1.0f + fabsf(tt_f32(b)[i]);
    if (op == TT_BINARY_MAX || op == TT_BINARY_MIN) /* keep away from the kink a == b */
      for (int i = 0; i < 24; i++) {
        float bv = tt_f32(b)[(i / 4) % 3];
        if (fabsf(tt_f32(a)[i] - bv) < 0.05f) tt_f32(a)[i] = bv + 0.1f;
      }
    tt_tensor *in[2] = {a, b};
    tt_binary_op o = (tt_binary_op)op;
    char name[64];
    snprintf(name, sizeof name, "binary op %d broadcast", op);
    th_gradcheck(name, f_binary, 2, in, &o, 1e-3, 1e-3, 1e-2, 64);
    tt_tensor_unref(a);
    tt_tensor_unref(b);
  }
}
END_TEST

static tt_tensor *f_shape_mix(tt_tensor *const *in, void *ud) {
  /* permute, slice with a step, select, reshape, expand, cat, pad2d, repeat */
  tt_tensor *p = tt_permute(in[0], (int[]){2, 0, 1});            /* [4, 2, 3] */
  tt_tensor *s = tt_slice(p, 0, 1, 4, 2);                        /* [2, 2, 3] */
  tt_tensor *r = tt_reshape(s, TT_DIMS(4, 3));
  tt_tensor *e = tt_expand(in[1], TT_DIMS(4, 3));                /* in[1] [1, 3] */
  tt_tensor *parts[2] = {r, e};
  tt_tensor *c = tt_cat(2, parts, 0);                            /* [8, 3] */
  tt_tensor *pd = tt_pad2d(c, (int64_t[4]){1, 0, 2, 1}, 0.5);    /* [11, 4] */
  tt_tensor *sel = tt_select(pd, 1, 2);                          /* [11] */
  tt_tensor *rep = tt_repeat(sel, TT_DIMS(2, 1));                /* [2, 11] */
  tt_tensor_unref(p); tt_tensor_unref(s); tt_tensor_unref(r); tt_tensor_unref(e);
  tt_tensor_unref(c); tt_tensor_unref(pd); tt_tensor_unref(sel);
  return rep;
}

START_TEST(test_shape_grads) {
  tt_tensor *a = th_leaf(300, TT_DIMS(2, 3, 4), 1.0f), *b = th_leaf(301, TT_DIMS(1, 3), 1.0f);
  tt_tensor *in[2] = {a, b};
  th_gradcheck("shape ops", f_shape_mix, 2, in, NULL, 1e-2, 1e-3, 1e-2, 64);
  tt_tensor_unref(a);
  tt_tensor_unref(b);
}
END_TEST

static tt_tensor *f_reduce(tt_tensor *const *in, void *ud) {
  int which = *(int *)ud;
  switch (which) {
    case 0: return tt_sum(in[0]);
    case 1: return tt_mean(in[0]);
    case 2: return tt_sum_dims(in[0], 2, (int[]){0, 2}, false);   /* non-adjacent dims */
    case 3: return tt_mean_dim(in[0], 1, true);
    default: return tt_sum_to(in[0], TT_DIMS(3, 1));
  }
}

START_TEST(test_reduce_values_and_grads) {
  tt_tensor *x = th_leaf(400, TT_DIMS(2, 3, 4), 1.0f);
  double total = 0;
  for (int i = 0; i < 24; i++) total += tt_f32(x)[i];
  tt_tensor *s = tt_sum(x), *m = tt_mean(x);
  ck_assert_double_eq_tol(tt_tensor_get(s, 0), total, 1e-5);
  ck_assert_double_eq_tol(tt_tensor_get(m, 0), total / 24, 1e-6);
  tt_tensor *sd = tt_sum_dims(x, 2, (int[]){0, 2}, false);
  ck_assert_int_eq(sd->ndim, 1);
  double want = 0;
  for (int a = 0; a < 2; a++) for (int c = 0; c < 4; c++) want += tt_f32(x)[a * 12 + 1 * 4 + c];
  ck_assert_double_eq_tol(tt_tensor_get(sd, 1), want, 1e-5);
  for (int k = 0; k < 5; k++) th_gradcheck("reduce", f_reduce, 1, &x, &k, 1e-2, 1e-3, 1e-2, 64);
  tt_tensor *am = tt_argmax(x, -1, false);
  ck_assert_int_eq(am->dtype, TT_I64);
  ck_assert_int_eq(am->shape[1], 3);
  int64_t best = 0;
  for (int c = 1; c < 4; c++) if (tt_f32(x)[c] > tt_f32(x)[best]) best = c;
  ck_assert_int_eq(tt_i64(am)[0], best);
  tt_tensor_unref(s); tt_tensor_unref(m); tt_tensor_unref(sd); tt_tensor_unref(am); tt_tensor_unref(x);
}
END_TEST

static tt_tensor *f_matmul(tt_tensor *const *in, void *ud) { return tt_matmul(in[0], in[1]); }
static tt_tensor *f_matmul_t(tt_tensor *const *in, void *ud) {
  tt_tensor *bt = tt_transpose(in[1], -1, -2);
  tt_tensor *y = tt_matmul(in[0], bt);
  tt_tensor_unref(bt);
  return y;
}
static tt_tensor *f_linear(tt_tensor *const *in, void *ud) { return tt_linear(in[0], in[1], in[2]); }

START_TEST(test_matmul_values_and_grads) {
  tt_tensor *a = th_leaf(500, TT_DIMS(2, 3, 4), 1.0f), *b = th_leaf(501, TT_DIMS(4, 5), 1.0f);
  tt_tensor *y = tt_matmul(a, b);
  ck_assert_int_eq(y->shape[2], 5);
  double want = 0;
  for (int k = 0; k < 4; k++) want += tt_f32(a)[12 + 2 * 4 + k] * tt_f32(b)[k * 5 + 3];
  ck_assert_double_eq_tol(tt_tensor_get(y, 15 + 2 * 5 + 3), want, 1e-5);
  tt_tensor *in[2] = {a, b};
  th_gradcheck("matmul broadcast B", f_matmul, 2, in, NULL, 1e-2, 1e-3, 1e-2, 64);
  tt_tensor *c = th_leaf(502, TT_DIMS(2, 5, 4), 1.0f);
  tt_tensor *in2[2] = {a, c};
  th_gradcheck("matmul transposed batched", f_matmul_t, 2, in2, NULL, 1e-2, 1e-3, 1e-2, 64);
  tt_tensor *v = th_leaf(503, TT_DIMS(4), 1.0f);
  tt_tensor *in3[2] = {a, v};
  th_gradcheck("matmul 1-D", f_matmul, 2, in3, NULL, 1e-2, 1e-3, 1e-2, 64);
  tt_tensor *w = th_leaf(504, TT_DIMS(6, 4), 0.5f), *bias = th_leaf(505, TT_DIMS(6), 1.0f);
  tt_tensor *in4[3] = {a, w, bias};
  th_gradcheck("linear", f_linear, 3, in4, NULL, 1e-2, 1e-3, 1e-2, 64);
  ck_assert_ptr_null(tt_matmul(a, a));
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "inner dims"));
  tt_tensor_unref(y); tt_tensor_unref(a); tt_tensor_unref(b); tt_tensor_unref(c);
  tt_tensor_unref(v); tt_tensor_unref(w); tt_tensor_unref(bias);
}
END_TEST

/* x [M, K] W [N, K]^T + b in double, against tt_linear: the few-row products of
 * decoding (gemm.c's rows_nt on AVX-512), with every tail of the tiles: M not a
 * multiple of 4, N not of 8 or 16, K not of 16 */
START_TEST(test_linear_few_rows) {
  const int64_t Ms[] = {1, 2, 3, 4, 5, 8, 13, 16, 17}, Ns[] = {1, 3, 8, 21, 37}, Ks[] = {1, 7, 16, 17, 40};
  for (size_t im = 0; im < 9; im++)
    for (size_t in = 0; in < 5; in++)
      for (size_t ik = 0; ik < 5; ik++) {
        int64_t M = Ms[im], N = Ns[in], K = Ks[ik];
        tt_tensor *x = th_randn(700 + im, TT_DIMS(M, K), 1.0f), *w = th_randn(710 + in, TT_DIMS(N, K), 1.0f);
        tt_tensor *b = th_randn(720 + ik, TT_DIMS(N), 1.0f);
        tt_tensor *y = tt_linear(x, w, b), *y0 = tt_linear(x, w, NULL);
        ck_assert_ptr_nonnull(y);
        ck_assert_ptr_nonnull(y0);
        double worst = 0;
        for (int64_t m = 0; m < M; m++)
          for (int64_t n = 0; n < N; n++) {
            double d = 0;
            for (int64_t k = 0; k < K; k++) d += (double)tt_f32(x)[m * K + k] * tt_f32(w)[n * K + k];
            double e0 = fabs(tt_f32(y0)[m * N + n] - d), e = fabs(tt_f32(y)[m * N + n] - (d + tt_f32(b)[n]));
            worst = fmax(worst, fmax(e, e0));
          }
        ck_assert_msg(worst < 1e-5 * (K + 1), "linear [%lld, %lld] x [%lld, %lld]^T: max error %g", (long long)M,
                      (long long)K, (long long)N, (long long)K, worst);
        tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b); tt_tensor_unref(y); tt_tensor_unref(y0);
      }
}
END_TEST

/* a product big enough to split over the threads gives the same bits on one thread */
START_TEST(test_linear_few_rows_thread_count) {
#ifdef _OPENMP
  tt_tensor *x = th_randn(730, TT_DIMS(16, 1000), 1.0f), *w = th_randn(731, TT_DIMS(300, 1000), 1.0f);
  int prev = omp_get_max_threads();
  tt_tensor *y = tt_linear(x, w, NULL);
  omp_set_num_threads(1);
  tt_tensor *y1 = tt_linear(x, w, NULL);
  omp_set_num_threads(prev);
  ck_assert_ptr_nonnull(y);
  ck_assert_ptr_nonnull(y1);
  ck_assert_msg(!memcmp(tt_f32(y), tt_f32(y1), sizeof(float) * 16 * 300), "results depend on the thread count");
  tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(y); tt_tensor_unref(y1);
#endif
}
END_TEST

static tt_tensor *f_dropout(tt_tensor *const *in, void *ud) {
  tt_rng r = tt_rng_make(99);   /* the same mask every evaluation */
  return tt_dropout(in[0], 0.3f, true, &r);
}

START_TEST(test_dropout) {
  tt_tensor *x = th_leaf(600, TT_DIMS(1000), 1.0f);
  tt_rng r = tt_rng_make(5);
  tt_tensor *y = tt_dropout(x, 0.3f, true, &r);
  int zeros = 0;
  for (int i = 0; i < 1000; i++) {
    float a = tt_f32(y)[i], b = tt_f32(x)[i];
    if (a == 0.0f) zeros++;
    else ck_assert_double_eq_tol(a, b / 0.7, 1e-5);
  }
  ck_assert_msg(zeros > 240 && zeros < 360, "dropout zeroed %d of 1000", zeros);
  tt_tensor *e = tt_dropout(x, 0.3f, false, &r);
  ck_assert_ptr_eq(e, x);
  th_gradcheck("dropout", f_dropout, 1, &x, NULL, 1e-2, 1e-3, 1e-2, 32);
  tt_tensor_unref(y); tt_tensor_unref(e); tt_tensor_unref(x);
}
END_TEST

int main(void) {
  Suite *s = suite_create("ops_core");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_unary_grads);
  tcase_add_test(tc, test_gelu_is_exact_erf);
  tcase_add_test(tc, test_binary_broadcast_grads);
  tcase_add_test(tc, test_shape_grads);
  tcase_add_test(tc, test_reduce_values_and_grads);
  tcase_add_test(tc, test_matmul_values_and_grads);
  tcase_add_test(tc, test_linear_few_rows);
  tcase_add_test(tc, test_linear_few_rows_thread_count);
  tcase_add_test(tc, test_dropout);
  suite_add_tcase(s, tc);
  return th_run(s);
}

/* check_ops_select.c — the sampler building blocks: comparisons, where and
 * masked_fill (compare family), sort and top-k (sort family), the cumulative
 * sum (reduce family) and multinomial draws (random family). Values against
 * references computed here, gradients of where / masked_fill / cumsum against
 * finite differences, draws against an inverse CDF over tt_rng_uniform. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testhelp.h"

static void assert_error_mentions(const char *what, const char *needle) {
  ck_assert_msg(strstr(tt_error_message(), needle) != NULL, "%s: message '%s' does not mention '%s'", what,
                tt_error_message(), needle);
}

/* ---- comparisons ---- */

START_TEST(test_compare_broadcast) {
  tt_tensor *a = th_randn(1, TT_DIMS(3, 4), 1.0f), *b = th_randn(2, TT_DIMS(4), 1.0f);
  tt_f32(a)[5] = tt_f32(b)[1];   /* one tie: eq/le/ge hold there */
  tt_f32(a)[6] = NAN;            /* NaN: only ne holds */
  for (int op = 0; op < TT_CMP_COUNT; op++) {
    tt_tensor *m = tt_compare((tt_compare_op)op, a, b);
    TH_NN(m);
    ck_assert_int_eq(m->dtype, TT_U8);
    ck_assert_int_eq(m->ndim, 2);
    for (int i = 0; i < 12; i++) {
      float x = tt_f32(a)[i], y = tt_f32(b)[i % 4];
      bool want = op == TT_CMP_LT ? x < y : op == TT_CMP_LE ? x <= y : op == TT_CMP_GT ? x > y
                : op == TT_CMP_GE ? x >= y : op == TT_CMP_EQ ? x == y : x != y;
      ck_assert_msg(((uint8_t *)tt_tensor_data(m))[i] == want, "%s element %d: %g vs %g gives %d",
                    tt_compare_name((tt_compare_op)op), i, x, y, ((uint8_t *)tt_tensor_data(m))[i]);
    }
    tt_tensor_unref(m);
  }
  tt_tensor_unref(a);
  tt_tensor_unref(b);
}
END_TEST

START_TEST(test_compare_scalar_i64_and_errors) {
  int64_t v[5] = {-2, 0, 3, 3, 9};
  tt_tensor *t = tt_tensor_from_data(TT_I64, TT_DIMS(5), v, TT_CPU);
  tt_tensor *m = tt_compare_scalar(TT_CMP_GE, t, 3);
  TH_NN(m);
  const uint8_t want[5] = {0, 0, 1, 1, 1};
  ck_assert_mem_eq(tt_tensor_data(m), want, 5);
  tt_tensor *inv = tt_compare_scalar(TT_CMP_EQ, m, 0);   /* masks compare too: the complement */
  TH_NN(inv);
  for (int i = 0; i < 5; i++) ck_assert_int_eq(((uint8_t *)tt_tensor_data(inv))[i], !want[i]);
  tt_tensor_unref(inv);
  ck_assert_ptr_null(tt_compare_scalar(TT_CMP_LT, t, 2.5));   /* would silently compare with 2 */
  assert_error_mentions("fractional scalar", "not a value of the tensor's dtype i64");
  ck_assert_ptr_null(tt_masked_fill(t, m, -INFINITY));
  assert_error_mentions("-inf into i64", "masked_fill: the scalar -inf");
  tt_tensor *f = th_randn(3, TT_DIMS(5), 1.0f);
  ck_assert_ptr_null(tt_lt(t, f));
  assert_error_mentions("dtype mismatch", "one dtype");
  tt_tensor *g = th_randn(4, TT_DIMS(3), 1.0f);
  ck_assert_ptr_null(tt_lt(f, g));
  assert_error_mentions("shape mismatch", "do not broadcast");
  tt_tensor_unref(t); tt_tensor_unref(m); tt_tensor_unref(f); tt_tensor_unref(g);
}
END_TEST

/* ---- where, masked_fill ---- */

static tt_tensor *f_where(tt_tensor *const *in, void *ud) { return tt_where((tt_tensor *)ud, in[0], in[1]); }
static tt_tensor *f_masked_fill(tt_tensor *const *in, void *ud) { return tt_masked_fill(in[0], (tt_tensor *)ud, -3.0); }

START_TEST(test_where_values_and_grad) {
  tt_tensor *a = th_leaf(10, TT_DIMS(2, 3, 4), 1.0f), *b = th_leaf(11, TT_DIMS(3, 1), 1.0f);
  tt_tensor *u = th_uniform(12, TT_DIMS(2, 1, 4), 0.0f, 1.0f);
  tt_tensor *cond = tt_compare_scalar(TT_CMP_LT, u, 0.5);   // [2, 1, 4]
  TH_NN(cond);
  tt_tensor *y = tt_where(cond, a, b);
  TH_NN(y);
  ck_assert_int_eq(y->ndim, 3);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 4; k++) {
        float want = ((uint8_t *)tt_tensor_data(cond))[i * 4 + k] ? tt_f32(a)[(i * 3 + j) * 4 + k] : tt_f32(b)[j];
        ck_assert_float_eq(tt_f32(y)[(i * 3 + j) * 4 + k], want);
      }
  tt_tensor *ins[2] = {a, b};
  th_gradcheck("where grad (both sides, b broadcast)", f_where, 2, ins, cond, 1e-2, 1e-3, 1e-2, 24);
  tt_tensor_unref(a); tt_tensor_unref(b); tt_tensor_unref(u); tt_tensor_unref(cond); tt_tensor_unref(y);
}
END_TEST

START_TEST(test_masked_fill) {
  tt_tensor *x = th_leaf(20, TT_DIMS(3, 5), 1.0f);
  tt_tensor *u = th_uniform(21, TT_DIMS(5), 0.0f, 1.0f);
  tt_tensor *mask = tt_compare_scalar(TT_CMP_GT, u, 0.4);   // [5], broadcast over rows
  tt_tensor *y = tt_masked_fill(x, mask, -INFINITY);
  TH_NN(y);
  for (int i = 0; i < 15; i++) {
    bool m = ((uint8_t *)tt_tensor_data(mask))[i % 5];
    ck_assert_msg(m ? isinf(tt_f32(y)[i]) && tt_f32(y)[i] < 0 : tt_f32(y)[i] == tt_f32(x)[i], "element %d", i);
  }
  th_gradcheck("masked_fill grad", f_masked_fill, 1, &x, mask, 1e-2, 1e-3, 1e-2, 15);
  /* the mask must broadcast to the input, not grow it */
  tt_tensor *big = tt_zeros(TT_U8, TT_DIMS(2, 3, 5), TT_CPU);
  ck_assert_ptr_null(tt_masked_fill(x, big, 0));
  assert_error_mentions("masked_fill growing", "must broadcast to the input's shape");
  tt_tensor *fm = th_randn(22, TT_DIMS(5), 1.0f);
  ck_assert_ptr_null(tt_where(fm, x, x));
  assert_error_mentions("where f32 cond", "u8 mask");
  tt_tensor_unref(x); tt_tensor_unref(u); tt_tensor_unref(mask); tt_tensor_unref(y);
  tt_tensor_unref(big); tt_tensor_unref(fm);
}
END_TEST

/* ---- sort, topk ---- */

START_TEST(test_sort_stable_and_dims) {
  float v[2][6] = {{3, 1, 2, 2, NAN, -1}, {0, 0, 5, -7, 5, 1}};
  tt_tensor *x = tt_tensor_from_data(TT_F32, TT_DIMS(2, 6), v, TT_CPU);
  tt_tensor *sv, *si;
  TH_OK(tt_sort(x, 1, false, &sv, &si));
  const int64_t asc[2][6] = {{5, 1, 2, 3, 0, 4}, {3, 0, 1, 5, 2, 4}};
  ck_assert_mem_eq(tt_i64(si), asc, sizeof asc);
  ck_assert_float_eq(tt_f32(sv)[0], -1.0f);
  ck_assert(isnan(tt_f32(sv)[5]));
  tt_tensor_unref(sv); tt_tensor_unref(si);
  TH_OK(tt_sort(x, -1, true, &sv, &si));
  const int64_t desc[2][6] = {{4, 0, 2, 3, 1, 5}, {2, 4, 5, 0, 1, 3}};   /* ties keep index order */
  ck_assert_mem_eq(tt_i64(si), desc, sizeof desc);
  tt_tensor_unref(sv); tt_tensor_unref(si);
  /* along dim 0 of the transposed view: the same lines */
  tt_tensor *xt = tt_transpose(x, 0, 1);   // [6, 2]
  TH_OK(tt_sort(xt, 0, true, &sv, &si));
  for (int r = 0; r < 6; r++) ck_assert_int_eq(tt_i64(si)[r * 2 + 1], desc[1][r]);
  tt_tensor_unref(sv); tt_tensor_unref(si); tt_tensor_unref(xt); tt_tensor_unref(x);
}
END_TEST

START_TEST(test_topk_random_and_errors) {
  tt_tensor *x = th_randn(30, TT_DIMS(4, 50), 1.0f);
  tt_tensor *tv, *ti;
  TH_OK(tt_topk(x, 7, -1, true, &tv, &ti));
  ck_assert_int_eq(tv->shape[1], 7);
  for (int b = 0; b < 4; b++) {
    const float *row = tt_f32(x) + b * 50;
    for (int j = 0; j < 7; j++) {
      int64_t i = tt_i64(ti)[b * 7 + j];
      ck_assert_float_eq(tt_f32(tv)[b * 7 + j], row[i]);
      if (j) ck_assert(tt_f32(tv)[b * 7 + j] <= tt_f32(tv)[b * 7 + j - 1]);
      /* exactly j entries of the row are larger */
      int larger = 0;
      for (int v = 0; v < 50; v++) larger += row[v] > row[i];
      ck_assert_int_eq(larger, j);
    }
  }
  tt_tensor_unref(tv); tt_tensor_unref(ti);
  TH_OK(tt_topk(x, 3, 1, false, &tv, &ti));   /* smallest */
  for (int b = 0; b < 4; b++) {
    int smaller = 0;
    const float *row = tt_f32(x) + b * 50;
    for (int v = 0; v < 50; v++) smaller += row[v] < tt_f32(tv)[b * 3 + 2];
    ck_assert_int_eq(smaller, 2);
  }
  tt_tensor_unref(tv); tt_tensor_unref(ti);
  ck_assert_int_ne(tt_topk(x, 51, -1, true, &tv, &ti), TT_OK);
  assert_error_mentions("k too large", "must lie in [1, 50]");
  ck_assert_int_ne(tt_topk(x, 0, -1, true, &tv, &ti), TT_OK);
  ck_assert_int_ne(tt_sort(x, 2, false, &tv, &ti), TT_OK);
  assert_error_mentions("bad dim", "out of range");
  tt_tensor_unref(x);
}
END_TEST

/* ---- cumsum ---- */

static tt_tensor *f_cumsum0(tt_tensor *const *in, void *ud) { return tt_cumsum(in[0], 0); }
static tt_tensor *f_cumsum1(tt_tensor *const *in, void *ud) { return tt_cumsum(in[0], -1); }

START_TEST(test_cumsum_values_and_grad) {
  tt_tensor *x = th_leaf(40, TT_DIMS(3, 4, 5), 1.0f);
  tt_tensor *y = tt_cumsum(x, 1);
  TH_NN(y);
  double *ref = th_ref_alloc(60);
  for (int a = 0; a < 3; a++)
    for (int c = 0; c < 5; c++) {
      double acc = 0;
      for (int b = 0; b < 4; b++) {
        acc += tt_f32(x)[(a * 4 + b) * 5 + c];
        ref[(a * 4 + b) * 5 + c] = acc;
      }
    }
  th_assert_ref("cumsum dim 1", y, ref, 1e-6, 1e-6);
  th_gradcheck("cumsum grad dim 0", f_cumsum0, 1, &x, NULL, 1e-2, 1e-3, 1e-2, 20);
  th_gradcheck("cumsum grad last dim", f_cumsum1, 1, &x, NULL, 1e-2, 1e-3, 1e-2, 20);
  ck_assert_ptr_null(tt_cumsum(x, 3));
  assert_error_mentions("cumsum dim", "out of range");
  free(ref);
  tt_tensor_unref(x);
  tt_tensor_unref(y);
}
END_TEST

/* ---- multinomial ---- */

START_TEST(test_multinomial_inverse_cdf) {
  tt_tensor *l = th_randn(50, TT_DIMS(6, 40), 2.0f);
  tt_tensor *p = tt_softmax(l, -1);
  TH_NN(p);
  tt_rng r = tt_rng_make(1234);
  tt_tensor *d = tt_multinomial(p, 3, &r);
  TH_NN(d);
  ck_assert_int_eq(d->ndim, 2);
  ck_assert_int_eq(d->shape[1], 3);
  ck_assert_uint_eq(r.counter, 18);
  /* the reference: the host stream, one uniform per draw in row-major order */
  tt_rng ref = tt_rng_make(1234);
  for (int b = 0; b < 6; b++) {
    const float *row = tt_f32(p) + b * 40;
    double total = 0;
    for (int v = 0; v < 40; v++) total += row[v];
    for (int j = 0; j < 3; j++) {
      double u = tt_rng_uniform(&ref) * total, cum = 0;
      int64_t pick = 39;
      for (int v = 0; v < 40; v++) {
        cum += row[v];
        if (u < cum) { pick = v; break; }
      }
      ck_assert_int_eq(tt_i64(d)[b * 3 + j], pick);
    }
  }
  /* the same seed reproduces, a zero weight is never drawn */
  tt_rng r2 = tt_rng_make(1234);
  tt_tensor *d2 = tt_multinomial(p, 3, &r2);
  ck_assert_mem_eq(tt_i64(d), tt_i64(d2), 18 * sizeof(int64_t));
  float w[4] = {0, 1, 0, 3};
  tt_tensor *pw = tt_tensor_from_data(TT_F32, TT_DIMS(4), w, TT_CPU);
  tt_tensor *many = tt_multinomial(pw, 4000, &r);
  TH_NN(many);
  int count[4] = {0};
  for (int i = 0; i < 4000; i++) count[tt_i64(many)[i]]++;
  ck_assert_int_eq(count[0] + count[2], 0);
  ck_assert_msg(count[3] > 2800 && count[3] < 3200, "weight 3 of 4 drawn %d times in 4000", count[3]);
  tt_tensor_unref(l); tt_tensor_unref(p); tt_tensor_unref(d); tt_tensor_unref(d2);
  tt_tensor_unref(pw); tt_tensor_unref(many);
}
END_TEST

START_TEST(test_multinomial_errors) {
  float w[2][3] = {{0.2f, 0.3f, 0.5f}, {0, 0, 0}};
  tt_tensor *p = tt_tensor_from_data(TT_F32, TT_DIMS(2, 3), w, TT_CPU);
  tt_rng r = tt_rng_make(0);
  ck_assert_ptr_null(tt_multinomial(p, 1, &r));
  assert_error_mentions("zero row", "row 1");
  ck_assert_uint_eq(r.counter, 0);   /* a failed draw does not advance the stream */
  tt_f32(p)[4] = -1;
  tt_f32(p)[5] = 2;
  ck_assert_ptr_null(tt_multinomial(p, 1, &r));
  assert_error_mentions("negative weight", "negative");
  ck_assert_ptr_null(tt_multinomial(p, 0, &r));
  assert_error_mentions("n = 0", "must be positive");
  tt_tensor_unref(p);
}
END_TEST

static Suite *make_ops_select_suite(void) {
  Suite *s = suite_create("ops_select");
  TCase *tc = tcase_create("compare");
  tcase_add_test(tc, test_compare_broadcast);
  tcase_add_test(tc, test_compare_scalar_i64_and_errors);
  tcase_add_test(tc, test_where_values_and_grad);
  tcase_add_test(tc, test_masked_fill);
  suite_add_tcase(s, tc);
  TCase *ts = tcase_create("sort");
  tcase_add_test(ts, test_sort_stable_and_dims);
  tcase_add_test(ts, test_topk_random_and_errors);
  suite_add_tcase(s, ts);
  TCase *tr = tcase_create("scan_and_draws");
  tcase_add_test(tr, test_cumsum_values_and_grad);
  tcase_add_test(tr, test_multinomial_inverse_cdf);
  tcase_add_test(tr, test_multinomial_errors);
  suite_add_tcase(s, tr);
  return s;
}

int main(void) { return th_run(make_ops_select_suite()); }

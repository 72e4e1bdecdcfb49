/* check_ops_misc.c — embedding and one-hot, the losses (L1, MSE, cross-entropy,
 * BCE with logits), the codebook argmin of vector quantisation and the fused
 * Adam / AdamW step: values against references computed here in double,
 * gradients against finite differences, error messages on bad input. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testhelp.h"

/* i64 tensor with entries uniform in [0, n) from a seed. */
static tt_tensor *rand_index(uint64_t seed, int nd, const int64_t *sh, int64_t n) {
  tt_tensor *t = tt_tensor_new(TT_I64, nd, sh, TT_CPU);
  tt_rng r = tt_rng_make(seed);
  for (int64_t i = 0; i < tt_tensor_numel(t); i++) tt_i64(t)[i] = (int64_t)(tt_rng_uniform(&r) * (double)n);
  return t;
}

static void assert_error_mentions(const char *what, const char *needle) {
  ck_assert_msg(strstr(tt_error_message(), needle) != NULL, "%s: message '%s' does not mention '%s'", what,
                tt_error_message(), needle);
}

/* ---- embedding, one-hot ---- */

START_TEST(test_embedding_values) {
  tt_tensor *w = th_randn(1, TT_DIMS(7, 5), 1.0f);
  int64_t iv[6] = {3, 0, 6, 3, 3, 1};
  tt_tensor *idx = tt_tensor_from_data(TT_I64, TT_DIMS(2, 3), iv, TT_CPU);
  tt_tensor *y = tt_embedding(w, idx);
  TH_NN(y);
  ck_assert_int_eq(y->ndim, 3);
  ck_assert_int_eq(y->shape[0], 2);
  ck_assert_int_eq(y->shape[1], 3);
  ck_assert_int_eq(y->shape[2], 5);
  for (int n = 0; n < 6; n++)
    for (int e = 0; e < 5; e++)
      ck_assert_msg(tt_f32(y)[n * 5 + e] == tt_f32(w)[iv[n] * 5 + e], "row %d col %d differs", n, e);
  /* a 0-dim index gives one row [E] */
  int64_t one = 6;
  tt_tensor *i0 = tt_tensor_from_data(TT_I64, 0, NULL, &one, TT_CPU);
  tt_tensor *y0 = tt_embedding(w, i0);
  TH_NN(y0);
  ck_assert_int_eq(y0->ndim, 1);
  ck_assert_int_eq(y0->shape[0], 5);
  ck_assert_float_eq(tt_f32(y0)[4], tt_f32(w)[6 * 5 + 4]);
  /* a strided (transposed) index tensor */
  tt_tensor *it = tt_transpose(idx, 0, 1);   // [3, 2]
  tt_tensor *yt = tt_embedding(w, it);
  TH_NN(yt);
  ck_assert_float_eq(tt_f32(yt)[(1 * 2 + 0) * 5 + 2], tt_f32(w)[iv[1] * 5 + 2]);
  ck_assert_float_eq(tt_f32(yt)[(0 * 2 + 1) * 5 + 2], tt_f32(w)[iv[3] * 5 + 2]);
  tt_tensor_unref(w); tt_tensor_unref(idx); tt_tensor_unref(y);
  tt_tensor_unref(i0); tt_tensor_unref(y0); tt_tensor_unref(it); tt_tensor_unref(yt);
}
END_TEST

START_TEST(test_embedding_errors) {
  tt_tensor *w = th_randn(2, TT_DIMS(7, 5), 1.0f);
  int64_t bad[4] = {1, 2, 7, 0};
  tt_tensor *idx = tt_tensor_from_data(TT_I64, TT_DIMS(4), bad, TT_CPU);
  ck_assert_ptr_null(tt_embedding(w, idx));
  assert_error_mentions("embedding index 7", "index 7 ");
  assert_error_mentions("embedding index 7", "V = 7");
  int64_t neg[2] = {-1, 0};
  tt_tensor *idx2 = tt_tensor_from_data(TT_I64, TT_DIMS(2), neg, TT_CPU);
  ck_assert_ptr_null(tt_embedding(w, idx2));
  assert_error_mentions("embedding index -1", "index -1 ");
  tt_tensor *fidx = th_randn(3, TT_DIMS(4), 1.0f);
  ck_assert_ptr_null(tt_embedding(w, fidx));
  assert_error_mentions("embedding f32 index", "i64");
  tt_tensor *w3 = th_randn(4, TT_DIMS(2, 7, 5), 1.0f);
  ck_assert_ptr_null(tt_embedding(w3, idx2));
  assert_error_mentions("embedding 3-D weight", "[2, 7, 5]");
  tt_tensor_unref(w); tt_tensor_unref(idx); tt_tensor_unref(idx2); tt_tensor_unref(fidx); tt_tensor_unref(w3);
}
END_TEST

static tt_tensor *f_embedding(tt_tensor *const *in, void *ud) { return tt_embedding(in[0], (tt_tensor *)ud); }

/* Checks w->grad after backward of sum(embedding(w, idx) * G) against a double scatter-add. */
static void check_embedding_backward(int64_t V, int64_t E, int nd, const int64_t *ish, uint64_t seed, double tol) {
  tt_tensor *w = th_leaf(seed, TT_DIMS(V, E), 1.0f);
  tt_tensor *idx = rand_index(seed + 1, nd, ish, V);
  tt_tensor *y = tt_embedding(w, idx);
  TH_NN(y);
  tt_tensor *G = th_randn(seed + 2, y->ndim, y->shape, 1.0f);
  TH_OK(tt_backward(y, G, false));
  TH_NN(w->grad);
  int64_t N = tt_tensor_numel(idx);
  double *ref = calloc((size_t)(V * E), sizeof *ref);
  for (int64_t n = 0; n < N; n++)
    for (int64_t e = 0; e < E; e++) ref[tt_i64(idx)[n] * E + e] += tt_f32(G)[n * E + e];
  double worst = 0;
  for (int64_t i = 0; i < V * E; i++) worst = fmax(worst, fabs(tt_tensor_get(w->grad, i) - ref[i]));
  ck_assert_msg(worst <= tol, "embedding backward V=%lld E=%lld N=%lld: max abs diff %.3g > %.3g", (long long)V,
                (long long)E, (long long)N, worst, tol);
  free(ref);
  tt_tensor_unref(G); tt_tensor_unref(y); tt_tensor_unref(idx); tt_tensor_unref(w);
}

START_TEST(test_embedding_grads) {
  /* odd, non-square table; repeated indices must add up */
  tt_tensor *w = th_leaf(10, TT_DIMS(11, 6), 1.0f);
  int64_t iv[12] = {2, 5, 2, 10, 0, 2, 7, 5, 9, 1, 10, 2};
  tt_tensor *idx = tt_tensor_from_data(TT_I64, TT_DIMS(3, 4), iv, TT_CPU);
  th_gradcheck("embedding [11, 6] idx [3, 4]", f_embedding, 1, &w, idx, 1e-2, 1e-4, 1e-3, 66);
  tt_tensor_unref(w);
  tt_tensor_unref(idx);
  tt_tensor *w2 = th_leaf(11, TT_DIMS(3, 17), 1.0f);
  tt_tensor *idx2 = rand_index(12, TT_DIMS(5), 3);
  th_gradcheck("embedding [3, 17] idx [5]", f_embedding, 1, &w2, idx2, 1e-2, 1e-4, 1e-3, 51);
  tt_tensor_unref(w2);
  tt_tensor_unref(idx2);
  /* exact scatter-add, small and past the threaded threshold */
  check_embedding_backward(13, 7, TT_DIMS(4, 9), 20, 1e-5);
  check_embedding_backward(300, 256, TT_DIMS(2000), 21, 1e-4);
}
END_TEST

START_TEST(test_one_hot) {
  int64_t iv[6] = {4, 0, 2, 2, 1, 4};
  tt_tensor *idx = tt_tensor_from_data(TT_I64, TT_DIMS(2, 3), iv, TT_CPU);
  tt_tensor *y = tt_one_hot(idx, 5);
  TH_NN(y);
  ck_assert_int_eq(y->ndim, 3);
  ck_assert_int_eq(y->shape[2], 5);
  ck_assert(!tt_requires_grad(y));
  for (int n = 0; n < 6; n++)
    for (int c = 0; c < 5; c++) ck_assert_float_eq(tt_f32(y)[n * 5 + c], c == iv[n] ? 1.0f : 0.0f);
  ck_assert_ptr_null(tt_one_hot(idx, 4));
  assert_error_mentions("one_hot out of range", "index 4 ");
  ck_assert_ptr_null(tt_one_hot(idx, 0));
  assert_error_mentions("one_hot zero classes", "positive");
  tt_tensor_unref(y);
  tt_tensor_unref(idx);
}
END_TEST

/* ---- L1, MSE ---- */

static tt_tensor *f_l1(tt_tensor *const *in, void *ud) { return tt_l1_loss(in[0], in[1]); }
static tt_tensor *f_mse(tt_tensor *const *in, void *ud) { return tt_mse_loss(in[0], in[1]); }

START_TEST(test_l1_mse) {
  tt_tensor *a = th_leaf(30, TT_DIMS(3, 5, 7), 1.0f), *b = th_leaf(31, TT_DIMS(3, 5, 7), 1.0f);
  /* keep |a - b| away from the kink of |.| for the finite differences */
  for (int i = 0; i < 105; i++)
    if (fabsf(tt_f32(a)[i] - tt_f32(b)[i]) < 0.05f) tt_f32(a)[i] = tt_f32(b)[i] + 0.1f;
  double l1 = 0, l2 = 0;
  for (int i = 0; i < 105; i++) {
    double d = (double)tt_f32(a)[i] - tt_f32(b)[i];
    l1 += fabs(d);
    l2 += d * d;
  }
  tt_tensor *y1 = tt_l1_loss(a, b), *y2 = tt_mse_loss(a, b);
  TH_NN(y1);
  TH_NN(y2);
  ck_assert_int_eq(y1->ndim, 0);
  ck_assert_int_eq(y2->ndim, 0);
  ck_assert_double_eq_tol(tt_tensor_get(y1, 0), l1 / 105, 1e-6);
  ck_assert_double_eq_tol(tt_tensor_get(y2, 0), l2 / 105, 1e-6);
  tt_tensor *in[2] = {a, b};
  th_gradcheck("l1_loss [3, 5, 7]", f_l1, 2, in, NULL, 1e-2, 2e-5, 1e-3, 105);
  th_gradcheck("mse_loss [3, 5, 7]", f_mse, 2, in, NULL, 1e-2, 2e-5, 1e-3, 105);
  tt_tensor *c = th_randn(32, TT_DIMS(5, 3, 7), 1.0f);
  ck_assert_ptr_null(tt_l1_loss(a, c));
  assert_error_mentions("l1 shape mismatch", "[5, 3, 7]");
  tt_tensor_unref(y1); tt_tensor_unref(y2); tt_tensor_unref(a); tt_tensor_unref(b); tt_tensor_unref(c);
}
END_TEST

/* ---- cross-entropy ---- */

/* mean over rows of lse(x_n) - x_n[t_n], in double */
static double ce_ref(const tt_tensor *x, const tt_tensor *t, double *grad /* [N, V] or NULL */) {
  int64_t N = x->shape[0], V = x->shape[1];
  double total = 0;
  for (int64_t n = 0; n < N; n++) {
    const float *r = tt_f32(x) + n * V;
    double m = r[0], s = 0;
    for (int64_t v = 1; v < V; v++) m = fmax(m, r[v]);
    for (int64_t v = 0; v < V; v++) s += exp((double)r[v] - m);
    double lse = m + log(s);
    total += lse - r[tt_i64(t)[n]];
    if (grad)
      for (int64_t v = 0; v < V; v++)
        grad[n * V + v] = (exp((double)r[v] - lse) - (v == tt_i64(t)[n])) / (double)N;
  }
  return total / (double)N;
}

static tt_tensor *f_ce(tt_tensor *const *in, void *ud) { return tt_cross_entropy(in[0], (tt_tensor *)ud); }

static void check_ce_case(int64_t N, int64_t V, uint64_t seed, float scale, float offset, double tol_loss,
                          double tol_grad) {
  tt_tensor *x = th_leaf(seed, TT_DIMS(N, V), scale);
  for (int64_t i = 0; i < N * V; i++) tt_f32(x)[i] += offset;
  tt_tensor *t = rand_index(seed + 1, TT_DIMS(N), V);
  double *g = malloc(sizeof *g * (size_t)(N * V));
  double want = ce_ref(x, t, g);
  tt_tensor *y = tt_cross_entropy(x, t);
  TH_NN(y);
  ck_assert_int_eq(y->ndim, 0);
  double got = tt_tensor_get(y, 0);
  ck_assert_msg(fabs(got - want) <= tol_loss * fmax(1.0, fabs(want)),
                "cross_entropy [%lld, %lld] scale %g offset %g: %.9g vs %.9g", (long long)N, (long long)V, scale,
                offset, got, want);
  TH_OK(tt_backward(y, NULL, false));
  double worst = 0;
  for (int64_t i = 0; i < N * V; i++) worst = fmax(worst, fabs(tt_tensor_get(x->grad, i) - g[i]));
  ck_assert_msg(worst <= tol_grad, "cross_entropy [%lld, %lld] scale %g: gradient max abs diff %.3g > %.3g",
                (long long)N, (long long)V, scale, worst, tol_grad);
  free(g);
  tt_tensor_unref(y); tt_tensor_unref(t); tt_tensor_unref(x);
}

START_TEST(test_cross_entropy_values) {
  check_ce_case(7, 13, 40, 1.0f, 0.0f, 1e-6, 1e-7);
  /* large logits: exp would overflow fp32 without the max shift */
  check_ce_case(5, 9, 41, 60.0f, 0.0f, 1e-6, 1e-6);
  /* lse is kept in fp32 for the backward: near 1000 its rounding (3e-5) is a
   * relative error of softmax, so the gradient tolerance is wider here */
  check_ce_case(5, 9, 42, 1.0f, 1000.0f, 1e-6, 1e-5);
  /* past the threaded threshold, a vocabulary the size of a codebook */
  check_ce_case(64, 1024, 43, 2.0f, 0.0f, 1e-6, 1e-7);
  check_ce_case(3, 16384, 44, 3.0f, 0.0f, 1e-6, 1e-7);
}
END_TEST

START_TEST(test_cross_entropy_grads) {
  tt_tensor *x = th_leaf(50, TT_DIMS(5, 9), 1.0f);
  tt_tensor *t = rand_index(51, TT_DIMS(5), 9);
  th_gradcheck("cross_entropy [5, 9]", f_ce, 1, &x, t, 1e-2, 2e-5, 1e-3, 45);
  tt_tensor_unref(x);
  tt_tensor_unref(t);
  tt_tensor *x2 = th_leaf(52, TT_DIMS(1, 4), 2.0f);
  tt_tensor *t2 = rand_index(53, TT_DIMS(1), 4);
  th_gradcheck("cross_entropy [1, 4]", f_ce, 1, &x2, t2, 1e-2, 2e-5, 1e-3, 4);
  /* a non-contiguous logits view gets a gradient of its own shape */
  tt_tensor *x3 = th_leaf(54, TT_DIMS(11, 3), 1.0f);
  tt_tensor *xt = tt_transpose(x3, 0, 1);   // [3, 11]
  tt_tensor *t3 = rand_index(55, TT_DIMS(3), 11);
  tt_tensor *y = tt_cross_entropy(xt, t3);
  TH_NN(y);
  TH_OK(tt_backward(y, NULL, false));
  ck_assert_int_eq(x3->grad->shape[0], 11);
  double want[33];
  tt_tensor *xtc = tt_contiguous(xt);
  ce_ref(xtc, t3, want);
  for (int r = 0; r < 3; r++)
    for (int v = 0; v < 11; v++)
      ck_assert_double_eq_tol(tt_tensor_get(x3->grad, v * 3 + r), want[r * 11 + v], 1e-7);
  tt_tensor_unref(xtc); tt_tensor_unref(y); tt_tensor_unref(t3); tt_tensor_unref(xt); tt_tensor_unref(x3);
  tt_tensor_unref(x2); tt_tensor_unref(t2);
}
END_TEST

START_TEST(test_cross_entropy_errors) {
  tt_tensor *x = th_randn(60, TT_DIMS(3, 8), 1.0f);
  int64_t tv[3] = {1, 8, 0};
  tt_tensor *t = tt_tensor_from_data(TT_I64, TT_DIMS(3), tv, TT_CPU);
  ck_assert_ptr_null(tt_cross_entropy(x, t));
  assert_error_mentions("ce target out of range", "target 8 of row 1");
  assert_error_mentions("ce target out of range", "V = 8");
  tt_tensor *t2 = rand_index(61, TT_DIMS(4), 8);
  ck_assert_ptr_null(tt_cross_entropy(x, t2));
  assert_error_mentions("ce shape mismatch", "[4]");
  tt_tensor *tf = th_randn(62, TT_DIMS(3), 1.0f);
  ck_assert_ptr_null(tt_cross_entropy(x, tf));
  assert_error_mentions("ce f32 target", "i64");
  tt_tensor_unref(x); tt_tensor_unref(t); tt_tensor_unref(t2); tt_tensor_unref(tf);
}
END_TEST

/* ---- BCE with logits ---- */

static tt_tensor *f_bce(tt_tensor *const *in, void *ud) { return tt_bce_with_logits(in[0], in[1]); }

START_TEST(test_bce_with_logits) {
  tt_tensor *x = th_leaf(70, TT_DIMS(2, 3, 5), 2.0f);
  tt_tensor *t = th_uniform(71, TT_DIMS(2, 3, 5), 0.0f, 1.0f);
  /* extremes and the point where the max/abs spelling has its kinks */
  tt_f32(x)[0] = 50.0f;
  tt_f32(x)[1] = -50.0f;
  tt_f32(x)[2] = 0.0f;
  tt_f32(x)[3] = 90.0f;
  tt_f32(x)[4] = -90.0f;
  tt_f32(t)[0] = 0.0f;
  tt_f32(t)[1] = 1.0f;
  double want = 0;
  for (int i = 0; i < 30; i++) {
    double xi = tt_f32(x)[i], ti = tt_f32(t)[i];
    want += fmax(xi, 0) - xi * ti + log1p(exp(-fabs(xi)));
  }
  want /= 30;
  tt_tensor *y = tt_bce_with_logits(x, t);
  TH_NN(y);
  ck_assert_int_eq(y->ndim, 0);
  ck_assert_msg(fabs(tt_tensor_get(y, 0) - want) <= 1e-6 * fmax(1, fabs(want)), "bce: %.9g vs %.9g",
                tt_tensor_get(y, 0), want);
  TH_OK(tt_backward(y, NULL, false));
  for (int i = 0; i < 30; i++) {
    double xi = tt_f32(x)[i], ti = tt_f32(t)[i];
    double g = (1.0 / (1.0 + exp(-xi)) - ti) / 30;   /* exact at x = 0 too */
    ck_assert_msg(fabs(tt_tensor_get(x->grad, i) - g) <= 1e-7, "bce grad %d: %.9g vs %.9g", i,
                  tt_tensor_get(x->grad, i), g);
  }
  tt_zero_grad(x);
  tt_tensor_set_requires_grad(t, true);
  tt_tensor *in[2] = {x, t};
  th_gradcheck("bce_with_logits [2, 3, 5]", f_bce, 2, in, NULL, 1e-2, 2e-5, 1e-3, 30);
  tt_tensor *bad = th_randn(72, TT_DIMS(30), 1.0f);
  ck_assert_ptr_null(tt_bce_with_logits(x, bad));
  assert_error_mentions("bce shape mismatch", "[30]");
  tt_tensor_unref(bad); tt_tensor_unref(y); tt_tensor_unref(x); tt_tensor_unref(t);
}
END_TEST

/* ---- codebook argmin ---- */

/* OpenBLAS's thread control (weak: absent with another CBLAS). The argmin
 * kernel tiles differently when the BLAS runs its own thread pool, so the
 * tests run with two BLAS threads and with one to cover both orders. */
extern void openblas_set_num_threads(int);
extern int openblas_get_num_threads(void);
#pragma weak openblas_set_num_threads
#pragma weak openblas_get_num_threads

typedef void (*argmin_case_fn)(int64_t N, int64_t K, int64_t D, uint64_t seed);

static void with_blas_threads(argmin_case_fn f, int64_t N, int64_t K, int64_t D, uint64_t seed) {
  if (!openblas_set_num_threads || !openblas_get_num_threads) {
    f(N, K, D, seed);
    return;
  }
  int prev = openblas_get_num_threads();
  openblas_set_num_threads(2);
  f(N, K, D, seed);
  openblas_set_num_threads(1);
  f(N, K, D, seed);
  openblas_set_num_threads(prev);
}

/* First k minimising the exact (integer-valued) squared distance. */
static void brute_argmin_exact(const tt_tensor *z, const tt_tensor *e, int64_t *idx, double *dmin) {
  int64_t N = z->shape[0], D = z->shape[1], K = e->shape[0];
  for (int64_t n = 0; n < N; n++) {
    double best = INFINITY;
    int64_t bi = -1;
    for (int64_t k = 0; k < K; k++) {
      double d = 0;
      for (int64_t c = 0; c < D; c++) {
        double diff = (double)tt_f32(z)[n * D + c] - tt_f32(e)[k * D + c];
        d += diff * diff;
      }
      if (d < best) { best = d; bi = k; }
    }
    idx[n] = bi;
    dmin[n] = best;
  }
}

/* Integer-valued data: every product and sum is exact in fp32, so equal
 * distances are bit-equal and the first index must win. */
static tt_tensor *small_ints(uint64_t seed, int64_t rows, int64_t D, int lo, int hi) {
  tt_tensor *t = tt_tensor_new(TT_F32, TT_DIMS(rows, D), TT_CPU);
  tt_rng r = tt_rng_make(seed);
  for (int64_t i = 0; i < rows * D; i++) tt_f32(t)[i] = (float)(lo + (int)(tt_rng_uniform(&r) * (hi - lo + 1)));
  return t;
}

static void check_exact_ties(int64_t N, int64_t K, int64_t D, uint64_t seed) {
  tt_tensor *z = small_ints(seed, N, D, -2, 2), *e = small_ints(seed + 1, K, D, -1, 1);
  /* duplicate codes far apart (across code tiles when K is large) */
  for (int64_t c = 0; c < D; c++) {
    tt_f32(e)[(K - 1) * D + c] = tt_f32(e)[(K / 3) * D + c];
    tt_f32(e)[(K / 2) * D + c] = tt_f32(e)[(K / 3) * D + c];
  }
  /* and vectors that sit exactly on the duplicated code */
  for (int64_t c = 0; c < D; c++) tt_f32(z)[c] = tt_f32(e)[(K / 3) * D + c];
  int64_t *want = malloc(sizeof *want * (size_t)N);
  double *wd = malloc(sizeof *wd * (size_t)N);
  brute_argmin_exact(z, e, want, wd);
  ck_assert(wd[0] == 0 && want[0] <= K / 3);
  tt_tensor *dmin = NULL;
  tt_tensor *idx = tt_codebook_argmin(z, e, &dmin);
  TH_NN(idx);
  TH_NN(dmin);
  ck_assert_int_eq(idx->dtype, TT_I64);
  ck_assert_int_eq(idx->shape[0], N);
  int ties = 0;
  for (int64_t n = 0; n < N; n++) {
    ck_assert_msg(tt_i64(idx)[n] == want[n], "ties N=%lld K=%lld: row %lld got code %lld, first minimum is %lld",
                  (long long)N, (long long)K, (long long)n, (long long)tt_i64(idx)[n], (long long)want[n]);
    ck_assert_msg(tt_f32(dmin)[n] == (float)wd[n], "ties: row %lld dmin %.9g vs %.9g", (long long)n,
                  tt_f32(dmin)[n], wd[n]);
    /* count rows where a later code has the same distance (so the tie rule mattered) */
    for (int64_t k = want[n] + 1; k < K; k++) {
      double d = 0;
      for (int64_t c = 0; c < D; c++) {
        double diff = (double)tt_f32(z)[n * D + c] - tt_f32(e)[k * D + c];
        d += diff * diff;
      }
      if (d == wd[n]) { ties++; break; }
    }
  }
  ck_assert_msg(ties > N / 4, "only %d of %lld rows had a tie; the test lost its point", ties, (long long)N);
  free(want);
  free(wd);
  tt_tensor_unref(idx); tt_tensor_unref(dmin); tt_tensor_unref(z); tt_tensor_unref(e);
}

START_TEST(test_codebook_argmin_ties) {
  with_blas_threads(check_exact_ties, 9, 16, 4, 80);
  /* several row blocks and code tiles of both tilings, and the threaded paths */
  with_blas_threads(check_exact_ties, 300, 2500, 8, 81);
  with_blas_threads(check_exact_ties, 1100, 8300, 8, 82);
}
END_TEST

/* Random floats: the chosen code must be the brute-force one wherever the
 * runner-up is not within rounding of it, and its distance the minimum. */
static void check_random_argmin(int64_t N, int64_t K, int64_t D, uint64_t seed) {
  tt_tensor *z = th_randn(seed, TT_DIMS(N, D), 1.0f), *e = th_randn(seed + 1, TT_DIMS(K, D), 1.0f);
  tt_tensor *dmin = NULL;
  tt_tensor *idx = tt_codebook_argmin(z, e, &dmin);
  TH_NN(idx);
  int decided = 0;
  double worst = 0;
  for (int64_t n = 0; n < N; n++) {
    double best = INFINITY, second = INFINITY, dgot = 0;
    int64_t bi = -1, got = tt_i64(idx)[n];
    for (int64_t k = 0; k < K; k++) {
      double d = 0;
      for (int64_t c = 0; c < D; c++) {
        double diff = (double)tt_f32(z)[n * D + c] - tt_f32(e)[k * D + c];
        d += diff * diff;
      }
      if (k == got) dgot = d;
      if (d < best) { second = best; best = d; bi = k; }
      else if (d < second) second = d;
    }
    ck_assert_msg(got >= 0 && got < K, "row %lld: index %lld out of range", (long long)n, (long long)got);
    ck_assert_msg(dgot - best <= 1e-4 * (1 + best), "row %lld: chose code %lld at distance %.7g, minimum %.7g",
                  (long long)n, (long long)got, dgot, best);
    if (second - best > 1e-3 * (1 + best)) {
      decided++;
      ck_assert_msg(got == bi, "row %lld: chose %lld, brute force %lld", (long long)n, (long long)got, (long long)bi);
    }
    worst = fmax(worst, fabs(tt_f32(dmin)[n] - best));
  }
  ck_assert_msg(decided > N * 3 / 4, "only %d of %lld rows had a clear minimum", decided, (long long)N);
  /* dmin is the expanded fp32 form: cancellation error grows with |z|^2 + |e|^2 ~ 2D */
  ck_assert_msg(worst <= 1e-5 * 2 * (double)D, "dmin max abs diff %.3g", worst);
  tt_tensor_unref(idx); tt_tensor_unref(dmin); tt_tensor_unref(z); tt_tensor_unref(e);
}

START_TEST(test_codebook_argmin_random) {
  with_blas_threads(check_random_argmin, 1, 3, 1, 90);
  with_blas_threads(check_random_argmin, 37, 11, 5, 91);
  with_blas_threads(check_random_argmin, 200, 1500, 32, 92);
}
END_TEST

START_TEST(test_codebook_argmin_errors) {
  tt_tensor *z = th_randn(95, TT_DIMS(4, 3), 1.0f), *e = th_randn(96, TT_DIMS(5, 2), 1.0f);
  tt_tensor *dmin = (tt_tensor *)&dmin;
  ck_assert_ptr_null(tt_codebook_argmin(z, e, &dmin));
  ck_assert_ptr_null(dmin);
  assert_error_mentions("argmin D mismatch", "z [4, 3], codebook [5, 2]");
  tt_tensor *z1 = th_randn(97, TT_DIMS(12), 1.0f);
  ck_assert_ptr_null(tt_codebook_argmin(z1, e, NULL));
  assert_error_mentions("argmin 1-D z", "[12]");
  /* without dmin_out, only the indices */
  tt_tensor *e3 = th_randn(98, TT_DIMS(5, 3), 1.0f);
  tt_tensor *idx = tt_codebook_argmin(z, e3, NULL);
  TH_NN(idx);
  tt_tensor_unref(idx); tt_tensor_unref(e3); tt_tensor_unref(z1); tt_tensor_unref(z); tt_tensor_unref(e);
}
END_TEST

/* ---- Adam / AdamW ---- */

typedef struct {
  double lr, b1, b2, eps, wd;
  bool decoupled;
} adam_ref_cfg;

/* PyTorch's Adam / AdamW step in double. */
static void adam_ref_step(const adam_ref_cfg *c, int64_t step, double *p, const double *g, double *m, double *v,
                          int64_t n) {
  double bc1 = 1 - pow(c->b1, (double)step), bc2 = 1 - pow(c->b2, (double)step);
  for (int64_t i = 0; i < n; i++) {
    double gi = g[i];
    if (c->decoupled) p[i] *= 1 - c->lr * c->wd;
    else gi += c->wd * p[i];
    m[i] = c->b1 * m[i] + (1 - c->b1) * gi;
    v[i] = c->b2 * v[i] + (1 - c->b2) * gi * gi;
    double denom = sqrt(v[i]) / sqrt(bc2) + c->eps;
    p[i] -= c->lr / bc1 * m[i] / denom;
  }
}

static void run_adam_case(const adam_ref_cfg *c, int64_t n, int steps, uint64_t seed, float gscale, double tol) {
  tt_tensor *p = th_randn(seed, TT_DIMS(n), 1.0f);
  tt_tensor *m = tt_zeros(TT_F32, TT_DIMS(n), TT_CPU), *v = tt_zeros(TT_F32, TT_DIMS(n), TT_CPU);
  double *rp = malloc(sizeof(double) * (size_t)n * 4), *rm = rp + n, *rv = rm + n, *rg = rv + n;
  for (int64_t i = 0; i < n; i++) {
    rp[i] = tt_f32(p)[i];
    rm[i] = rv[i] = 0;
  }
  tt_adam_params ap = {(float)c->lr, (float)c->b1, (float)c->b2, (float)c->eps, (float)c->wd, c->decoupled, 0};
  for (int s = 1; s <= steps; s++) {
    /* a gradient that changes sign and scale from step to step */
    tt_tensor *g = th_randn(seed + 100 + (uint64_t)s, TT_DIMS(n), gscale * (s % 2 ? 1.0f : 0.01f));
    for (int64_t i = 0; i < n; i++) rg[i] = tt_f32(g)[i];
    ap.step = s;
    TH_OK(tt_adam_step(&ap, p, g, m, v));
    adam_ref_cfg cf = *c;
    cf.lr = ap.lr; cf.b1 = ap.beta1; cf.b2 = ap.beta2; cf.eps = ap.eps; cf.wd = ap.weight_decay;
    adam_ref_step(&cf, s, rp, rg, rm, rv, n);
    tt_tensor_unref(g);
  }
  double wp = 0, wm = 0, wv = 0;
  for (int64_t i = 0; i < n; i++) {
    wp = fmax(wp, fabs(tt_f32(p)[i] - rp[i]));
    wm = fmax(wm, fabs(tt_f32(m)[i] - rm[i]));
    wv = fmax(wv, fabs(tt_f32(v)[i] - rv[i]) / fmax(rv[i], 1e-30));
  }
  ck_assert_msg(wp <= tol && wm <= 1e-6 && wv <= 1e-5,
                "adam%s n=%lld after %d steps: param max abs diff %.3g (tol %.3g), m %.3g, v rel %.3g",
                c->decoupled ? "w" : "", (long long)n, steps, wp, tol, wm, wv);
  free(rp);
  tt_tensor_unref(p); tt_tensor_unref(m); tt_tensor_unref(v);
}

START_TEST(test_adam_steps) {
  adam_ref_cfg adam = {1e-2, 0.5, 0.9, 1e-8, 0.0, false};        /* the VQGAN's betas */
  adam_ref_cfg adam_l2 = {1e-2, 0.9, 0.999, 1e-8, 0.1, false};   /* L2 added to the gradient */
  adam_ref_cfg adamw = {3e-3, 0.9, 0.95, 1e-8, 0.1, true};       /* the transformer's AdamW */
  run_adam_case(&adam, 37, 6, 200, 1.0f, 2e-6);
  run_adam_case(&adam_l2, 37, 6, 201, 1.0f, 2e-6);
  run_adam_case(&adamw, 37, 6, 202, 1.0f, 2e-6);
  /* gradients as small as eps: where eps enters the denominator matters */
  adam_ref_cfg small = {1e-2, 0.9, 0.999, 1e-5, 0.0, false};
  run_adam_case(&small, 37, 6, 204, 1e-5f, 2e-6);
  /* past the threaded threshold */
  run_adam_case(&adamw, 100003, 3, 203, 1.0f, 2e-6);
}
END_TEST

START_TEST(test_adamw_decoupled_decay) {
  /* With a zero gradient and fresh moments the update term is 0/(0+eps) = 0:
   * AdamW only shrinks the weight by (1 - lr*wd); Adam with L2 instead feeds
   * wd*p through the moments and moves each weight by about lr. */
  float pv[4] = {1.0f, -2.0f, 0.5f, 3.0f};
  tt_tensor *p = tt_tensor_from_data(TT_F32, TT_DIMS(4), pv, TT_CPU);
  tt_tensor *g = tt_zeros(TT_F32, TT_DIMS(4), TT_CPU);
  tt_tensor *m = tt_zeros(TT_F32, TT_DIMS(4), TT_CPU), *v = tt_zeros(TT_F32, TT_DIMS(4), TT_CPU);
  tt_adam_params w = {0.1f, 0.9f, 0.999f, 1e-8f, 0.5f, true, 1};
  TH_OK(tt_adam_step(&w, p, g, m, v));
  for (int i = 0; i < 4; i++) {
    ck_assert_float_eq(tt_f32(p)[i], pv[i] * (float)(1.0 - 0.1f * 0.5));
    ck_assert_float_eq(tt_f32(m)[i], 0.0f);
  }
  tt_tensor *p2 = tt_tensor_from_data(TT_F32, TT_DIMS(4), pv, TT_CPU);
  tt_tensor *m2 = tt_zeros(TT_F32, TT_DIMS(4), TT_CPU), *v2 = tt_zeros(TT_F32, TT_DIMS(4), TT_CPU);
  tt_adam_params l2 = w;
  l2.decoupled = false;
  TH_OK(tt_adam_step(&l2, p2, g, m2, v2));
  for (int i = 0; i < 4; i++)   /* step 1: m/(sqrt(v)+eps) after bias correction is sign(g) */
    ck_assert_double_eq_tol(tt_f32(p2)[i], pv[i] - 0.1 * (pv[i] > 0 ? 1 : -1), 1e-6);
  tt_tensor_unref(p); tt_tensor_unref(g); tt_tensor_unref(m); tt_tensor_unref(v);
  tt_tensor_unref(p2); tt_tensor_unref(m2); tt_tensor_unref(v2);
}
END_TEST

START_TEST(test_adam_errors) {
  tt_tensor *p = th_randn(300, TT_DIMS(4, 3), 1.0f), *g = th_randn(301, TT_DIMS(4, 3), 1.0f);
  tt_tensor *m = tt_zeros(TT_F32, TT_DIMS(4, 3), TT_CPU), *v = tt_zeros(TT_F32, TT_DIMS(5), TT_CPU);
  tt_adam_params ap = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, false, 1};
  ck_assert_int_eq(tt_adam_step(&ap, p, g, m, v), TT_ERR_INVALID);
  assert_error_mentions("adam v mismatch", "second moment [5]");
  ap.step = 0;
  ck_assert_int_eq(tt_adam_step(&ap, p, g, m, m), TT_ERR_INVALID);
  assert_error_mentions("adam step 0", "step");
  ap.step = 1;
  ck_assert_int_eq(tt_adam_step(&ap, p, NULL, m, m), TT_ERR_INVALID);
  assert_error_mentions("adam no grad", "no gradient");
  /* a strided gradient is accepted (read through a contiguous copy) */
  tt_tensor *gt0 = th_randn(302, TT_DIMS(3, 4), 1.0f);
  tt_tensor *gt = tt_transpose(gt0, 0, 1);
  tt_tensor *v2 = tt_zeros(TT_F32, TT_DIMS(4, 3), TT_CPU);
  TH_OK(tt_adam_step(&ap, p, gt, m, v2));
  ck_assert_double_eq_tol(tt_f32(m)[1], 0.1 * tt_f32(gt0)[4], 1e-7);
  tt_tensor_unref(gt); tt_tensor_unref(gt0); tt_tensor_unref(v2);
  tt_tensor_unref(p); tt_tensor_unref(g); tt_tensor_unref(m); tt_tensor_unref(v);
}
END_TEST

int main(void) {
  Suite *s = suite_create("ops_misc");
  TCase *te = tcase_create("embedding");
  tcase_add_test(te, test_embedding_values);
  tcase_add_test(te, test_embedding_errors);
  tcase_add_test(te, test_embedding_grads);
  tcase_add_test(te, test_one_hot);
  suite_add_tcase(s, te);
  TCase *tl = tcase_create("loss");
  tcase_set_timeout(tl, 60);
  tcase_add_test(tl, test_l1_mse);
  tcase_add_test(tl, test_cross_entropy_values);
  tcase_add_test(tl, test_cross_entropy_grads);
  tcase_add_test(tl, test_cross_entropy_errors);
  tcase_add_test(tl, test_bce_with_logits);
  suite_add_tcase(s, tl);
  TCase *tq = tcase_create("quantize");
  tcase_set_timeout(tq, 60);
  tcase_add_test(tq, test_codebook_argmin_ties);
  tcase_add_test(tq, test_codebook_argmin_random);
  tcase_add_test(tq, test_codebook_argmin_errors);
  suite_add_tcase(s, tq);
  TCase *to = tcase_create("optim");
  tcase_add_test(to, test_adam_steps);
  tcase_add_test(to, test_adamw_decoupled_decay);
  tcase_add_test(to, test_adam_errors);
  suite_add_tcase(s, to);
  return th_run(s);
}

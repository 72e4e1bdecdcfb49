/* check_ops_gemm_bf16.c — bf16 mixed-precision GEMMs (taming/ops/gemm.h:
 * gemm_bf16 and the compute-precision switch of tt_linear / tt_matmul).
 *
 * The kernel against a double-precision reference computed from operands
 * rounded to bf16 (round to nearest even), for every transpose pair, ragged
 * shapes and alpha/beta: only the f32 accumulation may differ, which a wrong
 * rounding mode or a misplaced element exceeds by orders of magnitude. Then
 * the switch: off gives the f32 results bit for bit; on, linear and matmul
 * forward and backward match the same kind of reference, and stay within a
 * bf16-sized distance of the f32 gradients; a node keeps the precision of its
 * forward; attention under bf16 stays within a bf16-sized distance of f32.
 * Without a bf16 GEMM on this CPU the suite exits 77.
 * tests/gemm_bf16_paths_test.sh runs it again on the AVX512-BF16 path. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testhelp.h"

/* the value a bf16 operand carries: round to nearest even (subnormals as zero, as
 * vcvtneps2bf16 reads them; the tests' values are normal) */
static double bf(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  memcpy(&f, &u, 4);
  return f;
}

/* op(A)[m, k] and op(B)[k, n] of row-major storage */
static float at(const float *A, bool t, int64_t ld, int64_t r, int64_t c) { return t ? A[c * ld + r] : A[r * ld + c]; }

START_TEST(test_kernel_against_reference) {
  static const int64_t shapes[][3] = {{1, 1, 1}, {5, 3, 7}, {16, 16, 32}, {17, 33, 45}, {64, 48, 96},
                                      {100, 70, 300}, {33, 130, 64}, {40, 50, 1100},
                                      {130, 200, 700}};   /* k in chunks; the last split across threads */
  tt_gemm_bf16_fn f = TT_KERNEL(TT_CPU, gemm_bf16);
  TH_NN(f);
  for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
    for (int v = 0; v < 8; v++) {
      bool ta = v & 1, tb = v & 2, acc = v & 4;
      int64_t M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
      tt_tensor *a = th_randn(10 + si, TT_DIMS(M * K), 1.0f), *b = th_randn(20 + si, TT_DIMS(K * N), 1.0f);
      tt_tensor *c = th_randn(30 + si, TT_DIMS(M * N), 1.0f);
      const float *pa = tt_f32(a), *pb = tt_f32(b);
      float *pc = tt_f32(c);
      int64_t lda = ta ? M : K, ldb = tb ? K : N;
      float alpha = acc ? 0.5f : 1.0f, beta = acc ? 2.0f : 0.0f;
      double *ref = th_ref_alloc(M * N);
      for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
          double s = 0;
          for (int64_t k = 0; k < K; k++) s += bf(at(pa, ta, lda, i, k)) * bf(at(pb, tb, ldb, k, j));
          ref[i * N + j] = alpha * s + (acc ? beta * (double)pc[i * N + j] : 0.0);
        }
      if (!acc)
        for (int64_t i = 0; i < M * N; i++) pc[i] = NAN;   /* beta = 0 must not read C */
      TH_OK(f(ta, tb, M, N, K, alpha, pa, lda, pb, ldb, beta, pc, N));
      char what[96];
      snprintf(what, sizeof what, "gemm_bf16 %lldx%lldx%lld ta=%d tb=%d beta=%g", (long long)M, (long long)N,
               (long long)K, ta, tb, beta);
      /* f32 accumulation of K products of N(0,1) values: well under 1e-6 * K; a bf16
       * rounding slip moves a result by ~2^-9 sqrt(K) */
      th_assert_ref(what, c, ref, 1e-6 * (double)K + 1e-6, 1e-6);
      free(ref);
      tt_tensor_unref(a); tt_tensor_unref(b); tt_tensor_unref(c);
    }
}
END_TEST

/* y = x w^T + b in double from bf16-rounded x and w (the bias is added in f32) */
static double *linear_ref(const tt_tensor *x, const tt_tensor *w, const tt_tensor *b, int64_t R, int64_t I, int64_t O) {
  double *ref = th_ref_alloc(R * O);
  const float *px = tt_f32((tt_tensor *)x), *pw = tt_f32((tt_tensor *)w), *pb = tt_f32((tt_tensor *)b);
  for (int64_t r = 0; r < R; r++)
    for (int64_t o = 0; o < O; o++) {
      double s = 0;
      for (int64_t i = 0; i < I; i++) s += bf(px[r * I + i]) * bf(pw[o * I + i]);
      ref[r * O + o] = s + pb[o];
    }
  return ref;
}

START_TEST(test_switch_off_is_f32_bit_for_bit) {
  int64_t R = 37, I = 70, O = 45;
  tt_tensor *x = th_randn(1, TT_DIMS(R, I), 1.0f), *w = th_randn(2, TT_DIMS(O, I), 0.3f), *b = th_randn(3, TT_DIMS(O), 1.0f);
  ck_assert_int_eq(tt_compute_precision(), TT_F32);
  tt_tensor *y0 = tt_linear(x, w, b);
  TH_NN(y0);
  TH_OK(tt_set_compute_precision(TT_BF16));
  tt_tensor *y1 = tt_linear(x, w, b);
  TH_NN(y1);
  TH_OK(tt_set_compute_precision(TT_F32));
  tt_tensor *y2 = tt_linear(x, w, b);
  TH_NN(y2);
  /* f32 again: the plain kernel's result, bit for bit */
  ck_assert_int_eq(memcmp(tt_f32(y0), tt_f32(y2), sizeof(float) * (size_t)(R * O)), 0);
  tt_tensor *y3 = tt_tensor_new(TT_F32, TT_DIMS(R, O), TT_CPU);
  TH_NN(y3);
  float *p3 = tt_f32(y3);
  for (int64_t r = 0; r < R; r++) memcpy(p3 + r * O, tt_f32(b), sizeof(float) * (size_t)O);
  tt_gemm_fn g = TT_KERNEL(TT_CPU, gemm);
  TH_OK(g(false, true, R, O, I, 1.0f, tt_f32(x), I, tt_f32(w), I, 1.0f, p3, O));
  ck_assert_int_eq(memcmp(tt_f32(y0), p3, sizeof(float) * (size_t)(R * O)), 0);
  /* bf16: the rounded operands' products, and visibly not the f32 result */
  double *ref = linear_ref(x, w, b, R, I, O);
  th_assert_ref("linear bf16 forward", y1, ref, 1e-4, 1e-5);
  ck_assert_msg(th_max_abs_diff(y0, y1) > 1e-4, "bf16 linear equals f32 (max diff %g)", th_max_abs_diff(y0, y1));
  free(ref);
  /* a precision that is not a compute precision */
  ck_assert_int_eq(tt_set_compute_precision(TT_I8), TT_ERR_INVALID);
  ck_assert_msg(strstr(tt_error_message(), "expected f32 or bf16, found i8"), "message: %s", tt_error_message());
  ck_assert_int_eq(tt_compute_precision(), TT_F32);
  tt_tensor_unref(y0); tt_tensor_unref(y1); tt_tensor_unref(y2); tt_tensor_unref(y3);
  tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b);
}
END_TEST

/* gradients of sum(linear(x, w, b) * G) at the given precision */
static void linear_grads(tt_dtype prec, tt_tensor *x, tt_tensor *w, tt_tensor *b, tt_tensor *G, tt_tensor **gx,
                         tt_tensor **gw, tt_tensor **gb) {
  tt_zero_grad(x); tt_zero_grad(w); tt_zero_grad(b);
  TH_OK(tt_set_compute_precision(prec));
  tt_tensor *y = tt_linear(x, w, b);
  TH_NN(y);
  /* switch back before backward: the node keeps its forward's precision */
  TH_OK(tt_set_compute_precision(prec == TT_BF16 ? TT_F32 : TT_BF16));
  TH_OK(tt_backward(y, G, false));
  TH_OK(tt_set_compute_precision(TT_F32));
  *gx = tt_tensor_ref(x->grad); *gw = tt_tensor_ref(w->grad); *gb = tt_tensor_ref(b->grad);
  tt_tensor_unref(y);
}

START_TEST(test_linear_backward) {
  int64_t R = 41, I = 70, O = 45;
  tt_tensor *x = th_leaf(1, TT_DIMS(R, I), 1.0f), *w = th_leaf(2, TT_DIMS(O, I), 0.3f), *b = th_leaf(3, TT_DIMS(O), 1.0f);
  tt_tensor *G = th_randn(4, TT_DIMS(R, O), 1.0f);
  tt_tensor *fx, *fw, *fb, *hx, *hw, *hb;
  linear_grads(TT_F32, x, w, b, G, &fx, &fw, &fb);
  linear_grads(TT_BF16, x, w, b, G, &hx, &hw, &hb);
  const float *px = tt_f32(x), *pw = tt_f32(w), *pg = tt_f32(G);
  /* dx = G w and dW = G^T x from bf16-rounded operands, f32 sums */
  double *rx = th_ref_alloc(R * I), *rw = th_ref_alloc(O * I);
  for (int64_t r = 0; r < R; r++)
    for (int64_t i = 0; i < I; i++)
      for (int64_t o = 0; o < O; o++) rx[r * I + i] += bf(pg[r * O + o]) * bf(pw[o * I + i]);
  for (int64_t o = 0; o < O; o++)
    for (int64_t i = 0; i < I; i++)
      for (int64_t r = 0; r < R; r++) rw[o * I + i] += bf(pg[r * O + o]) * bf(px[r * I + i]);
  th_assert_ref("bf16 dx", hx, rx, 1e-4, 1e-5);
  th_assert_ref("bf16 dW", hw, rw, 1e-4, 1e-5);
  /* the bias gradient is a sum, not a product: f32 either way */
  ck_assert_int_eq(memcmp(tt_f32(fb), tt_f32(hb), sizeof(float) * (size_t)O), 0);
  /* against f32: sums of ~45 products of two operands each off by up to 2^-9 relative,
   * so within 2^-7 of the largest gradient, and not equal */
  double mx = 0, mw = 0;
  for (int64_t i = 0; i < R * I; i++) mx = fmax(mx, fabs(tt_f32(fx)[i]));
  for (int64_t i = 0; i < O * I; i++) mw = fmax(mw, fabs(tt_f32(fw)[i]));
  th_assert_close("bf16 dx vs f32", hx, fx, mx / 128);
  th_assert_close("bf16 dW vs f32", hw, fw, mw / 128);
  ck_assert(th_max_abs_diff(hx, fx) > 0 && th_max_abs_diff(hw, fw) > 0);
  free(rx); free(rw);
  tt_tensor *all[] = {fx, fw, fb, hx, hw, hb, x, w, b, G};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) tt_tensor_unref(all[i]);
}
END_TEST

START_TEST(test_matmul_forward_backward) {
  /* batched with a transposed operand: [3, 20, 30] @ [3, 25, 30]^T -> [3, 20, 25] */
  int64_t Bn = 3, M = 20, K = 30, N = 25;
  tt_tensor *a = th_leaf(5, TT_DIMS(Bn, M, K), 1.0f), *b = th_leaf(6, TT_DIMS(Bn, N, K), 1.0f);
  tt_tensor *G = th_randn(7, TT_DIMS(Bn, M, N), 1.0f);
  TH_OK(tt_set_compute_precision(TT_BF16));
  tt_tensor *bt = tt_transpose(b, -1, -2);
  tt_tensor *y = bt ? tt_matmul(a, bt) : NULL;
  TH_NN(y);
  TH_OK(tt_set_compute_precision(TT_F32));
  TH_OK(tt_backward(y, G, false));
  const float *pa = tt_f32(a), *pb = tt_f32(b), *pg = tt_f32(G);
  double *ry = th_ref_alloc(Bn * M * N), *ra = th_ref_alloc(Bn * M * K), *rb = th_ref_alloc(Bn * N * K);
  for (int64_t z = 0; z < Bn; z++)
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++)
        for (int64_t k = 0; k < K; k++) {
          double av = bf(pa[(z * M + i) * K + k]), bv = bf(pb[(z * N + j) * K + k]), gv = bf(pg[(z * M + i) * N + j]);
          ry[(z * M + i) * N + j] += av * bv;
          ra[(z * M + i) * K + k] += gv * bv;   /* dA = G B */
          rb[(z * N + j) * K + k] += gv * av;   /* dB = G^T A */
        }
  th_assert_ref("matmul bf16 forward", y, ry, 1e-4, 1e-5);
  th_assert_ref("matmul bf16 dA", a->grad, ra, 1e-4, 1e-5);
  th_assert_ref("matmul bf16 dB", b->grad, rb, 1e-4, 1e-5);
  free(ry); free(ra); free(rb);
  tt_tensor_unref(y); tt_tensor_unref(bt); tt_tensor_unref(G); tt_tensor_unref(a); tt_tensor_unref(b);
}
END_TEST

/* causal attention [2, 4, 80, 16] under bf16 against f32: forward and gradients within
 * 2^-6 of each tensor's largest value (scores of 16 bf16 products, then softmax and a sum
 * of 80 more), not equal to f32, and the backward uses the forward's precision */
START_TEST(test_attention) {
  int64_t sh[4] = {2, 4, 80, 16};
  tt_attention_params p = {0.25f, true, 0, 0};
  tt_tensor *out[2][4];   /* [f32, bf16] x [y, gq, gk, gv] */
  tt_tensor *G = th_randn(14, 4, sh, 1.0f);
  for (int bf16 = 0; bf16 < 2; bf16++) {
    tt_tensor *q = th_leaf(11, 4, sh, 1.0f), *k = th_leaf(12, 4, sh, 1.0f), *v = th_leaf(13, 4, sh, 1.0f);
    TH_OK(tt_set_compute_precision(bf16 ? TT_BF16 : TT_F32));
    tt_tensor *y = tt_attention(q, k, v, &p);
    TH_NN(y);
    TH_OK(tt_set_compute_precision(bf16 ? TT_F32 : TT_BF16));
    TH_OK(tt_backward(y, G, false));
    TH_OK(tt_set_compute_precision(TT_F32));
    out[bf16][0] = y;
    out[bf16][1] = tt_tensor_ref(q->grad);
    out[bf16][2] = tt_tensor_ref(k->grad);
    out[bf16][3] = tt_tensor_ref(v->grad);
    tt_tensor_unref(q); tt_tensor_unref(k); tt_tensor_unref(v);
  }
  static const char *names[4] = {"attention bf16 y", "attention bf16 dq", "attention bf16 dk", "attention bf16 dv"};
  for (int i = 0; i < 4; i++) {
    double mx = 0;
    const float *f = tt_f32(out[0][i]);
    for (int64_t j = 0; j < tt_tensor_numel(out[0][i]); j++) mx = fmax(mx, fabs(f[j]));
    th_assert_close(names[i], out[1][i], out[0][i], mx / 64);
    ck_assert_msg(th_max_abs_diff(out[1][i], out[0][i]) > 0, "%s equals f32", names[i]);
    tt_tensor_unref(out[0][i]);
    tt_tensor_unref(out[1][i]);
  }
  tt_tensor_unref(G);
}
END_TEST

int main(void) {
  const char *isa = tt_gemm_bf16_isa();
  printf("gemm_bf16: %s\n", isa);
  if (!tt_backend_supports(TT_CPU, "gemm_bf16")) {
    /* the switch refuses and stays f32, with the reason */
    if (tt_set_compute_precision(TT_BF16) != TT_ERR_UNSUPPORTED || tt_compute_precision() != TT_F32) {
      fprintf(stderr, "check_ops_gemm_bf16: bf16 was accepted without a bf16 GEMM\n");
      return 1;
    }
    fprintf(stderr, "check_ops_gemm_bf16: SKIP: %s\n", tt_error_message());
    return 77;
  }
  Suite *s = suite_create("ops_gemm_bf16");
  TCase *tk = tcase_create("kernel");
  tcase_set_timeout(tk, 120);
  tcase_add_test(tk, test_kernel_against_reference);
  suite_add_tcase(s, tk);
  TCase *tw = tcase_create("switch");
  tcase_add_test(tw, test_switch_off_is_f32_bit_for_bit);
  tcase_add_test(tw, test_linear_backward);
  tcase_add_test(tw, test_matmul_forward_backward);
  tcase_add_test(tw, test_attention);
  suite_add_tcase(s, tw);
  return th_run(s);
}

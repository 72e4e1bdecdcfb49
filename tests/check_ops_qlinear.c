/* check_ops_qlinear.c — linear layers with bf16 / int8 weights (taming/ops/qlinear.h):
 * packing and per-channel quantization against their definitions, the kernels
 * against a plain C reference in double precision over many shapes (batch-1
 * GEMV and the tiled GEMM paths, ragged tails), thread-count independence, and
 * the refusals. A kernel the CPU lacks is reported and skipped; with neither,
 * the suite exits 77. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "testhelp.h"

static float bf16_round(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  memcpy(&f, &u, 4);
  return f;
}

static float bf16_value(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static bool have(tt_dtype dt) {
  const char *isa;
  bool ok = tt_qlinear_supported(TT_CPU, dt, &isa);
  if (!ok) fprintf(stderr, "qlinear: no %s kernel here (%s); its tests are skipped\n", tt_dtype_name(dt), isa);
  return ok;
}

START_TEST(test_pack_bf16_rounds_to_nearest_even) {
  /* 1 + 2^-8 is halfway between two bf16 values: ties go to the even one (1.0);
   * 1 + 3 * 2^-8 goes up to 1 + 2^-6; the padding past K = 3 is zero */
  float v[3] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, -2.5f};
  tt_tensor *w = tt_tensor_from_data(TT_F32, TT_DIMS(1, 3), v, TT_CPU);
  TH_NN(w);
  tt_tensor *p = tt_qlinear_pack(w, TT_BF16, NULL);
  TH_NN(p);
  ck_assert_int_eq(p->dtype, TT_BF16);
  ck_assert_int_eq(p->shape[0], 1);
  ck_assert_int_eq(p->shape[1], TT_QLINEAR_KALIGN);
  const uint16_t *h = tt_tensor_data(p);
  ck_assert_float_eq(bf16_value(h[0]), 1.0f);
  ck_assert_float_eq(bf16_value(h[1]), 1.0f + 0x1p-6f);
  ck_assert_float_eq(bf16_value(h[2]), -2.5f);
  for (int k = 3; k < TT_QLINEAR_KALIGN; k++) ck_assert_uint_eq(h[k], 0);
  tt_tensor_unref(p);
  tt_tensor_unref(w);
}
END_TEST

START_TEST(test_quantize_rows) {
  int64_t N = 5, K = 37;
  tt_tensor *w = th_randn(11, TT_DIMS(N, K), 0.7f);
  float *pw = tt_f32(w);
  for (int64_t k = 0; k < K; k++) pw[2 * K + k] = 0.0f;   /* a row of zeros */
  tt_tensor *q, *s;
  TH_OK(tt_quantize_i8_rows(w, &q, &s));
  ck_assert_int_eq(q->dtype, TT_I8);
  ck_assert_int_eq(q->shape[1], K);
  const int8_t *pq = tt_tensor_data(q);
  double worst = 0;
  for (int64_t n = 0; n < N; n++) {
    float amax = 0;
    int qmax = 0;
    for (int64_t k = 0; k < K; k++) {
      amax = fmaxf(amax, fabsf(pw[n * K + k]));
      qmax = abs(pq[n * K + k]) > qmax ? abs(pq[n * K + k]) : qmax;
    }
    ck_assert_float_eq_tol(tt_f32(s)[n], amax / 127.0f, 1e-9f);
    ck_assert_int_eq(qmax, amax > 0 ? 127 : 0);   /* the largest weight uses the full range */
    for (int64_t k = 0; k < K; k++) {
      double e = fabs(pq[n * K + k] * (double)tt_f32(s)[n] - pw[n * K + k]);
      if (e > worst) worst = e;
      ck_assert_msg(e <= 0.5 * tt_f32(s)[n] * (1 + 1e-5) + 1e-12, "row %lld col %lld: error %g > scale/2 %g",
                    (long long)n, (long long)k, e, 0.5 * tt_f32(s)[n]);
    }
  }
  printf("quantize_rows: max |q*s - w| %.3g\n", worst);
  /* dequantize is exactly q * s */
  tt_tensor *d = tt_dequantize_i8_rows(q, s);
  TH_NN(d);
  for (int64_t i = 0; i < N * K; i++) ck_assert_float_eq(tt_f32(d)[i], (float)pq[i] * tt_f32(s)[i / K]);
  /* the file form packs to the same bytes and scales as packing f32 directly */
  tt_tensor *s2;
  tt_tensor *p1 = tt_qlinear_pack(w, TT_I8, &s2), *p2 = tt_qlinear_pack_i8(q, s);
  TH_NN(p1);
  TH_NN(p2);
  ck_assert_int_eq(p1->shape[1], 64);
  ck_assert_mem_eq(tt_tensor_data(p1), tt_tensor_data(p2), (size_t)(N * 64));
  th_assert_close("scales", s, s2, 0);
  tt_tensor_unref(p1); tt_tensor_unref(p2); tt_tensor_unref(s2);
  tt_tensor_unref(d); tt_tensor_unref(q); tt_tensor_unref(s); tt_tensor_unref(w);
}
END_TEST

/* one kernel against a double-precision reference over the values it is defined on
 * (bf16-rounded x and w; or q * scale with x in f32) */
static void check_shape(tt_dtype dt, int64_t M, int64_t N, int64_t K, bool bias, uint64_t seed) {
  tt_tensor *x = th_randn(seed, TT_DIMS(M, K), 1.0f), *w = th_randn(seed + 1, TT_DIMS(N, K), 0.05f);
  tt_tensor *b = bias ? th_randn(seed + 2, TT_DIMS(N), 0.1f) : NULL;
  tt_tensor *scale = NULL, *p = tt_qlinear_pack(w, dt, dt == TT_I8 ? &scale : NULL);
  TH_NN(p);
  tt_tensor *y = tt_qlinear(x, p, scale, b);
  TH_NN(y);
  ck_assert_int_eq(y->shape[0], M);
  ck_assert_int_eq(y->shape[1], N);
  const float *px = tt_f32(x), *pw = tt_f32(w), *py = tt_f32(y);
  int64_t Kp = p->shape[1];
  const char *isa;
  tt_qlinear_supported(TT_CPU, dt, &isa);
  bool amx_rows = strstr(isa, "amx") && M >= TT_QLINEAR_TILE_ROWS;
  double worst = 0;
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double r = 0, mag = 0;
      for (int64_t k = 0; k < K; k++) {
        double xv, wv;
        if (dt == TT_BF16) {
          xv = bf16_round(px[m * K + k]);
          wv = bf16_round(pw[n * K + k]);
        } else {
          /* on AMX tiles x is rounded to bf16 for int8 weights too (whole blocks of 16 rows) */
          xv = amx_rows && n < N / 16 * 16 ? bf16_round(px[m * K + k]) : px[m * K + k];
          wv = ((const int8_t *)tt_tensor_data(p))[n * Kp + k] * (double)tt_f32(scale)[n];
        }
        r += xv * wv;
        mag += fabs(xv * wv);
      }
      if (b) r += tt_f32(b)[n];
      /* only f32 accumulation differs from the reference: each of 16 lanes sums K/16
       * products, then the lanes are added, so |err| <= (K/16 + 6) * 2^-24 * sum |x w| */
      double err = fabs(py[m * N + n] - r), tol = ((double)K / 16 + 6) * 0x1p-24 * mag + 1e-7;
      if (err > worst) worst = err;
      ck_assert_msg(err <= tol, "%s M=%lld N=%lld K=%lld: y[%lld, %lld] = %.9g, reference %.9g (diff %.3g > %.3g)",
                    tt_dtype_name(dt), (long long)M, (long long)N, (long long)K, (long long)m, (long long)n,
                    py[m * N + n], r, err, tol);
    }
  printf("qlinear %s M=%lld N=%lld K=%lld bias=%d (%s): max diff vs reference %.3g\n", tt_dtype_name(dt),
         (long long)M, (long long)N, (long long)K, bias, amx_rows ? "amx" : "avx512", worst);
  tt_tensor_unref(y); tt_tensor_unref(p); tt_tensor_unref(scale);
  tt_tensor_unref(b); tt_tensor_unref(x); tt_tensor_unref(w);
}

/* M >= 8 takes the AMX path where there is one: whole and partial 16-row tiles, 1-4 blocks
 * of 16 weight rows per pass and a tail of rows past the last whole block */
static const int64_t Ms[] = {1, 2, 3, 4, 5, 8, 16, 17, 40, 101}, Ns[] = {1, 3, 4, 17, 64, 80, 131},
                     Ks[] = {1, 31, 32, 100, 1024};

START_TEST(test_bf16_against_reference) {
  if (!have(TT_BF16)) return;
  uint64_t seed = 100;
  for (size_t a = 0; a < sizeof Ms / sizeof *Ms; a++)
    for (size_t b = 0; b < sizeof Ns / sizeof *Ns; b++)
      for (size_t c = 0; c < sizeof Ks / sizeof *Ks; c++) check_shape(TT_BF16, Ms[a], Ns[b], Ks[c], (a + b) % 2, seed += 3);
}
END_TEST

START_TEST(test_i8_against_reference) {
  if (!have(TT_I8)) return;
  uint64_t seed = 500;
  for (size_t a = 0; a < sizeof Ms / sizeof *Ms; a++)
    for (size_t b = 0; b < sizeof Ns / sizeof *Ns; b++)
      for (size_t c = 0; c < sizeof Ks / sizeof *Ks; c++) check_shape(TT_I8, Ms[a], Ns[b], Ks[c], (a + b) % 2, seed += 3);
}
END_TEST

/* bf16 / int8 weights against the f32 layer they stand for: the error a user sees */
START_TEST(test_error_against_f32) {
  /* 4 rows: vector kernels; 16 rows: AMX tiles where the CPU has them */
  int64_t M = _i ? 16 : 4, N = 256, K = 1024;
  tt_tensor *x = th_randn(7, TT_DIMS(M, K), 1.0f), *w = th_randn(8, TT_DIMS(N, K), 0.03f);
  tt_tensor *ref = tt_linear(x, w, NULL);
  TH_NN(ref);
  double amax = 0;
  for (int64_t i = 0; i < M * N; i++) amax = fmax(amax, fabs(tt_f32(ref)[i]));
  tt_dtype dts[2] = {TT_BF16, TT_I8};
  /* bf16 keeps 8 significant bits of x and w; int8 keeps 1/254 of each row's range */
  double tols[2] = {0.02, 0.05};
  for (int i = 0; i < 2; i++) {
    if (!have(dts[i])) continue;
    tt_tensor *s = NULL, *p = tt_qlinear_pack(w, dts[i], dts[i] == TT_I8 ? &s : NULL);
    TH_NN(p);
    tt_tensor *y = tt_qlinear(x, p, s, NULL);
    TH_NN(y);
    double d = th_max_abs_diff(y, ref);
    printf("qlinear %s vs f32, %lld rows: max diff %.3g (%.3g of max |y| %.3g)\n", tt_dtype_name(dts[i]), (long long)M, d,
           d / amax, amax);
    ck_assert_msg(d <= tols[i] * amax, "%s: max diff %.3g > %.3g", tt_dtype_name(dts[i]), d, tols[i] * amax);
    tt_tensor_unref(y); tt_tensor_unref(p); tt_tensor_unref(s);
  }
  tt_tensor_unref(ref); tt_tensor_unref(x); tt_tensor_unref(w);
}
END_TEST

START_TEST(test_threads_do_not_change_results) {
#ifdef _OPENMP
  int prev = omp_get_max_threads();
  int64_t M = 16, N = 520, K = 300;
  tt_tensor *x = th_randn(21, TT_DIMS(M, K), 1.0f), *w = th_randn(22, TT_DIMS(N, K), 0.05f);
  tt_dtype dts[2] = {TT_BF16, TT_I8};
  for (int i = 0; i < 2; i++) {
    if (!have(dts[i])) continue;
    tt_tensor *s = NULL, *p = tt_qlinear_pack(w, dts[i], dts[i] == TT_I8 ? &s : NULL);
    omp_set_num_threads(1);
    tt_tensor *y1 = tt_qlinear(x, p, s, NULL);
    omp_set_num_threads(2);
    tt_tensor *y2 = tt_qlinear(x, p, s, NULL);
    TH_NN(y1);
    TH_NN(y2);
    th_assert_close(tt_dtype_name(dts[i]), y1, y2, 0);
    tt_tensor_unref(y1); tt_tensor_unref(y2); tt_tensor_unref(p); tt_tensor_unref(s);
  }
  omp_set_num_threads(prev);
  tt_tensor_unref(x); tt_tensor_unref(w);
#endif
}
END_TEST

START_TEST(test_refusals) {
  tt_tensor *x = th_randn(1, TT_DIMS(2, 40), 1.0f), *w = th_randn(2, TT_DIMS(8, 40), 1.0f);
  tt_tensor *s, *p = tt_qlinear_pack(w, TT_I8, &s);
  TH_NN(p);
  /* i8 weights without their scales */
  ck_assert_ptr_null(tt_qlinear(x, p, NULL, NULL));
  ck_assert_msg(strstr(tt_error_message(), "scales"), "message: %s", tt_error_message());
  /* an input whose width does not fit the packed weight */
  tt_tensor *x2 = th_randn(3, TT_DIMS(2, 20), 1.0f);
  ck_assert_ptr_null(tt_qlinear(x2, p, s, NULL));
  ck_assert_msg(strstr(tt_error_message(), "[2, 20]") && strstr(tt_error_message(), "[8, 64]"), "message: %s",
                tt_error_message());
  /* an unpacked f32 weight, a bias of the wrong size, a packing dtype that does not exist */
  ck_assert_ptr_null(tt_qlinear(x, w, NULL, NULL));
  ck_assert_msg(strstr(tt_error_message(), "found f32 [8, 40]"), "message: %s", tt_error_message());
  tt_tensor *b = th_randn(4, TT_DIMS(7), 1.0f);
  ck_assert_ptr_null(tt_qlinear(x, p, s, b));
  ck_assert_msg(strstr(tt_error_message(), "bias must be f32 [8], found f32 [7]"), "message: %s", tt_error_message());
  ck_assert_ptr_null(tt_qlinear_pack(w, TT_F16, NULL));
  ck_assert_ptr_null(tt_qlinear_pack(w, TT_I8, NULL));
  tt_tensor *q, *s8;
  TH_OK(tt_quantize_i8_rows(x2, &q, &s8));
  tt_tensor *wrong_scale = th_randn(5, TT_DIMS(3), 1.0f);
  ck_assert_ptr_null(tt_dequantize_i8_rows(q, wrong_scale));
  ck_assert_msg(strstr(tt_error_message(), "scale must be f32 [2], found f32 [3]"), "message: %s", tt_error_message());
  tt_tensor_unref(wrong_scale); tt_tensor_unref(q); tt_tensor_unref(s8);
  tt_tensor_unref(b); tt_tensor_unref(x2); tt_tensor_unref(p); tt_tensor_unref(s);
  tt_tensor_unref(x); tt_tensor_unref(w);
}
END_TEST

int main(void) {
  const char *i1, *i2;
  bool bf = tt_qlinear_supported(TT_CPU, TT_BF16, &i1), i8 = tt_qlinear_supported(TT_CPU, TT_I8, &i2);
  printf("qlinear kernels: bf16 %s, i8 %s\n", i1, i2);
  if (!bf && !i8) {
    fprintf(stderr, "check_ops_qlinear: SKIP: no bf16 or int8 linear kernel on this CPU (%s; %s)\n", i1, i2);
    return 77;
  }
  Suite *s = suite_create("ops_qlinear");
  TCase *tp = tcase_create("pack");
  tcase_add_test(tp, test_pack_bf16_rounds_to_nearest_even);
  tcase_add_test(tp, test_quantize_rows);
  tcase_add_test(tp, test_refusals);
  suite_add_tcase(s, tp);
  TCase *tk = tcase_create("kernels");
  tcase_set_timeout(tk, 120);
  tcase_add_test(tk, test_bf16_against_reference);
  tcase_add_test(tk, test_i8_against_reference);
  tcase_add_loop_test(tk, test_error_against_f32, 0, 2);
  tcase_add_test(tk, test_threads_do_not_change_results);
  suite_add_tcase(s, tk);
  return th_run(s);
}

/* check_metrics.c — the sample-set metrics (metrics.h) and the .npz files their
 * statistics live in: streaming mean/covariance against a two-pass reference
 * (with a large offset that a naive sum of squares would cancel), the Fréchet
 * distance against its closed form for covariances sharing eigenvectors, numpy's
 * RandomState permutation against numpy's own output, the Inception Score against
 * a direct evaluation of torch-fidelity's formula, and .npz written and read back,
 * read from numpy's np.savez_compressed, and refused when damaged. */
#include "config.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testhelp.h"
#include "taming/metrics.h"

static char tmpdir[64];

static void setup(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/taming-metrics-XXXXXX");
  ck_assert(mkdtemp(tmpdir) != NULL);
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  ck_assert(system(cmd) == 0);
}

static const char *tmp(const char *name) {
  static char buf[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}

static double *f64(tt_tensor *t) { return (double *)tt_tensor_data(t); }

/* a random orthogonal [n, n] (row-major) by Gram-Schmidt over Gaussian rows */
static void orthogonal(uint64_t seed, int n, double *q) {
  tt_rng r = tt_rng_make(seed);
  for (int i = 0; i < n; i++) {
    double *v = q + (size_t)i * n;
    for (int j = 0; j < n; j++) v[j] = tt_rng_normal(&r);
    for (int k = 0; k < i; k++) {
      const double *u = q + (size_t)k * n;
      double d = 0;
      for (int j = 0; j < n; j++) d += v[j] * u[j];
      for (int j = 0; j < n; j++) v[j] -= d * u[j];
    }
    double nn = 0;
    for (int j = 0; j < n; j++) nn += v[j] * v[j];
    for (int j = 0; j < n; j++) v[j] /= sqrt(nn);
  }
}

/* S = Q^T diag(d) Q as an f64 tensor */
static tt_tensor *spd(const double *q, const double *d, int n) {
  tt_tensor *s = tt_tensor_new(TT_F64, TT_DIMS(n, n), TT_CPU);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double a = 0;
      for (int k = 0; k < n; k++) a += q[(size_t)k * n + i] * d[k] * q[(size_t)k * n + j];
      f64(s)[(size_t)i * n + j] = a;
    }
  return s;
}

START_TEST(test_frechet_closed_form) {
  /* covariances with the same eigenvectors: tr sqrt(sqrt(S1) S2 sqrt(S1)) = sum sqrt(d1 d2),
   * so FID = |mu1 - mu2|^2 + sum (sqrt(d1) - sqrt(d2))^2; some eigenvalues are zero (a
   * rank-deficient covariance, as with fewer samples than features) */
  int n = 40;
  double *q = malloc(sizeof(double) * (size_t)(n * n)), d1[40], d2[40];
  orthogonal(3, n, q);
  tt_rng r = tt_rng_make(4);
  tt_tensor *m1 = tt_tensor_new(TT_F64, TT_DIMS(n), TT_CPU), *m2 = tt_tensor_new(TT_F64, TT_DIMS(n), TT_CPU);
  double want = 0;
  for (int i = 0; i < n; i++) {
    d1[i] = i % 7 == 0 ? 0 : 0.1 + 3 * tt_rng_uniform(&r);
    d2[i] = i % 5 == 0 ? 0 : 0.1 + 2 * tt_rng_uniform(&r);
    f64(m1)[i] = tt_rng_normal(&r);
    f64(m2)[i] = tt_rng_normal(&r);
    double dm = f64(m1)[i] - f64(m2)[i], ds = sqrt(d1[i]) - sqrt(d2[i]);
    want += dm * dm + ds * ds;
  }
  tt_tensor *s1 = spd(q, d1, n), *s2 = spd(q, d2, n);
  double fid = -1;
  ck_assert_msg(tt_frechet_distance(m1, s1, m2, s2, &fid) == TT_OK, "%s", tt_error_message());
  ck_assert_msg(fabs(fid - want) <= 1e-9 * want, "FID %.12g, closed form %.12g (diff %.3g)", fid, want, fid - want);
  /* symmetric, and zero against itself */
  double back = -1, self = -1;
  ck_assert_int_eq(tt_frechet_distance(m2, s2, m1, s1, &back), TT_OK);
  ck_assert_msg(fabs(back - want) <= 1e-9 * want, "FID(2, 1) %.12g, expected %.12g", back, want);
  ck_assert_int_eq(tt_frechet_distance(m1, s1, m1, s1, &self), TT_OK);
  ck_assert_msg(fabs(self) <= 1e-9, "FID of a set against itself: %.3g", self);
  /* f32 inputs are accepted (pytorch-fid's mu is float32) */
  tt_tensor *m1f = tt_cast(m1, TT_F32);
  ck_assert_int_eq(tt_frechet_distance(m1f, s1, m2, s2, &fid), TT_OK);
  ck_assert_msg(fabs(fid - want) <= 1e-5 * want, "FID with f32 mu %.12g, expected %.12g", fid, want);
  /* shape mismatch: a clear message */
  tt_tensor *small = tt_tensor_new(TT_F64, TT_DIMS(3), TT_CPU);
  ck_assert_int_ne(tt_frechet_distance(m1, s1, small, s2, &fid), TT_OK);
  ck_assert_msg(strstr(tt_error_message(), "second statistics") && strstr(tt_error_message(), "[3]"),
                "unclear message: %s", tt_error_message());
  tt_tensor *ts[] = {m1, m2, s1, s2, m1f, small};
  for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) tt_tensor_unref(ts[i]);
  free(q);
}
END_TEST

START_TEST(test_gauss_stats) {
  /* 37 rows of 5 features around 1e4, added in uneven batches; the two-pass
   * reference in double is exact enough to demand 1e-9 relative */
  int N = 37, D = 5;
  tt_tensor *x = tt_tensor_new(TT_F32, TT_DIMS(N, D), TT_CPU);
  tt_rng r = tt_rng_make(9);
  for (int i = 0; i < N * D; i++) tt_f32(x)[i] = (float)(1e4 + (i % D) + 0.5 * tt_rng_normal(&r));
  tt_gauss_stats s;
  ck_assert_int_eq(tt_gauss_stats_init(&s, D), TT_OK);
  int cuts[] = {0, 1, 11, 30, 37};
  for (int c = 0; c < 4; c++) {
    tt_tensor *part = tt_slice(x, 0, cuts[c], cuts[c + 1], 1);
    ck_assert_msg(tt_gauss_stats_add(&s, part) == TT_OK, "%s", tt_error_message());
    tt_tensor_unref(part);
  }
  tt_tensor *mu, *sigma;
  ck_assert_int_eq(tt_gauss_stats_result(&s, &mu, &sigma), TT_OK);
  double m[5] = {0}, worst = 0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < D; j++) m[j] += tt_f32(x)[i * D + j] / (double)N;
  for (int j = 0; j < D; j++) worst = fmax(worst, fabs(f64(mu)[j] - m[j]) / fabs(m[j]));
  ck_assert_msg(worst <= 1e-12, "mean: max relative diff %.3g", worst);
  worst = 0;
  for (int a = 0; a < D; a++)
    for (int b = 0; b < D; b++) {
      double c = 0;
      for (int i = 0; i < N; i++) c += (tt_f32(x)[i * D + a] - m[a]) * (tt_f32(x)[i * D + b] - m[b]);
      c /= N - 1;
      worst = fmax(worst, fabs(f64(sigma)[a * D + b] - c));
    }
  ck_assert_msg(worst <= 1e-9, "covariance: max abs diff %.3g (entries about 0.25)", worst);
  /* wrong width: names both */
  tt_tensor *bad = tt_tensor_new(TT_F32, TT_DIMS(2, 4), TT_CPU);
  ck_assert_int_ne(tt_gauss_stats_add(&s, bad), TT_OK);
  ck_assert_msg(strstr(tt_error_message(), "expected [B, 5], found [2, 4]"), "unclear: %s", tt_error_message());
  tt_gauss_stats_free(&s);
  /* one sample has no covariance */
  ck_assert_int_eq(tt_gauss_stats_init(&s, 4), TT_OK);
  tt_tensor *one = tt_slice(bad, 0, 0, 1, 1);
  ck_assert_int_eq(tt_gauss_stats_add(&s, one), TT_OK);
  tt_tensor *m1, *s1;
  ck_assert_int_ne(tt_gauss_stats_result(&s, &m1, &s1), TT_OK);
  ck_assert_msg(strstr(tt_error_message(), "at least 2 samples, found 1"), "unclear: %s", tt_error_message());
  tt_gauss_stats_free(&s);
  tt_tensor *ts[] = {x, mu, sigma, bad, one};
  for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) tt_tensor_unref(ts[i]);
}
END_TEST

START_TEST(test_numpy_permutation) {
  /* np.random.RandomState(seed).permutation(n), printed by numpy 1.24 */
  int64_t p[40];
  const int64_t want10[] = {2, 4, 9, 1, 5, 7, 6, 3, 8, 0};
  const int64_t want40[] = {22, 15, 30, 2,  33, 4,  25, 39, 12, 17, 13, 14, 35, 28, 20, 26, 1,  21, 38, 31,
                            5,  6,  34, 18, 23, 11, 19, 9,  10, 24, 0,  16, 29, 7,  36, 27, 37, 3,  8,  32};
  const int64_t want7[] = {6, 2, 1, 3, 0, 5, 4};
  tt_numpy_permutation(2020, 10, p);
  for (int i = 0; i < 10; i++) ck_assert_msg(p[i] == want10[i], "seed 2020 n 10: [%d] %lld, numpy %lld", i, (long long)p[i], (long long)want10[i]);
  tt_numpy_permutation(2020, 40, p);
  for (int i = 0; i < 40; i++) ck_assert_msg(p[i] == want40[i], "seed 2020 n 40: [%d] %lld, numpy %lld", i, (long long)p[i], (long long)want40[i]);
  tt_numpy_permutation(0, 7, p);
  for (int i = 0; i < 7; i++) ck_assert_msg(p[i] == want7[i], "seed 0 n 7: [%d] %lld, numpy %lld", i, (long long)p[i], (long long)want7[i]);
}
END_TEST

/* torch-fidelity's isc_features_to_metric, written out directly */
static void isc_ref(const float *x, int N, int C, int splits, const int64_t *perm, double *mean, double *std) {
  double sc[16], m = 0, v = 0;
  for (int k = 0; k < splits; k++) {
    int lo = k * N / splits, hi = (k + 1) * N / splits;
    double q[8] = {0}, kl = 0;
    for (int i = lo; i < hi; i++) {
      const float *r = x + perm[i] * C;
      double z = 0;
      for (int j = 0; j < C; j++) z += exp(r[j]);
      for (int j = 0; j < C; j++) q[j] += exp(r[j]) / z / (hi - lo);
    }
    for (int i = lo; i < hi; i++) {
      const float *r = x + perm[i] * C;
      double z = 0;
      for (int j = 0; j < C; j++) z += exp(r[j]);
      for (int j = 0; j < C; j++) {
        double p = exp(r[j]) / z;
        kl += p * (log(p) - log(q[j]));
      }
    }
    sc[k] = exp(kl / (hi - lo));
    m += sc[k] / splits;
  }
  for (int k = 0; k < splits; k++) v += (sc[k] - m) * (sc[k] - m) / splits;
  *mean = m;
  *std = sqrt(v);
}

START_TEST(test_inception_score) {
  int N = 23, C = 6;
  tt_tensor *x = th_randn(12, TT_DIMS(N, C), 2.0f);
  int64_t ident[23], perm[23];
  for (int i = 0; i < N; i++) ident[i] = i;
  tt_numpy_permutation(2020, N, perm);
  for (int shuffled = 0; shuffled < 2; shuffled++)
    for (int splits = 1; splits <= 10; splits += 3) {
      double m, s, rm, rs;
      ck_assert_msg(tt_inception_score(x, splits, shuffled ? 2020 : -1, &m, &s) == TT_OK, "%s", tt_error_message());
      isc_ref(tt_f32(x), N, C, splits, shuffled ? perm : ident, &rm, &rs);
      ck_assert_msg(fabs(m - rm) <= 1e-12 * rm && fabs(s - rs) <= 1e-10 * (rs + 1e-300),
                    "splits %d shuffled %d: IS %.15g +- %.15g, reference %.15g +- %.15g", splits, shuffled, m, s, rm,
                    rs);
      ck_assert(m >= 1.0);
    }
  /* identical rows: every split's KL is 0, IS exactly 1 */
  tt_tensor *same = tt_full(TT_F32, TT_DIMS(12, 5), 0.3, TT_CPU);
  double m, s;
  ck_assert_int_eq(tt_inception_score(same, 3, 2020, &m, &s), TT_OK);
  ck_assert_msg(fabs(m - 1) < 1e-12 && s < 1e-12, "identical predictions: IS %.15g +- %.3g", m, s);
  ck_assert_int_ne(tt_inception_score(same, 13, -1, &m, &s), TT_OK);
  ck_assert_msg(strstr(tt_error_message(), "13 splits need at least as many samples, found 12"), "unclear: %s",
                tt_error_message());
  tt_tensor_unref(same);
  tt_tensor_unref(x);
}
END_TEST

/* ---- .npz ---- */

START_TEST(test_npz_round_trip) {
  const char *p = tmp("stats.npz");
  tt_tensor *mu = th_randn(1, TT_DIMS(7), 1.0f), *sigma = tt_cast(mu, TT_F64);
  tt_tensor *codes = tt_full(TT_I64, TT_DIMS(2, 3), 5, TT_CPU);
  const char *names[] = {"mu", "sigma", "codes"};
  tt_tensor *ts[] = {mu, sigma, codes};
  ck_assert_msg(tt_npz_save(p, 3, names, ts) == TT_OK, "%s", tt_error_message());
  int n;
  char **got_names;
  tt_tensor **got;
  ck_assert_msg(tt_npz_load(p, &n, &got_names, &got) == TT_OK, "%s", tt_error_message());
  ck_assert_int_eq(n, 3);
  for (int i = 0; i < 3; i++) {
    ck_assert_str_eq(got_names[i], names[i]);
    ck_assert_int_eq(got[i]->dtype, ts[i]->dtype);
    ck_assert_int_eq(tt_tensor_nbytes(got[i]), tt_tensor_nbytes(ts[i]));
    ck_assert_msg(!memcmp(tt_tensor_data(got[i]), tt_tensor_data(ts[i]), tt_tensor_nbytes(ts[i])), "%s differs",
                  names[i]);
  }
  tt_npz_free(n, got_names, got);
  /* a damaged member: the bytes of mu.npy's data changed do not matter (stored), but a
   * truncated archive is refused, and the good file is not replaced by a failed save */
  FILE *f = fopen(p, "rb");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)size);
  ck_assert_int_eq(fread(buf, 1, (size_t)size, f), size);
  fclose(f);
  const char *cut = tmp("cut.npz");
  f = fopen(cut, "wb");
  fwrite(buf, 1, (size_t)size / 2, f);
  fclose(f);
  ck_assert_int_ne(tt_npz_load(cut, &n, &got_names, &got), TT_OK);
  ck_assert_msg(strstr(tt_error_message(), "cut.npz"), "message does not name the file: %s", tt_error_message());
  const char *bad_names[] = {""};
  ck_assert_int_ne(tt_npz_save(p, 1, bad_names, ts), TT_OK);
  ck_assert_msg(strstr(tt_error_message(), "bad array name"), "unclear: %s", tt_error_message());
  ck_assert_int_eq(tt_npz_load(p, &n, &got_names, &got), TT_OK);   /* still the good file */
  ck_assert_int_eq(n, 3);
  tt_npz_free(n, got_names, got);
  free(buf);
  tt_tensor_unref(mu);
  tt_tensor_unref(sigma);
  tt_tensor_unref(codes);
}
END_TEST

START_TEST(test_npz_numpy_compressed) {
  /* np.savez_compressed(mu=[0.5, -1.25, 3], sigma=[[2, .5, 0], [.5, 1, .25], [0, .25, 3]]),
   * as pytorch-fid's --save-stats writes its statistics (deflated members) */
  int n;
  char **names;
  tt_tensor **ts;
  const char *p = TT_ABS_SRCDIR "/tests/data/fid/tiny_stats_compressed.npz";
  ck_assert_msg(tt_npz_load(p, &n, &names, &ts) == TT_OK, "%s", tt_error_message());
  ck_assert_int_eq(n, 2);
  const double mu[] = {0.5, -1.25, 3.0}, sigma[] = {2, .5, 0, .5, 1, .25, 0, .25, 3};
  for (int i = 0; i < 2; i++) {
    bool is_mu = !strcmp(names[i], "mu");
    ck_assert_msg(is_mu || !strcmp(names[i], "sigma"), "unexpected member '%s'", names[i]);
    ck_assert_int_eq(ts[i]->dtype, TT_F64);
    ck_assert_int_eq(tt_tensor_numel(ts[i]), is_mu ? 3 : 9);
    for (int k = 0; k < (is_mu ? 3 : 9); k++) ck_assert_double_eq(f64(ts[i])[k], is_mu ? mu[k] : sigma[k]);
  }
  tt_npz_free(n, names, ts);
  /* flip a byte inside the deflate stream: refused, naming the member */
  FILE *f = fopen(p, "rb");
  unsigned char buf[4096];
  size_t size = fread(buf, 1, sizeof buf, f);
  fclose(f);
  buf[60] ^= 0xff;   /* inside mu.npy's compressed data (its local header is 30 + 6 bytes + extra) */
  const char *bad = tmp("bad.npz");
  f = fopen(bad, "wb");
  fwrite(buf, 1, size, f);
  fclose(f);
  ck_assert_int_ne(tt_npz_load(bad, &n, &names, &ts), TT_OK);
  ck_assert_msg(strstr(tt_error_message(), "bad.npz"), "message does not name the file: %s", tt_error_message());
  /* a member announcing more than the limit */
  setenv("TAMING_NPZ_MAX_BYTES", "100", 1);
  ck_assert_int_ne(tt_npz_load(p, &n, &names, &ts), TT_OK);
  ck_assert_msg(strstr(tt_error_message(), "TAMING_NPZ_MAX_BYTES"), "unclear: %s", tt_error_message());
  unsetenv("TAMING_NPZ_MAX_BYTES");
}
END_TEST

int main(void) {
  Suite *s = suite_create("metrics");
  TCase *tc = tcase_create("metrics");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_frechet_closed_form);
  tcase_add_test(tc, test_gauss_stats);
  tcase_add_test(tc, test_numpy_permutation);
  tcase_add_test(tc, test_inception_score);
  tcase_add_test(tc, test_npz_round_trip);
  tcase_add_test(tc, test_npz_numpy_compressed);
  suite_add_tcase(s, tc);
  return th_run(s);
}

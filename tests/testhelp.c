/* testhelp.c — see testhelp.h. */
#include "config.h"
#include "testhelp.h"
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

tt_tensor *th_randn(uint64_t seed, int ndim, const int64_t *shape, float scale) {
  tt_rng r = tt_rng_make(seed);
  tt_tensor *t = tt_randn(&r, ndim, shape, TT_CPU);
  if (t && scale != 1.0f) {
    float *p = tt_f32(t);
    for (int64_t i = 0; i < tt_tensor_numel(t); i++) p[i] *= scale;
  }
  return t;
}

tt_tensor *th_uniform(uint64_t seed, int ndim, const int64_t *shape, float lo, float hi) {
  tt_rng r = tt_rng_make(seed);
  tt_tensor *t = tt_tensor_new(TT_F32, ndim, shape, TT_CPU);
  if (t && tt_random_fill_(t, &r, TT_RANDOM_UNIFORM, lo, hi) != TT_OK) {
    tt_tensor_unref(t);
    return NULL;
  }
  return t;
}

double th_max_abs_diff(const tt_tensor *a, const tt_tensor *b) {
  if (!tt_tensor_same_shape(a, b)) return INFINITY;
  double m = 0;
  int64_t n = tt_tensor_numel(a);
  for (int64_t i = 0; i < n; i++) {
    double d = fabs(tt_tensor_get(a, i) - tt_tensor_get(b, i));
    if (isnan(d)) return INFINITY;
    if (d > m) m = d;
  }
  return m;
}

void th_assert_close(const char *what, const tt_tensor *a, const tt_tensor *b, double tol) {
  char s1[128], s2[128];
  ck_assert_msg(tt_tensor_same_shape(a, b), "%s: shapes differ: %s vs %s", what,
                tt_tensor_shape_str(a, s1, sizeof s1), tt_tensor_shape_str(b, s2, sizeof s2));
  double m = 0;
  int64_t at = 0, n = tt_tensor_numel(a);
  for (int64_t i = 0; i < n; i++) {
    double d = fabs(tt_tensor_get(a, i) - tt_tensor_get(b, i));
    if (isnan(d)) d = INFINITY;
    if (d > m) { m = d; at = i; }
  }
  ck_assert_msg(m <= tol, "%s: max abs diff %.3g > %.3g at element %lld (%.7g vs %.7g)", what, m, tol,
                (long long)at, tt_tensor_get(a, at), tt_tensor_get(b, at));
}

static double objective(th_fn f, int n, tt_tensor *const *inputs, void *ud, const tt_tensor *R) {
  bool prev = tt_grad_set_enabled(false);
  tt_tensor *y = f(inputs, ud);
  tt_grad_set_enabled(prev);
  ck_assert_msg(y != NULL, "gradcheck: function failed: %s", tt_error_message());
  tt_tensor *yc = tt_contiguous(y);
  double L = 0;
  int64_t m = tt_tensor_numel(yc);
  for (int64_t i = 0; i < m; i++) L += tt_tensor_get(yc, i) * tt_f32(R)[i];
  tt_tensor_unref(yc);
  tt_tensor_unref(y);
  return L;
}

void th_gradcheck(const char *name, th_fn f, int n, tt_tensor *const *inputs, void *ud, double eps,
                  double atol, double rtol, int samples) {
  for (int i = 0; i < n; i++)
    if (inputs[i]) tt_zero_grad(inputs[i]);
  tt_tensor *y = f(inputs, ud);
  ck_assert_msg(y != NULL, "%s: forward failed: %s", name, tt_error_message());
  tt_tensor *R = th_randn(777, y->ndim, y->shape, 1.0f);
  tt_tensor *L = tt_mul(y, R);
  tt_tensor *s = L ? tt_sum(L) : NULL;
  ck_assert_msg(s != NULL, "%s: building the objective failed: %s", name, tt_error_message());
  TH_OK(tt_backward(s, NULL, false));
  tt_tensor_unref(s);
  tt_tensor_unref(L);
  tt_tensor_unref(y);
  for (int i = 0; i < n; i++) {
    tt_tensor *x = inputs[i];
    if (!x || !x->requires_grad) continue;
    ck_assert_msg(x->grad != NULL, "%s: input %d got no gradient", name, i);
    ck_assert_msg(tt_tensor_same_shape(x->grad, x), "%s: gradient %d has the wrong shape", name, i);
    int64_t numel = tt_tensor_numel(x);
    float *p = tt_f32(x);
    tt_rng pick = tt_rng_make(1234 + (uint64_t)i);
    int count = numel < samples ? (int)numel : samples;
    double worst = 0, wa = 0, wn = 0;
    int64_t wj = 0;
    for (int k = 0; k < count; k++) {
      int64_t j = numel <= samples ? k : (int64_t)(tt_rng_uniform(&pick) * (double)numel);
      float keep = p[j];
      p[j] = keep + (float)eps;
      double lp = objective(f, n, inputs, ud, R);
      p[j] = keep - (float)eps;
      double lm = objective(f, n, inputs, ud, R);
      p[j] = keep;
      double num = (lp - lm) / (2 * eps);
      double ana = tt_tensor_get(x->grad, j);
      double excess = fabs(ana - num) - (atol + rtol * fabs(num));
      if (excess > worst || isnan(ana)) {
        worst = isnan(ana) ? INFINITY : excess;
        wa = ana;
        wn = num;
        wj = j;
      }
    }
    ck_assert_msg(worst <= 0, "%s: gradient of input %d wrong at element %lld: analytic %.6g, numeric %.6g "
                  "(|diff| %.3g > %.3g + %.3g*|numeric|)", name, i, (long long)wj, wa, wn, fabs(wa - wn), atol, rtol);
    tt_zero_grad(x);
  }
  tt_tensor_unref(R);
}

const char *th_fixtures_or_skip(const char *suite) {
  static char path[4096];
  const char *env = getenv("TAMING_FIXTURES");
  if (env && *env) snprintf(path, sizeof path, "%s", env);
  else snprintf(path, sizeof path, "%s/../shared/fixtures", TT_ABS_SRCDIR);
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
    printf("%s: SKIP: fixtures folder %s is absent\n", suite, path);
    exit(77);
  }
  return path;
}

int th_run(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_FORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}

tt_tensor *th_leaf(uint64_t seed, int ndim, const int64_t *shape, float scale) {
  tt_tensor *t = th_randn(seed, ndim, shape, scale);
  TH_NN(t);
  tt_tensor_set_requires_grad(t, true);
  return t;
}

void th_assert_ref(const char *what, const tt_tensor *t, const double *ref, double atol, double rtol) {
  int64_t n = tt_tensor_numel(t), at = -1;
  double worst = 0, wd = 0;
  for (int64_t i = 0; i < n; i++) {
    double v = tt_tensor_get(t, i), d = fabs(v - ref[i]);
    if (v == ref[i]) continue; /* also equal infinities */
    double excess = isnan(v) || isnan(d) ? INFINITY : d - (atol + rtol * fabs(ref[i]));
    if (excess > worst || (at < 0 && excess > 0)) {
      worst = excess;
      wd = d;
      at = i;
    }
  }
  ck_assert_msg(at < 0, "%s: element %lld is %.8g, reference %.8g (|diff| %.3g > %.3g + %.3g*|ref|)", what,
                (long long)at, at >= 0 ? tt_tensor_get(t, at) : 0.0, at >= 0 ? ref[at] : 0.0, wd, atol, rtol);
}

double *th_ref_alloc(int64_t n) {
  double *r = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
  ck_assert_ptr_nonnull(r);
  return r;
}

int th_tmpdir_make(const char *name, char *out, size_t cap) {
  const char *base = getenv("TMPDIR");
  snprintf(out, cap, "%s/%s.XXXXXX", base && *base ? base : "/tmp", name);
  return mkdtemp(out) ? 0 : -1;
}

void th_tmpdir_remove(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    remove(p);
  }
  if (d) closedir(d);
  rmdir(dir);
}

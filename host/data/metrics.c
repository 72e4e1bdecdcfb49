/* metrics.c — FID statistics and distance, and the Inception Score (metrics.h).
 * Double precision throughout; the dense linear algebra goes to the LAPACK and
 * BLAS routines of the OpenBLAS the CPU backend already links (Fortran symbols,
 * column-major; every matrix here is symmetric, so the order does not matter). */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "taming/metrics.h"
#include "taming/ops/copy.h"

extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                    double *work, const int *lwork, int *iwork, const int *liwork, int *info);
extern void dsyrk_(const char *uplo, const char *trans, const int *n, const int *k, const double *alpha,
                   const double *a, const int *lda, const double *beta, double *c, const int *ldc);
extern void dgemm_(const char *ta, const char *tb, const int *m, const int *n, const int *k, const double *alpha,
                   const double *a, const int *lda, const double *b, const int *ldb, const double *beta, double *c,
                   const int *ldc);

/* LAPACK takes int sizes: the feature width is bounded well below that */
#define MAX_DIM 65536

/* a host f64 copy of rows [n, dim] of t (f32 or f64, any device, any layout) */
static double *host_f64(const tt_tensor *t, const char *what) {
  tt_tensor *h = tt_host_contiguous(t);
  if (!h) {
    tt_error_prefix(tt_last_status(), "%s: ", what);
    return NULL;
  }
  int64_t n = tt_tensor_numel(h);
  double *d = malloc(sizeof(double) * (size_t)(n ? n : 1));
  if (!d) {
    tt_error(TT_ERR_NOMEM, "%s: out of memory", what);
  } else if (h->dtype == TT_F64) {
    memcpy(d, tt_tensor_data(h), sizeof(double) * (size_t)n);
  } else {
    const float *f = tt_f32(h);
    for (int64_t i = 0; i < n; i++) d[i] = f[i];
  }
  tt_tensor_unref(h);
  return d;
}

static tt_status check_float(const tt_tensor *t, const char *what) {
  if (!t) return tt_error(TT_ERR_INVALID, "%s: NULL tensor", what);
  if (t->dtype != TT_F32 && t->dtype != TT_F64)
    return tt_error(TT_ERR_INVALID, "%s: expected f32 or f64, found %s", what, tt_dtype_name(t->dtype));
  return TT_OK;
}

/* ---- streaming statistics ---- */

tt_status tt_gauss_stats_init(tt_gauss_stats *s, int64_t dim) {
  memset(s, 0, sizeof *s);
  if (dim < 1 || dim > MAX_DIM)
    return tt_error(TT_ERR_INVALID, "gauss_stats: feature width %lld outside [1, %d]", (long long)dim, MAX_DIM);
  s->dim = dim;
  s->shift = calloc((size_t)dim, sizeof(double));
  s->sum = calloc((size_t)dim, sizeof(double));
  s->cross = calloc((size_t)(dim * dim), sizeof(double));
  if (!s->shift || !s->sum || !s->cross) {
    tt_gauss_stats_free(s);
    return tt_error(TT_ERR_NOMEM, "gauss_stats: out of memory for a %lldx%lld covariance", (long long)dim,
                    (long long)dim);
  }
  return TT_OK;
}

void tt_gauss_stats_free(tt_gauss_stats *s) {
  if (!s) return;
  free(s->shift);
  free(s->sum);
  free(s->cross);
  s->shift = s->sum = s->cross = NULL;
}

tt_status tt_gauss_stats_add(tt_gauss_stats *s, const tt_tensor *x) {
  char b[128];
  TT_TRY(check_float(x, "gauss_stats features"));
  if (!s->cross) return tt_error(TT_ERR_INVALID, "gauss_stats: not initialised");
  if (x->ndim != 2 || x->shape[1] != s->dim)
    return tt_error(TT_ERR_INVALID, "gauss_stats features: expected [B, %lld], found %s", (long long)s->dim,
                    tt_tensor_shape_str(x, b, sizeof b));
  int64_t B = x->shape[0], D = s->dim;
  if (B == 0) return TT_OK;
  if (B > MAX_DIM * 16)
    return tt_error(TT_ERR_INVALID, "gauss_stats features: a batch of %lld rows; add at most %d at a time",
                    (long long)B, MAX_DIM * 16);
  double *d = host_f64(x, "gauss_stats features");
  if (!d) return tt_last_status();
  if (s->n == 0) memcpy(s->shift, d, sizeof(double) * (size_t)D);
  for (int64_t i = 0; i < B; i++)
    for (int64_t j = 0; j < D; j++) {
      double v = d[i * D + j] - s->shift[j];
      d[i * D + j] = v;
      s->sum[j] += v;
    }
  /* row-major [B, D] is column-major [D, B]: cross += A A^T */
  int n = (int)D, k = (int)B;
  const double one = 1.0;
  dsyrk_("U", "N", &n, &k, &one, d, &n, &one, s->cross, &n);
  s->n += B;
  free(d);
  return TT_OK;
}

tt_status tt_gauss_stats_result(const tt_gauss_stats *s, tt_tensor **mu, tt_tensor **sigma) {
  *mu = *sigma = NULL;
  if (!s->cross) return tt_error(TT_ERR_INVALID, "gauss_stats: not initialised");
  if (s->n < 2)
    return tt_error(TT_ERR_INVALID, "gauss_stats: a covariance needs at least 2 samples, found %lld",
                    (long long)s->n);
  int64_t D = s->dim;
  tt_tensor *m = tt_tensor_new(TT_F64, 1, (int64_t[]){D}, TT_CPU);
  tt_tensor *c = m ? tt_tensor_new(TT_F64, 2, (int64_t[]){D, D}, TT_CPU) : NULL;
  if (!c) {
    tt_tensor_unref(m);
    return tt_last_status();
  }
  double *md = tt_tensor_data(m), *cd = tt_tensor_data(c), n = (double)s->n;
  for (int64_t j = 0; j < D; j++) md[j] = s->sum[j] / n;
  /* cov = (sum dd^T - n mean(d) mean(d)^T) / (n - 1); the upper triangle (column-major)
   * holds row i <= column j, i.e. cross[j * D + i] */
  for (int64_t j = 0; j < D; j++)
    for (int64_t i = 0; i <= j; i++) {
      double v = (s->cross[j * D + i] - n * md[i] * md[j]) / (n - 1);
      cd[i * D + j] = cd[j * D + i] = v;
    }
  for (int64_t j = 0; j < D; j++) md[j] += s->shift[j];
  *mu = m;
  *sigma = c;
  return TT_OK;
}

/* ---- Fréchet distance ---- */

/* Eigenvalues (ascending) into w and, with vectors, eigenvectors over a (column-major). */
static tt_status syevd(bool vectors, int n, double *a, double *w) {
  int info = 0, lwork = -1, liwork = -1, iwq = 0;
  double wq = 0;
  const char *job = vectors ? "V" : "N";
  dsyevd_(job, "U", &n, a, &n, w, &wq, &lwork, &iwq, &liwork, &info);
  if (info != 0) return tt_error(TT_ERR_INTERNAL, "dsyevd workspace query failed (info %d)", info);
  lwork = (int)wq;
  liwork = iwq > 0 ? iwq : 1;
  double *work = malloc(sizeof(double) * (size_t)(lwork > 0 ? lwork : 1));
  int *iwork = malloc(sizeof(int) * (size_t)liwork);
  if (!work || !iwork) {
    free(work);
    free(iwork);
    return tt_error(TT_ERR_NOMEM, "dsyevd: out of memory for its workspace");
  }
  dsyevd_(job, "U", &n, a, &n, w, work, &lwork, iwork, &liwork, &info);
  free(work);
  free(iwork);
  if (info != 0) return tt_error(TT_ERR_INTERNAL, "dsyevd did not converge (info %d) on a %dx%d matrix", info, n, n);
  return TT_OK;
}

/* Eigenvalues (ascending w) at or below n * eps * the largest are round-off of zero
 * (the numerical rank of a covariance of fewer samples than features): their square
 * roots, about 1e-8 each, would otherwise add up to a visible bias. */
static double rank_floor(int n, const double *w) {
  double top = fmax(fabs(w[0]), fabs(w[n - 1]));
  return (double)n * 2.220446049250313e-16 * top;
}

static tt_status check_stats(const tt_tensor *mu, const tt_tensor *sigma, const char *which, int64_t D) {
  char b1[128], b2[128];
  TT_TRY(check_float(mu, which));
  TT_TRY(check_float(sigma, which));
  if (mu->ndim != 1 || sigma->ndim != 2 || sigma->shape[0] != mu->shape[0] || sigma->shape[1] != mu->shape[0] ||
      (D >= 0 && mu->shape[0] != D))
    return tt_error(TT_ERR_INVALID, "%s: expected mu [D] and sigma [D, D]%s, found mu %s and sigma %s", which,
                    D >= 0 ? " of the first set's D" : "", tt_tensor_shape_str(mu, b1, sizeof b1),
                    tt_tensor_shape_str(sigma, b2, sizeof b2));
  if (mu->shape[0] < 1 || mu->shape[0] > MAX_DIM)
    return tt_error(TT_ERR_INVALID, "%s: feature width %lld outside [1, %d]", which, (long long)mu->shape[0], MAX_DIM);
  return TT_OK;
}

tt_status tt_frechet_distance(const tt_tensor *mu1, const tt_tensor *sigma1, const tt_tensor *mu2,
                              const tt_tensor *sigma2, double *fid) {
  TT_TRY(check_stats(mu1, sigma1, "frechet_distance: first statistics", -1));
  TT_TRY(check_stats(mu2, sigma2, "frechet_distance: second statistics", mu1->shape[0]));
  int n = (int)mu1->shape[0];
  size_t nn = (size_t)n * (size_t)n;
  double *m1 = host_f64(mu1, "mu1"), *m2 = host_f64(mu2, "mu2");
  double *s1 = host_f64(sigma1, "sigma1"), *s2 = host_f64(sigma2, "sigma2");
  double *w = malloc(sizeof(double) * (size_t)n), *r = malloc(sizeof(double) * nn), *t = malloc(sizeof(double) * nn);
  tt_status st = TT_OK;
  if (!m1 || !m2 || !s1 || !s2 || !w || !r || !t) {
    st = (m1 && m2 && s1 && s2) ? tt_error(TT_ERR_NOMEM, "frechet_distance: out of memory") : tt_last_status();
    goto out;
  }
  double diff = 0, tr1 = 0, tr2 = 0;
  for (int i = 0; i < n; i++) {
    double d = m1[i] - m2[i];
    diff += d * d;
    tr1 += s1[(size_t)i * n + i];
    tr2 += s2[(size_t)i * n + i];
  }
  /* sqrt(S1) = V diag(sqrt(max(l, 0))) V^T: scale V's columns by l^(1/4), then R = V' V'^T */
  if ((st = syevd(true, n, s1, w)) != TT_OK) goto out;
  double floor1 = rank_floor(n, w);
  for (int j = 0; j < n; j++) {
    double q = w[j] > floor1 ? sqrt(sqrt(w[j])) : 0;
    for (int i = 0; i < n; i++) s1[(size_t)j * n + i] *= q;
  }
  const double one = 1.0, zero = 0.0;
  dgemm_("N", "T", &n, &n, &n, &one, s1, &n, s1, &n, &zero, r, &n);     // R = sqrt(S1)
  dgemm_("N", "N", &n, &n, &n, &one, r, &n, s2, &n, &zero, t, &n);      // T = R S2
  dgemm_("N", "N", &n, &n, &n, &one, t, &n, r, &n, &zero, s1, &n);      // M = R S2 R
  for (int j = 0; j < n; j++)                                            // symmetric up to round-off
    for (int i = 0; i < j; i++) {
      double a = 0.5 * (s1[(size_t)j * n + i] + s1[(size_t)i * n + j]);
      s1[(size_t)j * n + i] = s1[(size_t)i * n + j] = a;
    }
  if ((st = syevd(false, n, s1, w)) != TT_OK) goto out;
  double trc = 0, floor2 = rank_floor(n, w);
  for (int i = 0; i < n; i++) trc += w[i] > floor2 ? sqrt(w[i]) : 0;
  *fid = diff + tr1 + tr2 - 2 * trc;
out:
  free(m1);
  free(m2);
  free(s1);
  free(s2);
  free(w);
  free(r);
  free(t);
  return st;
}

/* ---- Inception Score ---- */

/* MT19937 as numpy's legacy RandomState seeds and draws it */
typedef struct { uint32_t key[624]; int pos; } mt19937;

static void mt_seed(mt19937 *m, uint32_t seed) {
  for (int i = 0; i < 624; i++) {
    m->key[i] = seed;
    seed = 1812433253u * (seed ^ (seed >> 30)) + (uint32_t)i + 1;
  }
  m->pos = 624;
}

static uint32_t mt_next(mt19937 *m) {
  if (m->pos == 624) {
    for (int i = 0; i < 624; i++) {
      uint32_t y = (m->key[i] & 0x80000000u) | (m->key[(i + 1) % 624] & 0x7fffffffu);
      m->key[i] = m->key[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1) ? 0x9908b0dfu : 0);
    }
    m->pos = 0;
  }
  uint32_t y = m->key[m->pos++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

/* numpy's random_interval: a uniform integer in [0, max] by masked rejection */
static uint64_t mt_interval(mt19937 *m, uint64_t max) {
  if (max == 0) return 0;
  uint64_t mask = max, v;
  for (int s = 1; s <= 32; s <<= 1) mask |= mask >> s;
  if (max <= 0xffffffffu) {
    while ((v = (mt_next(m) & mask)) > max) {}
  } else {
    do {
      uint64_t hi = mt_next(m), lo = mt_next(m);
      v = ((hi << 32) | lo) & mask;
    } while (v > max);
  }
  return v;
}

void tt_numpy_permutation(uint32_t seed, int64_t n, int64_t *perm) {
  mt19937 m;
  mt_seed(&m, seed);
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)mt_interval(&m, (uint64_t)i);
    int64_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

tt_status tt_inception_score(const tt_tensor *logits, int splits, int64_t shuffle_seed, double *mean, double *std) {
  char b[128];
  TT_TRY(check_float(logits, "inception_score logits"));
  if (logits->ndim != 2 || logits->shape[1] < 1)
    return tt_error(TT_ERR_INVALID, "inception_score logits: expected [N, C], found %s",
                    tt_tensor_shape_str(logits, b, sizeof b));
  int64_t N = logits->shape[0], C = logits->shape[1];
  if (splits < 1 || N < splits)
    return tt_error(TT_ERR_INVALID, "inception_score: %d splits need at least as many samples, found %lld", splits,
                    (long long)N);
  if (shuffle_seed > 0xffffffffll)
    return tt_error(TT_ERR_INVALID, "inception_score: shuffle seed %lld outside [0, 2^32)", (long long)shuffle_seed);
  double *x = host_f64(logits, "inception_score logits");
  int64_t *perm = malloc(sizeof(int64_t) * (size_t)N);
  double *q = malloc(sizeof(double) * (size_t)C), *scores = malloc(sizeof(double) * (size_t)splits);
  if (!x || !perm || !q || !scores) {
    tt_status s = x ? tt_error(TT_ERR_NOMEM, "inception_score: out of memory") : tt_last_status();
    free(x);
    free(perm);
    free(q);
    free(scores);
    return s;
  }
  if (shuffle_seed >= 0) tt_numpy_permutation((uint32_t)shuffle_seed, N, perm);
  else
    for (int64_t i = 0; i < N; i++) perm[i] = i;
  /* each row -> log_softmax in place */
  for (int64_t i = 0; i < N; i++) {
    double *r = x + i * C, mx = r[0], z = 0;
    for (int64_t j = 1; j < C; j++) mx = fmax(mx, r[j]);
    for (int64_t j = 0; j < C; j++) z += exp(r[j] - mx);
    double lz = mx + log(z);
    for (int64_t j = 0; j < C; j++) r[j] -= lz;
  }
  for (int k = 0; k < splits; k++) {
    int64_t lo = k * N / splits, hi = (k + 1) * N / splits, cnt = hi - lo;
    memset(q, 0, sizeof(double) * (size_t)C);
    for (int64_t i = lo; i < hi; i++)
      for (int64_t j = 0; j < C; j++) q[j] += exp(x[perm[i] * C + j]);
    for (int64_t j = 0; j < C; j++) q[j] = log(q[j] / (double)cnt);
    double kl = 0;
    for (int64_t i = lo; i < hi; i++) {
      const double *lp = x + perm[i] * C;
      double row = 0;
      for (int64_t j = 0; j < C; j++) row += exp(lp[j]) * (lp[j] - q[j]);
      kl += row;
    }
    scores[k] = exp(kl / (double)cnt);
  }
  double m = 0, v = 0;
  for (int k = 0; k < splits; k++) m += scores[k];
  m /= splits;
  for (int k = 0; k < splits; k++) v += (scores[k] - m) * (scores[k] - m);
  *mean = m;
  *std = sqrt(v / splits);
  free(x);
  free(perm);
  free(q);
  free(scores);
  return TT_OK;
}

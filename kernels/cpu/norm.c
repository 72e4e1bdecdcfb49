/* norm.c — CPU kernels of the normalisation family: group norm (VQGAN),
 * group norm followed by SiLU in one pass (the VQGAN's Normalize + swish),
 * layer norm (GPT), batch norm (PatchGAN discriminator) and batch norm followed
 * by LeakyReLU in one pass (its middle stages), forward and backward.
 *
 * Statistics are accumulated in double from values shifted by the first
 * element of the set, so one pass gives mean and variance without the
 * cancellation of E[x^2] - E[x]^2 when |mean| >> std; the per-element loops
 * stay in float and vectorise (`omp simd`). Work is split over (batch, group),
 * rows or channels — each a contiguous or block-strided set — with OpenMP. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include "cpu.h"
#include "softmax_row.h"   /* tt_cpu_expf: an exp that vectorises */
#ifdef _OPENMP
#include <omp.h>
#endif

/* Running sums of (x - shift) and (x - shift)^2 over a set visited in pieces. */
typedef struct {
  double shift, s1, s2;
  int64_t n;
} moments;

static void moments_add(moments *m, const float *x, int64_t n) {
  double k = m->shift, s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t i = 0; i < n; i++) {
    double d = (double)x[i] - k;
    s1 += d;
    s2 += d * d;
  }
  m->s1 += s1;
  m->s2 += s2;
  m->n += n;
}

/* Mean and biased variance; an empty set gives 0 and 0. */
static void moments_get(const moments *m, double *mean, double *var) {
  if (m->n == 0) {
    *mean = 0;
    *var = 0;
    return;
  }
  double d = m->s1 / (double)m->n;
  double v = m->s2 / (double)m->n - d * d;
  *mean = m->shift + d;
  *var = v > 0 ? v : 0;
}

/* y = (x - mean) * a + b over n values. */
static inline void affine_row(const float *x, float *y, int64_t n, float mean, float a, float b) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * a + b;
}

/* sum(gy) and sum(gy * (x - mean)) in double. */
static inline void grad_sums(const float *x, const float *gy, int64_t n, double mean, double *sg,
                             double *sgx) {
  double a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
  for (int64_t i = 0; i < n; i++) {
    a += gy[i];
    b += (double)gy[i] * ((double)x[i] - mean);
  }
  *sg += a;
  *sgx += b;
}

/* gx = a * gy - c2 * (x - mean) - c1: the normalisation backward once the
 * set's two reductions are folded into c1 and c2. */
static inline void grad_row(const float *x, const float *gy, float *gx, int64_t n, float mean, float a,
                            float c2, float c1) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) gx[i] = a * gy[i] - c2 * (x[i] - mean) - c1;
}

/* ---- group norm ---- */

static tt_status check_3d(const char *op, const tt_tensor *x) {
  if (x->ndim != 3)
    return tt_error(TT_ERR_INVALID, "%s: the cpu kernel takes x as [B, C, S], found %d dims", op, x->ndim);
  return TT_OK;
}

/* x [B, C, S] -> y [B, C, S]; mean, rstd [B, G] */
static tt_status cpu_group_norm_fwd(const tt_tensor *x, int groups, float eps, const tt_tensor *w,
                                    const tt_tensor *b, tt_tensor *y, tt_tensor *mean, tt_tensor *rstd) {
  TT_TRY(check_3d("group_norm_fwd", x));
  int64_t B = x->shape[0], C = x->shape[1], S = x->shape[2], G = groups;
  if (G <= 0 || C % G != 0)
    return tt_error(TT_ERR_INVALID, "group_norm_fwd: %lld channels do not split into %d groups", (long long)C, groups);
  int64_t cpg = C / G, gsize = cpg * S;
  const float *xs = tt_f32(x), *ws = w ? tt_f32(w) : NULL, *bs = b ? tt_f32(b) : NULL;
  float *ys = tt_f32(y), *ms = tt_f32(mean), *rs = tt_f32(rstd);
#pragma omp parallel for schedule(static) if (B * C * S > TT_CPU_PAR_MIN)
  for (int64_t bg = 0; bg < B * G; bg++) {
    const float *xg = xs + bg * gsize;
    moments m = {.shift = gsize ? xg[0] : 0};
    moments_add(&m, xg, gsize);
    double mu, var;
    moments_get(&m, &mu, &var);
    float r = (float)(1.0 / sqrt(var + (double)eps));
    ms[bg] = (float)mu;
    rs[bg] = r;
    for (int64_t j = 0; j < cpg; j++) {
      int64_t c = (bg % G) * cpg + j;
      float a = ws ? r * ws[c] : r, sh = bs ? bs[c] : 0.0f;
      affine_row(xg + j * S, ys + bg * gsize + j * S, S, (float)mu, a, sh);
    }
  }
  return TT_OK;
}

/* For each (b, g) with N = cpg*S values, xh = (x - mean) * rstd, gyw = gy * w[c]:
 *   gx = rstd * (gyw - mean(gyw) - xh * mean(gyw * xh))
 *   gw[c] = sum_b sum_s gy * xh,  gb[c] = sum_b sum_s gy
 * The per-(b, c) sums are kept so gw and gb reduce over b afterwards without
 * a second pass over x. */
static tt_status cpu_group_norm_bwd(const tt_tensor *x, int groups, const tt_tensor *w, const tt_tensor *mean,
                                    const tt_tensor *rstd, const tt_tensor *gy, tt_tensor *gx, tt_tensor *gw,
                                    tt_tensor *gb) {
  TT_TRY(check_3d("group_norm_bwd", x));
  int64_t B = x->shape[0], C = x->shape[1], S = x->shape[2], G = groups;
  if (G <= 0 || C % G != 0)
    return tt_error(TT_ERR_INVALID, "group_norm_bwd: %lld channels do not split into %d groups", (long long)C, groups);
  int64_t cpg = C / G, gsize = cpg * S;
  double *sums = malloc(sizeof(double) * 2 * (size_t)(B * C > 0 ? B * C : 1));
  if (!sums) return tt_error(TT_ERR_NOMEM, "group_norm_bwd: out of memory for %lld channel sums", (long long)(B * C));
  double *sg = sums, *sgx = sums + B * C;   /* [B, C] each */
  const float *xs = tt_f32(x), *gys = tt_f32(gy), *ws = w ? tt_f32(w) : NULL;
  const float *ms = tt_f32(mean), *rs = tt_f32(rstd);
  float *gxs = gx ? tt_f32(gx) : NULL;
#pragma omp parallel for schedule(static) if (B * C * S > TT_CPU_PAR_MIN)
  for (int64_t bg = 0; bg < B * G; bg++) {
    int64_t c0 = (bg % G) * cpg, b = bg / G;
    double mu = ms[bg], r = rs[bg], t1 = 0, t2 = 0;
    for (int64_t j = 0; j < cpg; j++) {
      int64_t c = c0 + j, at = bg * gsize + j * S;
      double a = 0, e = 0;
      grad_sums(xs + at, gys + at, S, mu, &a, &e);
      sg[b * C + c] = a;
      sgx[b * C + c] = e;
      double wc = ws ? ws[c] : 1.0;
      t1 += wc * a;
      t2 += wc * e;
    }
    if (!gxs) continue;
    double N = (double)(gsize ? gsize : 1);
    float c1 = (float)(r * t1 / N), c2 = (float)(r * r * r * t2 / N);
    for (int64_t j = 0; j < cpg; j++) {
      int64_t c = c0 + j, at = bg * gsize + j * S;
      float a = (float)(ws ? r * ws[c] : r);
      grad_row(xs + at, gys + at, gxs + at, S, (float)mu, a, c2, c1);
    }
  }
  for (int64_t c = 0; c < C && (gw || gb); c++) {
    double accw = 0, accb = 0;
    for (int64_t b = 0; b < B; b++) {
      int64_t bg = b * G + c / cpg;
      accw += rs[bg] * sgx[b * C + c];
      accb += sg[b * C + c];
    }
    if (gw) tt_f32(gw)[c] = (float)accw;
    if (gb) tt_f32(gb)[c] = (float)accb;
  }
  free(sums);
  return TT_OK;
}

/* ---- group norm + SiLU ----
 * y = silu(h), h = (x - mean) * rstd * w[c] + b[c]: the normalised values never
 * reach memory. The backward recomputes h from the saved input (one multiply-add
 * per value, cheaper than keeping h alive from forward to backward), and gives
 * the group norm backward gh = gy * silu'(h) without storing it apart: gh is
 * written into gx, then overwritten there by gx. */

static inline float silu_of(float h) { return h / (1.0f + tt_cpu_expf(-h)); }

/* x [B, C, S] -> y [B, C, S]; mean, rstd [B, G] */
static tt_status cpu_group_norm_silu_fwd(const tt_tensor *x, int groups, float eps, const tt_tensor *w,
                                         const tt_tensor *b, tt_tensor *y, tt_tensor *mean, tt_tensor *rstd) {
  TT_TRY(check_3d("group_norm_silu_fwd", x));
  int64_t B = x->shape[0], C = x->shape[1], S = x->shape[2], G = groups;
  if (G <= 0 || C % G != 0)
    return tt_error(TT_ERR_INVALID, "group_norm_silu_fwd: %lld channels do not split into %d groups", (long long)C,
                    groups);
  int64_t cpg = C / G, gsize = cpg * S;
  const float *xs = tt_f32(x), *ws = w ? tt_f32(w) : NULL, *bs = b ? tt_f32(b) : NULL;
  float *ys = tt_f32(y), *ms = tt_f32(mean), *rs = tt_f32(rstd);
#pragma omp parallel for schedule(static) if (B * C * S > TT_CPU_PAR_MIN)
  for (int64_t bg = 0; bg < B * G; bg++) {
    const float *xg = xs + bg * gsize;
    moments m = {.shift = gsize ? xg[0] : 0};
    moments_add(&m, xg, gsize);
    double mu, var;
    moments_get(&m, &mu, &var);
    float r = (float)(1.0 / sqrt(var + (double)eps)), muf = (float)mu;
    ms[bg] = muf;
    rs[bg] = r;
    for (int64_t j = 0; j < cpg; j++) {
      int64_t c = (bg % G) * cpg + j;
      float a = ws ? r * ws[c] : r, sh = bs ? bs[c] : 0.0f;
      const float *xr = xg + j * S;
      float *yr = ys + bg * gsize + j * S;
#pragma omp simd
      for (int64_t i = 0; i < S; i++) yr[i] = silu_of((xr[i] - muf) * a + sh);
    }
  }
  return TT_OK;
}

/* gh = gy * silu'(h) over one channel of S values (into out, which may be NULL),
 * with sum(gh) and sum(gh * (x - mean)) in double. */
static inline void silu_grad_sums(const float *x, const float *gy, float *out, int64_t S, float mean, float a, float sh,
                                  double *sg, double *sgx) {
  double s1 = 0, s2 = 0;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t i = 0; i < S; i++) {
    float d = x[i] - mean, h = d * a + sh, sg1 = 1.0f / (1.0f + tt_cpu_expf(-h));
    float g = gy[i] * sg1 * (1.0f + h * (1.0f - sg1));
    if (out) out[i] = g;
    s1 += g;
    s2 += (double)g * d;
  }
  *sg += s1;
  *sgx += s2;
}

/* As cpu_group_norm_bwd with gy replaced by gh = gy * silu'(h); b is the bias of h. */
static tt_status cpu_group_norm_silu_bwd(const tt_tensor *x, int groups, const tt_tensor *w, const tt_tensor *b,
                                         const tt_tensor *mean, const tt_tensor *rstd, const tt_tensor *gy,
                                         tt_tensor *gx, tt_tensor *gw, tt_tensor *gb) {
  TT_TRY(check_3d("group_norm_silu_bwd", x));
  int64_t B = x->shape[0], C = x->shape[1], S = x->shape[2], G = groups;
  if (G <= 0 || C % G != 0)
    return tt_error(TT_ERR_INVALID, "group_norm_silu_bwd: %lld channels do not split into %d groups", (long long)C,
                    groups);
  int64_t cpg = C / G, gsize = cpg * S;
  double *sums = malloc(sizeof(double) * 2 * (size_t)(B * C > 0 ? B * C : 1));
  if (!sums)
    return tt_error(TT_ERR_NOMEM, "group_norm_silu_bwd: out of memory for %lld channel sums", (long long)(B * C));
  double *sg = sums, *sgx = sums + B * C;   /* [B, C] each */
  const float *xs = tt_f32(x), *gys = tt_f32(gy), *ws = w ? tt_f32(w) : NULL, *bs = b ? tt_f32(b) : NULL;
  const float *ms = tt_f32(mean), *rs = tt_f32(rstd);
  float *gxs = gx ? tt_f32(gx) : NULL;
#pragma omp parallel for schedule(static) if (B * C * S > TT_CPU_PAR_MIN)
  for (int64_t bg = 0; bg < B * G; bg++) {
    int64_t c0 = (bg % G) * cpg, b0 = bg / G;
    float muf = ms[bg], rf = rs[bg];
    double r = rf, t1 = 0, t2 = 0;
    for (int64_t j = 0; j < cpg; j++) {
      int64_t c = c0 + j, at = bg * gsize + j * S;
      double e1 = 0, e2 = 0;
      silu_grad_sums(xs + at, gys + at, gxs ? gxs + at : NULL, S, muf, ws ? rf * ws[c] : rf, bs ? bs[c] : 0.0f, &e1,
                     &e2);
      sg[b0 * C + c] = e1;
      sgx[b0 * C + c] = e2;
      double wc = ws ? ws[c] : 1.0;
      t1 += wc * e1;
      t2 += wc * e2;
    }
    if (!gxs) continue;
    double N = (double)(gsize ? gsize : 1);
    float c1 = (float)(r * t1 / N), c2 = (float)(r * r * r * t2 / N);
    for (int64_t j = 0; j < cpg; j++) {
      int64_t c = c0 + j, at = bg * gsize + j * S;
      float a = (float)(ws ? r * ws[c] : r);
      grad_row(xs + at, gxs + at, gxs + at, S, muf, a, c2, c1);   /* gh in gx -> gx */
    }
  }
  for (int64_t c = 0; c < C && (gw || gb); c++) {
    double accw = 0, accb = 0;
    for (int64_t bi = 0; bi < B; bi++) {
      int64_t bg = bi * G + c / cpg;
      accw += rs[bg] * sgx[bi * C + c];
      accb += sg[bi * C + c];
    }
    if (gw) tt_f32(gw)[c] = (float)accw;
    if (gb) tt_f32(gb)[c] = (float)accb;
  }
  free(sums);
  return TT_OK;
}

/* ---- layer norm ---- */

static tt_status check_2d(const char *op, const tt_tensor *x) {
  if (x->ndim != 2)
    return tt_error(TT_ERR_INVALID, "%s: the cpu kernel takes x as [N, E], found %d dims", op, x->ndim);
  return TT_OK;
}

/* x [N, E] -> y [N, E]; mean, rstd [N] */
static tt_status cpu_layer_norm_fwd(const tt_tensor *x, float eps, const tt_tensor *w, const tt_tensor *b,
                                    tt_tensor *y, tt_tensor *mean, tt_tensor *rstd) {
  TT_TRY(check_2d("layer_norm_fwd", x));
  int64_t N = x->shape[0], E = x->shape[1];
  const float *xs = tt_f32(x), *ws = w ? tt_f32(w) : NULL, *bs = b ? tt_f32(b) : NULL;
  float *ys = tt_f32(y), *ms = tt_f32(mean), *rs = tt_f32(rstd);
#pragma omp parallel for schedule(static) if (N * E > TT_CPU_PAR_MIN)
  for (int64_t n = 0; n < N; n++) {
    const float *xr = xs + n * E;
    float *yr = ys + n * E;
    moments m = {.shift = E ? xr[0] : 0};
    moments_add(&m, xr, E);
    double mu, var;
    moments_get(&m, &mu, &var);
    float r = (float)(1.0 / sqrt(var + (double)eps)), muf = (float)mu;
    ms[n] = muf;
    rs[n] = r;
    if (ws && bs) {
#pragma omp simd
      for (int64_t e = 0; e < E; e++) yr[e] = (xr[e] - muf) * r * ws[e] + bs[e];
    } else {
#pragma omp simd
      for (int64_t e = 0; e < E; e++) yr[e] = (xr[e] - muf) * r * (ws ? ws[e] : 1.0f) + (bs ? bs[e] : 0.0f);
    }
  }
  return TT_OK;
}

/* Per row: gx = rstd * (gyw - mean(gyw) - xh * mean(gyw * xh)), gyw = gy * w.
 * gw, gb sum over rows: each thread accumulates its rows into its own double
 * buffer (static schedule: the same split every run), then the buffers add up. */
static tt_status cpu_layer_norm_bwd(const tt_tensor *x, const tt_tensor *w, const tt_tensor *mean,
                                    const tt_tensor *rstd, const tt_tensor *gy, tt_tensor *gx, tt_tensor *gw,
                                    tt_tensor *gb) {
  TT_TRY(check_2d("layer_norm_bwd", x));
  int64_t N = x->shape[0], E = x->shape[1];
  bool par = N * E > TT_CPU_PAR_MIN;
  int nt = par ? tt_cpu_max_threads() : 1;
  bool want_wb = gw || gb;
  double *acc = NULL;
  if (want_wb) {
    acc = calloc((size_t)nt * 2 * (size_t)(E > 0 ? E : 1), sizeof(double));
    if (!acc) return tt_error(TT_ERR_NOMEM, "layer_norm_bwd: out of memory for %d x %lld sums", nt, (long long)E);
  }
  const float *xs = tt_f32(x), *gys = tt_f32(gy), *ws = w ? tt_f32(w) : NULL;
  const float *ms = tt_f32(mean), *rs = tt_f32(rstd);
  float *gxs = gx ? tt_f32(gx) : NULL;
#pragma omp parallel num_threads(nt) if (par)
  {
    double *aw = want_wb ? acc + (size_t)tt_cpu_thread_id() * 2 * (size_t)E : NULL, *ab = aw ? aw + E : NULL;
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; n++) {
      const float *xr = xs + n * E, *gr = gys + n * E;
      float muf = ms[n], r = rs[n];
      if (aw) {
#pragma omp simd
        for (int64_t e = 0; e < E; e++) {
          aw[e] += (double)gr[e] * ((double)(xr[e] - muf) * r);
          ab[e] += gr[e];
        }
      }
      if (!gxs) continue;
      double t1 = 0, t2 = 0, mu = muf;
#pragma omp simd reduction(+ : t1, t2)
      for (int64_t e = 0; e < E; e++) {
        double g = ws ? (double)gr[e] * ws[e] : (double)gr[e];
        t1 += g;
        t2 += g * ((double)xr[e] - mu);
      }
      double En = (double)(E ? E : 1);
      float c1 = (float)(r * t1 / En), c2 = (float)((double)r * r * r * t2 / En);
      float *gxr = gxs + n * E;
#pragma omp simd
      for (int64_t e = 0; e < E; e++) gxr[e] = r * (ws ? ws[e] : 1.0f) * gr[e] - c2 * (xr[e] - muf) - c1;
    }
  }
  if (want_wb) {
    for (int64_t e = 0; e < E; e++) {
      double sw = 0, sb = 0;
      for (int t = 0; t < nt; t++) {
        sw += acc[(size_t)t * 2 * (size_t)E + (size_t)e];
        sb += acc[(size_t)t * 2 * (size_t)E + (size_t)E + (size_t)e];
      }
      if (gw) tt_f32(gw)[e] = (float)sw;
      if (gb) tt_f32(gb)[e] = (float)sb;
    }
    free(acc);
  }
  return TT_OK;
}

/* ---- batch norm ---- */

/* x [B, C, S] -> mean [C], biased var [C]; channel c is B blocks of S values. */
static tt_status cpu_batch_norm_stats(const tt_tensor *x, tt_tensor *mean, tt_tensor *var) {
  TT_TRY(check_3d("batch_norm_stats", x));
  int64_t B = x->shape[0], C = x->shape[1], S = x->shape[2];
  const float *xs = tt_f32(x);
  float *ms = tt_f32(mean), *vs = tt_f32(var);
#pragma omp parallel for schedule(static) if (B * C * S > TT_CPU_PAR_MIN)
  for (int64_t c = 0; c < C; c++) {
    moments m = {.shift = B * S != 0 ? xs[c * S] : 0};
    for (int64_t b = 0; b < B; b++) moments_add(&m, xs + (b * C + c) * S, S);
    double mu, v;
    moments_get(&m, &mu, &v);
    ms[c] = (float)mu;
    vs[c] = (float)v;
  }
  return TT_OK;
}

/* y = (x - mean[c]) * rstd[c] * w[c] + b[c] */
static tt_status cpu_batch_norm_apply(const tt_tensor *x, const tt_tensor *mean, const tt_tensor *rstd,
                                      const tt_tensor *w, const tt_tensor *b, tt_tensor *y) {
  TT_TRY(check_3d("batch_norm_apply", x));
  int64_t B = x->shape[0], C = x->shape[1], S = x->shape[2];
  const float *xs = tt_f32(x), *ms = tt_f32(mean), *rs = tt_f32(rstd);
  const float *ws = w ? tt_f32(w) : NULL, *bs = b ? tt_f32(b) : NULL;
  float *ys = tt_f32(y);
#pragma omp parallel for schedule(static) if (B * C * S > TT_CPU_PAR_MIN)
  for (int64_t bc = 0; bc < B * C; bc++) {
    int64_t c = bc % C;
    affine_row(xs + bc * S, ys + bc * S, S, ms[c], ws ? rs[c] * ws[c] : rs[c], bs ? bs[c] : 0.0f);
  }
  return TT_OK;
}

/* Per channel with N = B*S values, xh = (x - mean) * rstd:
 *   gb = sum gy, gw = sum gy * xh;
 *   training (mean, rstd are this batch's): gx = rstd*w * (gy - gb/N - xh * gw/N)
 *   eval (mean, rstd are constants):        gx = rstd*w * gy */
static tt_status cpu_batch_norm_bwd(bool training, const tt_tensor *x, const tt_tensor *mean,
                                    const tt_tensor *rstd, const tt_tensor *w, const tt_tensor *gy, tt_tensor *gx,
                                    tt_tensor *gw, tt_tensor *gb) {
  TT_TRY(check_3d("batch_norm_bwd", x));
  int64_t B = x->shape[0], C = x->shape[1], S = x->shape[2];
  const float *xs = tt_f32(x), *gys = tt_f32(gy), *ms = tt_f32(mean), *rs = tt_f32(rstd);
  const float *ws = w ? tt_f32(w) : NULL;
  float *gxs = gx ? tt_f32(gx) : NULL;
  bool need_sums = gw || gb || (gxs && training);
#pragma omp parallel for schedule(static) if (B * C * S > TT_CPU_PAR_MIN)
  for (int64_t c = 0; c < C; c++) {
    double sg = 0, sgx = 0, mu = ms[c], r = rs[c];
    if (need_sums)
      for (int64_t b = 0; b < B; b++) grad_sums(xs + (b * C + c) * S, gys + (b * C + c) * S, S, mu, &sg, &sgx);
    if (gw) tt_f32(gw)[c] = (float)(sgx * r);
    if (gb) tt_f32(gb)[c] = (float)sg;
    if (!gxs) continue;
    double a = ws ? r * ws[c] : r, N = (double)(B * S != 0 ? B * S : 1);
    float c1 = training ? (float)(a * sg / N) : 0.0f, c2 = training ? (float)(a * r * r * sgx / N) : 0.0f;
    for (int64_t b = 0; b < B; b++) {
      int64_t at = (b * C + c) * S;
      grad_row(xs + at, gys + at, gxs + at, S, (float)mu, (float)a, c2, c1);
    }
  }
  return TT_OK;
}

/* ---- batch norm + LeakyReLU ----
 * y = leaky_relu(h), h = (x - mean[c]) * rstd[c] * w[c] + b[c]: h never reaches
 * memory. The backward recomputes h from the saved input for the sign test
 * only, and forms gh = gy * (h > 0 ? 1 : slope) into gx, where the batch norm
 * backward then overwrites it; every value is the unfused pair's. */

/* x [B, C, S] -> y [B, C, S] */
static tt_status cpu_batch_norm_lrelu_apply(const tt_tensor *x, const tt_tensor *mean, const tt_tensor *rstd,
                                            const tt_tensor *w, const tt_tensor *b, float slope, tt_tensor *y) {
  TT_TRY(check_3d("batch_norm_lrelu_apply", x));
  int64_t B = x->shape[0], C = x->shape[1], S = x->shape[2];
  const float *xs = tt_f32(x), *ms = tt_f32(mean), *rs = tt_f32(rstd);
  const float *ws = w ? tt_f32(w) : NULL, *bs = b ? tt_f32(b) : NULL;
  float *ys = tt_f32(y);
#pragma omp parallel for schedule(static) if (B * C * S > TT_CPU_PAR_MIN)
  for (int64_t bc = 0; bc < B * C; bc++) {
    int64_t c = bc % C;
    float mu = ms[c], a = ws ? rs[c] * ws[c] : rs[c], sh = bs ? bs[c] : 0.0f;
    const float *xr = xs + bc * S;
    float *yr = ys + bc * S;
#pragma omp simd
    for (int64_t i = 0; i < S; i++) {
      float h = (xr[i] - mu) * a + sh;
      yr[i] = h > 0 ? h : slope * h;
    }
  }
  return TT_OK;
}

/* gh = gy * (h > 0 ? 1 : slope) over one run of S values (into out, which may be
 * NULL), with sum(gh) and sum(gh * (x - mean)) in double. */
static inline void lrelu_grad_sums(const float *x, const float *gy, float *out, int64_t S, float mean, float a,
                                   float sh, float slope, double *sg, double *sgx) {
  double s1 = 0, s2 = 0, mu = mean;
#pragma omp simd reduction(+ : s1, s2)
  for (int64_t i = 0; i < S; i++) {
    float h = (x[i] - mean) * a + sh, g = h > 0 ? gy[i] : gy[i] * slope;
    if (out) out[i] = g;
    s1 += g;
    s2 += (double)g * ((double)x[i] - mu);
  }
  *sg += s1;
  *sgx += s2;
}

/* As cpu_batch_norm_bwd with gy replaced by gh; b is the bias of h. */
static tt_status cpu_batch_norm_lrelu_bwd(bool training, const tt_tensor *x, const tt_tensor *mean,
                                          const tt_tensor *rstd, const tt_tensor *w, const tt_tensor *b, float slope,
                                          const tt_tensor *gy, tt_tensor *gx, tt_tensor *gw, tt_tensor *gb) {
  TT_TRY(check_3d("batch_norm_lrelu_bwd", x));
  int64_t B = x->shape[0], C = x->shape[1], S = x->shape[2];
  const float *xs = tt_f32(x), *gys = tt_f32(gy), *ms = tt_f32(mean), *rs = tt_f32(rstd);
  const float *ws = w ? tt_f32(w) : NULL, *bs = b ? tt_f32(b) : NULL;
  float *gxs = gx ? tt_f32(gx) : NULL;
#pragma omp parallel for schedule(static) if (B * C * S > TT_CPU_PAR_MIN)
  for (int64_t c = 0; c < C; c++) {
    double sg = 0, sgx = 0, r = rs[c];
    float muf = ms[c], ah = ws ? rs[c] * ws[c] : rs[c], sh = bs ? bs[c] : 0.0f;
    for (int64_t bi = 0; bi < B; bi++) {
      int64_t at = (bi * C + c) * S;
      lrelu_grad_sums(xs + at, gys + at, gxs ? gxs + at : NULL, S, muf, ah, sh, slope, &sg, &sgx);
    }
    if (gw) tt_f32(gw)[c] = (float)(sgx * r);
    if (gb) tt_f32(gb)[c] = (float)sg;
    if (!gxs) continue;
    double a = ws ? r * ws[c] : r, N = (double)(B * S != 0 ? B * S : 1);
    float c1 = training ? (float)(a * sg / N) : 0.0f, c2 = training ? (float)(a * r * r * sgx / N) : 0.0f;
    for (int64_t bi = 0; bi < B; bi++) {
      int64_t at = (bi * C + c) * S;
      grad_row(xs + at, gxs + at, gxs + at, S, muf, (float)a, c2, c1);   /* gh in gx -> gx */
    }
  }
  return TT_OK;
}

tt_status tt_cpu_register_norm(tt_backend *b) {
  TT_REGISTER_KERNEL(b, group_norm_fwd, cpu_group_norm_fwd);
  TT_REGISTER_KERNEL(b, group_norm_bwd, cpu_group_norm_bwd);
  TT_REGISTER_KERNEL(b, group_norm_silu_fwd, cpu_group_norm_silu_fwd);
  TT_REGISTER_KERNEL(b, group_norm_silu_bwd, cpu_group_norm_silu_bwd);
  TT_REGISTER_KERNEL(b, layer_norm_fwd, cpu_layer_norm_fwd);
  TT_REGISTER_KERNEL(b, layer_norm_bwd, cpu_layer_norm_bwd);
  TT_REGISTER_KERNEL(b, batch_norm_stats, cpu_batch_norm_stats);
  TT_REGISTER_KERNEL(b, batch_norm_apply, cpu_batch_norm_apply);
  TT_REGISTER_KERNEL(b, batch_norm_bwd, cpu_batch_norm_bwd);
  TT_REGISTER_KERNEL(b, batch_norm_lrelu_apply, cpu_batch_norm_lrelu_apply);
  TT_REGISTER_KERNEL(b, batch_norm_lrelu_bwd, cpu_batch_norm_lrelu_bwd);
  return TT_OK;
}

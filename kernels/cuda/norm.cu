/* norm.cu — CUDA kernels of the normalisation family: group norm (VQGAN), group
 * norm + SiLU fused, layer norm (GPT), batch norm (PatchGAN discriminator),
 * batch norm + LeakyReLU fused, forward and backward.
 *
 * Statistics are one reduction per set (a group of a sample, a row, a
 * channel) in double over values shifted by the set's first element, the
 * CPU kernels' formulation, so mean and variance need one pass and no
 * cancellation; the per-element passes are elementwise kernels reading the
 * per-set results. A set is `runs` runs of `runlen` values `run_stride` apart
 * (a batch-norm channel is B runs of S values); sets start `set_stride` apart. */
#include "config.h"
#include "reduce.cuh"

typedef struct {
  int64_t L;          /* values per set */
  int64_t set_stride; /* offset between the first values of consecutive sets */
  int64_t runlen;     /* == L: the set is contiguous */
  int64_t run_stride;
} set_layout;

__device__ __forceinline__ int64_t set_offset(const set_layout &s, int64_t j, int64_t e) {
  if (s.runlen >= s.L) return j * s.set_stride + e;
  return j * s.set_stride + (e / s.runlen) * s.run_stride + e % s.runlen;
}

/* Shifted moments: load gives (x - shift, (x - shift)^2), shift = the set's first value. */
struct moments {
  typedef tt_red_dsum2 acc;
  const float *x;
  set_layout s;
  float eps;
  float *mean, *second; /* second: rstd = 1/sqrt(var + eps) when want_rstd, else the biased var */
  bool want_rstd;
  __device__ acc identity() const { return {0.0, 0.0}; }
  __device__ acc combine(acc a, acc b) const { return tt_red_add(a, b); }
  __device__ acc load(int64_t j, int64_t e) const {
    double d = (double)x[set_offset(s, j, e)] - (double)x[j * s.set_stride];
    return {d, d * d};
  }
  __device__ void store(int64_t j, acc a) const {
    double mu = 0, var = 0;
    if (s.L > 0) {
      double d = a.a / (double)s.L, v = a.b / (double)s.L - d * d;
      mu = (double)x[j * s.set_stride] + d;
      var = v > 0 ? v : 0;
    }
    mean[j] = (float)mu;
    second[j] = want_rstd ? (float)(1.0 / sqrt(var + (double)eps)) : (float)var;
  }
};

static tt_status check_nd(const char *k, const tt_tensor *x, int nd) {
  if (x->ndim != nd)
    return tt_error(TT_ERR_INVALID, "%s: the cuda kernel takes x as %s, found %d dims", k, nd == 3 ? "[B, C, S]" : "[N, E]",
                    x->ndim);
  return TT_OK;
}

static tt_status check_groups(const char *k, int64_t C, int groups) {
  if (groups <= 0 || C % groups != 0)
    return tt_error(TT_ERR_INVALID, "%s: %lld channels do not split into %d groups", k, (long long)C, groups);
  return TT_OK;
}

#define LAUNCH_IDX(kernel, n, ...)                                                                        \
  do {                                                                                                     \
    if ((n) < ((int64_t)1 << 31))                                                                          \
      kernel<uint32_t><<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(__VA_ARGS__);           \
    else                                                                                                   \
      kernel<int64_t><<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(__VA_ARGS__);            \
  } while (0)

/* ---- group norm ---- */

// x [B, C, S] -> y; stats index b*G + c/cpg
template <class I>
__global__ void k_gn_apply(const float *x, const float *w, const float *b, const float *mean, const float *rstd,
                           float *y, int64_t n, I C, I S, I G, I cpg) {
  TT_CUDA_LOOP(t, n) {
    I i = (I)t, bc = i / S, c = bc % C, j = (bc / C) * G + c / cpg;
    float r = rstd[j], a = w ? r * w[c] : r, sh = b ? b[c] : 0.0f;
    y[t] = (x[t] - mean[j]) * a + sh;
  }
}

static tt_status cu_group_norm_fwd(const tt_tensor *x, int groups, float eps, const tt_tensor *w, const tt_tensor *b,
                                   tt_tensor *y, tt_tensor *mean, tt_tensor *rstd) {
  TT_TRY(check_nd("group_norm_fwd", x, 3));
  int64_t B = x->shape[0], C = x->shape[1], S = x->shape[2], G = groups;
  TT_TRY(check_groups("group_norm_fwd", C, groups));
  int64_t L = C / G * S, n = B * C * S;
  const float *xs = tt_cuda_ptr<float>(x);
  float *ms = tt_cuda_ptr<float>(mean), *rs = tt_cuda_ptr<float>(rstd);
  moments r = {xs, {L, L, L, 0}, eps, ms, rs, true};
  TT_TRY(tt_cuda_set_reduce("group_norm_fwd", r, B * G, L));
  if (n == 0) return TT_OK;
  LAUNCH_IDX(k_gn_apply, n, xs, w ? tt_cuda_ptr<float>(w) : nullptr, b ? tt_cuda_ptr<float>(b) : nullptr, ms, rs,
             tt_cuda_ptr<float>(y), n, C, S, G, C / G);
  return tt_cuda_check_launch("group_norm_fwd");
}

/* Per (b, c): sum gy and sum gy * (x - mean[b, g]) over the S values. */
struct gn_sums {
  typedef tt_red_dsum2 acc;
  const float *x, *gy, *mean;
  double *sg, *sgx; /* [B, C] */
  int64_t C, S, G, cpg;
  __device__ acc identity() const { return {0.0, 0.0}; }
  __device__ acc combine(acc a, acc b) const { return tt_red_add(a, b); }
  __device__ acc load(int64_t j, int64_t e) const {
    int64_t off = j * S + e;
    double mu = mean[(j / C) * G + (j % C) / cpg], g = gy[off];
    return {g, g * ((double)x[off] - mu)};
  }
  __device__ void store(int64_t j, acc a) const {
    sg[j] = a.a;
    sgx[j] = a.b;
  }
};

/* Per (b, g): c1 = r * sum_c w_c sg / N, c2 = r^3 * sum_c w_c sgx / N (N = cpg * S). */
__global__ void k_gn_coef(const double *sg, const double *sgx, const float *w, const float *rstd, float *coef,
                          int64_t BG, int64_t C, int64_t G, int64_t cpg, int64_t S) {
  TT_CUDA_LOOP(bg, BG) {
    int64_t b = bg / G, c0 = (bg % G) * cpg;
    double t1 = 0, t2 = 0;
    for (int64_t j = 0; j < cpg; j++) {
      double wc = w ? (double)w[c0 + j] : 1.0;
      t1 += wc * sg[b * C + c0 + j];
      t2 += wc * sgx[b * C + c0 + j];
    }
    double N = (double)(cpg * S > 0 ? cpg * S : 1), r = rstd[bg];
    coef[2 * bg] = (float)(r * t1 / N);
    coef[2 * bg + 1] = (float)(r * r * r * t2 / N);
  }
}

// gx = a * gy - c2 * (x - mean) - c1, a = rstd * w[c]
template <class I>
__global__ void k_gn_grad(const float *x, const float *gy, const float *w, const float *mean, const float *rstd,
                          const float *coef, float *gx, int64_t n, I C, I S, I G, I cpg) {
  TT_CUDA_LOOP(t, n) {
    I i = (I)t, bc = i / S, c = bc % C, j = (bc / C) * G + c / cpg;
    double r = rstd[j];
    float a = (float)(w ? r * w[c] : r);
    gx[t] = a * gy[t] - coef[2 * j + 1] * (x[t] - mean[j]) - coef[2 * j];
  }
}

// gw[c] = sum_b rstd[b, g] * sgx[b, c],  gb[c] = sum_b sg[b, c]
__global__ void k_gn_wb(const double *sg, const double *sgx, const float *rstd, float *gw, float *gb, int64_t B,
                        int64_t C, int64_t G, int64_t cpg) {
  TT_CUDA_LOOP(c, C) {
    double aw = 0, ab = 0;
    for (int64_t b = 0; b < B; b++) {
      aw += rstd[b * G + c / cpg] * sgx[b * C + c];
      ab += sg[b * C + c];
    }
    if (gw) gw[c] = (float)aw;
    if (gb) gb[c] = (float)ab;
  }
}

static tt_status cu_group_norm_bwd(const tt_tensor *x, int groups, const tt_tensor *w, const tt_tensor *mean,
                                   const tt_tensor *rstd, const tt_tensor *gy, tt_tensor *gx, tt_tensor *gw,
                                   tt_tensor *gb) {
  TT_TRY(check_nd("group_norm_bwd", x, 3));
  int64_t B = x->shape[0], C = x->shape[1], S = x->shape[2], G = groups;
  TT_TRY(check_groups("group_norm_bwd", C, groups));
  int64_t cpg = C / G, n = B * C * S;
  if (B * C == 0) return TT_OK;
  tt_cuda_buf sums, coef;
  TT_TRY(sums.alloc(sizeof(double) * 2 * (size_t)(B * C), "group_norm_bwd"));
  double *sg = sums.as<double>(), *sgx = sg + B * C;
  const float *xs = tt_cuda_ptr<float>(x), *gys = tt_cuda_ptr<float>(gy), *ms = tt_cuda_ptr<float>(mean);
  const float *rs = tt_cuda_ptr<float>(rstd), *ws = w ? tt_cuda_ptr<float>(w) : nullptr;
  gn_sums r = {xs, gys, ms, sg, sgx, C, S, G, cpg};
  TT_TRY(tt_cuda_set_reduce("group_norm_bwd", r, B * C, S));
  if (gx && n > 0) {
    TT_TRY(coef.alloc(sizeof(float) * 2 * (size_t)(B * G), "group_norm_bwd"));
    k_gn_coef<<<tt_cuda_grid(B * G), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(sg, sgx, ws, rs, coef.as<float>(), B * G,
                                                                             C, G, cpg, S);
    TT_TRY(tt_cuda_check_launch("group_norm_bwd (coefficients)"));
    LAUNCH_IDX(k_gn_grad, n, xs, gys, ws, ms, rs, coef.as<float>(), tt_cuda_ptr<float>(gx), n, C, S, G, cpg);
    TT_TRY(tt_cuda_check_launch("group_norm_bwd"));
  }
  if (gw || gb) {
    k_gn_wb<<<tt_cuda_grid(C), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(
        sg, sgx, rs, gw ? tt_cuda_ptr<float>(gw) : nullptr, gb ? tt_cuda_ptr<float>(gb) : nullptr, B, C, G, cpg);
    TT_TRY(tt_cuda_check_launch("group_norm_bwd (weight, bias)"));
  }
  return TT_OK;
}

/* ---- group norm + SiLU: the CPU kernels' formulation (kernels/cpu/norm.c) ---- */

__device__ __forceinline__ float gns_sigmoid(float h) { return 1.0f / (1.0f + __expf(-h)); }

// x [B, C, S] -> y = silu((x - mean) * rstd * w + b)
template <class I>
__global__ void k_gns_apply(const float *x, const float *w, const float *b, const float *mean, const float *rstd,
                            float *y, int64_t n, I C, I S, I G, I cpg) {
  TT_CUDA_LOOP(t, n) {
    I i = (I)t, bc = i / S, c = bc % C, j = (bc / C) * G + c / cpg;
    float r = rstd[j], a = w ? r * w[c] : r, sh = b ? b[c] : 0.0f;
    float h = (x[t] - mean[j]) * a + sh;
    y[t] = h * gns_sigmoid(h);
  }
}

static tt_status cu_group_norm_silu_fwd(const tt_tensor *x, int groups, float eps, const tt_tensor *w,
                                        const tt_tensor *b, tt_tensor *y, tt_tensor *mean, tt_tensor *rstd) {
  TT_TRY(check_nd("group_norm_silu_fwd", x, 3));
  int64_t B = x->shape[0], C = x->shape[1], S = x->shape[2], G = groups;
  TT_TRY(check_groups("group_norm_silu_fwd", C, groups));
  int64_t L = C / G * S, n = B * C * S;
  const float *xs = tt_cuda_ptr<float>(x);
  float *ms = tt_cuda_ptr<float>(mean), *rs = tt_cuda_ptr<float>(rstd);
  moments r = {xs, {L, L, L, 0}, eps, ms, rs, true};
  TT_TRY(tt_cuda_set_reduce("group_norm_silu_fwd", r, B * G, L));
  if (n == 0) return TT_OK;
  LAUNCH_IDX(k_gns_apply, n, xs, w ? tt_cuda_ptr<float>(w) : nullptr, b ? tt_cuda_ptr<float>(b) : nullptr, ms, rs,
             tt_cuda_ptr<float>(y), n, C, S, G, C / G);
  return tt_cuda_check_launch("group_norm_silu_fwd");
}

/* gh = gy * silu'(h), h recomputed from x */
__device__ __forceinline__ float gns_gh(float x, float gy, float mu, float a, float sh) {
  float h = (x - mu) * a + sh, s = gns_sigmoid(h);
  return gy * s * (1.0f + h * (1.0f - s));
}

/* Per (b, c): sum gh and sum gh * (x - mean[b, g]) over the S values. */
struct gns_sums {
  typedef tt_red_dsum2 acc;
  const float *x, *gy, *mean, *rstd, *w, *b;
  double *sg, *sgx; /* [B, C] */
  int64_t C, S, G, cpg;
  __device__ acc identity() const { return {0.0, 0.0}; }
  __device__ acc combine(acc a, acc b2) const { return tt_red_add(a, b2); }
  __device__ acc load(int64_t j, int64_t e) const {
    int64_t off = j * S + e, c = j % C, k = (j / C) * G + c / cpg;
    float mu = mean[k], r = rstd[k], a = w ? r * w[c] : r, sh = b ? b[c] : 0.0f;
    double g = gns_gh(x[off], gy[off], mu, a, sh);
    return {g, g * (double)(x[off] - mu)};
  }
  __device__ void store(int64_t j, acc a) const {
    sg[j] = a.a;
    sgx[j] = a.b;
  }
};

// gx = a * gh - c2 * (x - mean) - c1, a = rstd * w[c]
template <class I>
__global__ void k_gns_grad(const float *x, const float *gy, const float *w, const float *b, const float *mean,
                           const float *rstd, const float *coef, float *gx, int64_t n, I C, I S, I G, I cpg) {
  TT_CUDA_LOOP(t, n) {
    I i = (I)t, bc = i / S, c = bc % C, j = (bc / C) * G + c / cpg;
    float r = rstd[j], a = w ? r * w[c] : r, mu = mean[j];
    float gh = gns_gh(x[t], gy[t], mu, a, b ? b[c] : 0.0f);
    gx[t] = a * gh - coef[2 * j + 1] * (x[t] - mu) - coef[2 * j];
  }
}

static tt_status cu_group_norm_silu_bwd(const tt_tensor *x, int groups, const tt_tensor *w, const tt_tensor *b,
                                        const tt_tensor *mean, const tt_tensor *rstd, const tt_tensor *gy,
                                        tt_tensor *gx, tt_tensor *gw, tt_tensor *gb) {
  TT_TRY(check_nd("group_norm_silu_bwd", x, 3));
  int64_t B = x->shape[0], C = x->shape[1], S = x->shape[2], G = groups;
  TT_TRY(check_groups("group_norm_silu_bwd", C, groups));
  int64_t cpg = C / G, n = B * C * S;
  if (B * C == 0) return TT_OK;
  tt_cuda_buf sums, coef;
  TT_TRY(sums.alloc(sizeof(double) * 2 * (size_t)(B * C), "group_norm_silu_bwd"));
  double *sg = sums.as<double>(), *sgx = sg + B * C;
  const float *xs = tt_cuda_ptr<float>(x), *gys = tt_cuda_ptr<float>(gy), *ms = tt_cuda_ptr<float>(mean);
  const float *rs = tt_cuda_ptr<float>(rstd), *ws = w ? tt_cuda_ptr<float>(w) : nullptr;
  const float *bs = b ? tt_cuda_ptr<float>(b) : nullptr;
  gns_sums r = {xs, gys, ms, rs, ws, bs, sg, sgx, C, S, G, cpg};
  TT_TRY(tt_cuda_set_reduce("group_norm_silu_bwd", r, B * C, S));
  if (gx && n > 0) {
    TT_TRY(coef.alloc(sizeof(float) * 2 * (size_t)(B * G), "group_norm_silu_bwd"));
    k_gn_coef<<<tt_cuda_grid(B * G), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(sg, sgx, ws, rs, coef.as<float>(), B * G,
                                                                             C, G, cpg, S);
    TT_TRY(tt_cuda_check_launch("group_norm_silu_bwd (coefficients)"));
    LAUNCH_IDX(k_gns_grad, n, xs, gys, ws, bs, ms, rs, coef.as<float>(), tt_cuda_ptr<float>(gx), n, C, S, G, cpg);
    TT_TRY(tt_cuda_check_launch("group_norm_silu_bwd"));
  }
  if (gw || gb) {
    k_gn_wb<<<tt_cuda_grid(C), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(
        sg, sgx, rs, gw ? tt_cuda_ptr<float>(gw) : nullptr, gb ? tt_cuda_ptr<float>(gb) : nullptr, B, C, G, cpg);
    TT_TRY(tt_cuda_check_launch("group_norm_silu_bwd (weight, bias)"));
  }
  return TT_OK;
}

/* ---- layer norm ---- */

// x [N, E] -> y = (x - mean) * rstd * w + b
template <class I>
__global__ void k_ln_apply(const float *x, const float *w, const float *b, const float *mean, const float *rstd,
                           float *y, int64_t n, I E) {
  TT_CUDA_LOOP(t, n) {
    I i = (I)t, row = i / E, e = i % E;
    y[t] = (x[t] - mean[row]) * rstd[row] * (w ? w[e] : 1.0f) + (b ? b[e] : 0.0f);
  }
}

static tt_status cu_layer_norm_fwd(const tt_tensor *x, float eps, const tt_tensor *w, const tt_tensor *b, tt_tensor *y,
                                   tt_tensor *mean, tt_tensor *rstd) {
  TT_TRY(check_nd("layer_norm_fwd", x, 2));
  int64_t N = x->shape[0], E = x->shape[1], n = N * E;
  const float *xs = tt_cuda_ptr<float>(x);
  float *ms = tt_cuda_ptr<float>(mean), *rs = tt_cuda_ptr<float>(rstd);
  moments r = {xs, {E, E, E, 0}, eps, ms, rs, true};
  TT_TRY(tt_cuda_set_reduce("layer_norm_fwd", r, N, E));
  if (n == 0) return TT_OK;
  LAUNCH_IDX(k_ln_apply, n, xs, w ? tt_cuda_ptr<float>(w) : nullptr, b ? tt_cuda_ptr<float>(b) : nullptr, ms, rs,
             tt_cuda_ptr<float>(y), n, E);
  return tt_cuda_check_launch("layer_norm_fwd");
}

/* Per row: t1 = sum gy*w, t2 = sum gy*w*(x - mean) -> c1 = r t1 / E, c2 = r^3 t2 / E. */
struct ln_rows {
  typedef tt_red_dsum2 acc;
  const float *x, *gy, *w, *mean, *rstd;
  float *coef; /* [N, 2] */
  int64_t E;
  __device__ acc identity() const { return {0.0, 0.0}; }
  __device__ acc combine(acc a, acc b) const { return tt_red_add(a, b); }
  __device__ acc load(int64_t row, int64_t e) const {
    int64_t off = row * E + e;
    double g = w ? (double)gy[off] * w[e] : (double)gy[off];
    return {g, g * ((double)x[off] - (double)mean[row])};
  }
  __device__ void store(int64_t row, acc a) const {
    double r = rstd[row], En = (double)(E > 0 ? E : 1);
    coef[2 * row] = (float)(r * a.a / En);
    coef[2 * row + 1] = (float)(r * r * r * a.b / En);
  }
};

/* Per column e: gw = sum gy * (x - mean) * rstd, gb = sum gy over the rows. */
struct ln_cols {
  typedef tt_red_dsum2 acc;
  const float *x, *gy, *mean, *rstd;
  float *gw, *gb;
  int64_t E;
  __device__ acc identity() const { return {0.0, 0.0}; }
  __device__ acc combine(acc a, acc b) const { return tt_red_add(a, b); }
  __device__ acc load(int64_t o, int64_t row, int64_t e) const {
    int64_t off = row * E + e;
    double g = gy[off];
    return {g * ((double)(x[off] - mean[row]) * rstd[row]), g};
  }
  __device__ void store(int64_t e, acc a) const {
    if (gw) gw[e] = (float)a.a;
    if (gb) gb[e] = (float)a.b;
  }
};

// gx = r * w * gy - c2 * (x - mean) - c1
template <class I>
__global__ void k_ln_grad(const float *x, const float *gy, const float *w, const float *mean, const float *rstd,
                          const float *coef, float *gx, int64_t n, I E) {
  TT_CUDA_LOOP(t, n) {
    I i = (I)t, row = i / E, e = i % E;
    gx[t] = rstd[row] * (w ? w[e] : 1.0f) * gy[t] - coef[2 * row + 1] * (x[t] - mean[row]) - coef[2 * row];
  }
}

static tt_status cu_layer_norm_bwd(const tt_tensor *x, const tt_tensor *w, const tt_tensor *mean,
                                   const tt_tensor *rstd, const tt_tensor *gy, tt_tensor *gx, tt_tensor *gw,
                                   tt_tensor *gb) {
  TT_TRY(check_nd("layer_norm_bwd", x, 2));
  int64_t N = x->shape[0], E = x->shape[1], n = N * E;
  const float *xs = tt_cuda_ptr<float>(x), *gys = tt_cuda_ptr<float>(gy), *ms = tt_cuda_ptr<float>(mean);
  const float *rs = tt_cuda_ptr<float>(rstd), *ws = w ? tt_cuda_ptr<float>(w) : nullptr;
  if (gx && n > 0) {
    tt_cuda_buf coef;
    TT_TRY(coef.alloc(sizeof(float) * 2 * (size_t)N, "layer_norm_bwd"));
    ln_rows r = {xs, gys, ws, ms, rs, coef.as<float>(), E};
    TT_TRY(tt_cuda_set_reduce("layer_norm_bwd", r, N, E));
    LAUNCH_IDX(k_ln_grad, n, xs, gys, ws, ms, rs, coef.as<float>(), tt_cuda_ptr<float>(gx), n, E);
    TT_TRY(tt_cuda_check_launch("layer_norm_bwd"));
  }
  if (gw || gb) {
    ln_cols c = {xs, gys, ms, rs, gw ? tt_cuda_ptr<float>(gw) : nullptr, gb ? tt_cuda_ptr<float>(gb) : nullptr, E};
    TT_TRY(tt_cuda_col_reduce("layer_norm_bwd (weight, bias)", c, 1, N, E));
  }
  return TT_OK;
}

/* ---- batch norm ---- */

static tt_status cu_batch_norm_stats(const tt_tensor *x, tt_tensor *mean, tt_tensor *var) {
  TT_TRY(check_nd("batch_norm_stats", x, 3));
  int64_t B = x->shape[0], C = x->shape[1], S = x->shape[2];
  moments r = {tt_cuda_ptr<float>(x), {B * S, S, S, C * S}, 0.0f, tt_cuda_ptr<float>(mean), tt_cuda_ptr<float>(var),
               false};
  return tt_cuda_set_reduce("batch_norm_stats", r, C, B * S);
}

// y = (x - mean[c]) * rstd[c] * w[c] + b[c]
template <class I>
__global__ void k_bn_apply(const float *x, const float *mean, const float *rstd, const float *w, const float *b,
                           float *y, int64_t n, I C, I S) {
  TT_CUDA_LOOP(t, n) {
    I c = ((I)t / S) % C;
    float a = w ? rstd[c] * w[c] : rstd[c];
    y[t] = (x[t] - mean[c]) * a + (b ? b[c] : 0.0f);
  }
}

static tt_status cu_batch_norm_apply(const tt_tensor *x, const tt_tensor *mean, const tt_tensor *rstd,
                                     const tt_tensor *w, const tt_tensor *b, tt_tensor *y) {
  TT_TRY(check_nd("batch_norm_apply", x, 3));
  int64_t C = x->shape[1], S = x->shape[2], n = tt_tensor_numel(x);
  if (n == 0) return TT_OK;
  LAUNCH_IDX(k_bn_apply, n, tt_cuda_ptr<float>(x), tt_cuda_ptr<float>(mean), tt_cuda_ptr<float>(rstd),
             w ? tt_cuda_ptr<float>(w) : nullptr, b ? tt_cuda_ptr<float>(b) : nullptr, tt_cuda_ptr<float>(y), n, C, S);
  return tt_cuda_check_launch("batch_norm_apply");
}

// y = leaky_relu((x - mean[c]) * rstd[c] * w[c] + b[c], slope)
template <class I>
__global__ void k_bnl_apply(const float *x, const float *mean, const float *rstd, const float *w, const float *b,
                            float slope, float *y, int64_t n, I C, I S) {
  TT_CUDA_LOOP(t, n) {
    I c = ((I)t / S) % C;
    float a = w ? rstd[c] * w[c] : rstd[c];
    float h = (x[t] - mean[c]) * a + (b ? b[c] : 0.0f);
    y[t] = h > 0 ? h : slope * h;
  }
}

static tt_status cu_batch_norm_lrelu_apply(const tt_tensor *x, const tt_tensor *mean, const tt_tensor *rstd,
                                           const tt_tensor *w, const tt_tensor *b, float slope, tt_tensor *y) {
  TT_TRY(check_nd("batch_norm_lrelu_apply", x, 3));
  int64_t C = x->shape[1], S = x->shape[2], n = tt_tensor_numel(x);
  if (n == 0) return TT_OK;
  LAUNCH_IDX(k_bnl_apply, n, tt_cuda_ptr<float>(x), tt_cuda_ptr<float>(mean), tt_cuda_ptr<float>(rstd),
             w ? tt_cuda_ptr<float>(w) : nullptr, b ? tt_cuda_ptr<float>(b) : nullptr, slope, tt_cuda_ptr<float>(y), n,
             C, S);
  return tt_cuda_check_launch("batch_norm_lrelu_apply");
}

/* gh = gy * (h > 0 ? 1 : slope), h recomputed from x */
__device__ __forceinline__ float bnl_gh(float x, float gy, float mu, float a, float sh, float slope) {
  float h = (x - mu) * a + sh;
  return h > 0 ? gy : gy * slope;
}

/* Per channel: sg = sum gy, sgx = sum gy * (x - mean); gw = sgx * rstd, gb = sg, and
 * the gx coefficients (a = rstd * w, and in training c1 = a sg / N, c2 = a rstd^2 sgx / N). */
struct bn_sums {
  typedef tt_red_dsum2 acc;
  const float *x, *gy, *mean, *rstd, *w;
  set_layout s;
  float *gw, *gb, *coef; /* coef [C, 3] or NULL */
  bool training;
  bool lrelu;            /* gy is the gradient of leaky_relu(h, slope): use gh */
  const float *b;        /* with lrelu: the bias of h */
  float slope;
  __device__ acc identity() const { return {0.0, 0.0}; }
  __device__ acc combine(acc a, acc b2) const { return tt_red_add(a, b2); }
  __device__ acc load(int64_t c, int64_t e) const {
    int64_t off = set_offset(s, c, e);
    double g = lrelu ? (double)bnl_gh(x[off], gy[off], mean[c], w ? rstd[c] * w[c] : rstd[c], b ? b[c] : 0.0f, slope)
                     : (double)gy[off];
    return {g, g * ((double)x[off] - (double)mean[c])};
  }
  __device__ void store(int64_t c, acc a) const {
    double r = rstd[c];
    if (gw) gw[c] = (float)(a.b * r);
    if (gb) gb[c] = (float)a.a;
    if (coef) {
      double aa = w ? r * w[c] : r, N = (double)(s.L > 0 ? s.L : 1);
      coef[3 * c] = (float)aa;
      coef[3 * c + 1] = training ? (float)(aa * a.a / N) : 0.0f;
      coef[3 * c + 2] = training ? (float)(aa * r * r * a.b / N) : 0.0f;
    }
  }
};

// gx = a * gy - c2 * (x - mean) - c1 per channel
template <class I>
__global__ void k_bn_grad(const float *x, const float *gy, const float *mean, const float *coef, float *gx, int64_t n,
                          I C, I S) {
  TT_CUDA_LOOP(t, n) {
    I c = ((I)t / S) % C;
    gx[t] = coef[3 * c] * gy[t] - coef[3 * c + 2] * (x[t] - mean[c]) - coef[3 * c + 1];
  }
}

// gx = a * gh - c2 * (x - mean) - c1 per channel, gh recomputed
template <class I>
__global__ void k_bnl_grad(const float *x, const float *gy, const float *mean, const float *rstd, const float *w,
                           const float *b, float slope, const float *coef, float *gx, int64_t n, I C, I S) {
  TT_CUDA_LOOP(t, n) {
    I c = ((I)t / S) % C;
    float gh = bnl_gh(x[t], gy[t], mean[c], w ? rstd[c] * w[c] : rstd[c], b ? b[c] : 0.0f, slope);
    gx[t] = coef[3 * c] * gh - coef[3 * c + 2] * (x[t] - mean[c]) - coef[3 * c + 1];
  }
}

/* The batch norm backward, of gy or (lrelu) of gh; b and slope only with lrelu. */
static tt_status bn_bwd(const char *k, bool training, bool lrelu, const tt_tensor *x, const tt_tensor *mean,
                        const tt_tensor *rstd, const tt_tensor *w, const tt_tensor *b, float slope,
                        const tt_tensor *gy, tt_tensor *gx, tt_tensor *gw, tt_tensor *gb) {
  TT_TRY(check_nd(k, x, 3));
  int64_t B = x->shape[0], C = x->shape[1], S = x->shape[2], n = B * C * S;
  if (C == 0) return TT_OK;
  tt_cuda_buf coef;
  if (gx) TT_TRY(coef.alloc(sizeof(float) * 3 * (size_t)C, k));
  const float *xs = tt_cuda_ptr<float>(x), *gys = tt_cuda_ptr<float>(gy), *ms = tt_cuda_ptr<float>(mean);
  bn_sums r = {xs,
               gys,
               ms,
               tt_cuda_ptr<float>(rstd),
               w ? tt_cuda_ptr<float>(w) : nullptr,
               {B * S, S, S, C * S},
               gw ? tt_cuda_ptr<float>(gw) : nullptr,
               gb ? tt_cuda_ptr<float>(gb) : nullptr,
               gx ? coef.as<float>() : nullptr,
               training,
               lrelu,
               b ? tt_cuda_ptr<float>(b) : nullptr,
               slope};
  TT_TRY(tt_cuda_set_reduce(k, r, C, B * S));
  if (gx && n > 0) {
    if (lrelu)
      LAUNCH_IDX(k_bnl_grad, n, xs, gys, ms, r.rstd, r.w, r.b, slope, coef.as<float>(), tt_cuda_ptr<float>(gx), n, C,
                 S);
    else
      LAUNCH_IDX(k_bn_grad, n, xs, gys, ms, coef.as<float>(), tt_cuda_ptr<float>(gx), n, C, S);
    TT_TRY(tt_cuda_check_launch(k));
  }
  return TT_OK;
}

static tt_status cu_batch_norm_bwd(bool training, const tt_tensor *x, const tt_tensor *mean, const tt_tensor *rstd,
                                   const tt_tensor *w, const tt_tensor *gy, tt_tensor *gx, tt_tensor *gw,
                                   tt_tensor *gb) {
  return bn_bwd("batch_norm_bwd", training, false, x, mean, rstd, w, NULL, 0.0f, gy, gx, gw, gb);
}

static tt_status cu_batch_norm_lrelu_bwd(bool training, const tt_tensor *x, const tt_tensor *mean,
                                         const tt_tensor *rstd, const tt_tensor *w, const tt_tensor *b, float slope,
                                         const tt_tensor *gy, tt_tensor *gx, tt_tensor *gw, tt_tensor *gb) {
  return bn_bwd("batch_norm_lrelu_bwd", training, true, x, mean, rstd, w, b, slope, gy, gx, gw, gb);
}

tt_status tt_cuda_register_norm(tt_backend *b) {
  TT_REGISTER_KERNEL(b, group_norm_fwd, cu_group_norm_fwd);
  TT_REGISTER_KERNEL(b, group_norm_bwd, cu_group_norm_bwd);
  TT_REGISTER_KERNEL(b, group_norm_silu_fwd, cu_group_norm_silu_fwd);
  TT_REGISTER_KERNEL(b, group_norm_silu_bwd, cu_group_norm_silu_bwd);
  TT_REGISTER_KERNEL(b, layer_norm_fwd, cu_layer_norm_fwd);
  TT_REGISTER_KERNEL(b, layer_norm_bwd, cu_layer_norm_bwd);
  TT_REGISTER_KERNEL(b, batch_norm_stats, cu_batch_norm_stats);
  TT_REGISTER_KERNEL(b, batch_norm_apply, cu_batch_norm_apply);
  TT_REGISTER_KERNEL(b, batch_norm_bwd, cu_batch_norm_bwd);
  TT_REGISTER_KERNEL(b, batch_norm_lrelu_apply, cu_batch_norm_lrelu_apply);
  TT_REGISTER_KERNEL(b, batch_norm_lrelu_bwd, cu_batch_norm_lrelu_bwd);
  return TT_OK;
}

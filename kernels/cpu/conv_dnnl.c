/* conv_dnnl.c — the CPU kernel of convolutions with bf16 weights
 * (taming/ops/conv_lowp.h), through oneDNN.
 *
 * Why oneDNN and not our own micro-kernels: measured on the Xeon this was
 * written on (AMX-BF16, 2 threads), a 3x3 128->128 conv at 256x256 ran in
 * 32-48 ms in oneDNN's AMX brgemm kernel against 366-839 ms as im2col followed
 * by the AMX GEMM of qlinear.c (which is built for few activation rows) and
 * 200-260 ms in today's fp32 path; 512->512 at 16x16 took 0.36 ms against 2.9 ms.
 * Reaching oneDNN's blocking would be a project of its own.
 *
 * Activations stay f32 NCHW between ops: per call the input is transposed to
 * the bf16 NHWC the primitive reads and the f32 NHWC output back to NCHW (our
 * own transposes below; oneDNN's reorders for other layouts). conv2d_bf16_fused
 * does a ResNet block's GroupNorm + SiLU, or the Upsample's nearest doubling, in
 * the input's transpose and the residual add in the output's, so that those
 * maps are never written in f32 and read back: the elementwise work rides on
 * passes that touch the data anyway. Weights are reordered once per input shape
 * and kept in the pack's cache with the primitive.
 *
 * Run-time choice: the kernel is registered only when oneDNN dispatches to
 * AVX512-BF16 or AMX on this CPU (emulated bf16 is slower than our fp32 path).
 * TAMING_CPU_ISA=generic hides it (to test the fp32 fallback), =avx512 caps
 * oneDNN below AMX, as for the qlinear kernels. Built without oneDNN, this file
 * registers only the ISA query, which says so. */
#include "config.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "cpu.h"
#include "taming/ops/conv_lowp.h"

static const char *bf16_isa = "taming was built without oneDNN (libdnnl-dev)";

static const char *cpu_conv2d_bf16_isa(void) { return bf16_isa; }

#ifdef HAVE_DNNL
#include <immintrin.h>
#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include "nhwc.h"   /* the transposes with the fused steps */
#include "softmax_row.h"   /* tt_cpu_expf: an exp that vectorises, for the fused SiLU */
#include "taming/dtype.h"

#define MAX_PLANS 4   /* input shapes remembered per weight (a VQGAN sees one) */

/* one input shape: the primitive, its memory objects and the reordered weights */
typedef struct {
  int64_t B, H, W;
  tt_conv2d_params p;
  bool has_bias;
  dnnl_primitive_t conv, to_src, from_dst;   /* oneDNN reorders, NULL when not needed or done by us */
  bool src_nhwc, dst_nhwc;                   /* the primitive reads bf16 NHWC / writes f32 NHWC: our transposes */
  dnnl_memory_t x_user, src, wts, bias, dst, y_user;
  size_t src_bytes, dst_bytes;
  void *wbuf;
} plan;

typedef struct {
  const void *w;   /* the bf16 weights the plans were made from */
  plan plans[MAX_PLANS];
  int n, next;     /* plans filled, slot to replace next */
} cache;

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* scratch for the reordered input and output, shared by all packs (calls are serialised) */
static void *scratch;
static size_t scratch_bytes;

#define DN(call, what)                                                                                 \
  do {                                                                                                 \
    dnnl_status_t st_ = (call);                                                                        \
    if (st_ != dnnl_success) {                                                                         \
      s = tt_error(TT_ERR_UNSUPPORTED, "conv2d_bf16: oneDNN %s failed (status %d)", what, (int)st_);      \
      goto done;                                                                                       \
    }                                                                                                  \
  } while (0)

static void plan_free(plan *pl) {
  dnnl_primitive_destroy(pl->conv);
  dnnl_primitive_destroy(pl->to_src);
  dnnl_primitive_destroy(pl->from_dst);
  dnnl_memory_t *m[6] = {&pl->x_user, &pl->src, &pl->wts, &pl->bias, &pl->dst, &pl->y_user};
  for (int i = 0; i < 6; i++) dnnl_memory_destroy(*m[i]);
  free(pl->wbuf);
  memset(pl, 0, sizeof *pl);
}

static void cpu_conv2d_bf16_cache_free(void *c) {
  cache *cc = c;
  if (!cc) return;
  for (int i = 0; i < cc->n; i++) plan_free(&cc->plans[i]);
  free(cc);
}

static tt_status reorder_once(const dnnl_memory_desc_t *from, void *pf, const dnnl_memory_desc_t *to, void *pt) {
  tt_status s = TT_OK;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_t r = NULL;
  dnnl_memory_t a = NULL, b = NULL;
  DN(dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, NULL), "weight reorder");
  DN(dnnl_primitive_create(&r, pd), "weight reorder");
  DN(dnnl_memory_create(&a, from, engine, pf), "weight memory");
  DN(dnnl_memory_create(&b, to, engine, pt), "weight memory");
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, a}, {DNNL_ARG_TO, b}};
  DN(dnnl_primitive_execute(r, stream, 2, args), "weight reorder");
  DN(dnnl_stream_wait(stream), "weight reorder");
done:
  dnnl_memory_destroy(a);
  dnnl_memory_destroy(b);
  dnnl_primitive_destroy(r);
  dnnl_primitive_desc_destroy(pd);
  return s;
}

/* a reorder primitive from one layout to another, or NULL when they are the same */
static dnnl_status_t make_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, dnnl_primitive_t *r) {
  *r = NULL;
  if (dnnl_memory_desc_equal(from, to)) return dnnl_success;
  dnnl_primitive_desc_t pd;
  dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, NULL);
  if (st == dnnl_success) st = dnnl_primitive_create(r, pd);
  if (pd) dnnl_primitive_desc_destroy(pd);
  return st;
}

/* The first implementation oneDNN offers for the convolution, except that a padded
 * 1x1 convolution skips the AMX ones: in oneDNN 2.6.3 they read outside the input
 * when a 1x1 kernel is padded and strided (wrong values, or a crash), which
 * tests/check_ops_conv_lowp.c's random shapes found. No VQGAN convolution is one. */
static dnnl_status_t pick(const dnnl_convolution_desc_t *cd, bool padded_1x1, dnnl_primitive_desc_t *out) {
  *out = NULL;
  if (!padded_1x1) return dnnl_primitive_desc_create(out, cd, NULL, engine, NULL);
  dnnl_primitive_desc_iterator_t it;
  dnnl_status_t st = dnnl_primitive_desc_iterator_create(&it, cd, NULL, engine, NULL);
  if (st != dnnl_success) return st;
  do {
    dnnl_primitive_desc_t pd = dnnl_primitive_desc_iterator_fetch(it);
    const char *impl = NULL;
    if (pd && dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
        !strstr(impl, "amx")) {
      *out = pd;
      break;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
  } while (dnnl_primitive_desc_iterator_next(it) == dnnl_success);
  dnnl_primitive_desc_iterator_destroy(it);
  return *out ? dnnl_success : dnnl_unimplemented;
}

/* xs: the shape [B, Ci, H, W] the convolution reads (the input after any upsampling), ys the
 * shape [B, Co, Ho, Wo] it writes, whatever the layouts of the tensors */
static tt_status plan_make(plan *pl, const tt_conv2d_params *p, const int64_t xs[4], const tt_tensor *w, bool has_bias,
                           const int64_t ys[4]) {
  tt_status s = TT_OK;
  memset(pl, 0, sizeof *pl);
  pl->B = xs[0], pl->H = xs[2], pl->W = xs[3], pl->p = *p, pl->has_bias = has_bias;
  dnnl_dims_t xd = {xs[0], xs[1], xs[2], xs[3]};
  dnnl_dims_t wd = {w->shape[0], w->shape[1], w->shape[2], w->shape[3]};
  dnnl_dims_t yd = {ys[0], ys[1], ys[2], ys[3]}, bd = {w->shape[0]};
  dnnl_dims_t strides = {p->stride_h, p->stride_w}, pad_l = {p->pad_top, p->pad_left},
              pad_r = {p->pad_bottom, p->pad_right};
  dnnl_memory_desc_t src_any, w_any, dst_any, b_md, x_nchw, w_oihw, y_nchw;
  dnnl_convolution_desc_t cd;
  dnnl_primitive_desc_t pd = NULL;
  DN(dnnl_memory_desc_init_by_tag(&src_any, 4, xd, dnnl_bf16, dnnl_format_tag_any), "source descriptor");
  DN(dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dnnl_bf16, dnnl_format_tag_any), "weight descriptor");
  DN(dnnl_memory_desc_init_by_tag(&dst_any, 4, yd, dnnl_f32, dnnl_format_tag_any), "output descriptor");
  DN(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x), "bias descriptor");
  DN(dnnl_memory_desc_init_by_tag(&x_nchw, 4, xd, dnnl_f32, dnnl_nchw), "input descriptor");
  DN(dnnl_memory_desc_init_by_tag(&w_oihw, 4, wd, dnnl_bf16, dnnl_oihw), "weight descriptor");
  DN(dnnl_memory_desc_init_by_tag(&y_nchw, 4, yd, dnnl_f32, dnnl_nchw), "output descriptor");
  DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src_any, &w_any,
                                        has_bias ? &b_md : NULL, &dst_any, strides, pad_l, pad_r),
     "convolution descriptor");
  DN(pick(&cd, wd[2] == 1 && wd[3] == 1 && (p->pad_top || p->pad_bottom || p->pad_left || p->pad_right), &pd),
     "convolution");
  DN(dnnl_primitive_create(&pl->conv, pd), "convolution");
  const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
  const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  const dnnl_memory_desc_t *dmd = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
  pl->src_bytes = dnnl_memory_desc_get_size(smd);
  pl->dst_bytes = dnnl_memory_desc_get_size(dmd);
  size_t wbytes = dnnl_memory_desc_get_size(wmd);
  pl->wbuf = aligned_alloc(64, (wbytes + 63) / 64 * 64);
  if (!pl->wbuf) {
    s = tt_error(TT_ERR_NOMEM, "conv2d_bf16: out of memory for %zu bytes of weights", wbytes);
    goto done;
  }
  if ((s = reorder_once(&w_oihw, tt_tensor_data((tt_tensor *)w), wmd, pl->wbuf)) != TT_OK) goto done;
  dnnl_memory_desc_t x_nhwc, y_nhwc;
  DN(dnnl_memory_desc_init_by_tag(&x_nhwc, 4, xd, dnnl_bf16, dnnl_nhwc), "input descriptor");
  DN(dnnl_memory_desc_init_by_tag(&y_nhwc, 4, yd, dnnl_f32, dnnl_nhwc), "output descriptor");
  pl->src_nhwc = dnnl_memory_desc_equal(smd, &x_nhwc);
  pl->dst_nhwc = dnnl_memory_desc_equal(dmd, &y_nhwc);
  if (!pl->src_nhwc) DN(make_reorder(&x_nchw, smd, &pl->to_src), "input reorder");
  if (!pl->dst_nhwc) DN(make_reorder(dmd, &y_nchw, &pl->from_dst), "output reorder");
  DN(dnnl_memory_create(&pl->x_user, &x_nchw, engine, DNNL_MEMORY_NONE), "input memory");
  DN(dnnl_memory_create(&pl->src, smd, engine, DNNL_MEMORY_NONE), "source memory");
  DN(dnnl_memory_create(&pl->wts, wmd, engine, pl->wbuf), "weight memory");
  DN(dnnl_memory_create(&pl->bias, &b_md, engine, DNNL_MEMORY_NONE), "bias memory");
  DN(dnnl_memory_create(&pl->dst, dmd, engine, DNNL_MEMORY_NONE), "output memory");
  DN(dnnl_memory_create(&pl->y_user, &y_nchw, engine, DNNL_MEMORY_NONE), "output memory");
done:
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (s != TT_OK) plan_free(pl);
  return s;
}

static tt_status scratch_reserve(size_t bytes) {
  if (bytes <= scratch_bytes) return TT_OK;
  free(scratch);
  scratch_bytes = 0;
  scratch = aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!scratch) return tt_error(TT_ERR_NOMEM, "conv2d_bf16: out of memory for %zu bytes of scratch", bytes);
  scratch_bytes = (bytes + 63) / 64 * 64;
  return TT_OK;
}

/* ---- the fused steps (conv2d_bf16_fused): group norm + SiLU and nearest upsampling
 * of the input inside the pass that writes the primitive's bf16 NHWC input, and
 * the residual add inside the pass that reads its f32 NHWC output ---- */

/* Mean and biased variance of n values: sums of (x - x[0]) in f32 lanes over runs of
 * 4096 values, carried in double between runs (as kernels/cpu/norm.c, which sums every
 * value in double, without the cancellation of E[x^2] - E[x]^2; the f32 runs keep the
 * error far below bf16's rounding). */
__attribute__((target(TT_AVX512BF16))) static void moments(const float *x, int64_t n, double *mean, double *var) {
  *mean = *var = 0;
  if (n <= 0) return;
  __m512 k = _mm512_set1_ps(x[0]);
  double s1 = 0, s2 = 0;
  for (int64_t i0 = 0; i0 < n; i0 += 4096) {
    int64_t i1 = i0 + 4096 < n ? i0 + 4096 : n, i = i0;
    __m512 a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps(), b2 = _mm512_setzero_ps();
    for (; i + 32 <= i1; i += 32) {
      __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + i), k), e = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), k);
      a1 = _mm512_add_ps(a1, d), a2 = _mm512_fmadd_ps(d, d, a2);
      b1 = _mm512_add_ps(b1, e), b2 = _mm512_fmadd_ps(e, e, b2);
    }
    for (; i < i1; i += 16) {
      __mmask16 m = i + 16 <= i1 ? (__mmask16)0xffff : (__mmask16)((1u << (i1 - i)) - 1);
      __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), k);
      a1 = _mm512_add_ps(a1, d), a2 = _mm512_fmadd_ps(d, d, a2);
    }
    s1 += _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));
    s2 += _mm512_reduce_add_ps(_mm512_add_ps(a2, b2));
  }
  double dm = s1 / (double)n, v = s2 / (double)n - dm * dm;
  *mean = (double)x[0] + dm;
  *var = v > 0 ? v : 0;
}

/* The group norm of x [B, C, S] (weights of f) as one affine map per (b, c):
 * h = x * scale[bc] + shift[bc]. */
static void norm_coeffs(int64_t B, int64_t C, int64_t S, const tt_conv2d_fuse *f, const float *x, float *scale,
                        float *shift) {
  int64_t G = f->groups, cpg = C / G, gsize = cpg * S;
  const float *ws = f->norm_w ? tt_f32(f->norm_w) : NULL, *bs = f->norm_b ? tt_f32(f->norm_b) : NULL;
#pragma omp parallel for schedule(static) if (B * C * S > TT_CPU_PAR_MIN)
  for (int64_t bg = 0; bg < B * G; bg++) {
    double mu, var;
    moments(x + bg * gsize, gsize, &mu, &var);
    float r = (float)(1.0 / sqrt(var + (double)f->eps));
    for (int64_t j = 0; j < cpg; j++) {
      int64_t c = (bg % G) * cpg + j, bc = (bg / G) * C + c;
      float a = ws ? r * ws[c] : r;
      scale[bc] = a;
      shift[bc] = (bs ? bs[c] : 0.0f) - (float)mu * a;
    }
  }
}

/* Channels-last input (conv2d_bf16_fused's in_nhwc): the group norm's coefficients of
 * x [B, P, C]. Each task sums a run of pixels per channel (f32 lanes, shifted by the
 * channel's first value) into double partials; the groups are combined from the
 * channels' means and sums of squared deviations. */
#define NHWC_RUN 1024
__attribute__((target(TT_AVX512BF16))) static tt_status norm_coeffs_nhwc(int64_t B, int64_t C, int64_t P,
                                                                           const tt_conv2d_fuse *f, const float *x,
                                                                           float *scale, float *shift) {
  int64_t runs = (P + NHWC_RUN - 1) / NHWC_RUN, G = f->groups, cpg = C / G;
  double *part = malloc(sizeof(double) * 2 * (size_t)(B * runs * C));
  if (!part) return tt_error(TT_ERR_NOMEM, "conv2d_bf16_fused: out of memory for the norm's partial sums");
#pragma omp parallel for schedule(static) collapse(2) if (B * C * P >= 4 * TT_CPU_PAR_MIN)
  for (int64_t b = 0; b < B; b++)
    for (int64_t ri = 0; ri < runs; ri++) {
      const float *xb = x + b * P * C;
      double *p1 = part + 2 * (b * runs + ri) * C, *p2 = p1 + C;
      int64_t q0 = ri * NHWC_RUN, q1 = q0 + NHWC_RUN < P ? q0 + NHWC_RUN : P;
      for (int64_t c0 = 0; c0 < C; c0 += 16) {
        __mmask16 m = c0 + 16 <= C ? (__mmask16)0xffff : (__mmask16)((1u << (C - c0)) - 1);
        __m512 k = _mm512_maskz_loadu_ps(m, xb + c0), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps();
        for (int64_t q = q0; q < q1; q++) {
          __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, xb + q * C + c0), k);
          a1 = _mm512_add_ps(a1, d), a2 = _mm512_fmadd_ps(d, d, a2);
        }
        float s1[16], s2[16];
        _mm512_storeu_ps(s1, a1);
        _mm512_storeu_ps(s2, a2);
        for (int64_t j = 0; j < 16 && c0 + j < C; j++) p1[c0 + j] = s1[j], p2[c0 + j] = s2[j];
      }
    }
  const float *ws = f->norm_w ? tt_f32(f->norm_w) : NULL, *bs = f->norm_b ? tt_f32(f->norm_b) : NULL;
  for (int64_t b = 0; b < B; b++)
    for (int64_t g = 0; g < G; g++) {
      double mean_c[cpg], m2_c[cpg], mu = 0, m2 = 0, n = (double)P;
      for (int64_t j = 0; j < cpg; j++) {
        int64_t c = g * cpg + j;
        double s1 = 0, s2 = 0, k = x[b * P * C + c];
        for (int64_t ri = 0; ri < runs; ri++) {
          const double *p1 = part + 2 * (b * runs + ri) * C;
          s1 += p1[c], s2 += p1[C + c];
        }
        mean_c[j] = k + s1 / n;
        m2_c[j] = s2 - s1 * s1 / n;
        mu += mean_c[j];
      }
      mu /= (double)cpg;
      for (int64_t j = 0; j < cpg; j++) m2 += m2_c[j] + n * (mean_c[j] - mu) * (mean_c[j] - mu);
      double var = m2 / (n * (double)cpg);
      float r = (float)(1.0 / sqrt((var > 0 ? var : 0) + (double)f->eps));
      for (int64_t j = 0; j < cpg; j++) {
        int64_t c = g * cpg + j;
        float a = ws ? r * ws[c] : r;
        scale[b * C + c] = a;
        shift[b * C + c] = (bs ? bs[c] : 0.0f) - (float)mu * a;
      }
    }
  free(part);
  return TT_OK;
}

/* x f32 [B, H, W, C] -> d bf16 [B, H*u, W*u, C] with the input steps: no transpose, each
 * pixel's channels in 16-lane blocks */
__attribute__((target(TT_AVX512BF16))) static void prep_nhwc_bf16(int64_t B, int64_t C, int64_t H, int64_t W, int u,
                                                                    const float *x, const float *scale,
                                                                    const float *shift, bool silu, uint16_t *d) {
  int64_t Wo = W * u;
#pragma omp parallel for schedule(static) collapse(2) if (B * C * H * W >= 4 * TT_CPU_PAR_MIN)
  for (int64_t b = 0; b < B; b++)
    for (int64_t h = 0; h < H; h++)
      for (int64_t w = 0; w < W; w++) {
        const float *xp = x + ((b * H + h) * W + w) * C;
        for (int64_t c0 = 0; c0 < C; c0 += 16) {
          __mmask16 m = c0 + 16 <= C ? (__mmask16)0xffff : (__mmask16)((1u << (C - c0)) - 1);
          __m512 v = _mm512_maskz_loadu_ps(m, xp + c0);
          if (scale)
            v = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, scale + b * C + c0),
                                _mm512_maskz_loadu_ps(m, shift + b * C + c0));
          if (silu) v = silu16(v);
          __m256i o = (__m256i)_mm512_cvtneps_pbh(v);
          for (int dy = 0; dy < u; dy++)
            for (int dx = 0; dx < u; dx++)
              _mm256_mask_storeu_epi16(d + ((b * H * u + h * u + dy) * Wo + w * u + dx) * C + c0, m, o);
        }
      }
}

/* The same input steps in f32 NCHW, for a primitive that reads another layout (oneDNN's reorder
 * follows): x [B, C, H, W] (or [B, H, W, C] when nhwc) -> o [B, C, H*u, W*u] */
static void prep_input_f32(int64_t B, int64_t C, int64_t H, int64_t W, int u, bool nhwc, const float *x,
                           const float *scale, const float *shift, bool silu, float *o) {
  int64_t Wo = W * u;
#pragma omp parallel for schedule(static) collapse(2) if (B * C * H * W >= 4 * TT_CPU_PAR_MIN)
  for (int64_t bc = 0; bc < B * C; bc++)
    for (int64_t h = 0; h < H; h++) {
      int64_t b = bc / C, c = bc % C;
      float a = scale ? scale[bc] : 1.0f, sh = scale ? shift[bc] : 0.0f;
      for (int64_t w = 0; w < W; w++) {
        float xv = nhwc ? x[((b * H + h) * W + w) * C + c] : x[(bc * H + h) * W + w];
        float v = xv * a + sh;
        if (silu) v = v / (1.0f + tt_cpu_expf(-v));
        for (int dy = 0; dy < u; dy++)
          for (int dx = 0; dx < u; dx++) o[(bc * H * u + h * u + dy) * Wo + w * u + dx] = v;
      }
    }
}

static tt_status run(plan *pl, const tt_conv2d_fuse *f, const tt_tensor *x, const tt_tensor *b, tt_tensor *y) {
  tt_status s = TT_OK;

  int u = f ? f->upsample : 1;
  bool in_nhwc = f && f->in_nhwc, out_nhwc = f && f->out_nhwc;
  bool pre = f && (f->groups > 0 || u > 1 || in_nhwc);
  const float *res = f && f->residual ? tt_f32(f->residual) : NULL;
  int64_t B = x->shape[0], Ci = x->shape[in_nhwc ? 3 : 1], H = x->shape[in_nhwc ? 1 : 2],
          W = x->shape[in_nhwc ? 2 : 3], Co = y->shape[out_nhwc ? 3 : 1];
  int64_t P = y->shape[out_nhwc ? 1 : 2] * y->shape[out_nhwc ? 2 : 3];
  /* the bf16 input and the f32 output in the primitive's layouts share one scratch buffer, after
   * the norm's coefficients (2 x B*Ci floats), when the primitive reads another layout than
   * NHWC the f32 NCHW input after the fused steps, and when it writes another layout than a
   * channels-last output wants, that output in NCHW */
  size_t coef = f && f->groups > 0 ? ((size_t)(2 * B * Ci) * 4 + 63) / 64 * 64 : 0;
  size_t pre_f32 = pre && !pl->src_nhwc ? ((size_t)(B * Ci * H * u * W * u) * 4 + 63) / 64 * 64 : 0;
  size_t y_nchw = out_nhwc && !pl->dst_nhwc ? ((size_t)(B * Co * P) * 4 + 63) / 64 * 64 : 0;
  bool src_scratch = pl->src_nhwc || pl->to_src, dst_scratch = (pl->dst_nhwc && !out_nhwc) || pl->from_dst;
  size_t src_off = coef + pre_f32 + y_nchw, dst_off = src_off + (src_scratch ? (pl->src_bytes + 63) / 64 * 64 : 0);
  TT_TRY(scratch_reserve(dst_off + (dst_scratch ? pl->dst_bytes : 0)));
  float *scale = coef ? (float *)scratch : NULL, *shift = scale ? scale + B * Ci : NULL;
  float *xin = pre_f32 ? (float *)((char *)scratch + coef) : tt_f32(x);
  float *yuser = y_nchw ? (float *)((char *)scratch + coef + pre_f32) : tt_f32(y);
  char *sp = src_scratch ? (char *)scratch + src_off : (char *)xin;
  char *dp = dst_scratch ? (char *)scratch + dst_off : y_nchw ? (char *)yuser : (char *)tt_tensor_data(y);
  if (scale && in_nhwc) TT_TRY(norm_coeffs_nhwc(B, Ci, H * W, f, tt_f32(x), scale, shift));
  else if (scale) norm_coeffs(B, Ci, H * W, f, tt_f32(x), scale, shift);
  if (pre && !pl->src_nhwc) prep_input_f32(B, Ci, H, W, u, in_nhwc, tt_f32(x), scale, shift, f->silu, xin);
  DN(dnnl_memory_set_data_handle(pl->x_user, xin), "input memory");
  DN(dnnl_memory_set_data_handle(pl->src, sp), "source memory");
  DN(dnnl_memory_set_data_handle(pl->dst, dp), "output memory");
  DN(dnnl_memory_set_data_handle(pl->y_user, yuser), "output memory");
  if (pl->src_nhwc && in_nhwc) {
    prep_nhwc_bf16(B, Ci, H, W, u, tt_f32(x), scale, shift, f->silu, (uint16_t *)sp);
  } else if (pl->src_nhwc) {
    prep_input_bf16(B, Ci, H, W, u, tt_f32(x), scale, shift, f && f->silu, (uint16_t *)sp);
  } else if (pl->to_src) {
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, pl->x_user}, {DNNL_ARG_TO, pl->src}};
    DN(dnnl_primitive_execute(pl->to_src, stream, 2, a), "input reorder");
  }
  dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, pl->src}, {DNNL_ARG_WEIGHTS, pl->wts}, {DNNL_ARG_DST, pl->dst},
                          {DNNL_ARG_BIAS, pl->bias}};
  if (b) DN(dnnl_memory_set_data_handle(pl->bias, tt_tensor_data((tt_tensor *)b)), "bias memory");
  DN(dnnl_primitive_execute(pl->conv, stream, b ? 4 : 3, a), "convolution");
  if (pl->from_dst) {
    dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, pl->dst}, {DNNL_ARG_TO, pl->y_user}};
    DN(dnnl_primitive_execute(pl->from_dst, stream, 2, r), "output reorder");
  }
  DN(dnnl_stream_wait(stream), "convolution");
  if (out_nhwc && y_nchw) {
    /* the primitive wrote another layout, reordered to NCHW in scratch: to channels-last */
    float *ys = tt_f32(y);
#pragma omp parallel for schedule(static) if (B * Co * P >= 4 * TT_CPU_PAR_MIN)
    for (int64_t bp = 0; bp < B * P; bp++)
      for (int64_t c = 0; c < Co; c++) ys[bp * Co + c] = yuser[((bp / P) * Co + c) * P + bp % P];
  } else if (out_nhwc) {
    /* the primitive wrote y itself */
  } else if (pl->dst_nhwc) {
    nhwc_to_nchw_add_f32(B, Co, P, (const float *)dp, res, tt_f32(y));
  } else if (res) {
    float *ys = tt_f32(y);
    int64_t n = B * Co * P;
#pragma omp parallel for simd schedule(static) if (n >= 4 * TT_CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) ys[i] += res[i];
  }
done:
  return s;
}

static bool same_params(const tt_conv2d_params *a, const tt_conv2d_params *b) {
  return a->stride_h == b->stride_h && a->stride_w == b->stride_w && a->pad_top == b->pad_top &&
         a->pad_bottom == b->pad_bottom && a->pad_left == b->pad_left && a->pad_right == b->pad_right;
}

/* conv2d_bf16 (f NULL) and conv2d_bf16_fused */
static tt_status conv_bf16(const char *op, void **cachep, const tt_conv2d_params *p, const tt_conv2d_fuse *f,
                           const tt_tensor *x, const tt_tensor *w, const tt_tensor *b, tt_tensor *y) {
  if (w->dtype != TT_BF16 || x->dtype != TT_F32 || y->dtype != TT_F32)
    return tt_error(TT_ERR_INVALID, "%s: expected f32 input, bf16 weights and f32 output, found %s, %s, %s", op,
                    tt_dtype_name(x->dtype), tt_dtype_name(w->dtype), tt_dtype_name(y->dtype));
  int u = f ? f->upsample : 1, in = f && f->in_nhwc;
  int64_t xs[4] = {x->shape[0], x->shape[in ? 3 : 1], x->shape[in ? 1 : 2] * u, x->shape[in ? 2 : 3] * u};
  int out = f && f->out_nhwc;
  int64_t ys[4] = {y->shape[0], y->shape[out ? 3 : 1], y->shape[out ? 1 : 2], y->shape[out ? 2 : 3]};
  pthread_mutex_lock(&lock);
  tt_status s = TT_OK;
  /* the engine is made on first use, so processes that never convolve in bf16 do not pay for it */
  if (!engine && (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
                  dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success)) {
    if (engine) dnnl_engine_destroy(engine);
    engine = NULL;
    s = tt_error(TT_ERR_UNSUPPORTED, "%s: oneDNN could not make a CPU engine and stream", op);
  }
  cache *c = s == TT_OK ? *cachep : NULL;
  if (s == TT_OK && !c) {
    c = calloc(1, sizeof *c);
    if (!c) s = tt_error(TT_ERR_NOMEM, "%s: out of memory", op);
    else *cachep = c, c->w = tt_tensor_data((tt_tensor *)w);
  }
  if (s == TT_OK && c->w != tt_tensor_data((tt_tensor *)w))
    s = tt_error(TT_ERR_INVALID, "%s: the pack's kernel state belongs to other weights", op);
  plan *pl = NULL;
  for (int i = 0; s == TT_OK && i < c->n && !pl; i++) {
    plan *q = &c->plans[i];
    if (q->B == xs[0] && q->H == xs[2] && q->W == xs[3] && q->has_bias == (b != NULL) && same_params(&q->p, p))
      pl = q;
  }
  if (s == TT_OK && !pl) {
    int slot = c->n < MAX_PLANS ? c->n++ : c->next;
    if (slot == c->next) c->next = (c->next + 1) % MAX_PLANS;
    if (c->plans[slot].conv) plan_free(&c->plans[slot]);
    s = plan_make(&c->plans[slot], p, xs, w, b != NULL, ys);
    if (s == TT_OK) pl = &c->plans[slot];
    else if (slot == c->n - 1) c->n--;
  }
  if (s == TT_OK) s = run(pl, f, x, b, y);
  pthread_mutex_unlock(&lock);
  return s;
}

static tt_status cpu_conv2d_bf16(void **cachep, const tt_conv2d_params *p, const tt_tensor *x, const tt_tensor *w,
                                 const tt_tensor *b, tt_tensor *y) {
  return conv_bf16("conv2d_bf16", cachep, p, NULL, x, w, b, y);
}

static tt_status cpu_conv2d_bf16_fused(void **cachep, const tt_conv2d_params *p, const tt_conv2d_fuse *f,
                                       const tt_tensor *x, const tt_tensor *w, const tt_tensor *b, tt_tensor *y) {
  return conv_bf16("conv2d_bf16_fused", cachep, p, f, x, w, b, y);
}

unsigned tt_cpu_dnnl_isa(void) {
  static int isa = -1;
  pthread_mutex_lock(&lock);
  if (isa < 0) {
    const char *env = getenv("TAMING_CPU_ISA");
    if (env && !strcmp(env, "generic")) {
      isa = 0;
    } else {
      if (env && !strcmp(env, "avx512")) dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx512_core_bf16);
      dnnl_cpu_isa_t d = dnnl_get_effective_cpu_isa();
      /* the ISA values are bit masks, each holding the ones below it */
      isa = ((d & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core ? TT_DNNL_AVX512 : 0) |
            ((d & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16 ? TT_DNNL_BF16 : 0) |
            ((d & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx ? TT_DNNL_AMX : 0);
    }
  }
  pthread_mutex_unlock(&lock);
  return (unsigned)isa;
}

tt_status tt_cpu_register_conv_lowp(tt_backend *b) {
  const char *env = getenv("TAMING_CPU_ISA");
  unsigned isa = tt_cpu_dnnl_isa();
  if (env && !strcmp(env, "generic")) {
    bf16_isa = "no kernel (TAMING_CPU_ISA=generic)";
  } else {
    bf16_isa = isa & TT_DNNL_AMX    ? "amx-bf16 (oneDNN)"
               : isa & TT_DNNL_BF16 ? "avx512bf16 (oneDNN)"
                                    : "no avx512bf16 on this CPU";
    if (isa & TT_DNNL_BF16) {
      TT_REGISTER_KERNEL(b, conv2d_bf16, cpu_conv2d_bf16);
      TT_REGISTER_KERNEL(b, conv2d_bf16_fused, cpu_conv2d_bf16_fused);
      TT_REGISTER_KERNEL(b, conv2d_bf16_cache_free, cpu_conv2d_bf16_cache_free);
    }
  }
  TT_REGISTER_KERNEL(b, conv2d_bf16_isa, cpu_conv2d_bf16_isa);
  return TT_OK;
}

#else /* no oneDNN */

tt_status tt_cpu_register_conv_lowp(tt_backend *b) {
  TT_REGISTER_KERNEL(b, conv2d_bf16_isa, cpu_conv2d_bf16_isa);
  return TT_OK;
}

#endif

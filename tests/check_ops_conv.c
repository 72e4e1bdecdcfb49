/* check_ops_conv.c — conv2d and the resample family: forward values against
 * direct double-precision references computed here, backward kernels against the
 * same references on shapes large enough to need several tiles, finite-difference
 * gradients on small odd/non-square shapes, interpolate against values produced
 * by PyTorch (tests/data/gen_resample.py), and clear errors for bad shapes. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testhelp.h"

typedef struct {
  const char *name;
  int64_t B, Ci, Co, H, W, kh, kw;
  tt_conv2d_params p;
  bool bias;
} conv_case;

#define PAD4(s, t, b, l, r) {.stride_h = s, .stride_w = s, .pad_top = t, .pad_bottom = b, .pad_left = l, .pad_right = r}

/* Small cases: every plan and padding shape, odd sizes, H != W, channel counts of no pattern. */
static const conv_case small_cases[] = {
    {"1x1", 1, 5, 7, 6, 9, 1, 1, PAD4(1, 0, 0, 0, 0), true},
    {"3x3 pad 1", 1, 3, 4, 7, 5, 3, 3, PAD4(1, 1, 1, 1, 1), true},
    {"3x3 stride 2 pads (0,1,0,1)", 2, 4, 5, 9, 8, 3, 3, PAD4(2, 0, 1, 0, 1), true},
    {"4x4 stride 2 pad 1 (PatchGAN)", 1, 3, 2, 10, 7, 4, 4, PAD4(2, 1, 1, 1, 1), true},
    {"3x3 pad 1 batch 2, wide (shifted plan)", 2, 3, 5, 5, 29, 3, 3, PAD4(1, 1, 1, 1, 1), false},
    {"2x5 asymmetric pads", 1, 2, 3, 6, 11, 2, 5, PAD4(1, 2, 0, 1, 3), true},
    {"3x3 stride 3 big pads", 1, 2, 3, 5, 7, 3, 3, PAD4(3, 3, 2, 4, 1), true},
    {"1x1 stride 2 pad 1", 2, 3, 4, 5, 6, 1, 1, PAD4(2, 1, 1, 1, 1), true},
    /* one image too small to split by rows: the threads split the output channels */
    {"im2col channel blocks 40->72 3x3 12x9", 1, 40, 72, 12, 9, 3, 3, PAD4(1, 1, 1, 1, 1), true},
    {"shifted channel blocks 40->72 3x3 5x30", 1, 40, 72, 5, 30, 3, 3, PAD4(1, 1, 1, 1, 1), true},
    {"pointwise channel blocks 40->72 5x30", 1, 40, 72, 5, 30, 1, 1, PAD4(1, 0, 0, 0, 0), true},
};

/* Large cases: several tiles in every kernel and both forward plans. */
static const conv_case large_cases[] = {
    {"shifted 96->80 3x3 37x100 batch 2", 2, 96, 80, 37, 100, 3, 3, PAD4(1, 1, 1, 1, 1), true},
    {"shifted 64->48 3x3 31x300 (row tiles, a short last one)", 1, 64, 48, 31, 300, 3, 3, PAD4(1, 1, 1, 1, 1), true},
    {"im2col 128->24 3x3 stride 2 pads (0,1,0,1) 129x128", 1, 128, 24, 129, 128, 3, 3, PAD4(2, 0, 1, 0, 1), true},
    {"pointwise 70->130 33x31 batch 2", 2, 70, 130, 33, 31, 1, 1, PAD4(1, 0, 0, 0, 0), true},
    {"4x4 stride 2 pad 1 64->48 66x70", 1, 64, 48, 66, 70, 4, 4, PAD4(2, 1, 1, 1, 1), true},
};

static int64_t out_size(int64_t n, int64_t k, int s, int p0, int p1) { return (n + p0 + p1 - k) / s + 1; }

/* Direct convolution in double: y = conv(x, w) + b, and for a given gy the exact
 * gradients gx and gw (gb is the plain sum of gy). Any output may be NULL. */
static void conv_reference(const conv_case *c, const float *x, const float *w, const float *b, const float *gy,
                           double *y, double *gx, double *gw) {
  const tt_conv2d_params *p = &c->p;
  int64_t Ho = out_size(c->H, c->kh, p->stride_h, p->pad_top, p->pad_bottom);
  int64_t Wo = out_size(c->W, c->kw, p->stride_w, p->pad_left, p->pad_right);
  if (gx) memset(gx, 0, sizeof(double) * (size_t)(c->B * c->Ci * c->H * c->W));
  if (gw) memset(gw, 0, sizeof(double) * (size_t)(c->Co * c->Ci * c->kh * c->kw));
  for (int64_t bi = 0; bi < c->B; bi++)
    for (int64_t co = 0; co < c->Co; co++)
      for (int64_t oy = 0; oy < Ho; oy++)
        for (int64_t ox = 0; ox < Wo; ox++) {
          int64_t o = ((bi * c->Co + co) * Ho + oy) * Wo + ox;
          double acc = b ? b[co] : 0.0, g = gy ? gy[o] : 0.0;
          for (int64_t ci = 0; ci < c->Ci; ci++)
            for (int64_t u = 0; u < c->kh; u++) {
              int64_t iy = oy * p->stride_h - p->pad_top + u;
              if (iy < 0 || iy >= c->H) continue;
              for (int64_t v = 0; v < c->kw; v++) {
                int64_t ix = ox * p->stride_w - p->pad_left + v;
                if (ix < 0 || ix >= c->W) continue;
                int64_t xi = ((bi * c->Ci + ci) * c->H + iy) * c->W + ix;
                int64_t wi = ((co * c->Ci + ci) * c->kh + u) * c->kw + v;
                acc += (double)w[wi] * x[xi];
                if (gx) gx[xi] += g * w[wi];
                if (gw) gw[wi] += g * x[xi];
              }
            }
          if (y) y[o] = acc;
        }
}

static double max_diff(const tt_tensor *t, const double *ref, int64_t *where) {
  double m = 0;
  int64_t n = tt_tensor_numel(t);
  for (int64_t i = 0; i < n; i++) {
    double d = fabs(tt_f32(t)[i] - ref[i]);
    if (isnan(d)) d = INFINITY;
    if (d > m) {
      m = d;
      *where = i;
    }
  }
  return m;
}

#define ASSERT_REF(what, name, t, ref, tol)                                                              \
  do {                                                                                                   \
    int64_t at_ = 0;                                                                                     \
    double m_ = max_diff(t, ref, &at_);                                                                  \
    ck_assert_msg(m_ <= (tol), "%s (%s): max abs diff %.3g > %.3g at element %lld (%.7g vs %.7g)", what, \
                  name, m_, (double)(tol), (long long)at_, tt_f32(t)[at_], ref[at_]);                    \
  } while (0)

typedef struct {
  tt_tensor *x, *w, *b;
} conv_args;

/* Inputs scaled so outputs are O(1): w ~ N(0, 1/K). */
static conv_args make_args(const conv_case *c, uint64_t seed) {
  conv_args a;
  a.x = th_randn(seed, TT_DIMS(c->B, c->Ci, c->H, c->W), 1.0f);
  a.w = th_randn(seed + 1, TT_DIMS(c->Co, c->Ci, c->kh, c->kw), 1.0f / sqrtf((float)(c->Ci * c->kh * c->kw)));
  a.b = c->bias ? th_randn(seed + 2, TT_DIMS(c->Co), 0.5f) : NULL;
  return a;
}

static void free_args(conv_args *a) {
  tt_tensor_unref(a->x);
  tt_tensor_unref(a->w);
  tt_tensor_unref(a->b);
}

/* Forward through tt_conv2d, backward through the autograd node, all against the reference. */
static void check_conv_against_reference(const conv_case *c, uint64_t seed) {
  conv_args a = make_args(c, seed);
  tt_tensor_set_requires_grad(a.x, true);
  tt_tensor_set_requires_grad(a.w, true);
  if (a.b) tt_tensor_set_requires_grad(a.b, true);
  tt_tensor *y = tt_conv2d(a.x, a.w, a.b, &c->p);
  TH_NN(y);
  int64_t Ho = out_size(c->H, c->kh, c->p.stride_h, c->p.pad_top, c->p.pad_bottom);
  int64_t Wo = out_size(c->W, c->kw, c->p.stride_w, c->p.pad_left, c->p.pad_right);
  ck_assert_msg(y->ndim == 4 && y->shape[0] == c->B && y->shape[1] == c->Co && y->shape[2] == Ho && y->shape[3] == Wo,
                "%s: output shape [%lld, %lld, %lld, %lld], expected [%lld, %lld, %lld, %lld]", c->name,
                (long long)y->shape[0], (long long)y->shape[1], (long long)y->shape[2], (long long)y->shape[3],
                (long long)c->B, (long long)c->Co, (long long)Ho, (long long)Wo);
  tt_tensor *gy = th_randn(seed + 3, TT_DIMS(c->B, c->Co, Ho, Wo), 1.0f);
  int64_t ny = c->B * c->Co * Ho * Wo, nx = c->B * c->Ci * c->H * c->W, nw = c->Co * c->Ci * c->kh * c->kw;
  double *ry = malloc(sizeof(double) * (size_t)ny), *rgx = malloc(sizeof(double) * (size_t)nx);
  double *rgw = malloc(sizeof(double) * (size_t)nw);
  conv_reference(c, tt_f32(a.x), tt_f32(a.w), a.b ? tt_f32(a.b) : NULL, tt_f32(gy), ry, rgx, rgw);
  ASSERT_REF("conv2d forward", c->name, y, ry, 1e-4);
  TH_OK(tt_backward(y, gy, false));
  TH_NN(a.x->grad);
  TH_NN(a.w->grad);
  /* gradients sum over Co*kh*kw (gx) or B*Ho*Wo (gw) products of O(1) values */
  ASSERT_REF("conv2d grad input", c->name, a.x->grad, rgx, 2e-4);
  ASSERT_REF("conv2d grad weight", c->name, a.w->grad, rgw, 2e-5 * sqrt((double)(c->B * Ho * Wo)) + 1e-4);
  if (a.b) {
    TH_NN(a.b->grad);
    for (int64_t co = 0; co < c->Co; co++) {
      double s = 0;
      for (int64_t bi = 0; bi < c->B; bi++)
        for (int64_t i = 0; i < Ho * Wo; i++) s += tt_f32(gy)[(bi * c->Co + co) * Ho * Wo + i];
      ck_assert_msg(fabs(tt_f32(a.b->grad)[co] - s) <= 1e-4 * (1 + fabs(s)), "%s: bias grad %lld: %.7g vs %.7g",
                    c->name, (long long)co, tt_f32(a.b->grad)[co], s);
    }
  }
  free(ry);
  free(rgx);
  free(rgw);
  tt_tensor_unref(gy);
  tt_tensor_unref(y);
  free_args(&a);
}

START_TEST(test_conv_small_values) {
  for (size_t i = 0; i < sizeof small_cases / sizeof *small_cases; i++)
    check_conv_against_reference(&small_cases[i], 100 + 10 * i);
}
END_TEST

START_TEST(test_conv_large_values) {
  for (size_t i = 0; i < sizeof large_cases / sizeof *large_cases; i++)
    check_conv_against_reference(&large_cases[i], 300 + 10 * i);
}
END_TEST

static tt_tensor *f_conv(tt_tensor *const *in, void *ud) {
  const conv_case *c = ud;
  return tt_conv2d(in[0], in[1], in[2], &c->p);
}

START_TEST(test_conv_gradcheck) {
  for (size_t i = 0; i < sizeof small_cases / sizeof *small_cases; i++) {
    const conv_case *c = &small_cases[i];
    conv_args a = make_args(c, 500 + 10 * i);
    tt_tensor_set_requires_grad(a.x, true);
    tt_tensor_set_requires_grad(a.w, true);
    if (a.b) tt_tensor_set_requires_grad(a.b, true);
    tt_tensor *in[3] = {a.x, a.w, a.b};
    th_gradcheck(c->name, f_conv, 3, in, (void *)c, 1e-2, 2e-4, 1e-3, 48);
    free_args(&a);
  }
}
END_TEST

/* Only the gradients that are wanted: a frozen weight with a trainable bias, and an input alone. */
START_TEST(test_conv_partial_grads) {
  const conv_case *c = &small_cases[2];
  conv_args a = make_args(c, 700);
  tt_tensor_set_requires_grad(a.b, true);
  tt_tensor *in[3] = {a.x, a.w, a.b};
  th_gradcheck("bias only", f_conv, 3, in, (void *)c, 1e-2, 2e-4, 1e-3, 48);
  ck_assert_ptr_null(a.w->grad);
  ck_assert_ptr_null(a.x->grad);
  tt_tensor_set_requires_grad(a.b, false);
  tt_tensor_set_requires_grad(a.x, true);
  th_gradcheck("input only", f_conv, 3, in, (void *)c, 1e-2, 2e-4, 1e-3, 48);
  ck_assert_ptr_null(a.w->grad);
  ck_assert_ptr_null(a.b->grad);
  free_args(&a);
}
END_TEST

START_TEST(test_conv_errors) {
  tt_tensor *x = th_randn(1, TT_DIMS(1, 3, 8, 8), 1.0f);
  tt_tensor *w = th_randn(2, TT_DIMS(4, 5, 3, 3), 1.0f);
  tt_conv2d_params p = tt_conv2d_params_make(1, 1);
  ck_assert_int_eq(p.stride_w, 1);
  ck_assert_int_eq(p.pad_right, 1);
  ck_assert_ptr_null(tt_conv2d(x, w, NULL, &p));
  const char *m = tt_error_message();
  ck_assert_msg(strstr(m, "conv2d") && strstr(m, "5 input channels") && strstr(m, "[1, 3, 8, 8]") && strstr(m, "has 3"),
                "unclear message: %s", m);
  tt_tensor_set_name(w, "encoder.conv_in.weight");
  ck_assert_ptr_null(tt_conv2d(x, w, NULL, &p));
  ck_assert_msg(strstr(tt_error_message(), "weight 'encoder.conv_in.weight' [4, 5, 3, 3]"), "unnamed: %s",
                tt_error_message());
  tt_tensor *w2 = th_randn(3, TT_DIMS(4, 3, 3, 3), 1.0f), *b = th_randn(4, TT_DIMS(5), 1.0f);
  ck_assert_ptr_null(tt_conv2d(x, w2, b, &p));
  ck_assert_msg(strstr(tt_error_message(), "bias must be [4]"), "unclear message: %s", tt_error_message());
  tt_tensor *w3 = th_randn(5, TT_DIMS(4, 3, 11, 3), 1.0f);
  ck_assert_ptr_null(tt_conv2d(x, w3, NULL, &p));
  ck_assert_msg(strstr(tt_error_message(), "output would be empty"), "unclear message: %s", tt_error_message());
  tt_tensor *x3 = th_randn(6, TT_DIMS(3, 8, 8), 1.0f);
  ck_assert_ptr_null(tt_conv2d(x3, w2, NULL, &p));
  ck_assert_msg(strstr(tt_error_message(), "must have 4 dims"), "unclear message: %s", tt_error_message());
  tt_conv2d_params bad = tt_conv2d_params_make(0, 1);
  ck_assert_ptr_null(tt_conv2d(x, w2, NULL, &bad));
  ck_assert_msg(strstr(tt_error_message(), "stride must be >= 1"), "unclear message: %s", tt_error_message());
  tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(w2); tt_tensor_unref(b);
  tt_tensor_unref(w3); tt_tensor_unref(x3);
}
END_TEST

/* ---- upsampling and pooling ---- */

/* Distinct values 0.05 apart in random order, so a 1e-2 finite-difference step never changes a max. */
static tt_tensor *distinct(uint64_t seed, int64_t B, int64_t C, int64_t H, int64_t W) {
  tt_tensor *t = tt_tensor_new(TT_F32, TT_DIMS(B, C, H, W), TT_CPU);
  int64_t n = B * C * H * W;
  float *p = tt_f32(t);
  for (int64_t i = 0; i < n; i++) p[i] = 0.05f * (float)(i - n / 2);
  tt_rng r = tt_rng_make(seed);
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)(tt_rng_uniform(&r) * (double)(i + 1));
    if (j > i) j = i;
    float s = p[i]; p[i] = p[j]; p[j] = s;
  }
  tt_tensor_set_requires_grad(t, true);
  return t;
}

static tt_tensor *f_upsample(tt_tensor *const *in, void *ud) { return tt_upsample_nearest(in[0], *(int *)ud); }

START_TEST(test_upsample_nearest) {
  tt_tensor *x = th_randn(40, TT_DIMS(2, 3, 5, 7), 1.0f);
  for (int s = 1; s <= 3; s++) {
    tt_tensor *y = tt_upsample_nearest(x, s);
    TH_NN(y);
    ck_assert_int_eq(y->shape[2], 5 * s);
    ck_assert_int_eq(y->shape[3], 7 * s);
    double m = 0;
    for (int64_t p = 0; p < 6; p++)
      for (int64_t i = 0; i < 5 * s; i++)
        for (int64_t j = 0; j < 7 * s; j++)
          m = fmax(m, fabs(tt_f32(y)[(p * 5 * s + i) * 7 * s + j] - tt_f32(x)[(p * 5 + i / s) * 7 + j / s]));
    ck_assert_msg(m == 0, "upsample x%d: max abs diff %.3g", s, m);
    tt_tensor_unref(y);
  }
  tt_tensor_set_requires_grad(x, true);
  int s2 = 2, s3 = 3;
  th_gradcheck("upsample x2", f_upsample, 1, &x, &s2, 1e-2, 2e-4, 1e-3, 64);
  th_gradcheck("upsample x3", f_upsample, 1, &x, &s3, 1e-2, 2e-4, 1e-3, 64);
  ck_assert_ptr_null(tt_upsample_nearest(x, 0));
  ck_assert_msg(strstr(tt_error_message(), "scale must be >= 1"), "unclear message: %s", tt_error_message());
  tt_tensor_unref(x);
}
END_TEST

typedef struct { bool max; int k, s; } pool_case;

static tt_tensor *f_pool(tt_tensor *const *in, void *ud) {
  pool_case *c = ud;
  return c->max ? tt_max_pool2d(in[0], c->k, c->s) : tt_avg_pool2d(in[0], c->k, c->s);
}

START_TEST(test_pool2d) {
  pool_case cases[] = {{true, 2, 2}, {true, 3, 2}, {true, 2, 1}, {false, 2, 2}, {false, 3, 1}, {false, 3, 2}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    pool_case *c = &cases[k];
    tt_tensor *x = distinct(50 + k, 2, 3, 7, 10);   /* odd H: the last row is dropped (floor) */
    tt_tensor *y = f_pool(&x, c);
    TH_NN(y);
    int64_t Ho = (7 - c->k) / c->s + 1, Wo = (10 - c->k) / c->s + 1;
    ck_assert_int_eq(y->shape[2], Ho);
    ck_assert_int_eq(y->shape[3], Wo);
    double m = 0;
    for (int64_t p = 0; p < 6; p++)
      for (int64_t oy = 0; oy < Ho; oy++)
        for (int64_t ox = 0; ox < Wo; ox++) {
          double ref = c->max ? -INFINITY : 0;
          for (int a = 0; a < c->k; a++)
            for (int b = 0; b < c->k; b++) {
              double v = tt_f32(x)[(p * 7 + oy * c->s + a) * 10 + ox * c->s + b];
              ref = c->max ? fmax(ref, v) : ref + v / (c->k * c->k);
            }
          m = fmax(m, fabs(tt_f32(y)[(p * Ho + oy) * Wo + ox] - ref));
        }
    ck_assert_msg(m <= 1e-6, "%s pool k%d s%d: max abs diff %.3g", c->max ? "max" : "avg", c->k, c->s, m);
    th_gradcheck(c->max ? "max_pool2d" : "avg_pool2d", f_pool, 1, &x, c, 1e-2, 2e-4, 1e-3, 64);
    tt_tensor_unref(y);
    tt_tensor_unref(x);
  }
  tt_tensor *x = th_randn(60, TT_DIMS(1, 1, 3, 5), 1.0f);
  ck_assert_ptr_null(tt_max_pool2d(x, 4, 2));
  ck_assert_msg(strstr(tt_error_message(), "smaller than the 4x4 window"), "unclear message: %s", tt_error_message());
  tt_tensor_unref(x);
}
END_TEST

/* PyTorch's max_pool2d / avg_pool2d with zero padding, computed here cell by cell:
 * padded cells never win a max; the average divides by the cells inside the input
 * (count_include_pad=False, InceptionV3's FID blocks) or by the window clipped to the
 * padded input (count_include_pad=True). */
static double pool_ref(const float *plane, int64_t H, int64_t W, const tt_pool2d_params *p, int64_t oy, int64_t ox) {
  int64_t ya = oy * p->stride_h - p->pad_h, xa = ox * p->stride_w - p->pad_w;
  int64_t yb = ya + p->kernel_h, xb = xa + p->kernel_w;
  double ref = p->mode == TT_POOL_MAX ? -INFINITY : 0;
  int inside = 0;
  for (int64_t a = ya; a < yb; a++)
    for (int64_t b = xa; b < xb; b++) {
      if (a < 0 || b < 0 || a >= H || b >= W) continue;
      double v = plane[a * W + b];
      inside++;
      ref = p->mode == TT_POOL_MAX ? fmax(ref, v) : ref + v;
    }
  if (p->mode == TT_POOL_MAX) return ref;
  int64_t ph = (yb < H + p->pad_h ? yb : H + p->pad_h) - ya, pw = (xb < W + p->pad_w ? xb : W + p->pad_w) - xa;
  return ref / (p->count_include_pad ? (double)(ph * pw) : inside);
}

static tt_tensor *f_pool_pad(tt_tensor *const *in, void *ud) { return tt_pool2d(in[0], ud); }

START_TEST(test_pool2d_padded) {
  tt_pool2d_params cases[] = {
      {TT_POOL_AVG, 3, 3, 1, 1, 1, 1, false}, {TT_POOL_AVG, 3, 3, 1, 1, 1, 1, true},
      {TT_POOL_MAX, 3, 3, 1, 1, 1, 1, false}, {TT_POOL_AVG, 3, 3, 2, 2, 1, 1, true},
      {TT_POOL_MAX, 3, 2, 2, 1, 1, 1, false}, {TT_POOL_AVG, 2, 3, 2, 1, 1, 0, false}};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    tt_pool2d_params *c = &cases[k];
    tt_tensor *x = distinct(70 + k, 2, 3, 7, 10);
    tt_tensor *y = tt_pool2d(x, c);
    TH_NN(y);
    int64_t Ho = (7 + 2 * c->pad_h - c->kernel_h) / c->stride_h + 1;
    int64_t Wo = (10 + 2 * c->pad_w - c->kernel_w) / c->stride_w + 1;
    ck_assert_int_eq(y->shape[2], Ho);
    ck_assert_int_eq(y->shape[3], Wo);
    double m = 0;
    for (int64_t p = 0; p < 6; p++)
      for (int64_t oy = 0; oy < Ho; oy++)
        for (int64_t ox = 0; ox < Wo; ox++)
          m = fmax(m, fabs(tt_f32(y)[(p * Ho + oy) * Wo + ox] - pool_ref(tt_f32(x) + p * 70, 7, 10, c, oy, ox)));
    ck_assert_msg(m <= 1e-6, "padded pool case %zu: max abs diff %.3g", k, m);
    th_gradcheck("pool2d padded", f_pool_pad, 1, &x, c, 1e-2, 2e-4, 1e-3, 64);
    tt_tensor_unref(y);
    tt_tensor_unref(x);
  }
  /* one known value: the corner of a 3x3 average without the padding sees 4 cells */
  tt_tensor *o = tt_full(TT_F32, TT_DIMS(1, 1, 4, 4), 2.0, TT_CPU);
  tt_tensor *a = tt_pool2d(o, &(tt_pool2d_params){TT_POOL_AVG, 3, 3, 1, 1, 1, 1, false});
  tt_tensor *b = tt_pool2d(o, &(tt_pool2d_params){TT_POOL_AVG, 3, 3, 1, 1, 1, 1, true});
  TH_NN(a);
  TH_NN(b);
  ck_assert_msg(fabs(tt_f32(a)[0] - 2.0) < 1e-7, "count_include_pad=False corner: %g, expected 2", tt_f32(a)[0]);
  ck_assert_msg(fabs(tt_f32(b)[0] - 8.0 / 9.0) < 1e-6, "count_include_pad=True corner: %g, expected 8/9", tt_f32(b)[0]);
  ck_assert_ptr_null(tt_pool2d(o, &(tt_pool2d_params){TT_POOL_MAX, 3, 3, 1, 1, 2, 2, false}));
  ck_assert_msg(strstr(tt_error_message(), "padding 2x2 must be between 0 and half the 3x3 kernel"),
                "unclear message: %s", tt_error_message());
  tt_tensor_unref(a);
  tt_tensor_unref(b);
  tt_tensor_unref(o);
}
END_TEST

/* ---- interpolate against PyTorch ---- */

static const char *mode_name(tt_interp_mode m) {
  static const char *names[] = {"nearest", "area", "bilinear", "bicubic"};
  return names[m];
}

START_TEST(test_interpolate_vs_pytorch) {
  char path[4096];
  const char *src = getenv("TT_SRCDIR");
  snprintf(path, sizeof path, "%s/tests/data/resample/interpolate.txt", src && *src ? src : TT_ABS_SRCDIR);
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "cannot open %s (made by tests/data/gen_resample.py)", path);
  long long B, C, H, W;
  ck_assert_int_eq(fscanf(f, " input %lld %lld %lld %lld", &B, &C, &H, &W), 4);
  tt_tensor *x = tt_tensor_new(TT_F32, TT_DIMS(B, C, H, W), TT_CPU);
  for (int64_t i = 0; i < B * C * H * W; i++) ck_assert_int_eq(fscanf(f, "%f", &tt_f32(x)[i]), 1);
  char mode[32];
  long long oh, ow;
  int cases = 0, per_mode[4] = {0};
  while (fscanf(f, " case %31s %lld %lld", mode, &oh, &ow) == 3) {
    int m = -1;
    for (int k = 0; k < 4; k++)
      if (!strcmp(mode, mode_name((tt_interp_mode)k))) m = k;
    ck_assert_msg(m >= 0, "unknown mode %s in %s", mode, path);
    tt_tensor *want = tt_tensor_new(TT_F32, TT_DIMS(B, C, oh, ow), TT_CPU);
    for (int64_t i = 0; i < B * C * oh * ow; i++) ck_assert_int_eq(fscanf(f, "%f", &tt_f32(want)[i]), 1);
    tt_tensor *y = tt_interpolate(x, oh, ow, (tt_interp_mode)m);
    TH_NN(y);
    char what[96];
    snprintf(what, sizeof what, "interpolate %s to %lldx%lld", mode, oh, ow);
    /* nearest copies values; the others agree up to the order of float sums and
     * FMA contraction (values are O(1); differences seen: <= 3e-6) */
    th_assert_close(what, y, want, m == 0 ? 0.0 : 1e-5);
    tt_tensor_unref(y);
    tt_tensor_unref(want);
    cases++;
    per_mode[m]++;
  }
  fclose(f);
  ck_assert_msg(cases >= 20 && per_mode[0] && per_mode[1] && per_mode[2] && per_mode[3],
                "%s holds only %d cases", path, cases);
  tt_tensor_unref(x);
}
END_TEST

START_TEST(test_interpolate_refuses_grad) {
  tt_tensor *x = th_randn(70, TT_DIMS(1, 2, 4, 4), 1.0f);
  tt_tensor_set_requires_grad(x, true);
  ck_assert_ptr_null(tt_interpolate(x, 8, 8, TT_INTERP_BILINEAR));
  ck_assert_msg(strstr(tt_error_message(), "no gradient"), "unclear message: %s", tt_error_message());
  tt_tensor *y = NULL;
  TT_NO_GRAD_BEGIN;
  y = tt_interpolate(x, 8, 8, TT_INTERP_BILINEAR);
  TT_NO_GRAD_END;
  TH_NN(y);
  ck_assert_ptr_null(y->grad_fn);
  ck_assert_ptr_null(tt_interpolate(y, 0, 3, TT_INTERP_NEAREST));
  ck_assert_msg(strstr(tt_error_message(), "output size must be >= 1"), "unclear message: %s", tt_error_message());
  tt_tensor_unref(y);
  tt_tensor_unref(x);
}
END_TEST

int main(void) {
  Suite *s = suite_create("ops_conv");
  TCase *tc = tcase_create("conv");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_conv_small_values);
  tcase_add_test(tc, test_conv_large_values);
  tcase_add_test(tc, test_conv_gradcheck);
  tcase_add_test(tc, test_conv_partial_grads);
  tcase_add_test(tc, test_conv_errors);
  suite_add_tcase(s, tc);
  TCase *tr = tcase_create("resample");
  tcase_set_timeout(tr, 60);
  tcase_add_test(tr, test_upsample_nearest);
  tcase_add_test(tr, test_pool2d);
  tcase_add_test(tr, test_pool2d_padded);
  tcase_add_test(tr, test_interpolate_vs_pytorch);
  tcase_add_test(tr, test_interpolate_refuses_grad);
  suite_add_tcase(s, tr);
  return th_run(s);
}

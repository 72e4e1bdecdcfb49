/* check_ops_conv_lowp.c — convolutions with bf16 weights (taming/ops/conv_lowp.h)
 * against the f32 convolution: exactly-rounded inputs and weights through tt_conv2d
 * (only the summation order differs), and the unrounded f32 result within the
 * error bf16 rounding allows; over random shapes with stride 2, asymmetric
 * padding, 1x1 kernels, non-square maps, batches and no bias. Also the pack's
 * cache of input shapes, the refusals, and the fused steps (group norm + SiLU and
 * upsampling before, a residual after) against the same ops run one by one. Without a bf16 convolution kernel
 * (no oneDNN in the build, or no AVX512-BF16) the suite exits 77. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testhelp.h"

/* t f32 with every value rounded to bf16 (nearest even), as the kernel rounds */
#define ERROR_CONTAINS(text) ck_assert_msg(strstr(tt_error_message(), text), "message: %s", tt_error_message())

static tt_tensor *bf16_rounded(tt_tensor *t) {
  tt_tensor *h = tt_cast(t, TT_BF16);
  tt_tensor *r = h ? tt_cast(h, TT_F32) : NULL;
  tt_tensor_unref(h);
  return r;
}

typedef struct {
  int B, ci, co, kh, kw, H, W;
  tt_conv2d_params p;
  bool bias;
} shape;

static shape random_shape(unsigned *seed) {
  static const int chans[] = {3, 8, 16, 32, 48, 64, 128};
  shape s;
  s.B = 1 + rand_r(seed) % 2;
  s.ci = chans[rand_r(seed) % 7];
  s.co = chans[rand_r(seed) % 7];
  int k = rand_r(seed) % 3;   /* 1x1, 3x3, or 4x3 (non-square kernel) */
  s.kh = k == 0 ? 1 : k == 1 ? 3 : 4;
  s.kw = k == 0 ? 1 : 3;
  s.H = 5 + rand_r(seed) % 20;
  s.W = 5 + rand_r(seed) % 20;
  int st = 1 + rand_r(seed) % 2;
  s.p = (tt_conv2d_params){st, 1 + rand_r(seed) % 2, rand_r(seed) % 2, rand_r(seed) % 3, rand_r(seed) % 2,
                           rand_r(seed) % 2};
  s.bias = rand_r(seed) % 4 != 0;
  return s;
}

static void check_shape(const shape *s, uint64_t seed) {
  tt_tensor *x = th_randn(seed, TT_DIMS(s->B, s->ci, s->H, s->W), 1.0f);
  tt_tensor *w = th_randn(seed + 1, TT_DIMS(s->co, s->ci, s->kh, s->kw), 1.0f / sqrtf((float)(s->ci * s->kh * s->kw)));
  tt_tensor *b = s->bias ? th_randn(seed + 2, TT_DIMS(s->co), 0.5f) : NULL;
  TH_NN(x);
  TH_NN(w);
  tt_conv2d_packed *pk = tt_conv2d_pack(w, TT_BF16);
  TH_NN(pk);
  tt_tensor *y = tt_conv2d_packed_forward(pk, x, b, &s->p);
  TH_NN(y);
  tt_tensor *xr = bf16_rounded(x), *wr = bf16_rounded(w);
  tt_tensor *yr = tt_conv2d(xr, wr, b, &s->p), *yf = tt_conv2d(x, w, b, &s->p);
  TH_NN(yr);
  TH_NN(yf);
  ck_assert_int_eq(y->ndim, 4);
  for (int i = 0; i < 4; i++) ck_assert_int_eq(y->shape[i], yf->shape[i]);
  /* same products, other summation order: f32 rounding of sums of up to ci*kh*kw terms */
  double d_rounded = th_max_abs_diff(y, yr), d_f32 = th_max_abs_diff(y, yf);
  double tol_rounded = 1e-4 * sqrt((double)(s->ci * s->kh * s->kw)), tol_f32 = 0.03;
  ck_assert_msg(d_rounded <= tol_rounded && d_f32 <= tol_f32,
                "B %d ci %d co %d k %dx%d in %dx%d stride %dx%d pad t%d b%d l%d r%d bias %d: max diff %.3g against "
                "bf16-rounded f32 (tolerance %.3g), %.3g against f32 (tolerance %.3g)",
                s->B, s->ci, s->co, s->kh, s->kw, s->H, s->W, s->p.stride_h, s->p.stride_w, s->p.pad_top,
                s->p.pad_bottom, s->p.pad_left, s->p.pad_right, s->bias, d_rounded, tol_rounded, d_f32, tol_f32);
  /* the bf16 result is not just the f32 one: the rounding shows */
  ck_assert_msg(d_f32 > 0, "bf16 convolution equals f32 bit for bit: the bf16 path did not run");
  tt_conv2d_packed_free(pk);
  tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b);
  tt_tensor_unref(xr); tt_tensor_unref(wr);
  tt_tensor_unref(y); tt_tensor_unref(yr); tt_tensor_unref(yf);
}

START_TEST(test_vqgan_shapes) {
  /* the VQGAN's kinds of convolution: 3x3 pad 1, the Downsample's 3x3 stride 2 padded
   * bottom/right only, 1x1 (nin_shortcut, attention), conv_in from 3 channels */
  const shape v[] = {
      {1, 128, 128, 3, 3, 32, 32, {1, 1, 1, 1, 1, 1}, true},
      {1, 64, 64, 3, 3, 32, 32, {2, 2, 0, 1, 0, 1}, true},
      {1, 64, 128, 1, 1, 16, 16, {1, 1, 0, 0, 0, 0}, true},
      {1, 3, 64, 3, 3, 40, 24, {1, 1, 1, 1, 1, 1}, true},
      {2, 256, 16, 3, 3, 8, 8, {1, 1, 1, 1, 1, 1}, false},
  };
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) check_shape(&v[i], 100 + i);
}
END_TEST

START_TEST(test_random_shapes) {
  unsigned seed = 1234u + (unsigned)_i;
  for (int i = 0; i < 12; i++) {
    shape s = random_shape(&seed);
    check_shape(&s, 1000 + 10 * (uint64_t)_i + (uint64_t)i);
  }
}
END_TEST

START_TEST(test_cache_of_shapes) {
  /* one pack used at several input sizes, more than it keeps plans for, and back:
   * each result equals a fresh pack's */
  tt_tensor *w = th_randn(7, TT_DIMS(32, 16, 3, 3), 0.1f), *b = th_randn(8, TT_DIMS(32), 0.1f);
  tt_conv2d_packed *pk = tt_conv2d_pack(w, TT_BF16);
  TH_NN(pk);
  tt_conv2d_params p = tt_conv2d_params_make(1, 1);
  const int sizes[] = {8, 12, 16, 20, 24, 8, 24, 12};
  for (int i = 0; i < 8; i++) {
    tt_tensor *x = th_randn(20 + (uint64_t)i, TT_DIMS(1, 16, sizes[i], sizes[i] + 2), 1.0f);
    tt_conv2d_packed *fresh = tt_conv2d_pack(w, TT_BF16);
    tt_tensor *y = tt_conv2d_packed_forward(pk, x, b, &p), *yf = tt_conv2d_packed_forward(fresh, x, b, &p);
    TH_NN(y);
    TH_NN(yf);
    ck_assert_msg(th_max_abs_diff(y, yf) == 0, "size %d: cached plan differs from a fresh one by %.3g", sizes[i],
                  th_max_abs_diff(y, yf));
    tt_conv2d_packed_free(fresh);
    tt_tensor_unref(x); tt_tensor_unref(y); tt_tensor_unref(yf);
  }
  tt_conv2d_packed_free(pk);
  tt_tensor_unref(w);
  tt_tensor_unref(b);
}
END_TEST

START_TEST(test_refusals) {
  tt_tensor *w = th_randn(1, TT_DIMS(8, 4, 3, 3), 0.1f), *x = th_randn(2, TT_DIMS(1, 5, 8, 8), 1.0f);
  tt_tensor *w2 = th_randn(3, TT_DIMS(8, 36), 0.1f), *b = th_randn(4, TT_DIMS(7), 0.1f);
  tt_conv2d_params p = tt_conv2d_params_make(1, 1), bad = {0, 1, 0, 0, 0, 0};
  ck_assert_ptr_null(tt_conv2d_pack(w2, TT_BF16));
  ERROR_CONTAINS("[Co, Ci, kh, kw]");
  ck_assert_ptr_null(tt_conv2d_pack(w, TT_I8));
  ERROR_CONTAINS("packs to bf16");
  tt_conv2d_packed *pk = tt_conv2d_pack(w, TT_BF16);
  TH_NN(pk);
  ck_assert_ptr_null(tt_conv2d_packed_forward(pk, x, NULL, &p));
  ERROR_CONTAINS("expects [B >= 1, 4, H, W]");
  tt_tensor *x4 = th_randn(5, TT_DIMS(1, 4, 8, 8), 1.0f), *tiny = th_randn(6, TT_DIMS(1, 4, 1, 1), 1.0f);
  ck_assert_ptr_null(tt_conv2d_packed_forward(pk, x4, b, &p));
  ERROR_CONTAINS("bias must be [8]");
  ck_assert_ptr_null(tt_conv2d_packed_forward(pk, x4, NULL, &bad));
  ERROR_CONTAINS("stride must be >= 1");
  tt_conv2d_params nopad = tt_conv2d_params_make(1, 0);
  ck_assert_ptr_null(tt_conv2d_packed_forward(pk, tiny, NULL, &nopad));
  ERROR_CONTAINS("smaller than the kernel");
  tt_conv2d_packed_free(pk);
  tt_tensor_unref(w); tt_tensor_unref(x); tt_tensor_unref(w2); tt_tensor_unref(b);
  tt_tensor_unref(x4); tt_tensor_unref(tiny);
}
END_TEST

/* One fused case: y = conv(up(silu?(gn(x)))) + r against the ops one by one, both through
 * the packed convolution (only where a normalised value rounds to the other bf16
 * neighbour may they differ) and in f32. */
typedef struct {
  int B, ci, co, k, H, W, groups, up;
  bool silu, residual, bias;
  int extra_pad;   /* padding k/2 + extra_pad on every side */
  bool in_nhwc, out_nhwc;
} fcase;

static tt_tensor *permuted(tt_tensor *t, int a, int b, int c, int d) {
  int perm[4] = {a, b, c, d};
  tt_tensor *v = tt_permute(t, perm), *r = v ? tt_contiguous(v) : NULL;
  tt_tensor_unref(v);
  return r;
}

static void check_fused(const fcase *c, uint64_t seed) {
  tt_tensor *x = th_randn(seed, TT_DIMS(c->B, c->ci, c->H, c->W), 2.0f);
  tt_tensor *w = th_randn(seed + 1, TT_DIMS(c->co, c->ci, c->k, c->k), 1.0f / sqrtf((float)(c->ci * c->k * c->k)));
  tt_tensor *b = c->bias ? th_randn(seed + 2, TT_DIMS(c->co), 0.5f) : NULL;
  tt_tensor *gw = th_randn(seed + 3, TT_DIMS(c->ci), 1.0f), *gb = th_randn(seed + 4, TT_DIMS(c->ci), 0.5f);
  tt_conv2d_params p = tt_conv2d_params_make(1, c->k / 2 + c->extra_pad);
  int64_t Ho = c->H * c->up + 2 * c->extra_pad, Wo = c->W * c->up + 2 * c->extra_pad;
  tt_tensor *r = c->residual ? th_randn(seed + 5, TT_DIMS(c->B, c->co, Ho, Wo), 1.0f) : NULL;
  tt_conv2d_packed *pk = tt_conv2d_pack(w, TT_BF16);
  TH_NN(pk);
  tt_conv2d_fuse f = {.groups = c->groups, .eps = 1e-6f, .norm_w = c->groups ? gw : NULL,
                      .norm_b = c->groups ? gb : NULL, .silu = c->silu, .upsample = c->up, .residual = r,
                      .in_nhwc = c->in_nhwc, .out_nhwc = c->out_nhwc};
  tt_tensor *xin = c->in_nhwc ? permuted(x, 0, 2, 3, 1) : tt_tensor_ref(x);   // [B, H, W, Ci] channels-last
  TH_NN(xin);
  tt_tensor *yk = tt_conv2d_packed_forward_fused(pk, xin, b, &p, &f);
  TH_NN(yk);
  if (c->out_nhwc) ck_assert_int_eq(yk->shape[3], c->co);
  tt_tensor *y = c->out_nhwc ? permuted(yk, 0, 3, 1, 2) : tt_tensor_ref(yk);  // back to [B, Co, Ho, Wo]
  TH_NN(y);
  /* the same steps one op at a time */
  tt_tensor *h = c->groups == 0 ? tt_tensor_ref(x)
                 : c->silu      ? tt_group_norm_silu(x, c->groups, gw, gb, 1e-6f)
                                : tt_group_norm(x, c->groups, gw, gb, 1e-6f);
  TH_NN(h);
  tt_tensor *hu = c->up > 1 ? tt_upsample_nearest(h, c->up) : tt_tensor_ref(h);
  tt_tensor *yp = tt_conv2d_packed_forward(pk, hu, b, &p), *yf = tt_conv2d(hu, w, b, &p);
  TH_NN(yp);
  TH_NN(yf);
  if (r) {
    tt_tensor *a = tt_add(yp, r), *af = tt_add(yf, r);
    tt_tensor_unref(yp);
    tt_tensor_unref(yf);
    yp = a, yf = af;
  }
  ck_assert_int_eq(y->ndim, 4);
  for (int i = 0; i < 4; i++) ck_assert_int_eq(y->shape[i], yf->shape[i]);
  double d_parts = th_max_abs_diff(y, yp), d_f32 = th_max_abs_diff(y, yf);
  ck_assert_msg(d_parts <= 0.02 && d_f32 <= 0.05,
                "B %d ci %d co %d k %d in %dx%d groups %d silu %d up %d residual %d bias %d nhwc in %d out %d: max diff "
                "%.3g against the ops one by one in bf16 (tolerance 0.02), %.3g against f32 (tolerance 0.05)",
                c->B, c->ci, c->co, c->k, c->H, c->W, c->groups, c->silu, c->up, c->residual, c->bias, c->in_nhwc,
                c->out_nhwc, d_parts, d_f32);
  tt_conv2d_packed_free(pk);
  tt_tensor *t[] = {x, w, b, gw, gb, r, y, h, hu, yp, yf, xin, yk};
  for (size_t i = 0; i < sizeof t / sizeof *t; i++) tt_tensor_unref(t[i]);
}

START_TEST(test_fused_steps) {
  /* the VQGAN's uses (a ResNet block's two convolutions, the Upsample) and odd sizes:
   * channels not a multiple of 16, maps not a multiple of the kernel's tiles, batches */
  const fcase v[] = {
      {1, 64, 64, 3, 32, 32, 32, 1, true, false, true, 0, false, false},    /* norm1 + conv1 */
      {1, 64, 128, 3, 24, 20, 32, 1, true, true, true, 0, false, false},    /* norm2 + conv2 + shortcut */
      {1, 32, 32, 3, 12, 10, 0, 2, false, false, true, 0, false, false},    /* Upsample */
      {2, 40, 24, 3, 17, 23, 8, 1, true, true, false, 0, false, false},
      {2, 24, 8, 1, 9, 7, 4, 2, false, true, true, 0, false, false},        /* group norm without SiLU, upsampled */
      {1, 48, 16, 3, 5, 33, 16, 2, true, true, true, 0, false, false},
      {1, 16, 16, 1, 3, 3, 0, 1, false, true, false, 0, false, false},      /* the residual only */
      /* a padded 1x1 convolution, which runs in a kernel other than the AMX one (see pick) */
      {1, 32, 16, 1, 6, 5, 8, 2, true, true, true, 1, false, false},
      /* channels-last maps between a ResNet block's two convolutions */
      {1, 64, 64, 3, 32, 32, 32, 1, true, false, true, 0, false, true},
      {1, 64, 128, 3, 24, 20, 32, 1, true, true, true, 0, true, false},
      {2, 40, 24, 3, 17, 23, 8, 2, true, false, false, 0, true, true},
      {1, 48, 16, 3, 5, 33, 16, 1, false, false, true, 0, true, true},
      {1, 32, 16, 1, 6, 5, 8, 1, true, false, true, 1, true, true},
  };
  for (size_t i = 0; i < sizeof v / sizeof *v; i++) check_fused(&v[i], 500 + 10 * i);
}
END_TEST

START_TEST(test_fused_refusals) {
  tt_tensor *w = th_randn(1, TT_DIMS(8, 4, 3, 3), 0.1f), *x = th_randn(2, TT_DIMS(1, 4, 8, 8), 1.0f);
  tt_tensor *r = th_randn(3, TT_DIMS(1, 8, 8, 7), 1.0f), *gw = th_randn(4, TT_DIMS(5), 1.0f);
  tt_conv2d_params p = tt_conv2d_params_make(1, 1);
  tt_conv2d_packed *pk = tt_conv2d_pack(w, TT_BF16);
  TH_NN(pk);
  tt_conv2d_fuse f = {.upsample = 3};
  ck_assert_ptr_null(tt_conv2d_packed_forward_fused(pk, x, NULL, &p, &f));
  ERROR_CONTAINS("upsample must be 1 or 2, found 3");
  f = (tt_conv2d_fuse){.groups = 3, .upsample = 1};
  ck_assert_ptr_null(tt_conv2d_packed_forward_fused(pk, x, NULL, &p, &f));
  ERROR_CONTAINS("4 input channels do not split into 3 groups");
  f = (tt_conv2d_fuse){.silu = true, .upsample = 1};
  ck_assert_ptr_null(tt_conv2d_packed_forward_fused(pk, x, NULL, &p, &f));
  ERROR_CONTAINS("SiLU is fused only after a group norm");
  f = (tt_conv2d_fuse){.groups = 2, .norm_w = gw, .upsample = 1};
  ck_assert_ptr_null(tt_conv2d_packed_forward_fused(pk, x, NULL, &p, &f));
  ERROR_CONTAINS("norm weight must be contiguous [4]");
  f = (tt_conv2d_fuse){.upsample = 1, .residual = r};
  ck_assert_ptr_null(tt_conv2d_packed_forward_fused(pk, x, NULL, &p, &f));
  ERROR_CONTAINS("residual must be [1, 8, 8, 8]");
  f = (tt_conv2d_fuse){.upsample = 2, .residual = r};
  ck_assert_ptr_null(tt_conv2d_packed_forward_fused(pk, x, NULL, &p, &f));
  ERROR_CONTAINS("residual must be [1, 8, 16, 16]");
  f = (tt_conv2d_fuse){.upsample = 1, .residual = r, .out_nhwc = true};
  ck_assert_ptr_null(tt_conv2d_packed_forward_fused(pk, x, NULL, &p, &f));
  ERROR_CONTAINS("a residual is added to an NCHW output only");
  f = (tt_conv2d_fuse){.upsample = 1, .in_nhwc = true};
  ck_assert_ptr_null(tt_conv2d_packed_forward_fused(pk, x, NULL, &p, &f));
  ERROR_CONTAINS("expects [B >= 1, H, W, 4]");
  tt_conv2d_packed_free(pk);
  tt_tensor_unref(w); tt_tensor_unref(x); tt_tensor_unref(r); tt_tensor_unref(gw);
}
END_TEST

int main(void) {
  const char *isa;
  bool ok = tt_conv2d_bf16_supported(TT_CPU, &isa);
  printf("bf16 convolution kernel: %s\n", isa);
  if (!ok) {
    fprintf(stderr, "check_ops_conv_lowp: SKIP: no bf16 convolution kernel here (%s)\n", isa);
    return 77;
  }
  Suite *s = suite_create("ops_conv_lowp");
  TCase *tc = tcase_create("conv_bf16");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_vqgan_shapes);
  tcase_add_loop_test(tc, test_random_shapes, 0, getenv("TH_LOOPS") ? atoi(getenv("TH_LOOPS")) : 3);
  tcase_add_test(tc, test_cache_of_shapes);
  tcase_add_test(tc, test_refusals);
  tcase_add_test(tc, test_fused_steps);
  tcase_add_test(tc, test_fused_refusals);
  suite_add_tcase(s, tc);
  return th_run(s);
}

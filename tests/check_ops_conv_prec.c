/* check_ops_conv_prec.c — the conv2d_*_prec kernels (taming/ops/conv_prec.h):
 * forward, backward to the input and backward to the weight and bias with bf16
 * products, against the default f32 kernels (kernels/cpu/conv.c) given the same
 * operands rounded to bf16 (only the summation order differs) and given the
 * unrounded ones (within what bf16 rounding costs); the same kernels with f32
 * products against the default ones; and conv2d's autograd node under bf16
 * compute precision. Random shapes with stride 2, asymmetric padding, 1x1 and
 * non-square kernels, non-square maps, batches and no bias.
 *
 * Tolerances are relative to the largest magnitude of the f32 result, so they do
 * not depend on how many terms a sum has: 2e-5 against the rounded operands
 * (f32 sums in another order), 2e-2 against the unrounded ones (bf16 keeps 8
 * significant bits: 2^-9 relative per operand, two operands per product, partly
 * cancelling over the sum), 2e-5 for oneDNN's f32 against ours.
 * Exits 77 without oneDNN's bf16 convolution (no oneDNN in the build, no
 * AVX512-BF16, or TAMING_CPU_ISA=generic). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testhelp.h"

#define TOL_ROUNDED 2e-5
#define TOL_BF16 2e-2
#define TOL_F32 2e-5

static tt_tensor *bf16_rounded(tt_tensor *t) {
  tt_tensor *h = tt_cast(t, TT_BF16);
  tt_tensor *r = h ? tt_cast(h, TT_F32) : NULL;
  tt_tensor_unref(h);
  return r;
}

static double max_abs(const tt_tensor *t) {
  const float *v = tt_f32((tt_tensor *)t);
  double m = 0;
  for (int64_t i = 0; i < tt_tensor_numel(t); i++) m = fmax(m, fabs(v[i]));
  return m;
}

typedef struct {
  int B, ci, co, kh, kw, H, W;
  tt_conv2d_params p;
  bool bias;
} shape;

static shape random_shape(unsigned *seed) {
  static const int chans[] = {3, 8, 16, 32, 48, 64, 128};
  shape s;
  s.B = 1 + rand_r(seed) % 3;
  s.ci = chans[rand_r(seed) % 7];
  s.co = chans[rand_r(seed) % 7];
  int k = rand_r(seed) % 4;   /* 1x1, 3x3, 4x3 (non-square) or 4x4 (the PatchGAN's) */
  s.kh = k == 0 ? 1 : k == 1 ? 3 : 4;
  s.kw = k == 0 ? 1 : k == 3 ? 4 : 3;
  s.H = 5 + rand_r(seed) % 20;
  s.W = 5 + rand_r(seed) % 20;
  s.p = (tt_conv2d_params){1 + rand_r(seed) % 2, 1 + rand_r(seed) % 2, rand_r(seed) % 2, rand_r(seed) % 3,
                           rand_r(seed) % 2, rand_r(seed) % 2};
  s.bias = rand_r(seed) % 4 != 0;
  return s;
}

#define SHAPE_FMT "B %d ci %d co %d k %dx%d in %dx%d stride %dx%d pad t%d b%d l%d r%d bias %d"
#define SHAPE_ARGS(s)                                                                                           \
  (s)->B, (s)->ci, (s)->co, (s)->kh, (s)->kw, (s)->H, (s)->W, (s)->p.stride_h, (s)->p.stride_w, (s)->p.pad_top, \
      (s)->p.pad_bottom, (s)->p.pad_left, (s)->p.pad_right, (s)->bias

/* |got - want| <= tol * max|want| (plus a floor for an all-zero want) */
static void expect_close(const shape *s, const char *what, const tt_tensor *got, const tt_tensor *want, double tol) {
  double d = th_max_abs_diff(got, want), scale = max_abs(want), lim = tol * (scale > 1e-6 ? scale : 1e-6);
  ck_assert_msg(d <= lim, SHAPE_FMT ": %s: max diff %.3g, tolerance %.3g (%g x max %.3g)", SHAPE_ARGS(s), what, d,
                lim, tol, scale);
}

/* The three prec kernels with products in dt against the default kernels: on the
 * operands rounded to dt (tol_rounded) and on the f32 ones (tol). */
static void check_shape(const shape *s, tt_dtype dt, uint64_t seed) {
  int Ho = (s->H + s->p.pad_top + s->p.pad_bottom - s->kh) / s->p.stride_h + 1;
  int Wo = (s->W + s->p.pad_left + s->p.pad_right - s->kw) / s->p.stride_w + 1;
  tt_tensor *x = th_randn(seed, TT_DIMS(s->B, s->ci, s->H, s->W), 1.0f);
  tt_tensor *w = th_randn(seed + 1, TT_DIMS(s->co, s->ci, s->kh, s->kw), 1.0f / sqrtf((float)(s->ci * s->kh * s->kw)));
  tt_tensor *b = s->bias ? th_randn(seed + 2, TT_DIMS(s->co), 0.5f) : NULL;
  tt_tensor *gy = th_randn(seed + 3, TT_DIMS(s->B, s->co, Ho, Wo), 1.0f);
  TH_NN(x);
  TH_NN(w);
  TH_NN(gy);
  bool bf = dt == TT_BF16;
  tt_tensor *xr = bf ? bf16_rounded(x) : tt_tensor_ref(x), *wr = bf ? bf16_rounded(w) : tt_tensor_ref(w);
  tt_tensor *gyr = bf ? bf16_rounded(gy) : tt_tensor_ref(gy);
  tt_tensor *y = tt_tensor_new(TT_F32, TT_DIMS(s->B, s->co, Ho, Wo), TT_CPU);
  tt_tensor *gx = tt_tensor_new(TT_F32, TT_DIMS(s->B, s->ci, s->H, s->W), TT_CPU), *gx_r = tt_tensor_new_like(gx);
  tt_tensor *gx_f = tt_tensor_new_like(gx), *y_r = tt_tensor_new_like(y), *y_f = tt_tensor_new_like(y);
  tt_tensor *gw = tt_tensor_new_like(w), *gw_r = tt_tensor_new_like(w), *gw_f = tt_tensor_new_like(w);
  tt_tensor *gb = tt_tensor_new(TT_F32, TT_DIMS(s->co), TT_CPU);
  tt_tensor *gb_r = tt_tensor_new_like(gb), *gb_f = tt_tensor_new_like(gb);
  TH_NN(gb_f);
  tt_conv2d_fwd_prec_fn pf = TT_KERNEL(TT_CPU, conv2d_fwd_prec);
  tt_conv2d_bwd_data_prec_fn pd = TT_KERNEL(TT_CPU, conv2d_bwd_data_prec);
  tt_conv2d_bwd_weight_prec_fn pw = TT_KERNEL(TT_CPU, conv2d_bwd_weight_prec);
  tt_conv2d_fwd_fn f = TT_KERNEL(TT_CPU, conv2d_fwd);
  tt_conv2d_bwd_data_fn fd = TT_KERNEL(TT_CPU, conv2d_bwd_data);
  tt_conv2d_bwd_weight_fn fw = TT_KERNEL(TT_CPU, conv2d_bwd_weight);
  ck_assert(pf && pd && pw && f && fd && fw);
  TH_OK(pf(dt, &s->p, x, w, b, y));
  TH_OK(pd(dt, &s->p, gy, w, gx));
  TH_OK(pw(dt, &s->p, x, gy, gw, s->bias ? gb : NULL));
  TH_OK(f(&s->p, xr, wr, b, y_r));
  TH_OK(fd(&s->p, gyr, wr, gx_r));
  TH_OK(fw(&s->p, xr, gyr, gw_r, gb_r));
  TH_OK(f(&s->p, x, w, b, y_f));
  TH_OK(fd(&s->p, gy, w, gx_f));
  TH_OK(fw(&s->p, x, gy, gw_f, gb_f));
  double tr = bf ? TOL_ROUNDED : TOL_F32, tf = bf ? TOL_BF16 : TOL_F32;
  expect_close(s, "forward vs rounded operands", y, y_r, tr);
  expect_close(s, "input gradient vs rounded operands", gx, gx_r, tr);
  expect_close(s, "weight gradient vs rounded operands", gw, gw_r, tr);
  if (s->bias) expect_close(s, "bias gradient vs rounded operands", gb, gb_r, tr);
  expect_close(s, "forward vs f32", y, y_f, tf);
  expect_close(s, "input gradient vs f32", gx, gx_f, tf);
  expect_close(s, "weight gradient vs f32", gw, gw_f, tf);
  if (s->bias) expect_close(s, "bias gradient vs f32", gb, gb_f, tf);
  /* bf16 rounding shows: the path did run in bf16 */
  if (bf) ck_assert_msg(th_max_abs_diff(gw, gw_f) > 0, SHAPE_FMT ": bf16 weight gradient equals f32 bit for bit",
                        SHAPE_ARGS(s));
  tt_tensor *all[] = {x, w, b, gy, xr, wr, gyr, y, gx, gx_r, gx_f, y_r, y_f, gw, gw_r, gw_f, gb, gb_r, gb_f};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) tt_tensor_unref(all[i]);
}

/* the kinds of convolution one VQGAN training step runs (autoencoder, LPIPS, PatchGAN) */
static const shape vqgan[] = {
    {2, 64, 64, 3, 3, 16, 16, {1, 1, 1, 1, 1, 1}, true},    /* 3x3 pad 1 */
    {2, 64, 64, 3, 3, 16, 16, {2, 2, 0, 1, 0, 1}, true},    /* Downsample: stride 2, bottom/right padding */
    {2, 64, 128, 1, 1, 8, 8, {1, 1, 0, 0, 0, 0}, true},     /* nin_shortcut, attention */
    {2, 3, 64, 3, 3, 20, 12, {1, 1, 1, 1, 1, 1}, true},     /* conv_in */
    {2, 64, 3, 3, 3, 12, 20, {1, 1, 1, 1, 1, 1}, true},     /* conv_out */
    {2, 3, 64, 4, 4, 16, 16, {2, 2, 1, 1, 1, 1}, true},     /* PatchGAN */
    {1, 128, 256, 4, 4, 6, 6, {1, 1, 1, 1, 1, 1}, false},   /* PatchGAN, no bias (before BatchNorm) */
};

START_TEST(test_bf16_vqgan_shapes) {
  for (size_t i = 0; i < sizeof vqgan / sizeof *vqgan; i++) check_shape(&vqgan[i], TT_BF16, 100 + 10 * i);
}
END_TEST

START_TEST(test_bf16_random_shapes) {
  unsigned seed = 4321u + (unsigned)_i;
  for (int i = 0; i < 10; i++) {
    shape s = random_shape(&seed);
    check_shape(&s, TT_BF16, 1000 + 20 * (uint64_t)_i + 2 * (uint64_t)i);
  }
}
END_TEST

START_TEST(test_f32_random_shapes) {
  if (!tt_conv2d_prec_isa(TT_CPU, TT_F32)) return;
  unsigned seed = 777u + (unsigned)_i;
  for (int i = 0; i < 8; i++) {
    shape s = random_shape(&seed);
    check_shape(&s, TT_F32, 5000 + 20 * (uint64_t)_i + 2 * (uint64_t)i);
  }
  for (size_t i = 0; i < sizeof vqgan / sizeof *vqgan; i++) check_shape(&vqgan[i], TT_F32, 300 + 10 * i);
}
END_TEST

/* conv2d(x, w, b) -> sum(conv2d * gy): the gradients of x, w and b under the current compute precision */
static void grads(const shape *s, tt_tensor *x, tt_tensor *w, tt_tensor *b, tt_tensor *gy, tt_tensor **out) {
  tt_tensor *leaves[3] = {x, w, b};
  for (int i = 0; i < 3; i++) tt_zero_grad(leaves[i]);
  tt_tensor *y = tt_conv2d(x, w, b, &s->p);
  TH_NN(y);
  TH_OK(tt_backward(y, gy, false));
  out[0] = y;
  for (int i = 0; i < 3; i++) {
    TH_NN(leaves[i]->grad);
    out[i + 1] = tt_tensor_ref(leaves[i]->grad);
  }
}

START_TEST(test_autograd_under_bf16_precision) {
  /* the conv2d node runs forward and backward in bf16 under tt_set_compute_precision(bf16):
   * results close to fp32 but not equal to them, and fp32 again after switching back */
  const shape s = {2, 32, 48, 3, 3, 12, 10, {2, 1, 0, 1, 1, 0}, true};
  tt_tensor *x = th_leaf(1, TT_DIMS(2, 32, 12, 10), 1.0f), *w = th_leaf(2, TT_DIMS(48, 32, 3, 3), 0.06f);
  tt_tensor *b = th_leaf(3, TT_DIMS(48), 0.5f);
  tt_tensor *gy = th_randn(4, TT_DIMS(2, 48, 6, 9), 1.0f);   // Ho = (12 + 1 - 3) / 2 + 1, Wo = 10 + 1 - 3 + 1
  tt_tensor *f32[4], *b16[4], *again[4];
  grads(&s, x, w, b, gy, f32);
  TH_OK(tt_set_compute_precision(TT_BF16));
  grads(&s, x, w, b, gy, b16);
  TH_OK(tt_set_compute_precision(TT_F32));
  grads(&s, x, w, b, gy, again);
  static const char *what[4] = {"output", "input gradient", "weight gradient", "bias gradient"};
  for (int i = 0; i < 4; i++) {
    expect_close(&s, what[i], b16[i], f32[i], TOL_BF16);
    ck_assert_msg(i == 3 || th_max_abs_diff(b16[i], f32[i]) > 0, "%s: bf16 equals fp32: the bf16 kernels did not run",
                  what[i]);
    ck_assert_msg(th_max_abs_diff(again[i], f32[i]) == 0, "%s: fp32 after bf16 differs from fp32 by %.3g", what[i],
                  th_max_abs_diff(again[i], f32[i]));
    ck_assert_int_eq(b16[i]->dtype, TT_F32);
    tt_tensor_unref(f32[i]);
    tt_tensor_unref(b16[i]);
    tt_tensor_unref(again[i]);
  }
  tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b); tt_tensor_unref(gy);
}
END_TEST

START_TEST(test_refusals) {
  tt_conv2d_bwd_weight_prec_fn pw = TT_KERNEL(TT_CPU, conv2d_bwd_weight_prec);
  tt_conv2d_fwd_prec_fn pf = TT_KERNEL(TT_CPU, conv2d_fwd_prec);
  tt_tensor *x = th_randn(1, TT_DIMS(1, 4, 8, 8), 1.0f), *w = th_randn(2, TT_DIMS(8, 4, 3, 3), 0.1f);
  tt_tensor *gy = th_randn(3, TT_DIMS(1, 8, 8, 8), 1.0f), *y = tt_tensor_new_like(gy);
  tt_tensor *gb = th_randn(4, TT_DIMS(8), 1.0f);
  tt_conv2d_params p = tt_conv2d_params_make(1, 1);
  ck_assert_int_ne(pf(TT_F16, &p, x, w, NULL, y), TT_OK);
  ck_assert_msg(strstr(tt_error_message(), "products in f16 are not supported"), "message: %s", tt_error_message());
  ck_assert_int_ne(pw(TT_BF16, &p, NULL, gy, NULL, gb), TT_OK);
  ck_assert_msg(strstr(tt_error_message(), "needs the input and the weight gradient"), "message: %s",
                tt_error_message());
  tt_error_clear();
  tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(gy); tt_tensor_unref(y); tt_tensor_unref(gb);
}
END_TEST

int main(void) {
  const char *isa = tt_conv2d_prec_isa(TT_CPU, TT_BF16), *isa32 = tt_conv2d_prec_isa(TT_CPU, TT_F32);
  printf("bf16 convolution kernels: %s; oneDNN f32: %s\n", isa ? isa : "none", isa32 ? isa32 : "none");
  if (!isa || tt_set_compute_precision(TT_BF16) != TT_OK) {
    fprintf(stderr, "check_ops_conv_prec: SKIP: no oneDNN bf16 convolution or no bf16 GEMM here\n");
    return 77;
  }
  tt_set_compute_precision(TT_F32);
  Suite *s = suite_create("ops_conv_prec");
  TCase *tc = tcase_create("conv_prec");
  tcase_set_timeout(tc, 120);
  int loops = getenv("TH_LOOPS") ? atoi(getenv("TH_LOOPS")) : 3;
  tcase_add_test(tc, test_bf16_vqgan_shapes);
  tcase_add_loop_test(tc, test_bf16_random_shapes, 0, loops);
  tcase_add_loop_test(tc, test_f32_random_shapes, 0, loops);
  tcase_add_test(tc, test_autograd_under_bf16_precision);
  tcase_add_test(tc, test_refusals);
  suite_add_tcase(s, tc);
  return th_run(s);
}

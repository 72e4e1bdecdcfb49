/* check_cuda.c — the CUDA backend against its CPU twin.
 *
 * Every kernel the CPU backend registers must have a CUDA kernel of the same
 * name, and a parity case below that runs it: the op is called through the
 * public API on CPU tensors and on their CUDA copies (same random inputs,
 * several shapes: odd, non-square, broadcast, strided views), the outputs are
 * compared, and so are the gradients of sum(y * R) (R fixed random) that
 * tt_backward computes on each device. Each case prints one line
 *   op  max_abs_diff_fwd  max_abs_diff_bwd
 * and fails when a difference exceeds tol * (1 + max |cpu value|).
 * The last cases (test case "large") run a model-sized workload (conv + group
 * norm + swish at 128 x 256 x 256) forward and backward on both devices, and
 * linear layers with int8 / bf16 weights as wide as a large transformer's, and
 * a VQGAN-sized convolution with bf16 weights timed against f32;
 * CK_RUN_CASE=parity leaves it out (compute-sanitizer runs). Convolutions go
 * through cuDNN; with TAMING_CUDA_CONV=gemm the same suite checks their
 * im2col + cuBLAS path, and TAMING_CUDA_SYNC=1 makes a device error name the
 * kernel that caused it.
 *
 * Without a usable GPU (module not built, no device) the suite prints why and
 * exits 77 (skip). Op families merge into the tree independently, so the ops
 * outside the core families are referenced weakly: a case whose op is not
 * linked is skipped, unless the CPU backend registers its kernels (then the
 * family is present and the missing op is a failure). The suite does not fork:
 * a CUDA context does not survive fork(). */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "testhelp.h"

#pragma weak tt_conv2d
#pragma weak tt_upsample_nearest
#pragma weak tt_max_pool2d
#pragma weak tt_avg_pool2d
#pragma weak tt_pool2d
#pragma weak tt_interpolate
#pragma weak tt_group_norm
#pragma weak tt_group_norm_silu
#pragma weak tt_layer_norm
#pragma weak tt_batch_norm
#pragma weak tt_batch_norm_leaky_relu
#pragma weak tt_softmax
#pragma weak tt_log_softmax
#pragma weak tt_attention
#pragma weak tt_embedding
#pragma weak tt_one_hot
#pragma weak tt_cross_entropy
#pragma weak tt_codebook_argmin
#pragma weak tt_adam_step
#pragma weak tt_adam_step_multi

#include "cuda_parity.h"

/* ---- coverage: every cpu kernel has a cuda twin and a parity case ---- */

static const char *const covered[] = {
    "copy_strided", "fill", "unary_fwd", "unary_bwd", "binary_fwd", "binary_bwd", "axpy", "reduce", "gemm",
    "gemm_batched", "random_fill", "conv2d_fwd", "conv2d_bwd_data", "conv2d_bwd_weight", "upsample_nearest_fwd",
    "upsample_nearest_bwd", "pool2d_fwd", "pool2d_bwd", "interpolate_fwd", "group_norm_fwd", "group_norm_bwd",
    "group_norm_silu_fwd", "group_norm_silu_bwd", "layer_norm_fwd", "layer_norm_bwd", "batch_norm_stats", "batch_norm_apply", "batch_norm_bwd",
    "batch_norm_lrelu_apply", "batch_norm_lrelu_bwd", "softmax_fwd",
    "softmax_bwd", "attention_fwd", "attention_bwd", "embedding_fwd", "embedding_bwd", "one_hot",
    "cross_entropy_fwd", "cross_entropy_bwd", "codebook_argmin", "adam_step", "adam_step_multi", "compare", "where",
    "sort", "cumsum", "multinomial", "qlinear_bf16", "qlinear_i8", "qlinear_isa", "gemm_bf16", "gemm_bf16_batched",
    "gemm_bf16_isa", "attention_fwd_bf16", "attention_bwd_bf16", "conv2d_bf16", "conv2d_bf16_cache_free",
    "conv2d_bf16_isa"};

/* CPU kernels with no CUDA twin by design: the oneDNN convolutions that host/ops/conv.c
 * calls only for CPU tensors (use_prec: on CUDA a conv2d runs cuDNN in f32 under every
 * compute precision; bf16 inference convolutions on CUDA are conv2d_bf16's twin), and
 * the fused bf16 convolution (without conv2d_bf16_fused, tt_conv2d_packed_forward_fused
 * runs its steps as separate ops: group_norm_silu or upsample, conv2d_bf16, add). */
static const char *const cpu_only[] = {"conv2d_prec_isa", "conv2d_fwd_prec", "conv2d_bwd_data_prec",
                                       "conv2d_bwd_weight_prec", "conv2d_bf16_fused"};

static bool is_cpu_only(const char *k) {
  for (size_t j = 0; j < sizeof cpu_only / sizeof *cpu_only; j++)
    if (!strcmp(cpu_only[j], k)) return true;
  return false;
}

START_TEST(test_every_cpu_kernel_has_a_cuda_twin) {
  int n = tt_backend_kernel_count(TT_CPU), missing = 0, untested = 0;
  ck_assert_int_gt(n, 0);
  printf("cuda backend: %d kernels; cpu backend: %d kernels\n", tt_backend_kernel_count(TT_CUDA), n);
  for (int i = 0; i < n; i++) {
    const char *k = tt_backend_kernel_name(TT_CPU, i);
    ck_assert_ptr_nonnull(k);
    if (is_cpu_only(k)) {
      printf("CPU-ONLY kernel '%s' (by design; see cpu_only)\n", k);
      continue;
    }
    if (!tt_backend_supports(TT_CUDA, k)) {
      printf("MISSING cuda kernel '%s'\n", k);
      missing++;
    }
    bool found = false;
    for (size_t j = 0; j < sizeof covered / sizeof *covered; j++) found = found || strcmp(covered[j], k) == 0;
    if (!found) {
      printf("UNTESTED kernel '%s': no parity case in check_cuda\n", k);
      untested++;
    }
  }
  ck_assert_msg(missing == 0, "%d cpu kernels have no cuda twin (listed above)", missing);
  ck_assert_msg(untested == 0, "%d kernels have no parity case (listed above)", untested);
}
END_TEST

/* ---- the sampler building blocks: compare, where, sort / top-k, cumsum, multinomial ---- */

static tt_tensor *f_lt(tt_tensor *const *in, void *ud) { return tt_lt(in[0], in[1]); }
static tt_tensor *f_ne_scalar(tt_tensor *const *in, void *ud) { return tt_compare_scalar(TT_CMP_NE, in[0], 0); }
static tt_tensor *f_where(tt_tensor *const *in, void *ud) { return tt_where(in[0], in[1], in[2]); }
static tt_tensor *f_masked_fill(tt_tensor *const *in, void *ud) { return tt_masked_fill(in[0], in[1], -1e9); }
static tt_tensor *f_cumsum(tt_tensor *const *in, void *ud) { return tt_cumsum(in[0], *(int *)ud); }

typedef struct { int dim; bool desc; int64_t k; bool indices; } sort_case;
static tt_tensor *f_sort(tt_tensor *const *in, void *ud) {
  const sort_case *c = ud;
  tt_tensor *v = NULL, *i = NULL;
  tt_status st = c->k > 0 ? tt_topk(in[0], c->k, c->dim, c->desc, &v, &i) : tt_sort(in[0], c->dim, c->desc, &v, &i);
  if (st != TT_OK) return NULL;
  if (c->indices) { tt_tensor_unref(v); return i; }
  tt_tensor_unref(i);
  return v;
}

START_TEST(test_select) {
  /* comparisons (broadcast, f32 and i64) and where/masked_fill with gradients: exact */
  tt_tensor *a = th_randn(11, TT_DIMS(3, 1, 7), 1.0f), *b = th_randn(12, TT_DIMS(4, 7), 1.0f);
  tt_tensor *ab[2] = {a, b};
  parity("lt broadcast [3,1,7] < [4,7]", f_lt, NULL, 2, ab, 0, 0);
  tt_tensor *ai = tt_cast(a, TT_I64);
  TH_NN(ai);
  parity("ne scalar i64", f_ne_scalar, NULL, 1, &ai, 0, 0);
  tt_tensor *cond = tt_lt(a, b), *x = th_randn(13, TT_DIMS(3, 4, 7), 1.0f), *y = th_randn(14, TT_DIMS(4, 7), 1.0f);
  TH_NN(cond);
  tt_tensor_set_requires_grad(x, true);
  tt_tensor_set_requires_grad(y, true);
  tt_tensor *cxy[3] = {cond, x, y};
  parity("where (grad to both)", f_where, NULL, 3, cxy, 0, 0);
  tt_tensor *xm[2] = {x, cond};
  parity("masked_fill", f_masked_fill, NULL, 2, xm, 0, 0);
  /* cumsum along each dim (the backward is the reversed cumsum): same bits */
  tt_tensor *c = th_randn(15, TT_DIMS(5, 300, 3), 1.0f);
  tt_tensor_set_requires_grad(c, true);
  for (int d = 0; d < 3; d++) {
    char label[64];
    snprintf(label, sizeof label, "cumsum dim %d of [5,300,3]", d);
    parity(label, f_cumsum, &d, 1, &c, 0, 0);
  }
  /* sort / top-k: ties (values rounded to a few levels), NaN of both signs, -0/+0, inner > 1 */
  tt_tensor *r = th_randn(16, TT_DIMS(4, 1000, 2), 2.0f);
  tt_tensor *h = tt_contiguous(r);
  TH_NN(h);
  float *hv = tt_f32(h);
  for (int64_t i = 0; i < tt_tensor_numel(h); i++) hv[i] = roundf(hv[i]);
  hv[5] = NAN; hv[17] = -NAN; hv[40] = -0.0f; hv[42] = 0.0f; hv[2001] = INFINITY; hv[3001] = -INFINITY;
  sort_case sc[] = {{1, false, -1, true}, {1, true, -1, true}, {1, true, 50, true}, {1, false, 7, false},
                    {0, true, -1, true}, {2, false, -1, true}, {-1, true, 1, false}};
  for (size_t i = 0; i < sizeof sc / sizeof *sc; i++) {
    char label[80];
    snprintf(label, sizeof label, "%s dim %d %s k %lld (%s)", sc[i].k > 0 ? "topk" : "sort", sc[i].dim,
             sc[i].desc ? "desc" : "asc", (long long)sc[i].k, sc[i].indices ? "indices" : "values");
    parity(label, f_sort, &sc[i], 1, &h, 0, 0);
  }
  /* multinomial: the same draws for the same stream; a bad row is named */
  tt_tensor *logits = th_randn(17, TT_DIMS(6, 16384), 3.0f), *p = tt_softmax(logits, -1);
  TH_NN(p);
  tt_tensor *pg = copy_to(p, TT_CUDA);
  tt_rng rc = tt_rng_make(5), rg = tt_rng_make(5);
  tt_tensor *dc = tt_multinomial(p, 9, &rc), *dg = tt_multinomial(pg, 9, &rg);
  ck_assert_msg(dc && dg, "multinomial: %s", tt_error_message());
  ck_assert(rc.counter == rg.counter);
  double dd = 0;
  expect_close("multinomial 6x16384, 9 draws", "draws", dc, dg, 0, &dd);
  print_row("multinomial 6x16384, 9 draws", dd, 0, false);
  tt_tensor *zero = tt_zeros(TT_F32, TT_DIMS(3, 4), TT_CUDA);
  TH_NN(zero);
  ck_assert_ptr_null(tt_multinomial(zero, 1, &rg));
  ck_assert_msg(strstr(tt_error_message(), "row 0") != NULL, "%s", tt_error_message());
  tt_tensor *all[] = {a, b, ai, cond, x, y, c, r, h, logits, p, pg, dc, dg, zero};
  release((int)(sizeof all / sizeof *all), all);
}
END_TEST

/* ---- copy ---- */

static tt_tensor *f_permute_contig(tt_tensor *const *in, void *ud) {
  const int perm[3] = {2, 0, 1};
  tt_tensor *p = tt_permute(in[0], perm);
  tt_tensor *c = p ? tt_contiguous(p) : NULL;
  tt_tensor_unref(p);
  return c;
}

static tt_tensor *f_cast_roundtrip(tt_tensor *const *in, void *ud) {
  tt_tensor *t = tt_cast(in[0], *(tt_dtype *)ud);
  tt_tensor *back = t ? tt_cast(t, TT_F32) : NULL;
  tt_tensor_unref(t);
  return back;
}

/* a [2, 3, 4] <- b [3, 1] broadcast into a strided (transposed) destination */
static tt_tensor *f_broadcast_copy(tt_tensor *const *in, void *ud) {
  tt_tensor *dst = tt_zeros(TT_F32, TT_DIMS(2, 4, 3), in[0]->device);
  tt_tensor *view = dst ? tt_transpose(dst, 1, 2) : NULL;   // [2, 3, 4], strided
  if (!view || tt_copy_(view, in[0]) != TT_OK) {
    tt_tensor_unref(view);
    tt_tensor_unref(dst);
    return NULL;
  }
  tt_tensor_unref(view);
  return dst;
}

START_TEST(test_copy_and_fill) {
  tt_tensor *x = th_leaf(1, TT_DIMS(3, 4, 5), 1.0f);
  parity("copy_strided permute [3,4,5]->(2,0,1)", f_permute_contig, NULL, 1, &x, 0, 0);
  tt_tensor_set_requires_grad(x, false);
  tt_dtype dts[] = {TT_I64, TT_I32, TT_BF16, TT_F64, TT_U8};
  const char *names[] = {"i64", "i32", "bf16", "f64", "u8"};
  tt_tensor *big = th_uniform(2, TT_DIMS(7, 33), 0.0f, 250.0f);
  for (int k = 0; k < 5; k++) {
    char label[64];
    snprintf(label, sizeof label, "copy_strided cast f32->%s->f32 [7,33]", names[k]);
    parity(label, f_cast_roundtrip, &dts[k], 1, &big, 0, 0);
  }
  tt_tensor *b = th_randn(3, TT_DIMS(3, 1), 1.0f);
  parity("copy_strided broadcast [3,1]->[2,3,4] strided", f_broadcast_copy, NULL, 1, &b, 0, 0);
  /* fill in each dtype */
  double vals[] = {2.5, -7, 1.5, 200, -0.0};
  tt_dtype fdt[] = {TT_F32, TT_I64, TT_BF16, TT_U8, TT_F32};
  for (int k = 0; k < 5; k++) {
    tt_tensor *c = tt_full(fdt[k], TT_DIMS(5, 3), vals[k], TT_CPU), *g = tt_full(fdt[k], TT_DIMS(5, 3), vals[k], TT_CUDA);
    TH_NN(c);
    TH_NN(g);
    double d = 0;
    expect_close("fill", tt_dtype_name(fdt[k]), c, g, 0, &d);
    char label[64];
    snprintf(label, sizeof label, "fill %s %g", tt_dtype_name(fdt[k]), vals[k]);
    print_row(label, d, 0, false);
    tt_tensor_unref(c);
    tt_tensor_unref(g);
  }
  tt_tensor *ts[] = {x, big, b};
  release(3, ts);
}
END_TEST

/* Every (src, dst) dtype pair: the CUDA cast gives the CPU cast's bytes, over
 * ordinary values and the edge cases of the rules in taming/dtype.h (ties,
 * NaN, overflow, negative into u8), from a strided source. */
START_TEST(test_every_dtype_pair) {
  static const double vals[] = {0, 1.5, -2, 3.25, 250, 300.5, -1, 1 + 0x1p-11, 1 + 3 * 0x1p-11, 65519, 65520,
                                0x1p-25, 3 * 0x1p-26, 1e20, -1e20, NAN, INFINITY, 4611686018427387905.0};
  const int n = (int)(sizeof vals / sizeof vals[0]);
  static const tt_dtype dts[] = {TT_F32, TT_I64, TT_U8, TT_I32, TT_BF16, TT_F16, TT_F64};
  double twice[2 * (sizeof vals / sizeof vals[0])];
  for (int i = 0; i < n; i++) twice[2 * i] = twice[2 * i + 1] = vals[i];
  tt_tensor *f64 = tt_tensor_from_data(TT_F64, TT_DIMS(2 * n), twice, TT_CPU);
  TH_NN(f64);
  int bad = 0;
  for (int a = 0; a < 7; a++) {
    tt_tensor *src = tt_cast(f64, dts[a]); /* the CPU's conversion is the oracle */
    TH_NN(src);
    tt_tensor *gsrc = copy_to(src, TT_CUDA);
    tt_tensor *col = tt_slice(src, 0, 0, 2 * n, 2), *gcol = tt_slice(gsrc, 0, 0, 2 * n, 2); /* [n], stride 2 */
    TH_NN(col);
    TH_NN(gcol);
    for (int b = 0; b < 7; b++) {
      tt_tensor *c = tt_cast(col, dts[b]), *g = tt_cast(gcol, dts[b]);
      TH_NN(c);
      TH_NN(g);
      tt_tensor *gh = copy_to(g, TT_CPU);
      size_t nb = tt_tensor_nbytes(c);
      if (memcmp(tt_tensor_data(c), tt_tensor_data(gh), nb) != 0) {
        printf("cast %s -> %s: cuda bytes differ from cpu\n", tt_dtype_name(dts[a]), tt_dtype_name(dts[b]));
        bad++;
      }
      tt_tensor *ts[] = {c, g, gh};
      release(3, ts);
    }
    char label[64];
    snprintf(label, sizeof label, "copy_strided cast %s -> every dtype", tt_dtype_name(dts[a]));
    print_row(label, 0, 0, false);
    tt_tensor *ts[] = {src, gsrc, col, gcol};
    release(4, ts);
  }
  tt_tensor_unref(f64);
  ck_assert_msg(bad == 0, "%d dtype pairs differ between cuda and cpu", bad);
}
END_TEST

/* ---- elementwise ---- */

typedef struct {
  tt_unary_op op;
  float a, b;
  const char *name;
} unary_case;

static tt_tensor *f_unary(tt_tensor *const *in, void *ud) {
  unary_case *c = ud;
  return tt_unary(c->op, c->a, c->b, in[0]);
}

START_TEST(test_unary) {
  unary_case cases[] = {{TT_UNARY_NEG, 0, 0, "neg"},         {TT_UNARY_ABS, 0, 0, "abs"},
                        {TT_UNARY_EXP, 0, 0, "exp"},         {TT_UNARY_LOG, 0, 0, "log"},
                        {TT_UNARY_SQRT, 0, 0, "sqrt"},       {TT_UNARY_SQUARE, 0, 0, "square"},
                        {TT_UNARY_RELU, 0, 0, "relu"},       {TT_UNARY_SILU, 0, 0, "silu"},
                        {TT_UNARY_GELU, 0, 0, "gelu"},       {TT_UNARY_SIGMOID, 0, 0, "sigmoid"},
                        {TT_UNARY_TANH, 0, 0, "tanh"},       {TT_UNARY_SOFTPLUS, 0, 0, "softplus"},
                        {TT_UNARY_LEAKY_RELU, 0.2f, 0, "leaky_relu"}, {TT_UNARY_CLAMP, -0.5f, 0.7f, "clamp"},
                        {TT_UNARY_AFFINE, 1.5f, -0.3f, "affine"},     {TT_UNARY_POW, 2.5f, 0, "pow"},
                        {TT_UNARY_RECIPROCAL, 0, 0, "reciprocal"}};
  ck_assert_int_eq(sizeof cases / sizeof *cases, TT_UNARY_COUNT);
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    bool positive = cases[k].op == TT_UNARY_LOG || cases[k].op == TT_UNARY_SQRT || cases[k].op == TT_UNARY_POW ||
                    cases[k].op == TT_UNARY_RECIPROCAL;
    tt_tensor *x = positive ? th_uniform(10 + k, TT_DIMS(37, 29), 0.5f, 3.0f) : th_randn(10 + k, TT_DIMS(37, 29), 3.0f);
    TH_NN(x);
    tt_tensor_set_requires_grad(x, true);
    char label[64];
    snprintf(label, sizeof label, "unary %s [37,29]", cases[k].name);
    parity(label, f_unary, &cases[k], 1, &x, 1e-5, 1e-5);
    tt_tensor_unref(x);
  }
}
END_TEST

static tt_tensor *f_binary(tt_tensor *const *in, void *ud) { return tt_binary(*(tt_binary_op *)ud, in[0], in[1]); }

/* a^T (op) b: a strided operand */
static tt_tensor *f_binary_t(tt_tensor *const *in, void *ud) {
  tt_tensor *t = tt_transpose(in[0], 0, 1);
  tt_tensor *y = t ? tt_binary(*(tt_binary_op *)ud, t, in[1]) : NULL;
  tt_tensor_unref(t);
  return y;
}

START_TEST(test_binary_and_axpy) {
  const char *names[] = {"add", "sub", "mul", "div", "max", "min"};
  for (int op = 0; op < TT_BINARY_COUNT; op++) {
    tt_binary_op o = (tt_binary_op)op;
    tt_tensor *a = th_leaf(100 + op, TT_DIMS(2, 3, 5, 7), 1.0f), *b = th_leaf(200 + op, TT_DIMS(3, 1, 7), 1.0f);
    tt_tensor *c = th_leaf(300 + op, TT_DIMS(9, 4), 1.0f), *d = th_leaf(400 + op, TT_DIMS(9), 1.0f);
    tt_tensor *e = th_leaf(500 + op, TT_DIMS(2, 3, 5, 7), 1.0f);
    if (o == TT_BINARY_DIV) { /* keep divisors away from 0 */
      for (int i = 0; i < 21; i++) tt_f32(b)[i] = 1.0f + fabsf(tt_f32(b)[i]);
      for (int i = 0; i < 9; i++) tt_f32(d)[i] = 1.0f + fabsf(tt_f32(d)[i]);
    }
    char label[64];
    tt_tensor *in1[2] = {a, b}, *in2[2] = {c, d}, *in3[2] = {a, e};
    snprintf(label, sizeof label, "binary %s [2,3,5,7] x [3,1,7]", names[op]);
    parity(label, f_binary, &o, 2, in1, 1e-6, 1e-5);
    snprintf(label, sizeof label, "binary %s [9,4]^T x [9]", names[op]);
    parity(label, f_binary_t, &o, 2, in2, 1e-6, 1e-5);
    if (o != TT_BINARY_DIV) {
      snprintf(label, sizeof label, "binary %s same shape", names[op]);
      parity(label, f_binary, &o, 2, in3, 1e-6, 1e-5);
    }
    tt_tensor *ts[] = {a, b, c, d, e};
    release(5, ts);
  }
  /* axpy in place */
  tt_tensor *x = th_randn(5, TT_DIMS(1000, 3), 1.0f), *y = th_randn(6, TT_DIMS(1000, 3), 1.0f);
  tt_tensor *gx = copy_to(x, TT_CUDA), *gy = copy_to(y, TT_CUDA);
  TH_OK(tt_axpy_(y, -0.75f, x));
  TH_OK(tt_axpy_(gy, -0.75f, gx));
  double d = 0;
  expect_close("axpy", "y", y, gy, 1e-6, &d);
  print_row("axpy [1000,3]", d, 0, false);
  tt_tensor *ts[] = {x, y, gx, gy};
  release(4, ts);
}
END_TEST

/* ---- reduce ---- */

typedef struct {
  int kind; /* 0 sum dims, 1 mean dims, 2 max_dim, 3 argmax, 4 argmin, 5 sum all, 6 mean all */
  int n, dims[3];
  bool keep;
} red_case;

static tt_tensor *f_reduce(tt_tensor *const *in, void *ud) {
  red_case *c = ud;
  switch (c->kind) {
    case 0: return tt_sum_dims(in[0], c->n, c->dims, c->keep);
    case 1: return tt_mean_dims(in[0], c->n, c->dims, c->keep);
    case 2: return tt_max_dim(in[0], c->dims[0], c->keep);
    case 3: return tt_argmax(in[0], c->dims[0], c->keep);
    case 4: return tt_argmin(in[0], c->dims[0], c->keep);
    case 5: return tt_sum(in[0]);
    default: return tt_mean(in[0]);
  }
}

START_TEST(test_reduce) {
  tt_tensor *x = th_leaf(7, TT_DIMS(4, 5, 6), 1.0f);
  red_case cases[] = {{0, 1, {1}, false}, {0, 1, {2}, true}, {1, 2, {0, 2}, false}, {2, 1, {1}, false},
                      {3, 1, {2}, false}, {4, 1, {0}, true}, {5, 0, {0}, false},   {6, 0, {0}, false}};
  const char *labels[] = {"reduce sum dim 1 [4,5,6]", "reduce sum dim 2 keepdim", "reduce mean dims 0,2",
                          "reduce max dim 1",         "reduce argmax dim 2",      "reduce argmin dim 0",
                          "reduce sum all",           "reduce mean all"};
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) parity(labels[k], f_reduce, &cases[k], 1, &x, 1e-6, 1e-6);
  /* ties (integers) and a NaN: first index wins, NaN wins */
  tt_tensor *t = th_randn(8, TT_DIMS(6, 40), 2.0f);
  for (int i = 0; i < 240; i++) tt_f32(t)[i] = floorf(tt_f32(t)[i]);
  tt_f32(t)[3 * 40 + 17] = NAN;
  for (int kind = 2; kind <= 4; kind++) {
    red_case c = {kind, 1, {1}, false};
    char label[64];
    snprintf(label, sizeof label, "reduce %s with ties and NaN [6,40]", kind == 2 ? "max" : kind == 3 ? "argmax" : "argmin");
    parity(label, f_reduce, &c, 1, &t, 0, 0);
    c.dims[0] = 0;
    snprintf(label, sizeof label, "reduce %s dim 0 with ties [6,40]", kind == 2 ? "max" : kind == 3 ? "argmax" : "argmin");
    parity(label, f_reduce, &c, 1, &t, 0, 0);
  }
  /* long axes: split rows (set reduce) and split columns (column reduce) */
  tt_tensor *rows = th_leaf(9, TT_DIMS(3, 100003), 1.0f), *cols = th_leaf(10, TT_DIMS(100003, 3), 1.0f);
  red_case s1 = {0, 1, {1}, false}, s0 = {0, 1, {0}, false}, a1 = {3, 1, {1}, false}, a0 = {4, 1, {0}, false};
  parity("reduce sum dim 1 [3,100003]", f_reduce, &s1, 1, &rows, 1e-6, 1e-6);
  parity("reduce sum dim 0 [100003,3]", f_reduce, &s0, 1, &cols, 1e-6, 1e-6);
  parity("reduce argmax dim 1 [3,100003]", f_reduce, &a1, 1, &rows, 0, 0);
  parity("reduce argmin dim 0 [100003,3]", f_reduce, &a0, 1, &cols, 0, 0);
  tt_tensor *ts[] = {x, t, rows, cols};
  release(4, ts);
}
END_TEST

/* ---- gemm ---- */

static tt_tensor *f_matmul(tt_tensor *const *in, void *ud) { return tt_matmul(in[0], in[1]); }
static tt_tensor *f_matmul_bt(tt_tensor *const *in, void *ud) {
  tt_tensor *bt = tt_transpose(in[1], -1, -2);
  tt_tensor *y = bt ? tt_matmul(in[0], bt) : NULL;
  tt_tensor_unref(bt);
  return y;
}
static tt_tensor *f_linear(tt_tensor *const *in, void *ud) { return tt_linear(in[0], in[1], in[2]); }

START_TEST(test_gemm) {
  tt_tensor *a = th_leaf(20, TT_DIMS(5, 7), 1.0f), *b = th_leaf(21, TT_DIMS(7, 3), 1.0f);
  tt_tensor *in1[2] = {a, b};
  parity("gemm matmul [5,7]@[7,3]", f_matmul, NULL, 2, in1, 1e-5, 1e-5);
  tt_tensor *c = th_leaf(22, TT_DIMS(2, 3, 5, 7), 1.0f), *d = th_leaf(23, TT_DIMS(7, 4), 1.0f);
  tt_tensor *in2[2] = {c, d};
  parity("gemm matmul [2,3,5,7]@[7,4]", f_matmul, NULL, 2, in2, 1e-5, 1e-5);
  tt_tensor *e = th_leaf(24, TT_DIMS(2, 1, 5, 7), 1.0f), *f = th_leaf(25, TT_DIMS(3, 7, 4), 1.0f);
  tt_tensor *in3[2] = {e, f};
  parity("gemm_batched matmul [2,1,5,7]@[3,7,4]", f_matmul, NULL, 2, in3, 1e-5, 1e-5);
  tt_tensor *g = th_leaf(26, TT_DIMS(4, 33, 65), 1.0f), *h = th_leaf(27, TT_DIMS(4, 17, 65), 1.0f);
  tt_tensor *in4[2] = {g, h};
  parity("gemm_batched matmul [4,33,65]@[4,17,65]^T", f_matmul_bt, NULL, 2, in4, 1e-5, 1e-5);
  tt_tensor *x = th_leaf(28, TT_DIMS(6, 10), 1.0f), *w = th_leaf(29, TT_DIMS(4, 10), 1.0f), *bias = th_leaf(30, TT_DIMS(4), 1.0f);
  tt_tensor *in5[3] = {x, w, bias};
  parity("gemm linear [6,10]x[4,10]+[4]", f_linear, NULL, 3, in5, 1e-5, 1e-5);
  tt_tensor *ts[] = {a, b, c, d, e, f, g, h, x, w, bias};
  release(11, ts);
}
END_TEST

/* ---- random ---- */

START_TEST(test_random) {
  tt_random_kind kinds[] = {TT_RANDOM_UNIFORM, TT_RANDOM_NORMAL, TT_RANDOM_BERNOULLI};
  double as[] = {-2.0, 0.5, 0.3}, bs[] = {3.0, 2.0, 0.0};
  const char *names[] = {"random_fill uniform [-2,3)", "random_fill normal (0.5, 2)", "random_fill bernoulli 0.3"};
  for (int k = 0; k < 3; k++) {
    tt_rng rc = tt_rng_make(99), rg = tt_rng_make(99);
    rc.counter = rg.counter = 12345;
    tt_tensor *c = tt_tensor_new(TT_F32, TT_DIMS(1001, 7), TT_CPU), *g = tt_tensor_new(TT_F32, TT_DIMS(1001, 7), TT_CUDA);
    TH_NN(c);
    TH_NN(g);
    TH_OK(tt_random_fill_(c, &rc, kinds[k], as[k], bs[k]));
    TH_OK(tt_random_fill_(g, &rg, kinds[k], as[k], bs[k]));
    ck_assert(rc.counter == rg.counter);
    double d = 0;
    /* the same stream: equal up to the last bit of the libm (normal only) */
    expect_close(names[k], "draws", c, g, kinds[k] == TT_RANDOM_NORMAL ? 1e-6 : 0, &d);
    print_row(names[k], d, 0, false);
    tt_tensor_unref(c);
    tt_tensor_unref(g);
  }
}
END_TEST

/* ---- conv ---- */

static tt_tensor *f_conv(tt_tensor *const *in, void *ud) { return tt_conv2d(in[0], in[1], in[2], ud); }

typedef struct {
  int64_t B, Ci, H, W, Co, kh, kw;
  tt_conv2d_params p;
  bool bias;
} conv_case;

START_TEST(test_conv) {
  if (!have_op("conv2d", tt_conv2d != NULL, "conv2d_fwd")) return;
  conv_case cases[] = {
      {2, 3, 9, 11, 5, 3, 3, {1, 1, 1, 1, 1, 1}, true},
      {1, 4, 16, 16, 4, 3, 3, {2, 2, 0, 1, 0, 1}, true},   /* the official Downsample */
      {2, 8, 7, 5, 6, 1, 1, {1, 1, 0, 0, 0, 0}, false},
      {3, 2, 13, 6, 4, 5, 3, {2, 1, 2, 1, 0, 2}, true},    /* odd, asymmetric, mixed stride */
      {2, 64, 32, 32, 64, 3, 3, {1, 1, 1, 1, 1, 1}, true},
      {1, 16, 20, 24, 32, 4, 4, {4, 4, 0, 0, 0, 0}, true}, /* patchify-like */
  };
  for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
    conv_case *c = &cases[k];
    float ws = 1.0f / sqrtf((float)(c->Ci * c->kh * c->kw));
    tt_tensor *x = th_leaf(40 + k, TT_DIMS(c->B, c->Ci, c->H, c->W), 1.0f);
    tt_tensor *w = th_leaf(50 + k, TT_DIMS(c->Co, c->Ci, c->kh, c->kw), ws);
    tt_tensor *b = c->bias ? th_leaf(60 + k, TT_DIMS(c->Co), 0.5f) : NULL;
    tt_tensor *in[3] = {x, w, b};
    char label[96];
    snprintf(label, sizeof label, "conv2d [%lld,%lld,%lld,%lld] k%lldx%lld s%d,%d p%d%d%d%d%s", (long long)c->B,
             (long long)c->Ci, (long long)c->H, (long long)c->W, (long long)c->kh, (long long)c->kw, c->p.stride_h,
             c->p.stride_w, c->p.pad_top, c->p.pad_bottom, c->p.pad_left, c->p.pad_right, c->bias ? " +b" : "");
    parity(label, f_conv, &c->p, 3, in, 1e-5, 1e-4);
    if (k == 1) { /* bias-only gradient: the weight frozen, no input gradient (x not saved) */
      tt_tensor_set_requires_grad(x, false);
      tt_tensor_set_requires_grad(w, false);
      parity("conv2d bias-only gradient", f_conv, &c->p, 3, in, 1e-5, 1e-4);
    }
    tt_tensor *ts[] = {x, w, b};
    release(3, ts);
  }
}
END_TEST

/* ---- resample ---- */

typedef struct {
  int kind; /* 0 upsample, 1 max pool, 2 avg pool, 3 interpolate, 4 padded max pool, 5 padded avg pool */
  int a, b;
  int64_t oh, ow;
  tt_interp_mode mode;
} rs_case;

static tt_tensor *f_resample(tt_tensor *const *in, void *ud) {
  rs_case *c = ud;
  switch (c->kind) {
    case 0: return tt_upsample_nearest(in[0], c->a);
    case 1: return tt_max_pool2d(in[0], c->a, c->b);
    case 2: return tt_avg_pool2d(in[0], c->a, c->b);
    /* InceptionV3's pools: k3 s1 pad 1; the average without (and here also with) the padding */
    case 4: return tt_pool2d(in[0], &(tt_pool2d_params){TT_POOL_MAX, 3, 3, c->a, c->a, 1, 1, false});
    case 5: return tt_pool2d(in[0], &(tt_pool2d_params){TT_POOL_AVG, 3, 3, c->a, c->a, 1, 1, c->b != 0});
    default: return tt_interpolate(in[0], c->oh, c->ow, c->mode);
  }
}

START_TEST(test_resample) {
  if (!have_op("upsample_nearest", tt_upsample_nearest != NULL, "upsample_nearest_fwd")) return;
  tt_tensor *x = th_leaf(70, TT_DIMS(2, 3, 9, 8), 1.0f);
  rs_case cs[] = {{0, 2, 0, 0, 0, 0}, {0, 3, 0, 0, 0, 0}, {1, 3, 2, 0, 0, 0}, {1, 2, 2, 0, 0, 0},
                  {2, 3, 2, 0, 0, 0}, {2, 2, 1, 0, 0, 0}, {4, 1, 0, 0, 0, 0}, {4, 2, 0, 0, 0, 0},
                  {5, 1, 0, 0, 0, 0}, {5, 2, 1, 0, 0, 0}};
  const char *labels[] = {"upsample_nearest x2 [2,3,9,8]", "upsample_nearest x3", "pool2d max k3 s2 (overlap)",
                          "pool2d max k2 s2", "pool2d avg k3 s2", "pool2d avg k2 s1", "pool2d max k3 s1 pad 1",
                          "pool2d max k3 s2 pad 1", "pool2d avg k3 s1 pad 1 (count_include_pad false)",
                          "pool2d avg k3 s2 pad 1 (count_include_pad true)"};
  for (int k = 0; k < 10; k++) parity(labels[k], f_resample, &cs[k], 1, &x, 1e-6, 1e-6);
  tt_tensor_set_requires_grad(x, false);
  const char *modes[] = {"nearest", "area", "bilinear", "bicubic"};
  int64_t sizes[][2] = {{5, 3}, {19, 17}, {9, 8}, {4, 13}};
  for (int m = 0; m < 4; m++)
    for (int s = 0; s < 4; s++) {
      rs_case c = {3, 0, 0, sizes[s][0], sizes[s][1], (tt_interp_mode)m};
      char label[80];
      snprintf(label, sizeof label, "interpolate %s [9,8]->[%lld,%lld]", modes[m], (long long)sizes[s][0],
               (long long)sizes[s][1]);
      parity(label, f_resample, &c, 1, &x, 1e-6, 0);
    }
  tt_tensor_unref(x);
}
END_TEST

/* ---- norm ---- */

typedef struct {
  int kind; /* 0 group, 1 layer, 2 batch train, 3 batch eval, 4 group + silu, 5/6 batch + lrelu train/eval */
  int groups;
  float eps;
} norm_case;

static tt_tensor *f_norm(tt_tensor *const *in, void *ud) {
  norm_case *c = ud;
  switch (c->kind) {
    case 0: return tt_group_norm(in[0], c->groups, in[1], in[2], c->eps);
    case 1: return tt_layer_norm(in[0], in[1], in[2], c->eps);
    case 4: return tt_group_norm_silu(in[0], c->groups, in[1], in[2], c->eps);
    case 5:
    case 6: return tt_batch_norm_leaky_relu(in[0], in[1], in[2], in[3], in[4], c->kind == 5, 0.1f, c->eps, 0.2f);
    default: return tt_batch_norm(in[0], in[1], in[2], in[3], in[4], c->kind == 2, 0.1f, c->eps);
  }
}

START_TEST(test_norm) {
  if (!have_op("group_norm", tt_group_norm != NULL, "group_norm_fwd")) return;
  norm_case gn = {0, 4, 1e-6f}, gn32 = {0, 32, 1e-6f}, ln = {1, 0, 1e-5f}, bnt = {2, 0, 1e-5f}, bne = {3, 0, 1e-5f};
  tt_tensor *x = th_leaf(80, TT_DIMS(2, 8, 5, 7), 2.0f), *w = th_leaf(81, TT_DIMS(8), 1.0f), *b = th_leaf(82, TT_DIMS(8), 1.0f);
  for (int i = 0; i < 2 * 8 * 35; i++) tt_f32(x)[i] += 3.0f; /* a mean far from 0 */
  tt_tensor *in[3] = {x, w, b}, *in_nowb[3] = {x, NULL, NULL};
  parity("group_norm G4 [2,8,5,7] +w,b", f_norm, &gn, 3, in, 1e-5, 1e-4);
  parity("group_norm G4 no affine", f_norm, &gn, 3, in_nowb, 1e-5, 1e-4);
  tt_tensor *xb = th_leaf(83, TT_DIMS(1, 64, 33, 17), 1.0f), *wb = th_leaf(84, TT_DIMS(64), 1.0f), *bb = th_leaf(85, TT_DIMS(64), 1.0f);
  tt_tensor *inb[3] = {xb, wb, bb};
  parity("group_norm G32 [1,64,33,17]", f_norm, &gn32, 3, inb, 1e-5, 1e-4);
  if (have_op("group_norm_silu", tt_group_norm_silu != NULL, "group_norm_silu_fwd")) {
    norm_case gns = {4, 4, 1e-6f}, gns32 = {4, 32, 1e-6f};
    parity("group_norm_silu G4 [2,8,5,7] +w,b", f_norm, &gns, 3, in, 1e-5, 1e-4);
    parity("group_norm_silu G4 no affine", f_norm, &gns, 3, in_nowb, 1e-5, 1e-4);
    parity("group_norm_silu G32 [1,64,33,17]", f_norm, &gns32, 3, inb, 1e-5, 1e-4);
  }
  tt_tensor *xl = th_leaf(86, TT_DIMS(2, 3, 37), 1.0f), *wl = th_leaf(87, TT_DIMS(37), 1.0f), *bl = th_leaf(88, TT_DIMS(37), 1.0f);
  tt_tensor *inl[3] = {xl, wl, bl}, *inl2[3] = {xl, NULL, bl};
  parity("layer_norm [2,3,37] +w,b", f_norm, &ln, 3, inl, 1e-5, 1e-4);
  parity("layer_norm [2,3,37] bias only", f_norm, &ln, 3, inl2, 1e-5, 1e-4);
  tt_tensor *xr = th_leaf(89, TT_DIMS(4096, 96), 1.0f), *wr = th_leaf(90, TT_DIMS(96), 1.0f), *br = th_leaf(91, TT_DIMS(96), 1.0f);
  tt_tensor *inr[3] = {xr, wr, br};
  parity("layer_norm [4096,96] (column sums split)", f_norm, &ln, 3, inr, 1e-5, 1e-4);
  /* batch norm: running stats updated in place on each device */
  tt_tensor *xn = th_leaf(92, TT_DIMS(4, 6, 5, 3), 1.0f), *wn = th_leaf(93, TT_DIMS(6), 1.0f), *bn = th_leaf(94, TT_DIMS(6), 1.0f);
  tt_tensor *rm = th_randn(95, TT_DIMS(6), 0.1f), *rv = th_uniform(96, TT_DIMS(6), 0.5f, 1.5f);
  if (tt_batch_norm) {
    tt_tensor *inn[5] = {xn, wn, bn, rm, rv};
    parity("batch_norm train [4,6,5,3]", f_norm, &bnt, 5, inn, 1e-5, 1e-4);
    parity("batch_norm eval [4,6,5,3]", f_norm, &bne, 5, inn, 1e-5, 1e-4);
    if (have_op("batch_norm_leaky_relu", tt_batch_norm_leaky_relu != NULL, "batch_norm_lrelu_apply")) {
      norm_case blt = {5, 0, 1e-5f}, ble = {6, 0, 1e-5f};
      tt_tensor *inn_nowb[5] = {xn, NULL, NULL, rm, rv};
      parity("batch_norm_leaky_relu train [4,6,5,3]", f_norm, &blt, 5, inn, 1e-5, 1e-4);
      parity("batch_norm_leaky_relu eval [4,6,5,3]", f_norm, &ble, 5, inn, 1e-5, 1e-4);
      parity("batch_norm_leaky_relu train no affine", f_norm, &blt, 5, inn_nowb, 1e-5, 1e-4);
    }
  } else {
    ck_assert_msg(!tt_backend_supports(TT_CPU, "batch_norm_stats"), "batch norm kernels present, tt_batch_norm absent");
  }
  tt_tensor *ts[] = {x, w, b, xb, wb, bb, xl, wl, bl, xr, wr, br, xn, wn, bn, rm, rv};
  release(17, ts);
}
END_TEST

/* ---- softmax ---- */

typedef struct {
  bool log;
  int dim;
} sm_case;

static tt_tensor *f_softmax(tt_tensor *const *in, void *ud) {
  sm_case *c = ud;
  return c->log ? tt_log_softmax(in[0], c->dim) : tt_softmax(in[0], c->dim);
}

START_TEST(test_softmax) {
  if (!have_op("softmax", tt_softmax != NULL, "softmax_fwd")) return;
  tt_tensor *x = th_leaf(100, TT_DIMS(5, 9), 3.0f), *big = th_leaf(101, TT_DIMS(3, 20000), 3.0f);
  tt_tensor *m = th_randn(102, TT_DIMS(4, 6), 2.0f);
  for (int j = 0; j < 6; j++) tt_f32(m)[1 * 6 + j] = -INFINITY; /* a fully masked row */
  tt_f32(m)[2 * 6 + 3] = -INFINITY;
  tt_f32(m)[3 * 6 + 0] = -INFINITY;
  tt_tensor_set_requires_grad(m, true);
  for (int lg = 0; lg < 2; lg++) {
    sm_case c1 = {lg != 0, 1}, c0 = {lg != 0, 0};
    const char *n = lg ? "log_softmax" : "softmax";
    char label[80];
    snprintf(label, sizeof label, "%s dim 1 [5,9]", n);
    parity(label, f_softmax, &c1, 1, &x, 1e-6, 1e-5);
    snprintf(label, sizeof label, "%s dim 0 [5,9]", n);
    parity(label, f_softmax, &c0, 1, &x, 1e-6, 1e-5);
    snprintf(label, sizeof label, "%s dim 1 [3,20000]", n);
    parity(label, f_softmax, &c1, 1, &big, 1e-6, 1e-5);
    snprintf(label, sizeof label, "%s with -inf and a masked row", n);
    parity(label, f_softmax, &c1, 1, &m, 1e-6, 1e-5);
  }
  tt_tensor *ts[] = {x, big, m};
  release(3, ts);
}
END_TEST

/* ---- attention ---- */

static tt_tensor *f_attention(tt_tensor *const *in, void *ud) { return tt_attention(in[0], in[1], in[2], ud); }

typedef struct {
  int64_t B, H, Tq, Tk, d, dv;
  bool causal;
  int64_t q_offset, n_unmasked;
} attn_case;

static void attention_case(const attn_case *c, uint64_t seed, bool grads, double tol) {
  tt_tensor *q = th_randn(seed, TT_DIMS(c->B, c->H, c->Tq, c->d), 1.0f);
  tt_tensor *k = th_randn(seed + 1, TT_DIMS(c->B, c->H, c->Tk, c->d), 1.0f);
  tt_tensor *v = th_randn(seed + 2, TT_DIMS(c->B, c->H, c->Tk, c->dv), 1.0f);
  TH_NN(q);
  TH_NN(k);
  TH_NN(v);
  tt_tensor_set_requires_grad(q, grads);
  tt_tensor_set_requires_grad(k, grads);
  tt_tensor_set_requires_grad(v, grads);
  tt_attention_params p = {1.0f / sqrtf((float)c->d), c->causal, c->q_offset, c->n_unmasked};
  tt_tensor *in[3] = {q, k, v};
  char label[96];
  snprintf(label, sizeof label, "%sattention [%lld,%lld] Tq%lld Tk%lld d%lld dv%lld%s off%lld nu%lld%s",
           tt_compute_precision() == TT_BF16 ? "bf16 " : "", (long long)c->B,
           (long long)c->H, (long long)c->Tq, (long long)c->Tk, (long long)c->d, (long long)c->dv,
           c->causal ? " causal" : "", (long long)c->q_offset, (long long)c->n_unmasked, grads ? "" : " (no probs)");
  parity(label, f_attention, &p, 3, in, tol, tol);
  release(3, in);
}

START_TEST(test_attention) {
  if (!have_op("attention", tt_attention != NULL, "attention_fwd")) return;
  attn_case cs[] = {{2, 3, 5, 7, 4, 6, false, 0, 0},  {2, 2, 9, 9, 8, 8, true, 0, 0},  {1, 4, 9, 9, 8, 5, true, 0, 3},
                    {2, 2, 1, 6, 8, 8, true, 5, 0},   {1, 3, 3, 8, 16, 16, true, 5, 2}, {1, 1, 64, 64, 32, 32, false, 0, 0}};
  for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
    attention_case(&cs[i], 110 + 3 * i, true, 1e-5);
    attention_case(&cs[i], 110 + 3 * i, false, 1e-5);
  }
}
END_TEST

/* Inference without probabilities over more than the scratch budget: chunks of
 * heads, and of query rows within one long head. */
START_TEST(test_attention_chunks) {
  if (!have_op("attention", tt_attention != NULL, "attention_fwd")) return;
  attn_case heads = {2, 16, 2048, 2048, 16, 16, true, 0, 0}, rows = {1, 1, 8200, 8200, 8, 8, false, 0, 0};
  attention_case(&heads, 140, false, 1e-5);
  attention_case(&rows, 143, false, 1e-5);
}
END_TEST

/* ---- embedding, loss ---- */

static tt_tensor *f_embedding(tt_tensor *const *in, void *ud) { return tt_embedding(in[0], in[1]); }
static tt_tensor *f_one_hot(tt_tensor *const *in, void *ud) { return tt_one_hot(in[0], *(int64_t *)ud); }
static tt_tensor *f_cross_entropy(tt_tensor *const *in, void *ud) { return tt_cross_entropy(in[0], in[1]); }

START_TEST(test_embedding_and_loss) {
  if (have_op("embedding", tt_embedding != NULL, "embedding_fwd")) {
    tt_tensor *w = th_leaf(150, TT_DIMS(11, 6), 1.0f);
    int64_t iv[12] = {3, 0, 10, 3, 3, 7, 1, 0, 9, 10, 2, 3};
    tt_tensor *idx = index_tensor(TT_DIMS(3, 4), iv);
    tt_tensor *in[2] = {w, idx};
    parity("embedding [11,6] idx [3,4] (repeats)", f_embedding, NULL, 2, in, 0, 1e-6);
    int64_t n = 11;
    parity("one_hot idx [3,4] n 11", f_one_hot, &n, 1, &idx, 0, 0);
    /* a bad index on the device costs the lookup no synchronisation: the op
     * returns, and the next synchronisation is an error naming the op, the
     * index and its position; the backend stays usable */
    int64_t bad[3] = {1, 11, 2};
    tt_tensor *bi = index_tensor(TT_DIMS(3), bad), *gbi = copy_to(bi, TT_CUDA), *gw = copy_to(w, TT_CUDA);
    tt_tensor *r = tt_embedding(gw, gbi);
    TH_NN(r);
    tt_tensor_unref(r);
    ck_assert_int_ne(tt_device_synchronize(TT_CUDA), TT_OK);
    printf("cuda embedding error: %s\n", tt_error_message());
    ck_assert_msg(strstr(tt_error_message(), "embedding: index 11 (at position 1)") != NULL,
                  "error does not name the op, index and position: %s", tt_error_message());
    TH_OK(tt_device_synchronize(TT_CUDA)); /* reported once */
    tt_tensor *gidx = copy_to(idx, TT_CUDA);
    r = tt_embedding(gw, gidx);
    TH_NN(r);
    float host[12 * 6];
    TH_OK(tt_tensor_read(r, host));
    tt_tensor_unref(r);
    tt_tensor *ts[] = {w, idx, bi, gbi, gw, gidx};
    release(6, ts);
  }
  if (have_op("cross_entropy", tt_cross_entropy != NULL, "cross_entropy_fwd")) {
    tt_tensor *logits = th_leaf(160, TT_DIMS(6, 13), 3.0f), *big = th_leaf(161, TT_DIMS(37, 16384), 4.0f);
    int64_t tv[6] = {0, 12, 5, 5, 7, 1};
    int64_t tb[37];
    for (int i = 0; i < 37; i++) tb[i] = (i * 7919) % 16384;
    tt_tensor *t = index_tensor(TT_DIMS(6), tv), *tbig = index_tensor(TT_DIMS(37), tb);
    tt_tensor *in[2] = {logits, t}, *in2[2] = {big, tbig};
    parity("cross_entropy [6,13]", f_cross_entropy, NULL, 2, in, 1e-6, 1e-6);
    parity("cross_entropy [37,16384]", f_cross_entropy, NULL, 2, in2, 1e-6, 1e-6);
    int64_t badt[6] = {0, 12, -1, 5, 7, 1};
    tt_tensor *bt = index_tensor(TT_DIMS(6), badt), *gbt = copy_to(bt, TT_CUDA), *gl = copy_to(logits, TT_CUDA);
    tt_tensor *r = tt_cross_entropy(gl, gbt);
    TH_NN(r);
    /* reading the loss is the synchronisation that reports the bad target */
    float loss = 0;
    ck_assert_int_ne(tt_tensor_read(r, &loss), TT_OK);
    tt_tensor_unref(r);
    printf("cuda cross_entropy error: %s\n", tt_error_message());
    ck_assert_msg(strstr(tt_error_message(), "cross_entropy: target -1 (at row 2)") != NULL,
                  "error does not name the op, target and row: %s", tt_error_message());
    TH_OK(tt_device_synchronize(TT_CUDA));
    tt_tensor *ts[] = {logits, big, t, tbig, bt, gbt, gl};
    release(7, ts);
  }
}
END_TEST

/* ---- quantize ---- */

/* Indices may differ only on near-ties: the cuda choice must be within tol of the cpu minimum. */
static void argmin_case(int64_t N, int64_t K, int64_t D, uint64_t seed) {
  tt_tensor *z = th_randn(seed, TT_DIMS(N, D), 1.0f), *e = th_randn(seed + 1, TT_DIMS(K, D), 1.0f);
  tt_tensor *gz = copy_to(z, TT_CUDA), *ge = copy_to(e, TT_CUDA), *dc = NULL, *dg = NULL;
  tt_tensor *ic = tt_codebook_argmin(z, e, &dc), *ig = tt_codebook_argmin(gz, ge, &dg);
  TH_NN(ic);
  TH_NN(ig);
  TH_NN(dc);
  TH_NN(dg);
  double d = 0;
  char label[80];
  snprintf(label, sizeof label, "codebook_argmin z [%lld,%lld] e [%lld]", (long long)N, (long long)D, (long long)K);
  expect_close(label, "dmin", dc, dg, 1e-5, &d);
  int64_t n1, n2;
  double *vc = host_values(ic, &n1), *vg = host_values(ig, &n2);
  int flips = 0;
  for (int64_t n = 0; n < N; n++) {
    if (vc[n] == vg[n]) continue;
    /* distance of the cuda choice, in double, against the cpu minimum */
    int64_t k = (int64_t)vg[n];
    ck_assert_msg(k >= 0 && k < K, "%s: index %lld out of range", label, (long long)k);
    double dz = 0;
    for (int64_t c = 0; c < D; c++) {
      double a = tt_f32(z)[n * D + c], b = tt_f32(e)[k * D + c];
      dz += (a - b) * (a - b);
    }
    double dmin = tt_f32(dc)[n];
    ck_assert_msg(fabs(dz - dmin) <= 1e-4 * (1 + fabs(dmin)), "%s: row %lld: cuda picked %lld (d %.7g), cpu %lld (d %.7g)",
                  label, (long long)n, (long long)k, dz, (long long)vc[n], dmin);
    flips++;
  }
  printf("PARITY %-52s %10.3e %10s (near-tie flips: %d)\n", label, d, "-", flips);
  free(vc);
  free(vg);
  tt_tensor *ts[] = {z, e, gz, ge, dc, dg, ic, ig};
  release(8, ts);
}

START_TEST(test_quantize) {
  if (!have_op("codebook_argmin", tt_codebook_argmin != NULL, "codebook_argmin")) return;
  argmin_case(300, 70, 16, 170);
  argmin_case(5000, 9000, 32, 172); /* several row and code tiles */
}
END_TEST

/* ---- optim ---- */

START_TEST(test_adam) {
  if (!have_op("adam_step", tt_adam_step != NULL, "adam_step")) return;
  for (int k = 0; k < 3; k++) {
    tt_adam_params p = {1e-3f, 0.9f, 0.999f, 1e-8f, k == 0 ? 0.0f : 0.01f, k == 2, k == 0 ? 1 : 7};
    tt_tensor *w = th_randn(180 + k, TT_DIMS(1000, 3), 1.0f), *g = th_randn(190 + k, TT_DIMS(1000, 3), 1.0f);
    tt_tensor *m = th_randn(200 + k, TT_DIMS(1000, 3), 0.1f), *v = th_uniform(210 + k, TT_DIMS(1000, 3), 0.0f, 0.01f);
    tt_tensor *gw = copy_to(w, TT_CUDA), *gg = copy_to(g, TT_CUDA), *gm = copy_to(m, TT_CUDA), *gv = copy_to(v, TT_CUDA);
    TH_OK(tt_adam_step(&p, w, g, m, v));
    TH_OK(tt_adam_step(&p, gw, gg, gm, gv));
    double d = 0;
    char label[64];
    snprintf(label, sizeof label, "adam_step %s step %lld", k == 0 ? "plain" : k == 1 ? "L2" : "AdamW",
             (long long)p.step);
    expect_close(label, "param", w, gw, 1e-6, &d);
    expect_close(label, "m", m, gm, 1e-6, &d);
    expect_close(label, "v", v, gv, 1e-6, &d);
    print_row(label, d, 0, false);
    tt_tensor *ts[] = {w, g, m, v, gw, gg, gm, gv};
    release(8, ts);
  }
}
END_TEST

/* 30 parameters (two launches of the CUDA kernel), three groups, ragged sizes and
 * an empty one: the fused update on both devices. */
START_TEST(test_adam_multi) {
  if (!have_op("adam_step_multi", tt_adam_step_multi != NULL, "adam_step_multi")) return;
  enum { N = 30 };
  tt_adam_params hp[N];
  tt_tensor *w[N], *g[N], *m[N], *v[N], *gw[N], *gg[N], *gm[N], *gv[N];
  for (int i = 0; i < N; i++) {
    int64_t n = i == 7 ? 0 : 1 + (int64_t)((i * 7919) % 5000);
    tt_adam_params p = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, false, 1 + i % 5};
    if (i % 3 == 1) p.weight_decay = 0.01f;
    if (i % 3 == 2) { p.weight_decay = 0.05f; p.decoupled = true; p.beta1 = 0.5f; p.beta2 = 0.9f; }
    hp[i] = p;
    w[i] = th_randn(300 + i, TT_DIMS(n), 1.0f);
    g[i] = th_randn(400 + i, TT_DIMS(n), 1.0f);
    m[i] = th_randn(500 + i, TT_DIMS(n), 0.1f);
    v[i] = th_uniform(600 + i, TT_DIMS(n), 0.0f, 0.01f);
    gw[i] = copy_to(w[i], TT_CUDA);
    gg[i] = copy_to(g[i], TT_CUDA);
    gm[i] = copy_to(m[i], TT_CUDA);
    gv[i] = copy_to(v[i], TT_CUDA);
  }
  TH_OK(tt_adam_step_multi(N, hp, w, g, m, v));
  TH_OK(tt_adam_step_multi(N, hp, gw, gg, gm, gv));
  double d = 0;
  for (int i = 0; i < N; i++) {
    char label[64];
    snprintf(label, sizeof label, "adam_step_multi tensor %d", i);
    expect_close(label, "param", w[i], gw[i], 1e-6, &d);
    expect_close(label, "m", m[i], gm[i], 1e-6, &d);
    expect_close(label, "v", v[i], gv[i], 1e-6, &d);
  }
  print_row("adam_step_multi 30 tensors", d, 0, false);
  for (int i = 0; i < N; i++) {
    tt_tensor *ts[] = {w[i], g[i], m[i], v[i], gw[i], gg[i], gm[i], gv[i]};
    release(8, ts);
  }
}
END_TEST

/* ---- low-precision linear layers (qlinear) ---- */

/* cpu and cuda (copied back) hold the same bytes. */
static void expect_same_bytes(const char *label, const char *what, tt_tensor *cpu, tt_tensor *gpu) {
  TH_NN(cpu);
  TH_NN(gpu);
  ck_assert_int_eq(gpu->device, TT_CUDA);
  tt_tensor *h = copy_to(gpu, TT_CPU);
  char s1[128], s2[128];
  ck_assert_msg(cpu->dtype == h->dtype && tt_tensor_same_shape(cpu, h), "%s: %s: cpu %s %s, cuda %s %s", label, what,
                tt_dtype_name(cpu->dtype), tt_tensor_shape_str(cpu, s1, sizeof s1), tt_dtype_name(h->dtype),
                tt_tensor_shape_str(h, s2, sizeof s2));
  const unsigned char *a = tt_tensor_data(cpu), *b = tt_tensor_data(h);
  size_t n = tt_tensor_nbytes(cpu), i = 0;
  while (i < n && a[i] == b[i]) i++;
  ck_assert_msg(i == n, "%s: %s: byte %zu of %zu differs: cpu 0x%02x, cuda 0x%02x", label, what, i, n,
                i < n ? a[i] : 0, i < n ? b[i] : 0);
  tt_tensor_unref(h);
}

/* Packing on the device (bf16, per-channel int8, the int8 file form) gives the
 * host packing's bytes: zero padding past K, round to nearest even, equal scales. */
START_TEST(test_qlinear_pack) {
  static const int64_t shapes[][2] = {{5, 37}, {64, 300}, {3, 32}, {130, 1}};
  for (size_t c = 0; c < sizeof shapes / sizeof *shapes; c++) {
    int64_t N = shapes[c][0], K = shapes[c][1];
    tt_tensor *w = th_randn(500 + c, TT_DIMS(N, K), 0.5f);
    float *pw = tt_f32(w);
    if (N > 2)
      for (int64_t k = 0; k < K; k++) pw[K + k] = 0.0f;   /* a row of zeros: scale 0 */
    if (K >= 5) {   /* scale 1 exactly, and ties that must round to even: 2.5 -> 2, -3.5 -> -4 */
      const float tie[5] = {127.0f, 2.5f, -3.5f, 0.5f, 1.0f + 0x1p-8f};
      memcpy(pw, tie, sizeof tie);
    }
    tt_tensor *wg = copy_to(w, TT_CUDA);
    char label[64];
    snprintf(label, sizeof label, "qlinear_pack [%lld,%lld]", (long long)N, (long long)K);
    tt_tensor *bc = tt_qlinear_pack(w, TT_BF16, NULL), *bg = tt_qlinear_pack(wg, TT_BF16, NULL);
    expect_same_bytes(label, "bf16 weights", bc, bg);
    tt_tensor *sc, *sg;
    tt_tensor *qc = tt_qlinear_pack(w, TT_I8, &sc), *qg = tt_qlinear_pack(wg, TT_I8, &sg);
    expect_same_bytes(label, "i8 weights", qc, qg);
    expect_same_bytes(label, "i8 scales", sc, sg);
    /* the file form (q [N, K] + scale) packed on the device */
    tt_tensor *fq, *fs;
    TH_OK(tt_quantize_i8_rows(w, &fq, &fs));
    tt_tensor *fqg = copy_to(fq, TT_CUDA), *fsg = copy_to(fs, TT_CUDA);
    tt_tensor *pg = tt_qlinear_pack_i8(fqg, fsg);
    expect_same_bytes(label, "i8 weights from the file form", qc, pg);
    print_row(label, 0, 0, false);
    tt_tensor *ts[] = {w, wg, bc, bg, qc, qg, sc, sg, fq, fs, fqg, fsg, pg};
    release(13, ts);
  }
}
END_TEST

/* w [N, K] as the kernels see it after packing to dt, in f32: the oracle's weights */
static tt_tensor *rounded_weights(tt_tensor *w, tt_dtype dt) {
  if (dt == TT_I8) {
    tt_tensor *q, *s;
    TH_OK(tt_quantize_i8_rows(w, &q, &s));
    tt_tensor *d = tt_dequantize_i8_rows(q, s);
    TH_NN(d);
    tt_tensor_unref(q);
    tt_tensor_unref(s);
    return d;
  }
  tt_tensor *b = tt_cast(w, TT_BF16), *d = b ? tt_cast(b, TT_F32) : NULL;
  TH_NN(d);
  tt_tensor_unref(b);
  return d;
}

/* One case: x [rows..., K] times w [N, K] (+ bias) with weights packed to dt.
 * The cuda result is compared with
 *   - f32 tt_linear on the CPU with the rounded weights (any CPU); x in bf16 on
 *     the GPU (bf16 weights, and int8 from TT_QLINEAR_TILE_ROWS rows) is the
 *     only other rounding, so that comparison is loose there and tight elsewhere;
 *   - the CPU's own qlinear kernel, where this CPU has one (tight where both
 *     round x alike). */
static void qlinear_case(tt_dtype dt, int nd, const int64_t *xs, int64_t N, bool with_bias, uint64_t seed) {
  int64_t K = xs[nd - 1], rows = 1;
  for (int i = 0; i < nd - 1; i++) rows *= xs[i];
  tt_tensor *x = th_randn(seed, nd, xs, 1.0f);
  tt_tensor *w = th_randn(seed + 1, TT_DIMS(N, K), 1.0f / sqrtf((float)K));
  tt_tensor *bias = with_bias ? th_randn(seed + 2, TT_DIMS(N), 0.5f) : NULL;
  tt_tensor *xg = copy_to(x, TT_CUDA), *wg = copy_to(w, TT_CUDA), *bg = copy_to(bias, TT_CUDA);
  tt_tensor *sg = NULL, *pg = tt_qlinear_pack(wg, dt, dt == TT_I8 ? &sg : NULL);
  TH_NN(pg);
  tt_tensor *yg = tt_qlinear(xg, pg, sg, bg);
  ck_assert_msg(yg != NULL, "qlinear %s on cuda failed: %s", tt_dtype_name(dt), tt_error_message());
  ck_assert_int_eq(yg->device, TT_CUDA);
  bool x_bf16 = dt == TT_BF16 || rows >= TT_QLINEAR_TILE_ROWS;
  char label[96], shape[64];
  tt_tensor_shape_str(x, shape, sizeof shape);
  snprintf(label, sizeof label, "qlinear_%s %s x [%lld,%lld]%s", dt == TT_BF16 ? "bf16" : "i8", shape, (long long)N,
           (long long)K, with_bias ? "+b" : "");
  tt_tensor *wd = rounded_weights(w, dt), *yr = tt_linear(x, wd, bias);
  TH_NN(yr);
  double d_ref = 0, d_cpu = 0;
  char what[80];
  snprintf(what, sizeof what, "output vs f32 linear (x %s)", x_bf16 ? "in bf16" : "in f32");
  expect_close(label, what, yr, yg, x_bf16 ? 1e-2 : 1e-4, &d_ref);
  const char *isa;
  if (tt_qlinear_supported(TT_CPU, dt, &isa)) {
    tt_tensor *sc = NULL, *pc = tt_qlinear_pack(w, dt, dt == TT_I8 ? &sc : NULL);
    TH_NN(pc);
    tt_tensor *yc = tt_qlinear(x, pc, sc, bias);
    TH_NN(yc);
    /* the CPU rounds x to bf16 where the GPU does, except int8 without AMX */
    bool cpu_x_bf16 = dt == TT_BF16 || (rows >= TT_QLINEAR_TILE_ROWS && strstr(isa, "amx"));
    expect_close(label, "output vs the cpu kernel", yc, yg, cpu_x_bf16 == x_bf16 ? 1e-4 : 1e-2, &d_cpu);
    printf("PARITY %-52s %10.3e %10s (vs f32 linear %.3e; cpu: %s)\n", label, d_cpu, "-", d_ref, isa);
    tt_tensor *ts[] = {pc, sc, yc};
    release(3, ts);
  } else {
    printf("PARITY %-52s %10.3e %10s (vs f32 linear; cpu has no kernel: %s)\n", label, d_ref, "-", isa);
  }
  fflush(stdout);
  tt_tensor *ts[] = {x, w, bias, xg, wg, bg, pg, sg, yg, wd, yr};
  release(11, ts);
}

START_TEST(test_qlinear) {
  const char *isa;
  ck_assert(tt_qlinear_supported(TT_CUDA, TT_BF16, &isa));
  printf("qlinear on cuda: bf16 %s;", isa);
  ck_assert(tt_qlinear_supported(TT_CUDA, TT_I8, &isa));
  printf(" i8 %s\n", isa);
  /* 1 .. 7 rows: int8 through the GEMV; 8 and more: through the bf16 GEMM; ragged
   * N and K (K not a multiple of 32, N not of the GEMV's 8 channels per block) */
  static const int64_t rows[] = {1, 2, 3, 7, 8, 33};
  static const int64_t NK[][2] = {{37, 75}, {96, 256}, {1, 33}};
  uint64_t seed = 600;
  for (int d = 0; d < 2; d++) {
    tt_dtype dt = d ? TT_I8 : TT_BF16;
    for (size_t r = 0; r < sizeof rows / sizeof *rows; r++)
      for (size_t s = 0; s < sizeof NK / sizeof *NK; s++, seed += 3)
        qlinear_case(dt, TT_DIMS(rows[r], NK[s][1]), NK[s][0], (r + s) % 2 == 0, seed);
    /* [B, T, K] as the transformer calls it: 2 x 1 rows (GEMV) and 2 x 4 (GEMM) */
    qlinear_case(dt, TT_DIMS(2, 1, 160), 72, true, seed += 3);
    qlinear_case(dt, TT_DIMS(2, 4, 160), 72, true, seed += 3);
  }
}
END_TEST

/* A layer wide enough that int8's GEMM path widens its weights in several slabs
 * (64 MiB of bf16 each: 2048 rows of 16384) and a GEMV over long rows. */
START_TEST(test_qlinear_large) {
  qlinear_case(TT_I8, TT_DIMS(8, 16384), 2100, true, 700);
  qlinear_case(TT_I8, TT_DIMS(1, 16384), 2100, true, 703);
  qlinear_case(TT_BF16, TT_DIMS(16, 4096), 4100, false, 706);
}
END_TEST

/* ---- a model-sized workload ---- */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- bf16: mixed-precision GEMMs and attention, convolutions with bf16 weights ----
 * The oracle: the f32 CPU kernels on operands rounded to bf16 (what every bf16
 * kernel multiplies; any CPU), and the CPU's own bf16 kernels where this CPU has
 * them. Each case also checks that the CUDA result differs from CUDA's f32 one:
 * the bf16 kernel ran, not a silent f32 fallback. */

/* The max |a - b| of two results of one device; fails when they are equal (the bf16 path did not run). */
static void expect_bf16_ran(const char *label, tt_tensor *bf, tt_tensor *f32) {
  double ref, d = max_diff(label, bf, f32, &ref);
  ck_assert_msg(d > 0, "%s: the bf16 result equals the f32 one bit for bit: the bf16 kernel did not run", label);
}

typedef struct {
  bool ta, tb;
  int64_t M, N, K, batch;
  bool a_shared, b_shared; /* batch stride 0 */
  float alpha, beta;
} gemm_bf16_case_t;

/* gemm_bf16 / gemm_bf16_batched kernels on strided operands (ld > cols) against
 * the f32 gemm on bf16-rounded operands and the CPU bf16 kernel: the same
 * products, f32 sums in another order. */
static void gemm_bf16_case(const gemm_bf16_case_t *c, uint64_t seed) {
  int64_t ar = c->ta ? c->K : c->M, ac = c->ta ? c->M : c->K, br = c->tb ? c->N : c->K, bc = c->tb ? c->K : c->N;
  int64_t lda = ac + 3, ldb = bc + 1, ldc = c->N + 2;
  int64_t sa = c->a_shared ? 0 : ar * lda, sb = c->b_shared ? 0 : br * ldb, sc = c->M * ldc;
  tt_tensor *A = th_randn(seed, TT_DIMS(c->a_shared ? 1 : c->batch, ar, lda), 1.0f);
  tt_tensor *B = th_randn(seed + 1, TT_DIMS(c->b_shared ? 1 : c->batch, br, ldb), 1.0f);
  tt_tensor *C0 = th_randn(seed + 2, TT_DIMS(c->batch, c->M, ldc), 1.0f);
  tt_tensor *Ar = rounded_weights(A, TT_BF16), *Br = rounded_weights(B, TT_BF16);
  tt_tensor *Cr = copy_to(C0, TT_CPU), *Cc = copy_to(C0, TT_CPU), *Cg = copy_to(C0, TT_CUDA), *Cf = copy_to(C0, TT_CUDA);
  tt_tensor *Ag = copy_to(A, TT_CUDA), *Bg = copy_to(B, TT_CUDA);
  bool one = c->batch == 1 && !c->a_shared && !c->b_shared;
#define GEMM_CALL(dev, NAME, a, b, cc)                                                                                 \
  (one ? TT_KERNEL(dev, NAME)(c->ta, c->tb, c->M, c->N, c->K, c->alpha, tt_f32(a), lda, tt_f32(b), ldb, c->beta,        \
                              tt_f32(cc), ldc)                                                                         \
       : TT_KERNEL(dev, NAME##_batched)(c->ta, c->tb, c->M, c->N, c->K, c->alpha, tt_f32(a), lda, sa, tt_f32(b), ldb,   \
                                        sb, c->beta, tt_f32(cc), ldc, sc, c->batch))
  TH_OK(GEMM_CALL(TT_CUDA, gemm_bf16, Ag, Bg, Cg));
  TH_OK(GEMM_CALL(TT_CUDA, gemm, Ag, Bg, Cf));
  TH_OK(GEMM_CALL(TT_CPU, gemm, Ar, Br, Cr));
  char label[96];
  snprintf(label, sizeof label, "gemm_bf16%s %s%s M%lld N%lld K%lld x%lld%s%s", one ? "" : "_batched",
           c->ta ? "T" : "N", c->tb ? "T" : "N", (long long)c->M, (long long)c->N, (long long)c->K,
           (long long)c->batch, c->a_shared ? " A shared" : "", c->b_shared ? " B shared" : "");
  double d = 0, dc = 0;
  expect_close(label, "C vs f32 gemm of bf16-rounded operands", Cr, Cg, 2e-5, &d);
  expect_bf16_ran(label, Cg, Cf);
  if (tt_backend_supports(TT_CPU, "gemm_bf16")) {
    TH_OK(GEMM_CALL(TT_CPU, gemm_bf16, A, B, Cc));
    expect_close(label, "C vs the cpu bf16 kernel", Cc, Cg, 2e-5, &dc);
  }
#undef GEMM_CALL
  printf("PARITY %-52s %10.3e %10s (vs the cpu bf16 kernel %.3e)\n", label, d, "-", dc);
  tt_tensor *ts[] = {A, B, C0, Ar, Br, Cr, Cc, Cg, Cf, Ag, Bg};
  release(11, ts);
}

START_TEST(test_gemm_bf16_kernels) {
  printf("bf16 GEMM on cuda: %s; on the cpu: %s\n", TT_KERNEL(TT_CUDA, gemm_bf16_isa)(), tt_gemm_bf16_isa());
  gemm_bf16_case_t cs[] = {
      {false, false, 5, 7, 9, 1, false, false, 1.0f, 0.0f},   {true, false, 33, 17, 65, 1, false, false, 0.5f, 1.0f},
      {false, true, 16, 40, 31, 1, false, false, 1.0f, 0.25f}, {true, true, 3, 5, 130, 1, false, false, -2.0f, 0.0f},
      {false, true, 9, 11, 64, 4, false, false, 0.125f, 0.0f}, {true, false, 12, 6, 20, 3, false, true, 1.0f, 1.0f},
      {false, false, 7, 13, 8, 5, true, false, 1.0f, 0.0f},    {false, false, 4, 4, 0, 2, false, false, 1.0f, 0.5f},
  };
  for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
    if (cs[i].K == 0) { /* an empty sum: C = beta C on both devices (no bf16 rounding to see) */
      tt_tensor *C = th_randn(170, TT_DIMS(2, 4, 6), 1.0f), *Cg = copy_to(C, TT_CUDA), *Cr = copy_to(C, TT_CPU);
      tt_tensor *Z = th_randn(171, TT_DIMS(8), 1.0f), *Zg = copy_to(Z, TT_CUDA);
      TH_OK(TT_KERNEL(TT_CUDA, gemm_bf16_batched)(false, false, 4, 4, 0, 1.0f, tt_f32(Zg), 1, 0, tt_f32(Zg), 4, 0, 0.5f,
                                                  tt_f32(Cg), 6, 24, 2));
      TH_OK(TT_KERNEL(TT_CPU, gemm_batched)(false, false, 4, 4, 0, 1.0f, tt_f32(Z), 1, 0, tt_f32(Z), 4, 0, 0.5f,
                                            tt_f32(Cr), 6, 24, 2));
      double d = 0;
      expect_close("gemm_bf16_batched K 0", "C = beta C", Cr, Cg, 0, &d);
      print_row("gemm_bf16_batched K 0 (C = beta C)", d, 0, false);
      tt_tensor *ts[] = {C, Cg, Cr, Z, Zg};
      release(5, ts);
      continue;
    }
    gemm_bf16_case(&cs[i], 160 + 3 * i);
  }
}
END_TEST

/* f run on CUDA copies of in under bf16 and under f32: the two must differ */
static void bf16_path_runs(const char *label, op_fn f, void *ud, int n, tt_tensor *const *in) {
  tt_tensor *g[MAX_IN] = {0};
  bool prev = tt_grad_set_enabled(false);
  for (int i = 0; i < n; i++) g[i] = copy_to(in[i], TT_CUDA);
  tt_tensor *yb = f(g, ud);
  TH_NN(yb);
  TH_OK(tt_set_compute_precision(TT_F32));
  tt_tensor *yf = f(g, ud);
  TH_OK(tt_set_compute_precision(TT_BF16));
  TH_NN(yf);
  expect_bf16_ran(label, yb, yf);
  tt_tensor_unref(yb);
  tt_tensor_unref(yf);
  release(n, g);
  tt_grad_set_enabled(prev);
}

/* tt_linear, tt_matmul (batched, broadcast) and tt_attention under
 * tt_set_compute_precision(TT_BF16), forward and backward, CPU against CUDA:
 * tight where the CPU has its own bf16 kernels (the same roundings), loose
 * where it trains in f32 (then only CUDA rounds). */
START_TEST(test_mixed_precision) {
  TH_OK(tt_set_compute_precision(TT_BF16));
  ck_assert_int_eq(tt_compute_precision(), TT_BF16);
  bool cpu_bf = tt_backend_supports(TT_CPU, "gemm_bf16") && tt_backend_supports(TT_CPU, "attention_fwd_bf16");
  printf("mixed precision: cuda %s; cpu %s\n", TT_KERNEL(TT_CUDA, gemm_bf16_isa)(),
         cpu_bf ? tt_gemm_bf16_isa() : "f32 (no bf16 kernels: loose tolerances)");
  double tg = cpu_bf ? 1e-4 : 3e-2, ta = cpu_bf ? 2e-3 : 3e-2;
  tt_tensor *x = th_leaf(180, TT_DIMS(2, 7, 40), 1.0f), *w = th_leaf(181, TT_DIMS(24, 40), 0.2f);
  tt_tensor *b = th_leaf(182, TT_DIMS(24), 0.5f);
  tt_tensor *in1[3] = {x, w, b};
  parity("bf16 linear [2,7,40]x[24,40]+b", f_linear, NULL, 3, in1, tg, tg);
  bf16_path_runs("bf16 linear", f_linear, NULL, 3, in1);
  tt_tensor *e = th_leaf(183, TT_DIMS(2, 1, 5, 33), 1.0f), *f = th_leaf(184, TT_DIMS(3, 33, 6), 1.0f);
  tt_tensor *in2[2] = {e, f};
  parity("bf16 matmul [2,1,5,33]@[3,33,6]", f_matmul, NULL, 2, in2, tg, tg);
  bf16_path_runs("bf16 matmul", f_matmul, NULL, 2, in2);
  tt_tensor *g = th_leaf(185, TT_DIMS(4, 17, 65), 1.0f), *h = th_leaf(186, TT_DIMS(4, 9, 65), 1.0f);
  tt_tensor *in3[2] = {g, h};
  parity("bf16 matmul [4,17,65]@[4,9,65]^T", f_matmul_bt, NULL, 2, in3, tg, tg);
  attn_case cs[] = {{2, 3, 9, 9, 16, 8, true, 0, 3}, {1, 2, 20, 20, 32, 32, false, 0, 0}, {2, 2, 1, 6, 8, 8, true, 5, 0}};
  for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
    attention_case(&cs[i], 190 + 3 * i, true, ta);
    attention_case(&cs[i], 190 + 3 * i, false, ta);
  }
  tt_tensor *q = th_randn(199, TT_DIMS(1, 2, 9, 16), 1.0f), *k = th_randn(200, TT_DIMS(1, 2, 9, 16), 1.0f);
  tt_tensor *v = th_randn(201, TT_DIMS(1, 2, 9, 16), 1.0f);
  tt_attention_params ap = {0.25f, true, 0, 0};
  tt_tensor *in4[3] = {q, k, v};
  bf16_path_runs("bf16 attention", f_attention, &ap, 3, in4);
  TH_OK(tt_set_compute_precision(TT_F32));
  tt_tensor *ts[] = {x, w, b, e, f, g, h, q, k, v};
  release(10, ts);
}
END_TEST

/* conv2d_bf16 through a pack made on each device: against the f32 convolution
 * of bf16-rounded x and w on the CPU, and the CPU's bf16 kernel where it has
 * one. cuDNN rounds its sums to bf16 once more (conv_bf16.cu): a bf16-sized
 * tolerance there, an f32-sized one on the cuBLAS path (TAMING_CUDA_CONV=gemm). */
static void conv_bf16_case(const conv_case *c, uint64_t seed, bool timed) {
  const char *isa = NULL;
  ck_assert(tt_conv2d_bf16_supported(TT_CUDA, &isa));
  double tol = strstr(isa, "cudnn") ? 8e-3 : 1e-4;
  float ws = 1.0f / sqrtf((float)(c->Ci * c->kh * c->kw));
  tt_tensor *x = th_randn(seed, TT_DIMS(c->B, c->Ci, c->H, c->W), 1.0f);
  tt_tensor *w = th_randn(seed + 1, TT_DIMS(c->Co, c->Ci, c->kh, c->kw), ws);
  tt_tensor *b = c->bias ? th_randn(seed + 2, TT_DIMS(c->Co), 0.5f) : NULL;
  tt_tensor *xg = copy_to(x, TT_CUDA), *wg = copy_to(w, TT_CUDA), *bg = copy_to(b, TT_CUDA);
  tt_conv2d_packed *pg = tt_conv2d_pack(wg, TT_BF16);
  TH_NN(pg);
  tt_tensor *yg = tt_conv2d_packed_forward(pg, xg, bg, &c->p), *yg2 = tt_conv2d_packed_forward(pg, xg, bg, &c->p);
  ck_assert_msg(yg && yg2, "conv2d_bf16 on cuda failed: %s", tt_error_message());
  ck_assert_int_eq(yg->device, TT_CUDA);
  tt_tensor *yf = tt_conv2d(xg, wg, bg, &c->p), *xr = rounded_weights(x, TT_BF16), *wr = rounded_weights(w, TT_BF16);
  TH_NN(yf);
  tt_tensor *yr = tt_conv2d(xr, wr, b, &c->p);
  TH_NN(yr);
  char label[112];
  snprintf(label, sizeof label, "conv2d_bf16 [%lld,%lld,%lld,%lld]->%lld k%lldx%lld s%d,%d p%d%d%d%d%s", (long long)c->B,
           (long long)c->Ci, (long long)c->H, (long long)c->W, (long long)c->Co, (long long)c->kh, (long long)c->kw,
           c->p.stride_h, c->p.stride_w, c->p.pad_top, c->p.pad_bottom, c->p.pad_left, c->p.pad_right,
           c->bias ? " +b" : "");
  double d = 0, dc = 0, d2 = 0;
  expect_close(label, "output vs f32 conv of bf16-rounded x, w", yr, yg, tol, &d);
  expect_close(label, "second call (cached plan) vs first", yg, yg2, 0, &d2);
  expect_bf16_ran(label, yg, yf);
  const char *cisa = NULL;
  if (tt_conv2d_bf16_supported(TT_CPU, &cisa)) {
    tt_conv2d_packed *pc = tt_conv2d_pack(w, TT_BF16);
    TH_NN(pc);
    tt_tensor *yc = tt_conv2d_packed_forward(pc, x, b, &c->p);
    TH_NN(yc);
    expect_close(label, "output vs the cpu bf16 kernel", yc, yg, tol, &dc);
    tt_tensor_unref(yc);
    tt_conv2d_packed_free(pc);
  }
  printf("PARITY %-52s %10.3e %10s (vs the cpu bf16 kernel %.3e; cuda: %s)\n", label, d, "-", dc, isa);
  if (timed) { /* the same convolution in f32 and in bf16 on the device, after the warm-up above */
    double t[2];
    for (int k = 0; k < 2; k++) {
      TH_OK(tt_device_synchronize(TT_CUDA));
      double t0 = now();
      for (int r = 0; r < 5; r++) {
        tt_tensor *y = k ? tt_conv2d_packed_forward(pg, xg, bg, &c->p) : tt_conv2d(xg, wg, bg, &c->p);
        TH_NN(y);
        tt_tensor_unref(y);
      }
      TH_OK(tt_device_synchronize(TT_CUDA));
      t[k] = (now() - t0) / 5;
    }
    printf("%s on cuda: f32 %.3f ms, bf16 %.3f ms (%.2fx)\n", label, 1e3 * t[0], 1e3 * t[1], t[0] / t[1]);
  }
  fflush(stdout);
  tt_conv2d_packed_free(pg);
  tt_tensor *ts[] = {x, w, b, xg, wg, bg, yg, yg2, yf, xr, wr, yr};
  release(12, ts);
}

START_TEST(test_conv_bf16) {
  TH_OK(tt_set_compute_precision(TT_F32)); /* f32 convolutions to compare with, whatever ran before */
  const char *isa = NULL;
  ck_assert(tt_conv2d_bf16_supported(TT_CUDA, &isa));
  printf("conv2d_bf16 on cuda: %s\n", isa);
  conv_case cs[] = {
      {2, 3, 9, 11, 5, 3, 3, {1, 1, 1, 1, 1, 1}, true},     /* 3 input channels: the VQGAN's conv_in */
      {1, 16, 16, 16, 16, 3, 3, {2, 2, 0, 1, 0, 1}, true},  /* the official Downsample */
      {2, 32, 7, 5, 24, 1, 1, {1, 1, 0, 0, 0, 0}, false},   /* 1x1 (nin_shortcut, q/k/v), non-square */
      {3, 8, 13, 6, 16, 5, 3, {2, 1, 2, 1, 0, 2}, true},    /* odd, asymmetric, mixed stride */
      {2, 64, 20, 12, 64, 3, 3, {1, 1, 1, 1, 1, 1}, true},  /* a ResNet block's conv, non-square */
  };
  for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) conv_bf16_case(&cs[i], 210 + 3 * i, false);
  /* one pack, several input shapes: a plan per shape in its cache */
  tt_tensor *w = th_randn(230, TT_DIMS(8, 4, 3, 3), 0.2f), *wg = copy_to(w, TT_CUDA);
  tt_conv2d_packed *pg = tt_conv2d_pack(wg, TT_BF16);
  TH_NN(pg);
  tt_conv2d_params p = {1, 1, 1, 1, 1, 1};
  for (int s = 0; s < 6; s++) { /* more shapes than the cache keeps */
    tt_tensor *x = th_randn(231 + s, TT_DIMS(1 + s % 2, 4, 5 + s, 7), 1.0f), *xg = copy_to(x, TT_CUDA);
    tt_tensor *xr = rounded_weights(x, TT_BF16), *wr = rounded_weights(w, TT_BF16);
    tt_tensor *yg = tt_conv2d_packed_forward(pg, xg, NULL, &p), *yr = tt_conv2d(xr, wr, NULL, &p);
    ck_assert_msg(yg && yr, "conv2d_bf16, input shape %d: %s", s, tt_error_message());
    double d = 0;
    expect_close("conv2d_bf16 one pack, six input shapes", "output", yr, yg, strstr(isa, "cudnn") ? 8e-3 : 1e-4, &d);
    tt_tensor *ts[] = {x, xg, xr, wr, yg, yr};
    release(6, ts);
  }
  print_row("conv2d_bf16 one pack, six input shapes", 0, 0, false);
  /* a CPU tensor against a CUDA pack: refused with a message */
  tt_tensor *xc = th_randn(240, TT_DIMS(1, 4, 5, 5), 1.0f);
  ck_assert_ptr_null(tt_conv2d_packed_forward(pg, xc, NULL, &p));
  ck_assert_msg(strstr(tt_error_message(), "conv2d_bf16"), "message: %s", tt_error_message());
  tt_error_clear();
  tt_conv2d_packed_free(pg);
  tt_tensor *ts[] = {w, wg, xc};
  release(3, ts);
}
END_TEST

#define LAYERS 3

/* LAYERS x (conv 3x3 128->128, pad 1 -> group norm 32 -> swish) on [1, 128, 256, 256]. */
static tt_tensor *f_stack(tt_tensor *const *in, void *ud) {
  tt_conv2d_params p = {1, 1, 1, 1, 1, 1};
  tt_tensor *h = tt_tensor_ref(in[0]);
  for (int l = 0; l < LAYERS && h; l++) {
    tt_tensor *c = tt_conv2d(h, in[1 + 4 * l], in[2 + 4 * l], &p);
    tt_tensor *n = c ? tt_group_norm(c, 32, in[3 + 4 * l], in[4 + 4 * l], 1e-6f) : NULL;
    tt_tensor *s = n ? tt_silu(n) : NULL;
    tt_tensor_unref(h);
    tt_tensor_unref(c);
    tt_tensor_unref(n);
    h = s;
  }
  return h;
}

START_TEST(test_model_sized_workload) {
  if (!have_op("conv2d", tt_conv2d != NULL, "conv2d_fwd") ||
      !have_op("group_norm", tt_group_norm != NULL, "group_norm_fwd"))
    return;
  tt_tensor *in[1 + 4 * LAYERS];
  in[0] = th_leaf(300, TT_DIMS(1, 128, 256, 256), 1.0f);
  for (int l = 0; l < LAYERS; l++) {
    in[1 + 4 * l] = th_leaf(310 + l, TT_DIMS(128, 128, 3, 3), 1.0f / sqrtf(128 * 9));
    in[2 + 4 * l] = th_leaf(320 + l, TT_DIMS(128), 0.1f);
    in[3 + 4 * l] = th_leaf(330 + l, TT_DIMS(128), 0.1f);
    in[4 + 4 * l] = th_leaf(340 + l, TT_DIMS(128), 0.1f);
    for (int c = 0; c < 128; c++) tt_f32(in[3 + 4 * l])[c] += 1.0f;
  }
  /* time the device alone once (warm-up included in the parity run below) */
  tt_tensor *gin[1 + 4 * LAYERS];
  for (int i = 0; i < 1 + 4 * LAYERS; i++) gin[i] = copy_to(in[i], TT_CUDA);
  for (int rep = 0; rep < 2; rep++) {
    TH_OK(tt_device_synchronize(TT_CUDA));
    double t0 = now();
    tt_tensor *y = f_stack(gin, NULL);
    TH_NN(y);
    tt_tensor *l = tt_mean(y);
    TH_NN(l);
    TH_OK(tt_backward(l, NULL, false));
    TH_OK(tt_device_synchronize(TT_CUDA));
    printf("model-sized workload (%d x conv3x3+GN+swish, [1,128,256,256]) fwd+bwd on cuda: %.1f ms%s\n", LAYERS,
           1e3 * (now() - t0), rep ? "" : " (first run)");
    tt_tensor_unref(y);
    tt_tensor_unref(l);
  }
  release(1 + 4 * LAYERS, gin);
  printf("cuda memory in use after the workload: %zu bytes\n", tt_memory_in_use(TT_CUDA));
  parity("model 3x(conv+GN+swish) [1,128,256,256]", f_stack, NULL, 1 + 4 * LAYERS, in, 1e-4, 1e-3);
  release(1 + 4 * LAYERS, in);
}
END_TEST

/* A VQGAN-sized convolution (3x3, 128 -> 128 at 256x256) with bf16 weights, timed against f32. */
START_TEST(test_conv_bf16_large) {
  conv_case c = {1, 128, 256, 256, 128, 3, 3, {1, 1, 1, 1, 1, 1}, true};
  conv_bf16_case(&c, 250, true);
}
END_TEST

int main(void) {
  if (!tt_device_available(TT_CUDA)) {
    tt_backend_get(TT_CUDA); /* sets the reason */
    /* a module that does not link (a source file left out of its build) is a
     * defect of this build, not a machine without a GPU */
    if (strstr(tt_error_message(), "undefined symbol")) {
      printf("check_cuda: FAIL: the CUDA module does not load: %s\n", tt_error_message());
      return 1;
    }
    printf("check_cuda: SKIP: %s\n", tt_error_message());
    return 77;
  }
  printf("cuda device: %s\n", tt_device_describe(TT_CUDA));
  printf("PARITY %-52s %10s %10s\n", "op", "max_abs_fwd", "max_abs_bwd");
  Suite *s = suite_create("cuda");
  TCase *tc = tcase_create("parity");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_every_cpu_kernel_has_a_cuda_twin);
  tcase_add_test(tc, test_select);
  tcase_add_test(tc, test_copy_and_fill);
  tcase_add_test(tc, test_every_dtype_pair);
  tcase_add_test(tc, test_unary);
  tcase_add_test(tc, test_binary_and_axpy);
  tcase_add_test(tc, test_reduce);
  tcase_add_test(tc, test_gemm);
  tcase_add_test(tc, test_random);
  tcase_add_test(tc, test_conv);
  tcase_add_test(tc, test_resample);
  tcase_add_test(tc, test_norm);
  tcase_add_test(tc, test_softmax);
  tcase_add_test(tc, test_attention);
  tcase_add_test(tc, test_attention_chunks);
  tcase_add_test(tc, test_embedding_and_loss);
  tcase_add_test(tc, test_quantize);
  tcase_add_test(tc, test_adam);
  tcase_add_test(tc, test_adam_multi);
  tcase_add_test(tc, test_qlinear_pack);
  tcase_add_test(tc, test_qlinear);
  tcase_add_test(tc, test_gemm_bf16_kernels);
  tcase_add_test(tc, test_mixed_precision);
  tcase_add_test(tc, test_conv_bf16);
  suite_add_tcase(s, tc);
  /* apart, so that a slow run (compute-sanitizer) can leave it out: CK_RUN_CASE=parity */
  TCase *large = tcase_create("large");
  tcase_set_timeout(large, 600);
  tcase_add_test(large, test_model_sized_workload);
  tcase_add_test(large, test_qlinear_large);
  tcase_add_test(large, test_conv_bf16_large);
  suite_add_tcase(s, large);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}

/* elementwise.c — CPU kernels: unary math and activations, broadcasting binary
 * arithmetic, their backward passes, axpy. */
#include "config.h"
#include <math.h>
#include <string.h>
#include "cpu.h"
#include "softmax_row.h"   /* tt_cpu_expf: an exp that vectorises */

static inline float sigmoidf(float x) { return 1.0f / (1.0f + tt_cpu_expf(-x)); }

/* erfc in float with no libm call, so GELU's loops vectorise: the Chebyshev fit
 * of Numerical Recipes (erfcc, fractional error < 1.2e-7 for every x), over
 * tt_cpu_expf. GELU(x) = x/2 erfc(-x/sqrt 2) then has a relative error under
 * 1e-5 everywhere, where 1 + erff(x/sqrt 2) loses it all below x = -5. */
static inline float erfcf_fit(float x) {
  float z = fabsf(x), t = 1.0f / (1.0f + 0.5f * z);
  float p = -0.82215223f + t * 0.17087277f;
  p = 1.48851587f + t * p;
  p = -1.13520398f + t * p;
  p = 0.27886807f + t * p;
  p = -0.18628806f + t * p;
  p = 0.09678418f + t * p;
  p = 0.37409196f + t * p;
  p = 1.00002368f + t * p;
  p = -1.26551223f + t * p;
  float a = t * tt_cpu_expf(-z * z + p);
  return x >= 0 ? a : 2.0f - a;
}

static inline float unary_f(const tt_unary_params *p, float x) {
  switch (p->op) {
    case TT_UNARY_NEG: return -x;
    case TT_UNARY_ABS: return fabsf(x);
    case TT_UNARY_EXP: return expf(x);
    case TT_UNARY_LOG: return logf(x);
    case TT_UNARY_SQRT: return sqrtf(x);
    case TT_UNARY_SQUARE: return x * x;
    case TT_UNARY_RELU: return x > 0 ? x : 0;
    case TT_UNARY_SILU: return x / (1.0f + tt_cpu_expf(-x));
    case TT_UNARY_GELU: return 0.5f * x * erfcf_fit(-x * (float)M_SQRT1_2);
    case TT_UNARY_SIGMOID: return sigmoidf(x);
    case TT_UNARY_TANH: return tanhf(x);
    case TT_UNARY_SOFTPLUS: return x > 20.0f ? x : log1pf(expf(x));
    case TT_UNARY_LEAKY_RELU: return x > 0 ? x : p->alpha * x;
    case TT_UNARY_CLAMP: return x < p->alpha ? p->alpha : x > p->beta ? p->beta : x;
    case TT_UNARY_AFFINE: return p->alpha * x + p->beta;
    case TT_UNARY_POW: return powf(x, p->alpha);
    case TT_UNARY_RECIPROCAL: return 1.0f / x;
    default: return NAN;
  }
}

/* d f(x) / dx, with y = f(x) available */
static inline float unary_df(const tt_unary_params *p, float x, float y) {
  switch (p->op) {
    case TT_UNARY_NEG: return -1.0f;
    case TT_UNARY_ABS: return x > 0 ? 1.0f : x < 0 ? -1.0f : 0.0f;
    case TT_UNARY_EXP: return y;
    case TT_UNARY_LOG: return 1.0f / x;
    case TT_UNARY_SQRT: return 0.5f / y;
    case TT_UNARY_SQUARE: return 2.0f * x;
    case TT_UNARY_RELU: return x > 0 ? 1.0f : 0.0f;
    case TT_UNARY_SILU: {
      float s = sigmoidf(x);
      return s * (1.0f + x * (1.0f - s));
    }
    case TT_UNARY_GELU:
      return 0.5f * erfcf_fit(-x * (float)M_SQRT1_2) + x * tt_cpu_expf(-0.5f * x * x) * 0.3989422804014327f;
    case TT_UNARY_SIGMOID: return y * (1.0f - y);
    case TT_UNARY_TANH: return 1.0f - y * y;
    case TT_UNARY_SOFTPLUS: return x > 20.0f ? 1.0f : sigmoidf(x);
    case TT_UNARY_LEAKY_RELU: return x > 0 ? 1.0f : p->alpha;
    case TT_UNARY_CLAMP: return (x >= p->alpha && x <= p->beta) ? 1.0f : 0.0f;
    case TT_UNARY_AFFINE: return p->alpha;
    case TT_UNARY_POW: return p->alpha * powf(x, p->alpha - 1.0f);
    case TT_UNARY_RECIPROCAL: return -y * y;
    default: return NAN;
  }
}

static tt_status cpu_unary_fwd(const tt_unary_params *p, const tt_tensor *x, tt_tensor *y) {
  const float *xs = tt_f32(x);
  float *ys = tt_f32(y);
  int64_t n = tt_tensor_numel(x);
  tt_unary_params q = *p;
  switch (q.op) {
#define CASE(OP)                                                              \
  case OP:                                                                    \
    _Pragma("omp parallel for simd schedule(static) if (n > TT_CPU_PAR_MIN)") \
    for (int64_t i = 0; i < n; i++) ys[i] = unary_f(&(tt_unary_params){OP, q.alpha, q.beta}, xs[i]); \
    break;
    CASE(TT_UNARY_NEG) CASE(TT_UNARY_ABS) CASE(TT_UNARY_EXP) CASE(TT_UNARY_LOG)
    CASE(TT_UNARY_SQRT) CASE(TT_UNARY_SQUARE) CASE(TT_UNARY_RELU) CASE(TT_UNARY_SILU)
    CASE(TT_UNARY_GELU) CASE(TT_UNARY_SIGMOID) CASE(TT_UNARY_TANH) CASE(TT_UNARY_SOFTPLUS)
    CASE(TT_UNARY_LEAKY_RELU) CASE(TT_UNARY_CLAMP) CASE(TT_UNARY_AFFINE) CASE(TT_UNARY_POW)
    CASE(TT_UNARY_RECIPROCAL)
#undef CASE
    default: return tt_error(TT_ERR_INVALID, "unary: unknown op %d", (int)q.op);
  }
  return TT_OK;
}

static tt_status cpu_unary_bwd(const tt_unary_params *p, const tt_tensor *x, const tt_tensor *y,
                               const tt_tensor *gy, tt_tensor *gx) {
  const float *xs = tt_f32(x), *ys = y ? tt_f32(y) : NULL, *g = tt_f32(gy);
  float *o = tt_f32(gx);
  int64_t n = tt_tensor_numel(x);
  tt_unary_params q = *p;
  if (q.op == TT_UNARY_GELU || q.op == TT_UNARY_SILU) {   /* the activations of the models: one vector loop each */
    if (q.op == TT_UNARY_GELU) {
#pragma omp parallel for simd schedule(static) if (n > TT_CPU_PAR_MIN)
      for (int64_t i = 0; i < n; i++) o[i] = g[i] * unary_df(&(tt_unary_params){TT_UNARY_GELU, 0, 0}, xs[i], 0);
    } else {
#pragma omp parallel for simd schedule(static) if (n > TT_CPU_PAR_MIN)
      for (int64_t i = 0; i < n; i++) o[i] = g[i] * unary_df(&(tt_unary_params){TT_UNARY_SILU, 0, 0}, xs[i], 0);
    }
    return TT_OK;
  }
#pragma omp parallel for schedule(static) if (n > TT_CPU_PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    float yi = ys ? ys[i] : unary_f(&q, xs[i]);
    o[i] = g[i] * unary_df(&q, xs[i], yi);
  }
  return TT_OK;
}

static inline float binary_f(tt_binary_op op, float a, float b) {
  switch (op) {
    case TT_BINARY_ADD: return a + b;
    case TT_BINARY_SUB: return a - b;
    case TT_BINARY_MUL: return a * b;
    case TT_BINARY_DIV: return a / b;
    case TT_BINARY_MAX: return a >= b ? a : b;
    case TT_BINARY_MIN: return a <= b ? a : b;
    default: return NAN;
  }
}

/* Iterates out[...] over collapsed dims; BODY sees pointers pa, pb (strided by sa, sb) and po. */
#define BINARY_LOOP(OUT, A, B, ...)                                                        \
  do {                                                                                      \
    int64_t shape_[TT_MAX_DIMS], so_[TT_MAX_DIMS], sa_[TT_MAX_DIMS], sb_[TT_MAX_DIMS];      \
    int nd_ = (OUT)->ndim;                                                                  \
    for (int i_ = 0; i_ < nd_; i_++) {                                                      \
      shape_[i_] = (OUT)->shape[i_];                                                        \
      so_[i_] = (OUT)->stride[i_];                                                          \
      sa_[i_] = (A)->stride[i_];                                                            \
      sb_[i_] = (B)->stride[i_];                                                            \
    }                                                                                       \
    int64_t *st_[3] = {so_, sa_, sb_};                                                      \
    nd_ = tt_collapse_dims(nd_, shape_, 3, st_);                                        \
    int64_t inner = shape_[nd_ - 1], so = so_[nd_ - 1], sa = sa_[nd_ - 1], sb = sb_[nd_ - 1]; \
    int64_t outer_ = 1;                                                                     \
    for (int i_ = 0; i_ < nd_ - 1; i_++) outer_ *= shape_[i_];                              \
    float *o0_ = tt_f32(OUT);                                                               \
    const float *a0_ = tt_f32(A), *b0_ = tt_f32(B);                                         \
    _Pragma("omp parallel for schedule(static) if (outer_ * inner > TT_CPU_PAR_MIN && outer_ > 1)") \
    for (int64_t o_ = 0; o_ < outer_; o_++) {                                               \
      int64_t oo_ = 0, oa_ = 0, ob_ = 0, r_ = o_;                                           \
      for (int i_ = nd_ - 2; i_ >= 0; i_--) {                                               \
        int64_t c_ = r_ % shape_[i_];                                                       \
        r_ /= shape_[i_];                                                                   \
        oo_ += c_ * so_[i_];                                                                \
        oa_ += c_ * sa_[i_];                                                                \
        ob_ += c_ * sb_[i_];                                                                \
      }                                                                                     \
      float *po = o0_ + oo_;                                                                \
      const float *pa = a0_ + oa_, *pb = b0_ + ob_;                                         \
      __VA_ARGS__                                                                           \
    }                                                                                       \
  } while (0)

static tt_status cpu_binary_fwd(tt_binary_op op, const tt_tensor *a, const tt_tensor *b, tt_tensor *out) {
  if ((unsigned)op >= TT_BINARY_COUNT) return tt_error(TT_ERR_INVALID, "binary: unknown op %d", (int)op);
  BINARY_LOOP(out, a, b, {
    if (so == 1 && sa == 1 && sb == 1) {
      switch (op) {
        case TT_BINARY_ADD: for (int64_t i = 0; i < inner; i++) po[i] = pa[i] + pb[i]; break;
        case TT_BINARY_SUB: for (int64_t i = 0; i < inner; i++) po[i] = pa[i] - pb[i]; break;
        case TT_BINARY_MUL: for (int64_t i = 0; i < inner; i++) po[i] = pa[i] * pb[i]; break;
        case TT_BINARY_DIV: for (int64_t i = 0; i < inner; i++) po[i] = pa[i] / pb[i]; break;
        default: for (int64_t i = 0; i < inner; i++) po[i] = binary_f(op, pa[i], pb[i]); break;
      }
    } else if (so == 1 && sa == 1 && sb == 0) {
      float bv = pb[0];
      switch (op) {
        case TT_BINARY_ADD: for (int64_t i = 0; i < inner; i++) po[i] = pa[i] + bv; break;
        case TT_BINARY_MUL: for (int64_t i = 0; i < inner; i++) po[i] = pa[i] * bv; break;
        default: for (int64_t i = 0; i < inner; i++) po[i] = binary_f(op, pa[i], bv); break;
      }
    } else {
      for (int64_t i = 0; i < inner; i++) po[i * so] = binary_f(op, pa[i * sa], pb[i * sb]);
    }
  });
  return TT_OK;
}

static tt_status cpu_binary_bwd(tt_binary_op op, const tt_tensor *a, const tt_tensor *b,
                                const tt_tensor *gy, tt_tensor *ga, tt_tensor *gb) {
  /* gy, ga, gb are contiguous with out's shape; iterate with gy as the "out" operand */
  float *ga0 = ga ? tt_f32(ga) : NULL, *gb0 = gb ? tt_f32(gb) : NULL;
  const float *g0 = tt_f32(gy);
  tt_tensor gview = *gy;
  BINARY_LOOP(&gview, a, b, {
    int64_t base = po - (float *)g0; /* gy is contiguous: same offset in ga, gb */
    for (int64_t i = 0; i < inner; i++) {
      float g = po[i * so], x = pa[i * sa], y = pb[i * sb];
      float da, db;
      switch (op) {
        case TT_BINARY_ADD: da = 1; db = 1; break;
        case TT_BINARY_SUB: da = 1; db = -1; break;
        case TT_BINARY_MUL: da = y; db = x; break;
        case TT_BINARY_DIV: da = 1.0f / y; db = -x / (y * y); break;
        case TT_BINARY_MAX: da = x >= y ? 1 : 0; db = 1 - da; break;
        case TT_BINARY_MIN: da = x <= y ? 1 : 0; db = 1 - da; break;
        default: da = db = NAN;
      }
      if (ga0) ga0[base + i * so] = g * da;
      if (gb0) gb0[base + i * so] = g * db;
    }
  });
  return TT_OK;
}

static tt_status cpu_axpy(float alpha, const tt_tensor *x, tt_tensor *y) {
  const float *xs = tt_f32(x);
  float *ys = tt_f32(y);
  int64_t n = tt_tensor_numel(x);
#pragma omp parallel for simd schedule(static) if (n > TT_CPU_PAR_MIN)
  for (int64_t i = 0; i < n; i++) ys[i] += alpha * xs[i];
  return TT_OK;
}

tt_status tt_cpu_register_elementwise(tt_backend *b) {
  TT_REGISTER_KERNEL(b, unary_fwd, cpu_unary_fwd);
  TT_REGISTER_KERNEL(b, unary_bwd, cpu_unary_bwd);
  TT_REGISTER_KERNEL(b, binary_fwd, cpu_binary_fwd);
  TT_REGISTER_KERNEL(b, binary_bwd, cpu_binary_bwd);
  TT_REGISTER_KERNEL(b, axpy, cpu_axpy);
  return TT_OK;
}

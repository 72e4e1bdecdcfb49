/* ops/elementwise.h — arithmetic with broadcasting, scalar arithmetic and the
 * pointwise nonlinearities (swish, exact-erf GELU, leaky ReLU, ...). f32. */
#ifndef TAMING_OPS_ELEMENTWISE_H
#define TAMING_OPS_ELEMENTWISE_H
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tt_unary_op {
  TT_UNARY_NEG = 0,
  TT_UNARY_ABS,
  TT_UNARY_EXP,
  TT_UNARY_LOG,
  TT_UNARY_SQRT,
  TT_UNARY_SQUARE,
  TT_UNARY_RELU,
  TT_UNARY_SILU,       /* x * sigmoid(x) ("swish") */
  TT_UNARY_GELU,       /* 0.5 x (1 + erf(x / sqrt 2)), the exact form */
  TT_UNARY_SIGMOID,
  TT_UNARY_TANH,
  TT_UNARY_SOFTPLUS,   /* log(1 + exp(x)), stable */
  TT_UNARY_LEAKY_RELU, /* alpha = negative slope */
  TT_UNARY_CLAMP,      /* alpha = lo, beta = hi */
  TT_UNARY_AFFINE,     /* alpha * x + beta */
  TT_UNARY_POW,        /* x ^ alpha */
  TT_UNARY_RECIPROCAL, /* 1 / x */
  TT_UNARY_COUNT
} tt_unary_op;

typedef enum tt_binary_op {
  TT_BINARY_ADD = 0,
  TT_BINARY_SUB,
  TT_BINARY_MUL,
  TT_BINARY_DIV,
  TT_BINARY_MAX,
  TT_BINARY_MIN,
  TT_BINARY_COUNT
} tt_binary_op;

typedef struct tt_unary_params {
  tt_unary_op op;
  float alpha, beta;
} tt_unary_params;

/* Kernels:
 *   unary_fwd: y = f(x), x and y contiguous f32 of equal numel.
 *   unary_bwd: gx = gy * f'(x) (y = f(x) given for ops that use it).
 *   binary_fwd: out = a (op) b; out contiguous; a and b have out's ndim and shape
 *               except where their stride is 0 (broadcast).
 *   binary_bwd: for out = a (op) b with gy like out (contiguous): ga_full = gy * d(out)/da,
 *               gb_full = gy * d(out)/db, both contiguous of out's shape (either may be NULL);
 *               the op sums them back over broadcast dims.
 *   axpy: y += alpha * x, both contiguous f32 of equal numel. */
typedef tt_status (*tt_unary_fwd_fn)(const tt_unary_params *p, const tt_tensor *x, tt_tensor *y);
typedef tt_status (*tt_unary_bwd_fn)(const tt_unary_params *p, const tt_tensor *x, const tt_tensor *y,
                                     const tt_tensor *gy, tt_tensor *gx);
typedef tt_status (*tt_binary_fwd_fn)(tt_binary_op op, const tt_tensor *a, const tt_tensor *b,
                                      tt_tensor *out);
typedef tt_status (*tt_binary_bwd_fn)(tt_binary_op op, const tt_tensor *a, const tt_tensor *b,
                                      const tt_tensor *gy, tt_tensor *ga_full, tt_tensor *gb_full);
typedef tt_status (*tt_axpy_fn)(float alpha, const tt_tensor *x, tt_tensor *y);

/* Broadcasting binary ops (numpy rules). */
TT_API tt_tensor *tt_binary(tt_binary_op op, tt_tensor *a, tt_tensor *b);
TT_API tt_tensor *tt_add(tt_tensor *a, tt_tensor *b);
TT_API tt_tensor *tt_sub(tt_tensor *a, tt_tensor *b);
TT_API tt_tensor *tt_mul(tt_tensor *a, tt_tensor *b);
TT_API tt_tensor *tt_div(tt_tensor *a, tt_tensor *b);
TT_API tt_tensor *tt_maximum(tt_tensor *a, tt_tensor *b);
TT_API tt_tensor *tt_minimum(tt_tensor *a, tt_tensor *b);

TT_API tt_tensor *tt_unary(tt_unary_op op, float alpha, float beta, tt_tensor *x);
TT_API tt_tensor *tt_neg(tt_tensor *x);
TT_API tt_tensor *tt_abs(tt_tensor *x);
TT_API tt_tensor *tt_exp(tt_tensor *x);
TT_API tt_tensor *tt_log(tt_tensor *x);
TT_API tt_tensor *tt_sqrt(tt_tensor *x);
TT_API tt_tensor *tt_square(tt_tensor *x);
TT_API tt_tensor *tt_relu(tt_tensor *x);
TT_API tt_tensor *tt_silu(tt_tensor *x);
TT_API tt_tensor *tt_gelu(tt_tensor *x);
TT_API tt_tensor *tt_sigmoid(tt_tensor *x);
TT_API tt_tensor *tt_tanh(tt_tensor *x);
TT_API tt_tensor *tt_softplus(tt_tensor *x);
TT_API tt_tensor *tt_leaky_relu(tt_tensor *x, float slope);
TT_API tt_tensor *tt_clamp(tt_tensor *x, float lo, float hi);
TT_API tt_tensor *tt_add_scalar(tt_tensor *x, double s);   /* x + s */
TT_API tt_tensor *tt_mul_scalar(tt_tensor *x, double s);   /* x * s */
TT_API tt_tensor *tt_affine(tt_tensor *x, double a, double b); /* a*x + b */
TT_API tt_tensor *tt_pow_scalar(tt_tensor *x, double p);
TT_API tt_tensor *tt_reciprocal(tt_tensor *x);

/* In place, no autograd: y += alpha * x (shapes equal, y contiguous). */
TT_API tt_status tt_axpy_(tt_tensor *y, float alpha, tt_tensor *x);

#ifdef __cplusplus
}
#endif
#endif

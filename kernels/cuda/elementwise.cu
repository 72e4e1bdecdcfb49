/* elementwise.cu — CUDA kernels: unary math and activations, broadcasting
 * binary arithmetic, their backward passes, axpy.
 *
 * The op is a kernel argument (the branch is uniform across a launch, so it
 * costs no divergence); the formulas are the CPU kernels' term by term, with
 * CUDA's single-precision libm (within 2 ulp of the host's). Broadcast strides
 * are collapsed on the host; the iteration uses 32-bit coordinate arithmetic
 * when the element count allows, since 64-bit division is slow on the GPU. */
#include "config.h"
#include <string.h>
#include "cuda_backend.h"

#define TT_SQRT1_2 0.70710678118654752440f
#define TT_INV_SQRT_2PI 0.3989422804014327f

__device__ __forceinline__ float sigmoid_f(float x) { return 1.0f / (1.0f + expf(-x)); }

__device__ __forceinline__ float unary_f(tt_unary_op op, float a, float b, float x) {
  switch (op) {
    case TT_UNARY_NEG: return -x;
    case TT_UNARY_ABS: return fabsf(x);
    case TT_UNARY_EXP: return expf(x);
    case TT_UNARY_LOG: return logf(x);
    case TT_UNARY_SQRT: return sqrtf(x);
    case TT_UNARY_SQUARE: return x * x;
    case TT_UNARY_RELU: return x > 0 ? x : 0.0f;
    case TT_UNARY_SILU: return x / (1.0f + expf(-x));
    case TT_UNARY_GELU: return 0.5f * x * (1.0f + erff(x * TT_SQRT1_2));
    case TT_UNARY_SIGMOID: return sigmoid_f(x);
    case TT_UNARY_TANH: return tanhf(x);
    case TT_UNARY_SOFTPLUS: return x > 20.0f ? x : log1pf(expf(x));
    case TT_UNARY_LEAKY_RELU: return x > 0 ? x : a * x;
    case TT_UNARY_CLAMP: return x < a ? a : x > b ? b : x;
    case TT_UNARY_AFFINE: return a * x + b;
    case TT_UNARY_POW: return powf(x, a);
    case TT_UNARY_RECIPROCAL: return 1.0f / x;
    default: return __int_as_float(0x7fc00000); /* NaN */
  }
}

/* d f(x) / dx, with y = f(x) */
__device__ __forceinline__ float unary_df(tt_unary_op op, float a, float b, float x, float y) {
  switch (op) {
    case TT_UNARY_NEG: return -1.0f;
    case TT_UNARY_ABS: return x > 0 ? 1.0f : x < 0 ? -1.0f : 0.0f;
    case TT_UNARY_EXP: return y;
    case TT_UNARY_LOG: return 1.0f / x;
    case TT_UNARY_SQRT: return 0.5f / y;
    case TT_UNARY_SQUARE: return 2.0f * x;
    case TT_UNARY_RELU: return x > 0 ? 1.0f : 0.0f;
    case TT_UNARY_SILU: {
      float s = sigmoid_f(x);
      return s * (1.0f + x * (1.0f - s));
    }
    case TT_UNARY_GELU:
      return 0.5f * (1.0f + erff(x * TT_SQRT1_2)) + x * expf(-0.5f * x * x) * TT_INV_SQRT_2PI;
    case TT_UNARY_SIGMOID: return y * (1.0f - y);
    case TT_UNARY_TANH: return 1.0f - y * y;
    case TT_UNARY_SOFTPLUS: return x > 20.0f ? 1.0f : sigmoid_f(x);
    case TT_UNARY_LEAKY_RELU: return x > 0 ? 1.0f : a;
    case TT_UNARY_CLAMP: return (x >= a && x <= b) ? 1.0f : 0.0f;
    case TT_UNARY_AFFINE: return a;
    case TT_UNARY_POW: return a * powf(x, a - 1.0f);
    case TT_UNARY_RECIPROCAL: return -y * y;
    default: return __int_as_float(0x7fc00000);
  }
}

__global__ void k_unary_fwd(tt_unary_op op, float a, float b, const float *x, float *y, int64_t n) {
  TT_CUDA_LOOP(i, n) y[i] = unary_f(op, a, b, x[i]);
}

__global__ void k_unary_bwd(tt_unary_op op, float a, float b, const float *x, const float *y, const float *gy,
                            float *gx, int64_t n) {
  TT_CUDA_LOOP(i, n) {
    float xi = x[i], yi = y ? y[i] : unary_f(op, a, b, xi);
    gx[i] = gy[i] * unary_df(op, a, b, xi, yi);
  }
}

// x [n] -> y [n]
static tt_status cu_unary_fwd(const tt_unary_params *p, const tt_tensor *x, tt_tensor *y) {
  if ((unsigned)p->op >= TT_UNARY_COUNT) return tt_error(TT_ERR_INVALID, "unary: unknown op %d", (int)p->op);
  int64_t n = tt_tensor_numel(x);
  if (n == 0) return TT_OK;
  k_unary_fwd<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(p->op, p->alpha, p->beta, tt_cuda_ptr<float>(x),
                                                                         tt_cuda_ptr<float>(y), n);
  return tt_cuda_check_launch("unary_fwd");
}

// x, y (may be NULL), gy [n] -> gx [n]
static tt_status cu_unary_bwd(const tt_unary_params *p, const tt_tensor *x, const tt_tensor *y, const tt_tensor *gy,
                              tt_tensor *gx) {
  if ((unsigned)p->op >= TT_UNARY_COUNT) return tt_error(TT_ERR_INVALID, "unary: unknown op %d", (int)p->op);
  int64_t n = tt_tensor_numel(x);
  if (n == 0) return TT_OK;
  k_unary_bwd<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(
      p->op, p->alpha, p->beta, tt_cuda_ptr<float>(x), y ? tt_cuda_ptr<float>(y) : nullptr, tt_cuda_ptr<float>(gy),
      tt_cuda_ptr<float>(gx), n);
  return tt_cuda_check_launch("unary_bwd");
}

__device__ __forceinline__ float binary_f(tt_binary_op op, float a, float b) {
  switch (op) {
    case TT_BINARY_ADD: return a + b;
    case TT_BINARY_SUB: return a - b;
    case TT_BINARY_MUL: return a * b;
    case TT_BINARY_DIV: return a / b;
    case TT_BINARY_MAX: return a >= b ? a : b;
    case TT_BINARY_MIN: return a <= b ? a : b;
    default: return __int_as_float(0x7fc00000);
  }
}

/* d(a op b)/da and d(a op b)/db */
__device__ __forceinline__ void binary_df(tt_binary_op op, float x, float y, float *da, float *db) {
  switch (op) {
    case TT_BINARY_ADD: *da = 1; *db = 1; break;
    case TT_BINARY_SUB: *da = 1; *db = -1; break;
    case TT_BINARY_MUL: *da = y; *db = x; break;
    case TT_BINARY_DIV: *da = 1.0f / y; *db = -x / (y * y); break;
    case TT_BINARY_MAX: *da = x >= y ? 1.0f : 0.0f; *db = 1.0f - *da; break;
    case TT_BINARY_MIN: *da = x <= y ? 1.0f : 0.0f; *db = 1.0f - *da; break;
    default: *da = *db = __int_as_float(0x7fc00000);
  }
}

/* out, a, b flat and contiguous; b_scalar: b is one value broadcast */
__global__ void k_binary_flat(tt_binary_op op, const float *a, const float *b, bool b_scalar, float *out, int64_t n) {
  TT_CUDA_LOOP(i, n) out[i] = binary_f(op, a[i], b[b_scalar ? 0 : i]);
}

/* operand 0 = out, 1 = a, 2 = b */
template <class I>
__global__ void k_binary_strided(tt_binary_op op, tt_cuda_iter<3> it, const float *a, const float *b, float *out,
                                 int64_t n) {
  TT_CUDA_LOOP(i, n) {
    int64_t off[3];
    tt_cuda_offsets<3, I>(it, (I)i, off);
    out[off[0]] = binary_f(op, a[off[1]], b[off[2]]);
  }
}

/* operand 0 = gy (contiguous: its offset indexes ga and gb too), 1 = a, 2 = b */
template <class I>
__global__ void k_binary_bwd(tt_binary_op op, tt_cuda_iter<3> it, const float *a, const float *b, const float *gy,
                             float *ga, float *gb, int64_t n) {
  TT_CUDA_LOOP(i, n) {
    int64_t off[3];
    tt_cuda_offsets<3, I>(it, (I)i, off);
    float g = gy[off[0]], da, db;
    binary_df(op, a[off[1]], b[off[2]], &da, &db);
    if (ga) ga[off[0]] = g * da;
    if (gb) gb[off[0]] = g * db;
  }
}

/* The collapsed iteration over ref's shape with the strides of ref, a and b. */
static tt_cuda_iter<3> binary_iter(const tt_tensor *ref, const tt_tensor *a, const tt_tensor *b) {
  tt_cuda_iter<3> it;
  int64_t st[3][TT_MAX_DIMS];
  for (int i = 0; i < ref->ndim; i++) {
    it.shape[i] = ref->shape[i];
    st[0][i] = ref->stride[i];
    st[1][i] = a->stride[i];
    st[2][i] = b->stride[i];
  }
  int64_t *stp[3] = {st[0], st[1], st[2]};
  it.nd = tt_collapse_dims(ref->ndim, it.shape, 3, stp);
  memcpy(it.stride, st, sizeof st);
  return it;
}

// a, b (broadcast strides, out's ndim) -> out (contiguous)
static tt_status cu_binary_fwd(tt_binary_op op, const tt_tensor *a, const tt_tensor *b, tt_tensor *out) {
  if ((unsigned)op >= TT_BINARY_COUNT) return tt_error(TT_ERR_INVALID, "binary: unknown op %d", (int)op);
  int64_t n = tt_tensor_numel(out);
  if (n == 0) return TT_OK;
  tt_cuda_iter<3> it = binary_iter(out, a, b);
  const float *pa = tt_cuda_ptr<float>(a), *pb = tt_cuda_ptr<float>(b);
  float *po = tt_cuda_ptr<float>(out);
  unsigned g = tt_cuda_grid(n);
  cudaStream_t st = tt_cuda_stream();
  if (it.nd == 1 && it.stride[0][0] == 1 && it.stride[1][0] == 1 && (it.stride[2][0] == 1 || it.stride[2][0] == 0))
    k_binary_flat<<<g, TT_CUDA_THREADS, 0, st>>>(op, pa, pb, it.stride[2][0] == 0, po, n);
  else if (n < ((int64_t)1 << 31))
    k_binary_strided<uint32_t><<<g, TT_CUDA_THREADS, 0, st>>>(op, it, pa, pb, po, n);
  else
    k_binary_strided<int64_t><<<g, TT_CUDA_THREADS, 0, st>>>(op, it, pa, pb, po, n);
  return tt_cuda_check_launch("binary_fwd");
}

// gy (contiguous, out's shape), a, b (broadcast strides) -> ga_full, gb_full (contiguous, out's shape; may be NULL)
static tt_status cu_binary_bwd(tt_binary_op op, const tt_tensor *a, const tt_tensor *b, const tt_tensor *gy,
                               tt_tensor *ga, tt_tensor *gb) {
  if ((unsigned)op >= TT_BINARY_COUNT) return tt_error(TT_ERR_INVALID, "binary: unknown op %d", (int)op);
  int64_t n = tt_tensor_numel(gy);
  if (n == 0 || (!ga && !gb)) return TT_OK;
  tt_cuda_iter<3> it = binary_iter(gy, a, b);
  float *pga = ga ? tt_cuda_ptr<float>(ga) : nullptr, *pgb = gb ? tt_cuda_ptr<float>(gb) : nullptr;
  unsigned g = tt_cuda_grid(n);
  cudaStream_t st = tt_cuda_stream();
  if (n < ((int64_t)1 << 31))
    k_binary_bwd<uint32_t><<<g, TT_CUDA_THREADS, 0, st>>>(op, it, tt_cuda_ptr<float>(a), tt_cuda_ptr<float>(b),
                                                           tt_cuda_ptr<float>(gy), pga, pgb, n);
  else
    k_binary_bwd<int64_t><<<g, TT_CUDA_THREADS, 0, st>>>(op, it, tt_cuda_ptr<float>(a), tt_cuda_ptr<float>(b),
                                                          tt_cuda_ptr<float>(gy), pga, pgb, n);
  return tt_cuda_check_launch("binary_bwd");
}

__global__ void k_axpy(float alpha, const float *x, float *y, int64_t n) {
  TT_CUDA_LOOP(i, n) y[i] += alpha * x[i];
}

// y [n] += alpha * x [n]
static tt_status cu_axpy(float alpha, const tt_tensor *x, tt_tensor *y) {
  int64_t n = tt_tensor_numel(x);
  if (n == 0) return TT_OK;
  k_axpy<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(alpha, tt_cuda_ptr<float>(x),
                                                                    tt_cuda_ptr<float>(y), n);
  return tt_cuda_check_launch("axpy");
}

tt_status tt_cuda_register_elementwise(tt_backend *b) {
  TT_REGISTER_KERNEL(b, unary_fwd, cu_unary_fwd);
  TT_REGISTER_KERNEL(b, unary_bwd, cu_unary_bwd);
  TT_REGISTER_KERNEL(b, binary_fwd, cu_binary_fwd);
  TT_REGISTER_KERNEL(b, binary_bwd, cu_binary_bwd);
  TT_REGISTER_KERNEL(b, axpy, cu_axpy);
  return TT_OK;
}

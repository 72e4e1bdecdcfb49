/* compare.cu — CUDA kernels of the compare family: comparisons into a u8 mask
 * and where, the twins of kernels/cpu/compare.c. The host makes every operand
 * contiguous and of the output's shape, so these are flat grid-stride loops. */
#include "config.h"
#include "cuda_backend.h"

template <class T>
__global__ void k_compare(tt_compare_op op, const T *x, const T *y, uint8_t *o, int64_t n) {
  TT_CUDA_LOOP(i, n) {
    bool r;
    switch (op) {
      case TT_CMP_LT: r = x[i] < y[i]; break;
      case TT_CMP_LE: r = x[i] <= y[i]; break;
      case TT_CMP_GT: r = x[i] > y[i]; break;
      case TT_CMP_GE: r = x[i] >= y[i]; break;
      case TT_CMP_EQ: r = x[i] == y[i]; break;
      default: r = x[i] != y[i]; break; /* TT_CMP_NE */
    }
    o[i] = (uint8_t)r;
  }
}

template <class T> static void launch_compare(tt_compare_op op, const tt_tensor *a, const tt_tensor *b, uint8_t *o, int64_t n) {
  k_compare<T><<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(op, tt_cuda_ptr<T>(a), tt_cuda_ptr<T>(b), o, n);
}

static tt_status cu_compare(tt_compare_op op, const tt_tensor *a, const tt_tensor *b, tt_tensor *out) {
  if ((unsigned)op > TT_CMP_NE) return tt_error(TT_ERR_INVALID, "compare: unknown op %d", (int)op);
  int64_t n = tt_tensor_numel(out);
  if (n == 0) return TT_OK;
  uint8_t *o = tt_cuda_ptr<uint8_t>(out);
  switch (a->dtype) {
    case TT_F32: launch_compare<float>(op, a, b, o, n); break;
    case TT_I64: launch_compare<int64_t>(op, a, b, o, n); break;
    case TT_U8: launch_compare<uint8_t>(op, a, b, o, n); break;
    default: return tt_error(TT_ERR_INVALID, "compare: unsupported dtype %s", tt_dtype_name(a->dtype));
  }
  return tt_cuda_check_launch("compare");
}

template <class T> __global__ void k_where(const uint8_t *c, const T *x, const T *y, T *o, int64_t n) {
  TT_CUDA_LOOP(i, n) o[i] = c[i] ? x[i] : y[i];
}

static tt_status cu_where(const tt_tensor *cond, const tt_tensor *a, const tt_tensor *b, tt_tensor *out) {
  int64_t n = tt_tensor_numel(out);
  if (n == 0) return TT_OK;
  const uint8_t *c = tt_cuda_ptr<uint8_t>(cond);
  if (out->dtype == TT_F32) {
    k_where<float><<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(c, tt_cuda_ptr<float>(a),
                                                                             tt_cuda_ptr<float>(b),
                                                                             tt_cuda_ptr<float>(out), n);
  } else if (out->dtype == TT_I64) {
    k_where<int64_t><<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(c, tt_cuda_ptr<int64_t>(a),
                                                                               tt_cuda_ptr<int64_t>(b),
                                                                               tt_cuda_ptr<int64_t>(out), n);
  } else {
    return tt_error(TT_ERR_INVALID, "where: unsupported dtype %s", tt_dtype_name(out->dtype));
  }
  return tt_cuda_check_launch("where");
}

tt_status tt_cuda_register_compare(tt_backend *b) {
  TT_REGISTER_KERNEL(b, compare, cu_compare);
  TT_REGISTER_KERNEL(b, where, cu_where);
  return TT_OK;
}

/* softmax.cu — CUDA kernels of softmax and log-softmax over the rows of a
 * contiguous [N, D] tensor, forward and backward; one block per row.
 *
 * As on the CPU: the row maximum skips NaN (which then reaches the sum and
 * makes the row NaN), -inf entries get probability 0, and a row without a
 * finite entry gives all 0 (softmax) or all -inf (log_softmax) and a zero
 * gradient instead of NaN. Sums are accumulated in double. */
#include "config.h"
#include "reduce.cuh"

// x [N, D] -> y [N, D]
__global__ void k_softmax_fwd(const float *x, float *y, int64_t N, int64_t D, bool log_) {
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const float *xr = x + row * D;
    float *yr = y + row * D;
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) m = fmaxf(m, xr[i]);
    m = tt_block_max(m);
    if (m == -INFINITY) {
      float fill = log_ ? -INFINITY : 0.0f;
      for (int64_t i = threadIdx.x; i < D; i += blockDim.x) yr[i] = fill;
      continue;
    }
    double s = 0;
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
      float e = expf(xr[i] - m);
      if (!log_) yr[i] = e;
      s += e;
    }
    s = tt_block_sum(s);
    if (!log_) {
      float inv = (float)(1.0 / s);
      for (int64_t i = threadIdx.x; i < D; i += blockDim.x) yr[i] *= inv;
    } else {
      float ls = (float)log(s);
      for (int64_t i = threadIdx.x; i < D; i += blockDim.x) yr[i] = (xr[i] - m) - ls;
    }
  }
}

/* softmax:     gx = y * (gy - sum(y * gy))
 * log_softmax: gx = gy - exp(y) * sum(gy), and 0 for a row without a finite input */
__global__ void k_softmax_bwd(const float *y, const float *gy, float *gx, int64_t N, int64_t D, bool log_) {
  for (int64_t row = blockIdx.x; row < N; row += gridDim.x) {
    const float *yr = y + row * D, *gr = gy + row * D;
    float *out = gx + row * D;
    double acc = 0;
    if (!log_) {
      for (int64_t i = threadIdx.x; i < D; i += blockDim.x) acc += (double)yr[i] * gr[i];
      float dot = (float)tt_block_sum(acc);
      for (int64_t i = threadIdx.x; i < D; i += blockDim.x) out[i] = yr[i] * (gr[i] - dot);
    } else {
      float m = -INFINITY;
      for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
        acc += gr[i];
        m = fmaxf(m, yr[i]);
      }
      float sum = (float)tt_block_sum(acc);
      m = tt_block_max(m);
      for (int64_t i = threadIdx.x; i < D; i += blockDim.x) out[i] = m == -INFINITY ? 0.0f : gr[i] - expf(yr[i]) * sum;
    }
  }
}

static tt_status rows_of(const char *k, const tt_tensor *x, int64_t *N, int64_t *D) {
  if (x->ndim != 2)
    return tt_error(TT_ERR_INVALID, "%s: the cuda kernel takes rows [N, D], found %d dims", k, x->ndim);
  *N = x->shape[0];
  *D = x->shape[1];
  return TT_OK;
}

static unsigned row_blocks(int64_t N) {
  int64_t cap = (int64_t)tt_cuda_sm_count() * 32;
  return (unsigned)(N < cap ? (N > 0 ? N : 1) : cap);
}

static tt_status cu_softmax_fwd(bool log_, const tt_tensor *x, tt_tensor *y) {
  int64_t N = 0, D = 0;
  TT_TRY(rows_of("softmax_fwd", x, &N, &D));
  if (N == 0 || D == 0) return TT_OK;
  k_softmax_fwd<<<row_blocks(N), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(tt_cuda_ptr<float>(x), tt_cuda_ptr<float>(y),
                                                                         N, D, log_);
  return tt_cuda_check_launch("softmax_fwd");
}

static tt_status cu_softmax_bwd(bool log_, const tt_tensor *y, const tt_tensor *gy, tt_tensor *gx) {
  int64_t N = 0, D = 0;
  TT_TRY(rows_of("softmax_bwd", y, &N, &D));
  if (N == 0 || D == 0) return TT_OK;
  k_softmax_bwd<<<row_blocks(N), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(
      tt_cuda_ptr<float>(y), tt_cuda_ptr<float>(gy), tt_cuda_ptr<float>(gx), N, D, log_);
  return tt_cuda_check_launch("softmax_bwd");
}

tt_status tt_cuda_register_softmax(tt_backend *b) {
  TT_REGISTER_KERNEL(b, softmax_fwd, cu_softmax_fwd);
  TT_REGISTER_KERNEL(b, softmax_bwd, cu_softmax_bwd);
  return TT_OK;
}

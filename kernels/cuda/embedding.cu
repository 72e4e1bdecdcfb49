/* embedding.cu — CUDA kernels: table lookup (token embedding, codebook rows),
 * its scatter-add backward, and one-hot encoding.
 *
 * Indices live on the device, so a bad one is found there: the kernels skip
 * it (a forward row of NaN, no gradient) and record it for the next
 * synchronisation (cuda_backend.h), which reports the op, the position and the
 * index; a lookup costs no synchronisation of its own. The
 * backward adds rows with atomicAdd, so its summation order varies from run
 * to run (differences at fp32 rounding level). */
#include "config.h"
#include "cuda_backend.h"

// w [V, E], idx [N] -> out [N, E]
__global__ void k_embedding_fwd(const float *w, const int64_t *idx, float *out, int64_t N, int64_t V, int64_t E,
                                tt_cuda_index_error *bad) {
  TT_CUDA_LOOP(t, N * E) {
    int64_t n = t / E, e = t % E, row = idx[n];
    if (row < 0 || row >= V) {
      if (e == 0) tt_cuda_bad_index(bad, TT_CUDA_SITE_EMBEDDING, n, row, V);
      out[t] = NAN;
      continue;
    }
    out[t] = w[row * E + e];
  }
}

// gw [V, E] += gout [N, E] rows at idx
__global__ void k_embedding_bwd(const int64_t *idx, const float *gout, float *gw, int64_t N, int64_t V, int64_t E,
                                tt_cuda_index_error *bad) {
  TT_CUDA_LOOP(t, N * E) {
    int64_t n = t / E, e = t % E, row = idx[n];
    if (row < 0 || row >= V) {
      if (e == 0) tt_cuda_bad_index(bad, TT_CUDA_SITE_EMBEDDING_BWD, n, row, V);
      continue;
    }
    atomicAdd(gw + row * E + e, gout[t]);
  }
}

// records the first idx[i] outside [0, limit)
__global__ void k_check_index(const int64_t *idx, int64_t N, int64_t limit, tt_cuda_index_error *bad) {
  TT_CUDA_LOOP(i, N) {
    if (idx[i] < 0 || idx[i] >= limit) tt_cuda_bad_index(bad, TT_CUDA_SITE_EMBEDDING, i, idx[i], limit);
  }
}

// out [N, n] (zeroed) gets 1 at (i, idx[i])
__global__ void k_one_hot(const int64_t *idx, float *out, int64_t N, int64_t n, tt_cuda_index_error *bad) {
  TT_CUDA_LOOP(i, N) {
    int64_t c = idx[i];
    if (c < 0 || c >= n) {
      tt_cuda_bad_index(bad, TT_CUDA_SITE_ONE_HOT, i, c, n);
      continue;
    }
    out[i * n + c] = 1.0f;
  }
}

static tt_status cu_embedding_fwd(const tt_tensor *w, const tt_tensor *idx, tt_tensor *out) {
  int64_t V = w->shape[0], E = w->shape[1], N = tt_tensor_numel(idx);
  if (N == 0) return TT_OK;
  tt_cuda_index_error *bad = tt_cuda_index_check();
  const int64_t *ix = tt_cuda_ptr<int64_t>(idx);
  if (E > 0) {
    k_embedding_fwd<<<tt_cuda_grid(N * E), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(
        tt_cuda_ptr<float>(w), ix, tt_cuda_ptr<float>(out), N, V, E, bad);
  } else { /* no columns to copy: still validate the indices */
    k_check_index<<<tt_cuda_grid(N), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(ix, N, V, bad);
  }
  return tt_cuda_check_launch("embedding_fwd");
}

static tt_status cu_embedding_bwd(const tt_tensor *idx, const tt_tensor *gout, tt_tensor *gw) {
  int64_t V = gw->shape[0], E = gw->shape[1], N = tt_tensor_numel(idx);
  cudaStream_t st = tt_cuda_stream();
  if (V * E > 0) TT_CUDA_TRY(cudaMemsetAsync(tt_tensor_data(gw), 0, sizeof(float) * (size_t)(V * E), st), "embedding_bwd");
  if (N == 0 || E == 0) return TT_OK;
  const int64_t *ix = tt_cuda_ptr<int64_t>(idx);
  k_embedding_bwd<<<tt_cuda_grid(N * E), TT_CUDA_THREADS, 0, st>>>(ix, tt_cuda_ptr<float>(gout), tt_cuda_ptr<float>(gw),
                                                                  N, V, E, tt_cuda_index_check());
  return tt_cuda_check_launch("embedding_bwd");
}

static tt_status cu_one_hot(const tt_tensor *idx, int64_t n, tt_tensor *out) {
  int64_t N = tt_tensor_numel(idx);
  cudaStream_t st = tt_cuda_stream();
  if (N * n > 0) TT_CUDA_TRY(cudaMemsetAsync(tt_tensor_data(out), 0, sizeof(float) * (size_t)(N * n), st), "one_hot");
  if (N == 0) return TT_OK;
  k_one_hot<<<tt_cuda_grid(N), TT_CUDA_THREADS, 0, st>>>(tt_cuda_ptr<int64_t>(idx), tt_cuda_ptr<float>(out), N, n,
                                                         tt_cuda_index_check());
  return tt_cuda_check_launch("one_hot");
}

tt_status tt_cuda_register_embedding(tt_backend *b) {
  TT_REGISTER_KERNEL(b, embedding_fwd, cu_embedding_fwd);
  TT_REGISTER_KERNEL(b, embedding_bwd, cu_embedding_bwd);
  TT_REGISTER_KERNEL(b, one_hot, cu_one_hot);
  return TT_OK;
}

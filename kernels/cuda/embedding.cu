/* embedding.cu — CUDA kernels: table lookup (token embedding, codebook rows),
 * its scatter-add backward, and one-hot encoding.
 *
 * Indices live on the device, so a bad one is found there: the kernels skip
 * it and record the smallest offending position in a flag word, which is read
 * back (one synchronisation) to report the position and the index. The
 * backward adds rows with atomicAdd, so its summation order varies from run
 * to run (differences at fp32 rounding level). */
#include "config.h"
#include "cuda_backend.h"

// w [V, E], idx [N] -> out [N, E]
__global__ void k_embedding_fwd(const float *w, const int64_t *idx, float *out, int64_t N, int64_t V, int64_t E,
                                unsigned long long *bad) {
  TT_CUDA_LOOP(t, N * E) {
    int64_t n = t / E, e = t % E, row = idx[n];
    if (row < 0 || row >= V) {
      if (e == 0) atomicMin(bad, (unsigned long long)n);
      continue;
    }
    out[t] = w[row * E + e];
  }
}

// gw [V, E] += gout [N, E] rows at idx
__global__ void k_embedding_bwd(const int64_t *idx, const float *gout, float *gw, int64_t N, int64_t V, int64_t E,
                                unsigned long long *bad) {
  TT_CUDA_LOOP(t, N * E) {
    int64_t n = t / E, e = t % E, row = idx[n];
    if (row < 0 || row >= V) {
      if (e == 0) atomicMin(bad, (unsigned long long)n);
      continue;
    }
    atomicAdd(gw + row * E + e, gout[t]);
  }
}

// records the first idx[i] outside [0, limit)
__global__ void k_check_index(const int64_t *idx, int64_t N, int64_t limit, unsigned long long *bad) {
  TT_CUDA_LOOP(i, N) {
    if (idx[i] < 0 || idx[i] >= limit) atomicMin(bad, (unsigned long long)i);
  }
}

// out [N, n] (zeroed) gets 1 at (i, idx[i])
__global__ void k_one_hot(const int64_t *idx, float *out, int64_t N, int64_t n, unsigned long long *bad) {
  TT_CUDA_LOOP(i, N) {
    int64_t c = idx[i];
    if (c < 0 || c >= n) {
      atomicMin(bad, (unsigned long long)i);
      continue;
    }
    out[i * n + c] = 1.0f;
  }
}

/* Reads the flag; an error naming the first bad position and its index when there is one. */
static tt_status report(tt_cuda_index_flag *flag, const int64_t *idx, int64_t limit, const char *what) {
  int64_t pos = -1, value = 0;
  TT_TRY(flag->read(idx, &pos, &value, what));
  if (pos < 0) return TT_OK;
  return tt_error(TT_ERR_INVALID, "%s: index %lld (at position %lld) is outside [0, %lld)", what, (long long)value,
                  (long long)pos, (long long)limit);
}

static tt_status cu_embedding_fwd(const tt_tensor *w, const tt_tensor *idx, tt_tensor *out) {
  int64_t V = w->shape[0], E = w->shape[1], N = tt_tensor_numel(idx);
  if (N == 0) return TT_OK;
  tt_cuda_index_flag flag;
  TT_TRY(flag.init("embedding"));
  const int64_t *ix = tt_cuda_ptr<int64_t>(idx);
  if (E > 0) {
    k_embedding_fwd<<<tt_cuda_grid(N * E), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(
        tt_cuda_ptr<float>(w), ix, tt_cuda_ptr<float>(out), N, V, E, flag.dev);
  } else { /* no columns to copy: still validate the indices */
    k_check_index<<<tt_cuda_grid(N), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(ix, N, V, flag.dev);
  }
  TT_TRY(tt_cuda_check_launch("embedding_fwd"));
  return report(&flag, ix, V, "embedding");
}

static tt_status cu_embedding_bwd(const tt_tensor *idx, const tt_tensor *gout, tt_tensor *gw) {
  int64_t V = gw->shape[0], E = gw->shape[1], N = tt_tensor_numel(idx);
  cudaStream_t st = tt_cuda_stream();
  if (V * E > 0) TT_CUDA_TRY(cudaMemsetAsync(tt_tensor_data(gw), 0, sizeof(float) * (size_t)(V * E), st), "embedding_bwd");
  if (N == 0 || E == 0) return TT_OK;
  tt_cuda_index_flag flag;
  TT_TRY(flag.init("embedding backward"));
  const int64_t *ix = tt_cuda_ptr<int64_t>(idx);
  k_embedding_bwd<<<tt_cuda_grid(N * E), TT_CUDA_THREADS, 0, st>>>(ix, tt_cuda_ptr<float>(gout), tt_cuda_ptr<float>(gw),
                                                                  N, V, E, flag.dev);
  TT_TRY(tt_cuda_check_launch("embedding_bwd"));
  return report(&flag, ix, V, "embedding backward");
}

static tt_status cu_one_hot(const tt_tensor *idx, int64_t n, tt_tensor *out) {
  int64_t N = tt_tensor_numel(idx);
  cudaStream_t st = tt_cuda_stream();
  if (N * n > 0) TT_CUDA_TRY(cudaMemsetAsync(tt_tensor_data(out), 0, sizeof(float) * (size_t)(N * n), st), "one_hot");
  if (N == 0) return TT_OK;
  tt_cuda_index_flag flag;
  TT_TRY(flag.init("one_hot"));
  const int64_t *ix = tt_cuda_ptr<int64_t>(idx);
  k_one_hot<<<tt_cuda_grid(N), TT_CUDA_THREADS, 0, st>>>(ix, tt_cuda_ptr<float>(out), N, n, flag.dev);
  TT_TRY(tt_cuda_check_launch("one_hot"));
  return report(&flag, ix, n, "one_hot");
}

tt_status tt_cuda_register_embedding(tt_backend *b) {
  TT_REGISTER_KERNEL(b, embedding_fwd, cu_embedding_fwd);
  TT_REGISTER_KERNEL(b, embedding_bwd, cu_embedding_bwd);
  TT_REGISTER_KERNEL(b, one_hot, cu_one_hot);
  return TT_OK;
}

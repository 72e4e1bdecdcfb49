/* loss.cu — CUDA kernels of the fused cross-entropy (the transformer's loss
 * over the codebook vocabulary), forward and backward.
 *
 * Forward: one block per row forms the log-sum-exp around the row maximum,
 * the sum of exponentials in double (V reaches 16384 codes). Backward re-forms
 * softmax from the saved lse instead of storing [N, V] probabilities. Targets
 * are checked on the device: a bad row gets a NaN loss (and zero gradient) and
 * is reported at the next synchronisation (cuda_backend.h), so the loss costs
 * no synchronisation of its own. */
#include "config.h"
#include "reduce.cuh"

// logits [N, V], target [N] -> loss_rows [N] = lse - logit[target], lse [N]
__global__ void k_ce_fwd(const float *x, const int64_t *target, float *loss, float *lse, int64_t N, int64_t V,
                         tt_cuda_index_error *bad) {
  for (int64_t n = blockIdx.x; n < N; n += gridDim.x) {
    const float *row = x + n * V;
    float m = -INFINITY;
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) m = fmaxf(m, row[v]);
    m = tt_block_max(m);
    double s = 0;
    for (int64_t v = threadIdx.x; v < V; v += blockDim.x) s += expf(row[v] - m);
    s = tt_block_sum(s);
    if (threadIdx.x == 0) {
      int64_t t = target[n];
      double l = (double)m + log(s);
      lse[n] = (float)l;
      if (t < 0 || t >= V) {
        tt_cuda_bad_index(bad, TT_CUDA_SITE_CROSS_ENTROPY, n, t, V);
        loss[n] = NAN;
      } else {
        loss[n] = (float)(l - (double)row[t]);
      }
    }
  }
}

// glogits[n, v] = scale[n] * (exp(logits[n, v] - lse[n]) - [v == target[n]])
template <class I>
__global__ void k_ce_bwd(const float *x, const int64_t *target, const float *lse, const float *scale, float *g,
                         int64_t total, I V, tt_cuda_index_error *bad) {
  TT_CUDA_LOOP(i, total) {
    I n = (I)i / V, v = (I)i % V;
    int64_t t = target[n];
    if (t < 0 || t >= (int64_t)V) {
      if (v == 0) tt_cuda_bad_index(bad, TT_CUDA_SITE_CROSS_ENTROPY_BWD, n, t, (int64_t)V);
      g[i] = 0.0f;
      continue;
    }
    float s = scale[n], e = s * expf(x[i] - lse[n]);
    g[i] = (int64_t)v == t ? e - s : e;
  }
}

static tt_status check_rows(const char *k, const tt_tensor *logits, int64_t *N, int64_t *V) {
  if (logits->ndim != 2) return tt_error(TT_ERR_INVALID, "%s: logits must be [N, V], found %d dims", k, logits->ndim);
  *N = logits->shape[0];
  *V = logits->shape[1];
  if (*N > 0 && *V == 0) return tt_error(TT_ERR_INVALID, "%s: no classes (V = 0)", k);
  return TT_OK;
}

static tt_status cu_cross_entropy_fwd(const tt_tensor *logits, const tt_tensor *target, tt_tensor *loss_rows,
                                      tt_tensor *lse) {
  int64_t N = 0, V = 0;
  TT_TRY(check_rows("cross_entropy", logits, &N, &V));
  if (N == 0) return TT_OK;
  const int64_t *t = tt_cuda_ptr<int64_t>(target);
  int64_t cap = (int64_t)tt_cuda_sm_count() * 32;
  k_ce_fwd<<<(unsigned)(N < cap ? N : cap), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(
      tt_cuda_ptr<float>(logits), t, tt_cuda_ptr<float>(loss_rows), tt_cuda_ptr<float>(lse), N, V,
      tt_cuda_index_check());
  return tt_cuda_check_launch("cross_entropy_fwd");
}

static tt_status cu_cross_entropy_bwd(const tt_tensor *logits, const tt_tensor *target, const tt_tensor *lse,
                                      const tt_tensor *scale, tt_tensor *glogits) {
  int64_t N = 0, V = 0;
  TT_TRY(check_rows("cross_entropy backward", logits, &N, &V));
  int64_t total = N * V;
  if (total == 0) return TT_OK;
  tt_cuda_index_error *bad = tt_cuda_index_check();
  const int64_t *t = tt_cuda_ptr<int64_t>(target);
  const float *x = tt_cuda_ptr<float>(logits), *l = tt_cuda_ptr<float>(lse), *s = tt_cuda_ptr<float>(scale);
  float *g = tt_cuda_ptr<float>(glogits);
  unsigned grid = tt_cuda_grid(total);
  if (total < ((int64_t)1 << 31))
    k_ce_bwd<uint32_t><<<grid, TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(x, t, l, s, g, total, (uint32_t)V, bad);
  else
    k_ce_bwd<int64_t><<<grid, TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(x, t, l, s, g, total, V, bad);
  return tt_cuda_check_launch("cross_entropy_bwd");
}

tt_status tt_cuda_register_loss(tt_backend *b) {
  TT_REGISTER_KERNEL(b, cross_entropy_fwd, cu_cross_entropy_fwd);
  TT_REGISTER_KERNEL(b, cross_entropy_bwd, cu_cross_entropy_bwd);
  return TT_OK;
}

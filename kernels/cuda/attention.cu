/* attention.cu — CUDA kernels of scaled dot-product attention with the minGPT
 * mask (causal, q_offset for a KV cache, the n_unmasked block), forward and
 * backward: cuBLAS strided-batched GEMMs over (batch*head) and a masked row
 * softmax.
 *
 * Query t (absolute position i = q_offset + t) sees a prefix of the keys,
 * [0, L(i)) with L(i) = min(Tk, max(i + 1, n_unmasked if i < n_unmasked));
 * without `causal` every key. The softmax runs over that prefix and writes
 * exact zeros after it, so masked probabilities are 0 and their gradients too.
 *
 * Scores need [heads, rows, Tk] of memory. When the caller keeps the
 * probabilities they are that buffer; otherwise (inference) the work runs in
 * chunks of heads — or of query rows, for one very long head — whose scores
 * fit a fixed scratch budget, never the whole [BH, Tq, Tk].
 *
 * The _bf16 kernels (mixed precision: tt_set_compute_precision) run every
 * product with bf16 operands and f32 sums (tt_cuda_gemm_bf16, gemm_bf16.cu),
 * as the CPU's attention_*_bf16 do: Q K^T, P V, gO V^T, G K and G^T Q round
 * their operands (P and G included); the softmax and its gradient stay f32. */
#include "config.h"
#include "reduce.cuh"

/* Scratch for scores / score gradients when the probabilities are not kept. */
#define ATTN_SCRATCH_BYTES ((int64_t)256 << 20)

/* The GEMM of a pass: f32 (tt_cuda_sgemm) or bf16 operands (tt_cuda_gemm_bf16), same contract. */
typedef tt_status (*attn_gemm_fn)(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                                  int64_t lda, int64_t sa, const float *B, int64_t ldb, int64_t sb, float beta,
                                  float *C, int64_t ldc, int64_t sc, int64_t batch, const char *what);

typedef struct {
  bool causal;
  int64_t q_offset, n_unmasked, Tk;
} mask_t;

__device__ __forceinline__ int64_t visible(const mask_t &m, int64_t t) {
  if (!m.causal) return m.Tk;
  int64_t i = m.q_offset + t, L = i + 1;
  if (i < m.n_unmasked && m.n_unmasked > L) L = m.n_unmasked;
  if (L > m.Tk) L = m.Tk;
  return L < 0 ? 0 : L;
}

/* Rows of a chunk: S [heads, rows, Tk] (row stride Tk, head stride rows*Tk); row
 * (h, tl) is query r0 + tl. Softmax over the visible prefix, zeros after it. */
__global__ void k_masked_softmax(float *S, int64_t heads, int64_t rows, int64_t r0, mask_t m) {
  for (int64_t row = blockIdx.x; row < heads * rows; row += gridDim.x) {
    float *s = S + row * m.Tk; /* heads*rows rows of Tk, contiguous */
    int64_t L = visible(m, r0 + row % rows);
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < L; j += blockDim.x) mx = fmaxf(mx, s[j]);
    mx = tt_block_max(mx);
    if (mx == -INFINITY) {
      for (int64_t j = threadIdx.x; j < m.Tk; j += blockDim.x) s[j] = 0.0f;
      continue;
    }
    double sum = 0;
    for (int64_t j = threadIdx.x; j < L; j += blockDim.x) {
      float e = expf(s[j] - mx);
      s[j] = e;
      sum += e;
    }
    float inv = (float)(1.0 / tt_block_sum(sum));
    for (int64_t j = threadIdx.x; j < m.Tk; j += blockDim.x) s[j] = j < L ? s[j] * inv : 0.0f;
  }
}

/* G <- P * (G - rowsum(G * P)) row by row; P rows `pstride_h` apart per head. */
__global__ void k_softmax_grad(float *G, const float *P, int64_t heads, int64_t rows, int64_t Tk, int64_t p_head) {
  for (int64_t row = blockIdx.x; row < heads * rows; row += gridDim.x) {
    float *g = G + row * Tk;
    const float *p = P + (row / rows) * p_head + (row % rows) * Tk;
    double acc = 0;
    for (int64_t j = threadIdx.x; j < Tk; j += blockDim.x) acc += (double)g[j] * p[j];
    float dot = (float)tt_block_sum(acc);
    for (int64_t j = threadIdx.x; j < Tk; j += blockDim.x) g[j] = p[j] * (g[j] - dot);
  }
}

static unsigned row_blocks(int64_t n) {
  int64_t cap = (int64_t)tt_cuda_sm_count() * 32;
  return (unsigned)(n < cap ? (n > 0 ? n : 1) : cap);
}

/* Heads and query rows per chunk so that [hc, rc, Tk] floats fit the scratch budget. */
static void chunking(int64_t BH, int64_t Tq, int64_t Tk, int64_t *hc, int64_t *rc) {
  int64_t per_head = Tq * Tk * (int64_t)sizeof(float);
  if (per_head <= ATTN_SCRATCH_BYTES) {
    *rc = Tq;
    *hc = per_head > 0 ? ATTN_SCRATCH_BYTES / per_head : BH;
    if (*hc > BH) *hc = BH;
    if (*hc < 1) *hc = 1;
  } else {
    *hc = 1;
    *rc = ATTN_SCRATCH_BYTES / (Tk * (int64_t)sizeof(float));
    if (*rc < 1) *rc = 1;
    if (*rc > Tq) *rc = Tq;
  }
}

static tt_status check3(const char *k, const tt_tensor *t) {
  if (t->ndim != 3) return tt_error(TT_ERR_INVALID, "%s: the cuda kernel takes [BH, T, d] tensors", k);
  return TT_OK;
}

// q [BH, Tq, d], k [BH, Tk, d], v [BH, Tk, dv] -> out [BH, Tq, dv]; probs [BH, Tq, Tk] or NULL
static tt_status attention_fwd(attn_gemm_fn gemm, const char *K, const tt_attention_params *p, const tt_tensor *q,
                               const tt_tensor *k, const tt_tensor *v, tt_tensor *out, tt_tensor *probs) {
  TT_TRY(check3(K, q));
  TT_TRY(check3(K, k));
  TT_TRY(check3(K, v));
  TT_TRY(check3(K, out));
  if (probs) TT_TRY(check3(K, probs));
  int64_t BH = q->shape[0], Tq = q->shape[1], d = q->shape[2], Tk = k->shape[1], dv = v->shape[2];
  if (BH == 0 || Tq == 0) return TT_OK;
  mask_t m = {p->causal, p->q_offset, p->n_unmasked, Tk};
  const float *qs = tt_cuda_ptr<float>(q), *ks = tt_cuda_ptr<float>(k), *vs = tt_cuda_ptr<float>(v);
  float *os = tt_cuda_ptr<float>(out);
  int64_t hc = BH, rc = Tq;
  tt_cuda_buf scratch;
  if (!probs) {
    chunking(BH, Tq, Tk, &hc, &rc);
    TT_TRY(scratch.alloc(sizeof(float) * (size_t)(hc * rc * (Tk > 0 ? Tk : 1)), K));
  }
  for (int64_t h0 = 0; h0 < BH; h0 += hc) {
    int64_t nh = BH - h0 < hc ? BH - h0 : hc;
    for (int64_t r0 = 0; r0 < Tq; r0 += rc) {
      int64_t nr = Tq - r0 < rc ? Tq - r0 : rc;
      /* with probs, nr == Tq and the chunk's scores are the probs of heads h0.. */
      float *S = probs ? tt_cuda_ptr<float>(probs) + h0 * Tq * Tk : scratch.as<float>();
      // S [nh, nr, Tk] = scale * Q[h, r0:r0+nr] K[h]^T
      TT_TRY(gemm(false, true, nr, Tk, d, p->scale, qs + (h0 * Tq + r0) * d, d, Tq * d, ks + h0 * Tk * d, d,
                           Tk * d, 0.0f, S, Tk, nr * Tk, nh, K));
      if (Tk > 0) {
        k_masked_softmax<<<row_blocks(nh * nr), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(S, nh, nr, r0, m);
        TT_TRY(tt_cuda_check_launch(K));
      }
      // O[h, r0:r0+nr] [nr, dv] = P [nr, Tk] V[h] [Tk, dv]
      TT_TRY(gemm(false, false, nr, dv, Tk, 1.0f, S, Tk, nr * Tk, vs + h0 * Tk * dv, dv, Tk * dv, 0.0f,
                           os + (h0 * Tq + r0) * dv, dv, Tq * dv, nh, K));
    }
  }
  return TT_OK;
}

/* From the probabilities P (zero where masked):
 *   gV = P^T gO,  gP = gO V^T,  gS = P * (gP - rowsum(gP * P)),  gQ = scale gS K,  gK = scale gS^T Q
 * in chunks of heads (or of query rows: gK and gV then accumulate over the chunks). */
static tt_status attention_bwd(attn_gemm_fn gemm, const char *K, const tt_attention_params *p, const tt_tensor *q,
                               const tt_tensor *k, const tt_tensor *v, const tt_tensor *probs, const tt_tensor *gout,
                               tt_tensor *gq, tt_tensor *gk, tt_tensor *gv) {
  TT_TRY(check3(K, q));
  TT_TRY(check3(K, k));
  TT_TRY(check3(K, v));
  TT_TRY(check3(K, probs));
  TT_TRY(check3(K, gout));
  int64_t BH = q->shape[0], Tq = q->shape[1], d = q->shape[2], Tk = k->shape[1], dv = v->shape[2];
  if (BH == 0) return TT_OK;
  float *gqs = gq ? tt_cuda_ptr<float>(gq) : nullptr, *gks = gk ? tt_cuda_ptr<float>(gk) : nullptr;
  float *gvs = gv ? tt_cuda_ptr<float>(gv) : nullptr;
  cudaStream_t st = tt_cuda_stream();
  if (Tq == 0 || Tk == 0) { /* no query or no key: every gradient is an empty sum */
    if (gqs) TT_CUDA_TRY(cudaMemsetAsync(gqs, 0, sizeof(float) * (size_t)(BH * Tq * d), st), K);
    if (gks) TT_CUDA_TRY(cudaMemsetAsync(gks, 0, sizeof(float) * (size_t)(BH * Tk * d), st), K);
    if (gvs) TT_CUDA_TRY(cudaMemsetAsync(gvs, 0, sizeof(float) * (size_t)(BH * Tk * dv), st), K);
    return TT_OK;
  }
  const float *qs = tt_cuda_ptr<float>(q), *ks = tt_cuda_ptr<float>(k), *vs = tt_cuda_ptr<float>(v);
  const float *ps = tt_cuda_ptr<float>(probs), *gos = tt_cuda_ptr<float>(gout);
  int64_t hc, rc;
  chunking(BH, Tq, Tk, &hc, &rc);
  tt_cuda_buf scratch;
  if (gqs || gks) TT_TRY(scratch.alloc(sizeof(float) * (size_t)(hc * rc * Tk), K));
  float *G = scratch.as<float>();
  for (int64_t h0 = 0; h0 < BH; h0 += hc) {
    int64_t nh = BH - h0 < hc ? BH - h0 : hc;
    for (int64_t r0 = 0; r0 < Tq; r0 += rc) {
      int64_t nr = Tq - r0 < rc ? Tq - r0 : rc;
      float acc = r0 > 0 ? 1.0f : 0.0f; /* gK, gV: later row chunks add to the first */
      const float *Pb = ps + h0 * Tq * Tk + r0 * Tk, *gOb = gos + (h0 * Tq + r0) * dv;
      // gV[h] [Tk, dv] (+)= P_blk^T [Tk, nr] gO_blk [nr, dv]
      if (gvs)
        TT_TRY(gemm(true, false, Tk, dv, nr, 1.0f, Pb, Tk, Tq * Tk, gOb, dv, Tq * dv, acc,
                             gvs + h0 * Tk * dv, dv, Tk * dv, nh, K));
      if (!gqs && !gks) continue;
      // G [nh, nr, Tk] = gO_blk [nr, dv] V[h]^T
      TT_TRY(gemm(false, true, nr, Tk, dv, 1.0f, gOb, dv, Tq * dv, vs + h0 * Tk * dv, dv, Tk * dv, 0.0f, G,
                           Tk, nr * Tk, nh, K));
      k_softmax_grad<<<row_blocks(nh * nr), TT_CUDA_THREADS, 0, st>>>(G, Pb, nh, nr, Tk, Tq * Tk);
      TT_TRY(tt_cuda_check_launch(K));
      // gQ[h, r0:r0+nr] [nr, d] = scale G [nr, Tk] K[h] [Tk, d]
      if (gqs)
        TT_TRY(gemm(false, false, nr, d, Tk, p->scale, G, Tk, nr * Tk, ks + h0 * Tk * d, d, Tk * d, 0.0f,
                             gqs + (h0 * Tq + r0) * d, d, Tq * d, nh, K));
      // gK[h] [Tk, d] (+)= scale G^T [Tk, nr] Q_blk [nr, d]
      if (gks)
        TT_TRY(gemm(true, false, Tk, d, nr, p->scale, G, Tk, nr * Tk, qs + (h0 * Tq + r0) * d, d, Tq * d,
                             acc, gks + h0 * Tk * d, d, Tk * d, nh, K));
    }
  }
  return TT_OK;
}

static tt_status cu_attention_fwd(const tt_attention_params *p, const tt_tensor *q, const tt_tensor *k,
                                  const tt_tensor *v, tt_tensor *out, tt_tensor *probs) {
  return attention_fwd(tt_cuda_sgemm, "attention_fwd", p, q, k, v, out, probs);
}

static tt_status cu_attention_bwd(const tt_attention_params *p, const tt_tensor *q, const tt_tensor *k,
                                  const tt_tensor *v, const tt_tensor *probs, const tt_tensor *gout, tt_tensor *gq,
                                  tt_tensor *gk, tt_tensor *gv) {
  return attention_bwd(tt_cuda_sgemm, "attention_bwd", p, q, k, v, probs, gout, gq, gk, gv);
}

static tt_status cu_attention_fwd_bf16(const tt_attention_params *p, const tt_tensor *q, const tt_tensor *k,
                                       const tt_tensor *v, tt_tensor *out, tt_tensor *probs) {
  return attention_fwd(tt_cuda_gemm_bf16, "attention_fwd_bf16", p, q, k, v, out, probs);
}

static tt_status cu_attention_bwd_bf16(const tt_attention_params *p, const tt_tensor *q, const tt_tensor *k,
                                       const tt_tensor *v, const tt_tensor *probs, const tt_tensor *gout,
                                       tt_tensor *gq, tt_tensor *gk, tt_tensor *gv) {
  return attention_bwd(tt_cuda_gemm_bf16, "attention_bwd_bf16", p, q, k, v, probs, gout, gq, gk, gv);
}

tt_status tt_cuda_register_attention(tt_backend *b) {
  TT_REGISTER_KERNEL(b, attention_fwd, cu_attention_fwd);
  TT_REGISTER_KERNEL(b, attention_bwd, cu_attention_bwd);
  TT_REGISTER_KERNEL(b, attention_fwd_bf16, cu_attention_fwd_bf16);
  TT_REGISTER_KERNEL(b, attention_bwd_bf16, cu_attention_bwd_bf16);
  return TT_OK;
}

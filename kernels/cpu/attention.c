/* attention.c — CPU kernels of scaled dot-product attention with the minGPT
 * mask (causal, q_offset for a KV cache, the n_unmasked block), forward and
 * backward, as OpenBLAS GEMMs per (batch*head) and row block.
 *
 * The mask leaves every query row a visible *prefix* of the keys: query t at
 * absolute position i = q_offset + t sees keys [0, L(i)) with
 * L(i) = min(Tk, max(i + 1, n_unmasked if i < n_unmasked)), nondecreasing in i.
 * So no -inf is ever written: a block of query rows [r0, r1) only computes
 * scores against keys [0, L(r1 - 1)) (which skips most of the masked upper
 * triangle), the softmax of row t runs over its first L(t) scores, and the
 * rest of the row is set to 0.
 *
 * Threads: every GEMM runs single-threaded inside an OpenMP team (the pthreads
 * OpenBLAS otherwise spins its own pool against OpenMP's — measured 2-3x
 * slower on 2 cores). With at least as many heads as threads, heads run in
 * parallel; with fewer heads (the VQGAN's single-head block) the forward
 * splits each head's query rows over the threads, and the backward, which
 * accumulates gK and gV over those rows, runs the heads in turn. Without saved
 * probabilities the scores live in a per-thread scratch of one row block,
 * never [BH, Tq, Tk]. The _bf16 kernels (mixed precision) run every GEMM with
 * bf16 operands and f32 sums (gemm_bf16.c); softmax stays f32. */
#include "config.h"
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cpu.h"
#include "softmax_row.h"
#ifdef _OPENMP
#include <omp.h>
#endif


/* Scratch budget of one thread's score block, in floats (16 MiB). Blocks are
 * not made smaller: every block re-packs all of K and V inside the GEMMs, which
 * for the VQGAN's 2688 tokens x 512 channels costs more than the cache gains. */
#define ATTN_BLOCK_FLOATS (1 << 22)
/* Causal row blocks stay short so the masked triangle is mostly skipped. */
#define ATTN_CAUSAL_ROWS 64

typedef struct {
  const tt_attention_params *p;
  int64_t BH, Tq, Tk, d, dv;
  int64_t rows;            /* query rows per block */
  bool bf16;               /* GEMMs with bf16 operands (mixed precision) */
} attn_dims;

/* One GEMM on this thread: f32, or bf16 operands with f32 sums (mixed precision). */
static inline void attn_gemm(const attn_dims *a, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha,
                             const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                             int64_t ldc) {
  if (a->bf16) tt_cpu_gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else tt_cpu_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* Number of keys query row t sees. */
static inline int64_t visible(const attn_dims *a, int64_t t) {
  if (!a->p->causal) return a->Tk;
  int64_t i = a->p->q_offset + t, L = i + 1;
  if (i < a->p->n_unmasked && a->p->n_unmasked > L) L = a->p->n_unmasked;
  return L < a->Tk ? L : a->Tk;
}

static int64_t block_rows(const attn_dims *a, bool scratch_bound) {
  int64_t r = a->Tq;
  if (scratch_bound) {
    int64_t fit = ATTN_BLOCK_FLOATS / (a->Tk > 0 ? a->Tk : 1);
    if (fit < 16) fit = 16;
    if (fit < r) {
      int64_t nblocks = (a->Tq + fit - 1) / fit;   /* balanced: no thin last block */
      r = (a->Tq + nblocks - 1) / nblocks;
    }
  }
  if (a->p->causal && r > ATTN_CAUSAL_ROWS) r = ATTN_CAUSAL_ROWS;
  return r > 0 ? r : 1;
}

/* Heads in parallel when they split evenly enough over the threads. */
static bool heads_parallel(int64_t BH, int nt) {
  return nt > 1 && BH >= nt && (BH % nt == 0 || BH >= 3 * (int64_t)nt);
}

/* Query rows [lo, hi) of one head, block by block. q [Tq, d], k [Tk, d],
 * v [Tk, dv] -> o [Tq, dv]; P [Tq, Tk] when probs are kept, else work is one
 * block of rows x Tk. */
static void head_fwd(const attn_dims *a, const float *q, const float *k, const float *v, float *o, float *P,
                     float *work, int64_t lo, int64_t hi) {
  int64_t Tk = a->Tk;
  for (int64_t r0 = lo; r0 < hi; r0 += a->rows) {
    int64_t r1 = r0 + a->rows < hi ? r0 + a->rows : hi, rows = r1 - r0;
    int64_t Lmax = visible(a, r1 - 1);
    float *S = P ? P + r0 * Tk : work;   /* [rows, Tk], only [rows, Lmax) used */
    /* S = scale * Q_blk K[0:Lmax]^T */
    attn_gemm(a, false, true, rows, Lmax, a->d, a->p->scale, q + r0 * a->d, a->d, k, a->d, 0.0f, S, Tk);
    for (int64_t t = r0; t < r1; t++) {
      float *row = S + (t - r0) * Tk;
      int64_t L = visible(a, t), end = P ? Tk : Lmax;
      tt_cpu_softmax_row(row, row, L, false);
      if (end > L) memset(row + L, 0, sizeof(float) * (size_t)(end - L));
    }
    /* O_blk = P_blk[:, 0:Lmax] V[0:Lmax] */
    attn_gemm(a, false, false, rows, a->dv, Lmax, 1.0f, S, Tk, v, a->dv, 0.0f, o + r0 * a->dv, a->dv);
  }
}

/* q [BH, Tq, d], k [BH, Tk, d], v [BH, Tk, dv] -> out [BH, Tq, dv]; probs [BH, Tq, Tk] or NULL */
static tt_status attention_fwd(bool bf16, const tt_attention_params *p, const tt_tensor *q, const tt_tensor *k,
                               const tt_tensor *v, tt_tensor *out, tt_tensor *probs) {
  if (q->ndim != 3 || k->ndim != 3 || v->ndim != 3 || out->ndim != 3)
    return tt_error(TT_ERR_INVALID, "attention_fwd: the cpu kernel takes [BH, T, d] tensors");
  attn_dims a = {p, q->shape[0], q->shape[1], k->shape[1], q->shape[2], v->shape[2], 0, bf16};
  if (a.BH == 0 || a.Tq == 0) return TT_OK;
  a.rows = block_rows(&a, probs == NULL);
  int nt = tt_cpu_max_threads();
  bool par = heads_parallel(a.BH, nt);
  /* few heads: the threads share each head's query rows, a block or more each */
  if (!par && nt > 1 && a.rows > (a.Tq + nt - 1) / nt) a.rows = (a.Tq + nt - 1) / nt;
  int nwork = probs ? 0 : nt;
  float *work = NULL;
  if (nwork) {
    work = malloc(sizeof(float) * (size_t)nwork * (size_t)a.rows * (size_t)(a.Tk > 0 ? a.Tk : 1));
    if (!work)
      return tt_error(TT_ERR_NOMEM, "attention_fwd: out of memory for %d score blocks of %lld x %lld", nwork,
                      (long long)a.rows, (long long)a.Tk);
  }
  const float *qs = tt_f32(q), *ks = tt_f32(k), *vs = tt_f32(v);
  float *os = tt_f32(out), *ps = probs ? tt_f32(probs) : NULL;
  int64_t wsize = a.rows * a.Tk;
#define HEAD_FWD(h, lo, hi)                                                                                 \
  head_fwd(&a, qs + (h) * q->stride[0], ks + (h) * k->stride[0], vs + (h) * v->stride[0], os + (h) * out->stride[0], \
           ps ? ps + (h) * a.Tq * a.Tk : NULL, work ? work + tt_cpu_thread_id() * wsize : NULL, (lo), (hi))
  int prev = tt_cpu_blas_serial_begin();
  if (par) {
#pragma omp parallel for schedule(static)
    for (int64_t h = 0; h < a.BH; h++) HEAD_FWD(h, 0, a.Tq);
  } else {
    int64_t nblocks = (a.Tq + a.rows - 1) / a.rows;
    for (int64_t h = 0; h < a.BH; h++) {
#pragma omp parallel for schedule(dynamic, 1)
      for (int64_t blk = 0; blk < nblocks; blk++) {
        int64_t r0 = blk * a.rows;
        HEAD_FWD(h, r0, r0 + a.rows < a.Tq ? r0 + a.rows : a.Tq);
      }
    }
  }
  tt_cpu_blas_serial_end(prev);
#undef HEAD_FWD
  free(work);
  return TT_OK;
}

/* One head's backward from its probabilities P [Tq, Tk] (zero where masked):
 *   gV = P^T gO,  gP = gO V^T,  gS = P * (gP - rowsum(gP * P)),
 *   gQ = scale gS K,  gK = scale gS^T Q
 * block by block of query rows, each block touching keys [0, Lmax) only.
 * Masked entries need no care: P is 0 there, so gS is too. */
static void head_bwd(const attn_dims *a, const float *q, const float *k, const float *v, const float *P,
                     const float *go, float *gq, float *gk, float *gv, float *work) {
  int64_t Tk = a->Tk, d = a->d, dv = a->dv;
  float scale = a->p->scale;
  if (gk) memset(gk, 0, sizeof(float) * (size_t)(Tk * d));
  if (gv) memset(gv, 0, sizeof(float) * (size_t)(Tk * dv));
  for (int64_t r0 = 0; r0 < a->Tq; r0 += a->rows) {
    int64_t r1 = r0 + a->rows < a->Tq ? r0 + a->rows : a->Tq, rows = r1 - r0;
    int64_t Lmax = visible(a, r1 - 1);
    const float *Pb = P + r0 * Tk;
    /* gV[0:Lmax] += P_blk^T gO_blk */
    if (gv) attn_gemm(a, true, false, Lmax, dv, rows, 1.0f, Pb, Tk, go + r0 * dv, dv, 1.0f, gv, dv);
    if (!gq && !gk) continue;
    /* G = gO_blk V[0:Lmax]^T, then G <- P * (G - rowsum(G * P)) */
    attn_gemm(a, false, true, rows, Lmax, dv, 1.0f, go + r0 * dv, dv, v, dv, 0.0f, work, Tk);
    for (int64_t t = 0; t < rows; t++) {
      float *g = work + t * Tk;
      const float *pr = Pb + t * Tk;
      double acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t s = 0; s < Lmax; s++) acc += (double)g[s] * pr[s];
      float dot = (float)acc;
#pragma omp simd
      for (int64_t s = 0; s < Lmax; s++) g[s] = pr[s] * (g[s] - dot);
    }
    /* gQ_blk = scale G K[0:Lmax];  gK[0:Lmax] += scale G^T Q_blk */
    if (gq) attn_gemm(a, false, false, rows, d, Lmax, scale, work, Tk, k, d, 0.0f, gq + r0 * d, d);
    if (gk) attn_gemm(a, true, false, Lmax, d, rows, scale, work, Tk, q + r0 * d, d, 1.0f, gk, d);
  }
}

static tt_status attention_bwd(bool bf16, const tt_attention_params *p, const tt_tensor *q, const tt_tensor *k,
                               const tt_tensor *v, const tt_tensor *probs, const tt_tensor *gout, tt_tensor *gq,
                               tt_tensor *gk, tt_tensor *gv) {
  if (q->ndim != 3 || k->ndim != 3 || v->ndim != 3 || probs->ndim != 3 || gout->ndim != 3)
    return tt_error(TT_ERR_INVALID, "attention_bwd: the cpu kernel takes [BH, T, d] tensors");
  attn_dims a = {p, q->shape[0], q->shape[1], k->shape[1], q->shape[2], v->shape[2], 0, bf16};
  if (a.BH == 0) return TT_OK;
  a.rows = block_rows(&a, true);
  int nt = tt_cpu_max_threads();
  bool par = heads_parallel(a.BH, nt);
  int nwork = (gq || gk) ? (par ? nt : 1) : 0;
  float *work = NULL;
  if (nwork) {
    work = malloc(sizeof(float) * (size_t)nwork * (size_t)a.rows * (size_t)(a.Tk > 0 ? a.Tk : 1));
    if (!work)
      return tt_error(TT_ERR_NOMEM, "attention_bwd: out of memory for %d score blocks of %lld x %lld", nwork,
                      (long long)a.rows, (long long)a.Tk);
  }
  const float *qs = tt_f32(q), *ks = tt_f32(k), *vs = tt_f32(v), *ps = tt_f32(probs), *gos = tt_f32(gout);
  float *gqs = gq ? tt_f32(gq) : NULL, *gks = gk ? tt_f32(gk) : NULL, *gvs = gv ? tt_f32(gv) : NULL;
  int64_t wsize = a.rows * a.Tk;
#define HEAD_BWD(h, w)                                                                                      \
  head_bwd(&a, qs + (h) * a.Tq * a.d, ks + (h) * a.Tk * a.d, vs + (h) * a.Tk * a.dv, ps + (h) * a.Tq * a.Tk, \
           gos + (h) * a.Tq * a.dv, gqs ? gqs + (h) * a.Tq * a.d : NULL, gks ? gks + (h) * a.Tk * a.d : NULL,   \
           gvs ? gvs + (h) * a.Tk * a.dv : NULL, (w))
  if (par) {
    int prev = tt_cpu_blas_serial_begin();
#pragma omp parallel for schedule(static)
    for (int64_t h = 0; h < a.BH; h++) HEAD_BWD(h, work ? work + tt_cpu_thread_id() * wsize : NULL);
    tt_cpu_blas_serial_end(prev);
  } else {
    for (int64_t h = 0; h < a.BH; h++) HEAD_BWD(h, work);
  }
#undef HEAD_BWD
  free(work);
  return TT_OK;
}

static tt_status cpu_attention_fwd(const tt_attention_params *p, const tt_tensor *q, const tt_tensor *k,
                                   const tt_tensor *v, tt_tensor *out, tt_tensor *probs) {
  return attention_fwd(false, p, q, k, v, out, probs);
}

static tt_status cpu_attention_bwd(const tt_attention_params *p, const tt_tensor *q, const tt_tensor *k,
                                   const tt_tensor *v, const tt_tensor *probs, const tt_tensor *gout, tt_tensor *gq,
                                   tt_tensor *gk, tt_tensor *gv) {
  return attention_bwd(false, p, q, k, v, probs, gout, gq, gk, gv);
}

static tt_status cpu_attention_fwd_bf16(const tt_attention_params *p, const tt_tensor *q, const tt_tensor *k,
                                        const tt_tensor *v, tt_tensor *out, tt_tensor *probs) {
  return attention_fwd(true, p, q, k, v, out, probs);
}

static tt_status cpu_attention_bwd_bf16(const tt_attention_params *p, const tt_tensor *q, const tt_tensor *k,
                                        const tt_tensor *v, const tt_tensor *probs, const tt_tensor *gout,
                                        tt_tensor *gq, tt_tensor *gk, tt_tensor *gv) {
  return attention_bwd(true, p, q, k, v, probs, gout, gq, gk, gv);
}

tt_status tt_cpu_register_attention(tt_backend *b) {
  TT_REGISTER_KERNEL(b, attention_fwd, cpu_attention_fwd);
  TT_REGISTER_KERNEL(b, attention_bwd, cpu_attention_bwd);
  TT_REGISTER_KERNEL(b, attention_fwd_bf16, cpu_attention_fwd_bf16);
  TT_REGISTER_KERNEL(b, attention_bwd_bf16, cpu_attention_bwd_bf16);
  return TT_OK;
}

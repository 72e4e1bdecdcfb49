/* conv_bf16.cu — the CUDA kernel of convolutions with bf16 weights for
 * inference (taming/ops/conv_lowp.h: conv2d_bf16, its cache and its ISA query),
 * the twin of kernels/cpu/conv_dnnl.c: the VQGAN's convolutions under
 * precision=bf16 on a GPU.
 *
 * The weights arrive packed: tt_conv2d_pack rounded them to bf16 on the device
 * (nearest even). Activations stay f32 NCHW between ops, as on the CPU.
 *
 * cuDNN (the usual path). Tensor cores read bf16 channels-last, so per call
 *   x f32 NCHW [nb, Ci, H, W] -> bf16 NHWC [nb, He, We, Ci] (rounded, with the
 *      explicit part of an asymmetric padding as zeros: see conv_geom.cuh;
 *      a tiled transpose, as is the way back),
 *   cudnnConvolutionForward, bf16 in and out, f32 compute type (cuDNN's
 *      PSEUDO_BFLOAT16 configuration: products and sums in f32),
 *   y bf16 NHWC [nb, Ho, Wo, Co] -> f32 NCHW [nb, Co, Ho, Wo] + bias.
 * The weights are reordered to NHWC [Co, kh, kw, Ci] once, on the first call,
 * and kept in the pack's cache with the cuDNN plans (descriptors and algorithm
 * candidates) of the last few input shapes. cuDNN's legacy API offers no bf16
 * convolution with an f32 output, so unlike the CPU kernel the sums are rounded
 * to bf16 once more before they become f32 again (a relative 2^-9 at most).
 * Candidates come from cuDNN's heuristics (cudnnGetConvolutionForwardAlgorithm_v7)
 * and, as in conv.cu, only those that form the direct sum (implicit GEMM,
 * GEMM, direct: no FFT, no Winograd); each call tries them in order until one
 * runs, starting with the one that ran last.
 *
 * cuBLAS (no cuDNN, TAMING_CUDA_CONV=gemm, or a geometry cuDNN refuses): im2col
 * into bf16 columns [nb, Ci*kh*kw, Ho*Wo] and one strided-batched cublasGemmEx
 * per chunk of images, bf16 x bf16 with f32 accumulation and an f32 output, so
 * this path rounds exactly what the CPU kernel rounds (x and w). */
#include "config.h"
#include <cuda_bf16.h>
#include <vector>
#include "conv_geom.cuh"
#include "taming/ops/conv_lowp.h"

/* Input shapes remembered per packed weight (a VQGAN sees one or two). */
#define BF16_PLANS_MAX 4
/* Workspace beyond this is not worth its memory: the next candidate runs instead. */
#define BF16_WORKSPACE_MAX ((size_t)1 << 30)
/* bf16 column buffer of the cuBLAS path, per chunk of images (at least one image). */
#define BF16_COL_BYTES ((int64_t)256 << 20)

typedef struct {
  int algo;
  cudnnMathType_t math;
  size_t ws;
} candidate;

/* one chunk geometry: the cuDNN descriptors and the algorithms to try */
typedef struct {
  int64_t nb, H, W;
  tt_conv2d_params p;
  cudnnTensorDescriptor_t x, y;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t conv;
  std::vector<candidate> cands;
  size_t next;     /* the candidate that ran last time */
  bool refused;    /* cuDNN ran none: this geometry takes the cuBLAS path */
} plan;

/* the kernel's state for one packed weight (conv_lowp.h's cache) */
typedef struct {
  const void *w;               /* the bf16 weights [Co, Ci, kh, kw] it was made from */
  __nv_bfloat16 *w_nhwc;       /* [Co, kh, kw, Ci], device memory, made on first use of cuDNN */
  plan *plans[BF16_PLANS_MAX];
  int n, next;                 /* plans filled, slot to replace next */
} cache;

static void plan_free(plan *p) {
  if (!p) return;
  if (p->x) tt_dnn.cudnnDestroyTensorDescriptor(p->x);
  if (p->y) tt_dnn.cudnnDestroyTensorDescriptor(p->y);
  if (p->w) tt_dnn.cudnnDestroyFilterDescriptor(p->w);
  if (p->conv) tt_dnn.cudnnDestroyConvolutionDescriptor(p->conv);
  delete p;
}

static void cu_conv2d_bf16_cache_free(void *c) {
  cache *cc = (cache *)c;
  if (!cc) return;
  pthread_mutex_lock(&tt_cuda_conv_lock);
  for (int i = 0; i < cc->n; i++) plan_free(cc->plans[i]);
  pthread_mutex_unlock(&tt_cuda_conv_lock);
  if (cc->w_nhwc) tt_cuda_pool_free(cc->w_nhwc); /* queued work that reads it runs first (one stream) */
  delete cc;
}

/* ---- layout and precision conversions ---- */

/* The NCHW <-> NHWC conversions are transposes of each image's [C, S] matrix
 * (S = H*W) through a 32 x 32 tile in shared memory, so that both the reads
 * and the writes of a warp are consecutive. Block TILE x TILE_ROWS threads,
 * grid (S tiles, C tiles, images: a grid-stride loop past 65535). */
#define TILE 32
#define TILE_ROWS 8

static dim3 tile_grid(int64_t S, int64_t C, int64_t nb) {
  return dim3((unsigned)((S + TILE - 1) / TILE), (unsigned)((C + TILE - 1) / TILE),
              (unsigned)(nb < 65535 ? nb : 65535));
}

// x f32 [nb, C, H, W] -> xp bf16 [nb, He, We, C] at (et, el) (the border is zeroed by the caller)
__global__ void k_x_to_nhwc_bf16(const float *x, __nv_bfloat16 *xp, int64_t nb, int64_t C, int64_t H, int64_t W,
                                 int64_t He, int64_t We, int et, int el) {
  __shared__ float tile[TILE][TILE + 1];
  int64_t S = H * W, s0 = (int64_t)blockIdx.x * TILE, c0 = (int64_t)blockIdx.y * TILE;
  for (int64_t b = blockIdx.z; b < nb; b += gridDim.z) {
    for (int r = threadIdx.y; r < TILE; r += TILE_ROWS) { /* read: channel c0 + r, pixels s0 + tx */
      int64_t c = c0 + r, s = s0 + threadIdx.x;
      tile[r][threadIdx.x] = c < C && s < S ? x[(b * C + c) * S + s] : 0.0f;
    }
    __syncthreads();
    for (int r = threadIdx.y; r < TILE; r += TILE_ROWS) { /* write: pixel s0 + r, channels c0 + tx */
      int64_t c = c0 + threadIdx.x, s = s0 + r;
      if (c < C && s < S) {
        int64_t iy = s / W, ix = s % W;
        xp[((b * He + iy + et) * We + ix + el) * C + c] = __float2bfloat16_rn(tile[threadIdx.x][r]);
      }
    }
    __syncthreads();
  }
}

// w bf16 [Co, Ci, kh, kw] -> wn [Co, kh, kw, Ci]
__global__ void k_w_to_nhwc(const __nv_bfloat16 *w, __nv_bfloat16 *wn, int64_t Co, int64_t Ci, int64_t kh,
                            int64_t kw) {
  TT_CUDA_LOOP(i, Co * kh * kw * Ci) {
    int64_t ci = i % Ci, r = i / Ci, x = r % kw, r2 = r / kw, y = r2 % kh, co = r2 / kh;
    wn[i] = w[((co * Ci + ci) * kh + y) * kw + x];
  }
}

// yn bf16 [nb, S, C] -> y f32 [nb, C, S] (+ bias [C])
__global__ void k_y_from_nhwc(const __nv_bfloat16 *yn, float *y, const float *bias, int64_t nb, int64_t C,
                              int64_t S) {
  __shared__ float tile[TILE][TILE + 1];
  int64_t s0 = (int64_t)blockIdx.x * TILE, c0 = (int64_t)blockIdx.y * TILE;
  for (int64_t b = blockIdx.z; b < nb; b += gridDim.z) {
    for (int r = threadIdx.y; r < TILE; r += TILE_ROWS) { /* read: pixel s0 + r, channels c0 + tx */
      int64_t c = c0 + threadIdx.x, s = s0 + r;
      tile[r][threadIdx.x] = c < C && s < S ? __bfloat162float(yn[(b * S + s) * C + c]) : 0.0f;
    }
    __syncthreads();
    for (int r = threadIdx.y; r < TILE; r += TILE_ROWS) { /* write: channel c0 + r, pixels s0 + tx */
      int64_t c = c0 + r, s = s0 + threadIdx.x;
      if (c < C && s < S) y[(b * C + c) * S + s] = tile[threadIdx.x][r] + (bias ? bias[c] : 0.0f);
    }
    __syncthreads();
  }
}

// x f32 [nb, Ci, H, W] -> col bf16 [nb, Ci*kh*kw, Ho*Wo]; row k = (ci, ky, kx), zeros where the window leaves x
__global__ void k_im2col_bf16(const float *x, __nv_bfloat16 *col, tt_conv_geom g, int64_t nb, int pt, int pl) {
  int64_t HoWo = g.Ho * g.Wo, K = g.Ci * g.kh * g.kw;
  TT_CUDA_LOOP(t, nb * K * HoWo) {
    int64_t p = t % HoWo, r = t / HoWo, k = r % K, b = r / K;
    int64_t ox = p % g.Wo, oy = p / g.Wo, kx = k % g.kw, ky = (k / g.kw) % g.kh, ci = k / (g.kh * g.kw);
    int64_t iy = oy * g.sh - pt + ky, ix = ox * g.sw - pl + kx;
    float v = (iy >= 0 && iy < g.H && ix >= 0 && ix < g.W) ? x[((b * g.Ci + ci) * g.H + iy) * g.W + ix] : 0.0f;
    col[t] = __float2bfloat16_rn(v);
  }
}

// y [nb, C, S] += bias [C]
__global__ void k_bias_bf16_path(float *y, const float *bias, int64_t nb, int64_t C, int64_t S) {
  TT_CUDA_LOOP(i, nb * C * S) y[i] += bias[(i / S) % C];
}

/* ---- the cuBLAS path ---- */

// y [B, Co, Ho*Wo] = w [Co, K] col_b [K, Ho*Wo] per image (+ bias), f32 sums and output
static tt_status gemm_path(const tt_conv_geom *g, int64_t b0, int64_t nb_all, const float *x, const void *w,
                           const float *bias, float *y) {
  const char *what = "conv2d_bf16 (cuBLAS)";
  int64_t K = g->Ci * g->kh * g->kw, HoWo = g->Ho * g->Wo;
  int64_t per = K * HoWo * (int64_t)sizeof(__nv_bfloat16), chunk = per > 0 ? BF16_COL_BYTES / per : nb_all;
  if (chunk < 1) chunk = 1;
  if (chunk > nb_all) chunk = nb_all;
  tt_cuda_buf col;
  TT_TRY(col.alloc((size_t)(chunk * per), what));
  cudaStream_t st = tt_cuda_stream();
  const float one = 1.0f, zero = 0.0f;
  for (int64_t c0 = b0; c0 < b0 + nb_all; c0 += chunk) {
    int64_t nb = b0 + nb_all - c0 < chunk ? b0 + nb_all - c0 : chunk, n = nb * K * HoWo;
    k_im2col_bf16<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, st>>>(x + c0 * g->Ci * g->H * g->W,
                                                               col.as<__nv_bfloat16>(), *g, nb, g->ph + g->et,
                                                               g->pw + g->el);
    TT_TRY(tt_cuda_check_launch("conv2d_bf16 (im2col)"));
    float *yc = y + c0 * g->Co * HoWo;
    /* row-major y_b [Co, HoWo] = w [Co, K] col_b [K, HoWo] is column-major y_b^T = col_b^T w^T */
    TT_CUBLAS_TRY(cublasGemmStridedBatchedEx_64(tt_cuda_blas(), CUBLAS_OP_N, CUBLAS_OP_N, HoWo, g->Co, K, &one,
                                                col.p, CUDA_R_16BF, HoWo, K * HoWo, w, CUDA_R_16BF, K, 0, &zero, yc,
                                                CUDA_R_32F, HoWo, g->Co * HoWo, nb, CUBLAS_COMPUTE_32F,
                                                CUBLAS_GEMM_DEFAULT),
                  what);
    TT_TRY(tt_cuda_check_launch(what));
    if (bias) {
      int64_t m = nb * g->Co * HoWo;
      k_bias_bf16_path<<<tt_cuda_grid(m), TT_CUDA_THREADS, 0, st>>>(yc, bias, nb, g->Co, HoWo);
      TT_TRY(tt_cuda_check_launch("conv2d_bf16 (bias)"));
    }
  }
  return TT_OK;
}

/* ---- the cuDNN path ---- */

static bool same_params(const tt_conv2d_params *a, const tt_conv2d_params *b) {
  return a->stride_h == b->stride_h && a->stride_w == b->stride_w && a->pad_top == b->pad_top &&
         a->pad_bottom == b->pad_bottom && a->pad_left == b->pad_left && a->pad_right == b->pad_right;
}

/* Implicit GEMM, GEMM and direct: the direct sum of products (see conv.cu's algo_exact). */
static bool algo_direct_sum(int algo) {
  return algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
         algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
}

static void add_candidate(plan *p, int algo, cudnnMathType_t math) {
  /* bf16 operands: tensor-op math changes nothing but the speed; a conversion to
   * another type (ALLOW_CONVERSION) is not wanted */
  if (!algo_direct_sum(algo) || math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return;
  for (const candidate &c : p->cands)
    if (c.algo == algo && c.math == math) return;
  size_t ws = 0;
  if (tt_dnn.cudnnSetConvolutionMathType(p->conv, math) != CUDNN_STATUS_SUCCESS) return;
  cudnnStatus_t e = tt_dnn.cudnnGetConvolutionForwardWorkspaceSize(tt_cuda_dnn(), p->x, p->w, p->conv, p->y,
                                                                  (cudnnConvolutionFwdAlgo_t)algo, &ws);
  if (e == CUDNN_STATUS_SUCCESS && ws <= BF16_WORKSPACE_MAX) p->cands.push_back({algo, math, ws});
}

#define HEURISTIC_MAX 16

/* The plan of one chunk geometry: descriptors, then the candidates in the order
 * cuDNN's heuristics rank them, then the fallbacks. A plan whose descriptors
 * cuDNN does not support, or with no candidate, is marked refused (the cuBLAS
 * path runs it); NULL + error on any other cuDNN error. */
static plan *plan_make(const tt_conv_geom *g, int64_t nb, const tt_conv2d_params *pp) {
  plan *p = new plan();
  p->nb = nb;
  p->H = g->H;
  p->W = g->W;
  p->p = *pp;
  cudnnStatus_t e = tt_dnn.cudnnCreateTensorDescriptor(&p->x);
  if (e == CUDNN_STATUS_SUCCESS) e = tt_dnn.cudnnCreateTensorDescriptor(&p->y);
  if (e == CUDNN_STATUS_SUCCESS) e = tt_dnn.cudnnCreateFilterDescriptor(&p->w);
  if (e == CUDNN_STATUS_SUCCESS) e = tt_dnn.cudnnCreateConvolutionDescriptor(&p->conv);
  if (e == CUDNN_STATUS_SUCCESS)
    e = tt_dnn.cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_BFLOAT16, (int)nb, (int)g->Ci,
                                          (int)g->He, (int)g->We);
  if (e == CUDNN_STATUS_SUCCESS)
    e = tt_dnn.cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_BFLOAT16, (int)nb, (int)g->Co,
                                          (int)g->Ho, (int)g->Wo);
  if (e == CUDNN_STATUS_SUCCESS)
    e = tt_dnn.cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_BFLOAT16, CUDNN_TENSOR_NHWC, (int)g->Co, (int)g->Ci,
                                          (int)g->kh, (int)g->kw);
  if (e == CUDNN_STATUS_SUCCESS)
    e = tt_dnn.cudnnSetConvolution2dDescriptor(p->conv, g->ph, g->pw, g->sh, g->sw, 1, 1, CUDNN_CROSS_CORRELATION,
                                               CUDNN_DATA_FLOAT);
  int n = 0, c = 0, h = 0, w = 0;
  if (e == CUDNN_STATUS_SUCCESS) e = tt_dnn.cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &c, &h, &w);
  if (e == CUDNN_STATUS_NOT_SUPPORTED || e == CUDNN_STATUS_BAD_PARAM) { /* no bf16 for this geometry: cuBLAS */
    p->refused = true;
    return p;
  }
  if (e != CUDNN_STATUS_SUCCESS) {
    plan_free(p);
    tt_cudnn_error(e, "conv2d_bf16 (cuDNN descriptors)");
    return NULL;
  }
  if (n != nb || c != g->Co || h != g->Ho || w != g->Wo) {
    plan_free(p);
    tt_error(TT_ERR_INTERNAL, "conv2d_bf16: cuDNN's output %dx%dx%dx%d differs from [%lld, %lld, %lld, %lld]", n, c,
             h, w, (long long)nb, (long long)g->Co, (long long)g->Ho, (long long)g->Wo);
    return NULL;
  }
  cudnnConvolutionFwdAlgoPerf_t perf[HEURISTIC_MAX];
  int got = 0;
  e = tt_dnn.cudnnSetConvolutionMathType(p->conv, CUDNN_TENSOR_OP_MATH);
  if (e == CUDNN_STATUS_SUCCESS)
    e = tt_dnn.cudnnGetConvolutionForwardAlgorithm_v7(tt_cuda_dnn(), p->x, p->w, p->conv, p->y, HEURISTIC_MAX, &got,
                                                      perf);
  for (int i = 0; e == CUDNN_STATUS_SUCCESS && i < got; i++)
    if (perf[i].status == CUDNN_STATUS_SUCCESS) add_candidate(p, perf[i].algo, perf[i].mathType);
  static const int fallback[] = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                 CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM};
  for (int a : fallback) {
    add_candidate(p, a, CUDNN_TENSOR_OP_MATH);
    add_candidate(p, a, CUDNN_DEFAULT_MATH);
  }
  p->refused = p->cands.empty();
  return p;
}

/* The plan for (nb, x's shape, params) from the cache, made when missing (the
 * oldest of a full cache is replaced). */
static plan *plan_get(cache *cc, const tt_conv_geom *g, int64_t nb, const tt_conv2d_params *pp) {
  for (int i = 0; i < cc->n; i++) {
    plan *p = cc->plans[i];
    if (p->nb == nb && p->H == g->H && p->W == g->W && same_params(&p->p, pp)) return p;
  }
  plan *p = plan_make(g, nb, pp);
  if (!p) return NULL;
  if (cc->n < BF16_PLANS_MAX) {
    cc->plans[cc->n++] = p;
  } else {
    plan_free(cc->plans[cc->next]);
    cc->plans[cc->next] = p;
    cc->next = (cc->next + 1) % BF16_PLANS_MAX;
  }
  return p;
}

/* Runs the plan's candidates from the last good one; TT_OK, or *refused when
 * cuDNN ran none for want of support (the caller takes the cuBLAS path). */
static tt_status dnn_run(plan *p, const void *xin, const void *w, void *yout, bool *refused) {
  const char *what = "conv2d_bf16 (cuDNN)";
  const float one = 1.0f, zero = 0.0f;
  cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
  *refused = false;
  for (size_t k = 0; k < p->cands.size(); k++) {
    size_t at = (p->next + k) % p->cands.size();
    const candidate &c = p->cands[at];
    tt_cuda_buf ws;
    if (c.ws && ws.alloc(c.ws, what) != TT_OK) {
      tt_error_clear();
      continue;
    }
    cudnnStatus_t e = tt_dnn.cudnnSetConvolutionMathType(p->conv, c.math);
    if (e == CUDNN_STATUS_SUCCESS)
      e = tt_dnn.cudnnConvolutionForward(tt_cuda_dnn(), &one, p->x, xin, p->w, w, p->conv,
                                         (cudnnConvolutionFwdAlgo_t)c.algo, ws.p, c.ws, &zero, p->y, yout);
    if (e == CUDNN_STATUS_SUCCESS) {
      p->next = at;
      return tt_cuda_check_launch(what);
    }
    last = e;
    if (e != CUDNN_STATUS_NOT_SUPPORTED && e != CUDNN_STATUS_BAD_PARAM && e != CUDNN_STATUS_ALLOC_FAILED) break;
  }
  if (last == CUDNN_STATUS_NOT_SUPPORTED || last == CUDNN_STATUS_BAD_PARAM || last == CUDNN_STATUS_ALLOC_FAILED) {
    p->refused = last != CUDNN_STATUS_ALLOC_FAILED; /* out of memory may pass; a refusal will not */
    *refused = true;
    return TT_OK;
  }
  return tt_cudnn_error(last, what);
}

/* images [b0, b0 + nb) through cuDNN (or, where it refuses the geometry, cuBLAS) */
static tt_status dnn_chunk(cache *cc, const tt_conv_geom *g, const tt_conv2d_params *pp, int64_t b0, int64_t nb,
                           const float *x, const void *w, const float *bias, float *y) {
  /* the transposes' grid holds at most 65535 tiles of 32 channels */
  if ((g->Ci + TILE - 1) / TILE > 65535 || (g->Co + TILE - 1) / TILE > 65535)
    return gemm_path(g, b0, nb, x, w, bias, y);
  plan *p = plan_get(cc, g, nb, pp);
  if (!p) return tt_last_status();
  if (p->refused) return gemm_path(g, b0, nb, x, w, bias, y);
  cudaStream_t st = tt_cuda_stream();
  if (!cc->w_nhwc) {
    int64_t wn = g->Co * g->Ci * g->kh * g->kw;
    cc->w_nhwc = (__nv_bfloat16 *)tt_cuda_pool_alloc(sizeof(__nv_bfloat16) * (size_t)wn);
    if (!cc->w_nhwc)
      return tt_error(TT_ERR_NOMEM, "conv2d_bf16: out of GPU memory for the weights in NHWC (%lld values)",
                      (long long)wn);
    k_w_to_nhwc<<<tt_cuda_grid(wn), TT_CUDA_THREADS, 0, st>>>((const __nv_bfloat16 *)w, cc->w_nhwc, g->Co, g->Ci,
                                                              g->kh, g->kw);
    tt_status s = tt_cuda_check_launch("conv2d_bf16 (weights to NHWC)");
    if (s != TT_OK) {
      tt_cuda_pool_free(cc->w_nhwc);
      cc->w_nhwc = NULL;
      return s;
    }
  }
  int64_t nx = nb * g->He * g->We * g->Ci, ny = nb * g->Co * g->Ho * g->Wo;
  tt_cuda_buf xb, yb;
  TT_TRY(xb.alloc(sizeof(__nv_bfloat16) * (size_t)nx, "conv2d_bf16 (bf16 input)"));
  TT_TRY(yb.alloc(sizeof(__nv_bfloat16) * (size_t)ny, "conv2d_bf16 (bf16 output)"));
  if (tt_conv_explicit_pad(g))
    TT_CUDA_TRY(cudaMemsetAsync(xb.p, 0, sizeof(__nv_bfloat16) * (size_t)nx, st), "conv2d_bf16 (padding)");
  k_x_to_nhwc_bf16<<<tile_grid(g->H * g->W, g->Ci, nb), dim3(TILE, TILE_ROWS), 0, st>>>(
      x + b0 * g->Ci * g->H * g->W, xb.as<__nv_bfloat16>(), nb, g->Ci, g->H, g->W, g->He, g->We, g->et, g->el);
  TT_TRY(tt_cuda_check_launch("conv2d_bf16 (input to bf16 NHWC)"));
  bool refused = false;
  TT_TRY(dnn_run(p, xb.p, cc->w_nhwc, yb.p, &refused));
  if (refused) return gemm_path(g, b0, nb, x, w, bias, y);
  k_y_from_nhwc<<<tile_grid(g->Ho * g->Wo, g->Co, nb), dim3(TILE, TILE_ROWS), 0, st>>>(
      yb.as<__nv_bfloat16>(), y + b0 * g->Co * g->Ho * g->Wo, bias, nb, g->Co, g->Ho * g->Wo);
  return tt_cuda_check_launch("conv2d_bf16 (output to f32 NCHW)");
}

// x f32 [B, Ci, H, W], w bf16 [Co, Ci, kh, kw], b f32 [Co] or NULL -> y f32 [B, Co, Ho, Wo]
static tt_status cu_conv2d_bf16(void **cachep, const tt_conv2d_params *pp, const tt_tensor *x, const tt_tensor *w,
                                const tt_tensor *b, tt_tensor *y) {
  if (w->dtype != TT_BF16 || x->dtype != TT_F32 || y->dtype != TT_F32 || (b && b->dtype != TT_F32))
    return tt_error(TT_ERR_INVALID, "conv2d_bf16: expected x f32, w bf16, bias f32, y f32; found %s, %s, %s, %s",
                    tt_dtype_name(x->dtype), tt_dtype_name(w->dtype), b ? tt_dtype_name(b->dtype) : "none",
                    tt_dtype_name(y->dtype));
  tt_conv_geom g = tt_conv_geom_make(pp, x->shape, w->shape);
  int64_t chunk = 1;
  TT_TRY(tt_conv_geom_check("conv2d_bf16", &g, &chunk));
  if (y->shape[0] != g.B || y->shape[1] != g.Co || y->shape[2] != g.Ho || y->shape[3] != g.Wo)
    return tt_error(TT_ERR_INVALID, "conv2d_bf16: output is not [%lld, %lld, %lld, %lld]", (long long)g.B,
                    (long long)g.Co, (long long)g.Ho, (long long)g.Wo);
  const float *xs = tt_cuda_ptr<float>(x), *bs = b ? tt_cuda_ptr<float>(b) : NULL;
  const void *ws = tt_tensor_data(w);
  float *ys = tt_cuda_ptr<float>(y);
  if (!tt_conv_use_cudnn()) return gemm_path(&g, 0, g.B, xs, ws, bs, ys);
  pthread_mutex_lock(&tt_cuda_conv_lock);
  cache *cc = (cache *)*cachep;
  tt_status s = TT_OK;
  if (cc && cc->w != ws) { /* a cache made for other weights: start again */
    pthread_mutex_unlock(&tt_cuda_conv_lock);
    cu_conv2d_bf16_cache_free(cc);
    pthread_mutex_lock(&tt_cuda_conv_lock);
    *cachep = cc = NULL;
  }
  if (!cc) {
    cc = new cache();
    cc->w = ws;
    *cachep = cc;
  }
  for (int64_t b0 = 0; s == TT_OK && b0 < g.B; b0 += chunk)
    s = dnn_chunk(cc, &g, pp, b0, g.B - b0 < chunk ? g.B - b0 : chunk, xs, ws, bs, ys);
  pthread_mutex_unlock(&tt_cuda_conv_lock);
  return s;
}

static const char *cu_conv2d_bf16_isa(void) {
  if (tt_conv_use_cudnn()) return "cudnn-bf16 (NHWC tensor cores, f32 accumulate)";
  return tt_cuda_dnn() ? "cublas-bf16 im2col (TAMING_CUDA_CONV=gemm, f32 accumulate)"
                       : "cublas-bf16 im2col (cuDNN not started, f32 accumulate)";
}

tt_status tt_cuda_register_conv_bf16(tt_backend *b) {
  TT_REGISTER_KERNEL(b, conv2d_bf16, cu_conv2d_bf16);
  TT_REGISTER_KERNEL(b, conv2d_bf16_cache_free, cu_conv2d_bf16_cache_free);
  TT_REGISTER_KERNEL(b, conv2d_bf16_isa, cu_conv2d_bf16_isa);
  return TT_OK;
}

/* conv.cu — CUDA kernels of 2-D convolution (NCHW, f32) through cuDNN:
 * forward, backward to the input, backward to the weight (and the bias).
 *
 * Asymmetric padding. cuDNN pads both sides of a dim equally, so the common
 * part min(top, bottom), min(left, right) is cuDNN's padding and the rest (the
 * official Downsample's extra bottom row and right column) is made explicit:
 * the input is copied into a zero-bordered buffer [B, Ci, H + et + eb, W + el + er]
 * before the forward and the weight gradient, and the backward to the input
 * computes the gradient of that buffer and crops it.
 *
 * Plans. Descriptors and algorithm candidates are made once per geometry and
 * cached. Candidates come from cuDNN's heuristics (cudnnGet*_v7), keeping only
 * algorithms that form the direct sum (no FFT, no Winograd) and running them
 * with FMA math — cuDNN's default math
 * would allow TF32 on Ampere and later — unless TAMING_CUDA_TF32=1. Each call
 * tries the candidates in order until one runs (an algorithm may need more
 * workspace than the pool can give, or refuse the geometry); implicit GEMM,
 * which needs no workspace, is always among them.
 *
 * cuDNN's descriptors take int sizes and strides: large batches run in chunks
 * of images whose tensors stay below 2^31 elements.
 *
 * Without cuDNN (not found or not started: see dnn.cu; or TAMING_CUDA_CONV=gemm) the same three
 * kernels run as im2col + cuBLAS GEMM: col [Ci*kh*kw, Ho*Wo] per image, any
 * padding handled in the gather, and the backward to the input gathers the
 * columns back (col2im as a per-pixel sum, no atomics). */
#include "config.h"
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <map>
#include <vector>
#include "reduce.cuh"
#include "conv_geom.cuh"

/* Column buffers of the GEMM path, per chunk of images (at least one image). */
#define CONV_COL_BYTES ((int64_t)512 << 20)
/* Workspace beyond this is not worth its memory: the next candidate runs instead. */
#define CONV_WORKSPACE_MAX ((size_t)1 << 30)
/* Plans kept before the cache is emptied (shapes of one model are far fewer). */
#define CONV_PLANS_MAX 1024

/* ---- explicit padding ---- */

// x [B, C, H, W] -> xp [B, C, He, We] with x at (et, el) and zeros around it
__global__ void k_pad(const float *x, float *xp, int64_t BC, int64_t H, int64_t W, int64_t He, int64_t We, int et,
                      int el) {
  TT_CUDA_LOOP(i, BC * He * We) {
    int64_t j = i % We, r = i / We, y = r % He, bc = r / He;
    int64_t sy = y - et, sx = j - el;
    xp[i] = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? x[(bc * H + sy) * W + sx] : 0.0f;
  }
}

// gxp [B, C, He, We] -> gx [B, C, H, W], the window at (et, el)
__global__ void k_crop(const float *gxp, float *gx, int64_t BC, int64_t H, int64_t W, int64_t He, int64_t We, int et,
                       int el) {
  TT_CUDA_LOOP(i, BC * H * W) {
    int64_t j = i % W, r = i / W, y = r % H, bc = r / H;
    gx[i] = gxp[(bc * He + y + et) * We + j + el];
  }
}

static tt_status pad_input(const tt_conv_geom *g, int64_t nb, const float *x, tt_cuda_buf *buf, const float **out) {
  int64_t n = nb * g->Ci * g->He * g->We;
  TT_TRY(buf->alloc(sizeof(float) * (size_t)n, "conv2d (padded input)"));
  k_pad<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(x, buf->as<float>(), nb * g->Ci, g->H, g->W,
                                                                   g->He, g->We, g->et, g->el);
  TT_TRY(tt_cuda_check_launch("conv2d (padding)"));
  *out = buf->as<float>();
  return TT_OK;
}

/* ---- plans ---- */

typedef struct {
  int algo;
  cudnnMathType_t math; /* the math type the call runs with */
  size_t ws;
} candidate;

enum { DIR_FWD = 0, DIR_DATA, DIR_FILTER, DIR_COUNT };

typedef struct {
  cudnnTensorDescriptor_t x, y;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t conv;
  bool planned[DIR_COUNT];
  std::vector<candidate> cands[DIR_COUNT];
  size_t next[DIR_COUNT]; /* the candidate that ran last time */
} plan;

struct plan_key {
  int64_t v[13];
  bool operator<(const plan_key &o) const {
    for (int i = 0; i < 13; i++)
      if (v[i] != o.v[i]) return v[i] < o.v[i];
    return false;
  }
};

pthread_mutex_t tt_cuda_conv_lock = PTHREAD_MUTEX_INITIALIZER;
static std::map<plan_key, plan *> *plans; /* never destroyed: used until process exit */

static void plan_free(plan *p) {
  if (p->x) tt_dnn.cudnnDestroyTensorDescriptor(p->x);
  if (p->y) tt_dnn.cudnnDestroyTensorDescriptor(p->y);
  if (p->w) tt_dnn.cudnnDestroyFilterDescriptor(p->w);
  if (p->conv) tt_dnn.cudnnDestroyConvolutionDescriptor(p->conv);
  delete p;
}

static tt_status plan_get(const tt_conv_geom *g, int64_t nb, plan **out) {
  if (!plans) plans = new std::map<plan_key, plan *>();
  plan_key key = {{nb, g->Ci, g->He, g->We, g->Co, g->kh, g->kw, g->sh, g->sw, g->ph, g->pw, g->Ho, g->Wo}};
  auto it = plans->find(key);
  if (it != plans->end()) {
    *out = it->second;
    return TT_OK;
  }
  if (plans->size() >= CONV_PLANS_MAX) {
    for (auto &kv : *plans) plan_free(kv.second);
    plans->clear();
  }
  plan *p = new plan();
  const char *what = "conv2d (cuDNN descriptors)";
  cudnnStatus_t e = tt_dnn.cudnnCreateTensorDescriptor(&p->x);
  if (e == CUDNN_STATUS_SUCCESS) e = tt_dnn.cudnnCreateTensorDescriptor(&p->y);
  if (e == CUDNN_STATUS_SUCCESS) e = tt_dnn.cudnnCreateFilterDescriptor(&p->w);
  if (e == CUDNN_STATUS_SUCCESS) e = tt_dnn.cudnnCreateConvolutionDescriptor(&p->conv);
  if (e == CUDNN_STATUS_SUCCESS)
    e = tt_dnn.cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)nb, (int)g->Ci, (int)g->He,
                                          (int)g->We);
  if (e == CUDNN_STATUS_SUCCESS)
    e = tt_dnn.cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)nb, (int)g->Co, (int)g->Ho,
                                          (int)g->Wo);
  if (e == CUDNN_STATUS_SUCCESS)
    e = tt_dnn.cudnnSetFilter4dDescriptor(p->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, (int)g->Co, (int)g->Ci, (int)g->kh,
                                          (int)g->kw);
  if (e == CUDNN_STATUS_SUCCESS)
    e = tt_dnn.cudnnSetConvolution2dDescriptor(p->conv, g->ph, g->pw, g->sh, g->sw, 1, 1, CUDNN_CROSS_CORRELATION,
                                               CUDNN_DATA_FLOAT);
  int n = 0, c = 0, h = 0, w = 0;
  if (e == CUDNN_STATUS_SUCCESS) e = tt_dnn.cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &n, &c, &h, &w);
  if (e != CUDNN_STATUS_SUCCESS) {
    plan_free(p);
    return tt_cudnn_error(e, what);
  }
  if (n != nb || c != g->Co || h != g->Ho || w != g->Wo) {
    plan_free(p);
    return tt_error(TT_ERR_INTERNAL, "conv2d: cuDNN's output %dx%dx%dx%d differs from [%lld, %lld, %lld, %lld]", n, c,
                    h, w, (long long)nb, (long long)g->Co, (long long)g->Ho, (long long)g->Wo);
  }
  (*plans)[key] = p;
  *out = p;
  return TT_OK;
}

/* Algorithms that form the direct sum of products (GEMM-like), so results stay
 * within fp32 rounding of the CPU's; FFT and Winograd transform the operands
 * and lose a few more bits. */
static bool algo_exact(int dir, int algo) {
  switch (dir) {
    case DIR_FWD:
      return algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
             algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
    case DIR_DATA:
      return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    default:
      return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
             algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
  }
}

/* Always-available fallbacks, in order of preference. */
static const int fallback_fwd[] = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                   CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM};
static const int fallback_data[] = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1, CUDNN_CONVOLUTION_BWD_DATA_ALGO_0};
static const int fallback_filter[] = {CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0};

/* Workspace of algo in direction dir with the descriptor set to `math`; false when unsupported. */
static bool workspace_of(plan *p, int dir, int algo, cudnnMathType_t math, size_t *ws) {
  if (tt_dnn.cudnnSetConvolutionMathType(p->conv, math) != CUDNN_STATUS_SUCCESS) return false;
  cudnnHandle_t h = tt_cuda_dnn();
  cudnnStatus_t e;
  if (dir == DIR_FWD)
    e = tt_dnn.cudnnGetConvolutionForwardWorkspaceSize(h, p->x, p->w, p->conv, p->y,
                                                       (cudnnConvolutionFwdAlgo_t)algo, ws);
  else if (dir == DIR_DATA)
    e = tt_dnn.cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w, p->y, p->conv, p->x,
                                                            (cudnnConvolutionBwdDataAlgo_t)algo, ws);
  else
    e = tt_dnn.cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->x, p->y, p->conv, p->w,
                                                              (cudnnConvolutionBwdFilterAlgo_t)algo, ws);
  return e == CUDNN_STATUS_SUCCESS && *ws <= CONV_WORKSPACE_MAX;
}

static void add_candidate(plan *p, int dir, int algo, cudnnMathType_t reported) {
  bool tf32 = tt_cuda_tf32();
  if (!tf32 && (reported == CUDNN_TENSOR_OP_MATH || reported == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)) return;
  if (!tf32 && !algo_exact(dir, algo)) return;
  cudnnMathType_t math = tf32 ? reported : CUDNN_FMA_MATH;
  for (const candidate &c : p->cands[dir])
    if (c.algo == algo && c.math == math) return;
  size_t ws = 0;
  if (workspace_of(p, dir, algo, math, &ws)) p->cands[dir].push_back({algo, math, ws});
}

#define HEURISTIC_MAX 16

static tt_status plan_algos(plan *p, int dir) {
  if (p->planned[dir]) return TT_OK;
  cudnnHandle_t h = tt_cuda_dnn();
  /* heuristics see the math type the calls will use */
  cudnnStatus_t e = tt_dnn.cudnnSetConvolutionMathType(p->conv, tt_cuda_tf32() ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH);
  if (e != CUDNN_STATUS_SUCCESS) return tt_cudnn_error(e, "conv2d (math type)");
  int got = 0;
  if (dir == DIR_FWD) {
    cudnnConvolutionFwdAlgoPerf_t perf[HEURISTIC_MAX];
    e = tt_dnn.cudnnGetConvolutionForwardAlgorithm_v7(h, p->x, p->w, p->conv, p->y, HEURISTIC_MAX, &got, perf);
    for (int i = 0; e == CUDNN_STATUS_SUCCESS && i < got; i++)
      if (perf[i].status == CUDNN_STATUS_SUCCESS) add_candidate(p, dir, perf[i].algo, perf[i].mathType);
    for (int a : fallback_fwd) add_candidate(p, dir, a, CUDNN_FMA_MATH);
  } else if (dir == DIR_DATA) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[HEURISTIC_MAX];
    e = tt_dnn.cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w, p->y, p->conv, p->x, HEURISTIC_MAX, &got, perf);
    for (int i = 0; e == CUDNN_STATUS_SUCCESS && i < got; i++)
      if (perf[i].status == CUDNN_STATUS_SUCCESS) add_candidate(p, dir, perf[i].algo, perf[i].mathType);
    for (int a : fallback_data) add_candidate(p, dir, a, CUDNN_FMA_MATH);
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[HEURISTIC_MAX];
    e = tt_dnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x, p->y, p->conv, p->w, HEURISTIC_MAX, &got, perf);
    for (int i = 0; e == CUDNN_STATUS_SUCCESS && i < got; i++)
      if (perf[i].status == CUDNN_STATUS_SUCCESS) add_candidate(p, dir, perf[i].algo, perf[i].mathType);
    for (int a : fallback_filter) add_candidate(p, dir, a, CUDNN_FMA_MATH);
  }
  if (p->cands[dir].empty())
    return tt_error(TT_ERR_UNSUPPORTED, "conv2d: cuDNN offers no algorithm for this geometry (%s)",
                    e == CUDNN_STATUS_SUCCESS ? "every candidate was refused" : tt_dnn.cudnnGetErrorString(e));
  p->planned[dir] = true;
  p->next[dir] = 0;
  return TT_OK;
}

/* Runs the convolution call of direction dir with the first candidate that works.
 * a: x (FWD, FILTER) or w (DATA); b: w (FWD) or dy (DATA, FILTER); out: y, dx or dw. */
static tt_status run_dir(plan *p, int dir, const float *a, const float *b, float beta, float *out, const char *what) {
  TT_TRY(plan_algos(p, dir));
  cudnnHandle_t h = tt_cuda_dnn();
  const float one = 1.0f;
  std::vector<candidate> &cs = p->cands[dir];
  cudnnStatus_t last = CUDNN_STATUS_NOT_SUPPORTED;
  for (size_t k = 0; k < cs.size(); k++) {
    size_t at = (p->next[dir] + k) % cs.size();
    const candidate &c = cs[at];
    tt_cuda_buf ws;
    if (c.ws && ws.alloc(c.ws, what) != TT_OK) {
      tt_error_clear();
      continue;
    }
    cudnnStatus_t e = tt_dnn.cudnnSetConvolutionMathType(p->conv, c.math);
    if (e == CUDNN_STATUS_SUCCESS) {
      if (dir == DIR_FWD)
        e = tt_dnn.cudnnConvolutionForward(h, &one, p->x, a, p->w, b, p->conv, (cudnnConvolutionFwdAlgo_t)c.algo,
                                           ws.p, c.ws, &beta, p->y, out);
      else if (dir == DIR_DATA)
        e = tt_dnn.cudnnConvolutionBackwardData(h, &one, p->w, a, p->y, b, p->conv,
                                                (cudnnConvolutionBwdDataAlgo_t)c.algo, ws.p, c.ws, &beta, p->x, out);
      else
        e = tt_dnn.cudnnConvolutionBackwardFilter(h, &one, p->x, a, p->y, b, p->conv,
                                                  (cudnnConvolutionBwdFilterAlgo_t)c.algo, ws.p, c.ws, &beta, p->w,
                                                  out);
    }
    if (e == CUDNN_STATUS_SUCCESS) {
      p->next[dir] = at;
      return tt_cuda_check_launch(what);
    }
    last = e;
    if (e != CUDNN_STATUS_NOT_SUPPORTED && e != CUDNN_STATUS_BAD_PARAM && e != CUDNN_STATUS_ALLOC_FAILED) break;
  }
  return tt_cudnn_error(last, what);
}

/* ---- the cuBLAS path (im2col + GEMM) ---- */


// x [nb, Ci, H, W] -> col [nb, Ci*kh*kw, Ho*Wo]; row k = (ci, ky, kx), zeros where the window leaves x
__global__ void k_im2col(const float *x, float *col, tt_conv_geom g, int64_t nb, int pt, int pl) {
  int64_t HoWo = g.Ho * g.Wo, K = g.Ci * g.kh * g.kw;
  TT_CUDA_LOOP(t, nb * K * HoWo) {
    int64_t p = t % HoWo, r = t / HoWo, k = r % K, b = r / K;
    int64_t ox = p % g.Wo, oy = p / g.Wo, kx = k % g.kw, ky = (k / g.kw) % g.kh, ci = k / (g.kh * g.kw);
    int64_t iy = oy * g.sh - pt + ky, ix = ox * g.sw - pl + kx;
    col[t] = (iy >= 0 && iy < g.H && ix >= 0 && ix < g.W) ? x[((b * g.Ci + ci) * g.H + iy) * g.W + ix] : 0.0f;
  }
}

// col [nb, Ci*kh*kw, Ho*Wo] -> gx [nb, Ci, H, W]: each input pixel sums the entries that read it
__global__ void k_col2im(const float *col, float *gx, tt_conv_geom g, int64_t nb, int pt, int pl) {
  int64_t HoWo = g.Ho * g.Wo, K = g.Ci * g.kh * g.kw;
  TT_CUDA_LOOP(t, nb * g.Ci * g.H * g.W) {
    int64_t ix = t % g.W, r = t / g.W, iy = r % g.H, r2 = r / g.H, ci = r2 % g.Ci, b = r2 / g.Ci;
    float acc = 0;
    for (int64_t ky = 0; ky < g.kh; ky++) {
      int64_t ty = iy + pt - ky;
      if (ty < 0 || ty % g.sh) continue;
      int64_t oy = ty / g.sh;
      if (oy >= g.Ho) continue;
      for (int64_t kx = 0; kx < g.kw; kx++) {
        int64_t tx = ix + pl - kx;
        if (tx < 0 || tx % g.sw) continue;
        int64_t ox = tx / g.sw;
        if (ox >= g.Wo) continue;
        acc += col[(b * K + (ci * g.kh + ky) * g.kw + kx) * HoWo + oy * g.Wo + ox];
      }
    }
    gx[t] = acc;
  }
}

/* Images per chunk so that the column buffer stays within CONV_COL_BYTES. */
static int64_t col_chunk(const tt_conv_geom *g) {
  int64_t per = g->Ci * g->kh * g->kw * g->Ho * g->Wo * (int64_t)sizeof(float);
  int64_t n = per > 0 ? CONV_COL_BYTES / per : g->B;
  if (n < 1) n = 1;
  return n < g->B ? n : g->B;
}

static tt_status im2col(const tt_conv_geom *g, const float *x, float *col, int64_t nb) {
  int64_t n = nb * g->Ci * g->kh * g->kw * g->Ho * g->Wo;
  k_im2col<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(x, col, *g, nb, g->ph + g->et, g->pw + g->el);
  return tt_cuda_check_launch("conv2d (im2col)");
}

// y [B, Co, Ho*Wo] = w [Co, K] col_b [K, Ho*Wo] per image
static tt_status gemm_fwd(const tt_conv_geom *g, const float *x, const float *w, float *y) {
  int64_t K = g->Ci * g->kh * g->kw, HoWo = g->Ho * g->Wo, chunk = col_chunk(g);
  tt_cuda_buf col;
  TT_TRY(col.alloc(sizeof(float) * (size_t)(chunk * K * HoWo), "conv2d_fwd"));
  for (int64_t b0 = 0; b0 < g->B; b0 += chunk) {
    int64_t nb = g->B - b0 < chunk ? g->B - b0 : chunk;
    TT_TRY(im2col(g, x + b0 * g->Ci * g->H * g->W, col.as<float>(), nb));
    TT_TRY(tt_cuda_sgemm(false, false, g->Co, HoWo, K, 1.0f, w, K, 0, col.as<float>(), HoWo, K * HoWo, 0.0f,
                         y + b0 * g->Co * HoWo, HoWo, g->Co * HoWo, nb, "conv2d_fwd"));
  }
  return TT_OK;
}

// col_b [K, Ho*Wo] = w^T [K, Co] gy_b [Co, Ho*Wo], then col2im into gx
static tt_status gemm_bwd_data(const tt_conv_geom *g, const float *gy, const float *w, float *gx) {
  int64_t K = g->Ci * g->kh * g->kw, HoWo = g->Ho * g->Wo, chunk = col_chunk(g);
  tt_cuda_buf col;
  TT_TRY(col.alloc(sizeof(float) * (size_t)(chunk * K * HoWo), "conv2d_bwd_data"));
  for (int64_t b0 = 0; b0 < g->B; b0 += chunk) {
    int64_t nb = g->B - b0 < chunk ? g->B - b0 : chunk, n = nb * g->Ci * g->H * g->W;
    TT_TRY(tt_cuda_sgemm(true, false, K, HoWo, g->Co, 1.0f, w, K, 0, gy + b0 * g->Co * HoWo, HoWo, g->Co * HoWo, 0.0f,
                         col.as<float>(), HoWo, K * HoWo, nb, "conv2d_bwd_data"));
    k_col2im<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(
        col.as<float>(), gx + b0 * g->Ci * g->H * g->W, *g, nb, g->ph + g->et, g->pw + g->el);
    TT_TRY(tt_cuda_check_launch("conv2d_bwd_data (col2im)"));
  }
  return TT_OK;
}

// gw [Co, K] = sum over images of gy_b [Co, Ho*Wo] col_b^T [Ho*Wo, K]
static tt_status gemm_bwd_weight(const tt_conv_geom *g, const float *x, const float *gy, float *gw) {
  int64_t K = g->Ci * g->kh * g->kw, HoWo = g->Ho * g->Wo, chunk = col_chunk(g);
  tt_cuda_buf col;
  TT_TRY(col.alloc(sizeof(float) * (size_t)(chunk * K * HoWo), "conv2d_bwd_weight"));
  for (int64_t b0 = 0; b0 < g->B; b0 += chunk) {
    int64_t nb = g->B - b0 < chunk ? g->B - b0 : chunk;
    TT_TRY(im2col(g, x + b0 * g->Ci * g->H * g->W, col.as<float>(), nb));
    for (int64_t i = 0; i < nb; i++)
      TT_TRY(tt_cuda_sgemm(false, true, g->Co, K, HoWo, 1.0f, gy + (b0 + i) * g->Co * HoWo, HoWo, 0,
                           col.as<float>() + i * K * HoWo, HoWo, 0, b0 + i > 0 ? 1.0f : 0.0f, gw, K, 0, 1,
                           "conv2d_bwd_weight"));
  }
  return TT_OK;
}

/* ---- the kernels ---- */

__global__ void k_add_bias(float *y, const float *bias, int64_t nb, int64_t C, int64_t S) {
  TT_CUDA_LOOP(i, nb * C * S) y[i] += bias[(i / S) % C];
}

// x [B, Ci, H, W], w [Co, Ci, kh, kw], b [Co] or NULL -> y [B, Co, Ho, Wo]
static tt_status cu_conv2d_fwd(const tt_conv2d_params *pp, const tt_tensor *x, const tt_tensor *w, const tt_tensor *b,
                               tt_tensor *y) {
  tt_conv_geom g = tt_conv_geom_make(pp, x->shape, w->shape);
  int64_t chunk = 1;
  TT_TRY(tt_conv_geom_check("conv2d_fwd", &g, &chunk));
  if (y->shape[0] != g.B || y->shape[1] != g.Co || y->shape[2] != g.Ho || y->shape[3] != g.Wo)
    return tt_error(TT_ERR_INVALID, "conv2d_fwd: output is not [%lld, %lld, %lld, %lld]", (long long)g.B,
                    (long long)g.Co, (long long)g.Ho, (long long)g.Wo);
  const float *xs = tt_cuda_ptr<float>(x), *ws = tt_cuda_ptr<float>(w);
  float *ys = tt_cuda_ptr<float>(y);
  tt_status s = TT_OK;
  if (!tt_conv_use_cudnn()) {
    s = gemm_fwd(&g, xs, ws, ys);
  } else {
    pthread_mutex_lock(&tt_cuda_conv_lock);
    for (int64_t b0 = 0; s == TT_OK && b0 < g.B; b0 += chunk) {
      int64_t nb = g.B - b0 < chunk ? g.B - b0 : chunk;
      plan *p = NULL;
      s = plan_get(&g, nb, &p);
      tt_cuda_buf padded;
      const float *xin = xs + b0 * g.Ci * g.H * g.W;
      if (s == TT_OK && tt_conv_explicit_pad(&g)) s = pad_input(&g, nb, xin, &padded, &xin);
      if (s == TT_OK) s = run_dir(p, DIR_FWD, xin, ws, 0.0f, ys + b0 * g.Co * g.Ho * g.Wo, "conv2d_fwd");
    }
    pthread_mutex_unlock(&tt_cuda_conv_lock);
  }
  if (s == TT_OK && b) {
    int64_t n = g.B * g.Co * g.Ho * g.Wo;
    k_add_bias<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(ys, tt_cuda_ptr<float>(b), g.B, g.Co,
                                                                         g.Ho * g.Wo);
    s = tt_cuda_check_launch("conv2d_fwd (bias)");
  }
  return s;
}

// gy [B, Co, Ho, Wo], w [Co, Ci, kh, kw] -> gx [B, Ci, H, W]
static tt_status cu_conv2d_bwd_data(const tt_conv2d_params *pp, const tt_tensor *gy, const tt_tensor *w,
                                    tt_tensor *gx) {
  tt_conv_geom g = tt_conv_geom_make(pp, gx->shape, w->shape);
  int64_t chunk = 1;
  TT_TRY(tt_conv_geom_check("conv2d_bwd_data", &g, &chunk));
  const float *gys = tt_cuda_ptr<float>(gy), *ws = tt_cuda_ptr<float>(w);
  float *gxs = tt_cuda_ptr<float>(gx);
  if (!tt_conv_use_cudnn()) return gemm_bwd_data(&g, gys, ws, gxs);
  bool crop = tt_conv_explicit_pad(&g);
  pthread_mutex_lock(&tt_cuda_conv_lock);
  tt_status s = TT_OK;
  for (int64_t b0 = 0; s == TT_OK && b0 < g.B; b0 += chunk) {
    int64_t nb = g.B - b0 < chunk ? g.B - b0 : chunk;
    plan *p = NULL;
    s = plan_get(&g, nb, &p);
    tt_cuda_buf padded;
    float *gout = gxs + b0 * g.Ci * g.H * g.W;
    if (s == TT_OK && crop) s = padded.alloc(sizeof(float) * (size_t)(nb * g.Ci * g.He * g.We), "conv2d_bwd_data");
    if (s == TT_OK)
      s = run_dir(p, DIR_DATA, ws, gys + b0 * g.Co * g.Ho * g.Wo, 0.0f, crop ? padded.as<float>() : gout,
                  "conv2d_bwd_data");
    if (s == TT_OK && crop) {
      int64_t n = nb * g.Ci * g.H * g.W;
      k_crop<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(padded.as<float>(), gout, nb * g.Ci, g.H, g.W,
                                                                        g.He, g.We, g.et, g.el);
      s = tt_cuda_check_launch("conv2d_bwd_data (crop)");
    }
  }
  pthread_mutex_unlock(&tt_cuda_conv_lock);
  return s;
}

/* gb[c] = sum over b and s of gy[b, c, s] (set c = B runs of S values) */
struct bias_grad {
  typedef tt_red_dsum acc;
  const float *gy;
  float *gb;
  int64_t C, S;
  __device__ acc identity() const { return {0.0}; }
  __device__ acc combine(acc a, acc b) const { return {a.s + b.s}; }
  __device__ acc load(int64_t c, int64_t e) const { return {(double)gy[((e / S) * C + c) * S + e % S]}; }
  __device__ void store(int64_t c, acc a) const { gb[c] = (float)a.s; }
};

/* cuDNN's weight gradient, chunk by chunk (later chunks accumulate into the first's). */
static tt_status cudnn_bwd_weight(const tt_conv_geom *g, int64_t chunk, const float *xs, const float *gys, float *gws) {
  pthread_mutex_lock(&tt_cuda_conv_lock);
  tt_status s = TT_OK;
  for (int64_t b0 = 0; s == TT_OK && b0 < g->B; b0 += chunk) {
    int64_t nb = g->B - b0 < chunk ? g->B - b0 : chunk;
    plan *p = NULL;
    s = plan_get(g, nb, &p);
    tt_cuda_buf padded;
    const float *xin = xs + b0 * g->Ci * g->H * g->W;
    if (s == TT_OK && tt_conv_explicit_pad(g)) s = pad_input(g, nb, xin, &padded, &xin);
    if (s == TT_OK)
      s = run_dir(p, DIR_FILTER, xin, gys + b0 * g->Co * g->Ho * g->Wo, b0 ? 1.0f : 0.0f, gws, "conv2d_bwd_weight");
  }
  pthread_mutex_unlock(&tt_cuda_conv_lock);
  return s;
}

// x [B, Ci, H, W] (NULL when gw is), gy [B, Co, Ho, Wo] -> gw [Co, Ci, kh, kw], gb [Co] (each may be NULL)
static tt_status cu_conv2d_bwd_weight(const tt_conv2d_params *pp, const tt_tensor *x, const tt_tensor *gy,
                                      tt_tensor *gw, tt_tensor *gb) {
  if (gw) {
    if (!x) return tt_error(TT_ERR_INVALID, "conv2d_bwd_weight: the weight gradient needs the input");
    tt_conv_geom g = tt_conv_geom_make(pp, x->shape, gw->shape);
    int64_t chunk = 1;
    TT_TRY(tt_conv_geom_check("conv2d_bwd_weight", &g, &chunk));
    const float *xs = tt_cuda_ptr<float>(x), *gys = tt_cuda_ptr<float>(gy);
    float *gws = tt_cuda_ptr<float>(gw);
    TT_TRY(tt_conv_use_cudnn() ? cudnn_bwd_weight(&g, chunk, xs, gys, gws) : gemm_bwd_weight(&g, xs, gys, gws));
  }
  if (gb) {
    int64_t B = gy->shape[0], C = gy->shape[1], S = gy->shape[2] * gy->shape[3];
    bias_grad r = {tt_cuda_ptr<float>(gy), tt_cuda_ptr<float>(gb), C, S};
    TT_TRY(tt_cuda_set_reduce("conv2d_bwd_weight (bias)", r, C, B * S));
  }
  return TT_OK;
}

tt_status tt_cuda_register_conv(tt_backend *b) {
  TT_REGISTER_KERNEL(b, conv2d_fwd, cu_conv2d_fwd);
  TT_REGISTER_KERNEL(b, conv2d_bwd_data, cu_conv2d_bwd_data);
  TT_REGISTER_KERNEL(b, conv2d_bwd_weight, cu_conv2d_bwd_weight);
  return TT_OK;
}

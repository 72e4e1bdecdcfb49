/* cuda_backend.h — what the CUDA kernel families share (not part of the SDK):
 * the process's device context (one stream, cuBLAS and cuDNN handles bound to
 * it), the device memory pool, error conversion and launch helpers.
 *
 * Every kernel runs on the one stream, so a block handed back to the pool can
 * be handed out again at once: whatever used it was queued earlier on the same
 * stream and finishes first. Device work is asynchronous; an execution error
 * surfaces at the next synchronising call. With TAMING_CUDA_SYNC=1 every launch
 * is followed by a synchronisation, so an error names the kernel that caused it. */
#ifndef TAMING_KERNELS_CUDA_BACKEND_H
#define TAMING_KERNELS_CUDA_BACKEND_H

#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cudnn.h>
#include <stdint.h>
#include "../../host/core/backend_impl.h"
#include "taming/ops.h"
#include "../collapse.h"

/* Threads per block of the elementwise and reduction kernels. */
#define TT_CUDA_THREADS 256

/* Grid-stride loop over [0, n) with 64-bit indices. */
#define TT_CUDA_LOOP(i, n)                                                          \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (int64_t)(n); \
       i += (int64_t)gridDim.x * blockDim.x)

/* One registration function per op family (kernels/cuda/<family>.cu). */
tt_status tt_cuda_register_copy(tt_backend *b);
tt_status tt_cuda_register_elementwise(tt_backend *b);
tt_status tt_cuda_register_reduce(tt_backend *b);
tt_status tt_cuda_register_gemm(tt_backend *b);
tt_status tt_cuda_register_gemm_bf16(tt_backend *b);
tt_status tt_cuda_register_conv(tt_backend *b);
tt_status tt_cuda_register_conv_bf16(tt_backend *b);
tt_status tt_cuda_register_resample(tt_backend *b);
tt_status tt_cuda_register_norm(tt_backend *b);
tt_status tt_cuda_register_softmax(tt_backend *b);
tt_status tt_cuda_register_attention(tt_backend *b);
tt_status tt_cuda_register_embedding(tt_backend *b);
tt_status tt_cuda_register_loss(tt_backend *b);
tt_status tt_cuda_register_quantize(tt_backend *b);
tt_status tt_cuda_register_optim(tt_backend *b);
tt_status tt_cuda_register_random(tt_backend *b);
tt_status tt_cuda_register_compare(tt_backend *b);
tt_status tt_cuda_register_sort(tt_backend *b);
tt_status tt_cuda_register_qlinear(tt_backend *b);

/* ---- cuDNN, loaded at run time (kernels/cuda/dnn.cu) ----
 * The module does not link cuDNN: a machine without it (or with a broken one)
 * still runs every op, convolutions through cuBLAS. cudnn.h gives the types
 * and the signatures; these are the only cuDNN functions the backend calls,
 * always through tt_dnn (tt_dnn.cudnnCreate(...)). */
#define TT_DNN_FUNCS(X)                                                                                     \
  X(cudnnGetVersion) X(cudnnGetErrorString) X(cudnnCreate) X(cudnnDestroy) X(cudnnSetStream)                \
  X(cudnnCreateTensorDescriptor) X(cudnnDestroyTensorDescriptor) X(cudnnSetTensor4dDescriptor)             \
  X(cudnnCreateFilterDescriptor) X(cudnnDestroyFilterDescriptor) X(cudnnSetFilter4dDescriptor)             \
  X(cudnnCreateConvolutionDescriptor) X(cudnnDestroyConvolutionDescriptor)                                 \
  X(cudnnSetConvolution2dDescriptor) X(cudnnSetConvolutionMathType) X(cudnnGetConvolution2dForwardOutputDim) \
  X(cudnnGetConvolutionForwardAlgorithm_v7) X(cudnnGetConvolutionForwardWorkspaceSize)                     \
  X(cudnnGetConvolutionBackwardDataAlgorithm_v7) X(cudnnGetConvolutionBackwardDataWorkspaceSize)           \
  X(cudnnGetConvolutionBackwardFilterAlgorithm_v7) X(cudnnGetConvolutionBackwardFilterWorkspaceSize)       \
  X(cudnnConvolutionForward) X(cudnnConvolutionBackwardData) X(cudnnConvolutionBackwardFilter)

struct tt_dnn_api {
#define TT_DNN_MEMBER(f) decltype(&::f) f;
  TT_DNN_FUNCS(TT_DNN_MEMBER)
#undef TT_DNN_MEMBER
};
/* Filled by tt_dnn_load; all NULL until it succeeds. */
extern tt_dnn_api tt_dnn;
/* Loads cuDNN: the file named by $TAMING_CUDA_CUDNN, else libcudnn.so.<major of
 * the header> then libcudnn.so from the library search path. True with the
 * path of the file loaded in info; false, with a one-line reason in info, when
 * it is missing, lacks a function, or its major version is not the header's. */
bool tt_dnn_load(char *info, size_t n);

/* ---- the device context (kernels/cuda/backend.cu) ---- */

cudaStream_t tt_cuda_stream(void);
cublasHandle_t tt_cuda_blas(void);
/* NULL when cuDNN could not be started (convolutions then run through cuBLAS). */
cudnnHandle_t tt_cuda_dnn(void);
int tt_cuda_sm_count(void);
/* True when TAMING_CUDA_TF32=1 asked for TF32 tensor-core math in GEMMs and convolutions. */
bool tt_cuda_tf32(void);

/* Row-major strided-batched C_i = alpha op(A_i) op(B_i) + beta C_i through cuBLAS
 * (kernels/cuda/gemm.cu); operand i at A + i*sa etc.; K == 0 scales C by beta. */
tt_status tt_cuda_sgemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                        int64_t sa, const float *B, int64_t ldb, int64_t sb, float beta, float *C, int64_t ldc,
                        int64_t sc, int64_t batch, const char *what);
/* The same with the operands rounded to bf16 (nearest even) and f32 products and
 * sums: cublasGemmEx on bf16 copies of A and B (kernels/cuda/gemm_bf16.cu). */
tt_status tt_cuda_gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                            int64_t lda, int64_t sa, const float *B, int64_t ldb, int64_t sb, float beta, float *C,
                            int64_t ldc, int64_t sc, int64_t batch, const char *what);

/* Device memory from the pool (NULL when the device is out of memory, with no message). */
void *tt_cuda_pool_alloc(size_t nbytes);
void tt_cuda_pool_free(void *p);

/* Errors as tt_error(TT_ERR_DEVICE or TT_ERR_NOMEM, "<what>: <library> error <name>: <text>"). */
tt_status tt_cuda_error(cudaError_t e, const char *what);
tt_status tt_cublas_error(cublasStatus_t e, const char *what);
tt_status tt_cudnn_error(cudnnStatus_t e, const char *what);
/* After a launch: the launch error if any (and, with TAMING_CUDA_SYNC=1, the execution error). */
tt_status tt_cuda_check_launch(const char *kernel);

#define TT_CUDA_TRY(expr, what)                                 \
  do {                                                          \
    cudaError_t tt_cu_e_ = (expr);                              \
    if (tt_cu_e_ != cudaSuccess) return tt_cuda_error(tt_cu_e_, (what)); \
  } while (0)
#define TT_CUBLAS_TRY(expr, what)                               \
  do {                                                          \
    cublasStatus_t tt_cb_e_ = (expr);                           \
    if (tt_cb_e_ != CUBLAS_STATUS_SUCCESS) return tt_cublas_error(tt_cb_e_, (what)); \
  } while (0)
#define TT_CUDNN_TRY(expr, what)                                \
  do {                                                          \
    cudnnStatus_t tt_dn_e_ = (expr);                            \
    if (tt_dn_e_ != CUDNN_STATUS_SUCCESS) return tt_cudnn_error(tt_dn_e_, (what)); \
  } while (0)

/* Blocks for a grid-stride loop over n items: enough to fill the device, at most a fixed cap. */
static inline unsigned tt_cuda_grid(int64_t n, int threads = TT_CUDA_THREADS) {
  int64_t b = (n + threads - 1) / threads, cap = (int64_t)tt_cuda_sm_count() * 32;
  if (b > cap) b = cap;
  return (unsigned)(b < 1 ? 1 : b);
}

/* A scratch buffer from the pool, returned when the object goes out of scope
 * (safe while kernels that use it are still queued: see the file comment). */
struct tt_cuda_buf {
  void *p = nullptr;
  tt_cuda_buf() = default;
  tt_cuda_buf(const tt_cuda_buf &) = delete;
  tt_cuda_buf &operator=(const tt_cuda_buf &) = delete;
  ~tt_cuda_buf() {
    if (p) tt_cuda_pool_free(p);
  }
  tt_status alloc(size_t nbytes, const char *what) {
    if (p) tt_cuda_pool_free(p);
    p = tt_cuda_pool_alloc(nbytes ? nbytes : 1);
    if (!p)
      return tt_error(TT_ERR_NOMEM, "%s: out of GPU memory for a %zu-byte workspace", what, nbytes);
    return TT_OK;
  }
  template <class T> T *as() const { return (T *)p; }
};

/* Device pointer of a tensor's first element. */
template <class T> static inline T *tt_cuda_ptr(const tt_tensor *t) { return (T *)tt_tensor_data(t); }

/* Shape and per-operand strides of a collapsed iteration space (filled by
 * tt_collapse_dims, shared with the CPU kernels), passed to kernels by value. */
template <int NOPS> struct tt_cuda_iter {
  int nd;
  int64_t shape[TT_MAX_DIMS];
  int64_t stride[NOPS][TT_MAX_DIMS];
};

/* Element offsets of row-major linear index i in each operand. I is the index
 * type of the coordinate arithmetic (32-bit when the iteration space allows). */
template <int NOPS, class I>
__device__ __forceinline__ void tt_cuda_offsets(const tt_cuda_iter<NOPS> &it, I i, int64_t *off) {
  for (int k = 0; k < NOPS; k++) off[k] = 0;
  for (int d = it.nd - 1; d >= 0; d--) {
    I n = (I)it.shape[d], c = i % n;
    i /= n;
    for (int k = 0; k < NOPS; k++) off[k] += (int64_t)c * it.stride[k][d];
  }
}

/* ---- bad indices, reported at the next synchronisation (kernels/cuda/backend.cu) ----
 * Kernels that read indices (embedding, one_hot, cross_entropy) skip a bad one
 * and record it in one device word set per process; the host reads that record
 * only where it waits for the stream anyway (a copy to the host, a
 * synchronisation), so such an op costs no synchronisation of its own. The
 * error then names the op, the index and its position, and the next
 * synchronising call (tt_device_synchronize, reading a tensor) returns it. */
enum tt_cuda_index_site {
  TT_CUDA_SITE_EMBEDDING,
  TT_CUDA_SITE_EMBEDDING_BWD,
  TT_CUDA_SITE_ONE_HOT,
  TT_CUDA_SITE_CROSS_ENTROPY,
  TT_CUDA_SITE_CROSS_ENTROPY_BWD,
};
struct tt_cuda_index_error {
  unsigned int flagged; /* 0 until a kernel records a bad index */
  int site;             /* enum tt_cuda_index_site */
  long long pos, value, limit;
};
/* The device record, for a kernel about to be launched: marks a check as pending. */
tt_cuda_index_error *tt_cuda_index_check(void);

/* Records value (at position pos) outside [0, limit); the first one recorded wins. */
__device__ __forceinline__ void tt_cuda_bad_index(tt_cuda_index_error *e, int site, int64_t pos, int64_t value,
                                                  int64_t limit) {
  if (atomicCAS(&e->flagged, 0u, 1u) == 0u) {
    e->site = site;
    e->pos = pos;
    e->value = value;
    e->limit = limit;
  }
}

#endif

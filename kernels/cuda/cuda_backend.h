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
#include "../../host/backend_impl.h"
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
tt_status tt_cuda_register_conv(tt_backend *b);
tt_status tt_cuda_register_resample(tt_backend *b);
tt_status tt_cuda_register_norm(tt_backend *b);
tt_status tt_cuda_register_softmax(tt_backend *b);
tt_status tt_cuda_register_attention(tt_backend *b);
tt_status tt_cuda_register_embedding(tt_backend *b);
tt_status tt_cuda_register_loss(tt_backend *b);
tt_status tt_cuda_register_quantize(tt_backend *b);
tt_status tt_cuda_register_optim(tt_backend *b);
tt_status tt_cuda_register_random(tt_backend *b);

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

/* Device memory from the pool (NULL when the device is out of memory, with no message). */
void *tt_cuda_pool_alloc(size_t nbytes);
void tt_cuda_pool_free(void *p);

/* Errors as tt_error(TT_ERR_DEVICE or TT_ERR_NOMEM, "<what>: <library> error <name>: <text>"). */
tt_status tt_cuda_error(cudaError_t e, const char *what);
tt_status tt_cublas_error(cublasStatus_t e, const char *what);
tt_status tt_cudnn_error(cudnnStatus_t e, const char *what);
/* After a launch: the launch error if any (and, with TAMING_CUDA_SYNC=1, the execution error). */
tt_status tt_cuda_check_launch(const char *kernel);
/* Copies a few bytes back to the host, waiting for the stream (for flags and error details). */
tt_status tt_cuda_read_back(void *dst, const void *src, size_t nbytes, const char *what);

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

/* Validity flag of index-checking kernels: the smallest bad position, or ~0. */
#define TT_CUDA_NO_BAD_INDEX (~0ull)

/* A device word holding the first bad index position (reset to TT_CUDA_NO_BAD_INDEX). */
struct tt_cuda_index_flag {
  tt_cuda_buf buf;
  unsigned long long *dev = nullptr;
  tt_status init(const char *what) {
    TT_TRY(buf.alloc(sizeof(unsigned long long), what));
    dev = buf.as<unsigned long long>();
    TT_CUDA_TRY(cudaMemsetAsync(dev, 0xff, sizeof *dev, tt_cuda_stream()), what);
    return TT_OK;
  }
  /* Waits for the kernels and reads the flag: *pos = first bad position or -1;
   * *value = the index stored there (read from idx, i64 on the device). */
  tt_status read(const int64_t *idx, int64_t *pos, int64_t *value, const char *what) {
    unsigned long long h = 0;
    TT_TRY(tt_cuda_read_back(&h, dev, sizeof h, what));
    *pos = h == TT_CUDA_NO_BAD_INDEX ? -1 : (int64_t)h;
    *value = 0;
    if (*pos >= 0) TT_TRY(tt_cuda_read_back(value, idx + *pos, sizeof *value, what));
    return TT_OK;
  }
};

#endif

/* backend.cu — the CUDA backend: its vtable (device memory pool, copies,
 * memset, synchronisation, description), the process's device context and the
 * module descriptor (TT_BACKEND_MODULE_DEFINE, at the end) that libtaming
 * looks up and checks against its ABI after dlopen.
 *
 * One stream per process; cuBLAS and cuDNN are bound to it, and every copy and
 * kernel is queued on it, so work is ordered without events. Copies to the
 * host wait for the stream (the host reads the bytes next); copies from the
 * host wait too, so the caller may free or reuse its buffer on return.
 *
 * The device. Each host thread has its own current device in the CUDA
 * runtime, and a thread that never chose one works on device 0. Every entry
 * into the module (the vtable, the stream and library handles that each kernel
 * launch asks for, the pool) first makes the process's device current on the
 * calling thread, so TAMING_CUDA_DEVICE (chosen per rank by the MPI/NCCL module)
 * holds on every thread, not only on the one that started the backend.
 *
 * The pool: cudaMalloc and cudaFree synchronise the device and cost far more
 * than a small kernel, and a forward pass allocates the same sizes over and
 * over. Freed blocks are kept by size and handed out again for requests up to
 * 1/8 smaller (best fit). When cudaMalloc fails, the cached blocks are returned
 * to the driver and the allocation is tried once more. Never managed memory.
 * TAMING_CUDA_POOL=0 turns the pool off: each block is cudaMalloc'd at its
 * exact size and freed at once, so compute-sanitizer sees every overrun that a
 * rounded-up or reused block would hide. */
#include "config.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <map>
#include <unordered_map>
#include "cuda_backend.h"

/* Environment switches read once at start-up. */
#define ENV_DEVICE "TAMING_CUDA_DEVICE" /* ordinal of the GPU to use (default 0) */
#define ENV_SYNC "TAMING_CUDA_SYNC"     /* 1: synchronise after every kernel (error attribution) */
#define ENV_TF32 "TAMING_CUDA_TF32"     /* 1: allow TF32 tensor-core math in GEMM and conv */
#define ENV_POOL "TAMING_CUDA_POOL"     /* 0: no pool, every block exactly sized (for compute-sanitizer) */
/* (TAMING_CUDA_CONV=gemm, read in conv.cu, runs convolutions without cuDNN) */

static struct {
  int device;
  int sms;
  bool sync_each, tf32, no_pool;
  cudaStream_t stream;
  cublasHandle_t blas;
  cudnnHandle_t dnn;
  tt_cuda_index_error *bad_dev;  /* device record of the kernels' index checks */
  tt_cuda_index_error *bad_host; /* pinned copy read after a synchronisation */
  bool bad_pending;              /* a checking kernel ran since the record was last read */
  char describe[480];
} ctx;

/* Makes the process's device current on the calling thread (once per thread). */
static thread_local int bound_device = -1;
static inline void bind_device(void) {
  if (bound_device != ctx.device) {
    cudaSetDevice(ctx.device); /* cannot fail for a device that started: its ordinal was checked */
    bound_device = ctx.device;
  }
}

cudaStream_t tt_cuda_stream(void) {
  bind_device();
  return ctx.stream;
}
cublasHandle_t tt_cuda_blas(void) {
  bind_device();
  return ctx.blas;
}
cudnnHandle_t tt_cuda_dnn(void) {
  bind_device();
  return ctx.dnn;
}
int tt_cuda_sm_count(void) { return ctx.sms > 0 ? ctx.sms : 1; }
bool tt_cuda_tf32(void) { return ctx.tf32; }

/* ---- errors ---- */

tt_status tt_cuda_error(cudaError_t e, const char *what) {
  tt_status s = e == cudaErrorMemoryAllocation ? TT_ERR_NOMEM : TT_ERR_DEVICE;
  return tt_error(s, "%s: CUDA error %s: %s", what, cudaGetErrorName(e), cudaGetErrorString(e));
}

tt_status tt_cublas_error(cublasStatus_t e, const char *what) {
  tt_status s = e == CUBLAS_STATUS_ALLOC_FAILED ? TT_ERR_NOMEM : TT_ERR_DEVICE;
  return tt_error(s, "%s: cuBLAS error %d: %s", what, (int)e, cublasGetStatusString(e));
}

tt_status tt_cudnn_error(cudnnStatus_t e, const char *what) {
  tt_status s = e == CUDNN_STATUS_ALLOC_FAILED ? TT_ERR_NOMEM : TT_ERR_DEVICE;
  return tt_error(s, "%s: cuDNN error %d: %s", what, (int)e, tt_dnn.cudnnGetErrorString(e));
}

tt_status tt_cuda_check_launch(const char *kernel) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess && ctx.sync_each) e = cudaStreamSynchronize(ctx.stream);
  if (e != cudaSuccess) return tt_cuda_error(e, kernel);
  return TT_OK;
}

/* ---- bad indices found on the device ---- */

tt_cuda_index_error *tt_cuda_index_check(void) {
  ctx.bad_pending = true;
  return ctx.bad_dev;
}

/* in the order of enum tt_cuda_index_site */
static const struct {
  const char *op, *noun, *at;
} index_sites[] = {
    {"embedding", "index", "position"},
    {"embedding backward", "index", "position"},
    {"one_hot", "index", "position"},
    {"cross_entropy", "target", "row"},
    {"cross_entropy backward", "target", "row"},
};

/* Waits for the stream; then the first bad index recorded since the last
 * read, if any, is the error (and the record is cleared for the next one).
 * With no checking kernel queued since then, a plain wait. */
static tt_status sync_stream(const char *what) {
  bool pending = ctx.bad_pending;
  if (pending)
    TT_CUDA_TRY(cudaMemcpyAsync(ctx.bad_host, ctx.bad_dev, sizeof *ctx.bad_host, cudaMemcpyDeviceToHost, ctx.stream),
                what);
  TT_CUDA_TRY(cudaStreamSynchronize(ctx.stream), what);
  if (!pending) return TT_OK;
  ctx.bad_pending = false;
  tt_cuda_index_error e = *ctx.bad_host;
  if (!e.flagged) return TT_OK;
  TT_CUDA_TRY(cudaMemsetAsync(ctx.bad_dev, 0, sizeof *ctx.bad_dev, ctx.stream), what);
  int site = e.site >= 0 && e.site < (int)(sizeof index_sites / sizeof *index_sites) ? e.site : 0;
  return tt_error(TT_ERR_INVALID, "%s: %s %lld (at %s %lld) is outside [0, %lld) (found on the GPU, reported at the "
                  "next synchronisation: %s)", index_sites[site].op, index_sites[site].noun, e.value,
                  index_sites[site].at, e.pos, e.limit, what);
}

/* ---- the memory pool ---- */

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
/* Created at init and never destroyed: tensors may be freed during process exit. */
static std::multimap<size_t, void *> *pool_cached;   /* size -> block */
static std::unordered_map<void *, size_t> *pool_live; /* block -> size */

static size_t pool_round(size_t n) {
  if (n <= ((size_t)1 << 20)) return (n + 511) & ~(size_t)511;
  return (n + ((size_t)1 << 17) - 1) & ~(((size_t)1 << 17) - 1); /* 128 KiB steps */
}

/* Returns every cached block to the driver (with pool_lock held). */
static void pool_release_cached_locked(void) {
  for (auto &kv : *pool_cached) cudaFree(kv.second);
  pool_cached->clear();
}

void *tt_cuda_pool_alloc(size_t nbytes) {
  bind_device();
  size_t want = ctx.no_pool ? (nbytes ? nbytes : 1) : pool_round(nbytes ? nbytes : 1);
  pthread_mutex_lock(&pool_lock);
  auto it = pool_cached->lower_bound(want);
  if (it != pool_cached->end() && it->first - want <= want / 8) {
    void *p = it->second;
    size_t size = it->first;
    pool_cached->erase(it);
    (*pool_live)[p] = size;
    pthread_mutex_unlock(&pool_lock);
    return p;
  }
  void *p = NULL;
  cudaError_t e = cudaMalloc(&p, want);
  if (e != cudaSuccess) {
    cudaGetLastError(); /* an allocation failure is not sticky: clear it */
    pool_release_cached_locked();
    e = cudaMalloc(&p, want);
    if (e != cudaSuccess) {
      cudaGetLastError();
      pthread_mutex_unlock(&pool_lock);
      return NULL;
    }
  }
  (*pool_live)[p] = want;
  pthread_mutex_unlock(&pool_lock);
  return p;
}

void tt_cuda_pool_free(void *p) {
  if (!p) return;
  bind_device();
  pthread_mutex_lock(&pool_lock);
  auto it = pool_live->find(p);
  if (it == pool_live->end()) {
    /* not ours: hand it to the driver rather than caching a block of unknown size */
    pthread_mutex_unlock(&pool_lock);
    cudaFree(p);
    return;
  }
  size_t size = it->second;
  pool_live->erase(it);
  if (ctx.no_pool) {
    pthread_mutex_unlock(&pool_lock);
    cudaFree(p);
    return;
  }
  pool_cached->emplace(size, p);
  pthread_mutex_unlock(&pool_lock);
}

/* ---- the vtable ---- */

static void *cu_alloc(tt_backend *b, size_t nbytes) { return tt_cuda_pool_alloc(nbytes); }

static void cu_free(tt_backend *b, void *p, size_t nbytes) { tt_cuda_pool_free(p); }

static tt_status cu_copy_to_host(tt_backend *b, void *dst, const void *src, size_t n) {
  if (!n) return TT_OK;
  bind_device();
  TT_CUDA_TRY(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, ctx.stream), "copy to host");
  return sync_stream("copy to host");
}

static tt_status cu_copy_from_host(tt_backend *b, void *dst, const void *src, size_t n) {
  if (!n) return TT_OK;
  bind_device();
  TT_CUDA_TRY(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, ctx.stream), "copy from host");
  return sync_stream("copy from host");
}

static tt_status cu_copy_device(tt_backend *b, void *dst, const void *src, size_t n) {
  if (!n) return TT_OK;
  bind_device();
  TT_CUDA_TRY(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, ctx.stream), "copy on device");
  return TT_OK;
}

static tt_status cu_memset0(tt_backend *b, void *p, size_t n) {
  if (!n) return TT_OK;
  bind_device();
  TT_CUDA_TRY(cudaMemsetAsync(p, 0, n, ctx.stream), "memset");
  return TT_OK;
}

static tt_status cu_synchronize(tt_backend *b) {
  bind_device();
  return sync_stream("synchronize");
}

static const char *cu_describe(tt_backend *b) { return ctx.describe; }

/* ---- start-up ---- */

static bool env_on(const char *name) {
  const char *v = getenv(name);
  return v && *v && strcmp(v, "0") != 0;
}

static void destroy_context(void) {
  if (ctx.dnn) tt_dnn.cudnnDestroy(ctx.dnn);
  if (ctx.blas) cublasDestroy(ctx.blas);
  if (ctx.stream) cudaStreamDestroy(ctx.stream);
  if (ctx.bad_dev) cudaFree(ctx.bad_dev);
  if (ctx.bad_host) cudaFreeHost(ctx.bad_host);
  ctx.dnn = NULL;
  ctx.blas = NULL;
  ctx.stream = NULL;
  ctx.bad_dev = NULL;
  ctx.bad_host = NULL;
}

static tt_status create_context(void) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return tt_error(TT_ERR_DEVICE, "no usable NVIDIA GPU: cudaGetDeviceCount failed with %s (%s)",
                    cudaGetErrorName(e), cudaGetErrorString(e));
  }
  if (count == 0)
    return tt_error(TT_ERR_DEVICE, "no NVIDIA GPU is visible (cudaGetDeviceCount = 0; check the driver and "
                                   "CUDA_VISIBLE_DEVICES)");
  ctx.device = 0;
  const char *dv = getenv(ENV_DEVICE);
  if (dv && *dv) {
    char *end = NULL;
    long d = strtol(dv, &end, 10);
    if (*end || d < 0 || d >= count)
      return tt_error(TT_ERR_INVALID, "%s=%s: expected a GPU ordinal in [0, %d)", ENV_DEVICE, dv, count);
    ctx.device = (int)d;
  }
  TT_CUDA_TRY(cudaSetDevice(ctx.device), "selecting the GPU");
  bound_device = ctx.device;
  cudaDeviceProp prop;
  TT_CUDA_TRY(cudaGetDeviceProperties(&prop, ctx.device), "reading the GPU's properties");
  ctx.sms = prop.multiProcessorCount;
  ctx.sync_each = env_on(ENV_SYNC);
  ctx.tf32 = env_on(ENV_TF32);
  const char *pool = getenv(ENV_POOL);
  ctx.no_pool = pool && strcmp(pool, "0") == 0;
  snprintf(ctx.describe, sizeof ctx.describe, "%.200s, %zu GiB, sm_%d%d", prop.name,
           (size_t)(prop.totalGlobalMem >> 30), prop.major, prop.minor);

  TT_CUDA_TRY(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking), "creating the stream");
  TT_CUDA_TRY(cudaMalloc((void **)&ctx.bad_dev, sizeof *ctx.bad_dev), "allocating the index-check record");
  TT_CUDA_TRY(cudaMemset(ctx.bad_dev, 0, sizeof *ctx.bad_dev), "clearing the index-check record");
  TT_CUDA_TRY(cudaMallocHost((void **)&ctx.bad_host, sizeof *ctx.bad_host), "allocating the index-check record");
  TT_CUBLAS_TRY(cublasCreate(&ctx.blas), "cublasCreate");
  TT_CUBLAS_TRY(cublasSetStream(ctx.blas, ctx.stream), "cublasSetStream");
  /* Exact fp32 unless TF32 was asked for (the CPU kernels are the reference):
   * the default mode never trades fp32 mantissa bits for speed. */
  TT_CUBLAS_TRY(cublasSetMathMode(ctx.blas, ctx.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
                "cublasSetMathMode");
  /* cuDNN serves convolutions only, and conv.cu has a cuBLAS path: a cuDNN
   * that does not load or start leaves the backend usable and says so */
  char why[512];
  if (!tt_dnn_load(why, sizeof why)) { /* why: the reason, or on success the file loaded */
    size_t k = strlen(ctx.describe);
    snprintf(ctx.describe + k, sizeof ctx.describe - k, " (cuDNN not loaded, convolutions via cuBLAS: %.200s)", why);
    return TT_OK;
  }
  cudnnStatus_t de = tt_dnn.cudnnCreate(&ctx.dnn);
  if (de == CUDNN_STATUS_SUCCESS) de = tt_dnn.cudnnSetStream(ctx.dnn, ctx.stream);
  size_t k = strlen(ctx.describe);
  if (de != CUDNN_STATUS_SUCCESS) {
    if (ctx.dnn) tt_dnn.cudnnDestroy(ctx.dnn);
    ctx.dnn = NULL;
    snprintf(ctx.describe + k, sizeof ctx.describe - k, " (cuDNN did not start, convolutions via cuBLAS: %.60s)",
             tt_dnn.cudnnGetErrorString(de));
  } else {
    size_t v = tt_dnn.cudnnGetVersion();
    snprintf(ctx.describe + k, sizeof ctx.describe - k, ", cuDNN %zu.%zu.%zu from %.200s", v / 10000, v / 100 % 100,
             v % 100, why);
  }
  return TT_OK;
}

static tt_status module_init(tt_backend **out) {
  static tt_backend b;
  /* libtaming calls this once, under its lock; a second call returns the same backend */
  static bool ready;
  if (ready) {
    *out = &b;
    return TT_OK;
  }
  b.name = "cuda";
  b.device = TT_CUDA;
  b.alloc = cu_alloc;
  b.free = cu_free;
  b.copy_to_host = cu_copy_to_host;
  b.copy_from_host = cu_copy_from_host;
  b.copy_device = cu_copy_device;
  b.memset0 = cu_memset0;
  b.synchronize = cu_synchronize;
  b.describe = cu_describe;
  if (!pool_cached) pool_cached = new std::multimap<size_t, void *>();
  if (!pool_live) pool_live = new std::unordered_map<void *, size_t>();
  tt_status s = create_context();
  if (s != TT_OK) {
    destroy_context();
    return s;
  }
  /* the same families, in the same order, as the CPU backend */
  tt_status (*const families[])(tt_backend *) = {
      tt_cuda_register_copy,
      tt_cuda_register_elementwise,
      tt_cuda_register_reduce,
      tt_cuda_register_gemm,
      tt_cuda_register_gemm_bf16,
      tt_cuda_register_random,
      tt_cuda_register_conv,
      tt_cuda_register_conv_bf16,
      tt_cuda_register_resample,
      tt_cuda_register_norm,
      tt_cuda_register_softmax,
      tt_cuda_register_attention,
      tt_cuda_register_embedding,
      tt_cuda_register_loss,
      tt_cuda_register_quantize,
      tt_cuda_register_optim,
      tt_cuda_register_compare,
      tt_cuda_register_sort,
      tt_cuda_register_qlinear,
  };
  for (size_t i = 0; i < sizeof families / sizeof *families; i++) {
    s = families[i](&b);
    if (s != TT_OK) {
      destroy_context();
      return s;
    }
  }
  ready = true;
  *out = &b;
  return TT_OK;
}

/* What libtaming looks up after dlopen: this module's ABI, its tt_backend layout, module_init. */
TT_BACKEND_MODULE_DEFINE(module_init);

/* dist_mpi.c — libtaming_mpi.so: the collectives of taming/dist.h over MPI,
 * and over NCCL for device memory when built with it (HAVE_NCCL). libtaming
 * loads this module with dlopen only in processes started by a launcher, so
 * a plain `taming run` never touches MPI.
 *
 * MPI errors return (MPI_ERRORS_RETURN) and become tt_status messages that
 * name the rank and the call. All calls come from the thread that runs the
 * script (MPI_THREAD_FUNNELED); the CPU kernels' OpenMP threads never call MPI.
 *
 * Determinism: MPI_Allreduce and ncclAllReduce hand every rank the same sum,
 * and the chunking below depends only on the element count, so every rank
 * makes the same calls in the same order. */
#include "config.h"
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_NCCL
#include <cuda_runtime_api.h>
#include <nccl.h>
#endif
#include "dist_module.h"

static struct {
  int size, rank;
  size_t chunk;      /* elements (floats) per MPI call */
  int owns_mpi;      /* MPI_Init was ours, so MPI_Finalize is too */
#ifdef HAVE_NCCL
  ncclComm_t nccl;
  cudaStream_t stream;
  int nccl_device;
#endif
} M;

static tt_status mpi_fail(int rc, const char *call) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "MPI error %d", rc);
  return tt_error(TT_ERR_IO, "rank %d of %d: %s failed: %s", M.rank, M.size, call, text);
}

#define MPI_TRY(call, name)                          \
  do {                                               \
    int mpi_rc_ = (call);                            \
    if (mpi_rc_ != MPI_SUCCESS) return mpi_fail(mpi_rc_, name); \
  } while (0)

#ifdef HAVE_NCCL
/* Unless the user chose a GPU, rank r on a machine with g GPUs takes GPU r % g:
 * the CUDA backend reads TAMING_CUDA_DEVICE when it starts. */
static void choose_gpu(int local_rank) {
  int count = 0;
  if (getenv("TAMING_CUDA_DEVICE") || cudaGetDeviceCount(&count) != cudaSuccess || count < 1) {
    cudaGetLastError();
    return;
  }
  char v[16];
  snprintf(v, sizeof v, "%d", local_rank % count);
  setenv("TAMING_CUDA_DEVICE", v, 0);
}
#endif

static tt_status m_init(size_t chunk, int *size, int *rank, int *local_rank) {
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    int provided = 0;
    /* a failure here is reported (and the process ended) by MPI itself */
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return tt_error(TT_ERR_IO, "MPI_Init_thread failed (error %d)", rc);
    M.owns_mpi = 1;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_TRY(MPI_Comm_size(MPI_COMM_WORLD, &M.size), "MPI_Comm_size");
  MPI_TRY(MPI_Comm_rank(MPI_COMM_WORLD, &M.rank), "MPI_Comm_rank");
  MPI_Comm node;
  MPI_TRY(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, M.rank, MPI_INFO_NULL, &node),
          "MPI_Comm_split_type (ranks on this machine)");
  MPI_TRY(MPI_Comm_rank(node, local_rank), "MPI_Comm_rank (ranks on this machine)");
  MPI_Comm_free(&node);
  M.chunk = chunk;
  *size = M.size;
  *rank = M.rank;
#ifdef HAVE_NCCL
  M.nccl_device = -1;
  choose_gpu(*local_rank);
#endif
  return TT_OK;
}

static tt_status m_allreduce_sum_f32(float *buf, size_t n) {
  for (size_t off = 0; off < n; off += M.chunk) {
    int count = (int)(n - off < M.chunk ? n - off : M.chunk);
    MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, buf + off, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  }
  return TT_OK;
}

static tt_status m_broadcast(void *buf, size_t nbytes, int root) {
  size_t step = M.chunk * sizeof(float);
  for (size_t off = 0; off < nbytes; off += step) {
    int count = (int)(nbytes - off < step ? nbytes - off : step);
    MPI_TRY(MPI_Bcast((char *)buf + off, count, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
  }
  return TT_OK;
}

static tt_status m_barrier(void) {
  MPI_TRY(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  return TT_OK;
}

static void m_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

/* ---- NCCL: device buffers ---- */

#ifdef HAVE_NCCL
static tt_status cuda_fail(cudaError_t e, const char *call) {
  return tt_error(TT_ERR_DEVICE, "rank %d of %d: %s failed: %s (%s)", M.rank, M.size, call, cudaGetErrorName(e),
                  cudaGetErrorString(e));
}

static tt_status nccl_fail(ncclResult_t r, const char *call) {
  const char *detail = ncclGetLastError(M.nccl);
  return tt_error(TT_ERR_DEVICE, "rank %d of %d: %s failed: %s%s%s", M.rank, M.size, call, ncclGetErrorString(r),
                  detail && *detail ? ": " : "", detail ? detail : "");
}

/* Every rank learns whether all ranks succeeded, so that none of them enters
 * a collective the others will never join. */
static tt_status agree(tt_status mine, const char *step) {
  int ok = mine == TT_OK, all = 0;
  MPI_TRY(MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD), "MPI_Allreduce (agreeing on NCCL set-up)");
  if (mine != TT_OK) return mine;
  if (!all)
    return tt_error(TT_ERR_DEVICE, "rank %d of %d: %s failed on another rank (see its message)", M.rank, M.size, step);
  return TT_OK;
}

/* The communicator lives on the GPU of the first device buffer it sees (the
 * CUDA backend's GPU); it is made once, collectively, on first use. */
static tt_status nccl_ready(const void *dbuf) {
  struct cudaPointerAttributes a;
  cudaError_t e = cudaPointerGetAttributes(&a, dbuf);
  tt_status s = e == cudaSuccess ? TT_OK : cuda_fail(e, "cudaPointerGetAttributes");
  if (s == TT_OK && a.type != cudaMemoryTypeDevice)
    s = tt_error(TT_ERR_INVALID, "rank %d of %d: NCCL was given memory that is not on a GPU", M.rank, M.size);
  if (M.nccl) {
    if (s != TT_OK) return s;
    if (a.device != M.nccl_device)
      return tt_error(TT_ERR_INVALID, "rank %d of %d: the tensor is on GPU %d, the NCCL communicator on GPU %d",
                      M.rank, M.size, a.device, M.nccl_device);
    e = cudaSetDevice(M.nccl_device);
    return e == cudaSuccess ? TT_OK : cuda_fail(e, "cudaSetDevice");
  }
  if (s == TT_OK && (e = cudaSetDevice(a.device)) != cudaSuccess) s = cuda_fail(e, "cudaSetDevice");
  struct {
    int ok;
    ncclUniqueId id;
  } hello;
  memset(&hello, 0, sizeof hello);
  if (M.rank == 0 && s == TT_OK) {
    ncclResult_t r = ncclGetUniqueId(&hello.id);
    s = r == ncclSuccess ? TT_OK : nccl_fail(r, "ncclGetUniqueId");
  }
  hello.ok = s == TT_OK;
  MPI_TRY(MPI_Bcast(&hello, (int)sizeof hello, MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast (NCCL unique id)");
  if (s == TT_OK && !hello.ok)
    s = tt_error(TT_ERR_DEVICE, "rank %d of %d: rank 0 could not make an NCCL id (see its message)", M.rank, M.size);
  TT_TRY(agree(s, "preparing NCCL"));
  ncclResult_t r = ncclCommInitRank(&M.nccl, M.size, hello.id, M.rank);
  if (r != ncclSuccess) {
    s = nccl_fail(r, "ncclCommInitRank");
    M.nccl = NULL;
  } else if ((e = cudaStreamCreateWithFlags(&M.stream, cudaStreamNonBlocking)) != cudaSuccess) {
    s = cuda_fail(e, "cudaStreamCreate");
  }
  if (s == TT_OK) M.nccl_device = a.device;
  return s;
}

static tt_status nccl_wait(ncclResult_t r, const char *call) {
  if (r != ncclSuccess) return nccl_fail(r, call);
  cudaError_t e = cudaStreamSynchronize(M.stream);
  return e == cudaSuccess ? TT_OK : cuda_fail(e, call);
}

static tt_status m_allreduce_sum_f32_device(float *dbuf, size_t n) {
  TT_TRY(nccl_ready(dbuf));
  return nccl_wait(ncclAllReduce(dbuf, dbuf, n, ncclFloat32, ncclSum, M.nccl, M.stream), "ncclAllReduce");
}

static tt_status m_broadcast_device(void *dbuf, size_t nbytes, int root) {
  TT_TRY(nccl_ready(dbuf));
  return nccl_wait(ncclBroadcast(dbuf, dbuf, nbytes, ncclUint8, root, M.nccl, M.stream), "ncclBroadcast");
}
#endif

static tt_status m_finalize(void) {
#ifdef HAVE_NCCL
  if (M.nccl) ncclCommDestroy(M.nccl);
  if (M.stream) cudaStreamDestroy(M.stream);
  M.nccl = NULL;
  M.stream = NULL;
#endif
  if (!M.owns_mpi) return TT_OK;
  M.owns_mpi = 0;
  MPI_TRY(MPI_Finalize(), "MPI_Finalize");
  return TT_OK;
}

static const tt_dist_module module = {
    .abi = TT_DIST_MODULE_ABI,
#ifdef HAVE_NCCL
    .name = "mpi+nccl",
    .allreduce_sum_f32_device = m_allreduce_sum_f32_device,
    .broadcast_device = m_broadcast_device,
#else
    .name = "mpi",
#endif
    .init = m_init,
    .allreduce_sum_f32 = m_allreduce_sum_f32,
    .broadcast = m_broadcast,
    .barrier = m_barrier,
    .finalize = m_finalize,
    .abort = m_abort,
};

TT_API const tt_dist_module *tt_dist_module_get(void);
const tt_dist_module *tt_dist_module_get(void) { return &module; }

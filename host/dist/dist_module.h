/* dist_module.h — the contract between libtaming (host/dist/dist.c) and the MPI
 * module libtaming_mpi.so (host/dist/dist_mpi.c), which libtaming loads with
 * dlopen. Not part of the SDK: both sides are built from the same tree, and
 * the ABI number guards against a stale installed module.
 *
 * The module works on raw buffers; libtaming owns the tensors (validation,
 * staging of strided or device tensors, the division of a mean). Every
 * failure message starts with "rank R of N:" and names the MPI or NCCL call. */
#ifndef TAMING_DIST_MODULE_H
#define TAMING_DIST_MODULE_H

#include <stddef.h>
#include "taming/status.h"

#define TT_DIST_MODULE_ABI 1
#define TT_DIST_MODULE_SYMBOL "tt_dist_module_get"

typedef struct tt_dist_module {
  int abi;          /* TT_DIST_MODULE_ABI of the tree that built the module */
  const char *name; /* "mpi" or "mpi+nccl" */
  /* Starts MPI (unless the host program already did) and reports the world.
   * chunk: elements per MPI call for large buffers (> 0). */
  tt_status (*init)(size_t chunk, int *size, int *rank, int *local_rank);
  /* buf[0..n) = sum over ranks, host memory. */
  tt_status (*allreduce_sum_f32)(float *buf, size_t n);
  /* buf[0..nbytes) = root's bytes, host memory. */
  tt_status (*broadcast)(void *buf, size_t nbytes, int root);
  tt_status (*barrier)(void);
  /* Ends NCCL and MPI (MPI only when init started it). */
  tt_status (*finalize)(void);
  /* Ends the whole job with this exit code (MPI_Abort); does not return. */
  void (*abort)(int code);
  /* Device memory (NCCL); NULL when the module was built without NCCL. The
   * caller has synchronised the device; the call returns when the result is
   * in place. */
  tt_status (*allreduce_sum_f32_device)(float *dbuf, size_t n);
  tt_status (*broadcast_device)(void *dbuf, size_t nbytes, int root);
} tt_dist_module;

typedef const tt_dist_module *(*tt_dist_module_get_fn)(void);

#endif

/* dist.h — data-parallel training across processes (MPI) and GPUs (NCCL).
 *
 * A job is started by a launcher (`mpirun -np N taming run train.lua`); every
 * process runs the same script on its own share of each batch and averages
 * the gradients with tt_dist_allreduce(grad, TT_DIST_MEAN) before the
 * optimiser step, so all ranks keep identical weights.
 *
 * libtaming does not link MPI. The collectives live in a separate module,
 * libtaming_mpi.so (built when configure finds MPI, installed in the package
 * library directory), loaded with dlopen the first time tt_dist_init() finds
 * that the process was started by a launcher (OMPI_COMM_WORLD_SIZE or
 * PMI_SIZE in the environment). A plain process is a world of one: no MPI,
 * no module, and every collective leaves its tensor as it is.
 *
 * Every rank must call the collectives in the same order with tensors of the
 * same shape and dtype; the result is then bit-identical on every rank.
 * CPU tensors go through MPI_Allreduce / MPI_Bcast; CUDA tensors through NCCL
 * when the module was built with it, else they are staged through the host.
 * With CUDA, call tt_dist_init() before the first CUDA tensor is made: it
 * picks the GPU local_rank % (number of GPUs) unless TAMING_CUDA_DEVICE is set.
 *
 * Environment: TAMING_MPI_MODULE (the module's path; when set, only that file
 * is tried), TAMING_MPI_CHUNK (elements per MPI call for large tensors,
 * default 16M). */
#ifndef TAMING_DIST_H
#define TAMING_DIST_H

#include <stdbool.h>
#include "taming/export.h"
#include "taming/status.h"
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tt_dist_op {
  TT_DIST_SUM = 0, /* x = sum over ranks */
  TT_DIST_MEAN     /* x = (sum over ranks) / world size */
} tt_dist_op;

/* Joins the job: starts MPI (MPI_Init_thread) when launched by mpirun/srun,
 * else makes a world of one. Idempotent. Fails when the launcher asked for
 * more than one process and the MPI module is missing (the message says how
 * to build it). The job is finalised when the process exits: MPI_Finalize on
 * exit status 0, MPI_Abort otherwise, so that a rank that fails ends the job
 * instead of leaving the others waiting. */
TT_API tt_status tt_dist_init(void);
/* The world after tt_dist_init (before it, or in a plain process: 1, 0, 0). */
TT_API int tt_dist_size(void);
TT_API int tt_dist_rank(void);
/* Rank among the processes on this machine (picks the GPU). */
TT_API int tt_dist_local_rank(void);
/* True while the job runs on MPI (launched, initialised, not finalised). */
TT_API bool tt_dist_is_mpi(void);
/* "none" (a world of one), "mpi" or "mpi+nccl". */
TT_API const char *tt_dist_backend(void);

/* In place over all ranks; t is f32 on any device, any layout. Calls
 * tt_dist_init() first when needed. */
TT_API tt_status tt_dist_allreduce(tt_tensor *t, tt_dist_op op);
/* In place: every rank receives root's values; any dtype. */
TT_API tt_status tt_dist_broadcast(tt_tensor *t, int root);
TT_API tt_status tt_dist_barrier(void);
/* Leaves the job (NCCL, then MPI). Called at exit if not called before;
 * collectives fail afterwards. */
TT_API tt_status tt_dist_finalize(void);

#ifdef __cplusplus
}
#endif
#endif

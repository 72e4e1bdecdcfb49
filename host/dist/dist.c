/* dist.c — the data-parallel world of a process (taming/dist.h).
 *
 * libtaming itself never links MPI: when the process was started by a
 * launcher, tt_dist_init() loads libtaming_mpi.so with dlopen (as backend.c
 * loads the CUDA backend) and forwards raw buffers to it. This file owns the
 * tensor side: argument checks, staging of strided or device tensors through
 * a contiguous buffer, and the division of a mean, which happens after the
 * sum so that every rank divides the same bits by the same world size. */
#include "config.h"
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "taming/autograd.h"
#include "taming/dist.h"
#include "taming/ops.h"
#include "dist_module.h"
#include "../core/dl.h"
#include "../core/internal.h"

#define MODULE_FILE "libtaming_mpi.so"
/* Elements per MPI call: MPI counts are int, and a bounded message keeps
 * the library's internal reduction buffers bounded too. */
#define DEFAULT_CHUNK ((size_t)1 << 24)

enum { W_NONE = 0, W_SINGLE, W_MPI, W_FINALIZED };

static pthread_mutex_t world_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  int state;
  int size, rank, local_rank;
  const tt_dist_module *mod;
  int exit_hook;
} W = {W_NONE, 1, 0, 0, NULL, 0};

/* ---- messages: "<what>: rank R of N: <cause>" ---- */

static tt_status fail(tt_status s, const char *what, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static tt_status fail(tt_status s, const char *what, const char *fmt, ...) {
  char cause[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cause, sizeof cause, fmt, ap);
  va_end(ap);
  return tt_error(s, "%s: rank %d of %d: %s", what, W.rank, W.size, cause);
}

/* "dist.allreduce(grad [64, 3])" into buf */
static const char *describe(char *buf, size_t n, const char *op, const tt_tensor *t) {
  char sh[128];
  snprintf(buf, n, "%s(%s %s)", op, t->name ? t->name : "tensor", tt_tensor_shape_str(t, sh, sizeof sh));
  return buf;
}

/* ---- finding the module ---- */

/* The launcher's process count (0 when not launched); rank_hint is the
 * launcher's rank, used only in messages before MPI is running. */
static tt_status launched_size(int *size, int *rank_hint) {
  static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
  static const char *const rank_vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK"};
  *size = 0;
  *rank_hint = 0;
  for (int i = 0; i < 2; i++) {
    const char *v = getenv(size_vars[i]);
    if (!v || !*v) continue;
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || *end || n < 1 || n > INT_MAX)
      return tt_error(TT_ERR_INVALID, "dist.init: %s=%s is not a process count", size_vars[i], v);
    const char *r = getenv(rank_vars[i]);
    if (r && *r) *rank_hint = atoi(r);
    *size = (int)n;
    return TT_OK;
  }
  return TT_OK;
}

/* The module by the search rule of dl.h ($TAMING_MPI_MODULE alone when set,
 * the build tree, $TAMING_HOME or the install dir). */
static tt_status open_module(void **h, char *path, size_t n) {
  tt_status s = tt_dl_open(TT_DL_MPI, MODULE_FILE, RTLD_NOW | RTLD_GLOBAL, h, path, n);
  /* RTLD_GLOBAL: Open MPI dlopens its own components, and in builds whose
   * components are not linked against libmpi and libopen-pal they find
   * those symbols only in the global scope. */
  if (s != TT_ERR_NOT_FOUND) return s;
#ifdef HAVE_MPI
  if (getenv("TAMING_MPI_MODULE") && *getenv("TAMING_MPI_MODULE")) return s;
  return tt_error_prefix(s, "%s is not installed (run `make install`, or set TAMING_MPI_MODULE to its path): ",
                         MODULE_FILE);
#else
  return tt_error(TT_ERR_UNSUPPORTED,
                  "this build has no MPI support (%s was not built: configure found no MPI, or was given "
                  "--disable-mpi). Install the MPI "
                  "development files (Debian: apt-get install libopenmpi-dev openmpi-bin), re-run configure "
                  "(it must report 'MPI : yes'; --enable-mpi=yes makes a missing MPI an error), then make and "
                  "make install",
                  MODULE_FILE);
#endif
}

static tt_status load_module(const tt_dist_module **out) {
  void *h = NULL;
  char path[TT_DL_PATH_MAX * 2];
  if (open_module(&h, path, sizeof path) != TT_OK) {
    char why[1536];
    snprintf(why, sizeof why, "%s", tt_error_message());
    return tt_error(TT_ERR_UNSUPPORTED, "%s", why);
  }
  tt_dist_module_get_fn get = (tt_dist_module_get_fn)dlsym(h, TT_DIST_MODULE_SYMBOL);
  const tt_dist_module *m = get ? get() : NULL;
  if (!m) {
    dlclose(h);
    return tt_error(TT_ERR_PLUGIN, "%s: not the MPI module (no %s symbol)", path, TT_DIST_MODULE_SYMBOL);
  }
  if (m->abi != TT_DIST_MODULE_ABI)
    return tt_error(TT_ERR_PLUGIN, "%s speaks module ABI %d, this libtaming %d (a stale install? reinstall both)",
                    path, m->abi, TT_DIST_MODULE_ABI);
  *out = m;
  return TT_OK;
}

static tt_status read_chunk(size_t *chunk) {
  *chunk = DEFAULT_CHUNK;
  const char *v = getenv("TAMING_MPI_CHUNK");
  if (!v || !*v) return TT_OK;
  char *end = NULL;
  errno = 0;
  long long c = strtoll(v, &end, 10);
  if (errno || *end || c < 1 || c > INT_MAX / 8)
    return tt_error(TT_ERR_INVALID, "dist.init: TAMING_MPI_CHUNK=%s: expected a count of elements in [1, %d]", v,
                    INT_MAX / 8);
  *chunk = (size_t)c;
  return TT_OK;
}

/* ---- the world ---- */

/* Exit status 0: a clean MPI_Finalize. Anything else: MPI_Abort, so the
 * other ranks, perhaps waiting in a collective for this one, are ended by the
 * launcher instead of hanging (MPI_Finalize may wait for every rank). */
static void at_exit(int status, void *arg) {
  (void)arg;
  if (W.state != W_MPI) return;
  if (status != 0) W.mod->abort(status);
  tt_dist_finalize();
}

static tt_status init_locked(void) {
  if (W.state == W_SINGLE || W.state == W_MPI) return TT_OK;
  if (W.state == W_FINALIZED)
    return fail(TT_ERR_INVALID, "dist.init", "the job was already finalised (MPI cannot start twice in one process)");
  int n = 0, rank_hint = 0;
  TT_TRY(launched_size(&n, &rank_hint));
  if (n == 0) {
    W.state = W_SINGLE;
    return TT_OK;
  }
  const tt_dist_module *m = NULL;
  if (load_module(&m) != TT_OK) {
    if (n == 1) { /* `mpirun -np 1` without the module: a world of one is still right */
      tt_error_clear();
      W.state = W_SINGLE;
      return TT_OK;
    }
    return tt_error_prefix(tt_last_status(),
                           "dist.init: rank %d of %d: this process was launched as one of %d processes, but "
                           "multi-process training needs the MPI module: ",
                           rank_hint, n, n);
  }
  size_t chunk;
  TT_TRY(read_chunk(&chunk));
  int size = 1, rank = 0, local = 0;
  if (m->init(chunk, &size, &rank, &local) != TT_OK) return tt_error_prefix(tt_last_status(), "dist.init: ");
  W.mod = m;
  W.size = size;
  W.rank = rank;
  W.local_rank = local;
  W.state = W_MPI;
  if (!W.exit_hook) {
    on_exit(at_exit, NULL);
    W.exit_hook = 1;
  }
  return TT_OK;
}

tt_status tt_dist_init(void) {
  pthread_mutex_lock(&world_lock);
  tt_status s = init_locked();
  pthread_mutex_unlock(&world_lock);
  return s;
}

int tt_dist_size(void) { return W.size; }
int tt_dist_rank(void) { return W.rank; }
int tt_dist_local_rank(void) { return W.local_rank; }
bool tt_dist_is_mpi(void) { return W.state == W_MPI; }
const char *tt_dist_backend(void) { return W.state == W_MPI ? W.mod->name : "none"; }

tt_status tt_dist_finalize(void) {
  pthread_mutex_lock(&world_lock);
  tt_status s = TT_OK;
  if (W.state == W_MPI) {
    s = W.mod->finalize();
    if (s != TT_OK) tt_error_prefix(s, "dist.finalize: ");
  }
  W.state = W_FINALIZED;
  pthread_mutex_unlock(&world_lock);
  return s;
}

/* ---- collectives ---- */

/* A contiguous copy of t on dev, made without autograd. */
static tt_tensor *stage(tt_tensor *t, tt_device dev) {
  tt_tensor *s = tt_tensor_new(t->dtype, t->ndim, t->shape, dev);
  if (s && tt_copy_(s, t) != TT_OK) tt_tensor_release(&s);
  return s;
}

/* x /= world size, on any device; in f32, like the sum. */
static tt_status divide_by_size(tt_tensor *buf) {
  const float d = (float)W.size;
  if (buf->device == TT_CPU) {
    float *p = tt_f32(buf);
    int64_t n = tt_tensor_numel(buf);
#pragma omp parallel for if (n > 32768)
    for (int64_t i = 0; i < n; i++) p[i] /= d;
    return TT_OK;
  }
  bool was = tt_grad_set_enabled(false);
  tt_tensor *div = tt_scalar(d, buf->device);
  tt_tensor *q = div ? tt_div(buf, div) : NULL;
  tt_grad_set_enabled(was);
  tt_status s = q ? tt_copy_(buf, q) : tt_last_status();
  tt_tensor_unref(q);
  tt_tensor_unref(div);
  return s;
}

/* Sums buf (contiguous f32) over the ranks, on the device when the module can. */
static tt_status reduce_buffer(tt_tensor *buf) {
  size_t n = (size_t)tt_tensor_numel(buf);
  if (buf->device == TT_CPU) return W.mod->allreduce_sum_f32(tt_f32(buf), n);
  TT_TRY(tt_device_synchronize(buf->device));
  return W.mod->allreduce_sum_f32_device(tt_f32(buf), n);
}

static tt_status bcast_buffer(tt_tensor *buf, int root) {
  size_t n = tt_tensor_nbytes(buf);
  if (buf->device == TT_CPU) return W.mod->broadcast(tt_tensor_data(buf), n, root);
  TT_TRY(tt_device_synchronize(buf->device));
  return W.mod->broadcast_device(tt_tensor_data(buf), n, root);
}

/* Where the collective works on t: t itself when it is contiguous and the
 * module reaches its memory, else a staging copy (on the host for a device
 * tensor when the module has no NCCL). */
static tt_tensor *work_buffer(tt_tensor *t, bool device_ok) {
  tt_device dev = t->device == TT_CPU || device_ok ? t->device : TT_CPU;
  if (dev == t->device && tt_tensor_is_contiguous(t)) return tt_tensor_ref(t);
  return stage(t, dev);
}

tt_status tt_dist_allreduce(tt_tensor *t, tt_dist_op op) {
  char what[256];
  if (!t) return fail(TT_ERR_INVALID, "dist.allreduce", "the tensor is NULL");
  describe(what, sizeof what, "dist.allreduce", t);
  if (op != TT_DIST_SUM && op != TT_DIST_MEAN)
    return fail(TT_ERR_INVALID, what, "unknown reduction %d (expected sum or mean)", (int)op);
  if (t->dtype != TT_F32)
    return fail(TT_ERR_UNSUPPORTED, what, "the tensor is %s; only f32 tensors are reduced", tt_dtype_name(t->dtype));
  if (tt_dist_init() != TT_OK) return tt_error_prefix(tt_last_status(), "%s: ", what);
  /* a world of one: the sum is x and the mean x / 1 == x, bit for bit */
  if (W.state != W_MPI || tt_tensor_numel(t) == 0) return TT_OK;
  tt_tensor *buf = work_buffer(t, W.mod->allreduce_sum_f32_device != NULL);
  if (!buf) return tt_error_prefix(tt_last_status(), "%s: staging: ", what);
  tt_status s = reduce_buffer(buf);
  if (s == TT_OK && op == TT_DIST_MEAN) s = divide_by_size(buf);
  if (s == TT_OK && buf != t) s = tt_copy_(t, buf);
  tt_tensor_unref(buf);
  return s == TT_OK ? TT_OK : tt_error_prefix(s, "%s: ", what);
}

tt_status tt_dist_broadcast(tt_tensor *t, int root) {
  char what[256];
  if (!t) return fail(TT_ERR_INVALID, "dist.broadcast", "the tensor is NULL");
  describe(what, sizeof what, "dist.broadcast", t);
  if (tt_dist_init() != TT_OK) return tt_error_prefix(tt_last_status(), "%s: ", what);
  if (root < 0 || root >= W.size)
    return fail(TT_ERR_INVALID, what, "root %d is not a rank of this job (ranks 0..%d)", root, W.size - 1);
  if (W.state != W_MPI || tt_tensor_numel(t) == 0) return TT_OK;
  tt_tensor *buf = work_buffer(t, W.mod->broadcast_device != NULL);
  if (!buf) return tt_error_prefix(tt_last_status(), "%s: staging: ", what);
  tt_status s = bcast_buffer(buf, root);
  if (s == TT_OK && buf != t) s = tt_copy_(t, buf);
  tt_tensor_unref(buf);
  return s == TT_OK ? TT_OK : tt_error_prefix(s, "%s: ", what);
}

tt_status tt_dist_barrier(void) {
  if (tt_dist_init() != TT_OK) return tt_error_prefix(tt_last_status(), "dist.barrier: ");
  if (W.state != W_MPI) return TT_OK;
  tt_status s = W.mod->barrier();
  return s == TT_OK ? TT_OK : tt_error_prefix(s, "dist.barrier: ");
}

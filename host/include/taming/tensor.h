/* tensor.h — the tensor: dtype, shape, strides and a refcounted storage.
 *
 * A tensor is a small POD view (ggml-style) onto a storage. Storages are
 * refcounted and may be an mmap of a checkpoint (zero-copy weights) or device
 * memory. Strides and offsets are in elements. Shapes are written in comments
 * as [B, C, H, W]. Every constructor returns NULL on failure with the reason in
 * tt_error_message(). Reference counting: functions that return a tensor hand
 * the caller one reference; arguments are borrowed unless stated. */
#ifndef TAMING_TENSOR_H
#define TAMING_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "taming/export.h"
#include "taming/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TT_MAX_DIMS 8

typedef enum tt_dtype {
  TT_F32 = 0,
  TT_I64,
  TT_U8,
  TT_I32,
  TT_BF16, /* storage type: planned for weights and GPU math */
  TT_F16,  /* storage type: planned */
  TT_F64,
  TT_I8,   /* storage type: int8 weights (quantized linear layers) */
  TT_DTYPE_COUNT
} tt_dtype;

typedef enum tt_device {
  TT_CPU = 0,
  TT_CUDA = 1,
  TT_DEVICE_COUNT
} tt_device;

enum {
  TT_STORAGE_MMAP = 1u << 0,     /* bytes live in a mapped file */
  TT_STORAGE_BORROWED = 1u << 1  /* bytes are owned by someone else (owner keeps them alive) */
};

typedef struct tt_storage tt_storage;
struct tt_storage {
  int refcount;          /* atomic */
  tt_device device;
  unsigned flags;
  void *data;
  size_t nbytes;
  /* Who frees the bytes: NULL means the device backend's allocator. */
  void (*release)(tt_storage *s);
  void *owner;           /* e.g. the mapped file; released by `release` */
};

struct tt_node;

typedef struct tt_tensor tt_tensor;
struct tt_tensor {
  int refcount;                   /* atomic */
  tt_dtype dtype;
  tt_device device;               /* == storage->device */
  int ndim;                       /* 0 for a scalar */
  int64_t shape[TT_MAX_DIMS];
  int64_t stride[TT_MAX_DIMS];    /* in elements */
  int64_t offset;                 /* in elements, into storage->data */
  tt_storage *storage;
  /* autograd */
  int requires_grad;              /* a leaf whose gradient is wanted */
  tt_tensor *grad;                /* accumulated gradient of a leaf */
  struct tt_node *grad_fn;        /* the op that made this tensor (NULL for leaves) */
  int out_index;                  /* which output of grad_fn */
  char *name;                     /* optional, for messages */
};

/* Shape literal helper: tt_tensor_new(TT_F32, TT_DIMS(1, 3, 32, 32), TT_CPU). */
#define TT_DIMS(...) \
  (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]){__VA_ARGS__}

TT_API size_t tt_dtype_size(tt_dtype dt);
TT_API const char *tt_dtype_name(tt_dtype dt);       /* "f32", "i64", ... */
TT_API int tt_dtype_from_name(const char *name);    /* -1 if unknown */
TT_API const char *tt_device_name(tt_device dev);    /* "cpu", "cuda" */
TT_API int tt_device_from_name(const char *name);   /* -1 if unknown */

/* Uninitialised contiguous tensor. */
TT_API tt_tensor *tt_tensor_new(tt_dtype dt, int ndim, const int64_t *shape, tt_device dev);
TT_API tt_tensor *tt_tensor_new_like(const tt_tensor *t);
TT_API tt_tensor *tt_zeros(tt_dtype dt, int ndim, const int64_t *shape, tt_device dev);
TT_API tt_tensor *tt_full(tt_dtype dt, int ndim, const int64_t *shape, double value, tt_device dev);
TT_API tt_tensor *tt_zeros_like(const tt_tensor *t);
TT_API tt_tensor *tt_scalar(double value, tt_device dev);        /* 0-dim f32 */
/* Copies host data (dtype dt, contiguous) into a new tensor on dev. */
TT_API tt_tensor *tt_tensor_from_data(tt_dtype dt, int ndim, const int64_t *shape,
                                      const void *data, tt_device dev);
/* A view onto a storage (takes a new reference to it). strides may be NULL (contiguous). */
TT_API tt_tensor *tt_tensor_from_storage(tt_storage *s, tt_dtype dt, int ndim, const int64_t *shape,
                                         const int64_t *strides, int64_t offset);
/* A tensor header sharing t's storage with the given geometry (no autograd link). */
TT_API tt_tensor *tt_tensor_view_of(const tt_tensor *t, int ndim, const int64_t *shape,
                                    const int64_t *strides, int64_t offset);

TT_API tt_tensor *tt_tensor_ref(tt_tensor *t);
TT_API void tt_tensor_unref(tt_tensor *t);
/* Unrefs *pt and sets it to NULL. */
TT_API void tt_tensor_release(tt_tensor **pt);
TT_API void tt_tensor_set_name(tt_tensor *t, const char *name);

/* Constructors refuse shapes whose byte count overflows, so these are exact for
 * every tensor they made (numel -1 / nbytes SIZE_MAX only for a header built by hand). */
TT_API int64_t tt_tensor_numel(const tt_tensor *t);
TT_API size_t tt_tensor_nbytes(const tt_tensor *t);
TT_API bool tt_tensor_is_contiguous(const tt_tensor *t);
TT_API bool tt_tensor_same_shape(const tt_tensor *a, const tt_tensor *b);
/* Pointer to the first element (storage data + offset). */
TT_API void *tt_tensor_data(const tt_tensor *t);
static inline float *tt_f32(const tt_tensor *t) { return (float *)tt_tensor_data(t); }
static inline int64_t *tt_i64(const tt_tensor *t) { return (int64_t *)tt_tensor_data(t); }
/* Negative dims count from the end; returns -1 when out of range. */
TT_API int tt_tensor_dim(const tt_tensor *t, int dim);
/* Writes "[1, 3, 32, 32]" into buf and returns buf. */
TT_API char *tt_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);
#define tt_tensor_shape_str(t, buf, n) tt_shape_str((t)->ndim, (t)->shape, buf, n)
/* Checks t against an expected shape; on mismatch sets an error naming `what`. */
TT_API tt_status tt_tensor_check_shape(const tt_tensor *t, const char *what, int ndim,
                                       const int64_t *shape);
/* Contiguous strides for a shape; returns numel, or -1 when a product of its
 * dims overflows int64 (constructors refuse such shapes: see taming/checked.h). */
TT_API int64_t tt_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);

/* Reads element i (row-major over the shape, any dtype, CPU or device) as double. */
TT_API double tt_tensor_get(const tt_tensor *t, int64_t i);
/* Scalar value of a one-element tensor. */
TT_API tt_status tt_tensor_item(const tt_tensor *t, double *out);

/* Storage */
TT_API tt_storage *tt_storage_new(size_t nbytes, tt_device dev);
TT_API tt_storage *tt_storage_wrap(void *data, size_t nbytes, tt_device dev, unsigned flags,
                                   void (*release)(tt_storage *), void *owner);
TT_API tt_storage *tt_storage_ref(tt_storage *s);
TT_API void tt_storage_unref(tt_storage *s);

/* Bytes currently held by tensors on a device (for memory reports). */
TT_API size_t tt_memory_in_use(tt_device dev);

#ifdef __cplusplus
}
#endif
#endif

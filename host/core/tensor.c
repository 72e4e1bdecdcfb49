/* tensor.c — tensor headers, refcounted storages and their bookkeeping. */
#include "config.h"
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "taming/autograd.h"
#include "backend_impl.h"
#include "taming/checked.h"
#include "taming/dtype.h"
#include "taming/ops/copy.h"
#include "taming/profile.h"
#include "taming/tensor.h"

static _Atomic size_t mem_in_use[TT_DEVICE_COUNT];

size_t tt_dtype_size(tt_dtype dt) {
  switch (dt) {
    case TT_F32: return 4;
    case TT_I64: return 8;
    case TT_U8: return 1;
    case TT_I32: return 4;
    case TT_BF16: return 2;
    case TT_F16: return 2;
    case TT_F64: return 8;
    case TT_I8: return 1;
    default: return 0;
  }
}

static const char *dtype_names[TT_DTYPE_COUNT] = {"f32", "i64", "u8", "i32", "bf16", "f16", "f64", "i8"};

const char *tt_dtype_name(tt_dtype dt) {
  return (unsigned)dt < TT_DTYPE_COUNT ? dtype_names[dt] : "?";
}

int tt_dtype_from_name(const char *name) {
  for (int i = 0; i < TT_DTYPE_COUNT; i++)
    if (strcmp(name, dtype_names[i]) == 0) return i;
  return -1;
}

const char *tt_device_name(tt_device dev) {
  return dev == TT_CPU ? "cpu" : dev == TT_CUDA ? "cuda" : "?";
}

int tt_device_from_name(const char *name) {
  if (strcmp(name, "cpu") == 0) return TT_CPU;
  if (strcmp(name, "cuda") == 0 || strncmp(name, "cuda:", 5) == 0) return TT_CUDA;
  return -1;
}

/* ---- storage ---- */

tt_storage *tt_storage_new(size_t nbytes, tt_device dev) {
  tt_backend *b = tt_backend_get(dev);
  if (!b) return NULL;
  tt_storage *s = calloc(1, sizeof *s);
  if (!s) {
    tt_error(TT_ERR_NOMEM, "out of memory allocating a storage header");
    return NULL;
  }
  s->refcount = 1;
  s->device = dev;
  s->nbytes = nbytes;
  s->data = b->alloc(b, nbytes ? nbytes : 1);
  if (!s->data) {
    free(s);
    tt_error(TT_ERR_NOMEM, "out of %s memory allocating %zu bytes (%zu in use)",
             tt_device_name(dev), nbytes, tt_memory_in_use(dev));
    return NULL;
  }
  size_t in_use = atomic_fetch_add(&mem_in_use[dev], nbytes) + nbytes;
  tt_profile_note_alloc(nbytes, dev == TT_CPU ? in_use : 0);
  return s;
}

tt_storage *tt_storage_wrap(void *data, size_t nbytes, tt_device dev, unsigned flags,
                            void (*release)(tt_storage *), void *owner) {
  tt_storage *s = calloc(1, sizeof *s);
  if (!s) {
    tt_error(TT_ERR_NOMEM, "out of memory allocating a storage header");
    return NULL;
  }
  s->refcount = 1;
  s->device = dev;
  s->flags = flags;
  s->data = data;
  s->nbytes = nbytes;
  s->release = release;
  s->owner = owner;
  return s;
}

tt_storage *tt_storage_ref(tt_storage *s) {
  if (s) atomic_fetch_add_explicit((_Atomic int *)&s->refcount, 1, memory_order_relaxed);
  return s;
}

void tt_storage_unref(tt_storage *s) {
  if (!s) return;
  if (atomic_fetch_sub_explicit((_Atomic int *)&s->refcount, 1, memory_order_acq_rel) != 1) return;
  if (s->release) {
    s->release(s);
  } else if (s->data) {
    tt_backend *b = tt_backend_get(s->device);
    if (b) b->free(b, s->data, s->nbytes ? s->nbytes : 1);
    atomic_fetch_sub(&mem_in_use[s->device], s->nbytes);
  }
  free(s);
}

size_t tt_memory_in_use(tt_device dev) {
  return (unsigned)dev < TT_DEVICE_COUNT ? atomic_load(&mem_in_use[dev]) : 0;
}

/* ---- tensors ---- */

int64_t tt_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
  /* products of trailing dims: each fits when the shape passed tt_shape_numel */
  int64_t n = 1;
  bool ok = true;
  for (int i = ndim - 1; i >= 0; i--) {
    strides[i] = n;
    if (ok && !tt_i64_mul(n, shape[i], &n)) ok = false;
  }
  return ok ? n : -1;
}

static tt_tensor *header_new(tt_dtype dt, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > TT_MAX_DIMS) {
    tt_error(TT_ERR_INVALID, "a tensor has at most %d dims, asked for %d", TT_MAX_DIMS, ndim);
    return NULL;
  }
  if ((unsigned)dt >= TT_DTYPE_COUNT) {
    tt_error(TT_ERR_INVALID, "unknown dtype %d", (int)dt);
    return NULL;
  }
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) {
      char buf[128];
      tt_error(TT_ERR_INVALID, "negative size in shape %s", tt_shape_str(ndim, shape, buf, sizeof buf));
      return NULL;
    }
  }
  /* every stride, element count and byte count of the shape must fit int64,
   * even when a zero dim makes the tensor empty */
  size_t nbytes;
  if (!tt_shape_nbytes(ndim, shape, tt_dtype_size(dt), &nbytes)) {
    char buf[200];
    tt_error(TT_ERR_INVALID, "shape %s of %s is too large: its size in bytes overflows 64 bits",
             tt_shape_str(ndim, shape, buf, sizeof buf), tt_dtype_name(dt));
    return NULL;
  }
  tt_tensor *t = calloc(1, sizeof *t);
  if (!t) {
    tt_error(TT_ERR_NOMEM, "out of memory allocating a tensor header");
    return NULL;
  }
  t->refcount = 1;
  t->dtype = dt;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  return t;
}

tt_tensor *tt_tensor_new(tt_dtype dt, int ndim, const int64_t *shape, tt_device dev) {
  tt_tensor *t = header_new(dt, ndim, shape);
  if (!t) return NULL;
  int64_t n = tt_contiguous_strides(ndim, shape, t->stride);   /* fits: checked by header_new */
  t->storage = tt_storage_new((size_t)n * tt_dtype_size(dt), dev);
  if (!t->storage) {
    free(t);
    return NULL;
  }
  t->device = dev;
  return t;
}

tt_tensor *tt_tensor_new_like(const tt_tensor *t) {
  return tt_tensor_new(t->dtype, t->ndim, t->shape, t->device);
}

tt_tensor *tt_full(tt_dtype dt, int ndim, const int64_t *shape, double value, tt_device dev) {
  tt_tensor *t = tt_tensor_new(dt, ndim, shape, dev);
  if (!t) return NULL;
  if (tt_fill_(t, value) != TT_OK) {
    tt_tensor_unref(t);
    return NULL;
  }
  return t;
}

tt_tensor *tt_zeros(tt_dtype dt, int ndim, const int64_t *shape, tt_device dev) {
  return tt_full(dt, ndim, shape, 0.0, dev);
}

tt_tensor *tt_zeros_like(const tt_tensor *t) { return tt_zeros(t->dtype, t->ndim, t->shape, t->device); }

tt_tensor *tt_scalar(double value, tt_device dev) { return tt_full(TT_F32, 0, NULL, value, dev); }

tt_tensor *tt_tensor_from_data(tt_dtype dt, int ndim, const int64_t *shape, const void *data,
                               tt_device dev) {
  tt_tensor *t = tt_tensor_new(dt, ndim, shape, dev);
  if (!t) return NULL;
  if (tt_tensor_write(t, data) != TT_OK) {
    tt_tensor_unref(t);
    return NULL;
  }
  return t;
}

tt_tensor *tt_tensor_from_storage(tt_storage *s, tt_dtype dt, int ndim, const int64_t *shape,
                                  const int64_t *strides, int64_t offset) {
  tt_tensor *t = header_new(dt, ndim, shape);
  if (!t) return NULL;
  if (strides) {
    for (int i = 0; i < ndim; i++) t->stride[i] = strides[i];
  } else {
    tt_contiguous_strides(ndim, shape, t->stride);
  }
  /* every element the view touches must lie inside the storage */
  int64_t lo, hi;
  bool empty;
  size_t es = tt_dtype_size(dt);
  bool fits = tt_view_span(ndim, shape, t->stride, offset, &lo, &hi, &empty);
  if (!fits || (!empty && (lo < 0 || (uint64_t)hi >= s->nbytes / es))) {
    char buf[128];
    tt_error(TT_ERR_FORMAT, "tensor %s (%s) at element offset %lld reaches past its storage of %zu bytes",
             tt_shape_str(ndim, shape, buf, sizeof buf), tt_dtype_name(dt), (long long)offset, s->nbytes);
    free(t);
    return NULL;
  }
  t->offset = offset;
  t->storage = tt_storage_ref(s);
  t->device = s->device;
  return t;
}

tt_tensor *tt_tensor_view_of(const tt_tensor *t, int ndim, const int64_t *shape,
                             const int64_t *strides, int64_t offset) {
  return tt_tensor_from_storage(t->storage, t->dtype, ndim, shape, strides, offset);
}

tt_tensor *tt_tensor_ref(tt_tensor *t) {
  if (t) atomic_fetch_add_explicit((_Atomic int *)&t->refcount, 1, memory_order_relaxed);
  return t;
}

void tt_tensor_unref(tt_tensor *t) {
  if (!t) return;
  if (atomic_fetch_sub_explicit((_Atomic int *)&t->refcount, 1, memory_order_acq_rel) != 1) return;
  tt_storage_unref(t->storage);
  tt_tensor_unref(t->grad);
  if (t->grad_fn) tt_node_unref(t->grad_fn);
  free(t->name);
  free(t);
}

void tt_tensor_release(tt_tensor **pt) {
  if (!pt) return;
  tt_tensor_unref(*pt);
  *pt = NULL;
}

void tt_tensor_set_name(tt_tensor *t, const char *name) {
  free(t->name);
  t->name = name ? strdup(name) : NULL;
}

int64_t tt_tensor_numel(const tt_tensor *t) {
  int64_t n;
  return tt_shape_numel(t->ndim, t->shape, &n) ? n : -1;   /* -1 only for a header built by hand */
}

size_t tt_tensor_nbytes(const tt_tensor *t) {
  size_t n;
  return tt_shape_nbytes(t->ndim, t->shape, tt_dtype_size(t->dtype), &n) ? n : SIZE_MAX;
}

bool tt_tensor_is_contiguous(const tt_tensor *t) {
  int64_t n = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->stride[i] != n) return false;
    n *= t->shape[i];
  }
  return true;
}

bool tt_tensor_same_shape(const tt_tensor *a, const tt_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return false;
  return true;
}

void *tt_tensor_data(const tt_tensor *t) {
  return (char *)t->storage->data + (size_t)t->offset * tt_dtype_size(t->dtype);
}

int tt_tensor_dim(const tt_tensor *t, int dim) {
  int nd = t->ndim;
  if (dim < 0) dim += nd;
  return (dim < 0 || dim >= (nd ? nd : 1)) ? -1 : dim;
}

char *tt_shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "[");
  for (int i = 0; i < ndim; i++)
    k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "%s%lld", i ? ", " : "", (long long)shape[i]);
  snprintf(buf + k, k < n ? n - k : 0, "]");
  return buf;
}

tt_status tt_tensor_check_shape(const tt_tensor *t, const char *what, int ndim, const int64_t *shape) {
  bool ok = t->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++)
    if (shape[i] >= 0 && t->shape[i] != shape[i]) ok = false;
  if (ok) return TT_OK;
  char e[160], f[160];
  return tt_error(TT_ERR_INVALID, "%s: expected shape %s, found %s", what,
                  tt_shape_str(ndim, shape, e, sizeof e), tt_shape_str(t->ndim, t->shape, f, sizeof f));
}

double tt_tensor_get(const tt_tensor *t, int64_t i) {
  int64_t off = t->offset;
  for (int d = t->ndim - 1; d >= 0; d--) {
    int64_t n = t->shape[d];
    off += (i % n) * t->stride[d];
    i /= n;
  }
  size_t es = tt_dtype_size(t->dtype);
  if (t->device == TT_CPU) return tt_dtype_load_f64((const char *)t->storage->data + (size_t)off * es, t->dtype);
  unsigned char buf[8];
  tt_backend *b = tt_backend_get(t->device);
  if (!b || b->copy_to_host(b, buf, (const char *)t->storage->data + (size_t)off * es, es) != TT_OK)
    return 0;
  return tt_dtype_load_f64(buf, t->dtype);
}

tt_status tt_tensor_item(const tt_tensor *t, double *out) {
  if (tt_tensor_numel(t) != 1) {
    char buf[128];
    return tt_error(TT_ERR_INVALID, "item(): expected a one-element tensor, found shape %s",
                    tt_tensor_shape_str(t, buf, sizeof buf));
  }
  *out = tt_tensor_get(t, 0);
  return TT_OK;
}

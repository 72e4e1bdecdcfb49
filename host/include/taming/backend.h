/* backend.h — the device backends behind the op table.
 *
 * A backend is a vtable (ggml-style `iface`): memory (alloc, free, copy,
 * memset, synchronize) plus a table of named kernels. Every op family declares
 * the C type of each of its kernels in its header (taming/ops/<family>.h); a
 * backend registers an implementation under the kernel's name, and the op
 * looks it up with TT_KERNEL(). A missing kernel is a clear error naming the
 * backend and the kernel, never a crash; tt_backend_supports() answers
 * without failing.
 *
 * The CPU backend is built in. The CUDA backend lives in its own shared
 * object (libtaming_cuda) and is loaded the first time a tensor asks for
 * TT_CUDA; without it, asking for cuda is an error that says why. */
#ifndef TAMING_BACKEND_H
#define TAMING_BACKEND_H

#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*tt_kernel_fn)(void);

typedef struct tt_backend tt_backend;
struct tt_backend {
  const char *name;
  tt_device device;
  /* memory */
  void *(*alloc)(tt_backend *b, size_t nbytes);            /* NULL on failure */
  void (*free)(tt_backend *b, void *p, size_t nbytes);
  /* Copies between this device and the host or within the device. */
  tt_status (*copy_to_host)(tt_backend *b, void *dst, const void *src, size_t nbytes);
  tt_status (*copy_from_host)(tt_backend *b, void *dst, const void *src, size_t nbytes);
  tt_status (*copy_device)(tt_backend *b, void *dst, const void *src, size_t nbytes);
  tt_status (*memset0)(tt_backend *b, void *p, size_t nbytes);
  tt_status (*synchronize)(tt_backend *b);                  /* optional (NULL: synchronous) */
  /* optional: a one-line description of the device ("NVIDIA H200, 139 GiB") */
  const char *(*describe)(tt_backend *b);
  void *context;                                            /* backend private */
  /* kernel table, filled by tt_backend_register_kernel */
  struct tt_kernel_entry *kernels;
  int n_kernels, cap_kernels;
};

/* The backend of a device; loads the CUDA module on first use. NULL + error if unavailable. */
TT_API tt_backend *tt_backend_get(tt_device dev);
/* True when the device can be used in this process (cuda: module built and a GPU visible). */
TT_API bool tt_device_available(tt_device dev);
TT_API tt_status tt_backend_register_kernel(tt_backend *b, const char *name, tt_kernel_fn fn);
/* The kernel `name` of a device's backend, or NULL with an error naming both. */
TT_API tt_kernel_fn tt_backend_kernel(tt_device dev, const char *name);
TT_API bool tt_backend_supports(tt_device dev, const char *name);
/* Number and names of registered kernels (for listings and tests). */
TT_API int tt_backend_kernel_count(tt_device dev);
TT_API const char *tt_backend_kernel_name(tt_device dev, int i);
TT_API tt_status tt_device_synchronize(tt_device dev);

/* Looks up kernel NAME of the tensor's device, typed as tt_NAME_fn; NULL on failure:
 *   tt_conv2d_fwd_fn f = TT_KERNEL(x->device, conv2d_fwd); if (!f) return NULL; */
#define TT_KERNEL(dev, NAME) ((tt_##NAME##_fn)tt_backend_kernel((dev), #NAME))
#define TT_REGISTER_KERNEL(backend, NAME, impl)                              \
  do {                                                                       \
    tt_##NAME##_fn tt_reg_typed_ = (impl); /* checks impl's signature */     \
    TT_TRY(tt_backend_register_kernel((backend), #NAME, (tt_kernel_fn)tt_reg_typed_)); \
  } while (0)

/* Used by the CUDA module: the entry point it exports to register itself. */
typedef tt_status (*tt_backend_module_init_fn)(tt_backend **out);
#define TT_BACKEND_MODULE_SYMBOL "tt_backend_module_init"

#ifdef __cplusplus
}
#endif
#endif

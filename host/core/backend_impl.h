/* backend_impl.h — the inside of a backend, shared by libtaming, the CPU
 * kernels and the CUDA module (not part of the SDK: plugins see tt_backend as
 * an opaque type and reach kernels by name through TT_KERNEL).
 *
 * A backend is a vtable (ggml-style `iface`): memory (alloc, free, copy,
 * memset, synchronize) plus a table of named kernels filled by
 * TT_REGISTER_KERNEL. The CUDA module, a separate shared object, exports one
 * tt_backend_module descriptor; the host refuses it, naming the file and both
 * versions, when it was built for another ABI or another tt_backend layout. */
#ifndef TAMING_BACKEND_IMPL_H
#define TAMING_BACKEND_IMPL_H

#include <stdint.h>
#include "taming/backend.h"
#include "taming/version.h"

#ifdef __cplusplus
extern "C" {
#endif

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

TT_API tt_status tt_backend_register_kernel(tt_backend *b, const char *name, tt_kernel_fn fn);
#define TT_REGISTER_KERNEL(backend, NAME, impl)                              \
  do {                                                                       \
    tt_##NAME##_fn tt_reg_typed_ = (impl); /* checks impl's signature */     \
    TT_TRY(tt_backend_register_kernel((backend), #NAME, (tt_kernel_fn)tt_reg_typed_)); \
  } while (0)

/* What the CUDA module exports, as a plugin exports its descriptor: the ABI of
 * the SDK it was built with (the plugin ABI numbers), the tt_backend layout it
 * fills, and its entry point. */
typedef struct tt_backend_module {
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t backend_size;   /* sizeof(tt_backend) the module was built with */
  tt_status (*init)(tt_backend **out);
} tt_backend_module;
#define TT_BACKEND_MODULE_SYMBOL "tt_backend_module_desc"
#ifdef __cplusplus
#define TT_BACKEND_MODULE_LINKAGE extern "C"
#else
#define TT_BACKEND_MODULE_LINKAGE
#endif
#define TT_BACKEND_MODULE_DEFINE(init_fn)                                                  \
  TT_BACKEND_MODULE_LINKAGE TT_API const tt_backend_module tt_backend_module_desc = {      \
      TT_PLUGIN_ABI_MAJOR, TT_PLUGIN_ABI_MINOR, (uint32_t)sizeof(tt_backend), (init_fn)}

#ifdef __cplusplus
}
#endif
#endif

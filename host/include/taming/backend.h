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

/* A device backend. Its layout and the kernel registration are libtaming's
 * business (host/backend_impl.h), not part of the SDK. */
typedef struct tt_backend tt_backend;

/* The backend of a device; loads the CUDA module on first use. NULL + error if unavailable. */
TT_API tt_backend *tt_backend_get(tt_device dev);
/* True when the device can be used in this process (cuda: module built and a GPU visible). */
TT_API bool tt_device_available(tt_device dev);
/* The kernel `name` of a device's backend, or NULL with an error naming both. */
TT_API tt_kernel_fn tt_backend_kernel(tt_device dev, const char *name);
TT_API bool tt_backend_supports(tt_device dev, const char *name);
/* Number and names of registered kernels (for listings and tests). */
TT_API int tt_backend_kernel_count(tt_device dev);
TT_API const char *tt_backend_kernel_name(tt_device dev, int i);
TT_API tt_status tt_device_synchronize(tt_device dev);
/* A one-line description of the device ("NVIDIA H200, 139 GiB, sm_90"); NULL when unavailable. */
TT_API const char *tt_device_describe(tt_device dev);

/* Looks up kernel NAME of the tensor's device, typed as tt_NAME_fn; NULL on failure:
 *   tt_conv2d_fwd_fn f = TT_KERNEL(x->device, conv2d_fwd); if (!f) return NULL; */
#define TT_KERNEL(dev, NAME) ((tt_##NAME##_fn)tt_backend_kernel((dev), #NAME))

#ifdef __cplusplus
}
#endif
#endif

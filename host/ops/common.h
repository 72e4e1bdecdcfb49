/* common.h — helpers shared by the op wrappers in host/ops (not part of the SDK). */
#ifndef TAMING_OPS_COMMON_H
#define TAMING_OPS_COMMON_H

#include <stdio.h>
#include "../core/backend_impl.h"
#include "taming/ops.h"
#include "taming/profile.h"

/* Fails unless t is f32 (naming the op and the argument). */
tt_status tt_check_f32(const char *op, const char *what, const tt_tensor *t);
/* Fails unless all tensors are on the same device. */
tt_status tt_check_same_device(const char *op, int n, tt_tensor *const *ts);
/* The kernel `name` of dev; for a kernel only the CPU backend has, NULL with an
 * error saying that op runs on the CPU only and how to get there. */
tt_kernel_fn tt_kernel_cpu_only(const char *op, tt_device dev, const char *name);
/* Fails unless t has ndim dims. */
tt_status tt_check_ndim(const char *op, const char *what, const tt_tensor *t, int ndim);
/* Attaches out to a fresh node for op (if any input needs grad), storing ctx. */
#define TT_SHAPE_BUF 160

#endif

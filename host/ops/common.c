/* common.c — argument checks shared by the op wrappers. */
#include "config.h"
#include "common.h"

tt_status tt_check_f32(const char *op, const char *what, const tt_tensor *t) {
  if (!t) return tt_error(TT_ERR_INVALID, "%s: %s is missing", op, what);
  if (t->dtype != TT_F32)
    return tt_error(TT_ERR_INVALID, "%s: %s must be f32, found %s", op, what, tt_dtype_name(t->dtype));
  return TT_OK;
}

tt_status tt_check_same_device(const char *op, int n, tt_tensor *const *ts) {
  tt_device d = TT_CPU;
  bool have = false;
  for (int i = 0; i < n; i++) {
    if (!ts[i]) continue;
    if (!have) { d = ts[i]->device; have = true; }
    else if (ts[i]->device != d)
      return tt_error(TT_ERR_INVALID, "%s: arguments on different devices (%s and %s)", op,
                      tt_device_name(d), tt_device_name(ts[i]->device));
  }
  return TT_OK;
}

tt_status tt_check_ndim(const char *op, const char *what, const tt_tensor *t, int ndim) {
  if (t->ndim == ndim) return TT_OK;
  char b[TT_SHAPE_BUF];
  return tt_error(TT_ERR_INVALID, "%s: %s must have %d dims, found shape %s", op, what, ndim,
                  tt_tensor_shape_str(t, b, sizeof b));
}

tt_kernel_fn tt_kernel_cpu_only(const char *op, tt_device dev, const char *name) {
  if (dev != TT_CPU && !tt_backend_supports(dev, name)) {
    tt_error(TT_ERR_UNSUPPORTED, "%s: runs on the CPU only for now, found a %s tensor (move it with :to(\"cpu\"))", op,
             tt_device_name(dev));
    return NULL;
  }
  return tt_backend_kernel(dev, name);
}

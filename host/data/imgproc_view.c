/* imgproc_view.c — the validated image view every imgproc_*.c file works on.
 *
 * Contraction is off, as in every imgproc_*.c file: the reference computes in
 * plain float32/float64 without fused multiply-adds (imgproc_internal.h). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "config.h"
#include <string.h>
#include "taming/autograd.h"
#include "taming/imgproc.h"
#include "taming/io.h"
#include "taming/ops/copy.h"
#include "imgproc_internal.h"

tt_status img_open(const char *op, const tt_tensor *t, unsigned dtypes, img *im) {
  char sh[128];
  memset(im, 0, sizeof *im);
  if (!t) return tt_error(TT_ERR_INVALID, "%s: NULL image", op);
  bool dt_ok = (t->dtype == TT_U8 && (dtypes & ALLOW_U8)) || (t->dtype == TT_F32 && (dtypes & ALLOW_F32));
  if (!dt_ok || (t->ndim != 2 && t->ndim != 3) || t->shape[0] < 1 || t->shape[1] < 1 ||
      (t->ndim == 3 && t->shape[2] < 1) || t->shape[0] > INT32_MAX / 8 || t->shape[1] > INT32_MAX / 8)
    return tt_error(TT_ERR_INVALID, "%s: expected a %s image [H, W] or [H, W, C], found %s %s", op,
                    dtypes == ALLOW_U8 ? "u8" : dtypes == ALLOW_F32 ? "f32" : "u8 or f32", tt_dtype_name(t->dtype),
                    tt_tensor_shape_str(t, sh, sizeof sh));
  im->t = tt_host_contiguous(t);
  if (!im->t) return tt_last_status();
  im->h = t->shape[0];
  im->w = t->shape[1];
  im->c = t->ndim == 3 ? t->shape[2] : 1;
  im->ndim = t->ndim;
  im->dt = t->dtype;
  im->data = tt_tensor_data(im->t);
  return TT_OK;
}

void img_close(img *im) { tt_tensor_release(&im->t); }

/* A new image like `like` with another height and width. */
tt_tensor *img_new(const img *like, int64_t h, int64_t w) {
  if (like->ndim == 2) return tt_tensor_new(like->dt, TT_DIMS(h, w), TT_CPU);
  return tt_tensor_new(like->dt, TT_DIMS(h, w, like->c), TT_CPU);
}

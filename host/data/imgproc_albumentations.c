/* imgproc_albumentations.c — albumentations 0.4.3: SmallestMaxSize, the
 * centre and random crops and the horizontal flip of the data pipeline.
 *
 * Contraction is off, as in every imgproc_*.c file: the reference computes in
 * plain float32/float64 without fused multiply-adds (imgproc_internal.h). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "config.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "taming/autograd.h"
#include "taming/imgproc.h"
#include "taming/io.h"
#include "taming/ops/copy.h"
#include "imgproc_internal.h"

/* ---- albumentations 0.4.3 ---- */

void tt_smallest_max_size_dims(int64_t h, int64_t w, int64_t size, int64_t *out_h, int64_t *out_w) {
  double scale = (double)size / (double)(h < w ? h : w);
  if (scale == 1.0) {
    *out_h = h, *out_w = w;
    return;
  }
  /* Python's round(): half to even, which rint does in the default rounding mode */
  *out_h = (int64_t)rint((double)h * scale);
  *out_w = (int64_t)rint((double)w * scale);
}

tt_tensor *tt_smallest_max_size(const tt_tensor *image, int64_t size, tt_interp interp) {
  char sh[128];
  if (!image || image->ndim < 2 || size < 1) {
    tt_error(TT_ERR_INVALID, "smallest_max_size: need an image [H, W(, C)] and size >= 1 (size %lld, image %s)",
             (long long)size, image ? tt_tensor_shape_str(image, sh, sizeof sh) : "NULL");
    return NULL;
  }
  int64_t oh, ow;
  tt_smallest_max_size_dims(image->shape[0], image->shape[1], size, &oh, &ow);
  if (oh < 1 || ow < 1) {
    tt_error(TT_ERR_INVALID, "smallest_max_size(%lld): image %s would shrink to %lld x %lld", (long long)size,
             tt_tensor_shape_str(image, sh, sizeof sh), (long long)oh, (long long)ow);
    return NULL;
  }
  return tt_cv_resize(image, oh, ow, interp);
}

tt_tensor *tt_crop(const tt_tensor *image, int64_t y, int64_t x, int64_t h, int64_t w) {
  img s;
  if (img_open("crop", image, ALLOW_U8 | ALLOW_F32, &s) != TT_OK) return NULL;
  if (h < 1 || w < 1 || y < 0 || x < 0 || y + h > s.h || x + w > s.w) {
    tt_error(TT_ERR_INVALID, "crop: rows [%lld, %lld) x columns [%lld, %lld) do not fit an image of %lld x %lld",
             (long long)y, (long long)(y + h), (long long)x, (long long)(x + w), (long long)s.h, (long long)s.w);
    img_close(&s);
    return NULL;
  }
  tt_tensor *out = img_new(&s, h, w);
  if (out) {
    size_t pix = (size_t)s.c * tt_dtype_size(s.dt);
    for (int64_t r = 0; r < h; r++)
      memcpy((uint8_t *)tt_tensor_data(out) + (size_t)r * (size_t)w * pix,
             (const uint8_t *)s.data + ((size_t)(y + r) * (size_t)s.w + (size_t)x) * pix, (size_t)w * pix);
  }
  img_close(&s);
  return out;
}

/* The top-left corner of an h x w crop of H x W: the centre when u < 0, else
 * RandomCrop's (int((H - h) * u), int((W - w) * v)). */
static tt_status crop_origin(const char *op, int64_t H, int64_t W, int64_t h, int64_t w, double u, double v, int64_t *y,
                             int64_t *x) {
  if (h > H || w > W || h < 1 || w < 1)
    return tt_error(TT_ERR_INVALID, "%s: requested crop size (%lld, %lld) is larger than the image size (%lld, %lld)",
                    op, (long long)h, (long long)w, (long long)H, (long long)W);
  if (u < 0) {
    *y = (H - h) / 2, *x = (W - w) / 2;
  } else {
    *y = (int64_t)((double)(H - h) * u), *x = (int64_t)((double)(W - w) * v);
  }
  return TT_OK;
}

static tt_tensor *crop_checked(const char *op, const tt_tensor *image, int64_t h, int64_t w, double u, double v) {
  char sh[128];
  if (!image || image->ndim < 2) {
    tt_error(TT_ERR_INVALID, "%s: expected an image [H, W(, C)], found %s", op,
             image ? tt_tensor_shape_str(image, sh, sizeof sh) : "NULL");
    return NULL;
  }
  int64_t y = 0, x = 0;
  if (crop_origin(op, image->shape[0], image->shape[1], h, w, u, v, &y, &x) != TT_OK) return NULL;
  return tt_crop(image, y, x, h, w);
}

tt_tensor *tt_center_crop(const tt_tensor *image, int64_t h, int64_t w) {
  return crop_checked("center_crop", image, h, w, -1, -1);
}

tt_tensor *tt_random_crop(const tt_tensor *image, int64_t h, int64_t w, double u, double v) {
  if (!(u >= 0 && u < 1 && v >= 0 && v < 1)) {
    tt_error(TT_ERR_INVALID, "random_crop: the uniform draws must lie in [0, 1), got %g and %g", u, v);
    return NULL;
  }
  return crop_checked("random_crop", image, h, w, u, v);
}

tt_tensor *tt_smallest_max_size_crop(const tt_tensor *image, int64_t size, int64_t h, int64_t w, double u, double v,
                                     tt_interp interp) {
  char sh[128];
  const char *op = u < 0 ? "center_crop" : "random_crop";
  if (!image || image->ndim < 2 || size < 1) {
    tt_error(TT_ERR_INVALID, "smallest_max_size: need an image [H, W(, C)] and size >= 1 (size %lld, image %s)",
             (long long)size, image ? tt_tensor_shape_str(image, sh, sizeof sh) : "NULL");
    return NULL;
  }
  if (u >= 0 && !(u < 1 && v >= 0 && v < 1)) {
    tt_error(TT_ERR_INVALID, "random_crop: the uniform draws must lie in [0, 1), got %g and %g", u, v);
    return NULL;
  }
  int64_t oh, ow, y = 0, x = 0;
  tt_smallest_max_size_dims(image->shape[0], image->shape[1], size, &oh, &ow);
  if (oh < 1 || ow < 1) {
    tt_error(TT_ERR_INVALID, "smallest_max_size(%lld): image %s would shrink to %lld x %lld", (long long)size,
             tt_tensor_shape_str(image, sh, sizeof sh), (long long)oh, (long long)ow);
    return NULL;
  }
  if (crop_origin(op, oh, ow, h, w, u, v, &y, &x) != TT_OK) return NULL;
  return tt_cv_resize_window(image, oh, ow, y, x, h, w, interp);
}

tt_tensor *tt_hflip(const tt_tensor *image) {
  img s;
  if (img_open("hflip", image, ALLOW_U8 | ALLOW_F32, &s) != TT_OK) return NULL;
  tt_tensor *out = img_new(&s, s.h, s.w);
  if (out) {
    size_t pix = (size_t)s.c * tt_dtype_size(s.dt);
    uint8_t *D = tt_tensor_data(out);
    const uint8_t *S = s.data;
    for (int64_t y = 0; y < s.h; y++)
      for (int64_t x = 0; x < s.w; x++)
        memcpy(D + ((size_t)y * (size_t)s.w + (size_t)x) * pix, S + ((size_t)y * (size_t)s.w + (size_t)(s.w - 1 - x)) * pix,
               pix);
  }
  img_close(&s);
  return out;
}

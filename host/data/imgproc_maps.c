/* imgproc_maps.c — depth maps (RGBA PNGs holding float32 bytes) and
 * segmentation label maps: loading, normalising, one-hot.
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

/* ---- depth maps ---- */

tt_tensor *tt_depth_from_rgba(const tt_tensor *rgba) {
  img s;
  if (img_open("depth_from_rgba", rgba, ALLOW_U8, &s) != TT_OK) return NULL;
  if (s.ndim != 3 || s.c != 4) {
    char sh[128];
    tt_error(TT_ERR_INVALID, "depth_from_rgba: expected u8 [H, W, 4] (float32 bytes as RGBA), found %s",
             tt_tensor_shape_str(rgba, sh, sizeof sh));
    img_close(&s);
    return NULL;
  }
  tt_tensor *out = tt_tensor_new(TT_F32, TT_DIMS(s.h, s.w), TT_CPU);
  if (out) {
    const uint8_t *S = s.data;
    float *D = tt_f32(out);
    for (int64_t i = 0; i < s.h * s.w; i++) {
      uint32_t u = (uint32_t)S[4 * i] | (uint32_t)S[4 * i + 1] << 8 | (uint32_t)S[4 * i + 2] << 16 |
                   (uint32_t)S[4 * i + 3] << 24;
      memcpy(&D[i], &u, 4);
    }
  }
  img_close(&s);
  return out;
}

tt_tensor *tt_depth_normalize(const tt_tensor *depth) {
  img s;
  if (img_open("depth_normalize", depth, ALLOW_F32, &s) != TT_OK) return NULL;
  int64_t n = s.h * s.w * s.c;
  const float *S = s.data;
  float mn = S[0], mx = S[0];
  int64_t bad = -1;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(S[i]) && bad < 0) bad = i;
    mn = S[i] < mn ? S[i] : mn;
    mx = S[i] > mx ? S[i] : mx;
  }
  tt_tensor *out = NULL;
  if (bad >= 0) {
    tt_error(TT_ERR_INVALID, "depth_normalize: value %g at row %lld, column %lld is not finite (corrupt depth bytes?)",
             (double)S[bad], (long long)(bad / (s.w * s.c)), (long long)(bad / s.c % s.w));
  } else if ((out = img_new(&s, s.h, s.w))) {
    /* max(1e-8, max - min) compares in double; the division is float32 */
    float range = mx - mn, den = (double)range > 1e-8 ? range : (float)1e-8;
    float *D = tt_f32(out);
    for (int64_t i = 0; i < n; i++) {
      float d = (S[i] - mn) / den;
      D[i] = 2.0f * d - 1.0f;
    }
  }
  img_close(&s);
  return out;
}

/* An 8-bit image file that must have `channels` channels; `what` says what it must be. */
static tt_status load_u8_channels(const char *path, int64_t channels, const char *what, tt_tensor **im) {
  TT_TRY(tt_image_load_u8(path, im));
  if ((*im)->shape[2] == channels) return TT_OK;
  tt_status s = tt_error(TT_ERR_FORMAT, "%s: %s; this image has %lld channels", path, what,
                         (long long)(*im)->shape[2]);
  tt_tensor_unref(*im);
  *im = NULL;
  return s;
}

tt_status tt_depth_load(const char *path, tt_tensor **out) {
  if (!path || !out) return tt_error(TT_ERR_INVALID, "depth_load: NULL argument");
  *out = NULL;
  tt_tensor *rgba;
  TT_TRY(load_u8_channels(path, 4, "a depth map must be an 8-bit RGBA PNG holding float32 bytes", &rgba));
  tt_tensor *raw = tt_depth_from_rgba(rgba);
  tt_tensor_unref(rgba);
  if (!raw) return tt_error_prefix(tt_last_status(), "%s: ", path);
  *out = tt_depth_normalize(raw);
  tt_tensor_unref(raw);
  if (!*out) return tt_error_prefix(tt_last_status(), "%s: ", path);
  return TT_OK;
}

/* ---- segmentation label maps ---- */

tt_status tt_labels_load(const char *path, tt_tensor **out) {
  if (!path || !out) return tt_error(TT_ERR_INVALID, "labels_load: NULL argument");
  *out = NULL;
  tt_tensor *im;
  TT_TRY(load_u8_channels(path, 1, "a label map must be a single-channel 8-bit image (PIL mode L)",
                          &im));
  *out = tt_tensor_view_of(im, TT_DIMS(im->shape[0], im->shape[1]), NULL, 0);
  tt_tensor_unref(im);
  return *out ? TT_OK : tt_last_status();
}

tt_tensor *tt_labels_shift(const tt_tensor *labels) {
  img s;
  if (img_open("labels_shift", labels, ALLOW_U8, &s) != TT_OK) return NULL;
  tt_tensor *out = img_new(&s, s.h, s.w);
  if (out) {
    const uint8_t *S = s.data;
    uint8_t *D = tt_tensor_data(out);
    for (int64_t i = 0; i < s.h * s.w * s.c; i++) D[i] = (uint8_t)(S[i] + 1);
  }
  img_close(&s);
  return out;
}

tt_tensor *tt_labels_onehot(const tt_tensor *labels, int K, bool shift, const char *what) {
  img s;
  if (!what) what = "labels";
  if (img_open("labels_onehot", labels, ALLOW_U8, &s) != TT_OK) return NULL;
  if (s.c != 1 || K < 1 || K > 256) {
    char sh[128];
    tt_error(TT_ERR_INVALID, "%s: one-hot needs a u8 label map [H, W] and 1 <= K <= 256 (found %s, K = %d)", what,
             tt_tensor_shape_str(labels, sh, sizeof sh), K);
    img_close(&s);
    return NULL;
  }
  const uint8_t *S = s.data;
  int64_t n = s.h * s.w;
  for (int64_t i = 0; i < n; i++) {
    int v = shift ? (uint8_t)(S[i] + 1) : S[i];
    if (v >= K) {
      if (shift)
        tt_error(TT_ERR_INVALID, "%s: label %d (%d after the +1 shift) at row %lld, column %lld is >= K = %d", what,
                 S[i], v, (long long)(i / s.w), (long long)(i % s.w), K);
      else
        tt_error(TT_ERR_INVALID, "%s: label %d at row %lld, column %lld is >= K = %d", what, v, (long long)(i / s.w),
                 (long long)(i % s.w), K);
      img_close(&s);
      return NULL;
    }
  }
  tt_tensor *out = tt_zeros(TT_F32, TT_DIMS(K, s.h, s.w), TT_CPU);
  if (out) {
    float *D = tt_f32(out);
    for (int64_t i = 0; i < n; i++) D[(int64_t)(shift ? (uint8_t)(S[i] + 1) : S[i]) * n + i] = 1.0f;
  }
  img_close(&s);
  return out;
}

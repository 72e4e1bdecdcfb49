/* imgproc_internal.h — shared by the imgproc_*.c files (one per library they
 * reproduce; the SDK side is taming/imgproc.h): the validated image view and
 * the saturating casts.
 *
 * The preprocessing primitives of the official data pipeline are reproduced to
 * the bit where the original libraries allow it. The reference libraries
 * compute in plain float32/float64 without fused multiply-adds (OpenCV's
 * baseline is SSE2, scipy and Pillow are built for generic x86-64), so each
 * imgproc_*.c file switches contraction off: with -march=native GCC would
 * otherwise fuse a*b + c and change the rounding. */
#ifndef TAMING_IMGPROC_INTERNAL_H
#define TAMING_IMGPROC_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include "taming/tensor.h"

/* Below this many output values the loops stay on one thread. */
#define IMG_PAR_MIN 32768

/* ---- image views ---- */

/* A validated, contiguous CPU image [H, W, C] (C = 1 for 2-D tensors). */
typedef struct img {
  tt_tensor *t; /* the reference held on the data */
  int64_t h, w, c;
  int ndim;
  tt_dtype dt;
  void *data;
} img;

/* dtypes: bit 0 allows u8, bit 1 allows f32. */
enum { ALLOW_U8 = 1, ALLOW_F32 = 2 };

/* Checks that t is a 2-D or 3-D image of an allowed dtype and opens a host,
 * contiguous view of it; img_close releases the view. */
tt_status img_open(const char *op, const tt_tensor *t, unsigned dtypes, img *im);
void img_close(img *im);
/* A new image like `like` with another height and width. */
tt_tensor *img_new(const img *like, int64_t h, int64_t w);

static inline uint8_t sat_u8_int(int64_t v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }
/* OpenCV's saturate_cast<uchar>(float): round half to even, then clamp. */
static inline uint8_t sat_u8_float(float v) {
  float r = rintf(v);
  if (!(r > 0.0f)) return 0; /* NaN rounds through cvRound's int conversion to 0 */
  return r >= 255.0f ? 255 : (uint8_t)r;
}
static inline int16_t sat_s16_float(float v) {
  float r = rintf(v);
  return (int16_t)(r <= -32768.0f ? -32768 : r >= 32767.0f ? 32767 : (int)r);
}

#endif

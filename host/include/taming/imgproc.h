/* imgproc.h — the data-side image preprocessing of the official data pipeline.
 *
 * Each function reproduces the library the official dataset code calls, so a
 * C pipeline feeds the models the same numbers:
 *   - tt_cv_resize:          OpenCV 4.x cv2.resize (fixed-point paths for u8)
 *   - tt_smallest_max_size,
 *     tt_center_crop, tt_random_crop,
 *     tt_hflip:              albumentations 0.4.3 SmallestMaxSize / CenterCrop /
 *                            RandomCrop / HorizontalFlip
 *   - tt_pil_resize:         Pillow Image.resize (8-bit fixed-point convolution)
 *   - tt_rgb2gray, tt_canny: scikit-image color.rgb2gray and feature.canny
 *   - tt_depth_*:            float32 depth maps stored as RGBA PNG bytes
 *   - tt_labels_*:           segmentation label maps and their one-hot encoding
 *
 * Images here are numpy-style, channel-last: [H, W] or [H, W, C], u8 or f32,
 * on the CPU (other devices and strides are copied first). Every function
 * returns a new tensor (NULL + tt_error on failure); inputs are borrowed. */
#ifndef TAMING_IMGPROC_H
#define TAMING_IMGPROC_H

#include <stdbool.h>
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* OpenCV interpolation codes (same values as cv2.INTER_*). */
typedef enum tt_interp {
  TT_INTER_NEAREST = 0,
  TT_INTER_LINEAR = 1,   /* bilinear, half-pixel centres; u8 uses 11-bit fixed point */
  TT_INTER_CUBIC = 2,    /* A = -0.75; u8 uses 11-bit fixed point */
  TT_INTER_AREA = 3      /* pixel-area average when shrinking, bilinear-like when growing */
} tt_interp;

/* cv2.resize(img, (out_w, out_h), interpolation): u8 or f32 [H, W(, C)] ->
 * [out_h, out_w(, C)], any C >= 1. Borders replicate. An exact 2x shrink with
 * TT_INTER_LINEAR runs the area path, as OpenCV does. */
TT_API tt_tensor *tt_cv_resize(const tt_tensor *img, int64_t out_h, int64_t out_w, tt_interp interp);
/* Rows [y, y + h) and columns [x, x + w) of tt_cv_resize(img, out_h, out_w,
 * interp), the same values, computing (and allocating for) that window only. */
TT_API tt_tensor *tt_cv_resize_window(const tt_tensor *img, int64_t out_h, int64_t out_w, int64_t y, int64_t x,
                                      int64_t h, int64_t w, tt_interp interp);

/* albumentations SmallestMaxSize(size, interpolation): scales so the short side
 * is `size`; new sides are round-half-even(side * size / short side); a scale of
 * exactly 1 returns an unchanged copy. */
TT_API tt_tensor *tt_smallest_max_size(const tt_tensor *img, int64_t size, tt_interp interp);
/* The output size tt_smallest_max_size would produce. */
TT_API void tt_smallest_max_size_dims(int64_t h, int64_t w, int64_t size, int64_t *out_h, int64_t *out_w);
/* SmallestMaxSize(size, interp) followed by CenterCrop(h, w) (u < 0) or by
 * RandomCrop(h, w) with the draws u, v: the same values as the two steps, with
 * only the kept window resized, so memory follows the crop (a 1 x 1e6 strip
 * would otherwise grow to 32 x 32e6 on its way to 32 x 32). */
TT_API tt_tensor *tt_smallest_max_size_crop(const tt_tensor *img, int64_t size, int64_t h, int64_t w, double u,
                                            double v, tt_interp interp);
/* CenterCrop(h, w): top-left corner ((H - h) // 2, (W - w) // 2). */
TT_API tt_tensor *tt_center_crop(const tt_tensor *img, int64_t h, int64_t w);
/* RandomCrop(h, w) with its two uniform draws given: top-left
 * (int((H - h) * u), int((W - w) * v)), u, v in [0, 1). */
TT_API tt_tensor *tt_random_crop(const tt_tensor *img, int64_t h, int64_t w, double u, double v);
/* Crop of rows [y, y + h) and columns [x, x + w). */
TT_API tt_tensor *tt_crop(const tt_tensor *img, int64_t y, int64_t x, int64_t h, int64_t w);
/* HorizontalFlip: columns reversed. */
TT_API tt_tensor *tt_hflip(const tt_tensor *img);

/* Pillow resampling filters (same values as PIL.Image.NEAREST, ...). */
typedef enum tt_pil_filter {
  TT_PIL_NEAREST = 0,
  TT_PIL_LANCZOS = 1,
  TT_PIL_BILINEAR = 2,
  TT_PIL_BICUBIC = 3,   /* a = -0.5, support scaled by the shrink factor */
  TT_PIL_BOX = 4,
  TT_PIL_HAMMING = 5
} tt_pil_filter;

/* PIL Image.fromarray(img).resize((out_w, out_h), filter) for u8 [H, W] or
 * [H, W, 3] ("L" and "RGB"; images with alpha are refused because Pillow
 * premultiplies them). Horizontal pass first, 22-bit fixed-point coefficients. */
TT_API tt_tensor *tt_pil_resize(const tt_tensor *img, int64_t out_h, int64_t out_w, tt_pil_filter filter);

/* skimage.color.rgb2gray: f32 [H, W, 3] -> f32 [H, W] =
 * 0.2125 R + 0.7154 G + 0.0721 B with the float32 roundings numpy's matmul
 * makes (OpenBLAS sgemv on AVX-512 machines; elsewhere they may differ by an
 * ulp). Values are not rescaled ([-1, 1] stays). */
TT_API tt_tensor *tt_rgb2gray(const tt_tensor *img);
/* skimage.feature.canny(gray, sigma, low, high) with mask=None, mode='constant',
 * cval=0: f32 [H, W] -> f32 [H, W] of 0/1. Pass low/high < 0 for skimage's
 * float-image defaults 0.1 / 0.2. Gaussian (truncate 4) and Sobel follow
 * scipy.ndimage's float32 rounding; pixels on the image border are never edges.
 * The official edge datasets call tt_canny(tt_rgb2gray(x), 2, -1, -1) on the
 * [-1, 1] image and replicate the map to three channels. */
TT_API tt_tensor *tt_canny(const tt_tensor *gray, double sigma, double low, double high);

/* Depth maps stored as PNG: u8 [H, W, 4] whose four bytes per pixel are a
 * little-endian float32 (R least significant) -> f32 [H, W]. */
TT_API tt_tensor *tt_depth_from_rgba(const tt_tensor *rgba);
/* Per-image min-max normalisation to [-1, 1]:
 * d = (d - min) / max(1e-8, max - min); 2 d - 1 (float32 arithmetic). */
TT_API tt_tensor *tt_depth_normalize(const tt_tensor *depth);
/* Loads a depth PNG (must be 8-bit RGBA), decodes and normalises it -> f32 [H, W]. */
TT_API tt_status tt_depth_load(const char *path, tt_tensor **out);

/* Loads a label map (a single-channel 8-bit PNG, PIL mode "L") -> u8 [H, W]. */
TT_API tt_status tt_labels_load(const char *path, tt_tensor **out);
/* (label + 1) mod 256 in uint8 (COCO-Stuff: 255 = unlabeled wraps to 0). */
TT_API tt_tensor *tt_labels_shift(const tt_tensor *labels);
/* u8 [H, W] (or [H, W, 1]) -> f32 [K, H, W] one-hot (0/1), after the optional
 * +1 shift. A label >= K is an error naming `what` (e.g. the file), the label,
 * where it is and K. K: S-FLCKR 182 (no shift), COCO-Stuff 183 (shift),
 * ADE20K 151 (no shift). */
TT_API tt_tensor *tt_labels_onehot(const tt_tensor *labels, int K, bool shift, const char *what);

/* Sample sheets (torchvision make_grid semantics): the images of n tensors, each
 * [C, H, W] or [B, C, H, W] (f32 or u8, all the same C, H, W), laid out
 * row-major with `nrow` images per row and `padding` pixels of `pad_value`
 * around and between them -> [1, C, rows * (H + p) + p, ncol * (W + p) + p].
 * Images are in [-1, 1] here, so pad_value = -1 gives black borders (the
 * torchvision default 0 is black in its [0, 1] range). A single image comes
 * back unpadded, as make_grid returns it. */
TT_API tt_tensor *tt_image_grid(int n, tt_tensor *const *images, int nrow, int padding, float pad_value);

/* Labels on sample sheets: draws text in a 5x7 bitmap font (upper case, digits,
 * - / . : _ ( ) = + , ') at (x, y) of a CPU u8 image [H, W(, C)], each pixel of
 * the font scale x scale, every channel set to value. Clipped at the borders. */
TT_API tt_status tt_draw_text(tt_tensor *img, int64_t x, int64_t y, const char *text, int scale,
                              unsigned char value);
/* Width in pixels of text at scale (characters 5 wide plus 1 of spacing). */
TT_API int64_t tt_text_width(const char *text, int scale);

#ifdef __cplusplus
}
#endif
#endif

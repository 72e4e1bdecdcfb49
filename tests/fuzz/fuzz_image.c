/* fuzz_image.c — PNG and JPEG decoding (by content, as every image path of
 * the library reads them): the decoded u8 [H, W, C] is touched, converted to
 * the models' f32 [1, C, H, W], and small images are written as PNG and must
 * read back with the same pixels. */
#include <stdio.h>
#include <unistd.h>
#include "fuzz.h"

FUZZ_INITIALIZE_DEFAULT

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tt_tensor *img = NULL;
  tt_status s = tt_image_load_u8(fuzz_file(0, data, size), &img);
  fuzz_expect_message(s, "tt_image_load_u8");
  if (s != TT_OK) return 0;
  FUZZ_CHECK(img->dtype == TT_U8 && img->ndim == 3 && img->shape[2] >= 1 && img->shape[2] <= 4,
             "image: decoded to dtype %d, ndim %d", (int)img->dtype, img->ndim);
  uint64_t sum = fuzz_touch_tensor(img, "image", (size_t)1 << 26);
  tt_tensor *x = tt_image_from_u8(img);
  if (x) {
    FUZZ_CHECK(x->ndim == 4 && x->shape[1] == img->shape[2] && x->shape[2] == img->shape[0] &&
                   x->shape[3] == img->shape[1],
               "tt_image_from_u8: [H, W, C] -> not [1, C, H, W]");
    fuzz_touch_tensor(x, "image as f32", (size_t)1 << 26);
    tt_tensor_unref(x);
  } else {
    fuzz_expect_message(tt_last_status() == TT_OK ? TT_ERR_INTERNAL : tt_last_status(), "tt_image_from_u8");
  }
  if (img->shape[0] * img->shape[1] <= 65536) {
    char out[512];
    snprintf(out, sizeof out, "%s/resave.png", fuzz_scratch_dir());
    s = tt_image_save_u8(out, img, 95);
    fuzz_expect_message(s, "tt_image_save_u8");
    if (s == TT_OK) {
      tt_tensor *r = NULL;
      s = tt_image_load_u8(out, &r);
      FUZZ_CHECK(s == TT_OK, "tt_image_save_u8 wrote a PNG that tt_image_load_u8 refuses: %s", tt_error_message());
      FUZZ_CHECK(tt_tensor_same_shape(r, img), "image: saved as PNG and reloaded, the shape changed");
      FUZZ_CHECK(fuzz_touch_tensor(r, "image reloaded", (size_t)1 << 26) == sum,
                 "image: saved as PNG and reloaded, the pixels changed");
      tt_tensor_unref(r);
    }
    unlink(out);
  }
  tt_tensor_unref(img);
  return 0;
}

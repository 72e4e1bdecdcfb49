/* fuzz_dataloader.c — one training item through the data loader with a
 * condition: image decode, channel conversion, the paired segmentation or
 * depth PNG, SmallestMaxSize, random or centre crop, flip, one-hot encoding,
 * and the batch assembly (host/data/dataloader.c, host/data/imgproc_*.c).
 *
 * Input: 6 header bytes, then the image file, then the condition file.
 *   [0] bits 0-1 condition (0 none, 1 segmentation, 2 depth, 3 segmentation
 *       with the COCO +1 shift), bit 2 three channels (else one), bit 3
 *       random crop, bit 4 horizontal flip, bits 5-6 interpolation
 *   [1] size % 65 (0 keeps the image's size)   [2] labels K - 1   [3] seed
 *   [4..5] the image file's length, little-endian */
#include <math.h>
#include <string.h>
#include "fuzz.h"
#include "taming/dataloader.h"

FUZZ_INITIALIZE_DEFAULT

static void check_batch(const tt_batch *b, const tt_dataset_spec *sp) {
  const tt_tensor *x = b->image;
  FUZZ_CHECK(x && x->dtype == TT_F32 && x->ndim == 4 && x->shape[0] == 1 && x->shape[1] == sp->channels,
             "dataloader: the batch image is not f32 [1, %d, H, W]", sp->channels);
  if (sp->size > 0)
    FUZZ_CHECK(x->shape[2] == sp->size && x->shape[3] == sp->size, "dataloader: size %d gave %lldx%lld", sp->size,
               (long long)x->shape[2], (long long)x->shape[3]);
  fuzz_touch_tensor(x, "batch image", (size_t)1 << 26);
  int64_t n = tt_tensor_numel(x);
  const float *px = tt_tensor_data(x);
  for (int64_t i = 0; i < n; i++)
    FUZZ_CHECK(px[i] >= -1.0f && px[i] <= 1.0f, "dataloader: pixel %lld is %g, outside [-1, 1]", (long long)i,
               (double)px[i]);
  if (sp->cond == TT_COND_NONE) {
    FUZZ_CHECK(b->cond == NULL, "dataloader: a condition without asking for one");
    return;
  }
  const tt_tensor *c = b->cond;
  int64_t K = sp->cond == TT_COND_SEGMENTATION ? sp->n_labels : 1;
  FUZZ_CHECK(c && c->dtype == TT_F32 && c->ndim == 4 && c->shape[0] == 1 && c->shape[1] == K &&
                 c->shape[2] == x->shape[2] && c->shape[3] == x->shape[3],
             "dataloader: the condition is not f32 [1, %lld, H, W] as the image", (long long)K);
  fuzz_touch_tensor(c, "batch condition", (size_t)1 << 26);
  if (sp->cond == TT_COND_SEGMENTATION) {
    int64_t HW = c->shape[2] * c->shape[3];
    const float *p = tt_tensor_data(c);
    for (int64_t i = 0; i < HW; i++) {
      float sum = 0;
      for (int64_t k = 0; k < K; k++) sum += p[k * HW + i];
      FUZZ_CHECK(sum == 1.0f, "dataloader: one-hot pixel %lld sums to %g", (long long)i, (double)sum);
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 6) return 0;
  size_t ilen = (size_t)data[4] | (size_t)data[5] << 8;
  if (ilen > size - 6) ilen = size - 6;
  const char *img = fuzz_file(0, data + 6, ilen);
  const char *cond = fuzz_file(1, data + 6 + ilen, size - 6 - ilen);
  static const tt_cond_kind kinds[4] = {TT_COND_NONE, TT_COND_SEGMENTATION, TT_COND_DEPTH, TT_COND_SEGMENTATION};
  tt_dataset_spec sp = {
      .n = 1,
      .paths = (const char *const[]){img},
      .cond_paths = (const char *const[]){cond},
      .channels = data[0] & 4 ? 3 : 1,
      .size = data[1] % 65,
      .random_crop = data[0] & 8,
      .hflip = data[0] & 16,
      .interp = (tt_interp)((data[0] >> 5) & 3),
      .cond = kinds[data[0] & 3],
      .n_labels = data[2] + 1,
      .shift = (data[0] & 3) == 3,
  };
  tt_loader_opts o = {.batch = 1, .seed = data[3], .shuffle = false, .rank = 0, .world = 1, .workers = 0,
                      .prefetch = 1};
  tt_loader *l = NULL;
  tt_status s = tt_loader_open(&sp, &o, &l);
  fuzz_expect_message(s, "tt_loader_open");
  if (s != TT_OK) return 0;
  for (int epoch = 0; epoch < 2; epoch++) {   /* two epochs: other crop offsets and flips */
    tt_batch b;
    memset(&b, 0, sizeof b);
    s = tt_loader_next(l, &b);
    fuzz_expect_message(s, "tt_loader_next");
    if (s != TT_OK) break;
    check_batch(&b, &sp);
    tt_batch_clear(&b);
  }
  tt_loader_close(l);
  return 0;
}

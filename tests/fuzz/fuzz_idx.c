/* fuzz_idx.c — an IDX file (Fashion-MNIST's format), plain or gzipped: the
 * magic, element type, dimension count and sizes, the data. */
#include "fuzz.h"
#include "taming/datasets.h"

FUZZ_INITIALIZE_DEFAULT

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tt_tensor *t = NULL;
  tt_status s = tt_idx_load(fuzz_file(0, data, size), &t);
  fuzz_expect_message(s, "tt_idx_load");
  if (s != TT_OK) return 0;
  fuzz_touch_tensor(t, "idx", (size_t)1 << 24);
  tt_tensor_unref(t);
  return 0;
}

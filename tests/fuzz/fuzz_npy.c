/* fuzz_npy.c — a .npy file: magic, version, header length, the header dict
 * (descr, fortran_order, shape), the data; what loads is touched, saved again
 * and must read back the same. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "fuzz.h"

FUZZ_INITIALIZE_DEFAULT

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tt_tensor *t = NULL;
  tt_status s = tt_npy_load(fuzz_file(0, data, size), &t);
  fuzz_expect_message(s, "tt_npy_load");
  if (s != TT_OK) return 0;
  uint64_t sum = fuzz_touch_tensor(t, "npy", (size_t)1 << 24);
  if (tt_tensor_nbytes(t) <= ((size_t)1 << 20)) {
    char out[512];
    snprintf(out, sizeof out, "%s/resave.npy", fuzz_scratch_dir());
    s = tt_npy_save(out, t);
    fuzz_expect_message(s, "tt_npy_save");
    if (s == TT_OK) {
      tt_tensor *r = NULL;
      s = tt_npy_load(out, &r);
      FUZZ_CHECK(s == TT_OK, "tt_npy_save wrote a file that tt_npy_load refuses: %s", tt_error_message());
      FUZZ_CHECK(r->dtype == t->dtype && tt_tensor_same_shape(r, t), "npy: saved and reloaded, dtype or shape changed");
      FUZZ_CHECK(fuzz_touch_tensor(r, "npy reloaded", (size_t)1 << 24) == sum, "npy: saved and reloaded, bytes changed");
      tt_tensor_unref(r);
    }
    unlink(out);
  }
  tt_tensor_unref(t);
  return 0;
}

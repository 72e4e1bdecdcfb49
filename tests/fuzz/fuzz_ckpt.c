/* fuzz_ckpt.c — a whole PyTorch checkpoint (.ckpt/.pt): the ZIP directory
 * and local headers, or the legacy (PyTorch < 1.6) header pickles, list of
 * storage keys and counts; the pickle, the storages; every tensor read, the file
 * listed as `taming info` lists it and converted as `taming convert` does. */
#include "fuzz.h"

FUZZ_INITIALIZE_DEFAULT

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_ckpt_roundtrip(fuzz_file(0, data, size));
  return 0;
}

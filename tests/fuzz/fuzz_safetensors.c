/* fuzz_safetensors.c — a .safetensors file: the header length, the JSON
 * header, dtypes, shapes and data offsets; every tensor read, the file listed
 * and converted (safetensors -> safetensors) and read back. */
#include "fuzz.h"

FUZZ_INITIALIZE_DEFAULT

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_ckpt_roundtrip(fuzz_file(0, data, size));
  return 0;
}

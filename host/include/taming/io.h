/* io.h — files: checkpoints (Lightning .ckpt, .safetensors), .npy, YAML configs, images.
 *
 * Loading is two-phase: tt_ckpt_open indexes a file (tensors become views onto
 * an mmap of it, nothing is copied); callers then bind tensors by name.
 * Writers never leave a half-written file over a good one: they write a
 * temporary file in the same directory, fsync it and rename it into place.
 * Every error names the file and the cause. */
#ifndef TAMING_IO_H
#define TAMING_IO_H

#include <stdio.h>
#include "taming/tensor.h"
#include "taming/value.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- checkpoints ---- */

typedef struct tt_ckpt tt_ckpt;

/* Opens a PyTorch checkpoint (.ckpt/.pt/.pth: the zip files of PyTorch >= 1.6
 * and the legacy files of earlier versions; the pickle is parsed, never
 * executed) or a .safetensors file, by content. */
TT_API tt_status tt_ckpt_open(const char *path, tt_ckpt **out);
/* Options of tt_ckpt_open_with (zero-initialise; NULL means all defaults). */
typedef struct tt_ckpt_options {
  /* The pickle of a torch file is also scanned: a global outside the allowlist
   * of tensor-rebuild functions, storages, plain containers and data types (say
   * pydoc.pipepager) is never called here, but torch.load without weights_only
   * would call it. Such a file is refused unless this is set. */
  bool allow_unsafe_globals;
} tt_ckpt_options;
TT_API tt_status tt_ckpt_open_with(const char *path, const tt_ckpt_options *opts, tt_ckpt **out);
/* The globals outside the allowlist that the pickle references ("module.name",
 * in order of appearance; the count may exceed the names kept, which end in NULL). */
TT_API int tt_ckpt_unsafe_count(const tt_ckpt *c);
TT_API const char *tt_ckpt_unsafe_global(const tt_ckpt *c, int i);
/* Tensors stay valid after close (each holds a reference on the mapping). */
TT_API void tt_ckpt_close(tt_ckpt *c);
TT_API const char *tt_ckpt_path(const tt_ckpt *c);
TT_API const char *tt_ckpt_format(const tt_ckpt *c);       /* "torch-zip", "torch-legacy" or "safetensors" */
/* The state dict: tensors in file order (borrowed references, alive until close). */
TT_API int tt_ckpt_count(const tt_ckpt *c);
TT_API const char *tt_ckpt_name(const tt_ckpt *c, int i);
TT_API tt_tensor *tt_ckpt_tensor(const tt_ckpt *c, int i);
TT_API tt_tensor *tt_ckpt_get(const tt_ckpt *c, const char *name);   /* NULL if absent */
/* Everything else at the top level (global_step, epoch, optimizer_states, ...;
 * safetensors: its __metadata__ strings). A map; opaque pickle objects are nil. */
TT_API const tt_value *tt_ckpt_meta(const tt_ckpt *c);

/* For `taming info` and `taming convert` (added to this header so the command
 * line stays a thin wrapper and the library can be tested without it). */
/* Lists "name dtype [shape]" per tensor, then the metadata's top-level keys
 * with their value (scalars) or size (lists, maps). */
TT_API tt_status tt_ckpt_print_info(const tt_ckpt *c, FILE *out);
/* Writes the state dict of `in` (any readable checkpoint) to the safetensors file
 * `out`, with metadata {format: "pt", source: basename(in), global_step}; with
 * `inference`, the training-only `loss.*` tensors (LPIPS, discriminator) are dropped. */
TT_API tt_status tt_ckpt_convert(const char *in, const char *out, bool inference);
TT_API tt_status tt_ckpt_convert_with(const char *in, const char *out, bool inference, const tt_ckpt_options *opts);
/* tt_ckpt_convert with minGPT's linear weights quantized (scheme "int8": per output
 * channel, <name>.weight i8 + <name>.weight_scale f32; host/ckpt_quantize.c). */
TT_API tt_status tt_ckpt_quantize(const char *in, const char *out, const char *scheme, bool inference);

/* Writes name -> tensor pairs (any device; contiguous copies are made as needed)
 * with optional string metadata (a map of strings, may be NULL). Atomic. */
TT_API tt_status tt_safetensors_save(const char *path, int n, const char *const *names,
                                     tt_tensor *const *tensors, const tt_value *metadata);

/* ---- numpy ---- */
TT_API tt_status tt_npy_load(const char *path, tt_tensor **out);
TT_API tt_status tt_npy_save(const char *path, const tt_tensor *t);   /* atomic */
/* The .npz, YAML and image functions below live in libtaming_data (link
 * `pkg-config --libs taming-data`); the rest of this header in libtaming. */
/* .npz (a zip of .npy, as np.savez / np.savez_compressed write it): every array,
 * named without ".npy"; release with tt_npz_free. The writer stores the members
 * uncompressed, atomically. */
TT_API tt_status tt_npz_load(const char *path, int *n, char ***names, tt_tensor ***tensors);
TT_API void tt_npz_free(int n, char **names, tt_tensor **tensors);
TT_API tt_status tt_npz_save(const char *path, int n, const char *const *names, tt_tensor *const *tensors);

/* ---- YAML (official configs) ---- */
/* Scalars become int, number, bool, nil or string as YAML 1.1 plain scalars do in PyYAML. */
TT_API tt_status tt_yaml_load(const char *path, tt_value *out);
TT_API tt_status tt_yaml_parse(const char *text, size_t len, const char *name, tt_value *out);

/* ---- images ---- */
/* PNG (8/16-bit, gray, gray+alpha, RGB, RGBA, palette) or JPEG, by content ->
 * u8 [H, W, C] with the file's channels (16-bit PNGs are reduced to 8 bits). */
TT_API tt_status tt_image_load_u8(const char *path, tt_tensor **out);
/* Decoding refuses, from the header and before allocating, an image of more
 * than max_pixels pixels (H x W), as Pillow raises DecompressionBombError:
 * max_pixels < 0 takes tt_image_max_pixels(), 0 means no limit.
 * tt_image_load_u8 is tt_image_load_u8_limit(path, -1, out). */
TT_API tt_status tt_image_load_u8_limit(const char *path, int64_t max_pixels, tt_tensor **out);
/* Pillow's limit: 2 x Image.MAX_IMAGE_PIXELS. */
#define TT_IMAGE_MAX_PIXELS_DEFAULT (2 * 89478485LL)
/* The limit in force: TAMING_MAX_IMAGE_PIXELS (a count; 0 or "none": no limit),
 * else TT_IMAGE_MAX_PIXELS_DEFAULT. An unreadable value is an error. */
TT_API tt_status tt_image_max_pixels(int64_t *out);
/* u8 [H, W, C] (C = 1, 2, 3, 4) -> PNG, or JPEG when the path ends in .jpg/.jpeg. Atomic. */
TT_API tt_status tt_image_save_u8(const char *path, const tt_tensor *img, int jpeg_quality);
/* Float [C, H, W] or [1, C, H, W] in [-1, 1] -> u8 [H, W, C] the official way:
 * (x + 1) * 127.5, clipped to [0, 255], truncated. */
TT_API tt_tensor *tt_image_to_u8(tt_tensor *x);
/* u8 [H, W, C] -> f32 [1, C, H, W] = x / 127.5 - 1. */
TT_API tt_tensor *tt_image_from_u8(tt_tensor *img);

/* Atomic file writing for any writer: open PATH.tmp.XXXXXX next to path, write, then commit. */
typedef struct tt_atomic_file {
  char *path;
  char *tmp_path;
  int fd;
  void *fp;    /* FILE* */
} tt_atomic_file;
TT_API tt_status tt_atomic_open(tt_atomic_file *f, const char *path);
TT_API tt_status tt_atomic_write(tt_atomic_file *f, const void *data, size_t n);
/* fsync + rename; on failure the temporary file is removed and path untouched. */
TT_API tt_status tt_atomic_commit(tt_atomic_file *f);
TT_API void tt_atomic_abort(tt_atomic_file *f);

#ifdef __cplusplus
}
#endif
#endif

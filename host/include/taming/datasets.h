/* datasets.h — readers for small standard datasets used by tests and examples.
 *
 * Fashion-MNIST ships as gzipped IDX files (Debian: dataset-fashion-mnist in
 * /usr/share/datasets/fashion-mnist). Plain (uncompressed) IDX files are read
 * too. Every error names the file and what was expected. */
#ifndef TAMING_DATASETS_H
#define TAMING_DATASETS_H

#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TT_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* An IDX file (optionally gzipped): element type 0x08 -> u8, 0x0C -> i32,
 * 0x0D -> f32, 0x0E -> f64 (big-endian on disk); the shape from its header. */
TT_API tt_status tt_idx_load(const char *path, tt_tensor **out);

/* Fashion-MNIST split "train" (60000) or "test" (10000, the t10k files) from dir
 * (NULL: TT_FASHION_MNIST_DIR) -> images u8 [N, 28, 28], labels i64 [N] in 0..9. */
TT_API tt_status tt_fashion_mnist_load(const char *dir, const char *split, tt_tensor **images, tt_tensor **labels);

#ifdef __cplusplus
}
#endif
#endif

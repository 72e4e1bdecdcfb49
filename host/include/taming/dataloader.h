/* dataloader.h — training batches decoded off the main thread.
 *
 * A dataset is a list of items: image files (PNG/JPEG), optionally paired with a
 * segmentation or depth PNG, or the images of an in-memory u8 array
 * (Fashion-MNIST), optionally with class labels. Each item is preprocessed as
 * the official ImagePaths / SegmentationBase / DRIN code does: SmallestMaxSize
 * (OpenCV on u8) and a RandomCrop or CenterCrop, an optional HorizontalFlip,
 * then x / 127.5 - 1; segmentations are resized with nearest and one-hot
 * encoded, depth maps are min-max normalised at full resolution and resized
 * bilinearly as floats, both cropped jointly with the image.
 *
 * Order. Epoch e visits the items in a permutation drawn from (seed, e) alone;
 * every random choice made for an item (crop offsets, flip) is drawn from
 * (seed, e, item). A batch is therefore a pure function of its position
 * (epoch, step): worker threads, their number and their timing cannot change
 * it, and a resumed run seeks to the saved position and sees the same batches.
 *
 * Sharding. With world processes and a per-process batch B, the global batch
 * `step` of an epoch is the G = B * world items order[step*G .. step*G + G);
 * rank r takes its items r, r + world, r + 2*world, ... So world = 2 with batch
 * B sees exactly the items of one process with batch 2B.
 *
 * Threads. `workers` threads decode whole batches into a queue of `prefetch`
 * batches; next() hands them out in order. workers = 0 decodes on the caller's
 * thread. The CPU kernels the workers call run single-threaded there, so the
 * training thread keeps the OpenMP team. */
#ifndef TAMING_DATALOADER_H
#define TAMING_DATALOADER_H

#include <stdbool.h>
#include "taming/imgproc.h"
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tt_cond_kind {
  TT_COND_NONE = 0,
  TT_COND_SEGMENTATION,   /* 8-bit label PNG -> one-hot f32 [K, H, W] */
  TT_COND_DEPTH           /* RGBA float-bytes PNG -> f32 [1, H, W] in [-1, 1] */
} tt_cond_kind;

typedef struct tt_dataset_spec {
  int64_t n;                      /* items */
  const char *const *paths;       /* [n] image files, or NULL with `array` */
  const char *const *cond_paths;  /* [n] condition PNGs paired with paths (cond != NONE) */
  tt_tensor *array;               /* u8 [N, H, W] or [N, H, W, C] images when paths is NULL */
  tt_tensor *labels;              /* i64 [n] class labels, or NULL */
  int pad;                        /* zero pixels added around array images (Fashion-MNIST 28 -> 32: 2) */
  int channels;                   /* output channels: 1 or 3 (gray replicated; RGB -> L as PIL) */
  int size;                       /* SmallestMaxSize(size) + crop to size x size; 0 keeps the size */
  bool random_crop;               /* RandomCrop, else CenterCrop */
  bool hflip;                     /* HorizontalFlip with p = 0.5 */
  tt_interp interp;               /* image interpolation (TT_INTER_LINEAR as ImagePaths) */
  tt_cond_kind cond;
  int n_labels;                   /* segmentation classes K */
  bool shift;                     /* segmentation labels + 1 (COCO-Stuff) */
} tt_dataset_spec;

typedef struct tt_loader_opts {
  int batch;        /* per process */
  uint64_t seed;
  bool shuffle;     /* false: dataset order every epoch */
  bool drop_last;   /* drop a last partial batch (forced when world > 1) */
  int rank, world;
  int workers;      /* decoding threads; 0 = on the calling thread */
  int prefetch;     /* batches decoded ahead (>= 1) */
} tt_loader_opts;

typedef struct tt_batch {
  tt_tensor *image;   /* f32 [B, C, H, W] in [-1, 1] */
  tt_tensor *cond;    /* f32 [B, K, H, W] one-hot or [B, 1, H, W] depth; NULL without a condition */
  tt_tensor *label;   /* i64 [B]; NULL without labels */
  tt_tensor *index;   /* i64 [B] dataset indices of the items */
  int64_t epoch, step;
} tt_batch;

typedef struct tt_loader tt_loader;

/* Checks the spec (copies the paths, references array and labels). */
TT_API tt_status tt_loader_open(const tt_dataset_spec *spec, const tt_loader_opts *opts, tt_loader **out);
TT_API void tt_loader_close(tt_loader *l);
/* Steps (batches per process) in one epoch. */
TT_API int64_t tt_loader_steps_per_epoch(const tt_loader *l);
/* The next batch is batch `step` of epoch `epoch` (stops and restarts the workers). */
TT_API tt_status tt_loader_seek(tt_loader *l, int64_t epoch, int64_t step);
/* The next batch; epochs follow each other without end. Errors (an unreadable
 * file) name the file and the item. */
TT_API tt_status tt_loader_next(tt_loader *l, tt_batch *out);
TT_API void tt_batch_clear(tt_batch *b);
/* The permutation of epoch `epoch` -> i64 [n] (identity without shuffle). */
TT_API tt_tensor *tt_loader_order(const tt_loader *l, int64_t epoch);

#ifdef __cplusplus
}
#endif
#endif

/* tensorboard.h — TensorBoard event files, written and read back without
 * TensorFlow.
 *
 * A file is a sequence of TFRecords (u64 length, masked CRC-32C of the length,
 * the bytes, masked CRC-32C of the bytes), each holding one protobuf `Event`:
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3;
 *             Summary summary = 5; }
 *   Summary { repeated Value value = 1; }
 *   Value   { string tag = 1; float simple_value = 2; Image image = 4; }
 *   Image   { int32 height = 1; int32 width = 2; int32 colorspace = 3;
 *             bytes encoded_image_string = 4; }   (PNG bytes)
 * The first event carries file_version "brain.Event:2". Files are named
 * events.out.tfevents.<unix seconds>.<host name>, as TensorBoard globs them. */
#ifndef TAMING_TENSORBOARD_H
#define TAMING_TENSORBOARD_H

#include <stddef.h>
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tt_tb_writer tt_tb_writer;

/* Creates logdir (and parents) and a new event file in it. */
TT_API tt_status tt_tb_open(const char *logdir, tt_tb_writer **out);
TT_API const char *tt_tb_path(const tt_tb_writer *w);
/* One scalar (stored as float, as TensorBoard does). */
TT_API tt_status tt_tb_scalar(tt_tb_writer *w, const char *tag, int64_t step, double value);
/* One image: u8 [H, W, C] (C = 1, 3 or 4), or f32 [C, H, W] / [1, C, H, W] in
 * [-1, 1] (converted as the official scripts do); stored as PNG. */
TT_API tt_status tt_tb_image(tt_tb_writer *w, const char *tag, int64_t step, tt_tensor *img);
/* Events are flushed to the OS after every write; this also fsyncs. */
TT_API tt_status tt_tb_flush(tt_tb_writer *w);
TT_API void tt_tb_close(tt_tb_writer *w);

/* ---- reading back (tests, tools) ---- */

typedef struct tt_tb_value {
  const char *tag;
  bool has_simple_value;
  float simple_value;
  bool has_image;
  int height, width, colorspace;
  const unsigned char *png;   /* encoded_image_string */
  size_t png_len;
} tt_tb_value;

typedef struct tt_tb_event {
  double wall_time;
  int64_t step;
  const char *file_version;   /* NULL unless set */
  int n_values;
  const tt_tb_value *values;
} tt_tb_event;

/* Called once per event; strings and bytes live until the callback returns.
 * A non-TT_OK return stops the reading and is returned. */
typedef tt_status (*tt_tb_event_fn)(const tt_tb_event *e, void *ud);

/* Reads every record of an event file, checking both CRCs of each record and the
 * protobuf structure of each event (wire types, lengths, nesting); the first
 * defect is an error naming the file, the record and its offset. */
TT_API tt_status tt_tb_read(const char *path, tt_tb_event_fn fn, void *ud);

/* CRC-32C (Castagnoli), as TFRecord uses it; crc = 0 to start. */
TT_API uint32_t tt_crc32c(uint32_t crc, const void *data, size_t n);
/* TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8. */
TT_API uint32_t tt_crc32c_mask(uint32_t crc);

#ifdef __cplusplus
}
#endif
#endif

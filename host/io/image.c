/* image.c — PNG/JPEG files <-> u8 [H, W, C] tensors, the official float
 * conventions ([-1, 1] <-> 8 bit) and sample-sheet grids.
 *
 * Files are read whole and decoded from memory, so a truncated file is seen as
 * such (libjpeg would otherwise pad it with gray and only warn). libpng and
 * libjpeg report errors by longjmp; every decoder keeps the state it must free
 * in volatile locals and turns the jump into one error line naming the file.
 * Decoding matches Pillow's np.array(Image.open(path)): no gamma or colour
 * management, libjpeg's default islow DCT and fancy upsampling, 16-bit samples
 * reduced to their high byte, palettes expanded (to RGBA when they carry
 * transparency). As Pillow refuses decompression bombs, an image of more than
 * 2 x 89,478,485 pixels is refused from its header, before any allocation
 * (TAMING_MAX_IMAGE_PIXELS changes the limit, 0 or "none" removes it), and
 * libjpeg's warnings about corrupt or missing data are errors. The channel count is the file's: 16-bit gray+alpha stays two
 * channels where Pillow would widen it to RGBA. JPEGs are written with
 * libjpeg's defaults as Pillow writes them (4:2:0, quality 75 unless given).
 * Writers encode into memory first and then replace the target atomically, so
 * a failed save never touches an existing file. (This file keeps its own small
 * temp-file + fsync + rename helper.) */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
/* jpeglib.h needs size_t and FILE first */
#include <jpeglib.h>
#include <jerror.h>
#include "taming/autograd.h"
#include "taming/imgproc.h"
#include "taming/io.h"
#include "taming/ops/copy.h"
#include "io_internal.h"

/* ---- small helpers ---- */


static tt_status read_file(const char *path, unsigned char **data, size_t *size) {
  *data = NULL;
  *size = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return tt_error(TT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return tt_error(TT_ERR_IO, "%s: not a regular file", path);
  }
  size_t n = (size_t)st.st_size;
  unsigned char *buf = malloc(n ? n : 1);
  if (!buf) {
    fclose(f);
    return tt_error(TT_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, n);
  }
  size_t got = fread(buf, 1, n, f);
  int err = ferror(f);
  fclose(f);
  if (err || got != n) {
    free(buf);
    return tt_error(TT_ERR_IO, "%s: read error (%zu of %zu bytes)", path, got, n);
  }
  *data = buf;
  *size = n;
  return TT_OK;
}

/* Writes data to path via a temporary file in the same directory (fsync + rename),
 * so readers see either the old file or the complete new one. */
/* the whole encoded file, written next to `path` and renamed into place */
static tt_status write_file_atomic(const char *path, const void *data, size_t n) {
  tt_atomic_file f;
  TT_TRY(tt_atomic_open(&f, path));
  tt_status s = tt_atomic_write(&f, data, n);
  if (s != TT_OK) {
    tt_atomic_abort(&f);
    return s;
  }
  return tt_atomic_commit(&f);
}

/* A growable memory buffer for the encoders. */
typedef struct membuf {
  unsigned char *data;
  size_t size, cap;
  int oom;
} membuf;

static void membuf_put(membuf *b, const void *p, size_t n) {
  if (b->oom) return;
  if (b->size + n > b->cap) {
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->size + n) cap *= 2;
    unsigned char *d = realloc(b->data, cap);
    if (!d) {
      b->oom = 1;
      return;
    }
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->size, p, n);
  b->size += n;
}

/* ---- the pixel limit ---- */

tt_status tt_image_max_pixels(int64_t *out) {
  *out = TT_IMAGE_MAX_PIXELS_DEFAULT;
  const char *e = getenv("TAMING_MAX_IMAGE_PIXELS");
  if (!e || !*e) return TT_OK;
  if (!strcmp(e, "none")) {
    *out = 0;
    return TT_OK;
  }
  char *end;
  errno = 0;
  long long v = strtoll(e, &end, 10);
  if (errno || *end || end == e || v < 0)
    return tt_error(TT_ERR_INVALID, "TAMING_MAX_IMAGE_PIXELS=%s: expected a pixel count (0 or none: no limit)", e);
  *out = v;
  return TT_OK;
}

/* Checks a header's size before anything is allocated for it: the pixel limit
 * (0: none) and h * w * ch bytes that the tensor and row pointers can address. */
static tt_status check_size(const char *path, uint64_t h, uint64_t w, uint64_t ch, int64_t limit) {
  uint64_t pixels, bytes;
  if (h == 0 || w == 0) return tt_error(TT_ERR_FORMAT, "%s: the header declares an empty %llu x %llu image", path,
                                        (unsigned long long)h, (unsigned long long)w);
  if (__builtin_mul_overflow(h, w, &pixels) || __builtin_mul_overflow(pixels, ch, &bytes) || bytes > (uint64_t)PTRDIFF_MAX ||
      bytes > (uint64_t)SIZE_MAX)
    return tt_error(TT_ERR_UNSUPPORTED, "%s: a %llu x %llu image with %llu channels does not fit in memory", path,
                    (unsigned long long)h, (unsigned long long)w, (unsigned long long)ch);
  if (limit > 0 && pixels > (uint64_t)limit)
    return tt_error(TT_ERR_UNSUPPORTED,
                    "%s: the header declares %llu x %llu (H x W) = %llu pixels, over the limit of %lld (a decompression "
                    "bomb?); set TAMING_MAX_IMAGE_PIXELS to a larger count, or to 0 for no limit",
                    path, (unsigned long long)h, (unsigned long long)w, (unsigned long long)pixels, (long long)limit);
  return TT_OK;
}

/* ---- PNG ---- */

typedef struct png_ctx {
  jmp_buf jb;
  char msg[256];
  const unsigned char *data;
  size_t size, pos;
  membuf *out;
} png_ctx;

static void png_on_error(png_structp png, png_const_charp msg) {
  png_ctx *c = png_get_error_ptr(png);
  snprintf(c->msg, sizeof c->msg, "%s", msg);
  longjmp(c->jb, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
  (void)png;
  (void)msg; /* benign problems (unknown chunks, bad gamma) decode as Pillow does */
}

static void png_read_mem(png_structp png, png_bytep out, size_t n) {
  png_ctx *c = png_get_io_ptr(png);
  if (n > c->size - c->pos) png_error(png, "file is truncated");
  memcpy(out, c->data + c->pos, n);
  c->pos += n;
}

static tt_status decode_png(const char *path, const unsigned char *data, size_t size, int64_t limit, tt_tensor **out) {
  png_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.data = data;
  ctx.size = size;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
  if (!png) return tt_error(TT_ERR_NOMEM, "%s: cannot create a PNG reader", path);
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    return tt_error(TT_ERR_NOMEM, "%s: cannot create a PNG reader", path);
  }
  tt_tensor *volatile img = NULL;
  png_bytep *volatile rows = NULL;
  if (setjmp(ctx.jb)) {
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    tt_tensor_unref(img);
    return tt_error(TT_ERR_FORMAT, "%s: corrupt PNG: %s", path, ctx.msg);
  }
  png_set_read_fn(png, &ctx, png_read_mem);
  /* the pixel limit is checked below, from the header; libpng's own limit on each
   * side stays as a second fence */
  png_set_user_limits(png, 1u << 20, 1u << 20);
  png_read_info(png, info);
  png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
  /* 4 channels at most after the conversions below: a 1-bit image counts as 8-bit */
  tt_status s = check_size(path, h, w, 4, limit);
  if (s != TT_OK) {
    png_destroy_read_struct(&png, &info, NULL);
    return s;
  }
  int depth = png_get_bit_depth(png, info), ct = png_get_color_type(png, info);
  if (ct == PNG_COLOR_TYPE_PALETTE) {
    png_set_palette_to_rgb(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  }
  if (ct == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_strip_16(png); /* high byte, as Pillow's "RGB;16B" unpackers */
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  int ch = png_get_channels(png, info);
  size_t rowbytes = png_get_rowbytes(png, info);
  if (ch < 1 || ch > 4 || rowbytes != (size_t)w * (size_t)ch) png_error(png, "unexpected row layout after conversion");
  img = tt_tensor_new(TT_U8, TT_DIMS((int64_t)h, (int64_t)w, ch), TT_CPU);
  if (!img) png_error(png, "out of memory for the pixels");
  rows = malloc(sizeof(png_bytep) * h);
  if (!rows) png_error(png, "out of memory for the row table");
  unsigned char *base = tt_tensor_data(img);
  for (png_uint_32 y = 0; y < h; y++) rows[y] = base + (size_t)y * rowbytes;
  png_read_image(png, rows);
  /* trailing chunks (text, IEND) are not needed: the pixels are complete here */
  png_destroy_read_struct(&png, &info, NULL);
  free(rows);
  *out = img;
  return TT_OK;
}

static void png_write_mem(png_structp png, png_bytep p, size_t n) {
  png_ctx *c = png_get_io_ptr(png);
  membuf_put(c->out, p, n);
  if (c->out->oom) png_error(png, "out of memory");
}

static void png_flush_mem(png_structp png) { (void)png; }

static tt_status encode_png(const char *path, const unsigned char *px, int64_t h, int64_t w, int ch, membuf *mb) {
  static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                               PNG_COLOR_TYPE_RGB_ALPHA};
  png_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.out = mb;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
  if (!png) return tt_error(TT_ERR_NOMEM, "%s: cannot create a PNG writer", path);
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    return tt_error(TT_ERR_NOMEM, "%s: cannot create a PNG writer", path);
  }
  if (setjmp(ctx.jb)) {
    png_destroy_write_struct(&png, &info);
    return tt_error(TT_ERR_INTERNAL, "%s: PNG encoding failed: %s", path, ctx.msg);
  }
  png_set_write_fn(png, &ctx, png_write_mem, png_flush_mem);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, types[ch], PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int64_t y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(px + (size_t)y * (size_t)w * (size_t)ch));
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  return TT_OK;
}

tt_status tt_png_encode_mem(const char *what, const unsigned char *px, int64_t h, int64_t w, int ch,
                            unsigned char **out, size_t *len) {
  membuf mb = {0};
  *out = NULL;
  *len = 0;
  tt_status s = encode_png(what, px, h, w, ch, &mb);
  if (s == TT_OK && mb.oom) s = tt_error(TT_ERR_NOMEM, "%s: out of memory encoding a PNG", what);
  if (s != TT_OK) {
    free(mb.data);
    return s;
  }
  *out = mb.data;
  *len = mb.size;
  return TT_OK;
}

/* ---- JPEG ---- */

typedef struct jpeg_ctx {
  struct jpeg_error_mgr pub;
  jmp_buf jb;
  char msg[JMSG_LENGTH_MAX + 32];
} jpeg_ctx;

static void jpeg_on_error(j_common_ptr c) {
  jpeg_ctx *e = (jpeg_ctx *)c->err;
  c->err->format_message(c, e->msg);
  longjmp(e->jb, 1);
}

/* Warnings (level -1) about the data — an early end of the image, extraneous
 * bytes, bad Huffman codes — are errors: libjpeg would pad what it cannot read
 * with gray and go on, so a few hundred bytes could pass for any size. Those
 * about metadata alone (JFIF version, Adobe transform code, ICC marker) are
 * ignored, as are trace messages (level >= 0); nothing is printed. */
static void jpeg_on_message(j_common_ptr c, int level) {
  if (level >= 0) return;
  int code = c->err->msg_code;
  if (code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM || code == JWRN_BOGUS_ICC) return;
  jpeg_ctx *e = (jpeg_ctx *)c->err;
  char m[JMSG_LENGTH_MAX];
  c->err->format_message(c, m);
  static const char prefix[] = "Corrupt JPEG data: ";
  const char *p = strncmp(m, prefix, sizeof prefix - 1) ? m : m + sizeof prefix - 1;
  snprintf(e->msg, sizeof e->msg, "%s", p);
  longjmp(e->jb, 1);
}

/* The writer's messages are never warnings about input; they are dropped. */
static void jpeg_quiet(j_common_ptr c, int level) {
  (void)c;
  (void)level;
}

static void jpeg_no_output(j_common_ptr c) { (void)c; }

static void src_init(j_decompress_ptr c) { (void)c; }
static void src_term(j_decompress_ptr c) { (void)c; }

static void src_truncated(j_decompress_ptr c) {
  jpeg_ctx *e = (jpeg_ctx *)c->err;
  snprintf(e->msg, sizeof e->msg, "file is truncated");
  longjmp(e->jb, 1);
}

/* Called only once the whole file has been consumed. */
static boolean src_fill(j_decompress_ptr c) {
  src_truncated(c);
  return FALSE;
}

static void src_skip(j_decompress_ptr c, long n) {
  if (n <= 0) return;
  if ((size_t)n > c->src->bytes_in_buffer) src_truncated(c);
  c->src->next_input_byte += n;
  c->src->bytes_in_buffer -= (size_t)n;
}

static tt_status decode_jpeg(const char *path, const unsigned char *data, size_t size, int64_t limit, tt_tensor **out) {
  struct jpeg_decompress_struct cinfo;
  jpeg_ctx err;
  struct jpeg_source_mgr src;
  memset(&cinfo, 0, sizeof cinfo);
  memset(&err, 0, sizeof err);
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpeg_on_error;
  err.pub.emit_message = jpeg_on_message;
  err.pub.output_message = jpeg_no_output;
  tt_tensor *volatile img = NULL;
  volatile int unsupported = 0;
  if (setjmp(err.jb)) {
    jpeg_destroy_decompress(&cinfo);
    tt_tensor_unref(img);
    if (unsupported) return tt_error(TT_ERR_UNSUPPORTED, "%s: %s", path, err.msg);
    return tt_error(TT_ERR_FORMAT, "%s: corrupt JPEG: %s", path, err.msg);
  }
  jpeg_create_decompress(&cinfo);
  memset(&src, 0, sizeof src);
  src.init_source = src_init;
  src.fill_input_buffer = src_fill;
  src.skip_input_data = src_skip;
  src.resync_to_restart = jpeg_resync_to_restart;
  src.term_source = src_term;
  src.next_input_byte = data;
  src.bytes_in_buffer = size;
  cinfo.src = &src;
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    unsupported = 1;
    snprintf(err.msg, sizeof err.msg, "CMYK JPEGs are not supported; convert the file to RGB");
    longjmp(err.jb, 1);
  }
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  /* before jpeg_start_decompress, which allocates for the whole image */
  tt_status s = check_size(path, cinfo.image_height, cinfo.image_width, 3, limit);
  if (s != TT_OK) {
    jpeg_destroy_decompress(&cinfo);
    return s;
  }
  jpeg_start_decompress(&cinfo);
  int ch = cinfo.output_components;
  int64_t h = cinfo.output_height, w = cinfo.output_width;
  img = tt_tensor_new(TT_U8, TT_DIMS(h, w, ch), TT_CPU);
  if (!img) {
    snprintf(err.msg, sizeof err.msg, "out of memory for %lld x %lld pixels", (long long)h, (long long)w);
    longjmp(err.jb, 1);
  }
  unsigned char *base = tt_tensor_data(img);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = base + (size_t)cinfo.output_scanline * (size_t)w * (size_t)ch;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  *out = img;
  return TT_OK;
}

/* Compressed bytes go straight into a membuf. */
typedef struct jpeg_dst {
  struct jpeg_destination_mgr pub;
  membuf *mb;
  JOCTET buf[16384];
} jpeg_dst;

static void dst_init(j_compress_ptr c) {
  jpeg_dst *d = (jpeg_dst *)c->dest;
  d->pub.next_output_byte = d->buf;
  d->pub.free_in_buffer = sizeof d->buf;
}

static void dst_put(j_compress_ptr c, size_t n) {
  jpeg_dst *d = (jpeg_dst *)c->dest;
  membuf_put(d->mb, d->buf, n);
  if (d->mb->oom) {
    jpeg_ctx *e = (jpeg_ctx *)c->err;
    snprintf(e->msg, sizeof e->msg, "out of memory");
    longjmp(e->jb, 1);
  }
  d->pub.next_output_byte = d->buf;
  d->pub.free_in_buffer = sizeof d->buf;
}

static boolean dst_empty(j_compress_ptr c) {
  dst_put(c, sizeof ((jpeg_dst *)c->dest)->buf);
  return TRUE;
}

static void dst_term(j_compress_ptr c) {
  jpeg_dst *d = (jpeg_dst *)c->dest;
  dst_put(c, sizeof d->buf - d->pub.free_in_buffer);
}

static tt_status encode_jpeg(const char *path, const unsigned char *px, int64_t h, int64_t w, int ch, int quality,
                             membuf *mb) {
  struct jpeg_compress_struct cinfo;
  jpeg_ctx err;
  jpeg_dst dst;
  memset(&cinfo, 0, sizeof cinfo);
  memset(&err, 0, sizeof err);
  memset(&dst, 0, sizeof dst);
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpeg_on_error;
  err.pub.emit_message = jpeg_quiet;
  err.pub.output_message = jpeg_no_output;
  if (setjmp(err.jb)) {
    jpeg_destroy_compress(&cinfo);
    return tt_error(TT_ERR_INTERNAL, "%s: JPEG encoding failed: %s", path, err.msg);
  }
  jpeg_create_compress(&cinfo);
  dst.pub.init_destination = dst_init;
  dst.pub.empty_output_buffer = dst_empty;
  dst.pub.term_destination = dst_term;
  dst.mb = mb;
  cinfo.dest = &dst.pub;
  cinfo.image_width = (JDIMENSION)w;
  cinfo.image_height = (JDIMENSION)h;
  cinfo.input_components = ch;
  cinfo.in_color_space = ch == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = (JSAMPROW)(px + (size_t)cinfo.next_scanline * (size_t)w * (size_t)ch);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return TT_OK;
}

/* ---- public: load / save ---- */

tt_status tt_image_load_u8(const char *path, tt_tensor **out) { return tt_image_load_u8_limit(path, -1, out); }

tt_status tt_image_load_u8_limit(const char *path, int64_t max_pixels, tt_tensor **out) {
  if (!path || !out) return tt_error(TT_ERR_INVALID, "tt_image_load_u8: NULL argument");
  *out = NULL;
  if (max_pixels < 0 && tt_image_max_pixels(&max_pixels) != TT_OK)
    return tt_error_prefix(tt_last_status(), "%s: ", path);
  unsigned char *data;
  size_t size;
  TT_TRY(read_file(path, &data, &size));
  tt_status s;
  static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size == 0) {
    s = tt_error(TT_ERR_FORMAT, "%s: empty file, not an image", path);
  } else if (size >= 8 && memcmp(data, png_sig, 8) == 0) {
    s = decode_png(path, data, size, max_pixels, out);
  } else if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) {
    s = decode_jpeg(path, data, size, max_pixels, out);
  } else {
    char head[3 * 8 + 1] = {0};
    for (size_t i = 0; i < size && i < 8; i++) snprintf(head + 3 * i, 4, "%02x ", data[i]);
    if (head[0]) head[strlen(head) - 1] = '\0';
    s = tt_error(TT_ERR_FORMAT, "%s: not a PNG or JPEG image (first bytes: %s)", path, head);
  }
  free(data);
  return s;
}

static bool ends_with_ci(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  if (m > n) return false;
  for (size_t i = 0; i < m; i++) {
    char a = s[n - m + i], b = suffix[i];
    if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
    if (a != b) return false;
  }
  return true;
}

/* jpeg_quality: 1..100; 0 or less selects 75 (Pillow's default). */
tt_status tt_image_save_u8(const char *path, const tt_tensor *img, int jpeg_quality) {
  if (!path || !img) return tt_error(TT_ERR_INVALID, "tt_image_save_u8: NULL argument");
  char sh[128];
  if (img->dtype != TT_U8)
    return tt_error(TT_ERR_INVALID, "%s: image to save must be u8 [H, W, C], found %s %s", path,
                    tt_dtype_name(img->dtype), tt_tensor_shape_str(img, sh, sizeof sh));
  int ch = img->ndim == 2 ? 1 : img->ndim == 3 ? (int)img->shape[2] : 0;
  if (ch < 1 || ch > 4 || img->shape[0] < 1 || img->shape[1] < 1 || img->shape[0] > (1 << 20) ||
      img->shape[1] > (1 << 20))
    return tt_error(TT_ERR_INVALID, "%s: image to save must be u8 [H, W, C] with C in 1..4, found %s", path,
                    tt_tensor_shape_str(img, sh, sizeof sh));
  bool jpeg = ends_with_ci(path, ".jpg") || ends_with_ci(path, ".jpeg");
  if (jpeg && ch != 1 && ch != 3)
    return tt_error(TT_ERR_INVALID, "%s: JPEG stores 1 or 3 channels, the image has %d (save it as PNG)", path, ch);
  if (jpeg_quality > 100) return tt_error(TT_ERR_INVALID, "%s: JPEG quality %d > 100", path, jpeg_quality);
  tt_tensor *c = tt_host_contiguous(img);
  if (!c) return tt_last_status();
  membuf mb = {0};
  tt_status s = jpeg ? encode_jpeg(path, tt_tensor_data(c), img->shape[0], img->shape[1], ch,
                                   jpeg_quality > 0 ? jpeg_quality : 75, &mb)
                     : encode_png(path, tt_tensor_data(c), img->shape[0], img->shape[1], ch, &mb);
  tt_tensor_unref(c);
  if (s == TT_OK && mb.oom) s = tt_error(TT_ERR_NOMEM, "%s: out of memory encoding the image", path);
  if (s == TT_OK) s = write_file_atomic(path, mb.data, mb.size);
  free(mb.data);
  return s;
}

/* ---- public: float <-> u8 ---- */

tt_tensor *tt_image_to_u8(tt_tensor *x) {
  char sh[128];
  if (!x) {
    tt_error(TT_ERR_INVALID, "tt_image_to_u8: NULL image");
    return NULL;
  }
  bool ok = (x->ndim == 3 || (x->ndim == 4 && x->shape[0] == 1)) && (x->dtype == TT_F32 || x->dtype == TT_F64);
  if (!ok) {
    tt_error(TT_ERR_INVALID, "tt_image_to_u8: expected f32 [C, H, W] or [1, C, H, W], found %s %s",
             tt_dtype_name(x->dtype), tt_tensor_shape_str(x, sh, sizeof sh));
    return NULL;
  }
  int o = x->ndim - 3;
  int64_t C = x->shape[o], H = x->shape[o + 1], W = x->shape[o + 2];
  tt_tensor *c = tt_host_contiguous(x);
  if (!c) return NULL;
  tt_tensor *out = tt_tensor_new(TT_U8, TT_DIMS(H, W, C), TT_CPU);
  if (!out) {
    tt_tensor_unref(c);
    return NULL;
  }
  unsigned char *dst = tt_tensor_data(out);
  int64_t HW = H * W;
#pragma omp parallel for if (HW * C > 32768)
  for (int64_t i = 0; i < HW; i++) {
    for (int64_t k = 0; k < C; k++) {
      /* numpy: (x + 1.0) * 127.5 on a float32 array stays float32 */
      float v = x->dtype == TT_F32 ? tt_f32(c)[k * HW + i] : (float)((double *)tt_tensor_data(c))[k * HW + i];
      float y = (v + 1.0f) * 127.5f;
      unsigned char b;
      if (!(y > 0.0f)) b = 0; /* also NaN */
      else if (y >= 255.0f) b = 255;
      else b = (unsigned char)y; /* truncation, as astype(np.uint8) */
      dst[i * C + k] = b;
    }
  }
  tt_tensor_unref(c);
  return out;
}

tt_tensor *tt_image_from_u8(tt_tensor *img) {
  char sh[128];
  if (!img || img->dtype != TT_U8 || (img->ndim != 2 && img->ndim != 3)) {
    if (img)
      tt_error(TT_ERR_INVALID, "tt_image_from_u8: expected u8 [H, W, C], found %s %s", tt_dtype_name(img->dtype),
               tt_tensor_shape_str(img, sh, sizeof sh));
    else
      tt_error(TT_ERR_INVALID, "tt_image_from_u8: NULL image");
    return NULL;
  }
  int64_t H = img->shape[0], W = img->shape[1], C = img->ndim == 3 ? img->shape[2] : 1;
  tt_tensor *c = tt_host_contiguous(img);
  if (!c) return NULL;
  tt_tensor *out = tt_tensor_new(TT_F32, TT_DIMS(1, C, H, W), TT_CPU);
  if (!out) {
    tt_tensor_unref(c);
    return NULL;
  }
  tt_u8_hwc_to_chw(tt_tensor_data(c), H * W, C, tt_f32(out));
  tt_tensor_unref(c);
  return out;
}

void tt_u8_hwc_to_chw(const unsigned char *src, int64_t HW, int64_t C, float *dst) {
  /* x / 127.5 - 1 in float64, then cast, as (image / 127.5 - 1.0).astype(np.float32) */
  float lut[256];
  for (int v = 0; v < 256; v++) lut[v] = (float)(v / 127.5 - 1.0);
  for (int64_t i = 0; i < HW; i++)   /* serial: the loader calls it from its worker threads */
    for (int64_t k = 0; k < C; k++) dst[k * HW + i] = lut[src[i * C + k]];
}

/* ---- public: grids ---- */

tt_tensor *tt_image_grid(int n, tt_tensor *const *images, int nrow, int padding, float pad_value) {
  char sh[128], sh0[128];
  if (n < 1 || !images || nrow < 1 || padding < 0) {
    tt_error(TT_ERR_INVALID, "tt_image_grid: need n >= 1 images, nrow >= 1 and padding >= 0 (got n %d, nrow %d, padding %d)",
             n, nrow, padding);
    return NULL;
  }
  int64_t count = 0, C = 0, H = 0, W = 0;
  tt_dtype dt = TT_F32;
  for (int i = 0; i < n; i++) {
    const tt_tensor *t = images[i];
    if (!t || (t->ndim != 3 && t->ndim != 4) || (t->dtype != TT_F32 && t->dtype != TT_U8)) {
      if (t)
        tt_error(TT_ERR_INVALID, "tt_image_grid: image %d must be f32/u8 [C, H, W] or [B, C, H, W], found %s %s", i,
                 tt_dtype_name(t->dtype), tt_tensor_shape_str(t, sh, sizeof sh));
      else
        tt_error(TT_ERR_INVALID, "tt_image_grid: image %d is NULL", i);
      return NULL;
    }
    int o = t->ndim - 3;
    if (i == 0) {
      C = t->shape[o], H = t->shape[o + 1], W = t->shape[o + 2], dt = t->dtype;
    } else if (t->shape[o] != C || t->shape[o + 1] != H || t->shape[o + 2] != W || t->dtype != dt) {
      tt_error(TT_ERR_INVALID, "tt_image_grid: image %d is %s %s, image 0 is %s %s", i, tt_dtype_name(t->dtype),
               tt_tensor_shape_str(t, sh, sizeof sh), tt_dtype_name(images[0]->dtype),
               tt_tensor_shape_str(images[0], sh0, sizeof sh0));
      return NULL;
    }
    count += t->ndim == 4 ? t->shape[0] : 1;
  }
  if (count == 0) {
    tt_error(TT_ERR_INVALID, "tt_image_grid: the tensors hold no images");
    return NULL;
  }
  int64_t xmaps = count < nrow ? count : nrow, ymaps = (count + xmaps - 1) / xmaps;
  int64_t p = count == 1 ? 0 : padding;
  int64_t GH = ymaps * (H + p) + p, GW = xmaps * (W + p) + p;
  if (count == 1) GH = H, GW = W;
  tt_tensor *out = tt_tensor_new(dt, TT_DIMS(1, C, GH, GW), TT_CPU);
  if (!out) return NULL;
  size_t es = tt_dtype_size(dt);
  unsigned char *dst = tt_tensor_data(out);
  int64_t total = C * GH * GW;
  if (dt == TT_F32)
    for (int64_t i = 0; i < total; i++) ((float *)dst)[i] = pad_value;
  else {
    float v = pad_value < 0 ? 0 : pad_value > 255 ? 255 : pad_value;
    memset(dst, (int)v, (size_t)total);
  }
  int64_t k = 0;
  for (int i = 0; i < n; i++) {
    tt_tensor *c = tt_host_contiguous(images[i]);
    if (!c) {
      tt_tensor_unref(out);
      return NULL;
    }
    int64_t B = c->ndim == 4 ? c->shape[0] : 1;
    const unsigned char *src = tt_tensor_data(c);
    for (int64_t b = 0; b < B; b++, k++) {
      int64_t y0 = (k / xmaps) * (H + p) + p, x0 = (k % xmaps) * (W + p) + p;
      for (int64_t ch = 0; ch < C; ch++)
        for (int64_t y = 0; y < H; y++)
          memcpy(dst + ((ch * GH + y0 + y) * GW + x0) * es, src + (((b * C + ch) * H + y) * W) * es, (size_t)W * es);
    }
    tt_tensor_unref(c);
  }
  return out;
}

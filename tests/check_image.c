/* check_image.c — PNG/JPEG I/O, [-1, 1] <-> u8, grids and the data-pipeline
 * preprocessing (OpenCV resize, albumentations crops, Pillow resize, skimage
 * canny, depth PNGs, one-hot labels) against the references made by
 * tests/data/gen_image.py with cv2 4.6, Pillow 9.4, scikit-image 0.19 on
 * crops of the official example data (committed in tests/data/image). */
#include "config.h"
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <zlib.h>
#include "imgtest.h"
#include "taming/imgproc.h"
#include "taming/io.h"

/* A [H, W, n] view of channels [c0, c0 + n) of a u8/f32 [H, W, C] image. */
static tt_tensor *channels(tt_tensor *im, int c0, int n) {
  int64_t C = im->shape[2];
  return tt_tensor_view_of(im, TT_DIMS(im->shape[0], im->shape[1], n), (const int64_t[]){im->shape[1] * C, C, 1},
                           im->offset + c0);
}

/* Asserts that a call failed with a message containing every needle. */
static void expect_error(const char *what, tt_status s, const char *n1, const char *n2) {
  const char *msg = tt_error_message();
  printf("%s -> %s: %s\n", what, tt_status_name(s), msg);
  ck_assert_msg(s != TT_OK, "%s: succeeded, expected an error", what);
  ck_assert_msg(!n1 || strstr(msg, n1), "%s: message \"%s\" lacks \"%s\"", what, msg, n1);
  ck_assert_msg(!n2 || strstr(msg, n2), "%s: message \"%s\" lacks \"%s\"", what, msg, n2);
  ck_assert_msg(strchr(msg, '\n') == NULL, "%s: message is not one line", what);
}

/* ---------------- decoding ---------------- */

START_TEST(test_png_flavours) {
  static const char *cases[][2] = {
      {"fmt_gray16.png", "fmt_gray16.npy"},     {"fmt_rgb16.png", "fmt_rgb16.npy"},
      {"fmt_ga.png", "fmt_ga.npy"},             {"fmt_ga16.png", "fmt_ga16.npy"},
      {"fmt_palette.png", "fmt_palette.npy"},   {"fmt_palette_trns.png", "fmt_palette_trns.npy"},
      {"fmt_gray1.png", "fmt_gray1.npy"},       {"fmt_gray4.png", "fmt_gray4.npy"},
      {"fmt_interlaced.png", "fmt_interlaced.npy"}, {"fmt_rgb16_interlaced.png", "fmt_rgb16_interlaced.npy"}};
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    tt_tensor *got = it_image(cases[i][0]), *want = it_npy(cases[i][1]);
    it_expect_close(cases[i][0], got, want, 0);
    tt_tensor_unref(got);
    tt_tensor_unref(want);
  }
  /* 8-bit gray, RGB and RGBA against the crops they were written from */
  tt_tensor *rgb = it_image("rgb.png"), *rgba = it_image("rgba.png"), *g = it_image("fmt_gray.png");
  ck_assert_int_eq(rgb->ndim, 3);
  ck_assert_int_eq(rgb->shape[0], 61);
  ck_assert_int_eq(rgb->shape[1], 83);
  ck_assert_int_eq(rgb->shape[2], 3);
  ck_assert_int_eq(rgba->shape[2], 4);
  tt_tensor *rgb_part = channels(rgba, 0, 3);
  it_expect_close("rgba.png colour = rgb.png", rgb_part, rgb, 0);
  tt_tensor *r = channels(rgb, 0, 1), *rc = tt_crop(r, 0, 0, 19, 27);
  it_expect_close("fmt_gray.png", g, rc, 0);
  tt_tensor_unref(rc);
  tt_tensor_unref(r);
  tt_tensor_unref(rgb_part);
  tt_tensor_unref(g);
  tt_tensor_unref(rgb);
  tt_tensor_unref(rgba);
}
END_TEST

START_TEST(test_jpeg_decode_matches_pil) {
  /* Pillow decodes with the same libjpeg(-turbo) defaults (islow DCT, fancy
   * upsampling): measured max difference 0 on every file, asserted as such. */
  static const char *files[] = {"fmt_rgb.jpg", "fmt_rgb444.jpg", "fmt_progressive.jpg", "fmt_gray.jpg"};
  for (size_t i = 0; i < 4; i++) {
    char ref[128];
    snprintf(ref, sizeof ref, "%s.npy", files[i]);
    tt_tensor *got = it_image(files[i]), *want = it_npy(ref);
    it_expect_close(files[i], got, want, 0);
    tt_tensor_unref(got);
    tt_tensor_unref(want);
  }
}
END_TEST

/* ---------------- saving ---------------- */

static tt_tensor *random_u8(uint64_t seed, int64_t h, int64_t w, int64_t c) {
  tt_tensor *t = tt_tensor_new(TT_U8, TT_DIMS(h, w, c), TT_CPU);
  uint8_t *p = tt_tensor_data(t);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int64_t i = 0; i < h * w * c; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    p[i] = (uint8_t)(x >> 24);
  }
  return t;
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  ck_assert(d != NULL);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

START_TEST(test_save_load_roundtrip) {
  char *dir = it_tmpdir(), path[4096];
  int files = 0;
  for (int c = 1; c <= 4; c++) {
    tt_tensor *im = random_u8((uint64_t)c, 17 + c, 31 - c, c);
    snprintf(path, sizeof path, "%s/rt%d.png", dir, c);
    TH_OK(tt_image_save_u8(path, im, 0));
    files++;
    tt_tensor *back = NULL;
    TH_OK(tt_image_load_u8(path, &back));
    it_expect_close("PNG round trip", back, im, 0);
    tt_tensor_unref(back);
    tt_tensor_unref(im);
  }
  /* a [H, W] image saves as gray; a strided view saves its values */
  tt_tensor *rgb = it_image("rgb.png"), *green = channels(rgb, 1, 1);
  snprintf(path, sizeof path, "%s/green.png", dir);
  TH_OK(tt_image_save_u8(path, green, 0));
  files++;
  tt_tensor *back = NULL;
  TH_OK(tt_image_load_u8(path, &back));
  it_expect_close("strided channel view round trip", back, green, 0);
  tt_tensor_unref(back);
  /* JPEG by extension, encoded as Pillow encodes (libjpeg defaults, 4:2:0): the
   * decoded pixels equal those of Pillow's file at the same quality */
  snprintf(path, sizeof path, "%s/crop.JPG", dir);
  TH_OK(tt_image_save_u8(path, rgb, 100));
  files++;
  TH_OK(tt_image_load_u8(path, &back));
  unsigned char head[3];
  size_t n;
  unsigned char *bytes = it_read_file(path, &n);
  memcpy(head, bytes, 3);
  free(bytes);
  ck_assert_msg(head[0] == 0xFF && head[1] == 0xD8, "a .JPG path must be written as JPEG");
  tt_tensor *pil = it_npy("save_q100.npy");
  it_expect_close("JPEG q100 save vs Pillow's", back, pil, 0);
  tt_tensor_unref(pil);
  tt_tensor_unref(back);
  snprintf(path, sizeof path, "%s/gray.jpeg", dir);
  TH_OK(tt_image_save_u8(path, green, 90));
  files++;
  TH_OK(tt_image_load_u8(path, &back));
  ck_assert_int_eq(back->shape[2], 1);
  pil = it_npy("save_gray_q90.npy");
  it_expect_close("gray JPEG q90 save vs Pillow's", back, pil, 0);
  tt_tensor_unref(pil);
  tt_tensor_unref(back);
  /* nothing but the saved files: no temporaries left behind */
  ck_assert_int_eq(count_entries(dir), files);
  tt_tensor_unref(green);
  tt_tensor_unref(rgb);
  it_rmtree(dir);
  free(dir);
}
END_TEST

START_TEST(test_save_failures_leave_files_alone) {
  char *dir = it_tmpdir(), path[4096];
  tt_tensor *good = random_u8(5, 9, 7, 3), *rgba = random_u8(6, 9, 7, 4);
  snprintf(path, sizeof path, "%s/keep.jpg", dir);
  TH_OK(tt_image_save_u8(path, good, 0));
  size_t n0, n1;
  unsigned char *before = it_read_file(path, &n0);
  expect_error("JPEG with alpha", tt_image_save_u8(path, rgba, 0), "keep.jpg", "channels");
  tt_tensor *f = tt_zeros(TT_F32, TT_DIMS(9, 7, 3), TT_CPU);
  expect_error("f32 image", tt_image_save_u8(path, f, 0), "keep.jpg", "u8");
  tt_tensor *five = random_u8(7, 4, 4, 5);
  expect_error("5 channels", tt_image_save_u8(path, five, 0), "keep.jpg", "C in 1..4");
  unsigned char *after = it_read_file(path, &n1);
  ck_assert_msg(n0 == n1 && memcmp(before, after, n0) == 0, "a failed save changed the existing file");
  ck_assert_int_eq(count_entries(dir), 1);
  snprintf(path, sizeof path, "%s/no/such/dir/x.png", dir);
  expect_error("missing directory", tt_image_save_u8(path, good, 0), "no/such/dir/x.png", "temporary file");
  free(before);
  free(after);
  tt_tensor_unref(f);
  tt_tensor_unref(five);
  tt_tensor_unref(good);
  tt_tensor_unref(rgba);
  it_rmtree(dir);
  free(dir);
}
END_TEST

/* ---------------- bad input ---------------- */

static size_t find_bytes(const unsigned char *p, size_t n, const char *tag) {
  for (size_t i = 0; i + 4 <= n; i++)
    if (memcmp(p + i, tag, 4) == 0) return i;
  ck_abort_msg("tag %s not found", tag);
  return 0;
}

START_TEST(test_bad_files_are_clear_errors) {
  char *dir = it_tmpdir(), path[4096];
  tt_tensor *im = it_image("rgb.png"), *out = NULL;
  /* a valid PNG and JPEG to damage */
  char png[4096], jpg[4096];
  snprintf(png, sizeof png, "%s/ok.png", dir);
  snprintf(jpg, sizeof jpg, "%s/ok.jpg", dir);
  TH_OK(tt_image_save_u8(png, im, 0));
  TH_OK(tt_image_save_u8(jpg, im, 90));
  size_t n;
  unsigned char *p = it_read_file(png, &n);

  /* bytes flipped inside the compressed IDAT data (CRC no longer matches) */
  unsigned char *q = malloc(n);
  memcpy(q, p, n);
  size_t idat = find_bytes(q, n, "IDAT");
  for (size_t i = idat + 40; i < idat + 60; i++) q[i] ^= 0x5A;
  snprintf(path, sizeof path, "%s/flipped.png", dir);
  it_write_file(path, q, n);
  expect_error("IDAT bytes flipped", tt_image_load_u8(path, &out), "flipped.png", "corrupt PNG");
  ck_assert_ptr_null(out);
  /* the same damage with a valid chunk CRC: now the zlib stream itself is bad */
  size_t len = (size_t)q[idat - 4] << 24 | (size_t)q[idat - 3] << 16 | (size_t)q[idat - 2] << 8 | q[idat - 1];
  uLong crc = crc32(0L, q + idat, (uInt)(len + 4));
  q[idat + 4 + len] = (unsigned char)(crc >> 24), q[idat + 5 + len] = (unsigned char)(crc >> 16);
  q[idat + 6 + len] = (unsigned char)(crc >> 8), q[idat + 7 + len] = (unsigned char)crc;
  snprintf(path, sizeof path, "%s/zlib.png", dir);
  it_write_file(path, q, n);
  expect_error("IDAT bytes flipped, CRC fixed", tt_image_load_u8(path, &out), "zlib.png", "corrupt PNG");
  /* truncated PNG */
  snprintf(path, sizeof path, "%s/truncated.png", dir);
  it_write_file(path, p, n / 2);
  expect_error("truncated PNG", tt_image_load_u8(path, &out), "truncated.png", "truncated");
  /* header only */
  snprintf(path, sizeof path, "%s/header.png", dir);
  it_write_file(path, p, 8);
  expect_error("signature only", tt_image_load_u8(path, &out), "header.png", "corrupt PNG");
  /* broken IHDR CRC */
  memcpy(q, p, n);
  q[29] ^= 0xFF;
  snprintf(path, sizeof path, "%s/ihdr.png", dir);
  it_write_file(path, q, n);
  expect_error("IHDR CRC", tt_image_load_u8(path, &out), "ihdr.png", "corrupt PNG");
  free(q);
  free(p);

  /* truncated JPEG: Pillow refuses these too (libjpeg alone would pad with gray) */
  p = it_read_file(jpg, &n);
  snprintf(path, sizeof path, "%s/truncated.jpg", dir);
  it_write_file(path, p, n * 6 / 10);
  expect_error("truncated JPEG", tt_image_load_u8(path, &out), "truncated.jpg", "truncated");
  snprintf(path, sizeof path, "%s/soi.jpg", dir);
  it_write_file(path, p, 4);
  expect_error("JPEG start only", tt_image_load_u8(path, &out), "soi.jpg", "JPEG");
  /* damaged entropy data: libjpeg's warning is an error, and nothing is printed */
  q = malloc(n);
  memcpy(q, p, n);
  for (size_t i = n / 2; i < n / 2 + 64; i++) /* no new or broken markers: only entropy bits change */
    if (q[i] != 0xFF && q[i - 1] != 0xFF && (q[i] ^ 0x21) != 0xFF) q[i] ^= 0x21;
  snprintf(path, sizeof path, "%s/garbled.jpg", dir);
  it_write_file(path, q, n);
  char errlog[4096];
  snprintf(errlog, sizeof errlog, "%s/stderr.txt", dir);
  fflush(stderr);
  int saved = dup(fileno(stderr));
  ck_assert(freopen(errlog, "w", stderr) != NULL);
  tt_status s = tt_image_load_u8(path, &out);
  fflush(stderr);
  dup2(saved, fileno(stderr));
  close(saved);
  expect_error("garbled JPEG", s, "garbled.jpg", "corrupt JPEG: bad Huffman code");
  ck_assert_ptr_null(out);
  struct stat st;
  ck_assert(stat(errlog, &st) == 0);
  ck_assert_msg(st.st_size == 0, "libjpeg printed %lld bytes to stderr", (long long)st.st_size);
  free(q);
  free(p);

  /* not an image, empty, missing, a directory */
  snprintf(path, sizeof path, "%s/notes.txt", dir);
  it_write_file(path, "hello, world\n", 13);
  expect_error("text file", tt_image_load_u8(path, &out), "notes.txt", "not a PNG or JPEG");
  snprintf(path, sizeof path, "%s/empty.png", dir);
  it_write_file(path, "", 0);
  expect_error("empty file", tt_image_load_u8(path, &out), "empty.png", "empty");
  snprintf(path, sizeof path, "%s/missing.png", dir);
  expect_error("missing file", tt_image_load_u8(path, &out), "missing.png", "cannot open");
  expect_error("directory", tt_image_load_u8(dir, &out), dir, "not a regular file");
  ck_assert_ptr_null(out);
  tt_tensor_unref(im);
  it_rmtree(dir);
  free(dir);
}
END_TEST

/* ---------------- decompression bombs ---------------- */

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* Appends a PNG chunk (length, type, data, CRC) at out + *n. */
static void png_chunk(unsigned char *out, size_t *n, const char *type, const unsigned char *data, uint32_t len) {
  put_be32(out + *n, len);
  memcpy(out + *n + 4, type, 4);
  if (len) memcpy(out + *n + 8, data, len);
  uLong crc = crc32(0L, out + *n + 4, len + 4);
  put_be32(out + *n + 8 + len, (uint32_t)crc);
  *n += 12 + (size_t)len;
}

/* A complete, valid PNG of w x h all-zero pixels (gray at `depth` bits, or 8-bit
 * RGB when rgb); only `rows` rows of image data when rows < h (a truncated stream). */
static unsigned char *zero_png(uint32_t w, uint32_t h, int depth, bool rgb, uint32_t rows, size_t *n) {
  size_t rowbytes = rgb ? (size_t)w * 3 : ((size_t)w * (size_t)depth + 7) / 8;
  size_t raw_n = (rowbytes + 1) * (rows < h ? rows : h);
  unsigned char *raw = calloc(raw_n ? raw_n : 1, 1);
  uLongf zn = compressBound((uLong)raw_n);
  unsigned char *out = malloc(zn + 128);
  ck_assert(raw && out);
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  memcpy(out, sig, 8);
  *n = 8;
  unsigned char ihdr[13] = {0};
  put_be32(ihdr, w);
  put_be32(ihdr + 4, h);
  ihdr[8] = (unsigned char)depth;
  ihdr[9] = rgb ? 2 : 0;
  png_chunk(out, n, "IHDR", ihdr, 13);
  unsigned char *z = malloc(zn);
  ck_assert(z && compress2(z, &zn, raw, (uLong)raw_n, 9) == Z_OK);
  png_chunk(out, n, "IDAT", z, (uint32_t)zn);
  png_chunk(out, n, "IEND", NULL, 0);
  free(z);
  free(raw);
  return out;
}

/* Offset of the first SOFn frame header's height field in a JPEG (the marker
 * segment is FF Cn Lh Ll P Yh Yl Xh Xl). */
static size_t jpeg_sof_dims(const unsigned char *p, size_t n) {
  for (size_t i = 2; i + 9 < n; i++)
    if (p[i] == 0xFF && (p[i + 1] == 0xC0 || p[i + 1] == 0xC2)) return i + 5;
  ck_abort_msg("no SOF marker");
  return 0;
}

START_TEST(test_pixel_limit) {
  char *dir = it_tmpdir(), path[4096];
  tt_tensor *out = NULL;
  size_t n;
  /* a 100000 x 100000 RGB header over a few bytes of data (40 GB decoded) */
  unsigned char *png = zero_png(100000, 100000, 8, true, 1, &n);
  snprintf(path, sizeof path, "%s/huge.png", dir);
  it_write_file(path, png, n);
  expect_error("100000^2 PNG", tt_image_load_u8(path, &out), "huge.png", "over the limit of 178956970");
  ck_assert_ptr_null(out);
  free(png);
  /* a complete 1-bit PNG of 20000 x 10000 (200 M pixels, 25 KB): refused as Pillow
   * refuses it, although the file itself is small and valid */
  png = zero_png(20000, 10000, 1, false, 10000, &n);
  printf("1-bit PNG of 20000 x 10000: %zu bytes\n", n);
  snprintf(path, sizeof path, "%s/bits.png", dir);
  it_write_file(path, png, n);
  expect_error("1-bit 200 M pixel PNG", tt_image_load_u8(path, &out), "bits.png", "10000 x 20000 (H x W) = 200000000 pixels");
  free(png);
  /* just under the limit: the same kind of file decodes (gray, expanded to 8 bits) */
  png = zero_png(300, 200, 1, false, 200, &n);
  snprintf(path, sizeof path, "%s/small_bits.png", dir);
  it_write_file(path, png, n);
  TH_OK(tt_image_load_u8_limit(path, 300 * 200, &out));
  ck_assert_int_eq(out->shape[0], 200);
  ck_assert_int_eq(out->shape[1], 300);
  tt_tensor_release(&out);
  expect_error("one pixel over an explicit limit", tt_image_load_u8_limit(path, 300 * 200 - 1, &out), "small_bits.png",
               "over the limit of 59999");
  free(png);

  /* a JPEG whose frame header declares 65500 x 65500 */
  tt_tensor *im = it_image("rgb.png");
  char jpg[4096];
  snprintf(jpg, sizeof jpg, "%s/ok.jpg", dir);
  TH_OK(tt_image_save_u8(jpg, im, 90));
  unsigned char *j = it_read_file(jpg, &n);
  size_t d = jpeg_sof_dims(j, n);
  j[d] = 0xFF, j[d + 1] = 0xDC, j[d + 2] = 0xFF, j[d + 3] = 0xDC;
  snprintf(path, sizeof path, "%s/huge.jpg", dir);
  it_write_file(path, j, n);
  expect_error("65500^2 JPEG", tt_image_load_u8(path, &out), "huge.jpg", "65500 x 65500 (H x W) = 4290250000 pixels");

  /* the override: a count, 0 / none for no limit; junk is an error naming the variable */
  setenv("TAMING_MAX_IMAGE_PIXELS", "5000", 1);
  expect_error("limit from the environment", tt_image_load_u8(jpg, &out), "ok.jpg", "61 x 83 (H x W) = 5063 pixels");
  setenv("TAMING_MAX_IMAGE_PIXELS", "5063", 1);
  TH_OK(tt_image_load_u8(jpg, &out));
  tt_tensor_release(&out);
  setenv("TAMING_MAX_IMAGE_PIXELS", "none", 1);
  TH_OK(tt_image_load_u8(it_data("rgb.png"), &out));
  tt_tensor_release(&out);
  setenv("TAMING_MAX_IMAGE_PIXELS", "0", 1);
  TH_OK(tt_image_load_u8(jpg, &out));
  tt_tensor_release(&out);
  int64_t lim = -1;
  TH_OK(tt_image_max_pixels(&lim));
  ck_assert_int_eq(lim, 0);
  setenv("TAMING_MAX_IMAGE_PIXELS", "12abc", 1);
  expect_error("unreadable limit", tt_image_load_u8(jpg, &out), "ok.jpg", "TAMING_MAX_IMAGE_PIXELS=12abc");
  setenv("TAMING_MAX_IMAGE_PIXELS", "-1", 1);
  expect_error("negative limit", tt_image_load_u8(jpg, &out), "ok.jpg", "TAMING_MAX_IMAGE_PIXELS=-1");
  unsetenv("TAMING_MAX_IMAGE_PIXELS");
  TH_OK(tt_image_max_pixels(&lim));
  ck_assert_int_eq(lim, 178956970);

  /* the frame header declares 2000 x 2000, under the limit, but the data ends
   * (EOI) after the real 83 x 61 image: libjpeg would pad the rest with gray */
  j[d] = 0x07, j[d + 1] = 0xD0, j[d + 2] = 0x07, j[d + 3] = 0xD0;
  snprintf(path, sizeof path, "%s/early_eoi.jpg", dir);
  it_write_file(path, j, n);
  expect_error("JPEG data ending early", tt_image_load_u8(path, &out), "early_eoi.jpg", "premature end of data segment");
  ck_assert_ptr_null(out);
  free(j);
  tt_tensor_unref(im);
  it_rmtree(dir);
  free(dir);
}
END_TEST

/* ---------------- [-1, 1] <-> u8 and grids ---------------- */

START_TEST(test_to_u8_truncates) {
  tt_tensor *x = it_npy("tou8_in.npy"), *want = it_npy("tou8_ref.npy");
  tt_tensor *got = tt_image_to_u8(x);
  it_expect_close("to_u8 [C, H, W] vs numpy", got, want, 0);
  tt_tensor_unref(got);
  tt_tensor *x4 = tt_tensor_view_of(x, TT_DIMS(1, 3, 21, 11), NULL, 0);
  got = tt_image_to_u8(x4);
  it_expect_close("to_u8 [1, C, H, W] vs numpy", got, want, 0);
  tt_tensor_unref(got);
  /* the first values: -1, 1, 0 (127.5 truncates to 127), slightly out of range */
  const uint8_t *g = tt_tensor_data(want);
  ck_assert_int_eq(g[0 * 3], 0);
  ck_assert_int_eq(g[1 * 3], 255);
  ck_assert_int_eq(g[2 * 3], 127);
  /* NaN becomes 0 */
  float nanv[3] = {NAN, 0.5f, -0.5f};
  tt_tensor *xn = tt_tensor_from_data(TT_F32, TT_DIMS(3, 1, 1), nanv, TT_CPU);
  got = tt_image_to_u8(xn);
  TH_NN(got);
  ck_assert_int_eq(((uint8_t *)tt_tensor_data(got))[0], 0);
  ck_assert_int_eq(((uint8_t *)tt_tensor_data(got))[1], 191);
  ck_assert_int_eq(((uint8_t *)tt_tensor_data(got))[2], 63);
  tt_tensor_unref(got);
  tt_tensor *bad = tt_zeros(TT_F32, TT_DIMS(2, 3, 4, 4), TT_CPU);
  ck_assert_ptr_null(tt_image_to_u8(bad));
  expect_error("to_u8 of a batch of 2", tt_last_status(), "[2, 3, 4, 4]", NULL);
  tt_tensor_unref(bad);
  tt_tensor_unref(xn);
  tt_tensor_unref(x4);
  tt_tensor_unref(x);
  tt_tensor_unref(want);
}
END_TEST

START_TEST(test_from_u8) {
  uint8_t v[256];
  for (int i = 0; i < 256; i++) v[i] = (uint8_t)i;
  tt_tensor *im = tt_tensor_from_data(TT_U8, TT_DIMS(256, 1, 1), v, TT_CPU);
  tt_tensor *x = tt_image_from_u8(im), *want = it_npy("fromu8_ref.npy");
  TH_NN(x);
  ck_assert_int_eq(x->ndim, 4);
  tt_tensor *flat = tt_tensor_view_of(x, TT_DIMS(256), NULL, 0);
  it_expect_close("from_u8 vs (v / 127.5 - 1).astype(float32)", flat, want, 0);
  /* layout: [H, W, C] -> [1, C, H, W] */
  uint8_t hwc[2 * 3 * 2];
  for (int i = 0; i < 12; i++) hwc[i] = (uint8_t)(i * 20);
  tt_tensor *im2 = tt_tensor_from_data(TT_U8, TT_DIMS(2, 3, 2), hwc, TT_CPU);
  tt_tensor *x2 = tt_image_from_u8(im2);
  ck_assert_int_eq(x2->shape[1], 2);
  ck_assert_int_eq(x2->shape[2], 2);
  ck_assert_int_eq(x2->shape[3], 3);
  for (int y = 0; y < 2; y++)
    for (int xx = 0; xx < 3; xx++)
      for (int c = 0; c < 2; c++)
        ck_assert_float_eq(tt_f32(x2)[(c * 2 + y) * 3 + xx], (float)(hwc[(y * 3 + xx) * 2 + c] / 127.5 - 1.0));
  /* and back: the official truncation loses a level where (v / 127.5 - 1 + 1) * 127.5
   * lands just below v in float32 (20 -> 19.999998 -> 19) */
  tt_tensor *back = tt_image_to_u8(x2);
  it_expect_close("from_u8 -> to_u8 round trip", back, im2, 1);
  ck_assert_int_eq(((uint8_t *)tt_tensor_data(back))[1], 19);
  tt_tensor_unref(back);
  tt_tensor_unref(x2);
  tt_tensor_unref(im2);
  tt_tensor_unref(flat);
  tt_tensor_unref(x);
  tt_tensor_unref(want);
  tt_tensor_unref(im);
}
END_TEST

START_TEST(test_grid_layout) {
  /* five 2-channel 2x3 images: a [3, ...] batch, one [C, H, W] and a [1, ...] batch */
  tt_tensor *batch = tt_tensor_new(TT_F32, TT_DIMS(3, 2, 2, 3), TT_CPU);
  tt_tensor *one = tt_tensor_new(TT_F32, TT_DIMS(2, 2, 3), TT_CPU);
  tt_tensor *last = tt_tensor_new(TT_F32, TT_DIMS(1, 2, 2, 3), TT_CPU);
  for (int i = 0; i < 36; i++) tt_f32(batch)[i] = (float)(i / 12) * 0.1f + (float)(i % 12) * 0.001f;
  for (int i = 0; i < 12; i++) tt_f32(one)[i] = 0.3f + (float)i * 0.001f;
  for (int i = 0; i < 12; i++) tt_f32(last)[i] = 0.4f + (float)i * 0.001f;
  tt_tensor *in[3] = {batch, one, last};
  tt_tensor *g = tt_image_grid(3, in, 2, 1, -1.0f);
  TH_NN(g);
  /* 5 images, 2 per row -> 3 rows: [1, 2, 3 * (2 + 1) + 1, 2 * (3 + 1) + 1] */
  ck_assert_int_eq(g->ndim, 4);
  ck_assert_int_eq(g->shape[1], 2);
  ck_assert_int_eq(g->shape[2], 10);
  ck_assert_int_eq(g->shape[3], 9);
  int64_t GH = 10, GW = 9;
  int pads = 0;
  for (int c = 0; c < 2; c++)
    for (int64_t y = 0; y < GH; y++)
      for (int64_t x = 0; x < GW; x++) {
        float v = tt_f32(g)[(c * GH + y) * GW + x];
        int64_t cy = (y - 1) % 3, cx = (x - 1) % 4, k = (y - 1) / 3 * 2 + (x - 1) / 4;
        bool inside = y >= 1 && x >= 1 && cy < 2 && cx < 3 && k < 5;
        if (!inside) {
          ck_assert_float_eq(v, -1.0f);
          pads++;
          continue;
        }
        float want = 0.1f * (float)k + (float)(c * 6 + cy * 3 + cx) * 0.001f;
        ck_assert_float_eq_tol(v, want, 1e-6f);
      }
  ck_assert_int_eq(pads, 2 * (GH * GW - 5 * 6));
  tt_tensor_unref(g);
  /* one image comes back unpadded */
  g = tt_image_grid(1, &one, 8, 2, 0.0f);
  ck_assert_int_eq(g->shape[2], 2);
  ck_assert_int_eq(g->shape[3], 3);
  tt_tensor *one4 = tt_tensor_view_of(one, TT_DIMS(1, 2, 2, 3), NULL, 0);
  it_expect_close("grid of one image", g, one4, 0);
  tt_tensor_unref(one4);
  tt_tensor_unref(g);
  /* u8 grids, nrow larger than the count */
  tt_tensor *u = tt_full(TT_U8, TT_DIMS(2, 3, 4, 5), 200, TT_CPU);
  g = tt_image_grid(1, &u, 8, 2, 0.0f);
  ck_assert_int_eq(g->shape[2], 4 + 4);
  ck_assert_int_eq(g->shape[3], 2 * (5 + 2) + 2);
  ck_assert_int_eq(((uint8_t *)tt_tensor_data(g))[0], 0);
  ck_assert_int_eq(((uint8_t *)tt_tensor_data(g))[2 * 16 + 2], 200);
  tt_tensor_unref(g);
  /* mismatched images */
  tt_tensor *mixed[2] = {one, u};
  ck_assert_ptr_null(tt_image_grid(2, mixed, 2, 1, 0));
  expect_error("grid of mismatched images", tt_last_status(), "image 1", NULL);
  tt_tensor_unref(u);
  tt_tensor_unref(batch);
  tt_tensor_unref(one);
  tt_tensor_unref(last);
}
END_TEST

/* ---------------- OpenCV resize ---------------- */

static const char *mode_names[4] = {"nearest", "linear", "cubic", "area"};

START_TEST(test_cv_resize_u8) {
  tt_tensor *rgb = it_image("rgb.png"), *rgba = it_image("rgba.png"), *c1 = channels(rgb, 0, 1);
  struct { const char *name; tt_tensor *im; } vars[3] = {{"c3", rgb}, {"c1", c1}, {"c4", rgba}};
  struct { const char *name; int64_t h, w, crop_h, crop_w; } sizes[5] = {
      {"up", 79, 101, 0, 0}, {"down", 29, 40, 0, 0}, {"mixed", 45, 120, 0, 0},
      {"half", 30, 41, 60, 82}, {"third", 20, 27, 60, 81}};
  double worst = 0;
  for (int m = 0; m < 4; m++)
    for (int v = 0; v < 3; v++)
      for (int s = 0; s < 5; s++) {
        if (v > 0 && (s == 2 || s == 4)) continue;
        char ref[128], what[160];
        snprintf(ref, sizeof ref, "cv_%s_%s_%s.png", mode_names[m], vars[v].name, sizes[s].name);
        tt_tensor *src = sizes[s].crop_h ? tt_crop(vars[v].im, 0, 0, sizes[s].crop_h, sizes[s].crop_w)
                                         : tt_tensor_ref(vars[v].im);
        tt_tensor *got = tt_cv_resize(src, sizes[s].h, sizes[s].w, (tt_interp)m), *want = it_image(ref);
        snprintf(what, sizeof what, "cv2.resize %s", ref);
        double d = it_expect_close(what, got, want, 0);
        worst = d > worst ? d : worst;
        tt_tensor_unref(got);
        tt_tensor_unref(want);
        tt_tensor_unref(src);
      }
  printf("cv2.resize u8: worst max |diff| over all cases = %g\n", worst);
  /* [H, W] stays 2-D; same size is a copy */
  tt_tensor *flat = tt_tensor_new(TT_U8, TT_DIMS(61, 83), TT_CPU);
  tt_tensor *c1v = tt_tensor_view_of(c1, TT_DIMS(61, 83), (const int64_t[]){83 * 3, 3}, c1->offset);
  TH_OK(tt_copy_(flat, c1v));
  tt_tensor_unref(c1v);
  tt_tensor *r2 = tt_cv_resize(flat, 29, 40, TT_INTER_CUBIC), *want = it_image("cv_cubic_c1_down.png");
  ck_assert_int_eq(r2->ndim, 2);
  tt_tensor *want2 = tt_tensor_view_of(want, TT_DIMS(29, 40), NULL, 0);
  it_expect_close("cv2.resize of a [H, W] image", r2, want2, 0);
  tt_tensor *same = tt_cv_resize(rgb, 61, 83, TT_INTER_LINEAR);
  it_expect_close("cv2.resize to the same size", same, rgb, 0);
  ck_assert_ptr_null(tt_cv_resize(rgb, 0, 5, TT_INTER_LINEAR));
  expect_error("resize to 0 rows", tt_last_status(), "cv_resize", NULL);
  ck_assert_ptr_null(tt_cv_resize(rgb, 5, 5, (tt_interp)7));
  tt_tensor_unref(same);
  tt_tensor_unref(want2);
  tt_tensor_unref(want);
  tt_tensor_unref(r2);
  tt_tensor_unref(flat);
  tt_tensor_unref(c1);
  tt_tensor_unref(rgb);
  tt_tensor_unref(rgba);
}
END_TEST

static tt_tensor *depth_norm_from_png(void) {
  tt_tensor *rgba = it_image("depth.png"), *raw = tt_depth_from_rgba(rgba), *d = tt_depth_normalize(raw);
  TH_NN(d);
  tt_tensor_unref(rgba);
  tt_tensor_unref(raw);
  return d;
}

START_TEST(test_cv_resize_f32) {
  tt_tensor *d = depth_norm_from_png();
  struct { const char *name; int64_t h, w; } sizes[4] = {{"up", 50, 70}, {"down", 23, 31}, {"half", 24, 32}, {"mixed", 30, 100}};
  for (int m = 0; m < 4; m++)
    for (int s = 0; s < 4; s++) {
      char ref[128], what[160];
      snprintf(ref, sizeof ref, "cvf_%s_%s.npy", mode_names[m], sizes[s].name);
      snprintf(what, sizeof what, "cv2.resize f32 %s", ref);
      tt_tensor *got = tt_cv_resize(d, sizes[s].h, sizes[s].w, (tt_interp)m), *want = it_npy(ref);
      it_expect_close(what, got, want, 0);
      tt_tensor_unref(got);
      tt_tensor_unref(want);
    }
  /* a 3-channel float image ([-1, 1] RGB) */
  tt_tensor *rgb = it_image("rgb.png"), *x = tt_cast(rgb, TT_F32);
  float *p = tt_f32(x);
  for (int64_t i = 0; i < tt_tensor_numel(x); i++) p[i] = (float)(p[i] / 127.5 - 1.0);
  tt_tensor *got = tt_cv_resize(x, 29, 40, TT_INTER_LINEAR), *want = it_npy("cvf_linear_c3_down.npy");
  it_expect_close("cv2.resize f32 RGB linear", got, want, 0);
  tt_tensor_unref(got);
  tt_tensor_unref(want);
  tt_tensor_unref(x);
  tt_tensor_unref(rgb);
  tt_tensor_unref(d);
}
END_TEST

/* ---------------- albumentations ---------------- */

/* A window of a resize holds the same values as the crop of the whole resize,
 * on every path (nearest, linear, cubic with its SIMD block boundary, area
 * growing, area shrinking by integer and fractional factors), u8 and f32. */
START_TEST(test_cv_resize_window) {
  tt_tensor *rgb = it_image("rgb.png"), *c1 = channels(rgb, 0, 1), *c1c = tt_host_contiguous(c1);
  tt_tensor *f3 = th_uniform(7, TT_DIMS(61, 83, 3), -1, 1), *f4 = th_uniform(8, TT_DIMS(61, 83, 4), -1, 1);
  tt_tensor *srcs[4] = {rgb, c1c, f3, f4};
  /* output sizes: enlarge, shrink, exact 2x and 3x shrink of a crop, anisotropic */
  static const int64_t outs[][4] = {{79, 101, 61, 83}, {29, 40, 61, 83}, {30, 41, 60, 82}, {20, 27, 60, 81},
                                    {45, 120, 61, 83}, {61, 83, 61, 83}};
  int cases = 0;
  for (int si = 0; si < 4; si++)
    for (size_t oi = 0; oi < sizeof outs / sizeof *outs; oi++)
      for (int m = 0; m < 4; m++) {
        tt_tensor *src = tt_crop(srcs[si], 0, 0, outs[oi][2], outs[oi][3]);
        int64_t oh = outs[oi][0], ow = outs[oi][1];
        tt_tensor *whole = tt_cv_resize(src, oh, ow, (tt_interp)m);
        TH_NN(whole);
        /* windows touching each border, the middle, single rows and columns */
        const int64_t wins[][4] = {{0, 0, oh, ow}, {0, 0, 5, 7}, {oh - 6, ow - 9, 6, 9}, {oh / 3, ow / 4, oh / 2, ow / 2},
                                   {oh - 1, 0, 1, ow}, {0, ow - 1, oh, 1}, {1, 3, oh - 2, ow - 5}};
        for (size_t wi = 0; wi < sizeof wins / sizeof *wins; wi++) {
          const int64_t *w = wins[wi];
          char what[160];
          snprintf(what, sizeof what, "source %d, %lldx%lld %s, window %zu", si, (long long)oh, (long long)ow,
                   mode_names[m], wi);
          tt_tensor *got = tt_cv_resize_window(src, oh, ow, w[0], w[1], w[2], w[3], (tt_interp)m);
          TH_NN(got);
          tt_tensor *want = tt_crop(whole, w[0], w[1], w[2], w[3]);
          ck_assert_msg(th_max_abs_diff(got, want) == 0, "%s: differs from the crop of the whole resize", what);
          tt_tensor_unref(got);
          tt_tensor_unref(want);
          cases++;
        }
        tt_tensor_unref(whole);
        tt_tensor_unref(src);
      }
  printf("cv_resize_window: %d windows equal to the crop of the whole resize\n", cases);
  ck_assert_ptr_null(tt_cv_resize_window(rgb, 10, 10, 5, 0, 6, 10, TT_INTER_LINEAR));
  expect_error("window outside the output", tt_last_status(), "rows [5, 11)", "10 x 10 output");

  /* SmallestMaxSize + Center/RandomCrop in one step = the two steps */
  static const int64_t sizes[] = {16, 32, 61, 64, 100};
  for (int si = 0; si < 4; si++)
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
      for (int m = 0; m < 4; m++)
        for (int r = 0; r < 3; r++) {
          int64_t n = sizes[k];
          double u = r == 0 ? -1 : r == 1 ? 0.37 : 0.999, v = r == 0 ? -1 : r == 1 ? 0.81 : 0.0;
          tt_tensor *big = tt_smallest_max_size(srcs[si], n, (tt_interp)m);
          tt_tensor *want = r == 0 ? tt_center_crop(big, n, n) : tt_random_crop(big, n, n, u, v);
          tt_tensor *got = tt_smallest_max_size_crop(srcs[si], n, n, n, u, v, (tt_interp)m);
          TH_NN(want);
          TH_NN(got);
          ck_assert_msg(th_max_abs_diff(got, want) == 0, "smallest_max_size_crop(%lld, %s, draw %d) of source %d differs",
                        (long long)n, mode_names[m], r, si);
          tt_tensor_unref(big);
          tt_tensor_unref(want);
          tt_tensor_unref(got);
        }
  ck_assert_ptr_null(tt_smallest_max_size_crop(rgb, 32, 33, 33, -1, -1, TT_INTER_LINEAR));
  expect_error("crop larger than the resized image", tt_last_status(), "center_crop", "(33, 33)");
  ck_assert_ptr_null(tt_smallest_max_size_crop(rgb, 32, 32, 32, 1.0, 0, TT_INTER_LINEAR));
  expect_error("random draw out of range", tt_last_status(), "random_crop", "[0, 1)");

  /* a 1 x 1,000,000 strip to 32 x 32: the whole resize would be 32 x 32,000,000 x 3
   * (3 GB); the window is 3 KB. The peak RSS must stay far below the whole. */
  tt_tensor *strip = tt_full(TT_U8, TT_DIMS(1, 1000000, 3), 77, TT_CPU);
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  tt_tensor *sq = tt_smallest_max_size_crop(strip, 32, 32, 32, -1, -1, TT_INTER_LINEAR);
  getrusage(RUSAGE_SELF, &ru1);
  TH_NN(sq);
  printf("1 x 1e6 strip -> %lld x %lld: peak RSS %ld MB -> %ld MB\n", (long long)sq->shape[0], (long long)sq->shape[1],
         ru0.ru_maxrss / 1024, ru1.ru_maxrss / 1024);
  ck_assert_int_eq(sq->shape[0], 32);
  ck_assert_int_eq(sq->shape[1], 32);
  ck_assert_int_eq(((uint8_t *)tt_tensor_data(sq))[32 * 32 * 3 - 1], 77);
  ck_assert_msg(ru1.ru_maxrss - ru0.ru_maxrss < 256 * 1024, "the peak RSS grew by %ld MB", (ru1.ru_maxrss - ru0.ru_maxrss) / 1024);
  tt_tensor_unref(sq);
  tt_tensor_unref(strip);
  for (int i = 0; i < 4; i++) tt_tensor_unref(srcs[i]);
  tt_tensor_unref(c1);
}
END_TEST

START_TEST(test_smallest_max_size_rounding) {
  int64_t h, w;
  tt_smallest_max_size_dims(50, 73, 25, &h, &w); /* 36.5 -> 36 (half to even) */
  ck_assert_int_eq(h, 25);
  ck_assert_int_eq(w, 36);
  tt_smallest_max_size_dims(50, 75, 25, &h, &w); /* 37.5 -> 38 */
  ck_assert_int_eq(w, 38);
  tt_smallest_max_size_dims(683, 1024, 256, &h, &w); /* 383.8 -> 384 */
  ck_assert_int_eq(h, 256);
  ck_assert_int_eq(w, 384);
  tt_smallest_max_size_dims(256, 300, 256, &h, &w); /* scale 1: unchanged */
  ck_assert_int_eq(h, 256);
  ck_assert_int_eq(w, 300);
  tt_smallest_max_size_dims(189, 212, 256, &h, &w); /* upscaling: 212 * 256 / 189 = 287.15 */
  ck_assert_int_eq(h, 256);
  ck_assert_int_eq(w, 287);
}
END_TEST

START_TEST(test_albumentations_pipelines) {
  tt_tensor *rgb = it_image("rgb.png");
  tt_tensor *a = tt_smallest_max_size(rgb, 48, TT_INTER_LINEAR), *b = tt_center_crop(a, 48, 48);
  tt_tensor *want = it_image("alb_sms48_linear_cc48.png");
  it_expect_close("SmallestMaxSize(48) + CenterCrop(48)", b, want, 0);
  tt_tensor_unref(a), tt_tensor_unref(b), tt_tensor_unref(want);
  a = tt_smallest_max_size(rgb, 40, TT_INTER_CUBIC), b = tt_center_crop(a, 40, 40);
  want = it_image("alb_sms40_cubic_cc40.png");
  it_expect_close("SmallestMaxSize(40, cubic) + CenterCrop(40)", b, want, 0);
  tt_tensor_unref(a), tt_tensor_unref(b), tt_tensor_unref(want);
  a = tt_smallest_max_size(rgb, 50, TT_INTER_AREA), b = tt_random_crop(a, 36, 36, 0.3, 0.7);
  tt_tensor *c = tt_hflip(b);
  want = it_image("alb_sms50_area_rc36_flip.png");
  it_expect_close("SmallestMaxSize(50, area) + RandomCrop(36; 0.3, 0.7) + HorizontalFlip", c, want, 0);
  tt_tensor *cc = tt_hflip(c);
  it_expect_close("hflip twice", cc, b, 0);
  tt_tensor_unref(cc), tt_tensor_unref(c), tt_tensor_unref(a), tt_tensor_unref(b), tt_tensor_unref(want);
  /* float depth through the same transforms (bilinear on float; 48 -> 24 is the 2x area path) */
  tt_tensor *d = depth_norm_from_png();
  a = tt_smallest_max_size(d, 32, TT_INTER_LINEAR), b = tt_center_crop(a, 32, 32);
  want = it_npy("alb_depth_sms32_cc32.npy");
  it_expect_close("depth SmallestMaxSize(32) + CenterCrop(32)", b, want, 0);
  tt_tensor_unref(a), tt_tensor_unref(b), tt_tensor_unref(want);
  a = tt_smallest_max_size(d, 24, TT_INTER_LINEAR), b = tt_center_crop(a, 24, 24);
  want = it_npy("alb_depth_sms24_cc24.npy");
  it_expect_close("depth SmallestMaxSize(24) + CenterCrop(24)", b, want, 0);
  tt_tensor_unref(a), tt_tensor_unref(b), tt_tensor_unref(want);
  /* crop geometry and errors */
  c = tt_center_crop(rgb, 60, 80); /* corner ((61 - 60) // 2, (83 - 80) // 2) = (0, 1) */
  tt_tensor *e = tt_crop(rgb, 0, 1, 60, 80);
  it_expect_close("CenterCrop corner", c, e, 0);
  tt_tensor_unref(c), tt_tensor_unref(e);
  c = tt_random_crop(rgb, 40, 40, 0.999, 0.5); /* (int(21 * 0.999), int(43 * 0.5)) = (20, 21) */
  e = tt_crop(rgb, 20, 21, 40, 40);
  it_expect_close("RandomCrop corner", c, e, 0);
  tt_tensor_unref(c), tt_tensor_unref(e);
  ck_assert_ptr_null(tt_center_crop(rgb, 62, 10));
  expect_error("crop larger than the image", tt_last_status(), "(62, 10)", "(61, 83)");
  ck_assert_ptr_null(tt_random_crop(rgb, 10, 10, 1.0, 0.0));
  expect_error("random crop draw of 1", tt_last_status(), "[0, 1)", NULL);
  tt_tensor_unref(d);
  tt_tensor_unref(rgb);
}
END_TEST

/* ---------------- Pillow resize ---------------- */

START_TEST(test_pil_resize) {
  tt_tensor *rgb = it_image("rgb.png");
  tt_tensor *lr = tt_pil_resize(rgb, 61 / 4, 83 / 4, TT_PIL_BICUBIC), *want = it_image("pil_bicubic_down4.png");
  it_expect_close("PIL bicubic down by 4", lr, want, 0);
  tt_tensor_unref(want);
  struct { const char *ref; tt_pil_filter f; } up[3] = {
      {"pil_nearest_up.png", TT_PIL_NEAREST}, {"pil_bilinear_up.png", TT_PIL_BILINEAR}, {"pil_bicubic_up.png", TT_PIL_BICUBIC}};
  for (int i = 0; i < 3; i++) {
    tt_tensor *got = tt_pil_resize(lr, 61, 83, up[i].f);
    want = it_image(up[i].ref);
    it_expect_close(up[i].ref, got, want, 0);
    tt_tensor_unref(got), tt_tensor_unref(want);
  }
  struct { const char *ref; tt_pil_filter f; } down[3] = {
      {"pil_lanczos_down.png", TT_PIL_LANCZOS}, {"pil_box_down.png", TT_PIL_BOX}, {"pil_hamming_down.png", TT_PIL_HAMMING}};
  for (int i = 0; i < 3; i++) {
    tt_tensor *got = tt_pil_resize(rgb, 23, 37, down[i].f);
    want = it_image(down[i].ref);
    it_expect_close(down[i].ref, got, want, 0);
    tt_tensor_unref(got), tt_tensor_unref(want);
  }
  tt_tensor *r = channels(rgb, 0, 1), *got = tt_pil_resize(r, 17, 50, TT_PIL_BICUBIC);
  want = it_image("pil_gray_bicubic.png");
  it_expect_close("PIL bicubic on an L image", got, want, 0);
  tt_tensor_unref(got), tt_tensor_unref(want), tt_tensor_unref(r);
  /* imscale(x, 3, keepshapes=True): [-1, 1] -> u8 (truncating) -> down -> up -> [-1, 1] */
  tt_tensor *x = tt_image_from_u8(rgb), *x3 = tt_tensor_view_of(x, TT_DIMS(3, 61, 83), NULL, 0);
  tt_tensor *u8 = tt_image_to_u8(x3), *small = tt_pil_resize(u8, 61 / 3, 83 / 3, TT_PIL_BICUBIC);
  tt_tensor *back = tt_pil_resize(small, 61, 83, TT_PIL_BICUBIC);
  want = it_image("pil_imscale3.png");
  it_expect_close("imscale(x, 3) super-resolution degradation", back, want, 0);
  tt_tensor_unref(want), tt_tensor_unref(back), tt_tensor_unref(small), tt_tensor_unref(u8);
  tt_tensor_unref(x3), tt_tensor_unref(x);
  tt_tensor *rgba = it_image("rgba.png");
  ck_assert_ptr_null(tt_pil_resize(rgba, 10, 10, TT_PIL_BICUBIC));
  expect_error("PIL resize of RGBA", tt_last_status(), "4 channels", "premultiplies");
  tt_tensor_unref(rgba);
  tt_tensor_unref(lr);
  tt_tensor_unref(rgb);
}
END_TEST

/* ---------------- skimage canny ---------------- */

START_TEST(test_rgb2gray_and_canny) {
  tt_tensor *rgb = it_image("rgb.png"), *x = tt_cast(rgb, TT_F32);
  float *p = tt_f32(x);
  for (int64_t i = 0; i < tt_tensor_numel(x); i++) p[i] = (float)(p[i] / 127.5 - 1.0);
  tt_tensor *gray = tt_rgb2gray(x), *want = it_npy("gray.npy");
  it_expect_close("rgb2gray", gray, want, 0);
  tt_tensor_unref(want);
  tt_tensor *e = tt_canny(gray, 2.0, -1, -1), *ref = it_image("canny_s2.png");
  tt_tensor *e3 = tt_tensor_view_of(e, TT_DIMS(61, 83, 1), NULL, 0), *edges = tt_cast(ref, TT_F32);
  for (int64_t i = 0; i < tt_tensor_numel(edges); i++) tt_f32(edges)[i] /= 255.0f;
  it_expect_close("canny(sigma=2)", e3, edges, 0);
  double count = 0;
  for (int64_t i = 0; i < tt_tensor_numel(e); i++) count += tt_f32(e)[i];
  printf("canny(sigma=2): %g edge pixels of %lld\n", count, (long long)tt_tensor_numel(e));
  ck_assert_msg(count > 50, "the crop has edges");
  tt_tensor_unref(e), tt_tensor_unref(e3), tt_tensor_unref(ref), tt_tensor_unref(edges);
  e = tt_canny(gray, 1.0, 0.05, 0.3), ref = it_image("canny_s1_lo05_hi30.png");
  e3 = tt_tensor_view_of(e, TT_DIMS(61, 83, 1), NULL, 0), edges = tt_cast(ref, TT_F32);
  for (int64_t i = 0; i < tt_tensor_numel(edges); i++) tt_f32(edges)[i] /= 255.0f;
  it_expect_close("canny(sigma=1, 0.05, 0.3)", e3, edges, 0);
  tt_tensor_unref(e), tt_tensor_unref(e3), tt_tensor_unref(ref), tt_tensor_unref(edges);
  ck_assert_ptr_null(tt_canny(x, 2.0, -1, -1));
  expect_error("canny of an RGB image", tt_last_status(), "grayscale", NULL);
  ck_assert_ptr_null(tt_canny(gray, 2.0, 0.5, 0.1));
  expect_error("canny with low > high", tt_last_status(), "low <= high", NULL);
  tt_tensor_unref(gray);
  tt_tensor_unref(x);
  tt_tensor_unref(rgb);
}
END_TEST

/* ---------------- depth ---------------- */

START_TEST(test_depth_png) {
  tt_tensor *rgba = it_image("depth.png"), *raw = tt_depth_from_rgba(rgba), *want = it_npy("depth_raw.npy");
  it_expect_close("depth bytes -> float32", raw, want, 0);
  tt_tensor_unref(want);
  tt_tensor *d = NULL;
  TH_OK(tt_depth_load(it_data("depth.png"), &d));
  want = it_npy("depth_norm.npy");
  it_expect_close("depth min-max to [-1, 1]", d, want, 0);
  float mn = 1, mx = -1;
  for (int64_t i = 0; i < tt_tensor_numel(d); i++) {
    mn = fminf(mn, tt_f32(d)[i]);
    mx = fmaxf(mx, tt_f32(d)[i]);
  }
  ck_assert_float_eq(mn, -1.0f);
  ck_assert_float_eq(mx, 1.0f);
  tt_tensor_unref(want), tt_tensor_unref(d), tt_tensor_unref(raw), tt_tensor_unref(rgba);
  /* a constant map: range 0 < 1e-8, everything maps to -1 */
  tt_tensor *flat = tt_full(TT_F32, TT_DIMS(3, 4), 7.5, TT_CPU), *n = tt_depth_normalize(flat);
  for (int i = 0; i < 12; i++) ck_assert_float_eq(tt_f32(n)[i], -1.0f);
  tt_tensor_unref(n), tt_tensor_unref(flat);
  float bad[4] = {1.0f, 2.0f, NAN, 3.0f};
  tt_tensor *nanmap = tt_tensor_from_data(TT_F32, TT_DIMS(2, 2), bad, TT_CPU);
  ck_assert_ptr_null(tt_depth_normalize(nanmap));
  expect_error("depth with a NaN", tt_last_status(), "row 1, column 0", "not finite");
  tt_tensor_unref(nanmap);
  /* an RGB PNG is not a depth map */
  expect_error("depth from RGB", tt_depth_load(it_data("rgb.png"), &d), "rgb.png", "RGBA");
  ck_assert_ptr_null(d);
}
END_TEST

/* ---------------- segmentation labels ---------------- */

START_TEST(test_labels_onehot) {
  struct { const char *name; int K; bool shift; } ds[3] = {{"sflckr", 182, false}, {"coco", 183, true}, {"ade20k", 151, false}};
  for (int i = 0; i < 3; i++) {
    char png[64], npy[64], what[96];
    snprintf(png, sizeof png, "labels_%s.png", ds[i].name);
    snprintf(npy, sizeof npy, "onehot_%s.npy", ds[i].name);
    tt_tensor *lab = NULL;
    TH_OK(tt_labels_load(it_data(png), &lab));
    ck_assert_int_eq(lab->ndim, 2);
    tt_tensor *oh = tt_labels_onehot(lab, ds[i].K, ds[i].shift, png), *ref = it_npy(npy); /* ref [H, W, K] */
    TH_NN(oh);
    ck_assert_int_eq(oh->shape[0], ds[i].K);
    /* [K, H, W] -> [H, W, K] for the comparison */
    tt_tensor *perm = tt_tensor_view_of(oh, TT_DIMS(12, 16, ds[i].K), (const int64_t[]){16, 1, 12 * 16}, 0);
    snprintf(what, sizeof what, "one-hot %s (K = %d%s)", ds[i].name, ds[i].K, ds[i].shift ? ", shifted" : "");
    it_expect_close(what, perm, ref, 0);
    tt_tensor_unref(perm), tt_tensor_unref(oh), tt_tensor_unref(ref), tt_tensor_unref(lab);
  }
  /* COCO: 255 (unlabeled) wraps to channel 0 */
  uint8_t v[4] = {255, 0, 181, 7};
  tt_tensor *lab = tt_tensor_from_data(TT_U8, TT_DIMS(2, 2), v, TT_CPU);
  tt_tensor *sh = tt_labels_shift(lab);
  ck_assert_int_eq(((uint8_t *)tt_tensor_data(sh))[0], 0);
  ck_assert_int_eq(((uint8_t *)tt_tensor_data(sh))[2], 182);
  tt_tensor *oh = tt_labels_onehot(lab, 183, true, "coco");
  ck_assert_float_eq(tt_f32(oh)[0 * 4 + 0], 1.0f);
  ck_assert_float_eq(tt_f32(oh)[1 * 4 + 1], 1.0f);
  ck_assert_float_eq(tt_f32(oh)[182 * 4 + 2], 1.0f);
  ck_assert_float_eq(tt_f32(oh)[8 * 4 + 3], 1.0f);
  double total = 0;
  for (int64_t i = 0; i < tt_tensor_numel(oh); i++) total += tt_f32(oh)[i];
  ck_assert_double_eq(total, 4.0);
  tt_tensor_unref(oh), tt_tensor_unref(sh);
  /* labels outside K name the file, the label, where it is and K */
  ck_assert_ptr_null(tt_labels_onehot(lab, 182, false, "seg.png"));
  expect_error("S-FLCKR label 255", tt_last_status(), "seg.png: label 255 at row 0, column 0", "K = 182");
  v[0] = 3;
  tt_tensor *lab2 = tt_tensor_from_data(TT_U8, TT_DIMS(2, 2), v, TT_CPU);
  ck_assert_ptr_null(tt_labels_onehot(lab2, 182, true, "coco.png"));
  expect_error("COCO label 181 shifted", tt_last_status(), "label 181 (182 after the +1 shift)", "K = 182");
  ck_assert_ptr_null(tt_labels_onehot(lab2, 151, false, "ade.png"));
  expect_error("ADE20K label 181", tt_last_status(), "label 181 at row 1, column 0", "K = 151");
  tt_tensor *out = NULL;
  expect_error("RGB label map", tt_labels_load(it_data("rgb.png"), &out), "rgb.png", "single-channel");
  tt_tensor_unref(lab2), tt_tensor_unref(lab);
}
END_TEST

static Suite *image_suite(void) {
  Suite *s = suite_create("image");
  TCase *io = tcase_create("io");
  tcase_add_test(io, test_png_flavours);
  tcase_add_test(io, test_jpeg_decode_matches_pil);
  tcase_add_test(io, test_save_load_roundtrip);
  tcase_add_test(io, test_save_failures_leave_files_alone);
  tcase_add_test(io, test_bad_files_are_clear_errors);
  tcase_add_test(io, test_pixel_limit);
  tcase_add_test(io, test_to_u8_truncates);
  tcase_add_test(io, test_from_u8);
  tcase_add_test(io, test_grid_layout);
  suite_add_tcase(s, io);
  TCase *pp = tcase_create("preprocessing");
  tcase_set_timeout(pp, 60);
  tcase_add_test(pp, test_cv_resize_u8);
  tcase_add_test(pp, test_cv_resize_f32);
  tcase_add_test(pp, test_cv_resize_window);
  tcase_add_test(pp, test_smallest_max_size_rounding);
  tcase_add_test(pp, test_albumentations_pipelines);
  tcase_add_test(pp, test_pil_resize);
  tcase_add_test(pp, test_rgb2gray_and_canny);
  tcase_add_test(pp, test_depth_png);
  tcase_add_test(pp, test_labels_onehot);
  suite_add_tcase(s, pp);
  return s;
}

int main(void) { return th_run(image_suite()); }

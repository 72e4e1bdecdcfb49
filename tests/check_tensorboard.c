/* check_tensorboard.c — event files: CRC-32C against published vectors and a
 * bitwise reference, the masked CRC, events written and parsed back (scalars,
 * u8 and float images whose PNG decodes to the same pixels), and files damaged
 * in their length, payload, framing or protobuf, which the reader must refuse. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testhelp.h"
#include "taming/tensorboard.h"

static char tmpdir[64];

static void setup(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/taming-tb-XXXXXX");
  ck_assert(mkdtemp(tmpdir) != NULL);
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  ck_assert(system(cmd) == 0);
}

static uint32_t crc_bitwise(const unsigned char *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}

START_TEST(test_crc32c_vectors) {
  /* "123456789" and the RFC 3720 (iSCSI) B.4 vectors */
  ck_assert_uint_eq(tt_crc32c(0, "123456789", 9), 0xE3069283u);
  unsigned char b[32];
  memset(b, 0, 32);
  ck_assert_uint_eq(tt_crc32c(0, b, 32), 0x8A9136AAu);
  memset(b, 0xff, 32);
  ck_assert_uint_eq(tt_crc32c(0, b, 32), 0x62A8AB43u);
  for (int i = 0; i < 32; i++) b[i] = (unsigned char)i;
  ck_assert_uint_eq(tt_crc32c(0, b, 32), 0x46DD794Eu);
  for (int i = 0; i < 32; i++) b[i] = (unsigned char)(31 - i);
  ck_assert_uint_eq(tt_crc32c(0, b, 32), 0x113FDB5Cu);
  /* every length around the 8-byte blocks, every alignment, and chaining */
  unsigned char buf[300];
  for (int i = 0; i < 300; i++) buf[i] = (unsigned char)(i * 37 + 11);
  for (size_t off = 0; off < 8; off++)
    for (size_t n = 0; n < 100; n++) {
      uint32_t want = crc_bitwise(buf + off, n);
      ck_assert_msg(tt_crc32c(0, buf + off, n) == want, "length %zu offset %zu", n, off);
      size_t h = n / 3;
      ck_assert_uint_eq(tt_crc32c(tt_crc32c(0, buf + off, h), buf + off + h, n - h), want);
    }
  /* TFRecord's mask, written out: rotate right by 15, add the constant */
  uint32_t c = 0x12345678u;
  ck_assert_uint_eq(tt_crc32c_mask(c), ((c >> 15) | (c << 17)) + 0xa282ead8u);
  ck_assert_uint_eq(tt_crc32c_mask(0), 0xa282ead8u);
}
END_TEST

typedef struct seen {
  int n;
  double wall[16];
  int64_t step[16];
  char version[16][32];
  char tag[16][64];
  int kind[16];   /* 0 none, 1 scalar, 2 image */
  float value[16];
  int h[16], w[16], cs[16];
  unsigned char *png[16];
  size_t png_len[16];
} seen;

static tt_status collect(const tt_tb_event *e, void *ud) {
  seen *s = ud;
  ck_assert_int_lt(s->n, 16);
  int i = s->n++;
  s->wall[i] = e->wall_time;
  s->step[i] = e->step;
  snprintf(s->version[i], sizeof s->version[i], "%s", e->file_version ? e->file_version : "");
  ck_assert_int_le(e->n_values, 1);
  if (e->n_values == 1) {
    const tt_tb_value *v = &e->values[0];
    snprintf(s->tag[i], sizeof s->tag[i], "%s", v->tag);
    if (v->has_simple_value) {
      s->kind[i] = 1;
      s->value[i] = v->simple_value;
    }
    if (v->has_image) {
      s->kind[i] = 2;
      s->h[i] = v->height;
      s->w[i] = v->width;
      s->cs[i] = v->colorspace;
      s->png[i] = malloc(v->png_len);
      memcpy(s->png[i], v->png, v->png_len);
      s->png_len[i] = v->png_len;
    }
  }
  return TT_OK;
}

static void seen_free(seen *s) {
  for (int i = 0; i < s->n; i++) free(s->png[i]);
}

static void check_png(const seen *s, int i, const tt_tensor *want, const char *name) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s.png", tmpdir, name);
  FILE *f = fopen(path, "wb");
  ck_assert(f != NULL);
  ck_assert_uint_eq(fwrite(s->png[i], 1, s->png_len[i], f), s->png_len[i]);
  fclose(f);
  tt_tensor *got = NULL;
  TH_OK(tt_image_load_u8(path, &got));
  ck_assert_int_eq(got->ndim, 3);
  ck_assert_int_eq(got->shape[0], s->h[i]);
  ck_assert_int_eq(got->shape[1], s->w[i]);
  ck_assert_int_eq(got->shape[2], s->cs[i]);
  th_assert_close(name, got, want, 0.0);
  tt_tensor_unref(got);
}

static char *write_sample(tt_tensor **u8_out, tt_tensor **f32_out) {
  tt_tb_writer *w = NULL;
  char dir[128];
  snprintf(dir, sizeof dir, "%s/logs/run", tmpdir);   /* parents are created */
  TH_OK(tt_tb_open(dir, &w));
  char *path = strdup(tt_tb_path(w));
  const char *base = strrchr(path, '/') + 1;
  ck_assert_msg(strncmp(base, "events.out.tfevents.", 20) == 0, "file name %s", base);
  TH_OK(tt_tb_scalar(w, "train/loss", 1, 0.75));
  TH_OK(tt_tb_scalar(w, "train/lr", 2, 1e-4));
  TH_OK(tt_tb_scalar(w, "big_step", 123456789012LL, -3.5));
  /* u8 [5, 7, 3] with distinct pixels */
  tt_tensor *u8 = tt_tensor_new(TT_U8, TT_DIMS(5, 7, 3), TT_CPU);
  unsigned char *px = tt_tensor_data(u8);
  for (int i = 0; i < 5 * 7 * 3; i++) px[i] = (unsigned char)(i * 7 + 3);
  TH_OK(tt_tb_image(w, "images/u8", 3, u8));
  /* f32 [1, 1, 4, 6] in [-1, 1] -> gray PNG, (x + 1) * 127.5 truncated */
  tt_tensor *f = tt_tensor_new(TT_F32, TT_DIMS(1, 1, 4, 6), TT_CPU);
  float *fv = tt_tensor_data(f);
  for (int i = 0; i < 24; i++) fv[i] = -1.2f + 0.1f * (float)i;
  TH_OK(tt_tb_image(w, "images/f32", 4, f));
  TH_OK(tt_tb_flush(w));
  tt_tb_close(w);
  *u8_out = u8;
  *f32_out = f;
  return path;
}

START_TEST(test_write_and_read_back) {
  tt_tensor *u8, *f;
  char *path = write_sample(&u8, &f);
  seen s;
  memset(&s, 0, sizeof s);
  TH_OK(tt_tb_read(path, collect, &s));
  ck_assert_int_eq(s.n, 6);
  ck_assert_str_eq(s.version[0], "brain.Event:2");
  ck_assert_int_eq(s.kind[0], 0);
  ck_assert_msg(s.wall[0] > 1.6e9, "wall time %f", s.wall[0]);
  ck_assert_str_eq(s.tag[1], "train/loss");
  ck_assert_int_eq(s.kind[1], 1);
  ck_assert_int_eq(s.step[1], 1);
  ck_assert_float_eq(s.value[1], 0.75f);
  ck_assert_float_eq(s.value[2], (float)1e-4);
  ck_assert_int_eq(s.step[3], 123456789012LL);
  ck_assert_float_eq(s.value[3], -3.5f);
  ck_assert_str_eq(s.tag[4], "images/u8");
  ck_assert_int_eq(s.kind[4], 2);
  ck_assert_int_eq(s.h[4], 5);
  ck_assert_int_eq(s.w[4], 7);
  ck_assert_int_eq(s.cs[4], 3);
  ck_assert_int_eq(s.step[4], 3);
  ck_assert(s.png_len[4] > 8 && memcmp(s.png[4], "\x89PNG\r\n\x1a\n", 8) == 0);
  check_png(&s, 4, u8, "u8");
  ck_assert_int_eq(s.h[5], 4);
  ck_assert_int_eq(s.w[5], 6);
  ck_assert_int_eq(s.cs[5], 1);
  tt_tensor *want = tt_image_to_u8(f);
  TH_NN(want);
  check_png(&s, 5, want, "f32");
  for (int i = 1; i < s.n; i++) ck_assert(s.wall[i] >= s.wall[i - 1]);
  tt_tensor_unref(want);
  seen_free(&s);
  tt_tensor_unref(u8);
  tt_tensor_unref(f);
  free(path);
}
END_TEST

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  ck_assert(f != NULL);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *d = malloc(*n);
  ck_assert_uint_eq(fread(d, 1, *n, f), *n);
  fclose(f);
  return d;
}

static void spit(const char *path, const unsigned char *d, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert(f != NULL);
  ck_assert_uint_eq(fwrite(d, 1, n, f), n);
  fclose(f);
}

static void expect_refused(const char *path, const char *needle) {
  tt_status s = tt_tb_read(path, NULL, NULL);
  ck_assert_msg(s != TT_OK, "%s was accepted", path);
  ck_assert_msg(strstr(tt_error_message(), needle) != NULL, "message '%s' lacks '%s'", tt_error_message(), needle);
  ck_assert_msg(strstr(tt_error_message(), path) != NULL, "message '%s' does not name the file", tt_error_message());
}

/* One record holding `payload`, framed with correct CRCs. */
static size_t frame(unsigned char *out, const unsigned char *payload, size_t n) {
  for (int i = 0; i < 8; i++) out[i] = (unsigned char)((uint64_t)n >> (8 * i));
  uint32_t c = tt_crc32c_mask(tt_crc32c(0, out, 8));
  for (int i = 0; i < 4; i++) out[8 + i] = (unsigned char)(c >> (8 * i));
  memcpy(out + 12, payload, n);
  c = tt_crc32c_mask(tt_crc32c(0, payload, n));
  for (int i = 0; i < 4; i++) out[12 + n + i] = (unsigned char)(c >> (8 * i));
  return n + 16;
}

START_TEST(test_damaged_files) {
  tt_tensor *u8, *f;
  char *path = write_sample(&u8, &f);
  size_t n;
  unsigned char *d = slurp(path, &n);
  char bad[160];
  snprintf(bad, sizeof bad, "%s/bad.tfevents", tmpdir);
  /* a flipped payload byte of the first record */
  d[14] ^= 0x20;
  spit(bad, d, n);
  expect_refused(bad, "data CRC mismatch");
  d[14] ^= 0x20;
  /* a flipped length byte */
  d[1] ^= 0x01;
  spit(bad, d, n);
  expect_refused(bad, "length CRC mismatch");
  d[1] ^= 0x01;
  /* cut in the middle of the last record, and inside a header */
  spit(bad, d, n - 5);
  expect_refused(bad, "truncated");
  spit(bad, d, n + 0);
  TH_OK(tt_tb_read(bad, NULL, NULL));
  unsigned char extra[n + 6];
  memcpy(extra, d, n);
  memset(extra + n, 0, 6);
  spit(bad, extra, n + 6);
  expect_refused(bad, "truncated header");
  /* valid framing around protobufs that are not Events */
  unsigned char rec[64];
  const unsigned char wrong_type[] = {0x10 | 2, 1, 0x00};             /* step (field 2) as bytes */
  spit(bad, rec, frame(rec, wrong_type, sizeof wrong_type));
  expect_refused(bad, "Event.step");
  const unsigned char overrun[] = {0x2a, 0x10, 0x0a, 0x00};           /* summary longer than the event */
  spit(bad, rec, frame(rec, overrun, sizeof overrun));
  expect_refused(bad, "runs past");
  const unsigned char no_tag[] = {0x2a, 0x07, 0x0a, 0x05, 0x15, 0, 0, 0x80, 0x3f};   /* value{simple_value} */
  spit(bad, rec, frame(rec, no_tag, sizeof no_tag));
  expect_refused(bad, "without a tag");
  const unsigned char bad_wire[] = {0x0f};                            /* wire type 7 */
  spit(bad, rec, frame(rec, bad_wire, sizeof bad_wire));
  expect_refused(bad, "wire type");
  free(d);
  free(path);
  tt_tensor_unref(u8);
  tt_tensor_unref(f);
}
END_TEST

START_TEST(test_bad_arguments) {
  tt_tb_writer *w = NULL;
  char dir[128];
  snprintf(dir, sizeof dir, "%s/args", tmpdir);
  TH_OK(tt_tb_open(dir, &w));
  tt_tensor *two = tt_zeros(TT_U8, TT_DIMS(4, 4, 2), TT_CPU);
  ck_assert(tt_tb_image(w, "x", 0, two) != TT_OK);
  ck_assert(strstr(tt_error_message(), "channels") != NULL);
  tt_tensor *flat = tt_zeros(TT_F32, TT_DIMS(16), TT_CPU);
  ck_assert(tt_tb_image(w, "y", 0, flat) != TT_OK);
  ck_assert(strstr(tt_error_message(), "'y'") != NULL);
  ck_assert(tt_tb_scalar(w, NULL, 0, 1.0) != TT_OK);
  tt_tb_close(w);
  /* a log folder that cannot be created */
  char file[160];
  snprintf(file, sizeof file, "%s/plain", tmpdir);
  spit(file, (const unsigned char *)"x", 1);
  snprintf(dir, sizeof dir, "%s/plain/sub", tmpdir);
  ck_assert(tt_tb_open(dir, &w) != TT_OK);
  ck_assert(strstr(tt_error_message(), "plain") != NULL);
  tt_tensor_unref(two);
  tt_tensor_unref(flat);
}
END_TEST

int main(void) {
  Suite *s = suite_create("tensorboard");
  TCase *tc = tcase_create("events");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_crc32c_vectors);
  tcase_add_test(tc, test_write_and_read_back);
  tcase_add_test(tc, test_damaged_files);
  tcase_add_test(tc, test_bad_arguments);
  suite_add_tcase(s, tc);
  return th_run(s);
}

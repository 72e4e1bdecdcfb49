/* check_datasets.c — IDX files (gzipped and plain; valid, damaged and
 * inconsistent ones written here) and, where Debian's dataset-fashion-mnist is
 * installed, the real Fashion-MNIST splits. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "testhelp.h"
#include "taming/datasets.h"

static char tmpdir[64];

static void setup(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/taming-idx-XXXXXX");
  ck_assert(mkdtemp(tmpdir) != NULL);
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  ck_assert(system(cmd) == 0);
}

static const char *tmp(const char *name) {
  static char p[2][256];
  static int k;
  k ^= 1;
  snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, name);
  return p[k];
}

/* An IDX file: header (type, dims) then `n` payload bytes; gzipped unless plain. */
static void write_idx(const char *path, int type, int nd, const uint32_t *dims, const void *payload, size_t n,
                      bool plain) {
  unsigned char head[4 + 4 * 4] = {0, 0, (unsigned char)type, (unsigned char)nd};
  for (int i = 0; i < nd; i++) {
    head[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
    head[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
    head[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
    head[7 + 4 * i] = (unsigned char)dims[i];
  }
  if (plain) {
    FILE *f = fopen(path, "wb");
    ck_assert(f != NULL);
    fwrite(head, 1, 4 + 4 * (size_t)nd, f);
    if (n) fwrite(payload, 1, n, f);
    fclose(f);
    return;
  }
  gzFile g = gzopen(path, "wb");
  ck_assert(g != NULL);
  ck_assert(gzwrite(g, head, 4 + 4 * (unsigned)nd) == 4 + 4 * nd);
  if (n) ck_assert(gzwrite(g, payload, (unsigned)n) == (int)n);
  ck_assert(gzclose(g) == Z_OK);
}

static void expect_error(const char *what, tt_status s, const char *n1, const char *n2) {
  const char *msg = tt_error_message();
  printf("%s -> %s: %s\n", what, tt_status_name(s), msg);
  ck_assert_msg(s != TT_OK, "%s: succeeded, expected an error", what);
  ck_assert_msg(!n1 || strstr(msg, n1), "%s: message \"%s\" lacks \"%s\"", what, msg, n1);
  ck_assert_msg(!n2 || strstr(msg, n2), "%s: message \"%s\" lacks \"%s\"", what, msg, n2);
}

START_TEST(test_idx_valid) {
  uint8_t px[2 * 3 * 5];
  for (int i = 0; i < 30; i++) px[i] = (uint8_t)(i * 7);
  write_idx(tmp("u8.gz"), 0x08, 3, (const uint32_t[]){2, 3, 5}, px, 30, false);
  tt_tensor *t = NULL;
  TH_OK(tt_idx_load(tmp("u8.gz"), &t));
  ck_assert_int_eq(t->dtype, TT_U8);
  ck_assert_int_eq(t->ndim, 3);
  ck_assert_int_eq(t->shape[0], 2);
  ck_assert_int_eq(t->shape[1], 3);
  ck_assert_int_eq(t->shape[2], 5);
  ck_assert_int_eq(memcmp(tt_tensor_data(t), px, 30), 0);
  tt_tensor_release(&t);
  /* the same bytes uncompressed */
  write_idx(tmp("u8.idx"), 0x08, 3, (const uint32_t[]){2, 3, 5}, px, 30, true);
  TH_OK(tt_idx_load(tmp("u8.idx"), &t));
  ck_assert_int_eq(memcmp(tt_tensor_data(t), px, 30), 0);
  tt_tensor_release(&t);
  /* big-endian i32 and f32 */
  unsigned char be[8] = {0xFF, 0xFF, 0xFF, 0xFE, 0x00, 0x01, 0x00, 0x00};
  write_idx(tmp("i32.gz"), 0x0C, 1, (const uint32_t[]){2}, be, 8, false);
  TH_OK(tt_idx_load(tmp("i32.gz"), &t));
  ck_assert_int_eq(t->dtype, TT_I32);
  ck_assert_int_eq(((int32_t *)tt_tensor_data(t))[0], -2);
  ck_assert_int_eq(((int32_t *)tt_tensor_data(t))[1], 65536);
  tt_tensor_release(&t);
  unsigned char bf[4] = {0x3F, 0xC0, 0x00, 0x00}; /* 1.5f */
  write_idx(tmp("f32.gz"), 0x0D, 1, (const uint32_t[]){1}, bf, 4, false);
  TH_OK(tt_idx_load(tmp("f32.gz"), &t));
  ck_assert_float_eq(tt_f32(t)[0], 1.5f);
  tt_tensor_release(&t);
}
END_TEST

START_TEST(test_idx_bad) {
  tt_tensor *t = NULL;
  uint8_t px[30] = {0};
  write_idx(tmp("magic.gz"), 0x08, 0, NULL, NULL, 0, false);
  expect_error("0 dims", tt_idx_load(tmp("magic.gz"), &t), "magic.gz", "not an IDX file");
  write_idx(tmp("type.gz"), 0x0B, 1, (const uint32_t[]){3}, px, 6, false);
  expect_error("i16 elements", tt_idx_load(tmp("type.gz"), &t), "type.gz", "0x0b is not supported");
  write_idx(tmp("short.gz"), 0x08, 3, (const uint32_t[]){2, 3, 5}, px, 29, false);
  expect_error("one byte short", tt_idx_load(tmp("short.gz"), &t), "short.gz", "truncated");
  write_idx(tmp("long.gz"), 0x08, 2, (const uint32_t[]){2, 3}, px, 7, false);
  expect_error("one byte extra", tt_idx_load(tmp("long.gz"), &t), "long.gz", "more data");
  write_idx(tmp("zero.gz"), 0x08, 2, (const uint32_t[]){0, 3}, px, 0, false);
  expect_error("a zero dimension", tt_idx_load(tmp("zero.gz"), &t), "zero.gz", "dimension 0");
  FILE *f = fopen(tmp("text.gz"), "w");
  fputs("label,image\n", f);
  fclose(f);
  expect_error("a text file", tt_idx_load(tmp("text.gz"), &t), "text.gz", "not an IDX file");
  f = fopen(tmp("empty.gz"), "w");
  fclose(f);
  expect_error("an empty file", tt_idx_load(tmp("empty.gz"), &t), "empty.gz", "truncated");
  /* a gzip stream cut in the middle */
  uint8_t big[4000];
  for (int i = 0; i < 4000; i++) big[i] = (uint8_t)(i * 31 + i / 7);
  write_idx(tmp("cut.gz"), 0x08, 1, (const uint32_t[]){4000}, big, 4000, false);
  struct stat st;
  ck_assert(stat(tmp("cut.gz"), &st) == 0);
  ck_assert(truncate(tmp("cut.gz"), st.st_size / 2) == 0);
  expect_error("a cut gzip stream", tt_idx_load(tmp("cut.gz"), &t), "cut.gz", NULL);
  expect_error("a missing file", tt_idx_load(tmp("missing.gz"), &t), "missing.gz", "cannot open");
  ck_assert_ptr_null(t);
}
END_TEST

/* Sizes from the header are checked against the file before allocating. */
START_TEST(test_idx_sizes_against_file) {
  tt_tensor *t = NULL;
  uint8_t px[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  /* 13 bytes declaring 65536 x 32768 bytes (2 GB) */
  write_idx(tmp("bomb.idx"), 0x08, 2, (const uint32_t[]){65536, 32768}, px, 1, true);
  struct stat st;
  ck_assert(stat(tmp("bomb.idx"), &st) == 0 && st.st_size == 13);
  expect_error("13-byte plain header", tt_idx_load(tmp("bomb.idx"), &t), "bomb.idx",
               "truncated: the IDX header declares 2147483648 bytes of data (2147483648 elements), the file holds 1");
  /* the same gzipped: more than deflate can expand a file of that size to */
  write_idx(tmp("bomb.gz"), 0x08, 2, (const uint32_t[]){65536, 32768}, px, 1, false);
  expect_error("gzipped header", tt_idx_load(tmp("bomb.gz"), &t), "bomb.gz", "more than a gzip file of");
  /* f64 elements: the byte count, not the element count, is compared */
  write_idx(tmp("f64.idx"), 0x0E, 1, (const uint32_t[]){2}, px, 8, true);
  expect_error("f64 one element short", tt_idx_load(tmp("f64.idx"), &t), "f64.idx", "declares 16 bytes of data");
  write_idx(tmp("long.idx"), 0x08, 1, (const uint32_t[]){7}, px, 8, true);
  expect_error("plain, one byte extra", tt_idx_load(tmp("long.idx"), &t), "long.idx", "more data");
  write_idx(tmp("ok.idx"), 0x08, 1, (const uint32_t[]){8}, px, 8, true);
  TH_OK(tt_idx_load(tmp("ok.idx"), &t));
  ck_assert_int_eq(t->shape[0], 8);
  tt_tensor_release(&t);
  /* not regular files */
  expect_error("a directory", tt_idx_load(tmpdir, &t), tmpdir, "is a directory");
  expect_error("a device", tt_idx_load("/dev/zero", &t), "/dev/zero", "not a regular file");
  ck_assert_ptr_null(t);
}
END_TEST

START_TEST(test_fashion_mnist_checks) {
  /* a synthetic "test" split with the right sizes but a bad label */
  enum { N = 10000 };
  uint8_t *img = calloc(N, 784), *lab = malloc(N);
  for (int i = 0; i < N; i++) lab[i] = (uint8_t)(i % 10);
  lab[4321] = 12;
  write_idx(tmp("t10k-images-idx3-ubyte.gz"), 0x08, 3, (const uint32_t[]){N, 28, 28}, img, (size_t)N * 784, false);
  write_idx(tmp("t10k-labels-idx1-ubyte.gz"), 0x08, 1, (const uint32_t[]){N}, lab, N, false);
  tt_tensor *im = NULL, *lb = NULL;
  expect_error("label 12", tt_fashion_mnist_load(tmpdir, "test", &im, &lb), "t10k-labels", "label 12 at index 4321");
  lab[4321] = 3;
  write_idx(tmp("t10k-labels-idx1-ubyte.gz"), 0x08, 1, (const uint32_t[]){N - 1}, lab, N - 1, false);
  expect_error("9999 labels", tt_fashion_mnist_load(tmpdir, "test", &im, &lb), "t10k-labels", "[10000]");
  write_idx(tmp("t10k-labels-idx1-ubyte.gz"), 0x08, 1, (const uint32_t[]){N}, lab, N, false);
  TH_OK(tt_fashion_mnist_load(tmpdir, "test", &im, &lb));
  ck_assert_int_eq(lb->dtype, TT_I64);
  ck_assert_int_eq(tt_i64(lb)[4321], 3);
  tt_tensor_release(&im), tt_tensor_release(&lb);
  write_idx(tmp("t10k-images-idx3-ubyte.gz"), 0x08, 3, (const uint32_t[]){N, 28, 27}, img, (size_t)N * 28 * 27, false);
  expect_error("27 columns", tt_fashion_mnist_load(tmpdir, "test", &im, &lb), "t10k-images", "[10000, 28, 27]");
  expect_error("unknown split", tt_fashion_mnist_load(tmpdir, "val", &im, &lb), "\"val\"", NULL);
  expect_error("missing train files", tt_fashion_mnist_load(tmpdir, "train", &im, &lb), "train-images", "cannot open");
  ck_assert_ptr_null(im);
  free(img);
  free(lab);
}
END_TEST

START_TEST(test_fashion_mnist_real) {
  /* counts and sums computed with Python's gzip + numpy on the Debian files */
  struct { const char *split; int64_t n, first_label, sum0, sum_last, total; } sp[2] = {
      {"train", 60000, 9, 76247, 16684, 3431114169LL}, {"test", 10000, 9, 33456, 24390, 573469082LL}};
  for (int s = 0; s < 2; s++) {
    tt_tensor *im = NULL, *lb = NULL;
    TH_OK(tt_fashion_mnist_load(NULL, sp[s].split, &im, &lb));
    ck_assert_int_eq(im->shape[0], sp[s].n);
    ck_assert_int_eq(im->shape[1], 28);
    ck_assert_int_eq(im->shape[2], 28);
    ck_assert_int_eq(lb->shape[0], sp[s].n);
    ck_assert_int_eq(tt_i64(lb)[0], sp[s].first_label);
    int64_t counts[10] = {0}, total = 0, s0 = 0, sl = 0;
    for (int64_t i = 0; i < sp[s].n; i++) counts[tt_i64(lb)[i]]++;
    const uint8_t *p = tt_tensor_data(im);
    for (int64_t i = 0; i < sp[s].n * 784; i++) total += p[i];
    for (int i = 0; i < 784; i++) s0 += p[i], sl += p[(sp[s].n - 1) * 784 + i];
    for (int k = 0; k < 10; k++) ck_assert_int_eq(counts[k], sp[s].n / 10);
    ck_assert_int_eq(s0, sp[s].sum0);
    ck_assert_int_eq(sl, sp[s].sum_last);
    ck_assert_int_eq(total, sp[s].total);
    printf("fashion-mnist %s: %lld images, pixel sum %lld\n", sp[s].split, (long long)sp[s].n, (long long)total);
    tt_tensor_unref(im), tt_tensor_unref(lb);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("datasets");
  TCase *tc = tcase_create("idx");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_idx_valid);
  tcase_add_test(tc, test_idx_bad);
  tcase_add_test(tc, test_idx_sizes_against_file);
  tcase_add_test(tc, test_fashion_mnist_checks);
  suite_add_tcase(s, tc);
  struct stat st;
  if (stat(TT_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", &st) == 0) {
    TCase *real = tcase_create("fashion_mnist");
    tcase_set_timeout(real, 60);
    tcase_add_test(real, test_fashion_mnist_real);
    suite_add_tcase(s, real);
  } else {
    printf("check_datasets: the Fashion-MNIST files in %s are absent; their test is not run\n", TT_FASHION_MNIST_DIR);
  }
  return th_run(s);
}

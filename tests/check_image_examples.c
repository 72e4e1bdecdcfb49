/* check_image_examples.c — the full-size official example data through the
 * same steps as the official dataset classes, checked against CRC-32s of the
 * Python outputs (tests/data/image/examples.txt, from gen_image.py):
 *   - every example PNG/JPEG decodes to Pillow's pixels;
 *   - ADE20K / COCO-Stuff Examples: SmallestMaxSize(256, bicubic) + CenterCrop
 *     of the image, nearest for the labels (COCO shifted by one), one-hot;
 *   - S-FLCKR Examples: full-resolution labels and one-hot (K = 182);
 *   - D-RIN: image and normalised depth through SmallestMaxSize(256) +
 *     CenterCrop, Canny edges (sigma 2) and the x4 bicubic SR degradation;
 *   - two 8-bit bicubic resizes whose rounding depends on OpenCV's split of a
 *     row into float SIMD blocks and an integer tail.
 * Needs ../shared/data/examples (or TAMING_EXAMPLES); exits 77 (skip) without it. */
#include "config.h"
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include "imgtest.h"
#include "taming/imgproc.h"
#include "taming/io.h"

static char examples_dir[4096];

static void examples_or_skip(void) {
  const char *env = getenv("TAMING_EXAMPLES");
  if (env && *env) snprintf(examples_dir, sizeof examples_dir, "%s", env);
  else snprintf(examples_dir, sizeof examples_dir, "%s/../shared/data/examples", TT_ABS_SRCDIR);
  struct stat st;
  if (stat(examples_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    printf("check_image_examples: SKIP: the example data %s is absent\n", examples_dir);
    exit(77);
  }
}

static const char *ex(const char *rel) {
  static char path[2][8192];
  static int k;
  k ^= 1;
  snprintf(path[k], sizeof path[k], "%s/%s", examples_dir, rel);
  return path[k];
}

static unsigned long crc_of(const tt_tensor *t) {
  ck_assert(tt_tensor_is_contiguous(t));
  size_t n = tt_tensor_nbytes(t);
  const unsigned char *p = tt_tensor_data(t);
  uLong c = crc32(0L, Z_NULL, 0);
  while (n > 0) {
    uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
    c = crc32(c, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return c;
}

static void expect_crc(const char *what, const tt_tensor *t, const char *hex) {
  unsigned long want = strtoul(hex, NULL, 16), got = crc_of(t);
  printf("%s: crc32 %08lx, expected %08lx\n", what, got, want);
  ck_assert_msg(got == want, "%s: the output differs from the reference (crc32 %08lx, expected %08lx)", what, got, want);
}

/* Compares every 8th row and column with the stored subsample (prints the max difference). */
static void expect_subsample(const char *what, const tt_tensor *full, const char *npy) {
  tt_tensor *ref = it_npy(npy);
  int64_t h = ref->shape[0], w = ref->shape[1], c = ref->ndim == 3 ? ref->shape[2] : 1;
  tt_tensor *sub = tt_tensor_new(full->dtype, ref->ndim, ref->shape, TT_CPU);
  size_t es = tt_dtype_size(full->dtype);
  for (int64_t y = 0; y < h; y++)
    for (int64_t x = 0; x < w; x++)
      memcpy((char *)tt_tensor_data(sub) + ((y * w + x) * c) * es,
             (const char *)tt_tensor_data(full) + ((y * 8 * full->shape[1] + x * 8) * c) * es, (size_t)c * es);
  it_expect_close(what, sub, ref, 0);
  tt_tensor_unref(sub);
  tt_tensor_unref(ref);
}

/* Lines of examples.txt starting with `kind`, split into words. */
typedef struct line {
  char *w[12];
  int n;
} line;

static int read_lines(const char *kind, line *out, int max) {
  FILE *f = fopen(it_data("examples.txt"), "r");
  ck_assert_msg(f != NULL, "examples.txt is missing");
  char buf[2048];
  int n = 0;
  while (fgets(buf, sizeof buf, f) && n < max) {
    if (buf[0] == '#') continue;
    line l = {.n = 0};
    for (char *tok = strtok(buf, " \n"); tok && l.n < 12; tok = strtok(NULL, " \n")) l.w[l.n++] = strdup(tok);
    if (l.n > 0 && strcmp(l.w[0], kind) == 0) out[n++] = l;
    else
      for (int i = 0; i < l.n; i++) free(l.w[i]);
  }
  fclose(f);
  return n;
}

static void free_lines(line *l, int n) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < l[i].n; j++) free(l[i].w[j]);
}

static const char *base_name(const char *rel, char *buf, size_t n) {
  const char *s = strrchr(rel, '/');
  snprintf(buf, n, "%s", s ? s + 1 : rel);
  char *dot = strrchr(buf, '.');
  if (dot) *dot = '\0';
  return buf;
}

START_TEST(test_decode_every_example) {
  static line l[400];
  int n = read_lines("decode", l, 400);
  ck_assert_msg(n >= 100, "examples.txt lists %d files", n);
  for (int i = 0; i < n; i++) {
    tt_tensor *im = NULL;
    tt_status s = tt_image_load_u8(ex(l[i].w[1]), &im);
    ck_assert_msg(s == TT_OK, "%s", tt_error_message());
    ck_assert_msg(im->shape[0] == atoll(l[i].w[2]) && im->shape[1] == atoll(l[i].w[3]) &&
                  im->shape[2] == atoll(l[i].w[4]), "%s: shape differs from Pillow's", l[i].w[1]);
    unsigned long want = strtoul(l[i].w[5], NULL, 16), got = crc_of(im);
    ck_assert_msg(got == want, "%s: pixels differ from Pillow's decode", l[i].w[1]);
    tt_tensor_unref(im);
  }
  printf("decoded %d example files exactly as Pillow does\n", n);
  free_lines(l, n);
}
END_TEST

START_TEST(test_segmentation_examples) {
  line l[8];
  int n = read_lines("seg", l, 8);
  ck_assert_int_ge(n, 4);
  for (int i = 0; i < n; i++) {
    const char *img_rel = l[i].w[1], *seg_rel = l[i].w[2];
    int K = atoi(l[i].w[3]);
    bool shift = atoi(l[i].w[4]) != 0;
    char what[256], npy[256], b[128];
    tt_tensor *im = NULL, *lab = NULL;
    TH_OK(tt_image_load_u8(ex(img_rel), &im));
    tt_tensor *a = tt_smallest_max_size(im, 256, TT_INTER_CUBIC), *img = tt_center_crop(a, 256, 256);
    TH_NN(img);
    snprintf(what, sizeof what, "%s image (bicubic 256, center crop)", img_rel);
    snprintf(npy, sizeof npy, "ex_seg_%s_sub.npy", base_name(img_rel, b, sizeof b));
    expect_subsample(what, img, npy);
    expect_crc(what, img, l[i].w[5]);
    TH_OK(tt_labels_load(ex(seg_rel), &lab));
    tt_tensor *sl = shift ? tt_labels_shift(lab) : tt_tensor_ref(lab);
    tt_tensor *ls = tt_smallest_max_size(sl, 256, TT_INTER_NEAREST), *lc = tt_center_crop(ls, 256, 256);
    TH_NN(lc);
    snprintf(what, sizeof what, "%s labels (nearest 256, center crop%s)", seg_rel, shift ? ", +1" : "");
    expect_crc(what, lc, l[i].w[6]);
    tt_tensor *oh = tt_labels_onehot(lc, K, false, seg_rel);
    TH_NN(oh);
    snprintf(what, sizeof what, "%s one-hot [%d, 256, 256]", seg_rel, K);
    expect_crc(what, oh, l[i].w[7]);
    tt_tensor_unref(oh), tt_tensor_unref(lc), tt_tensor_unref(ls), tt_tensor_unref(sl), tt_tensor_unref(lab);
    tt_tensor_unref(img), tt_tensor_unref(a), tt_tensor_unref(im);
  }
  free_lines(l, n);
}
END_TEST

START_TEST(test_sflckr_full_resolution) {
  line l[2];
  int n = read_lines("sflckr", l, 2);
  ck_assert_int_eq(n, 1);
  tt_tensor *lab = NULL;
  TH_OK(tt_labels_load(ex(l[0].w[1]), &lab));
  expect_crc("S-FLCKR labels", lab, l[0].w[3]);
  int K = atoi(l[0].w[2]);
  tt_tensor *oh = tt_labels_onehot(lab, K, false, l[0].w[1]);
  TH_NN(oh);
  int64_t hw = lab->shape[0] * lab->shape[1];
  const uint8_t *v = tt_tensor_data(lab);
  const float *o = tt_f32(oh);
  int64_t wrong = 0;
  for (int64_t i = 0; i < hw; i++) {
    for (int k = 0; k < K; k++) wrong += o[(int64_t)k * hw + i] != (k == v[i] ? 1.0f : 0.0f);
  }
  printf("S-FLCKR one-hot [%d, %lld, %lld]: %lld wrong values\n", K, (long long)lab->shape[0], (long long)lab->shape[1],
         (long long)wrong);
  ck_assert_int_eq(wrong, 0);
  tt_tensor_unref(oh), tt_tensor_unref(lab);
  free_lines(l, n);
}
END_TEST

START_TEST(test_drin_depth_edges_sr) {
  line l[4];
  int n = read_lines("drin", l, 4);
  ck_assert_int_ge(n, 2);
  for (int i = 0; i < n; i++) {
    const char *img_rel = l[i].w[1], *dep_rel = l[i].w[2];
    char what[256], npy[256], b[128];
    base_name(img_rel, b, sizeof b);
    tt_tensor *im = NULL, *d = NULL;
    TH_OK(tt_image_load_u8(ex(img_rel), &im));
    tt_tensor *a = tt_smallest_max_size(im, 256, TT_INTER_LINEAR), *img = tt_center_crop(a, 256, 256);
    TH_NN(img);
    snprintf(what, sizeof what, "%s image (bilinear 256, center crop)", img_rel);
    snprintf(npy, sizeof npy, "ex_drin_%s_sub.npy", b);
    expect_subsample(what, img, npy);
    expect_crc(what, img, l[i].w[3]);
    /* depth: normalised at full resolution, then resized as float */
    TH_OK(tt_depth_load(ex(dep_rel), &d));
    tt_tensor *ds = tt_smallest_max_size(d, 256, TT_INTER_LINEAR), *dc = tt_center_crop(ds, 256, 256);
    TH_NN(dc);
    snprintf(what, sizeof what, "%s depth (normalised, bilinear 256, center crop)", dep_rel);
    snprintf(npy, sizeof npy, "ex_drin_%s_depth_sub.npy", b);
    expect_subsample(what, dc, npy);
    expect_crc(what, dc, l[i].w[4]);
    /* edges: canny(rgb2gray(x), sigma=2) of the [-1, 1] image */
    tt_tensor *x = tt_cast(img, TT_F32);
    for (int64_t k = 0; k < tt_tensor_numel(x); k++) tt_f32(x)[k] = (float)(tt_f32(x)[k] / 127.5 - 1.0);
    tt_tensor *g = tt_rgb2gray(x), *e = tt_canny(g, 2.0, -1, -1);
    TH_NN(e);
    snprintf(what, sizeof what, "%s Canny edges", img_rel);
    expect_crc(what, e, l[i].w[5]);
    /* super-resolution input: imscale(x, 4, keepshapes=True) */
    tt_tensor *chw = tt_image_from_u8(img), *u8 = tt_image_to_u8(chw);
    tt_tensor *lo = tt_pil_resize(u8, 64, 64, TT_PIL_BICUBIC), *up = tt_pil_resize(lo, 256, 256, TT_PIL_BICUBIC);
    TH_NN(up);
    snprintf(what, sizeof what, "%s x4 bicubic degradation", img_rel);
    expect_crc(what, up, l[i].w[6]);
    tt_tensor_unref(up), tt_tensor_unref(lo), tt_tensor_unref(u8), tt_tensor_unref(chw);
    tt_tensor_unref(e), tt_tensor_unref(g), tt_tensor_unref(x);
    tt_tensor_unref(dc), tt_tensor_unref(ds), tt_tensor_unref(d);
    tt_tensor_unref(img), tt_tensor_unref(a), tt_tensor_unref(im);
  }
  free_lines(l, n);
}
END_TEST

START_TEST(test_cubic_vector_tail) {
  line l[4];
  int n = read_lines("cubic", l, 4);
  ck_assert_int_ge(n, 2);
  for (int i = 0; i < n; i++) {
    tt_tensor *im = NULL;
    TH_OK(tt_image_load_u8(ex(l[i].w[1]), &im));
    tt_tensor *r = tt_cv_resize(im, atoll(l[i].w[2]), atoll(l[i].w[3]), TT_INTER_CUBIC);
    TH_NN(r);
    char what[256];
    snprintf(what, sizeof what, "%s bicubic to %s x %s", l[i].w[1], l[i].w[2], l[i].w[3]);
    expect_crc(what, r, l[i].w[4]);
    tt_tensor_unref(r), tt_tensor_unref(im);
  }
  free_lines(l, n);
}
END_TEST

int main(void) {
  examples_or_skip();
  Suite *s = suite_create("image_examples");
  TCase *tc = tcase_create("examples");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_decode_every_example);
  tcase_add_test(tc, test_segmentation_examples);
  tcase_add_test(tc, test_sflckr_full_resolution);
  tcase_add_test(tc, test_drin_depth_edges_sr);
  tcase_add_test(tc, test_cubic_vector_tail);
  suite_add_tcase(s, tc);
  return th_run(s);
}

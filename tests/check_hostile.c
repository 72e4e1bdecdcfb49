/* check_hostile.c — sizes from hostile files: the checked arithmetic of the
 * tensor core (taming/checked.h) and of every checkpoint reader, a reused
 * storage that grows, shapes whose zero dim hides an overflowing product,
 * huge safetensors header lengths, a directory given as a .npy file, and the
 * pickle safety scanner (globals that torch.load would call), and the legacy
 * (PyTorch < 1.6) serialisation's counts, keys and headers.
 *
 * Every hostile file is built here, in a temporary folder; each must be
 * refused with one message naming the file and the tensor, and stay far below
 * 1 GB of resident memory. */
#include "config.h"
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ckptbuild.h"
#include "taming/checked.h"
#include "testhelp.h"

#define TWO40 (INT64_C(1) << 40)
#define RSS_LIMIT_KB (1L << 20)   /* 1 GB */

static char tmpdir[256];

static const char *tmp(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}

/* Peak resident memory of this process in kB (-1 when unknown). */
static long peak_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
  if (f) fclose(f);
  return kb;
}

/* Opening fails with a message holding the path and every `want`, and memory stays bounded. */
static void expect_refusal(const char *path, const tt_ckpt_options *opts, const char *want1, const char *want2) {
  long before = peak_kb();
  tt_ckpt *c = NULL;
  tt_status s = tt_ckpt_open_with(path, opts, &c);
  const char *m = tt_error_message();
  ck_assert_msg(s != TT_OK, "%s: opened, expected an error containing '%s'", path, want1);
  ck_assert_ptr_null(c);
  ck_assert_msg(strstr(m, path) != NULL, "message '%s' does not name the file", m);
  ck_assert_msg(strstr(m, want1) != NULL, "message '%s' lacks '%s'", m, want1);
  ck_assert_msg(!want2 || strstr(m, want2) != NULL, "message '%s' lacks '%s'", m, want2);
  ck_assert_msg(strchr(m, '\n') == NULL, "message '%s' is not one line", m);
  long grew = peak_kb() - before;
  ck_assert_msg(grew < RSS_LIMIT_KB, "%s: peak resident memory grew by %ld kB", path, grew);
}

/* ---- the helpers and the tensor core ---- */

START_TEST(test_checked_helpers) {
  size_t z;
  uint64_t u;
  int64_t i, lo, hi;
  bool empty;
  ck_assert(tt_size_mul(3, 5, &z) && z == 15);
  ck_assert(!tt_size_mul(SIZE_MAX / 2 + 1, 2, &z));
  ck_assert(!tt_size_add(SIZE_MAX, 1, &z));
  ck_assert(!tt_u64_mul(UINT64_C(1) << 61 | 1, 8, &u));   /* the wrap of finding 1: (2^61 + 1) * 8 */
  ck_assert(!tt_i64_add(INT64_MAX, 1, &i));
  ck_assert(!tt_i64_mul(TWO40, TWO40, &i));
  /* a zero dim gives 0 elements but must not hide an overflowing product */
  ck_assert(tt_shape_numel(TT_DIMS(0, 3), &i) && i == 0);
  ck_assert(tt_shape_numel(TT_DIMS(2, 3, 4), &i) && i == 24);
  ck_assert(tt_shape_numel(0, NULL, &i) && i == 1);
  ck_assert(!tt_shape_numel(TT_DIMS(0, TWO40, TWO40), &i));
  ck_assert(!tt_shape_numel(TT_DIMS(TWO40, TWO40, 0), &i));
  ck_assert(!tt_shape_numel(TT_DIMS(2, -1), &i));
  ck_assert(tt_shape_nbytes(TT_DIMS(2, 3), 8, &z) && z == 48);
  ck_assert(!tt_shape_nbytes(TT_DIMS(INT64_C(1) << 61), 8, &z));   /* 2^64 bytes */
  ck_assert(!tt_shape_nbytes(TT_DIMS(0, INT64_C(1) << 61), 8, &z));
  /* spans */
  ck_assert(tt_view_span(TT_DIMS(2, 3), (int64_t[]){3, 1}, 4, &lo, &hi, &empty) && lo == 4 && hi == 9 && !empty);
  ck_assert(tt_view_span(TT_DIMS(2, 0), (int64_t[]){3, 1}, 4, &lo, &hi, &empty) && empty);
  ck_assert(tt_view_span(TT_DIMS(3), (int64_t[]){-2}, 4, &lo, &hi, &empty) && lo == 0 && hi == 4);
  ck_assert(!tt_view_span(TT_DIMS(TWO40, TWO40), (int64_t[]){TWO40, 1}, 0, &lo, &hi, &empty));
  ck_assert(!tt_view_span(TT_DIMS(2), (int64_t[]){INT64_MAX}, 1, &lo, &hi, &empty));
}
END_TEST

START_TEST(test_tensor_core_refuses_overflowing_shapes) {
  /* (0, 2^40, 2^40): no element, but its strides would overflow */
  const int64_t zero_first[] = {0, TWO40, TWO40}, zero_last[] = {TWO40, TWO40, 0};
  tt_tensor *t = tt_tensor_new(TT_F32, 3, zero_first, TT_CPU);
  ck_assert_msg(t == NULL, "shape (0, 2^40, 2^40) was accepted");
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "too large"));
  ck_assert_ptr_null(tt_tensor_new(TT_F32, 3, zero_last, TT_CPU));
  ck_assert_ptr_null(tt_zeros(TT_I64, TT_DIMS(INT64_C(1) << 61), TT_CPU));
  /* an empty shape whose other dims fit is still fine */
  t = tt_tensor_new(TT_F32, TT_DIMS(0, 5), TT_CPU);
  TH_NN(t);
  ck_assert_int_eq(tt_tensor_numel(t), 0);
  ck_assert_uint_eq(tt_tensor_nbytes(t), 0);
  ck_assert(t->stride[0] == 5 && t->stride[1] == 1);
  tt_tensor_unref(t);
  int64_t st[3];
  ck_assert_int_eq(tt_contiguous_strides(3, (int64_t[]){TWO40, TWO40, TWO40}, st), -1);
  ck_assert_int_eq(tt_contiguous_strides(3, (int64_t[]){2, 3, 4}, st), 24);

  /* finding 1 in the core: 2^61 + 1 i64 elements over 32 bytes, where (hi + 1) * 8 wraps to 8 */
  tt_storage *s = tt_storage_new(32, TT_CPU);
  TH_NN(s);
  t = tt_tensor_from_storage(s, TT_I64, TT_DIMS((INT64_C(1) << 61) + 1), NULL, 0);
  ck_assert_msg(t == NULL, "a 2^61+1 element view over 32 bytes was accepted");
  /* the same with strides: the span must fit the storage, whatever the element count */
  t = tt_tensor_from_storage(s, TT_I64, TT_DIMS(2, 2), (int64_t[]){INT64_C(1) << 62, 1}, 0);
  ck_assert_ptr_null(t);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "reaches past its storage of 32 bytes"));
  t = tt_tensor_from_storage(s, TT_I64, TT_DIMS(4), NULL, 1);   /* one past the end */
  ck_assert_ptr_null(t);
  t = tt_tensor_from_storage(s, TT_I64, TT_DIMS(4), NULL, 0);    /* exactly the storage */
  TH_NN(t);
  tt_tensor_unref(t);
  t = tt_tensor_from_storage(s, TT_I64, TT_DIMS(1000, 2), (int64_t[]){0, 1}, 2);   /* an expanded view */
  TH_NN(t);
  ck_assert_int_eq(tt_tensor_numel(t), 2000);
  tt_tensor_unref(t);
  tt_storage_unref(s);
}
END_TEST

/* ---- torch checkpoints ---- */

/* One tensor of the pickle: _rebuild_tensor_v2(storage(cls, key, numel), offset, size, stride, False, OrderedDict()). */
static void pb_tensor(pb *p, const char *cls, const char *key, int64_t numel, int64_t offset, int ndim,
                      const int64_t *size, const int64_t *stride) {
  pb_global(p, "torch._utils", "_rebuild_tensor_v2");
  pb_op(p, '(');
  pb_op(p, '(');
  pb_str(p, "storage"); pb_global(p, "torch", cls); pb_str(p, key); pb_str(p, "cpu"); pb_long(p, numel);
  pb_op(p, 't');
  pb_op(p, 'Q');
  pb_long(p, offset);
  pb_op(p, '(');
  for (int i = 0; i < ndim; i++) pb_long(p, size[i]);
  pb_op(p, 't');
  pb_op(p, '(');
  for (int i = 0; i < ndim; i++) pb_long(p, stride[i]);
  pb_op(p, 't');
  pb_op(p, 0x89);
  pb_global(p, "collections", "OrderedDict"); pb_op(p, ')'); pb_op(p, 'R');
  pb_op(p, 't');
  pb_op(p, 'R');
}

/* {'state_dict': {'a': <4 i64 of storage 0>, 'b': <numel_b i64 of storage 0, shape (size_b,)>}} */
static void write_reused_storage(const char *path, int64_t numel_b, int64_t size_b) {
  pb p = {.n = 0};
  pb_op(&p, 0x80); pb_op(&p, 2);
  pb_op(&p, '}');
  pb_str(&p, "state_dict");
  pb_global(&p, "collections", "OrderedDict"); pb_op(&p, ')'); pb_op(&p, 'R');
  pb_str(&p, "a");
  pb_tensor(&p, "LongStorage", "0", 4, 0, TT_DIMS(4), (int64_t[]){1});
  pb_op(&p, 's');
  pb_str(&p, "b");
  pb_tensor(&p, "LongStorage", "0", numel_b, 0, TT_DIMS(size_b), (int64_t[]){1});
  pb_op(&p, 's');
  pb_op(&p, 's');
  pb_op(&p, '.');
  int64_t data[4] = {10, 20, 30, 40};
  zb z = {0};
  zb_add(&z, "arch/data.pkl", p.b, p.n, 0);
  zb_add(&z, "arch/data/0", data, sizeof data, 0);
  zb_add(&z, "arch/version", "3\n", 2, 0);
  zb_finish(&z, false, 0, 0);
  spit(path, z.b, z.n);
  free(z.b);
}

START_TEST(test_reused_storage_must_keep_its_size) {
  /* finding 1: storage '0' is 4 elements where it first appears, then claims 2^61 + 1 for a
   * tensor of 2^61 + 1 elements (whose byte count wrapped to 8) */
  int64_t huge = (INT64_C(1) << 61) + 1;
  write_reused_storage(tmp("regrow.ckpt"), huge, huge);
  expect_refusal(tmp("regrow.ckpt"), NULL, "tensor 'b'", NULL);
  printf("reused storage, 2^61+1 elements: %s\n", tt_error_message());
  /* the reused storage is checked against its first size, whatever the tensor */
  write_reused_storage(tmp("regrow_big.ckpt"), huge, 2);
  expect_refusal(tmp("regrow_big.ckpt"), NULL, "tensor 'b'",
                 "storage '0' is declared with 2305843009213693953 elements here but 4");
  write_reused_storage(tmp("regrow8.ckpt"), 8, 8);
  expect_refusal(tmp("regrow8.ckpt"), NULL, "tensor 'b'", "declared with 8 elements here but 4");
  /* the same count twice is a shared storage, as torch.save writes it */
  write_reused_storage(tmp("shared.ckpt"), 4, 2);
  tt_ckpt *c;
  TH_OK(tt_ckpt_open(tmp("shared.ckpt"), &c));
  tt_tensor *a = tt_ckpt_get(c, "a"), *b = tt_ckpt_get(c, "b");
  ck_assert_ptr_eq(a->storage, b->storage);
  ck_assert(tt_tensor_get(b, 1) == 20 && tt_tensor_get(a, 3) == 40);
  tt_ckpt_close(c);
}
END_TEST

START_TEST(test_info_sums_expanded_views_without_wrapping) {
  /* two u8 views of 2^62 + 2^61 elements with stride 0 over one byte: legal, but their sum overflows */
  int64_t n = (INT64_C(1) << 62) + (INT64_C(1) << 61);
  pb p = {.n = 0};
  pb_op(&p, 0x80); pb_op(&p, 2);
  pb_op(&p, '}');
  pb_str(&p, "state_dict");
  pb_op(&p, '}');
  pb_str(&p, "x");
  pb_tensor(&p, "ByteStorage", "0", 1, 0, TT_DIMS(n), (int64_t[]){0});
  pb_op(&p, 's');
  pb_str(&p, "y");
  pb_tensor(&p, "ByteStorage", "0", 1, 0, TT_DIMS(n), (int64_t[]){0});
  pb_op(&p, 's');
  pb_op(&p, 's');
  pb_op(&p, '.');
  zb z = {0};
  zb_add(&z, "arch/data.pkl", p.b, p.n, 0);
  zb_add(&z, "arch/data/0", "\x07", 1, 0);
  zb_finish(&z, false, 0, 0);
  spit(tmp("expanded.ckpt"), z.b, z.n);
  free(z.b);
  tt_ckpt *c;
  TH_OK(tt_ckpt_open(tmp("expanded.ckpt"), &c));
  ck_assert(tt_tensor_get(tt_ckpt_get(c, "y"), n - 1) == 7);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  TH_OK(tt_ckpt_print_info(c, f));
  fclose(f);
  ck_assert_msg(strstr(text, "2 tensors, over 2^63 elements or bytes") != NULL, "listing: %s", text);
  free(text);
  tt_ckpt_close(c);
}
END_TEST

START_TEST(test_zero_dim_hides_overflow_in_every_reader) {
  /* torch: shape (2^40, 2^40, 0) over a 4-element storage */
  tensor_spec t = {.numel = 4, .entry_floats = 4, .ndim = 3, .size = {TWO40, TWO40, 0}, .stride = {1, 1, 1}};
  write_tensor_ckpt(tmp("zero_dim.ckpt"), &t);
  expect_refusal(tmp("zero_dim.ckpt"), NULL, "tensor 'w'", "impossible shape [1099511627776, 1099511627776, 0]");
  tensor_spec t2 = {.numel = 4, .entry_floats = 4, .ndim = 3, .size = {0, TWO40, TWO40}, .stride = {1, 1, 1}};
  write_tensor_ckpt(tmp("zero_first.ckpt"), &t2);
  expect_refusal(tmp("zero_first.ckpt"), NULL, "tensor 'w'", "impossible shape");
  /* a negative dim */
  tensor_spec t3 = {.numel = 4, .entry_floats = 4, .ndim = 2, .size = {-1, 0}, .stride = {1, 1}};
  write_tensor_ckpt(tmp("negative.ckpt"), &t3);
  expect_refusal(tmp("negative.ckpt"), NULL, "tensor 'w'", "impossible shape [-1, 0]");

  /* safetensors */
  const char *hdr = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776,0],\"data_offsets\":[0,0]}}";
  size_t hl = strlen(hdr);
  uint8_t buf[256];
  uint64_t len = hl;
  memcpy(buf, &len, 8);
  memcpy(buf + 8, hdr, hl);
  spit(tmp("zero_dim.safetensors"), buf, 8 + hl);
  expect_refusal(tmp("zero_dim.safetensors"), NULL, "tensor 'w'", "impossible shape");

  /* npy */
  const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 1099511627776, 0), }";
  char npy[200];
  size_t dl = strlen(dict);
  memcpy(npy, "\x93NUMPY\x01\x00", 8);
  npy[8] = (char)(dl + 1);
  npy[9] = 0;
  memcpy(npy + 10, dict, dl);
  npy[10 + dl] = '\n';
  spit(tmp("zero_dim.npy"), npy, 11 + dl);
  tt_tensor *x = NULL;
  ck_assert_int_ne(tt_npy_load(tmp("zero_dim.npy"), &x), TT_OK);
  ck_assert_ptr_null(x);
  ck_assert_msg(strstr(tt_error_message(), "impossibly large") && strstr(tt_error_message(), "zero_dim.npy"), "%s",
                tt_error_message());
}
END_TEST

/* ---- safetensors header lengths ---- */

START_TEST(test_safetensors_header_length_messages) {
  /* finding 9: 2^62 gets a specific message, not "not a checkpoint" */
  uint8_t buf[16];
  uint64_t len = UINT64_C(1) << 62;
  memcpy(buf, &len, 8);
  memcpy(buf + 8, "{}      ", 8);
  spit(tmp("huge_header.safetensors"), buf, 16);
  expect_refusal(tmp("huge_header.safetensors"), NULL, "header length 4611686018427387904 exceeds the file size (16 bytes)",
                 NULL);
  printf("2^62 header: %s\n", tt_error_message());
  len = UINT64_MAX;
  memcpy(buf, &len, 8);
  spit(tmp("max_header.safetensors"), buf, 16);
  expect_refusal(tmp("max_header.safetensors"), NULL, "header length 18446744073709551615 exceeds the file size", NULL);
  /* a header that fits the file but not the cap; the cap can be raised */
  char text[300];
  memset(text, ' ', sizeof text);
  memcpy(text, "{}", 2);
  uint8_t file[8 + sizeof text];
  len = sizeof text;
  memcpy(file, &len, 8);
  memcpy(file + 8, text, sizeof text);
  spit(tmp("capped.safetensors"), file, sizeof file);
  setenv("TAMING_MAX_SAFETENSORS_HEADER", "100", 1);
  expect_refusal(tmp("capped.safetensors"), NULL, "header length 300 exceeds the cap of 100 bytes",
                 "TAMING_MAX_SAFETENSORS_HEADER");
  setenv("TAMING_MAX_SAFETENSORS_HEADER", "1000", 1);
  tt_ckpt *c;
  TH_OK(tt_ckpt_open(tmp("capped.safetensors"), &c));
  ck_assert_int_eq(tt_ckpt_count(c), 0);
  tt_ckpt_close(c);
  unsetenv("TAMING_MAX_SAFETENSORS_HEADER");
}
END_TEST

/* ---- .npy ---- */

START_TEST(test_npy_directory) {
  const char *d = tmp("a_dir.npy");
  ck_assert(mkdir(d, 0755) == 0);
  tt_tensor *t = NULL;
  ck_assert_int_ne(tt_npy_load(d, &t), TT_OK);
  ck_assert_ptr_null(t);
  const char *m = tt_error_message();
  ck_assert_msg(strstr(m, d) && strstr(m, "is a directory") && !strstr(m, "magic"), "message: %s", m);
  rmdir(d);
}
END_TEST

/* ---- the pickle safety scanner ---- */

/* {'thing': mod.name(arg), 'n': -7} with GLOBAL or STACK_GLOBAL. */
static void write_global_ckpt(const char *path, const char *mod, const char *name, bool stack_global) {
  pb p = {.n = 0};
  pb_op(&p, 0x80); pb_op(&p, stack_global ? 4 : 2);
  pb_op(&p, '}');
  pb_str(&p, "thing");
  if (stack_global) {
    pb_str(&p, mod);
    pb_str(&p, name);
    pb_op(&p, 0x93);
  } else {
    pb_global(&p, mod, name);
  }
  char cmd[600];
  snprintf(cmd, sizeof cmd, "touch %s", tmp("pwned"));
  pb_str(&p, cmd);
  pb_op(&p, 0x85);
  pb_op(&p, 'R');
  pb_op(&p, 's');
  pb_str(&p, "n"); pb_int(&p, -7); pb_op(&p, 's');
  pb_op(&p, '.');
  write_zip_with_pickle(path, &p, NULL, 0, 0, 0, false);
}

START_TEST(test_scanner_refuses_unknown_globals_unless_allowed) {
  static const tt_ckpt_options allow = {.allow_unsafe_globals = true};
  for (int sg = 0; sg < 2; sg++) {
    write_global_ckpt(tmp("pipepager.ckpt"), "pydoc", "pipepager", sg);
    expect_refusal(tmp("pipepager.ckpt"), NULL, "references pydoc.pipepager",
                   "torch.load without weights_only=True would call");
    if (!sg) printf("pydoc.pipepager: %s\n", tt_error_message());
    tt_ckpt *c;
    TH_OK(tt_ckpt_open_with(tmp("pipepager.ckpt"), &allow, &c));
    ck_assert_int_eq(tt_ckpt_unsafe_count(c), 1);
    ck_assert_str_eq(tt_ckpt_unsafe_global(c, 0), "pydoc.pipepager");
    ck_assert_ptr_null(tt_ckpt_unsafe_global(c, 1));
    ck_assert_int_eq(tt_value_get(tt_ckpt_meta(c), "thing")->type, TT_V_NIL);   /* inert, never called */
    ck_assert_int_eq(tt_value_get(tt_ckpt_meta(c), "n")->u.i, -7);
    tt_ckpt_close(c);
  }
  ck_assert_msg(access(tmp("pwned"), F_OK) != 0, "the payload ran");
  /* convert refuses too, and writes nothing */
  ck_assert_int_ne(tt_ckpt_convert(tmp("pipepager.ckpt"), tmp("out.safetensors"), false), TT_OK);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "pydoc.pipepager"));
  ck_assert_int_ne(access(tmp("out.safetensors"), F_OK), 0);
  TH_OK(tt_ckpt_convert_with(tmp("pipepager.ckpt"), tmp("out.safetensors"), false, &allow));
  ck_assert_int_eq(access(tmp("out.safetensors"), F_OK), 0);

  /* an attribute path through a banned module is a hard error even when allowed */
  write_global_ckpt(tmp("dotted.ckpt"), "torch", "os.system", false);
  expect_refusal(tmp("dotted.ckpt"), &allow, "refusing to call torch.os.system", NULL);
  write_global_ckpt(tmp("dotted_cb.ckpt"), "pytorch_lightning.callbacks.model_checkpoint", "os.system", true);
  expect_refusal(tmp("dotted_cb.ckpt"), &allow, "refusing to call", NULL);
  /* an attribute path through an allowed class is not allowed itself */
  write_global_ckpt(tmp("dotted_ok.ckpt"), "collections", "OrderedDict.fromkeys", false);
  expect_refusal(tmp("dotted_ok.ckpt"), NULL, "references collections.OrderedDict.fromkeys", NULL);
  /* names with control characters (a terminal escape in the warning) are corrupt */
  write_global_ckpt(tmp("escape.ckpt"), "pydoc", "x\x1b[2J\ny", true);
  expect_refusal(tmp("escape.ckpt"), &allow, "bad global name (control character)", NULL);
  ck_assert_msg(access(tmp("pwned"), F_OK) != 0, "the payload ran");
}
END_TEST

START_TEST(test_scanner_lists_each_global_once_and_bounds_the_list) {
  /* {'k0': m0.f(), ..., 'k99': m99.f(), 'again': m0.f()} */
  pb p = {.n = 0};
  pb_op(&p, 0x80); pb_op(&p, 2);
  pb_op(&p, '}');
  for (int i = 0; i <= 100; i++) {
    char key[16], mod[16];
    snprintf(key, sizeof key, "k%d", i);
    snprintf(mod, sizeof mod, "m%d", i % 100);
    pb_str(&p, key);
    pb_global(&p, mod, "f");
    pb_op(&p, ')');
    pb_op(&p, 'R');
    pb_op(&p, 's');
  }
  pb_op(&p, '.');
  write_zip_with_pickle(tmp("many.ckpt"), &p, NULL, 0, 0, 0, false);
  expect_refusal(tmp("many.ckpt"), NULL, "references m0.f and other globals", NULL);
  tt_ckpt *c;
  TH_OK(tt_ckpt_open_with(tmp("many.ckpt"), &(tt_ckpt_options){.allow_unsafe_globals = true}, &c));
  ck_assert_int_eq(tt_ckpt_unsafe_count(c), 100);
  ck_assert_str_eq(tt_ckpt_unsafe_global(c, 0), "m0.f");
  ck_assert_str_eq(tt_ckpt_unsafe_global(c, 63), "m63.f");
  ck_assert_ptr_null(tt_ckpt_unsafe_global(c, 64));   /* counted, not kept */
  tt_ckpt_close(c);
}
END_TEST

START_TEST(test_scanner_passes_lightning_checkpoints) {
  /* gen_io.py's Lightning-style file: callbacks, AttributeDict, numpy scalar, a path, bytes */
  char p[1200];
  snprintf(p, sizeof p, "%s/tests/data/io/lightning_like.ckpt", TT_ABS_SRCDIR);
  tt_ckpt *c;
  TH_OK(tt_ckpt_open(p, &c));
  for (int i = 0; i < tt_ckpt_unsafe_count(c); i++) printf("unexpected: %s\n", tt_ckpt_unsafe_global(c, i));
  ck_assert_int_eq(tt_ckpt_unsafe_count(c), 0);
  tt_ckpt_close(c);
  /* the official fixtures, when present */
  const char *env = getenv("TAMING_FIXTURES");
  const char *fx = env && *env ? env : TT_ABS_SRCDIR "/../shared/fixtures";
  const char *names[] = {"vqgan.ckpt", "gpt.ckpt"};
  for (int i = 0; i < 2; i++) {
    snprintf(p, sizeof p, "%s/tiny/%s", fx, names[i]);
    if (access(p, R_OK) != 0) {
      printf("fixtures absent: %s not checked\n", names[i]);
      continue;
    }
    TH_OK(tt_ckpt_open(p, &c));
    ck_assert_int_eq(tt_ckpt_unsafe_count(c), 0);
    tt_ckpt_close(c);
  }
}
END_TEST

/* A pickle whose bytes each make a value: 12 MB of None used to take 1 GB. */
START_TEST(test_pickle_value_bomb) {
  size_t n = 12u << 20;
  uint8_t *pkl = malloc(n + 3);
  pkl[0] = 0x80;
  pkl[1] = 2;
  memset(pkl + 2, 'N', n);
  pkl[n + 2] = '.';
  zb z = {0};
  zb_add(&z, "arch/data.pkl", pkl, n + 3, 0);
  zb_finish(&z, false, 0, 0);
  spit(tmp("nones.ckpt"), z.b, z.n);
  free(z.b);
  free(pkl);
  long before = peak_kb();
  expect_refusal(tmp("nones.ckpt"), NULL, "the pickle builds more than 2097152 values", "TAMING_MAX_PICKLE_VALUES");
  printf("12 MB of None: peak RSS +%ld kB: %s\n", peak_kb() - before, tt_error_message());
  unlink(tmp("nones.ckpt"));

  /* the cap can be moved: {'l': [None] * 300} */
  pb p = {.n = 0};
  pb_op(&p, 0x80); pb_op(&p, 2);
  pb_op(&p, '}');
  pb_str(&p, "l");
  pb_op(&p, ']');
  pb_op(&p, '(');
  for (int i = 0; i < 300; i++) pb_op(&p, 'N');
  pb_op(&p, 'e');
  pb_op(&p, 's');
  pb_op(&p, '.');
  write_zip_with_pickle(tmp("list.ckpt"), &p, NULL, 0, 0, 0, false);
  setenv("TAMING_MAX_PICKLE_VALUES", "200", 1);
  expect_refusal(tmp("list.ckpt"), NULL, "more than 200 values", NULL);
  setenv("TAMING_MAX_PICKLE_VALUES", "1000", 1);
  tt_ckpt *c;
  TH_OK(tt_ckpt_open(tmp("list.ckpt"), &c));
  ck_assert_int_eq(tt_value_len(tt_value_get(tt_ckpt_meta(c), "l")), 300);
  tt_ckpt_close(c);
  unsetenv("TAMING_MAX_PICKLE_VALUES");
}
END_TEST

/* ---- the legacy (PyTorch < 1.6) serialisation ---- */

/* {'state_dict': {'w': f32 [4] over storage '0' of `numel` elements}} with legacy
 * persistent ids, its storage listed once with `count` elements and `nbytes` bytes. */
static void write_legacy(const char *path, int64_t numel, uint64_t count, size_t nbytes, legacy_spec *ls) {
  tensor_spec t = {.numel = numel, .ndim = 1, .size = {4}, .stride = {1}, .legacy_view = 1};
  pb p = {.n = 0};
  build_pickle(&p, &t);
  legacy_spec d = {.nkeys = 1, .keys = {"0"}, .count = {count}, .nbytes = {nbytes}};
  if (!ls) ls = &d;
  ls->obj = &p;
  write_legacy_ckpt(path, ls);
}

START_TEST(test_legacy_reads_what_it_should) {
  /* the builder's baseline: a good file, and the element count that makes its storage */
  write_legacy(tmp("good.pt"), 4, 4, 16, NULL);
  tt_ckpt *c;
  TH_OK(tt_ckpt_open(tmp("good.pt"), &c));
  ck_assert_str_eq(tt_ckpt_format(c), "torch-legacy");
  tt_tensor *w = tt_ckpt_get(c, "w");
  ck_assert(w && tt_tensor_numel(w) == 4 && tt_tensor_get(w, 3) == 3.0);
  tt_ckpt_close(c);
  /* trailing bytes after the last storage are ignored, as torch.load does */
  write_legacy(tmp("trailing.pt"), 4, 4, 16, NULL);
  FILE *f = fopen(tmp("trailing.pt"), "ab");
  fputs("trailing", f);
  fclose(f);
  TH_OK(tt_ckpt_open(tmp("trailing.pt"), &c));
  tt_ckpt_close(c);
}
END_TEST

START_TEST(test_legacy_refuses_hostile_sizes) {
  /* the data ends early, or inside the element count */
  write_legacy(tmp("cut.pt"), 4, 4, 12, NULL);
  expect_refusal(tmp("cut.pt"), NULL, "storage '0' (4 elements of 4 bytes from byte", "runs past the end of the file");
  printf("legacy, truncated data: %s\n", tt_error_message());
  legacy_spec ls = {.nkeys = 1, .keys = {"0"}, .count = {4}, .count_bytes = 5};
  write_legacy(tmp("cut_count.pt"), 4, 4, 0, &ls);
  expect_refusal(tmp("cut_count.pt"), NULL, "truncated", "the element count of storage '0'");
  /* the count differs from the one the persistent id declared */
  write_legacy(tmp("count.pt"), 4, 5, 20, NULL);
  expect_refusal(tmp("count.pt"), NULL, "storage '0' holds 5 elements in the file but the pickle declares 4", NULL);
  printf("legacy, count mismatch: %s\n", tt_error_message());
  write_legacy(tmp("count_neg.pt"), 4, UINT64_MAX, 16, NULL);
  expect_refusal(tmp("count_neg.pt"), NULL, "holds 18446744073709551615 elements", NULL);
  /* a count whose byte size overflows, declared alike by the pickle */
  write_legacy(tmp("count_huge.pt"), INT64_C(1) << 62, UINT64_C(1) << 62, 16, NULL);
  expect_refusal(tmp("count_huge.pt"), NULL, "storage '0' (4611686018427387904 elements of 4 bytes",
                 "runs past the end");
  write_legacy(tmp("count_max.pt"), INT64_MAX, INT64_MAX, 16, NULL);
  expect_refusal(tmp("count_max.pt"), NULL, "runs past the end", NULL);
  printf("legacy, count overflow: %s\n", tt_error_message());
  /* storage keys: missing from the list, unknown to the pickle, listed twice */
  legacy_spec none = {.nkeys = 0};
  write_legacy(tmp("unlisted.pt"), 4, 4, 16, &none);
  expect_refusal(tmp("unlisted.pt"), NULL, "storage '0' is used by the pickle but missing from the list", NULL);
  printf("legacy, key missing: %s\n", tt_error_message());
  legacy_spec extra = {.nkeys = 2, .keys = {"0", "7"}, .count = {4, 1}, .nbytes = {16, 4}};
  write_legacy(tmp("extra.pt"), 4, 4, 16, &extra);
  expect_refusal(tmp("extra.pt"), NULL, "storage '7' has bytes in the file but the pickle never uses it", NULL);
  legacy_spec twice = {.nkeys = 2, .keys = {"0", "0"}, .count = {4, 4}, .nbytes = {16, 16}};
  write_legacy(tmp("twice.pt"), 4, 4, 16, &twice);
  expect_refusal(tmp("twice.pt"), NULL, "storage '0' is listed twice", NULL);
  /* a tensor reaching past its (consistent) storage is the zip path's check */
  write_legacy(tmp("short.pt"), 2, 2, 8, NULL);
  expect_refusal(tmp("short.pt"), NULL, "tensor 'w' [4] at storage offset 0 reaches outside its storage '0' of 2", NULL);
}
END_TEST

START_TEST(test_legacy_refuses_bad_headers) {
  legacy_spec ls = {.nkeys = 1, .keys = {"0"}, .count = {4}, .nbytes = {16}, .bad_magic = 1};
  write_legacy(tmp("magic.pt"), 4, 4, 16, &ls);
  expect_refusal(tmp("magic.pt"), NULL, "not a checkpoint", NULL);
  ls.bad_magic = 2;
  write_legacy(tmp("magic_tuple.pt"), 4, 4, 16, &ls);
  expect_refusal(tmp("magic_tuple.pt"), NULL, "its first pickle is not the magic number", NULL);
  printf("legacy, wrong magic: %s\n", tt_error_message());
  ls.bad_magic = 0;
  ls.protocol = 1000;
  write_legacy(tmp("proto.pt"), 4, 4, 16, &ls);
  expect_refusal(tmp("proto.pt"), NULL, "protocol version 1000, expected 1001", NULL);
  ls.protocol = 0;
  ls.big_endian = true;
  write_legacy(tmp("big.pt"), 4, 4, 16, &ls);
  expect_refusal(tmp("big.pt"), NULL, "a big-endian checkpoint", NULL);
  printf("legacy, big-endian: %s\n", tt_error_message());
  /* a storage view (PyTorch < 0.4) */
  tensor_spec t = {.numel = 4, .ndim = 1, .size = {4}, .stride = {1}, .legacy_view = 2};
  pb p = {.n = 0};
  build_pickle(&p, &t);
  legacy_spec lv = {.obj = &p, .nkeys = 1, .keys = {"0"}, .count = {4}, .nbytes = {16}};
  write_legacy_ckpt(tmp("view.pt"), &lv);
  expect_refusal(tmp("view.pt"), NULL, "tensor 'w' lies in a storage view", NULL);
  /* a storage class without a known element size cannot be stepped over */
  tensor_spec u = {.numel = 4, .ndim = 1, .size = {4}, .stride = {1}, .legacy_view = 1, .storage_class = "WeirdStorage"};
  p.n = 0;
  build_pickle(&p, &u);
  write_legacy_ckpt(tmp("weird.pt"), &lv);
  expect_refusal(tmp("weird.pt"), NULL, "storage '0' is a torch.WeirdStorage, whose element size is not known", NULL);
}
END_TEST

START_TEST(test_legacy_scanner) {
  /* {'thing': pydoc.pipepager(), 'state_dict': {}} in the object pickle */
  static const tt_ckpt_options allow = {.allow_unsafe_globals = true};
  pb p = {.n = 0};
  pb_op(&p, 0x80); pb_op(&p, 2); pb_op(&p, '}');
  pb_str(&p, "thing"); pb_global(&p, "pydoc", "pipepager"); pb_op(&p, ')'); pb_op(&p, 'R'); pb_op(&p, 's');
  pb_str(&p, "n"); pb_int(&p, 3); pb_op(&p, 's');
  pb_op(&p, '.');
  legacy_spec ls = {.obj = &p};
  write_legacy_ckpt(tmp("pipepager.pt"), &ls);
  expect_refusal(tmp("pipepager.pt"), NULL, "references pydoc.pipepager", "torch.load without weights_only=True");
  printf("legacy, unsafe global: %s\n", tt_error_message());
  tt_ckpt *c;
  TH_OK(tt_ckpt_open_with(tmp("pipepager.pt"), &allow, &c));
  ck_assert_int_eq(tt_ckpt_unsafe_count(c), 1);
  ck_assert_int_eq(tt_value_get(tt_ckpt_meta(c), "thing")->type, TT_V_NIL);
  tt_ckpt_close(c);
  p.n = 0;
  pb_op(&p, 0x80); pb_op(&p, 2); pb_op(&p, '}');
  pb_str(&p, "x"); pb_global(&p, "os", "system"); pb_str(&p, "touch pwned"); pb_op(&p, 0x85); pb_op(&p, 'R');
  pb_op(&p, 's'); pb_op(&p, '.');
  write_legacy_ckpt(tmp("system.pt"), &ls);
  expect_refusal(tmp("system.pt"), &allow, "refusing to call os.system", NULL);
  /* the list of storage keys is scanned too: a global there is refused, opt-in or not */
  pb k = {.n = 0};
  pb_op(&k, 0x80); pb_op(&k, 2); pb_op(&k, ']'); pb_op(&k, '(');
  pb_global(&k, "pydoc", "pipepager"); pb_op(&k, ')'); pb_op(&k, 'R');
  pb_op(&k, 'e'); pb_op(&k, '.');
  p.n = 0;
  pb_op(&p, 0x80); pb_op(&p, 2); pb_op(&p, '}'); pb_op(&p, '.');
  legacy_spec lk = {.obj = &p, .keys_pickle = &k};
  write_legacy_ckpt(tmp("keys_global.pt"), &lk);
  expect_refusal(tmp("keys_global.pt"), &allow, "the list of storage keys", "references pydoc.pipepager");
  printf("legacy, global in the key list: %s\n", tt_error_message());
  ck_assert_msg(access("pwned", F_OK) != 0, "the payload ran");
}
END_TEST

int main(void) {
  if (th_tmpdir_make("check_hostile", tmpdir, sizeof tmpdir) != 0) {
    perror("mkdtemp");
    return 99;
  }
  Suite *s = suite_create("hostile");
  TCase *tc = tcase_create("sizes");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_checked_helpers);
  tcase_add_test(tc, test_tensor_core_refuses_overflowing_shapes);
  tcase_add_test(tc, test_reused_storage_must_keep_its_size);
  tcase_add_test(tc, test_zero_dim_hides_overflow_in_every_reader);
  tcase_add_test(tc, test_info_sums_expanded_views_without_wrapping);
  tcase_add_test(tc, test_safetensors_header_length_messages);
  tcase_add_test(tc, test_npy_directory);
  suite_add_tcase(s, tc);
  TCase *sc = tcase_create("scanner");
  tcase_set_timeout(sc, 60);
  tcase_add_test(sc, test_scanner_refuses_unknown_globals_unless_allowed);
  tcase_add_test(sc, test_scanner_lists_each_global_once_and_bounds_the_list);
  tcase_add_test(sc, test_scanner_passes_lightning_checkpoints);
  tcase_add_test(sc, test_pickle_value_bomb);
  suite_add_tcase(s, sc);
  TCase *lc = tcase_create("legacy");
  tcase_set_timeout(lc, 60);
  tcase_add_test(lc, test_legacy_reads_what_it_should);
  tcase_add_test(lc, test_legacy_refuses_hostile_sizes);
  tcase_add_test(lc, test_legacy_refuses_bad_headers);
  tcase_add_test(lc, test_legacy_scanner);
  suite_add_tcase(s, lc);
  int rc = th_run(s);
  th_tmpdir_remove(tmpdir);
  return rc;
}

/* check_io.c — file formats: torch zip checkpoints (zip, pickle, mapped tensors),
 * safetensors, npy, YAML configs, atomic writes.
 *
 * The official fixtures (vqgan/gpt .ckpt vs .safetensors, npy, yaml) and the
 * small checkpoints made by tests/data/gen_io.py and gen_legacy.py are the references; every bad
 * input (truncations, compressed entries, a pickle that calls os.system,
 * storages outside the file, ...) is built here, in a temporary folder. */
#include "config.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "ckptbuild.h"
#include "testhelp.h"

static char tmpdir[256];
static char fixdir[1024];   /* .../fixtures/tiny, empty when absent */

static const char *tmp(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
  return buf[k];
}

static const char *fix(const char *name) {
  static char buf[4][1200];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", fixdir, name);
  return buf[k];
}

static const char *data(const char *name) {
  static char buf[2][1200];
  static int k;
  k = (k + 1) % 2;
  snprintf(buf[k], sizeof buf[k], "%s/tests/data/io/%s", TT_ABS_SRCDIR, name);
  return buf[k];
}


/* Asserts that opening fails with a message containing `want` (and the path). */
static void expect_ckpt_error(const char *path, const char *want) {
  tt_ckpt *c = NULL;
  tt_status s = tt_ckpt_open(path, &c);
  ck_assert_msg(s != TT_OK, "%s: opened, expected an error containing '%s'", path, want);
  ck_assert_ptr_null(c);
  ck_assert_msg(strstr(tt_error_message(), want) != NULL, "%s: message '%s' lacks '%s'", path, tt_error_message(),
                want);
  ck_assert_msg(strstr(tt_error_message(), path) != NULL, "message '%s' does not name the file", tt_error_message());
}

/* Both tensors' values, bytes for bytes (any strides). */
static void assert_same_bytes(const char *what, const tt_tensor *a, const tt_tensor *b) {
  char s1[128], s2[128];
  ck_assert_msg(a->dtype == b->dtype, "%s: dtype %s vs %s", what, tt_dtype_name(a->dtype), tt_dtype_name(b->dtype));
  ck_assert_msg(tt_tensor_same_shape(a, b), "%s: shape %s vs %s", what, tt_tensor_shape_str(a, s1, sizeof s1),
                tt_tensor_shape_str(b, s2, sizeof s2));
  size_t n = tt_tensor_nbytes(a);
  uint8_t *x = malloc(n + 1), *y = malloc(n + 1);
  TH_OK(tt_tensor_read(a, x));
  TH_OK(tt_tensor_read(b, y));
  size_t bad = n;
  for (size_t i = 0; i < n && bad == n; i++)
    if (x[i] != y[i]) bad = i;
  ck_assert_msg(bad == n, "%s: bytes differ at byte %zu of %zu", what, bad, n);
  free(x);
  free(y);
}


/* ---- atomic writes ---- */

static int count_tmp_files(void) {
  DIR *d = opendir(tmpdir);
  int n = 0;
  struct dirent *e;
  while (d && (e = readdir(d)))
    if (strstr(e->d_name, ".tmp.")) n++;
  if (d) closedir(d);
  return n;
}

START_TEST(test_atomic_write) {
  const char *p = tmp("atomic.txt");
  spit(p, "old", 3);
  tt_atomic_file f;
  TH_OK(tt_atomic_open(&f, p));
  TH_OK(tt_atomic_write(&f, "new contents", 12));
  ck_assert_int_eq(count_tmp_files(), 1);
  tt_atomic_abort(&f);
  size_t n;
  uint8_t *b = slurp(p, &n);
  ck_assert_msg(n == 3 && !memcmp(b, "old", 3), "abort changed the file");
  free(b);
  ck_assert_int_eq(count_tmp_files(), 0);

  TH_OK(tt_atomic_open(&f, p));
  TH_OK(tt_atomic_write(&f, "new contents", 12));
  TH_OK(tt_atomic_commit(&f));
  b = slurp(p, &n);
  ck_assert(n == 12 && !memcmp(b, "new contents", 12));
  free(b);
  ck_assert_int_eq(count_tmp_files(), 0);
  struct stat st;
  mode_t um = umask(022);
  umask(um);
  ck_assert(stat(p, &st) == 0);
  ck_assert_msg((st.st_mode & 0777) == (0666 & ~um), "mode %o, expected %o", st.st_mode & 0777, 0666 & ~um);

  /* rename over a directory fails: the directory is untouched, no temporary file stays */
  const char *d = tmp("a_directory");
  ck_assert(mkdir(d, 0755) == 0);
  TH_OK(tt_atomic_open(&f, d));
  TH_OK(tt_atomic_write(&f, "x", 1));
  ck_assert_int_ne(tt_atomic_commit(&f), TT_OK);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "rename"));
  ck_assert(stat(d, &st) == 0 && S_ISDIR(st.st_mode));
  ck_assert_int_eq(count_tmp_files(), 0);

  /* no such folder */
  ck_assert_int_ne(tt_atomic_open(&f, tmp("missing/x.bin")), TT_OK);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "missing/x.bin"));

  /* a writer that fails halfway (npy of an unsupported dtype) leaves the old file */
  spit(p, "old", 3);
  tt_tensor *bf = tt_zeros(TT_BF16, TT_DIMS(2), TT_CPU);
  ck_assert_int_ne(tt_npy_save(p, bf), TT_OK);
  b = slurp(p, &n);
  ck_assert(n == 3 && !memcmp(b, "old", 3));
  free(b);
  tt_tensor_unref(bf);
}
END_TEST

/* ---- the official fixtures ---- */

/* Every tensor of the safetensors file equals the checkpoint's `prefix + name`. */
static void compare_ckpt_with_safetensors(const char *ckpt_name, const char *st_name, const char *prefix, int want_st,
                                          int want_ckpt) {
  tt_ckpt *c, *s;
  TH_OK(tt_ckpt_open(fix(ckpt_name), &c));
  TH_OK(tt_ckpt_open(fix(st_name), &s));
  ck_assert_str_eq(tt_ckpt_format(c), "torch-zip");
  ck_assert_str_eq(tt_ckpt_format(s), "safetensors");
  ck_assert_int_eq(tt_ckpt_count(s), want_st);
  ck_assert_int_eq(tt_ckpt_count(c), want_ckpt);
  for (int i = 0; i < tt_ckpt_count(s); i++) {
    const char *name = tt_ckpt_name(s, i);
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    tt_tensor *a = tt_ckpt_get(c, full);
    ck_assert_msg(a != NULL, "%s lacks '%s'", ckpt_name, name);
    ck_assert_ptr_eq(tt_ckpt_tensor(s, i), tt_ckpt_get(s, name));
    ck_assert(a->storage->flags & TT_STORAGE_MMAP);
    assert_same_bytes(name, a, tt_ckpt_tensor(s, i));
  }
  tt_ckpt_close(c);
  tt_ckpt_close(s);
}

START_TEST(test_fixture_vqgan) {
  compare_ckpt_with_safetensors("vqgan.ckpt", "vqgan.safetensors", "", 183, 232);
  tt_ckpt *c;
  TH_OK(tt_ckpt_open(fix("vqgan.ckpt"), &c));
  /* training-only keys and Lightning's bookkeeping */
  ck_assert_ptr_nonnull(tt_ckpt_get(c, "loss.discriminator.main.0.weight"));
  ck_assert_ptr_nonnull(tt_ckpt_get(c, "loss.perceptual_loss.net.slice1.0.weight"));
  ck_assert_ptr_null(tt_ckpt_get(c, "no.such.key"));
  const tt_value *m = tt_ckpt_meta(c);
  int64_t step, epoch;
  TH_OK(tt_cfg_int(m, "global_step", &step));
  TH_OK(tt_cfg_int(m, "epoch", &epoch));
  ck_assert_int_eq(step, 1);
  ck_assert_int_eq(epoch, 3);
  const char *ver;
  TH_OK(tt_cfg_str(m, "pytorch-lightning_version", &ver));
  ck_assert_str_eq(ver, "1.0.8");
  const tt_value *os = tt_value_get(m, "optimizer_states");
  ck_assert_int_eq(tt_value_len(os), 2);
  const tt_value *st0 = tt_value_get(tt_value_get(tt_value_at(os, 0), "state"), "0");
  const tt_value *ea = tt_value_get(st0, "exp_avg");
  ck_assert_msg(ea && ea->type == TT_V_TENSOR, "optimizer state 0 has no exp_avg tensor");
  ck_assert(tt_tensor_same_shape(ea->u.t, tt_ckpt_get(c, "encoder.conv_in.weight")));
  const tt_value *hp = tt_value_get(m, "hyper_parameters");
  int64_t n_embed;
  TH_OK(tt_cfg_int(hp, "n_embed", &n_embed));
  ck_assert_int_eq(n_embed, 64);
  tt_ckpt_close(c);
}
END_TEST

/* gpt.ckpt holds a Net2NetTransformer-style state dict ("transformer." + the GPT's keys) */
START_TEST(test_fixture_gpt) { compare_ckpt_with_safetensors("gpt.ckpt", "gpt.safetensors", "transformer.", 39, 39); }
END_TEST

START_TEST(test_mapping_is_lazy_and_private) {
  long before = rss_kb();
  tt_ckpt *c;
  TH_OK(tt_ckpt_open(fix("vqgan.ckpt"), &c));
  long after = rss_kb();
  size_t bytes = 0;
  for (int i = 0; i < tt_ckpt_count(c); i++) bytes += tt_tensor_nbytes(tt_ckpt_tensor(c, i));
  double sum = 0;
  for (int i = 0; i < tt_ckpt_count(c); i++) {
    tt_tensor *t = tt_ckpt_tensor(c, i);
    if (t->dtype != TT_F32) continue;
    for (int64_t j = 0; j < tt_tensor_numel(t); j++) sum += tt_f32(t)[j];
  }
  long touched = rss_kb();
  printf("vqgan.ckpt (%zu tensor bytes): VmRSS %ld kB before open, %ld kB after open (+%ld kB), %ld kB after "
         "reading every tensor (sum %.3f)\n",
         bytes, before, after, after - before, touched, sum);
  ck_assert_msg(after - before < 20 * 1024, "opening grew RSS by %ld kB: tensors are copied, not mapped",
                after - before);
  /* writes are copy-on-write: the file keeps its bytes */
  tt_tensor *w = tt_ckpt_get(c, "encoder.conv_in.bias");
  float orig = tt_f32(w)[0];
  tt_f32(w)[0] = orig + 1000.0f;
  tt_tensor_ref(w);
  tt_ckpt_close(c);
  ck_assert(tt_f32(w)[0] == orig + 1000.0f);   /* alive after close */
  TH_OK(tt_ckpt_open(fix("vqgan.ckpt"), &c));
  ck_assert(tt_f32(tt_ckpt_get(c, "encoder.conv_in.bias"))[0] == orig);
  tt_ckpt_close(c);
  tt_tensor_unref(w);
}
END_TEST

START_TEST(test_fixture_npy) {
  tt_tensor *x, *idx, *re;
  TH_OK(tt_npy_load(fix("input.npy"), &x));
  TH_OK(tt_tensor_check_shape(x, "input", TT_DIMS(1, 3, 32, 32)));
  ck_assert_int_eq(x->dtype, TT_F32);
  for (int64_t i = 0; i < tt_tensor_numel(x); i++) ck_assert(tt_f32(x)[i] >= -1.0f && tt_f32(x)[i] <= 1.0f);
  TH_OK(tt_npy_load(fix("indices.npy"), &idx));
  TH_OK(tt_tensor_check_shape(idx, "indices", TT_DIMS(1, 8, 8)));
  ck_assert_int_eq(idx->dtype, TT_I64);
  for (int64_t i = 0; i < 64; i++) ck_assert(tt_i64(idx)[i] >= 0 && tt_i64(idx)[i] < 64);
  /* our writer reproduces numpy's file byte for byte */
  TH_OK(tt_npy_save(tmp("input_again.npy"), x));
  size_t n1, n2;
  uint8_t *a = slurp(fix("input.npy"), &n1), *b = slurp(tmp("input_again.npy"), &n2);
  ck_assert_msg(n1 == n2 && !memcmp(a, b, n1), "re-saved input.npy differs from numpy's");
  free(a);
  free(b);
  TH_OK(tt_npy_load(tmp("input_again.npy"), &re));
  assert_same_bytes("input.npy", x, re);
  tt_tensor_unref(x);
  tt_tensor_unref(idx);
  tt_tensor_unref(re);
}
END_TEST

START_TEST(test_fixture_yaml) {
  tt_value cfg;
  TH_OK(tt_yaml_load(fix("vqgan.yaml"), &cfg));
  const tt_value *model = tt_value_get(&cfg, "model"), *params = tt_value_get(model, "params");
  const tt_value *dd = tt_value_get(params, "ddconfig");
  int64_t mult[8];
  int n;
  TH_OK(tt_cfg_int_list(dd, "ch_mult", mult, 8, &n));
  ck_assert_int_eq(n, 3);
  ck_assert(mult[0] == 1 && mult[1] == 1 && mult[2] == 2);
  ck_assert_int_eq(tt_value_get(dd, "ch_mult")->u.c.items[2].type, TT_V_INT);
  /* 4.5e-06 has a dot, so PyYAML (and we) read a float; see test_yaml_scalars for 5e-6 */
  const tt_value *lr = tt_value_get(model, "base_learning_rate");
  ck_assert_int_eq(lr->type, TT_V_NUM);
  double lrv;
  TH_OK(tt_cfg_num(model, "base_learning_rate", &lrv));
  ck_assert(lrv == 4.5e-6);
  const char *target;
  TH_OK(tt_cfg_str(model, "target", &target));
  ck_assert_str_eq(target, "taming.models.vqgan.VQModel");
  ck_assert_int_eq(tt_value_get(dd, "double_z")->type, TT_V_BOOL);
  ck_assert_int_eq(tt_value_get(dd, "dropout")->type, TT_V_NUM);
  const tt_value *lp = tt_value_get(tt_value_get(params, "lossconfig"), "params");
  double dw;
  TH_OK(tt_cfg_num(lp, "disc_weight", &dw));
  ck_assert(dw == 0.8);
  tt_value_clear(&cfg);
}
END_TEST

/* ---- torch checkpoints made by tests/data/gen_io.py ---- */

START_TEST(test_torch_views_dtypes_meta) {
  tt_ckpt *c, *e;
  TH_OK(tt_ckpt_open(data("lightning_like.ckpt"), &c));
  TH_OK(tt_ckpt_open(data("expected.safetensors"), &e));
  ck_assert_int_eq(tt_ckpt_count(c), 17);
  ck_assert_int_eq(tt_ckpt_count(e), 17);
  for (int i = 0; i < tt_ckpt_count(e); i++) {
    tt_tensor *t = tt_ckpt_get(c, tt_ckpt_name(e, i));
    ck_assert_msg(t != NULL, "missing %s", tt_ckpt_name(e, i));
    assert_same_bytes(tt_ckpt_name(e, i), t, tt_ckpt_tensor(e, i));
  }
  /* file order is the state_dict's order */
  ck_assert_str_eq(tt_ckpt_name(c, 0), "a");
  ck_assert_str_eq(tt_ckpt_name(c, 16), "param");
  tt_tensor *a = tt_ckpt_get(c, "a"), *sl = tt_ckpt_get(c, "a_slice"), *at = tt_ckpt_get(c, "a_t");
  tt_tensor *col = tt_ckpt_get(c, "a_col"), *ex = tt_ckpt_get(c, "expanded");
  ck_assert_ptr_eq(sl->storage, a->storage);
  ck_assert_ptr_eq(at->storage, a->storage);
  ck_assert_int_eq(sl->offset, 6);
  ck_assert(at->stride[0] == 1 && at->stride[1] == 6 && !tt_tensor_is_contiguous(at));
  ck_assert(col->offset == 2 && col->stride[0] == 6);
  ck_assert_int_eq(ex->stride[1], 0);
  ck_assert_ptr_eq(tt_ckpt_get(c, "first_stage_model.w")->storage, tt_ckpt_get(c, "cond_stage_model.w")->storage);
  ck_assert_int_eq(tt_ckpt_get(c, "bool")->dtype, TT_U8);
  ck_assert_int_eq(tt_ckpt_get(c, "bf")->dtype, TT_BF16);
  ck_assert_int_eq(tt_ckpt_get(c, "h")->dtype, TT_F16);
  ck_assert_int_eq(tt_ckpt_get(c, "scalar")->ndim, 0);
  ck_assert_int_eq(tt_ckpt_get(c, "empty")->shape[0], 0);

  const tt_value *m = tt_ckpt_meta(c);
  int64_t v;
  TH_OK(tt_cfg_int(m, "epoch", &v));
  ck_assert_int_eq(v, 7);
  TH_OK(tt_cfg_int(m, "global_step", &v));
  ck_assert_int_eq(v, 12345);
  const tt_value *st = tt_value_get(tt_value_get(tt_value_at(tt_value_get(m, "optimizer_states"), 0), "state"), "0");
  const tt_value *ea = tt_value_get(st, "exp_avg");
  ck_assert(ea && ea->type == TT_V_TENSOR && tt_tensor_numel(ea->u.t) == 4 && tt_f32(ea->u.t)[3] == 0.5f);
  const tt_value *pg = tt_value_at(tt_value_get(tt_value_at(tt_value_get(m, "optimizer_states"), 0), "param_groups"), 0);
  ck_assert(tt_value_get(pg, "lr")->u.n == 0.001);
  ck_assert(tt_value_at(tt_value_get(pg, "betas"), 1)->u.n == 0.9);
  /* a Lightning callback: keyed by its class, the unknown object is inert */
  const tt_value *cbs = tt_value_get(m, "callbacks");
  const tt_value *cb = tt_value_get(cbs, "pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint");
  ck_assert_msg(cb && tt_value_get(cb, "best_model_score")->type == TT_V_TENSOR, "callback state lost");
  ck_assert_int_eq(tt_value_get(cbs, "instance")->type, TT_V_NIL);
  int64_t mult[4];
  int n;
  TH_OK(tt_cfg_int_list(tt_value_get(tt_value_get(m, "hyper_parameters"), "ddconfig"), "ch_mult", mult, 4, &n));
  ck_assert(n == 3 && mult[2] == 2);
  ck_assert_int_eq(tt_value_get(m, "numpy_scalar")->type, TT_V_NIL);
  ck_assert_int_eq(tt_value_get(m, "bigint")->type, TT_V_NIL);
  ck_assert(tt_value_len(tt_value_get(m, "a_set")) == 1 && tt_value_at(tt_value_get(m, "a_set"), 0)->u.i == 3);
  const tt_value *nested = tt_value_get(m, "nested");
  TH_OK(tt_cfg_int(nested, "neg", &v));
  ck_assert(v == -123456789012LL);
  const tt_value *l = tt_value_get(nested, "list");
  ck_assert(tt_value_at(l, 1)->u.n == 2.5 && !strcmp(tt_value_at(l, 2)->u.s, "x"));
  ck_assert(tt_value_at(l, 3)->type == TT_V_NIL && tt_value_at(l, 4)->u.b);
  ck_assert(tt_value_at(tt_value_get(nested, "tuple"), 1)->u.i == -2);
  ck_assert_int_eq(tt_value_len(tt_value_get(tt_value_get(m, "counts"), "a")), 2);
  ck_assert_int_eq(tt_value_get(m, "data_dir")->type, TT_V_NIL);
  tt_ckpt_close(c);

  /* protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE), a flat state dict */
  TH_OK(tt_ckpt_open(data("flat_p4.pt"), &c));
  ck_assert_int_eq(tt_ckpt_count(c), 5);
  ck_assert_int_eq(tt_value_len(tt_ckpt_meta(c)), 0);
  for (int i = 0; i < tt_ckpt_count(c); i++)
    assert_same_bytes(tt_ckpt_name(c, i), tt_ckpt_tensor(c, i), tt_ckpt_get(e, tt_ckpt_name(c, i)));
  tt_ckpt_close(c);

  /* the same file rewritten by Python's zipfile: ZIP64 records everywhere, data at odd
   * offsets (misaligned storages are copied, aligned ones stay mapped) */
  TH_OK(tt_ckpt_open(data("zip64_unaligned.pt"), &c));
  ck_assert_int_eq(tt_ckpt_count(c), 5);
  for (int i = 0; i < tt_ckpt_count(c); i++) {
    tt_tensor *t = tt_ckpt_tensor(c, i);
    assert_same_bytes(tt_ckpt_name(c, i), t, tt_ckpt_get(e, tt_ckpt_name(c, i)));
    ck_assert(((uintptr_t)tt_tensor_data(t)) % tt_dtype_size(t->dtype) == 0);
  }
  ck_assert(tt_ckpt_get(c, "a")->storage->flags & TT_STORAGE_MMAP);
  ck_assert(!(tt_ckpt_get(c, "i64")->storage->flags & TT_STORAGE_MMAP));
  tt_ckpt_close(c);
  tt_ckpt_close(e);
}
END_TEST

/* The serialisation of torch.save before PyTorch 1.6 (tests/data/gen_legacy.py): the
 * state dict of lightning_like.ckpt compared value for value with expected.safetensors,
 * and the FID Inception's first block with and without num_batches_tracked. */
START_TEST(test_legacy_format) {
  tt_ckpt *c, *e;
  TH_OK(tt_ckpt_open(data("expected.safetensors"), &e));
  TH_OK(tt_ckpt_open(data("legacy_mixed.pt"), &c));
  ck_assert_str_eq(tt_ckpt_format(c), "torch-legacy");
  ck_assert_int_eq(tt_ckpt_count(c), tt_ckpt_count(e));
  for (int i = 0; i < tt_ckpt_count(c); i++) {
    tt_tensor *t = tt_ckpt_tensor(c, i), *want = tt_ckpt_get(e, tt_ckpt_name(c, i));
    ck_assert_msg(want != NULL, "unexpected tensor '%s'", tt_ckpt_name(c, i));
    assert_same_bytes(tt_ckpt_name(c, i), t, want);
    /* storages follow 8-byte counts at any offset: misaligned ones are copied */
    ck_assert(((uintptr_t)tt_tensor_data(t)) % tt_dtype_size(t->dtype) == 0);
  }
  /* views share their storage, as in the zip format */
  ck_assert_ptr_eq(tt_ckpt_get(c, "a")->storage, tt_ckpt_get(c, "a_t")->storage);
  ck_assert_ptr_eq(tt_ckpt_get(c, "a")->storage, tt_ckpt_get(c, "a_col")->storage);
  ck_assert_ptr_eq(tt_ckpt_get(c, "first_stage_model.w")->storage, tt_ckpt_get(c, "cond_stage_model.w")->storage);
  ck_assert_int_eq(tt_ckpt_get(c, "a_col")->offset, 2);
  const tt_value *m = tt_ckpt_meta(c);
  int64_t v;
  TH_OK(tt_cfg_int(m, "epoch", &v));
  ck_assert(v == 3);
  ck_assert_str_eq(tt_value_get(m, "note")->u.s, "legacy");
  TH_OK(tt_cfg_int(tt_value_get(m, "nested"), "neg", &v));
  ck_assert(v == -123456789012LL);
  ck_assert(tt_value_at(tt_value_get(tt_value_get(m, "nested"), "list"), 1)->u.n == 2.5);
  /* an int8 storage (not mapped: nil) lies between the state dict's and 'after''s bytes */
  ck_assert_int_eq(tt_value_get(m, "extra_i8")->type, TT_V_NIL);
  tt_ckpt *x;
  TH_OK(tt_ckpt_open(data("expected_legacy.safetensors"), &x));
  const tt_value *after = tt_value_get(m, "after");
  ck_assert(after && after->type == TT_V_TENSOR);
  assert_same_bytes("after", after->u.t, tt_ckpt_get(x, "after"));
  tt_ckpt_close(c);
  tt_ckpt_close(e);

  /* an OrderedDict state dict as the FID weights file holds: protocol 2 with
   * num_batches_tracked, protocol 4 without */
  const char *files[] = {"legacy_inception.pth", "legacy_inception_nonbt.pth"};
  for (int f = 0; f < 2; f++) {
    TH_OK(tt_ckpt_open(data(files[f]), &c));
    ck_assert_int_eq(tt_ckpt_count(c), f ? 5 : 6);
    for (int i = 0; i < tt_ckpt_count(c); i++)
      assert_same_bytes(tt_ckpt_name(c, i), tt_ckpt_tensor(c, i), tt_ckpt_get(x, tt_ckpt_name(c, i)));
    tt_tensor *nbt = tt_ckpt_get(c, "Conv2d_1a_3x3.bn.num_batches_tracked");
    if (f) ck_assert_ptr_null(nbt);
    else ck_assert(nbt && nbt->dtype == TT_I64 && nbt->ndim == 0 && tt_tensor_get(nbt, 0) == 7);
    tt_ckpt_close(c);
  }
  /* convert writes the same values */
  TH_OK(tt_ckpt_convert(data("legacy_inception.pth"), tmp("legacy_inception.safetensors"), false));
  TH_OK(tt_ckpt_open(tmp("legacy_inception.safetensors"), &c));
  ck_assert_int_eq(tt_ckpt_count(c), 6);
  for (int i = 0; i < tt_ckpt_count(c); i++)
    assert_same_bytes(tt_ckpt_name(c, i), tt_ckpt_tensor(c, i), tt_ckpt_get(x, tt_ckpt_name(c, i)));
  tt_ckpt_close(c);
  tt_ckpt_close(x);
  /* gen_io.py's {'w': torch.zeros(2)} */
  TH_OK(tt_ckpt_open(data("legacy.pt"), &c));
  ck_assert(tt_ckpt_count(c) == 1 && tt_tensor_numel(tt_ckpt_get(c, "w")) == 2 && tt_tensor_get(tt_ckpt_get(c, "w"), 1) == 0);
  tt_ckpt_close(c);
}
END_TEST

/* The tar archive of the first torch.save (one 512-byte header naming sys_info). */
static void write_tar(const char *path) {
  uint8_t h[1024] = {0};
  memcpy(h, "sys_info", 8);
  memcpy(h + 257, "ustar", 5);
  spit(path, h, sizeof h);
}

START_TEST(test_refuses_tar_and_non_checkpoints) {
  write_tar(tmp("tar.pt"));
  expect_ckpt_error(tmp("tar.pt"), "a tar archive");
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "re-save"));
  spit(tmp("empty.ckpt"), "", 0);
  expect_ckpt_error(tmp("empty.ckpt"), "not a checkpoint");
  spit(tmp("text.ckpt"), "hello world, this is text", 25);
  expect_ckpt_error(tmp("text.ckpt"), "not a checkpoint");
  const char *lfs = "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n";
  spit(tmp("lfs.ckpt"), lfs, strlen(lfs));
  expect_ckpt_error(tmp("lfs.ckpt"), "git lfs");
  spit(tmp("page.ckpt"), "<!DOCTYPE html><html>", 21);
  expect_ckpt_error(tmp("page.ckpt"), "HTML");
  expect_ckpt_error(tmp("does_not_exist.ckpt"), "cannot open");
  expect_ckpt_error(tmpdir, "not a regular file");
}
END_TEST

/* ---- corrupt and hostile files ---- */

START_TEST(test_truncated_ckpt) {
  size_t n;
  uint8_t *b = slurp(fix("vqgan.ckpt"), &n);
  size_t cuts[] = {n / 2, 1, 4, 21, 22, 100, n / 3, n - 1, n - 22, n - 23, n - 5000, n - 100000};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
    spit(tmp("cut.ckpt"), b, cuts[i]);
    tt_ckpt *c = NULL;
    ck_assert_msg(tt_ckpt_open(tmp("cut.ckpt"), &c) != TT_OK, "a cut at %zu of %zu opened", cuts[i], n);
    ck_assert_msg(strstr(tt_error_message(), "cut.ckpt") != NULL, "message '%s' lacks the file", tt_error_message());
  }
  spit(tmp("half.ckpt"), b, n / 2);
  tt_ckpt *half = NULL;
  ck_assert_int_ne(tt_ckpt_open(tmp("half.ckpt"), &half), TT_OK);
  printf("vqgan.ckpt cut in half: %s\n", tt_error_message());
  free(b);
  /* many cuts of the smaller gpt.ckpt, shrinking one copy in place */
  b = slurp(fix("gpt.ckpt"), &n);
  spit(tmp("shrink.ckpt"), b, n);
  int tried = 0;
  for (size_t cut = n - 1; cut > 0; cut = cut > 4096 ? cut - 1999 - (cut % 7) : cut / 2, tried++) {
    ck_assert(truncate(tmp("shrink.ckpt"), (off_t)cut) == 0);
    tt_ckpt *c = NULL;
    ck_assert_msg(tt_ckpt_open(tmp("shrink.ckpt"), &c) != TT_OK, "gpt.ckpt cut at %zu opened", cut);
    ck_assert(tt_error_message()[0] != 0);
  }
  /* the last 64 KiB, where the directory lives, byte by byte */
  spit(tmp("shrink.ckpt"), b, n);
  for (size_t cut = n - 1; cut > n - 65536 && cut > 0; cut -= 1, tried++) {
    ck_assert(truncate(tmp("shrink.ckpt"), (off_t)cut) == 0);
    tt_ckpt *c = NULL;
    ck_assert_msg(tt_ckpt_open(tmp("shrink.ckpt"), &c) != TT_OK, "gpt.ckpt cut at %zu opened", cut);
  }
  printf("truncations tried: %d, all refused\n", tried);
  free(b);
}
END_TEST

START_TEST(test_corrupted_bytes_never_crash) {
  size_t n;
  uint8_t *orig = slurp(fix("gpt.ckpt"), &n);
  uint8_t *b = malloc(n);
  uint64_t r = 88172645463325252ull;
  int ok = 0, refused = 0;
  for (int it = 0; it < 600; it++) {
    memcpy(b, orig, n);
    int flips = 1 + it % 4;
    for (int k = 0; k < flips; k++) {
      r ^= r << 13; r ^= r >> 7; r ^= r << 17;
      /* the pickle sits at the start, the directory at the end */
      size_t pos = (it % 2 == 0) ? (size_t)(r % 6000) : n - 1 - (size_t)(r % 60000);
      b[pos] = (uint8_t)(r >> 32);
    }
    spit(tmp("flip.ckpt"), b, n);
    tt_ckpt *c = NULL;
    if (tt_ckpt_open(tmp("flip.ckpt"), &c) == TT_OK) {
      ok++;
      for (int i = 0; i < tt_ckpt_count(c); i++) (void)tt_tensor_get(tt_ckpt_tensor(c, i), 0);
      tt_ckpt_close(c);
    } else {
      refused++;
      ck_assert(tt_error_message()[0] != 0);
    }
  }
  printf("corrupted gpt.ckpt: %d opened (harmless bytes), %d refused, no crash\n", ok, refused);
  ck_assert(refused > 0);
  free(b);
  free(orig);
}
END_TEST

START_TEST(test_compressed_entries) {
  tensor_spec t = {.numel = 4, .entry_floats = 4, .ndim = 1, .size = {4}, .stride = {1}};
  write_tensor_ckpt(tmp("ok.ckpt"), &t);
  tt_ckpt *c;
  TH_OK(tt_ckpt_open(tmp("ok.ckpt"), &c));
  ck_assert(tt_f32(tt_ckpt_get(c, "w"))[3] == 3.0f);
  ck_assert_int_eq(tt_value_get(tt_ckpt_meta(c), "global_step")->u.i, 5);
  tt_ckpt_close(c);
  t.pkl_method = 8;
  write_tensor_ckpt(tmp("deflated_pkl.ckpt"), &t);
  expect_ckpt_error(tmp("deflated_pkl.ckpt"), "zip entry 'arch/data.pkl' is compressed (method 8, deflate)");
  t.pkl_method = 0;
  t.data_method = 8;
  write_tensor_ckpt(tmp("deflated_data.ckpt"), &t);
  expect_ckpt_error(tmp("deflated_data.ckpt"), "'arch/data/0' is compressed");
}
END_TEST

static void hostile_global(const char *mod, const char *name, bool stack_global, const char *want) {
  pb p = {.n = 0};
  pb_op(&p, 0x80); pb_op(&p, stack_global ? 4 : 2);
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
  pb_op(&p, '.');
  write_zip_with_pickle(tmp("hostile.ckpt"), &p, NULL, 0, 0, 0, false);
  expect_ckpt_error(tmp("hostile.ckpt"), want);
  ck_assert_msg(access(tmp("pwned"), F_OK) != 0, "the payload ran");
}

START_TEST(test_pickle_never_calls_unknown_globals) {
  hostile_global("os", "system", false, "refusing to call os.system from the pickle in");
  printf("os.system pickle: %s\n", tt_error_message());
  hostile_global("posix", "system", false, "refusing to call posix.system");
  hostile_global("nt", "system", false, "refusing to call nt.system");
  hostile_global("subprocess", "Popen", true, "refusing to call subprocess.Popen");
  hostile_global("builtins", "eval", true, "refusing to call builtins.eval");
  hostile_global("__builtin__", "exec", false, "refusing to call builtins.exec");
  hostile_global("builtins", "getattr", false, "refusing to call builtins.getattr");
  hostile_global("builtins", "__import__", false, "refusing to call builtins.__import__");
  hostile_global("builtins", "open", false, "refusing to call builtins.open");
  hostile_global("sys", "exit", false, "refusing to call sys.exit");
  hostile_global("os.path", "join", false, "refusing to call os.path.join");
  hostile_global("torch.storage", "_load_from_bytes", false, "nested torch.save");
  /* an unknown class is an inert value, but only for a caller who accepts a file
   * that torch.load would run code from (check_hostile.c tests the scanner) */
  pb p = {.n = 0};
  pb_op(&p, 0x80); pb_op(&p, 2);
  pb_op(&p, '}');
  pb_str(&p, "thing");
  pb_global(&p, "mylib.callbacks", "Thing"); pb_str(&p, "arg"); pb_op(&p, 0x85); pb_op(&p, 'R');
  pb_op(&p, '}'); pb_op(&p, 'b');   /* BUILD with a state dict */
  pb_op(&p, 's');
  pb_str(&p, "n"); pb_int(&p, -7); pb_op(&p, 's');
  pb_op(&p, '.');
  write_zip_with_pickle(tmp("benign.ckpt"), &p, NULL, 0, 0, 0, false);
  tt_ckpt *c;
  expect_ckpt_error(tmp("benign.ckpt"), "references mylib.callbacks.Thing");
  TH_OK(tt_ckpt_open_with(tmp("benign.ckpt"), &(tt_ckpt_options){.allow_unsafe_globals = true}, &c));
  ck_assert_int_eq(tt_value_get(tt_ckpt_meta(c), "thing")->type, TT_V_NIL);
  ck_assert_int_eq(tt_value_get(tt_ckpt_meta(c), "n")->u.i, -7);
  tt_ckpt_close(c);
  /* malformed pickles */
  static const struct { const char *bytes; size_t n; const char *want; } bad[] = {
      {"\x80\x02}X\x05\x00\x00\x00" "ab", 10, "truncated"},
      {"\x80\x02.", 3, "stack underflow"},
      {"\x80\x02h\x07.", 5, "memo key 7"},
      {"\x80\x02(((", 5, "no STOP"},
      {"\x80\x02\xff.", 4, "unknown opcode 0xff"},
      {"\x80\x02K\x01}a.", 6, "not a container"},
      {"\x80\x02]}a.", 6, "holds a list, expected a dict"},
      {"\x80\x02(K\x01K\x02K\x03" "d.", 10, "odd number"},
      {"\x80\x02\x8a\x10", 4, "truncated"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    pb q = {.n = 0};
    pb_raw(&q, bad[i].bytes, bad[i].n);
    write_zip_with_pickle(tmp("bad_pickle.ckpt"), &q, NULL, 0, 0, 0, false);
    expect_ckpt_error(tmp("bad_pickle.ckpt"), bad[i].want);
  }
}
END_TEST

START_TEST(test_storage_outside_entry_or_file) {
  /* the pickle claims more elements than the entry holds */
  tensor_spec t = {.numel = 1000, .entry_floats = 4, .ndim = 1, .size = {4}, .stride = {1}};
  write_tensor_ckpt(tmp("numel.ckpt"), &t);
  expect_ckpt_error(tmp("numel.ckpt"), "claims 1000 elements");
  /* a view past the storage: offset + (size - 1) * stride >= numel */
  tensor_spec views[] = {
      {.numel = 4, .entry_floats = 4, .offset = 1, .ndim = 1, .size = {4}, .stride = {1}},
      {.numel = 4, .entry_floats = 4, .ndim = 1, .size = {3}, .stride = {2}},
      {.numel = 4, .entry_floats = 4, .offset = -1, .ndim = 1, .size = {2}, .stride = {1}},
      {.numel = 4, .entry_floats = 4, .ndim = 2, .size = {1LL << 20, 1LL << 20}, .stride = {1LL << 20, 1}},
      {.numel = 4, .entry_floats = 4, .ndim = 2, .size = {2, 2}, .stride = {1LL << 62, 1LL << 62}},   /* span overflows */
      {.numel = 4, .entry_floats = 4, .ndim = 1, .size = {2}, .stride = {-1}},
  };
  for (size_t i = 0; i < sizeof views / sizeof views[0]; i++) {
    write_tensor_ckpt(tmp("view.ckpt"), &views[i]);
    expect_ckpt_error(tmp("view.ckpt"), "reaches outside its storage");
  }
  /* an unknown storage class in the state dict */
  tensor_spec sc = {.numel = 4, .entry_floats = 4, .ndim = 1, .size = {4}, .stride = {1},
                    .storage_class = "ComplexFloatStorage"};
  write_tensor_ckpt(tmp("complex.ckpt"), &sc);
  expect_ckpt_error(tmp("complex.ckpt"), "torch.ComplexFloatStorage is not supported");

  /* the directory says an entry is longer than the file */
  pb p = {.n = 0};
  build_pickle(&p, &(tensor_spec){.numel = 4, .ndim = 1, .size = {4}, .stride = {1}});
  zb z = {0};
  zb_add(&z, "arch/data.pkl", p.b, p.n, 0);
  float fl[4] = {1, 2, 3, 4};
  zb_add(&z, "arch/data/0", fl, sizeof fl, 0);
  zb_finish(&z, false, 0, 1 << 20);
  spit(tmp("long_entry.ckpt"), z.b, z.n);
  expect_ckpt_error(tmp("long_entry.ckpt"), "reaches past the end of the file");
  free(z.b);
  /* a local header offset outside the file */
  memset(&z, 0, sizeof z);
  zb_add(&z, "arch/data.pkl", p.b, p.n, 0);
  zb_add(&z, "arch/data/0", fl, sizeof fl, 0);
  z.e[1].off = 0x7ffffff0;
  zb_finish(&z, false, 0, 0);
  spit(tmp("far_header.ckpt"), z.b, z.n);
  expect_ckpt_error(tmp("far_header.ckpt"), "points outside the file");
  free(z.b);
  /* a storage entry missing from the archive */
  write_zip_with_pickle(tmp("no_storage.ckpt"), &p, NULL, 0, 0, 0, false);
  expect_ckpt_error(tmp("no_storage.ckpt"), "no entry 'arch/data/0'");
}
END_TEST

START_TEST(test_zip64) {
  tensor_spec t = {.numel = 6, .entry_floats = 6, .offset = 2, .ndim = 2, .size = {2, 2}, .stride = {1, 2},
                   .zip64 = true};
  write_tensor_ckpt(tmp("zip64.ckpt"), &t);
  tt_ckpt *c;
  TH_OK(tt_ckpt_open(tmp("zip64.ckpt"), &c));
  tt_tensor *w = tt_ckpt_get(c, "w");
  /* [2, 2] strides (1, 2) from element 2: [[2, 4], [3, 5]] */
  ck_assert(tt_tensor_get(w, 0) == 2 && tt_tensor_get(w, 1) == 4 && tt_tensor_get(w, 2) == 3 &&
            tt_tensor_get(w, 3) == 5);
  tt_ckpt_close(c);

  /* a storage beyond 4 GiB, as in training checkpoints with optimizer moments (sparse file) */
  pb p = {.n = 0};
  build_pickle(&p, &(tensor_spec){.numel = 4, .ndim = 1, .size = {4}, .stride = {1}});
  zb head = {0};
  zb_add(&head, "arch/data.pkl", p.b, p.n, 0);
  uint64_t far = (9ull << 29) - 17;   /* ~4.5 GiB, deliberately unaligned */
  zb tail = {0};
  float fl[4] = {10, 20, 30, 40};
  zb_add(&tail, "arch/data/0", fl, sizeof fl, 0);
  tail.e[0].off += far;
  tail.e[1] = head.e[0];
  tail.ne = 2;
  /* the tail's central directory lists both entries at their absolute offsets */
  zb_finish(&tail, true, far, 0);
  int fd = open(tmp("big.ckpt"), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  ck_assert(fd >= 0);
  bool sparse_ok = pwrite(fd, head.b, head.n, 0) == (ssize_t)head.n &&
                   pwrite(fd, tail.b, tail.n, (off_t)far) == (ssize_t)tail.n;
  close(fd);
  if (!sparse_ok) {
    printf("skipping the >4 GiB case: this filesystem refused a sparse file (%s)\n", strerror(errno));
  } else {
    long before = rss_kb();
    TH_OK(tt_ckpt_open(tmp("big.ckpt"), &c));
    w = tt_ckpt_get(c, "w");
    ck_assert(tt_f32(w)[0] == 10 && tt_f32(w)[3] == 40);
    printf("4.5 GiB sparse checkpoint: storage at offset %llu read, RSS +%ld kB\n",
           (unsigned long long)(far + 64), rss_kb() - before);
    tt_ckpt_close(c);
  }
  unlink(tmp("big.ckpt"));
  free(head.b);
  free(tail.b);
}
END_TEST

/* ---- safetensors ---- */

static tt_tensor *filled(tt_dtype dt, int ndim, const int64_t *shape, unsigned seed) {
  tt_tensor *t = tt_tensor_new(dt, ndim, shape, TT_CPU);
  uint8_t *p = tt_tensor_data(t);
  for (size_t i = 0; i < tt_tensor_nbytes(t); i++) p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 3));
  return t;
}

START_TEST(test_safetensors_roundtrip) {
  tt_tensor *base = th_randn(3, TT_DIMS(4, 5), 1.0f);
  tt_tensor *ts[] = {
      tt_tensor_view_of(base, TT_DIMS(5, 4), (int64_t[]){1, 5}, 0),   /* non-contiguous */
      filled(TT_F64, TT_DIMS(3), 1), filled(TT_F16, TT_DIMS(2, 3), 2), filled(TT_BF16, TT_DIMS(7), 3),
      filled(TT_I64, TT_DIMS(2, 2), 4), filled(TT_I32, TT_DIMS(3, 1), 5), filled(TT_U8, TT_DIMS(5), 6),
      tt_scalar(2.5, TT_CPU), tt_zeros(TT_F32, TT_DIMS(0, 4), TT_CPU),
  };
  const char *names[] = {"z.transposed", "f64", "f16", "bf16", "i64", "i32", "u8 with \"quotes\"", "scalar", "empty"};
  int n = (int)(sizeof ts / sizeof ts[0]);
  tt_value meta = tt_value_map(), v = tt_value_str("pt");
  TH_OK(tt_value_set(&meta, "format", &v));
  v = tt_value_int(42);
  TH_OK(tt_value_set(&meta, "step", &v));
  const char *p = tmp("round.safetensors");
  TH_OK(tt_safetensors_save(p, n, names, ts, &meta));
  tt_ckpt *c;
  TH_OK(tt_ckpt_open(p, &c));
  ck_assert_int_eq(tt_ckpt_count(c), n);
  for (int i = 0; i < n; i++) assert_same_bytes(names[i], tt_ckpt_get(c, names[i]), ts[i]);
  const char *s;
  TH_OK(tt_cfg_str(tt_ckpt_meta(c), "format", &s));
  ck_assert_str_eq(s, "pt");
  TH_OK(tt_cfg_str(tt_ckpt_meta(c), "step", &s));
  ck_assert_str_eq(s, "42");
  /* data aligned to each element size, header sorted by name and padded to 8 */
  for (int i = 0; i < n; i++) {
    tt_tensor *t = tt_ckpt_tensor(c, i);
    ck_assert_msg(((uintptr_t)tt_tensor_data(t)) % tt_dtype_size(t->dtype) == 0, "%s misaligned", tt_ckpt_name(c, i));
    ck_assert(t->storage->flags & TT_STORAGE_MMAP);
  }
  tt_ckpt_close(c);
  size_t len;
  uint8_t *raw = slurp(p, &len);
  uint64_t hl;
  memcpy(&hl, raw, 8);
  ck_assert_int_eq(hl % 8, 0);
  const char *hdr = (const char *)raw + 8;
  const char *sorted[] = {"\"bf16\"", "\"empty\"", "\"f16\"", "\"f64\"", "\"i32\"", "\"i64\"", "\"scalar\"",
                          "\"u8 with \\\"quotes\\\"\"", "\"z.transposed\""};
  const char *prev = hdr;
  for (size_t i = 0; i < sizeof sorted / sizeof sorted[0]; i++) {
    const char *at = strstr(hdr, sorted[i]);
    ck_assert_msg(at && at > prev, "header not sorted by name at %s", sorted[i]);
    prev = at;
  }
  ck_assert(strncmp(hdr, "{\"__metadata__\":", 16) == 0);
  free(raw);

  /* refused inputs leave the previous file intact */
  const char *dup[] = {"a", "a"};
  tt_tensor *two[] = {ts[1], ts[2]};
  ck_assert_int_ne(tt_safetensors_save(p, 2, dup, two, NULL), TT_OK);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "given twice"));
  tt_value bad = tt_value_map(), l = tt_value_list();
  TH_OK(tt_value_set(&bad, "x", &l));
  ck_assert_int_ne(tt_safetensors_save(p, 1, names, ts, &bad), TT_OK);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "metadata 'x'"));
  TH_OK(tt_ckpt_open(p, &c));
  ck_assert_int_eq(tt_ckpt_count(c), n);
  tt_ckpt_close(c);
  tt_value_clear(&bad);
  /* metadata only, and nothing at all */
  TH_OK(tt_safetensors_save(tmp("meta_only.safetensors"), 0, NULL, NULL, &meta));
  TH_OK(tt_ckpt_open(tmp("meta_only.safetensors"), &c));
  ck_assert(tt_ckpt_count(c) == 0 && tt_value_len(tt_ckpt_meta(c)) == 2);
  tt_ckpt_close(c);
  TH_OK(tt_safetensors_save(tmp("nothing.safetensors"), 0, NULL, NULL, NULL));
  TH_OK(tt_ckpt_open(tmp("nothing.safetensors"), &c));
  ck_assert(tt_ckpt_count(c) == 0 && tt_value_len(tt_ckpt_meta(c)) == 0);
  tt_ckpt_close(c);
  tt_value_clear(&meta);
  for (int i = 0; i < n; i++) tt_tensor_unref(ts[i]);
  tt_tensor_unref(base);
}
END_TEST

static void write_st(const char *path, const char *json, size_t data_bytes, int64_t hlen_delta) {
  size_t jl = strlen(json);
  uint64_t hl = (uint64_t)((int64_t)jl + hlen_delta);
  uint8_t *b = calloc(1, 8 + jl + data_bytes + 1);
  memcpy(b, &hl, 8);
  memcpy(b + 8, json, jl);
  spit(path, b, 8 + jl + data_bytes);
  free(b);
}

START_TEST(test_safetensors_bad) {
  const char *p = tmp("bad.safetensors");
  struct { const char *json; size_t data; int64_t delta; const char *want; } cases[] = {
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, NULL},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, 0, "reach past the data"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 4000, "exceeds the file size"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, 0, "needs 12 bytes"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, 0, "overlap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, 0, "leave a gap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, 0, "cover 4 data bytes"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, 0, "bad data_offsets"},
      {"{\"a\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, 0, "dtype I16 is not supported"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, 0, "not a list of sizes"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},}", 8, 0, "bad JSON"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"a\":{}}", 8, 0, "duplicate key"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", 8, 0, "trailing characters"},
      {"{\"__metadata__\":{\"k\":1}}", 0, 0, "is not a string"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}}", 8, 0, "impossible shape"},
      {"{\"a\":\"\\ud800\"}", 0, 0, "unpaired surrogate"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    write_st(p, cases[i].json, cases[i].data, cases[i].delta);
    if (!cases[i].want) {
      tt_ckpt *c;
      TH_OK(tt_ckpt_open(p, &c));
      tt_ckpt_close(c);
    } else {
      expect_ckpt_error(p, cases[i].want);
    }
  }
  /* every truncation of a valid file is refused */
  size_t n;
  uint8_t *b = slurp(data("expected.safetensors"), &n);
  for (size_t cut = 0; cut < n; cut++) {
    spit(tmp("cut.safetensors"), b, cut);
    tt_ckpt *c = NULL;
    ck_assert_msg(tt_ckpt_open(tmp("cut.safetensors"), &c) != TT_OK, "cut at %zu opened", cut);
  }
  free(b);
}
END_TEST

/* ---- npy ---- */

START_TEST(test_npy_roundtrip) {
  tt_tensor *base = th_randn(9, TT_DIMS(3, 4), 1.0f);
  tt_tensor *ts[] = {
      filled(TT_F32, TT_DIMS(2, 3, 4), 1), filled(TT_F64, TT_DIMS(5), 2), filled(TT_I64, TT_DIMS(3, 1), 3),
      filled(TT_I32, TT_DIMS(1, 1, 2, 2), 4), filled(TT_U8, TT_DIMS(7), 5), filled(TT_F16, TT_DIMS(2, 2), 6),
      tt_scalar(-1.25, TT_CPU), tt_zeros(TT_F32, TT_DIMS(0), TT_CPU),
      tt_tensor_view_of(base, TT_DIMS(4, 3), (int64_t[]){1, 4}, 0),
  };
  for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
    const char *p = tmp("round.npy");
    TH_OK(tt_npy_save(p, ts[i]));
    tt_tensor *back;
    TH_OK(tt_npy_load(p, &back));
    assert_same_bytes("npy round trip", back, ts[i]);
    size_t n;
    uint8_t *raw = slurp(p, &n);
    ck_assert_int_eq((10 + (raw[8] | raw[9] << 8)) % 64, 0);
    free(raw);
    tt_tensor_unref(back);
    tt_tensor_unref(ts[i]);
  }
  tt_tensor_unref(base);
}
END_TEST

static void write_npy(const char *path, int major, const char *dict, size_t data_bytes) {
  uint8_t b[512] = "\x93NUMPY";
  size_t hl = strlen(dict), pre = major == 1 ? 10 : 12;
  b[6] = (uint8_t)major;
  b[8] = (uint8_t)hl;
  b[9] = 0;
  if (major != 1) b[10] = b[11] = 0;
  memcpy(b + pre, dict, hl);
  memset(b + pre + hl, 0x3f, data_bytes);
  spit(path, b, pre + hl + data_bytes);
}

START_TEST(test_npy_bad) {
  const char *p = tmp("bad.npy");
  struct { int major; const char *dict; size_t data; const char *want; } cases[] = {
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 24, NULL},
      {2, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }\n", 24, NULL},
      {3, "{'descr': '|b1', 'fortran_order': False, 'shape': (), }\n", 1, NULL},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 23, "truncated"},
      {1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n", 24, "Fortran-order"},
      {1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", 8, "big-endian"},
      {1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }\n", 16, "'<c8' is not supported"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }\n", 8, "bad .npy header"},
      {1, "{'descr': '<f4', 'shape': (2,), }\n", 8, "missing"},
      {1, "{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }\n", 8, "bad .npy header"},
      {1, "garbage", 8, "bad .npy header"},
      {4, "{}", 0, "version 4.0"},
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 8), }\n", 8, "impossibly large"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    write_npy(p, cases[i].major, cases[i].dict, cases[i].data);
    tt_tensor *t = NULL;
    tt_status s = tt_npy_load(p, &t);
    if (!cases[i].want) {
      ck_assert_msg(s == TT_OK, "case %zu: %s", i, tt_error_message());
      tt_tensor_unref(t);
      continue;
    }
    ck_assert_msg(s != TT_OK && !t, "case %zu loaded", i);
    ck_assert_msg(strstr(tt_error_message(), cases[i].want) && strstr(tt_error_message(), "bad.npy"),
                  "case %zu: '%s' lacks '%s'", i, tt_error_message(), cases[i].want);
  }
  spit(p, "\x93NUM", 4);
  ck_assert_int_ne(tt_npy_load(p, &(tt_tensor *){NULL}), TT_OK);
  ck_assert_int_ne(tt_npy_load(tmp("nope.npy"), &(tt_tensor *){NULL}), TT_OK);
}
END_TEST

/* ---- YAML ---- */

START_TEST(test_yaml_scalars) {
  /* expected values are what PyYAML 6 SafeLoader returns for `k: <text>` */
  struct { const char *text; tt_vtype type; double num; const char *str; } cases[] = {
      {"4.5e-6", TT_V_NUM, 4.5e-6, NULL}, {"5e-6", TT_V_STR, 0, "5e-6"}, {"1e-3", TT_V_STR, 0, "1e-3"},
      {"1.0e5", TT_V_STR, 0, "1.0e5"}, {"1.0e+5", TT_V_NUM, 1e5, NULL}, {"1.", TT_V_NUM, 1, NULL},
      {".5", TT_V_NUM, 0.5, NULL}, {"-.5", TT_V_STR, 0, "-.5"}, {"+1.5", TT_V_NUM, 1.5, NULL},
      {"0x1F", TT_V_INT, 31, NULL}, {"-0x1f", TT_V_INT, -31, NULL}, {"0o17", TT_V_STR, 0, "0o17"},
      {"017", TT_V_INT, 15, NULL}, {"09", TT_V_STR, 0, "09"}, {"0b101", TT_V_INT, 5, NULL},
      {"1_000", TT_V_INT, 1000, NULL}, {"1__2", TT_V_INT, 12, NULL}, {"_12", TT_V_STR, 0, "_12"},
      {"1:30", TT_V_INT, 90, NULL}, {"-1:30", TT_V_INT, -90, NULL}, {"190:20:30", TT_V_INT, 685230, NULL},
      {"1:30.5", TT_V_NUM, 90.5, NULL}, {"1:60", TT_V_STR, 0, "1:60"}, {"1.5_0", TT_V_NUM, 1.5, NULL},
      {"yes", TT_V_BOOL, 1, NULL}, {"No", TT_V_BOOL, 0, NULL}, {"ON", TT_V_BOOL, 1, NULL},
      {"off", TT_V_BOOL, 0, NULL}, {"y", TT_V_STR, 0, "y"}, {"tRue", TT_V_STR, 0, "tRue"},
      {"TRUE", TT_V_BOOL, 1, NULL}, {"null", TT_V_NIL, 0, NULL}, {"~", TT_V_NIL, 0, NULL},
      {"", TT_V_NIL, 0, NULL}, {"nULL", TT_V_STR, 0, "nULL"}, {".inf", TT_V_NUM, INFINITY, NULL},
      {"-.Inf", TT_V_NUM, -INFINITY, NULL}, {"-.nan", TT_V_STR, 0, "-.nan"}, {"-0", TT_V_INT, 0, NULL},
      {"+12", TT_V_INT, 12, NULL}, {"0.1.2", TT_V_STR, 0, "0.1.2"}, {"0755", TT_V_INT, 493, NULL},
      {"0x", TT_V_STR, 0, "0x"}, {"-2.5e-3", TT_V_NUM, -2.5e-3, NULL}, {"\"123\"", TT_V_STR, 0, "123"},
      {"'true'", TT_V_STR, 0, "true"}, {"!!str 12", TT_V_STR, 0, "12"}, {"!!float 1e5", TT_V_NUM, 1e5, NULL},
      {"!!int \"7\"", TT_V_INT, 7, NULL}, {"2020-11-09", TT_V_STR, 0, "2020-11-09"},
      {"taming.models.vqgan.VQModel", TT_V_STR, 0, "taming.models.vqgan.VQModel"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char doc[128];
    snprintf(doc, sizeof doc, "k: %s\n", cases[i].text);
    tt_value v;
    TH_OK(tt_yaml_parse(doc, strlen(doc), "case.yaml", &v));
    const tt_value *k = tt_value_get(&v, "k");
    ck_assert_msg(k && k->type == cases[i].type, "'%s': got %s, expected %s", cases[i].text,
                  k ? tt_vtype_name(k->type) : "nothing", tt_vtype_name(cases[i].type));
    if (k->type == TT_V_INT) ck_assert_msg(k->u.i == (int64_t)cases[i].num, "'%s': %lld", cases[i].text, (long long)k->u.i);
    if (k->type == TT_V_NUM) ck_assert_msg(k->u.n == cases[i].num, "'%s': %.17g", cases[i].text, k->u.n);
    if (k->type == TT_V_BOOL) ck_assert_msg(k->u.b == (cases[i].num != 0), "'%s'", cases[i].text);
    if (k->type == TT_V_STR) ck_assert_str_eq(k->u.s, cases[i].str);
    tt_value_clear(&v);
  }
  /* a string that reads as a number where a number is asked for */
  tt_value v;
  TH_OK(tt_yaml_parse("lr: 5e-6\n", 9, "lr.yaml", &v));
  double lr;
  TH_OK(tt_cfg_num(&v, "lr", &lr));
  ck_assert(lr == 5e-6);
  tt_value_clear(&v);
}
END_TEST

START_TEST(test_yaml_structure) {
  const char *doc =
      "base: &b {x: 1, y: [1, 2]}\n"
      "other: &o\n  y: 3\n  z: 4\n"
      "use:\n  <<: *b\n  x: 10\n"
      "multi:\n  <<: [*o, *b]\n  w: 0\n"
      "ref: *b\n"
      "list:\n  - a\n  - {k: v}\n  -\n"
      "1: one\n";
  tt_value v;
  TH_OK(tt_yaml_parse(doc, strlen(doc), "s.yaml", &v));
  const tt_value *use = tt_value_get(&v, "use");
  ck_assert_int_eq(tt_value_len(use), 2);
  ck_assert_str_eq(use->u.c.keys[0], "x");   /* merged keys first, overridden in place */
  ck_assert_int_eq(tt_value_get(use, "x")->u.i, 10);
  ck_assert_int_eq(tt_value_len(tt_value_get(use, "y")), 2);
  const tt_value *multi = tt_value_get(&v, "multi");
  ck_assert_int_eq(tt_value_get(multi, "y")->u.i, 3);   /* the first mapping of the list wins */
  ck_assert_int_eq(tt_value_get(multi, "x")->u.i, 1);
  ck_assert_int_eq(tt_value_get(multi, "z")->u.i, 4);
  ck_assert_int_eq(tt_value_get(tt_value_get(&v, "ref"), "x")->u.i, 1);
  const tt_value *l = tt_value_get(&v, "list");
  ck_assert_int_eq(tt_value_len(l), 3);
  ck_assert_int_eq(tt_value_at(l, 2)->type, TT_V_NIL);
  ck_assert_str_eq(tt_value_get(&v, "1")->u.s, "one");
  tt_value_clear(&v);
  TH_OK(tt_yaml_parse("", 0, "empty.yaml", &v));
  ck_assert_int_eq(v.type, TT_V_NIL);
}
END_TEST

START_TEST(test_yaml_errors) {
  struct { const char *doc; const char *want; } cases[] = {
      {"model:\n  params: [1, 2\n  other: 3\n", "bad.yaml:3:"},
      {"a: 1\n b: 2\n", "bad.yaml:2:"},
      {"a: *nope\n", "bad.yaml:1:4: alias '*nope'"},
      {"a: !!python/object:os.system x\n", "unsupported tag"},
      {"a: !!int abc\n", "does not match its tag"},
      {"a: 1\n---\nb: 2\n", "single document"},
      {"a: &x [*x]\n", "not yet finished"},
      {"? [1, 2]\n: v\n", "only scalar mapping keys"},
      {"a:\n  <<: 3\n", "merge key"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    tt_value v;
    ck_assert_msg(tt_yaml_parse(cases[i].doc, strlen(cases[i].doc), "bad.yaml", &v) != TT_OK, "case %zu parsed", i);
    ck_assert_msg(strstr(tt_error_message(), cases[i].want), "case %zu: '%s' lacks '%s'", i, tt_error_message(),
                  cases[i].want);
    ck_assert_int_eq(v.type, TT_V_NIL);
  }
  tt_value v;
  ck_assert_int_ne(tt_yaml_parse("a: 1\n b: 2\n", 11, "bad.yaml", &v), TT_OK);
  printf("YAML syntax error: %s\n", tt_error_message());
  /* billion laughs: aliases that expand exponentially are cut off */
  char doc[2048] = "a0: &a0 [x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 12; i++) {
    char line[128];
    snprintf(line, sizeof line, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i - 1, i - 1,
             i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
    strcat(doc, line);
  }
  ck_assert_int_ne(tt_yaml_parse(doc, strlen(doc), "laughs.yaml", &v), TT_OK);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "values"));
  ck_assert_int_ne(tt_yaml_load(tmp("none.yaml"), &v), TT_OK);
}
END_TEST

/* ---- command-line helpers ---- */

START_TEST(test_convert_and_info) {
  const char *out = tmp("vqgan_inference.safetensors");
  TH_OK(tt_ckpt_convert(fix("vqgan.ckpt"), out, true));
  tt_ckpt *c, *ref;
  TH_OK(tt_ckpt_open(out, &c));
  TH_OK(tt_ckpt_open(fix("vqgan.safetensors"), &ref));
  ck_assert_int_eq(tt_ckpt_count(c), tt_ckpt_count(ref));
  for (int i = 0; i < tt_ckpt_count(ref); i++) {
    tt_tensor *t = tt_ckpt_get(c, tt_ckpt_name(ref, i));
    ck_assert_msg(t, "converted file lacks %s", tt_ckpt_name(ref, i));
    assert_same_bytes(tt_ckpt_name(ref, i), t, tt_ckpt_tensor(ref, i));
  }
  const char *s;
  TH_OK(tt_cfg_str(tt_ckpt_meta(c), "format", &s));
  ck_assert_str_eq(s, "pt");
  TH_OK(tt_cfg_str(tt_ckpt_meta(c), "source", &s));
  ck_assert_str_eq(s, "vqgan.ckpt");
  TH_OK(tt_cfg_str(tt_ckpt_meta(c), "global_step", &s));
  ck_assert_str_eq(s, "1");
  tt_ckpt_close(c);
  tt_ckpt_close(ref);
  TH_OK(tt_ckpt_convert(fix("vqgan.ckpt"), tmp("vqgan_full.safetensors"), false));
  TH_OK(tt_ckpt_open(tmp("vqgan_full.safetensors"), &c));
  ck_assert_int_eq(tt_ckpt_count(c), 232);
  tt_ckpt_close(c);
  write_tar(tmp("tar.pt"));
  ck_assert_int_ne(tt_ckpt_convert(tmp("tar.pt"), tmp("never.safetensors"), true), TT_OK);
  ck_assert_int_ne(access(tmp("never.safetensors"), F_OK), 0);

  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  TH_OK(tt_ckpt_open(fix("vqgan.ckpt"), &c));
  TH_OK(tt_ckpt_print_info(c, f));
  tt_ckpt_close(c);
  fclose(f);
  ck_assert_ptr_nonnull(strstr(text, "torch-zip, 232 tensors"));
  ck_assert_ptr_nonnull(strstr(text, "\nencoder.conv_in.weight f32 [32, 3, 3, 3]\n"));
  ck_assert_ptr_nonnull(strstr(text, "\nglobal_step: 1\n"));
  ck_assert_ptr_nonnull(strstr(text, "\nepoch: 3\n"));
  ck_assert_ptr_nonnull(strstr(text, "\noptimizer_states: list of 2\n"));
  free(text);
}
END_TEST

int main(void) {
  if (th_tmpdir_make("check_io", tmpdir, sizeof tmpdir) != 0) {
    perror("mkdtemp");
    return 99;
  }
  const char *env = getenv("TAMING_FIXTURES");
  char probe[1100];
  snprintf(probe, sizeof probe, "%s/tiny/vqgan.ckpt", env && *env ? env : TT_ABS_SRCDIR "/../shared/fixtures");
  bool have_fixtures = access(probe, R_OK) == 0;
  if (have_fixtures) snprintf(fixdir, sizeof fixdir, "%s/tiny", th_fixtures_or_skip("io"));
  else printf("io: fixtures absent, the fixture tests are skipped\n");

  Suite *s = suite_create("io");
  TCase *tc = tcase_create("formats");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_atomic_write);
  tcase_add_test(tc, test_torch_views_dtypes_meta);
  tcase_add_test(tc, test_legacy_format);
  tcase_add_test(tc, test_refuses_tar_and_non_checkpoints);
  tcase_add_test(tc, test_compressed_entries);
  tcase_add_test(tc, test_pickle_never_calls_unknown_globals);
  tcase_add_test(tc, test_storage_outside_entry_or_file);
  tcase_add_test(tc, test_zip64);
  tcase_add_test(tc, test_safetensors_roundtrip);
  tcase_add_test(tc, test_safetensors_bad);
  tcase_add_test(tc, test_npy_roundtrip);
  tcase_add_test(tc, test_npy_bad);
  tcase_add_test(tc, test_yaml_scalars);
  tcase_add_test(tc, test_yaml_structure);
  tcase_add_test(tc, test_yaml_errors);
  suite_add_tcase(s, tc);
  if (have_fixtures) {
    TCase *fx = tcase_create("fixtures");
    tcase_set_timeout(fx, 300);
    tcase_add_test(fx, test_fixture_vqgan);
    tcase_add_test(fx, test_fixture_gpt);
    tcase_add_test(fx, test_mapping_is_lazy_and_private);
    tcase_add_test(fx, test_fixture_npy);
    tcase_add_test(fx, test_fixture_yaml);
    tcase_add_test(fx, test_truncated_ckpt);
    tcase_add_test(fx, test_corrupted_bytes_never_crash);
    tcase_add_test(fx, test_convert_and_info);
    suite_add_tcase(s, fx);
  }
  int rc = th_run(s);
  th_tmpdir_remove(tmpdir);
  return rc;
}

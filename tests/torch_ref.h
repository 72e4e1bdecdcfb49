/* torch_ref.h — reads the PyTorch reference tensors that tests/data/gen_norm.py
 * writes to tests/data/norm/torch_ref.bin (format described there). The file is
 * committed, so a missing or corrupt file fails the test rather than skipping. */
#ifndef TAMING_TESTS_TORCH_REF_H
#define TAMING_TESTS_TORCH_REF_H

#include <stdlib.h>
#include <string.h>
#include "testhelp.h"

typedef struct {
  int n;
  char **names;
  tt_tensor **ts;
} torch_ref;

static bool torchref_read(FILE *f, void *p, size_t n) { return fread(p, 1, n, f) == n; }

static torch_ref *torchref_load(void) {
  char path[4096];
  const char *src = getenv("TT_SRCDIR");
  snprintf(path, sizeof path, "%s/tests/data/norm/torch_ref.bin", src && *src ? src : TT_ABS_SRCDIR);
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s (regenerate with tests/data/gen_norm.py)", path);
  char magic[8];
  uint32_t count = 0;
  ck_assert_msg(torchref_read(f, magic, 8) && memcmp(magic, "TTREF1\0\0", 8) == 0 && torchref_read(f, &count, 4) &&
                    count < 100000,
                "%s: not a TTREF1 file", path);
  torch_ref *r = calloc(1, sizeof *r);
  r->names = calloc(count, sizeof(char *));
  r->ts = calloc(count, sizeof(tt_tensor *));
  for (uint32_t i = 0; i < count; i++) {
    uint32_t len = 0, nd = 0;
    ck_assert_msg(torchref_read(f, &len, 4) && len < 256, "%s: bad name length in record %u", path, i);
    r->names[i] = calloc(len + 1, 1);
    ck_assert_msg(torchref_read(f, r->names[i], len) && torchref_read(f, &nd, 4) && nd <= TT_MAX_DIMS,
                  "%s: record %u truncated", path, i);
    int64_t shape[TT_MAX_DIMS];
    ck_assert_msg(torchref_read(f, shape, sizeof(int64_t) * nd), "%s: record %u truncated", path, i);
    r->ts[i] = tt_tensor_new(TT_F32, (int)nd, shape, TT_CPU);
    TH_NN(r->ts[i]);
    ck_assert_msg(torchref_read(f, tt_f32(r->ts[i]), tt_tensor_nbytes(r->ts[i])), "%s: %s truncated", path,
                  r->names[i]);
    r->n++;
  }
  fclose(f);
  return r;
}

/* A borrowed tensor; fails the test when the name is absent. */
static tt_tensor *torchref_get(const torch_ref *r, const char *name) {
  for (int i = 0; i < r->n; i++)
    if (strcmp(r->names[i], name) == 0) return r->ts[i];
  ck_abort_msg("torch_ref.bin has no tensor %s", name);
  return NULL;
}

/* A fresh leaf copy of a stored tensor that requires grad. */
static tt_tensor *torchref_leaf(const torch_ref *r, const char *name) {
  tt_tensor *t = tt_clone(torchref_get(r, name));
  TH_NN(t);
  tt_tensor_set_requires_grad(t, true);
  return t;
}

static void torchref_free(torch_ref *r) {
  for (int i = 0; i < r->n; i++) {
    free(r->names[i]);
    tt_tensor_unref(r->ts[i]);
  }
  free(r->names);
  free(r->ts);
  free(r);
}

#endif

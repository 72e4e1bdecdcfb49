/* ckptbuild.c — checkpoints built by hand for the check suites: files read
 * and written whole, a stored-zip writer laid out as torch.save writes it
 * (64-byte aligned data, optional ZIP64 records) and a pickle writer, so every
 * hostile input is made inside the test that uses it, without Python. */
#include "config.h"
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ckptbuild.h"

uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)n + 1);
  ck_assert(fread(b, 1, (size_t)n, f) == (size_t)n);
  fclose(f);
  b[n] = 0;
  *len = (size_t)n;
  return b;
}

void spit(const char *path, const void *p, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot create %s", path);
  ck_assert(fwrite(p, 1, n, f) == n);
  fclose(f);
}

long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
  if (f) fclose(f);
  return kb;
}

/* ---- building zips and pickles by hand ---- */

void zb_put(zb *z, const void *p, size_t n) {
  if (z->n + n > z->cap) {
    z->cap = (z->n + n) * 2 + 1024;
    z->b = realloc(z->b, z->cap);
  }
  memcpy(z->b + z->n, p, n);
  z->n += n;
}
void zb_u16(zb *z, unsigned v) { uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)}; zb_put(z, b, 2); }
void zb_u32(zb *z, uint32_t v) { zb_u16(z, v & 0xffff); zb_u16(z, v >> 16); }
void zb_u64(zb *z, uint64_t v) { zb_u32(z, (uint32_t)v); zb_u32(z, (uint32_t)(v >> 32)); }

/* A stored (or, with method != 0, claimed-compressed) entry, data 64-byte aligned like torch's writer. */
void zb_add(zb *z, const char *name, const void *p, size_t n, uint16_t method) {
  size_t nlen = strlen(name);
  size_t pad = (64 - (z->n + 30 + nlen + 4) % 64) % 64;
  snprintf(z->e[z->ne].name, sizeof z->e[0].name, "%s", name);
  z->e[z->ne].off = z->n;
  z->e[z->ne].size = n;
  z->e[z->ne].method = method;
  z->ne++;
  zb_u32(z, 0x04034b50); zb_u16(z, 20); zb_u16(z, 0); zb_u16(z, method); zb_u16(z, 0); zb_u16(z, 0);
  zb_u32(z, 0); zb_u32(z, (uint32_t)n); zb_u32(z, (uint32_t)n); zb_u16(z, (unsigned)nlen);
  zb_u16(z, (unsigned)(pad + 4));
  zb_put(z, name, nlen);
  zb_u16(z, 0x4246); zb_u16(z, (unsigned)pad);   /* padding extra field, as PyTorch writes it */
  for (size_t i = 0; i < pad; i++) zb_put(z, "Z", 1);
  zb_put(z, p, n);
}

/* Central directory + end records; zip64 writes every offset and size in the ZIP64 forms.
 * Entry offsets are absolute; `base` is where this buffer starts in the file.
 * `size_bump` adds to every size in the central directory (an entry running past the end). */
void zb_finish(zb *z, bool zip64, uint64_t base, uint64_t size_bump) {
  uint64_t cd = base + z->n;
  for (int i = 0; i < z->ne; i++) {
    size_t nlen = strlen(z->e[i].name);
    uint64_t sz = z->e[i].size + size_bump, off = z->e[i].off;
    zb_u32(z, 0x02014b50); zb_u16(z, 0x031e); zb_u16(z, zip64 ? 45 : 20); zb_u16(z, 0); zb_u16(z, z->e[i].method);
    zb_u16(z, 0); zb_u16(z, 0); zb_u32(z, 0);
    zb_u32(z, zip64 ? 0xFFFFFFFFu : (uint32_t)sz); zb_u32(z, zip64 ? 0xFFFFFFFFu : (uint32_t)sz);
    zb_u16(z, (unsigned)nlen); zb_u16(z, zip64 ? 28 : 0); zb_u16(z, 0); zb_u16(z, 0); zb_u16(z, 0); zb_u32(z, 0);
    zb_u32(z, zip64 ? 0xFFFFFFFFu : (uint32_t)off);
    zb_put(z, z->e[i].name, nlen);
    if (zip64) { zb_u16(z, 1); zb_u16(z, 24); zb_u64(z, sz); zb_u64(z, sz); zb_u64(z, off); }
  }
  uint64_t cd_size = base + z->n - cd;
  if (zip64) {
    uint64_t e64 = base + z->n;
    zb_u32(z, 0x06064b50); zb_u64(z, 44); zb_u16(z, 45); zb_u16(z, 45); zb_u32(z, 0); zb_u32(z, 0);
    zb_u64(z, (uint64_t)z->ne); zb_u64(z, (uint64_t)z->ne); zb_u64(z, cd_size); zb_u64(z, cd);
    zb_u32(z, 0x07064b50); zb_u32(z, 0); zb_u64(z, e64); zb_u32(z, 1);
  }
  zb_u32(z, 0x06054b50); zb_u16(z, 0); zb_u16(z, 0);
  zb_u16(z, zip64 ? 0xFFFF : (unsigned)z->ne); zb_u16(z, zip64 ? 0xFFFF : (unsigned)z->ne);
  zb_u32(z, zip64 ? 0xFFFFFFFFu : (uint32_t)cd_size); zb_u32(z, zip64 ? 0xFFFFFFFFu : (uint32_t)cd);
  zb_u16(z, 0);
}

void pb_raw(pb *p, const void *s, size_t n) { memcpy(p->b + p->n, s, n); p->n += n; }
void pb_op(pb *p, uint8_t op) { p->b[p->n++] = op; }
void pb_str(pb *p, const char *s) {   /* BINUNICODE */
  uint32_t n = (uint32_t)strlen(s);
  pb_op(p, 'X');
  pb_raw(p, &n, 4);
  pb_raw(p, s, n);
}
void pb_int(pb *p, int32_t v) { pb_op(p, 'J'); pb_raw(p, &v, 4); }
void pb_long(pb *p, int64_t v) { pb_op(p, 0x8a); pb_op(p, 8); pb_raw(p, &v, 8); }
void pb_global(pb *p, const char *mod, const char *name) {
  pb_op(p, 'c');
  pb_raw(p, mod, strlen(mod));
  pb_op(p, '\n');
  pb_raw(p, name, strlen(name));
  pb_op(p, '\n');
}

/* {'state_dict': {'w': tensor}, 'global_step': 5} as torch.save lays it out. */
void build_pickle(pb *p, const tensor_spec *t) {
  pb_op(p, 0x80); pb_op(p, 2);
  pb_op(p, '}');
  pb_str(p, "state_dict");
  pb_global(p, "collections", "OrderedDict"); pb_op(p, ')'); pb_op(p, 'R');
  pb_str(p, "w");
  pb_global(p, "torch._utils", "_rebuild_tensor_v2");
  pb_op(p, '(');
  pb_op(p, '(');
  pb_str(p, "storage"); pb_global(p, "torch", t->storage_class ? t->storage_class : "FloatStorage");
  pb_str(p, t->key ? t->key : "0"); pb_str(p, "cpu"); pb_long(p, t->numel);
  if (t->legacy_view == 1) pb_op(p, 'N');
  if (t->legacy_view == 2) {
    pb_op(p, '(');
    pb_str(p, "1"); pb_long(p, 0); pb_long(p, t->numel);
    pb_op(p, 't');
  }
  pb_op(p, 't');
  pb_op(p, 'Q');
  pb_long(p, t->offset);
  pb_op(p, '(');
  for (int i = 0; i < t->ndim; i++) pb_long(p, t->size[i]);
  pb_op(p, 't');
  pb_op(p, '(');
  for (int i = 0; i < t->ndim; i++) pb_long(p, t->stride[i]);
  pb_op(p, 't');
  pb_op(p, 0x89);
  pb_global(p, "collections", "OrderedDict"); pb_op(p, ')'); pb_op(p, 'R');
  pb_op(p, 't');
  pb_op(p, 'R');
  pb_op(p, 's');
  pb_op(p, 's');
  pb_str(p, "global_step"); pb_int(p, 5); pb_op(p, 's');
  pb_op(p, '.');
}

void write_zip_with_pickle(const char *path, const pb *p, const float *fl, size_t nfl, uint16_t pm, uint16_t dm,
                                  bool zip64) {
  zb z = {0};
  zb_add(&z, "arch/data.pkl", p->b, p->n, pm);
  if (fl) zb_add(&z, "arch/data/0", fl, nfl * sizeof(float), dm);
  zb_add(&z, "arch/version", "3\n", 2, 0);
  zb_finish(&z, zip64, 0, 0);
  spit(path, z.b, z.n);
  free(z.b);
}

void write_tensor_ckpt(const char *path, const tensor_spec *t) {
  pb p = {.n = 0};
  build_pickle(&p, t);
  float fl[64];
  for (size_t i = 0; i < t->entry_floats; i++) fl[i] = (float)i;
  write_zip_with_pickle(path, &p, fl, t->entry_floats, t->pkl_method, t->data_method, t->zip64);
}

/* ---- the legacy serialisation ---- */

void write_legacy_ckpt(const char *path, const legacy_spec *ls) {
  zb z = {0};
  /* the magic number 0x1950a86a20f9469cfc6c as LONG1 */
  static const uint8_t magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.'};
  zb_put(&z, magic, sizeof magic);
  if (ls->bad_magic == 1) z.b[z.n - 2] ^= 1;
  if (ls->bad_magic == 2) {
    z.b[z.n - 1] = 0x85;   /* TUPLE1 */
    zb_put(&z, ".", 1);
  }
  pb p = {.n = 0};
  int proto = ls->protocol ? ls->protocol : 1001;
  pb_op(&p, 0x80); pb_op(&p, 2); pb_op(&p, 'M'); pb_op(&p, (uint8_t)proto); pb_op(&p, (uint8_t)(proto >> 8));
  pb_op(&p, '.');
  zb_put(&z, p.b, p.n);
  p.n = 0;
  pb_op(&p, 0x80); pb_op(&p, 2); pb_op(&p, '}'); pb_op(&p, '(');
  pb_str(&p, "protocol_version"); pb_int(&p, proto);
  pb_str(&p, "little_endian"); pb_op(&p, ls->big_endian ? 0x89 : 0x88);
  pb_str(&p, "type_sizes"); pb_op(&p, '}'); pb_op(&p, '(');
  pb_str(&p, "short"); pb_int(&p, 2); pb_str(&p, "int"); pb_int(&p, 4); pb_str(&p, "long"); pb_int(&p, 4);
  pb_op(&p, 'u'); pb_op(&p, 'u'); pb_op(&p, '.');
  zb_put(&z, p.b, p.n);
  zb_put(&z, ls->obj->b, ls->obj->n);
  p.n = 0;
  pb_op(&p, 0x80); pb_op(&p, 2); pb_op(&p, ']'); pb_op(&p, '(');
  for (int i = 0; i < ls->nkeys; i++) pb_str(&p, ls->keys[i]);
  pb_op(&p, 'e'); pb_op(&p, '.');
  if (ls->keys_pickle) zb_put(&z, ls->keys_pickle->b, ls->keys_pickle->n);
  else zb_put(&z, p.b, p.n);
  for (int i = 0; i < ls->nkeys; i++) {
    uint8_t cb[8];
    for (int b = 0; b < 8; b++) cb[b] = (uint8_t)(ls->count[i] >> (8 * b));
    bool last = i == ls->nkeys - 1;
    zb_put(&z, cb, last && ls->count_bytes ? ls->count_bytes : 8);
    for (size_t k = 0; k < ls->nbytes[i]; k += 4) {
      float f = (float)(k / 4);
      zb_put(&z, &f, ls->nbytes[i] - k < 4 ? ls->nbytes[i] - k : 4);
    }
  }
  spit(path, z.b, z.n);
  free(z.b);
}

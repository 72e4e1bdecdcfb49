/* ckptbuild.h — hand-built checkpoints for the check suites (see ckptbuild.c). */
#ifndef TAMING_TESTS_CKPTBUILD_H
#define TAMING_TESTS_CKPTBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whole files: slurp NUL-terminates (the length excludes it); both fail the test on error. */
uint8_t *slurp(const char *path, size_t *len);
void spit(const char *path, const void *p, size_t n);
/* Resident memory of this process in kB (-1 when unknown). */
long rss_kb(void);

/* ---- a stored zip, as torch.save writes it ---- */
typedef struct zb {
  uint8_t *b;
  size_t n, cap;
  struct { char name[96]; uint64_t off, size; uint16_t method; } e[16];
  int ne;
} zb;
void zb_put(zb *z, const void *p, size_t n);
void zb_u16(zb *z, unsigned v);
void zb_u32(zb *z, uint32_t v);
void zb_u64(zb *z, uint64_t v);
/* A stored (or, with method != 0, claimed-compressed) entry, data 64-byte aligned like torch's writer. */
void zb_add(zb *z, const char *name, const void *p, size_t n, uint16_t method);
/* Central directory + end records; zip64 writes every offset and size in the ZIP64 forms.
 * Entry offsets are absolute; `base` is where this buffer starts in the file.
 * `size_bump` adds to every size in the central directory (an entry running past the end). */
void zb_finish(zb *z, bool zip64, uint64_t base, uint64_t size_bump);

/* ---- a pickle, opcode by opcode ---- */
typedef struct pb { uint8_t b[4096]; size_t n; } pb;
void pb_raw(pb *p, const void *s, size_t n);
void pb_op(pb *p, uint8_t op);
void pb_str(pb *p, const char *s);   /* BINUNICODE */
void pb_int(pb *p, int32_t v);       /* BININT */
void pb_long(pb *p, int64_t v);      /* LONG1 of 8 bytes */
void pb_global(pb *p, const char *mod, const char *name);   /* GLOBAL */

/* ---- one-tensor checkpoints ---- */
typedef struct tensor_spec {
  int64_t numel;        /* as the pickle claims it */
  size_t entry_floats;  /* floats actually stored */
  int64_t offset;
  int ndim;
  int64_t size[4], stride[4];
  uint16_t pkl_method, data_method;
  bool zip64;
  const char *storage_class;
  const char *key;      /* the storage key, "0" when NULL */
  /* the persistent id's view metadata, as legacy files carry it: 0 none (zip
   * files), 1 None, 2 a storage view (key, offset, size) */
  int legacy_view;
} tensor_spec;
/* {'state_dict': {'w': tensor}, 'global_step': 5} as torch.save lays it out. */
void build_pickle(pb *p, const tensor_spec *t);
/* arch/data.pkl (method pm), arch/data/0 holding fl (method dm) when fl, arch/version. */
void write_zip_with_pickle(const char *path, const pb *p, const float *fl, size_t nfl, uint16_t pm, uint16_t dm,
                           bool zip64);
/* build_pickle + write_zip_with_pickle with entry_floats floats 0, 1, 2, ... */
void write_tensor_ckpt(const char *path, const tensor_spec *t);

/* ---- a legacy (PyTorch < 1.6) torch.save file ----
 * The magic, protocol version and sys_info pickles, the object pickle, the
 * list of storage keys, then per key its element count (int64) and bytes. */
typedef struct legacy_spec {
  const pb *obj;          /* the object pickle */
  int nkeys;
  const char *keys[4];    /* the list of storage keys */
  const pb *keys_pickle;  /* written instead of the list's pickle when not NULL */
  uint64_t count[4];      /* the element count written before each key's bytes */
  size_t nbytes[4];       /* the bytes actually written after it (floats 0, 1, 2, ...) */
  size_t count_bytes;     /* bytes of the last count written (8 when 0: a cut count) */
  int bad_magic;          /* 1: a byte changed, 2: the number inside a tuple */
  bool big_endian;
  int protocol;           /* 1001 when 0 */
} legacy_spec;
void write_legacy_ckpt(const char *path, const legacy_spec *ls);

#endif

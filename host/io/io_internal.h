/* io_internal.h — pieces shared by the file-format readers (host/io):
 * the refcounted file mapping that checkpoint tensors point into, the
 * checkpoint object the format readers fill, the ZIP directory reader, the
 * pickle parser and the JSON parser. Not part of the SDK. */
#ifndef TAMING_IO_INTERNAL_H
#define TAMING_IO_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "taming/io.h"

/* The few pieces below that libtaming_data (the .npz reader and writer) and
 * libtaming_lua (the JSON binding) use are exported from libtaming under this
 * mark; they stay out of the SDK headers and may change at any time. */
#define TT_INTERNAL_API TT_API

/* Every format here stores little-endian numbers and we map them in place. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the file readers assume a little-endian host");

/* ---- a file mapped MAP_PRIVATE, PROT_READ|PROT_WRITE ----
 * Tensors are views onto it; writes to them are copy-on-write and never reach
 * the file. Headers are read with pread (tt_mfile_read) instead of through the
 * mapping, so indexing a checkpoint faults in none of its tensor pages. */
typedef struct tt_mfile {
  int refcount;      /* atomic: the checkpoint + one per storage */
  int fd;            /* open while indexing, -1 afterwards */
  char *path;
  uint8_t *base;     /* NULL for an empty file */
  uint64_t size;
} tt_mfile;

TT_INTERNAL_API tt_status tt_mfile_open(const char *path, tt_mfile **out);
tt_mfile *tt_mfile_ref(tt_mfile *m);
TT_INTERNAL_API void tt_mfile_unref(tt_mfile *m);
/* Reads exactly n bytes at off; a short read is a "truncated" format error. */
TT_INTERNAL_API tt_status tt_mfile_read(tt_mfile *m, uint64_t off, void *dst, size_t n, const char *what);
/* A storage over [off, off + nbytes) of the file that keeps the mapping alive.
 * Bytes not aligned to `align` are copied instead (kernels assume aligned data). */
tt_storage *tt_mfile_storage(tt_mfile *m, uint64_t off, size_t nbytes, size_t align);

/* ---- the checkpoint the readers fill ---- */
struct tt_ckpt {
  char *path;
  const char *format;
  tt_mfile *file;
  int n, cap;
  char **names;
  tt_tensor **tensors;
  int *by_name;      /* indices sorted by name (built by tt_ckpt_open) */
  tt_value meta;     /* a map */
  bool allow_unsafe_globals;   /* from tt_ckpt_options */
  char **unsafe;     /* globals outside the pickle allowlist, "module.name" */
  int n_unsafe;
};

/* Appends a state-dict tensor (takes over the reference). */
tt_status tt_ckpt_add(tt_ckpt *c, const char *name, tt_tensor *t);
tt_status tt_ckpt_open_torch(tt_ckpt *c);
tt_status tt_ckpt_open_torch_legacy(tt_ckpt *c);
tt_status tt_ckpt_open_safetensors(tt_ckpt *c);

/* ---- ZIP (stored entries, ZIP64) ---- */
typedef struct tt_zip_entry {
  char *name;
  uint64_t header_off;   /* local header */
  uint64_t size;         /* uncompressed */
  uint64_t csize;
  uint16_t method, flags;
  uint64_t data_off;     /* 0 until resolved from the local header */
  void *user;            /* the reader's cache (e.g. the storage made from it) */
} tt_zip_entry;

typedef struct tt_zip {
  tt_mfile *file;
  int n;
  tt_zip_entry *entries;
  tt_zip_entry **sorted; /* entries sorted by name */
} tt_zip;

TT_INTERNAL_API tt_status tt_zip_open(tt_zip *z, tt_mfile *file);
TT_INTERNAL_API void tt_zip_close(tt_zip *z);
tt_zip_entry *tt_zip_find(const tt_zip *z, const char *name);
/* Checks that the entry is stored (not compressed) and inside the file and
 * sets data_off from its local header. */
TT_INTERNAL_API tt_status tt_zip_resolve(tt_zip *z, tt_zip_entry *e);

/* ---- .npy in memory (npy.c), shared with the .npz reader and writer ---- */
#define TT_NPY_HEADER_MAX (10 + 64 + TT_MAX_DIMS * 24 + 64)
TT_INTERNAL_API tt_status tt_npy_decode(const uint8_t *buf, uint64_t size, const char *path, tt_tensor **out);
TT_INTERNAL_API tt_status tt_npy_header(const tt_tensor *t, const char *path, char *out, size_t cap, size_t *len);

/* ---- pickle (parsed, never executed) ---- */
typedef enum pk_type {
  PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_BYTES,
  PK_TUPLE, PK_LIST, PK_SET, PK_DICT,   /* dict items are key, value pairs */
  PK_GLOBAL,   /* a reference to module.name that was not called */
  PK_OBJ,      /* the inert result of building an object we do not understand */
  PK_STORAGE,  /* a persistent-id storage reference */
  PK_TENSOR
} pk_type;

typedef struct pk_node pk_node;

typedef struct pk_tensor {
  pk_node *storage;
  int64_t offset;   /* elements */
  int ndim;
  int64_t shape[TT_MAX_DIMS], stride[TT_MAX_DIMS];
} pk_tensor;

struct pk_node {
  pk_type type;
  int dtype;        /* STORAGE: tt_dtype, or -1 for a storage class we cannot map */
  int64_t i;        /* INT, BOOL; STORAGE: element count */
  double f;
  char *s;          /* STR, BYTES (NUL-terminated copy); GLOBAL, OBJ, STORAGE: "module.name" */
  size_t slen;
  char *key;        /* STORAGE: its key (the entry data/<key>) */
  bool view;        /* STORAGE: a view onto part of another storage (legacy files of PyTorch < 0.4) */
  pk_node **items;  /* TUPLE, LIST, SET; DICT: key, value, key, value, ... */
  size_t n, cap;
  pk_tensor *t;     /* TENSOR */
};

typedef struct pk_chunk pk_chunk;
typedef struct pk_result {
  pk_node *root;
  pk_chunk *chunks; /* every node, for freeing */
  /* Globals read outside the allowlist of tensor-rebuild functions and plain
   * data types ("module.name", each once, in order; at most PK_MAX_UNSAFE kept):
   * inert here, but torch.load without weights_only would call them. */
  char **unsafe;
  int n_unsafe;
  /* Every storage persistent id, in order (a storage used twice appears twice). */
  pk_node **storages;
  size_t n_storages, storages_cap;
} pk_result;
#define PK_MAX_UNSAFE 64

/* Parses a pickle; `name` is used in messages. Globals that only run code are
 * an error; other globals outside the allowlist are listed in out->unsafe. */
tt_status tt_pickle_parse(const uint8_t *data, size_t len, const char *name, pk_result *out);
/* The same for the first of several pickles in a row: *used is set to the bytes
 * up to and including its STOP opcode (as far as it read, on an error). */
tt_status tt_pickle_parse_next(const uint8_t *data, size_t len, const char *name, pk_result *out, size_t *used);
void tt_pickle_free(pk_result *r);

/* ---- torch pickles -> tensors (ckpt_torch.c), for the zip and the legacy reader ---- */
/* The storage behind a tensor (`what` names it), made once per storage key;
 * every later reference must declare the same dtype and element count.
 * *numel is its element count. */
typedef tt_status (*tt_torch_storage_fn)(void *src, const pk_node *st, const char *what, tt_storage **out,
                                         int64_t *numel);
/* Moves the scanner's findings from pr to c (refusing the file if it found a
 * global outside the allowlist, unless c allows them), then fills c's state
 * dict and metadata from pr->root. The values built are bounded by pickle_len. */
tt_status tt_torch_build(tt_ckpt *c, pk_result *pr, size_t pickle_len, tt_torch_storage_fn get, void *src);

/* ---- JSON (strict RFC 8259) ---- */
/* Objects become maps (duplicate keys are an error), arrays lists, integers
 * without fraction or exponent ints, other numbers numbers. */
TT_INTERNAL_API tt_status tt_json_parse(const char *text, size_t len, const char *name, tt_value *out);
/* Writes s as a JSON string literal (with quotes). */
void tt_json_write_string(FILE *f, const char *s);

/* ---- image.c pieces the loader and the TensorBoard writer share ----
 * u8 pixels [h, w, ch] (ch 1..4, contiguous) -> malloc'd PNG bytes; `what` names
 * the image in messages. */
/* u8 pixels [HW, C] -> f32 planes [C, HW] in [-1, 1], as tt_image_from_u8 converts them. */
void tt_u8_hwc_to_chw(const unsigned char *src, int64_t HW, int64_t C, float *dst);
tt_status tt_png_encode_mem(const char *what, const unsigned char *px, int64_t h, int64_t w, int ch,
                            unsigned char **out, size_t *len);

#endif

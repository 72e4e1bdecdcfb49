/* ckpt_torch_legacy.c — the serialisation of torch.save before PyTorch 1.6
 * (and of _use_new_zipfile_serialization=False since): not a zip, but pickles
 * in a row followed by the raw storages. The standard FID Inception weights
 * (pt_inception-2015-12-05-*.pth) are such a file.
 *
 *   pickle  the magic number 0x1950a86a20f9469cfc6c
 *   pickle  the protocol version, 1001
 *   pickle  sys_info {protocol_version, little_endian, type_sizes}
 *   pickle  the object; its storages are persistent ids
 *           ('storage', storage class, key, location, numel, view metadata)
 *   pickle  the list of storage keys, in the order their bytes follow
 *   then per key: an int64 element count (little-endian) and count x element
 *           size raw bytes
 *
 * Every number here comes from the file: the counts are checked against the
 * element count the pickle declared for the same key and the bytes against the
 * end of the file, with overflow-checked arithmetic, before anything is
 * mapped. Tensors are then built exactly as for zip files (ckpt_torch.c), with
 * the same global allowlist and caps; each storage is a view onto the file
 * mapping when its bytes are aligned for its dtype, a copy otherwise. */
#include "config.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "io_internal.h"
#include "taming/checked.h"

#define LEGACY_PROTOCOL_VERSION 1001

/* One storage key: what the pickle declared and where the bytes are. */
typedef struct leg_storage {
  const pk_node *st;   /* its first persistent id (owned by the object pickle) */
  uint64_t data_off;
  size_t nbytes;
  bool listed;         /* found in the list of keys (its bytes located) */
  tt_storage *s;       /* made on first use */
} leg_storage;

typedef struct leg_src {
  tt_ckpt *c;
  leg_storage *st;     /* sorted by key */
  size_t n;
} leg_src;

static int cmp_key(const void *a, const void *b) {
  return strcmp(((const leg_storage *)a)->st->key, ((const leg_storage *)b)->st->key);
}

static leg_storage *find(const leg_src *ls, const char *key) {
  size_t lo = 0, hi = ls->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int r = strcmp(key, ls->st[mid].st->key);
    if (r == 0) return &ls->st[mid];
    if (r < 0) hi = mid;
    else lo = mid + 1;
  }
  return NULL;
}

/* Bytes per element of a storage class, including those we cannot map to a
 * dtype (their bytes must still be stepped over); 0 if unknown. */
static size_t class_elem_size(const pk_node *st) {
  if (st->dtype >= 0) return tt_dtype_size((tt_dtype)st->dtype);
  static const struct { const char *name; size_t size; } sizes[] = {
      {"torch.CharStorage", 1}, {"torch.ShortStorage", 2}, {"torch.ComplexHalfStorage", 4},
      {"torch.ComplexFloatStorage", 8}, {"torch.ComplexDoubleStorage", 16}, {"torch.QInt8Storage", 1},
      {"torch.QUInt8Storage", 1}, {"torch.QInt32Storage", 4}, {"torch.QUInt4x2Storage", 1},
      {"torch.QUInt2x4Storage", 1}};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
    if (!strcmp(st->s, sizes[i].name)) return sizes[i].size;
  return 0;
}

static tt_status legacy_storage(void *src, const pk_node *st, const char *what, tt_storage **out, int64_t *numel) {
  leg_src *ls = src;
  const char *path = ls->c->path;
  leg_storage *e = find(ls, st->key);
  /* every persistent id was indexed and every indexed key listed before tensors are built */
  if (!e || !e->listed)
    return tt_error(TT_ERR_FORMAT, "%s: tensor '%s': storage '%s' has no bytes in the file (corrupt file)", path, what,
                    st->key);
  if (!e->s) {
    e->s = tt_mfile_storage(ls->c->file, e->data_off, e->nbytes, tt_dtype_size((tt_dtype)st->dtype));
    if (!e->s) return tt_error_prefix(tt_last_status(), "%s: tensor '%s': storage '%s': ", path, what, st->key);
  }
  *out = e->s;
  *numel = e->st->i;
  return TT_OK;
}

/* The next pickle of the file, from *off (advanced past it); `what` names it. */
static tt_status next_pickle(tt_ckpt *c, uint64_t *off, const char *what, bool obj, pk_result *pr) {
  tt_mfile *m = c->file;
  char name[1200];
  snprintf(name, sizeof name, "%s (%s, at byte %" PRIu64 ")", c->path, what, *off);
  if (*off >= m->size)
    return tt_error(TT_ERR_FORMAT, "%s: truncated: the file ends before %s (at byte %" PRIu64 ")", c->path, what, *off);
  size_t used = 0;
  TT_TRY(tt_pickle_parse_next(m->base + *off, (size_t)(m->size - *off), name, pr, &used));
  *off += used;
  /* the object pickle's findings are judged with the file's options; the
   * header and the list of keys never hold a global that torch.load would call */
  if (pr->n_unsafe && !obj) {
    tt_status s = tt_error(TT_ERR_FORMAT,
                           "%s: %s references %s, which torch.load would call; refusing the file (nothing was "
                           "called; a legacy header never holds it)",
                           c->path, what, pr->unsafe[0]);
    tt_pickle_free(pr);
    return s;
  }
  return TT_OK;
}

static const pk_node *dict_item(const pk_node *d, const char *key) {
  for (size_t i = 0; i + 1 < d->n; i += 2)
    if (d->items[i]->type == PK_STR && !strcmp(d->items[i]->s, key)) return d->items[i + 1];
  return NULL;
}

/* The magic number, the protocol version and sys_info. */
static tt_status read_preamble(tt_ckpt *c, uint64_t *off) {
  /* the magic as a LONG1 opcode: 10 bytes, little-endian */
  static const uint8_t magic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  pk_result pr = {0};
  uint64_t start = *off;
  TT_TRY(next_pickle(c, off, "the magic number", false, &pr));
  bool ok = pr.root->type == PK_OBJ && *off - start >= sizeof magic;
  if (ok) {
    ok = false;
    for (uint64_t i = start; i + sizeof magic <= *off; i++)
      if (!memcmp(c->file->base + i, magic, sizeof magic)) ok = true;
  }
  tt_pickle_free(&pr);
  if (!ok)
    return tt_error(TT_ERR_FORMAT, "%s: not a torch.save file: its first pickle is not the magic number 0x1950a86a20f9469cfc6c",
                    c->path);
  TT_TRY(next_pickle(c, off, "the protocol version", false, &pr));
  bool proto = pr.root->type == PK_INT && pr.root->i == LEGACY_PROTOCOL_VERSION;
  int64_t found = pr.root->type == PK_INT ? pr.root->i : -1;
  tt_pickle_free(&pr);
  if (!proto)
    return tt_error(TT_ERR_FORMAT, "%s: legacy torch.save protocol version %" PRId64 ", expected %d (corrupt file?)",
                    c->path, found, LEGACY_PROTOCOL_VERSION);
  TT_TRY(next_pickle(c, off, "sys_info", false, &pr));
  const pk_node *le = pr.root->type == PK_DICT ? dict_item(pr.root, "little_endian") : NULL;
  tt_status s = TT_OK;
  if (!le || le->type != PK_BOOL)
    s = tt_error(TT_ERR_FORMAT, "%s: the legacy header's sys_info has no little_endian flag (corrupt file)", c->path);
  else if (!le->i)
    s = tt_error(TT_ERR_UNSUPPORTED, "%s: a big-endian checkpoint; re-save it on a little-endian machine", c->path);
  tt_pickle_free(&pr);
  return s;
}

/* Indexes the storage keys the object pickle declares (each key once, every
 * declaration of it agreeing), then locates their bytes from the list of keys. */
static tt_status index_storages(tt_ckpt *c, const pk_result *obj, uint64_t *off, leg_src *ls) {
  const char *path = c->path;
  if (obj->n_storages) {   /* none: a file without tensors (and qsort must not see NULL) */
    ls->st = calloc(obj->n_storages, sizeof *ls->st);
    if (!ls->st) return tt_error(TT_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < obj->n_storages; i++) ls->st[i].st = obj->storages[i];
    qsort(ls->st, obj->n_storages, sizeof *ls->st, cmp_key);
  }
  size_t n = 0;
  for (size_t i = 0; i < obj->n_storages; i++) {
    const pk_node *a = ls->st[i].st;
    if (n && !strcmp(ls->st[n - 1].st->key, a->key)) {
      const pk_node *first = ls->st[n - 1].st;
      if (strcmp(first->s, a->s) != 0)
        return tt_error(TT_ERR_FORMAT, "%s: storage '%s' is declared both as %s and as %s (corrupt file)", path, a->key,
                        first->s, a->s);
      if (first->i != a->i)
        return tt_error(TT_ERR_FORMAT,
                        "%s: storage '%s' is declared with %" PRId64 " and with %" PRId64 " elements (corrupt file)",
                        path, a->key, first->i, a->i);
      continue;
    }
    ls->st[n++] = ls->st[i];
  }
  ls->n = n;

  pk_result keys = {0};
  TT_TRY(next_pickle(c, off, "the list of storage keys", false, &keys));
  tt_status s = TT_OK;
  if (keys.root->type != PK_LIST && keys.root->type != PK_TUPLE) {
    s = tt_error(TT_ERR_FORMAT, "%s: the list of storage keys is not a list (corrupt file)", path);
    goto done;
  }
  for (size_t i = 0; i < keys.root->n; i++) {
    const pk_node *k = keys.root->items[i];
    char kb[32];
    const char *key = k->type == PK_STR ? k->s : NULL;
    if (k->type == PK_INT) {
      snprintf(kb, sizeof kb, "%" PRId64, k->i);
      key = kb;
    }
    if (!key) {
      s = tt_error(TT_ERR_FORMAT, "%s: storage key %zu of the list is not a string (corrupt file)", path, i);
      goto done;
    }
    leg_storage *e = find(ls, key);
    if (!e) {
      s = tt_error(TT_ERR_FORMAT, "%s: storage '%s' has bytes in the file but the pickle never uses it (corrupt file)",
                   path, key);
      goto done;
    }
    if (e->listed) {
      s = tt_error(TT_ERR_FORMAT, "%s: storage '%s' is listed twice (corrupt file)", path, key);
      goto done;
    }
    size_t es = class_elem_size(e->st);
    if (!es) {
      s = tt_error(TT_ERR_UNSUPPORTED, "%s: storage '%s' is a %s, whose element size is not known", path, key, e->st->s);
      goto done;
    }
    uint8_t cb[8];
    char what[160];
    snprintf(what, sizeof what, "the element count of storage '%.100s'", key);
    if ((s = tt_mfile_read(c->file, *off, cb, 8, what)) != TT_OK) goto done;
    uint64_t count = 0, nbytes, end;
    for (int b = 7; b >= 0; b--) count = count << 8 | cb[b];
    if (count != (uint64_t)e->st->i) {
      s = tt_error(TT_ERR_FORMAT,
                   "%s: storage '%s' holds %" PRIu64 " elements in the file but the pickle declares %" PRId64
                   " (corrupt file)",
                   path, key, count, e->st->i);
      goto done;
    }
    if (!tt_u64_mul(count, es, &nbytes) || nbytes > SIZE_MAX || !tt_u64_add(*off + 8, nbytes, &end) ||
        end > c->file->size) {
      s = tt_error(TT_ERR_FORMAT,
                   "%s: truncated: storage '%s' (%" PRIu64 " elements of %zu bytes from byte %" PRIu64
                   ") runs past the end of the file (%" PRIu64 " bytes)",
                   path, key, count, es, *off + 8, c->file->size);
      goto done;
    }
    e->data_off = *off + 8;
    e->nbytes = (size_t)nbytes;
    e->listed = true;
    *off = end;
  }
  for (size_t i = 0; i < ls->n; i++)
    if (!ls->st[i].listed) {
      s = tt_error(TT_ERR_FORMAT, "%s: storage '%s' is used by the pickle but missing from the list of storage keys "
                   "(corrupt file)", path, ls->st[i].st->key);
      goto done;
    }
done:
  tt_pickle_free(&keys);
  return s;
}

tt_status tt_ckpt_open_torch_legacy(tt_ckpt *c) {
  if (!c->file->base)
    return tt_error(TT_ERR_FORMAT, "%s: the file is empty", c->path);
  uint64_t off = 0;
  TT_TRY(read_preamble(c, &off));
  pk_result obj = {0};
  uint64_t obj_off = off;
  TT_TRY(next_pickle(c, &off, "the object", true, &obj));
  size_t obj_len = (size_t)(off - obj_off);
  leg_src ls = {.c = c};
  tt_status s = index_storages(c, &obj, &off, &ls);
  if (s == TT_OK) s = tt_torch_build(c, &obj, obj_len, legacy_storage, &ls);
  for (size_t i = 0; i < ls.n; i++) tt_storage_unref(ls.st[i].s);
  free(ls.st);
  tt_pickle_free(&obj);
  return s;
}

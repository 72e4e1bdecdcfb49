/* ckpt_safetensors.c — .safetensors files: read (zero-copy views onto the
 * mapping) and write.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON
 * {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [b, e]}},
 * then the data; offsets are relative to the end of the header. Like the
 * reference implementation, the reader wants the tensors to tile the data
 * exactly (no overlap, no gap, nothing left over), so a corrupt header cannot
 * alias two tensors or hide bytes. */
#include "config.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "io_internal.h"
#include "taming/checked.h"
#include "taming/ops/copy.h"

/* The header cap of the reference implementation (100 MB); TAMING_MAX_SAFETENSORS_HEADER
 * (bytes) raises it for a file that really needs more. */
#define MAX_HEADER (100u << 20)

static uint64_t max_header(void) {
  const char *env = getenv("TAMING_MAX_SAFETENSORS_HEADER");
  if (!env || !*env) return MAX_HEADER;
  char *end;
  unsigned long long v = strtoull(env, &end, 10);
  return *end || env[0] == '-' ? MAX_HEADER : (uint64_t)v;
}

static const struct { const char *name; tt_dtype dt; } st_dtypes[] = {
    {"F32", TT_F32}, {"F64", TT_F64}, {"F16", TT_F16}, {"BF16", TT_BF16},
    {"I64", TT_I64}, {"I32", TT_I32}, {"U8", TT_U8}, {"I8", TT_I8}, {"BOOL", TT_U8}};

static int st_dtype(const char *s) {
  for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
    if (!strcmp(s, st_dtypes[i].name)) return st_dtypes[i].dt;
  return -1;
}

static const char *st_name(tt_dtype dt) {
  for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
    if (st_dtypes[i].dt == dt) return st_dtypes[i].name;
  return NULL;
}

typedef struct st_entry {
  const char *name;
  int order;
  tt_dtype dt;
  int ndim;
  int64_t shape[TT_MAX_DIMS];
  uint64_t begin, end;
} st_entry;

static int cmp_begin(const void *a, const void *b) {
  const st_entry *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return x->order - y->order;
}

static tt_status parse_entry(const char *path, const char *name, const tt_value *v, uint64_t data_size,
                             st_entry *e) {
  const tt_value *dt = tt_value_get(v, "dtype"), *shape = tt_value_get(v, "shape"),
                 *off = tt_value_get(v, "data_offsets");
  if (!dt || dt->type != TT_V_STR || !shape || shape->type != TT_V_LIST || !off || off->type != TT_V_LIST ||
      tt_value_len(off) != 2)
    return tt_error(TT_ERR_FORMAT, "%s: tensor '%s': expected {\"dtype\", \"shape\", \"data_offsets\": [begin, end]}",
                    path, name);
  int d = st_dtype(dt->u.s);
  if (d < 0) return tt_error(TT_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s is not supported", path, name, dt->u.s);
  e->name = name;
  e->dt = (tt_dtype)d;
  e->ndim = tt_value_len(shape);
  if (e->ndim > TT_MAX_DIMS)
    return tt_error(TT_ERR_UNSUPPORTED, "%s: tensor '%s' has %d dims (at most %d)", path, name, e->ndim, TT_MAX_DIMS);
  for (int i = 0; i < e->ndim; i++) {
    const tt_value *x = tt_value_at(shape, i);
    if (x->type != TT_V_INT || x->u.i < 0)
      return tt_error(TT_ERR_FORMAT, "%s: tensor '%s': its shape is not a list of sizes", path, name);
    e->shape[i] = x->u.i;
  }
  /* a zero dim must not hide an overflowing product of the others */
  size_t bytes = 0;
  bool overflow = !tt_shape_nbytes(e->ndim, e->shape, tt_dtype_size(e->dt), &bytes);
  uint64_t nbytes = bytes;
  const tt_value *b = tt_value_at(off, 0), *en = tt_value_at(off, 1);
  if (b->type != TT_V_INT || en->type != TT_V_INT || b->u.i < 0 || en->u.i < b->u.i)
    return tt_error(TT_ERR_FORMAT, "%s: tensor '%s': bad data_offsets", path, name);
  e->begin = (uint64_t)b->u.i;
  e->end = (uint64_t)en->u.i;
  char sh[160];
  tt_shape_str(e->ndim, e->shape, sh, sizeof sh);
  if (overflow)
    return tt_error(TT_ERR_FORMAT, "%s: tensor '%s' has an impossible shape %s (over 2^63 bytes of %s)", path, name, sh,
                    dt->u.s);
  if (nbytes != e->end - e->begin)
    return tt_error(TT_ERR_FORMAT, "%s: tensor '%s' %s %s needs %" PRIu64 " bytes but its data_offsets [%" PRIu64
                    ", %" PRIu64 "] hold %" PRIu64,
                    path, name, dt->u.s, sh, nbytes, e->begin, e->end, e->end - e->begin);
  if (e->end > data_size)
    return tt_error(TT_ERR_FORMAT, "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64 "] reach past the data (%" PRIu64
                    " bytes): truncated file?",
                    path, name, e->begin, e->end, data_size);
  return TT_OK;
}

static tt_status read_metadata(tt_ckpt *c, const tt_value *m) {
  if (m->type != TT_V_MAP) return tt_error(TT_ERR_FORMAT, "%s: __metadata__ is not an object", c->path);
  for (int i = 0; i < m->u.c.len; i++) {
    if (m->u.c.items[i].type != TT_V_STR)
      return tt_error(TT_ERR_FORMAT, "%s: __metadata__ '%s' is not a string", c->path, m->u.c.keys[i]);
    tt_value v;
    TT_TRY(tt_value_copy(&v, &m->u.c.items[i]));
    TT_TRY(tt_value_set(&c->meta, m->u.c.keys[i], &v));
  }
  return TT_OK;
}

tt_status tt_ckpt_open_safetensors(tt_ckpt *c) {
  tt_mfile *f = c->file;
  uint8_t lenb[8];
  TT_TRY(tt_mfile_read(f, 0, lenb, 8, "the header length"));
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenb[i];
  if (hlen > f->size - 8)
    return tt_error(TT_ERR_FORMAT, "%s: safetensors header length %" PRIu64 " exceeds the file size (%" PRIu64
                    " bytes): truncated or corrupt file",
                    c->path, hlen, f->size);
  uint64_t cap = max_header();
  if (hlen > cap)
    return tt_error(TT_ERR_FORMAT, "%s: safetensors header length %" PRIu64 " exceeds the cap of %" PRIu64
                    " bytes (corrupt file? set TAMING_MAX_SAFETENSORS_HEADER to raise the cap)",
                    c->path, hlen, cap);
  char *h = malloc((size_t)hlen);
  if (!h) return tt_error(TT_ERR_NOMEM, "%s: out of memory", c->path);
  tt_value hdr = TT_VALUE_NIL;
  tt_status s = tt_mfile_read(f, 8, h, (size_t)hlen, "the safetensors header");
  if (s == TT_OK) s = tt_json_parse(h, (size_t)hlen, c->path, &hdr);
  free(h);
  if (s == TT_OK && hdr.type != TT_V_MAP) s = tt_error(TT_ERR_FORMAT, "%s: the safetensors header is not an object", c->path);
  uint64_t data_off = 8 + hlen, data_size = f->size - data_off;
  int n = tt_value_len(&hdr), ne = 0;
  st_entry *es = calloc(n ? (size_t)n : 1, sizeof *es);
  if (s == TT_OK && !es) s = tt_error(TT_ERR_NOMEM, "%s: out of memory", c->path);
  for (int i = 0; s == TT_OK && i < n; i++) {
    const char *key = hdr.u.c.keys[i];
    if (!strcmp(key, "__metadata__")) {
      s = read_metadata(c, &hdr.u.c.items[i]);
      continue;
    }
    es[ne].order = ne;
    s = parse_entry(c->path, key, &hdr.u.c.items[i], data_size, &es[ne]);
    ne++;
  }
  if (s == TT_OK) {
    qsort(es, (size_t)ne, sizeof *es, cmp_begin);
    uint64_t at = 0;
    for (int i = 0; s == TT_OK && i < ne; i++) {
      if (es[i].begin != at)
        s = tt_error(TT_ERR_FORMAT, "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64 "] %s %s (which ends at %" PRIu64
                     ")",
                     c->path, es[i].name, es[i].begin, es[i].end, es[i].begin < at ? "overlap" : "leave a gap after",
                     i ? es[i - 1].name : "the header", at);
      at = es[i].end;
    }
    if (s == TT_OK && at != data_size)
      s = tt_error(TT_ERR_FORMAT, "%s: the tensors cover %" PRIu64 " data bytes but the file holds %" PRIu64
                   " after the header (truncated or padded file)",
                   c->path, at, data_size);
  }
  for (int i = 0; s == TT_OK && i < ne; i++) {
    st_entry *e = &es[i];
    size_t es_sz = tt_dtype_size(e->dt);
    tt_storage *st = tt_mfile_storage(f, data_off + e->begin, (size_t)(e->end - e->begin), es_sz);
    tt_tensor *t = st ? tt_tensor_from_storage(st, e->dt, e->ndim, e->shape, NULL, 0) : NULL;
    tt_storage_unref(st);
    s = t ? tt_ckpt_add(c, e->name, t) : tt_error_prefix(tt_last_status(), "%s: tensor '%s': ", c->path, e->name);
  }
  free(es);
  tt_value_clear(&hdr);
  return s;
}

/* ---- writing ---- */

typedef struct st_out {
  const char *name;
  tt_tensor *t;
  uint64_t begin, end;
} st_out;

static int cmp_name(const void *a, const void *b) {
  return strcmp(((const st_out *)a)->name, ((const st_out *)b)->name);
}

/* Data order: widest elements first, then by name, so each tensor starts
 * aligned to its element size (the data begins 8-byte aligned). */
static int cmp_layout(const void *a, const void *b) {
  const st_out *x = *(st_out *const *)a, *y = *(st_out *const *)b;
  size_t sx = tt_dtype_size(x->t->dtype), sy = tt_dtype_size(y->t->dtype);
  if (sx != sy) return sx > sy ? -1 : 1;
  return strcmp(x->name, y->name);
}

typedef struct { const char *key; const tt_value *v; } meta_item;

static int cmp_meta(const void *a, const void *b) {
  return strcmp(((const meta_item *)a)->key, ((const meta_item *)b)->key);
}

/* Keys are written sorted: a map built from a Lua table comes in hash order,
 * and identical runs must write identical bytes. */
static tt_status write_metadata(FILE *h, const char *path, const tt_value *meta) {
  if (!meta || meta->type == TT_V_NIL) return TT_OK;
  if (meta->type != TT_V_MAP) return tt_error(TT_ERR_INVALID, "%s: metadata must be a map of strings", path);
  int n = meta->u.c.len;
  if (n == 0) return TT_OK;
  meta_item *items = malloc(sizeof *items * (size_t)n);
  if (!items) return tt_error(TT_ERR_NOMEM, "%s: out of memory", path);
  for (int i = 0; i < n; i++) items[i] = (meta_item){meta->u.c.keys[i], &meta->u.c.items[i]};
  qsort(items, (size_t)n, sizeof *items, cmp_meta);
  tt_status s = TT_OK;
  fputs("\"__metadata__\":{", h);
  for (int i = 0; i < n; i++) {
    const tt_value *v = items[i].v;
    char num[64];
    const char *str = num;
    if (v->type == TT_V_STR) str = v->u.s;
    else if (v->type == TT_V_INT) snprintf(num, sizeof num, "%" PRId64, v->u.i);
    else if (v->type == TT_V_NUM) snprintf(num, sizeof num, "%.17g", v->u.n);
    else if (v->type == TT_V_BOOL) str = v->u.b ? "true" : "false";
    else {
      s = tt_error(TT_ERR_INVALID, "%s: metadata '%s' is a %s; safetensors metadata values are strings", path,
                   items[i].key, tt_vtype_name(v->type));
      break;
    }
    if (i) fputc(',', h);
    tt_json_write_string(h, items[i].key);
    fputc(':', h);
    tt_json_write_string(h, str);
  }
  free(items);
  fputc('}', h);
  return s;
}

/* The JSON header, padded with spaces so the data starts 8-byte aligned. */
static tt_status build_header(const char *path, st_out *outs, int n, const tt_value *meta, char **text, size_t *len) {
  FILE *h = open_memstream(text, len);
  if (!h) return tt_error(TT_ERR_NOMEM, "%s: out of memory", path);
  fputc('{', h);
  tt_status s = write_metadata(h, path, meta);
  fflush(h);
  bool first = *len == 1;   /* only the '{' so far */
  for (int i = 0; s == TT_OK && i < n; i++) {
    const tt_tensor *t = outs[i].t;
    if (!first) fputc(',', h);
    first = false;
    tt_json_write_string(h, outs[i].name);
    fprintf(h, ":{\"dtype\":\"%s\",\"shape\":[", st_name(t->dtype));
    for (int d = 0; d < t->ndim; d++) fprintf(h, d ? ",%" PRId64 : "%" PRId64, t->shape[d]);
    fprintf(h, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", outs[i].begin, outs[i].end);
  }
  fputc('}', h);
  fflush(h);
  while (s == TT_OK && (8 + *len) % 8) {
    fputc(' ', h);
    fflush(h);
  }
  if (fclose(h) != 0 && s == TT_OK) s = tt_error(TT_ERR_NOMEM, "%s: out of memory", path);
  if (s != TT_OK) {
    free(*text);
    *text = NULL;
  }
  return s;
}

static tt_status write_tensor(tt_atomic_file *af, const tt_tensor *t) {
  size_t nb = tt_tensor_nbytes(t);
  if (nb == 0) return TT_OK;
  tt_tensor *h = tt_host_contiguous(t);
  if (!h) return tt_error_prefix(tt_last_status(), "%s: ", af->path);
  tt_status s = tt_atomic_write(af, tt_tensor_data(h), nb);
  tt_tensor_unref(h);
  return s;
}

tt_status tt_safetensors_save(const char *path, int n, const char *const *names, tt_tensor *const *tensors,
                              const tt_value *metadata) {
  if (n < 0) return tt_error(TT_ERR_INVALID, "%s: negative tensor count", path);
  st_out *outs = calloc(n ? (size_t)n : 1, sizeof *outs);
  st_out **layout = calloc(n ? (size_t)n : 1, sizeof *layout);
  tt_status s = outs && layout ? TT_OK : tt_error(TT_ERR_NOMEM, "%s: out of memory", path);
  for (int i = 0; s == TT_OK && i < n; i++) {
    if (!names[i] || !*names[i] || !tensors[i])
      s = tt_error(TT_ERR_INVALID, "%s: tensor %d has no name or no tensor", path, i);
    else if (!strcmp(names[i], "__metadata__"))
      s = tt_error(TT_ERR_INVALID, "%s: '__metadata__' cannot name a tensor", path);
    else if (!st_name(tensors[i]->dtype))
      s = tt_error(TT_ERR_UNSUPPORTED, "%s: tensor '%s': dtype %s cannot be stored", path, names[i],
                   tt_dtype_name(tensors[i]->dtype));
    else
      outs[i] = (st_out){names[i], tensors[i], 0, 0};
  }
  if (s == TT_OK) {
    qsort(outs, (size_t)n, sizeof *outs, cmp_name);
    for (int i = 1; s == TT_OK && i < n; i++)
      if (!strcmp(outs[i].name, outs[i - 1].name)) s = tt_error(TT_ERR_INVALID, "%s: tensor '%s' given twice", path, outs[i].name);
    for (int i = 0; i < n; i++) layout[i] = &outs[i];
    qsort(layout, (size_t)n, sizeof *layout, cmp_layout);
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
      layout[i]->begin = at;
      at += tt_tensor_nbytes(layout[i]->t);
      layout[i]->end = at;
    }
  }
  char *hdr = NULL;
  size_t hlen = 0;
  if (s == TT_OK) s = build_header(path, outs, n, metadata, &hdr, &hlen);
  tt_atomic_file af;
  if (s == TT_OK) s = tt_atomic_open(&af, path);
  if (s == TT_OK) {
    uint8_t lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    s = tt_atomic_write(&af, lenb, 8);
    if (s == TT_OK) s = tt_atomic_write(&af, hdr, hlen);
    for (int i = 0; s == TT_OK && i < n; i++) {
      s = write_tensor(&af, layout[i]->t);
      if (s != TT_OK) tt_error_prefix(s, "tensor '%s': ", layout[i]->name);
    }
    if (s == TT_OK) s = tt_atomic_commit(&af);
    else tt_atomic_abort(&af);
  }
  free(hdr);
  free(outs);
  free(layout);
  return s;
}

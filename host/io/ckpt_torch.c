/* ckpt_torch.c — PyTorch (>= 1.6) zip checkpoints: Lightning .ckpt, .pt, .pth.
 *
 * The archive holds <prefix>/data.pkl (the object) and <prefix>/data/<key>
 * (one raw little-endian buffer per storage); <prefix> varies ("archive", the
 * file stem, ...). The pickle is parsed (pickle.c, nothing executed) and every
 * tensor becomes a view onto its storage entry inside the file mapping,
 * honouring storage_offset and strides; tensors that share a storage share one
 * tt_storage. `state_dict` (or a top level that is itself a flat dict of
 * tensors) gives the indexed tensors, every other top-level key the metadata.
 *
 * Unknown objects: outside the state dict they are nil in the metadata (a
 * Lightning callback must not stop a model from loading). Inside it, an object
 * built by a torch.* function we do not interpret (quantized, sparse, meta
 * tensors) is an error naming the key, since a weight would silently go
 * missing; other non-tensor entries (None buffers, extra states) are skipped.
 * Globals that run code are refused by the parser wherever they appear; a
 * file referencing other globals outside the parser's allowlist is refused
 * unless the caller opts in (tt_ckpt_options.allow_unsafe_globals). */
#include "config.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "io_internal.h"
#include "taming/checked.h"

typedef struct cached_storage {
  tt_storage *s;
  int dtype;
  int64_t numel;   /* as first declared: a later reference must agree */
} cached_storage;

typedef struct zip_src {
  tt_ckpt *c;
  tt_zip *z;
  char prefix[512];
} zip_src;

typedef struct conv {
  tt_ckpt *c;
  tt_torch_storage_fn get;   /* the format's storages */
  void *src;
  int64_t budget;   /* values left to build: bounds memo-shared structures */
} conv;

/* The storage behind a tensor (`what` names it), made once per archive entry;
 * every later reference must declare the same dtype and element count. */
static tt_status zip_storage(void *src, const pk_node *st, const char *what, tt_storage **out, int64_t *numel) {
  zip_src *cv = src;
  const char *path = cv->c->path;
  char name[1024];
  snprintf(name, sizeof name, "%sdata/%s", cv->prefix, st->key);
  tt_zip_entry *e = tt_zip_find(cv->z, name);
  if (!e)
    return tt_error(TT_ERR_FORMAT, "%s: tensor '%s': storage '%s' is referenced by the pickle but the archive has no entry '%s'",
                    path, what, st->key, name);
  cached_storage *cs = e->user;
  if (cs) {
    if (cs->dtype != st->dtype)
      return tt_error(TT_ERR_FORMAT, "%s: tensor '%s': storage '%s' is used both as %s and as %s", path, what, st->key,
                      tt_dtype_name(cs->dtype), tt_dtype_name(st->dtype));
    if (cs->numel != st->i)
      return tt_error(TT_ERR_FORMAT,
                      "%s: tensor '%s': storage '%s' is declared with %" PRId64 " elements here but %" PRId64
                      " where it first appears (corrupt file)",
                      path, what, st->key, st->i, cs->numel);
    *out = cs->s;
    *numel = cs->numel;
    return TT_OK;
  }
  TT_TRY(tt_zip_resolve(cv->z, e));
  size_t es = tt_dtype_size(st->dtype);
  uint64_t nbytes;
  if (st->i < 0 || !tt_u64_mul((uint64_t)st->i, es, &nbytes) || nbytes > e->size)
    return tt_error(TT_ERR_FORMAT,
                    "%s: tensor '%s': storage '%s' claims %" PRId64 " elements of %s but its entry '%s' has only %" PRIu64
                    " bytes (corrupt file)",
                    path, what, st->key, st->i, tt_dtype_name(st->dtype), name, e->size);
  cs = calloc(1, sizeof *cs);
  if (!cs) return tt_error(TT_ERR_NOMEM, "%s: out of memory", path);
  cs->dtype = st->dtype;
  cs->numel = st->i;
  cs->s = tt_mfile_storage(cv->c->file, e->data_off, (size_t)nbytes, es);
  if (!cs->s) {
    free(cs);
    return tt_error_prefix(tt_last_status(), "%s: tensor '%s': storage '%s': ", path, what, st->key);
  }
  e->user = cs;
  *out = cs->s;
  *numel = cs->numel;
  return TT_OK;
}

/* The tensor a _rebuild_tensor node describes, checked against its storage. */
static tt_status make_tensor(conv *cv, const pk_node *n, const char *what, tt_tensor **out) {
  const pk_tensor *t = n->t;
  const pk_node *st = t->storage;
  const char *path = cv->c->path;
  char sh[160];
  tt_shape_str(t->ndim, t->shape, sh, sizeof sh);
  if (st->dtype < 0)
    return tt_error(TT_ERR_UNSUPPORTED, "%s: tensor '%s' %s: storage type %s is not supported", path, what, sh, st->s);
  if (st->view)
    return tt_error(TT_ERR_UNSUPPORTED,
                    "%s: tensor '%s' lies in a storage view (storage '%s'), which only PyTorch < 0.4 wrote and is not "
                    "read; re-save the checkpoint with a recent PyTorch",
                    path, what, st->key);
  size_t nbytes;
  if (!tt_shape_nbytes(t->ndim, t->shape, tt_dtype_size(st->dtype), &nbytes))
    return tt_error(TT_ERR_FORMAT, "%s: tensor '%s' has an impossible shape %s (negative, or over 2^63 bytes of %s)",
                    path, what, sh, tt_dtype_name(st->dtype));
  tt_storage *s = NULL;
  int64_t numel = 0;
  TT_TRY(cv->get(cv->src, st, what, &s, &numel));
  /* the elements it touches, computed without overflow, against the storage's first declared size */
  int64_t lo, hi;
  bool empty, bad = t->offset < 0;
  for (int d = 0; d < t->ndim; d++)
    if (t->stride[d] < 0) bad = true;
  if (!tt_view_span(t->ndim, t->shape, t->stride, t->offset, &lo, &hi, &empty) || bad || (!empty && hi >= numel))
    return tt_error(TT_ERR_FORMAT,
                    "%s: tensor '%s' %s at storage offset %" PRId64 " reaches outside its storage '%s' of %" PRId64
                    " elements (corrupt file)",
                    path, what, sh, t->offset, st->key, numel);
  *out = tt_tensor_from_storage(s, (tt_dtype)st->dtype, t->ndim, t->shape, t->stride, t->offset);
  if (!*out) return tt_error_prefix(tt_last_status(), "%s: tensor '%s': ", path, what);
  return TT_OK;
}

/* A dict key as a string (optimizer states use int keys); NULL to skip the item. */
static const char *key_string(const pk_node *k, char *buf, size_t n) {
  switch (k->type) {
    case PK_STR: return k->s;
    case PK_INT: snprintf(buf, n, "%" PRId64, k->i); return buf;
    case PK_BOOL: return k->i ? "True" : "False";
    case PK_NONE: return "None";
    case PK_FLOAT: snprintf(buf, n, "%.17g", k->f); return buf;
    case PK_GLOBAL: return k->s;   /* Lightning 1.0 keys callback states by class */
    default: return NULL;
  }
}

static tt_status to_value(conv *cv, const pk_node *n, const char *where, int depth, tt_value *out) {
  *out = TT_VALUE_NIL;
  if (--cv->budget < 0 || depth > 200)
    return tt_error(TT_ERR_FORMAT, "%s: the pickle's object is nested or shared too deeply to convert (at '%s')",
                    cv->c->path, where);
  switch (n->type) {
    case PK_NONE: case PK_GLOBAL: case PK_OBJ: case PK_STORAGE: case PK_BYTES: return TT_OK;
    case PK_BOOL: *out = tt_value_bool(n->i != 0); return TT_OK;
    case PK_INT: *out = tt_value_int(n->i); return TT_OK;
    case PK_FLOAT: *out = tt_value_num(n->f); return TT_OK;
    case PK_STR:
      *out = tt_value_str(n->s);
      return out->type == TT_V_STR ? TT_OK : tt_error(TT_ERR_NOMEM, "out of memory");
    case PK_TENSOR: {
      if (n->t->storage->dtype < 0) return TT_OK;   /* a dtype we do not have: nil */
      tt_tensor *t;
      TT_TRY(make_tensor(cv, n, where, &t));
      *out = tt_value_tensor_steal(t);
      return TT_OK;
    }
    case PK_TUPLE: case PK_LIST: case PK_SET: case PK_DICT: break;
  }
  bool dict = n->type == PK_DICT;
  *out = dict ? tt_value_map() : tt_value_list();
  for (size_t i = 0; i < n->n; i += dict ? 2 : 1) {
    char kb[64], sub[256];
    const char *key = NULL;
    if (dict) {
      key = key_string(n->items[i], kb, sizeof kb);
      if (!key) continue;
      snprintf(sub, sizeof sub, "%s.%s", where, key);
    } else {
      snprintf(sub, sizeof sub, "%s[%zu]", where, i);
    }
    tt_value item;
    tt_status s = to_value(cv, n->items[i + (dict ? 1 : 0)], sub, depth + 1, &item);
    if (s == TT_OK) s = dict ? tt_value_set(out, key, &item) : tt_value_push(out, &item);
    if (s != TT_OK) {
      tt_value_clear(&item);
      tt_value_clear(out);
      return s;
    }
  }
  return TT_OK;
}

static const pk_node *dict_get(const pk_node *d, const char *key) {
  for (size_t i = 0; i + 1 < d->n; i += 2)
    if (d->items[i]->type == PK_STR && !strcmp(d->items[i]->s, key)) return d->items[i + 1];
  return NULL;
}

static tt_status load_state_dict(conv *cv, const pk_node *sd) {
  for (size_t i = 0; i + 1 < sd->n; i += 2) {
    const pk_node *k = sd->items[i], *v = sd->items[i + 1];
    if (k->type != PK_STR) continue;
    if (v->type == PK_TENSOR) {
      tt_tensor *t;
      TT_TRY(make_tensor(cv, v, k->s, &t));
      TT_TRY(tt_ckpt_add(cv->c, k->s, t));
    } else if (v->type == PK_OBJ && !strncmp(v->s, "torch.", 6)) {
      return tt_error(TT_ERR_UNSUPPORTED, "%s: state_dict entry '%s' is built by %s, which is not supported", cv->c->path,
                      k->s, v->s);
    }
    /* other values (None buffers, extra state objects) are not tensors: skipped */
  }
  return TT_OK;
}

static tt_status convert(conv *cv, const pk_node *root) {
  const char *path = cv->c->path;
  if (root->type != PK_DICT) {
    static const char *names[] = {"None", "bool", "int", "float", "str", "bytes", "tuple", "list", "set", "dict",
                                  "global", "object", "storage", "tensor"};
    return tt_error(TT_ERR_FORMAT, "%s: the checkpoint holds a %s, expected a dict", path, names[root->type]);
  }
  const pk_node *sd = dict_get(root, "state_dict");
  if (sd && sd->type == PK_DICT) {
    TT_TRY(load_state_dict(cv, sd));
  } else {
    bool flat = true;
    for (size_t i = 0; i + 1 < root->n; i += 2)
      if (root->items[i + 1]->type != PK_TENSOR) flat = false;
    if (flat) return load_state_dict(cv, root);   /* a plain torch.save(state_dict) */
    sd = NULL;
  }
  for (size_t i = 0; i + 1 < root->n; i += 2) {
    char kb[64];
    const char *key = key_string(root->items[i], kb, sizeof kb);
    if (!key || (sd && root->items[i + 1] == sd)) continue;
    tt_value item;
    tt_status s = to_value(cv, root->items[i + 1], key, 0, &item);
    if (s == TT_OK) s = tt_value_set(&cv->c->meta, key, &item);
    if (s != TT_OK) {
      tt_value_clear(&item);
      return s;
    }
  }
  return TT_OK;
}

/* The folder holding data.pkl: "archive/", the file stem, ... */
static tt_zip_entry *find_pickle(const tt_zip *z) {
  tt_zip_entry *best = NULL;
  for (int i = 0; i < z->n; i++) {
    const char *nm = z->entries[i].name;
    size_t l = strlen(nm);
    if (l < 8 || strcmp(nm + l - 8, "data.pkl") != 0 || (l > 8 && nm[l - 9] != '/')) continue;
    if (!best || l < strlen(best->name)) best = &z->entries[i];
  }
  return best;
}

tt_status tt_torch_build(tt_ckpt *c, pk_result *pr, size_t pickle_len, tt_torch_storage_fn get, void *src) {
  /* the scanner's findings go to the checkpoint (for `taming info`) */
  c->unsafe = pr->unsafe;
  c->n_unsafe = pr->n_unsafe;
  pr->unsafe = NULL;
  pr->n_unsafe = 0;
  if (c->n_unsafe && !c->allow_unsafe_globals)
    return tt_error(TT_ERR_FORMAT,
                    "%s: the pickle references %s%s, which torch.load without weights_only=True would call; refusing "
                    "the file (nothing was called; to read its tensors anyway, opt in: tt.load(path, {unsafe_globals = "
                    "true}) or taming convert --allow-unsafe-globals)",
                    c->path, c->unsafe[0], c->n_unsafe > 1 ? " and other globals outside the allowlist" : "");
  /* memo references can share one structure many times over: bound the values
   * built from it by the pickle's size, and absolutely (about 4M values) */
  conv cv = {.c = c, .get = get, .src = src};
  cv.budget = (int64_t)4 * (int64_t)(pickle_len < ((size_t)1 << 40) ? pickle_len : ((size_t)1 << 40)) + (1 << 20);
  if (cv.budget > ((int64_t)4 << 20)) cv.budget = (int64_t)4 << 20;
  return convert(&cv, pr->root);
}

tt_status tt_ckpt_open_torch(tt_ckpt *c) {
  tt_zip z;
  TT_TRY(tt_zip_open(&z, c->file));
  zip_src cv = {.c = c, .z = &z};
  pk_result pr = {0};
  uint8_t *pkl = NULL;
  tt_status s = TT_OK;
  tt_zip_entry *e = find_pickle(&z);
  if (!e) {
    s = tt_error(TT_ERR_FORMAT, "%s: a zip archive without a data.pkl entry: not a torch.save checkpoint", c->path);
    goto done;
  }
  size_t plen = strlen(e->name) - 8;
  if (plen >= sizeof cv.prefix) {
    s = tt_error(TT_ERR_FORMAT, "%s: archive folder name too long", c->path);
    goto done;
  }
  memcpy(cv.prefix, e->name, plen);
  cv.prefix[plen] = 0;
  char bo_name[600];
  snprintf(bo_name, sizeof bo_name, "%sbyteorder", cv.prefix);
  tt_zip_entry *bo = tt_zip_find(&z, bo_name);
  if (bo && (s = tt_zip_resolve(&z, bo)) == TT_OK) {
    char order[8] = "";
    s = tt_mfile_read(c->file, bo->data_off, order, bo->size < 7 ? (size_t)bo->size : 7, bo_name);
    if (s == TT_OK && !strncmp(order, "big", 3))
      s = tt_error(TT_ERR_UNSUPPORTED, "%s: a big-endian checkpoint; re-save it on a little-endian machine", c->path);
  }
  if (s != TT_OK) goto done;
  if ((s = tt_zip_resolve(&z, e)) != TT_OK) goto done;
  pkl = malloc(e->size ? (size_t)e->size : 1);
  if (!pkl) {
    s = tt_error(TT_ERR_NOMEM, "%s: out of memory reading %s (%" PRIu64 " bytes)", c->path, e->name, e->size);
    goto done;
  }
  if ((s = tt_mfile_read(c->file, e->data_off, pkl, (size_t)e->size, e->name)) != TT_OK) goto done;
  if ((s = tt_pickle_parse(pkl, (size_t)e->size, c->path, &pr)) != TT_OK) goto done;
  s = tt_torch_build(c, &pr, (size_t)e->size, zip_storage, &cv);
done:
  for (int i = 0; i < z.n; i++) {
    cached_storage *cs = z.entries[i].user;
    if (cs) tt_storage_unref(cs->s);
    free(cs);
  }
  tt_pickle_free(&pr);
  free(pkl);
  tt_zip_close(&z);
  return s;
}

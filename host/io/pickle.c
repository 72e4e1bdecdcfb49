/* pickle.c — a pickle parser that builds a tree of inert values and executes
 * nothing.
 *
 * It understands the opcodes of protocols 0–4 that torch.save and Lightning
 * emit. A pickle normally "calls" globals (REDUCE, NEWOBJ, BUILD...); here a
 * fixed allowlist of calls is interpreted (OrderedDict, tensor rebuilding,
 * storages, set/frozenset, Lightning's AttributeDict) and every other call
 * yields an opaque value, so Lightning callback objects, omegaconf containers
 * or numpy scalars load as nil instead of failing the whole checkpoint.
 *
 * A reference to a global that only exists to run code (os.system,
 * subprocess.*, builtins.eval/exec/getattr/__import__/open, anything in
 * os/posix/nt/sys and a few similar modules) is a hard error as soon as it is
 * read, wherever it sits in the object: a checkpoint never needs one, and
 * refusing the reference (not just the call) also covers indirect calls made
 * through other objects. Nothing runs either way.
 *
 * The parser is also a safety scanner: every other global outside an
 * allowlist (the tensor-rebuild functions, storages, plain containers and data
 * types, and the Lightning classes official checkpoints hold) is listed in the
 * result, so callers can warn that torch.load without weights_only would call
 * it, and refuse the file unless asked not to. */
#include "config.h"
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "io_internal.h"

#define CHUNK_NODES 512

struct pk_chunk {
  pk_chunk *next;
  int used;
  pk_node nodes[CHUNK_NODES];
};

typedef struct memo_slot { uint64_t key; pk_node *val; } memo_slot;

typedef struct vm {
  const uint8_t *start, *p, *end;
  const char *name;
  pk_result *res;
  pk_node **stack;
  size_t sp, scap;
  size_t *marks;
  size_t nmarks, mcap;
  memo_slot *memo;   /* open addressing, val == NULL marks a free slot */
  size_t memo_cap, memo_len;
  /* A pickle byte can make a 88-byte node or a stack, mark, memo or container
   * slot: counts are capped so a hostile pickle cannot turn each byte into a
   * hundred of memory. */
  size_t limit;      /* values of each kind */
  size_t nodes, items;
  bool over;         /* a cap was hit: oom() reports it */
} vm;

/* Enough for checkpoints with hundreds of thousands of tensors; a file that
 * really needs more sets TAMING_MAX_PICKLE_VALUES. Worst case about 400 MB. */
#define PK_MAX_VALUES ((size_t)2 << 20)

static size_t values_limit(void) {
  const char *env = getenv("TAMING_MAX_PICKLE_VALUES");
  if (!env || !*env || env[0] == '-') return PK_MAX_VALUES;
  char *end;
  unsigned long long x = strtoull(env, &end, 10);
  return *end || x == 0 ? PK_MAX_VALUES : (size_t)x;
}

/* ---- nodes ---- */

static tt_status err(vm *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static tt_status err(vm *v, const char *fmt, ...) {
  char what[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return tt_error(TT_ERR_FORMAT, "%s: pickle: %s at byte %zu", v->name, what, (size_t)(v->p - v->start));
}

static tt_status oom(vm *v) {
  if (v->over)
    return tt_error(TT_ERR_FORMAT,
                    "%s: the pickle builds more than %zu values (a checkpoint needs far fewer: corrupt or hostile "
                    "file? set TAMING_MAX_PICKLE_VALUES to raise the cap)",
                    v->name, v->limit);
  return tt_error(TT_ERR_NOMEM, "%s: out of memory parsing the pickle", v->name);
}

/* Counts one more value of a kind; false (and v->over) past the cap. */
static bool count(vm *v, size_t *n) {
  if (*n >= v->limit) {
    v->over = true;
    return false;
  }
  (*n)++;
  return true;
}

static pk_node *node(vm *v, pk_type t) {
  if (!count(v, &v->nodes)) return NULL;
  pk_chunk *c = v->res->chunks;
  if (!c || c->used == CHUNK_NODES) {
    c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->next = v->res->chunks;
    v->res->chunks = c;
  }
  pk_node *n = &c->nodes[c->used++];
  n->type = t;
  n->dtype = -1;
  return n;
}

void tt_pickle_free(pk_result *r) {
  for (int i = 0; i < r->n_unsafe && i < PK_MAX_UNSAFE; i++) free(r->unsafe[i]);
  free(r->unsafe);
  r->unsafe = NULL;
  r->n_unsafe = 0;
  free(r->storages);
  r->storages = NULL;
  r->n_storages = r->storages_cap = 0;
  pk_chunk *c = r->chunks;
  while (c) {
    for (int i = 0; i < c->used; i++) {
      free(c->nodes[i].s);
      free(c->nodes[i].key);
      free(c->nodes[i].items);
      free(c->nodes[i].t);
    }
    pk_chunk *next = c->next;
    free(c);
    c = next;
  }
  r->chunks = NULL;
  r->root = NULL;
}

static tt_status add_item(vm *v, pk_node *c, pk_node *item) {
  if (!count(v, &v->items)) return oom(v);
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 4;
    pk_node **items = realloc(c->items, sizeof *items * cap);
    if (!items) return oom(v);
    c->items = items;
    c->cap = cap;
  }
  c->items[c->n++] = item;
  return TT_OK;
}

static pk_node *str_node(vm *v, pk_type t, const uint8_t *s, size_t len) {
  pk_node *n = node(v, t);
  if (!n) return NULL;
  n->s = malloc(len + 1);
  if (!n->s) return NULL;
  memcpy(n->s, s, len);
  n->s[len] = 0;
  n->slen = len;
  return n;
}

static pk_node *opaque(vm *v, const char *what) {
  pk_node *n = node(v, PK_OBJ);
  if (n && !(n->s = strdup(what))) return NULL;
  return n;
}

/* ---- stack, marks, memo ---- */

static tt_status push(vm *v, pk_node *n) {
  if (!n) return oom(v);
  if (v->sp >= v->limit) {
    v->over = true;
    return oom(v);
  }
  if (v->sp == v->scap) {
    size_t cap = v->scap ? v->scap * 2 : 64;
    pk_node **s = realloc(v->stack, sizeof *s * cap);
    if (!s) return oom(v);
    v->stack = s;
    v->scap = cap;
  }
  v->stack[v->sp++] = n;
  return TT_OK;
}

static size_t fence(const vm *v) { return v->nmarks ? v->marks[v->nmarks - 1] : 0; }

static tt_status pop(vm *v, pk_node **out) {
  if (v->sp <= fence(v)) return err(v, "stack underflow");
  *out = v->stack[--v->sp];
  return TT_OK;
}

static tt_status top(vm *v, pk_node **out) {
  if (v->sp <= fence(v)) return err(v, "stack underflow");
  *out = v->stack[v->sp - 1];
  return TT_OK;
}

/* Pops the topmost mark; the items above it are stack[*k .. sp). */
static tt_status pop_mark(vm *v, size_t *k) {
  if (!v->nmarks) return err(v, "no MARK on the stack");
  *k = v->marks[--v->nmarks];
  return TT_OK;
}

static size_t memo_find(const vm *v, uint64_t key) {
  size_t mask = v->memo_cap - 1, i = (size_t)(key * 0x9E3779B97F4A7C15ull) & mask;
  while (v->memo[i].val && v->memo[i].key != key) i = (i + 1) & mask;
  return i;
}

static tt_status memo_put(vm *v, uint64_t key, pk_node *val) {
  if (v->memo_len >= v->limit) {
    v->over = true;
    return oom(v);
  }
  if (2 * (v->memo_len + 1) > v->memo_cap) {
    size_t cap = v->memo_cap ? v->memo_cap * 2 : 256;
    memo_slot *old = v->memo;
    size_t oldcap = v->memo_cap;
    v->memo = calloc(cap, sizeof *v->memo);
    if (!v->memo) {
      v->memo = old;
      return oom(v);
    }
    v->memo_cap = cap;
    for (size_t i = 0; i < oldcap; i++)
      if (old[i].val) v->memo[memo_find(v, old[i].key)] = old[i];
    free(old);
  }
  size_t i = memo_find(v, key);
  if (!v->memo[i].val) v->memo_len++;
  v->memo[i] = (memo_slot){key, val};
  return TT_OK;
}

static tt_status memo_get(vm *v, uint64_t key) {
  if (v->memo_cap) {
    size_t i = memo_find(v, key);
    if (v->memo[i].val) return push(v, v->memo[i].val);
  }
  char k[32];
  snprintf(k, sizeof k, "%" PRIu64, key);
  return err(v, "memo key %s is not defined", k);
}

/* ---- reading arguments ---- */

static tt_status need(vm *v, size_t n) {
  if ((size_t)(v->end - v->p) < n) return err(v, "truncated (a value runs past the end)");
  return TT_OK;
}

static uint64_t le(const uint8_t *p, int n) {
  uint64_t x = 0;
  for (int i = n - 1; i >= 0; i--) x = x << 8 | p[i];
  return x;
}

static tt_status arg_uint(vm *v, int n, uint64_t *out) {
  TT_TRY(need(v, (size_t)n));
  *out = le(v->p, n);
  v->p += n;
  return TT_OK;
}

/* A text argument up to '\n' (protocol 0 opcodes and GLOBAL). */
static tt_status line(vm *v, const char **s, size_t *len) {
  const uint8_t *nl = memchr(v->p, '\n', (size_t)(v->end - v->p));
  if (!nl) return err(v, "truncated (a text argument has no end of line)");
  *s = (const char *)v->p;
  *len = (size_t)(nl - v->p);
  v->p = nl + 1;
  return TT_OK;
}

static tt_status line_int(vm *v, int64_t *out, bool *is_bool) {
  const char *s = NULL;
  size_t len = 0;
  TT_TRY(line(v, &s, &len));
  char buf[64];
  if (len && s[len - 1] == 'L') len--;   /* protocol 0 LONG */
  if (len == 0 || len >= sizeof buf) return err(v, "bad integer literal");
  memcpy(buf, s, len);
  buf[len] = 0;
  if (is_bool) *is_bool = !strcmp(buf, "00") || !strcmp(buf, "01");
  char *end;
  *out = strtoll(buf, &end, 10);
  if (*end) return err(v, "bad integer literal '%s'", buf);
  return TT_OK;
}

/* ---- globals ---- */

/* Modules whose globals run programs or code, or touch files and sockets, and
 * hold no data type that a checkpoint could legitimately carry (pathlib paths,
 * signal numbers or enums in hyper-parameters stay allowed, as inert values). */
static const char *const banned_modules[] = {
    "os", "posix", "nt", "subprocess", "_posixsubprocess", "sys", "shutil", "socket", "ctypes", "importlib",
    "runpy", "pty", "code", "codeop", "marshal", "pickle", "_pickle", "cPickle", "dill", "multiprocessing",
    "pdb", "timeit", "webbrowser", "commands", "io", "_io", "tempfile", NULL};

/* builtins that are plain data types; every other builtin (eval, exec, getattr,
 * __import__, open, compile, ...) is refused. */
static const char *const safe_builtins[] = {"set", "frozenset", "dict", "list", "tuple", "int", "float",
                                            "complex", "bool", "str", "bytes", "bytearray", "slice",
                                            "range", "object", NULL};

static bool in_list(const char *const *l, const char *s) {
  for (; *l; l++)
    if (!strcmp(*l, s)) return true;
  return false;
}

/* Globals that only rebuild tensors or plain data: what torch.load's
 * weights_only unpickler allows, plus the data types and Lightning classes that
 * official Lightning checkpoints carry in callbacks and hyper-parameters. */
static const char *const allowed_globals[] = {
    "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor", "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state", "torch._tensor._rebuild_from_type_v2", "torch.Size",
    "torch.Tensor", "torch.nn.parameter.Parameter", "torch.device", "torch.serialization._get_layout",
    "torch.float32", "torch.float", "torch.float64", "torch.double", "torch.float16", "torch.half",
    "torch.bfloat16", "torch.int64", "torch.long", "torch.int32", "torch.int", "torch.int16", "torch.int8",
    "torch.uint8", "torch.bool", "torch.strided",
    "collections.OrderedDict", "collections.defaultdict", "collections.Counter", "copyreg._reconstructor",
    "_codecs.encode",   /* bytes in protocol 2 */
    "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct", "numpy.dtype", "numpy.ndarray",
    "pathlib.Path", "pathlib.PosixPath", "pathlib.PurePosixPath", "pathlib.WindowsPath", "pathlib.PureWindowsPath",
    "argparse.Namespace", NULL};

static bool is_identifier(const char *s) {
  if (!*s || (*s >= '0' && *s <= '9')) return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_')) return false;
  return true;
}

static bool is_dict_class(const char *g);

static bool allowed_global(const char *module, const char *name, const char *full) {
  if (in_list(allowed_globals, full)) return true;
  if (!strcmp(module, "builtins")) return in_list(safe_builtins, name);
  if (!is_identifier(name)) return false;   /* "a.b" is an attribute path: never data */
  size_t nl = strlen(name);
  if (!strcmp(module, "torch") && nl > 7 && !strcmp(name + nl - 7, "Storage")) return true;
  if (!strcmp(module, "numpy.dtypes") && nl > 5 && !strcmp(name + nl - 5, "DType")) return true;
  /* Lightning's own classes: the callbacks (as dict keys and inert objects) and AttributeDict */
  if (!strncmp(module, "pytorch_lightning.callbacks.", 28) || !strncmp(module, "lightning.pytorch.callbacks.", 28))
    return name[0] >= 'A' && name[0] <= 'Z';
  return is_dict_class(full);
}

static tt_status note_unsafe(vm *v, const char *full) {
  pk_result *r = v->res;
  int kept = r->n_unsafe < PK_MAX_UNSAFE ? r->n_unsafe : PK_MAX_UNSAFE;
  for (int i = 0; i < kept; i++)
    if (!strcmp(r->unsafe[i], full)) return TT_OK;
  if (r->n_unsafe >= PK_MAX_UNSAFE) {
    r->n_unsafe++;   /* counted, not kept */
    return TT_OK;
  }
  if (!r->unsafe && !(r->unsafe = calloc(PK_MAX_UNSAFE, sizeof *r->unsafe))) return oom(v);
  if (!(r->unsafe[r->n_unsafe] = strdup(full))) return oom(v);
  r->n_unsafe++;
  return TT_OK;
}

static tt_status check_global(vm *v, const char *module, const char *name) {
  char top[64];
  size_t k = strcspn(module, ".");
  snprintf(top, sizeof top, "%.*s", (int)(k < sizeof top - 1 ? k : sizeof top - 1), module);
  bool bad = in_list(banned_modules, top) ||
             (!strcmp(module, "builtins") && !in_list(safe_builtins, name));
  /* a dotted name is an attribute path that Python follows (torch + "os.system"
   * is os.system): refuse one that passes through a banned module */
  char part[64];
  for (const char *p = name; !bad && strchr(p, '.'); p = strchr(p, '.') + 1) {
    size_t n = strcspn(p, ".");
    snprintf(part, sizeof part, "%.*s", (int)(n < sizeof part - 1 ? n : sizeof part - 1), p);
    if (in_list(banned_modules, part)) bad = true;
  }
  if (bad)
    return tt_error(TT_ERR_FORMAT,
                    "refusing to call %s.%s from the pickle in %s: a checkpoint never needs it and a Python "
                    "loader would run it (nothing was executed; do not load this file with torch.load)",
                    module, name, v->name);
  if (!strcmp(module, "torch.storage") && !strcmp(name, "_load_from_bytes"))
    return tt_error(TT_ERR_UNSUPPORTED,
                    "%s: the pickle holds a nested torch.save (torch.storage._load_from_bytes), which is not "
                    "read; re-save the checkpoint with plain tensors",
                    v->name);
  char full[520];
  snprintf(full, sizeof full, "%s.%s", module, name);
  return allowed_global(module, name, full) ? TT_OK : note_unsafe(v, full);
}

static tt_status make_global(vm *v, const char *module, size_t mlen, const char *name, size_t nlen) {
  char m[256], n[256];
  if (mlen == 0 || nlen == 0 || mlen >= sizeof m || nlen >= sizeof n) return err(v, "bad global name");
  memcpy(m, module, mlen);
  m[mlen] = 0;
  memcpy(n, name, nlen);
  n[nlen] = 0;
  /* no NUL, newline or escape: names end up in one-line messages on a terminal */
  for (size_t i = 0; i < mlen + nlen; i++) {
    unsigned char ch = (unsigned char)(i < mlen ? m[i] : n[i - mlen]);
    if (ch < 0x20 || ch == 0x7f) return err(v, "bad global name (control character)");
  }
  /* Python 2 spellings, as the Python 3 unpickler maps them */
  if (!strcmp(m, "__builtin__")) strcpy(m, "builtins");
  if (!strcmp(m, "copy_reg")) strcpy(m, "copyreg");
  TT_TRY(check_global(v, m, n));
  pk_node *g = node(v, PK_GLOBAL);
  if (!g || !(g->s = malloc(strlen(m) + strlen(n) + 2))) return oom(v);
  sprintf(g->s, "%s.%s", m, n);
  return push(v, g);
}

/* ---- the allowlisted calls ---- */

static int storage_dtype(const char *cls) {
  static const struct { const char *name; tt_dtype dt; } map[] = {
      {"FloatStorage", TT_F32}, {"DoubleStorage", TT_F64}, {"HalfStorage", TT_F16},
      {"BFloat16Storage", TT_BF16}, {"LongStorage", TT_I64}, {"IntStorage", TT_I32},
      {"ByteStorage", TT_U8}, {"BoolStorage", TT_U8}};
  const char *dot = strrchr(cls, '.');
  if (!dot) return -1;
  if (strncmp(cls, "torch.", 6) != 0) return -1;
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (!strcmp(dot + 1, map[i].name)) return map[i].dt;
  return -1;
}

static bool is_int(const pk_node *n) { return n && (n->type == PK_INT || n->type == PK_BOOL); }

static tt_status int_tuple(vm *v, const pk_node *t, int64_t *out, int *n, const char *what) {
  if (!t || (t->type != PK_TUPLE && t->type != PK_LIST) || t->n > TT_MAX_DIMS)
    return err(v, "_rebuild_tensor: %s is not a tuple of at most 8 ints", what);
  for (size_t i = 0; i < t->n; i++) {
    if (!is_int(t->items[i])) return err(v, "_rebuild_tensor: %s is not a tuple of ints", what);
    out[i] = t->items[i]->i;
  }
  *n = (int)t->n;
  return TT_OK;
}

/* torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 * backward_hooks[, metadata]) and the older _rebuild_tensor(storage, offset, size, stride). */
static tt_status rebuild_tensor(vm *v, const pk_node *args, pk_node **out) {
  if (args->n < 4 || !args->items[0] || args->items[0]->type != PK_STORAGE || !is_int(args->items[1]))
    return err(v, "_rebuild_tensor: expected (storage, offset, size, stride, ...)");
  pk_node *n = node(v, PK_TENSOR);
  if (!n || !(n->t = calloc(1, sizeof *n->t))) return oom(v);
  n->t->storage = args->items[0];
  n->t->offset = args->items[1]->i;
  int ns;
  TT_TRY(int_tuple(v, args->items[2], n->t->shape, &n->t->ndim, "size"));
  TT_TRY(int_tuple(v, args->items[3], n->t->stride, &ns, "stride"));
  if (ns != n->t->ndim) return err(v, "_rebuild_tensor: size and stride have different lengths");
  *out = n;
  return TT_OK;
}

static tt_status fill_from(vm *v, pk_node *dst, const pk_node *src, bool pairs) {
  if (!src) return TT_OK;
  if (pairs && src->type == PK_DICT) {
    for (size_t i = 0; i < src->n; i++) TT_TRY(add_item(v, dst, src->items[i]));
    return TT_OK;
  }
  if (src->type != PK_LIST && src->type != PK_TUPLE && src->type != PK_SET) return TT_OK;
  for (size_t i = 0; i < src->n; i++) {
    const pk_node *it = src->items[i];
    if (!pairs) {
      TT_TRY(add_item(v, dst, src->items[i]));
    } else if (it && (it->type == PK_TUPLE || it->type == PK_LIST) && it->n == 2) {
      TT_TRY(add_item(v, dst, it->items[0]));
      TT_TRY(add_item(v, dst, it->items[1]));
    }
  }
  return TT_OK;
}

static bool is_dict_class(const char *g) {
  if (!strcmp(g, "collections.OrderedDict") || !strcmp(g, "builtins.dict") || !strcmp(g, "collections.defaultdict") ||
      !strcmp(g, "collections.Counter"))
    return true;
  /* Lightning's AttributeDict (a dict subclass), wherever a Lightning version keeps it */
  const char *dot = strrchr(g, '.');
  return dot && !strcmp(dot + 1, "AttributeDict") &&
         (!strncmp(g, "pytorch_lightning.", 18) || !strncmp(g, "lightning.", 10) ||
          !strncmp(g, "lightning_fabric.", 17));
}

/* Interprets a call of `fn` with the argument tuple `args`; never runs anything. */
static tt_status call(vm *v, pk_node *fn, pk_node *args, int depth, pk_node **out) {
  static const pk_node empty = {.type = PK_TUPLE};
  if (!args || (args->type != PK_TUPLE && args->type != PK_LIST)) args = (pk_node *)&empty;
  const char *g = fn && fn->type == PK_GLOBAL ? fn->s : NULL;
  if (!g || depth > 4) {
    *out = opaque(v, "(object)");
    return *out ? TT_OK : oom(v);
  }
  pk_node *a0 = args->n > 0 ? args->items[0] : NULL;
  if (is_dict_class(g)) {
    *out = node(v, PK_DICT);
    if (!*out) return oom(v);
    return fill_from(v, *out, a0, true);
  }
  if (!strcmp(g, "builtins.set") || !strcmp(g, "builtins.frozenset") || !strcmp(g, "builtins.list") ||
      !strcmp(g, "builtins.tuple") || !strcmp(g, "torch.Size")) {
    pk_type t = !strcmp(g, "builtins.list") ? PK_LIST : strstr(g, "set") ? PK_SET : PK_TUPLE;
    *out = node(v, t);
    if (!*out) return oom(v);
    return fill_from(v, *out, a0, false);
  }
  if (!strcmp(g, "torch._utils._rebuild_tensor_v2") || !strcmp(g, "torch._utils._rebuild_tensor"))
    return rebuild_tensor(v, args, out);
  if (!strcmp(g, "torch._utils._rebuild_parameter") || !strcmp(g, "torch._utils._rebuild_parameter_with_state")) {
    if (!a0 || a0->type != PK_TENSOR) return err(v, "_rebuild_parameter: its data is not a tensor");
    *out = a0;
    return TT_OK;
  }
  if (!strcmp(g, "torch._tensor._rebuild_from_type_v2") && args->n >= 3)
    return call(v, a0, args->items[2], depth + 1, out);
  if (!strcmp(g, "copyreg._reconstructor") && a0 && a0->type == PK_GLOBAL && is_dict_class(a0->s)) {
    *out = node(v, PK_DICT);
    return *out ? TT_OK : oom(v);
  }
  if (!strcmp(g, "copyreg.__newobj__") && a0) {
    pk_node *rest = node(v, PK_TUPLE);
    if (!rest) return oom(v);
    for (size_t i = 1; i < args->n; i++) TT_TRY(add_item(v, rest, args->items[i]));
    return call(v, a0, rest, depth + 1, out);
  }
  /* anything else: an inert object that remembers what it would have been */
  *out = opaque(v, g);
  return *out ? TT_OK : oom(v);
}

/* BINPERSID: ('storage', storage class, key, location, numel) in zip files,
 * ('storage', storage class, root key, location, numel, view metadata) in
 * legacy ones, where view metadata (a storage view, PyTorch < 0.4) is None. */
static tt_status persistent_load(vm *v, pk_node *pid) {
  if (!pid || pid->type != PK_TUPLE || pid->n < 5 || !pid->items[0] || pid->items[0]->type != PK_STR ||
      strcmp(pid->items[0]->s, "storage") != 0)
    return err(v, "unsupported persistent id (expected a ('storage', ...) tuple)");
  pk_node *cls = pid->items[1], *key = pid->items[2], *numel = pid->items[4];
  if (!cls || cls->type != PK_GLOBAL || !key || (key->type != PK_STR && key->type != PK_INT) || !is_int(numel))
    return err(v, "malformed storage persistent id");
  pk_node *n = node(v, PK_STORAGE);
  if (!n || !(n->s = strdup(cls->s))) return oom(v);
  if (key->type == PK_STR) n->key = strdup(key->s);
  else if ((n->key = malloc(24))) snprintf(n->key, 24, "%" PRId64, key->i);
  if (!n->key) return oom(v);
  n->dtype = storage_dtype(cls->s);
  n->i = numel->i;
  if (n->i < 0) return err(v, "storage with a negative size");
  n->view = pid->n > 5 && pid->items[5] && pid->items[5]->type != PK_NONE;
  /* the legacy reader finds each storage's bytes through this list */
  pk_result *r = v->res;
  if (r->n_storages == r->storages_cap) {
    size_t cap = r->storages_cap ? r->storages_cap * 2 : 64;
    pk_node **l = realloc(r->storages, sizeof *l * cap);
    if (!l) return oom(v);
    r->storages = l;
    r->storages_cap = cap;
  }
  r->storages[r->n_storages++] = n;
  return push(v, n);
}

/* ---- the machine ---- */

static tt_status collect(vm *v, pk_type t, size_t k) {
  pk_node *n = node(v, t);
  if (!n) return oom(v);
  for (size_t i = k; i < v->sp; i++) TT_TRY(add_item(v, n, v->stack[i]));
  v->sp = k;
  return push(v, n);
}

static tt_status run(vm *v) {
  while (v->p < v->end) {
    uint8_t op = *v->p++;
    uint64_t u;
    pk_node *a = NULL, *b = NULL, *c = NULL, *n = NULL;
    size_t k = 0;
    const char *s1 = NULL, *s2 = NULL;
    size_t l1 = 0, l2 = 0;
    switch (op) {
      case 0x80: TT_TRY(arg_uint(v, 1, &u)); if (u > 5) return err(v, "unsupported pickle protocol"); break;
      case 0x95: TT_TRY(arg_uint(v, 8, &u)); break;   /* FRAME: only a read-ahead hint */
      case '.':  /* STOP */
        TT_TRY(pop(v, &v->res->root));
        return TT_OK;
      case '(': /* MARK */
        if (v->nmarks >= v->limit) {
          v->over = true;
          return oom(v);
        }
        if (v->nmarks == v->mcap) {
          size_t cap = v->mcap ? v->mcap * 2 : 32;
          size_t *m = realloc(v->marks, sizeof *m * cap);
          if (!m) return oom(v);
          v->marks = m;
          v->mcap = cap;
        }
        v->marks[v->nmarks++] = v->sp;
        break;
      case '0': /* POP: removes the top item, or the mark when none is above it */
        if (v->sp > fence(v)) v->sp--;
        else TT_TRY(pop_mark(v, &k));
        break;
      case '1': TT_TRY(pop_mark(v, &k)); v->sp = k; break;   /* POP_MARK */
      case '2': TT_TRY(top(v, &a)); TT_TRY(push(v, a)); break; /* DUP */
      case 'N': TT_TRY(push(v, node(v, PK_NONE))); break;
      case 0x88: case 0x89:
        if ((n = node(v, PK_BOOL))) n->i = op == 0x88;
        TT_TRY(push(v, n));
        break;
      case 'J': case 'K': case 'M': {   /* BININT, BININT1, BININT2 */
        int w = op == 'J' ? 4 : op == 'K' ? 1 : 2;
        TT_TRY(arg_uint(v, w, &u));
        if ((n = node(v, PK_INT))) n->i = op == 'J' ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
        TT_TRY(push(v, n));
        break;
      }
      case 'I': case 'L': {   /* INT, LONG (text) */
        int64_t x;
        bool isb = false;
        TT_TRY(line_int(v, &x, op == 'I' ? &isb : NULL));
        if ((n = node(v, isb ? PK_BOOL : PK_INT))) n->i = x;
        TT_TRY(push(v, n));
        break;
      }
      case 0x8a: case 0x8b: {   /* LONG1, LONG4: little-endian two's complement */
        TT_TRY(arg_uint(v, op == 0x8a ? 1 : 4, &u));
        TT_TRY(need(v, (size_t)u));
        const uint8_t *p = v->p;
        v->p += u;
        bool neg = u > 0 && (p[u - 1] & 0x80);
        bool fits = true;
        for (uint64_t i = 8; i < u; i++)
          if (p[i] != (neg ? 0xff : 0x00)) fits = false;
        if (u > 8 && fits && ((p[7] & 0x80) != 0) != neg) fits = false;
        if (!fits) {
          TT_TRY(push(v, opaque(v, "(an integer wider than 64 bits)")));
          break;
        }
        uint64_t x = neg ? ~0ull : 0;
        for (uint64_t i = 0; i < u && i < 8; i++) x = (x & ~(0xffull << (8 * i))) | (uint64_t)p[i] << (8 * i);
        if ((n = node(v, PK_INT))) n->i = (int64_t)x;
        TT_TRY(push(v, n));
        break;
      }
      case 'G': {   /* BINFLOAT: big-endian double */
        TT_TRY(need(v, 8));
        uint64_t x = 0;
        for (int i = 0; i < 8; i++) x = x << 8 | v->p[i];
        v->p += 8;
        if ((n = node(v, PK_FLOAT))) memcpy(&n->f, &x, 8);
        TT_TRY(push(v, n));
        break;
      }
      case 'F': {   /* FLOAT (text) */
        TT_TRY(line(v, &s1, &l1));
        char buf[64], *end;
        if (l1 == 0 || l1 >= sizeof buf) return err(v, "bad float literal");
        memcpy(buf, s1, l1);
        buf[l1] = 0;
        double d = strtod(buf, &end);
        if (*end) return err(v, "bad float literal '%s'", buf);
        if ((n = node(v, PK_FLOAT))) n->f = d;
        TT_TRY(push(v, n));
        break;
      }
      case 'X': case 0x8c: case 0x8d:   /* BINUNICODE, SHORT_BINUNICODE, BINUNICODE8 */
      case 'T': case 'U':               /* BINSTRING, SHORT_BINSTRING (Python 2 str) */
      case 'B': case 'C': case 0x8e: case 0x96: {   /* BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8 */
        int w = (op == 0x8c || op == 'U' || op == 'C') ? 1 : (op == 0x8d || op == 0x8e || op == 0x96) ? 8 : 4;
        TT_TRY(arg_uint(v, w, &u));
        if (op == 'T' && (u & 0x80000000u)) return err(v, "negative string length");
        TT_TRY(need(v, (size_t)u));
        bool bytes = op == 'B' || op == 'C' || op == 0x8e || op == 0x96;
        n = str_node(v, bytes ? PK_BYTES : PK_STR, v->p, (size_t)u);
        v->p += u;
        TT_TRY(push(v, n));
        break;
      }
      case 'S': case 'V': {   /* STRING (quoted repr), UNICODE (raw): protocol 0, kept verbatim */
        TT_TRY(line(v, &s1, &l1));
        if (op == 'S' && l1 >= 2 && (s1[0] == '\'' || s1[0] == '"') && s1[l1 - 1] == s1[0]) {
          s1++;
          l1 -= 2;
        }
        TT_TRY(push(v, str_node(v, PK_STR, (const uint8_t *)s1, l1)));
        break;
      }
      case ')': TT_TRY(push(v, node(v, PK_TUPLE))); break;
      case ']': TT_TRY(push(v, node(v, PK_LIST))); break;
      case '}': TT_TRY(push(v, node(v, PK_DICT))); break;
      case 0x8f: TT_TRY(push(v, node(v, PK_SET))); break;
      case 't': TT_TRY(pop_mark(v, &k)); TT_TRY(collect(v, PK_TUPLE, k)); break;
      case 'l': TT_TRY(pop_mark(v, &k)); TT_TRY(collect(v, PK_LIST, k)); break;
      case 0x91: TT_TRY(pop_mark(v, &k)); TT_TRY(collect(v, PK_SET, k)); break;
      case 'd':
        TT_TRY(pop_mark(v, &k));
        if ((v->sp - k) % 2) return err(v, "DICT with an odd number of items");
        TT_TRY(collect(v, PK_DICT, k));
        break;
      case 0x85: case 0x86: case 0x87: {   /* TUPLE1..3 */
        size_t m = (size_t)(op - 0x84);
        if (v->sp < fence(v) + m) return err(v, "stack underflow");
        TT_TRY(collect(v, PK_TUPLE, v->sp - m));
        break;
      }
      case 'a': case 'e': case 0x90: case 's': case 'u': {   /* APPEND(S), ADDITEMS, SETITEM(S) */
        bool marked = op == 'e' || op == 0x90 || op == 'u';
        bool dict = op == 's' || op == 'u';
        if (marked) TT_TRY(pop_mark(v, &k));
        else k = v->sp - (dict ? 2 : 1);
        if (!marked && v->sp < fence(v) + (dict ? 3 : 2)) return err(v, "stack underflow");
        if (k < 1 || k <= fence(v)) return err(v, "stack underflow");
        pk_node *target = v->stack[k - 1];
        if (dict && (v->sp - k) % 2) return err(v, "SETITEMS with an odd number of items");
        pk_type want = dict ? PK_DICT : op == 0x90 ? PK_SET : PK_LIST;
        if (target->type == want) {
          for (size_t i = k; i < v->sp; i++) TT_TRY(add_item(v, target, v->stack[i]));
        } else if (target->type != PK_OBJ) {
          /* items added to an opaque object are dropped with it; to anything else it is corrupt */
          return err(v, "items added to a value that is not a container");
        }
        v->sp = k;
        break;
      }
      case 'c': /* GLOBAL module\nname\n */
        TT_TRY(line(v, &s1, &l1));
        TT_TRY(line(v, &s2, &l2));
        TT_TRY(make_global(v, s1, l1, s2, l2));
        break;
      case 0x93: /* STACK_GLOBAL */
        TT_TRY(pop(v, &b));
        TT_TRY(pop(v, &a));
        if (a->type != PK_STR || b->type != PK_STR) return err(v, "STACK_GLOBAL of non-strings");
        TT_TRY(make_global(v, a->s, a->slen, b->s, b->slen));
        break;
      case 'R': case 0x81: /* REDUCE, NEWOBJ */
        TT_TRY(pop(v, &b));
        TT_TRY(pop(v, &a));
        TT_TRY(call(v, a, b, 0, &n));
        TT_TRY(push(v, n));
        break;
      case 0x92: /* NEWOBJ_EX cls args kwargs */
        TT_TRY(pop(v, &c));
        TT_TRY(pop(v, &b));
        TT_TRY(pop(v, &a));
        TT_TRY(call(v, a, b, 0, &n));
        TT_TRY(push(v, n));
        break;
      case 'b': /* BUILD: __setstate__ / __dict__ update; state of our values is not needed */
        TT_TRY(pop(v, &a));
        TT_TRY(top(v, &b));
        break;
      case 'o': /* OBJ: mark cls args... */
        TT_TRY(pop_mark(v, &k));
        if (k >= v->sp) return err(v, "OBJ without a class");
        a = v->stack[k];
        v->sp = k + 1;   /* slot k (cls) receives the result below; the args are not needed */
        TT_TRY(call(v, a, NULL, 0, &n));
        v->stack[k] = n;
        break;
      case 'i': /* INST module\nname\n, args since the mark */
        TT_TRY(line(v, &s1, &l1));
        TT_TRY(line(v, &s2, &l2));
        TT_TRY(make_global(v, s1, l1, s2, l2));
        TT_TRY(pop(v, &a));
        TT_TRY(pop_mark(v, &k));
        v->sp = k;
        TT_TRY(call(v, a, NULL, 0, &n));
        TT_TRY(push(v, n));
        break;
      case 'Q': /* BINPERSID */
        TT_TRY(pop(v, &a));
        TT_TRY(persistent_load(v, a));
        break;
      case 'P': return err(v, "text persistent ids are not used by torch.save");
      case 0x94: TT_TRY(top(v, &a)); TT_TRY(memo_put(v, v->memo_len, a)); break;   /* MEMOIZE */
      case 'q': case 'r':   /* BINPUT, LONG_BINPUT */
        TT_TRY(arg_uint(v, op == 'q' ? 1 : 4, &u));
        TT_TRY(top(v, &a));
        TT_TRY(memo_put(v, u, a));
        break;
      case 'h': case 'j':   /* BINGET, LONG_BINGET */
        TT_TRY(arg_uint(v, op == 'h' ? 1 : 4, &u));
        TT_TRY(memo_get(v, u));
        break;
      case 'p': case 'g': {   /* PUT, GET (text) */
        int64_t x;
        TT_TRY(line_int(v, &x, NULL));
        if (x < 0) return err(v, "negative memo key");
        if (op == 'g') {
          TT_TRY(memo_get(v, (uint64_t)x));
        } else {
          TT_TRY(top(v, &a));
          TT_TRY(memo_put(v, (uint64_t)x, a));
        }
        break;
      }
      case 0x82: case 0x83: case 0x84:
        return err(v, "copyreg extension codes (EXT1/2/4) are not supported");
      case 0x97: case 0x98:
        return err(v, "out-of-band buffers (protocol 5) are not supported");
      default: {
        char b2[8];
        snprintf(b2, sizeof b2, "0x%02x", op);
        v->p--;
        return err(v, "unknown opcode %s (corrupt file?)", b2);
      }
    }
  }
  return err(v, "truncated (no STOP opcode)");
}

tt_status tt_pickle_parse(const uint8_t *data, size_t len, const char *name, pk_result *out) {
  size_t used;
  return tt_pickle_parse_next(data, len, name, out, &used);
}

tt_status tt_pickle_parse_next(const uint8_t *data, size_t len, const char *name, pk_result *out, size_t *used) {
  memset(out, 0, sizeof *out);
  *used = 0;
  vm v = {.start = data, .p = data, .end = data + len, .name = name, .res = out, .limit = values_limit()};
  tt_status s = run(&v);
  *used = (size_t)(v.p - v.start);
  free(v.stack);
  free(v.marks);
  free(v.memo);
  if (s != TT_OK) tt_pickle_free(out);
  return s;
}

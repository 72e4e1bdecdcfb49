/* ckpt.c — the checkpoint object: the shared file mapping, format detection,
 * name lookup, and the `info` / `convert` helpers of the command line.
 *
 * The format readers (ckpt_torch.c, ckpt_torch_legacy.c, ckpt_safetensors.c) fill a tt_ckpt with
 * tensors that are views onto one MAP_PRIVATE mapping of the file; each view's
 * storage holds a reference on the mapping, so tensors outlive tt_ckpt_close. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "io_internal.h"
#include "taming/checked.h"

/* ---- the mapping ---- */

tt_status tt_mfile_open(const char *path, tt_mfile **out) {
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tt_error(TT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    tt_status s = tt_error(TT_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    close(fd);
    return s;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return tt_error(TT_ERR_IO, "%s: not a regular file", path);
  }
  tt_mfile *m = calloc(1, sizeof *m);
  if (m) m->path = strdup(path);
  if (!m || !m->path) {
    free(m);
    close(fd);
    return tt_error(TT_ERR_NOMEM, "%s: out of memory", path);
  }
  m->refcount = 1;
  m->fd = fd;
  m->size = (uint64_t)st.st_size;
  if (m->size > 0) {
    /* private + writable: in-place updates of loaded weights (training) are
     * copy-on-write and never reach the file */
    void *p = mmap(NULL, (size_t)m->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      tt_status s = tt_error(TT_ERR_IO, "%s: cannot map %" PRIu64 " bytes: %s", path, m->size, strerror(errno));
      close(fd);
      free(m->path);
      free(m);
      return s;
    }
    m->base = p;
  }
  *out = m;
  return TT_OK;
}

tt_mfile *tt_mfile_ref(tt_mfile *m) {
  if (m) atomic_fetch_add_explicit((_Atomic int *)&m->refcount, 1, memory_order_relaxed);
  return m;
}

void tt_mfile_unref(tt_mfile *m) {
  if (!m) return;
  if (atomic_fetch_sub_explicit((_Atomic int *)&m->refcount, 1, memory_order_acq_rel) != 1) return;
  if (m->base) munmap(m->base, (size_t)m->size);
  if (m->fd >= 0) close(m->fd);
  free(m->path);
  free(m);
}

tt_status tt_mfile_read(tt_mfile *m, uint64_t off, void *dst, size_t n, const char *what) {
  if (off > m->size || n > m->size - off)
    return tt_error(TT_ERR_FORMAT, "%s: truncated: %s needs bytes %" PRIu64 "..%" PRIu64 " but the file has %" PRIu64,
                    m->path, what, off, off + (uint64_t)n, m->size);
  if (m->fd < 0) {
    memcpy(dst, m->base + off, n);
    return TT_OK;
  }
  uint8_t *p = dst;
  while (n > 0) {
    ssize_t r = pread(m->fd, p, n, (off_t)off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0)
      return tt_error(TT_ERR_IO, "%s: reading %s: %s", m->path, what, r < 0 ? strerror(errno) : "unexpected end of file");
    p += r;
    off += (uint64_t)r;
    n -= (size_t)r;
  }
  return TT_OK;
}

static void mfile_storage_release(tt_storage *s) { tt_mfile_unref(s->owner); }

tt_storage *tt_mfile_storage(tt_mfile *m, uint64_t off, size_t nbytes, size_t align) {
  if (off > m->size || nbytes > m->size - off) {
    tt_error(TT_ERR_FORMAT, "%s: bytes %" PRIu64 "..%" PRIu64 " are outside the file (%" PRIu64 " bytes)", m->path,
             off, off + (uint64_t)nbytes, m->size);
    return NULL;
  }
  uint8_t *p = m->base ? m->base + off : NULL;
  if (align > 1 && ((uintptr_t)p % align) != 0) {
    tt_storage *s = tt_storage_new(nbytes, TT_CPU);
    if (s) memcpy(s->data, p, nbytes);
    return s;
  }
  tt_storage *s = tt_storage_wrap(p, nbytes, TT_CPU, TT_STORAGE_MMAP, mfile_storage_release, m);
  if (s) tt_mfile_ref(m);
  return s;
}

/* ---- the checkpoint ---- */

tt_status tt_ckpt_add(tt_ckpt *c, const char *name, tt_tensor *t) {
  if (c->n == c->cap) {
    int cap = c->cap ? c->cap * 2 : 64;
    char **names = realloc(c->names, sizeof *names * (size_t)cap);
    if (names) c->names = names;
    tt_tensor **ts = realloc(c->tensors, sizeof *ts * (size_t)cap);
    if (ts) c->tensors = ts;
    if (!names || !ts) {
      tt_tensor_unref(t);
      return tt_error(TT_ERR_NOMEM, "%s: out of memory", c->path);
    }
    c->cap = cap;
  }
  char *nm = strdup(name);
  if (!nm) {
    tt_tensor_unref(t);
    return tt_error(TT_ERR_NOMEM, "%s: out of memory", c->path);
  }
  tt_tensor_set_name(t, name);
  c->names[c->n] = nm;
  c->tensors[c->n++] = t;
  return TT_OK;
}

typedef struct { const char *name; int idx; } name_idx;

static int cmp_name_idx(const void *a, const void *b) {
  const name_idx *x = a, *y = b;
  int r = strcmp(x->name, y->name);
  return r ? r : (x->idx > y->idx) - (x->idx < y->idx);
}

static tt_status build_index(tt_ckpt *c) {
  name_idx *tmp = malloc(sizeof *tmp * (size_t)(c->n ? c->n : 1));
  c->by_name = malloc(sizeof *c->by_name * (size_t)(c->n ? c->n : 1));
  if (!tmp || !c->by_name) {
    free(tmp);
    return tt_error(TT_ERR_NOMEM, "%s: out of memory", c->path);
  }
  for (int i = 0; i < c->n; i++) tmp[i] = (name_idx){c->names[i], i};
  qsort(tmp, (size_t)c->n, sizeof *tmp, cmp_name_idx);
  for (int i = 0; i < c->n; i++) {
    if (i > 0 && strcmp(tmp[i].name, tmp[i - 1].name) == 0) {
      tt_status s = tt_error(TT_ERR_FORMAT, "%s: tensor '%s' appears twice", c->path, tmp[i].name);
      free(tmp);
      return s;
    }
    c->by_name[i] = tmp[i].idx;
  }
  free(tmp);
  return TT_OK;
}

/* The first bytes of a legacy (pre-1.6) torch.save file: the pickled magic
 * number 0x1950a86a20f9469cfc6c as a LONG1 opcode. */
static const uint8_t legacy_magic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

static bool has_legacy_magic(const uint8_t *h, size_t n) {
  if (n < 2 || h[0] != 0x80) return false;
  for (size_t i = 2; i + sizeof legacy_magic <= n; i++)
    if (memcmp(h + i, legacy_magic, sizeof legacy_magic) == 0) return true;
  return false;
}

/* The oldest torch.save wrote a tar archive (sys_info, pickle, tensors, storages):
 * "ustar" at byte 257 of the first header. */
static bool is_tar(const tt_ckpt *c) {
  char magic[5];
  return c->file->size >= 512 && tt_mfile_read(c->file, 257, magic, 5, "the tar header") == TT_OK &&
         !memcmp(magic, "ustar", 5);
}

static tt_status not_a_checkpoint(const tt_ckpt *c, const uint8_t *h, size_t n) {
  const char *hint = "expected a PyTorch zip checkpoint (.ckpt/.pt/.pth) or a .safetensors file";
  if (n == 0) hint = "the file is empty";
  else if (n >= 8 && memcmp(h, "version ", 8) == 0)
    hint = "this looks like a Git LFS pointer; fetch the real file with `git lfs pull`";
  else if (h[0] == '<') hint = "this looks like an HTML page, not a model (a failed download?)";
  else if (h[0] == 0x80) hint = "a bare pickle, not a torch.save file; only torch.save zip files are read";
  else if (n >= 2 && h[0] == 0x1f && h[1] == 0x8b) hint = "a gzip file; decompress it first";
  char hex[3 * 8 + 1] = "";
  for (size_t i = 0; i < n && i < 8; i++) snprintf(hex + 3 * i, 4, "%02x ", h[i]);
  if (n) hex[3 * (n < 8 ? n : 8) - 1] = 0;
  return tt_error(TT_ERR_FORMAT, "%s: not a checkpoint (%s%s%s)", c->path, hint, n ? "; it starts with bytes " : "",
                  hex);
}

tt_status tt_ckpt_open(const char *path, tt_ckpt **out) { return tt_ckpt_open_with(path, NULL, out); }

tt_status tt_ckpt_open_with(const char *path, const tt_ckpt_options *opts, tt_ckpt **out) {
  *out = NULL;
  tt_ckpt *c = calloc(1, sizeof *c);
  if (c) c->path = strdup(path);
  if (!c || !c->path) {
    free(c);
    return tt_error(TT_ERR_NOMEM, "%s: out of memory", path);
  }
  c->meta = tt_value_map();
  c->allow_unsafe_globals = opts && opts->allow_unsafe_globals;
  tt_status s = tt_mfile_open(path, &c->file);
  if (s != TT_OK) {
    tt_ckpt_close(c);
    return s;
  }
  uint8_t h[32];
  size_t hn = c->file->size < sizeof h ? (size_t)c->file->size : sizeof h;
  s = tt_mfile_read(c->file, 0, h, hn, "the file header");
  if (s == TT_OK) {
    uint64_t stlen = 0;
    if (hn >= 8) memcpy(&stlen, h, 8);
    if (hn >= 4 && h[0] == 'P' && h[1] == 'K' && ((h[2] == 3 && h[3] == 4) || (h[2] == 5 && h[3] == 6))) {
      c->format = "torch-zip";
      s = tt_ckpt_open_torch(c);
    } else if (has_legacy_magic(h, hn)) {
      c->format = "torch-legacy";
      s = tt_ckpt_open_torch_legacy(c);
    } else if (is_tar(c)) {
      s = tt_error(TT_ERR_UNSUPPORTED,
                   "%s: a tar archive, as torch.save wrote before PyTorch 0.1.10, which is not read; re-save it with "
                   "a recent PyTorch (torch.save(torch.load(OLD), NEW))",
                   path);
    } else if (hn > 8 && h[8] == '{' && stlen >= 2) {
      /* a JSON object after a length: the reader checks the length against the cap and the file */
      c->format = "safetensors";
      s = tt_ckpt_open_safetensors(c);
    } else {
      s = not_a_checkpoint(c, h, hn);
    }
  }
  if (s == TT_OK) s = build_index(c);
  /* every header has been read: later reads go through the mapping */
  if (c->file && c->file->fd >= 0) {
    close(c->file->fd);
    c->file->fd = -1;
  }
  if (s != TT_OK) {
    tt_ckpt_close(c);
    return s;
  }
  *out = c;
  return TT_OK;
}

void tt_ckpt_close(tt_ckpt *c) {
  if (!c) return;
  for (int i = 0; i < c->n; i++) {
    tt_tensor_unref(c->tensors[i]);
    free(c->names[i]);
  }
  free(c->tensors);
  free(c->names);
  free(c->by_name);
  tt_value_clear(&c->meta);
  for (int i = 0; i < c->n_unsafe && i < PK_MAX_UNSAFE; i++) free(c->unsafe[i]);
  free(c->unsafe);
  tt_mfile_unref(c->file);
  free(c->path);
  free(c);
}

const char *tt_ckpt_path(const tt_ckpt *c) { return c->path; }
const char *tt_ckpt_format(const tt_ckpt *c) { return c->format; }
int tt_ckpt_count(const tt_ckpt *c) { return c->n; }
const char *tt_ckpt_name(const tt_ckpt *c, int i) { return i >= 0 && i < c->n ? c->names[i] : NULL; }
tt_tensor *tt_ckpt_tensor(const tt_ckpt *c, int i) { return i >= 0 && i < c->n ? c->tensors[i] : NULL; }
const tt_value *tt_ckpt_meta(const tt_ckpt *c) { return &c->meta; }
int tt_ckpt_unsafe_count(const tt_ckpt *c) { return c->n_unsafe; }
const char *tt_ckpt_unsafe_global(const tt_ckpt *c, int i) {
  return i >= 0 && i < c->n_unsafe && i < PK_MAX_UNSAFE ? c->unsafe[i] : NULL;
}

tt_tensor *tt_ckpt_get(const tt_ckpt *c, const char *name) {
  int lo = 0, hi = c->n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    int r = strcmp(name, c->names[c->by_name[mid]]);
    if (r == 0) return c->tensors[c->by_name[mid]];
    if (r < 0) hi = mid - 1;
    else lo = mid + 1;
  }
  return NULL;
}

/* ---- command-line helpers ---- */

static void print_scalar(FILE *out, const tt_value *v) {
  switch (v->type) {
    case TT_V_NIL: fputs("(none or an opaque object)", out); break;
    case TT_V_BOOL: fputs(v->u.b ? "true" : "false", out); break;
    case TT_V_INT: fprintf(out, "%" PRId64, v->u.i); break;
    case TT_V_NUM: fprintf(out, "%.9g", v->u.n); break;
    case TT_V_STR: fprintf(out, "\"%s\"", v->u.s); break;
    case TT_V_TENSOR: {
      char buf[128];
      fprintf(out, "tensor %s %s", tt_dtype_name(v->u.t->dtype), tt_tensor_shape_str(v->u.t, buf, sizeof buf));
      break;
    }
    case TT_V_LIST: fprintf(out, "list of %d", v->u.c.len); break;
    case TT_V_MAP: fprintf(out, "map of %d", v->u.c.len); break;
  }
}

tt_status tt_ckpt_print_info(const tt_ckpt *c, FILE *out) {
  /* expanded (stride 0) views can each claim up to 2^63 bytes: sum without wrapping */
  int64_t params = 0;
  size_t bytes = 0;
  bool over = false;
  for (int i = 0; i < c->n; i++)
    if (!tt_i64_add(params, tt_tensor_numel(c->tensors[i]), &params) ||
        !tt_size_add(bytes, tt_tensor_nbytes(c->tensors[i]), &bytes))
      over = true;
  if (over)
    fprintf(out, "%s: %s, %d tensors, over 2^63 elements or bytes (expanded views)\n", c->path, c->format, c->n);
  else
    fprintf(out, "%s: %s, %d tensors, %" PRId64 " elements, %zu bytes\n", c->path, c->format, c->n, params, bytes);
  for (int i = 0; i < c->n; i++) {
    char buf[160];
    fprintf(out, "%s %s %s\n", c->names[i], tt_dtype_name(c->tensors[i]->dtype),
            tt_tensor_shape_str(c->tensors[i], buf, sizeof buf));
  }
  if (c->meta.u.c.len > 0) fputs("-- metadata --\n", out);
  for (int i = 0; i < c->meta.u.c.len; i++) {
    fprintf(out, "%s: ", c->meta.u.c.keys[i]);
    print_scalar(out, &c->meta.u.c.items[i]);
    fputc('\n', out);
  }
  if (ferror(out)) return tt_error(TT_ERR_IO, "%s: writing the listing failed", c->path);
  return TT_OK;
}

tt_status tt_ckpt_convert(const char *in, const char *out, bool inference) {
  return tt_ckpt_convert_with(in, out, inference, NULL);
}

tt_status tt_ckpt_convert_with(const char *in, const char *out, bool inference, const tt_ckpt_options *opts) {
  tt_ckpt *c;
  TT_TRY(tt_ckpt_open_with(in, opts, &c));
  const char **names = malloc(sizeof *names * (size_t)(c->n ? c->n : 1));
  tt_tensor **ts = malloc(sizeof *ts * (size_t)(c->n ? c->n : 1));
  tt_value meta = tt_value_map();
  tt_status s = names && ts ? TT_OK : tt_error(TT_ERR_NOMEM, "%s: out of memory", in);
  int n = 0;
  for (int i = 0; s == TT_OK && i < c->n; i++) {
    /* the loss (LPIPS + discriminator) is only needed to train */
    if (inference && strncmp(c->names[i], "loss.", 5) == 0) continue;
    names[n] = c->names[i];
    ts[n++] = c->tensors[i];
  }
  const char *base = strrchr(in, '/');
  base = base ? base + 1 : in;
  tt_value v = tt_value_str("pt");
  if (s == TT_OK) s = tt_value_set(&meta, "format", &v);
  v = tt_value_str(base);
  if (s == TT_OK) s = tt_value_set(&meta, "source", &v);
  const tt_value *gs = tt_value_get(&c->meta, "global_step");
  if (s == TT_OK && gs && (gs->type == TT_V_INT || gs->type == TT_V_STR)) {
    char num[32];
    if (gs->type == TT_V_INT) snprintf(num, sizeof num, "%" PRId64, gs->u.i);
    v = tt_value_str(gs->type == TT_V_INT ? num : gs->u.s);
    s = tt_value_set(&meta, "global_step", &v);
  }
  if (s == TT_OK) s = tt_safetensors_save(out, n, names, ts, &meta);
  tt_value_clear(&meta);
  free(names);
  free(ts);
  tt_ckpt_close(c);
  return s;
}

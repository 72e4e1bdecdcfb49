/* fuzz_common.c — the checks and the plumbing the fuzz targets share (fuzz.h). */
#define _GNU_SOURCE
#include "fuzz.h"
#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

int luaopen_taming_core(lua_State *L);

void fuzz_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "FUZZ FINDING (%s:%d): ", file, line);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(stderr);
  abort();
}

/* Caps for the fuzzers: far below the library's defaults, so that an input
 * the library refuses by design (a 100000 x 100000 PNG header) is refused
 * quickly and never reaches libFuzzer's malloc limit. They only tighten what
 * the library already promises; a user-set value is kept. */
void fuzz_setup(void) {
  static int done;
  if (done) return;
  done = 1;
  setenv("TAMING_MAX_IMAGE_PIXELS", "4194304", 0);   /* 2048 x 2048 */
#ifdef _OPENMP
  omp_set_num_threads(1);
#endif
}

/* ---- in-memory files ---- */

static int slot_fd[4] = {-1, -1, -1, -1};
static char slot_path[4][64];

const char *fuzz_file(int slot, const uint8_t *data, size_t n) {
  FUZZ_CHECK(slot >= 0 && slot < 4, "fuzz_file: slot %d", slot);
  if (slot_fd[slot] < 0) {
    slot_fd[slot] = memfd_create("taming-fuzz", 0);
    FUZZ_CHECK(slot_fd[slot] >= 0, "memfd_create: %s", strerror(errno));
    snprintf(slot_path[slot], sizeof slot_path[slot], "/proc/self/fd/%d", slot_fd[slot]);
  }
  int fd = slot_fd[slot];
  FUZZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate: %s", strerror(errno));
  size_t done = 0;
  while (done < n) {
    ssize_t w = pwrite(fd, data + done, n - done, (off_t)done);
    FUZZ_CHECK(w > 0, "pwrite: %s", strerror(errno));
    done += (size_t)w;
  }
  return slot_path[slot];
}

static char scratch[256];

static void remove_scratch(void) {
  if (scratch[0]) rmdir(scratch);
}

const char *fuzz_scratch_dir(void) {
  if (scratch[0]) return scratch;
  struct stat st;
  const char *base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0
                         ? "/dev/shm"
                         : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  snprintf(scratch, sizeof scratch, "%s/taming-fuzz-XXXXXX", base);
  FUZZ_CHECK(mkdtemp(scratch) != NULL, "mkdtemp %s: %s", scratch, strerror(errno));
  atexit(remove_scratch);
  return scratch;
}

void fuzz_expect_message(tt_status s, const char *what) {
  static int verbose = -1;
  if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") != NULL;
  if (s == TT_OK) return;
  const char *m = tt_error_message();
  FUZZ_CHECK(m && m[0], "%s failed (%s) without a message", what, tt_status_name(s));
  if (verbose) fprintf(stderr, "refused by %s: %s\n", what, m);
}

/* ---- tensors ---- */

uint64_t fuzz_touch_tensor(const tt_tensor *t, const char *what, size_t max_bytes) {
  FUZZ_CHECK(t != NULL, "%s: NULL tensor", what);
  FUZZ_CHECK(t->ndim >= 0 && t->ndim <= TT_MAX_DIMS, "%s: ndim %d", what, t->ndim);
  FUZZ_CHECK((int)t->dtype >= 0 && t->dtype < TT_DTYPE_COUNT, "%s: dtype %d", what, (int)t->dtype);
  FUZZ_CHECK(t->device == TT_CPU, "%s: device %d", what, (int)t->device);
  size_t dsize = tt_dtype_size(t->dtype);
  __int128 numel = 1;
  for (int d = 0; d < t->ndim; d++) {
    FUZZ_CHECK(t->shape[d] >= 0, "%s: dimension %d is %lld", what, d, (long long)t->shape[d]);
    if (numel <= INT64_MAX) numel *= t->shape[d];
  }
  FUZZ_CHECK(numel <= INT64_MAX, "%s: accepted with an element count that does not fit in 64 bits", what);
  FUZZ_CHECK(tt_tensor_numel(t) == (int64_t)numel, "%s: tt_tensor_numel %lld, the shape gives %lld", what,
             (long long)tt_tensor_numel(t), (long long)numel);
  if (numel == 0) return 0;
  FUZZ_CHECK(t->storage != NULL, "%s: %lld elements without a storage", what, (long long)numel);
  __int128 lo = t->offset, hi = t->offset;
  for (int d = 0; d < t->ndim; d++) {
    __int128 reach = (__int128)(t->shape[d] - 1) * t->stride[d];
    if (reach < 0) lo += reach;
    else hi += reach;
  }
  FUZZ_CHECK(lo >= 0, "%s: reaches %.0f elements before its storage", what, -(double)lo);
  FUZZ_CHECK((hi + 1) * (__int128)dsize <= (__int128)t->storage->nbytes,
             "%s: reaches %.0f bytes into a %zu-byte storage", what, (double)((hi + 1) * (__int128)dsize),
             t->storage->nbytes);
  FUZZ_CHECK(t->storage->data != NULL, "%s: a storage of %zu bytes without data", what, t->storage->nbytes);
  if ((uint64_t)numel > max_bytes / dsize) return 0;

  /* every element by its strides, independently of the tensor core */
  const uint8_t *base = t->storage->data;
  int64_t idx[TT_MAX_DIMS] = {0};
  uint64_t sum = 0;
  for (int64_t k = 0; k < (int64_t)numel; k++) {
    int64_t el = t->offset;
    for (int d = 0; d < t->ndim; d++) el += idx[d] * t->stride[d];
    for (size_t b = 0; b < dsize; b++) sum += base[(size_t)el * dsize + b];
    for (int d = t->ndim - 1; d >= 0; d--) {
      if (++idx[d] < t->shape[d]) break;
      idx[d] = 0;
    }
  }
  /* and through the library's own copy */
  tt_tensor *c = tt_clone((tt_tensor *)t);
  if (!c) {
    fuzz_expect_message(tt_last_status() == TT_OK ? TT_ERR_INTERNAL : tt_last_status(), what);
    return sum;
  }
  FUZZ_CHECK(tt_tensor_is_contiguous(c) && tt_tensor_numel(c) == (int64_t)numel, "%s: the copy differs in shape",
             what);
  const uint8_t *p = tt_tensor_data(c);
  uint64_t csum = 0;
  for (size_t b = 0; b < (size_t)numel * dsize; b++) csum += p[b];
  FUZZ_CHECK(csum == sum, "%s: its contiguous copy holds other bytes (sum %llu, expected %llu)", what,
             (unsigned long long)csum, (unsigned long long)sum);
  tt_tensor_unref(c);
  return sum;
}

uint64_t fuzz_touch_value(const tt_value *v, int depth) {
  uint64_t sum = 0;
  switch (v->type) {
    case TT_V_STR: sum += strlen(v->u.s); break;
    case TT_V_TENSOR: sum += fuzz_touch_tensor(v->u.t, "a tensor in a value", (size_t)1 << 24); break;
    case TT_V_LIST:
    case TT_V_MAP:
      for (int i = 0; i < v->u.c.len; i++) {
        if (v->type == TT_V_MAP) sum += strlen(v->u.c.keys[i]);
        sum += fuzz_touch_value(&v->u.c.items[i], depth + 1);
      }
      break;
    default: break;
  }
  return sum;
}

/* ---- checkpoints ---- */

static FILE *devnull;

void fuzz_ckpt_roundtrip(const char *path) {
  /* opened with unsafe globals allowed, so that the whole pickle is converted;
   * the default open must then succeed exactly when the scanner found none */
  tt_ckpt_options allow = {.allow_unsafe_globals = true};
  tt_ckpt *c = NULL, *d = NULL;
  tt_status s = tt_ckpt_open_with(path, &allow, &c);
  fuzz_expect_message(s, "tt_ckpt_open_with");
  tt_status sd = tt_ckpt_open(path, &d);
  fuzz_expect_message(sd, "tt_ckpt_open");
  if (d) tt_ckpt_close(d);
  if (s != TT_OK) {
    FUZZ_CHECK(sd != TT_OK, "tt_ckpt_open accepts what tt_ckpt_open_with(allow_unsafe_globals) refuses");
    return;
  }
  int unsafe = tt_ckpt_unsafe_count(c);
  FUZZ_CHECK(unsafe >= 0, "tt_ckpt_unsafe_count %d", unsafe);
  for (int i = 0; i < unsafe; i++) {
    const char *g = tt_ckpt_unsafe_global(c, i);
    if (!g) break;
    FUZZ_CHECK(strlen(g) > 0, "unsafe global %d has an empty name", i);
  }
  FUZZ_CHECK((sd == TT_OK) == (unsafe == 0), "tt_ckpt_open %s a file with %d unsafe global(s)",
             sd == TT_OK ? "accepts" : "refuses", unsafe);
  int n = tt_ckpt_count(c);
  FUZZ_CHECK(n >= 0, "tt_ckpt_count %d", n);
  uint64_t *sums = calloc((size_t)n + 1, sizeof *sums);
  FUZZ_CHECK(sums != NULL, "out of memory");
  for (int i = 0; i < n; i++) {
    const char *name = tt_ckpt_name(c, i);
    FUZZ_CHECK(name != NULL, "tensor %d has no name", i);
    sums[i] = fuzz_touch_tensor(tt_ckpt_tensor(c, i), name, (size_t)1 << 24);
    FUZZ_CHECK(tt_ckpt_get(c, name) != NULL, "tensor '%s' is listed but tt_ckpt_get does not find it", name);
  }
  fuzz_touch_value(tt_ckpt_meta(c), 0);
  if (!devnull) devnull = fopen("/dev/null", "w");
  fuzz_expect_message(tt_ckpt_print_info(c, devnull), "tt_ckpt_print_info");

  /* `taming convert` must write a file that taming reads back, with the same tensors */
  char out[512];
  snprintf(out, sizeof out, "%s/convert.safetensors", fuzz_scratch_dir());
  s = tt_ckpt_convert_with(path, out, false, &allow);
  fuzz_expect_message(s, "tt_ckpt_convert_with");
  if (s == TT_OK) {
    tt_ckpt *r = NULL;
    s = tt_ckpt_open(out, &r);
    FUZZ_CHECK(s == TT_OK, "tt_ckpt_convert wrote a file that tt_ckpt_open refuses: %s", tt_error_message());
    FUZZ_CHECK(tt_ckpt_count(r) == n, "converted: %d tensors, the source has %d", tt_ckpt_count(r), n);
    for (int i = 0; i < n; i++) {
      const char *name = tt_ckpt_name(c, i);
      tt_tensor *a = tt_ckpt_tensor(c, i), *b = tt_ckpt_get(r, name);
      FUZZ_CHECK(b != NULL, "converted: tensor '%s' is missing", name);
      FUZZ_CHECK(a->dtype == b->dtype && tt_tensor_same_shape(a, b), "converted: tensor '%s' changed dtype or shape",
                 name);
      uint64_t sb = fuzz_touch_tensor(b, name, (size_t)1 << 24);
      FUZZ_CHECK(sb == sums[i], "converted: tensor '%s' holds other bytes", name);
    }
    tt_ckpt_close(r);
  }
  unlink(out);
  free(sums);
  tt_ckpt_close(c);
}

/* ---- Lua ---- */

/* The harnesses' Lua states allocate through here: every block carries a
 * header in a list and a canary after its end, so that a write past a block
 * by liblua (which is not instrumented) shows: a C function that pushes more
 * than the Lua stack holds without lua_checkstack writes past the stack's
 * block. fuzz_lua_check_heap checks every live block. */
typedef struct lblk {
  struct lblk *prev, *next;
  size_t size;
  uint64_t magic;
} lblk;
#define LUA_CANARY 0x6b63616c2d6e6f6eull
static lblk lua_blocks = {&lua_blocks, &lua_blocks, 0, 0};

static void lblk_check(const lblk *b) {
  uint64_t tail;
  memcpy(&tail, (const char *)(b + 1) + b->size, sizeof tail);
  FUZZ_CHECK(b->magic == LUA_CANARY && tail == LUA_CANARY,
             "a Lua heap block of %zu bytes was written past its end (a C function pushed more values than "
             "the Lua stack holds, without lua_checkstack?)", b->size);
}

static void *lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  lblk *b = ptr ? (lblk *)ptr - 1 : NULL;
  if (b) {
    lblk_check(b);
    b->prev->next = b->next;
    b->next->prev = b->prev;
  }
  if (nsize == 0) {
    free(b);
    return NULL;
  }
  lblk *n = realloc(b, sizeof *n + nsize + sizeof(uint64_t));
  if (!n) {
    if (b) {   /* the old block stays Lua's */
      b->next = lua_blocks.next;
      b->prev = &lua_blocks;
      lua_blocks.next->prev = b;
      lua_blocks.next = b;
    }
    return NULL;
  }
  n->size = nsize;
  n->magic = LUA_CANARY;
  uint64_t c = LUA_CANARY;
  memcpy((char *)(n + 1) + nsize, &c, sizeof c);
  n->next = lua_blocks.next;
  n->prev = &lua_blocks;
  lua_blocks.next->prev = n;
  lua_blocks.next = n;
  return n + 1;
}

void fuzz_lua_check_heap(void) {
  for (const lblk *b = lua_blocks.next; b != &lua_blocks; b = b->next) lblk_check(b);
}

lua_State *fuzz_lua_new(void) {
  lua_State *L = lua_newstate(lua_alloc, NULL);
  FUZZ_CHECK(L != NULL, "luaL_newstate failed");
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;", TT_ABS_SRCDIR, TT_ABS_SRCDIR);
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_taming_core);
  lua_setfield(L, -2, "taming.core");
  lua_pop(L, 2);
  lua_pushstring(L, TT_ABS_SRCDIR);
  lua_setglobal(L, "TAMING_ROOT");
  return L;
}

/* The message handler of fuzz_lua_call: an error raised while a Lua function
 * runs (level 1 is Lua code, not `error` or a C function) is a runtime error of
 * the Lua VM in library code, e.g. "attempt to index a nil value": the
 * library did not check its input. Those come back as a table {bug = msg}. */
static int lua_msgh(lua_State *L) {
  lua_Debug ar;
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) && ar.what[0] != 'C') {
    lua_createtable(L, 0, 1);
    lua_pushfstring(L, "%s (at %s:%d)", lua_isstring(L, 1) ? lua_tostring(L, 1) : luaL_typename(L, 1),
                    ar.short_src, ar.currentline);
    lua_setfield(L, -2, "bug");
    return 1;
  }
  lua_pushvalue(L, 1);
  return 1;
}

void fuzz_lua_call(lua_State *L, int nargs, const char *what) {
  int base = lua_gettop(L) - nargs;   /* the function */
  lua_pushcfunction(L, lua_msgh);
  lua_insert(L, base);
  if (lua_pcall(L, nargs, 0, base) != LUA_OK) {
    if (lua_istable(L, -1)) {
      lua_getfield(L, -1, "bug");
      fuzz_fail(__FILE__, __LINE__, "%s: a runtime error in library code: %s", what, lua_tostring(L, -1));
    }
    FUZZ_CHECK(lua_type(L, -1) == LUA_TSTRING, "%s: raised a %s, not a message", what, luaL_typename(L, -1));
    const char *msg = lua_tostring(L, -1);
    FUZZ_CHECK(msg[0] != 0, "%s: an empty error message", what);
    /* luaL_check* in a C function called with what library code failed to check */
    FUZZ_CHECK(strncmp(msg, "bad argument #", 14) != 0, "%s: %s", what, msg);
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "refused by %s: %s\n", what, msg);
  }
  lua_settop(L, base - 1);
  fuzz_lua_check_heap();
}

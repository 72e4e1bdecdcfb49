/* lua_io.c — files from Lua: tt.npy, tt.npz, tt.image, tt.safetensors, tt.ckpt, tt.yaml. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include "../io/io_internal.h"
#include "lua_internal.h"

/* ---- npy ---- */

static int l_npy_load(lua_State *L) {
  tt_tensor *t = NULL;
  if (tt_npy_load(luaL_checkstring(L, 1), &t) != TT_OK) return tt_lua_fail(L);
  tt_lua_push_tensor(L, t);
  return 1;
}

static int l_npy_save(lua_State *L) {
  if (tt_npy_save(luaL_checkstring(L, 1), tt_lua_check_tensor(L, 2)) != TT_OK) return tt_lua_fail(L);
  return 0;
}

/* tt.npz.load(path) -> {name = tensor, ...} */
static int l_npz_load(lua_State *L) {
  int n = 0;
  char **names = NULL;
  tt_tensor **ts = NULL;
  if (tt_npz_load(luaL_checkstring(L, 1), &n, &names, &ts) != TT_OK) return tt_lua_fail(L);
  lua_createtable(L, 0, n);
  for (int i = 0; i < n; i++) {
    tt_lua_push_tensor(L, ts[i]);   /* takes over the reference */
    ts[i] = NULL;
    lua_setfield(L, -2, names[i]);
  }
  tt_npz_free(n, names, ts);
  return 1;
}

/* tt.npz.save(path, {name = tensor, ...}): members in name order */
static int l_npz_save(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_newtable(L);   /* the sorted names, kept alive on the stack */
  int keys = lua_gettop(L), n = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    if (lua_type(L, -2) != LUA_TSTRING) return luaL_error(L, "npz.save: keys must be strings");
    tt_lua_check_tensor(L, -1);
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_seti(L, keys, ++n);
  }
  lua_getglobal(L, "table");
  lua_getfield(L, -1, "sort");
  lua_pushvalue(L, keys);
  lua_call(L, 1, 0);
  lua_pop(L, 1);
  const char **names = malloc(sizeof *names * (size_t)(n ? n : 1));
  tt_tensor **ts = malloc(sizeof *ts * (size_t)(n ? n : 1));
  if (!names || !ts) {
    free(names);
    free(ts);
    return luaL_error(L, "out of memory");
  }
  for (int i = 0; i < n; i++) {
    lua_geti(L, keys, i + 1);
    names[i] = lua_tostring(L, -1);   /* kept alive by the keys table */
    lua_pop(L, 1);
    lua_getfield(L, 2, names[i]);
    ts[i] = tt_lua_check_tensor(L, -1);   /* kept alive by the argument table */
    lua_pop(L, 1);
  }
  tt_status s = tt_npz_save(path, n, names, ts);
  free(names);
  free(ts);
  if (s != TT_OK) return tt_lua_fail(L);
  return 0;
}

/* ---- images ---- */

/* tt.image.load(path [, {raw=true, max_pixels=N}]) -> f32 [1, C, H, W] in [-1, 1] (or u8
 * [H, W, C] with raw); max_pixels: the decompression-bomb limit (0: none; default
 * TAMING_MAX_IMAGE_PIXELS or Pillow's) */
static int l_image_load(lua_State *L) {
  tt_tensor *u8 = NULL;
  const char *path = luaL_checkstring(L, 1);
  lua_Integer max_pixels = tt_lua_opt_field_int(L, 2, "max_pixels", -1);
  if (lua_istable(L, 2) && max_pixels < 0 && lua_getfield(L, 2, "max_pixels") != LUA_TNIL)
    return luaL_error(L, "image.load: max_pixels must be a pixel count >= 0 (0: no limit)");
  if (tt_image_load_u8_limit(path, max_pixels, &u8) != TT_OK) return tt_lua_fail(L);
  if (tt_lua_opt_field_bool(L, 2, "raw", 0)) {
    tt_lua_push_tensor(L, u8);
    return 1;
  }
  tt_tensor *f = tt_image_from_u8(u8);
  tt_tensor_unref(u8);
  tt_lua_push_tensor(L, f);
  return 1;
}

/* tt.image.save(path, t): f32 [C,H,W]/[1,C,H,W] in [-1,1] (official 8-bit rounding) or u8 [H,W,C] */
static int l_image_save(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  tt_tensor *t = tt_lua_check_tensor(L, 2);
  tt_tensor *u8 = t->dtype == TT_U8 ? tt_tensor_ref(t) : tt_image_to_u8(t);
  if (!u8) return tt_lua_fail(L);
  tt_status s = tt_image_save_u8(path, u8, (int)luaL_optinteger(L, 3, 95));
  tt_tensor_unref(u8);
  if (s != TT_OK) return tt_lua_fail(L);
  return 0;
}

static int l_image_to_u8(lua_State *L) {
  tt_lua_push_tensor(L, tt_image_to_u8(tt_lua_check_tensor(L, 1)));
  return 1;
}

static int l_image_from_u8(lua_State *L) {
  tt_lua_push_tensor(L, tt_image_from_u8(tt_lua_check_tensor(L, 1)));
  return 1;
}

/* ---- safetensors ---- */

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* tt.safetensors.save(path, {name = tensor, ...} [, {key = "string", ...}]) */
static int l_safetensors_save(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = 0, cap = 64;
  char **names = malloc(sizeof *names * (size_t)cap);
  if (!names) return luaL_error(L, "out of memory");
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    if (lua_type(L, -2) != LUA_TSTRING) { free(names); return luaL_error(L, "safetensors.save: keys must be strings"); }
    tt_lua_check_tensor(L, -1);
    if (n == cap) {
      cap *= 2;
      char **nn = realloc(names, sizeof *names * (size_t)cap);
      if (!nn) { free(names); return luaL_error(L, "out of memory"); }
      names = nn;
    }
    names[n++] = (char *)lua_tostring(L, -2);   /* kept alive by the table */
    lua_pop(L, 1);
  }
  qsort(names, (size_t)n, sizeof *names, cmp_names);
  tt_tensor **ts = malloc(sizeof *ts * (size_t)(n ? n : 1));
  if (!ts) { free(names); return luaL_error(L, "out of memory"); }
  for (int i = 0; i < n; i++) {
    lua_getfield(L, 2, names[i]);
    ts[i] = tt_lua_check_tensor(L, -1);
    lua_pop(L, 1);
  }
  tt_value meta = TT_VALUE_NIL;
  tt_status s = TT_OK;
  if (!lua_isnoneornil(L, 3)) s = tt_lua_to_value(L, 3, &meta);
  if (s == TT_OK) s = tt_safetensors_save(path, n, (const char *const *)names, ts, meta.type == TT_V_MAP ? &meta : NULL);
  tt_value_clear(&meta);
  free(ts);
  free(names);
  if (s != TT_OK) return tt_lua_fail(L);
  return 0;
}

/* ---- checkpoints ---- */

typedef struct { tt_ckpt *c; } lua_ckpt;

static lua_ckpt *check_ckpt(lua_State *L, int idx) {
  lua_ckpt *c = luaL_checkudata(L, idx, TT_LUA_CKPT);
  if (!c->c) luaL_argerror(L, idx, "checkpoint already closed");
  return c;
}

static int c_gc(lua_State *L) {
  lua_ckpt *c = luaL_checkudata(L, 1, TT_LUA_CKPT);
  tt_ckpt_close(c->c);
  c->c = NULL;
  return 0;
}

/* tt.ckpt.open(path [, {unsafe_globals = true}]): the option reads a pickle that
 * references globals outside the allowlist (never called) instead of refusing it. */
static int l_ckpt_open(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  tt_ckpt_options opts = {0};
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "unsafe_globals");
    opts.allow_unsafe_globals = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  tt_ckpt *c = NULL;
  if (tt_ckpt_open_with(path, &opts, &c) != TT_OK) return tt_lua_fail(L);
  lua_ckpt *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->c = c;
  luaL_setmetatable(L, TT_LUA_CKPT);
  return 1;
}

static int c_names(lua_State *L) {
  tt_ckpt *c = check_ckpt(L, 1)->c;
  int n = tt_ckpt_count(c);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) { lua_pushstring(L, tt_ckpt_name(c, i)); lua_seti(L, -2, i + 1); }
  return 1;
}

static int c_get(lua_State *L) {
  tt_tensor *t = tt_ckpt_get(check_ckpt(L, 1)->c, luaL_checkstring(L, 2));
  if (t) tt_lua_push_tensor(L, tt_tensor_ref(t));
  else lua_pushnil(L);
  return 1;
}

/* c:tensors() -> {name = tensor} (views onto the mapped file) */
static int c_tensors(lua_State *L) {
  tt_ckpt *c = check_ckpt(L, 1)->c;
  int n = tt_ckpt_count(c);
  lua_createtable(L, 0, n);
  for (int i = 0; i < n; i++) {
    tt_lua_push_tensor(L, tt_tensor_ref(tt_ckpt_tensor(c, i)));
    lua_setfield(L, -2, tt_ckpt_name(c, i));
  }
  return 1;
}

static int c_meta(lua_State *L) {
  const tt_value *m = tt_ckpt_meta(check_ckpt(L, 1)->c);
  tt_value copy;
  if (!m) { lua_newtable(L); return 1; }
  if (tt_value_copy(&copy, m) != TT_OK) return tt_lua_fail(L);
  tt_lua_push_value(L, &copy);
  return 1;
}

/* c:unsafe_globals() -> {"pydoc.pipepager", ...}: what torch.load would call */
static int c_unsafe_globals(lua_State *L) {
  tt_ckpt *c = check_ckpt(L, 1)->c;
  lua_newtable(L);
  for (int i = 0; tt_ckpt_unsafe_global(c, i); i++) {
    lua_pushstring(L, tt_ckpt_unsafe_global(c, i));
    lua_seti(L, -2, i + 1);
  }
  return 1;
}

static int c_path(lua_State *L) { lua_pushstring(L, tt_ckpt_path(check_ckpt(L, 1)->c)); return 1; }
static int c_format(lua_State *L) { lua_pushstring(L, tt_ckpt_format(check_ckpt(L, 1)->c)); return 1; }
static int c_count(lua_State *L) { lua_pushinteger(L, tt_ckpt_count(check_ckpt(L, 1)->c)); return 1; }

/* ---- yaml ---- */

static int l_yaml_load(lua_State *L) {
  tt_value v;
  if (tt_yaml_load(luaL_checkstring(L, 1), &v) != TT_OK) return tt_lua_fail(L);
  tt_lua_push_value(L, &v);
  return 1;
}

static int l_yaml_parse(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  tt_value v;
  if (tt_yaml_parse(text, len, luaL_optstring(L, 2, "<string>"), &v) != TT_OK) return tt_lua_fail(L);
  tt_lua_push_value(L, &v);
  return 1;
}

/* ---- json ---- */

/* tt.json.parse(text [, name]) -> table (strict RFC 8259; name is used in messages) */
static int l_json_parse(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  tt_value v;
  if (tt_json_parse(text, len, luaL_optstring(L, 2, "<string>"), &v) != TT_OK) return tt_lua_fail(L);
  tt_lua_push_value(L, &v);
  return 1;
}

/* tt.json.load(path) -> table */
static int l_json_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  FILE *f = fopen(path, "rb");
  if (!f) return luaL_error(L, "%s: cannot open: %s", path, strerror(errno));
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  size_t n;
  do {
    char *p = luaL_prepbuffer(&b);
    n = fread(p, 1, LUAL_BUFFERSIZE, f);
    luaL_addsize(&b, n);
  } while (n == LUAL_BUFFERSIZE);
  int err = ferror(f);
  fclose(f);
  if (err) return luaL_error(L, "%s: read error", path);
  luaL_pushresult(&b);
  size_t len;
  const char *text = lua_tolstring(L, -1, &len);
  tt_value v;
  if (tt_json_parse(text, len, path, &v) != TT_OK) return tt_lua_fail(L);
  tt_lua_push_value(L, &v);
  return 1;
}

/* ---- file system helpers ---- */

/* tt.fs.mkdir(path): mkdir -p */
static int l_mkdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char buf[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof buf) return luaL_error(L, "mkdir: bad path '%s'", path);
  memcpy(buf, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] == '/' || buf[i] == 0) {
      char c = buf[i];
      buf[i] = 0;
      if (mkdir(buf, 0777) != 0 && errno != EEXIST) return luaL_error(L, "%s: cannot create folder: %s", buf, strerror(errno));
      buf[i] = c;
    }
  }
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return luaL_error(L, "%s: exists and is not a folder", path);
  return 0;
}

static int l_exists(lua_State *L) {
  struct stat st;
  lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0);
  return 1;
}

static int l_isdir(lua_State *L) {
  struct stat st;
  lua_pushboolean(L, stat(luaL_checkstring(L, 1), &st) == 0 && S_ISDIR(st.st_mode));
  return 1;
}


/* tt.fs.listdir(path) -> sorted names (without . and ..) */
static int l_listdir(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  DIR *d = opendir(path);
  if (!d) return luaL_error(L, "%s: cannot list folder: %s", path, strerror(errno));
  int n = 0, cap = 64;
  char **names = malloc(sizeof *names * (size_t)cap);
  struct dirent *e;
  while (names && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (n == cap) {
      cap *= 2;
      char **nn = realloc(names, sizeof *names * (size_t)cap);
      if (!nn) break;
      names = nn;
    }
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  if (!names) return luaL_error(L, "out of memory");
  qsort(names, (size_t)n, sizeof *names, cmp_names);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, names[i]);
    lua_seti(L, -2, i + 1);
    free(names[i]);
  }
  free(names);
  return 1;
}

static int l_remove(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  if (remove(path) != 0 && errno != ENOENT) return luaL_error(L, "%s: cannot remove: %s", path, strerror(errno));
  return 0;
}

/* tt.fs.write_atomic(path, bytes): readers see the old file or the whole new one */
static int l_write_atomic(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  tt_atomic_file f;
  if (tt_atomic_open(&f, path) != TT_OK) return tt_lua_fail(L);
  if (tt_atomic_write(&f, data, n) != TT_OK) {
    tt_atomic_abort(&f);
    return tt_lua_fail(L);
  }
  if (tt_atomic_commit(&f) != TT_OK) return tt_lua_fail(L);
  return 0;
}

static const luaL_Reg ckpt_methods[] = {{"names", c_names}, {"get", c_get}, {"tensors", c_tensors},
                                        {"meta", c_meta}, {"path", c_path}, {"format", c_format},
                                        {"count", c_count}, {"unsafe_globals", c_unsafe_globals},
                                        {"close", c_gc}, {NULL, NULL}};

static void sublib(lua_State *L, int module, const char *name, const luaL_Reg *fns) {
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  lua_setfield(L, module, name);
}

static const luaL_Reg npy_fns[] = {{"load", l_npy_load}, {"save", l_npy_save}, {NULL, NULL}};
static const luaL_Reg npz_fns[] = {{"load", l_npz_load}, {"save", l_npz_save}, {NULL, NULL}};
static const luaL_Reg image_fns[] = {{"load", l_image_load}, {"save", l_image_save}, {"to_u8", l_image_to_u8},
                                     {"from_u8", l_image_from_u8}, {NULL, NULL}};
static const luaL_Reg st_fns[] = {{"save", l_safetensors_save}, {"load", l_ckpt_open}, {NULL, NULL}};
static const luaL_Reg ckpt_fns[] = {{"open", l_ckpt_open}, {NULL, NULL}};
static const luaL_Reg fs_fns[] = {{"mkdir", l_mkdir}, {"exists", l_exists}, {"isdir", l_isdir},
                                  {"listdir", l_listdir}, {"remove", l_remove},
                                  {"write_atomic", l_write_atomic}, {NULL, NULL}};
static const luaL_Reg yaml_fns[] = {{"load", l_yaml_load}, {"parse", l_yaml_parse}, {NULL, NULL}};
static const luaL_Reg json_fns[] = {{"load", l_json_load}, {"parse", l_json_parse}, {NULL, NULL}};

void tt_lua_open_io(lua_State *L, int module) {
  luaL_newmetatable(L, TT_LUA_CKPT);
  lua_pushcfunction(L, c_gc); lua_setfield(L, -2, "__gc");
  luaL_newlib(L, ckpt_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  sublib(L, module, "npy", npy_fns);
  sublib(L, module, "npz", npz_fns);
  sublib(L, module, "image", image_fns);
  sublib(L, module, "safetensors", st_fns);
  sublib(L, module, "ckpt", ckpt_fns);
  sublib(L, module, "yaml", yaml_fns);
  sublib(L, module, "json", json_fns);
  sublib(L, module, "fs", fs_fns);
}

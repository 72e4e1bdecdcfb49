/* lua_train.c — what the training loops need from C: the threaded data loader
 * (tt.data_loader), TensorBoard event files (tt.tensorboard), codebook usage
 * statistics (tt.codebook_usage) and terminal detection (tt.isatty). */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lua_internal.h"
#include "taming/dataloader.h"
#include "taming/tensorboard.h"

#define TT_LUA_LOADER "taming.loader"
#define TT_LUA_TBWRITER "taming.tbwriter"

/* ---- data loader ---- */

typedef struct { tt_loader *l; } lua_loader;

static tt_loader *check_loader(lua_State *L, int idx) {
  lua_loader *u = luaL_checkudata(L, idx, TT_LUA_LOADER);
  if (!u->l) luaL_argerror(L, idx, "data loader already closed");
  return u->l;
}

static int loader_gc(lua_State *L) {
  lua_loader *u = luaL_checkudata(L, 1, TT_LUA_LOADER);
  tt_loader_close(u->l);
  u->l = NULL;
  return 0;
}

/* A list of strings at spec[key] -> malloc'd array of borrowed pointers (the table
 * keeps them). `other` (an earlier list) is freed before raising an error. */
static const char **string_list(lua_State *L, int spec, const char *key, int64_t *n, const char **other) {
  if (lua_getfield(L, spec, key) != LUA_TTABLE) {
    lua_pop(L, 1);
    return NULL;
  }
  int t = lua_gettop(L);
  *n = (int64_t)luaL_len(L, t);
  const char **a = malloc(sizeof *a * (size_t)(*n ? *n : 1));
  if (!a) {
    free(other);
    luaL_error(L, "out of memory");
    return NULL;
  }
  for (int64_t i = 0; i < *n; i++) {
    lua_geti(L, t, i + 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      free(a);
      free(other);
      luaL_error(L, "data_loader: %s[%d] is not a string", key, (int)i + 1);
      return NULL;
    }
    a[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);   /* the list stays referenced by the spec table */
  return a;
}

static tt_tensor *opt_tensor_field(lua_State *L, int idx, const char *key) {
  lua_getfield(L, idx, key);
  tt_tensor *t = lua_isnil(L, -1) ? NULL : tt_lua_check_tensor(L, -1);
  lua_pop(L, 1);   /* the tensor stays referenced by the table */
  return t;
}

/* tt.data_loader(spec, opts) — see taming/dataloader.h for the fields */
static int l_data_loader(lua_State *L) {
  static const char *const interps[] = {"nearest", "linear", "cubic", "area", NULL};
  static const char *const conds[] = {"none", "segmentation", "depth", NULL};
  luaL_checktype(L, 1, LUA_TTABLE);
  /* the userdata first, empty: closing it is safe whatever fails below */
  lua_loader *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->l = NULL;
  luaL_setmetatable(L, TT_LUA_LOADER);
  int ud = lua_gettop(L);
  tt_dataset_spec sp;
  memset(&sp, 0, sizeof sp);
  /* options first: they may raise, and nothing is allocated yet */
  sp.array = opt_tensor_field(L, 1, "array");
  sp.labels = opt_tensor_field(L, 1, "labels");
  sp.pad = (int)tt_lua_opt_field_int(L, 1, "pad", 0);
  sp.channels = (int)tt_lua_opt_field_int(L, 1, "channels", 3);
  sp.size = (int)tt_lua_opt_field_int(L, 1, "size", 0);
  sp.random_crop = tt_lua_opt_field_bool(L, 1, "random_crop", 0);
  sp.hflip = tt_lua_opt_field_bool(L, 1, "hflip", 0);
  const char *interp = tt_lua_opt_field_str(L, 1, "interp", "linear");
  const char *cond = tt_lua_opt_field_str(L, 1, "cond", "none");
  sp.n_labels = (int)tt_lua_opt_field_int(L, 1, "n_labels", 0);
  sp.shift = tt_lua_opt_field_bool(L, 1, "shift", 0);
  int ii = -1, ci = -1;
  for (int i = 0; interps[i]; i++) if (!strcmp(interp, interps[i])) ii = i;
  for (int i = 0; conds[i]; i++) if (!strcmp(cond, conds[i])) ci = i;
  tt_loader_opts o = {
      .batch = (int)tt_lua_opt_field_int(L, 2, "batch", 1),
      .seed = (uint64_t)tt_lua_opt_field_int(L, 2, "seed", 0),
      .shuffle = tt_lua_opt_field_bool(L, 2, "shuffle", 1),
      .drop_last = tt_lua_opt_field_bool(L, 2, "drop_last", 0),
      .rank = (int)tt_lua_opt_field_int(L, 2, "rank", 0),
      .world = (int)tt_lua_opt_field_int(L, 2, "world", 1),
      .workers = (int)tt_lua_opt_field_int(L, 2, "workers", 2),
      .prefetch = (int)tt_lua_opt_field_int(L, 2, "prefetch", 4),
  };
  int64_t n_paths = 0, n_cond = 0;
  const char **paths = string_list(L, 1, "paths", &n_paths, NULL);
  const char **cond_paths = string_list(L, 1, "cond_paths", &n_cond, paths);
  sp.paths = paths;
  sp.cond_paths = cond_paths;
  sp.n = paths ? n_paths : (sp.array ? sp.array->shape[0] : 0);
  tt_status s = TT_OK;
  if (ii < 0) s = tt_error(TT_ERR_INVALID, "data_loader: unknown interp '%s' (nearest, linear, cubic, area)", interp);
  else if (ci < 0) s = tt_error(TT_ERR_INVALID, "data_loader: unknown cond '%s' (none, segmentation, depth)", cond);
  else if (cond_paths && n_cond != n_paths)
    s = tt_error(TT_ERR_INVALID, "data_loader: %lld condition paths for %lld images", (long long)n_cond, (long long)n_paths);
  sp.interp = (tt_interp)(ii < 0 ? 1 : ii);
  sp.cond = (tt_cond_kind)(ci < 0 ? 0 : ci);
  tt_loader *l = NULL;
  if (s == TT_OK) s = tt_loader_open(&sp, &o, &l);
  free(paths);
  free(cond_paths);
  if (s != TT_OK) return tt_lua_fail(L);
  u->l = l;
  lua_pushvalue(L, ud);
  return 1;
}

/* loader:next() -> {image=, cond=, label=, index=, epoch=, step=} */
static int loader_next(lua_State *L) {
  tt_loader *l = check_loader(L, 1);
  tt_batch b;
  if (tt_loader_next(l, &b) != TT_OK) return tt_lua_fail(L);
  lua_createtable(L, 0, 6);
  tt_lua_push_tensor(L, b.image);
  lua_setfield(L, -2, "image");
  if (b.cond) { tt_lua_push_tensor(L, b.cond); lua_setfield(L, -2, "cond"); }
  if (b.label) { tt_lua_push_tensor(L, b.label); lua_setfield(L, -2, "label"); }
  tt_lua_push_tensor(L, b.index);
  lua_setfield(L, -2, "index");
  lua_pushinteger(L, (lua_Integer)b.epoch);
  lua_setfield(L, -2, "epoch");
  lua_pushinteger(L, (lua_Integer)b.step);
  lua_setfield(L, -2, "step");
  return 1;   /* the tensors' references moved to Lua */
}

static int loader_seek(lua_State *L) {
  if (tt_loader_seek(check_loader(L, 1), luaL_checkinteger(L, 2), luaL_checkinteger(L, 3)) != TT_OK) return tt_lua_fail(L);
  return 0;
}

static int loader_steps(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)tt_loader_steps_per_epoch(check_loader(L, 1)));
  return 1;
}

static int loader_order(lua_State *L) {
  tt_lua_push_tensor(L, tt_loader_order(check_loader(L, 1), luaL_checkinteger(L, 2)));
  return 1;
}

/* ---- TensorBoard ---- */

typedef struct { tt_tb_writer *w; } lua_tb;

static tt_tb_writer *check_tb(lua_State *L, int idx) {
  lua_tb *u = luaL_checkudata(L, idx, TT_LUA_TBWRITER);
  if (!u->w) luaL_argerror(L, idx, "event file already closed");
  return u->w;
}

static int tb_gc(lua_State *L) {
  lua_tb *u = luaL_checkudata(L, 1, TT_LUA_TBWRITER);
  tt_tb_close(u->w);
  u->w = NULL;
  return 0;
}

static int l_tb_open(lua_State *L) {
  tt_tb_writer *w = NULL;
  const char *dir = luaL_checkstring(L, 1);
  lua_tb *u = lua_newuserdatauv(L, sizeof *u, 0);
  u->w = NULL;
  luaL_setmetatable(L, TT_LUA_TBWRITER);
  if (tt_tb_open(dir, &w) != TT_OK) return tt_lua_fail(L);
  u->w = w;
  return 1;
}

static int tb_scalar(lua_State *L) {
  if (tt_tb_scalar(check_tb(L, 1), luaL_checkstring(L, 2), luaL_checkinteger(L, 3), luaL_checknumber(L, 4)) != TT_OK)
    return tt_lua_fail(L);
  return 0;
}

static int tb_image(lua_State *L) {
  if (tt_tb_image(check_tb(L, 1), luaL_checkstring(L, 2), luaL_checkinteger(L, 3), tt_lua_check_tensor(L, 4)) != TT_OK)
    return tt_lua_fail(L);
  return 0;
}

static int tb_flush(lua_State *L) {
  if (tt_tb_flush(check_tb(L, 1)) != TT_OK) return tt_lua_fail(L);
  return 0;
}

static int tb_path(lua_State *L) {
  lua_pushstring(L, tt_tb_path(check_tb(L, 1)));
  return 1;
}

static tt_status push_event(const tt_tb_event *e, void *ud) {
  lua_State *L = ud;
  lua_createtable(L, 0, 4);
  lua_pushnumber(L, e->wall_time);
  lua_setfield(L, -2, "wall_time");
  lua_pushinteger(L, (lua_Integer)e->step);
  lua_setfield(L, -2, "step");
  if (e->file_version) { lua_pushstring(L, e->file_version); lua_setfield(L, -2, "file_version"); }
  lua_createtable(L, e->n_values, 0);
  for (int i = 0; i < e->n_values; i++) {
    const tt_tb_value *v = &e->values[i];
    lua_createtable(L, 0, 3);
    lua_pushstring(L, v->tag);
    lua_setfield(L, -2, "tag");
    if (v->has_simple_value) { lua_pushnumber(L, v->simple_value); lua_setfield(L, -2, "simple_value"); }
    if (v->has_image) {
      lua_createtable(L, 0, 4);
      lua_pushinteger(L, v->height); lua_setfield(L, -2, "height");
      lua_pushinteger(L, v->width); lua_setfield(L, -2, "width");
      lua_pushinteger(L, v->colorspace); lua_setfield(L, -2, "colorspace");
      lua_pushlstring(L, (const char *)v->png, v->png_len); lua_setfield(L, -2, "png");
      lua_setfield(L, -2, "image");
    }
    lua_seti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "values");
  lua_seti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
  return TT_OK;
}

/* tt.tensorboard.read(path) -> list of {wall_time, step, file_version?, values = {{tag, simple_value?, image?}}} */
static int l_tb_read(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lua_newtable(L);
  if (tt_tb_read(path, push_event, L) != TT_OK) return tt_lua_fail(L);
  return 1;
}

/* ---- codebook statistics ---- */

/* tt.codebook_usage(indices (i64, any shape), K) -> share of the K codes used, perplexity, codes used */
static int l_codebook_usage(lua_State *L) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  lua_Integer K = luaL_checkinteger(L, 2);
  if (K < 1 || K > (1 << 26)) return luaL_error(L, "codebook_usage: K must be in 1..2^26, found %d", (int)K);
  if (t->dtype != TT_I64) return luaL_error(L, "codebook_usage: indices must be i64, found %s", tt_dtype_name(t->dtype));
  tt_tensor *c = tt_host_contiguous(t);
  if (!c) return tt_lua_fail(L);
  int64_t n = tt_tensor_numel(c);
  int64_t *counts = calloc((size_t)K, sizeof *counts);
  if (!counts) { tt_tensor_unref(c); return luaL_error(L, "out of memory"); }
  const int64_t *idx = tt_tensor_data(c);
  int64_t bad = 0;
  bool out_of_range = false;
  for (int64_t i = 0; i < n && !out_of_range; i++) {
    if (idx[i] < 0 || idx[i] >= K) { bad = idx[i]; out_of_range = true; }
    else counts[idx[i]]++;
  }
  tt_tensor_unref(c);
  if (out_of_range) {
    free(counts);
    return luaL_error(L, "codebook_usage: index %I is outside 0..%d", (lua_Integer)bad, (int)K - 1);
  }
  int64_t used = 0;
  double ent = 0.0;
  for (lua_Integer k = 0; k < K; k++) {
    if (!counts[k]) continue;
    used++;
    double p = (double)counts[k] / (double)n;
    ent -= p * log(p);
  }
  free(counts);
  lua_pushnumber(L, (double)used / (double)K);
  lua_pushnumber(L, n > 0 ? exp(ent) : 0.0);
  lua_pushinteger(L, (lua_Integer)used);
  return 3;
}

/* ---- terminals ---- */

/* tt.isatty([fd or "stdout" | "stderr" | "stdin"]) */
static int l_isatty(lua_State *L) {
  int fd = 1;
  if (lua_type(L, 1) == LUA_TSTRING) {
    static const char *const names[] = {"stdin", "stdout", "stderr", NULL};
    fd = luaL_checkoption(L, 1, NULL, names);
  } else if (!lua_isnoneornil(L, 1)) {
    fd = (int)luaL_checkinteger(L, 1);
  }
  lua_pushboolean(L, isatty(fd) == 1);
  return 1;
}

static const luaL_Reg loader_methods[] = {{"next", loader_next}, {"seek", loader_seek},
                                          {"steps_per_epoch", loader_steps}, {"order", loader_order},
                                          {"close", loader_gc}, {NULL, NULL}};
static const luaL_Reg tb_methods[] = {{"scalar", tb_scalar}, {"image", tb_image}, {"flush", tb_flush},
                                      {"path", tb_path}, {"close", tb_gc}, {NULL, NULL}};
static const luaL_Reg tb_fns[] = {{"open", l_tb_open}, {"read", l_tb_read}, {NULL, NULL}};

static void new_class(lua_State *L, const char *name, lua_CFunction gc, const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__close");
  lua_newtable(L);
  luaL_setfuncs(L, methods, 0);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}

void tt_lua_open_train(lua_State *L, int module) {
  new_class(L, TT_LUA_LOADER, loader_gc, loader_methods);
  new_class(L, TT_LUA_TBWRITER, tb_gc, tb_methods);
  lua_pushcfunction(L, l_data_loader);
  lua_setfield(L, module, "data_loader");
  lua_newtable(L);
  luaL_setfuncs(L, tb_fns, 0);
  lua_setfield(L, module, "tensorboard");
  lua_pushcfunction(L, l_codebook_usage);
  lua_setfield(L, module, "codebook_usage");
  lua_pushcfunction(L, l_isatty);
  lua_setfield(L, module, "isatty");
}

/* lua_plugin.c — plugins in Lua: tt.plugin(kind, name, config, opts) creates an
 * instance; its official methods are called as p:encode(x); parameters are
 * reached by their state_dict names (p:param("conv_in.weight")). */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "taming/kinds.h"
#include "lua_internal.h"

typedef struct {
  tt_instance *inst;
} lua_plugin;

static lua_plugin *check_plugin(lua_State *L, int idx) {
  lua_plugin *p = luaL_checkudata(L, idx, TT_LUA_PLUGIN);
  if (!p->inst) luaL_argerror(L, idx, "plugin instance already freed");
  return p;
}

tt_instance *tt_lua_check_instance(lua_State *L, int idx) { return check_plugin(L, idx)->inst; }

static int p_gc(lua_State *L) {
  lua_plugin *p = luaL_checkudata(L, 1, TT_LUA_PLUGIN);
  tt_instance_free(p->inst);
  p->inst = NULL;
  return 0;
}

static int p_tostring(lua_State *L) {
  lua_plugin *p = check_plugin(L, 1);
  const tt_plugin_desc *d = tt_instance_desc(p->inst);
  lua_pushfstring(L, "plugin(%s/%s %s)", d->kind, d->name, d->version);
  return 1;
}

/* the closure behind p:method(...): upvalue 1 = method name */
static int p_call_method(lua_State *L) {
  lua_plugin *p = check_plugin(L, 1);
  const char *method = lua_tostring(L, lua_upvalueindex(1));
  int nargs = lua_gettop(L) - 1;
  tt_value *args = nargs ? calloc((size_t)nargs, sizeof *args) : NULL;
  if (nargs && !args) return luaL_error(L, "out of memory");
  for (int i = 0; i < nargs; i++) {
    if (tt_lua_to_value(L, i + 2, &args[i]) != TT_OK) {
      for (int k = 0; k < i; k++) tt_value_clear(&args[k]);
      free(args);
      return luaL_error(L, "%s: argument %d: %s", method, i + 1, tt_error_message());
    }
  }
  tt_value rets[TT_MAX_RETS];
  int nrets = 0;
  tt_status s = tt_instance_call(p->inst, method, args, nargs, rets, &nrets);
  for (int i = 0; i < nargs; i++) tt_value_clear(&args[i]);
  free(args);
  if (s != TT_OK) return tt_lua_fail(L);
  for (int i = 0; i < nrets; i++) tt_lua_push_value(L, &rets[i]);
  return nrets;
}

static tt_param *find_param(lua_State *L, lua_plugin *p, const char *name) {
  tt_param *q = tt_paramset_find(tt_instance_params(p->inst), name);
  if (!q) {
    const tt_plugin_desc *d = tt_instance_desc(p->inst);
    luaL_error(L, "%s/%s has no parameter '%s'", d->kind, d->name, name);
  }
  return q;
}

static int p_param_names(lua_State *L) {
  lua_plugin *p = check_plugin(L, 1);
  tt_paramset *ps = tt_instance_params(p->inst);
  lua_createtable(L, ps ? ps->n : 0, 0);
  for (int i = 0; ps && i < ps->n; i++) {
    lua_pushstring(L, ps->items[i]->name);
    lua_seti(L, -2, i + 1);
  }
  return 1;
}

static int p_param(lua_State *L) {
  lua_plugin *p = check_plugin(L, 1);
  tt_param *q = find_param(L, p, luaL_checkstring(L, 2));
  if (q->t) tt_lua_push_tensor(L, tt_tensor_ref(q->t));
  else lua_pushnil(L);
  return 1;
}

static int p_param_info(lua_State *L) {
  lua_plugin *p = check_plugin(L, 1);
  tt_param *q = find_param(L, p, luaL_checkstring(L, 2));
  lua_createtable(L, 0, 6);
  lua_createtable(L, q->ndim, 0);
  for (int i = 0; i < q->ndim; i++) { lua_pushinteger(L, q->shape[i]); lua_seti(L, -2, i + 1); }
  lua_setfield(L, -2, "shape");
  lua_pushstring(L, tt_dtype_name(q->dtype)); lua_setfield(L, -2, "dtype");
  lua_pushboolean(L, (q->flags & TT_PARAM_TRAINABLE) != 0); lua_setfield(L, -2, "trainable");
  lua_pushboolean(L, (q->flags & TT_PARAM_BUFFER) != 0); lua_setfield(L, -2, "buffer");
  lua_pushboolean(L, (q->flags & TT_PARAM_OPTIONAL) != 0); lua_setfield(L, -2, "optional");
  lua_pushboolean(L, (q->flags & TT_PARAM_FROZEN) != 0); lua_setfield(L, -2, "frozen");
  lua_pushboolean(L, q->t != NULL); lua_setfield(L, -2, "bound");
  return 1;
}

/* p:set_param(name, tensor [, source]) */
static int p_set_param(lua_State *L) {
  lua_plugin *p = check_plugin(L, 1);
  tt_param *q = find_param(L, p, luaL_checkstring(L, 2));
  if (tt_param_bind(q, tt_lua_check_tensor(L, 3), luaL_optstring(L, 4, NULL)) != TT_OK) return tt_lua_fail(L);
  return 0;
}

/* p:materialize([seed [, device]]) — initialises every parameter still unbound */
static int p_materialize(lua_State *L) {
  lua_plugin *p = check_plugin(L, 1);
  tt_device dev = tt_lua_check_device(L, luaL_optstring(L, 3, "cpu"));
  tt_paramset *ps = tt_instance_params(p->inst);
  if (ps && tt_paramset_materialize(ps, (uint64_t)luaL_optinteger(L, 2, 0), dev) != TT_OK) return tt_lua_fail(L);
  return 0;
}

static int p_params_ready(lua_State *L) {
  if (tt_instance_params_ready(check_plugin(L, 1)->inst) != TT_OK) return tt_lua_fail(L);
  return 0;
}

static int p_train(lua_State *L) {
  lua_plugin *p = check_plugin(L, 1);
  if (tt_instance_set_training(p->inst, lua_isnone(L, 2) ? true : lua_toboolean(L, 2)) != TT_OK) return tt_lua_fail(L);
  lua_settop(L, 1);
  return 1;
}

/* p:to(device): moves every bound parameter */
static int p_to(lua_State *L) {
  lua_plugin *p = check_plugin(L, 1);
  tt_device dev = tt_lua_check_device(L, luaL_checkstring(L, 2));
  tt_paramset *ps = tt_instance_params(p->inst);
  for (int i = 0; ps && i < ps->n; i++) {
    tt_param *q = ps->items[i];
    if (!q->t || q->t->device == dev) continue;
    tt_tensor *m = tt_to_device(q->t, dev);
    tt_tensor *d = m ? tt_detach(m) : NULL;
    tt_tensor_unref(m);
    if (!d) return tt_lua_fail(L);
    tt_status s = tt_param_bind(q, d, NULL);
    tt_tensor_unref(d);
    if (s != TT_OK) return tt_lua_fail(L);
  }
  if (tt_instance_params_ready(p->inst) != TT_OK) return tt_lua_fail(L);
  lua_settop(L, 1);
  return 1;
}

static int p_kind(lua_State *L) { lua_pushstring(L, tt_instance_desc(check_plugin(L, 1)->inst)->kind); return 1; }
static int p_name(lua_State *L) { lua_pushstring(L, tt_instance_desc(check_plugin(L, 1)->inst)->name); return 1; }

/* p:methods() -> {{name =, doc =, required =}, ...} in the plugin's order;
 * required: the plugin's kind (taming/kinds.h) requires the method. */
static int p_methods(lua_State *L) {
  const tt_plugin_desc *d = tt_instance_desc(check_plugin(L, 1)->inst);
  const tt_kind *k = tt_kind_find(d->kind);
  lua_newtable(L);
  int i = 1;
  for (const tt_method *m = d->methods; m->name; m++) {
    bool required = false;
    for (const tt_kind_method *km = k ? k->methods : NULL; km && km->name; km++)
      if (!strcmp(km->name, m->name)) required = km->group == TT_KIND_REQUIRED;
    lua_createtable(L, 0, 3);
    lua_pushstring(L, m->name); lua_setfield(L, -2, "name");
    lua_pushstring(L, m->doc ? m->doc : ""); lua_setfield(L, -2, "doc");
    lua_pushboolean(L, required); lua_setfield(L, -2, "required");
    lua_seti(L, -2, i++);
  }
  return 1;
}

static int p_has_method(lua_State *L) {
  lua_pushboolean(L, tt_instance_method(check_plugin(L, 1)->inst, luaL_checkstring(L, 2)) != NULL);
  return 1;
}

static const luaL_Reg builtin_methods[] = {
    {"param_names", p_param_names}, {"param", p_param}, {"param_info", p_param_info},
    {"set_param", p_set_param}, {"materialize", p_materialize}, {"params_ready", p_params_ready},
    {"train", p_train}, {"to", p_to}, {"kind", p_kind}, {"plugin_name", p_name},
    {"methods", p_methods}, {"has_method", p_has_method}, {NULL, NULL}};

/* __index: a built-in helper, or a closure calling the plugin's method of that name */
static int p_index(lua_State *L) {
  lua_plugin *p = check_plugin(L, 1);
  const char *key = luaL_checkstring(L, 2);
  lua_getfield(L, lua_upvalueindex(1), key);
  if (!lua_isnil(L, -1)) return 1;
  lua_pop(L, 1);
  if (!tt_instance_method(p->inst, key)) {
    const tt_plugin_desc *d = tt_instance_desc(p->inst);
    return luaL_error(L, "%s/%s has no method '%s'", d->kind, d->name, key);
  }
  lua_pushstring(L, key);
  lua_pushcclosure(L, p_call_method, 1);
  return 1;
}

/* tt.plugin(kind, name [, config [, {init=true, seed=0, device="cpu"}]]) */
static int l_plugin(lua_State *L) {
  const char *kind = luaL_checkstring(L, 1), *name = luaL_checkstring(L, 2);
  lua_settop(L, 4); /* config and opts keep their places below the userdata */
  int init = tt_lua_opt_field_bool(L, 4, "init", 1);
  lua_Integer seed = tt_lua_opt_field_int(L, 4, "seed", 0);
  tt_device dev = tt_lua_check_device(L, tt_lua_opt_field_str(L, 4, "device", "cpu"));
  /* The userdata first, empty (its __gc accepts that): once the instance
   * exists, nothing may raise before the userdata owns it. */
  lua_plugin *p = lua_newuserdatauv(L, sizeof *p, 0);
  p->inst = NULL;
  luaL_setmetatable(L, TT_LUA_PLUGIN);
  tt_value cfg = TT_VALUE_NIL;
  if (!lua_isnoneornil(L, 3) && tt_lua_to_value(L, 3, &cfg) != TT_OK) return tt_lua_fail(L);
  tt_plugin *pl;
  tt_status s = tt_plugin_find(kind, name, &pl);
  if (s == TT_OK) s = tt_instance_create(pl, &cfg, &p->inst);
  tt_value_clear(&cfg);
  if (s != TT_OK) return tt_lua_fail(L);
  if (init) {
    tt_paramset *ps = tt_instance_params(p->inst);
    if (ps && tt_paramset_materialize(ps, (uint64_t)seed, dev) != TT_OK) return tt_lua_fail(L);
    if (tt_instance_params_ready(p->inst) != TT_OK) return tt_lua_fail(L);
  }
  return 1;
}

typedef struct { lua_State *L; int i; } scan_ctx;

static void scan_cb(const char *path, const tt_plugin_desc *d, const char *refusal, void *ud) {
  scan_ctx *c = ud;
  lua_State *L = c->L;
  lua_createtable(L, 0, 6);
  lua_pushstring(L, path); lua_setfield(L, -2, "path");
  if (d) {
    lua_pushstring(L, d->kind); lua_setfield(L, -2, "kind");
    lua_pushstring(L, d->name); lua_setfield(L, -2, "name");
    lua_pushstring(L, d->version); lua_setfield(L, -2, "version");
    lua_pushstring(L, d->summary ? d->summary : ""); lua_setfield(L, -2, "summary");
  } else {
    lua_pushstring(L, refusal); lua_setfield(L, -2, "refused");
  }
  lua_seti(L, -2, ++c->i);
}

static int l_plugins(lua_State *L) {
  lua_newtable(L);
  scan_ctx c = {L, 0};
  tt_plugin_scan(scan_cb, &c);
  return 1;
}

void tt_lua_open_plugin(lua_State *L, int module) {
  luaL_newmetatable(L, TT_LUA_PLUGIN);
  lua_pushcfunction(L, p_gc); lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, p_tostring); lua_setfield(L, -2, "__tostring");
  luaL_newlib(L, builtin_methods);
  lua_pushcclosure(L, p_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_plugin); lua_setfield(L, module, "plugin");
  lua_pushcfunction(L, l_plugins); lua_setfield(L, module, "plugins");
}

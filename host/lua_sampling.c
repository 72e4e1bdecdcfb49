/* lua_sampling.c — tt.sample{...} and tt.sample_window{...}: the C sampling loops
 * (taming/sampling.h) from Lua. */
#include "config.h"
#include "lua_internal.h"
#include "taming/sampling.h"

static tt_instance *field_instance(lua_State *L, const char *key) {
  lua_getfield(L, 1, key);
  if (lua_isnil(L, -1)) luaL_error(L, "missing field '%s' (a plugin)", key);
  tt_instance *i = tt_lua_check_instance(L, -1);
  lua_pop(L, 1);   /* still referenced by the argument table */
  return i;
}

static tt_tensor *field_tensor(lua_State *L, const char *key, bool required) {
  lua_getfield(L, 1, key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    if (required) luaL_error(L, "missing field '%s' (a tensor)", key);
    return NULL;
  }
  tt_tensor *t = tt_lua_check_tensor(L, -1);
  lua_pop(L, 1);
  return t;
}

static void field_pair(lua_State *L, const char *key, int64_t def, int64_t *a, int64_t *b) {
  *a = *b = def;
  if (lua_getfield(L, 1, key) == LUA_TTABLE) {
    lua_geti(L, -1, 1);
    lua_geti(L, -2, 2);
    *a = luaL_checkinteger(L, -2);
    *b = luaL_checkinteger(L, -1);
    lua_pop(L, 2);
  } else if (lua_isinteger(L, -1)) {
    *a = *b = lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
}

/* tt.sample{gpt=, sampler=, prefix=[B,L0], steps=, cache=true, vocab_limit=, uncond=, cfg_scale=} -> [B, steps] */
static int l_sample(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  tt_instance *gpt = field_instance(L, "gpt"), *sampler = field_instance(L, "sampler");
  tt_tensor *prefix = field_tensor(L, "prefix", true);
  tt_sample_opts o = {.use_cache = tt_lua_opt_field_bool(L, 1, "cache", 1),
                      .vocab_limit = tt_lua_opt_field_int(L, 1, "vocab_limit", 0),
                      .uncond = field_tensor(L, "uncond", false),
                      .cfg_scale = tt_lua_opt_field_num(L, 1, "cfg_scale", 1.0)};
  int64_t steps = tt_lua_opt_field_int(L, 1, "steps", 0);
  tt_tensor *out = NULL;
  if (tt_sample_sequence(gpt, sampler, prefix, steps, &o, &out) != TT_OK) return tt_lua_fail(L);
  tt_lua_push_tensor(L, out);
  return 1;
}

/* tt.sample_window{gpt=, sampler=, grid=[B,H,W] (filled in place), cond_grid=, cond_tokens=,
 *                  window={16,16}, anchor={8,8}, start=0, cache=true, vocab_limit=} */
static int l_sample_window(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  tt_instance *gpt = field_instance(L, "gpt"), *sampler = field_instance(L, "sampler");
  tt_tensor *grid = field_tensor(L, "grid", true);
  tt_window_opts o;
  field_pair(L, "window", 16, &o.win_h, &o.win_w);
  field_pair(L, "anchor", 8, &o.anchor_h, &o.anchor_w);
  o.start = tt_lua_opt_field_int(L, 1, "start", 0);
  o.use_cache = tt_lua_opt_field_bool(L, 1, "cache", 1);
  o.vocab_limit = tt_lua_opt_field_int(L, 1, "vocab_limit", 0);
  if (tt_sample_window(gpt, sampler, grid, field_tensor(L, "cond_grid", false), field_tensor(L, "cond_tokens", false),
                       &o) != TT_OK)
    return tt_lua_fail(L);
  return 0;
}

void tt_lua_open_sampling(lua_State *L, int module) {
  lua_pushcfunction(L, l_sample);
  lua_setfield(L, module, "sample");
  lua_pushcfunction(L, l_sample_window);
  lua_setfield(L, module, "sample_window");
}

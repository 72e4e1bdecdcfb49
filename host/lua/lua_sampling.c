/* lua_sampling.c — tt.sample{...} and tt.sample_window{...}: the C sampling loops
 * (taming/sampling.h) from Lua. The sampler is a plugin or a Lua function
 * f(logits [B, V]) -> i64 [B]; the C loop calls the function once per sampled
 * step through a protected call, so a Lua error in it ends the loop cleanly
 * with the function's message.
 *
 * Cost: one Lua call and one tensor wrapped per step, plus whatever the
 * function computes. Written with the tensor ops (tests/lua/
 * lua_categorical_sampler.lua) it costs about what the C plugin does
 * (bench/lua_sampler.lua, 80 rows x 128 codes: ~0.1 ms vs ~0.3 ms per step for
 * temperature sampling, ~2.2-3.3 ms vs ~1.8-2.6 ms with top-k), a few percent of
 * a step of the shipped model; a function that loops over totable() rows in
 * Lua costs far more. */
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

/* The sampler field: a plugin, or a function (left at stack index *fn_idx). */
static tt_instance *field_sampler(lua_State *L, int *fn_idx) {
  *fn_idx = 0;
  lua_getfield(L, 1, "sampler");
  if (lua_isfunction(L, -1)) {
    *fn_idx = lua_gettop(L);   /* stays on the stack for the whole loop */
    return NULL;
  }
  if (lua_isnil(L, -1)) luaL_error(L, "missing field 'sampler' (a sampler plugin or a function f(logits) -> tokens)");
  tt_instance *i = tt_lua_check_instance(L, -1);
  lua_pop(L, 1);
  return i;
}

typedef struct {
  lua_State *L;
  int fn;
} lua_draw_ctx;

/* tt_draw_fn calling the Lua function: logits [B, V] -> i64 tokens [B] */
static tt_status lua_draw(void *ctx, tt_tensor *logits, tt_tensor **tokens) {
  lua_draw_ctx *c = ctx;
  lua_State *L = c->L;
  int top = lua_gettop(L);
  lua_pushvalue(L, c->fn);
  tt_lua_push_tensor(L, tt_tensor_ref(logits));
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    const char *m = lua_tostring(L, -1);
    tt_status s = tt_error(TT_ERR_SCRIPT, "sampler function: %s", m ? m : "(an error that is not a string)");
    lua_settop(L, top);
    return s;
  }
  tt_tensor **ud = luaL_testudata(L, -1, TT_LUA_TENSOR);
  tt_status s = TT_OK;
  if (!ud || !*ud) s = tt_error(TT_ERR_INVALID, "sampler function: returned a %s, expected an i64 tensor [B]",
                                luaL_typename(L, -1));
  else *tokens = tt_tensor_ref(*ud);
  lua_settop(L, top);
  tt_lua_memory_hint(L);
  return s;
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

/* tt.sample{gpt=, sampler=plugin|function, prefix=[B,L0], steps=, cache=true, vocab_limit=, uncond=, cfg_scale=,
 *           known=[B,steps] i64, mask=[B,steps] (0: keep known, else sample)} -> [B, steps] */
static int l_sample(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  tt_instance *gpt = field_instance(L, "gpt");
  int fn = 0;
  tt_instance *sampler = field_sampler(L, &fn);
  lua_draw_ctx dc = {L, fn};
  tt_tensor *prefix = field_tensor(L, "prefix", true);
  tt_sample_opts o = {.use_cache = tt_lua_opt_field_bool(L, 1, "cache", 1),
                      .vocab_limit = tt_lua_opt_field_int(L, 1, "vocab_limit", 0),
                      .uncond = field_tensor(L, "uncond", false),
                      .cfg_scale = tt_lua_opt_field_num(L, 1, "cfg_scale", 1.0),
                      .draw = fn ? lua_draw : NULL,
                      .draw_ctx = &dc,
                      .known = field_tensor(L, "known", false),
                      .mask = field_tensor(L, "mask", false)};
  int64_t steps = tt_lua_opt_field_int(L, 1, "steps", 0);
  tt_tensor *out = NULL;
  if (tt_sample_sequence(gpt, sampler, prefix, steps, &o, &out) != TT_OK) return tt_lua_fail(L);
  tt_lua_push_tensor(L, out);
  return 1;
}

/* tt.sample_window{gpt=, sampler=plugin|function, grid=[B,H,W] (filled in place), cond_grid=, cond_tokens=,
 *                  window={16,16}, anchor={8,8}, start=0, cache=true, vocab_limit=,
 *                  mask=[B,H,W] (0: keep the grid's token, else sample),
 *                  cache_slots=0 (KV caches kept for windows met again; 0: one per window column)}
 * -> the number of tokens per sequence that went through the model */
static int l_sample_window(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  tt_instance *gpt = field_instance(L, "gpt");
  int fn = 0;
  tt_instance *sampler = field_sampler(L, &fn);
  lua_draw_ctx dc = {L, fn};
  tt_tensor *grid = field_tensor(L, "grid", true);
  tt_window_opts o = {.draw = fn ? lua_draw : NULL, .draw_ctx = &dc, .mask = field_tensor(L, "mask", false)};
  field_pair(L, "window", 16, &o.win_h, &o.win_w);
  field_pair(L, "anchor", 8, &o.anchor_h, &o.anchor_w);
  o.start = tt_lua_opt_field_int(L, 1, "start", 0);
  o.use_cache = tt_lua_opt_field_bool(L, 1, "cache", 1);
  o.vocab_limit = tt_lua_opt_field_int(L, 1, "vocab_limit", 0);
  o.cache_slots = tt_lua_opt_field_int(L, 1, "cache_slots", 0);
  if (o.cache_slots < 0) return luaL_error(L, "sample_window: cache_slots must be 0 (automatic) or more");
  int64_t fed = 0;
  o.tokens_fed = &fed;
  if (tt_sample_window(gpt, sampler, grid, field_tensor(L, "cond_grid", false), field_tensor(L, "cond_tokens", false),
                       &o) != TT_OK)
    return tt_lua_fail(L);
  lua_pushinteger(L, (lua_Integer)fed);
  return 1;
}

void tt_lua_open_sampling(lua_State *L, int module) {
  lua_pushcfunction(L, l_sample);
  lua_setfield(L, module, "sample");
  lua_pushcfunction(L, l_sample_window);
  lua_setfield(L, module, "sample_window");
}

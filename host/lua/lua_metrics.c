/* lua_metrics.c — tt.metrics: the sample-set metrics of metrics.h in Lua.
 *
 *   local acc = tt.metrics.gauss_stats(2048)   -- streaming mean / covariance
 *   acc:add(features)                          -- [B, 2048]
 *   local mu, sigma = acc:result()             -- f64 [2048], [2048, 2048]
 *   tt.metrics.frechet_distance(mu1, sigma1, mu2, sigma2) -> number
 *   tt.metrics.inception_score(logits [, splits = 10 [, shuffle_seed = 2020, or false]]) -> mean, std */
#include "config.h"
#include <string.h>
#include "lua_internal.h"
#include "taming/metrics.h"

#define TT_LUA_GAUSS "taming.gauss_stats"

static tt_gauss_stats *check_gauss(lua_State *L, int idx) {
  tt_gauss_stats *s = luaL_checkudata(L, idx, TT_LUA_GAUSS);
  if (!s->cross) luaL_argerror(L, idx, "statistics already freed");
  return s;
}

static int g_gc(lua_State *L) {
  tt_gauss_stats_free(luaL_checkudata(L, 1, TT_LUA_GAUSS));
  return 0;
}

static int g_add(lua_State *L) {
  if (tt_gauss_stats_add(check_gauss(L, 1), tt_lua_check_tensor(L, 2)) != TT_OK) return tt_lua_fail(L);
  lua_settop(L, 1);
  return 1;
}

static int g_count(lua_State *L) {
  lua_pushinteger(L, check_gauss(L, 1)->n);
  return 1;
}

static int g_result(lua_State *L) {
  tt_tensor *mu, *sigma;
  if (tt_gauss_stats_result(check_gauss(L, 1), &mu, &sigma) != TT_OK) return tt_lua_fail(L);
  tt_lua_push_tensor(L, mu);
  tt_lua_push_tensor(L, sigma);
  return 2;
}

static int l_gauss_stats(lua_State *L) {
  lua_Integer dim = luaL_checkinteger(L, 1);
  tt_gauss_stats *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);   /* a safe empty state before anything is taken */
  luaL_setmetatable(L, TT_LUA_GAUSS);
  if (tt_gauss_stats_init(s, (int64_t)dim) != TT_OK) return tt_lua_fail(L);
  tt_lua_memory_hint(L);
  return 1;
}

static int l_frechet(lua_State *L) {
  double fid;
  if (tt_frechet_distance(tt_lua_check_tensor(L, 1), tt_lua_check_tensor(L, 2), tt_lua_check_tensor(L, 3),
                          tt_lua_check_tensor(L, 4), &fid) != TT_OK)
    return tt_lua_fail(L);
  lua_pushnumber(L, fid);
  return 1;
}

static int l_inception_score(lua_State *L) {
  tt_tensor *logits = tt_lua_check_tensor(L, 1);
  lua_Integer splits = luaL_optinteger(L, 2, 10);
  lua_Integer seed = 2020;   /* torch-fidelity's default */
  if (lua_isboolean(L, 3) && !lua_toboolean(L, 3)) seed = -1;
  else if (!lua_isnoneornil(L, 3)) seed = luaL_checkinteger(L, 3);
  if (splits < 1 || splits > 1 << 20) return luaL_error(L, "inception_score: splits=%I outside [1, 2^20]", splits);
  double mean, std;
  if (tt_inception_score(logits, (int)splits, (int64_t)seed, &mean, &std) != TT_OK) return tt_lua_fail(L);
  lua_pushnumber(L, mean);
  lua_pushnumber(L, std);
  return 2;
}

static const luaL_Reg gauss_methods[] = {{"add", g_add}, {"count", g_count}, {"result", g_result}, {NULL, NULL}};
static const luaL_Reg metrics_fns[] = {{"gauss_stats", l_gauss_stats}, {"frechet_distance", l_frechet},
                                       {"inception_score", l_inception_score}, {NULL, NULL}};

void tt_lua_open_metrics(lua_State *L, int module) {
  luaL_newmetatable(L, TT_LUA_GAUSS);
  lua_pushcfunction(L, g_gc);
  lua_setfield(L, -2, "__gc");
  luaL_newlib(L, gauss_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, metrics_fns);
  lua_setfield(L, module, "metrics");
}

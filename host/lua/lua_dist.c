/* lua_dist.c — tt.dist: data-parallel training from Lua (taming/dist.h).
 *
 *   tt.dist.init()               -> size, rank   (optional: every call below joins first)
 *   tt.dist.size(), rank(), local_rank(), is_main()
 *   tt.dist.allreduce_(t [, "sum"|"mean"]) -> t  (in place, f32; default "sum")
 *   tt.dist.broadcast_(t, root)  -> t            (in place, any dtype)
 *   tt.dist.barrier()
 *   tt.dist.backend()            -> "none" | "mpi" | "mpi+nccl"
 *
 * The queries join the job too, so that a script that forgets init() still
 * sees its real rank under mpirun rather than believing it is alone. In a
 * plain process the world is one process and the collectives change nothing. */
#include "config.h"
#include <limits.h>
#include "lua_internal.h"
#include "taming/dist.h"

static void join(lua_State *L) {
  if (tt_dist_init() != TT_OK) tt_lua_fail(L);
}

static int l_init(lua_State *L) {
  join(L);
  lua_pushinteger(L, tt_dist_size());
  lua_pushinteger(L, tt_dist_rank());
  return 2;
}

static int l_size(lua_State *L) {
  join(L);
  lua_pushinteger(L, tt_dist_size());
  return 1;
}

static int l_rank(lua_State *L) {
  join(L);
  lua_pushinteger(L, tt_dist_rank());
  return 1;
}

static int l_local_rank(lua_State *L) {
  join(L);
  lua_pushinteger(L, tt_dist_local_rank());
  return 1;
}

static int l_is_main(lua_State *L) {
  join(L);
  lua_pushboolean(L, tt_dist_rank() == 0);
  return 1;
}

static int l_backend(lua_State *L) {
  join(L);
  lua_pushstring(L, tt_dist_backend());
  return 1;
}

static int l_allreduce_(lua_State *L) {
  static const char *const ops[] = {"sum", "mean", NULL};
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  tt_dist_op op = luaL_checkoption(L, 2, "sum", ops) == 0 ? TT_DIST_SUM : TT_DIST_MEAN;
  if (tt_dist_allreduce(t, op) != TT_OK) return tt_lua_fail(L);
  lua_settop(L, 1);
  return 1;
}

static int l_broadcast_(lua_State *L) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  lua_Integer root = luaL_checkinteger(L, 2);
  if (root < INT_MIN || root > INT_MAX) return luaL_argerror(L, 2, "root is not a rank");
  if (tt_dist_broadcast(t, (int)root) != TT_OK) return tt_lua_fail(L);
  lua_settop(L, 1);
  return 1;
}

static int l_barrier(lua_State *L) {
  if (tt_dist_barrier() != TT_OK) return tt_lua_fail(L);
  return 0;
}

static const luaL_Reg dist_funcs[] = {
    {"init", l_init},       {"size", l_size},       {"rank", l_rank},
    {"local_rank", l_local_rank}, {"is_main", l_is_main}, {"backend", l_backend},
    {"allreduce_", l_allreduce_}, {"broadcast_", l_broadcast_}, {"barrier", l_barrier},
    {NULL, NULL}};

void tt_lua_open_dist(lua_State *L, int module) {
  luaL_newlib(L, dist_funcs);
  lua_setfield(L, module, "dist");
}

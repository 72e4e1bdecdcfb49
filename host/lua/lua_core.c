/* lua_core.c — luaopen_taming_core: assembles the C half of the `taming` Lua
 * module (the Lua half lives in lua/taming/). */
#include "config.h"
#include "lua_internal.h"

TT_API int luaopen_taming_core(lua_State *L);

int luaopen_taming_core(lua_State *L) {
  lua_newtable(L);
  int module = lua_gettop(L);
  tt_lua_open_tensor(L, module);
  tt_lua_open_select(L, module);
  tt_lua_open_ops(L, module);
  tt_lua_open_plugin(L, module);
  tt_lua_open_io(L, module);
  tt_lua_open_sampling(L, module);
  tt_lua_open_data(L, module);
  tt_lua_open_dist(L, module);
  tt_lua_open_train(L, module);
  tt_lua_open_metrics(L, module);
  lua_pushstring(L, TT_VERSION_STRING);
  lua_setfield(L, module, "version");
  lua_pushfstring(L, "%d.%d", TT_PLUGIN_ABI_MAJOR, TT_PLUGIN_ABI_MINOR);
  lua_setfield(L, module, "abi");
  return 1;
}

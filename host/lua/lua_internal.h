/* lua_internal.h — shared pieces of the Lua binding (host/lua/lua_*.c). */
#ifndef TAMING_LUA_INTERNAL_H
#define TAMING_LUA_INTERNAL_H

#include <lauxlib.h>
#include <lua.h>
#include "taming/taming.h"

#define TT_LUA_TENSOR "taming.tensor"
#define TT_LUA_PLUGIN "taming.plugin"
#define TT_LUA_RNG "taming.rng"
#define TT_LUA_CKPT "taming.ckpt"

/* Raises a Lua error carrying the library's last message. */
int tt_lua_fail(lua_State *L);
/* Pushes t as a Lua tensor, taking over the caller's reference; t == NULL raises. */
void tt_lua_push_tensor(lua_State *L, tt_tensor *t);
tt_tensor *tt_lua_check_tensor(lua_State *L, int idx);
tt_tensor *tt_lua_opt_tensor(lua_State *L, int idx);   /* nil -> NULL */
/* A tensor from a tensor or a number (a 0-dim f32 on `like`'s device); new reference. */
tt_tensor *tt_lua_tensor_or_scalar(lua_State *L, int idx, const tt_tensor *like);
/* Shape from a table {2, 3} or varargs 2, 3 starting at idx. */
int tt_lua_shape(lua_State *L, int idx, int64_t *shape);
/* tt_value <-> Lua. to_value: tables with only 1..n keys become lists, others maps. */
tt_status tt_lua_to_value(lua_State *L, int idx, tt_value *out);
void tt_lua_push_value(lua_State *L, tt_value *v);   /* consumes v */
/* Option table helpers (idx may be absent/nil). */
lua_Integer tt_lua_opt_field_int(lua_State *L, int idx, const char *key, lua_Integer def);
lua_Number tt_lua_opt_field_num(lua_State *L, int idx, const char *key, lua_Number def);
int tt_lua_opt_field_bool(lua_State *L, int idx, const char *key, int def);
const char *tt_lua_opt_field_str(lua_State *L, int idx, const char *key, const char *def);
/* Device/dtype names. */
tt_device tt_lua_check_device(lua_State *L, const char *name);
tt_dtype tt_lua_check_dtype(lua_State *L, const char *name);
/* Keeps Lua's collector in step with tensor memory it cannot see. */
void tt_lua_memory_hint(lua_State *L);

tt_instance *tt_lua_check_instance(lua_State *L, int idx);

void tt_lua_open_sampling(lua_State *L, int module);
void tt_lua_open_data(lua_State *L, int module);
void tt_lua_open_train(lua_State *L, int module);
void tt_lua_open_metrics(lua_State *L, int module);
void tt_lua_open_tensor(lua_State *L, int module);
void tt_lua_open_select(lua_State *L, int module);
void tt_lua_open_ops(lua_State *L, int module);
void tt_lua_open_plugin(lua_State *L, int module);
void tt_lua_open_io(lua_State *L, int module);
void tt_lua_open_dist(lua_State *L, int module);

#endif

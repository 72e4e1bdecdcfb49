/* fuzz_json.c — the strict JSON parser (safetensors headers, sidecars) through
 * tt.json.parse, which also turns the result into Lua tables: a refusal must
 * be a message, never a Lua runtime error. */
#include <lauxlib.h>
#include "fuzz.h"

static lua_State *L;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_setup();
  L = fuzz_lua_new();
  if (luaL_dostring(L, "local tt = require 'taming.core'; return tt.json.parse") != LUA_OK)
    fuzz_fail(__FILE__, __LINE__, "setup: %s", lua_tostring(L, -1));
  lua_setglobal(L, "json_parse");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) LLVMFuzzerInitialize(NULL, NULL);
  lua_getglobal(L, "json_parse");
  lua_pushlstring(L, (const char *)data, size);
  lua_pushliteral(L, "fuzz.json");
  fuzz_lua_call(L, 2, "tt.json.parse");
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}

/* fuzz_yaml.c — official YAML configs: tt_yaml_parse on the text and
 * tt_yaml_load on the file must agree (but a file that parses to nothing is
 * no config, which only tt_yaml_load refuses), what parses is walked, and the file is
 * read as a model config the way tt.load / tt.build read it (taming.load:
 * model and model.target checked; no model builders are registered, so
 * nothing is built). A refusal must be a message, never a Lua runtime error. */
#include <lauxlib.h>
#include "fuzz.h"

static lua_State *L;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_setup();
  L = fuzz_lua_new();
  if (luaL_dostring(L, "return require('taming.load').build") != LUA_OK)
    fuzz_fail(__FILE__, __LINE__, "setup: %s", lua_tostring(L, -1));
  lua_setglobal(L, "build");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) LLVMFuzzerInitialize(NULL, NULL);
  tt_value v = TT_VALUE_NIL;
  tt_status s = tt_yaml_parse((const char *)data, size, "fuzz.yaml", &v);
  fuzz_expect_message(s, "tt_yaml_parse");
  if (s == TT_OK) fuzz_touch_value(&v, 0);
  bool empty = s == TT_OK && v.type == TT_V_NIL;   /* a config file must hold something */
  tt_value_clear(&v);

  const char *path = fuzz_file(0, data, size);
  tt_value w = TT_VALUE_NIL;
  tt_status sl = tt_yaml_load(path, &w);
  fuzz_expect_message(sl, "tt_yaml_load");
  FUZZ_CHECK((s == TT_OK && !empty) == (sl == TT_OK), "tt_yaml_parse %s but tt_yaml_load %s the same bytes",
             s != TT_OK ? "refuses" : empty ? "gives nothing for" : "accepts", sl == TT_OK ? "accepts" : "refuses");
  tt_value_clear(&w);

  lua_getglobal(L, "build");
  lua_pushstring(L, path);
  fuzz_lua_call(L, 1, "taming.load build(config)");
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}

/* fuzz_args.c — pipeline arguments (lua/taming/args.lua). The input is the
 * command line of `taming run`, one argument per line: key=value pairs become
 * fields and anything else positional entries, exactly as host/cli/main.c builds
 * the table. They are parsed against a schema with every kind of argument.
 * Refusals must be messages; what is accepted must be what was asked for:
 * a given int is an integer equal to the number written (never the default
 * because it did not fit), a number is finite and the number written, a bool a boolean, lists hold what their kind says, and
 * keys not given take their defaults. `--help` (which exits 0 by design)
 * must write a usage text. */
#include <lauxlib.h>
#include <string.h>
#include "fuzz.h"

static lua_State *L;

static int l_bug(lua_State *S) {
  fuzz_fail(__FILE__, __LINE__, "args: %s", luaL_checkstring(S, 1));
}

static const char *checker =
    "local args = require 'taming.args'\n"
    "local schema = {\n"
    "  config = {'string', help = 'official YAML config'},\n"
    "  size = {'int', default = 256}, n = {'int', default = 4}, seed = {'int', default = 23},\n"
    "  k = {'int', choices = {1, 2, 3}},\n"
    "  temperature = {'number', default = 1.0}, top_p = {'number'},\n"
    "  greedy = {'bool', default = false},\n"
    "  classes = {'intlist'}, names = {'list'},\n"
    "  device = {'string', default = 'cpu', choices = {'cpu', 'cuda'}},\n"
    "}\n"
    "-- --help (or -h) prints the usage and exits 0 by design: here it writes\n"
    "-- nowhere and ends the call with a message instead of the process\n"
    "io.stdout = {write = function(self, text)\n"
    "  if type(text) ~= 'string' or #text == 0 then fuzz_bug('--help wrote no usage text') end\n"
    "  return self\n"
    "end, flush = function(self) return self end}\n"
    "os.exit = function(code) error('exit ' .. tostring(code), 0) end\n"
    "local function finite(x) return type(x) == 'number' and x == x and x ~= math.huge and x ~= -math.huge end\n"
    "return function(raw)\n"
    "  local out = args.parse(raw, schema, 'taming run fuzz.lua key=value ...')\n"
    "  for key, spec in pairs(schema) do\n"
    "    local v, given = out[key], raw[key]\n"
    "    local what = ('%s=%s -> %s (%s)'):format(key, tostring(given), tostring(v), math.type(v) or type(v))\n"
    "    if given == nil then\n"
    "      if v ~= spec.default then fuzz_bug(key .. ' not given, but not its default: ' .. what) end\n"
    "    elseif spec[1] == 'int' then\n"
    "      if math.type(v) ~= 'integer' or v ~= tonumber(given) then fuzz_bug('an int argument accepted as ' .. what) end\n"
    "    elseif spec[1] == 'number' then\n"
    "      if not finite(v) or v ~= tonumber(given) then fuzz_bug('a number argument accepted as ' .. what) end\n"
    "    elseif spec[1] == 'bool' then\n"
    "      if type(v) ~= 'boolean' then fuzz_bug('a bool argument accepted as ' .. what) end\n"
    "    elseif spec[1] == 'intlist' or spec[1] == 'list' then\n"
    "      if type(v) ~= 'table' then fuzz_bug('a list argument accepted as ' .. what) end\n"
    "      for _, x in ipairs(v) do\n"
    "        if spec[1] == 'intlist' and math.type(x) ~= 'integer' then fuzz_bug('an intlist item accepted as ' .. tostring(x) .. ' in ' .. what) end\n"
    "        if spec[1] == 'list' and type(x) ~= 'string' then fuzz_bug('a list item accepted as ' .. tostring(x) .. ' in ' .. what) end\n"
    "      end\n"
    "    elseif v ~= given then fuzz_bug('a string argument changed: ' .. what)\n"
    "    end\n"
    "  end\n"
    "end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_setup();
  L = fuzz_lua_new();
  lua_register(L, "fuzz_bug", l_bug);
  if (luaL_loadstring(L, checker) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK)
    fuzz_fail(__FILE__, __LINE__, "setup: %s", lua_tostring(L, -1));
  lua_setglobal(L, "check_args");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!L) LLVMFuzzerInitialize(NULL, NULL);
  lua_getglobal(L, "check_args");
  lua_newtable(L);
  lua_Integer pos = 1;
  const char *p = (const char *)data, *end = p + size;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *e = nl ? nl : end;
    const char *eq = memchr(p, '=', (size_t)(e - p));
    if (eq && eq != p) {
      lua_pushlstring(L, p, (size_t)(eq - p));
      lua_pushlstring(L, eq + 1, (size_t)(e - eq - 1));
      lua_settable(L, -3);
    } else {
      lua_pushlstring(L, p, (size_t)(e - p));
      lua_seti(L, -2, pos++);
    }
    p = nl ? nl + 1 : end;
  }
  lua_pushliteral(L, "fuzz.lua");
  lua_setfield(L, -2, "_script");
  fuzz_lua_call(L, 1, "taming.args parse");
  lua_gc(L, LUA_GCSTEP, 0);
  return 0;
}

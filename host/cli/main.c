/* main.c — the `taming` command: runs Lua pipelines, lists plugins, inspects
 * and converts checkpoints. Every failure ends in one line on stderr naming the
 * file and the cause, and a non-zero exit status. */
#include "config.h"
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "taming/taming.h"
#include "../core/internal.h"

int luaopen_taming_core(lua_State *L);

static const char *usage =
    "usage: taming COMMAND [ARGS]\n"
    "\n"
    "  run SCRIPT.lua [key=value ...]   run a Lua pipeline; key=value pairs arrive as a table\n"
    "                                   (SCRIPT may also name a shipped pipeline: taming run sample_class)\n"
    "  plugins [-v]                     list the plugins found on the search path (and refusals);\n"
    "                                   -v: each plugin's summary and methods with their doc strings\n"
    "  info FILE                        list a checkpoint's tensors (name, dtype, shape) and keys, and\n"
    "                                   warn about pickle globals that torch.load would call\n"
    "  convert IN OUT.safetensors [--inference] [--quantize int8] [--allow-unsafe-globals]\n"
    "                                   rewrite a checkpoint as safetensors (--inference drops loss.*,\n"
    "                                   --quantize int8 stores the GPT's linear weights in int8; a pickle\n"
    "                                   with globals outside the allowlist is refused unless allowed)\n"
    "  --help, --version\n"
    "\n"
    "environment: TAMING_PLUGIN_PATH (extra plugin folders, ':'-separated),\n"
    "             TAMING_HOME (an install prefix moved elsewhere),\n"
    "             TAMING_TRACEBACK=1 (print a Lua traceback on errors),\n"
    "             TAMING_PROFILE=1 (time and memory per op on stderr when a run ends),\n"
    "             OMP_NUM_THREADS (threads for the CPU kernels)\n";

/* One line: newlines and tabs in a message become spaces. */
static void die_line(const char *prefix, const char *msg) {
  fprintf(stderr, "taming: %s", prefix ? prefix : "");
  for (const char *p = msg; p && *p; p++) fputc(*p == '\n' || *p == '\t' ? ' ' : *p, stderr);
  fputc('\n', stderr);
}

static const char *lua_root(void) {
  return tt_running_uninstalled() ? TT_ABS_SRCDIR : tt_install_dir(TT_DIR_PKGDATA);
}

static int traceback_handler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = luaL_tolstring(L, 1, NULL);
  if (getenv("TAMING_TRACEBACK")) luaL_traceback(L, L, msg, 1);
  else lua_pushstring(L, msg);
  return 1;
}

static bool file_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* SCRIPT as given, else a shipped pipeline of that name */
static const char *resolve_script(const char *name, char *buf, size_t n) {
  if (file_exists(name)) return name;
  const char *ext = strstr(name, ".lua") ? "" : ".lua";
  snprintf(buf, n, "%s/%s%s", lua_root(), name, ext);   /* "pipelines/x.lua" from anywhere */
  if (file_exists(buf)) return buf;
  snprintf(buf, n, "%s/pipelines/%s%s", lua_root(), name, ext);
  if (file_exists(buf)) return buf;
  return NULL;
}

static int cmd_run(int argc, char **argv) {
  if (argc < 1) {
    die_line("run: ", "missing SCRIPT (usage: taming run SCRIPT.lua [key=value ...])");
    return 2;
  }
  if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
    puts("usage: taming run SCRIPT.lua [key=value ...]   (taming run SCRIPT.lua --help: the script's arguments)");
    return 0;
  }
  char sbuf[4096];
  const char *script = resolve_script(argv[0], sbuf, sizeof sbuf);
  if (!script) {
    fprintf(stderr, "taming: %s: no such script (nor a shipped pipeline of that name in %s/pipelines)\n", argv[0],
            lua_root());
    return 2;
  }
  const char *prof = getenv("TAMING_PROFILE");
  bool profile = prof && *prof && strcmp(prof, "0") != 0;
  if (profile) tt_profile_set_enabled(true);
  lua_State *L = luaL_newstate();
  if (!L) {
    die_line(NULL, "cannot create a Lua state (out of memory)");
    return 1;
  }
  luaL_openlibs(L);
  /* package.path: the shipped Lua library first */
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;", lua_root(), lua_root());
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_taming_core);
  lua_setfield(L, -2, "taming.core");
  lua_pop(L, 2);
  lua_pushstring(L, lua_root());
  lua_setglobal(L, "TAMING_ROOT");

  lua_pushcfunction(L, traceback_handler);
  int handler = lua_gettop(L);
  if (luaL_loadfile(L, script) != LUA_OK) {
    die_line(NULL, lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  /* the arguments: key=value pairs as fields (a key given again overrides it,
   * as in make), anything else positional: the script's argument parser refuses
   * what it does not take */
  lua_newtable(L);
  int pos = 1;
  for (int i = 1; i < argc; i++) {
    const char *eq = strchr(argv[i], '=');
    if (eq && eq != argv[i]) {
      lua_pushlstring(L, argv[i], (size_t)(eq - argv[i]));
      lua_pushstring(L, eq + 1);
      lua_settable(L, -3);
    } else {
      lua_pushstring(L, argv[i]);
      lua_seti(L, -2, pos++);
    }
  }
  lua_pushstring(L, script);
  lua_setfield(L, -2, "_script");
  lua_pushvalue(L, -1);
  lua_setglobal(L, "arg");
  int rc = 0;
  if (lua_pcall(L, 1, 1, handler) != LUA_OK) {
    die_line(NULL, lua_tostring(L, -1));
    rc = 1;
  } else if (lua_isinteger(L, -1)) {
    rc = (int)lua_tointeger(L, -1);
  }
  if (profile) tt_profile_report(stderr, script);
  lua_close(L);
  return rc;
}

typedef struct { int n; bool verbose; } list_ctx;

/* -v: the summary, then each method with its doc string, marked when its kind requires it */
static void list_methods(const tt_plugin_desc *d) {
  if (d->summary && *d->summary) printf("    %s\n", d->summary);
  const tt_kind *k = tt_kind_find(d->kind);
  for (const tt_method *m = d->methods; m->name; m++) {
    bool required = false;
    for (const tt_kind_method *km = k ? k->methods : NULL; km && km->name; km++)
      if (!strcmp(km->name, m->name)) required = km->group == TT_KIND_REQUIRED;
    printf("    %-20s %-10s %s\n", m->name, required ? "required" : "", m->doc ? m->doc : "");
  }
}

static void list_cb(const char *path, const tt_plugin_desc *d, const char *refusal, void *ud) {
  list_ctx *c = ud;
  if (d) printf("%-14s %-22s %-8s %s\n", d->kind, d->name, d->version, path);
  else printf("%-14s %-22s %-8s %s (refused: %s)\n", "-", "-", "-", path, refusal);
  if (d && c->verbose) list_methods(d);
  c->n++;
}

static int cmd_plugins(int argc, char **argv) {
  list_ctx c = {0, false};
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) c.verbose = true;
    else {
      fprintf(stderr, "taming: plugins: unknown argument '%s' (usage: taming plugins [-v])\n", argv[i]);
      return 2;
    }
  }
  printf("%-14s %-22s %-8s %s\n", "KIND", "NAME", "VERSION", "PATH");
  tt_plugin_scan(list_cb, &c);
  if (c.n == 0) printf("(no plugins found in %s)\n", tt_plugin_search_path());
  return 0;
}

static int cmd_info(int argc, char **argv) {
  if (argc != 1) {
    die_line("info: ", "usage: taming info FILE");
    return 2;
  }
  /* info only reads: it lists the globals a Python loader would call instead of refusing */
  tt_ckpt *c = NULL;
  if (tt_ckpt_open_with(argv[0], &(tt_ckpt_options){.allow_unsafe_globals = true}, &c) != TT_OK) {
    die_line(NULL, tt_error_message());
    return 1;
  }
  int nu = tt_ckpt_unsafe_count(c);
  for (int i = 0; i < nu && tt_ckpt_unsafe_global(c, i); i++)
    fprintf(stderr,
            "taming: warning: %s: the pickle references %s, which torch.load without weights_only=True would call "
            "(nothing was called here; do not load this file with torch.load)\n",
            argv[0], tt_ckpt_unsafe_global(c, i));
  if (nu > 0 && !tt_ckpt_unsafe_global(c, nu - 1))
    fprintf(stderr, "taming: warning: %s: and more such globals (%d in all)\n", argv[0], nu);
  tt_status s = tt_ckpt_print_info(c, stdout);
  tt_ckpt_close(c);
  if (s != TT_OK) {
    die_line(NULL, tt_error_message());
    return 1;
  }
  return 0;
}

static int cmd_convert(int argc, char **argv) {
  bool inference = false;
  tt_ckpt_options opts = {0};
  const char *in = NULL, *out = NULL, *quantize = NULL;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--inference")) inference = true;
    else if (!strcmp(argv[i], "--allow-unsafe-globals")) opts.allow_unsafe_globals = true;
    else if (!strcmp(argv[i], "--quantize")) {
      if (++i == argc) {
        die_line("convert: ", "--quantize needs a scheme (int8)");
        return 2;
      }
      quantize = argv[i];
    }
    else if (!in) in = argv[i];
    else if (!out) out = argv[i];
    else {
      die_line("convert: ", "too many arguments (usage: taming convert IN OUT.safetensors [--inference] "
                            "[--quantize int8] [--allow-unsafe-globals])");
      return 2;
    }
  }
  if (!in || !out) {
    die_line("convert: ", "usage: taming convert IN OUT.safetensors [--inference] [--quantize int8] "
                          "[--allow-unsafe-globals]");
    return 2;
  }
  if (quantize && opts.allow_unsafe_globals) {
    die_line("convert: ", "--quantize reads only checkpoints without unsafe globals; convert first, then quantize");
    return 2;
  }
  if ((quantize ? tt_ckpt_quantize(in, out, quantize, inference) : tt_ckpt_convert_with(in, out, inference, &opts)) !=
      TT_OK) {
    die_line(NULL, tt_error_message());
    return 1;
  }
  return 0;
}

/* How long OpenMP threads wait for the next parallel region before they sleep.
 * Sleeping at once (OMP_WAIT_POLICY=passive) costs a futex wake-up per region:
 * batch-1 decoding runs ~150 short regions a token, and the 305M GPT's bf16
 * decode ran at 27 tokens/s that way against 42 with a short spin (fp32 16.5 ->
 * 22, int8 36 -> 65; bench/gpt.lua, 2 threads). Spinning without end starves
 * everything else on shared cores, so the spin is bounded: GOMP_SPINCOUNT=10000
 * (well under a millisecond), then sleep. libgomp reads these only when it
 * loads, so the command re-executes itself once with the setting unless the
 * user chose OMP_WAIT_POLICY or GOMP_SPINCOUNT. */
static void bounded_openmp_spin(char **argv) {
  if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
  setenv("GOMP_SPINCOUNT", "10000", 1);
  execv("/proc/self/exe", argv);   /* on failure, carry on with libgomp's default */
}

int main(int argc, char **argv) {
  bounded_openmp_spin(argv);
  if (argc < 2) {
    fputs(usage, stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    fputs(usage, stdout);
    return 0;
  }
  if (!strcmp(cmd, "--version")) {
    printf("taming %s (plugin ABI %d.%d)\n", TT_VERSION_STRING, TT_PLUGIN_ABI_MAJOR, TT_PLUGIN_ABI_MINOR);
    return 0;
  }
  if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2);
  if (!strcmp(cmd, "plugins")) return cmd_plugins(argc - 2, argv + 2);
  if (!strcmp(cmd, "info")) return cmd_info(argc - 2, argv + 2);
  if (!strcmp(cmd, "convert")) return cmd_convert(argc - 2, argv + 2);
  fprintf(stderr, "taming: unknown command '%s' (see taming --help)\n", cmd);
  return 2;
}

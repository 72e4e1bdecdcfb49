/* check_plugin.c — the plugin loader: search path, a good plugin and its calls,
 * and the refusals (wrong ABI major, larger descriptor, missing callback, a
 * non-plugin .so, a name that disagrees with the file, a plugin that breaks
 * its kind's contract); plugins without params (ABI 1.2); the one search rule
 * that plugins, the CUDA backend and the MPI module share. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <lauxlib.h>
#include <lualib.h>
#include <lua.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testhelp.h"

int luaopen_taming_core(lua_State *L);

static void use_test_plugins(void) {
  static char path[4096];
  snprintf(path, sizeof path, "%s/tests/plugins/.libs", TT_ABS_BUILDDIR);
  setenv("TAMING_PLUGIN_PATH", path, 1);
}

static void expect_refusal(const char *file, const char *needle) {
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/plugins/.libs/%s", TT_ABS_BUILDDIR, file);
  tt_plugin *p = NULL;
  tt_status s = tt_plugin_open_file(path, &p);
  ck_assert_msg(s == TT_ERR_PLUGIN, "%s: expected a refusal, got status %d (%s)", file, s, tt_error_message());
  ck_assert_msg(strstr(tt_error_message(), path) != NULL, "message does not name the file: %s", tt_error_message());
  ck_assert_msg(strstr(tt_error_message(), needle) != NULL, "message lacks '%s': %s", needle, tt_error_message());
}

START_TEST(test_good_plugin) {
  use_test_plugins();
  tt_plugin *p;
  TH_OK(tt_plugin_find("test", "good", &p));
  const tt_plugin_desc *d = tt_plugin_descriptor_of(p);
  ck_assert_str_eq(d->kind, "test");
  ck_assert_str_eq(d->name, "good");
  ck_assert_ptr_null(d->set_training);   /* optional slot absent */
  tt_value cfg = tt_value_map(), v = tt_value_num(3.0);
  TH_OK(tt_value_set(&cfg, "scale", &v));
  tt_instance *inst;
  TH_OK(tt_instance_create(p, &cfg, &inst));
  tt_value_clear(&cfg);
  tt_paramset *ps = tt_instance_params(inst);
  ck_assert_int_eq(ps->n, 1);
  ck_assert_str_eq(ps->items[0]->name, "lin.weight");
  TH_OK(tt_paramset_materialize(ps, 0, TT_CPU));
  ck_assert(tt_tensor_get(ps->items[0]->t, 5) == 0.5);
  float data[2] = {1, 2};
  tt_value arg = tt_value_tensor_steal(tt_tensor_from_data(TT_F32, TT_DIMS(2), data, TT_CPU));
  tt_value rets[TT_MAX_RETS];
  int n;
  TH_OK(tt_instance_call(inst, "scale", &arg, 1, rets, &n));
  ck_assert_int_eq(n, 1);
  ck_assert(tt_tensor_get(rets[0].u.t, 1) == 6.0);
  tt_value_clear(&rets[0]);
  TH_OK(tt_instance_call(inst, "pair", &arg, 1, rets, &n));
  ck_assert_int_eq(n, 2);
  ck_assert_str_eq(rets[1].u.s, "pair");
  for (int i = 0; i < n; i++) tt_value_clear(&rets[i]);
  ck_assert_int_ne(tt_instance_call(inst, "fail", &arg, 1, rets, &n), TT_OK);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "test/good:fail: asked to fail"));
  ck_assert_int_eq(tt_instance_call(inst, "nope", &arg, 1, rets, &n), TT_ERR_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "it has: scale, pair, fail"));
  ck_assert_int_ne(tt_instance_call(inst, "scale", NULL, 0, rets, &n), TT_OK);
  tt_value_clear(&arg);
  tt_instance_free(inst);
}
END_TEST

/* A minor version only appends: a 1.0 descriptor, without the struct sizes, loads. */
START_TEST(test_older_minor_loads) {
  use_test_plugins();
  tt_plugin *p;
  TH_OK(tt_plugin_find("test", "abi10", &p));
  ck_assert_uint_eq(tt_plugin_descriptor_of(p)->abi_minor, 0);
  ck_assert_uint_eq(tt_plugin_descriptor_of(p)->struct_sizes, 0);
  /* and the descriptors this SDK makes carry this host's sizes */
  TH_OK(tt_plugin_find("test", "good", &p));
  ck_assert(tt_plugin_descriptor_of(p)->struct_sizes == TT_PLUGIN_STRUCT_SIZES);
}
END_TEST

START_TEST(test_refusals) {
  use_test_plugins();
  expect_refusal("test_badabi.so", "plugin ABI 99.0, this host speaks 1.");
  expect_refusal("test_bigdesc.so", "larger than this host's");
  expect_refusal("test_nocreate.so", "lacks the required 'create'");
  expect_refusal("test_notplugin.so", "not a taming plugin");
  /* the ABI numbers match but a public struct had another size */
  expect_refusal("test_badsizes.so", "was built with public struct sizes");
  expect_refusal("test_badsizes.so", "rebuild the plugin against this SDK");
  tt_plugin *p;
  ck_assert_int_eq(tt_plugin_find("test", "mismatch", &p), TT_ERR_PLUGIN);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "descriptor says test/other"));
  ck_assert_int_eq(tt_plugin_find("test", "absent", &p), TT_ERR_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "test_absent.so"));
  ck_assert_int_eq(tt_plugin_find("../etc", "x", &p), TT_ERR_INVALID);
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/check_plugin.c", TT_ABS_SRCDIR);
  ck_assert_int_eq(tt_plugin_open_file(path, &p), TT_ERR_PLUGIN);   /* not an ELF file */
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "cannot load"));
}
END_TEST

/* ABI 1.2: a plugin of a known kind must provide that kind's required methods,
 * methods that go together come together, and every listed method has a function. */
START_TEST(test_kind_contract_refusals) {
  use_test_plugins();
  expect_refusal("sampler_nosample.so", "sampler/nosample");
  expect_refusal("sampler_nosample.so", "lacks the method 'sample' every sampler provides");
  expect_refusal("sampler_halfstate.so", "provides 'state' but lacks 'set_state'");
  expect_refusal("test_nullfn.so", "lists method 'forward' without a function");
  /* tt_plugin_find (and so tt.plugin) refuses the same way */
  tt_plugin *p;
  ck_assert_int_eq(tt_plugin_find("sampler", "nosample", &p), TT_ERR_PLUGIN);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "sampler_nosample.so"));
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "'sample'"));
  /* a kind without a contract is loaded without method checks */
  ck_assert_ptr_null(tt_kind_find("test"));
  TH_OK(tt_plugin_find("test", "good", &p));
  /* every kind the tree ships has a contract, each with a required method */
  const char *shipped[] = {"sampler", "cond", "permuter", "quantizer", "encoder", "decoder", "transformer",
                           "discriminator", "loss", "layer", "feature"};
  for (size_t i = 0; i < sizeof shipped / sizeof *shipped; i++) {
    const tt_kind *k = tt_kind_find(shipped[i]);
    ck_assert_msg(k != NULL, "no contract for kind %s", shipped[i]);
    ck_assert_int_eq(k->methods[0].group, TT_KIND_REQUIRED);
  }
  int n = 0;
  while (tt_kind_at(n)) n++;
  ck_assert_int_eq(n, (int)(sizeof shipped / sizeof *shipped));
}
END_TEST

/* ABI 1.2: params is optional; the host reports an empty set, never NULL, and
 * Lua sees no parameters. */
START_TEST(test_plugin_without_params) {
  use_test_plugins();
  tt_plugin *p;
  TH_OK(tt_plugin_find("test", "noparams", &p));
  ck_assert_ptr_null(tt_plugin_descriptor_of(p)->params);
  tt_instance *inst;
  TH_OK(tt_instance_create(p, NULL, &inst));
  tt_paramset *ps = tt_instance_params(inst);
  ck_assert_ptr_nonnull(ps);
  ck_assert_int_eq(ps->n, 0);
  ck_assert_ptr_null(tt_paramset_find(ps, "weight"));
  TH_OK(tt_paramset_materialize(ps, 0, TT_CPU));
  tt_instance_free(inst);
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  luaL_requiref(L, "taming.core", luaopen_taming_core, 0);
  lua_setglobal(L, "tt");
  const char *script =
      "local p = tt.plugin('test', 'noparams', {offset = 2})\n"
      "assert(#p:param_names() == 0)\n"
      "assert(p:add(tt.tensor({1, 2})):totable()[2] == 4)\n"
      "local ok, err = pcall(p.param, p, 'weight')\n"
      "assert(not ok and err:find(\"no parameter 'weight'\"), err)\n";
  ck_assert_msg(luaL_dostring(L, script) == LUA_OK, "%s", lua_tostring(L, -1));
  lua_close(L);
}
END_TEST

/* Misspelled config keys are errors that list the known ones. */
START_TEST(test_unknown_config_keys) {
  use_test_plugins();
  tt_plugin *p;
  tt_instance *inst = NULL;
  TH_OK(tt_plugin_find("test", "noparams", &p));
  tt_value cfg = tt_value_map(), v = tt_value_num(1.0);
  TH_OK(tt_value_set(&cfg, "ofset", &v));
  ck_assert_int_eq(tt_instance_create(p, &cfg, &inst), TT_ERR_INVALID);
  ck_assert_ptr_null(inst);
  ck_assert_str_eq(tt_error_message(), "test/noparams: unknown config key 'ofset' (known: offset)");
  tt_value_clear(&cfg);
  tt_value list = tt_value_list();
  ck_assert_int_eq(tt_instance_create(p, &list, &inst), TT_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "must be a map"));
  /* the shipped categorical sampler: {topk = 5} names topk and lists top_k */
  TH_OK(tt_plugin_find("sampler", "categorical", &p));
  cfg = tt_value_map();
  v = tt_value_int(5);
  TH_OK(tt_value_set(&cfg, "topk", &v));
  ck_assert_int_eq(tt_instance_create(p, &cfg, &inst), TT_ERR_INVALID);
  ck_assert_str_eq(tt_error_message(),
                   "sampler/categorical: unknown config key 'topk' (known: temperature, top_k, top_p, seed)");
  tt_value_clear(&cfg);
  /* greedy takes no settings at all */
  TH_OK(tt_plugin_find("sampler", "greedy", &p));
  cfg = tt_value_map();
  v = tt_value_int(5);
  TH_OK(tt_value_set(&cfg, "seed", &v));
  ck_assert_int_eq(tt_instance_create(p, &cfg, &inst), TT_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "unknown config key 'seed' (known: none)"));
  tt_value_clear(&cfg);
}
END_TEST

typedef struct { int good, refused, mismatch; } scan_count;
static void count_cb(const char *path, const tt_plugin_desc *d, const char *refusal, void *ud) {
  scan_count *c = ud;
  if (d) c->good++;
  else c->refused++;
  if (strstr(path, "test_mismatch.so")) {
    ck_assert_ptr_null(d);
    ck_assert_ptr_nonnull(strstr(refusal, "the descriptor says test/other"));
    c->mismatch++;
  }
}

START_TEST(test_scan) {
  use_test_plugins();
  scan_count c = {0, 0, 0};
  tt_plugin_scan(count_cb, &c);
  ck_assert_int_ge(c.good, 2);      /* good, noparams */
  /* badabi, bigdesc, nocreate, notplugin, badsizes, mismatch (the name check of
   * tt_plugin_find), nosample, halfstate, nullfn (the kind contracts) */
  ck_assert_int_ge(c.refused, 9);
  ck_assert_int_eq(c.mismatch, 1);
  ck_assert_ptr_nonnull(strstr(tt_plugin_search_path(), "tests/plugins/.libs"));
}
END_TEST

/* ---- the search rule shared by plugins, the CUDA backend and the MPI module ---- */

static void link_test_so(const char *so, const char *dir, const char *as) {
  char target[4096], link[8192];
  snprintf(target, sizeof target, "%s/tests/plugins/.libs/%s", TT_ABS_BUILDDIR, so);
  snprintf(link, sizeof link, "%s/%s", dir, as);
  ck_assert_msg(symlink(target, link) == 0, "symlink %s -> %s", link, target);
}

/* An installed copy moved elsewhere: with TAMING_HOME set and the program
 * taken as installed, all three kinds of file are looked for under it, and
 * only there. (Each check test runs in its own process, so the environment
 * and the cached uninstalled flag do not leak into other tests.) */
START_TEST(test_taming_home_for_every_kind) {
  char home[] = "/tmp/taming-home-XXXXXX", lib[4096], plugins[4096], cmd[4200];
  ck_assert_ptr_nonnull(mkdtemp(home));
  snprintf(lib, sizeof lib, "%s/lib/taming", home);
  snprintf(plugins, sizeof plugins, "%s/lib/taming/plugins", home);
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", plugins);
  ck_assert_int_eq(system(cmd), 0);
  setenv("TAMING_HOME", home, 1);
  setenv("TAMING_UNINSTALLED", "0", 1);
  unsetenv("TAMING_PLUGIN_PATH");
  unsetenv("TAMING_CUDA_BACKEND");
  unsetenv("TAMING_MPI_MODULE");
  /* plugins */
  ck_assert_str_eq(tt_plugin_search_path(), plugins);
  tt_plugin *p;
  ck_assert_int_eq(tt_plugin_find("test", "good", &p), TT_ERR_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), plugins));
  link_test_so("test_good.so", plugins, "test_good.so");
  TH_OK(tt_plugin_find("test", "good", &p));
  ck_assert_msg(strncmp(tt_plugin_path(p), plugins, strlen(plugins)) == 0, "loaded %s", tt_plugin_path(p));
  /* the CUDA backend: a file that is not the module, found under TAMING_HOME */
  link_test_so("test_notplugin.so", lib, "libtaming_cuda.so");
  ck_assert(!tt_device_available(TT_CUDA));
  ck_assert_ptr_null(tt_backend_get(TT_CUDA));
  ck_assert_msg(strstr(tt_error_message(), lib) && strstr(tt_error_message(), "not the CUDA backend module"),
                "%s", tt_error_message());
  /* the MPI module, the same way */
  link_test_so("test_notplugin.so", lib, "libtaming_mpi.so");
  setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  ck_assert_int_ne(tt_dist_init(), TT_OK);
  ck_assert_msg(strstr(tt_error_message(), lib) && strstr(tt_error_message(), "not the MPI module"), "%s",
                tt_error_message());
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", home);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Order: TAMING_PLUGIN_PATH's folders, then the build tree when uninstalled,
 * then the install folder; a variable naming the module file is tried alone. */
START_TEST(test_search_order_and_file_overrides) {
  setenv("TAMING_UNINSTALLED", "1", 1);
  setenv("TAMING_HOME", "/opt/elsewhere", 1);
  setenv("TAMING_PLUGIN_PATH", "/first:/second", 1);
  char want[8192];
  snprintf(want, sizeof want, "/first:/second:%s/plugins/.libs:/opt/elsewhere/lib/taming/plugins", TT_ABS_BUILDDIR);
  ck_assert_str_eq(tt_plugin_search_path(), want);
  setenv("TAMING_CUDA_BACKEND", "/nonexistent/libtaming_cuda.so", 1);
  ck_assert_ptr_null(tt_backend_get(TT_CUDA));
  ck_assert_msg(strstr(tt_error_message(), "TAMING_CUDA_BACKEND=/nonexistent/libtaming_cuda.so: no such file"), "%s",
                tt_error_message());
  setenv("TAMING_MPI_MODULE", "/nonexistent/libtaming_mpi.so", 1);
  setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  ck_assert_int_ne(tt_dist_init(), TT_OK);
  ck_assert_msg(strstr(tt_error_message(), "TAMING_MPI_MODULE=/nonexistent/libtaming_mpi.so"), "%s",
                tt_error_message());
}
END_TEST

/* The CUDA backend module is versioned like a plugin: another ABI major or
 * another tt_backend layout is refused, naming the file and both versions,
 * before anything in it runs (the stand-ins abort if their init is called). */
static void expect_cuda_refusal(const char *file, const char *needle) {
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/plugins/.libs/%s", TT_ABS_BUILDDIR, file);
  setenv("TAMING_CUDA_BACKEND", path, 1);
  ck_assert(!tt_device_available(TT_CUDA));
  ck_assert_ptr_null(tt_backend_get(TT_CUDA));
  ck_assert_msg(strstr(tt_error_message(), path) != NULL, "message does not name the file: %s", tt_error_message());
  ck_assert_msg(strstr(tt_error_message(), needle) != NULL, "message lacks '%s': %s", needle, tt_error_message());
}

START_TEST(test_cuda_module_wrong_abi) {
  char want[128];
  snprintf(want, sizeof want, "CUDA backend module ABI %d.0, this host speaks %d.%d (rebuild the CUDA backend module",
           TT_PLUGIN_ABI_MAJOR + 98, TT_PLUGIN_ABI_MAJOR, TT_PLUGIN_ABI_MINOR);
  expect_cuda_refusal("test_badcuda_abi.so", want);
}
END_TEST

START_TEST(test_cuda_module_wrong_layout) {
  expect_cuda_refusal("test_badcuda_layout.so", "rebuild the module with this libtaming");
}
END_TEST

/* ---- tt.plugin() under memory pressure: an instance is never leaked ---- */

typedef struct { long budget; } lua_budget; /* allocations left; < 0: unlimited */

static void *budget_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lua_budget *b = ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (b->budget == 0) return NULL;
  if (b->budget > 0) b->budget--;
  return realloc(ptr, nsize);
}

static int call_plugin(lua_State *L) {
  lua_getglobal(L, "tt");
  lua_getfield(L, -1, "plugin");
  lua_pushstring(L, "test");
  lua_pushstring(L, "good");
  lua_createtable(L, 0, 1);
  lua_pushnumber(L, 2.0);
  lua_setfield(L, -2, "scale");
  lua_call(L, 3, 1);
  return 1;
}

/* Fails the k-th Lua allocation inside tt.plugin() for every k until the
 * call succeeds; after lua_close no instance of test/good may be left. */
START_TEST(test_lua_plugin_never_leaks_an_instance) {
  use_test_plugins();
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/plugins/.libs/test_good.so", TT_ABS_BUILDDIR);
  tt_plugin *pl;
  TH_OK(tt_plugin_find("test", "good", &pl)); /* loaded once, before the counting starts */
  void *h = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
  ck_assert_ptr_nonnull(h);
  int *live = dlsym(h, "test_good_live");
  ck_assert_ptr_nonnull(live);
  int failed_calls = 0, leaks = 0;
  for (long k = 0; k < 10000; k++) {
    lua_budget b = {-1};
    lua_State *L = lua_newstate(budget_alloc, &b);
    ck_assert_ptr_nonnull(L);
    luaL_requiref(L, "taming.core", luaopen_taming_core, 0);
    lua_setglobal(L, "tt");
    int before = *live;
    b.budget = k;
    lua_pushcfunction(L, call_plugin);
    int rc = lua_pcall(L, 0, 1, 0);
    b.budget = -1;
    lua_close(L);
    if (*live != before) {
      printf("allocation %ld failed: %d instance(s) leaked\n", k, *live - before);
      leaks++;
    }
    if (rc == LUA_OK) break;
    failed_calls++;
  }
  printf("tt.plugin: %d injected allocation failures, %d leaks\n", failed_calls, leaks);
  ck_assert_int_gt(failed_calls, 0);
  ck_assert_int_eq(leaks, 0);
  dlclose(h);
}
END_TEST

int main(void) {
  Suite *s = suite_create("plugin");
  TCase *tc = tcase_create("loader");
  tcase_add_test(tc, test_good_plugin);
  tcase_add_test(tc, test_refusals);
  tcase_add_test(tc, test_older_minor_loads);
  tcase_add_test(tc, test_lua_plugin_never_leaks_an_instance);
  tcase_add_test(tc, test_cuda_module_wrong_abi);
  tcase_add_test(tc, test_cuda_module_wrong_layout);
  tcase_add_test(tc, test_scan);
  tcase_add_test(tc, test_kind_contract_refusals);
  tcase_add_test(tc, test_plugin_without_params);
  tcase_add_test(tc, test_unknown_config_keys);
  tcase_add_test(tc, test_taming_home_for_every_kind);
  tcase_add_test(tc, test_search_order_and_file_overrides);
  suite_add_tcase(s, tc);
  return th_run(s);
}

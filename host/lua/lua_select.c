/* lua_select.c — the tensor ops a vectorised sampler is written with:
 * comparisons (x:lt(y) ... x:ne(y), y a tensor or a number), tt.where,
 * x:masked_fill, x:sort, x:topk, x:cumsum and tt.multinomial / x:multinomial
 * (seeded from a tt.rng, so a seed reproduces a draw). */
#include "config.h"
#include <math.h>
#include "lua_internal.h"

/* A tensor from a tensor or a number (a 0-dim tensor of like's dtype and device); new reference.
 * operand(L, 3, ...) after operand(L, 2, ...) must not raise: the caller checks the numbers first. */
static tt_tensor *operand(lua_State *L, int idx, const tt_tensor *like) {
  if (lua_isnumber(L, idx)) {
    tt_tensor *s = tt_full(like->dtype, 0, NULL, lua_tonumber(L, idx), like->device);
    if (!s) tt_lua_fail(L);
    return s;
  }
  return tt_tensor_ref(tt_lua_check_tensor(L, idx));
}

static int compare(lua_State *L, tt_compare_op op) {
  tt_tensor *a = tt_lua_check_tensor(L, 1);
  if (lua_isnumber(L, 2)) {
    tt_lua_push_tensor(L, tt_compare_scalar(op, a, lua_tonumber(L, 2)));
    return 1;
  }
  tt_lua_push_tensor(L, tt_compare(op, a, tt_lua_check_tensor(L, 2)));
  return 1;
}

static int t_lt(lua_State *L) { return compare(L, TT_CMP_LT); }
static int t_le(lua_State *L) { return compare(L, TT_CMP_LE); }
static int t_gt(lua_State *L) { return compare(L, TT_CMP_GT); }
static int t_ge(lua_State *L) { return compare(L, TT_CMP_GE); }
static int t_eq(lua_State *L) { return compare(L, TT_CMP_EQ); }
static int t_ne(lua_State *L) { return compare(L, TT_CMP_NE); }

/* tt.where(cond, a, b): a and b tensors or numbers (at least one a tensor) */
static int l_where(lua_State *L) {
  tt_tensor *cond = tt_lua_check_tensor(L, 1);
  const tt_tensor *like = NULL;
  if (!lua_isnumber(L, 2)) like = tt_lua_check_tensor(L, 2);
  if (!lua_isnumber(L, 3)) {
    const tt_tensor *b = tt_lua_check_tensor(L, 3);
    if (!like) like = b;
  }
  if (!like) return luaL_error(L, "where: a or b must be a tensor (both are numbers)");
  /* both numbers are checked before any tensor is made, so an error leaks nothing */
  for (int i = 2; i <= 3; i++)
    if (lua_isnumber(L, i) && like->dtype != TT_F32 && lua_tonumber(L, i) != floor(lua_tonumber(L, i)))
      return luaL_error(L, "where: the number %f is not a value of the tensors' dtype %s", lua_tonumber(L, i),
                        tt_dtype_name(like->dtype));
  tt_tensor *a = operand(L, 2, like);
  tt_tensor *b = operand(L, 3, like);
  tt_tensor *r = tt_where(cond, a, b);
  tt_tensor_unref(a);
  tt_tensor_unref(b);
  tt_lua_push_tensor(L, r);
  return 1;
}

/* x:masked_fill(mask, value) */
static int t_masked_fill(lua_State *L) {
  tt_tensor *x = tt_lua_check_tensor(L, 1), *m = tt_lua_check_tensor(L, 2);
  tt_lua_push_tensor(L, tt_masked_fill(x, m, luaL_checknumber(L, 3)));
  return 1;
}

static int push_pair(lua_State *L, tt_status s, tt_tensor **v, tt_tensor **i) {
  if (s != TT_OK) return tt_lua_fail(L);
  tt_lua_push_tensor(L, *v);
  tt_lua_push_tensor(L, *i);
  return 2;
}

/* x:sort([dim=-1 [, descending=false]]) -> values, indices */
static int t_sort(lua_State *L) {
  tt_tensor *x = tt_lua_check_tensor(L, 1), *v = NULL, *i = NULL;
  int dim = (int)luaL_optinteger(L, 2, -1);
  bool desc = lua_toboolean(L, 3);
  return push_pair(L, tt_sort(x, dim, desc, &v, &i), &v, &i);
}

/* x:topk(k [, dim=-1 [, largest=true]]) -> values, indices (sorted) */
static int t_topk(lua_State *L) {
  tt_tensor *x = tt_lua_check_tensor(L, 1), *v = NULL, *i = NULL;
  lua_Integer k = luaL_checkinteger(L, 2);
  int dim = (int)luaL_optinteger(L, 3, -1);
  bool largest = lua_isnoneornil(L, 4) ? true : lua_toboolean(L, 4);
  return push_pair(L, tt_topk(x, k, dim, largest, &v, &i), &v, &i);
}

/* x:cumsum([dim=-1]) */
static int t_cumsum(lua_State *L) {
  tt_tensor *x = tt_lua_check_tensor(L, 1);
  tt_lua_push_tensor(L, tt_cumsum(x, (int)luaL_optinteger(L, 2, -1)));
  return 1;
}

/* tt.multinomial(probs [V]|[B, V], n, rng_or_seed) -> i64 [n]|[B, n]; probs:multinomial(n, rng) */
static int l_multinomial(lua_State *L) {
  tt_tensor *p = tt_lua_check_tensor(L, 1);
  lua_Integer n = luaL_optinteger(L, 2, 1);
  tt_rng local, *r = &local;
  if (lua_isinteger(L, 3)) local = tt_rng_make((uint64_t)lua_tointeger(L, 3));
  else if (lua_isnoneornil(L, 3)) return luaL_error(L, "multinomial: pass a tt.rng or an integer seed");
  else r = luaL_checkudata(L, 3, TT_LUA_RNG);
  tt_lua_push_tensor(L, tt_multinomial(p, n, r));
  return 1;
}

static const luaL_Reg select_methods[] = {
    {"lt", t_lt}, {"le", t_le}, {"gt", t_gt}, {"ge", t_ge}, {"eq", t_eq}, {"ne", t_ne},
    {"masked_fill", t_masked_fill}, {"sort", t_sort}, {"topk", t_topk}, {"cumsum", t_cumsum},
    {"multinomial", l_multinomial}, {NULL, NULL}};

static const luaL_Reg select_funcs[] = {{"where", l_where}, {"multinomial", l_multinomial}, {NULL, NULL}};

/* After tt_lua_open_tensor: adds the methods to the tensor type and the functions to the module. */
void tt_lua_open_select(lua_State *L, int module) {
  luaL_getmetatable(L, TT_LUA_TENSOR);
  lua_getfield(L, -1, "__index");
  luaL_setfuncs(L, select_methods, 0);
  lua_pop(L, 2);
  lua_pushvalue(L, module);
  luaL_setfuncs(L, select_funcs, 0);
  lua_pop(L, 1);
}

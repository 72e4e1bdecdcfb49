/* lua_tensor.c — tensors in Lua: the userdata, its methods and metamethods.
 *
 * Dims and indices are 0-based, as in the official Python, so pipelines port
 * line by line (t:size(0), t:select(1, 0), t:slice(2, 0, 8)). Every C failure
 * becomes a Lua error with the library's message. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "lua_internal.h"

int tt_lua_fail(lua_State *L) {
  /* position of the Lua line that called into C (level 1 is the C function itself) */
  luaL_where(L, 2);
  lua_pushstring(L, tt_error_message());
  lua_concat(L, 2);
  return lua_error(L);
}

void tt_lua_memory_hint(lua_State *L) {
  static size_t last;
  size_t now = tt_memory_in_use(TT_CPU);
  if (now > last + ((size_t)512 << 20)) {
    lua_gc(L, LUA_GCCOLLECT, 0);
    last = tt_memory_in_use(TT_CPU);
  } else if (now < last) {
    last = now;
  }
}

void tt_lua_push_tensor(lua_State *L, tt_tensor *t) {
  if (!t) tt_lua_fail(L);
  tt_tensor **ud = lua_newuserdatauv(L, sizeof *ud, 0);
  *ud = t;
  luaL_setmetatable(L, TT_LUA_TENSOR);
  tt_lua_memory_hint(L);
}

tt_tensor *tt_lua_check_tensor(lua_State *L, int idx) {
  tt_tensor **ud = luaL_checkudata(L, idx, TT_LUA_TENSOR);
  if (!*ud) luaL_argerror(L, idx, "tensor already freed");
  return *ud;
}

tt_tensor *tt_lua_opt_tensor(lua_State *L, int idx) {
  return lua_isnoneornil(L, idx) ? NULL : tt_lua_check_tensor(L, idx);
}

tt_tensor *tt_lua_tensor_or_scalar(lua_State *L, int idx, const tt_tensor *like) {
  if (lua_isnumber(L, idx)) {
    tt_tensor *s = tt_scalar(lua_tonumber(L, idx), like ? like->device : TT_CPU);
    if (!s) tt_lua_fail(L);
    return s;
  }
  return tt_tensor_ref(tt_lua_check_tensor(L, idx));
}

int tt_lua_shape(lua_State *L, int idx, int64_t *shape) {
  int n = 0;
  if (lua_istable(L, idx)) {
    n = (int)luaL_len(L, idx);
    if (n > TT_MAX_DIMS) luaL_error(L, "a shape has at most %d dims, got %d", TT_MAX_DIMS, n);
    for (int i = 0; i < n; i++) {
      lua_geti(L, idx, i + 1);
      lua_Number v = luaL_checknumber(L, -1);
      if (v != floor(v)) luaL_error(L, "shape entry %d is not an integer (%f)", i + 1, v);
      shape[i] = (int64_t)v;
      lua_pop(L, 1);
    }
    return n;
  }
  int top = lua_gettop(L);
  for (int i = idx; i <= top && lua_type(L, i) == LUA_TNUMBER; i++) {
    if (n >= TT_MAX_DIMS) luaL_error(L, "a shape has at most %d dims", TT_MAX_DIMS);
    lua_Number v = lua_tonumber(L, i);
    if (v != floor(v)) luaL_error(L, "shape entry %d is not an integer (%f)", n + 1, v);
    shape[n++] = (int64_t)v;
  }
  return n;
}

tt_device tt_lua_check_device(lua_State *L, const char *name) {
  int d = tt_device_from_name(name);
  if (d < 0) luaL_error(L, "unknown device '%s' (use cpu or cuda)", name);
  return (tt_device)d;
}

tt_dtype tt_lua_check_dtype(lua_State *L, const char *name) {
  int d = tt_dtype_from_name(name);
  if (d < 0) {
    if (!strcmp(name, "float") || !strcmp(name, "float32")) return TT_F32;
    if (!strcmp(name, "long") || !strcmp(name, "int64")) return TT_I64;
    if (!strcmp(name, "uint8") || !strcmp(name, "byte")) return TT_U8;
    luaL_error(L, "unknown dtype '%s' (f32, i64, u8, i32, bf16, f16, f64)", name);
  }
  return (tt_dtype)d;
}

static int field_type(lua_State *L, int idx, const char *key) {
  if (idx == 0 || lua_type(L, idx) != LUA_TTABLE) return LUA_TNIL;
  return lua_getfield(L, idx, key);
}

lua_Integer tt_lua_opt_field_int(lua_State *L, int idx, const char *key, lua_Integer def) {
  idx = idx ? lua_absindex(L, idx) : 0;
  if (field_type(L, idx, key) == LUA_TNIL) {
    if (idx && lua_type(L, idx) == LUA_TTABLE) lua_pop(L, 1);
    return def;
  }
  if (!lua_isinteger(L, -1) && !(lua_isnumber(L, -1) && lua_tonumber(L, -1) == floor(lua_tonumber(L, -1))))
    luaL_error(L, "option '%s': expected an integer", key);
  lua_Integer v = (lua_Integer)lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

lua_Number tt_lua_opt_field_num(lua_State *L, int idx, const char *key, lua_Number def) {
  idx = idx ? lua_absindex(L, idx) : 0;
  if (field_type(L, idx, key) == LUA_TNIL) {
    if (idx && lua_type(L, idx) == LUA_TTABLE) lua_pop(L, 1);
    return def;
  }
  if (!lua_isnumber(L, -1)) luaL_error(L, "option '%s': expected a number", key);
  lua_Number v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

int tt_lua_opt_field_bool(lua_State *L, int idx, const char *key, int def) {
  idx = idx ? lua_absindex(L, idx) : 0;
  if (field_type(L, idx, key) == LUA_TNIL) {
    if (idx && lua_type(L, idx) == LUA_TTABLE) lua_pop(L, 1);
    return def;
  }
  int v = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return v;
}

const char *tt_lua_opt_field_str(lua_State *L, int idx, const char *key, const char *def) {
  idx = idx ? lua_absindex(L, idx) : 0;
  if (field_type(L, idx, key) == LUA_TNIL) {
    if (idx && lua_type(L, idx) == LUA_TTABLE) lua_pop(L, 1);
    return def;
  }
  if (!lua_isstring(L, -1)) luaL_error(L, "option '%s': expected a string", key);
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 1);   /* the string stays alive: the table still references it */
  return s;
}

/* ---- tt_value conversion ---- */

tt_status tt_lua_to_value(lua_State *L, int idx, tt_value *out) {
  idx = lua_absindex(L, idx);
  *out = TT_VALUE_NIL;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: case LUA_TNONE: return TT_OK;
    case LUA_TBOOLEAN: *out = tt_value_bool(lua_toboolean(L, idx)); return TT_OK;
    case LUA_TNUMBER:
      *out = lua_isinteger(L, idx) ? tt_value_int(lua_tointeger(L, idx)) : tt_value_num(lua_tonumber(L, idx));
      return TT_OK;
    case LUA_TSTRING: *out = tt_value_str(lua_tostring(L, idx)); return TT_OK;
    case LUA_TUSERDATA: {
      tt_tensor **ud = luaL_testudata(L, idx, TT_LUA_TENSOR);
      if (!ud || !*ud) return tt_error(TT_ERR_INVALID, "cannot pass a %s to C", luaL_typename(L, idx));
      *out = tt_value_tensor(*ud);
      return TT_OK;
    }
    case LUA_TTABLE: {
      lua_Integer n = luaL_len(L, idx);
      bool is_list = true;
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) is_list = false;
      }
      if (is_list && n > 0) {
        *out = tt_value_list();
        for (lua_Integer i = 1; i <= n; i++) {
          lua_geti(L, idx, i);
          tt_value item;
          tt_status s = tt_lua_to_value(L, -1, &item);
          lua_pop(L, 1);
          if (s == TT_OK) s = tt_value_push(out, &item);
          if (s != TT_OK) { tt_value_clear(out); return s; }
        }
        return TT_OK;
      }
      *out = tt_value_map();
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        char keybuf[64];
        const char *key;
        if (lua_type(L, -2) == LUA_TSTRING) key = lua_tostring(L, -2);
        else if (lua_isinteger(L, -2)) { snprintf(keybuf, sizeof keybuf, "%lld", (long long)lua_tointeger(L, -2)); key = keybuf; }
        else { lua_pop(L, 2); tt_value_clear(out); return tt_error(TT_ERR_INVALID, "table keys must be strings or integers"); }
        tt_value item;
        tt_status s = tt_lua_to_value(L, -1, &item);
        if (s == TT_OK) s = tt_value_set(out, key, &item);
        lua_pop(L, 1);
        if (s != TT_OK) { lua_pop(L, 1); tt_value_clear(out); return s; }
      }
      return TT_OK;
    }
    default: return tt_error(TT_ERR_INVALID, "cannot pass a %s to C", luaL_typename(L, idx));
  }
}

void tt_lua_push_value(lua_State *L, tt_value *v) {
  /* each nesting level holds its table and an item on the stack; a C function
   * is only promised LUA_MINSTACK slots. The readers cap nesting (JSON at 64),
   * so this never fails in practice (Lua's stack grows to a million slots). */
  luaL_checkstack(L, 3, "a value nested too deeply to convert to Lua");
  switch (v->type) {
    case TT_V_NIL: lua_pushnil(L); break;
    case TT_V_BOOL: lua_pushboolean(L, v->u.b); break;
    case TT_V_INT: lua_pushinteger(L, (lua_Integer)v->u.i); break;
    case TT_V_NUM: lua_pushnumber(L, v->u.n); break;
    case TT_V_STR: lua_pushstring(L, v->u.s); break;
    case TT_V_TENSOR: {
      tt_tensor *t = v->u.t;
      v->type = TT_V_NIL;   /* ownership moves to Lua */
      tt_lua_push_tensor(L, t);
      return;
    }
    case TT_V_LIST:
      lua_createtable(L, v->u.c.len, 0);
      for (int i = 0; i < v->u.c.len; i++) {
        tt_lua_push_value(L, &v->u.c.items[i]);
        lua_seti(L, -2, i + 1);
      }
      break;
    case TT_V_MAP:
      lua_createtable(L, 0, v->u.c.len);
      for (int i = 0; i < v->u.c.len; i++) {
        tt_lua_push_value(L, &v->u.c.items[i]);
        lua_setfield(L, -2, v->u.c.keys[i]);
      }
      break;
  }
  tt_value_clear(v);
}

/* ---- metamethods ---- */

static int t_gc(lua_State *L) {
  tt_tensor **ud = luaL_checkudata(L, 1, TT_LUA_TENSOR);
  tt_tensor_unref(*ud);
  *ud = NULL;
  return 0;
}

static int t_tostring(lua_State *L) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  char b[160];
  tt_tensor_shape_str(t, b, sizeof b);
  if (tt_tensor_numel(t) == 1)
    lua_pushfstring(L, "tensor(%s %s %s: %f)", tt_dtype_name(t->dtype), b, tt_device_name(t->device), tt_tensor_get(t, 0));
  else
    lua_pushfstring(L, "tensor(%s %s %s)", tt_dtype_name(t->dtype), b, tt_device_name(t->device));
  return 1;
}

typedef tt_tensor *(*binop_fn)(tt_tensor *, tt_tensor *);

static int binop(lua_State *L, binop_fn f) {
  tt_tensor *like = luaL_testudata(L, 1, TT_LUA_TENSOR) ? tt_lua_check_tensor(L, 1) : tt_lua_check_tensor(L, 2);
  tt_tensor *a = tt_lua_tensor_or_scalar(L, 1, like), *b = tt_lua_tensor_or_scalar(L, 2, like);
  tt_tensor *r = f(a, b);
  tt_tensor_unref(a);
  tt_tensor_unref(b);
  tt_lua_push_tensor(L, r);
  return 1;
}

static int t_add(lua_State *L) { return binop(L, tt_add); }
static int t_sub(lua_State *L) { return binop(L, tt_sub); }
static int t_mul(lua_State *L) { return binop(L, tt_mul); }
static int t_div(lua_State *L) { return binop(L, tt_div); }
static int t_maximum(lua_State *L) { return binop(L, tt_maximum); }
static int t_minimum(lua_State *L) { return binop(L, tt_minimum); }
static int t_matmul(lua_State *L) { return binop(L, tt_matmul); }

/* ---- introspection ---- */

static int t_shape(lua_State *L) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  lua_createtable(L, t->ndim, 0);
  for (int i = 0; i < t->ndim; i++) {
    lua_pushinteger(L, t->shape[i]);
    lua_seti(L, -2, i + 1);
  }
  return 1;
}

static int t_size(lua_State *L) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  if (lua_isnoneornil(L, 2)) return t_shape(L);
  int d = tt_tensor_dim(t, (int)luaL_checkinteger(L, 2));
  if (d < 0 || t->ndim == 0) return luaL_error(L, "size: dim %d out of range for %d dims", (int)lua_tointeger(L, 2), t->ndim);
  lua_pushinteger(L, t->shape[d]);
  return 1;
}

static int t_dim(lua_State *L) { lua_pushinteger(L, tt_lua_check_tensor(L, 1)->ndim); return 1; }
static int t_numel(lua_State *L) { lua_pushinteger(L, tt_tensor_numel(tt_lua_check_tensor(L, 1))); return 1; }
static int t_dtype(lua_State *L) { lua_pushstring(L, tt_dtype_name(tt_lua_check_tensor(L, 1)->dtype)); return 1; }
static int t_device(lua_State *L) { lua_pushstring(L, tt_device_name(tt_lua_check_tensor(L, 1)->device)); return 1; }
static int t_is_contiguous(lua_State *L) { lua_pushboolean(L, tt_tensor_is_contiguous(tt_lua_check_tensor(L, 1))); return 1; }

static int t_name(lua_State *L) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    tt_tensor_set_name(t, luaL_checkstring(L, 2));
    lua_settop(L, 1);
    return 1;
  }
  if (t->name) lua_pushstring(L, t->name);
  else lua_pushnil(L);
  return 1;
}

static int t_item(lua_State *L) {
  double v;
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  if (tt_tensor_item(t, &v) != TT_OK) return tt_lua_fail(L);
  if (t->dtype == TT_I64 || t->dtype == TT_I32 || t->dtype == TT_U8) lua_pushinteger(L, (lua_Integer)v);
  else lua_pushnumber(L, v);
  return 1;
}

/* t:get(i, j, ...) — one element by 0-based indices (negative count from the end). */
static int64_t flat_index(lua_State *L, tt_tensor *t, int first) {
  int n = lua_gettop(L) - first + 1;
  if (n != t->ndim) luaL_error(L, "expected %d indices, got %d", t->ndim, n);
  int64_t flat = 0;
  for (int d = 0; d < t->ndim; d++) {
    int64_t i = (int64_t)luaL_checkinteger(L, first + d);
    if (i < 0) i += t->shape[d];
    if (i < 0 || i >= t->shape[d]) luaL_error(L, "index %I out of range for dim %d of size %I", (lua_Integer)lua_tointeger(L, first + d), d, (lua_Integer)t->shape[d]);
    flat = flat * t->shape[d] + i;
  }
  return flat;
}

static int t_get(lua_State *L) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  double v = tt_tensor_get(t, flat_index(L, t, 2));
  if (t->dtype == TT_I64 || t->dtype == TT_I32 || t->dtype == TT_U8) lua_pushinteger(L, (lua_Integer)v);
  else lua_pushnumber(L, v);
  return 1;
}

/* t:set(value, i, j, ...) */
static int t_set(lua_State *L) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  double v = luaL_checknumber(L, 2);
  int64_t flat = flat_index(L, t, 3);
  int64_t off = t->offset, r = flat;
  for (int d = t->ndim - 1; d >= 0; d--) {
    off += (r % t->shape[d]) * t->stride[d];
    r /= t->shape[d];
  }
  tt_tensor *one = tt_tensor_view_of(t, 0, NULL, NULL, off);
  tt_tensor *val = one ? tt_full(t->dtype, 0, NULL, v, t->device) : NULL;
  tt_status s = val ? tt_copy_(one, val) : tt_last_status();
  tt_tensor_unref(one);
  tt_tensor_unref(val);
  if (s != TT_OK) return tt_lua_fail(L);
  lua_settop(L, 1);
  return 1;
}

static void push_nested(lua_State *L, tt_tensor *t, int d, int64_t *flat) {
  if (d == t->ndim) {
    double v = tt_tensor_get(t, (*flat)++);
    if (t->dtype == TT_I64 || t->dtype == TT_I32 || t->dtype == TT_U8) lua_pushinteger(L, (lua_Integer)v);
    else lua_pushnumber(L, v);
    return;
  }
  lua_createtable(L, (int)t->shape[d], 0);
  for (int64_t i = 0; i < t->shape[d]; i++) {
    push_nested(L, t, d + 1, flat);
    lua_seti(L, -2, i + 1);
  }
}

static int t_totable(lua_State *L) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  tt_tensor *c = tt_host_contiguous(t);
  if (!c) return tt_lua_fail(L);
  int64_t flat = 0;
  push_nested(L, c, 0, &flat);
  tt_tensor_unref(c);
  return 1;
}

/* ---- conversions and views ---- */

static int t_to(lua_State *L) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  const char *what = luaL_checkstring(L, 2);
  if (tt_device_from_name(what) >= 0) tt_lua_push_tensor(L, tt_to_device(t, (tt_device)tt_device_from_name(what)));
  else tt_lua_push_tensor(L, tt_cast(t, tt_lua_check_dtype(L, what)));
  return 1;
}

static int t_float(lua_State *L) { tt_lua_push_tensor(L, tt_cast(tt_lua_check_tensor(L, 1), TT_F32)); return 1; }
static int t_long(lua_State *L) { tt_lua_push_tensor(L, tt_cast(tt_lua_check_tensor(L, 1), TT_I64)); return 1; }
static int t_byte(lua_State *L) { tt_lua_push_tensor(L, tt_cast(tt_lua_check_tensor(L, 1), TT_U8)); return 1; }
static int t_contiguous(lua_State *L) { tt_lua_push_tensor(L, tt_contiguous(tt_lua_check_tensor(L, 1))); return 1; }
static int t_clone(lua_State *L) { tt_lua_push_tensor(L, tt_clone(tt_lua_check_tensor(L, 1))); return 1; }
static int t_detach(lua_State *L) { tt_lua_push_tensor(L, tt_detach(tt_lua_check_tensor(L, 1))); return 1; }

/* t:reshape / expand / repeat(shape...): one shape argument, one op */
static int with_shape(lua_State *L, tt_tensor *(*op)(tt_tensor *, int, const int64_t *)) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  int64_t sh[TT_MAX_DIMS];
  int n = tt_lua_shape(L, 2, sh);
  tt_lua_push_tensor(L, op(t, n, sh));
  return 1;
}
static int t_reshape(lua_State *L) { return with_shape(L, tt_reshape); }
static int t_expand(lua_State *L) { return with_shape(L, tt_expand); }
static int t_repeat(lua_State *L) { return with_shape(L, tt_repeat); }

static int t_permute(lua_State *L) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  int64_t p[TT_MAX_DIMS];
  int n = tt_lua_shape(L, 2, p);
  if (n != t->ndim) return luaL_error(L, "permute: %d dims given for a %d-dim tensor", n, t->ndim);
  int perm[TT_MAX_DIMS];
  for (int i = 0; i < n; i++) perm[i] = (int)(p[i] < 0 ? p[i] + n : p[i]);
  tt_lua_push_tensor(L, tt_permute(t, perm));
  return 1;
}

static int t_transpose(lua_State *L) {
  tt_lua_push_tensor(L, tt_transpose(tt_lua_check_tensor(L, 1), (int)luaL_checkinteger(L, 2), (int)luaL_checkinteger(L, 3)));
  return 1;
}

static int t_flatten(lua_State *L) {
  tt_lua_push_tensor(L, tt_flatten(tt_lua_check_tensor(L, 1), (int)luaL_optinteger(L, 2, 0), (int)luaL_optinteger(L, 3, -1)));
  return 1;
}

/* t:slice(dim, start, stop [, step]) — Python's t[..., start:stop:step] on dim */
static int t_slice(lua_State *L) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  int dim = (int)luaL_checkinteger(L, 2);
  int d = tt_tensor_dim(t, dim);
  int64_t n = d >= 0 && t->ndim ? t->shape[d] : 0;
  tt_lua_push_tensor(L, tt_slice(t, dim, luaL_optinteger(L, 3, 0), luaL_optinteger(L, 4, n), luaL_optinteger(L, 5, 1)));
  return 1;
}

static int t_narrow(lua_State *L) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  lua_Integer s = luaL_checkinteger(L, 3), len = luaL_checkinteger(L, 4);
  tt_lua_push_tensor(L, tt_slice(t, (int)luaL_checkinteger(L, 2), s, s + len, 1));
  return 1;
}

static int t_select(lua_State *L) {
  tt_lua_push_tensor(L, tt_select(tt_lua_check_tensor(L, 1), (int)luaL_checkinteger(L, 2), luaL_checkinteger(L, 3)));
  return 1;
}

static int t_unsqueeze(lua_State *L) {
  tt_lua_push_tensor(L, tt_unsqueeze(tt_lua_check_tensor(L, 1), (int)luaL_checkinteger(L, 2)));
  return 1;
}

static int t_squeeze(lua_State *L) {
  tt_lua_push_tensor(L, tt_squeeze(tt_lua_check_tensor(L, 1), (int)luaL_checkinteger(L, 2)));
  return 1;
}

/* ---- math ---- */

#define UNARY(NAME, EXPR)                                   \
  static int t_##NAME(lua_State *L) {                       \
    tt_tensor *x = tt_lua_check_tensor(L, 1);               \
    tt_lua_push_tensor(L, EXPR);                            \
    return 1;                                               \
  }
UNARY(neg, tt_neg(x))
UNARY(abs, tt_abs(x))
UNARY(exp, tt_exp(x))
UNARY(log, tt_log(x))
UNARY(sqrt, tt_sqrt(x))
UNARY(square, tt_square(x))
UNARY(relu, tt_relu(x))
UNARY(silu, tt_silu(x))
UNARY(gelu, tt_gelu(x))
UNARY(sigmoid, tt_sigmoid(x))
UNARY(tanh, tt_tanh(x))
UNARY(softplus, tt_softplus(x))
UNARY(reciprocal, tt_reciprocal(x))
UNARY(leaky_relu, tt_leaky_relu(x, (float)luaL_optnumber(L, 2, 0.01)))
UNARY(clamp, tt_clamp(x, (float)luaL_optnumber(L, 2, -INFINITY), (float)luaL_optnumber(L, 3, INFINITY)))
UNARY(pow, tt_pow_scalar(x, luaL_checknumber(L, 2)))
UNARY(softmax, tt_softmax(x, (int)luaL_optinteger(L, 2, -1)))
UNARY(log_softmax, tt_log_softmax(x, (int)luaL_optinteger(L, 2, -1)))
#undef UNARY

static int reduce(lua_State *L, bool mean) {
  tt_tensor *x = tt_lua_check_tensor(L, 1);
  if (lua_isnoneornil(L, 2)) {
    tt_lua_push_tensor(L, mean ? tt_mean(x) : tt_sum(x));
    return 1;
  }
  int dims[TT_MAX_DIMS], n = 0;
  if (lua_istable(L, 2)) {
    n = (int)luaL_len(L, 2);
    if (n > TT_MAX_DIMS) return luaL_error(L, "too many dims");
    for (int i = 0; i < n; i++) {
      lua_geti(L, 2, i + 1);
      dims[i] = (int)luaL_checkinteger(L, -1);
      lua_pop(L, 1);
    }
  } else {
    dims[n++] = (int)luaL_checkinteger(L, 2);
  }
  bool keep = lua_toboolean(L, 3);
  tt_lua_push_tensor(L, mean ? tt_mean_dims(x, n, dims, keep) : tt_sum_dims(x, n, dims, keep));
  return 1;
}

static int t_sum(lua_State *L) { return reduce(L, false); }
static int t_mean(lua_State *L) { return reduce(L, true); }

static int t_max(lua_State *L) {
  tt_tensor *x = tt_lua_check_tensor(L, 1);
  if (lua_isnoneornil(L, 2)) {
    tt_tensor *f = tt_flatten(x, 0, -1);
    tt_tensor *m = f ? tt_max_dim(f, 0, false) : NULL;
    tt_tensor_unref(f);
    tt_lua_push_tensor(L, m);
    return 1;
  }
  tt_lua_push_tensor(L, tt_max_dim(x, (int)luaL_checkinteger(L, 2), lua_toboolean(L, 3)));
  return 1;
}

static int t_argmax(lua_State *L) {
  tt_lua_push_tensor(L, tt_argmax(tt_lua_check_tensor(L, 1), (int)luaL_optinteger(L, 2, -1), lua_toboolean(L, 3)));
  return 1;
}

static int t_argmin(lua_State *L) {
  tt_lua_push_tensor(L, tt_argmin(tt_lua_check_tensor(L, 1), (int)luaL_optinteger(L, 2, -1), lua_toboolean(L, 3)));
  return 1;
}

/* ---- in place ---- */

static int t_fill_(lua_State *L) {
  if (tt_fill_(tt_lua_check_tensor(L, 1), luaL_checknumber(L, 2)) != TT_OK) return tt_lua_fail(L);
  lua_settop(L, 1);
  return 1;
}

static int t_copy_(lua_State *L) {
  if (tt_copy_(tt_lua_check_tensor(L, 1), tt_lua_check_tensor(L, 2)) != TT_OK) return tt_lua_fail(L);
  lua_settop(L, 1);
  return 1;
}

/* t:add_(x [, alpha]) : t += alpha * x (no autograd) */
static int t_add_(lua_State *L) {
  if (tt_axpy_(tt_lua_check_tensor(L, 1), (float)luaL_optnumber(L, 3, 1.0), tt_lua_check_tensor(L, 2)) != TT_OK)
    return tt_lua_fail(L);
  lua_settop(L, 1);
  return 1;
}

/* ---- autograd ---- */

static int t_requires_grad(lua_State *L) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  if (lua_isnone(L, 2)) {
    lua_pushboolean(L, tt_requires_grad(t));
    return 1;
  }
  if (t->grad_fn) return luaL_error(L, "requires_grad can only be set on a leaf tensor");
  tt_tensor_set_requires_grad(t, lua_toboolean(L, 2));
  lua_settop(L, 1);
  return 1;
}

static int t_grad(lua_State *L) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  if (t->grad) tt_lua_push_tensor(L, tt_tensor_ref(t->grad));
  else lua_pushnil(L);
  return 1;
}

static int t_set_grad(lua_State *L) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  tt_tensor *g = tt_lua_opt_tensor(L, 2);
  if (g && !tt_tensor_same_shape(g, t)) return luaL_error(L, "set_grad: gradient shape differs from the tensor's");
  tt_tensor_unref(t->grad);
  t->grad = g ? tt_tensor_ref(g) : NULL;
  return 0;
}

static int t_zero_grad(lua_State *L) {
  tt_zero_grad(tt_lua_check_tensor(L, 1));
  return 0;
}

static int t_backward(lua_State *L) {
  tt_tensor *t = tt_lua_check_tensor(L, 1);
  tt_tensor *g = tt_lua_opt_tensor(L, 2);
  if (tt_backward(t, g, lua_toboolean(L, 3)) != TT_OK) return tt_lua_fail(L);
  return 0;
}

static const luaL_Reg tensor_methods[] = {
    {"shape", t_shape}, {"size", t_size}, {"dim", t_dim}, {"numel", t_numel}, {"dtype", t_dtype},
    {"device", t_device}, {"is_contiguous", t_is_contiguous}, {"name", t_name}, {"item", t_item},
    {"get", t_get}, {"set", t_set}, {"totable", t_totable}, {"to", t_to}, {"float", t_float},
    {"long", t_long}, {"byte", t_byte}, {"contiguous", t_contiguous}, {"clone", t_clone},
    {"detach", t_detach}, {"reshape", t_reshape}, {"view", t_reshape}, {"expand", t_expand},
    {"repeat_", t_repeat}, {"permute", t_permute}, {"transpose", t_transpose}, {"flatten", t_flatten},
    {"slice", t_slice}, {"narrow", t_narrow}, {"select", t_select}, {"unsqueeze", t_unsqueeze},
    {"squeeze", t_squeeze}, {"add", t_add}, {"sub", t_sub}, {"mul", t_mul}, {"div", t_div},
    {"maximum", t_maximum}, {"minimum", t_minimum}, {"matmul", t_matmul}, {"neg", t_neg},
    {"abs", t_abs}, {"exp", t_exp}, {"log", t_log}, {"sqrt", t_sqrt}, {"square", t_square},
    {"relu", t_relu}, {"silu", t_silu}, {"gelu", t_gelu}, {"sigmoid", t_sigmoid}, {"tanh", t_tanh},
    {"softplus", t_softplus}, {"reciprocal", t_reciprocal}, {"leaky_relu", t_leaky_relu},
    {"clamp", t_clamp}, {"pow", t_pow}, {"softmax", t_softmax}, {"log_softmax", t_log_softmax},
    {"sum", t_sum}, {"mean", t_mean}, {"max", t_max}, {"argmax", t_argmax}, {"argmin", t_argmin},
    {"fill_", t_fill_}, {"copy_", t_copy_}, {"add_", t_add_}, {"requires_grad", t_requires_grad},
    {"grad", t_grad}, {"set_grad", t_set_grad}, {"zero_grad", t_zero_grad}, {"backward", t_backward},
    {NULL, NULL}};

static const luaL_Reg tensor_meta[] = {
    {"__gc", t_gc}, {"__close", t_gc}, {"__tostring", t_tostring}, {"__add", t_add}, {"__sub", t_sub},
    {"__mul", t_mul}, {"__div", t_div}, {"__unm", t_neg}, {NULL, NULL}};

void tt_lua_open_tensor(lua_State *L, int module) {
  luaL_newmetatable(L, TT_LUA_TENSOR);
  luaL_setfuncs(L, tensor_meta, 0);
  luaL_newlib(L, tensor_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  (void)module;
}

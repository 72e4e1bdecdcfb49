/* lua_ops.c — the `taming` module's functions: tensor constructors, the ops
 * that take several tensors or options, random generators, autograd helpers,
 * the optimizer step, clocks and device queries. */
#include "config.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "lua_internal.h"

static tt_device opt_device(lua_State *L, int idx) {
  const char *d = tt_lua_opt_field_str(L, idx, "device", "cpu");
  return tt_lua_check_device(L, d);
}

static tt_dtype opt_dtype(lua_State *L, int idx, tt_dtype def) {
  const char *d = tt_lua_opt_field_str(L, idx, "dtype", NULL);
  return d ? tt_lua_check_dtype(L, d) : def;
}

/* ---- constructors ---- */

static void count_nested(lua_State *L, int idx, int d, int *nd, int64_t *shape) {
  if (lua_type(L, idx) != LUA_TTABLE) {
    if (*nd < d) *nd = d;
    return;
  }
  if (d >= TT_MAX_DIMS) luaL_error(L, "tensor(): nesting deeper than %d", TT_MAX_DIMS);
  int64_t n = (int64_t)luaL_len(L, idx);
  if (*nd <= d) shape[d] = n;
  else if (shape[d] != n) luaL_error(L, "tensor(): ragged nested table (dim %d has sizes %I and %I)", d, (lua_Integer)shape[d], (lua_Integer)n);
  if (n == 0) { if (*nd < d + 1) *nd = d + 1; return; }
  lua_geti(L, idx, 1);
  count_nested(L, lua_gettop(L), d + 1, nd, shape);
  lua_pop(L, 1);
}

static void fill_nested(lua_State *L, int idx, double *out, int64_t *k, int d, int nd, const int64_t *shape) {
  if (d == nd) {
    out[(*k)++] = luaL_checknumber(L, idx);
    return;
  }
  luaL_checktype(L, idx, LUA_TTABLE);
  if ((int64_t)luaL_len(L, idx) != shape[d]) luaL_error(L, "tensor(): ragged nested table at dim %d", d);
  for (int64_t i = 1; i <= shape[d]; i++) {
    lua_geti(L, idx, i);
    fill_nested(L, lua_gettop(L), out, k, d + 1, nd, shape);
    lua_pop(L, 1);
  }
}

/* tt.tensor({{1,2},{3,4}} [, {dtype=, device=}]) */
static int l_tensor(lua_State *L) {
  int64_t shape[TT_MAX_DIMS];
  int nd = 0;
  if (lua_isnumber(L, 1)) {
    nd = 0;
  } else {
    luaL_checktype(L, 1, LUA_TTABLE);
    count_nested(L, 1, 0, &nd, shape);
  }
  int64_t n = 1;
  for (int i = 0; i < nd; i++) n *= shape[i];
  /* a userdata, not malloc: a ragged or non-numeric entry raises a Lua error
   * below, and the collector then frees the buffer */
  double *buf = lua_newuserdatauv(L, sizeof(double) * (size_t)(n ? n : 1), 0);
  int64_t k = 0;
  if (nd == 0) buf[0] = luaL_checknumber(L, 1);
  else fill_nested(L, 1, buf, &k, 0, nd, shape);
  tt_tensor *f64 = tt_tensor_from_data(TT_F64, nd, shape, buf, TT_CPU);
  lua_pop(L, 1);
  if (!f64) return tt_lua_fail(L);
  tt_tensor *t = tt_cast(f64, opt_dtype(L, 2, TT_F32));
  tt_tensor_unref(f64);
  if (t && opt_device(L, 2) != TT_CPU) {
    tt_tensor *d = tt_to_device(t, opt_device(L, 2));
    tt_tensor_unref(t);
    t = d;
  }
  tt_lua_push_tensor(L, t);
  return 1;
}

static int full_like_ctor(lua_State *L, double value, int opts) {
  int64_t sh[TT_MAX_DIMS];
  int n = tt_lua_shape(L, 1, sh);
  tt_lua_push_tensor(L, tt_full(opt_dtype(L, opts, TT_F32), n, sh, value, opt_device(L, opts)));
  return 1;
}

static int l_zeros(lua_State *L) { return full_like_ctor(L, 0.0, lua_istable(L, 1) ? 2 : 0); }
static int l_ones(lua_State *L) { return full_like_ctor(L, 1.0, lua_istable(L, 1) ? 2 : 0); }
/* tt.full(shape_table, value [, opts]) */
static int l_full(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  return full_like_ctor(L, luaL_checknumber(L, 2), 3);
}

/* tt.arange(n) or tt.arange(start, stop [, step]) -> i64 (or {dtype=}) */
static int l_arange(lua_State *L) {
  lua_Integer start = 0, stop, step = 1;
  if (lua_isnoneornil(L, 2) || lua_istable(L, 2)) stop = luaL_checkinteger(L, 1);
  else { start = luaL_checkinteger(L, 1); stop = luaL_checkinteger(L, 2); step = luaL_optinteger(L, 3, 1); }
  if (step == 0) return luaL_error(L, "arange: step must not be 0");
  int64_t n = step > 0 ? (stop > start ? (stop - start + step - 1) / step : 0) : (start > stop ? (start - stop - step - 1) / -step : 0);
  int64_t *buf = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  if (!buf) return luaL_error(L, "out of memory");
  for (int64_t i = 0; i < n; i++) buf[i] = start + i * step;
  tt_tensor *t = tt_tensor_from_data(TT_I64, 1, &n, buf, TT_CPU);
  free(buf);
  int opts = 0;
  for (int i = 1; i <= lua_gettop(L); i++) if (lua_istable(L, i)) opts = i;
  tt_dtype dt = opt_dtype(L, opts, TT_I64);
  if (t && dt != TT_I64) { tt_tensor *c = tt_cast(t, dt); tt_tensor_unref(t); t = c; }
  tt_lua_push_tensor(L, t);
  return 1;
}

/* ---- random ---- */

static tt_rng *check_rng(lua_State *L, int idx) { return luaL_checkudata(L, idx, TT_LUA_RNG); }

static int l_rng(lua_State *L) {
  tt_rng *r = lua_newuserdatauv(L, sizeof *r, 0);
  *r = tt_rng_make((uint64_t)luaL_optinteger(L, 1, 0));
  luaL_setmetatable(L, TT_LUA_RNG);
  return 1;
}

static int rng_uniform(lua_State *L) { lua_pushnumber(L, tt_rng_uniform(check_rng(L, 1))); return 1; }
static int rng_normal(lua_State *L) { lua_pushnumber(L, tt_rng_normal(check_rng(L, 1))); return 1; }
/* r:randint(n) -> integer in [0, n) */
static int rng_randint(lua_State *L) {
  tt_rng *r = check_rng(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  if (n <= 0) return luaL_error(L, "randint: n must be positive");
  lua_pushinteger(L, (lua_Integer)(tt_rng_uniform(r) * (double)n));
  return 1;
}
static int rng_state(lua_State *L) {
  tt_rng *r = check_rng(L, 1);
  lua_pushinteger(L, (lua_Integer)r->seed);
  lua_pushinteger(L, (lua_Integer)r->counter);
  return 2;
}
static int rng_set_state(lua_State *L) {
  tt_rng *r = check_rng(L, 1);
  r->seed = (uint64_t)luaL_checkinteger(L, 2);
  r->counter = (uint64_t)luaL_checkinteger(L, 3);
  return 0;
}
/* r:permutation(n) -> Lua list of 0..n-1 shuffled (Fisher-Yates) */
static int rng_permutation(lua_State *L) {
  tt_rng *r = check_rng(L, 1);
  lua_Integer n = luaL_checkinteger(L, 2);
  int64_t *p = malloc(sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
  if (!p) return luaL_error(L, "out of memory");
  for (lua_Integer i = 0; i < n; i++) p[i] = i;
  for (lua_Integer i = n - 1; i > 0; i--) {
    lua_Integer j = (lua_Integer)(tt_rng_uniform(r) * (double)(i + 1));
    int64_t t = p[i]; p[i] = p[j]; p[j] = t;
  }
  lua_createtable(L, (int)n, 0);
  for (lua_Integer i = 0; i < n; i++) { lua_pushinteger(L, p[i]); lua_seti(L, -2, i + 1); }
  free(p);
  return 1;
}

static tt_rng *rng_arg(lua_State *L, int idx, tt_rng *local) {
  if (lua_isinteger(L, idx)) { *local = tt_rng_make((uint64_t)lua_tointeger(L, idx)); return local; }
  if (lua_isnoneornil(L, idx)) { *local = tt_rng_make(0); return local; }
  return check_rng(L, idx);
}

/* tt.rand(shape, rng_or_seed [, opts]) / tt.randn */
static int rand_common(lua_State *L, tt_random_kind k) {
  int64_t sh[TT_MAX_DIMS];
  int n = tt_lua_shape(L, 1, sh);
  tt_rng local, *r = rng_arg(L, 2, &local);
  tt_tensor *t = tt_tensor_new(TT_F32, n, sh, opt_device(L, lua_istable(L, 3) ? 3 : 0));
  if (t && tt_random_fill_(t, r, k, 0.0, 1.0) != TT_OK) { tt_tensor_unref(t); t = NULL; }
  tt_lua_push_tensor(L, t);
  return 1;
}
static int l_rand(lua_State *L) { return rand_common(L, TT_RANDOM_UNIFORM); }

/* tt.bernoulli(shape, p, rng_or_seed [, opts]) -> f32 0/1 */
static int l_bernoulli(lua_State *L) {
  int64_t sh[TT_MAX_DIMS];
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = tt_lua_shape(L, 1, sh);
  double p = luaL_checknumber(L, 2);
  tt_rng local, *r = rng_arg(L, 3, &local);
  tt_tensor *t = tt_tensor_new(TT_F32, n, sh, opt_device(L, lua_istable(L, 4) ? 4 : 0));
  if (t && tt_random_fill_(t, r, TT_RANDOM_BERNOULLI, p, 0.0) != TT_OK) { tt_tensor_unref(t); t = NULL; }
  tt_lua_push_tensor(L, t);
  return 1;
}
static int l_randn(lua_State *L) { return rand_common(L, TT_RANDOM_NORMAL); }

/* tt.dropout(x, p, training, rng) */
static int l_dropout(lua_State *L) {
  tt_rng local, *r = rng_arg(L, 4, &local);
  tt_lua_push_tensor(L, tt_dropout(tt_lua_check_tensor(L, 1), (float)luaL_checknumber(L, 2), lua_toboolean(L, 3), r));
  return 1;
}

/* ---- multi-tensor ops ---- */

static int tensor_list(lua_State *L, int idx, tt_tensor **out, int max) {
  luaL_checktype(L, idx, LUA_TTABLE);
  int n = (int)luaL_len(L, idx);
  if (n > max) luaL_error(L, "at most %d tensors", max);
  for (int i = 0; i < n; i++) {
    lua_geti(L, idx, i + 1);
    out[i] = tt_lua_check_tensor(L, -1);
    lua_pop(L, 1);   /* still referenced by the table */
  }
  return n;
}

static int l_cat(lua_State *L) {
  tt_tensor *ts[256];
  int n = tensor_list(L, 1, ts, 256);
  tt_lua_push_tensor(L, tt_cat(n, ts, (int)luaL_optinteger(L, 2, 0)));
  return 1;
}

static int l_stack(lua_State *L) {
  tt_tensor *ts[256], *us[256];
  int n = tensor_list(L, 1, ts, 256);
  int dim = (int)luaL_optinteger(L, 2, 0);
  int ok = 1;
  for (int i = 0; i < n; i++) {
    us[i] = tt_unsqueeze(ts[i], dim);
    if (!us[i]) { ok = 0; n = i; break; }
  }
  tt_tensor *r = ok ? tt_cat(n, us, dim) : NULL;
  for (int i = 0; i < n; i++) tt_tensor_unref(us[i]);
  tt_lua_push_tensor(L, r);
  return 1;
}

/* tt.conv2d(x, w, b, {stride=, padding= or pad={top,bottom,left,right}}) */
static int l_conv2d(lua_State *L) {
  tt_tensor *x = tt_lua_check_tensor(L, 1), *w = tt_lua_check_tensor(L, 2), *b = tt_lua_opt_tensor(L, 3);
  int stride = (int)tt_lua_opt_field_int(L, 4, "stride", 1), pad = (int)tt_lua_opt_field_int(L, 4, "padding", 0);
  tt_conv2d_params p = {stride, stride, pad, pad, pad, pad};
  if (lua_istable(L, 4) && lua_getfield(L, 4, "pad") == LUA_TTABLE) {
    int v[4];
    for (int i = 0; i < 4; i++) { lua_geti(L, -1, i + 1); v[i] = (int)luaL_checkinteger(L, -1); lua_pop(L, 1); }
    p.pad_top = v[0]; p.pad_bottom = v[1]; p.pad_left = v[2]; p.pad_right = v[3];
  }
  if (lua_istable(L, 4)) lua_pop(L, 1);
  tt_lua_push_tensor(L, tt_conv2d(x, w, b, &p));
  return 1;
}

static int l_linear(lua_State *L) {
  tt_lua_push_tensor(L, tt_linear(tt_lua_check_tensor(L, 1), tt_lua_check_tensor(L, 2), tt_lua_opt_tensor(L, 3)));
  return 1;
}

static int l_group_norm(lua_State *L) {
  tt_lua_push_tensor(L, tt_group_norm(tt_lua_check_tensor(L, 1), (int)luaL_checkinteger(L, 2), tt_lua_opt_tensor(L, 3),
                                      tt_lua_opt_tensor(L, 4), (float)luaL_optnumber(L, 5, 1e-5)));
  return 1;
}

static int l_layer_norm(lua_State *L) {
  tt_lua_push_tensor(L, tt_layer_norm(tt_lua_check_tensor(L, 1), tt_lua_opt_tensor(L, 2), tt_lua_opt_tensor(L, 3),
                                      (float)luaL_optnumber(L, 4, 1e-5)));
  return 1;
}

/* tt.batch_norm(x, w, b, running_mean, running_var, training [, momentum, eps]) */
static int l_batch_norm(lua_State *L) {
  tt_lua_push_tensor(L, tt_batch_norm(tt_lua_check_tensor(L, 1), tt_lua_opt_tensor(L, 2), tt_lua_opt_tensor(L, 3),
                                      tt_lua_opt_tensor(L, 4), tt_lua_opt_tensor(L, 5), lua_toboolean(L, 6),
                                      (float)luaL_optnumber(L, 7, 0.1), (float)luaL_optnumber(L, 8, 1e-5)));
  return 1;
}

/* tt.attention(q, k, v, {scale=, causal=, q_offset=, n_unmasked=}) */
static int l_attention(lua_State *L) {
  tt_tensor *q = tt_lua_check_tensor(L, 1);
  tt_attention_params p;
  p.scale = (float)tt_lua_opt_field_num(L, 4, "scale", 1.0 / sqrt((double)q->shape[q->ndim - 1]));
  p.causal = tt_lua_opt_field_bool(L, 4, "causal", 0);
  p.q_offset = tt_lua_opt_field_int(L, 4, "q_offset", 0);
  p.n_unmasked = tt_lua_opt_field_int(L, 4, "n_unmasked", 0);
  tt_lua_push_tensor(L, tt_attention(q, tt_lua_check_tensor(L, 2), tt_lua_check_tensor(L, 3), &p));
  return 1;
}

static int l_embedding(lua_State *L) {
  tt_lua_push_tensor(L, tt_embedding(tt_lua_check_tensor(L, 1), tt_lua_check_tensor(L, 2)));
  return 1;
}

static int l_one_hot(lua_State *L) {
  tt_lua_push_tensor(L, tt_one_hot(tt_lua_check_tensor(L, 1), luaL_checkinteger(L, 2)));
  return 1;
}

#define LOSS(NAME, FN)                                                                         \
  static int l_##NAME(lua_State *L) {                                                          \
    tt_lua_push_tensor(L, FN(tt_lua_check_tensor(L, 1), tt_lua_check_tensor(L, 2)));           \
    return 1;                                                                                  \
  }
LOSS(l1_loss, tt_l1_loss)
LOSS(mse_loss, tt_mse_loss)
LOSS(cross_entropy, tt_cross_entropy)
LOSS(bce_with_logits, tt_bce_with_logits)
#undef LOSS

/* tt.interpolate(x, h, w, mode) mode: nearest|area|bilinear|bicubic */
static int l_interpolate(lua_State *L) {
  static const char *const modes[] = {"nearest", "area", "bilinear", "bicubic", NULL};
  int m = luaL_checkoption(L, 4, "nearest", modes);
  tt_lua_push_tensor(L, tt_interpolate(tt_lua_check_tensor(L, 1), luaL_checkinteger(L, 2), luaL_checkinteger(L, 3), (tt_interp_mode)m));
  return 1;
}

static int l_upsample_nearest(lua_State *L) {
  tt_lua_push_tensor(L, tt_upsample_nearest(tt_lua_check_tensor(L, 1), (int)luaL_optinteger(L, 2, 2)));
  return 1;
}

static int l_avg_pool2d(lua_State *L) {
  int k = (int)luaL_optinteger(L, 2, 2);
  tt_lua_push_tensor(L, tt_avg_pool2d(tt_lua_check_tensor(L, 1), k, (int)luaL_optinteger(L, 3, k)));
  return 1;
}

static int l_max_pool2d(lua_State *L) {
  int k = (int)luaL_optinteger(L, 2, 2);
  tt_lua_push_tensor(L, tt_max_pool2d(tt_lua_check_tensor(L, 1), k, (int)luaL_optinteger(L, 3, k)));
  return 1;
}

/* tt.pad2d(x, {left, right, top, bottom} [, value]) */
static int l_pad2d(lua_State *L) {
  int64_t p[TT_MAX_DIMS];
  if (tt_lua_shape(L, 2, p) != 4) return luaL_error(L, "pad2d: expected {left, right, top, bottom}");
  tt_lua_push_tensor(L, tt_pad2d(tt_lua_check_tensor(L, 1), p, luaL_optnumber(L, 3, 0.0)));
  return 1;
}

/* tt.codebook_argmin(z [N, D], codebook [K, D]) -> idx i64 [N], dmin [N] */
static int l_codebook_argmin(lua_State *L) {
  tt_tensor *dmin = NULL;
  tt_tensor *idx = tt_codebook_argmin(tt_lua_check_tensor(L, 1), tt_lua_check_tensor(L, 2), &dmin);
  tt_lua_push_tensor(L, idx);
  tt_lua_push_tensor(L, dmin);
  return 2;
}

/* ---- autograd ---- */

static int l_no_grad(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  bool prev = tt_grad_set_enabled(false);
  int n = lua_gettop(L);
  int status = lua_pcall(L, n - 1, LUA_MULTRET, 0);
  tt_grad_set_enabled(prev);
  if (status != LUA_OK) return lua_error(L);
  return lua_gettop(L);
}

static int l_set_grad_enabled(lua_State *L) {
  lua_pushboolean(L, tt_grad_set_enabled(lua_toboolean(L, 1)));
  return 1;
}

static int l_grad_enabled(lua_State *L) {
  lua_pushboolean(L, tt_grad_enabled());
  return 1;
}

/* tt.set_recompute("none" | "norm_act") -> the previous mode; tt.recompute() -> the mode */
static const char *const recompute_names[] = {"none", "norm_act", NULL};
static const unsigned recompute_masks[] = {0, TT_RECOMPUTE_NORM_ACT};

static const char *recompute_name(unsigned mask) { return mask & TT_RECOMPUTE_NORM_ACT ? "norm_act" : "none"; }

static int l_set_recompute(lua_State *L) {
  int i = luaL_checkoption(L, 1, NULL, recompute_names);
  lua_pushstring(L, recompute_name(tt_recompute_set(recompute_masks[i])));
  return 1;
}

static int l_recompute(lua_State *L) {
  lua_pushstring(L, recompute_name(tt_recompute_mode()));
  return 1;
}

/* tt.autograd_grad({outputs}, {inputs} [, retain_graph]) -> {grads} */
static int l_autograd_grad(lua_State *L) {
  tt_tensor *outs[64], *ins[256], *grads[256];
  int no = lua_istable(L, 1) ? tensor_list(L, 1, outs, 64) : (outs[0] = tt_lua_check_tensor(L, 1), 1);
  int ni = tensor_list(L, 2, ins, 256);
  if (tt_autograd_grad(no, outs, ni, ins, grads, lua_toboolean(L, 3)) != TT_OK) return tt_lua_fail(L);
  lua_createtable(L, ni, 0);
  for (int i = 0; i < ni; i++) {
    tt_lua_push_tensor(L, grads[i]);
    lua_seti(L, -2, i + 1);
  }
  return 1;
}

/* tt.adam_step(param, grad, m, v, {lr, beta1, beta2, eps, weight_decay, decoupled, step}) */
static int l_adam_step(lua_State *L) {
  tt_adam_params p;
  p.lr = (float)tt_lua_opt_field_num(L, 5, "lr", 1e-3);
  p.beta1 = (float)tt_lua_opt_field_num(L, 5, "beta1", 0.9);
  p.beta2 = (float)tt_lua_opt_field_num(L, 5, "beta2", 0.999);
  p.eps = (float)tt_lua_opt_field_num(L, 5, "eps", 1e-8);
  p.weight_decay = (float)tt_lua_opt_field_num(L, 5, "weight_decay", 0.0);
  p.decoupled = tt_lua_opt_field_bool(L, 5, "decoupled", 0);
  p.step = tt_lua_opt_field_int(L, 5, "step", 1);
  if (tt_adam_step(&p, tt_lua_check_tensor(L, 1), tt_lua_check_tensor(L, 2), tt_lua_check_tensor(L, 3),
                   tt_lua_check_tensor(L, 4)) != TT_OK)
    return tt_lua_fail(L);
  return 0;
}

/* tt.adam_step_multi(params, grads, ms, vs, steps, hps): one fused update of
 * every params[i] (lists of tensors; steps[i] an integer; hps[i] an options
 * table as adam_step's, usually shared by a parameter group) */
static int l_adam_step_multi(lua_State *L) {
  for (int k = 1; k <= 6; k++) luaL_checktype(L, k, LUA_TTABLE);
  lua_Integer n = luaL_len(L, 1);
  for (int k = 2; k <= 6; k++)
    if (luaL_len(L, k) != n)
      return luaL_error(L, "adam_step_multi: argument %d has %d entries, the parameters %d", k, (int)luaL_len(L, k),
                        (int)n);
  if (n > INT_MAX / 8) return luaL_error(L, "adam_step_multi: %d parameters is too many", (int)n);
  if (n == 0) return 0;
  /* scratch in a userdata, so that a Lua error on the way frees it */
  size_t per = 4 * sizeof(tt_tensor *) + sizeof(tt_adam_params);
  char *mem = lua_newuserdatauv(L, per * (size_t)n, 0);
  tt_adam_params *hp = (tt_adam_params *)mem;
  tt_tensor **ts = (tt_tensor **)(mem + sizeof(tt_adam_params) * (size_t)n);
  for (lua_Integer i = 0; i < n; i++) {
    for (int k = 0; k < 4; k++) {
      lua_geti(L, k + 1, i + 1);
      ts[k * n + i] = tt_lua_check_tensor(L, -1);
      lua_pop(L, 1);
    }
    lua_geti(L, 5, i + 1);
    int isnum = 0;
    hp[i].step = (int64_t)lua_tointegerx(L, -1, &isnum);
    if (!isnum) return luaL_error(L, "adam_step_multi: steps[%d] is not an integer", (int)i + 1);
    lua_pop(L, 1);
    lua_geti(L, 6, i + 1);
    int o = lua_gettop(L);
    if (!lua_istable(L, o)) return luaL_error(L, "adam_step_multi: hps[%d] is not a table", (int)i + 1);
    hp[i].lr = (float)tt_lua_opt_field_num(L, o, "lr", 1e-3);
    hp[i].beta1 = (float)tt_lua_opt_field_num(L, o, "beta1", 0.9);
    hp[i].beta2 = (float)tt_lua_opt_field_num(L, o, "beta2", 0.999);
    hp[i].eps = (float)tt_lua_opt_field_num(L, o, "eps", 1e-8);
    hp[i].weight_decay = (float)tt_lua_opt_field_num(L, o, "weight_decay", 0.0);
    hp[i].decoupled = tt_lua_opt_field_bool(L, o, "decoupled", 0);
    lua_pop(L, 1);
  }
  if (tt_adam_step_multi((int)n, hp, ts, ts + n, ts + 2 * n, ts + 3 * n) != TT_OK) return tt_lua_fail(L);
  return 0;
}

/* ---- clocks, devices, threads ---- */

static int l_time(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9);
  return 1;
}

/* ---- profiling ---- */

/* tt.profile_start(): counters cleared and on; tt.profile_stop(): off (the
 * counters stay for a report); tt.profile_report([title]): the table on stderr */
static int l_profile_start(lua_State *L) {
  (void)L;
  tt_profile_set_enabled(true);
  return 0;
}

static int l_profile_stop(lua_State *L) {
  lua_pushboolean(L, tt_profile_set_enabled(false));
  return 1;
}

static int l_profile_report(lua_State *L) {
  tt_profile_report(stderr, luaL_optstring(L, 1, NULL));
  return 0;
}

/* tt.profile_memory() -> peak CPU tensor bytes in the window, bytes at its start */
static int l_profile_memory(lua_State *L) {
  size_t peak, start;
  tt_profile_memory(&peak, &start);
  lua_pushinteger(L, (lua_Integer)peak);
  lua_pushinteger(L, (lua_Integer)start);
  return 2;
}

/* tt.peak_rss() -> the process's peak resident set so far, in bytes */
static int l_peak_rss(lua_State *L) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return luaL_error(L, "peak_rss: getrusage failed");
  lua_pushinteger(L, (lua_Integer)ru.ru_maxrss * 1024);   /* Linux reports KiB */
  return 1;
}

static int l_device_available(lua_State *L) {
  lua_pushboolean(L, tt_device_available(tt_lua_check_device(L, luaL_checkstring(L, 1))));
  return 1;
}

static int l_synchronize(lua_State *L) {
  if (tt_device_synchronize(tt_lua_check_device(L, luaL_optstring(L, 1, "cpu"))) != TT_OK) return tt_lua_fail(L);
  return 0;
}

static int l_memory_in_use(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)tt_memory_in_use(tt_lua_check_device(L, luaL_optstring(L, 1, "cpu"))));
  return 1;
}

static int l_set_threads(lua_State *L) {
  int n = (int)luaL_checkinteger(L, 1);
  if (n < 1) return luaL_error(L, "set_threads: need at least 1 thread");
#ifdef _OPENMP
  omp_set_num_threads(n);   /* OpenBLAS stays single-threaded: the kernels split work over OpenMP */
#endif
  return 0;
}

static int l_threads(lua_State *L) {
#ifdef _OPENMP
  lua_pushinteger(L, omp_get_max_threads());
#else
  lua_pushinteger(L, 1);
#endif
  return 1;
}

/* set_compute_precision("fp32" | "bf16") -> {precision =, isa = [, fallback = why]}:
 * the precision of the GEMMs in linear and matmul, forward and backward (mixed-precision
 * training). bf16 on a CPU without a bf16 GEMM stays fp32; `fallback` says why. */
static int l_set_compute_precision(lua_State *L) {
  const char *p = luaL_checkstring(L, 1);
  bool bf = !strcmp(p, "bf16");
  if (!bf && strcmp(p, "fp32")) return luaL_error(L, "set_compute_precision: expected fp32 or bf16, found '%s'", p);
  tt_status s = tt_set_compute_precision(bf ? TT_BF16 : TT_F32);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, tt_compute_precision() == TT_BF16 ? "bf16" : "fp32");
  lua_setfield(L, -2, "precision");
  lua_pushstring(L, tt_compute_precision() == TT_BF16 ? tt_gemm_bf16_isa() : "openblas");
  lua_setfield(L, -2, "isa");
  const char *conv = tt_conv2d_prec_isa(TT_CPU, TT_BF16);
  lua_pushstring(L, tt_compute_precision() != TT_BF16 ? "f32" : conv ? conv : "f32: no bf16 convolution on this CPU");
  lua_setfield(L, -2, "conv_isa");
  if (s != TT_OK) {
    lua_pushstring(L, tt_error_message());
    lua_setfield(L, -2, "fallback");
    tt_error_clear();
  }
  return 1;
}

static int l_compute_precision(lua_State *L) {
  lua_pushstring(L, tt_compute_precision() == TT_BF16 ? "bf16" : "fp32");
  return 1;
}

/* stream_read_gbs([mib = 1024 [, reps = 5]]) -> GB/s: the best of reps passes of
 * all threads summing a buffer far larger than the caches, the memory bandwidth a
 * weight-streaming decoder can hope for (benches print it next to their speed). */
static int l_stream_read_gbs(lua_State *L) {
  lua_Integer mib = luaL_optinteger(L, 1, 1024), reps = luaL_optinteger(L, 2, 5);
  if (mib < 1 || mib > (1 << 20) || reps < 1) return luaL_error(L, "stream_read_gbs: mib in [1, 2^20] and reps >= 1");
  size_t n = (size_t)mib << 17;   /* 8-byte words */
  uint64_t *buf = malloc(n * sizeof *buf);
  if (!buf) return luaL_error(L, "stream_read_gbs: out of memory for %d MiB", (int)mib);
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) buf[i] = i;
  double best = 0;
  uint64_t sink = 0;
  for (lua_Integer r = 0; r < reps; r++) {
    struct timespec t0, t1;
    uint64_t s = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
#pragma omp parallel for schedule(static) reduction(+ : s)
    for (size_t i = 0; i < n; i++) s += buf[i];
    clock_gettime(CLOCK_MONOTONIC, &t1);
    sink += s;
    double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    if (dt > 0 && n * 8.0 / dt / 1e9 > best) best = n * 8.0 / dt / 1e9;
  }
  free(buf);
  lua_pushnumber(L, sink == 1 ? -1 : best);   /* keeps the sums live */
  return 1;
}

static const luaL_Reg ops_funcs[] = {
    {"tensor", l_tensor}, {"zeros", l_zeros}, {"ones", l_ones}, {"full", l_full}, {"arange", l_arange},
    {"rng", l_rng}, {"rand", l_rand}, {"randn", l_randn}, {"bernoulli", l_bernoulli}, {"dropout", l_dropout}, {"cat", l_cat},
    {"stack", l_stack}, {"conv2d", l_conv2d}, {"linear", l_linear}, {"group_norm", l_group_norm},
    {"layer_norm", l_layer_norm}, {"batch_norm", l_batch_norm}, {"attention", l_attention},
    {"embedding", l_embedding}, {"one_hot", l_one_hot}, {"l1_loss", l_l1_loss}, {"mse_loss", l_mse_loss},
    {"cross_entropy", l_cross_entropy}, {"bce_with_logits", l_bce_with_logits}, {"interpolate", l_interpolate},
    {"upsample_nearest", l_upsample_nearest}, {"avg_pool2d", l_avg_pool2d}, {"max_pool2d", l_max_pool2d},
    {"pad2d", l_pad2d}, {"codebook_argmin", l_codebook_argmin}, {"no_grad", l_no_grad},
    {"set_grad_enabled", l_set_grad_enabled}, {"grad_enabled", l_grad_enabled},
    {"set_recompute", l_set_recompute}, {"recompute", l_recompute},
    {"autograd_grad", l_autograd_grad}, {"adam_step", l_adam_step}, {"time", l_time},
    {"adam_step_multi", l_adam_step_multi},
    {"profile_start", l_profile_start}, {"profile_stop", l_profile_stop}, {"profile_report", l_profile_report},
    {"profile_memory", l_profile_memory}, {"peak_rss", l_peak_rss},
    {"device_available", l_device_available}, {"synchronize", l_synchronize},
    {"memory_in_use", l_memory_in_use}, {"set_threads", l_set_threads}, {"threads", l_threads},
    {"stream_read_gbs", l_stream_read_gbs},
    {"set_compute_precision", l_set_compute_precision}, {"compute_precision", l_compute_precision},
    {NULL, NULL}};

static const luaL_Reg rng_methods[] = {
    {"uniform", rng_uniform}, {"normal", rng_normal}, {"randint", rng_randint}, {"state", rng_state},
    {"set_state", rng_set_state}, {"permutation", rng_permutation}, {NULL, NULL}};

void tt_lua_open_ops(lua_State *L, int module) {
  luaL_newmetatable(L, TT_LUA_RNG);
  luaL_newlib(L, rng_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushvalue(L, module);
  luaL_setfuncs(L, ops_funcs, 0);
  lua_pop(L, 1);
}

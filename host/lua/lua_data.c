/* lua_data.c — the official data pipeline's preprocessing from Lua
 * (tt.image.resize, smallest_max_size, crops, Canny, depth, labels, grids) and
 * datasets (tt.datasets.fashion_mnist, tt.datasets.idx_load). Images here are
 * channel-last [H, W(, C)] u8 or f32, as in taming/imgproc.h. */
#include "config.h"
#include <math.h>
#include "lua_internal.h"
#include "taming/datasets.h"
#include "taming/imgproc.h"

static tt_interp check_interp(lua_State *L, int idx) {
  static const char *const names[] = {"nearest", "linear", "cubic", "area", NULL};
  return (tt_interp)luaL_checkoption(L, idx, "linear", names);
}

/* resize(img, h, w [, interp [, top, left, ch, cw]]): with a window, only the rows
 * [top, top+ch) and columns [left, left+cw) of the h x w result are computed */
static int l_resize(lua_State *L) {
  const tt_tensor *x = tt_lua_check_tensor(L, 1);
  lua_Integer h = luaL_checkinteger(L, 2), w = luaL_checkinteger(L, 3);
  if (lua_isnoneornil(L, 5)) {
    tt_lua_push_tensor(L, tt_cv_resize(x, h, w, check_interp(L, 4)));
  } else {
    tt_lua_push_tensor(L, tt_cv_resize_window(x, h, w, luaL_checkinteger(L, 5), luaL_checkinteger(L, 6),
                                              luaL_checkinteger(L, 7), luaL_checkinteger(L, 8), check_interp(L, 4)));
  }
  return 1;
}

static int l_smallest_max_size(lua_State *L) {
  tt_lua_push_tensor(L, tt_smallest_max_size(tt_lua_check_tensor(L, 1), luaL_checkinteger(L, 2), check_interp(L, 3)));
  return 1;
}

/* smallest_max_size_crop(img, size [, interp [, h [, w [, u, v]]]]): the resize and a
 * centre crop (random crop with the draws u, v), resizing only the kept window */
static int l_smallest_max_size_crop(lua_State *L) {
  lua_Integer size = luaL_checkinteger(L, 2), h = luaL_optinteger(L, 4, size), w = luaL_optinteger(L, 5, h);
  double u = lua_isnoneornil(L, 6) ? -1 : luaL_checknumber(L, 6), v = lua_isnoneornil(L, 6) ? -1 : luaL_checknumber(L, 7);
  tt_lua_push_tensor(L, tt_smallest_max_size_crop(tt_lua_check_tensor(L, 1), size, h, w, u, v, check_interp(L, 3)));
  return 1;
}

static int l_center_crop(lua_State *L) {
  lua_Integer h = luaL_checkinteger(L, 2);
  tt_lua_push_tensor(L, tt_center_crop(tt_lua_check_tensor(L, 1), h, luaL_optinteger(L, 3, h)));
  return 1;
}

static int l_random_crop(lua_State *L) {
  tt_lua_push_tensor(L, tt_random_crop(tt_lua_check_tensor(L, 1), luaL_checkinteger(L, 2), luaL_checkinteger(L, 3),
                                       luaL_checknumber(L, 4), luaL_checknumber(L, 5)));
  return 1;
}

static int l_crop(lua_State *L) {
  tt_lua_push_tensor(L, tt_crop(tt_lua_check_tensor(L, 1), luaL_checkinteger(L, 2), luaL_checkinteger(L, 3),
                                luaL_checkinteger(L, 4), luaL_checkinteger(L, 5)));
  return 1;
}

static int l_hflip(lua_State *L) {
  tt_lua_push_tensor(L, tt_hflip(tt_lua_check_tensor(L, 1)));
  return 1;
}

static int l_pil_resize(lua_State *L) {
  static const char *const names[] = {"nearest", "lanczos", "bilinear", "bicubic", "box", "hamming", NULL};
  tt_lua_push_tensor(L, tt_pil_resize(tt_lua_check_tensor(L, 1), luaL_checkinteger(L, 2), luaL_checkinteger(L, 3),
                                      (tt_pil_filter)luaL_checkoption(L, 4, "bicubic", names)));
  return 1;
}

static int l_rgb2gray(lua_State *L) {
  tt_lua_push_tensor(L, tt_rgb2gray(tt_lua_check_tensor(L, 1)));
  return 1;
}

/* tt.image.canny(gray [H, W] f32 [, sigma=2 [, low, high]]) -> 0/1 f32 */
static int l_canny(lua_State *L) {
  tt_lua_push_tensor(L, tt_canny(tt_lua_check_tensor(L, 1), luaL_optnumber(L, 2, 2.0), luaL_optnumber(L, 3, -1.0),
                                 luaL_optnumber(L, 4, -1.0)));
  return 1;
}

/* tt.image.depth_load(path) -> raw f32 [H, W]; tt.image.depth_normalize(d) -> [-1, 1] */
static int l_depth_load(lua_State *L) {
  tt_tensor *d = NULL;
  if (tt_depth_load(luaL_checkstring(L, 1), &d) != TT_OK) return tt_lua_fail(L);
  tt_lua_push_tensor(L, d);
  return 1;
}

static int l_depth_normalize(lua_State *L) {
  tt_lua_push_tensor(L, tt_depth_normalize(tt_lua_check_tensor(L, 1)));
  return 1;
}

static int l_labels_load(lua_State *L) {
  tt_tensor *t = NULL;
  if (tt_labels_load(luaL_checkstring(L, 1), &t) != TT_OK) return tt_lua_fail(L);
  tt_lua_push_tensor(L, t);
  return 1;
}

/* tt.image.labels_onehot(labels u8 [H, W], K [, shift [, what]]) -> f32 [K, H, W] */
static int l_labels_onehot(lua_State *L) {
  tt_lua_push_tensor(L, tt_labels_onehot(tt_lua_check_tensor(L, 1), (int)luaL_checkinteger(L, 2), lua_toboolean(L, 3),
                                         luaL_optstring(L, 4, "labels")));
  return 1;
}

/* tt.image.grid({images...} or batch, nrow [, padding=2 [, pad_value=-1]]) -> [1, C, H', W'] */
static int l_grid(lua_State *L) {
  tt_tensor *ts[1024];
  int n = 0;
  if (lua_istable(L, 1)) {
    n = (int)luaL_len(L, 1);
    if (n > 1024) return luaL_error(L, "grid: at most 1024 images");
    for (int i = 0; i < n; i++) {
      lua_geti(L, 1, i + 1);
      ts[i] = tt_lua_check_tensor(L, -1);
      lua_pop(L, 1);
    }
  } else {
    ts[0] = tt_lua_check_tensor(L, 1);
    n = 1;
  }
  tt_lua_push_tensor(L, tt_image_grid(n, ts, (int)luaL_optinteger(L, 2, 8), (int)luaL_optinteger(L, 3, 2),
                                      (float)luaL_optnumber(L, 4, -1.0)));
  return 1;
}

/* tt.image.render_keypoints({{x, y, visible}, ...}, H, W, radius) -> f32 [K, H, W]:
 * one map per keypoint with a filled disc of 1s (pose conditioning) */
static int l_render_keypoints(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer H = luaL_checkinteger(L, 2), W = luaL_checkinteger(L, 3), r = luaL_optinteger(L, 4, 4);
  int K = (int)luaL_len(L, 1);
  if (K < 1 || H < 1 || W < 1 || r < 0) return luaL_error(L, "render_keypoints: need keypoints, a positive size and radius >= 0");
  tt_tensor *map = tt_zeros(TT_F32, TT_DIMS(K, H, W), TT_CPU);
  if (!map) return tt_lua_fail(L);
  float *m = tt_f32(map);
  for (int k = 0; k < K; k++) {
    lua_geti(L, 1, k + 1);
    luaL_checktype(L, -1, LUA_TTABLE);
    lua_geti(L, -1, 1);
    lua_geti(L, -2, 2);
    lua_geti(L, -3, 3);
    double x = luaL_checknumber(L, -3), y = luaL_checknumber(L, -2), v = luaL_optnumber(L, -1, 1.0);
    lua_pop(L, 4);
    if (v <= 0) continue;
    int64_t cx = (int64_t)floor(x + 0.5), cy = (int64_t)floor(y + 0.5);
    for (int64_t yy = cy - r; yy <= cy + r; yy++)
      for (int64_t xx = cx - r; xx <= cx + r; xx++)
        if (yy >= 0 && yy < H && xx >= 0 && xx < W && (xx - cx) * (xx - cx) + (yy - cy) * (yy - cy) <= r * r)
          m[((int64_t)k * H + yy) * W + xx] = 1.0f;
  }
  tt_lua_push_tensor(L, map);
  return 1;
}

/* tt.image.draw_text(img u8 [H, W(, C)], x, y, text [, scale=1 [, value=255]]) (in place);
 * tt.image.text_width(text [, scale]) */
static int l_draw_text(lua_State *L) {
  if (tt_draw_text(tt_lua_check_tensor(L, 1), luaL_checkinteger(L, 2), luaL_checkinteger(L, 3), luaL_checkstring(L, 4),
                   (int)luaL_optinteger(L, 5, 1), (unsigned char)luaL_optinteger(L, 6, 255)) != TT_OK)
    return tt_lua_fail(L);
  lua_settop(L, 1);
  return 1;
}

static int l_text_width(lua_State *L) {
  lua_pushinteger(L, tt_text_width(luaL_checkstring(L, 1), (int)luaL_optinteger(L, 2, 1)));
  return 1;
}

/* tt.datasets.fashion_mnist(dir, "train"|"test") -> images u8 [N, 28, 28], labels i64 [N] */
static int l_fashion_mnist(lua_State *L) {
  tt_tensor *im = NULL, *lb = NULL;
  if (tt_fashion_mnist_load(luaL_optstring(L, 1, "/usr/share/datasets/fashion-mnist"), luaL_optstring(L, 2, "train"),
                            &im, &lb) != TT_OK)
    return tt_lua_fail(L);
  tt_lua_push_tensor(L, im);
  tt_lua_push_tensor(L, lb);
  return 2;
}

static int l_idx_load(lua_State *L) {
  tt_tensor *t = NULL;
  if (tt_idx_load(luaL_checkstring(L, 1), &t) != TT_OK) return tt_lua_fail(L);
  tt_lua_push_tensor(L, t);
  return 1;
}

static const luaL_Reg image_fns[] = {
    {"resize", l_resize}, {"smallest_max_size", l_smallest_max_size},
    {"smallest_max_size_crop", l_smallest_max_size_crop}, {"center_crop", l_center_crop},
    {"random_crop", l_random_crop}, {"crop", l_crop}, {"hflip", l_hflip}, {"pil_resize", l_pil_resize},
    {"rgb2gray", l_rgb2gray}, {"canny", l_canny}, {"depth_load", l_depth_load},
    {"depth_normalize", l_depth_normalize}, {"labels_load", l_labels_load}, {"labels_onehot", l_labels_onehot},
    {"grid", l_grid}, {"render_keypoints", l_render_keypoints}, {"draw_text", l_draw_text},
    {"text_width", l_text_width}, {NULL, NULL}};

static const luaL_Reg dataset_fns[] = {{"fashion_mnist", l_fashion_mnist}, {"idx_load", l_idx_load}, {NULL, NULL}};

void tt_lua_open_data(lua_State *L, int module) {
  lua_getfield(L, module, "image");   /* created by tt_lua_open_io */
  luaL_setfuncs(L, image_fns, 0);
  lua_pop(L, 1);
  lua_newtable(L);
  luaL_setfuncs(L, dataset_fns, 0);
  lua_setfield(L, module, "datasets");
}

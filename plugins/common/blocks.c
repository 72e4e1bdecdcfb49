/* blocks.c — see blocks.h. Each block has its own scope (taming/scope.h), and
 * the chains of full-size feature maps release each one as soon as it is used
 * (tt_scope_replace), so a 256x256 forward keeps only a few alive at once.
 * The definitions put their names in parentheses: blocks.h wraps the calls. */
#include "config.h"
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "blocks.h"

tt_status tt_ddconfig_read(const tt_value *cfg, tt_ddconfig *dd) {
  memset(dd, 0, sizeof *dd);
  int64_t v;
  int64_t list[16];
  int n;
  if (!cfg || cfg->type != TT_V_MAP) return tt_error(TT_ERR_INVALID, "ddconfig: expected a map of settings");
  /* the official Encoder's and Decoder's arguments */
  static const char *const known[] = {"ch", "out_ch", "ch_mult", "num_res_blocks", "attn_resolutions", "dropout",
                                      "resamp_with_conv", "in_channels", "resolution", "z_channels", "double_z",
                                      "give_pre_end", NULL};
  if (tt_cfg_check_keys(cfg, known) != TT_OK) return tt_error_prefix(tt_last_status(), "ddconfig: ");
#define REQ(key, field)                                                           \
  do {                                                                            \
    if (tt_cfg_int(cfg, key, &v) != TT_OK) return tt_error_prefix(tt_last_status(), "ddconfig: "); \
    dd->field = (int)v;                                                           \
  } while (0)
  REQ("ch", ch);
  REQ("num_res_blocks", num_res_blocks);
  REQ("resolution", resolution);
  REQ("z_channels", z_channels);
#undef REQ
  if (tt_cfg_int_opt(cfg, "in_channels", 3, &v) != TT_OK) return tt_error_prefix(tt_last_status(), "ddconfig: ");
  dd->in_channels = (int)v;
  if (tt_cfg_int_opt(cfg, "out_ch", 3, &v) != TT_OK) return tt_error_prefix(tt_last_status(), "ddconfig: ");
  dd->out_ch = (int)v;
  if (tt_cfg_int_list(cfg, "ch_mult", list, TT_MAX_LEVELS, &n) != TT_OK)
    return tt_error_prefix(tt_last_status(), "ddconfig: ");
  if (n < 1) return tt_error(TT_ERR_INVALID, "ddconfig: ch_mult is empty");
  dd->n_levels = n;
  for (int i = 0; i < n; i++) {
    if (list[i] < 1) return tt_error(TT_ERR_INVALID, "ddconfig: ch_mult[%d] = %lld must be positive", i, (long long)list[i]);
    dd->ch_mult[i] = (int)list[i];
  }
  if (tt_value_get(cfg, "attn_resolutions") && tt_value_get(cfg, "attn_resolutions")->type != TT_V_NIL) {
    if (tt_cfg_int_list(cfg, "attn_resolutions", list, 16, &n) != TT_OK)
      return tt_error_prefix(tt_last_status(), "ddconfig: ");
    dd->n_attn = n;
    for (int i = 0; i < n; i++) dd->attn_res[i] = (int)list[i];
  } else {
    return tt_error(TT_ERR_NOT_FOUND, "ddconfig: missing key 'attn_resolutions'");
  }
  double d;
  if (tt_cfg_num_opt(cfg, "dropout", 0.0, &d) != TT_OK) return tt_error_prefix(tt_last_status(), "ddconfig: ");
  dd->dropout = (float)d;
  if (tt_cfg_bool_opt(cfg, "double_z", true, &dd->double_z) != TT_OK ||
      tt_cfg_bool_opt(cfg, "give_pre_end", false, &dd->give_pre_end) != TT_OK ||
      tt_cfg_bool_opt(cfg, "resamp_with_conv", true, &dd->resamp_with_conv) != TT_OK)
    return tt_error_prefix(tt_last_status(), "ddconfig: ");
  if (dd->ch <= 0 || dd->ch % 32 != 0)
    return tt_error(TT_ERR_INVALID, "ddconfig: ch = %d must be a positive multiple of 32 (GroupNorm(32))", dd->ch);
  if (dd->num_res_blocks < 0 || dd->z_channels <= 0 || dd->in_channels <= 0 || dd->out_ch <= 0)
    return tt_error(TT_ERR_INVALID, "ddconfig: num_res_blocks, z_channels, in_channels and out_ch must be positive");
  return TT_OK;
}

bool tt_ddconfig_has_attn(const tt_ddconfig *dd, int res) {
  for (int i = 0; i < dd->n_attn; i++)
    if (dd->attn_res[i] == res) return true;
  return false;
}

tt_status tt_normalize_declare(tt_norm_layer *n, tt_paramset *ps, const char *prefix, int c) {
  return tt_group_norm_layer_declare(n, ps, prefix, 32, c, 1e-6f);
}

tt_status tt_resblock_declare(tt_resblock *b, tt_paramset *ps, const char *prefix, int cin, int cout, float dropout) {
  char name[256];
  memset(b, 0, sizeof *b);
  snprintf(name, sizeof name, "%s.norm1", prefix);
  TT_TRY(tt_normalize_declare(&b->norm1, ps, name, cin));
  snprintf(name, sizeof name, "%s.conv1", prefix);
  TT_TRY(tt_conv2d_layer_declare(&b->conv1, ps, name, cin, cout, 3, 1, 1, true));
  snprintf(name, sizeof name, "%s.norm2", prefix);
  TT_TRY(tt_normalize_declare(&b->norm2, ps, name, cout));
  snprintf(name, sizeof name, "%s.conv2", prefix);
  TT_TRY(tt_conv2d_layer_declare(&b->conv2, ps, name, cout, cout, 3, 1, 1, true));
  if (cin != cout) {
    snprintf(name, sizeof name, "%s.nin_shortcut", prefix);
    TT_TRY(tt_conv2d_layer_declare(&b->nin_shortcut, ps, name, cin, cout, 1, 1, 0, true));
    b->has_nin = true;
  }
  b->dropout = dropout;
  return TT_OK;
}

tt_tensor *(tt_norm_swish)(const tt_norm_layer *n, tt_tensor *x) {
  tt_scope_begin();
  return tt_scope_end(tt_group_norm_silu_layer_forward(n, x));   // GroupNorm then SiLU, fused
}

tt_tensor *(tt_resblock_forward)(const tt_resblock *b, tt_tensor *x, bool training, tt_rng *rng) {
  tt_scope_begin();
  tt_tensor *h = tt_norm_swish(&b->norm1, x);                            // [B, Cin, H, W]
  h = tt_scope_replace(h, tt_conv2d_layer_forward(&b->conv1, h));        // -> [B, Cout, H, W]
  h = tt_scope_replace(h, tt_norm_swish(&b->norm2, h));
  if (b->dropout > 0 && training) h = tt_scope_replace(h, tt_dropout(h, b->dropout, true, rng));
  h = tt_scope_replace(h, tt_conv2d_layer_forward(&b->conv2, h));
  tt_tensor *sc = b->has_nin ? tt_conv2d_layer_forward(&b->nin_shortcut, x) : x;
  return tt_scope_end(tt_add(sc, h));
}

tt_status tt_attnblock_declare(tt_attnblock *a, tt_paramset *ps, const char *prefix, int c) {
  char name[256];
  memset(a, 0, sizeof *a);
  a->c = c;
  snprintf(name, sizeof name, "%s.norm", prefix);
  TT_TRY(tt_normalize_declare(&a->norm, ps, name, c));
  const char *proj[4] = {"q", "k", "v", "proj_out"};
  tt_conv2d_layer *l[4] = {&a->q, &a->k, &a->v, &a->proj_out};
  for (int i = 0; i < 4; i++) {
    snprintf(name, sizeof name, "%s.%s", prefix, proj[i]);
    TT_TRY(tt_conv2d_layer_declare(l[i], ps, name, c, c, 1, 1, 0, true));
  }
  return TT_OK;
}

/* [B, C, H, W] -> [B, H*W, C] contiguous (in the caller's scope) */
static tt_tensor *to_tokens(tt_tensor *x) {
  if (!x) return NULL;
  int64_t B = x->shape[0], C = x->shape[1], N = x->shape[2] * x->shape[3];
  tt_tensor *r = tt_reshape(x, TT_DIMS(B, C, N));
  return tt_contiguous(tt_transpose(r, 1, 2));
}

tt_tensor *(tt_attnblock_forward)(const tt_attnblock *a, tt_tensor *x) {
  int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
  tt_scope_begin();
  tt_tensor *h = tt_group_norm_layer_forward(&a->norm, x);
  tt_tensor *q = to_tokens(tt_conv2d_layer_forward(&a->q, h));          // [B, HW, C]
  tt_tensor *k = to_tokens(tt_conv2d_layer_forward(&a->k, h));
  tt_tensor *v = to_tokens(tt_conv2d_layer_forward(&a->v, h));
  tt_attention_params p = {(float)(1.0 / sqrt((double)C)), false, 0, 0};
  tt_tensor *o = tt_attention(q, k, v, &p);                               // [B, HW, C]
  o = tt_contiguous(tt_transpose(o, 1, 2));                               // [B, C, HW]
  o = tt_reshape(o, TT_DIMS(B, C, H, W));
  o = tt_conv2d_layer_forward(&a->proj_out, o);
  return tt_scope_end(tt_add(x, o));
}

tt_status tt_downsample_declare(tt_resample *d, tt_paramset *ps, const char *prefix, int c, bool with_conv) {
  memset(d, 0, sizeof *d);
  d->with_conv = with_conv;
  if (!with_conv) return TT_OK;
  char name[256];
  snprintf(name, sizeof name, "%s.conv", prefix);
  TT_TRY(tt_conv2d_layer_declare(&d->conv, ps, name, c, c, 3, 2, 0, true));
  /* the official asymmetric padding: nothing top/left, one zero row/column bottom/right */
  d->conv.p = (tt_conv2d_params){2, 2, 0, 1, 0, 1};
  return TT_OK;
}

tt_tensor *(tt_downsample_forward)(const tt_resample *d, tt_tensor *x) {
  tt_scope_begin();
  tt_tensor *y = d->with_conv ? tt_conv2d_layer_forward(&d->conv, x)   // [B,C,H,W] -> [B,C,H/2,W/2]
                              : tt_avg_pool2d(x, 2, 2);
  return tt_scope_end(y);
}

tt_status tt_upsample_declare(tt_resample *u, tt_paramset *ps, const char *prefix, int c, bool with_conv) {
  memset(u, 0, sizeof *u);
  u->with_conv = with_conv;
  if (!with_conv) return TT_OK;
  char name[256];
  snprintf(name, sizeof name, "%s.conv", prefix);
  return tt_conv2d_layer_declare(&u->conv, ps, name, c, c, 3, 1, 1, true);
}

tt_tensor *(tt_upsample_forward)(const tt_resample *u, tt_tensor *x) {
  tt_scope_begin();
  tt_tensor *h = tt_upsample_nearest(x, 2);   // [B,C,H,W] -> [B,C,2H,2W]
  if (u->with_conv) h = tt_scope_replace(h, tt_conv2d_layer_forward(&u->conv, h));
  return tt_scope_end(h);
}

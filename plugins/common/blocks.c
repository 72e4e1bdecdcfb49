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

tt_status tt_vconv_declare(tt_vconv *c, tt_paramset *ps, const char *prefix, int cin, int cout, int k, int stride,
                           int pad) {
  memset(c, 0, sizeof *c);
  return tt_conv2d_layer_declare(&c->l, ps, prefix, cin, cout, k, stride, pad, true);
}

/* True when c runs from its bf16 pack on x with the steps fused around it: the pack is
 * current and no gradient is wanted through c, x or the other tensors the steps read. */
static bool vconv_fusable(const tt_vconv *c, tt_tensor *x, const tt_norm_layer *n, tt_tensor *res) {
  const tt_conv2d_layer *l = &c->l;
  tt_tensor *w = l->weight->t;
  if (!c->pk || !w || c->src != w) return false;
  if (!tt_grad_enabled()) return true;
  tt_tensor *t[6] = {x, w, l->bias ? l->bias->t : NULL, n && n->weight ? n->weight->t : NULL,
                     n && n->bias ? n->bias->t : NULL, res};
  for (int i = 0; i < 6; i++)
    if (t[i] && tt_requires_grad(t[i])) return false;
  return true;
}

/* c(silu(n(x))) + res (res may be NULL) as one op, where vconv_fusable; x channels-last when
 * in_nhwc, the result when out_nhwc; in the caller's scope */
static tt_tensor *norm_swish_conv_fused(const tt_norm_layer *n, const tt_vconv *c, tt_tensor *x, tt_tensor *res,
                                        bool in_nhwc, bool out_nhwc) {
  const tt_conv2d_layer *l = &c->l;
  tt_conv2d_fuse f = {.groups = n->groups, .eps = n->eps, .norm_w = n->weight ? n->weight->t : NULL,
                      .norm_b = n->bias ? n->bias->t : NULL, .silu = true, .upsample = 1, .residual = res,
                      .in_nhwc = in_nhwc, .out_nhwc = out_nhwc};
  return tt_conv2d_packed_forward_fused(c->pk, x, l->bias && l->bias->t ? l->bias->t : NULL, &l->p, &f);
}

tt_tensor *(tt_vconv_forward)(const tt_vconv *c, tt_tensor *x) {
  const tt_conv2d_layer *l = &c->l;
  tt_tensor *w = l->weight->t, *b = l->bias && l->bias->t ? l->bias->t : NULL;
  /* the pack records no autograd node: training and gradients to the input run f32 */
  bool grads = tt_grad_enabled() && (tt_requires_grad(x) || (w && tt_requires_grad(w)) || (b && tt_requires_grad(b)));
  tt_scope_begin();
  tt_tensor *y = c->pk && w && c->src == w && !grads ? tt_scope_own(tt_conv2d_packed_forward(c->pk, x, b, &l->p))
                                                     : tt_conv2d_layer_forward(l, x);
  return tt_scope_end(y);
}

tt_status tt_vconv_set_precision(tt_vconv *c, tt_dtype dt) {
  tt_tensor *w = c->l.weight->t;
  if (dt == TT_F32 || (c->pk && c->src == w)) {
    if (dt == TT_F32) tt_vconv_free(c);
    return TT_OK;
  }
  if (!w) return tt_error(TT_ERR_INVALID, "set_precision: '%s' is not bound", c->l.weight->name);
  tt_vconv_free(c);
  c->pk = tt_conv2d_pack(w, dt);
  if (!c->pk) return tt_error_prefix(tt_last_status(), "set_precision: '%s': ", c->l.weight->name);
  c->src = tt_tensor_ref(w);
  return TT_OK;
}

void tt_vconv_free(tt_vconv *c) {
  tt_conv2d_packed_free(c->pk);
  c->pk = NULL;
  tt_tensor_release(&c->src);
}

int tt_resblock_convs(tt_resblock *b, tt_vconv **out) {
  out[0] = &b->conv1;
  out[1] = &b->conv2;
  if (b->has_nin) out[2] = &b->nin_shortcut;
  return b->has_nin ? 3 : 2;
}

int tt_attnblock_convs(tt_attnblock *a, tt_vconv **out) {
  out[0] = &a->q, out[1] = &a->k, out[2] = &a->v, out[3] = &a->proj_out;
  return 4;
}

tt_status tt_vqgan_precision_choose(const tt_value *arg, tt_device dev, tt_dtype *dt, const char **isa,
                                    const char **fallback) {
  const char *mode = arg->type == TT_V_STR ? arg->u.s : "";
  *fallback = NULL;
  *isa = "openblas";
  *dt = TT_F32;
  if (!strcmp(mode, "fp32")) return TT_OK;
  if (!strcmp(mode, "int8")) {
    *fallback = "int8 is not implemented for the VQGAN's convolutions";
    return TT_OK;
  }
  if (strcmp(mode, "bf16"))
    return tt_error(TT_ERR_INVALID, "set_precision: expected fp32, bf16 or int8, found '%s'",
                    arg->type == TT_V_STR ? mode : tt_vtype_name(arg->type));
  const char *why;
  if (!tt_conv2d_bf16_supported(dev, &why)) {
    *fallback = why;
    return TT_OK;
  }
  *isa = why;
  *dt = TT_BF16;
  return TT_OK;
}

static tt_status set_str(tt_value *map, const char *key, const char *v) {
  tt_value x = tt_value_str(v);
  return tt_value_set(map, key, &x);
}

tt_status tt_vqgan_precision_report(tt_value *ret, tt_dtype dt, const char *isa, const char *fallback) {
  *ret = tt_value_map();
  TT_TRY(set_str(ret, "precision", dt == TT_BF16 ? "bf16" : "fp32"));
  TT_TRY(set_str(ret, "isa", isa));
  if (fallback) TT_TRY(set_str(ret, "fallback", fallback));
  return TT_OK;
}

tt_status tt_vconvs_set_precision(tt_vconv **convs, int n, const tt_value *arg, tt_dtype *precision, tt_value *ret) {
  if (n < 1 || !convs[0]->l.weight->t)
    return tt_error(TT_ERR_INVALID, "set_precision: parameters are neither bound nor materialised");
  tt_dtype dt;
  const char *isa, *fallback;
  TT_TRY(tt_vqgan_precision_choose(arg, convs[0]->l.weight->t->device, &dt, &isa, &fallback));
  tt_status s = TT_OK;
  for (int i = 0; s == TT_OK && i < n; i++) s = tt_vconv_set_precision(convs[i], dt);
  if (s != TT_OK) {
    for (int i = 0; i < n; i++) tt_vconv_free(convs[i]);
    *precision = TT_F32;
    return s;
  }
  *precision = dt;
  return tt_vqgan_precision_report(ret, dt, isa, fallback);
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
  TT_TRY(tt_vconv_declare(&b->conv1, ps, name, cin, cout, 3, 1, 1));
  snprintf(name, sizeof name, "%s.norm2", prefix);
  TT_TRY(tt_normalize_declare(&b->norm2, ps, name, cout));
  snprintf(name, sizeof name, "%s.conv2", prefix);
  TT_TRY(tt_vconv_declare(&b->conv2, ps, name, cout, cout, 3, 1, 1));
  if (cin != cout) {
    snprintf(name, sizeof name, "%s.nin_shortcut", prefix);
    TT_TRY(tt_vconv_declare(&b->nin_shortcut, ps, name, cin, cout, 1, 1, 0));
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
  if (!(b->dropout > 0 && training) && vconv_fusable(&b->conv1, x, &b->norm1, NULL) &&
      vconv_fusable(&b->conv2, x, &b->norm2, NULL) && (!b->has_nin || vconv_fusable(&b->nin_shortcut, x, NULL, NULL))) {
    /* bf16: each norm + swish is done while the convolution's input is written, and the
     * residual added while its output is read back; h, which only conv2 reads, stays
     * channels-last, so it is neither transposed after conv1 nor before conv2 */
    tt_tensor *h = norm_swish_conv_fused(&b->norm1, &b->conv1, x, NULL, false, true);   // -> [B, H, W, Cout]
    tt_tensor *sc = b->has_nin ? tt_vconv_forward(&b->nin_shortcut, x) : x;
    return tt_scope_end(norm_swish_conv_fused(&b->norm2, &b->conv2, h, sc, true, false));   // -> [B, Cout, H, W]
  }
  tt_tensor *h = tt_norm_swish(&b->norm1, x);                            // [B, Cin, H, W]
  h = tt_scope_replace(h, tt_vconv_forward(&b->conv1, h));        // -> [B, Cout, H, W]
  h = tt_scope_replace(h, tt_norm_swish(&b->norm2, h));
  if (b->dropout > 0 && training) h = tt_scope_replace(h, tt_dropout(h, b->dropout, true, rng));
  h = tt_scope_replace(h, tt_vconv_forward(&b->conv2, h));
  tt_tensor *sc = b->has_nin ? tt_vconv_forward(&b->nin_shortcut, x) : x;
  return tt_scope_end(tt_add(sc, h));
}

tt_status tt_attnblock_declare(tt_attnblock *a, tt_paramset *ps, const char *prefix, int c) {
  char name[256];
  memset(a, 0, sizeof *a);
  a->c = c;
  snprintf(name, sizeof name, "%s.norm", prefix);
  TT_TRY(tt_normalize_declare(&a->norm, ps, name, c));
  const char *proj[4] = {"q", "k", "v", "proj_out"};
  tt_vconv *l[4] = {&a->q, &a->k, &a->v, &a->proj_out};
  for (int i = 0; i < 4; i++) {
    snprintf(name, sizeof name, "%s.%s", prefix, proj[i]);
    TT_TRY(tt_vconv_declare(l[i], ps, name, c, c, 1, 1, 0));
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
  tt_tensor *q = to_tokens(tt_vconv_forward(&a->q, h));          // [B, HW, C]
  tt_tensor *k = to_tokens(tt_vconv_forward(&a->k, h));
  tt_tensor *v = to_tokens(tt_vconv_forward(&a->v, h));
  tt_attention_params p = {(float)(1.0 / sqrt((double)C)), false, 0, 0};
  tt_tensor *o = tt_attention(q, k, v, &p);                               // [B, HW, C]
  o = tt_contiguous(tt_transpose(o, 1, 2));                               // [B, C, HW]
  o = tt_reshape(o, TT_DIMS(B, C, H, W));
  o = tt_vconv_forward(&a->proj_out, o);
  return tt_scope_end(tt_add(x, o));
}

tt_status tt_downsample_declare(tt_resample *d, tt_paramset *ps, const char *prefix, int c, bool with_conv) {
  memset(d, 0, sizeof *d);
  d->with_conv = with_conv;
  if (!with_conv) return TT_OK;
  char name[256];
  snprintf(name, sizeof name, "%s.conv", prefix);
  TT_TRY(tt_vconv_declare(&d->conv, ps, name, c, c, 3, 2, 0));
  /* the official asymmetric padding: nothing top/left, one zero row/column bottom/right */
  d->conv.l.p = (tt_conv2d_params){2, 2, 0, 1, 0, 1};
  return TT_OK;
}

tt_tensor *(tt_downsample_forward)(const tt_resample *d, tt_tensor *x) {
  tt_scope_begin();
  tt_tensor *y = d->with_conv ? tt_vconv_forward(&d->conv, x)   // [B,C,H,W] -> [B,C,H/2,W/2]
                              : tt_avg_pool2d(x, 2, 2);
  return tt_scope_end(y);
}

tt_status tt_upsample_declare(tt_resample *u, tt_paramset *ps, const char *prefix, int c, bool with_conv) {
  memset(u, 0, sizeof *u);
  u->with_conv = with_conv;
  if (!with_conv) return TT_OK;
  char name[256];
  snprintf(name, sizeof name, "%s.conv", prefix);
  return tt_vconv_declare(&u->conv, ps, name, c, c, 3, 1, 1);
}

tt_tensor *(tt_upsample_forward)(const tt_resample *u, tt_tensor *x) {
  tt_scope_begin();
  if (u->with_conv && vconv_fusable(&u->conv, x, NULL, NULL)) {
    /* bf16: the nearest upsampling is done while the convolution's input is written */
    const tt_conv2d_layer *l = &u->conv.l;
    tt_conv2d_fuse f = {.upsample = 2};
    return tt_scope_end(tt_conv2d_packed_forward_fused(u->conv.pk, x, l->bias && l->bias->t ? l->bias->t : NULL,
                                                       &l->p, &f));   // [B,C,H,W] -> [B,C,2H,2W]
  }
  tt_tensor *h = tt_upsample_nearest(x, 2);   // [B,C,H,W] -> [B,C,2H,2W]
  if (u->with_conv) h = tt_scope_replace(h, tt_vconv_forward(&u->conv, h));
  return tt_scope_end(h);
}

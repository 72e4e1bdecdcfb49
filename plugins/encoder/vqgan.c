/* encoder/vqgan.c — the official VQGAN Encoder for any ddconfig (REFERENCE §2.3):
 * conv_in, levels of ResnetBlocks (+ AttnBlocks at the nominal attention
 * resolutions) with Downsample between them, the middle block, norm_out, swish,
 * conv_out. Parameter names are the official ones relative to `encoder.`. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/blocks.h"

#define MAX_BLOCKS 8

typedef struct {
  tt_resblock block[MAX_BLOCKS];
  tt_attnblock attn[MAX_BLOCKS];
  bool has_attn;
  tt_resample down;
  bool has_down;
} enc_level;

typedef struct {
  tt_ddconfig dd;
  tt_paramset ps;
  tt_vconv conv_in, conv_out;
  tt_dtype precision;   /* of the convolutions: TT_F32 or TT_BF16 */
  bool built;           /* every convolution was declared */
  enc_level level[TT_MAX_LEVELS];
  tt_resblock mid1, mid2;
  tt_attnblock mid_attn;
  tt_norm_layer norm_out;
  bool training;
  tt_rng rng;
} encoder;

/* every convolution, in a fixed order; returns the count (fills out when it is not NULL) */
static int enc_convs(encoder *e, tt_vconv **out) {
  tt_vconv *tmp[4];
  int n = 0;
#define PUT(c) do { if (out) out[n] = (c); n++; } while (0)
  PUT(&e->conv_in);
  for (int i = 0; i < e->dd.n_levels; i++) {
    enc_level *lv = &e->level[i];
    for (int j = 0; j < e->dd.num_res_blocks; j++) {
      for (int k = 0, m = tt_resblock_convs(&lv->block[j], tmp); k < m; k++) PUT(tmp[k]);
      if (lv->has_attn)
        for (int k = 0, m = tt_attnblock_convs(&lv->attn[j], tmp); k < m; k++) PUT(tmp[k]);
    }
    if (lv->has_down && lv->down.with_conv) PUT(&lv->down.conv);
  }
  for (int k = 0, m = tt_resblock_convs(&e->mid1, tmp); k < m; k++) PUT(tmp[k]);
  for (int k = 0, m = tt_attnblock_convs(&e->mid_attn, tmp); k < m; k++) PUT(tmp[k]);
  for (int k = 0, m = tt_resblock_convs(&e->mid2, tmp); k < m; k++) PUT(tmp[k]);
  PUT(&e->conv_out);
#undef PUT
  return n;
}

static void enc_destroy(void *self) {
  encoder *e = self;
  if (!e) return;
  if (e->built) {
    int n = enc_convs(e, NULL);
    tt_vconv **c = malloc(sizeof *c * (size_t)n);
    if (c) {
      enc_convs(e, c);
      for (int i = 0; i < n; i++) tt_vconv_free(c[i]);
    }
    free(c);
  }
  tt_paramset_free(&e->ps);
  free(e);
}

static tt_status enc_build(encoder *e) {
  const tt_ddconfig *dd = &e->dd;
  char name[128];
  if (dd->num_res_blocks > MAX_BLOCKS)
    return tt_error(TT_ERR_UNSUPPORTED, "ddconfig: num_res_blocks = %d (at most %d)", dd->num_res_blocks, MAX_BLOCKS);
  TT_TRY(tt_vconv_declare(&e->conv_in, &e->ps, "conv_in", dd->in_channels, dd->ch, 3, 1, 1));
  int res = dd->resolution, c_in = dd->ch;
  for (int i = 0; i < dd->n_levels; i++) {
    enc_level *lv = &e->level[i];
    int c_out = dd->ch * dd->ch_mult[i];
    lv->has_attn = tt_ddconfig_has_attn(dd, res);
    for (int j = 0; j < dd->num_res_blocks; j++) {
      snprintf(name, sizeof name, "down.%d.block.%d", i, j);
      TT_TRY(tt_resblock_declare(&lv->block[j], &e->ps, name, c_in, c_out, dd->dropout));
      c_in = c_out;
      if (lv->has_attn) {
        snprintf(name, sizeof name, "down.%d.attn.%d", i, j);
        TT_TRY(tt_attnblock_declare(&lv->attn[j], &e->ps, name, c_out));
      }
    }
    if (i != dd->n_levels - 1) {
      snprintf(name, sizeof name, "down.%d.downsample", i);
      TT_TRY(tt_downsample_declare(&lv->down, &e->ps, name, c_out, dd->resamp_with_conv));
      lv->has_down = true;
      res /= 2;
    }
  }
  TT_TRY(tt_resblock_declare(&e->mid1, &e->ps, "mid.block_1", c_in, c_in, dd->dropout));
  TT_TRY(tt_attnblock_declare(&e->mid_attn, &e->ps, "mid.attn_1", c_in));
  TT_TRY(tt_resblock_declare(&e->mid2, &e->ps, "mid.block_2", c_in, c_in, dd->dropout));
  TT_TRY(tt_normalize_declare(&e->norm_out, &e->ps, "norm_out", c_in));
  TT_TRY(tt_vconv_declare(&e->conv_out, &e->ps, "conv_out", c_in, dd->double_z ? 2 * dd->z_channels : dd->z_channels,
                          3, 1, 1));
  return TT_OK;
}

static tt_status enc_create(const tt_value *cfg, void **self) {
  encoder *e = calloc(1, sizeof *e);
  if (!e) return tt_error(TT_ERR_NOMEM, "out of memory");
  tt_paramset_init(&e->ps);
  /* the config is the ddconfig itself, or a map holding it under "ddconfig" */
  static const char *const outer[] = {"ddconfig", NULL};
  const tt_value *dd = tt_value_get(cfg, "ddconfig");
  tt_status s = dd ? tt_cfg_check_keys(cfg, outer) : TT_OK;
  if (s == TT_OK) s = tt_ddconfig_read(dd ? dd : cfg, &e->dd);
  if (s == TT_OK) s = enc_build(e);
  if (s == TT_OK) e->built = true;
  if (s != TT_OK) {
    enc_destroy(e);
    return s;
  }
  e->rng = tt_rng_make(0x656e63);
  *self = e;
  return TT_OK;
}

static tt_paramset *enc_params(void *self) { return &((encoder *)self)->ps; }

static tt_status enc_set_training(void *self, bool training) {
  ((encoder *)self)->training = training;
  return TT_OK;
}

/* x [B, in_channels, H, W] -> h [B, z_channels (x2 if double_z), H/f, W/f] */
static tt_tensor *enc_run(encoder *e, tt_tensor *x) {
  const tt_ddconfig *dd = &e->dd;
  if (x->ndim != 4 || x->shape[1] != dd->in_channels) {
    char b[128];
    tt_error(TT_ERR_INVALID, "encoder: expected input [B, %d, H, W], found %s", dd->in_channels,
             tt_tensor_shape_str(x, b, sizeof b));
    return NULL;
  }
  int64_t f = 1 << (dd->n_levels - 1);
  if (x->shape[2] < f || x->shape[3] < f) {
    char b[128];
    tt_error(TT_ERR_INVALID, "encoder: input %s is smaller than the downsampling factor %lld",
             tt_tensor_shape_str(x, b, sizeof b), (long long)f);
    return NULL;
  }
  tt_scope_begin();
  tt_tensor *h = tt_vconv_forward(&e->conv_in, x);                          // [B, ch, H, W]
  for (int i = 0; i < dd->n_levels; i++) {
    enc_level *lv = &e->level[i];
    for (int j = 0; j < dd->num_res_blocks; j++) {
      h = tt_scope_replace(h, tt_resblock_forward(&lv->block[j], h, e->training, &e->rng));
      if (lv->has_attn) h = tt_scope_replace(h, tt_attnblock_forward(&lv->attn[j], h));
    }
    if (lv->has_down) h = tt_scope_replace(h, tt_downsample_forward(&lv->down, h));   // -> [B, C, H/2, W/2]
  }
  h = tt_scope_replace(h, tt_resblock_forward(&e->mid1, h, e->training, &e->rng));
  h = tt_scope_replace(h, tt_attnblock_forward(&e->mid_attn, h));
  h = tt_scope_replace(h, tt_resblock_forward(&e->mid2, h, e->training, &e->rng));
  h = tt_scope_replace(h, tt_norm_swish(&e->norm_out, h));
  h = tt_vconv_forward(&e->conv_out, h);                                     // -> [B, z, H/f, W/f]
  return tt_scope_end(h);
}

static tt_status enc_forward(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  tt_tensor *x;
  TT_TRY(tt_args_check("forward", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "x", &x));
  tt_tensor *h = enc_run(self, x);
  if (!h) return tt_last_status();
  rets[0] = tt_value_tensor_steal(h);
  *nrets = 1;
  return TT_OK;
}

/* set_precision("fp32" | "bf16" | "int8") -> {precision, isa[, fallback]}: bf16 packs every
 * convolution's weights; int8, and bf16 where the device has no kernel, stay fp32 and say why */
static tt_status enc_set_precision(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  encoder *e = self;
  TT_TRY(tt_args_check("set_precision", nargs, 1, 1));
  int n = enc_convs(e, NULL);
  tt_vconv **c = malloc(sizeof *c * (size_t)n);
  if (!c) return tt_error(TT_ERR_NOMEM, "set_precision: out of memory");
  enc_convs(e, c);
  tt_status s = tt_vconvs_set_precision(c, n, &args[0], &e->precision, &rets[0]);
  free(c);
  if (s == TT_OK) *nrets = 1;
  return s;
}

static const tt_method enc_methods[] = {
    {"forward", enc_forward, "x [B, in_channels, H, W] -> h [B, z_channels, H/f, W/f]"},
    {"set_precision", enc_set_precision, "fp32|bf16|int8: weights of the convolutions -> {precision, isa[, fallback]}"},
    {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "encoder", .name = "vqgan", .version = "1.0.0",
                 .summary = "official VQGAN Encoder (any ddconfig)", .create = enc_create, .destroy = enc_destroy,
                 .params = enc_params, .methods = enc_methods, .set_training = enc_set_training);

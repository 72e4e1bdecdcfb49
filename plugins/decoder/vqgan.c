/* decoder/vqgan.c — the official VQGAN Decoder for any ddconfig (REFERENCE §2.4):
 * conv_in, the middle block, levels from up.{n-1} down to up.0 with nrb+1
 * ResnetBlocks each (+ AttnBlocks at the nominal resolutions) and Upsample
 * between them, then norm_out, swish, conv_out (skipped with give_pre_end).
 * No output activation. Parameter names are relative to `decoder.`. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../common/blocks.h"

#define MAX_BLOCKS 9

typedef struct {
  tt_resblock block[MAX_BLOCKS];
  tt_attnblock attn[MAX_BLOCKS];
  bool has_attn;
  tt_resample up;
  bool has_up;
} dec_level;

typedef struct {
  tt_ddconfig dd;
  tt_paramset ps;
  tt_vconv conv_in, conv_out;
  tt_dtype precision;   /* of the convolutions: TT_F32 or TT_BF16 */
  bool built;           /* every convolution was declared */
  dec_level level[TT_MAX_LEVELS];
  tt_resblock mid1, mid2;
  tt_attnblock mid_attn;
  tt_norm_layer norm_out;
  bool training;
  tt_rng rng;
} decoder;

/* every convolution, in a fixed order; returns the count (fills out when it is not NULL) */
static int dec_convs(decoder *d, tt_vconv **out) {
  tt_vconv *tmp[4];
  int n = 0, nb = d->dd.num_res_blocks + 1;
#define PUT(c) do { if (out) out[n] = (c); n++; } while (0)
  PUT(&d->conv_in);
  for (int k = 0, m = tt_resblock_convs(&d->mid1, tmp); k < m; k++) PUT(tmp[k]);
  for (int k = 0, m = tt_attnblock_convs(&d->mid_attn, tmp); k < m; k++) PUT(tmp[k]);
  for (int k = 0, m = tt_resblock_convs(&d->mid2, tmp); k < m; k++) PUT(tmp[k]);
  for (int i = d->dd.n_levels - 1; i >= 0; i--) {
    dec_level *lv = &d->level[i];
    for (int j = 0; j < nb; j++) {
      for (int k = 0, m = tt_resblock_convs(&lv->block[j], tmp); k < m; k++) PUT(tmp[k]);
      if (lv->has_attn)
        for (int k = 0, m = tt_attnblock_convs(&lv->attn[j], tmp); k < m; k++) PUT(tmp[k]);
    }
    if (lv->has_up && lv->up.with_conv) PUT(&lv->up.conv);
  }
  if (!d->dd.give_pre_end) PUT(&d->conv_out);
#undef PUT
  return n;
}

static void dec_destroy(void *self) {
  decoder *d = self;
  if (!d) return;
  if (d->built) {
    int n = dec_convs(d, NULL);
    tt_vconv **c = malloc(sizeof *c * (size_t)n);
    if (c) {
      dec_convs(d, c);
      for (int i = 0; i < n; i++) tt_vconv_free(c[i]);
    }
    free(c);
  }
  tt_paramset_free(&d->ps);
  free(d);
}

static tt_status dec_build(decoder *d) {
  const tt_ddconfig *dd = &d->dd;
  char name[128];
  int nb = dd->num_res_blocks + 1;
  if (nb > MAX_BLOCKS)
    return tt_error(TT_ERR_UNSUPPORTED, "ddconfig: num_res_blocks = %d (at most %d)", dd->num_res_blocks, MAX_BLOCKS - 1);
  int c = dd->ch * dd->ch_mult[dd->n_levels - 1];
  int res = dd->resolution >> (dd->n_levels - 1);
  TT_TRY(tt_vconv_declare(&d->conv_in, &d->ps, "conv_in", dd->z_channels, c, 3, 1, 1));
  TT_TRY(tt_resblock_declare(&d->mid1, &d->ps, "mid.block_1", c, c, dd->dropout));
  TT_TRY(tt_attnblock_declare(&d->mid_attn, &d->ps, "mid.attn_1", c));
  TT_TRY(tt_resblock_declare(&d->mid2, &d->ps, "mid.block_2", c, c, dd->dropout));
  for (int i = dd->n_levels - 1; i >= 0; i--) {
    dec_level *lv = &d->level[i];
    int c_out = dd->ch * dd->ch_mult[i];
    lv->has_attn = tt_ddconfig_has_attn(dd, res);
    for (int j = 0; j < nb; j++) {
      snprintf(name, sizeof name, "up.%d.block.%d", i, j);
      TT_TRY(tt_resblock_declare(&lv->block[j], &d->ps, name, c, c_out, dd->dropout));
      c = c_out;
      if (lv->has_attn) {
        snprintf(name, sizeof name, "up.%d.attn.%d", i, j);
        TT_TRY(tt_attnblock_declare(&lv->attn[j], &d->ps, name, c_out));
      }
    }
    if (i != 0) {
      snprintf(name, sizeof name, "up.%d.upsample", i);
      TT_TRY(tt_upsample_declare(&lv->up, &d->ps, name, c_out, dd->resamp_with_conv));
      lv->has_up = true;
      res *= 2;
    }
  }
  if (!dd->give_pre_end) {
    TT_TRY(tt_normalize_declare(&d->norm_out, &d->ps, "norm_out", c));
    TT_TRY(tt_vconv_declare(&d->conv_out, &d->ps, "conv_out", c, dd->out_ch, 3, 1, 1));
  }
  return TT_OK;
}

static tt_status dec_create(const tt_value *cfg, void **self) {
  decoder *d = calloc(1, sizeof *d);
  if (!d) return tt_error(TT_ERR_NOMEM, "out of memory");
  tt_paramset_init(&d->ps);
  static const char *const outer[] = {"ddconfig", NULL};
  const tt_value *dd = tt_value_get(cfg, "ddconfig");
  tt_status s = dd ? tt_cfg_check_keys(cfg, outer) : TT_OK;
  if (s == TT_OK) s = tt_ddconfig_read(dd ? dd : cfg, &d->dd);
  if (s == TT_OK) s = dec_build(d);
  if (s == TT_OK) d->built = true;
  if (s != TT_OK) {
    dec_destroy(d);
    return s;
  }
  d->rng = tt_rng_make(0x646563);
  *self = d;
  return TT_OK;
}

static tt_paramset *dec_params(void *self) { return &((decoder *)self)->ps; }

static tt_status dec_set_training(void *self, bool training) {
  ((decoder *)self)->training = training;
  return TT_OK;
}

/* z [B, z_channels, h, w] -> x [B, out_ch, h*f, w*f] */
static tt_tensor *dec_run(decoder *d, tt_tensor *z) {
  const tt_ddconfig *dd = &d->dd;
  if (z->ndim != 4 || z->shape[1] != dd->z_channels) {
    char b[128];
    tt_error(TT_ERR_INVALID, "decoder: expected latent [B, %d, h, w], found %s", dd->z_channels,
             tt_tensor_shape_str(z, b, sizeof b));
    return NULL;
  }
  int nb = dd->num_res_blocks + 1;
  tt_scope_begin();
  tt_tensor *h = tt_vconv_forward(&d->conv_in, z);                          // [B, C, h, w]
  h = tt_scope_replace(h, tt_resblock_forward(&d->mid1, h, d->training, &d->rng));
  h = tt_scope_replace(h, tt_attnblock_forward(&d->mid_attn, h));
  h = tt_scope_replace(h, tt_resblock_forward(&d->mid2, h, d->training, &d->rng));
  for (int i = dd->n_levels - 1; i >= 0; i--) {
    dec_level *lv = &d->level[i];
    for (int j = 0; j < nb; j++) {
      h = tt_scope_replace(h, tt_resblock_forward(&lv->block[j], h, d->training, &d->rng));
      if (lv->has_attn) h = tt_scope_replace(h, tt_attnblock_forward(&lv->attn[j], h));
    }
    if (lv->has_up) h = tt_scope_replace(h, tt_upsample_forward(&lv->up, h));   // -> [B, C, 2h, 2w]
  }
  if (dd->give_pre_end) return tt_scope_end(h);
  h = tt_scope_replace(h, tt_norm_swish(&d->norm_out, h));
  h = tt_vconv_forward(&d->conv_out, h);                                     // -> [B, out_ch, h*f, w*f]
  return tt_scope_end(h);
}

static tt_status dec_forward(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  tt_tensor *z;
  TT_TRY(tt_args_check("forward", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "z", &z));
  tt_tensor *x = dec_run(self, z);
  if (!x) return tt_last_status();
  rets[0] = tt_value_tensor_steal(x);
  *nrets = 1;
  return TT_OK;
}

/* the weight the adaptive GAN weight differentiates against */
static tt_status dec_last_layer(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  decoder *d = self;
  if (d->dd.give_pre_end) return tt_error(TT_ERR_INVALID, "decoder: no conv_out with give_pre_end");
  if (!d->conv_out.l.weight->t) return tt_error(TT_ERR_INVALID, "decoder: conv_out.weight is not initialised");
  rets[0] = tt_value_tensor(d->conv_out.l.weight->t);
  *nrets = 1;
  return TT_OK;
}

/* set_precision("fp32" | "bf16" | "int8") -> {precision, isa[, fallback]}: bf16 packs every
 * convolution's weights; int8, and bf16 where the device has no kernel, stay fp32 and say why */
static tt_status dec_set_precision(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  decoder *d = self;
  TT_TRY(tt_args_check("set_precision", nargs, 1, 1));
  int n = dec_convs(d, NULL);
  tt_vconv **c = malloc(sizeof *c * (size_t)n);
  if (!c) return tt_error(TT_ERR_NOMEM, "set_precision: out of memory");
  dec_convs(d, c);
  tt_status s = tt_vconvs_set_precision(c, n, &args[0], &d->precision, &rets[0]);
  free(c);
  if (s == TT_OK) *nrets = 1;
  return s;
}

static const tt_method dec_methods[] = {
    {"forward", dec_forward, "z [B, z_channels, h, w] -> x [B, out_ch, h*f, w*f]"},
    {"set_precision", dec_set_precision, "fp32|bf16|int8: weights of the convolutions -> {precision, isa[, fallback]}"},
    {"get_last_layer", dec_last_layer, "-> conv_out.weight"},
    {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "decoder", .name = "vqgan", .version = "1.0.0",
                 .summary = "official VQGAN Decoder (any ddconfig)", .create = dec_create, .destroy = dec_destroy,
                 .params = dec_params, .methods = dec_methods, .set_training = dec_set_training);

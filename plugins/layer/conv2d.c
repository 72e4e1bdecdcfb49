/* layer/conv2d.c — a plain Conv2d as a plugin (the VQModel's quant_conv and
 * post_quant_conv, and any 1x1/3x3 projection a pipeline wants to wire in).
 * Config: in_channels, out_channels, kernel_size, stride (1), padding (0), bias (true). */
#include "config.h"
#include <stdlib.h>
#include "taming/plugin.h"

typedef struct {
  tt_paramset ps;
  tt_conv2d_layer conv;
  int64_t cin;
} conv_plugin;

static void c_destroy(void *self) {
  conv_plugin *c = self;
  if (!c) return;
  tt_paramset_free(&c->ps);
  free(c);
}

static tt_status c_create(const tt_value *cfg, void **self) {
  static const char *const known[] = {"in_channels", "out_channels", "kernel_size", "stride", "padding", "bias",
                                      NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));
  conv_plugin *c = calloc(1, sizeof *c);
  if (!c) return tt_error(TT_ERR_NOMEM, "out of memory");
  tt_paramset_init(&c->ps);
  int64_t cout, k, stride, pad;
  bool bias;
  tt_status s;
  if ((s = tt_cfg_int(cfg, "in_channels", &c->cin)) || (s = tt_cfg_int(cfg, "out_channels", &cout)) ||
      (s = tt_cfg_int_opt(cfg, "kernel_size", 1, &k)) || (s = tt_cfg_int_opt(cfg, "stride", 1, &stride)) ||
      (s = tt_cfg_int_opt(cfg, "padding", 0, &pad)) || (s = tt_cfg_bool_opt(cfg, "bias", true, &bias)))
    goto fail;
  if (c->cin <= 0 || cout <= 0 || k <= 0 || stride <= 0 || pad < 0) {
    s = tt_error(TT_ERR_INVALID, "conv2d: channels, kernel_size and stride must be positive, padding >= 0");
    goto fail;
  }
  if ((s = tt_conv2d_layer_declare(&c->conv, &c->ps, "", (int)c->cin, (int)cout, (int)k, (int)stride, (int)pad, bias)))
    goto fail;
  *self = c;
  return TT_OK;
fail:
  c_destroy(c);
  return s;
}

static tt_paramset *c_params(void *self) { return &((conv_plugin *)self)->ps; }

static tt_status c_forward(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  conv_plugin *c = self;
  tt_tensor *x;
  TT_TRY(tt_args_check("forward", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "x", &x));
  tt_tensor *y = tt_conv2d_layer_forward(&c->conv, x);
  if (!y) return tt_last_status();
  rets[0] = tt_value_tensor_steal(y);
  *nrets = 1;
  return TT_OK;
}

static const tt_method c_methods[] = {{"forward", c_forward, "x [B, Cin, H, W] -> [B, Cout, Ho, Wo]"},
                                      {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "layer", .name = "conv2d", .version = "1.0.0", .summary = "Conv2d",
                 .create = c_create, .destroy = c_destroy, .params = c_params, .methods = c_methods);

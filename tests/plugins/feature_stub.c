/* feature_stub.c — a small `feature` plugin for the typed call: features are
 * the per-channel means [B, C], logits the per-image sums [B, 1]. */
#include "taming/kinds.h"

static int token;
static tt_status c(const tt_value *cfg, void **self) {
  static const char *const known[] = {NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));
  *self = &token;
  return TT_OK;
}
static void d(void *self) {}
static tt_status forward(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  tt_tensor *x;
  TT_TRY(tt_args_check("forward", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "x", &x));
  if (x->ndim != 4) return tt_error(TT_ERR_INVALID, "x must be [B, C, H, W]");
  int dims[2] = {2, 3}, all[3] = {1, 2, 3};
  tt_tensor *f = tt_mean_dims(x, 2, dims, false);         // [B, C]
  tt_tensor *s = tt_sum_dims(x, 3, all, false);           // [B]
  tt_tensor *l = s ? tt_reshape(s, TT_DIMS(x->shape[0], 1)) : NULL;
  tt_tensor_unref(s);
  if (!f || !l) { tt_tensor_unref(f); tt_tensor_unref(l); return tt_last_status(); }
  rets[0] = tt_value_tensor_steal(f);
  rets[1] = tt_value_tensor_steal(l);
  *nrets = 2;
  return TT_OK;
}
static const tt_method m[] = {{"forward", forward, "x [B, C, H, W] -> means [B, C], sums [B, 1]"}, {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "feature", .name = "stub", .version = "1.0.0", .create = c, .destroy = d, .methods = m);

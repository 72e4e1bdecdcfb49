/* noparams.c — a plugin without weights leaves `params` out (ABI 1.2): it loads,
 * and the host reports an empty parameter set. */
#include "taming/plugin.h"
#include <stdlib.h>

static tt_status c(const tt_value *cfg, void **self) {
  static const char *const known[] = {"offset", NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));
  double *off = malloc(sizeof *off);
  if (!off) return tt_error(TT_ERR_NOMEM, "out of memory");
  tt_status s = tt_cfg_num_opt(cfg, "offset", 0.0, off);
  if (s != TT_OK) { free(off); return s; }
  *self = off;
  return TT_OK;
}
static void d(void *self) { free(self); }
static tt_status add(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  tt_tensor *x;
  TT_TRY(tt_args_check("add", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "x", &x));
  tt_tensor *y = tt_add_scalar(x, *(double *)self);
  if (!y) return tt_last_status();
  rets[0] = tt_value_tensor_steal(y);
  *nrets = 1;
  return TT_OK;
}
static const tt_method m[] = {{"add", add, "x -> x + offset"}, {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "test", .name = "noparams", .version = "1.0.0", .summary = "a plugin without weights",
                 .create = c, .destroy = d, .methods = m);

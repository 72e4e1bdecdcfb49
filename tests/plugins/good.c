/* good.c — a well-formed test plugin (kind "test", name "good"): scales tensors,
 * declares one parameter, returns several values, and fails on request. */
#include "taming/plugin.h"
#include <stdlib.h>

/* Instances alive now, read by the tests that check nothing leaks one. */
TT_PLUGIN_EXPORT int test_good_live;

typedef struct {
  double scale;
  tt_paramset ps;
  tt_param *weight;
} good;

static tt_status good_create(const tt_value *cfg, void **self) {
  good *g = calloc(1, sizeof *g);
  if (!g) return tt_error(TT_ERR_NOMEM, "out of memory");
  tt_status s = tt_cfg_num_opt(cfg, "scale", 1.0, &g->scale);
  if (s == TT_OK) {
    tt_paramset_init(&g->ps);
    g->weight = tt_param_declare(&g->ps, TT_F32, TT_DIMS(2, 3), TT_PARAM_TRAINABLE, tt_init_const(0.5), "lin.weight");
    if (!g->weight) s = tt_last_status();
  }
  if (s != TT_OK) {
    tt_paramset_free(&g->ps);
    free(g);
    return s;
  }
  *self = g;
  test_good_live++;
  return TT_OK;
}

static void good_destroy(void *self) {
  good *g = self;
  test_good_live--;
  tt_paramset_free(&g->ps);
  free(g);
}

static tt_paramset *good_params(void *self) { return &((good *)self)->ps; }

static tt_status good_scale(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  good *g = self;
  tt_tensor *x;
  TT_TRY(tt_args_check("scale", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "x", &x));
  tt_tensor *y = tt_mul_scalar(x, g->scale);
  if (!y) return tt_last_status();
  rets[0] = tt_value_tensor_steal(y);
  *nrets = 1;
  return TT_OK;
}

static tt_status good_pair(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  rets[0] = tt_value_int(nargs);
  rets[1] = tt_value_str("pair");
  *nrets = 2;
  return TT_OK;
}

static tt_status good_fail(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  return tt_error(TT_ERR_INVALID, "asked to fail");
}

static const tt_method good_methods[] = {
    {"scale", good_scale, "x -> x * scale"},
    {"pair", good_pair, "... -> nargs, 'pair'"},
    {"fail", good_fail, "always fails"},
    {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "test", .name = "good", .version = "1.0.0", .summary = "loader test plugin",
                 .create = good_create, .destroy = good_destroy, .params = good_params, .methods = good_methods);
